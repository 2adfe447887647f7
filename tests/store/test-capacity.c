/*
 * test-capacity.c - a full store says which limit was hit, with the numbers: its own cap
 * (outbox.max_size) or the disk. The disk case runs the store on a 3 MiB tmpfs mounted in
 * a child process's own mount namespace (as root, or in a user namespace otherwise), so
 * nothing outside the child sees the mount and it disappears with the child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "testutil.h"

/* Enqueue 2 KB events until OBX_ERR_FULL (bounded); returns the code, message in err. */
static int fill(obx_store *s, uint32_t sink, obx_error *err, size_t *acked)
{
    char body[2000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;
    *acked = 0;
    for (int i = 0; i < 20000; i++) {
        obx_event_in e = ev_in(body, &sink, 1);
        uint64_t id;
        int rc = obx_enqueue(s, &e, 1, &id, err);
        if (rc != OBX_OK)
            return rc;
        ++*acked;
    }
    return OBX_OK;
}

static obx_store *open_owner(const char *dir, uint64_t max_size, obx_error *err)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = max_size;
    obx_store *s = NULL;
    return obx_open(dir, &o, &s, err) == OBX_OK ? s : NULL;
}

static void test_cap_names_max_size(void **state)
{
    (void)state;
    char *d = tmpdir_new("cap");
    obx_error err = {0};
    obx_store *s = open_owner(d, 2u << 20, &err);
    assert_non_null(s);
    uint32_t k;
    assert_int_equal(obx_sink_id(s, "webhook", &k, NULL), OBX_OK);
    size_t acked;
    assert_int_equal(fill(s, k, &err, &acked), OBX_ERR_FULL);
    assert_true(acked > 100);
    print_message("  cap: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "outbox.max_size reached"));
    assert_non_null(strstr(err.msg, "of max_size 2097152"));
    assert_null(strstr(err.msg, "disk"));
    obx_close(s);
    rm_rf(d);
    free(d);
}

/* Child: mount a 3 MiB tmpfs at dir in a private mount namespace, fill a store there
 * whose max_size is far larger, print the message. 0, or 2..9 naming the step. */
static int disk_child(const char *dir)
{
    if (getuid() != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return 2;
        FILE *f = fopen("/proc/self/setgroups", "w");
        if (f) {
            fputs("deny", f);
            fclose(f);
        }
        char map[64];
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        f = fopen("/proc/self/uid_map", "w");
        if (!f || fputs(map, f) < 0 || fclose(f) != 0)
            return 3;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        f = fopen("/proc/self/gid_map", "w");
        if (!f || fputs(map, f) < 0 || fclose(f) != 0)
            return 3;
    } else if (unshare(CLONE_NEWNS) != 0) {
        return 2;
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=3m") != 0)
        return 4;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/store", dir);
    obx_error err = {0};
    obx_store *s = open_owner(sub, 64u << 20, &err);
    if (!s) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 5;
    }
    uint32_t k;
    if (obx_sink_id(s, "webhook", &k, NULL) != OBX_OK)
        return 6;
    size_t acked;
    int rc = fill(s, k, &err, &acked);
    printf("  disk (%zu events acknowledged): %s\n", acked, err.msg);
    fflush(stdout);
    if (rc != OBX_ERR_FULL)
        return 7;
    if (!strstr(err.msg, "disk full") || !strstr(err.msg, "bytes free") ||
        !strstr(err.msg, "not outbox.max_size") || !strstr(err.msg, "of 67108864 bytes"))
        return 8;
    obx_close(s);
    return 0;
}

static void test_disk_names_disk(void **state)
{
    (void)state;
    char *d = tmpdir_new("disk");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = disk_child(d);
        free(d);
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("disk-full child failed at step %d (2/3: namespace, 4: mount, 5/6: store, "
                 "7: not full, 8: message does not name the disk)",
                 WEXITSTATUS(status));
    rm_rf(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_names_max_size),
        cmocka_unit_test(test_disk_names_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
