/*
 * test-store.c - unit tests of the LMDB outbox: open/lock/schema, enqueue, claim and
 * results, backoff bookkeeping, dead letters, replay, purge, retention, capacity,
 * in-doubt recovery, stats counters, listing, check and corrupt records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <lmdb.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

typedef struct fixture {
    char *dir;
    obx_store *s;
    uint32_t a, b;
} fixture;

static obx_store *open_owner(const char *dir, uint64_t max_size)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    if (max_size)
        o.max_size = max_size;
    obx_store *s = NULL;
    obx_error err = {0};
    int rc = obx_open(dir, &o, &s, &err);
    if (rc)
        fail_msg("open %s: %s", dir, err.msg);
    return s;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tmpdir_new("store");
    f->s = open_owner(f->dir, 0);
    assert_int_equal(obx_sink_id(f->s, "webhook", &f->a, NULL), OBX_OK);
    assert_int_equal(obx_sink_id(f->s, "slack", &f->b, NULL), OBX_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_dispose(f->s, f->dir);
    free(f);
    return 0;
}

static uint64_t enqueue1(obx_store *s, const char *body, const uint32_t *sinks, size_t n)
{
    obx_event_in e = ev_in(body, sinks, n);
    uint64_t id = 0;
    obx_error err = {0};
    int rc = obx_enqueue(s, &e, 1, &id, &err);
    if (rc)
        fail_msg("enqueue: %s", err.msg);
    return id;
}

static obx_sink_stats sink_stats(obx_store *s, uint32_t sink)
{
    obx_stats *st = NULL;
    assert_int_equal(obx_stats_get(s, &st, NULL), OBX_OK);
    obx_sink_stats out = {0};
    for (size_t i = 0; i < st->n_sinks; i++)
        if (st->sinks[i].id == sink)
            out = st->sinks[i];
    obx_stats_free(st);
    return out;
}

static void assert_check_clean(obx_store *s)
{
    size_t problems = 99;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0);
}

static void test_open_creates_private_files(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/data.mdb", f->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(p, sizeof p, "%s/lock.mdb", f->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *d = tmpdir_new("perm");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/new", d);
    obx_store *s = open_owner(sub, 0);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    obx_close(s);
    rm_rf(d);
    free(d);
}

static void test_second_owner_refused_reader_allowed(void **state)
{
    fixture *f = *state;
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_store *s2 = NULL;
    obx_error err = {0};
    /* flock is per open file description: a second open in this process conflicts too. */
    assert_int_equal(obx_open(f->dir, &o, &s2, &err), OBX_ERR_LOCKED);
    assert_null(s2);
    assert_non_null(strstr(err.msg, "owned by another outboxd"));

    o.flags = 0;
    obx_store *r = NULL;
    /* A tool handle in another process (LMDB forbids two envs on one file per process). */
    pid_t pid = fork();
    if (pid == 0) {
        int rc = obx_open(f->dir, &o, &r, &err);
        uint32_t id = 0;
        int rc2 = rc ? rc : obx_sink_find(r, "webhook", &id, &err);
        obx_close(r);
        _exit(rc2 == OBX_OK && id == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * With the store closed, open its LMDB environment directly and rewrite one value of
 * database `db`: edit() gets a copy of the old value (at least 16 bytes of room) and may
 * change its bytes and length. Used to plant bad versions and corrupt records.
 */
typedef void (*raw_edit_fn)(unsigned char *val, size_t *len);

static void raw_edit(const char *dir, const char *db, const void *key, size_t klen,
                     raw_edit_fn edit)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 12);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k = {klen, (void *)key}, val;
    assert_int_equal(mdb_get(txn, dbi, &k, &val), 0);
    size_t len = val.mv_size;
    unsigned char *copy = malloc(len + 16);
    memcpy(copy, val.mv_data, len);
    edit(copy, &len);
    MDB_val nv = {len, copy};
    assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(copy);
}

static void set_schema_99(unsigned char *v, size_t *len)
{
    v[0] = v[1] = v[2] = 0;
    v[3] = 99;
    *len = 4;
}

static void flip_last_byte(unsigned char *v, size_t *len)
{
    v[*len - 1] ^= 0x5a;
}

/* obx_owner_pid: the owner's pid while an owner handle is open, 0 once it is closed (and
 * for a directory never owned), without taking the lock. */
static void test_owner_pid(void **state)
{
    (void)state;
    char *dir = tmpdir_new("ownerpid");
    long pid = -1;
    assert_int_equal(obx_owner_pid(dir, &pid, NULL), OBX_OK);
    assert_int_equal(pid, 0);
    obx_store *s = open_owner(dir, 0);
    assert_int_equal(obx_owner_pid(dir, &pid, NULL), OBX_OK);
    assert_int_equal(pid, (long)getpid());
    /* Asking did not disturb the owner: a second owner is still refused. */
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_store *s2 = NULL;
    assert_int_equal(obx_open(dir, &o, &s2, NULL), OBX_ERR_LOCKED);
    obx_close(s);
    assert_int_equal(obx_owner_pid(dir, &pid, NULL), OBX_OK);
    assert_int_equal(pid, 0);
    rm_rf(dir);
    free(dir);
}

static void test_schema_mismatch(void **state)
{
    (void)state;
    char *d = tmpdir_new("schema");
    obx_store *s = open_owner(d, 0);
    obx_close(s);
    /* Rewrite the version with plain LMDB. */
    raw_edit(d, "meta", "schema", 6, set_schema_99);

    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_error err = {0};
    assert_int_equal(obx_open(d, &o, &s, &err), OBX_ERR_VERSION);
    assert_non_null(strstr(err.msg, "schema version 99"));
    /* and the lock was released: opening again fails the same way, not LOCKED */
    assert_int_equal(obx_open(d, &o, &s, &err), OBX_ERR_VERSION);
    rm_rf(d);
    free(d);
}

static void test_enqueue_claim_deliver(void **state)
{
    fixture *f = *state;
    uint32_t sinks[] = {f->a, f->b};
    uint64_t id = enqueue1(f->s, "{\"x\":1}", sinks, 2);
    assert_true(id >= 1);
    uint64_t id2 = enqueue1(f->s, "{\"x\":2}", sinks, 1);
    assert_true(id2 > id);

    obx_sink_stats sa = sink_stats(f->s, f->a);
    assert_int_equal(sa.pending, 2);
    assert_int_equal(sink_stats(f->s, f->b).pending, 1);
    assert_true(sa.oldest_pending_ms > 0);

    obx_job *jobs;
    size_t n;
    int64_t next;
    int64_t now = obx_now_ms();
    assert_int_equal(obx_claim_due(f->s, f->a, now + 10, 10, &jobs, &n, &next, NULL), OBX_OK);
    assert_int_equal(n, 2);
    assert_int_equal(jobs[0].event_id, id);
    assert_int_equal(jobs[1].event_id, id2);
    assert_int_equal(jobs[0].body_len, 7);
    assert_memory_equal(jobs[0].body, "{\"x\":1}", 7);
    assert_string_equal(jobs[0].type, "flag");
    assert_int_equal(jobs[0].attempts, 0);
    assert_int_equal(next, INT64_MAX);
    /* claimed ones are not handed out twice */
    obx_job *again;
    size_t n2;
    assert_int_equal(obx_claim_due(f->s, f->a, now + 10, 10, &again, &n2, NULL, NULL), OBX_OK);
    assert_int_equal(n2, 0);
    obx_jobs_free(again, n2);
    assert_int_equal(sink_stats(f->s, f->a).inflight, 2);

    obx_result r[2] = {
        {.event_id = id,
         .sink_id = f->a,
         .outcome = OBX_OUTCOME_DELIVERED,
         .started_ms = now,
         .duration_ms = 5,
         .status = 200},
        {.event_id = id2,
         .sink_id = f->a,
         .outcome = OBX_OUTCOME_RETRY,
         .started_ms = now,
         .duration_ms = 7,
         .status = 500,
         .error = NULL,
         .deadline_ms = now + 15000,
         .next_attempt_ms = now + 1000},
    };
    assert_int_equal(obx_record(f->s, r, 2, NULL), OBX_OK);
    obx_jobs_free(jobs, n);

    sa = sink_stats(f->s, f->a);
    assert_int_equal(sa.delivered, 1);
    assert_int_equal(sa.pending, 1);
    assert_int_equal(sa.inflight, 0);
    assert_int_equal(sa.next_due_ms, now + 1000);

    /* not due yet */
    assert_int_equal(obx_claim_due(f->s, f->a, now + 500, 10, &jobs, &n, &next, NULL), OBX_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, now + 1000);
    /* due: attempt count and budget carried */
    assert_int_equal(obx_claim_due(f->s, f->a, now + 1000, 10, &jobs, &n, &next, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].attempts, 1);
    assert_int_equal(jobs[0].first_attempt_ms, now);
    assert_int_equal(jobs[0].deadline_ms, now + 15000);
    obx_result dead = {.event_id = id2,
                       .sink_id = f->a,
                       .outcome = OBX_OUTCOME_DEAD,
                       .started_ms = now + 1000,
                       .duration_ms = 3,
                       .status = 503,
                       .error = "HTTP 503",
                       .reason = "gave up after 2 attempts: HTTP 503"};
    assert_int_equal(obx_record(f->s, &dead, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);

    obx_event *e = NULL;
    assert_int_equal(obx_event_get(f->s, id2, &e, NULL), OBX_OK);
    assert_int_equal(e->n_deliveries, 1);
    obx_delivery *d = &e->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_DEAD);
    assert_int_equal(d->attempts, 2);
    assert_int_equal(d->n_history, 2);
    assert_int_equal(d->history[0].status, 500);
    assert_int_equal(d->history[1].status, 503);
    assert_string_equal(d->history[1].error, "HTTP 503");
    assert_string_equal(d->reason, "gave up after 2 attempts: HTTP 503");
    obx_event_free(e);
    assert_int_equal(sink_stats(f->s, f->a).dead, 1);
    assert_check_clean(f->s);
}

static void test_replay_and_purge(void **state)
{
    fixture *f = *state;
    uint32_t sinks[] = {f->a};
    uint64_t id = enqueue1(f->s, "{}", sinks, 1);
    obx_job *jobs;
    size_t n;
    int64_t now = obx_now_ms();
    obx_error err = {0};
    /* replaying a pending delivery is refused */
    assert_int_equal(obx_replay(f->s, id, OBX_ALL_SINKS, now, NULL, &err), OBX_ERR_STATE);
    assert_non_null(strstr(err.msg, "pending"));
    assert_int_equal(obx_replay(f->s, 999999, OBX_ALL_SINKS, now, NULL, &err), OBX_ERR_NOTFOUND);

    assert_int_equal(obx_claim_due(f->s, f->a, now + 1, 1, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    obx_result r = {.event_id = id,
                    .sink_id = f->a,
                    .outcome = OBX_OUTCOME_DEAD,
                    .started_ms = now,
                    .status = 410,
                    .reason = "HTTP 410 is in dead_letter_on"};
    assert_int_equal(obx_record(f->s, &r, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);

    size_t count = 0;
    assert_int_equal(obx_replay(f->s, id, OBX_ALL_SINKS, now + 5, &count, NULL), OBX_OK);
    assert_int_equal(count, 1);
    obx_sink_stats sa = sink_stats(f->s, f->a);
    assert_int_equal(sa.dead, 0);
    assert_int_equal(sa.pending, 1);
    obx_event *e;
    assert_int_equal(obx_event_get(f->s, id, &e, NULL), OBX_OK);
    assert_int_equal(e->deliveries[0].state, OBX_STATE_PENDING);
    assert_int_equal(e->deliveries[0].attempts, 0); /* fresh budget */
    assert_int_equal(e->deliveries[0].first_attempt_ms, 0);
    assert_int_equal(e->deliveries[0].total_attempts, 1);
    assert_int_equal(e->deliveries[0].replays, 1);
    assert_null(e->deliveries[0].reason);
    obx_event_free(e);

    /* dead again, then purge: the event goes with its last delivery */
    assert_int_equal(obx_claim_due(f->s, f->a, now + 10, 1, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(obx_record(f->s, &r, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);
    obx_stats *st;
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    uint64_t before = st->events;
    obx_stats_free(st);
    assert_int_equal(obx_purge(f->s, id, OBX_ALL_SINKS, &count, NULL), OBX_OK);
    assert_int_equal(count, 1);
    assert_int_equal(obx_event_get(f->s, id, &e, &err), OBX_ERR_NOTFOUND);
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    assert_int_equal(st->events, before - 1);
    obx_stats_free(st);
    assert_check_clean(f->s);
}

static void deliver_all(obx_store *s, uint32_t sink, int64_t at)
{
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(s, sink, at, 100000, &jobs, &n, NULL, NULL), OBX_OK);
    obx_result *r = calloc(n ? n : 1, sizeof *r);
    for (size_t i = 0; i < n; i++)
        r[i] = (obx_result){.event_id = jobs[i].event_id,
                            .sink_id = sink,
                            .outcome = OBX_OUTCOME_DELIVERED,
                            .started_ms = at,
                            .status = 204};
    assert_int_equal(obx_record(s, r, n, NULL), OBX_OK);
    free(r);
    obx_jobs_free(jobs, n);
}

static void test_retention_and_redelivery(void **state)
{
    fixture *f = *state;
    uint32_t both[] = {f->a, f->b};
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = enqueue1(f->s, "{\"r\":1}", both, 2);
    int64_t now = obx_now_ms();
    deliver_all(f->s, f->a, now + 1);
    /* a delivered one can be replayed (redelivery) */
    size_t count;
    assert_int_equal(obx_replay(f->s, ids[0], f->a, now + 2, &count, NULL), OBX_OK);
    assert_int_equal(count, 1);
    deliver_all(f->s, f->a, now + 3);

    size_t removed = 0;
    /* only up to `before`, in batches of max */
    assert_int_equal(obx_retention_sweep(f->s, now, 100, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(obx_retention_sweep(f->s, now + 3, 2, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(obx_retention_sweep(f->s, now + 3, 100, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 3);
    /* events stay while sink b still has pending deliveries */
    obx_event *e;
    assert_int_equal(obx_event_get(f->s, ids[1], &e, NULL), OBX_OK);
    assert_int_equal(e->n_deliveries, 1);
    assert_int_equal(e->deliveries[0].sink_id, f->b);
    obx_event_free(e);
    deliver_all(f->s, f->b, now + 4);
    assert_int_equal(obx_retention_sweep(f->s, now + 4, 100, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 5);
    obx_error err;
    assert_int_equal(obx_event_get(f->s, ids[1], &e, &err), OBX_ERR_NOTFOUND);
    obx_stats *st;
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    assert_int_equal(st->events, 0);
    assert_int_equal(st->enqueued, 5);
    obx_stats_free(st);
    assert_check_clean(f->s);
}

static void test_in_doubt_after_crash(void **state)
{
    (void)state;
    char *d = tmpdir_new("doubt");
    obx_store *s = open_owner(d, 0);
    uint32_t a;
    assert_int_equal(obx_sink_id(s, "webhook", &a, NULL), OBX_OK);
    uint64_t id = enqueue1(s, "{}", &a, 1);
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(s, a, obx_now_ms() + 1, 5, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    obx_jobs_free(jobs, n);
    obx_close(s); /* as if the process died after sending, before recording */

    s = open_owner(d, 0);
    obx_sink_stats ss = sink_stats(s, a);
    assert_int_equal(ss.in_doubt, 1);
    assert_int_equal(ss.inflight, 0);
    assert_int_equal(ss.pending, 1);
    assert_int_equal(obx_claim_due(s, a, obx_now_ms() + 1, 5, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].event_id, id);
    assert_true(jobs[0].in_doubt);
    obx_result r = {.event_id = id,
                    .sink_id = a,
                    .outcome = OBX_OUTCOME_DELIVERED,
                    .started_ms = obx_now_ms(),
                    .status = 200};
    assert_int_equal(obx_record(s, &r, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);
    assert_int_equal(sink_stats(s, a).in_doubt, 0);
    assert_check_clean(s);
    obx_close(s);
    rm_rf(d);
    free(d);
}

static void test_store_full(void **state)
{
    (void)state;
    char *d = tmpdir_new("full");
    obx_store *s = open_owner(d, 2u << 20); /* 2 MiB cap */
    uint32_t a;
    assert_int_equal(obx_sink_id(s, "webhook", &a, NULL), OBX_OK);
    char body[2000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;
    int full = 0;
    size_t ok = 0;
    obx_error err = {0};
    for (int i = 0; i < 5000 && !full; i++) {
        obx_event_in e = ev_in(body, &a, 1);
        uint64_t id;
        int rc = obx_enqueue(s, &e, 1, &id, &err);
        if (rc == OBX_ERR_FULL)
            full = 1;
        else {
            assert_int_equal(rc, OBX_OK);
            ok++;
        }
    }
    assert_true(full);
    assert_non_null(strstr(err.msg, "outbox.max_size reached"));
    assert_true(ok > 100);
    /* acknowledged events are all there, and deliveries/deletes still work */
    obx_sink_stats ss = sink_stats(s, a);
    assert_int_equal(ss.pending, ok);
    deliver_all(s, a, obx_now_ms() + 1);
    size_t removed, total = 0;
    do {
        assert_int_equal(obx_retention_sweep(s, obx_now_ms() + 10, 200, &removed, NULL), OBX_OK);
        total += removed;
    } while (removed);
    assert_int_equal(total, ok);
    /* space is reusable: intake resumes */
    obx_event_in e = ev_in(body, &a, 1);
    uint64_t id;
    assert_int_equal(obx_enqueue(s, &e, 1, &id, &err), OBX_OK);
    assert_check_clean(s);
    obx_close(s);
    rm_rf(d);
    free(d);
}

typedef struct prod {
    obx_store *s;
    uint32_t sink;
    int n;
    uint64_t *ids;
} prod;

static void *producer(void *arg)
{
    prod *p = arg;
    for (int i = 0; i < p->n; i++) {
        obx_event_in e = ev_in("{\"p\":true}", &p->sink, 1);
        if (obx_enqueue(p->s, &e, 1, &p->ids[i], NULL) != OBX_OK)
            p->ids[i] = 0;
    }
    return NULL;
}

static void test_concurrent_enqueue(void **state)
{
    fixture *f = *state;
    enum { T = 8, N = 200 };
    pthread_t th[T];
    prod p[T];
    for (int t = 0; t < T; t++) {
        p[t] = (prod){f->s, f->a, N, calloc(N, sizeof(uint64_t))};
        pthread_create(&th[t], NULL, producer, &p[t]);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    /* every id distinct and stored */
    uint64_t seen = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++) {
            assert_true(p[t].ids[i] > 0);
            if (i)
                assert_true(p[t].ids[i] > p[t].ids[i - 1]);
            seen++;
        }
        free(p[t].ids);
    }
    assert_int_equal(sink_stats(f->s, f->a).pending, seen);
    /* the commit batch histogram saw every enqueue, some of them sharing a commit */
    obx_stats *st;
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    uint64_t commits = 0;
    for (int i = 0; i <= OBX_BATCH_BUCKETS; i++)
        commits += st->commit_batches[i];
    assert_true(st->commit_ops >= seen);
    assert_true(commits > 0 && commits < st->commit_ops);
    /* ...and the duration histogram timed each of those commits */
    uint64_t timed = 0;
    for (int i = 0; i <= OBX_COMMIT_BUCKETS; i++)
        timed += st->commit_us[i];
    assert_true(timed >= commits);
    assert_true(st->commit_us_sum > 0);
    obx_stats_free(st);
    assert_check_clean(f->s);
}

static int count_cb(void *ud, const obx_event *ev, const obx_delivery *d)
{
    size_t *n = ud;
    (void)ev;
    (void)d;
    (*n)++;
    return 0;
}

typedef struct idlist {
    uint64_t ids[2048];
    size_t n;
} idlist;

static int collect_cb(void *ud, const obx_event *ev, const obx_delivery *d)
{
    idlist *l = ud;
    (void)d;
    if (l->n < 2048)
        l->ids[l->n++] = ev->id;
    return 0;
}

static void test_list_filters_and_paging(void **state)
{
    fixture *f = *state;
    uint32_t both[] = {f->a, f->b};
    for (int i = 0; i < 600; i++) {
        obx_event_in e = ev_in("{}", both, 2);
        e.type = i % 3 == 0 ? "segment" : "flag";
        uint64_t id;
        assert_int_equal(obx_enqueue(f->s, &e, 1, &id, NULL), OBX_OK);
    }
    obx_query q;
    obx_query_init(&q);
    size_t n = 0;
    assert_int_equal(obx_list(f->s, &q, count_cb, NULL, &n, NULL), OBX_OK);
    assert_int_equal(n, 1200);
    q.sink_id = f->b;
    q.state = OBX_STATE_PENDING;
    n = 0;
    assert_int_equal(obx_list(f->s, &q, count_cb, NULL, &n, NULL), OBX_OK);
    assert_int_equal(n, 600);
    q.type = "segment";
    n = 0;
    assert_int_equal(obx_list(f->s, &q, count_cb, NULL, &n, NULL), OBX_OK);
    assert_int_equal(n, 200);
    /* newest first with a limit, across pages */
    obx_query_init(&q);
    q.sink_id = f->a;
    q.newest_first = 1;
    q.limit = 300;
    idlist *l = calloc(1, sizeof *l);
    assert_int_equal(obx_list(f->s, &q, collect_cb, NULL, l, NULL), OBX_OK);
    assert_int_equal(l->n, 300);
    for (size_t i = 1; i < l->n; i++)
        assert_true(l->ids[i] < l->ids[i - 1]);
    /* resume after an id */
    obx_query_init(&q);
    q.sink_id = f->a;
    q.after_id = l->ids[0] - 10;
    size_t m = 0;
    assert_int_equal(obx_list(f->s, &q, count_cb, NULL, &m, NULL), OBX_OK);
    assert_int_equal(m, 10);
    free(l);
}

static int ignore_cb(void *ud, const obx_event *ev, const obx_delivery *d)
{
    (void)ud;
    (void)ev;
    (void)d;
    return 0;
}

static void corrupt_cb(void *ud, uint64_t ev, uint32_t sink, const char *what)
{
    size_t *n = ud;
    (void)ev;
    (void)sink;
    assert_non_null(strstr(what, "corrupt"));
    (*n)++;
}

static void problem_cb(void *ud, const char *p)
{
    size_t *n = ud;
    (void)p;
    (*n)++;
}

static void test_corrupt_record_is_reported(void **state)
{
    (void)state;
    char *d = tmpdir_new("corrupt");
    obx_store *s = open_owner(d, 0);
    uint32_t a;
    assert_int_equal(obx_sink_id(s, "webhook", &a, NULL), OBX_OK);
    uint64_t bad = enqueue1(s, "{\"victim\":1}", &a, 1);
    enqueue1(s, "{\"ok\":1}", &a, 1);
    obx_close(s);

    /* Flip a byte inside the victim's delivery record, with plain LMDB. */
    unsigned char k[12] = {0};
    for (int i = 7; i >= 0; i--)
        k[i] = (unsigned char)(bad >> (8 * (7 - i)));
    k[11] = (unsigned char)a;
    raw_edit(d, "deliveries", k, sizeof k, flip_last_byte);

    s = open_owner(d, 0);
    obx_event *e;
    obx_error err = {0};
    assert_int_equal(obx_event_get(s, bad, &e, &err), OBX_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "checksum"));
    obx_query q;
    obx_query_init(&q);
    size_t listed = 0, corrupt = 0;
    assert_int_equal(obx_list(s, &q, count_cb, NULL, &listed, NULL), OBX_OK);
    assert_int_equal(listed, 1);
    q.state = 0;
    assert_int_equal(obx_list(s, &q, ignore_cb, corrupt_cb, &corrupt, NULL), OBX_OK);
    assert_int_equal(corrupt, 1);
    size_t problems = 0, reported = 0;
    assert_int_equal(obx_check(s, problem_cb, &reported, &problems, NULL), OBX_OK);
    assert_true(problems >= 1);
    assert_int_equal(problems, reported);
    /* the scheduler skips it and still delivers the healthy one */
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(s, a, obx_now_ms() + 1, 10, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(jobs[0].body, "{\"ok\":1}", 8);
    obx_jobs_free(jobs, n);
    obx_close(s);
    rm_rf(d);
    free(d);
}

static void test_backup(void **state)
{
    fixture *f = *state;
    uint64_t id = enqueue1(f->s, "{\"b\":1}", &f->a, 1);
    char dest[600];
    snprintf(dest, sizeof dest, "%s-backup", f->dir);
    obx_error err = {0};
    assert_int_equal(obx_backup(f->s, dest, &err), OBX_OK);
    assert_int_equal(obx_backup(f->s, dest, &err), OBX_ERR_IO); /* not over an existing one */
    pid_t pid = fork();
    if (pid == 0) {
        obx_options o;
        obx_options_init(&o);
        o.flags = OBX_OPEN_READONLY;
        obx_store *b;
        obx_event *e;
        int ok = obx_open(dest, &o, &b, NULL) == OBX_OK &&
                 obx_event_get(b, id, &e, NULL) == OBX_OK && e->body_len == 7;
        _exit(ok ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rm_rf(dest);
}

static uint64_t file_size(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* prefill.c: data.mdb is zero-filled ahead of LMDB's last page, keeps ahead as the store
 * grows, and what is written there stays readable across a reopen; off means off. */
static void test_prefill(void **state)
{
    (void)state;
    char *dir = tmpdir_new("prefill");
    obx_store *s = open_owner(dir, 0);
    uint32_t sink;
    assert_int_equal(obx_sink_id(s, "webhook", &sink, NULL), OBX_OK);
    enqueue1(s, "{\"first\":1}", &sink, 1);
    uint64_t first = file_size(dir);
    assert_true(first >= (4u << 20) - 4096);
    /* The tail is zeros: LMDB's pages are at the front. */
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static unsigned char tail[65536];
    assert_int_equal(fseek(fp, -(long)sizeof tail, SEEK_END), 0);
    assert_int_equal(fread(tail, 1, sizeof tail, fp), sizeof tail);
    fclose(fp);
    for (size_t i = 0; i < sizeof tail; i++)
        if (tail[i])
            fail_msg("byte %zu of the prefilled tail is %u", i, tail[i]);
    /* Grow past the prefilled space: it is extended again, ahead of the data. */
    static char body[2048];
    memset(body, 'x', sizeof body - 1);
    for (int i = 0; i < 3000; i++)
        enqueue1(s, body, &sink, 1);
    assert_true(file_size(dir) > first);
    obx_close(s);
    s = open_owner(dir, 0);
    assert_int_equal(sink_stats(s, sink).pending, 3001);
    assert_check_clean(s);
    obx_close(s);
    rm_rf(dir);
    free(dir);

    /* prefill = 0: the file holds only LMDB's pages. */
    dir = tmpdir_new("noprefill");
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.prefill = 0;
    assert_int_equal(obx_open(dir, &o, &s, NULL), OBX_OK);
    assert_int_equal(obx_sink_id(s, "webhook", &sink, NULL), OBX_OK);
    enqueue1(s, "{\"first\":1}", &sink, 1);
    assert_true(file_size(dir) < (1u << 20));
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

/* With no high-water margin the LMDB map itself fills: MDB_MAP_FULL must fail only the
 * enqueue that hit it, acknowledge nothing partial, and leave the store consistent. */
static void test_map_full_no_partial_ack(void **state)
{
    (void)state;
    char *d = tmpdir_new("mapfull");
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = 1u << 20;
    o.high_water_pct = 100;
    obx_store *s;
    assert_int_equal(obx_open(d, &o, &s, NULL), OBX_OK);
    uint32_t a;
    assert_int_equal(obx_sink_id(s, "webhook", &a, NULL), OBX_OK);
    char body[3000];
    memset(body, 'y', sizeof body - 1);
    body[sizeof body - 1] = 0;
    size_t acked = 0;
    int failed = 0;
    obx_error err = {0};
    for (int i = 0; i < 2000 && !failed; i++) {
        obx_event_in e[4];
        for (int j = 0; j < 4; j++)
            e[j] = ev_in(body, &a, 1);
        uint64_t ids[4];
        int rc = obx_enqueue(s, e, 4, ids, &err);
        if (rc) {
            assert_int_equal(rc, OBX_ERR_FULL);
            printf("map full after %zu events: %s\n", acked, err.msg);
            failed = 1;
        } else {
            acked += 4;
        }
    }
    assert_true(failed);
    assert_int_equal(sink_stats(s, a).pending, acked);
    obx_stats *st;
    assert_int_equal(obx_stats_get(s, &st, NULL), OBX_OK);
    assert_int_equal(st->events, acked);
    obx_stats_free(st);
    assert_check_clean(s);
    obx_close(s);
    rm_rf(d);
    free(d);
}

/* Another process reads (stats, list) in a loop while this one writes: readers never
 * block the writer and always see consistent counters. */
static void test_concurrent_reader_process(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    if (pid == 0) {
        obx_options o;
        obx_options_init(&o);
        obx_store *r;
        if (obx_open(f->dir, &o, &r, NULL) != OBX_OK)
            _exit(2);
        uint64_t last = 0;
        for (int i = 0; i < 400; i++) {
            obx_stats *st;
            if (obx_stats_get(r, &st, NULL) != OBX_OK)
                _exit(3);
            uint64_t pending = 0;
            for (size_t k = 0; k < st->n_sinks; k++)
                pending += st->sinks[k].pending + st->sinks[k].inflight;
            if (pending != st->events || st->enqueued < last) /* one sink per event */
                _exit(4);
            last = st->enqueued;
            obx_stats_free(st);
            obx_query q;
            obx_query_init(&q);
            q.limit = 50;
            size_t n = 0;
            if (obx_list(r, &q, count_cb, NULL, &n, NULL) != OBX_OK)
                _exit(5);
        }
        obx_close(r);
        _exit(0);
    }
    for (int i = 0; i < 300; i++)
        enqueue1(f->s, "{\"c\":1}", &f->a, 1);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(sink_stats(f->s, f->a).pending, 300);
}

/* Bulk replay and purge: one transaction for many targets, each with its own result. */
static void test_replay_purge_many(void **state)
{
    fixture *f = *state;
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = enqueue1(f->s, "{}", &f->a, 1);
    int64_t now = obx_now_ms();
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(f->s, f->a, now + 1, 20, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 20);
    obx_result r[20];
    for (size_t i = 0; i < n; i++) /* the first 15 die, the last 5 stay pending */
        r[i] = (obx_result){.event_id = jobs[i].event_id,
                            .sink_id = f->a,
                            .outcome = i < 15 ? OBX_OUTCOME_DEAD : OBX_OUTCOME_RETRY,
                            .started_ms = now,
                            .status = 500,
                            .reason = "x",
                            .next_attempt_ms = now + 60000};
    assert_int_equal(obx_record(f->s, r, n, NULL), OBX_OK);
    obx_jobs_free(jobs, n);

    obx_target t[21];
    for (int i = 0; i < 20; i++)
        t[i] = (obx_target){ids[i], OBX_ALL_SINKS, -1, 0};
    t[20] = (obx_target){999999, OBX_ALL_SINKS, -1, 0};
    /* replay the first 10 dead ones, plus pending ones and an unknown id */
    obx_target rt[8] = {t[0], t[1], t[2], t[3], t[4], t[15], t[16], t[20]};
    assert_int_equal(obx_replay_many(f->s, rt, 8, now + 2, NULL), OBX_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rt[i].rc, OBX_OK);
        assert_int_equal(rt[i].count, 1);
    }
    assert_int_equal(rt[5].rc, OBX_ERR_STATE);
    assert_int_equal(rt[6].rc, OBX_ERR_STATE);
    assert_int_equal(rt[7].rc, OBX_ERR_NOTFOUND);
    obx_sink_stats ss = sink_stats(f->s, f->a);
    assert_int_equal(ss.dead, 10);
    assert_int_equal(ss.pending, 10);
    /* purge the remaining dead ones and try the pending ones */
    assert_int_equal(obx_purge_many(f->s, t, 20, NULL), OBX_OK);
    size_t purged = 0;
    for (int i = 0; i < 20; i++)
        purged += t[i].count;
    assert_int_equal(purged, 10);
    assert_int_equal(t[0].rc, OBX_ERR_STATE); /* replayed: pending now */
    assert_int_equal(t[10].rc, OBX_OK);
    ss = sink_stats(f->s, f->a);
    assert_int_equal(ss.dead, 0);
    assert_int_equal(ss.pending, 10);
    assert_check_clean(f->s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_owner_refused_reader_allowed, setup, teardown),
        cmocka_unit_test(test_schema_mismatch),
        cmocka_unit_test(test_owner_pid),
        cmocka_unit_test_setup_teardown(test_enqueue_claim_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_and_redelivery, setup, teardown),
        cmocka_unit_test(test_in_doubt_after_crash),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test_setup_teardown(test_concurrent_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_and_paging, setup, teardown),
        cmocka_unit_test(test_corrupt_record_is_reported),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
        cmocka_unit_test(test_map_full_no_partial_ack),
        cmocka_unit_test(test_prefill),
        cmocka_unit_test_setup_teardown(test_replay_purge_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reader_process, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
