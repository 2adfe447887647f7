/*
 * sinkstate.c - the persisted health of a sink (obx_sink_state_get/set, outbox.h): the
 * breaker's down flag, the operator's pause flag, since when and why, and the time the
 * sink has been held (down or paused).
 *
 * One record per sink in meta under "h:" + be32(id): a format byte, a flags byte, six
 * be64 fields, two strings with a be16 length each, and a CRC32C (be32) of everything
 * before it. A change is one short direct write transaction that reads the record,
 * changes one flag and writes it back, so the engine (down/up) and outboxctl (pause/
 * resume) never overwrite each other's flag. Writes are rare (one per transition).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define STATE_FORMAT 1
#define STATE_FIXED  (2 + 6 * 8)
#define STATE_MAX    (STATE_FIXED + 2 * (2 + OBX_SINK_WHY_MAX) + 4)

static void state_key(unsigned char k[6], uint32_t id)
{
    k[0] = 'h';
    k[1] = ':';
    be32_put(k + 2, id);
}

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)n;
    memcpy(p + 2, s, n);
    return 2 + n;
}

static size_t state_encode(unsigned char *b, const obx_sink_state *st)
{
    b[0] = STATE_FORMAT;
    b[1] = (unsigned char)((st->down ? 1 : 0) | (st->paused ? 2 : 0));
    int64_t v[6] = {st->down_since_ms, st->paused_since_ms, st->changed_ms,
                    st->held_ms,       st->held_since_ms,   (int64_t)st->changes};
    for (int i = 0; i < 6; i++)
        be64_put(b + 2 + 8 * i, (uint64_t)v[i]);
    size_t n = STATE_FIXED;
    n += put_str(b + n, st->why);
    n += put_str(b + n, st->last_error);
    be32_put(b + n, obx__crc32c(0, b, n));
    return n + 4;
}

static int get_str(const unsigned char *b, size_t len, size_t *off, char *out)
{
    if (*off + 2 > len)
        return -1;
    size_t n = ((size_t)b[*off] << 8) | b[*off + 1];
    if (n >= OBX_SINK_WHY_MAX || *off + 2 + n > len)
        return -1;
    memcpy(out, b + *off + 2, n);
    out[n] = '\0';
    *off += 2 + n;
    return 0;
}

static int state_decode(const unsigned char *b, size_t len, obx_sink_state *st)
{
    memset(st, 0, sizeof *st);
    if (len < STATE_FIXED + 2 + 2 + 4 || b[0] != STATE_FORMAT ||
        be32_get(b + len - 4) != obx__crc32c(0, b, len - 4))
        return -1;
    st->down = b[1] & 1;
    st->paused = (b[1] & 2) != 0;
    int64_t v[6];
    for (int i = 0; i < 6; i++)
        v[i] = (int64_t)be64_get(b + 2 + 8 * i);
    st->down_since_ms = v[0];
    st->paused_since_ms = v[1];
    st->changed_ms = v[2];
    st->held_ms = v[3];
    st->held_since_ms = v[4];
    st->changes = (uint64_t)v[5];
    size_t off = STATE_FIXED;
    if (get_str(b, len - 4, &off, st->why) || get_str(b, len - 4, &off, st->last_error) ||
        off != len - 4)
        return -1;
    return 0;
}

int obx__sink_state_read(obx_store *s, MDB_txn *txn, uint32_t id, obx_sink_state *st,
                         obx_error *err)
{
    unsigned char k[6];
    state_key(k, id);
    MDB_val key = {sizeof k, k}, val;
    int mrc = mdb_get(txn, s->db_meta, &key, &val);
    if (mrc == MDB_NOTFOUND) {
        memset(st, 0, sizeof *st);
        return OBX_OK;
    }
    if (mrc)
        return obx__mdb_fail(err, mrc, "sink state: read");
    if (state_decode(val.mv_data, val.mv_size, st))
        return obx__fail(err, OBX_ERR_CORRUPT,
                         "sink id %u: health record (down/paused) is corrupt: "
                         "bad format byte, checksum or length",
                         id);
    return OBX_OK;
}

int64_t obx_sink_held_ms(const obx_sink_state *st, int64_t now_ms)
{
    int64_t h = st->held_ms;
    if (st->held_since_ms && now_ms > st->held_since_ms)
        h += now_ms - st->held_since_ms;
    return h;
}

int obx__lmdb_sink_state_get(obx_store *s, uint32_t id, obx_sink_state *out, obx_error *err)
{
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = obx__sink_state_read(s, txn, id, out, err);
    mdb_txn_abort(txn);
    return rc;
}

int obx_sink_state_apply(obx_sink_state *st, int what, int on, int64_t now, const char *why,
                         const char *last_error)
{
    int *flag = what == OBX_SINK_DOWN ? &st->down : &st->paused;
    int64_t *since = what == OBX_SINK_DOWN ? &st->down_since_ms : &st->paused_since_ms;
    if (!*flag == !on)
        return 0;
    int was_held = st->down || st->paused;
    *flag = on ? 1 : 0;
    *since = on ? now : 0;
    int held = st->down || st->paused;
    if (was_held && !held) {
        st->held_ms = obx_sink_held_ms(st, now);
        st->held_since_ms = 0;
    } else if (!was_held && held) {
        st->held_since_ms = now > 0 ? now : 1;
    }
    st->changed_ms = now;
    st->changes++;
    snprintf(st->why, sizeof st->why, "%s", why ? why : "");
    if (what == OBX_SINK_DOWN)
        snprintf(st->last_error, sizeof st->last_error, "%s", on && last_error ? last_error : "");
    return 1;
}

int obx__lmdb_sink_state_set(obx_store *s, uint32_t id, int what, int on, int64_t now_ms,
                             const char *why, const char *last_error, obx_sink_state *out,
                             int *changed, obx_error *err)
{
    int rc;
    if (s->opts.flags & OBX_OPEN_READONLY)
        return obx__fail(err, OBX_ERR_STATE, "sink state: store opened read-only");
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(s->env, 0);
        mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    }
    if (mrc)
        return obx__mdb_fail(err, mrc, "sink state: begin write transaction");
    obx_sink_state st;
    rc = obx__sink_state_read(s, txn, id, &st, err);
    if (rc == OBX_ERR_CORRUPT) /* a damaged record is replaced by a fresh one */
        memset(&st, 0, sizeof st);
    else if (rc)
        goto out;
    rc = OBX_OK;
    int did = obx_sink_state_apply(&st, what, on, now_ms, why, last_error);
    if (did) {
        unsigned char k[6], b[STATE_MAX];
        state_key(k, id);
        MDB_val key = {sizeof k, k}, val = {state_encode(b, &st), b};
        mrc = mdb_put(txn, s->db_meta, &key, &val, 0);
        if (mrc)
            mdb_txn_abort(txn);
        else
            mrc = mdb_txn_commit(txn);
        txn = NULL;
        if (mrc) {
            rc = obx__store_mdb_fail(s, err, mrc, "sink state: write");
            goto out;
        }
    }
    if (changed)
        *changed = did;
    if (out)
        *out = st;
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}
