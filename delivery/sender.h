/*
 * sender.h - private: the HTTP sender, one libcurl multi handle and its transfers.
 *
 * The sender knows nothing of the store or of backoff: it starts POSTs, waits for
 * activity, and reports each finished transfer as status / short error text / duration
 * / Retry-After, plus the response headers and the head of the response body kept for
 * forensics. All calls except dlv__sender_wakeup() belong to the engine thread.
 */
#ifndef DELIVERY_SENDER_H
#define DELIVERY_SENDER_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

/* Per-sink transport settings (borrowed strings; NULL = unset). */
typedef struct dlv__transport {
    const char *url;
    long timeout_ms;         /* whole request */
    long connect_timeout_ms; /* TCP + TLS handshake */
    const char *ca_file;
    const char *client_cert;
    const char *client_key;
    int insecure;                       /* no peer/host verification */
    size_t capture_body;                /* response body bytes to keep (0 = none) */
    const char *const *capture_headers; /* kept besides Content-Type, Retry-After, Location */
    size_t n_capture_headers;
    size_t slot; /* which of the sender's handle pools serves it (unique per transport) */
} dlv__transport;

/* One transfer. The caller owns it and keeps body/headers alive until it finishes. */
typedef struct dlv__xfer {
    CURL *easy;
    void *ud; /* the caller's */
    long timeout_ms;
    long connect_timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    const dlv__transport *t; /* borrowed: the sink's, for the capture settings */
    unsigned char *cap;      /* owned: the first bytes of the response body */
    size_t cap_len;
    uint64_t body_size; /* bytes of response body received */
} dlv__xfer;

/* What one finished attempt produced. */
typedef struct dlv__outcome {
    int status;           /* HTTP status, 0 when no response */
    int transport_error;  /* 1 when no usable response (error holds why) */
    char error[192];      /* short text, "" on a response */
    char retry_after[64]; /* raw Retry-After value, "" when absent */
    uint32_t duration_ms; /* total time of the transfer */
    int cls;              /* dlv_attempt_class (engine.h) */
    /* the response kept for forensics; owned, freed by dlv__outcome_clear */
    obx_header *headers; /* n_headers entries, names as received */
    size_t n_headers;
    unsigned char *body; /* the first body_len bytes of the body, NULL when none */
    size_t body_len;
    uint64_t body_size; /* bytes the whole body had */
} dlv__outcome;

/* Free what an outcome owns (the capture) and zero those fields. */
void dlv__outcome_clear(dlv__outcome *o);

/* Idle easy handles of one transport, its settings already in place. */
typedef struct dlv__pool {
    CURL **h;
    size_t n, cap;
    CURLU *url; /* the transport's URL, parsed once; every handle of the pool points at it */
} dlv__pool;

typedef struct dlv__sender {
    CURLM *multi;
    dlv__pool *pools; /* by dlv__transport.slot, grown on demand */
    size_t n_pools;
    size_t running;
    int proxy_env; /* a proxy is named in the environment: libcurl looks it up per transfer */
} dlv__sender;

/* DLV_OK, or DLV_ERR_SYSTEM with a message (libcurl could not be set up). */
int dlv__sender_init(dlv__sender *s, long max_connects, char *err, size_t errlen);
void dlv__sender_cleanup(dlv__sender *s);

/*
 * Start POST `body` with `headers` (borrowed until done) on transfer x.
 * DLV_OK, or DLV_ERR_SYSTEM with a message (x is left unused).
 */
int dlv__sender_start(dlv__sender *s, dlv__xfer *x, const dlv__transport *t, const void *body,
                      size_t body_len, struct curl_slist *headers, char *err, size_t errlen);

/* Wait up to timeout_ms for activity (or a wakeup) and drive the transfers. */
int dlv__sender_run(dlv__sender *s, int timeout_ms);

/* Next finished transfer (and its outcome), or NULL. The easy handle is recycled. */
dlv__xfer *dlv__sender_done(dlv__sender *s, dlv__outcome *out);

/* Abandon a running transfer (no outcome is produced). */
void dlv__sender_abort(dlv__sender *s, dlv__xfer *x);

/* Make dlv__sender_run return early; any thread. */
void dlv__sender_wakeup(dlv__sender *s);

#endif
