/*
 * capacity.c - the store's size limits and the one wording of "store full".
 *
 * Three limits can refuse a write: outbox.max_size (enqueue stops at high_water_pct of
 * it), LMDB's map (max_size plus OBX_MAP_HEADROOM, MDB_MAP_FULL) and the disk (its free
 * space, of which OBX_DISK_RESERVE is kept for the writes that free space). Every
 * OBX_ERR_FULL the store returns says which one was hit, with the numbers, so that an
 * operator whose disk is full is not sent to raise max_size (or the other way round).
 */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

uint64_t obx__store_high_water(const obx_store *s)
{
    return s->opts.max_size / 100 * s->opts.high_water_pct;
}

uint64_t obx__store_room_bytes(obx_store *s, uint64_t used)
{
    struct statvfs vfs;
    if (statvfs(s->dir, &vfs) != 0)
        return UINT64_MAX;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t file = ((uint64_t)info.me_last_pgno + 1) * s->page_size;
    if (s->file_bytes > file) /* zero-filled ahead by prefill.c: already allocated */
        file = s->file_bytes;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize + (file > used ? file - used : 0);
}

uint64_t obx__store_map_size(const obx_store *s)
{
    return s->opts.max_size + (s->opts.high_water_pct < 100 ? OBX_MAP_HEADROOM : 0);
}

/* Pages in use by every tree (including the freelist and the two meta pages). */
uint64_t obx__store_used_bytes(obx_store *s, MDB_txn *txn)
{
    MDB_dbi dbis[] = {0,          s->db_meta, s->db_events, s->db_deliv, s->db_due,
                      s->db_pend, s->db_dead, s->db_done,   s->db_flight};
    uint64_t pages = 2;
    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
        MDB_stat st;
        if (mdb_stat(txn, dbis[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    /* The main DB holds the named DBs' records. */
    MDB_stat st;
    if (mdb_stat(txn, 1, &st) == 0)
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    return pages * s->page_size;
}

/* Free bytes on the store's filesystem (for unprivileged users); UINT64_MAX if unknown. */
static uint64_t disk_free(const obx_store *s)
{
    struct statvfs vfs;
    if (statvfs(s->dir, &vfs) != 0)
        return UINT64_MAX;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

int obx__store_full(obx_store *s, obx_error *err, int limit, const char *what, uint64_t used)
{
    unsigned long long max = s->opts.max_size, u = used;
    char pre[64] = "";
    if (what)
        snprintf(pre, sizeof pre, "%s: ", what);
    switch (limit) {
    case OBX_FULL_CAP:
        return obx__fail(
            err, OBX_ERR_FULL,
            "%sstore full: outbox.max_size reached: %llu bytes in use, enqueue stops at %llu "
            "(%u%% of max_size %llu); retry later",
            pre, u, (unsigned long long)obx__store_high_water(s), s->opts.high_water_pct, max);
    case OBX_FULL_MAP:
        return obx__fail(
            err, OBX_ERR_FULL,
            "%sstore full: outbox.max_size reached: LMDB map of %llu bytes is full (max_size "
            "%llu plus headroom); retry later",
            pre, (unsigned long long)obx__store_map_size(s), max);
    default: {
        uint64_t fr = disk_free(s);
        char freebuf[32] = "unknown";
        if (fr != UINT64_MAX)
            snprintf(freebuf, sizeof freebuf, "%llu", (unsigned long long)fr);
        return obx__fail(err, OBX_ERR_FULL,
                         "%sdisk full: %s bytes free on the store's filesystem, %llu kept for "
                         "deliveries and retention (not outbox.max_size: %llu of %llu bytes in "
                         "use); retry later",
                         pre, freebuf, (unsigned long long)OBX_DISK_RESERVE, u, max);
    }
    }
}

int obx__store_mdb_fail(obx_store *s, obx_error *err, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return obx__store_full(s, err, OBX_FULL_MAP, what, s->ctx.used_bytes);
    /* LMDB reports a short write on a full disk as EIO. */
    if (rc == ENOSPC || rc == EDQUOT || (rc == EIO && disk_free(s) < OBX_MAP_HEADROOM))
        return obx__store_full(s, err, OBX_FULL_DISK, what, s->ctx.used_bytes);
    return obx__mdb_fail(err, rc, what);
}
