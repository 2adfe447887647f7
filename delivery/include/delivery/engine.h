/*
 * engine.h - the delivery engine: turns the store's due deliveries into HTTP requests
 * and records what happened.
 *
 * Shape. One engine thread runs a libcurl multi handle (keep-alive connection reuse,
 * HTTP/2 over TLS where offered). It asks a claimer thread for due deliveries per sink
 * (obx_claim_due, oldest due first), keeps them in memory, and starts requests while the
 * sink's max_in_flight and the engine's global limit allow. Each finished attempt is
 * classified (2xx delivered; dead_letter_on statuses dead at once; everything else
 * retried with the sink's backoff until max_backoff_duration from the first attempt, then
 * dead) and handed to a committer thread that records results in batches (obx_record),
 * so sending never waits for a commit; a result is never dropped (when memory is short
 * the engine waits for the committer, and retryable store failures are retried). A crash
 * between a request and its commit re-sends the delivery after restart with the same
 * webhook-id (at-least-once).
 *
 * Rendering. Template bodies are rendered by render worker threads (one per template
 * sink, up to 4; one render at a time per sink, sinks served in turn), never on the
 * engine thread: a template that runs to the step cap holds up only its own sink, while
 * URL-mode sinks and other template sinks keep sending. A job counts against its sink's
 * max_in_flight while it is being rendered.
 *
 * Waking. The store's notify callback (set by dlv_engine_start) wakes the engine within
 * milliseconds of an enqueue; changes by another process (outboxctl replay) are noticed
 * by polling obx_next_due every poll_ms (default 500 ms).
 *
 * Ordered sinks (`ordered: true`): at most one delivery in flight, claimed only after
 * the previous result is committed. A retrying head blocks the sink until its next
 * attempt: the engine keeps the backoff time in memory and records the RETRY with the
 * head's previous due time, so that it stays first in the sink's due index (a restart
 * therefore retries the head at once). After a crash the store makes the in-doubt head
 * due at the restart, behind the others: the first claim of an ordered sink looks at up
 * to 1024 due deliveries, takes the in-doubt one first and releases the rest.
 *
 * Requests. POST to the sink url; body = the event body as received (URL mode) or the
 * sink's Go template rendered per attempt (template mode; output must be valid JSON or
 * the delivery is dead, never sent; the template must have been parsed into the config
 * by dlv_sink_config_set_body). Headers: Content-Type: application/json and User-Agent:
 * outbox/<version> (each unless a configured header sets it), webhook-id: the job's
 * webhook_id (obx_delivery_id; the same on every attempt), configured headers, and the
 * signatures (X-Flipt-Webhook-Signature; webhook-timestamp and webhook-signature).
 * No Expect: 100-continue; redirects are not followed; http and https only.
 *
 * Crash testing (builds with -Dtest_hooks=true only): the committer passes the store's
 * crash point "delivery-before-record" right before each obx_record holding an attempt's
 * result (not for batches of releases only), so a test can kill the process between send
 * and commit.
 *
 * Threads (named for top -H): dlv-send (the engine thread), dlv-claim, dlv-commit and
 * dlv-render. dlv_engine_new/start/stop/free are called from one controlling thread;
 * dlv_engine_kick, dlv_engine_metrics and dlv_engine_insecure_sinks from any thread.
 * The library never logs: errors are returned with a message, counters are exposed.
 */
#ifndef DELIVERY_ENGINE_H
#define DELIVERY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/error.h"
#include "delivery/sink.h"
#include "outbox/outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wall-clock milliseconds since the epoch (tests substitute their own). */
typedef int64_t (*dlv_clock_fn)(void *ud);
/* A uniformly distributed double in [0, 1) for backoff jitter. */
typedef double (*dlv_random_fn)(void *ud);

/* The engine's defaults: dlv_engine_options_init sets them and dlv_engine_new puts them in
 * place of zero fields, so callers never repeat them. */
#define DLV_ENGINE_MAX_IN_FLIGHT 512
#define DLV_ENGINE_POLL_MS       500
#define DLV_ENGINE_COMMIT_BATCH  4096
#define DLV_ENGINE_PREFETCH      256

/* An attempt that did not deliver, reported to dlv_engine_options.on_failed_attempt. Every
 * pointer is valid only during the call. */
typedef struct dlv_attempt_event {
    size_t sink; /* index of the sink in the array given to dlv_engine_new */
    const char *sink_name;
    uint64_t event_id;
    uint32_t attempt;        /* number of the attempt in the current budget, from 1 */
    int status;              /* HTTP status, 0 without a response */
    const char *error;       /* NULL, or why there was no usable response */
    int outcome;             /* OBX_OUTCOME_RETRY or OBX_OUTCOME_DEAD */
    int64_t next_attempt_ms; /* RETRY: when the next attempt is due */
} dlv_attempt_event;
/* Called on the engine thread: must be quick and must not call back into the engine. */
typedef void (*dlv_attempt_fn)(void *ud, const dlv_attempt_event *ev);

typedef struct dlv_engine_options {
    size_t max_in_flight_total; /* all sinks together (default 512; 0 = default) */
    unsigned poll_ms;           /* obx_next_due poll period (default 500 ms; 0 = default) */
    size_t commit_batch;        /* max results per obx_record (default 4096; 0 = default) */
    size_t prefetch;    /* per sink: claimed deliveries kept waiting behind the running ones,
                           at least max_in_flight (default 256; 0 = default). They are in
                           flight in the store: after a crash they show in doubt and are
                           sent again. */
    dlv_clock_fn clock; /* NULL = obx_now_ms */
    void *clock_ud;
    dlv_random_fn random; /* NULL = the engine's own splitmix64 generator (dlv_rng), seeded
                             from the clock and the engine's address */
    void *random_ud;
    dlv_attempt_fn on_failed_attempt; /* NULL = none; every attempt that was retried or
                                         dead-lettered (the library itself never logs) */
    void *on_failed_attempt_ud;
} dlv_engine_options;

/* Fill *o with the defaults above. */
void dlv_engine_options_init(dlv_engine_options *o);

typedef struct dlv_engine dlv_engine;

/*
 * Create an engine for `n` sinks (registered in the store by name through obx_sink_id).
 * Checks each sink with the library's rules (dlv_sink_name_check, dlv_url_check,
 * dlv_header_check, dlv_signing_secret_check), prepares signing keys and TLS options;
 * nothing is sent yet.
 * @param[in] store  an owner handle (OBX_OPEN_OWNER); borrowed: must outlive the engine.
 * @param[in] sinks  borrowed: the array and everything it points to must stay valid and
 *                   unchanged until dlv_engine_free().
 * @param[in] opts   NULL for defaults; copied (zero fields take the defaults).
 * @param[out] out   the engine, freed with dlv_engine_free(); NULL on failure.
 * @param[out] err   code, store code and a message naming the sink and the problem (may be
 *                   NULL).
 * @return DLV_OK; DLV_ERR_INVALID (a sink's config), DLV_ERR_STORE (registering a sink
 *         failed: err->store holds the obx_err), DLV_ERR_NOMEM, DLV_ERR_SYSTEM (libcurl).
 */
int dlv_engine_new(obx_store *store, const dlv_sink_config *sinks, size_t n,
                   const dlv_engine_options *opts, dlv_engine **out, dlv_error *err);

/* Start the engine's threads and install the store notify callback.
 * @return DLV_OK, or DLV_ERR_INVALID (already started) / DLV_ERR_SYSTEM (a thread could
 *         not be created) with err filled (may be NULL). */
int dlv_engine_start(dlv_engine *e, dlv_error *err);

/*
 * Graceful stop: stop claiming; let in-flight requests finish within grace_ms; abandon
 * the rest and RELEASE every delivery not finished (no attempt counted; a body being
 * rendered is waited for, then released, unsent); commit all
 * results; join the threads and clear the store notify callback. Returns when done.
 * Idempotent; a no-op when not started.
 */
void dlv_engine_stop(dlv_engine *e, unsigned grace_ms);

/* Stop (with grace 0) if running, then free. NULL is a no-op. */
void dlv_engine_free(dlv_engine *e);

/* Wake the engine to look for due deliveries now (e.g. after a replay by this process). */
void dlv_engine_kick(dlv_engine *e);

/*
 * Names of sinks configured with TLS verification switched off (tls insecure), so the
 * daemon can warn. Fills names[0..max) with borrowed pointers (valid for the engine's
 * life); returns how many sinks are insecure (may exceed max).
 */
size_t dlv_engine_insecure_sinks(const dlv_engine *e, const char **names, size_t max);

/* ---- metrics -------------------------------------------------------------------- */

#define DLV_HIST_BUCKETS 12
/* Upper bounds (seconds) of the histogram buckets; +Inf is implied after the last. */
extern const double dlv_attempt_duration_bounds[DLV_HIST_BUCKETS];
extern const double dlv_latency_bounds[DLV_HIST_BUCKETS];

typedef struct dlv_histogram {
    uint64_t buckets[DLV_HIST_BUCKETS + 1]; /* non-cumulative counts; last = +Inf */
    uint64_t count;
    double sum; /* seconds */
} dlv_histogram;

/* What an attempt ended with, for metrics: the status class of a response, or the kind of
 * transport failure (`connect` = refused/unreachable; `timeout` includes connect timeouts). */
typedef enum dlv_attempt_class {
    DLV_CLASS_2XX = 0,
    DLV_CLASS_3XX,
    DLV_CLASS_4XX,
    DLV_CLASS_5XX,
    DLV_CLASS_TIMEOUT,
    DLV_CLASS_CONNECT,
    DLV_CLASS_TLS,
    DLV_CLASS_DNS,
    DLV_CLASS_OTHER,
    DLV_CLASS_COUNT
} dlv_attempt_class;
/* "2xx", "3xx", "4xx", "5xx", "timeout", "connect", "tls", "dns", "other". */
const char *dlv_attempt_class_name(int c);

typedef struct dlv_sink_metrics {
    char name[OBX_SINK_NAME_MAX];
    uint32_t sink_id;
    uint64_t delivered; /* deliveries finished with a 2xx */
    uint64_t retried;   /* attempts that scheduled a retry */
    uint64_t dead;      /* deliveries that became dead letters */
    uint64_t released;  /* claimed deliveries put back unattempted (shutdown) */
    uint64_t attempts;  /* HTTP attempts finished (any outcome) */
    uint64_t attempts_by_class[DLV_CLASS_COUNT]; /* the same, by dlv_attempt_class */
    uint64_t render_errors;                      /* template failures (counted in dead too) */
    uint64_t in_flight;             /* gauge: requests running or bodies rendering now */
    uint64_t queued;                /* gauge: claimed, waiting for a slot */
    dlv_histogram attempt_duration; /* per attempt, seconds */
    dlv_histogram latency;          /* received -> delivered, seconds */
} dlv_sink_metrics;

typedef struct dlv_metrics {
    uint64_t in_flight;     /* all sinks */
    uint64_t commits;       /* obx_record calls that succeeded */
    uint64_t commit_errors; /* obx_record calls that failed (retried until they succeed) */
    uint64_t claim_errors;  /* obx_claim_due calls that failed */
    uint64_t results_committed;
    char last_error[256]; /* the last store error, "" if none */
    int last_store_error; /* its obx_err code, 0 if none */
    size_t n_sinks;
    dlv_sink_metrics *sinks; /* owned by the snapshot */
} dlv_metrics;

/* A consistent snapshot. Free with dlv_metrics_free(). DLV_OK or DLV_ERR_NOMEM. */
int dlv_engine_metrics(dlv_engine *e, dlv_metrics *out);
void dlv_metrics_free(dlv_metrics *m); /* frees m->sinks; m itself is the caller's */

#ifdef __cplusplus
}
#endif
#endif
