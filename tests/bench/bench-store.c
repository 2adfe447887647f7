/*
 * bench-store.c - library enqueue throughput with `full` durability (300-byte events, one
 * sink) for 1, 8, 32 and 128 producer threads, beside the raw LMDB commit rate with the
 * same batch sizes (the ceiling: N puts + one synced commit). Prints a table; bounded by
 * OUTBOX_BENCH_SECONDS per row (default 3).
 * `bench-store one` prints only "one-producer EVENTS_PER_S" (one producer, one sink): the
 * rate the ingest benchmark compares a single HTTP connection with.
 */
#include <lmdb.h>
#include <time.h>

#include "bench-common.h"
#include "testutil.h"

static char body[301];
static double seconds = 3;

/* A fresh store with `n_sinks` sinks; the enqueue rate with `producers` threads. */
static double bench_enqueue(int producers, size_t n_sinks, int prefill)
{
    char *dir = tmpdir_new("bench");
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = 8ull << 30;
    o.prefill = prefill;
    obx_store *s;
    if (obx_open(dir, &o, &s, NULL) != OBX_OK)
        return -1;
    uint32_t sinks[8];
    for (size_t i = 0; i < n_sinks; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%zu", i);
        obx_sink_id(s, name, &sinks[i], NULL);
    }
    double rate = bench_enqueue_rate(s, sinks, n_sinks, producers, seconds);
    obx_close(s);
    rm_rf(dir);
    free(dir);
    return rate;
}

/* Raw LMDB: batch puts of 300-byte values per synced commit, append order. */
static double bench_lmdb(int batch, double *commits_per_s)
{
    char *dir = tmpdir_new("lmdb");
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, 8ull << 30);
    if (mdb_env_open(env, dir, MDB_NOTLS, 0600))
        return -1;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_commit(txn);
    uint64_t key = 0, commits = 0;
    double t0 = bench_now_s(), t;
    do {
        mdb_txn_begin(env, NULL, 0, &txn);
        for (int i = 0; i < batch; i++) {
            unsigned char k[8];
            uint64_t v = ++key;
            for (int b = 7; b >= 0; b--, v >>= 8)
                k[b] = (unsigned char)v;
            MDB_val mk = {8, k}, mv = {300, body};
            mdb_put(txn, dbi, &mk, &mv, MDB_APPEND);
        }
        mdb_txn_commit(txn);
        commits++;
        t = bench_now_s();
    } while (t - t0 < seconds);
    *commits_per_s = (double)commits / (t - t0);
    mdb_env_close(env);
    rm_rf(dir);
    free(dir);
    return (double)key / (t - t0);
}

int main(int argc, char **argv)
{
    const char *env = getenv("OUTBOX_BENCH_SECONDS");
    if (env && *env)
        seconds = strtod(env, NULL);
    memset(body, 'x', 300);
    if (argc > 1 && strcmp(argv[1], "one") == 0) {
        printf("one-producer %.0f\n", bench_enqueue(1, 1, 1));
        return 0;
    }
    int ps[] = {1, 8, 32, 128};
    double base = 0;
    /* Each row: outbox and the raw loop in three alternating slices, averaged, so that the
     * shared disk's slow spells hit both alike (sequential phases swung the ratio). */
    enum { ROUNDS = 3 };
    double full = seconds;
    seconds = full / ROUNDS;
    printf("# library enqueue, full durability, 300-byte events, one sink (%d x %.1f s "
           "alternating with the raw loop per row)\n",
           ROUNDS, seconds);
    printf("%-10s %14s %10s %18s %16s %9s\n", "producers", "events/s", "x single",
           "raw LMDB rows/s", "raw commits/s", "of raw");
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double r = 0, raw = 0, cps = 0;
        for (int k = 0; k < ROUNDS; k++) {
            double c;
            r += bench_enqueue(ps[i], 1, 1) / ROUNDS;
            raw += bench_lmdb(ps[i], &c) / ROUNDS;
            cps += c / ROUNDS;
        }
        if (i == 0)
            base = r;
        printf("%-10d %14.0f %10.1f %18.0f %16.0f %8.0f%%\n", ps[i], r, r / base, raw, cps,
               raw > 0 ? 100 * r / raw : 0);
        fflush(stdout);
    }
    seconds = full;
    /* The zero-fill ahead of LMDB's last page (prefill.c), on and off in alternating
     * slices so that the machine's noise hits both alike. */
    double on = 0, off = 0, slice = seconds / 2 > 1 ? seconds / 2 : 1;
    seconds = slice;
    for (int k = 0; k < 3; k++) {
        on += bench_enqueue(32, 1, 1);
        off += bench_enqueue(32, 1, 0);
    }
    seconds = full;
    printf("# prefill (zero-filled space ahead of the last page), 32 producers, 3 x %.1f s "
           "alternating: on %.0f, off %.0f events/s (%.0f %%)\n",
           slice, on / 3, off / 3, off > 0 ? 100.0 * on / off : 0.0);
    double fan = bench_enqueue(32, 8, 1);
    printf("# fan-out: one event to 8 sinks, 32 producers: %.0f events/s (%.0f deliveries/s "
           "stored)\n",
           fan, fan * 8);
    return 0;
}
