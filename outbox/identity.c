/*
 * identity.c - the store's identity and the ids of its deliveries.
 *
 * Every store gets a random 128-bit id (getrandom) when it is created, kept in `meta`
 * under "store_id"; a store made by an older build gets one at its first writable open.
 * A delivery's id - the `webhook-id` header on every attempt, shown by outboxctl - is
 * "evt_<store id, 32 hex>_<event id>_<sink id>": the same across restarts and replays
 * of that delivery, and different between two stores (two deployments, or a store
 * recreated from scratch whose event ids restart at 1), so receivers that deduplicate by
 * webhook-id never drop a real event. obx_delivery_id is the one place that builds it.
 *
 * A directory that held a store but lost its data file (data.mdb deleted or emptied,
 * lock.mdb or outbox.lock still there) is refused: LMDB would silently start a new,
 * empty store whose ids restart at 1 (obx__data_file_check).
 */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define STORE_ID_KEY "store_id"

static void set_hex(obx_store *s, const unsigned char id[OBX_STORE_ID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < OBX_STORE_ID_LEN; i++) {
        s->store_hex[2 * i] = hex[id[i] >> 4];
        s->store_hex[2 * i + 1] = hex[id[i] & 15];
    }
    s->store_hex[2 * OBX_STORE_ID_LEN] = 0;
}

int obx__store_id_load(obx_store *s, MDB_txn *txn, int create, obx_error *err)
{
    MDB_val k = {sizeof STORE_ID_KEY - 1, STORE_ID_KEY}, v;
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != OBX_STORE_ID_LEN)
            return obx__fail(err, OBX_ERR_CORRUPT, "%s: store id in meta has %zu bytes, not %d",
                             s->dir, v.mv_size, OBX_STORE_ID_LEN);
        set_hex(s, v.mv_data);
        return OBX_OK;
    }
    if (rc != MDB_NOTFOUND)
        return obx__mdb_fail(err, rc, "read store id");
    if (!create)
        return OBX_OK; /* read-only open of a store never opened writable by this version */
    unsigned char id[OBX_STORE_ID_LEN];
    size_t got = 0;
    while (got < sizeof id) {
        ssize_t n = getrandom(id + got, sizeof id - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return obx__fail(err, OBX_ERR_IO, "%s: getrandom for the store id: %s", s->dir,
                             strerror(errno));
        got += (size_t)n;
    }
    v.mv_size = sizeof id;
    v.mv_data = id;
    rc = mdb_put(txn, s->db_meta, &k, &v, 0);
    if (rc)
        return obx__mdb_fail(err, rc, "write store id");
    set_hex(s, id);
    return OBX_OK;
}

/* The decimal digits of v at p (no NUL); their count. */
static size_t put_decimal(char *p, uint64_t v)
{
    char t[20];
    size_t k = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < k; i++)
        p[i] = t[k - 1 - i];
    return k;
}

int obx__delivery_id_format(const char *uid, uint64_t event_id, uint32_t sink_id, char *buf,
                            size_t n)
{
    /* "evt_<uid>_<event>_<sink>", put together by hand: every claim and record makes it
     * for each delivery it reads, on the LMDB store's one writer thread (snprintf took
     * ~1,400 instructions a time, this ~150) */
    size_t hex = strlen(uid), len = 4;
    char id[4 + 64 + 1 + 20 + 1 + 10];
    buf[0] = 0;
    if (hex > 64)
        return OBX_ERR_INVALID;
    memcpy(id, "evt_", 4);
    memcpy(id + len, uid, hex);
    len += hex;
    id[len++] = '_';
    len += put_decimal(id + len, event_id);
    id[len++] = '_';
    len += put_decimal(id + len, sink_id);
    if (len >= n)
        return OBX_ERR_INVALID;
    memcpy(buf, id, len);
    buf[len] = 0;
    return OBX_OK;
}

int obx__lmdb_delivery_id(obx_store *s, uint64_t event_id, uint32_t sink_id, char *buf, size_t n)
{
    if (!s || !buf || n == 0)
        return OBX_ERR_INVALID;
    buf[0] = 0;
    if (!s->store_hex[0])
        return OBX_ERR_NOTFOUND;
    return obx__delivery_id_format(s->store_hex, event_id, sink_id, buf, n);
}

int obx__data_file_check(const char *dir, obx_error *err)
{
    char data[4096], other[4096];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    struct stat st;
    if (stat(data, &st) == 0) {
        if (st.st_size > 0)
            return OBX_OK;
        return obx__fail(err, OBX_ERR_CORRUPT,
                         "%s is empty (0 bytes): the store's data is gone; refusing to start "
                         "a new store over it (restore it from a backup, or remove the "
                         "directory's files to start empty)",
                         data);
    }
    if (errno == ENOTDIR)
        return OBX_OK; /* obx_open says "not a directory" */
    if (errno != ENOENT)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", data, strerror(errno));
    static const char *const marks[] = {"lock.mdb", "outbox.lock"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        snprintf(other, sizeof other, "%s/%s", dir, marks[i]);
        if (stat(other, &st) == 0)
            return obx__fail(err, OBX_ERR_CORRUPT,
                             "%s is missing but %s exists: this directory held an outbox "
                             "store whose data is gone; refusing to start a new store over "
                             "it (restore data.mdb from a backup, or remove the directory's "
                             "files to start empty)",
                             data, other);
    }
    return OBX_OK;
}
