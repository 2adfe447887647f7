/*
 * health.c - a sink's circuit breaker, pause and held-time budget arithmetic, as the
 * engine thread uses them (see health.h for the budget scheme and why).
 *
 * Counting: a success clears the run of failures; a failed attempt (retried or dead of
 * its budget: transport errors, timeouts, 5xx, 429, other retried statuses) adds its
 * event id to the run unless it is already there (retries of one event are not an
 * outage; but an ordered sink, which attempts only its head, counts each attempt: its
 * head failing is its outage); a dead_letter_on status counts neither way (the receiver
 * answered). When the
 * run holds breaker.failures different events, the sink is down. While down, one probe at
 * a time: the n-th failed probe waits dlv_backoff_interval(n) (the sink's backoff without
 * jitter, capped at max_interval) before the next one. Any success while down (a probe, or
 * a request that was already running when the breaker opened) brings it up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/duration.h"
#include "health.h"

int dlv__health_init(dlv__health *h, const dlv_sink_config *c)
{
    memset(h, 0, sizeof *h);
    h->sink = c;
    h->cfg = &c->breaker;
    h->backoff = &c->backoff;
    size_t n = c->breaker.failures ? c->breaker.failures : 1;
    h->fails = calloc(n, sizeof *h->fails);
    return h->fails ? DLV_OK : DLV_ERR_NOMEM;
}

void dlv__health_clear(dlv__health *h)
{
    free(h->fails);
    h->fails = NULL;
}

int dlv__health_take(dlv__health *h, const obx_sink_state *st, int64_t now_ms)
{
    int pause_changed = !h->st.paused != !st->paused;
    if (st->down && !h->st.down) { /* down at start (stored), or set by another process */
        h->probe_at = now_ms;
        h->probes = 0;
        h->probing = 0;
    }
    h->st = *st;
    return pause_changed;
}

int dlv__health_held(const dlv__health *h)
{
    return h->st.down || h->st.paused;
}

void dlv__health_job_to_wall(const dlv__health *h, const obx_job *j, int64_t now_ms, obx_job *out)
{
    *out = *j;
    int64_t held = obx_sink_held_ms(&h->st, now_ms);
    if (out->first_attempt_ms)
        out->first_attempt_ms += held;
    if (out->deadline_ms)
        out->deadline_ms += held;
}

void dlv__health_decision_to_stored(const dlv__health *h, int64_t now_ms, dlv__decision *d)
{
    int64_t held = obx_sink_held_ms(&h->st, now_ms);
    if (d->first_attempt_ms)
        d->first_attempt_ms -= held;
    if (d->deadline_ms)
        d->deadline_ms -= held;
}

/* "status 503" or the transport error. */
static void describe(const dlv__outcome *o, char *buf, size_t len)
{
    if (o->transport_error || !o->status)
        snprintf(buf, len, "%s", o->error[0] ? o->error : "no response");
    else
        snprintf(buf, len, "status %d", o->status);
}

static int counts_as_failure(const dlv__health *h, const dlv__decision *d, const dlv__outcome *o)
{
    if (d->outcome == OBX_OUTCOME_DELIVERED)
        return 0;
    /* a dead_letter_on status: the receiver answered, it refuses this one event */
    return o->transport_error || !o->status ||
           dlv_classify_status(o->status, h->sink->dead_letter_on, h->sink->n_dead_letter_on) !=
               DLV_OUTCOME_DEAD;
}

int dlv__health_attempt(dlv__health *h, uint64_t ev, int was_probe, const dlv__decision *d,
                        const dlv__outcome *o, int64_t now_ms, char *why, size_t whylen)
{
    if (was_probe)
        h->probing = 0;
    if (d->outcome == OBX_OUTCOME_DELIVERED) {
        h->n_fails = 0;
        if (!h->st.down)
            return DLV__HEALTH_SAME;
        h->st.down = 0;
        snprintf(why, whylen, "%s of event %" PRIu64 " delivered", was_probe ? "probe" : "attempt",
                 ev);
        return DLV__HEALTH_UP;
    }
    if (!counts_as_failure(h, d, o))
        return DLV__HEALTH_SAME;
    describe(o, h->last_error, sizeof h->last_error);
    if (h->st.down) {
        if (was_probe) {
            h->last_probe = ev;
            h->probes++;
            h->probe_at = now_ms + dlv_backoff_interval(h->backoff, h->probes);
        }
        return DLV__HEALTH_SAME;
    }
    if (!h->cfg->enabled)
        return DLV__HEALTH_SAME;
    size_t k = h->sink->ordered ? h->n_fails : 0; /* ordered: each attempt counts */
    while (k < h->n_fails && h->fails[k] != ev)
        k++;
    if (k == h->n_fails && h->n_fails < h->cfg->failures)
        h->fails[h->n_fails++] = ev;
    if (h->n_fails < h->cfg->failures)
        return DLV__HEALTH_SAME;
    snprintf(why, whylen, "%zu %s failed in a row (breaker.failures %u)", h->n_fails,
             h->sink->ordered ? "attempts" : "different deliveries", h->cfg->failures);
    h->n_fails = 0;
    h->probes = 0;
    h->probing = 0;
    h->last_probe = 0;
    h->probe_at = now_ms + dlv_backoff_interval(h->backoff, 1);
    h->st.down = 1; /* so that taking the stored state keeps this probe time */
    return DLV__HEALTH_DOWN;
}

int dlv__health_probe_due(const dlv__health *h, int64_t now_ms)
{
    return h->st.down && !h->st.paused && !h->probing && now_ms >= h->probe_at;
}

int dlv__health_give_up(const dlv__health *h, int64_t now_ms, char *reason, size_t len)
{
    int64_t lim = h->cfg->give_up_after_ms;
    if (!h->st.down || lim <= 0 || now_ms - h->st.down_since_ms < lim)
        return 0;
    char down[64], after[64];
    dlv_duration_format((now_ms - h->st.down_since_ms) * 1000000, down, sizeof down);
    dlv_duration_format(lim * 1000000, after, sizeof after);
    snprintf(reason, len,
             "sink down for %s, longer than breaker.give_up_after (%s); last error: %.120s", down,
             after, h->last_error[0] ? h->last_error : h->st.last_error);
    return 1;
}
