/*
 * inspect.c - the read side of the store: one event with its deliveries, the next due
 * time, counters (stats), paged listing with filters, invariant checks, hot backup.
 *
 * Readers never block the writer (LMDB MVCC), but a long read transaction pins pages
 * and makes the file grow, so listing re-opens a short read transaction every page.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define PAGE 256 /* records per read transaction while listing */

int obx__lmdb_event_get(obx_store *s, uint64_t id, obx_event **out, obx_error *err)
{
    *out = NULL;
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    obx_event *e = calloc(1, sizeof *e);
    uint32_t *sinks = NULL;
    size_t n = 0;
    if (!e) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = obx__load_event(s, txn, id, e, &sinks, &n, err);
    if (rc)
        goto out;
    e->deliveries = calloc(n ? n : 1, sizeof *e->deliveries);
    if (!e->deliveries) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        obx_delivery *d = &e->deliveries[e->n_deliveries];
        obx_error de;
        int lr = obx__load_delivery(s, txn, id, sinks[i], d, &de);
        if (lr == OBX_ERR_NOTFOUND)
            continue; /* purged or swept */
        if (lr) {
            obx_delivery_clear(d);
            rc = obx__fail(err, lr, "%s", de.msg);
            goto out;
        }
        e->n_deliveries++;
    }
out:
    mdb_txn_abort(txn);
    free(sinks);
    if (rc)
        obx_event_free(e);
    else
        *out = e;
    return rc;
}

static int next_due_in(obx_store *s, MDB_txn *txn, uint32_t sink, int64_t *next)
{
    MDB_cursor *cur;
    *next = INT64_MAX;
    int rc = mdb_cursor_open(txn, s->db_due, &cur);
    if (rc)
        return rc;
    unsigned char start[KEY_DUE_LEN];
    key_due(start, sink, 0, 0);
    MDB_val k = {sizeof start, start}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == KEY_DUE_LEN && be32_get(k.mv_data) == sink)
        *next = (int64_t)be64_get((unsigned char *)k.mv_data + 4);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int obx__lmdb_next_due(obx_store *s, uint32_t sink_id, int64_t *next_due, obx_error *err)
{
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    int mrc = next_due_in(s, txn, sink_id, next_due);
    mdb_txn_abort(txn);
    return mrc ? obx__mdb_fail(err, mrc, "next due") : OBX_OK;
}

/* Received time of the oldest pending (or in-flight) event of a sink, 0 if none. */
static int64_t oldest_pending(obx_store *s, MDB_txn *txn, uint32_t sink)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, s->db_pend, &cur))
        return 0;
    unsigned char start[KEY_PEND_LEN];
    key_pend(start, sink, 0);
    MDB_val k = {sizeof start, start}, v;
    int64_t t = 0;
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == KEY_PEND_LEN &&
        be32_get(k.mv_data) == sink) {
        obx_event e;
        if (obx__load_event(s, txn, be64_get((unsigned char *)k.mv_data + 4), &e, NULL, NULL,
                            NULL) == OBX_OK)
            t = e.received_ms;
        free(e.type);
        free(e.action);
        free(e.body);
    }
    mdb_cursor_close(cur);
    return t;
}

int obx__lmdb_stats_get(obx_store *s, obx_stats **out, obx_error *err)
{
    *out = NULL;
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    obx_stats *st = calloc(1, sizeof *st);
    MDB_cursor *cur = NULL;
    if (!st) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    obx__meta_get_u64(s, txn, "events", &st->events);
    obx__meta_get_u64(s, txn, "enqueued", &st->enqueued);
    obx__meta_get_u64(s, txn, "idem_keys", &st->idem_keys);
    st->used_bytes = obx__store_used_bytes(s, txn);
    st->max_size = s->opts.max_size;
    st->high_water = obx__store_high_water(s);
    st->schema_version = OBX_SCHEMA_VERSION;
    for (int i = 0; i <= OBX_BATCH_BUCKETS; i++)
        st->commit_batches[i] = __atomic_load_n(&s->batch_hist[i], __ATOMIC_RELAXED);
    st->commit_ops = __atomic_load_n(&s->stat_ops, __ATOMIC_RELAXED);
    for (int i = 0; i <= OBX_COMMIT_BUCKETS; i++)
        st->commit_us[i] = __atomic_load_n(&s->commit_hist[i], __ATOMIC_RELAXED);
    st->commit_us_sum = __atomic_load_n(&s->commit_us_sum, __ATOMIC_RELAXED);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    st->map_size = info.me_mapsize;
    if (!s->owner) {
        /* A tool does not know the daemon's cap; the map size is the closest truth. */
        st->max_size = info.me_mapsize > 2 * OBX_MAP_HEADROOM ? info.me_mapsize - OBX_MAP_HEADROOM
                                                              : info.me_mapsize;
        st->high_water = st->max_size / 100 * s->opts.high_water_pct;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    struct stat fst;
    if (stat(path, &fst) == 0)
        st->file_bytes = (uint64_t)fst.st_size;

    /* Sinks: the registry "i:" keys in id order. */
    int mrc = mdb_cursor_open(txn, s->db_meta, &cur);
    if (mrc) {
        rc = obx__mdb_fail(err, mrc, "stats");
        goto out;
    }
    MDB_val k = {2, "i:"}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size == 6 && memcmp(k.mv_data, "i:", 2) == 0) {
        obx_sink_stats *ns = realloc(st->sinks, (st->n_sinks + 1) * sizeof *ns);
        if (!ns) {
            rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
            goto out;
        }
        st->sinks = ns;
        obx_sink_stats *ss = &ns[st->n_sinks++];
        memset(ss, 0, sizeof *ss);
        ss->id = be32_get((unsigned char *)k.mv_data + 2);
        size_t nl = v.mv_size < OBX_SINK_NAME_MAX - 1 ? v.mv_size : OBX_SINK_NAME_MAX - 1;
        memcpy(ss->name, v.mv_data, nl);
        uint64_t c[CNT_N];
        obx__read_counters(s, txn, ss->id, c);
        ss->pending = c[CNT_PENDING];
        ss->inflight = c[CNT_INFLIGHT];
        ss->in_doubt = c[CNT_IN_DOUBT];
        ss->delivered = c[CNT_DELIVERED];
        ss->dead = c[CNT_DEAD];
        ss->oldest_pending_ms = oldest_pending(s, txn, ss->id);
        next_due_in(s, txn, ss->id, &ss->next_due_ms);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc)
        obx_stats_free(st);
    else
        *out = st;
    return rc;
}

void obx_stats_free(obx_stats *st)
{
    if (!st)
        return;
    free(st->sinks);
    free(st);
}

void obx_query_init(obx_query *q)
{
    memset(q, 0, sizeof *q);
    q->sink_id = OBX_ALL_SINKS;
}

/*
 * Listing walks one of the indexes, chosen from the query:
 *   dead / delivered          -> dead / done index (time order)
 *   pending|inflight + a sink -> pending index range of that sink (event order)
 *   otherwise                 -> deliveries (event order)
 * Each page is read in its own short transaction and resumed from the last key.
 */
typedef struct lister {
    obx_store *s;
    const obx_query *q;
    obx_list_fn fn;
    obx_corrupt_fn on_corrupt;
    void *ud;
    size_t emitted;
    int stop;
    int rc;        /* a read failure that is not corruption (out of memory): listing stops */
    obx_error err; /* its message */
} lister;

/* Stop the listing with a read error that says nothing about the record. */
static int list_fail(lister *l, const obx_error *e)
{
    l->rc = e->code;
    l->err = *e;
    return 1;
}

static void key_parts(MDB_dbi dbi, const obx_store *s, const unsigned char *k, uint64_t *ev,
                      uint32_t *sink)
{
    if (dbi == s->db_deliv) {
        *ev = be64_get(k);
        *sink = be32_get(k + 8);
    } else if (dbi == s->db_pend) {
        *sink = be32_get(k);
        *ev = be64_get(k + 4);
    } else { /* time index */
        *ev = be64_get(k + 8);
        *sink = be32_get(k + 16);
    }
}

/* Examine one delivery; returns 0 to go on. */
static int visit(lister *l, MDB_txn *txn, uint64_t ev, uint32_t sink)
{
    const obx_query *q = l->q;
    obx_store *s = l->s;
    if (q->sink_id != OBX_ALL_SINKS && sink != q->sink_id)
        return 0;
    if (q->after_id && (q->newest_first ? ev >= q->after_id : ev <= q->after_id))
        return 0;
    obx_delivery d;
    obx_error e;
    int rc = obx__load_delivery(s, txn, ev, sink, &d, &e);
    if (rc && rc != OBX_ERR_CORRUPT && rc != OBX_ERR_NOTFOUND) {
        obx_delivery_clear(&d);
        return list_fail(l, &e);
    }
    if (rc) {
        if (rc == OBX_ERR_CORRUPT && l->on_corrupt)
            l->on_corrupt(l->ud, ev, sink, e.msg);
        obx_delivery_clear(&d);
        return 0;
    }
    if (q->state && d.state != q->state) {
        obx_delivery_clear(&d);
        return 0;
    }
    obx_event evr;
    rc = obx__load_event(s, txn, ev, &evr, NULL, NULL, &e);
    if (rc) {
        if (rc == OBX_ERR_CORRUPT && l->on_corrupt)
            l->on_corrupt(l->ud, ev, 0, e.msg);
        obx_delivery_clear(&d);
        free(evr.type);
        free(evr.action);
        free(evr.body);
        return rc != OBX_ERR_CORRUPT && rc != OBX_ERR_NOTFOUND ? list_fail(l, &e) : 0;
    }
    int match = (!q->type || strcmp(q->type, evr.type) == 0) &&
                (!q->action || strcmp(q->action, evr.action) == 0) &&
                (!q->since_ms || evr.received_ms >= q->since_ms) &&
                (!q->until_ms || evr.received_ms < q->until_ms);
    int stop = 0;
    if (match) {
        evr.n_deliveries = 1;
        evr.deliveries = &d;
        stop = l->fn(l->ud, &evr, &d);
        l->emitted++;
        if (q->limit && l->emitted >= q->limit)
            stop = 1;
    }
    obx_delivery_clear(&d);
    free(evr.type);
    free(evr.action);
    free(evr.body);
    return stop;
}

static int walk(lister *l, MDB_dbi dbi, const unsigned char *lo, size_t lo_len,
                const unsigned char *prefix, size_t prefix_len, obx_error *err)
{
    unsigned char resume[32];
    size_t resume_len = 0;
    int first = 1, rev = l->q->newest_first;
    for (;;) {
        MDB_txn *txn;
        int rc = obx__rd_begin(l->s, &txn, err);
        if (rc)
            return rc;
        MDB_cursor *cur;
        int mrc = mdb_cursor_open(txn, dbi, &cur);
        if (mrc) {
            mdb_txn_abort(txn);
            return obx__mdb_fail(err, mrc, "list");
        }
        MDB_val k, v;
        if (first) {
            if (!rev) {
                k.mv_size = lo_len;
                k.mv_data = (void *)lo;
                mrc = lo_len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                             : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            } else if (prefix_len) {
                /* Position after the prefix range, then step back. */
                unsigned char hi[32];
                memcpy(hi, prefix, prefix_len);
                memset(hi + prefix_len, 0xff, sizeof hi - prefix_len);
                k.mv_size = lo_len;
                k.mv_data = hi;
                mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                mrc = mrc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                               : mdb_cursor_get(cur, &k, &v, MDB_LAST);
            } else {
                mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            }
        } else {
            k.mv_size = resume_len;
            k.mv_data = resume;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (!rev) {
                if (mrc == 0 && k.mv_size == resume_len &&
                    memcmp(k.mv_data, resume, resume_len) == 0)
                    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            } else {
                mrc = mrc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                               : mdb_cursor_get(cur, &k, &v, MDB_LAST);
            }
        }
        first = 0;
        size_t n = 0;
        int stop = 0;
        while (mrc == 0 && n < PAGE) {
            if (prefix_len && (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len))) {
                stop = 1;
                break;
            }
            if (k.mv_size <= sizeof resume) {
                uint64_t ev;
                uint32_t sink;
                key_parts(dbi, l->s, k.mv_data, &ev, &sink);
                memcpy(resume, k.mv_data, k.mv_size);
                resume_len = k.mv_size;
                if (visit(l, txn, ev, sink)) {
                    stop = 1;
                    break;
                }
            }
            n++;
            mrc = mdb_cursor_get(cur, &k, &v, rev ? MDB_PREV : MDB_NEXT);
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if (l->rc) {
            if (err)
                *err = l->err;
            return l->rc;
        }
        if (mrc && mrc != MDB_NOTFOUND)
            return obx__mdb_fail(err, mrc, "list");
        if (stop || mrc == MDB_NOTFOUND || n == 0)
            return OBX_OK;
    }
}

int obx__lmdb_list(obx_store *s, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt,
                   void *ud, obx_error *err)
{
    lister l = {s, q, fn, on_corrupt, ud, 0, 0, 0, {0}};
    unsigned char lo[KEY_DUE_LEN];
    if (q->state == OBX_STATE_DEAD)
        return walk(&l, s->db_dead, NULL, 0, NULL, 0, err);
    if (q->state == OBX_STATE_DELIVERED)
        return walk(&l, s->db_done, NULL, 0, NULL, 0, err);
    if ((q->state == OBX_STATE_PENDING || q->state == OBX_STATE_INFLIGHT) &&
        q->sink_id != OBX_ALL_SINKS) {
        key_pend(lo, q->sink_id, 0);
        return walk(&l, s->db_pend, lo, KEY_PEND_LEN, lo, 4, err);
    }
    return walk(&l, s->db_deliv, NULL, 0, NULL, 0, err);
}

/* ---- check ---- */

typedef struct checker {
    obx_store *s;
    obx_problem_fn fn;
    void *ud;
    size_t problems;
    int rc;        /* out of memory while decoding: the check fails, it reports nothing */
    obx_error err; /* its message */
} checker;

__attribute__((format(printf, 2, 3))) static void problem(checker *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->fn)
        c->fn(c->ud, msg);
}

static int has_key(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k}, v;
    return mdb_get(txn, dbi, &key, &v) == 0;
}

/* Every entry of a time index or the due/pending/inflight index must name a record in
 * the right state. */
static void check_index(checker *c, MDB_txn *txn, MDB_dbi dbi, const char *name, int want,
                        size_t klen)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, dbi, &cur))
        return;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && !c->rc) {
        if (k.mv_size != klen) {
            problem(c, "%s index: key of %zu bytes (want %zu)", name, k.mv_size, klen);
        } else {
            const unsigned char *p = k.mv_data;
            uint64_t ev;
            uint32_t sink;
            if (dbi == c->s->db_due) {
                sink = be32_get(p);
                ev = be64_get(p + 12);
            } else if (dbi == c->s->db_flight) {
                ev = be64_get(p);
                sink = be32_get(p + 8);
            } else {
                key_parts(dbi, c->s, p, &ev, &sink);
            }
            obx_delivery d;
            obx_error e;
            int lr = obx__load_delivery(c->s, txn, ev, sink, &d, &e);
            if (lr == OBX_ERR_NOMEM && !c->rc) {
                c->rc = lr;
                c->err = e;
            }
            if (lr == OBX_ERR_NOTFOUND)
                problem(c, "%s index: entry for event %llu sink %u has no delivery record", name,
                        (unsigned long long)ev, sink);
            else if (lr == OBX_OK && want && d.state != want &&
                     !(want == OBX_STATE_PENDING && d.state == OBX_STATE_INFLIGHT &&
                       dbi == c->s->db_pend))
                problem(c, "%s index: event %llu sink %u is %s", name, (unsigned long long)ev, sink,
                        obx_state_name(d.state));
            obx_delivery_clear(&d);
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
}

/*
 * Slack beyond the pages the trees use before an empty store's file counts as "large":
 * more than prefill (at most 32 MiB ahead) and the map headroom could explain.
 */
#define LOST_TREES_SLACK (64ull << 20)

/*
 * A store that says no event was ever stored (no event ids handed out, no events, no
 * deliveries) in a data file far larger than its trees: its trees were lost - e.g. a
 * second writer through a replaced lock.mdb started it over. A drained store is not
 * flagged: its next event id tells that it held events.
 */
static void check_lost_trees(checker *c, MDB_txn *txn)
{
    obx_store *s = c->s;
    MDB_stat ev, dl;
    if (mdb_stat(txn, s->db_events, &ev) || mdb_stat(txn, s->db_deliv, &dl) || ev.ms_entries ||
        dl.ms_entries)
        return;
    uint64_t next = 0;
    obx__meta_get_u64(s, txn, "next_id", &next);
    if (next > 1)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    uint64_t trees = 0;
    MDB_dbi dbis[] = {1,          s->db_meta, s->db_events, s->db_deliv,  s->db_due,
                      s->db_pend, s->db_dead, s->db_done,   s->db_flight, s->db_idem};
    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
        MDB_stat t;
        if (dbis[i] && mdb_stat(txn, dbis[i], &t) == 0)
            trees += (t.ms_branch_pages + t.ms_leaf_pages + t.ms_overflow_pages) * t.ms_psize;
    }
    if ((uint64_t)st.st_size > trees + LOST_TREES_SLACK)
        problem(c,
                "%s is %llu bytes but its trees are empty (%llu bytes in use, no event ever "
                "stored): the store's data was lost, e.g. to a second writer after lock.mdb "
                "was deleted; restore from a backup",
                path, (unsigned long long)st.st_size, (unsigned long long)trees);
}

/* Idempotency keys: each decodes and has its expiry entry; the counter matches. */
static void check_idem(checker *c, MDB_txn *txn)
{
    obx_idem_census n;
    int rc = obx__idem_census(c->s, txn, &n);
    if (rc) {
        problem(c, "idempotency keys: %s", mdb_strerror(rc));
        return;
    }
    uint64_t counted = 0;
    obx__meta_get_u64(c->s, txn, "idem_keys", &counted);
    if (counted != n.keys)
        problem(c, "idempotency key counter is %llu but %llu keys are stored",
                (unsigned long long)counted, (unsigned long long)n.keys);
    if (n.bad)
        problem(c, "%llu idempotency key records do not decode (they count as absent)",
                (unsigned long long)n.bad);
    if (n.unindexed)
        problem(c, "%llu idempotency keys have no expiry entry (they would never be swept)",
                (unsigned long long)n.unindexed);
    if (n.expiries != n.keys - n.bad)
        problem(c, "%llu idempotency key expiry entries for %llu keys",
                (unsigned long long)n.expiries, (unsigned long long)(n.keys - n.bad));
}

int obx__lmdb_check(obx_store *s, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err)
{
    checker c = {s, fn, ud, 0, 0, {0}};
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    uint64_t(*cnts)[CNT_N] = calloc(OBX_MAX_SINKS, sizeof *cnts);
    if (!cnts) {
        mdb_txn_abort(txn);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    uint64_t events = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    /* Events: decode each. */
    if (mdb_cursor_open(txn, s->db_events, &cur) == 0) {
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0) {
            events++;
            obx_event e;
            obx_error de;
            uint64_t id = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
            int dr = obx__codec_event_decode(v.mv_data, v.mv_size, &e, NULL, NULL, &de);
            if (dr == OBX_ERR_NOMEM) {
                c.rc = dr;
                c.err = de;
                break;
            } else if (dr != OBX_OK)
                problem(&c, "event %llu: %s", (unsigned long long)id, de.msg);
            else {
                free(e.type);
                free(e.action);
                free(e.body);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    /* Deliveries: decode, check their event and index entries, count by state. */
    if (!c.rc && mdb_cursor_open(txn, s->db_deliv, &cur) == 0) {
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0) {
            if (k.mv_size != KEY_DELIV_LEN) {
                problem(&c, "deliveries: key of %zu bytes", k.mv_size);
                goto next;
            }
            uint64_t ev = be64_get(k.mv_data);
            uint32_t sink = be32_get((unsigned char *)k.mv_data + 8);
            obx_delivery d = {.event_id = ev, .sink_id = sink};
            obx_error de;
            int dr = obx__codec_delivery_decode(v.mv_data, v.mv_size, &d, &de);
            if (dr == OBX_ERR_NOMEM) {
                c.rc = dr;
                c.err = de;
                break;
            }
            if (dr != OBX_OK) {
                problem(&c, "delivery event %llu sink %u: %s", (unsigned long long)ev, sink,
                        de.msg);
                goto next;
            }
            unsigned char ek[8];
            be64_put(ek, ev);
            if (!has_key(txn, s->db_events, ek, 8))
                problem(&c, "delivery event %llu sink %u: its event record is missing",
                        (unsigned long long)ev, sink);
            unsigned char ik[KEY_DUE_LEN];
            switch (d.state) {
            case OBX_STATE_PENDING:
                key_due(ik, sink, d.next_attempt_ms, ev);
                if (!has_key(txn, s->db_due, ik, KEY_DUE_LEN))
                    problem(&c, "pending event %llu sink %u: not in the due index",
                            (unsigned long long)ev, sink);
                break;
            case OBX_STATE_INFLIGHT:
                key_deliv(ik, ev, sink);
                if (!has_key(txn, s->db_flight, ik, KEY_DELIV_LEN))
                    problem(&c, "in-flight event %llu sink %u: not in the in-flight index",
                            (unsigned long long)ev, sink);
                break;
            case OBX_STATE_DELIVERED:
            case OBX_STATE_DEAD:
                key_time(ik, d.done_ms, ev, sink);
                if (!has_key(txn, d.state == OBX_STATE_DEAD ? s->db_dead : s->db_done, ik,
                             KEY_TIME_LEN))
                    problem(&c, "%s event %llu sink %u: not in the %s index",
                            obx_state_name(d.state), (unsigned long long)ev, sink,
                            d.state == OBX_STATE_DEAD ? "dead" : "done");
                break;
            }
            if (sink < OBX_MAX_SINKS) {
                int slot = d.state == OBX_STATE_PENDING     ? CNT_PENDING
                           : d.state == OBX_STATE_INFLIGHT  ? CNT_INFLIGHT
                           : d.state == OBX_STATE_DELIVERED ? CNT_DELIVERED
                                                            : CNT_DEAD;
                cnts[sink][slot]++;
                if (d.in_doubt)
                    cnts[sink][CNT_IN_DOUBT]++;
            }
            obx_delivery_clear(&d);
        next:
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    if (c.rc)
        goto out; /* out of memory: what is left to compare would be wrong */
    check_index(&c, txn, s->db_due, "due", OBX_STATE_PENDING, KEY_DUE_LEN);
    check_index(&c, txn, s->db_pend, "pending", OBX_STATE_PENDING, KEY_PEND_LEN);
    check_index(&c, txn, s->db_flight, "inflight", OBX_STATE_INFLIGHT, KEY_DELIV_LEN);
    check_index(&c, txn, s->db_dead, "dead", OBX_STATE_DEAD, KEY_TIME_LEN);
    check_index(&c, txn, s->db_done, "done", OBX_STATE_DELIVERED, KEY_TIME_LEN);
    if (c.rc)
        goto out;
    /* Counters vs what the records say. */
    static const char *cn[] = {"pending", "inflight", "in doubt", "delivered", "dead"};
    for (uint32_t sink = 1; sink < OBX_MAX_SINKS; sink++) {
        obx_sink_state hs;
        obx_error he = {0};
        if (obx__sink_state_read(s, txn, sink, &hs, &he) == OBX_ERR_CORRUPT)
            problem(&c, "%s", he.msg);
        uint64_t have[CNT_N];
        obx__read_counters(s, txn, sink, have);
        for (int j = 0; j < CNT_N; j++)
            if (have[j] != cnts[sink][j])
                problem(&c, "sink %u: counter %s is %llu but %llu records say so", sink, cn[j],
                        (unsigned long long)have[j], (unsigned long long)cnts[sink][j]);
    }
    uint64_t ecount = 0;
    obx__meta_get_u64(s, txn, "events", &ecount);
    if (ecount != events)
        problem(&c, "event counter is %llu but %llu events are stored", (unsigned long long)ecount,
                (unsigned long long)events);
    check_idem(&c, txn);
    check_lost_trees(&c, txn);
out:
    mdb_txn_abort(txn);
    free(cnts);
    if (c.rc) {
        if (err)
            *err = c.err;
        return c.rc;
    }
    if (problems)
        *problems = c.problems;
    return OBX_OK;
}

void obx__lmdb_describe(obx_store *s, char *buf, size_t n)
{
    snprintf(buf, n, "lmdb %s", s->dir);
}

int obx__lmdb_backup(obx_store *s, const char *dest, obx_error *err)
{
    if (mkdir(dest, 0700) != 0 && errno != EEXIST)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", dest, strerror(errno));
    int rc = mdb_env_copy2(s->env, dest, MDB_CP_COMPACT);
    if (rc) {
        if (rc == EEXIST)
            return obx__fail(err, OBX_ERR_IO, "%s: already holds a data.mdb", dest);
        return obx__fail(err, OBX_ERR_IO, "backup to %s: %s", dest, mdb_strerror(rc));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    if (chmod(path, 0600) != 0)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", path, strerror(errno));
    return OBX_OK;
}

int obx_owner_pid(const char *dir, long *pid, obx_error *err)
{
    *pid = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/outbox.lock", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return OBX_OK; /* never owned: no lock file */
    FILE *f = fopen("/proc/locks", "r");
    if (!f)
        return obx__fail(err, OBX_ERR_IO, "/proc/locks: %s", strerror(errno));
    /* "1: FLOCK  ADVISORY  WRITE 26941 fe:00:10952882 0 EOF" (major:minor in hex) */
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char kind[16], mode[16], rw[16];
        long p;
        unsigned maj, min;
        unsigned long long ino;
        if (sscanf(line, "%*[^:]: %15s %15s %15s %ld %x:%x:%llu", kind, mode, rw, &p, &maj, &min,
                   &ino) == 7 &&
            strcmp(kind, "FLOCK") == 0 && strcmp(rw, "WRITE") == 0 && ino == st.st_ino &&
            maj == major(st.st_dev) && min == minor(st.st_dev)) {
            *pid = p;
            break;
        }
    }
    fclose(f);
    return OBX_OK;
}
