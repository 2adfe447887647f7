/*
 * ops.c - the write operations of the store, each applied inside a write transaction
 * owned by the caller (the group-commit writer or a tool's direct write).
 *
 * Every operation keeps the indexes and the per-sink counters consistent with the
 * delivery records in the same transaction:
 *   pending:   deliveries[(ev,sink)] + due[(sink,t,ev)] + pending[(sink,ev)]
 *   inflight:  deliveries + inflight[(ev,sink)] + pending[(sink,ev)]
 *   delivered: deliveries + done[(t,ev,sink)]
 *   dead:      deliveries + dead[(t,ev,sink)]
 * Logical errors are found before the first write, so a failing operation leaves the
 * transaction as it found it; an LMDB error is returned as OBX_ERR_LMDB with *mdb_rc.
 * Only a record that is really damaged (OBX_ERR_CORRUPT) or gone (OBX_ERR_NOTFOUND) is
 * skipped or dead-lettered; any other read failure, out of memory above all, fails the
 * operation whole (the writer aborts the transaction), so a passing shortage never turns
 * into a dead letter or a delivery dropped from the due index.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_) {                                                                                 \
            *mdb_rc = rc_;                                                                         \
            return OBX_ERR_LMDB;                                                                   \
        }                                                                                          \
    } while (0)

/* A read failure that says nothing about the record (memory, LMDB): fail the op whole. */
static int read_failed(int rc)
{
    return rc != OBX_OK && rc != OBX_ERR_NOTFOUND && rc != OBX_ERR_CORRUPT;
}

/* Fail op with a read error `e` (its code and message), for op_breaks_txn. */
static int fail_read(obx_op *op, const obx_error *e)
{
    op->err = *e;
    return e->code == OBX_ERR_NOMEM ? OBX_ERR_NOMEM : OBX_ERR_LMDB;
}

static void cnt(txn_ctx *ctx, uint32_t sink, int idx, int64_t d)
{
    if (sink >= OBX_MAX_SINKS)
        return;
    if (!ctx->touched_flag[sink]) {
        ctx->touched_flag[sink] = 1;
        ctx->touched_list[ctx->n_touched++] = sink;
    }
    ctx->delta[sink][idx] += d;
}

void obx__ctx_reset(txn_ctx *ctx, uint64_t next_id)
{
    for (size_t i = 0; i < ctx->n_touched; i++) {
        uint32_t k = ctx->touched_list[i];
        ctx->touched_flag[k] = 0;
        memset(ctx->delta[k], 0, sizeof ctx->delta[k]);
    }
    ctx->n_touched = 0;
    ctx->events_delta = 0;
    ctx->enqueued_delta = 0;
    ctx->idem_delta = 0;
    ctx->next_id = next_id;
    ctx->added_bytes = 0;
    ctx->notify = 0;
}

int obx__meta_get_u64(obx_store *s, MDB_txn *txn, const char *key, uint64_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, val;
    int rc = mdb_get(txn, s->db_meta, &k, &val);
    if (rc == 0 && val.mv_size == 8)
        memcpy(v, val.mv_data, 8);
    return rc;
}

static int meta_put_u64(obx_store *s, MDB_txn *txn, const char *key, uint64_t v)
{
    MDB_val k = {strlen(key), (void *)key}, val = {8, &v};
    return mdb_put(txn, s->db_meta, &k, &val, 0);
}

int obx__read_counters(obx_store *s, MDB_txn *txn, uint32_t sink, uint64_t c[CNT_N])
{
    unsigned char kb[5] = {'c'};
    be32_put(kb + 1, sink);
    MDB_val k = {5, kb}, v;
    memset(c, 0, sizeof(uint64_t) * CNT_N);
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(uint64_t) * CNT_N)
        memcpy(c, v.mv_data, v.mv_size);
    return rc;
}

int obx__ctx_flush(obx_store *s, txn_ctx *ctx, int *mdb_rc)
{
    MDB_txn *txn = ctx->txn;
    for (size_t i = 0; i < ctx->n_touched; i++) {
        uint32_t sink = ctx->touched_list[i];
        uint64_t c[CNT_N];
        obx__read_counters(s, txn, sink, c);
        for (int j = 0; j < CNT_N; j++) {
            int64_t v = (int64_t)c[j] + ctx->delta[sink][j];
            c[j] = v < 0 ? 0 : (uint64_t)v;
        }
        unsigned char kb[5] = {'c'};
        be32_put(kb + 1, sink);
        MDB_val k = {5, kb}, v = {sizeof c, c};
        TRY(mdb_put(txn, s->db_meta, &k, &v, 0));
    }
    if (ctx->events_delta) {
        uint64_t n = 0;
        obx__meta_get_u64(s, txn, "events", &n);
        int64_t v = (int64_t)n + ctx->events_delta;
        TRY(meta_put_u64(s, txn, "events", v < 0 ? 0 : (uint64_t)v));
    }
    if (ctx->enqueued_delta) {
        uint64_t n = 0;
        obx__meta_get_u64(s, txn, "enqueued", &n);
        TRY(meta_put_u64(s, txn, "enqueued", n + ctx->enqueued_delta));
    }
    if (ctx->idem_delta) {
        uint64_t n = 0;
        obx__meta_get_u64(s, txn, "idem_keys", &n);
        int64_t v = (int64_t)n + ctx->idem_delta;
        TRY(meta_put_u64(s, txn, "idem_keys", v < 0 ? 0 : (uint64_t)v));
    }
    if (ctx->next_id != s->next_id)
        TRY(meta_put_u64(s, txn, "next_id", ctx->next_id));
    return OBX_OK;
}

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl,
               unsigned flags)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    return mdb_put(txn, dbi, &key, &val, flags);
}

/* Delete; a missing key is not an error (indexes are repaired, not trusted blindly). */
static int del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int obx__load_delivery(obx_store *s, MDB_txn *txn, uint64_t ev, uint32_t sink, obx_delivery *d,
                       obx_error *err)
{
    unsigned char k[KEY_DELIV_LEN];
    key_deliv(k, ev, sink);
    MDB_val key = {sizeof k, k}, val;
    memset(d, 0, sizeof *d);
    d->event_id = ev;
    d->sink_id = sink;
    int rc = mdb_get(txn, s->db_deliv, &key, &val);
    if (rc == MDB_NOTFOUND)
        return obx__fail(err, OBX_ERR_NOTFOUND, "no delivery for event %llu and sink %u",
                         (unsigned long long)ev, sink);
    if (rc)
        return obx__mdb_fail(err, rc, "read delivery");
    rc = obx__codec_delivery_decode(val.mv_data, val.mv_size, d, err);
    if (rc == OBX_OK)
        obx_delivery_id(s, ev, sink, d->webhook_id, sizeof d->webhook_id);
    if (rc && err) {
        char tmp[sizeof err->msg + 64];
        snprintf(tmp, sizeof tmp, "event %llu sink %u: %s", (unsigned long long)ev, sink, err->msg);
        memcpy(err->msg, tmp, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return rc;
}

int obx__load_event(obx_store *s, MDB_txn *txn, uint64_t ev, obx_event *out, uint32_t **sinks,
                    size_t *n_sinks, obx_error *err)
{
    unsigned char k[KEY_EVENT_LEN];
    be64_put(k, ev);
    MDB_val key = {sizeof k, k}, val;
    memset(out, 0, sizeof *out);
    int rc = mdb_get(txn, s->db_events, &key, &val);
    if (rc == MDB_NOTFOUND)
        return obx__fail(err, OBX_ERR_NOTFOUND, "no event with id %llu", (unsigned long long)ev);
    if (rc)
        return obx__mdb_fail(err, rc, "read event");
    rc = obx__codec_event_decode(val.mv_data, val.mv_size, out, sinks, n_sinks, err);
    if (rc && err) {
        char tmp[sizeof err->msg + 64];
        snprintf(tmp, sizeof tmp, "event %llu: %s", (unsigned long long)ev, err->msg);
        memcpy(err->msg, tmp, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    out->id = ev;
    return rc;
}

static int save_delivery(obx_store *s, txn_ctx *ctx, const obx_delivery *d, unsigned flags)
{
    if (obx__codec_delivery_encode(&ctx->buf, d) != OBX_OK)
        return ENOMEM;
    unsigned char k[KEY_DELIV_LEN];
    key_deliv(k, d->event_id, d->sink_id);
    ctx->added_bytes += ctx->buf.len + sizeof k;
    return put(ctx->txn, s->db_deliv, k, sizeof k, ctx->buf.p, ctx->buf.len, flags);
}

static int idx_due(obx_store *s, txn_ctx *ctx, uint32_t sink, int64_t t, uint64_t ev, int add)
{
    unsigned char k[KEY_DUE_LEN];
    key_due(k, sink, t, ev);
    return add ? put(ctx->txn, s->db_due, k, sizeof k, "", 0, 0)
               : del(ctx->txn, s->db_due, k, sizeof k);
}

static int idx_pend(obx_store *s, txn_ctx *ctx, uint32_t sink, uint64_t ev, int add)
{
    unsigned char k[KEY_PEND_LEN];
    key_pend(k, sink, ev);
    return add ? put(ctx->txn, s->db_pend, k, sizeof k, "", 0, 0)
               : del(ctx->txn, s->db_pend, k, sizeof k);
}

static int idx_flight(obx_store *s, txn_ctx *ctx, uint64_t ev, uint32_t sink, int add)
{
    unsigned char k[KEY_DELIV_LEN];
    key_deliv(k, ev, sink);
    return add ? put(ctx->txn, s->db_flight, k, sizeof k, "", 0, 0)
               : del(ctx->txn, s->db_flight, k, sizeof k);
}

static int idx_time(MDB_txn *txn, MDB_dbi dbi, int64_t t, uint64_t ev, uint32_t sink, int add)
{
    unsigned char k[KEY_TIME_LEN];
    key_time(k, t, ev, sink);
    return add ? put(txn, dbi, k, sizeof k, "", 0, 0) : del(txn, dbi, k, sizeof k);
}

/* ---- enqueue ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int op_enqueue(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    const obx_event_in *evs = op->u.enq.events;
    if (op->u.enq.idem) { /* a known key: answer from it, store nothing (not even when full) */
        int rc = obx__idem_lookup(s, ctx, op, mdb_rc);
        if (rc != OBX_OK || op->u.enq.res->replayed)
            return rc;
    }
    uint64_t estimate = obx__idem_estimate(op);
    for (size_t i = 0; i < op->u.enq.n; i++)
        estimate += evs[i].body_len + 96 + evs[i].n_sinks * 160;
    uint64_t hw = obx__store_high_water(s);
    if (ctx->used_bytes + ctx->added_bytes + estimate > hw)
        return obx__store_full(s, &op->err, OBX_FULL_CAP, NULL, ctx->used_bytes + ctx->added_bytes);
    if (ctx->room_bytes != UINT64_MAX &&
        ctx->added_bytes + estimate + OBX_DISK_RESERVE > ctx->room_bytes)
        return obx__store_full(s, &op->err, OBX_FULL_DISK, NULL,
                               ctx->used_bytes + ctx->added_bytes);
    int64_t now = obx_now_ms();
    for (size_t i = 0; i < op->u.enq.n; i++) {
        const obx_event_in *e = &evs[i];
        uint32_t sinks[OBX_MAX_ROUTES];
        memcpy(sinks, e->sinks, e->n_sinks * sizeof *sinks);
        qsort(sinks, e->n_sinks, sizeof *sinks, cmp_u32);
        uint64_t id = ctx->next_id++;
        rec_event r = {e->received_ms ? e->received_ms : now,
                       e->type,
                       e->action,
                       e->body,
                       e->body_len,
                       sinks,
                       e->n_sinks};
        if (obx__codec_event_encode(&ctx->buf, &r) != OBX_OK)
            return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory encoding event");
        unsigned char k[KEY_EVENT_LEN];
        be64_put(k, id);
        TRY(put(ctx->txn, s->db_events, k, sizeof k, ctx->buf.p, ctx->buf.len, MDB_APPEND));
        for (size_t j = 0; j < e->n_sinks; j++) {
            obx_delivery d = {.event_id = id,
                              .sink_id = sinks[j],
                              .state = OBX_STATE_PENDING,
                              .next_attempt_ms = now};
            TRY(save_delivery(s, ctx, &d, MDB_APPEND));
            TRY(idx_due(s, ctx, sinks[j], now, id, 1));
            TRY(idx_pend(s, ctx, sinks[j], id, 1));
            cnt(ctx, sinks[j], CNT_PENDING, 1);
        }
        op->u.enq.ids[i] = id;
    }
    if (op->u.enq.idem)
        TRY(obx__idem_put(s, ctx, op, now));
    ctx->added_bytes += estimate;
    ctx->events_delta += (int64_t)op->u.enq.n;
    ctx->enqueued_delta += op->u.enq.n;
    ctx->notify |= op->u.enq.n > 0;
    return OBX_OK;
}

/* ---- claim ---- */

void obx_jobs_free(obx_job *jobs, size_t n)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].type);
        free(jobs[i].action);
        free(jobs[i].body);
    }
    free(jobs);
}

/* Move a delivery whose event cannot be read to the dead letters, with the reason. */
static int bury(obx_store *s, txn_ctx *ctx, obx_delivery *d, int from_state, const char *why)
{
    int64_t now = obx_now_ms();
    char *reason = strdup(why);
    if (!reason)
        return ENOMEM;
    free(d->reason);
    d->reason = reason;
    d->state = OBX_STATE_DEAD;
    d->done_ms = now;
    int rc = save_delivery(s, ctx, d, 0);
    if (!rc)
        rc = idx_time(ctx->txn, s->db_dead, now, d->event_id, d->sink_id, 1);
    if (!rc)
        rc = idx_pend(s, ctx, d->sink_id, d->event_id, 0);
    cnt(ctx, d->sink_id, from_state == OBX_STATE_INFLIGHT ? CNT_INFLIGHT : CNT_PENDING, -1);
    cnt(ctx, d->sink_id, CNT_DEAD, 1);
    return rc;
}

static int op_claim(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    uint32_t sink = op->u.claim.sink;
    size_t max = op->u.claim.max;
    unsigned char(*keys)[KEY_DUE_LEN] = malloc(max * KEY_DUE_LEN);
    if (!keys)
        return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory");
    op->u.claim.jobs = NULL;
    op->u.claim.n = 0;
    op->u.claim.next_due = INT64_MAX;

    MDB_cursor *cur;
    int rc = mdb_cursor_open(ctx->txn, s->db_due, &cur);
    if (rc) {
        free(keys);
        *mdb_rc = rc;
        return OBX_ERR_LMDB;
    }
    unsigned char start[KEY_DUE_LEN];
    key_due(start, sink, 0, 0);
    MDB_val k = {sizeof start, start}, v;
    size_t n = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size != KEY_DUE_LEN || be32_get(k.mv_data) != sink)
            break;
        int64_t t = (int64_t)be64_get((unsigned char *)k.mv_data + 4);
        if (t > op->u.claim.now || n == max) {
            op->u.claim.next_due = t;
            break;
        }
        memcpy(keys[n++], k.mv_data, KEY_DUE_LEN);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) {
        free(keys);
        *mdb_rc = rc;
        return OBX_ERR_LMDB;
    }
    obx_job *jobs = calloc(n ? n : 1, sizeof *jobs);
    if (!jobs) {
        free(keys);
        return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory");
    }
    size_t got = 0;
    int ret = OBX_OK;
    for (size_t i = 0; i < n; i++) {
        uint64_t ev = be64_get(keys[i] + 12);
        int64_t due = (int64_t)be64_get(keys[i] + 4);
        if ((rc = del(ctx->txn, s->db_due, keys[i], KEY_DUE_LEN)) != 0)
            goto lmdb;
        obx_delivery d;
        obx_error e;
        int lr = obx__load_delivery(s, ctx->txn, ev, sink, &d, &e);
        if (read_failed(lr)) {
            obx_delivery_clear(&d);
            ret = fail_read(op, &e);
            goto fail;
        }
        if (lr != OBX_OK) {
            /* Stale or corrupt: the due entry is dropped so it cannot block the sink;
             * obx_check reports the record. */
            obx_delivery_clear(&d);
            continue;
        }
        if (d.state != OBX_STATE_PENDING) {
            obx_delivery_clear(&d);
            continue;
        }
        obx_event evr;
        lr = obx__load_event(s, ctx->txn, ev, &evr, NULL, NULL, &e);
        if (read_failed(lr)) {
            obx_delivery_clear(&d);
            ret = fail_read(op, &e);
            goto fail;
        }
        if (lr != OBX_OK) {
            char why[300];
            snprintf(why, sizeof why, "event record unreadable: %s", e.msg);
            rc = bury(s, ctx, &d, OBX_STATE_PENDING, why);
            obx_delivery_clear(&d);
            if (rc)
                goto lmdb;
            continue;
        }
        d.state = OBX_STATE_INFLIGHT;
        rc = save_delivery(s, ctx, &d, 0);
        if (!rc)
            rc = idx_flight(s, ctx, ev, sink, 1);
        if (rc) {
            obx_delivery_clear(&d);
            free(evr.type);
            free(evr.action);
            free(evr.body);
            goto lmdb;
        }
        cnt(ctx, sink, CNT_PENDING, -1);
        cnt(ctx, sink, CNT_INFLIGHT, 1);
        obx_job *j = &jobs[got++];
        j->event_id = ev;
        j->sink_id = sink;
        j->attempts = d.attempts;
        j->first_attempt_ms = d.first_attempt_ms;
        j->deadline_ms = d.deadline_ms;
        j->due_ms = due;
        j->in_doubt = d.in_doubt;
        j->received_ms = evr.received_ms;
        j->type = evr.type;
        j->action = evr.action;
        j->body = evr.body;
        j->body_len = evr.body_len;
        obx_delivery_id(s, ev, sink, j->webhook_id, sizeof j->webhook_id);
        obx_delivery_clear(&d);
    }
    free(keys);
    if (got == 0) {
        free(jobs); /* the API promises NULL when nothing was claimed */
        jobs = NULL;
    }
    op->u.claim.jobs = jobs;
    op->u.claim.n = got;
    return OBX_OK;
lmdb:
    *mdb_rc = rc;
    ret = OBX_ERR_LMDB;
fail:
    free(keys);
    obx_jobs_free(jobs, got);
    return ret;
}

/* ---- record results ---- */

static int op_record(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    for (size_t i = 0; i < op->u.rec.n; i++) {
        const obx_result *r = &op->u.rec.results[i];
        obx_delivery d;
        obx_error e;
        int lr = obx__load_delivery(s, ctx->txn, r->event_id, r->sink_id, &d, &e);
        if (read_failed(lr)) {
            obx_delivery_clear(&d);
            return fail_read(op, &e); /* the result is kept by the caller, not dropped */
        }
        if (lr != OBX_OK || d.state != OBX_STATE_INFLIGHT) {
            obx_delivery_clear(&d);
            continue; /* purged or replayed meanwhile, or corrupt: nothing to record */
        }
        int rc = idx_flight(s, ctx, r->event_id, r->sink_id, 0);
        cnt(ctx, r->sink_id, CNT_INFLIGHT, -1);
        if (r->outcome == OBX_OUTCOME_RELEASE) {
            d.state = OBX_STATE_PENDING;
            if (!rc)
                rc = idx_due(s, ctx, r->sink_id, d.next_attempt_ms, r->event_id, 1);
            cnt(ctx, r->sink_id, CNT_PENDING, 1);
            ctx->notify = 1;
        } else {
            d.attempts++;
            d.total_attempts++;
            d.last_attempt_ms = r->started_ms;
            d.last_status = r->status;
            free(d.last_error);
            d.last_error = r->error ? strdup(r->error) : NULL;
            char *reason = NULL;
            if (r->outcome != OBX_OUTCOME_DELIVERED && r->outcome != OBX_OUTCOME_RETRY)
                reason = strdup(r->reason ? r->reason : "dead");
            if ((r->error && !d.last_error) ||
                (r->outcome != OBX_OUTCOME_DELIVERED && r->outcome != OBX_OUTCOME_RETRY &&
                 !reason) ||
                obx__delivery_push_attempt(&d, r->started_ms, r->duration_ms, r->status, r->error,
                                           s->opts.history) != OBX_OK ||
                obx__attempt_set_capture(&d.history[d.n_history - 1], r->headers, r->n_headers,
                                         r->body, r->body_len, r->body_size) != OBX_OK) {
                free(reason);
                obx_delivery_clear(&d);
                return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory");
            }
            if (!d.first_attempt_ms)
                d.first_attempt_ms = r->first_attempt_ms ? r->first_attempt_ms : r->started_ms;
            if (r->deadline_ms)
                d.deadline_ms = r->deadline_ms;
            if (d.in_doubt) {
                d.in_doubt = 0;
                cnt(ctx, r->sink_id, CNT_IN_DOUBT, -1);
            }
            int64_t end = r->started_ms + r->duration_ms;
            switch (r->outcome) {
            case OBX_OUTCOME_DELIVERED:
                d.state = OBX_STATE_DELIVERED;
                d.done_ms = end;
                if (!rc)
                    rc = idx_time(ctx->txn, s->db_done, end, r->event_id, r->sink_id, 1);
                if (!rc)
                    rc = idx_pend(s, ctx, r->sink_id, r->event_id, 0);
                cnt(ctx, r->sink_id, CNT_DELIVERED, 1);
                break;
            case OBX_OUTCOME_RETRY:
                d.state = OBX_STATE_PENDING;
                d.next_attempt_ms = r->next_attempt_ms;
                if (!rc)
                    rc = idx_due(s, ctx, r->sink_id, r->next_attempt_ms, r->event_id, 1);
                cnt(ctx, r->sink_id, CNT_PENDING, 1);
                break;
            default: /* DEAD */
                d.state = OBX_STATE_DEAD;
                d.done_ms = end;
                free(d.reason);
                d.reason = reason;
                if (!rc)
                    rc = idx_time(ctx->txn, s->db_dead, end, r->event_id, r->sink_id, 1);
                OBX_CRASH_POINT("dead-move");
                if (!rc)
                    rc = idx_pend(s, ctx, r->sink_id, r->event_id, 0);
                cnt(ctx, r->sink_id, CNT_DEAD, 1);
                break;
            }
        }
        if (!rc)
            rc = save_delivery(s, ctx, &d, 0);
        obx_delivery_clear(&d);
        TRY(rc);
    }
    return OBX_OK;
}

/* ---- replay / purge ---- */

/* Collect the sinks of event ev that have a delivery record (ascending). */
int obx__event_sinks(obx_store *s, MDB_txn *txn, uint64_t ev, uint32_t *out, size_t *n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_deliv, &cur);
    if (rc)
        return rc;
    unsigned char start[KEY_DELIV_LEN];
    key_deliv(start, ev, 0);
    MDB_val k = {sizeof start, start}, v;
    *n = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == KEY_DELIV_LEN && be64_get(k.mv_data) == ev &&
           *n < OBX_MAX_ROUTES) {
        out[(*n)++] = be32_get((unsigned char *)k.mv_data + 8);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int op_replay_purge(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    int purge = op->kind == OP_PURGE;
    uint64_t ev = op->u.replay.id;
    uint32_t want = op->u.replay.sink;
    uint32_t sinks[OBX_MAX_ROUTES];
    size_t n = 0;
    op->u.replay.count = 0;
    TRY(obx__event_sinks(s, ctx->txn, ev, sinks, &n));
    if (n == 0)
        return obx__fail(&op->err, OBX_ERR_NOTFOUND, "no event with id %llu",
                         (unsigned long long)ev);
    /* First pass: decide, without writing. */
    obx_delivery ds[OBX_MAX_ROUTES];
    size_t m = 0, matched = 0;
    char states[128] = "";
    for (size_t i = 0; i < n; i++) {
        if (want != OBX_ALL_SINKS && sinks[i] != want)
            continue;
        matched++;
        obx_error e;
        obx_delivery d;
        int lr = obx__load_delivery(s, ctx->txn, ev, sinks[i], &d, &e);
        if (read_failed(lr)) {
            obx_delivery_clear(&d);
            for (size_t j = 0; j < m; j++)
                obx_delivery_clear(&ds[j]);
            return fail_read(op, &e);
        }
        if (lr != OBX_OK) {
            obx_delivery_clear(&d);
            continue;
        }
        size_t sl = strlen(states);
        snprintf(states + sl, sizeof states - sl, "%s%s", sl ? ", " : "", obx_state_name(d.state));
        if (d.state == OBX_STATE_DEAD || (!purge && d.state == OBX_STATE_DELIVERED))
            ds[m++] = d;
        else
            obx_delivery_clear(&d);
    }
    if (matched == 0)
        return obx__fail(&op->err, OBX_ERR_NOTFOUND, "event %llu has no delivery to sink %u",
                         (unsigned long long)ev, want);
    if (m == 0)
        return obx__fail(&op->err, OBX_ERR_STATE, "event %llu: nothing to %s (deliveries are %s)",
                         (unsigned long long)ev, purge ? "purge: no dead letter" : "replay",
                         states[0] ? states : "unreadable");
    int rc = 0;
    for (size_t i = 0; i < m; i++) {
        obx_delivery *d = &ds[i];
        if (rc)
            goto next;
        MDB_dbi idx = d->state == OBX_STATE_DEAD ? s->db_dead : s->db_done;
        rc = idx_time(ctx->txn, idx, d->done_ms, ev, d->sink_id, 0);
        cnt(ctx, d->sink_id, d->state == OBX_STATE_DEAD ? CNT_DEAD : CNT_DELIVERED, -1);
        if (purge) {
            unsigned char k[KEY_DELIV_LEN];
            key_deliv(k, ev, d->sink_id);
            if (!rc)
                rc = del(ctx->txn, s->db_deliv, k, sizeof k);
        } else {
            int64_t now = op->u.replay.now;
            d->state = OBX_STATE_PENDING;
            d->attempts = 0;
            d->first_attempt_ms = 0;
            d->deadline_ms = 0;
            d->done_ms = 0;
            d->next_attempt_ms = now;
            d->replays++;
            free(d->reason);
            d->reason = NULL;
            if (!rc)
                rc = save_delivery(s, ctx, d, 0);
            if (!rc)
                rc = idx_due(s, ctx, d->sink_id, now, ev, 1);
            if (!rc)
                rc = idx_pend(s, ctx, d->sink_id, ev, 1);
            cnt(ctx, d->sink_id, CNT_PENDING, 1);
            ctx->notify = 1;
        }
        op->u.replay.count++;
    next:
        obx_delivery_clear(d);
    }
    TRY(rc);
    if (purge && m == n) {
        unsigned char k[KEY_EVENT_LEN];
        be64_put(k, ev);
        TRY(del(ctx->txn, s->db_events, k, sizeof k));
        ctx->events_delta--;
    }
    return OBX_OK;
}

/* ---- retention ---- */

static int op_sweep(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    size_t max = op->u.sweep.max;
    unsigned char(*keys)[KEY_TIME_LEN] = malloc(max * KEY_TIME_LEN);
    if (!keys)
        return obx__fail(&op->err, OBX_ERR_NOMEM, "out of memory");
    MDB_cursor *cur;
    int rc = mdb_cursor_open(ctx->txn, s->db_done, &cur);
    size_t n = 0;
    MDB_val k, v;
    if (!rc) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == 0 && n < max && k.mv_size == KEY_TIME_LEN &&
               (int64_t)be64_get(k.mv_data) <= op->u.sweep.before) {
            memcpy(keys[n++], k.mv_data, KEY_TIME_LEN);
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t ev = be64_get(keys[i] + 8);
        uint32_t sink = be32_get(keys[i] + 16);
        rc = del(ctx->txn, s->db_done, keys[i], KEY_TIME_LEN);
        obx_delivery d;
        obx_error e;
        int lr = obx__load_delivery(s, ctx->txn, ev, sink, &d, &e);
        int state = d.state;
        obx_delivery_clear(&d);
        if (!rc && read_failed(lr)) {
            free(keys);
            return fail_read(op, &e);
        }
        if (lr == OBX_OK && state != OBX_STATE_DELIVERED)
            continue; /* stale index entry (replayed): just drop it */
        unsigned char dk[KEY_DELIV_LEN];
        key_deliv(dk, ev, sink);
        if (!rc && lr != OBX_ERR_NOTFOUND) {
            rc = del(ctx->txn, s->db_deliv, dk, sizeof dk);
            cnt(ctx, sink, CNT_DELIVERED, -1);
        }
        uint32_t left[OBX_MAX_ROUTES];
        size_t nl = 0;
        if (!rc)
            rc = obx__event_sinks(s, ctx->txn, ev, left, &nl);
        if (!rc && nl == 0) {
            unsigned char ek[KEY_EVENT_LEN];
            be64_put(ek, ev);
            MDB_val key = {sizeof ek, ek};
            int dr = mdb_del(ctx->txn, s->db_events, &key, NULL);
            if (dr == 0)
                ctx->events_delta--;
            else if (dr != MDB_NOTFOUND)
                rc = dr;
        }
        op->u.sweep.removed++;
        OBX_CRASH_POINT("retention");
    }
    free(keys);
    TRY(rc);
    return OBX_OK;
}

/* ---- sinks ---- */

static int op_sink(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    char kb[80];
    int kl = snprintf(kb, sizeof kb, "s:%s", op->u.sink.name);
    MDB_val k = {(size_t)kl, kb}, v;
    int rc = mdb_get(ctx->txn, s->db_meta, &k, &v);
    if (rc == 0 && v.mv_size == 4) {
        op->u.sink.id = be32_get(v.mv_data);
        return OBX_OK;
    }
    uint32_t id;
    rc = obx__sink_slot_take(s, ctx->txn, &id); /* a slot freed by obx_sink_retire */
    if (rc == MDB_NOTFOUND) {
        uint64_t next = 1;
        obx__meta_get_u64(s, ctx->txn, "next_sink", &next);
        if (next >= OBX_MAX_SINKS)
            return obx__fail(&op->err, OBX_ERR_FULL,
                             "too many sinks (at most %u; outboxctl retire frees unused ones)",
                             OBX_MAX_SINKS - 1);
        TRY(meta_put_u64(s, ctx->txn, "next_sink", next + 1));
        id = (uint32_t)next;
    } else {
        TRY(rc);
    }
    unsigned char idb[4];
    be32_put(idb, id);
    TRY(put(ctx->txn, s->db_meta, kb, (size_t)kl, idb, 4, 0));
    unsigned char ik[6] = {'i', ':'};
    be32_put(ik + 2, id);
    TRY(put(ctx->txn, s->db_meta, ik, 6, op->u.sink.name, strlen(op->u.sink.name), 0));
    op->u.sink.id = id;
    return OBX_OK;
}

int obx__op_apply(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc)
{
    *mdb_rc = 0;
    switch (op->kind) {
    case OP_ENQUEUE:
        return op_enqueue(s, ctx, op, mdb_rc);
    case OP_CLAIM:
        return op_claim(s, ctx, op, mdb_rc);
    case OP_RECORD:
        return op_record(s, ctx, op, mdb_rc);
    case OP_REPLAY:
    case OP_PURGE:
        return op_replay_purge(s, ctx, op, mdb_rc);
    case OP_SWEEP:
        return op_sweep(s, ctx, op, mdb_rc);
    case OP_SINK:
        return op_sink(s, ctx, op, mdb_rc);
    case OP_IDEM_SWEEP:
        return obx__idem_sweep_apply(s, ctx, op, mdb_rc);
    }
    return obx__fail(&op->err, OBX_ERR_INVALID, "unknown operation");
}

/* ---- owner start-up: deliveries left in flight by a crash become due, in doubt ---- */

int obx__store_recover_inflight(obx_store *s, obx_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return obx__mdb_fail(err, rc, "recover in-flight deliveries");
    txn_ctx *ctx = &s->ctx;
    obx__ctx_reset(ctx, s->next_id);
    ctx->txn = txn;
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(txn, s->db_flight, &cur);
    MDB_val k, v;
    int64_t now = obx_now_ms();
    size_t n = 0;
    while (!rc && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        uint64_t ev = be64_get(k.mv_data);
        uint32_t sink = be32_get((unsigned char *)k.mv_data + 8);
        rc = mdb_cursor_del(cur, 0);
        obx_delivery d = {0};
        obx_error e;
        int lr = rc ? OBX_OK : obx__load_delivery(s, txn, ev, sink, &d, &e);
        if (read_failed(lr)) {
            obx_delivery_clear(&d);
            if (cur)
                mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            return obx__fail(err, e.code, "recover in-flight deliveries: %s", e.msg);
        }
        if (!rc && lr == OBX_OK && d.state == OBX_STATE_INFLIGHT) {
            d.state = OBX_STATE_PENDING;
            if (!d.in_doubt)
                cnt(ctx, sink, CNT_IN_DOUBT, 1);
            d.in_doubt = 1;
            d.next_attempt_ms = now;
            rc = save_delivery(s, ctx, &d, 0);
            if (!rc)
                rc = idx_due(s, ctx, sink, now, ev, 1);
            cnt(ctx, sink, CNT_INFLIGHT, -1);
            cnt(ctx, sink, CNT_PENDING, 1);
            n++;
        }
        obx_delivery_clear(&d);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (cur)
        mdb_cursor_close(cur);
    int mrc = 0;
    if (!rc && obx__ctx_flush(s, ctx, &mrc) != OBX_OK)
        rc = mrc;
    if (rc) {
        mdb_txn_abort(txn);
        return obx__mdb_fail(err, rc, "recover in-flight deliveries");
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return obx__mdb_fail(err, rc, "recover in-flight deliveries");
    return OBX_OK;
}
