/*
 * bench-engine.c - delivery throughput: a store pre-filled with N pending deliveries
 * (default 100,000) drained by the engine to a local no-op HTTP receiver, results
 * committed. Prints deliveries/s. Bounded: gives up after 60 s (exit 1).
 *
 * Usage: bench-engine [N] [max_in_flight]; BENCH_RX_THREADS sets the receiver's threads
 * (default 1: one poll thread, which leaves the most CPU to the engine; 0 = one thread
 * per connection).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-fixture.h"

#define BODY FX_BODY

static uint64_t delivered(obx_store *st)
{
    obx_stats *s = NULL;
    obx_error err;
    uint64_t n = 0;
    if (obx_stats_get(st, &s, &err) == OBX_OK) {
        for (size_t i = 0; i < s->n_sinks; i++)
            n += s->sinks[i].delivered;
        obx_stats_free(s);
    }
    return n;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    unsigned limit = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 128;
    int rc = 1;
    char err[256] = "";
    char *dir = tmpdir_new("bench-engine");
    obx_store *st = dir ? fx_open_store(dir) : NULL;
    trx *rx = NULL;
    dlv_engine *eng = NULL;
    dlv_sink_config sc;
    dlv_sink_config_init(&sc);
    trx_options ro = {.threads = (unsigned)(getenv("BENCH_RX_THREADS")
                                                ? strtoul(getenv("BENCH_RX_THREADS"), NULL, 10)
                                                : 1),
                      .no_record = 1};
    if (!st || trx_start(&ro, &rx, err, sizeof err) != 0) {
        fprintf(stderr, "setup failed: %s\n", err);
        goto out;
    }
    fx_sink(&sc, "bench", trx_url(rx, "/hook"));
    sc.max_in_flight = limit;
    sc.backoff.max_elapsed_ms = 15000;
    uint32_t sink = 0;
    obx_error oe;
    if (obx_sink_id(st, "bench", &sink, &oe) != OBX_OK) {
        fprintf(stderr, "sink: %s\n", oe.msg);
        goto out;
    }
    int64_t f0 = trx_mono_ms();
    enum { BATCH = 1000 };
    obx_event_in *evs = calloc(BATCH, sizeof *evs);
    uint64_t *ids = calloc(BATCH, sizeof *ids);
    for (size_t i = 0; evs && ids && i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        for (size_t j = 0; j < k; j++)
            evs[j] = (obx_event_in){"flag", "created", BODY, strlen(BODY), 0, &sink, 1};
        if (obx_enqueue(st, evs, k, ids, &oe) != OBX_OK) {
            fprintf(stderr, "enqueue: %s\n", oe.msg);
            free(evs);
            free(ids);
            goto out;
        }
    }
    free(evs);
    free(ids);
    printf("filled %zu deliveries in %.2f s\n", n, (trx_mono_ms() - f0) / 1000.0);

    dlv_engine_options o;
    dlv_engine_options_init(&o);
    dlv_error derr;
    if (dlv_engine_new(st, &sc, 1, &o, &eng, &derr) != DLV_OK) {
        fprintf(stderr, "engine: %s\n", derr.msg);
        goto out;
    }
    int64_t t0 = trx_mono_ms();
    if (dlv_engine_start(eng, &derr) != DLV_OK) {
        fprintf(stderr, "engine start: %s\n", derr.msg);
        goto out;
    }
    uint64_t got = 0;
    while ((got = delivered(st)) < n && trx_mono_ms() - t0 < 60000)
        fx_sleep_ms(20);
    int64_t took = trx_mono_ms() - t0;
    dlv_engine_stop(eng, 1000);
    dlv_metrics m;
    if (dlv_engine_metrics(eng, &m) == 0) {
        printf("commits %" PRIu64 " (%.1f results each), retried %" PRIu64 ", dead %" PRIu64
               ", receiver saw %zu requests on %u connections, max concurrent %u\n",
               m.commits, m.commits ? (double)m.results_committed / (double)m.commits : 0.0,
               m.sinks[0].retried, m.sinks[0].dead, trx_count(rx), trx_connections(rx),
               trx_max_concurrent(rx));
        dlv_metrics_free(&m);
    }
    printf("delivered %" PRIu64 " of %zu in %.2f s: %.0f deliveries/s (max_in_flight %u)\n", got, n,
           took / 1000.0, took ? got * 1000.0 / (double)took : 0.0, limit);
    rc = got == n ? 0 : 1;
out:
    dlv_engine_free(eng);
    obx_close(st);
    trx_stop(rx);
    dlv_sink_config_clear(&sc);
    fx_remove_store(dir);
    return rc;
}
