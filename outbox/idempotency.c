/*
 * idempotency.c - idempotency keys: stored in the same write transaction as the events of
 * the enqueue that carried them, looked up before an enqueue writes anything, and swept
 * once expired.
 *
 * The LMDB database "idem" holds two key spaces:
 *   'k' + key                 -> be64 expires_ms, be64 created_ms, hash[32], be32 n_ids,
 *                                be32 note_len, be64 ids[n_ids], note bytes
 *   'x' + be64 expires_ms + key -> empty: the expiry index the sweep reads from its front
 * A key whose expiry has passed is treated as absent by the lookup (and overwritten by the
 * next enqueue that carries it), swept or not. Meta "idem_keys" counts the 'k' records.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#define REC_FIXED (8 + 8 + OBX_IDEM_HASH_LEN + 4 + 4)
#define KEY_K_MAX (1 + OBX_IDEM_KEY_MAX)
#define KEY_X_MAX (1 + 8 + OBX_IDEM_KEY_MAX)

void obx_idem_result_clear(obx_idem_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->note);
    memset(r, 0, sizeof *r);
}

int obx_idem_key_check(const char *key, obx_error *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > OBX_IDEM_KEY_MAX)
        return obx__fail(err, OBX_ERR_INVALID,
                         "idempotency key is %zu bytes; it must be 1..%d bytes of printable "
                         "ASCII",
                         n, OBX_IDEM_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c > 0x7e)
            return obx__fail(err, OBX_ERR_INVALID,
                             "idempotency key has a byte 0x%02x at offset %zu; only printable "
                             "ASCII (0x20..0x7e) is allowed",
                             c, i);
    }
    return OBX_OK;
}

static size_t key_k(unsigned char *out, const char *key)
{
    size_t n = strlen(key);
    out[0] = 'k';
    memcpy(out + 1, key, n);
    return n + 1;
}

static size_t key_x(unsigned char *out, int64_t expires, const char *key, size_t n)
{
    out[0] = 'x';
    be64_put(out + 1, (uint64_t)expires);
    memcpy(out + 9, key, n);
    return n + 9;
}

/* A stored record's fixed part; 0 when it does not decode (then it counts as absent). */
static int rec_parse(const MDB_val *v, int64_t *expires, int64_t *created,
                     const unsigned char **hash, uint32_t *n_ids, uint32_t *note_len)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < REC_FIXED)
        return 0;
    *expires = (int64_t)be64_get(p);
    *created = (int64_t)be64_get(p + 8);
    *hash = p + 16;
    *n_ids = be32_get(p + 16 + OBX_IDEM_HASH_LEN);
    *note_len = be32_get(p + 20 + OBX_IDEM_HASH_LEN);
    return v->mv_size == REC_FIXED + (size_t)*n_ids * 8 + *note_len;
}

uint64_t obx__idem_estimate(const obx_op *op)
{
    const obx_idem *im = op->u.enq.idem;
    if (!im)
        return 0;
    return 2 * strlen(im->key) + REC_FIXED + op->u.enq.n * 8 + im->note_len + 64;
}

int obx__idem_lookup(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    const obx_idem *im = op->u.enq.idem;
    obx_idem_result *res = op->u.enq.res;
    obx_idem_result_clear(res); /* a batch re-run after another op broke the txn */
    unsigned char kb[KEY_K_MAX];
    MDB_val k = {key_k(kb, im->key), kb}, v;
    int rc = mdb_get(ctx->txn, s->db_idem, &k, &v);
    if (rc == MDB_NOTFOUND)
        return OBX_OK;
    if (rc) {
        *mdb_rc = rc;
        return OBX_ERR_LMDB;
    }
    int64_t expires, created;
    const unsigned char *hash;
    uint32_t n_ids, note_len;
    if (!rec_parse(&v, &expires, &created, &hash, &n_ids, &note_len) || expires <= obx_now_ms())
        return OBX_OK; /* expired (or damaged): the key is free again */
    if (memcmp(hash, im->hash, OBX_IDEM_HASH_LEN) != 0)
        return obx__idem_conflict(im->key, &op->err);
    const unsigned char *p = (const unsigned char *)v.mv_data + REC_FIXED;
    res->ids = n_ids ? malloc(n_ids * sizeof *res->ids) : NULL;
    res->note = note_len ? malloc(note_len) : NULL;
    if ((n_ids && !res->ids) || (note_len && !res->note)) {
        obx_idem_result_clear(res);
        return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory reading an idempotency key");
    }
    for (uint32_t i = 0; i < n_ids; i++)
        res->ids[i] = be64_get(p + 8 * i);
    if (note_len)
        memcpy(res->note, p + 8 * (size_t)n_ids, note_len);
    res->n_ids = n_ids;
    res->note_len = note_len;
    res->created_ms = created;
    res->replayed = 1;
    return OBX_OK;
}

int obx__idem_put(obx_store *s, txn_ctx *ctx, const obx_op *op, int64_t now)
{
    const obx_idem *im = op->u.enq.idem;
    size_t key_len = strlen(im->key);
    unsigned char kb[KEY_K_MAX], xb[KEY_X_MAX];
    MDB_val k = {key_k(kb, im->key), kb}, v;
    int rc = mdb_get(ctx->txn, s->db_idem, &k, &v);
    if (rc == 0) { /* an expired record: drop its expiry entry, the record is overwritten */
        MDB_val x = {
            key_x(xb, (int64_t)(v.mv_size >= 8 ? be64_get(v.mv_data) : 0), im->key, key_len), xb};
        rc = mdb_del(ctx->txn, s->db_idem, &x, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    } else if (rc == MDB_NOTFOUND) {
        ctx->idem_delta++;
    } else {
        return rc;
    }
    size_t n = op->u.enq.n;
    size_t len = REC_FIXED + n * 8 + im->note_len;
    MDB_val val = {len, NULL};
    rc = mdb_put(ctx->txn, s->db_idem, &k, &val, MDB_RESERVE);
    if (rc)
        return rc;
    unsigned char *p = val.mv_data;
    be64_put(p, (uint64_t)im->expires_ms);
    be64_put(p + 8, (uint64_t)now);
    memcpy(p + 16, im->hash, OBX_IDEM_HASH_LEN);
    be32_put(p + 16 + OBX_IDEM_HASH_LEN, (uint32_t)n);
    be32_put(p + 20 + OBX_IDEM_HASH_LEN, (uint32_t)im->note_len);
    for (size_t i = 0; i < n; i++)
        be64_put(p + REC_FIXED + 8 * i, op->u.enq.ids[i]);
    if (im->note_len)
        memcpy(p + REC_FIXED + 8 * n, im->note, im->note_len);
    MDB_val x = {key_x(xb, im->expires_ms, im->key, key_len), xb}, empty = {0, NULL};
    return mdb_put(ctx->txn, s->db_idem, &x, &empty, 0);
}

int obx__idem_sweep_apply(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    size_t max = op->u.sweep.max;
    unsigned char(*keys)[KEY_X_MAX] = malloc(max * KEY_X_MAX);
    size_t *lens = malloc(max * sizeof *lens);
    int rc = 0;
    size_t n = 0;
    if (!keys || !lens) {
        free(keys);
        free(lens);
        return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory");
    }
    MDB_cursor *cur;
    rc = mdb_cursor_open(ctx->txn, s->db_idem, &cur);
    if (!rc) {
        MDB_val k = {1, "x"}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (rc == 0 && n < max && k.mv_size > 9 && k.mv_size <= KEY_X_MAX &&
               ((const unsigned char *)k.mv_data)[0] == 'x' &&
               (int64_t)be64_get((const unsigned char *)k.mv_data + 1) <= op->u.sweep.before) {
            memcpy(keys[n], k.mv_data, k.mv_size);
            lens[n++] = k.mv_size;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        MDB_val x = {lens[i], keys[i]};
        rc = mdb_del(ctx->txn, s->db_idem, &x, NULL);
        if (rc)
            break;
        /* The record goes only if this entry is its expiry (it always is, unless damaged). */
        unsigned char kb[KEY_K_MAX];
        kb[0] = 'k';
        memcpy(kb + 1, keys[i] + 9, lens[i] - 9);
        MDB_val k = {lens[i] - 8, kb}, v;
        rc = mdb_get(ctx->txn, s->db_idem, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
        } else if (!rc && v.mv_size >= 8 && memcmp(v.mv_data, keys[i] + 1, 8) == 0) {
            rc = mdb_del(ctx->txn, s->db_idem, &k, NULL);
            ctx->idem_delta--;
        }
        op->u.sweep.removed++;
    }
    free(keys);
    free(lens);
    if (rc) {
        *mdb_rc = rc;
        return OBX_ERR_LMDB;
    }
    return OBX_OK;
}

int obx__idem_census(obx_store *s, MDB_txn *txn, obx_idem_census *out)
{
    memset(out, 0, sizeof *out);
    if (!s->db_idem)
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_idem, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (kp[0] == 'x') {
            out->expiries++;
            continue;
        }
        int64_t expires, created;
        const unsigned char *hash;
        uint32_t n_ids, note_len;
        out->keys++;
        if (kp[0] != 'k' || k.mv_size < 2 || k.mv_size > KEY_K_MAX ||
            !rec_parse(&v, &expires, &created, &hash, &n_ids, &note_len)) {
            out->bad++;
            continue;
        }
        unsigned char xb[KEY_X_MAX];
        xb[0] = 'x';
        be64_put(xb + 1, (uint64_t)expires);
        memcpy(xb + 9, kp + 1, k.mv_size - 1);
        MDB_val x = {k.mv_size + 8, xb}, xv;
        int xr = mdb_get(txn, s->db_idem, &x, &xv);
        if (xr == MDB_NOTFOUND)
            out->unindexed++;
        else if (xr) {
            rc = xr;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int obx__idem_conflict(const char *key, obx_error *err)
{
    return obx__fail(err, OBX_ERR_CONFLICT,
                     "idempotency key '%.64s%s' was already used with a different request", key,
                     strlen(key) > 64 ? "..." : "");
}

int obx__idem_check(const obx_idem *idem, obx_error *err)
{
    int rc = obx_idem_key_check(idem->key, err);
    if (rc)
        return rc;
    if (idem->note_len > OBX_IDEM_NOTE_MAX || (idem->note_len && !idem->note))
        return obx__fail(err, OBX_ERR_INVALID, "idempotency note of %zu bytes (at most %d)",
                         idem->note_len, OBX_IDEM_NOTE_MAX);
    return OBX_OK;
}

/* The checks of one request before it is submitted (key, note, events, store state). */
static int enqueue_req_check(obx_store *s, const obx_event_in *events, size_t n,
                             const obx_idem *idem, obx_error *err)
{
    if (idem) {
        int rc = obx__idem_check(idem, err);
        if (rc)
            return rc;
    }
    return obx__enqueue_check(s, events, n, idem != NULL, err);
}

int obx__lmdb_enqueue_batch(obx_store *s, obx_enqueue_req *reqs, size_t n)
{
    obx_op *ops = calloc(n ? n : 1, sizeof *ops);
    size_t *which = calloc(n ? n : 1, sizeof *which);
    size_t k = 0;
    if (!ops || !which) {
        obx__batch_nomem(reqs, n);
        free(ops);
        free(which);
        return OBX_OK;
    }
    for (size_t i = 0; i < n; i++) {
        obx_enqueue_req *r = &reqs[i];
        memset(&r->res, 0, sizeof r->res);
        memset(&r->err, 0, sizeof r->err);
        r->rc = enqueue_req_check(s, r->events, r->n, r->idem, &r->err);
        if (r->rc)
            continue;
        obx_op *op = &ops[k];
        op->kind = OP_ENQUEUE;
        op->u.enq.events = r->events;
        op->u.enq.n = r->n;
        op->u.enq.ids = r->ids;
        op->u.enq.idem = r->idem;
        op->u.enq.res = r->idem ? &r->res : NULL;
        which[k++] = i;
    }
    if (k)
        obx__store_submit_many(s, ops, k);
    for (size_t j = 0; j < k; j++) {
        obx_enqueue_req *r = &reqs[which[j]];
        r->rc = ops[j].rc;
        if (r->rc) {
            r->err = ops[j].err;
            obx_idem_result_clear(&r->res);
        }
    }
    free(ops);
    free(which);
    return OBX_OK;
}

/* An obx_enqueue_submit request on its way through the writer (owned by it until done). */
typedef struct async_enq {
    obx_op op; /* first: the writer's finish callback gets &op */
    obx_enqueue_req *req;
    obx_enqueue_done_fn done;
    void *ud;
} async_enq;

static void async_enq_finish(obx_op *op)
{
    async_enq *a = (async_enq *)(void *)op;
    obx_enqueue_req *r = a->req;
    r->rc = op->rc;
    if (r->rc) {
        r->err = op->err;
        obx_idem_result_clear(&r->res);
    }
    obx_enqueue_done_fn done = a->done;
    void *ud = a->ud;
    free(a);
    done(ud, r);
}

int obx__lmdb_can_submit(const obx_store *s)
{
    return s->owner && s->writer_running;
}

int obx__lmdb_enqueue_submit(obx_store *s, obx_enqueue_req *r, obx_enqueue_done_fn done, void *ud)
{
    memset(&r->res, 0, sizeof r->res);
    memset(&r->err, 0, sizeof r->err);
    r->rc = enqueue_req_check(s, r->events, r->n, r->idem, &r->err);
    if (r->rc)
        return r->rc;
    async_enq *a = calloc(1, sizeof *a);
    if (!a)
        return r->rc = obx__fail(&r->err, OBX_ERR_NOMEM, "out of memory");
    a->req = r;
    a->done = done;
    a->ud = ud;
    a->op.kind = OP_ENQUEUE;
    a->op.finish = async_enq_finish;
    a->op.u.enq.events = r->events;
    a->op.u.enq.n = r->n;
    a->op.u.enq.ids = r->ids;
    a->op.u.enq.idem = r->idem;
    a->op.u.enq.res = r->idem ? &r->res : NULL;
    int rc = obx__store_submit_async(s, &a->op);
    if (rc) {
        r->rc = rc;
        r->err = a->op.err;
        free(a);
    }
    return rc;
}

int obx__lmdb_idem_sweep(obx_store *s, int64_t now_ms, size_t max, size_t *removed, obx_error *err)
{
    obx_op op = {.kind = OP_IDEM_SWEEP};
    op.u.sweep.before = now_ms;
    op.u.sweep.max = max ? max : 1000;
    if (removed)
        *removed = 0;
    if (!s->db_idem)
        return OBX_OK; /* a read-only handle on a store that never had keys */
    int rc = obx__store_submit(s, &op);
    if (rc && err)
        *err = op.err;
    if (removed && !rc)
        *removed = op.u.sweep.removed;
    return rc;
}
