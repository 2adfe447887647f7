/*
 * test-crash.c - kill -9 loop over the store. A child process enqueues from several
 * threads (and a worker claims and records results at the same time); after each
 * acknowledgement the id is appended to a ledger file. The parent SIGKILLs the child at
 * a random moment, reopens the store, and checks that every acknowledged id is present
 * with its deliveries, that the invariants hold (obx_check), and that nothing was
 * acknowledged twice. OUTBOX_CRASH_CYCLES overrides the number of cycles (default 60).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

#define PRODUCERS 4

static int ledger_fd;
static obx_store *child_store;
static uint32_t child_sinks[2];

static void *child_producer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char body[200];
    for (;;) {
        int n = snprintf(body, sizeof body, "{\"version\":\"0.2\",\"n\":%u}", rand_r(&seed));
        obx_event_in e = {
            "flag", "created", body, (size_t)n, 0, child_sinks, 1 + (rand_r(&seed) & 1)};
        uint64_t ids[3];
        obx_event_in batch[3] = {e, e, e};
        size_t cnt = 1 + (size_t)(rand_r(&seed) % 3);
        if (obx_enqueue(child_store, batch, cnt, ids, NULL) != OBX_OK)
            continue;
        /* Acknowledged: record it (a write(2) completes even if we are killed after). */
        if (write(ledger_fd, ids, cnt * sizeof ids[0]) != (ssize_t)(cnt * sizeof ids[0]))
            _exit(3);
    }
    return NULL;
}

static void *child_worker(void *arg)
{
    (void)arg;
    unsigned seed = 7;
    for (;;) {
        obx_job *jobs;
        size_t n;
        uint32_t sink = child_sinks[rand_r(&seed) & 1];
        if (obx_claim_due(child_store, sink, obx_now_ms(), 16, &jobs, &n, NULL, NULL) != OBX_OK)
            continue;
        obx_result r[16];
        for (size_t i = 0; i < n; i++) {
            int pick = rand_r(&seed) % 3;
            r[i] = (obx_result){.event_id = jobs[i].event_id,
                                .sink_id = sink,
                                .outcome = pick == 0   ? OBX_OUTCOME_DELIVERED
                                           : pick == 1 ? OBX_OUTCOME_RETRY
                                                       : OBX_OUTCOME_DEAD,
                                .started_ms = obx_now_ms(),
                                .status = 500,
                                .error = "HTTP 500",
                                .reason = "test",
                                .next_attempt_ms = obx_now_ms() + 5};
        }
        obx_record(child_store, r, n, NULL);
        obx_jobs_free(jobs, n);
    }
    return NULL;
}

static void child_main(const char *dir, const char *ledger)
{
    ledger_fd = open(ledger, O_WRONLY | O_APPEND | O_CREAT, 0600);
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    if (ledger_fd < 0 || obx_open(dir, &o, &child_store, NULL) != OBX_OK)
        _exit(2);
    if (obx_sink_id(child_store, "a", &child_sinks[0], NULL) ||
        obx_sink_id(child_store, "b", &child_sinks[1], NULL))
        _exit(2);
    pthread_t th[PRODUCERS + 1];
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&th[i], NULL, child_producer, (void *)(uintptr_t)(i + getpid()));
    pthread_create(&th[PRODUCERS], NULL, child_worker, NULL);
    pause();
    _exit(0);
}

static void problem_cb(void *ud, const char *p)
{
    (void)ud;
    fprintf(stderr, "check: %s\n", p);
}

static void test_kill_loop(void **state)
{
    (void)state;
    char *dir = tmpdir_new("crash");
    char ledger[600];
    snprintf(ledger, sizeof ledger, "%s.ledger", dir);
    int cycles = 60;
    const char *env = getenv("OUTBOX_CRASH_CYCLES");
    if (env && *env)
        cycles = (int)strtol(env, NULL, 10);
    unsigned seed = (unsigned)time(NULL);
    uint64_t acked_total = 0;
    for (int c = 0; c < cycles; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_main(dir, ledger);
        struct timespec ts = {0, (long)(20 + rand_r(&seed) % 130) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status)); /* it did not exit on its own (2/3 = setup error) */

        /* Reopen and verify every acknowledged id. */
        obx_options o;
        obx_options_init(&o);
        o.flags = OBX_OPEN_OWNER;
        obx_store *s;
        obx_error err = {0};
        int rc = obx_open(dir, &o, &s, &err);
        if (rc)
            fail_msg("cycle %d: reopen: %s", c, err.msg);
        int fd = open(ledger, O_RDONLY);
        assert_true(fd >= 0);
        struct stat st;
        fstat(fd, &st);
        size_t n = (size_t)st.st_size / 8;
        uint64_t *ids = malloc(n * 8 + 8);
        assert_int_equal(read(fd, ids, n * 8), (ssize_t)(n * 8));
        close(fd);
        for (size_t i = 0; i < n; i++) {
            obx_event *e = NULL;
            rc = obx_event_get(s, ids[i], &e, &err);
            if (rc)
                fail_msg("cycle %d: acknowledged event %llu lost: %s", c,
                         (unsigned long long)ids[i], err.msg);
            assert_true(e->n_deliveries >= 1);
            obx_event_free(e);
            if (i)
                for (size_t j = i < 64 ? 0 : i - 64; j < i; j++)
                    assert_true(ids[j] != ids[i]); /* no id acknowledged twice (recent window) */
        }
        size_t problems = 0;
        assert_int_equal(obx_check(s, problem_cb, NULL, &problems, NULL), OBX_OK);
        assert_int_equal(problems, 0);
        obx_stats *stt;
        assert_int_equal(obx_stats_get(s, &stt, NULL), OBX_OK);
        assert_true(stt->enqueued >= n);
        obx_stats_free(stt);
        obx_close(s);
        acked_total = n;
        free(ids);
    }
    printf("crash: %d kill cycles, %llu events acknowledged, 0 lost\n", cycles,
           (unsigned long long)acked_total);
    assert_true(acked_total > 0);
    unlink(ledger);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_loop)};
    return cmocka_run_group_tests_name("store-crash", tests, NULL, NULL);
}
