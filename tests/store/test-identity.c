/*
 * test-identity.c - is this the store we think it is: the random store id in every
 * delivery id (webhook-id), unique across stores and stable across reopen and replay; a
 * directory that lost its data.mdb refused; lock.mdb deleted or replaced under the owner
 * (tools refuse, the owner stops intake); check flags a store whose trees were lost.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static obx_store *open_flags(const char *dir, unsigned flags, obx_error *err)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = flags;
    o.prefill = 0;
    obx_store *s = NULL;
    if (obx_open(dir, &o, &s, err) != OBX_OK)
        return NULL;
    return s;
}

static obx_store *open_owner(const char *dir)
{
    obx_error err = {0};
    obx_store *s = open_flags(dir, OBX_OPEN_OWNER, &err);
    if (!s)
        fail_msg("open %s: %s", dir, err.msg);
    return s;
}

static uint64_t enqueue1(obx_store *s, uint32_t sink)
{
    obx_event_in e = ev_in("{}", &sink, 1);
    uint64_t id = 0;
    obx_error err = {0};
    if (obx_enqueue(s, &e, 1, &id, &err) != OBX_OK)
        fail_msg("enqueue: %s", err.msg);
    return id;
}

/* Two fresh stores: their first events get different ids; one store keeps its id across
 * reopen, in claimed jobs, in records read back, and after a replay. */
static void test_delivery_id_unique_and_stable(void **state)
{
    (void)state;
    char *d1 = tmpdir_new("ident"), *d2 = tmpdir_new("ident");
    obx_store *s1 = open_owner(d1), *s2 = open_owner(d2);
    uint32_t k1, k2;
    assert_int_equal(obx_sink_id(s1, "webhook", &k1, NULL), OBX_OK);
    assert_int_equal(obx_sink_id(s2, "webhook", &k2, NULL), OBX_OK);
    assert_int_equal(k1, k2);
    assert_int_equal(enqueue1(s1, k1), 1);
    assert_int_equal(enqueue1(s2, k2), 1);
    char a[OBX_DELIVERY_ID_MAX], b[OBX_DELIVERY_ID_MAX], c[OBX_DELIVERY_ID_MAX];
    assert_int_equal(obx_delivery_id(s1, 1, k1, a, sizeof a), OBX_OK);
    assert_int_equal(obx_delivery_id(s2, 1, k2, b, sizeof b), OBX_OK);
    assert_string_not_equal(a, b);
    /* evt_<32 hex>_<event>_<sink>, no '.' (Standard Webhooks signs id.timestamp.body) */
    assert_int_equal(strlen(a), 4 + 32 + 1 + 1 + 1 + 1);
    assert_int_equal(strncmp(a, "evt_", 4), 0);
    assert_true(strspn(a + 4, "0123456789abcdef") == 32);
    assert_string_equal(a + 36, "_1_1");
    assert_null(strchr(a, '.'));
    assert_int_equal(obx_delivery_id(s1, 1, k1, c, 10), OBX_ERR_INVALID); /* too small */
    /* the widest numbers, as printf writes them; a buffer one byte short is refused */
    char want[OBX_DELIVERY_ID_MAX];
    snprintf(want, sizeof want, "%.36s_%" PRIu64 "_%" PRIu32, a, UINT64_MAX, UINT32_MAX);
    assert_int_equal(obx_delivery_id(s1, UINT64_MAX, UINT32_MAX, c, sizeof c), OBX_OK);
    assert_string_equal(c, want);
    assert_int_equal(obx_delivery_id(s1, 1234567890123, 4567, c, sizeof c), OBX_OK);
    snprintf(want, sizeof want, "%.36s_1234567890123_4567", a);
    assert_string_equal(c, want);
    assert_int_equal(obx_delivery_id(s1, 1234567890123, 4567, c, strlen(want) + 1), OBX_OK);
    assert_int_equal(obx_delivery_id(s1, 1234567890123, 4567, c, strlen(want)), OBX_ERR_INVALID);
    assert_string_equal(c, "");

    /* the claimed job and the stored record carry the same id */
    obx_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(obx_claim_due(s1, k1, obx_now_ms(), 4, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].webhook_id, a);
    obx_result r = {1, k1, OBX_OUTCOME_DEAD, obx_now_ms(), 1, 410, NULL, 0, 0, 0, "gone"};
    assert_int_equal(obx_record(s1, &r, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);
    obx_close(s1);

    /* reopened (owner, then a tool), replayed: the same id */
    s1 = open_owner(d1);
    assert_int_equal(obx_delivery_id(s1, 1, k1, c, sizeof c), OBX_OK);
    assert_string_equal(a, c);
    assert_int_equal(obx_replay(s1, 1, OBX_ALL_SINKS, 0, NULL, NULL), OBX_OK);
    assert_int_equal(obx_claim_due(s1, k1, obx_now_ms(), 4, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].webhook_id, a);
    obx_jobs_free(jobs, n);
    obx_close(s1);
    obx_error err = {0};
    s1 = open_flags(d1, OBX_OPEN_READONLY, &err);
    assert_non_null(s1);
    obx_event *e = NULL;
    assert_int_equal(obx_event_get(s1, 1, &e, NULL), OBX_OK);
    assert_int_equal(e->n_deliveries, 1);
    assert_string_equal(e->deliveries[0].webhook_id, a);
    obx_event_free(e);
    obx_close(s1);
    obx_close(s2);
    rm_rf(d1);
    rm_rf(d2);
    free(d1);
    free(d2);
}

static void remember_problem(void *ud, const char *problem)
{
    snprintf(ud, 512, "%s", problem);
}

static void path_of(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Opening must fail (owner and tool alike) with OBX_ERR_CORRUPT naming `want1` and
 * `want2`, and must leave the directory as it was: no new data.mdb. */
static void assert_refused(const char *dir, const char *want1, const char *want2)
{
    char data[600];
    path_of(data, sizeof data, dir, "data.mdb");
    struct stat before;
    int had = stat(data, &before) == 0;
    unsigned flags[] = {OBX_OPEN_OWNER, 0, OBX_OPEN_READONLY};
    for (size_t i = 0; i < 3; i++) {
        obx_error err = {0};
        obx_options o;
        obx_options_init(&o);
        o.flags = flags[i];
        obx_store *s = NULL;
        assert_int_equal(obx_open(dir, &o, &s, &err), OBX_ERR_CORRUPT);
        assert_null(s);
        if (!strstr(err.msg, want1) || !strstr(err.msg, want2))
            fail_msg("error does not name %s and %s: %s", want1, want2, err.msg);
        assert_non_null(strstr(err.msg, "refusing"));
    }
    struct stat after;
    assert_int_equal(stat(data, &after) == 0, had); /* not recreated */
    if (had)
        assert_int_equal(after.st_size, 0);
}

/* A directory that held a store but lost its data file is refused, never reset. */
static void test_lost_data_file_refused(void **state)
{
    (void)state;
    char *d = tmpdir_new("ident");
    obx_store *s = open_owner(d);
    uint32_t k;
    assert_int_equal(obx_sink_id(s, "webhook", &k, NULL), OBX_OK);
    enqueue1(s, k);
    obx_close(s);
    char data[600], lock[600], owner[600];
    path_of(data, sizeof data, d, "data.mdb");
    path_of(lock, sizeof lock, d, "lock.mdb");
    path_of(owner, sizeof owner, d, "outbox.lock");

    assert_int_equal(truncate(data, 0), 0); /* emptied */
    assert_refused(d, data, "empty");
    assert_int_equal(unlink(data), 0); /* deleted, lock.mdb left */
    assert_refused(d, data, lock);
    assert_int_equal(unlink(lock), 0); /* only the owner lock file left */
    assert_refused(d, data, owner);
    assert_int_equal(unlink(owner), 0); /* nothing left: a new store is fine */
    s = open_owner(d);
    obx_close(s);
    rm_rf(d);
    free(d);
}

/* In a child process (a tool next to the daemon): a non-owner open; exit 0 when it
 * opened, 10 + code when refused with a message containing `want` (else 99). */
static int tool_open(const char *dir, const char *want)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        obx_error err = {0};
        obx_store *s = open_flags(dir, 0, &err);
        if (s) {
            obx_close(s);
            _exit(0);
        }
        _exit(want && strstr(err.msg, want) ? 10 + err.code : 99);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Enqueue until the writer has noticed (it looks at least every second): bounded. */
static int enqueue_until_refused(obx_store *s, uint32_t sink, obx_error *err)
{
    for (int i = 0; i < 400; i++) { /* 20 s at most, on a very slow machine */
        obx_event_in e = ev_in("{}", &sink, 1);
        uint64_t id;
        int rc = obx_enqueue(s, &e, 1, &id, err);
        if (rc != OBX_OK)
            return rc;
        usleep(50 * 1000);
    }
    return OBX_OK;
}

/* lock.mdb deleted, then replaced, under a running owner: tools refuse to open, the
 * owner notices and refuses new events, with messages saying what happened. */
static void test_lock_file_lost(void **state)
{
    (void)state;
    assert_string_not_equal(obx_strerror(OBX_ERR_LOCKLOST), obx_strerror(-1));
    for (int replace = 0; replace < 2; replace++) {
        char *d = tmpdir_new("ident");
        obx_store *s = open_owner(d);
        uint32_t k;
        assert_int_equal(obx_sink_id(s, "webhook", &k, NULL), OBX_OK);
        enqueue1(s, k);
        assert_int_equal(tool_open(d, NULL), 0); /* the owner's own lock.mdb: fine */
        char lock[600], tmp[600];
        path_of(lock, sizeof lock, d, "lock.mdb");
        path_of(tmp, sizeof tmp, d, "lock.mdb.new");
        if (replace) {
            int fd = open(tmp, O_CREAT | O_WRONLY, 0600);
            assert_true(fd >= 0);
            close(fd);
            assert_int_equal(rename(tmp, lock), 0);
            assert_int_equal(tool_open(d, "not the lock file"), 10 + OBX_ERR_LOCKLOST);
        } else {
            assert_int_equal(unlink(lock), 0);
            assert_int_equal(tool_open(d, "is missing while outboxd"), 10 + OBX_ERR_LOCKLOST);
            struct stat st;
            assert_int_equal(stat(lock, &st), -1); /* the refused tool made no new one */
        }
        obx_error err = {0};
        assert_int_equal(enqueue_until_refused(s, k, &err), OBX_ERR_LOCKLOST);
        assert_non_null(strstr(err.msg, replace ? "replaced" : "deleted"));
        assert_non_null(strstr(err.msg, "lock.mdb"));
        obx_close(s);
        rm_rf(d);
        free(d);
    }
}

/* check flags a data file far larger than its (empty) trees in a store that never held
 * an event: what a store whose trees were lost looks like. */
static void test_check_flags_lost_trees(void **state)
{
    (void)state;
    char *d = tmpdir_new("ident");
    obx_store *s = open_owner(d);
    size_t problems = 99;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0); /* a fresh store, prefill and all */
    obx_close(s);
    char data[600];
    path_of(data, sizeof data, d, "data.mdb");
    assert_int_equal(truncate(data, 256ll << 20), 0); /* sparse: no disk used */
    obx_error err = {0};
    s = open_flags(d, OBX_OPEN_READONLY, &err);
    assert_non_null(s);
    char seen[512] = "";
    assert_int_equal(obx_check(s, remember_problem, seen, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 1);
    assert_non_null(strstr(seen, "trees are empty"));
    assert_non_null(strstr(seen, "data.mdb"));
    obx_close(s);
    rm_rf(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_id_unique_and_stable),
        cmocka_unit_test(test_lost_data_file_refused),
        cmocka_unit_test(test_lock_file_lost),
        cmocka_unit_test(test_check_flags_lost_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
