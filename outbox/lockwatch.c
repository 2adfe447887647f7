/*
 * lockwatch.c - every process must use the lock.mdb the owner holds.
 *
 * LMDB coordinates its writers through lock.mdb. If that file is deleted or replaced
 * while the daemon runs, the next process that opens the store creates a new one and
 * becomes a second, unsynchronised writer: the store is corrupted (seen in tests: the
 * daemon crashed inside LMDB and the store came back empty). So:
 *   - the owner records the identity (device, inode) of the lock.mdb it opened in its
 *     owner lock file, outbox.lock ("<pid>\nlock.mdb <dev> <ino>\n"), which any process
 *     can read without taking the lock;
 *   - a non-owner open refuses a store whose lock.mdb is missing or is not that file
 *     while the owner is running (checked before LMDB could create a new lock.mdb, and
 *     again after opening);
 *   - the owner's writer compares lock.mdb on disk with its identity at least every
 *     second; once it was deleted or replaced, enqueue fails with OBX_ERR_LOCKLOST.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WATCH_EVERY_MS 500

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int obx__lock_identity_record(obx_store *s, obx_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock.mdb", s->dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", path, strerror(errno));
    s->lock_dev = (uint64_t)st.st_dev;
    s->lock_ino = (uint64_t)st.st_ino;
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%ld\nlock.mdb %llu %llu\n", (long)getpid(),
                     (unsigned long long)s->lock_dev, (unsigned long long)s->lock_ino);
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, buf, (size_t)n, 0) != n)
        return obx__fail(err, OBX_ERR_IO, "%s/outbox.lock: %s", s->dir, strerror(errno));
    s->lock_checked_ms = mono_ms();
    return OBX_OK;
}

int obx__lock_identity_verify(const char *dir, obx_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/outbox.lock", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return OBX_OK; /* never owned */
    char line[128];
    unsigned long long dev = 0, ino = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "lock.mdb %llu %llu", &dev, &ino) == 2;
    fclose(f);
    if (!found)
        return OBX_OK; /* no owner has recorded one (an older build, or starting now) */
    long pid = 0;
    if (obx_owner_pid(dir, &pid, NULL) != OBX_OK || pid == 0)
        return OBX_OK; /* no owner running: nothing to collide with */
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return obx__fail(err, OBX_ERR_LOCKLOST,
                         "%s is missing while outboxd (pid %ld) owns this outbox: it was "
                         "deleted under the running daemon; refusing to open (a new lock "
                         "file would make a second writer and corrupt the store) - restart "
                         "outboxd first",
                         path, pid);
    if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino)
        return obx__fail(err, OBX_ERR_LOCKLOST,
                         "%s is not the lock file outboxd (pid %ld) holds (it was replaced "
                         "under the running daemon); refusing to open (a second writer would "
                         "corrupt the store) - restart outboxd first",
                         path, pid);
    return OBX_OK;
}

void obx__lock_watch(obx_store *s)
{
    if (!s->owner || !s->lock_ino || __atomic_load_n(&s->lock_lost, __ATOMIC_RELAXED))
        return;
    int64_t now = mono_ms();
    if (now - s->lock_checked_ms < WATCH_EVERY_MS)
        return;
    s->lock_checked_ms = now;
    char path[4096];
    snprintf(path, sizeof path, "%s/lock.mdb", s->dir);
    struct stat st;
    int lost = 0;
    if (stat(path, &st) != 0)
        lost = errno == ENOENT ? OBX_LOCK_DELETED : 0; /* other errors: try again later */
    else if ((uint64_t)st.st_dev != s->lock_dev || (uint64_t)st.st_ino != s->lock_ino)
        lost = OBX_LOCK_REPLACED;
    if (lost)
        __atomic_store_n(&s->lock_lost, lost, __ATOMIC_RELEASE);
}

int obx__lock_lost_fail(obx_store *s, obx_error *err)
{
    int lost = __atomic_load_n(&s->lock_lost, __ATOMIC_ACQUIRE);
    if (!lost)
        return OBX_OK;
    return obx__fail(err, OBX_ERR_LOCKLOST,
                     "%s/lock.mdb was %s while this process owns the store; new events are "
                     "refused so that no second writer can corrupt it - stop outboxd, make "
                     "sure no other process uses the store, and restart",
                     s->dir, lost == OBX_LOCK_DELETED ? "deleted" : "replaced");
}
