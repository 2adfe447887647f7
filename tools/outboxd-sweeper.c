/*
 * outboxd-sweeper.c - retention sweeper thread (see outboxd-sweeper.h).
 *
 * Each tick calls obx_retention_sweep() with a bounded batch until a call removes less
 * than the batch or the per-tick budget is spent; the store reads the `done` index from
 * its front, so a tick costs O(removed), never a scan. Each tick also forgets the
 * idempotency keys whose window has passed (obx_idem_sweep, read from the front of their
 * expiry index the same way).
 */
#include "outboxd-sweeper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outboxd-log.h"

struct osw_sweeper {
    obx_store *store;
    int64_t retention_ms, interval_ms;
    size_t batch, max_per_tick;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    atomic_ullong removed;
};

typedef int (*sweep_fn)(obx_store *s, int64_t bound, size_t max, size_t *removed, obx_error *err);

/* Call fn(bound) in batches until one removes less than a batch, the per-tick budget is
 * spent or the sweeper stops; returns how many were removed. */
static size_t sweep_batches(osw_sweeper *w, sweep_fn fn, int64_t bound, const char *what)
{
    size_t total = 0;
    while (total < w->max_per_tick) {
        size_t removed = 0;
        obx_error err = {0};
        int rc = fn(w->store, bound, w->batch, &removed, &err);
        if (rc == OBX_ERR_CLOSED)
            break;
        if (rc != OBX_OK) {
            olog(OLOG_ERROR, "sweep failed", OLOG_S("what", what), OLOG_S("error", err.msg));
            break;
        }
        total += removed;
        if (removed < w->batch)
            break;
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
    }
    return total;
}

static void sweep_once(osw_sweeper *w)
{
    size_t n = sweep_batches(w, obx_retention_sweep, obx_now_ms() - w->retention_ms, "retention");
    atomic_fetch_add(&w->removed, n);
    if (n > 0)
        olog(OLOG_DEBUG, "retention sweep", OLOG_I("removed", (long long)n));
    /* Idempotency keys past their window (their expiry is absolute). */
    n = sweep_batches(w, obx_idem_sweep, obx_now_ms(), "idempotency keys");
    if (n > 0)
        olog(OLOG_DEBUG, "idempotency keys expired", OLOG_I("removed", (long long)n));
}

static void *run(void *arg)
{
    osw_sweeper *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        sweep_once(w);
        pthread_mutex_lock(&w->mu);
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(w->interval_ms / 1000);
        dl.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &dl) == 0)
            ;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

osw_sweeper *osw_start(obx_store *store, int64_t retention_ms, int64_t interval_ms, size_t batch,
                       size_t max_per_tick, char *err, size_t cap)
{
    osw_sweeper *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    w->store = store;
    w->retention_ms = retention_ms;
    w->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    w->batch = batch ? batch : 1;
    w->max_per_tick = max_per_tick ? max_per_tick : w->batch;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    int rc = pthread_create(&w->th, NULL, run, w);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the retention thread: %s", strerror(rc));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    pthread_setname_np(w->th, "retention");
    return w;
}

uint64_t osw_removed(const osw_sweeper *w)
{
    return atomic_load(&((osw_sweeper *)w)->removed);
}

void osw_stop(osw_sweeper *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
