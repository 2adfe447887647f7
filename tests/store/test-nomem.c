/*
 * test-nomem.c - out of memory is not corruption. The test executable is linked with
 * -Wl,--wrap=malloc,calloc,realloc,strdup (tests/store/meson.build), so every allocation
 * made by the store library goes through the wrappers below, which fail exactly the Nth
 * call once armed. Each store operation (enqueue, claim, record, replay, retention,
 * list, get, check, owner open with deliveries in flight) is run with N swept from 1
 * until the operation no longer reaches its Nth allocation. After every run:
 *   - a failed operation failed with OBX_ERR_NOMEM and changed nothing (counters equal);
 *   - no delivery became a dead letter, and a listing never reported a record corrupt;
 *   - obx_check finds no problem;
 *   - with allocation working again, every pending and in-flight delivery can be
 *     claimed and delivered (nothing is stuck outside the due index).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

/* ---- allocation failure injection ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static long fail_at; /* 0: disarmed; else the 1-based allocation number that fails */
static long alloc_calls;
static int fired;

static int inject(void)
{
    if (!__atomic_load_n(&fail_at, __ATOMIC_ACQUIRE))
        return 0;
    long n = __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_SEQ_CST);
    if (n != __atomic_load_n(&fail_at, __ATOMIC_ACQUIRE))
        return 0;
    __atomic_store_n(&fired, 1, __ATOMIC_RELEASE);
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return inject() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return inject() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return inject() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return inject() ? NULL : __real_strdup(s);
}

static void arm(long n)
{
    __atomic_store_n(&alloc_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fired, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fail_at, n, __ATOMIC_RELEASE);
}

/* Disarm; returns whether the Nth allocation was reached (and failed). */
static int disarm(void)
{
    __atomic_store_n(&fail_at, 0, __ATOMIC_RELEASE);
    return __atomic_load_n(&fired, __ATOMIC_ACQUIRE);
}

/* ---- store helpers ---- */

#define MAX_N      400 /* far more allocations than any single operation below makes */
#define FAR_FUTURE (obx_now_ms() + 365LL * 86400 * 1000)

typedef struct fixture {
    char *dir;
    obx_store *s;
    uint32_t sinks[2];
    uint64_t dead; /* dead letters made on purpose (replay phase) */
} fixture;

static obx_store *open_owner(const char *dir)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.prefill = 0;
    obx_store *s = NULL;
    obx_error err = {0};
    if (obx_open(dir, &o, &s, &err) != OBX_OK)
        fail_msg("open %s: %s", dir, err.msg);
    return s;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tmpdir_new("nomem");
    f->s = open_owner(f->dir);
    assert_int_equal(obx_sink_id(f->s, "webhook", &f->sinks[0], NULL), OBX_OK);
    assert_int_equal(obx_sink_id(f->s, "slack", &f->sinks[1], NULL), OBX_OK);
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

/* Counters of the whole store: per sink pending, inflight, in doubt, delivered, dead. */
typedef struct snap {
    uint64_t events, enqueued;
    uint64_t c[2][5];
} snap;

static snap take_snap(fixture *f)
{
    obx_stats *st = NULL;
    obx_error err = {0};
    if (obx_stats_get(f->s, &st, &err) != OBX_OK)
        fail_msg("stats: %s", err.msg);
    snap out = {st->events, st->enqueued, {{0}}};
    for (size_t i = 0; i < st->n_sinks; i++)
        for (int k = 0; k < 2; k++)
            if (st->sinks[i].id == f->sinks[k]) {
                obx_sink_stats *x = &st->sinks[i];
                uint64_t c[5] = {x->pending, x->inflight, x->in_doubt, x->delivered, x->dead};
                memcpy(out.c[k], c, sizeof c);
            }
    obx_stats_free(st);
    return out;
}

static void assert_same(const snap *a, const snap *b, const char *what, long n)
{
    if (memcmp(a, b, sizeof *a) != 0)
        fail_msg("%s failed at allocation %ld but changed the store's counters", what, n);
}

static void problem_cb(void *ud, const char *problem)
{
    (void)ud;
    print_error("check: %s\n", problem);
}

static void assert_check_clean(fixture *f)
{
    size_t problems = 99;
    obx_error err = {0};
    if (obx_check(f->s, problem_cb, NULL, &problems, &err) != OBX_OK)
        fail_msg("check: %s", err.msg);
    assert_int_equal(problems, 0);
}

static void enqueue(fixture *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        obx_event_in e = ev_in("{\"k\":\"v\"}", f->sinks, 2);
        uint64_t id;
        obx_error err = {0};
        if (obx_enqueue(f->s, &e, 1, &id, &err) != OBX_OK)
            fail_msg("enqueue: %s", err.msg);
    }
}

static obx_result result_for(const obx_job *j, int outcome)
{
    obx_result r = {j->event_id, j->sink_id, outcome, obx_now_ms(), 3, 200, NULL, 0, 0, 0, NULL};
    if (outcome == OBX_OUTCOME_RETRY) {
        r.status = 500;
        r.error = "server error";
        r.next_attempt_ms = obx_now_ms();
    } else if (outcome == OBX_OUTCOME_DEAD) {
        r.status = 410;
        r.reason = "gone";
    }
    return r;
}

static void record_all(fixture *f, const obx_job *jobs, size_t n, int outcome)
{
    obx_result *rs = calloc(n ? n : 1, sizeof *rs);
    for (size_t i = 0; i < n; i++)
        rs[i] = result_for(&jobs[i], outcome);
    obx_error err = {0};
    if (obx_record(f->s, rs, n, &err) != OBX_OK)
        fail_msg("record: %s", err.msg);
    free(rs);
}

/*
 * With allocation working: deliver everything pending (in-flight jobs given back by the
 * caller are recorded first). Then nothing may be pending or in flight, and the dead
 * letters are exactly the ones made on purpose.
 */
static void drain(fixture *f, obx_job *held, size_t n_held)
{
    if (n_held)
        record_all(f, held, n_held, OBX_OUTCOME_DELIVERED);
    for (int k = 0; k < 2; k++) {
        for (int round = 0; round < 1000; round++) {
            obx_job *jobs = NULL;
            size_t n = 0;
            obx_error err = {0};
            if (obx_claim_due(f->s, f->sinks[k], FAR_FUTURE, 64, &jobs, &n, NULL, &err))
                fail_msg("claim: %s", err.msg);
            if (n == 0)
                break;
            record_all(f, jobs, n, OBX_OUTCOME_DELIVERED);
            obx_jobs_free(jobs, n);
        }
    }
    snap s = take_snap(f);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(s.c[k][0], 0); /* pending: none stuck */
        assert_int_equal(s.c[k][1], 0); /* in flight */
    }
    assert_int_equal(s.c[0][4] + s.c[1][4], f->dead);
    assert_check_clean(f);
}

/* A failed operation must say "out of memory", never "corrupt" or anything else. */
static void assert_nomem(int rc, const obx_error *err, const char *what, long n)
{
    if (rc != OBX_ERR_NOMEM)
        fail_msg("%s with allocation %ld failing: rc %d (%s), want OBX_ERR_NOMEM", what, n, rc,
                 err->msg);
}

/* ---- the sweeps ---- */

static void test_enqueue(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        snap before = take_snap(f);
        const char *bodies[] = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"};
        obx_event_in evs[3];
        for (int i = 0; i < 3; i++)
            evs[i] = ev_in(bodies[i], f->sinks, 2);
        uint64_t ids[3];
        obx_error err = {0};
        arm(n);
        int rc = obx_enqueue(f->s, evs, 3, ids, &err);
        int hit = disarm();
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "enqueue", n);
            snap after = take_snap(f);
            assert_same(&before, &after, "enqueue", n);
        }
        drain(f, NULL, 0);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

static void test_claim(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        enqueue(f, 3);
        snap before = take_snap(f);
        obx_job *jobs = NULL;
        size_t got = 0;
        obx_error err = {0};
        arm(n);
        int rc = obx_claim_due(f->s, f->sinks[0], FAR_FUTURE, 8, &jobs, &got, NULL, &err);
        int hit = disarm();
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "claim", n);
            assert_int_equal(got, 0);
            snap after = take_snap(f);
            assert_same(&before, &after, "claim", n);
        } else {
            assert_int_equal(got, 3); /* none dead-lettered or dropped on the way */
        }
        drain(f, jobs, got);
        obx_jobs_free(jobs, got);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

static void test_record(void **state)
{
    fixture *f = *state;
    static const int outcomes[] = {OBX_OUTCOME_DELIVERED, OBX_OUTCOME_RETRY, OBX_OUTCOME_RELEASE};
    for (size_t o = 0; o < sizeof outcomes / sizeof outcomes[0]; o++) {
        long n;
        for (n = 1; n < MAX_N; n++) {
            enqueue(f, 2);
            obx_job *jobs = NULL;
            size_t got = 0;
            assert_int_equal(
                obx_claim_due(f->s, f->sinks[1], FAR_FUTURE, 8, &jobs, &got, NULL, NULL), OBX_OK);
            assert_int_equal(got, 2);
            obx_result rs[2] = {result_for(&jobs[0], outcomes[o]),
                                result_for(&jobs[1], outcomes[o])};
            snap before = take_snap(f);
            obx_error err = {0};
            arm(n);
            int rc = obx_record(f->s, rs, 2, &err);
            int hit = disarm();
            if (rc != OBX_OK) {
                assert_nomem(rc, &err, "record", n);
                snap after = take_snap(f);
                assert_same(&before, &after, "record", n);
                drain(f, jobs, got); /* the caller still holds its results: record again */
            } else {
                drain(f, NULL, 0);
            }
            obx_jobs_free(jobs, got);
            if (!hit)
                break;
        }
        /* A release rewrites a fresh record: it may need no allocation at all. */
        assert_true((n > 1 || outcomes[o] == OBX_OUTCOME_RELEASE) && n < MAX_N);
    }
}

static void test_replay(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        enqueue(f, 1);
        obx_job *jobs = NULL;
        size_t got = 0;
        assert_int_equal(obx_claim_due(f->s, f->sinks[0], FAR_FUTURE, 8, &jobs, &got, NULL, NULL),
                         OBX_OK);
        assert_int_equal(got, 1);
        record_all(f, jobs, got, OBX_OUTCOME_DEAD);
        f->dead++;
        snap before = take_snap(f);
        obx_error err = {0};
        size_t count = 0;
        arm(n);
        int rc = obx_replay(f->s, jobs[0].event_id, OBX_ALL_SINKS, 0, &count, &err);
        int hit = disarm();
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "replay", n);
            snap after = take_snap(f);
            assert_same(&before, &after, "replay", n);
        } else {
            assert_int_equal(count, 1);
            f->dead--;
        }
        drain(f, NULL, 0);
        obx_jobs_free(jobs, got);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

static void test_retention(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        enqueue(f, 2);
        drain(f, NULL, 0);
        snap before = take_snap(f);
        obx_error err = {0};
        size_t removed = 0;
        arm(n);
        int rc = obx_retention_sweep(f->s, FAR_FUTURE, 3, &removed, &err);
        int hit = disarm();
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "retention sweep", n);
            snap after = take_snap(f);
            assert_same(&before, &after, "retention sweep", n);
        } else {
            uint64_t delivered = before.c[0][3] + before.c[1][3];
            assert_int_equal(removed, delivered < 3 ? delivered : 3);
        }
        drain(f, NULL, 0);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

/* Idempotent enqueue (a new key, then its replay) and the key sweep: each answers in full
 * or fails with OBX_ERR_NOMEM having changed nothing (no event, no key). */
static void test_idempotency(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        char key[32];
        snprintf(key, sizeof key, "nomem-%ld", n);
        obx_idem im = {
            .key = key, .expires_ms = obx_now_ms() + 3600000, .note = "n", .note_len = 1};
        memset(im.hash, 1, sizeof im.hash);
        obx_event_in e = ev_in("{\"i\":1}", f->sinks, 2);
        uint64_t id = 0;
        obx_idem_result res;
        obx_error err = {0};
        obx_stats *st = NULL;
        assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
        uint64_t keys = st->idem_keys;
        obx_stats_free(st);
        snap before = take_snap(f);
        arm(n);
        int rc = obx_enqueue_idem(f->s, &e, 1, &im, &id, &res, &err);
        int hit = disarm();
        assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
        uint64_t keys_after = st->idem_keys;
        obx_stats_free(st);
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "idempotent enqueue", n);
            snap after = take_snap(f);
            assert_same(&before, &after, "idempotent enqueue", n);
            assert_int_equal(keys_after, keys);
            assert_null(res.ids);
        } else {
            assert_int_equal(keys_after, keys + 1);
            /* Its replay, with the same allocation failing. */
            uint64_t first = id;
            arm(n);
            rc = obx_enqueue_idem(f->s, &e, 1, &im, &id, &res, &err);
            hit |= disarm();
            if (rc != OBX_OK) {
                assert_nomem(rc, &err, "idempotent replay", n);
            } else {
                assert_int_equal(res.replayed, 1);
                assert_int_equal(res.ids[0], first);
            }
            obx_idem_result_clear(&res);
        }
        size_t removed = 0;
        arm(n);
        rc = obx_idem_sweep(f->s, obx_now_ms() + 7200000, 2, &removed, &err);
        hit |= disarm();
        if (rc != OBX_OK)
            assert_nomem(rc, &err, "idempotency key sweep", n);
        drain(f, NULL, 0);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

typedef struct counter {
    size_t rows, corrupt;
} counter;

static int count_row(void *ud, const obx_event *ev, const obx_delivery *d)
{
    (void)ev;
    (void)d;
    ((counter *)ud)->rows++;
    return 0;
}

static void count_corrupt(void *ud, uint64_t ev, uint32_t sink, const char *what)
{
    (void)ev;
    (void)sink;
    (void)what;
    ((counter *)ud)->corrupt++;
}

/* Reads: list, get and check either answer in full or fail with OBX_ERR_NOMEM. */
static void test_reads(void **state)
{
    fixture *f = *state;
    enqueue(f, 4);
    obx_job *jobs = NULL;
    size_t got = 0;
    assert_int_equal(obx_claim_due(f->s, f->sinks[0], FAR_FUTURE, 2, &jobs, &got, NULL, NULL),
                     OBX_OK);
    record_all(f, jobs, got, OBX_OUTCOME_RETRY); /* records with history and errors */
    obx_jobs_free(jobs, got);
    const size_t total = 8; /* 4 events, 2 sinks each */
    int done[3] = {0};
    for (long n = 1; n < MAX_N && !(done[0] && done[1] && done[2]); n++) {
        if (!done[0]) {
            obx_query q;
            obx_query_init(&q);
            counter c = {0};
            obx_error err = {0};
            arm(n);
            int rc = obx_list(f->s, &q, count_row, count_corrupt, &c, &err);
            done[0] = !disarm();
            assert_int_equal(c.corrupt, 0);
            if (rc != OBX_OK)
                assert_nomem(rc, &err, "list", n);
            else
                assert_int_equal(c.rows, total); /* nothing skipped silently */
        }
        if (!done[1]) {
            obx_event *e = NULL;
            obx_error err = {0};
            arm(n);
            int rc = obx_event_get(f->s, 1, &e, &err);
            done[1] = !disarm();
            if (rc != OBX_OK)
                assert_nomem(rc, &err, "event get", n);
            else
                assert_int_equal(e->n_deliveries, 2);
            obx_event_free(e);
        }
        if (!done[2]) {
            size_t problems = 0;
            obx_error err = {0};
            arm(n);
            int rc = obx_check(f->s, problem_cb, NULL, &problems, &err);
            done[2] = !disarm();
            if (rc != OBX_OK)
                assert_nomem(rc, &err, "check", n);
            else
                assert_int_equal(problems, 0);
        }
    }
    assert_true(done[0] && done[1] && done[2]);
    drain(f, NULL, 0);
}

/* Owner open moves deliveries left in flight back to due: never loses one on the way. */
static void test_open_recovery(void **state)
{
    fixture *f = *state;
    long n;
    for (n = 1; n < MAX_N; n++) {
        enqueue(f, 2);
        obx_job *jobs = NULL;
        size_t got = 0;
        assert_int_equal(obx_claim_due(f->s, f->sinks[0], FAR_FUTURE, 8, &jobs, &got, NULL, NULL),
                         OBX_OK);
        assert_int_equal(got, 2);
        obx_jobs_free(jobs, got);
        obx_close(f->s); /* as after a crash: two deliveries in flight */
        f->s = NULL;
        obx_options o;
        obx_options_init(&o);
        o.flags = OBX_OPEN_OWNER;
        o.prefill = 0;
        obx_error err = {0};
        arm(n);
        int rc = obx_open(f->dir, &o, &f->s, &err);
        int hit = disarm();
        if (rc != OBX_OK) {
            assert_nomem(rc, &err, "owner open", n);
            f->s = open_owner(f->dir);
        }
        snap s = take_snap(f);
        assert_int_equal(s.c[0][1], 0); /* recovered: none left in flight */
        assert_int_equal(s.c[0][2], 2); /* both in doubt */
        drain(f, NULL, 0);
        if (!hit)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
