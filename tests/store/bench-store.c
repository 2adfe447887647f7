/*
 * bench-store.c - library enqueue throughput with `full` durability (300-byte events, one
 * sink) for 1, 8, 32 and 128 producer threads, beside the raw LMDB commit rate with the
 * same batch sizes (the ceiling: N puts + one synced commit). Prints a table; bounded by
 * OUTBOX_BENCH_SECONDS per row (default 3).
 */
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "testutil.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char body[301];
static atomic_int stop_flag;
static double seconds = 3;

typedef struct worker {
    obx_store *s;
    uint32_t sink;
    uint64_t done;
} worker;

static void *produce(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&stop_flag)) {
        obx_event_in e = {"flag", "created", body, 300, 0, &w->sink, 1};
        uint64_t id;
        if (obx_enqueue(w->s, &e, 1, &id, NULL) == OBX_OK)
            w->done++;
    }
    return NULL;
}

static double bench_enqueue(int producers)
{
    char *dir = tmpdir_new("bench");
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = 8ull << 30;
    obx_store *s;
    if (obx_open(dir, &o, &s, NULL) != OBX_OK)
        return -1;
    uint32_t sink;
    obx_sink_id(s, "webhook", &sink, NULL);
    worker *w = calloc((size_t)producers, sizeof *w);
    pthread_t *th = calloc((size_t)producers, sizeof *th);
    atomic_store(&stop_flag, 0);
    double t0 = now_s();
    for (int i = 0; i < producers; i++) {
        w[i] = (worker){s, sink, 0};
        pthread_create(&th[i], NULL, produce, &w[i]);
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop_flag, 1);
    uint64_t total = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
    }
    double rate = (double)total / (now_s() - t0);
    obx_close(s);
    rm_rf(dir);
    free(dir);
    free(w);
    free(th);
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
    double t0 = now_s(), t;
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
        t = now_s();
    } while (t - t0 < seconds);
    *commits_per_s = (double)commits / (t - t0);
    mdb_env_close(env);
    rm_rf(dir);
    free(dir);
    return (double)key / (t - t0);
}

int main(void)
{
    const char *env = getenv("OUTBOX_BENCH_SECONDS");
    if (env && *env)
        seconds = strtod(env, NULL);
    memset(body, 'x', 300);
    int ps[] = {1, 8, 32, 128};
    double base = 0;
    printf("# library enqueue, full durability, 300-byte events, one sink (%.0f s per row)\n",
           seconds);
    printf("%-10s %14s %10s %18s %16s\n", "producers", "events/s", "x single", "raw LMDB rows/s",
           "raw commits/s");
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double r = bench_enqueue(ps[i]);
        if (i == 0)
            base = r;
        double cps;
        double raw = bench_lmdb(ps[i], &cps);
        printf("%-10d %14.0f %10.1f %18.0f %16.0f\n", ps[i], r, r / base, raw, cps);
        fflush(stdout);
    }
    return 0;
}
