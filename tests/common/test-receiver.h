/*
 * test-receiver.h - a scriptable HTTP receiver on 127.0.0.1 for integration tests
 * (libmicrohttpd). It records every request (method, path, headers, body, arrival time,
 * connection serial) and answers per a script: a status sequence, Retry-After, Location,
 * a delay, a hang, or closing/resetting the connection instead of answering. It counts
 * concurrent requests (and their maximum) so tests can check concurrency limits.
 *
 * Threading: by default one thread per connection, so delays and hangs of one request
 * never hold another. With `threads` > 0 a pool of that many poll() threads serves all
 * connections (faster, for benchmarks; delays then hold a pool thread). epoll mode is not
 * used: with libmicrohttpd 0.9.75 it left some answers unsent under load.
 *
 * Ownership: trx_start() returns a receiver freed by trx_stop(). Recorded requests are
 * owned by the receiver; pointers from trx_get() stay valid until trx_stop() (records
 * are never changed once published). Scripts and strings passed in are copied.
 */
#ifndef OUTBOX_TEST_RECEIVER_H
#define OUTBOX_TEST_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

typedef enum trx_action {
    TRX_RESPOND = 0, /* answer with status (after delay_ms) */
    TRX_HANG = 1,    /* never answer: hold the request until hang_ms (0 = until stop), close */
    TRX_CLOSE = 2,   /* close the connection without an answer (after delay_ms) */
    TRX_RESET = 3,   /* reset the connection (RST via SO_LINGER 0) without an answer */
} trx_action;

/* One answer. Strings are copied by trx_script(); a handler's strings must be static. */
typedef struct trx_step {
    int status;              /* 0 = 200 */
    const char *retry_after; /* Retry-After value or NULL */
    const char *location;    /* Location value or NULL */
    const char *body;        /* response body or NULL (empty) */
    unsigned delay_ms;       /* wait before answering/closing */
    unsigned hang_ms;        /* TRX_HANG: how long (0 = until trx_stop) */
    trx_action action;
} trx_step;

typedef struct trx_header {
    char *name;
    char *value;
} trx_header;

typedef struct trx_request {
    size_t index; /* arrival order, from 0 */
    char *method;
    char *path;
    trx_header *headers;
    size_t n_headers;
    unsigned char *body; /* NUL-terminated for convenience; body_len excludes it */
    size_t body_len;
    int64_t arrived_ms;      /* CLOCK_REALTIME ms when the headers arrived */
    int64_t arrived_mono_ms; /* CLOCK_MONOTONIC ms, for intervals */
    unsigned connection;     /* serial number of the TCP connection (keep-alive visible) */
    int answered;            /* status answered, 0 for hang/close/reset */
} trx_request;

/* Decides the answer for a request whose body has fully arrived (overrides the script). */
typedef trx_step (*trx_handler_fn)(void *ud, const trx_request *req);

typedef struct trx_options {
    unsigned threads;         /* 0 = a thread per connection; n = n poll() threads */
    int no_record;            /* only count requests (benchmarks) */
    const char *tls_cert_pem; /* serve HTTPS with this certificate and key (PEM text) */
    const char *tls_key_pem;
} trx_options;

typedef struct trx trx;

/* Start on 127.0.0.1 with an ephemeral port. opts may be NULL. 0 on success. */
int trx_start(const trx_options *opts, trx **out, char *err, size_t errlen);

/* Stop (hung requests are released first) and free everything. NULL is a no-op. */
void trx_stop(trx *r);

uint16_t trx_port(const trx *r);

/* "http://127.0.0.1:<port><path>" (or https) in a static-per-receiver buffer. */
const char *trx_url(trx *r, const char *path);

/*
 * Replace the script: request k (counted from this call) gets steps[k]; once the steps
 * are used up the last step repeats (or, with n == 0, every request gets 200).
 */
void trx_script(trx *r, const trx_step *steps, size_t n);

/* Set (or clear with NULL) a handler that decides every answer instead of the script. */
void trx_set_handler(trx *r, trx_handler_fn fn, void *ud);

/* Requests fully received so far (answered or not). */
size_t trx_count(trx *r);

/* The i-th recorded request, or NULL. Valid until trx_stop(). */
const trx_request *trx_get(trx *r, size_t i);

/* Wait until at least n requests arrived; 1 if so, 0 on timeout. */
int trx_wait(trx *r, size_t n, unsigned timeout_ms);

/* Highest number of requests in progress at once (headers seen, not yet completed). */
unsigned trx_max_concurrent(trx *r);

/* TCP connections accepted so far. */
unsigned trx_connections(trx *r);

/* Reset counters and forget recorded requests' order for max_concurrent only. */
void trx_reset_max_concurrent(trx *r);

/* First value of header `name` (case-insensitive), or NULL. */
const char *trx_header_get(const trx_request *req, const char *name);

/* Number of headers named `name` (case-insensitive). */
size_t trx_header_count(const trx_request *req, const char *name);

/* A TCP port on 127.0.0.1 where nothing listens (bound then closed), 0 on failure. */
uint16_t trx_free_port(void);

/* CLOCK_MONOTONIC in ms. */
int64_t trx_mono_ms(void);

#endif
