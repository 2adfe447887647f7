/*
 * bench-common.h - shared by the benchmarks: a monotonic clock and the enqueue load
 * (N producer threads, each calling obx_enqueue with one 300-byte event routed to the
 * given sinks, for a fixed time). Header-only; each benchmark is one executable.
 */
#ifndef OUTBOX_BENCH_COMMON_H
#define OUTBOX_BENCH_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outbox/outbox.h"

static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct bench_producer {
    obx_store *s;
    const uint32_t *sinks;
    size_t n_sinks;
    atomic_int *stop;
    uint64_t done;
} bench_producer;

static inline void *bench_produce(void *arg)
{
    static char body[300];
    bench_producer *p = arg;
    memset(body, 'x', sizeof body);
    while (!atomic_load(p->stop)) {
        obx_event_in e = {"flag", "created", body, sizeof body, 0, p->sinks, p->n_sinks};
        uint64_t id;
        if (obx_enqueue(p->s, &e, 1, &id, NULL) == OBX_OK)
            p->done++;
    }
    return NULL;
}

/* Events acknowledged per second with `producers` threads for `seconds`. */
static inline double bench_enqueue_rate(obx_store *s, const uint32_t *sinks, size_t n_sinks,
                                        int producers, double seconds)
{
    atomic_int stop = 0;
    bench_producer *p = calloc((size_t)producers, sizeof *p);
    pthread_t *th = calloc((size_t)producers, sizeof *th);
    double t0 = bench_now_s();
    for (int i = 0; i < producers; i++) {
        p[i] = (bench_producer){s, sinks, n_sinks, &stop, 0};
        pthread_create(&th[i], NULL, bench_produce, &p[i]);
    }
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, 1);
    uint64_t total = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(th[i], NULL);
        total += p[i].done;
    }
    double rate = (double)total / (bench_now_s() - t0);
    free(p);
    free(th);
    return rate;
}

#endif
