/*
 * outboxctl-sig.h - the webhook signatures outboxctl prints (sign) and checks (listen):
 * Flipt's X-Flipt-Webhook-Signature (lower-case hex HMAC-SHA256 of the body, key = the
 * secret's bytes) and Standard Webhooks' webhook-signature ("v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>", key = base64-decoded after a `whsec_` prefix, else the raw bytes).
 * Secrets are only read, never copied anywhere that is printed.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_SIG_H
#define OUTBOX_TOOLS_OUTBOXCTL_SIG_H

#include <stddef.h>

/* out receives 64 hex digits and a NUL. 0 ok, -1 on failure. */
int ctl_sig_flipt(const char *secret, const void *body, size_t len, char out[65]);

/* out receives "v1,<base64>" (at least 48 bytes). -1 on failure (bad whsec_ secret). */
int ctl_sig_standard(const char *secret, const char *id, const char *timestamp, const void *body,
                     size_t len, char *out, size_t n);

/* 1 when `header` (a hex digest, any case, surrounding spaces ignored) matches. */
int ctl_sig_flipt_verify(const char *secret, const void *body, size_t len, const char *header);

/* 1 when any space-separated "v1,..." token of `header` matches. */
int ctl_sig_standard_verify(const char *secret, const char *id, const char *timestamp,
                            const void *body, size_t len, const char *header);

#endif
