/*
 * outboxd-attemptlog.c - rate-limited warn lines for failed delivery attempts, per sink
 * (see outboxd-attemptlog.h).
 */
#include "outboxd-attemptlog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "outboxd-log.h"

typedef struct oal_sink {
    int64_t last_ms;     /* monotonic time of the sink's last line, 0 = none yet */
    uint64_t suppressed; /* lines held back since then */
    char name[OBX_SINK_NAME_MAX];
} oal_sink;

struct oal {
    pthread_mutex_t mu;
    unsigned interval_ms;
    size_t n;
    oal_sink *sinks;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

oal *oal_new(size_t n_sinks, unsigned interval_ms)
{
    oal *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->sinks = calloc(n_sinks ? n_sinks : 1, sizeof *l->sinks);
    if (!l->sinks) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->n = n_sinks;
    l->interval_ms = interval_ms;
    return l;
}

void oal_free(oal *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->sinks);
    free(l);
}

/* RFC 3339 UTC with milliseconds. */
static void time_fmt(int64_t ms, char *buf, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", base, (int)(ms % 1000));
}

void oal_failed(void *ud, const dlv_attempt_event *ev)
{
    oal *l = ud;
    if (ev->sink >= l->n)
        return;
    int64_t now = mono_ms();
    pthread_mutex_lock(&l->mu);
    oal_sink *s = &l->sinks[ev->sink];
    if (s->last_ms && now - s->last_ms < (int64_t)l->interval_ms) {
        s->suppressed++;
        pthread_mutex_unlock(&l->mu);
        return;
    }
    uint64_t suppressed = s->suppressed;
    s->suppressed = 0;
    s->last_ms = now;
    snprintf(s->name, sizeof s->name, "%s", ev->sink_name);
    pthread_mutex_unlock(&l->mu);

    char next[40] = "";
    if (ev->outcome == OBX_OUTCOME_RETRY)
        time_fmt(ev->next_attempt_ms, next, sizeof next);
    const char *outcome = ev->outcome == OBX_OUTCOME_RETRY ? "retry" : "dead";
    if (ev->status)
        olog(OLOG_WARN, "delivery attempt failed", OLOG_S("sink", ev->sink_name),
             OLOG_I("event", (long long)ev->event_id), OLOG_I("attempt", ev->attempt),
             OLOG_I("status", ev->status), OLOG_S("outcome", outcome), OLOG_S("next_attempt", next),
             OLOG_I("suppressed", (long long)suppressed));
    else
        olog(OLOG_WARN, "delivery attempt failed", OLOG_S("sink", ev->sink_name),
             OLOG_I("event", (long long)ev->event_id), OLOG_I("attempt", ev->attempt),
             OLOG_S("error", ev->error ? ev->error : "no response"), OLOG_S("outcome", outcome),
             OLOG_S("next_attempt", next), OLOG_I("suppressed", (long long)suppressed));
}

void oal_flush(oal *l)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < l->n; i++) {
        pthread_mutex_lock(&l->mu);
        oal_sink *s = &l->sinks[i];
        uint64_t n = 0;
        if (s->suppressed && now - s->last_ms >= (int64_t)l->interval_ms) {
            n = s->suppressed;
            s->suppressed = 0;
            s->last_ms = now;
        }
        char name[OBX_SINK_NAME_MAX];
        snprintf(name, sizeof name, "%s", s->name);
        pthread_mutex_unlock(&l->mu);
        if (n)
            olog(OLOG_WARN, "delivery attempt failures suppressed", OLOG_S("sink", name),
                 OLOG_I("suppressed", (long long)n));
    }
}
