/*
 * outboxd-metrics.h - the daemon's own counters and the Prometheus text page.
 *
 * Ingest counters are lock-free atomics bumped by the HTTP threads. The /metrics page is
 * assembled on request from these counters, one obx_stats_get() snapshot (counters kept
 * by the store: no scans) and the delivery engine's metrics snapshot. Nothing secret is
 * ever rendered: sink names only, never URLs, tokens or secrets.
 */
#ifndef OUTBOXD_METRICS_H
#define OUTBOXD_METRICS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

/* Why a request was refused (label `reason` of outbox_ingest_rejected_total). */
typedef enum omet_reason {
    OMET_INVALID_JSON = 0,
    OMET_INVALID_EVENT,
    OMET_UNAUTHORIZED,
    OMET_TOO_LARGE,
    OMET_MEDIA_TYPE,
    OMET_NOT_FOUND,
    OMET_METHOD,
    OMET_STORE_FULL,
    OMET_SHUTTING_DOWN,
    OMET_STORE_ERROR,
    OMET_BAD_REQUEST,          /* ambiguous framing (RFC 9112 sec. 6.3), a bad Idempotency-Key */
    OMET_IDEMPOTENCY_CONFLICT, /* an Idempotency-Key reused with another body (422) */
    OMET_REASON_COUNT
} omet_reason;

/* Label value for a reason ("invalid_json", ...). */
const char *omet_reason_name(omet_reason r);

#define OMET_ACK_BUCKETS 12

typedef struct omet omet;

/* Allocate zeroed counters; free with omet_free (NULL ok). NULL on OOM. */
omet *omet_new(void);
void omet_free(omet *m);

/* Count n events stored (acknowledged durable) / acknowledged but matching no sink. */
void omet_stored(omet *m, size_t n);
void omet_unrouted(omet *m, size_t n);
/* Events answered again for a repeated Idempotency-Key (not stored again). */
void omet_replayed(omet *m, size_t n);
/* Count one refused request. */
void omet_rejected(omet *m, omet_reason r);
/* Record the time from request complete to acknowledgement (durable) in microseconds. */
void omet_ack_latency(omet *m, uint64_t usec);

/* Which deadline closed a connection (label `phase` of outbox_ingest_deadline_closed_total). */
typedef enum omet_phase { OMET_PHASE_HEADERS = 0, OMET_PHASE_BODY, OMET_PHASE_COUNT } omet_phase;
/* Count one connection closed because its request's headers or body were too slow. */
void omet_deadline_closed(omet *m, omet_phase p);

/* A growable text buffer with a size cap. */
typedef struct obuf {
    char *p;
    size_t len, cap, limit;
    int failed; /* allocation failed or limit reached: content truncated */
} obuf;

void obuf_printf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a Prometheus label value, escaped (\\, \", \n). */
void obuf_label(obuf *b, const char *v);
/* Free the buffer's memory (the struct itself is the caller's). */
void obuf_free(obuf *b);

/*
 * Append the daemon's sections: ingest counters and ack histogram, then the store
 * snapshot `st` (may be NULL when the stats call failed; `now_ms` gives ages).
 */
void omet_render_ingest(const omet *m, obuf *b);
/*
 * Append outbox_build_info{version} and the standard process_* families (CPU seconds,
 * resident and virtual memory, open and max fds, start time), read from /proc/self; a
 * value that cannot be read is left out.
 */
void omet_render_process(obuf *b);
void omet_render_store(const obx_stats *st, int64_t now_ms, obuf *b);
/* outbox_store_pool_connections{state} of a database store's pool (obx_pool_get); nothing
 * for an LMDB store. */
void omet_render_pool(obx_store *s, obuf *b);

struct dlv_metrics; /* delivery/engine.h */
/* Render outbox_sink_up{sink} (1 up, 0 while the breaker holds it down; a paused sink is
 * up), outbox_sink_paused{sink} and outbox_sink_state_changes_total{sink}. */
void omet_render_sink_health(obuf *b, const struct dlv_metrics *m);

/*
 * Append one histogram family sample set: `name{labels...,le="..."}`.
 * `labels` is a pre-rendered label list without braces (e.g. `sink="a"`), or "".
 * bounds[i] in seconds, counts[i] per bucket (not cumulative), counts[nb] = +Inf bucket.
 */
void omet_render_histogram(obuf *b, const char *name, const char *labels, const double *bounds,
                           const uint64_t *counts, size_t nb, double sum);

#endif
