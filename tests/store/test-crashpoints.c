/*
 * test-crashpoints.c - deterministic crash points (OUTBOX_CRASH_POINT): a child process
 * aborts at a named point inside the store; the parent reopens the store and asserts the
 * expected outcome. The rule in every case: a duplicate at most, never a loss, and the
 * store's invariants hold (obx_check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static void assert_clean(obx_store *s)
{
    size_t problems = 1;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0);
}

/* Prepare a store with one sink and `n` pending events. */
static char *prepare(int n, uint32_t *sink)
{
    char *dir = tmpdir_new("cp");
    obx_store *s = owner_open(dir);
    assert_int_equal(obx_sink_id(s, "webhook", sink, NULL), OBX_OK);
    for (int i = 0; i < n; i++) {
        obx_event_in e = ev_in("{\"n\":1}", sink, 1);
        uint64_t id;
        assert_int_equal(obx_enqueue(s, &e, 1, &id, NULL), OBX_OK);
    }
    obx_close(s);
    return dir;
}

typedef void (*child_fn)(obx_store *s, uint32_t sink, int fd);
static const char *crash_after = "1";

/* Run fn in a child with the crash point set; expect it to die by SIGABRT. */
static void crash_child(const char *dir, const char *point, uint32_t sink, child_fn fn, int fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OUTBOX_CRASH_POINT", point, 1);
        setenv("OUTBOX_CRASH_AFTER", crash_after, 1);
        obx_store *s = owner_open(dir);
        fn(s, sink, fd);
        _exit(0); /* the crash point was not reached */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void do_enqueue(obx_store *s, uint32_t sink, int fd)
{
    obx_event_in e = ev_in("{\"new\":1}", &sink, 1);
    uint64_t id;
    if (obx_enqueue(s, &e, 1, &id, NULL) == OBX_OK && write(fd, &id, 8) != 8)
        _exit(3);
}

static size_t ledger_size(int fd)
{
    return (size_t)lseek(fd, 0, SEEK_END);
}

static uint64_t events_stored(obx_store *s)
{
    obx_stats *st;
    assert_int_equal(obx_stats_get(s, &st, NULL), OBX_OK);
    uint64_t n = st->events;
    obx_stats_free(st);
    return n;
}

static void test_enqueue_before_commit(void **state)
{
    (void)state;
    uint32_t sink;
    char *dir = prepare(3, &sink);
    FILE *ledger = tmpfile();
    crash_child(dir, "enqueue-before-commit", sink, do_enqueue, fileno(ledger));
    assert_int_equal(ledger_size(fileno(ledger)), 0); /* never acknowledged */
    obx_store *s = owner_open(dir);
    assert_int_equal(events_stored(s), 3); /* and not stored: nothing half-written */
    assert_clean(s);
    obx_close(s);
    fclose(ledger);
    rm_rf(dir);
    free(dir);
}

static void test_enqueue_after_commit(void **state)
{
    (void)state;
    uint32_t sink;
    char *dir = prepare(3, &sink);
    FILE *ledger = tmpfile();
    crash_child(dir, "enqueue-after-commit", sink, do_enqueue, fileno(ledger));
    assert_int_equal(ledger_size(fileno(ledger)), 0); /* the producer never got its ack */
    obx_store *s = owner_open(dir);
    /* ...but the event is durable: a retrying producer makes a duplicate, never a loss */
    assert_int_equal(events_stored(s), 4);
    obx_event *e;
    assert_int_equal(obx_event_get(s, 4, &e, NULL), OBX_OK);
    assert_int_equal(e->deliveries[0].state, OBX_STATE_PENDING);
    obx_event_free(e);
    assert_clean(s);
    obx_close(s);
    fclose(ledger);
    rm_rf(dir);
    free(dir);
}

static obx_idem retry_key(void)
{
    obx_idem im = {.key = "retry-after-crash", .expires_ms = obx_now_ms() + 3600 * 1000};
    memset(im.hash, 0x5a, sizeof im.hash);
    return im;
}

static void do_enqueue_idem(obx_store *s, uint32_t sink, int fd)
{
    obx_event_in e = ev_in("{\"new\":1}", &sink, 1);
    obx_idem im = retry_key();
    obx_idem_result res;
    uint64_t id;
    if (obx_enqueue_idem(s, &e, 1, &im, &id, &res, NULL) == OBX_OK && write(fd, &id, 8) != 8)
        _exit(3);
}

/* Crash at `point` while enqueueing with a key; after a restart the retry with the key
 * replays (the key was committed with the event) or stores (neither was): one event. */
static void idem_retry_after_crash(const char *point, int committed)
{
    uint32_t sink;
    char *dir = prepare(3, &sink);
    FILE *ledger = tmpfile();
    crash_child(dir, point, sink, do_enqueue_idem, fileno(ledger));
    assert_int_equal(ledger_size(fileno(ledger)), 0); /* the producer never got its ack */
    obx_store *s = owner_open(dir);
    assert_int_equal(events_stored(s), 3 + (uint64_t)committed);
    obx_event_in e = ev_in("{\"new\":1}", &sink, 1);
    obx_idem im = retry_key();
    obx_idem_result res;
    uint64_t id = 0;
    assert_int_equal(obx_enqueue_idem(s, &e, 1, &im, &id, &res, NULL), OBX_OK);
    assert_int_equal(res.replayed, committed);
    assert_int_equal(committed ? res.ids[0] : id, 4);
    obx_idem_result_clear(&res);
    assert_int_equal(events_stored(s), 4);
    assert_clean(s);
    obx_close(s);
    fclose(ledger);
    rm_rf(dir);
    free(dir);
}

static void test_enqueue_idem_after_commit(void **state)
{
    (void)state;
    idem_retry_after_crash("enqueue-after-commit", 1);
}

static void test_enqueue_idem_before_commit(void **state)
{
    (void)state;
    idem_retry_after_crash("enqueue-before-commit", 0);
}

/* Enqueue n 2 KiB events one by one, writing each acknowledged id to fd (if >= 0).
 * Returns 0, or -1 at the first failure. */
static int grow(obx_store *s, uint32_t sink, int n, int fd)
{
    static char body[2048];
    memset(body, 'g', sizeof body - 1);
    for (int i = 0; i < n; i++) {
        obx_event_in e = ev_in(body, &sink, 1);
        uint64_t id;
        if (obx_enqueue(s, &e, 1, &id, NULL) != OBX_OK || (fd >= 0 && write(fd, &id, 8) != 8))
            return -1;
    }
    return 0;
}

/* Grow until killed: the store outgrows its zero-filled space, so a prefill starts and
 * is killed midway. */
static void do_grow(obx_store *s, uint32_t sink, int fd)
{
    if (grow(s, sink, 20000, fd) != 0)
        _exit(3);
}

static void test_prefill_partial(void **state)
{
    (void)state;
    uint32_t sink;
    char *dir = prepare(3, &sink);
    FILE *ledger = tmpfile();
    crash_child(dir, "prefill-partial", sink, do_grow, fileno(ledger));
    size_t acked = ledger_size(fileno(ledger)) / 8;
    assert_true(acked > 100); /* it grew past the first fill before dying in the next */
    obx_store *s = owner_open(dir);
    /* Every acknowledged event is there; the batch that was filling was not committed. */
    assert_int_equal(events_stored(s), 3 + acked);
    uint64_t *ids = malloc(acked * 8);
    assert_int_equal(pread(fileno(ledger), ids, acked * 8, 0), (ssize_t)(acked * 8));
    for (size_t i = 0; i < acked; i += 97) {
        obx_event *e;
        assert_int_equal(obx_event_get(s, ids[i], &e, NULL), OBX_OK);
        assert_int_equal(e->body_len, 2047);
        obx_event_free(e);
    }
    free(ids);
    assert_clean(s);
    /* The store keeps working (and filling ahead) after the crash. */
    assert_int_equal(grow(s, sink, 2000, -1), 0);
    assert_int_equal(events_stored(s), 3 + acked + 2000);
    assert_clean(s);
    obx_close(s);
    fclose(ledger);
    rm_rf(dir);
    free(dir);
}

static void do_dead(obx_store *s, uint32_t sink, int fd)
{
    (void)fd;
    obx_job *jobs;
    size_t n;
    if (obx_claim_due(s, sink, obx_now_ms() + 1, 1, &jobs, &n, NULL, NULL) || n != 1)
        _exit(4);
    obx_result r = {.event_id = jobs[0].event_id,
                    .sink_id = sink,
                    .outcome = OBX_OUTCOME_DEAD,
                    .started_ms = obx_now_ms(),
                    .status = 500,
                    .reason = "giving up"};
    obx_record(s, &r, 1, NULL);
}

static void test_dead_move(void **state)
{
    (void)state;
    uint32_t sink;
    char *dir = prepare(2, &sink);
    crash_child(dir, "dead-move", sink, do_dead, -1);
    obx_store *s = owner_open(dir);
    obx_event *e;
    assert_int_equal(obx_event_get(s, 1, &e, NULL), OBX_OK);
    /* the move never committed: the delivery is pending again, in doubt, to be re-sent */
    assert_int_equal(e->deliveries[0].state, OBX_STATE_PENDING);
    assert_true(e->deliveries[0].in_doubt);
    obx_event_free(e);
    obx_stats *st;
    assert_int_equal(obx_stats_get(s, &st, NULL), OBX_OK);
    assert_int_equal(st->sinks[0].dead, 0);
    assert_int_equal(st->sinks[0].pending, 2);
    assert_int_equal(st->sinks[0].in_doubt, 1);
    obx_stats_free(st);
    assert_clean(s);
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

static void do_sweep(obx_store *s, uint32_t sink, int fd)
{
    (void)fd;
    obx_job *jobs;
    size_t n;
    if (obx_claim_due(s, sink, obx_now_ms() + 1, 10, &jobs, &n, NULL, NULL) || n != 5)
        _exit(4);
    obx_result r[5];
    for (size_t i = 0; i < n; i++)
        r[i] = (obx_result){.event_id = jobs[i].event_id,
                            .sink_id = sink,
                            .outcome = OBX_OUTCOME_DELIVERED,
                            .started_ms = 1000,
                            .status = 200};
    if (obx_record(s, r, n, NULL))
        _exit(5);
    size_t removed;
    obx_retention_sweep(s, 2000, 100, &removed, NULL);
}

static void test_retention(void **state)
{
    (void)state;
    uint32_t sink;
    char *dir = prepare(5, &sink);
    crash_after = "3"; /* after three of the five deletions */
    crash_child(dir, "retention", sink, do_sweep, -1);
    crash_after = "1";
    obx_store *s = owner_open(dir);
    /* the sweep's transaction never committed: all five delivered records are still there
     * and a new sweep removes them */
    assert_int_equal(events_stored(s), 5);
    assert_clean(s);
    size_t removed;
    assert_int_equal(obx_retention_sweep(s, 2000, 100, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 5);
    assert_int_equal(events_stored(s), 0);
    assert_clean(s);
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueue_before_commit),
        cmocka_unit_test(test_enqueue_after_commit),
        cmocka_unit_test(test_enqueue_idem_after_commit),
        cmocka_unit_test(test_enqueue_idem_before_commit),
        cmocka_unit_test(test_dead_move),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_prefill_partial),
    };
    return cmocka_run_group_tests_name("store-crashpoints", tests, NULL, NULL);
}
