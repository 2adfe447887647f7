/*
 * delivery/sign.h - webhook request signatures and their verification.
 *
 * Two schemes, both HMAC-SHA256 (OpenSSL libcrypto):
 *  - Flipt: X-Flipt-Webhook-Signature = lower-case hex HMAC-SHA256(key = the secret's bytes,
 *    message = the exact body bytes). No prefix, no timestamp.
 *  - Standard Webhooks v1: webhook-signature = "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
 *    A secret starting with "whsec_" is base64-decoded after the prefix (missing padding is
 *    tolerated); any other secret is used as raw bytes (so Flipt's plain signing_secret works).
 *    Several secrets (rotation) give several space-separated "v1,..." tokens.
 *
 * Secrets are only read; nothing here copies them anywhere that could be printed, and error
 * messages never contain them. Comparisons of MACs and tokens are constant-time
 * (CRYPTO_memcmp). All functions but a signer's are thread-safe and keep no state. They
 * return a dlv_err (delivery/error.h); DLV_ERR_MISMATCH, DLV_ERR_TIMESTAMP and DLV_ERR_FORMAT are
 * the verification outcomes.
 */
#ifndef OUTBOX_DELIVERY_SIGN_H
#define OUTBOX_DELIVERY_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/error.h"

#define DLV_FLIPT_SIG_HEX_LEN    64  /* hex digits of a Flipt signature (plus 1 for the NUL) */
#define DLV_STANDARD_TOKEN_LEN   47  /* strlen("v1,") + 44 base64 chars, without the NUL */
#define DLV_STANDARD_TOLERANCE_S 300 /* default webhook-timestamp tolerance: 5 minutes */

/*
 * Flipt signature of `body`.
 * @param[in]  secret, secret_len  key bytes (borrowed; not retained).
 * @param[in]  body, body_len      exact request body bytes (may be NULL when body_len == 0).
 * @param[out] out                 receives 64 lower-case hex digits and a NUL.
 * @return DLV_OK, DLV_ERR_INVALID or DLV_ERR_CRYPTO; `out` untouched on failure.
 */
int dlv_sign_flipt(const void *secret, size_t secret_len, const void *body, size_t body_len,
                   char out[DLV_FLIPT_SIG_HEX_LEN + 1]);

/*
 * The HMAC key a Standard Webhooks secret stands for: base64-decoded after "whsec_" (padding
 * optional), else the secret's raw bytes.
 * @param[in]  secret   NUL-terminated secret (borrowed).
 * @param[out] key      caller buffer of at least strlen(secret) bytes.
 * @param[out] key_len  number of key bytes written.
 * @return DLV_OK, or DLV_ERR_INVALID when a whsec_ secret is not valid base64 (the
 *         message a caller prints must not include the secret).
 */
int dlv_standard_key(const char *secret, unsigned char *key, size_t *key_len);

/*
 * One Standard Webhooks token "v1,<base64>" for one secret.
 * @param[in]  secret     NUL-terminated secret (borrowed).
 * @param[in]  msg_id     webhook-id value (borrowed, NUL-terminated).
 * @param[in]  timestamp  webhook-timestamp value, Unix seconds.
 * @param[out] out        receives the token and a NUL; outlen must be >= 48.
 * @return DLV_OK, DLV_ERR_INVALID (bad secret, short buffer) or DLV_ERR_CRYPTO.
 */
int dlv_sign_standard(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                      size_t body_len, char *out, size_t outlen);

/*
 * The full webhook-signature header value for several secrets (rotation): one token per
 * secret, separated by single spaces, in the order given.
 * @param[in]  secrets, n_secrets  borrowed; n_secrets >= 1.
 * @param[out] ret_header  malloc'd NUL-terminated string, freed by the caller with free();
 *                         untouched on failure.
 * @return DLV_OK, DLV_ERR_INVALID, DLV_ERR_NOMEM or DLV_ERR_CRYPTO.
 */
int dlv_sign_standard_header(const char *const *secrets, size_t n_secrets, const char *msg_id,
                             int64_t timestamp, const void *body, size_t body_len,
                             char **ret_header);

/*
 * A signer: one secret's HMAC-SHA256 key set up once, then any number of signatures with
 * no allocation and no key setup each (the engine keeps one per sink and secret). The
 * signatures are byte for byte those of dlv_sign_flipt / dlv_sign_standard. Not
 * thread-safe: one thread at a time uses a signer. The secret is not retained (OpenSSL
 * keeps the derived key state, cleared by dlv_signer_free).
 */
typedef struct dlv_signer dlv_signer;

/*
 * @param[in]  secret    NUL-terminated (borrowed).
 * @param[in]  standard  0: the key is the secret's bytes (Flipt); 1: dlv_standard_key.
 * @param[out] out       the signer, freed with dlv_signer_free; NULL on failure.
 * @return DLV_OK, DLV_ERR_INVALID (a bad whsec_ secret), DLV_ERR_NOMEM or DLV_ERR_CRYPTO.
 */
int dlv_signer_new(const char *secret, int standard, dlv_signer **out);
void dlv_signer_free(dlv_signer *s);

/* As dlv_sign_flipt, with s's key (a signer made with standard = 0). */
int dlv_signer_flipt(dlv_signer *s, const void *body, size_t body_len,
                     char out[DLV_FLIPT_SIG_HEX_LEN + 1]);

/* As dlv_sign_standard, with s's key (a signer made with standard = 1). */
int dlv_signer_standard(dlv_signer *s, const char *msg_id, int64_t timestamp, const void *body,
                        size_t body_len, char *out, size_t outlen);

/*
 * Verify an X-Flipt-Webhook-Signature value (hex digits in any case; surrounding spaces
 * ignored) against any of `secrets` (rotation), in constant time per secret.
 * @return DLV_OK when one matches, DLV_ERR_FORMAT when header is NULL/empty or not
 *         64 hex digits, DLV_ERR_MISMATCH otherwise, DLV_ERR_CRYPTO on OpenSSL failure.
 */
int dlv_verify_flipt(const char *const *secrets, size_t n_secrets, const void *body,
                     size_t body_len, const char *header);

/*
 * Verify Standard Webhooks headers: `timestamp` is the webhook-timestamp header text (decimal
 * Unix seconds), `sig_header` the webhook-signature value (space-separated tokens; tokens
 * other than "v1,..." are skipped). The timestamp must lie within `tolerance_s` seconds of
 * `now_s` (both directions; pass DLV_STANDARD_TOLERANCE_S for the spec's 5 minutes, a
 * negative value to skip the check).
 * @return DLV_OK when any token matches any secret; DLV_ERR_TIMESTAMP, DLV_ERR_FORMAT,
 *         DLV_ERR_MISMATCH, DLV_ERR_INVALID (a bad whsec_ secret) or DLV_ERR_CRYPTO.
 */
int dlv_verify_standard(const char *const *secrets, size_t n_secrets, const char *msg_id,
                        const char *timestamp, const void *body, size_t body_len,
                        const char *sig_header, int64_t now_s, int64_t tolerance_s);

/* Constant-time equality of two byte strings (the time depends only on the lengths).
 * 1 when equal, 0 otherwise. NULL equals only NULL-with-length-0. */
int dlv_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Constant-time equality of two NUL-terminated strings (e.g. bearer tokens): 1 equal, 0 not
 * (a NULL argument is never equal). */
int dlv_ct_streq(const char *a, const char *b);

/*
 * The one rule for a configured signing secret (config loader, engine, outboxctl): it is
 * not empty and, when the Standard Webhooks scheme is used (standard != 0), a "whsec_"
 * secret is valid base64 after the prefix (dlv_base64_decode).
 * @param[out] err  e.g. "the secret starts with whsec_ but the rest is not valid base64";
 *                  never the secret itself; may be NULL.
 * @return DLV_OK or DLV_ERR_INVALID.
 */
int dlv_signing_secret_check(const char *secret, int standard, char *err, size_t errlen);

#endif
