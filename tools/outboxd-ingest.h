/*
 * outboxd-ingest.h - the HTTP listener of outboxd (libmicrohttpd): event ingest, health,
 * metrics.
 *
 *   POST /v1/events   application/json (one event) or application/x-ndjson (many, all or
 *                     nothing); 202 only once the events are durable (obx_enqueue).
 *   GET  /healthz     200 {"status":"ok"}; 503 {"status":"shutting down"} while stopping.
 *   GET  /metrics     Prometheus text, produced by the caller's render callback.
 *
 * Two threading modes (`pool_threads`), both letting many requests share one group commit:
 * - 0: one thread per connection; each blocks in obx_enqueue() for its own request.
 * - N: N epoll threads serve every connection; a complete request is parked (its
 *   connection suspended). On an LMDB store it is queued straight to the store's
 *   group-commit writer (obx_enqueue_submit), which resumes the connection (MHD's
 *   inter-thread wake-up of the epoll thread) once the request is durable: no thread
 *   waits per request and no thread sits between the two. On a PostgreSQL store (no
 *   writer thread) OIN_COMMITTERS committer threads store everything parked with one
 *   obx_enqueue_batch() call each, then resume the connections.
 *   Fewer threads, about the same CPU per event; on a 2-CPU machine shared with the
 *   load generator and other work, a thread per connection acks more (README, Ingest
 *   throughput), so 0 stays the default.
 * Errors are JSON {"error":"..."}.
 *
 * Idempotency-Key (1..255 printable ASCII, else 400): stored in the same commit as the
 * request's events and remembered for idem_window_ms. A repeat with the same content type
 * and body answers the first 202 body again with `Idempotent-Replayed: true` and stores
 * nothing; with another body, 422. An NDJSON batch takes one key for the whole batch.
 * Keyed requests are entries of their own in the committers' obx_enqueue_batch (never
 * merged with others), so they still share group commits.
 *
 * Deadlines independent of activity (a client trickling one byte at a time keeps the idle
 * timeout from firing): a request's headers must be complete within header_timeout_ms of
 * its first byte, its body within body_timeout_ms of its headers. A connection past its
 * deadline is closed. A connection that sends nothing is left to the idle timeout.
 * A request whose body length is ambiguous (RFC 9112 sec. 6.3: Content-Length twice, or
 * with Transfer-Encoding, or a Transfer-Encoding other than chunked) is answered 400 and
 * its connection closed, so nothing sent after it on that connection is read as a request.
 */
#ifndef OUTBOXD_INGEST_H
#define OUTBOXD_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"
#include "outboxd-metrics.h"

/* At most this many sinks per event (the store's limit on routes). */
#define OIN_MAX_ROUTES 64

/*
 * Committer threads in pool mode on a store without a writer thread (PostgreSQL; each
 * holds one obx_enqueue_batch call at a time). Measured
 * on 2 CPUs with 64 connections: 1-2 give the largest batches and the best rate (4 and 8
 * split the parked requests into smaller commits); 2 keeps one commit forming while the
 * other is being synced when the delivery engine's commits compete.
 */
#define OIN_COMMITTERS 2

/* Defaults of the deadlines (oin_config fields left 0). */
#define OIN_HEADER_TIMEOUT_MS 10000u
#define OIN_BODY_TIMEOUT_MS   60000u
/* Default of idem_window_ms: how long an Idempotency-Key is remembered (24 h). */
#define OIN_IDEM_WINDOW_MS INT64_C(86400000)

/*
 * Route an event: fill sinks[] (capacity OIN_MAX_ROUTES) with the ids of the sinks whose
 * filter matches type:action and return how many (0 = unrouted). Called concurrently.
 */
typedef size_t (*oin_route_fn)(void *ud, const char *type, const char *action, uint32_t *sinks);

/* Append the /metrics page to b. Called concurrently. */
typedef void (*oin_metrics_fn)(void *ud, obuf *b);

/*
 * Verify a Flipt signature header (`header`, may be NULL when absent) over body[0..len).
 * Return 1 when valid. Must compare in constant time. Called concurrently.
 */
typedef int (*oin_verify_fn)(void *ud, const char *body, size_t len, const char *header);

typedef struct oin_config {
    const char *listen;        /* HOST:PORT ([v6]:PORT); port 0 picks a free one. Copied. */
    size_t max_body;           /* bytes; larger bodies get 413 */
    const char *const *tokens; /* accepted bearer tokens (n_tokens); borrowed until stop */
    size_t n_tokens;
    oin_verify_fn verify; /* non-NULL: require a valid X-Flipt-Webhook-Signature */
    void *verify_ud;
    unsigned max_connections;   /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned per_ip_limit;      /* MHD_OPTION_PER_IP_CONNECTION_LIMIT (0 = none) */
    unsigned timeout_s;         /* idle connection timeout, seconds */
    unsigned header_timeout_ms; /* headers complete within this of their first byte; 0 =
                                   OIN_HEADER_TIMEOUT_MS */
    unsigned body_timeout_ms;   /* body complete within this of its headers; 0 =
                                   OIN_BODY_TIMEOUT_MS */
    unsigned pool_threads;      /* 0 = one thread per connection; else a polling pool */
    obx_store *store;           /* borrowed; must outlive oin_stop() */
    oin_route_fn route;
    void *route_ud;
    oin_metrics_fn render_metrics;
    void *metrics_ud;
    omet *metrics;          /* counters to bump; borrowed */
    int64_t idem_window_ms; /* how long an Idempotency-Key is remembered; 0 = the default */
} oin_config;

typedef struct oin_server oin_server;

/*
 * Bind and start serving. On failure returns NULL with err (cap bytes) naming the
 * address and the reason.
 */
oin_server *oin_start(const oin_config *cfg, char *err, size_t cap);

/* The bound port (useful with port 0). */
uint16_t oin_port(const oin_server *s);

/*
 * Begin shutdown: stop accepting connections, answer new requests 503 with Retry-After
 * and Connection: close, /healthz 503. Requests already waiting on the store finish.
 */
void oin_begin_shutdown(oin_server *s);

/*
 * Wait (at most wait_ms) for requests waiting on the store to be answered, then close
 * every connection and free the server. NULL is a no-op.
 */
void oin_stop(oin_server *s, unsigned wait_ms);

/*
 * Bind and listen on `addr` (HOST:PORT, as listen_addr_parse; port 0 picks a free one):
 * the socket (close-on-exec), *is_v6 and the bound port; -1 with err filled. Also used by
 * the admin listener (outboxd-admin.h).
 */
int oin_bind_listen(const char *addr, int *is_v6, uint16_t *bound, char *err, size_t cap);

#endif
