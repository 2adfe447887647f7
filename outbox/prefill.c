/*
 * prefill.c - keep zero-filled, allocated space ahead of LMDB's last page in data.mdb.
 *
 * LMDB (without MDB_WRITEMAP) grows data.mdb by writing pages past its end. On ext4 every
 * such commit changes the file's size and block allocation, so the commit's fdatasync
 * must also commit a filesystem journal transaction: measured on this project's VM, a
 * synced 4-page append costs ~35 % more than the same overwrite. The owner's writer
 * therefore writes real zeros (not fallocate: unwritten extents still need a metadata
 * change on first write) a few MiB ahead of the last page, so commits mostly overwrite
 * blocks that already exist. The same trick as PostgreSQL's zero-filled WAL segments.
 *
 * Safety: it runs inside the owner's write transaction, i.e. holding LMDB's writer lock,
 * before that transaction writes anything; pages past the last committed page are unused
 * by every snapshot, and no other process can write while the lock is held. It never
 * eats the disk space kept for disk-full handling, and a failed fill is truncated away.
 */
#include "config.h"
#include "store_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PREFILL_MIN   (4ull << 20)  /* smallest extension */
#define PREFILL_MAX   (32ull << 20) /* largest extension (one stall of the writer) */
#define PREFILL_WRITE (1u << 20)    /* bytes per pwrite */

/* Write zeros to [from, to) of fd; 0 or an errno. */
static int write_zeros(int fd, uint64_t from, uint64_t to)
{
    static const char zeros[PREFILL_WRITE];
    while (from < to) {
        size_t n = to - from < PREFILL_WRITE ? (size_t)(to - from) : PREFILL_WRITE;
        ssize_t w = pwrite(fd, zeros, n, (off_t)from);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        from += (uint64_t)w;
        OBX_CRASH_POINT("prefill-partial"); /* tests: killed with the fill half done */
    }
    return fdatasync(fd) == 0 ? 0 : errno;
}

void obx__store_prefill(obx_store *s)
{
    if (!s->owner || !s->opts.prefill)
        return;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t end = ((uint64_t)info.me_last_pgno + 1) * s->page_size;
    uint64_t chunk = s->file_bytes / 8;
    chunk = chunk < PREFILL_MIN ? PREFILL_MIN : chunk > PREFILL_MAX ? PREFILL_MAX : chunk;
    if (s->file_bytes >= end + chunk / 2) /* still enough ahead: no system call */
        return;
    int fd;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0)
        return;
    uint64_t from = (uint64_t)st.st_size > end ? (uint64_t)st.st_size : end;
    s->file_bytes = from;
    if (from >= end + chunk / 2) /* another process extended it */
        return;
    uint64_t to = (end + chunk) / s->page_size * s->page_size;
    if (to > info.me_mapsize)
        to = info.me_mapsize;
    if (to <= from)
        return;
    /* Only with ample free disk: the disk-full reserve stays for the writes that free
     * space, and a nearly full disk has better uses for its last blocks. */
    struct statvfs vfs;
    if (statvfs(s->dir, &vfs) != 0 || (uint64_t)vfs.f_bavail * vfs.f_frsize <
                                          2 * (to - from) + OBX_DISK_RESERVE + OBX_MAP_HEADROOM)
        return;
    if (write_zeros(fd, from, to) != 0) {
        /* Give back what was written; LMDB has written nothing past `from` (we hold the
         * writer lock and our transaction has not written yet). */
        int rc = ftruncate(fd, (off_t)from);
        (void)rc; /* a failed fill only loses the speed-up */
        return;
    }
    s->file_bytes = to;
}
