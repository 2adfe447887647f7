/*
 * test-idempotency.c - idempotency keys in the store (obx_enqueue_idem, obx_idem_sweep):
 * a repeated key replays the original ids and stores nothing, another request under the
 * key is a conflict, keys are validated, survive a reopen, are swept when expired (and
 * are then new again), and threads racing with one key store exactly one batch; the
 * asynchronous obx_enqueue_submit reports the same results from the writer thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <lmdb.h>
#include <pthread.h>

#include "testutil.h"

/* Each test: a fresh store with the sink "webhook". */
typedef struct fixture {
    char *dir;
    obx_store *s;
    uint32_t sink;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tmpdir_new("idem");
    f->s = owner_open(f->dir);
    assert_int_equal(obx_sink_id(f->s, "webhook", &f->sink, NULL), OBX_OK);
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

static uint64_t stat_events(obx_store *s, uint64_t *keys)
{
    obx_stats *st = NULL;
    assert_int_equal(obx_stats_get(s, &st, NULL), OBX_OK);
    uint64_t n = st->events;
    if (keys)
        *keys = st->idem_keys;
    obx_stats_free(st);
    return n;
}

static obx_idem idem_of(const char *key, unsigned char fill, int64_t expires)
{
    obx_idem im = {.key = key, .expires_ms = expires};
    memset(im.hash, fill, sizeof im.hash);
    return im;
}

#define HOUR (3600 * 1000)

static void test_replay_same_ids(void **state)
{
    fixture *f = *state;
    obx_store *s = f->s;
    uint32_t sink = f->sink;
    obx_event_in e[2] = {ev_in("{\"a\":1}", &sink, 1), ev_in("{\"b\":2}", &sink, 1)};
    obx_idem im = idem_of("order-42", 7, obx_now_ms() + HOUR);
    im.note = "11";
    im.note_len = 2;
    uint64_t ids[2] = {0, 0}, again[2] = {0, 0};
    obx_idem_result res;
    obx_error err = {0};
    assert_int_equal(obx_enqueue_idem(s, e, 2, &im, ids, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 0);
    assert_true(ids[0] > 0 && ids[1] == ids[0] + 1);
    uint64_t keys = 0;
    assert_int_equal(stat_events(s, &keys), 2);
    assert_int_equal(keys, 1);

    assert_int_equal(obx_enqueue_idem(s, e, 2, &im, again, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.n_ids, 2);
    assert_int_equal(res.ids[0], ids[0]);
    assert_int_equal(res.ids[1], ids[1]);
    assert_int_equal(res.note_len, 2);
    assert_memory_equal(res.note, "11", 2);
    assert_true(res.created_ms > 0);
    assert_int_equal(again[0], 0); /* untouched on a replay */
    obx_idem_result_clear(&res);
    assert_int_equal(stat_events(s, &keys), 2);
    assert_int_equal(keys, 1);

    /* Survives a reopen. */
    obx_close(s);
    s = f->s = owner_open(f->dir);
    assert_int_equal(obx_enqueue_idem(s, e, 1, &im, again, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.ids[0], ids[0]);
    obx_idem_result_clear(&res);
    assert_int_equal(stat_events(s, NULL), 2);

    /* Without a key (idem NULL) it is obx_enqueue. */
    assert_int_equal(obx_enqueue_idem(s, e, 1, NULL, again, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(again[0], ids[1] + 1);
}

static void test_conflict_and_invalid(void **state)
{
    fixture *f = *state;
    obx_store *s = f->s;
    uint32_t sink = f->sink;
    obx_event_in e = ev_in("{\"a\":1}", &sink, 1);
    obx_idem im = idem_of("k1", 1, obx_now_ms() + HOUR);
    uint64_t id;
    obx_idem_result res;
    obx_error err = {0};
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id, &res, &err), OBX_OK);
    obx_idem other = idem_of("k1", 2, obx_now_ms() + HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &other, &id, &res, &err), OBX_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "'k1'"));
    assert_int_equal(res.replayed, 0);
    assert_null(res.ids);
    assert_int_equal(stat_events(s, NULL), 1);

    char longkey[OBX_IDEM_KEY_MAX + 2];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    const char *bad[] = {"", longkey, "tab\there", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        obx_idem b = idem_of(bad[i], 1, obx_now_ms() + HOUR);
        assert_int_equal(obx_enqueue_idem(s, &e, 1, &b, &id, &res, &err), OBX_ERR_INVALID);
        assert_non_null(strstr(err.msg, "idempotency key"));
    }
    longkey[OBX_IDEM_KEY_MAX] = 0; /* exactly the maximum, with a space: fine */
    longkey[3] = ' ';
    assert_int_equal(obx_idem_key_check(longkey, NULL), OBX_OK);
    obx_idem ok = idem_of(longkey, 1, obx_now_ms() + HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &ok, &id, &res, &err), OBX_OK);
    assert_int_equal(stat_events(s, NULL), 2);
}

static void test_expiry_sweep(void **state)
{
    fixture *f = *state;
    obx_store *s = f->s;
    uint32_t sink = f->sink;
    obx_event_in e = ev_in("{\"a\":1}", &sink, 1);
    int64_t now = obx_now_ms();
    uint64_t id1, id2;
    obx_idem_result res;
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "key-%d", i);
        obx_idem im = idem_of(key, 1, now + (i + 1) * HOUR);
        assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id1, &res, NULL), OBX_OK);
    }
    size_t removed = 9;
    assert_int_equal(obx_idem_sweep(s, now, 0, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 0);
    /* Two expired by now + 2h, taken one per call with max 1. */
    assert_int_equal(obx_idem_sweep(s, now + 2 * HOUR, 1, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(obx_idem_sweep(s, now + 2 * HOUR, 1, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(obx_idem_sweep(s, now + 2 * HOUR, 1, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 0);
    uint64_t keys = 0;
    assert_int_equal(stat_events(s, &keys), 3);
    assert_int_equal(keys, 1);
    /* A swept key is new again; the kept one still replays. */
    obx_idem im0 = idem_of("key-0", 2, now + HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im0, &id2, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 0);
    obx_idem im2 = idem_of("key-2", 1, now + 3 * HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im2, &id2, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 1);
    obx_idem_result_clear(&res);
    /* An expired key that was not swept yet is free too, and overwriting it leaves one
       record and one expiry entry (the sweep then removes exactly one). */
    obx_idem past = idem_of("old", 1, now - 1);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &past, &id1, &res, NULL), OBX_OK);
    obx_idem fresh = idem_of("old", 3, now + HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &fresh, &id2, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 0);
    assert_true(id2 > id1);
    assert_int_equal(stat_events(s, &keys), 6);
    assert_int_equal(keys, 3); /* key-0, key-2, old */
    assert_int_equal(obx_idem_sweep(s, now + 10 * HOUR, 0, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 3);
    assert_int_equal(stat_events(s, &keys), 6);
    assert_int_equal(keys, 0);
    size_t problems = 1;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0);
}

/* A request that routed no event still keeps its key (and its note). */
static void test_key_without_events(void **state)
{
    obx_store *s = ((fixture *)*state)->s;
    obx_idem im = idem_of("empty", 5, obx_now_ms() + HOUR);
    im.note = "0";
    im.note_len = 1;
    obx_idem_result res;
    assert_int_equal(obx_enqueue_idem(s, NULL, 0, &im, NULL, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(obx_enqueue_idem(s, NULL, 0, &im, NULL, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.n_ids, 0);
    assert_memory_equal(res.note, "0", 1);
    obx_idem_result_clear(&res);
    obx_error err = {0};
    assert_int_equal(obx_enqueue(s, NULL, 0, NULL, &err), OBX_ERR_INVALID);
}

#define RACERS 8

typedef struct racer {
    obx_store *s;
    uint32_t sink;
    pthread_barrier_t *go;
    int rc, replayed;
    uint64_t id;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    obx_event_in e = ev_in("{\"race\":1}", &r->sink, 1);
    obx_idem im = idem_of("race-key", 9, obx_now_ms() + HOUR);
    obx_idem_result res;
    pthread_barrier_wait(r->go);
    uint64_t id = 0;
    r->rc = obx_enqueue_idem(r->s, &e, 1, &im, &id, &res, NULL);
    r->replayed = res.replayed;
    r->id = res.replayed ? res.ids[0] : id;
    obx_idem_result_clear(&res);
    return NULL;
}

/* Threads with one key, sharing group commits: one stores, every other one replays. */
static void test_concurrent_same_key(void **state)
{
    fixture *f = *state;
    obx_store *s = f->s;
    uint32_t sink = f->sink;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    racer r[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){.s = s, .sink = sink, .go = &go};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    int stored = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, OBX_OK);
        stored += !r[i].replayed;
        assert_int_equal(r[i].id, r[0].id);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(stored, 1);
    assert_int_equal(stat_events(s, NULL), 1);
}

/* The requests test_batch and test_submit both make under one key: no key (stored), the
 * key (stored), the key again (replayed), the key with another body (conflict). */
typedef struct four {
    obx_event_in a, b, plain[2];
    obx_idem k, k_other;
    uint64_t ids[4][2];
    obx_enqueue_req r[4];
} four;

static void four_init(four *t, const uint32_t *sink, const char *key)
{
    memset(t, 0, sizeof *t);
    t->a = ev_in("{\"a\":1}", sink, 1);
    t->b = ev_in("{\"b\":1}", sink, 1);
    t->plain[0] = t->a;
    t->plain[1] = t->b;
    t->k = idem_of(key, 1, obx_now_ms() + HOUR);
    t->k_other = idem_of(key, 2, obx_now_ms() + HOUR);
    t->r[0] = (obx_enqueue_req){.events = t->plain, .n = 2, .ids = t->ids[0]};
    t->r[1] = (obx_enqueue_req){.events = &t->a, .n = 1, .idem = &t->k, .ids = t->ids[1]};
    t->r[2] = (obx_enqueue_req){.events = &t->a, .n = 1, .idem = &t->k, .ids = t->ids[2]};
    t->r[3] = (obx_enqueue_req){.events = &t->b, .n = 1, .idem = &t->k_other, .ids = t->ids[3]};
}

/* Each finished on its own; 3 events and 1 key stored. Clears the results. */
static void four_check(four *t, obx_store *s, const char *key)
{
    assert_int_equal(t->r[0].rc, OBX_OK);
    assert_true(t->ids[0][0] > 0 && t->ids[0][1] == t->ids[0][0] + 1);
    assert_int_equal(t->r[1].rc, OBX_OK);
    assert_int_equal(t->r[1].res.replayed, 0);
    assert_int_equal(t->r[2].rc, OBX_OK);
    assert_int_equal(t->r[2].res.replayed, 1);
    assert_int_equal(t->r[2].res.ids[0], t->ids[1][0]);
    assert_int_equal(t->r[3].rc, OBX_ERR_CONFLICT);
    assert_non_null(strstr(t->r[3].err.msg, key));
    for (int i = 0; i < 4; i++)
        obx_idem_result_clear(&t->r[i].res);
    uint64_t keys = 0;
    assert_int_equal(stat_events(s, &keys), 3);
    assert_int_equal(keys, 1);
}

/* A batch: requests stored, replayed and refused on their own, sharing commits. */
static void test_batch(void **state)
{
    fixture *f = *state;
    four t;
    four_init(&t, &f->sink, "batch-1");
    obx_idem bad = idem_of("", 1, obx_now_ms() + HOUR);
    uint64_t bad_id = 0;
    obx_enqueue_req r[5] = {t.r[0],
                            t.r[1],
                            t.r[2],
                            t.r[3],
                            {.events = &t.a, .n = 1, .idem = &bad, .ids = &bad_id}}; /* invalid */
    assert_int_equal(obx_enqueue_batch(f->s, r, 5), OBX_OK);
    memcpy(t.r, r, sizeof t.r);
    assert_int_equal(r[4].rc, OBX_ERR_INVALID);
    four_check(&t, f->s, "batch-1");
}

/* obx_enqueue_submit's completions: how many arrived, under a lock (the writer calls). */
typedef struct submitted {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    pthread_t writer; /* the thread that reported */
} submitted;

static void on_submitted(void *ud, obx_enqueue_req *req)
{
    submitted *d = ud;
    (void)req;
    pthread_mutex_lock(&d->mu);
    d->done++;
    d->writer = pthread_self();
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/*
 * Asynchronous requests: stored, replayed, in conflict or refused like obx_enqueue_batch's,
 * reported once each from the writer thread (not the caller's); refused at once (done never
 * called) with a bad key; refused on a handle without a writer; and obx_close finishes a
 * queued request before the store goes away.
 */
static void test_submit(void **state)
{
    fixture *f = *state;
    assert_true(obx_enqueue_can_submit(f->s));
    four t;
    four_init(&t, &f->sink, "async-1");
    submitted d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    for (int i = 0; i < 4; i++)
        assert_int_equal(obx_enqueue_submit(f->s, &t.r[i], on_submitted, &d), OBX_OK);
    obx_idem bad = idem_of("", 1, obx_now_ms() + HOUR);
    uint64_t bad_id = 0;
    obx_enqueue_req refused = {.events = &t.a, .n = 1, .idem = &bad, .ids = &bad_id};
    assert_int_equal(obx_enqueue_submit(f->s, &refused, on_submitted, &d), OBX_ERR_INVALID);
    assert_int_equal(refused.rc, OBX_ERR_INVALID);
    pthread_mutex_lock(&d.mu);
    while (d.done < 4)
        pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    assert_int_equal(d.done, 4); /* the refused one was never reported */
    assert_false(pthread_equal(d.writer, pthread_self()));
    four_check(&t, f->s, "async-1");

    /* Queued, then the store closes: the request is finished (stored) first. */
    uint64_t late = 0;
    obx_enqueue_req q = {.events = &t.a, .n = 1, .ids = &late};
    assert_int_equal(obx_enqueue_submit(f->s, &q, on_submitted, &d), OBX_OK);
    obx_close(f->s);
    assert_int_equal(d.done, 5);
    assert_int_equal(q.rc, OBX_OK);
    assert_true(late > t.ids[1][0]);

    /* A tool's handle has no writer thread: refused, pointing at obx_enqueue_batch. */
    obx_options o;
    obx_options_init(&o);
    assert_int_equal(obx_open(f->dir, &o, &f->s, NULL), OBX_OK);
    assert_false(obx_enqueue_can_submit(f->s));
    assert_int_equal(obx_enqueue_submit(f->s, &q, on_submitted, &d), OBX_ERR_STATE);
    assert_non_null(strstr(q.err.msg, "writer thread"));
    assert_int_equal(d.done, 5);
}

/* A replay needs no room: a full store still answers a known key. */
static void test_replay_when_full(void **state)
{
    (void)state;
    char *dir = tmpdir_new("idem");
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = 1u << 20;
    o.prefill = 0;
    obx_store *s = NULL;
    assert_int_equal(obx_open(dir, &o, &s, NULL), OBX_OK);
    uint32_t sink;
    assert_int_equal(obx_sink_id(s, "webhook", &sink, NULL), OBX_OK);
    static char body[16384];
    memset(body, 'x', sizeof body - 1);
    obx_event_in e = ev_in(body, &sink, 1);
    obx_idem im = idem_of("before-full", 1, obx_now_ms() + HOUR);
    obx_idem_result res;
    uint64_t id, first;
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &first, &res, NULL), OBX_OK);
    int rc = OBX_OK;
    for (int i = 0; i < 200 && rc == OBX_OK; i++)
        rc = obx_enqueue(s, &e, 1, &id, NULL);
    assert_int_equal(rc, OBX_ERR_FULL);
    /* A new key is refused like an event... */
    obx_idem im2 = idem_of("after-full", 1, obx_now_ms() + HOUR);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im2, &id, &res, NULL), OBX_ERR_FULL);
    /* ...a known one is answered. */
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.ids[0], first);
    obx_idem_result_clear(&res);
    store_dispose(s, dir);
}

/* Open the closed store at dir with LMDB itself, in a write transaction on "idem". */
static MDB_env *raw_idem(const char *dir, MDB_txn **txn, MDB_dbi *dbi)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 12), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, "idem", 0, dbi), 0);
    return env;
}

static obx_store *open_readonly(const char *dir)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_READONLY;
    obx_store *s = NULL;
    assert_int_equal(obx_open(dir, &o, &s, NULL), OBX_OK);
    return s;
}

/* A store made before keys existed has no "idem" database: a read-only handle opens it
 * without one (stats and check work), a writable one adds it. */
static void test_store_without_keys(void **state)
{
    (void)state;
    char *dir = tmpdir_new("idem-old");
    obx_close(owner_open(dir));
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = raw_idem(dir, &txn, &dbi);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    obx_store *s = open_readonly(dir);
    uint64_t keys = 9;
    assert_int_equal(stat_events(s, &keys), 0);
    assert_int_equal(keys, 0);
    size_t problems = 1, removed = 1;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0);
    assert_int_equal(obx_idem_sweep(s, obx_now_ms(), 0, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 0);
    obx_close(s);

    s = owner_open(dir);
    uint32_t sink;
    assert_int_equal(obx_sink_id(s, "webhook", &sink, NULL), OBX_OK);
    obx_event_in e = ev_in("{\"a\":1}", &sink, 1);
    obx_idem im = idem_of("after-upgrade", 1, obx_now_ms() + HOUR);
    obx_idem_result res;
    uint64_t id;
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id, &res, NULL), OBX_OK);
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, 1);
    obx_idem_result_clear(&res);
    store_dispose(s, dir);
}

static void count_problem(void *ud, const char *problem)
{
    if (strstr(problem, "idempotency"))
        ++*(int *)ud;
}

/* obx_check names a key whose expiry entry is gone (it would never be swept). */
static void test_check_reports_keys(void **state)
{
    fixture *f = *state;
    obx_event_in e = ev_in("{\"a\":1}", &f->sink, 1);
    obx_idem im = idem_of("checked", 1, INT64_C(4102444800000)); /* year 2100 */
    obx_idem_result res;
    uint64_t id;
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &im, &id, &res, NULL), OBX_OK);
    obx_close(f->s);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = raw_idem(f->dir, &txn, &dbi);
    unsigned char xk[1 + 8 + 7] = {'x'};
    for (int i = 0; i < 8; i++)
        xk[1 + i] = (unsigned char)(UINT64_C(4102444800000) >> (56 - 8 * i));
    memcpy(xk + 9, "checked", 7);
    MDB_val k = {sizeof xk, xk};
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    f->s = open_readonly(f->dir);
    int named = 0;
    size_t problems = 0;
    assert_int_equal(obx_check(f->s, count_problem, &named, &problems, NULL), OBX_OK);
    assert_true(problems >= 1);
    assert_true(named >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_same_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_without_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit, setup, teardown),
        cmocka_unit_test(test_replay_when_full),
        cmocka_unit_test(test_store_without_keys),
        cmocka_unit_test_setup_teardown(test_check_reports_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
