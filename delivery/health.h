/*
 * health.h - private: a sink's health as the engine thread sees it (health.c): the
 * circuit breaker (up/down, probes), the operator's pause, and the time held, which keeps
 * delivery budgets from being spent while the sink is down or paused.
 *
 * Budgets. The store keeps one number per sink, held_ms (obx_sink_held_ms: the time the
 * sink has been down or paused so far). A delivery's stored first_attempt_ms/deadline_ms
 * are on the sink's "working clock": wall time minus held_ms at the moment. Before an
 * attempt is classified they are moved to wall time by adding held_ms now
 * (dlv__health_job_to_wall), and the decision is moved back (dlv__health_decision_to_stored).
 * So an outage or a pause moves every deadline of the sink later by its length, with
 * nothing rewritten at the transition (O(1) however many deliveries are held), and a
 * restart keeps it, since held_ms is stored. Chosen over shifting deadlines at the
 * transition, which would rewrite every held record in paged transactions and need a
 * crash-safe resume point.
 *
 * All functions run on the engine thread, except where noted.
 */
#ifndef DELIVERY_HEALTH_H
#define DELIVERY_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "engine-internal.h"

typedef struct dlv__health {
    const dlv_sink_config *sink;   /* borrowed */
    const dlv_breaker_config *cfg; /* &sink->breaker */
    const dlv_backoff_config *backoff;
    obx_sink_state st; /* the stored state, as last read or written */
    uint64_t *fails;   /* event ids of the failures in a row (distinct), cfg->failures */
    size_t n_fails;
    char last_error[OBX_SINK_WHY_MAX];
    int64_t probe_at;    /* down: earliest next probe */
    uint32_t probes;     /* down: probes so far in this outage (backoff step) */
    uint64_t last_probe; /* event id of the last probe, 0 when none */
    int probing;         /* a probe is claimed or in flight */
} dlv__health;

/* Transitions dlv__health_attempt reports. */
enum { DLV__HEALTH_SAME = 0, DLV__HEALTH_DOWN, DLV__HEALTH_UP };

/* DLV_OK or DLV_ERR_NOMEM. */
int dlv__health_init(dlv__health *h, const dlv_sink_config *c);
void dlv__health_clear(dlv__health *h);

/* Take the stored state (at start, and each poll: pause/resume by outboxctl). Returns 1
 * when paused or resumed since the last call. */
int dlv__health_take(dlv__health *h, const obx_sink_state *st, int64_t now_ms);

/* 1 while the sink is down or paused. */
int dlv__health_held(const dlv__health *h);

/* Move a claimed job's budget to wall time (a copy in *out) / a decision back. */
void dlv__health_job_to_wall(const dlv__health *h, const obx_job *j, int64_t now_ms, obx_job *out);
void dlv__health_decision_to_stored(const dlv__health *h, int64_t now_ms, dlv__decision *d);

/*
 * Count a finished attempt of event `ev` with decision d (o: its outcome). Returns the
 * transition to store: DLV__HEALTH_DOWN (why/last_error filled), DLV__HEALTH_UP (why), or
 * DLV__HEALTH_SAME. A probe's failure schedules the next probe.
 */
int dlv__health_attempt(dlv__health *h, uint64_t ev, int was_probe, const dlv__decision *d,
                        const dlv__outcome *o, int64_t now_ms, char *why, size_t whylen);

/* Down: 1 when a probe may be claimed at now_ms. */
int dlv__health_probe_due(const dlv__health *h, int64_t now_ms);

/* Down past breaker.give_up_after at now_ms: write the dead-letter reason, return 1. */
int dlv__health_give_up(const dlv__health *h, int64_t now_ms, char *reason, size_t len);

#endif
