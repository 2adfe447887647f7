/*
 * outboxd-metrics.c - ingest counters and Prometheus text rendering (see outboxd-metrics.h).
 */
#include "outboxd-metrics.h"

#include "delivery/engine.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[OMET_REASON_COUNT] = {
    "invalid_json",           "invalid_event", "unauthorized", "too_large",
    "unsupported_media_type", "not_found",     "method",       "store_full",
    "shutting_down",          "store_error",   "bad_request",  "idempotency_conflict",
};

static const char *const phase_names[OMET_PHASE_COUNT] = {"headers", "body"};

/* Ack latency bucket bounds, seconds. */
static const double ack_bounds[OMET_ACK_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,  0.5,   1.0,  2.5};

struct omet {
    atomic_ullong stored;
    atomic_ullong unrouted;
    atomic_ullong replayed;
    atomic_ullong rejected[OMET_REASON_COUNT];
    atomic_ullong ack[OMET_ACK_BUCKETS + 1];
    atomic_ullong ack_sum_us;
    atomic_ullong deadline[OMET_PHASE_COUNT];
};

const char *omet_reason_name(omet_reason r)
{
    return (unsigned)r < OMET_REASON_COUNT ? reason_names[r] : "unknown";
}

omet *omet_new(void)
{
    omet *m = calloc(1, sizeof *m);
    return m;
}

void omet_free(omet *m)
{
    free(m);
}

void omet_stored(omet *m, size_t n)
{
    atomic_fetch_add_explicit(&m->stored, n, memory_order_relaxed);
}

void omet_unrouted(omet *m, size_t n)
{
    atomic_fetch_add_explicit(&m->unrouted, n, memory_order_relaxed);
}

void omet_replayed(omet *m, size_t n)
{
    atomic_fetch_add_explicit(&m->replayed, n, memory_order_relaxed);
}

void omet_rejected(omet *m, omet_reason r)
{
    if ((unsigned)r < OMET_REASON_COUNT)
        atomic_fetch_add_explicit(&m->rejected[r], 1, memory_order_relaxed);
}

void omet_ack_latency(omet *m, uint64_t usec)
{
    size_t i = 0;
    while (i < OMET_ACK_BUCKETS && (double)usec > ack_bounds[i] * 1e6)
        i++;
    atomic_fetch_add_explicit(&m->ack[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->ack_sum_us, usec, memory_order_relaxed);
}

void omet_deadline_closed(omet *m, omet_phase p)
{
    if ((unsigned)p < OMET_PHASE_COUNT)
        atomic_fetch_add_explicit(&m->deadline[p], 1, memory_order_relaxed);
}

void obuf_printf(obuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 8192;
        while (want < b->len + (size_t)n + 1)
            want *= 2;
        if (b->limit && want > b->limit) {
            want = b->limit;
            if (want < b->len + (size_t)n + 1) {
                b->failed = 1;
                return;
            }
        }
        char *np = realloc(b->p, want);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = want;
    }
}

void obuf_label(obuf *b, const char *v)
{
    for (const char *c = v; *c; c++) {
        if (*c == '\\')
            obuf_printf(b, "\\\\");
        else if (*c == '"')
            obuf_printf(b, "\\\"");
        else if (*c == '\n')
            obuf_printf(b, "\\n");
        else
            obuf_printf(b, "%c", *c);
    }
}

void obuf_free(obuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void omet_render_histogram(obuf *b, const char *name, const char *labels, const double *bounds,
                           const uint64_t *counts, size_t nb, double sum)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += counts[i];
        obuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                    (unsigned long long)cum);
    }
    cum += counts[nb];
    obuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    obuf_printf(b, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
                sum);
    obuf_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                labels[0] ? "}" : "", (unsigned long long)cum);
}

void omet_render_ingest(const omet *m, obuf *b)
{
    omet *mm = (omet *)m; /* atomics are read-only here */
    obuf_printf(b, "# HELP outbox_ingest_events_total Events acknowledged over HTTP: stored "
                   "durably, unrouted (matched no sink, not stored), or replayed (a repeated "
                   "Idempotency-Key: answered with the first ids, not stored again).\n"
                   "# TYPE outbox_ingest_events_total counter\n");
    obuf_printf(b, "outbox_ingest_events_total{outcome=\"stored\"} %llu\n",
                atomic_load(&mm->stored));
    obuf_printf(b, "outbox_ingest_events_total{outcome=\"unrouted\"} %llu\n",
                atomic_load(&mm->unrouted));
    obuf_printf(b, "outbox_ingest_events_total{outcome=\"replayed\"} %llu\n",
                atomic_load(&mm->replayed));
    obuf_printf(b, "# HELP outbox_ingest_rejected_total HTTP requests refused, by reason.\n"
                   "# TYPE outbox_ingest_rejected_total counter\n");
    for (int r = 0; r < OMET_REASON_COUNT; r++)
        obuf_printf(b, "outbox_ingest_rejected_total{reason=\"%s\"} %llu\n", reason_names[r],
                    atomic_load(&mm->rejected[r]));
    obuf_printf(b, "# HELP outbox_ingest_deadline_closed_total Connections closed because a "
                   "request's headers (ingest.header_timeout) or body (ingest.body_timeout) "
                   "did not arrive in time.\n"
                   "# TYPE outbox_ingest_deadline_closed_total counter\n");
    for (int p = 0; p < OMET_PHASE_COUNT; p++)
        obuf_printf(b, "outbox_ingest_deadline_closed_total{phase=\"%s\"} %llu\n", phase_names[p],
                    atomic_load(&mm->deadline[p]));
    uint64_t counts[OMET_ACK_BUCKETS + 1];
    for (int i = 0; i <= OMET_ACK_BUCKETS; i++)
        counts[i] = atomic_load(&mm->ack[i]);
    obuf_printf(b, "# HELP outbox_ingest_ack_seconds Time from a complete request to its "
                   "durable acknowledgement.\n"
                   "# TYPE outbox_ingest_ack_seconds histogram\n");
    omet_render_histogram(b, "outbox_ingest_ack_seconds", "", ack_bounds, counts, OMET_ACK_BUCKETS,
                          (double)atomic_load(&mm->ack_sum_us) / 1e6);
}

/* One gauge family over the store's sinks. */
static void sink_gauge(obuf *b, const obx_stats *st, const char *name, const char *help,
                       size_t offset)
{
    obuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (size_t i = 0; i < st->n_sinks; i++) {
        const obx_sink_stats *s = &st->sinks[i];
        uint64_t v;
        memcpy(&v, (const char *)s + offset, sizeof v);
        obuf_printf(b, "%s{sink=\"", name);
        obuf_label(b, s->name);
        obuf_printf(b, "\"} %llu\n", (unsigned long long)v);
    }
}

void omet_render_pool(obx_store *s, obuf *b)
{
    obx_pool p;
    if (!obx_pool_get(s, &p))
        return;
    obuf_printf(b,
                "# HELP outbox_store_pool_size Database connections the pool may hold.\n"
                "# TYPE outbox_store_pool_size gauge\noutbox_store_pool_size %u\n"
                "# HELP outbox_store_pool_connections Database connections of the pool, by "
                "state.\n# TYPE outbox_store_pool_connections gauge\n"
                "outbox_store_pool_connections{state=\"busy\"} %u\n"
                "outbox_store_pool_connections{state=\"idle\"} %u\n"
                "outbox_store_pool_connections{state=\"unopened\"} %u\n",
                p.size, p.busy, p.idle, p.unopened);
}

void omet_render_store(const obx_stats *st, int64_t now_ms, obuf *b)
{
    obuf_printf(b,
                "# HELP outbox_store_up Whether the store snapshot for this page succeeded.\n"
                "# TYPE outbox_store_up gauge\noutbox_store_up %d\n",
                st ? 1 : 0);
    if (!st)
        return;
    sink_gauge(b, st, "outbox_pending", "Deliveries waiting for an attempt, per sink.",
               offsetof(obx_sink_stats, pending));
    sink_gauge(b, st, "outbox_inflight", "Deliveries being attempted (in doubt included).",
               offsetof(obx_sink_stats, inflight));
    sink_gauge(b, st, "outbox_in_doubt",
               "Deliveries whose last attempt's outcome is unknown (crash); re-sent.",
               offsetof(obx_sink_stats, in_doubt));
    sink_gauge(b, st, "outbox_dead", "Dead letters, per sink.", offsetof(obx_sink_stats, dead));
    sink_gauge(b, st, "outbox_delivered", "Delivered deliveries still retained, per sink.",
               offsetof(obx_sink_stats, delivered));
    obuf_printf(b, "# HELP outbox_oldest_pending_age_seconds Age of the oldest pending event, "
                   "per sink (0 when none).\n"
                   "# TYPE outbox_oldest_pending_age_seconds gauge\n");
    for (size_t i = 0; i < st->n_sinks; i++) {
        const obx_sink_stats *s = &st->sinks[i];
        double age = 0;
        if (s->oldest_pending_ms > 0 && now_ms > s->oldest_pending_ms)
            age = (double)(now_ms - s->oldest_pending_ms) / 1000.0;
        obuf_printf(b, "outbox_oldest_pending_age_seconds{sink=\"");
        obuf_label(b, s->name);
        obuf_printf(b, "\"} %.3f\n", age);
    }
    obuf_printf(b,
                "# HELP outbox_store_events Events stored.\n"
                "# TYPE outbox_store_events gauge\noutbox_store_events %llu\n"
                "# HELP outbox_store_enqueued_total Events ever acknowledged by the store.\n"
                "# TYPE outbox_store_enqueued_total counter\noutbox_store_enqueued_total %llu\n"
                "# HELP outbox_store_used_bytes Bytes of store pages in use.\n"
                "# TYPE outbox_store_used_bytes gauge\noutbox_store_used_bytes %llu\n"
                "# HELP outbox_store_file_bytes Size of the store's data file.\n"
                "# TYPE outbox_store_file_bytes gauge\noutbox_store_file_bytes %llu\n"
                "# HELP outbox_store_max_bytes Store cap (outbox.max_size).\n"
                "# TYPE outbox_store_max_bytes gauge\noutbox_store_max_bytes %llu\n"
                "# HELP outbox_store_high_water_bytes Used bytes at which ingest answers 503.\n"
                "# TYPE outbox_store_high_water_bytes gauge\noutbox_store_high_water_bytes %llu\n",
                (unsigned long long)st->events, (unsigned long long)st->enqueued,
                (unsigned long long)st->used_bytes, (unsigned long long)st->file_bytes,
                (unsigned long long)st->max_size, (unsigned long long)st->high_water);
    double bounds[OBX_BATCH_BUCKETS];
    for (int i = 0; i < OBX_BATCH_BUCKETS; i++)
        bounds[i] = (double)(1u << i);
    obuf_printf(b, "# HELP outbox_store_commit_batch_size Operations (enqueues, claims, results, "
                   "replays) per group commit of the store writer.\n"
                   "# TYPE outbox_store_commit_batch_size histogram\n");
    omet_render_histogram(b, "outbox_store_commit_batch_size", "", bounds, st->commit_batches,
                          OBX_BATCH_BUCKETS, (double)st->commit_ops);
    double secs[OBX_COMMIT_BUCKETS];
    for (int i = 0; i < OBX_COMMIT_BUCKETS; i++)
        secs[i] = obx_commit_bounds_us[i] / 1e6;
    obuf_printf(b, "# HELP outbox_store_commit_seconds Duration of the store writer's commits "
                   "(page writes and syncs): the disk latency every acknowledgement waits for.\n"
                   "# TYPE outbox_store_commit_seconds histogram\n");
    omet_render_histogram(b, "outbox_store_commit_seconds", "", secs, st->commit_us,
                          OBX_COMMIT_BUCKETS, (double)st->commit_us_sum / 1e6);
}

void omet_render_sink_health(obuf *b, const struct dlv_metrics *m)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"outbox_sink_up", "gauge",
         "1 when the sink is up, 0 while its circuit breaker holds it down (probing)."},
        {"outbox_sink_paused", "gauge", "1 while an operator has paused the sink."},
        {"outbox_sink_state_changes_total", "counter",
         "Stored health transitions of the sink (down, up, pause, resume), since the store was "
         "created."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                    fam[f].type);
        for (size_t i = 0; i < m->n_sinks; i++) {
            const dlv_sink_metrics *s = &m->sinks[i];
            unsigned long long v = f == 0   ? (unsigned long long)(s->up != 0)
                                   : f == 1 ? (unsigned long long)(s->paused != 0)
                                            : (unsigned long long)s->state_changes;
            obuf_printf(b, "%s{sink=\"", fam[f].name);
            obuf_label(b, s->name);
            obuf_printf(b, "\"} %llu\n", v);
        }
    }
}
