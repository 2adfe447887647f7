/*
 * delivery/sink.h - the sink configuration model shared by the config loader, the
 * scheduler and the sender.
 *
 * One dlv_sink_config describes one named sink: where to POST, how to build the body (the
 * event as received in URL mode, or a Go template), how to sign, how to retry, which
 * events it takes, and TLS settings. Every pointer member is owned by the config and freed
 * by dlv_sink_config_clear(); strings are malloc'd, NUL-terminated. A config is not
 * modified after loading, so readers on several threads may share it.
 */
#ifndef OUTBOX_DELIVERY_SINK_H
#define OUTBOX_DELIVERY_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/backoff.h"
#include "delivery/error.h"
#include "delivery/filter.h"
#include "outbox/outbox.h"

struct gotmpl; /* gotmpl/gotmpl.h */

/* Signature schemes, a bit set (BOTH = FLIPT | STANDARD). Used only with secrets. */
enum {
    DLV_SIG_NONE = 0,
    DLV_SIG_FLIPT = 1 << 0,    /* X-Flipt-Webhook-Signature */
    DLV_SIG_STANDARD = 1 << 1, /* webhook-timestamp + webhook-signature */
    DLV_SIG_BOTH = DLV_SIG_FLIPT | DLV_SIG_STANDARD,
};

/* Longest sink name in bytes: the store's limit, which counts the NUL. */
#define DLV_SINK_NAME_MAX      (OBX_SINK_NAME_MAX - 1)
#define DLV_SINK_TIMEOUT_MS    10000
#define DLV_SINK_CONNECT_MS    5000
#define DLV_SINK_MAX_IN_FLIGHT 64
#define DLV_SINK_MAX_BODY_OUT  (1024u * 1024u)
/* Response capture for forensics: the first capture_body bytes of each response body are
 * kept in the attempt's history (0 = none), at most the store's OBX_CAPTURE_BODY_MAX. */
#define DLV_SINK_CAPTURE_BODY     1024u
#define DLV_SINK_CAPTURE_BODY_MAX OBX_CAPTURE_BODY_MAX
/* Headers always captured; capture_headers adds at most OBX_CAPTURE_HEADERS_MAX minus these. */
#define DLV_SINK_CAPTURE_DEFAULT_HEADERS 3 /* Content-Type, Retry-After, Location */
#define DLV_SINK_CAPTURE_HEADERS_MAX     (OBX_CAPTURE_HEADERS_MAX - DLV_SINK_CAPTURE_DEFAULT_HEADERS)

typedef struct dlv_header {
    char *name;  /* owned */
    char *value; /* owned */
} dlv_header;

typedef struct dlv_sink_config {
    char *name;          /* owned; a valid store name (dlv_sink_name_valid) */
    char *url;           /* owned; passes dlv_url_check */
    dlv_header *headers; /* owned array of n_headers; extra request headers */
    size_t n_headers;
    char *body;          /* owned template source, or NULL in URL mode */
    struct gotmpl *tmpl; /* owned parsed template, or NULL (URL mode, or not parsed) */
    char **secrets;      /* owned array of n_secrets owned strings; [0] signs Flipt's
                            header, all of them sign Standard Webhooks (rotation) */
    size_t n_secrets;
    int signature; /* DLV_SIG_* set; default DLV_SIG_BOTH (ignored without secrets) */
    dlv_backoff_config backoff;
    int64_t timeout_ms;         /* whole request, default 10 s */
    int64_t connect_timeout_ms; /* default 5 s */
    unsigned max_in_flight;     /* default 64, >= 1 */
    int ordered;                /* 1: one delivery at a time, in event order */
    int *dead_letter_on;        /* owned array of statuses that dead-letter at once */
    size_t n_dead_letter_on;
    dlv_filter *filter;       /* owned; NULL = every event ("*:*") */
    char *ca_file;            /* owned or NULL: CA bundle for https */
    char *client_cert;        /* owned or NULL: PEM client certificate (mTLS) */
    char *client_key;         /* owned or NULL: PEM client key */
    int insecure;             /* 1: skip TLS peer/host verification (loud in logs) */
    size_t max_body_out;      /* template output cap, default 1 MiB */
    char **capture_headers;   /* owned array of owned header names kept from each response
                                 besides Content-Type, Retry-After and Location */
    size_t n_capture_headers; /* at most DLV_SINK_CAPTURE_HEADERS_MAX */
    size_t capture_body;      /* response body bytes kept per attempt, default 1 KiB, 0 = none,
                                 at most DLV_SINK_CAPTURE_BODY_MAX */
} dlv_sink_config;

/* Zero c and set every default above (backoff: dlv_backoff_config_init). */
void dlv_sink_config_init(dlv_sink_config *c);

/* Free every owned member (templates through gotmpl_free) and re-init c to the defaults.
 * c itself is the caller's. NULL is fine. */
void dlv_sink_config_clear(dlv_sink_config *c);

/* Free an array of n configs made with dlv_sink_config_init, and the array (free()). */
void dlv_sink_configs_free(dlv_sink_config *v, size_t n);

/* 1 when name is a valid sink/store name: 1..DLV_SINK_NAME_MAX (63) bytes of
 * [A-Za-z0-9._-]. The one rule for sink names: config, engine and outboxctl call it. */
int dlv_sink_name_valid(const char *name);

/*
 * Same rule, with the reason.
 * @param[out] err  e.g. "sink name is 64 bytes, at most 63 are allowed" or "sink name
 *                  \"a b\" has ' ' at byte 2 (allowed: A-Z a-z 0-9 . _ -)"; may be NULL.
 * @return DLV_OK or DLV_ERR_INVALID.
 */
int dlv_sink_name_check(const char *name, char *err, size_t errlen);

/*
 * The one rule for sink URLs (config loader, --check-config and the engine call it):
 * scheme http or https in any case (as Go's net/url reads it: `HTTP://host/` is fine),
 * then "://", a non-empty host (userinfo and a numeric port allowed; IPv6 in brackets),
 * and no control characters (CR, LF, TAB, ...), spaces or DEL anywhere.
 * @param[out] err  what is wrong and where, e.g. "url has a control character at byte 17";
 *                  never the URL itself (its path or query may hold a token); may be NULL.
 * @return DLV_OK or DLV_ERR_INVALID.
 */
int dlv_url_check(const char *url, char *err, size_t errlen);

/*
 * The one rule for configured request headers: the name is an HTTP token (RFC 9110:
 * visible ASCII except separators "(),/:;<=>?@[\\]{}" and '"'), the value has no control
 * characters other than TAB (so no CR/LF header injection).
 * @param[out] err  e.g. "header name \"X Y\" is not a token" / "header X-Key: the value
 *                  has a control character at byte 5" (values are never echoed: they may
 *                  hold credentials); may be NULL.
 * @return DLV_OK or DLV_ERR_INVALID.
 */
int dlv_header_check(const char *name, const char *value, char *err, size_t errlen);

/*
 * The one rule for a sink's response capture settings (config loader and engine call
 * it): capture_headers are HTTP tokens, at most DLV_SINK_CAPTURE_HEADERS_MAX of them;
 * capture_body is at most DLV_SINK_CAPTURE_BODY_MAX.
 * @param[out] err  e.g. "capture_headers[2]: header name \"X Y\" is not a token"; may be NULL.
 * @return DLV_OK or DLV_ERR_INVALID.
 */
int dlv_capture_check(const dlv_sink_config *c, char *err, size_t errlen);
/* "both" | "flipt" | "standard" | "none" -> DLV_SIG_*; DLV_OK, or DLV_ERR_INVALID when
 * unknown. */
int dlv_signature_parse(const char *s, int *ret);
/* DLV_SIG_* -> its config word (static string). */
const char *dlv_signature_name(int sig);

/*
 * Set the template body (copied) and parse it into c->tmpl (replacing any previous one);
 * c is unchanged on failure.
 * @param[out] err  the parser's message on failure (no secrets involved).
 * @return DLV_OK, DLV_ERR_TEMPLATE on a template syntax error, DLV_ERR_NOMEM.
 */
int dlv_sink_config_set_body(dlv_sink_config *c, const char *body, size_t len, char *err,
                             size_t errlen);

#endif
