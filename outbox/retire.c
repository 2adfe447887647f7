/*
 * retire.c - retiring a sink that is no longer configured (obx_sink_retire, outbox.h).
 *
 * Its deliveries are found by walking the deliveries tree in key order (event id, sink id)
 * in pages: each page is one short write transaction (a read transaction for a dry run)
 * that scans at most RETIRE_SCAN keys and changes at most RETIRE_PAGE deliveries, so a
 * daemon writing meanwhile waits for one page at most. Each change keeps the indexes and
 * the sink's counters consistent with the records, in the same transaction (as ops.c
 * does for every operation).
 *
 * The registry slot: a sink id is written into every delivery record and index key of
 * the sink, so it may be given to another sink only when no record of the old one is left
 * (else the new sink would inherit them: a replay would send the old sink's dead letters
 * to it). So dead-lettering keeps the slot (the dead letters keep their sink's name);
 * purging every record frees it: the name and id entries are deleted and the id is put
 * on the free list ("f:" + id in meta), from which the next registration takes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define RETIRE_PAGE 512
#define RETIRE_SCAN 16384

typedef struct retire_page {
    MDB_txn *txn;
    int64_t delta[CNT_N]; /* counter changes of the sink in this page */
    int64_t events_delta;
    unsigned char resume[KEY_DELIV_LEN]; /* first key not scanned yet */
    int at_end;
} retire_page;

static int put_raw(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    return mdb_put(txn, dbi, &key, &val, 0);
}

static int del_raw(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void key_counters(unsigned char k[5], uint32_t sink)
{
    k[0] = 'c';
    be32_put(k + 1, sink);
}

static void key_free_slot(unsigned char k[6], uint32_t sink)
{
    k[0] = 'f';
    k[1] = ':';
    be32_put(k + 2, sink);
}

/* Does event ev have a delivery to a sink other than `sink`? */
static int has_other_delivery(obx_store *s, MDB_txn *txn, uint64_t ev, uint32_t sink, int *yes)
{
    uint32_t sinks[OBX_MAX_ROUTES];
    size_t n = 0;
    int rc = obx__event_sinks(s, txn, ev, sinks, &n);
    *yes = 0;
    for (size_t i = 0; i < n; i++)
        *yes |= sinks[i] != sink;
    return rc;
}

/* Collect up to RETIRE_PAGE event ids of the sink's deliveries from p->resume on. */
static int scan_page(obx_store *s, retire_page *p, uint32_t sink, uint64_t *evs, size_t *n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(p->txn, s->db_deliv, &cur);
    if (rc)
        return rc;
    MDB_val k = {KEY_DELIV_LEN, p->resume}, v;
    size_t scanned = 0;
    *n = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && *n < RETIRE_PAGE && scanned < RETIRE_SCAN) {
        scanned++;
        if (k.mv_size == KEY_DELIV_LEN && be32_get((unsigned char *)k.mv_data + 8) == sink)
            evs[(*n)++] = be64_get(k.mv_data);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && k.mv_size == KEY_DELIV_LEN)
        memcpy(p->resume, k.mv_data, KEY_DELIV_LEN);
    else if (rc == MDB_NOTFOUND)
        p->at_end = 1;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Retire one delivery (p->txn is a write transaction unless dry_run). Counts what it did
 * (or would do) in c. Leaves a corrupt record alone (c->corrupt); out of memory is
 * ENOMEM, which aborts the page (nothing of it is written).
 */
static int retire_one(obx_store *s, retire_page *p, uint64_t ev, uint32_t sink, int mode,
                      int dry_run, int64_t now, obx_retire_counts *c)
{
    obx_delivery d;
    obx_error e;
    int lr = obx__load_delivery(s, p->txn, ev, sink, &d, &e);
    if (lr == OBX_ERR_NOTFOUND)
        return 0;
    if (lr == OBX_ERR_NOMEM) /* a shortage is not corruption: the page fails whole */
        return ENOMEM;
    if (lr) {
        c->corrupt++;
        obx_delivery_clear(&d);
        return 0;
    }
    int purge = mode == OBX_RETIRE_PURGE, rc = 0;
    int state = d.state;
    if (!purge && (state == OBX_STATE_DEAD || state == OBX_STATE_DELIVERED)) {
        if (state == OBX_STATE_DEAD)
            c->dead_kept++;
        else
            c->delivered_kept++;
        goto out;
    }
    switch (state) {
    case OBX_STATE_PENDING:
        c->pending++;
        break;
    case OBX_STATE_INFLIGHT:
        c->inflight++;
        break;
    case OBX_STATE_DEAD:
        c->dead++;
        break;
    default:
        c->delivered++;
        break;
    }
    int other = 1;
    if (purge && (rc = has_other_delivery(s, p->txn, ev, sink, &other)))
        goto out;
    if (purge && !other)
        c->events++;
    if (dry_run)
        goto out;
    unsigned char k[KEY_DUE_LEN];
    if (state == OBX_STATE_PENDING || state == OBX_STATE_INFLIGHT) {
        if (state == OBX_STATE_PENDING) {
            key_due(k, sink, d.next_attempt_ms, ev);
            rc = del_raw(p->txn, s->db_due, k, KEY_DUE_LEN);
            p->delta[CNT_PENDING]--;
        } else {
            key_deliv(k, ev, sink);
            rc = del_raw(p->txn, s->db_flight, k, KEY_DELIV_LEN);
            p->delta[CNT_INFLIGHT]--;
        }
        key_pend(k, sink, ev);
        if (!rc)
            rc = del_raw(p->txn, s->db_pend, k, KEY_PEND_LEN);
        if (d.in_doubt)
            p->delta[CNT_IN_DOUBT]--;
    } else {
        key_time(k, d.done_ms, ev, sink);
        rc = del_raw(p->txn, state == OBX_STATE_DEAD ? s->db_dead : s->db_done, k, KEY_TIME_LEN);
        p->delta[state == OBX_STATE_DEAD ? CNT_DEAD : CNT_DELIVERED]--;
    }
    unsigned char dk[KEY_DELIV_LEN];
    key_deliv(dk, ev, sink);
    if (rc)
        goto out;
    if (purge) {
        rc = del_raw(p->txn, s->db_deliv, dk, sizeof dk);
        if (!rc && !other) {
            unsigned char ek[KEY_EVENT_LEN];
            be64_put(ek, ev);
            rc = del_raw(p->txn, s->db_events, ek, sizeof ek);
            p->events_delta--;
        }
        goto out;
    }
    /* Dead-letter it: no attempt is made, so the budget and history stay as they were. */
    char reason[160];
    snprintf(reason, sizeof reason, "sink retired by the operator%s",
             d.in_doubt ? " (an earlier attempt may have reached the receiver)" : "");
    free(d.reason);
    d.reason = strdup(reason);
    if (!d.reason) {
        rc = ENOMEM;
        goto out;
    }
    d.state = OBX_STATE_DEAD;
    d.in_doubt = 0;
    d.done_ms = now;
    obx_buf b = {0};
    if (obx__codec_delivery_encode(&b, &d) != OBX_OK)
        rc = ENOMEM;
    else
        rc = put_raw(p->txn, s->db_deliv, dk, sizeof dk, b.p, b.len);
    obx__buf_free(&b);
    key_time(k, now, ev, sink);
    if (!rc)
        rc = put_raw(p->txn, s->db_dead, k, KEY_TIME_LEN, "", 0);
    p->delta[CNT_DEAD]++;
out:
    obx_delivery_clear(&d);
    return rc;
}

/* Apply the page's counter changes (before commit). */
static int page_flush(obx_store *s, retire_page *p, uint32_t sink)
{
    uint64_t c[CNT_N];
    obx__read_counters(s, p->txn, sink, c);
    for (int j = 0; j < CNT_N; j++) {
        int64_t v = (int64_t)c[j] + p->delta[j];
        c[j] = v < 0 ? 0 : (uint64_t)v;
    }
    unsigned char k[5];
    key_counters(k, sink);
    int rc = put_raw(p->txn, s->db_meta, k, sizeof k, c, sizeof c);
    if (!rc && p->events_delta) {
        uint64_t n = 0;
        obx__meta_get_u64(s, p->txn, "events", &n);
        int64_t v = (int64_t)n + p->events_delta;
        n = v < 0 ? 0 : (uint64_t)v;
        rc = put_raw(p->txn, s->db_meta, "events", 6, &n, sizeof n);
    }
    return rc;
}

static int txn_begin(obx_store *s, int write, MDB_txn **txn, obx_error *err)
{
    if (!write)
        return obx__rd_begin(s, txn, err);
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, 0, txn);
    }
    return rc ? obx__mdb_fail(err, rc, "retire: begin write transaction") : OBX_OK;
}

/*
 * Free the sink's registry slot if nothing of it is left, in one write transaction (so no
 * delivery can be added between the check and the removal).
 */
static int free_slot(obx_store *s, uint32_t sink, int dry_run, obx_retire_counts *c, obx_error *err)
{
    MDB_txn *txn;
    int rc = txn_begin(s, !dry_run, &txn, err);
    if (rc)
        return rc;
    uint64_t cnt[CNT_N];
    obx__read_counters(s, txn, sink, cnt);
    int left = 0;
    for (int j = 0; j < CNT_N; j++)
        left |= cnt[j] != 0;
    if (dry_run) { /* nothing was removed: the slot goes when nothing else is left */
        left = c->corrupt > 0 || c->dead_kept || c->delivered_kept;
        mdb_txn_abort(txn);
        c->slot_freed = !left;
        return OBX_OK;
    }
    if (left || c->corrupt) {
        mdb_txn_abort(txn);
        return OBX_OK;
    }
    unsigned char ik[6] = {'i', ':'};
    be32_put(ik + 2, sink);
    MDB_val key = {6, ik}, val;
    int mrc = mdb_get(txn, s->db_meta, &key, &val);
    char sk[80];
    int sl = 0;
    if (mrc == 0 && val.mv_size < OBX_SINK_NAME_MAX)
        sl = snprintf(sk, sizeof sk, "s:%.*s", (int)val.mv_size, (const char *)val.mv_data);
    else if (mrc == MDB_NOTFOUND)
        mrc = 0; /* no name: only the id is left to free */
    unsigned char ck[5], fk[6];
    key_counters(ck, sink);
    key_free_slot(fk, sink);
    if (!mrc && sl > 0)
        mrc = del_raw(txn, s->db_meta, sk, (size_t)sl);
    if (!mrc)
        mrc = del_raw(txn, s->db_meta, ik, sizeof ik);
    if (!mrc)
        mrc = del_raw(txn, s->db_meta, ck, sizeof ck);
    unsigned char hk[6] = {'h', ':'}; /* its health (sinkstate.c) goes with the slot */
    be32_put(hk + 2, sink);
    if (!mrc)
        mrc = del_raw(txn, s->db_meta, hk, sizeof hk);
    if (!mrc)
        mrc = put_raw(txn, s->db_meta, fk, sizeof fk, "", 0);
    if (!mrc)
        mrc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (mrc)
        return obx__mdb_fail(err, mrc, "retire: free the registry slot");
    c->slot_freed = 1;
    return OBX_OK;
}

int obx__sink_slot_take(obx_store *s, MDB_txn *txn, uint32_t *id)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_meta, &cur);
    if (rc)
        return rc;
    MDB_val k = {2, "f:"}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && (k.mv_size != 6 || memcmp(k.mv_data, "f:", 2) != 0))
        rc = MDB_NOTFOUND;
    if (rc == 0) {
        *id = be32_get((unsigned char *)k.mv_data + 2);
        rc = mdb_cursor_del(cur, 0);
    }
    mdb_cursor_close(cur);
    return rc;
}

int obx__lmdb_sink_retire(obx_store *s, uint32_t sink_id, int mode, int dry_run,
                          obx_retire_counts *out, obx_error *err)
{
    obx_retire_counts c = {0};
    if (!dry_run && (s->opts.flags & OBX_OPEN_READONLY))
        return obx__fail(err, OBX_ERR_STATE, "retire: store opened read-only");
    uint64_t *evs = malloc(RETIRE_PAGE * sizeof *evs);
    if (!evs)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    retire_page p = {0};
    key_deliv(p.resume, 0, 0);
    int rc = OBX_OK;
    while (!p.at_end) {
        if ((rc = txn_begin(s, !dry_run, &p.txn, err)))
            break;
        memset(p.delta, 0, sizeof p.delta);
        p.events_delta = 0;
        int64_t now = obx_now_ms();
        size_t n;
        int mrc = scan_page(s, &p, sink_id, evs, &n);
        for (size_t i = 0; i < n && !mrc; i++)
            mrc = retire_one(s, &p, evs[i], sink_id, mode, dry_run, now, &c);
        if (!mrc && !dry_run)
            mrc = page_flush(s, &p, sink_id);
        if (dry_run || mrc)
            mdb_txn_abort(p.txn);
        else
            mrc = mdb_txn_commit(p.txn);
        if (mrc) {
            rc = mrc == ENOMEM ? obx__fail(err, OBX_ERR_NOMEM, "out of memory")
                               : obx__mdb_fail(err, mrc, "retire");
            break;
        }
        if (out)
            *out = c; /* what is committed so far, also when a later page fails */
    }
    free(evs);
    if (!rc && mode == OBX_RETIRE_PURGE)
        rc = free_slot(s, sink_id, dry_run, &c, err);
    if (!rc && out)
        *out = c;
    return rc;
}
