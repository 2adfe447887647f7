/*
 * store.c - the PostgreSQL backend's store operations (backend.h): open and close (the
 * committer, listener and lease-keeper threads), sinks, group-commit enqueue, claims
 * with SKIP LOCKED and leases, results, replay, purge, retention, inspection.
 *
 * Delivery rows move between the same states as in the LMDB store. A claim marks rows in
 * flight with this node's id and a lease; the node renews its leases while it runs, and
 * any node's claim first takes expired leases back as due, in doubt (a node killed with
 * deliveries in flight). A result is recorded only for a row still leased to this node.
 */
#include "pg_internal.h"

#include "../codec.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- transactions ---- */

/* Run fn inside BEGIN/COMMIT on a pooled connection; run again on a deadlock
 * (pg_internal.h). */
int obx__pg_txn(pg_store *s, obx__pg_txn_fn fn, void *ud, obx_error *err)
{
    int rc = OBX_OK;
    for (int attempt = 0; attempt < 10; attempt++) {
        pg_conn *pc;
        if ((rc = obx__pg_acquire(s, &pc, err)) != OBX_OK)
            return rc;
        obx__pg_conflict = 0;
        rc = obx__pg_cmd(pc->c, "BEGIN", err);
        if (!rc)
            rc = fn(s, pc->c, ud, err);
        if (!rc)
            rc = obx__pg_cmd(pc->c, "COMMIT", err);
        else if (PQtransactionStatus(pc->c) != PQTRANS_IDLE &&
                 PQtransactionStatus(pc->c) != PQTRANS_UNKNOWN)
            PQclear(PQexec(pc->c, "ROLLBACK"));
        obx__pg_release(s, pc);
        if (rc != OBX_ERR_DB || !obx__pg_conflict)
            return rc;
    }
    return rc;
}

static int need_write(pg_store *s, obx_error *err)
{
    if (s->readonly)
        return obx__fail(err, OBX_ERR_STATE, "store opened read-only");
    return OBX_OK;
}

static int need_owner(pg_store *s, const char *what, obx_error *err)
{
    if (!s->owner)
        return obx__fail(err, OBX_ERR_STATE, "%s needs the owner (daemon) handle", what);
    return OBX_OK;
}

static void do_notify(pg_store *s)
{
    pthread_mutex_lock(&s->mu);
    obx_notify_fn fn = s->notify;
    void *ud = s->notify_ud;
    pthread_mutex_unlock(&s->mu);
    if (fn)
        fn(ud);
}

static int notify_nodes(pg_store *s, PGconn *c, obx_error *err)
{
    const char *p[] = {s->channel};
    PGresult *r;
    int rc = obx__pg_exec(c, "notify", 1, p, &r, err);
    if (!rc)
        PQclear(r);
    return rc;
}

/* ---- sinks ---- */

static int pg_sink_find(obx_store *h, const char *name, uint32_t *id, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    if (!obx__valid_sink_name(name))
        return obx__fail(err, OBX_ERR_INVALID,
                         "sink name '%s' is invalid (1..63 bytes of A-Z a-z 0-9 . _ -)",
                         name ? name : "");
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    const char *p[] = {name};
    PGresult *r;
    if ((rc = obx__pg_exec(pc->c, "sink_find", 1, p, &r, err)) == OBX_OK) {
        if (PQntuples(r) == 1)
            *id = (uint32_t)obx__pg_i64(r, 0, 0);
        else
            rc = obx__fail(err, OBX_ERR_NOTFOUND, "no sink named '%s' in this outbox", name);
        PQclear(r);
    }
    obx__pg_release(s, pc);
    return rc;
}

static int sink_add(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    const char *p[] = {ud};
    PGresult *r;
    int rc = obx__pg_exec(c, "sink_add", 1, p, &r, err);
    if (!rc)
        PQclear(r);
    return rc;
}

static int pg_sink_id(obx_store *h, const char *name, uint32_t *id, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = pg_sink_find(h, name, id, err);
    if (rc != OBX_ERR_NOTFOUND)
        return rc;
    if (need_write(s, err) != OBX_OK)
        return OBX_ERR_STATE;
    /* sink_add takes the lowest free id: another node taking it at once leaves this
     * insert empty, and the next round takes the next one */
    for (int round = 0; round < 8 && rc == OBX_ERR_NOTFOUND; round++)
        if ((rc = obx__pg_txn(s, sink_add, (void *)name, err)) == OBX_OK)
            rc = pg_sink_find(h, name, id, err);
    return rc;
}

static int pg_sink_limit(obx_store *h, uint32_t id, unsigned max_in_flight, int ordered,
                         obx_error *err)
{
    pg_store *s = (pg_store *)h;
    (void)err;
    pthread_mutex_lock(&s->mu);
    s->limit[id] = ordered ? 1 : max_in_flight;
    s->ordered[id] = ordered != 0;
    pthread_mutex_unlock(&s->mu);
    return OBX_OK;
}

static int pg_sink_name(obx_store *h, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err)
{
    pg_store *s = (pg_store *)h;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    char ib[24];
    const char *p[] = {I64(ib, id)};
    PGresult *r;
    if ((rc = obx__pg_exec(pc->c, "sink_name", 1, p, &r, err)) == OBX_OK) {
        if (PQntuples(r) == 1)
            snprintf(buf, OBX_SINK_NAME_MAX, "%s", PQgetvalue(r, 0, 0));
        else
            rc = obx__fail(err, OBX_ERR_NOTFOUND, "no sink with id %u", id);
        PQclear(r);
    }
    obx__pg_release(s, pc);
    return rc;
}

/* ---- enqueue: group commit ---- */

static int store_size(pg_store *s, PGconn *c, uint64_t *bytes, obx_error *err)
{
    const char *p[] = {s->schema};
    PGresult *r;
    int rc = obx__pg_exec(c, "size", 1, p, &r, err);
    if (rc)
        return rc;
    *bytes = (uint64_t)obx__pg_i64(r, 0, 0);
    PQclear(r);
    return OBX_OK;
}

/* The cap: the schema's tables (with indexes and TOAST) against the high-water mark,
 * read at most once a second. */
static int check_room(pg_store *s, PGconn *c, obx_error *err)
{
    int64_t now = obx_now_ms();
    if (now - s->size_checked_ms >= 1000) {
        int rc = store_size(s, c, &s->size_bytes, err);
        if (rc)
            return rc;
        s->size_checked_ms = now;
    }
    uint64_t hw = s->opts.max_size / 100 * s->opts.high_water_pct;
    if (s->size_bytes >= hw)
        return obx__fail(err, OBX_ERR_FULL,
                         "postgres outbox is full (%llu of %llu bytes allowed for events); "
                         "retry later",
                         (unsigned long long)s->size_bytes, (unsigned long long)hw);
    return OBX_OK;
}

/* A growing text buffer for array literals; `bad` is set when an allocation failed. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int bad;
} sbuf;

static void sb_put(sbuf *b, const char *src, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->bad = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Append one element of a text array literal: quoted, with " and \ escaped. */
static void sb_elem(sbuf *b, const char *s)
{
    sb_put(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

/* Append one bytea element in hex form: "\\x0a1b..." */
/* Append n bytes as hex digits. */
static void sb_hex(sbuf *b, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char *)p)[i];
        char h[2] = {hex[c >> 4], hex[c & 15]};
        sb_put(b, h, 2);
    }
}

/* One bytea array element opened (its hex digits follow, then sb_put(b, "\"", 1)). */
static void sb_bytea_open(sbuf *b)
{
    sb_str(b, b->len > 1 ? ",\"\\\\x" : "\"\\\\x");
}

/* One bytea array element: p[0..n) as hex. */
static void sb_bytea(sbuf *b, const unsigned char *p, size_t n)
{
    sb_bytea_open(b);
    sb_hex(b, p, n);
    sb_put(b, "\"", 1);
}

static void sb_num(sbuf *b, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%s%lld", b->len > 1 ? "," : "", v);
    sb_put(b, t, (size_t)n);
}

/* Every accepted call of a batch in three statements: ids from the sequence, the events,
 * their deliveries (statement triggers count them once per batch). */
static int enqueue_batch(pg_store *s, PGconn *c, pg_enq *list, int64_t now, obx_error *err)
{
    size_t n_ev = 0;
    for (pg_enq *q = list; q; q = q->next)
        if (q->rc == OBX_OK && !q->replayed)
            n_ev += q->n;
    if (n_ev == 0)
        return OBX_OK;
    char nb[24];
    const char *np[] = {I64(nb, (long long)n_ev)};
    PGresult *r;
    int rc = obx__pg_exec(c, "event_ids", 1, np, &r, err);
    if (rc)
        return rc;
    if ((size_t)PQntuples(r) != n_ev) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_DB, "postgres: event_ids: %d ids for %zu events",
                         PQntuples(r), n_ev);
    }
    uint64_t *ids = malloc(n_ev * sizeof *ids);
    sbuf a[7] = {{0}}; /* ids, received, type, action, body; delivery event ids, sinks */
    if (!ids) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_ev; i++) /* ascending: the sequence's order */
        ids[i] = (uint64_t)obx__pg_i64(r, (int)i, 0);
    PQclear(r);
    for (int k = 0; k < 7; k++)
        sb_str(&a[k], "{");
    size_t at = 0;
    for (pg_enq *q = list; q; q = q->next) {
        if (q->rc != OBX_OK || q->replayed)
            continue;
        for (size_t i = 0; i < q->n; i++, at++) {
            const obx_event_in *e = &q->events[i];
            q->ids[i] = ids[at];
            sb_num(&a[0], (long long)ids[at]);
            sb_num(&a[1], e->received_ms ? e->received_ms : now);
            sb_elem(&a[2], e->type);
            sb_elem(&a[3], e->action);
            sb_bytea(&a[4], e->body, e->body ? e->body_len : 0);
            for (size_t j = 0; j < e->n_sinks; j++) {
                sb_num(&a[5], (long long)ids[at]);
                sb_num(&a[6], e->sinks[j]);
            }
        }
    }
    for (int k = 0; k < 7; k++)
        sb_str(&a[k], "}");
    int bad = 0;
    for (int k = 0; k < 7; k++)
        bad |= a[k].bad;
    if (bad)
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    if (!rc) {
        const char *ep[] = {a[0].p, a[1].p, a[2].p, a[3].p, a[4].p};
        rc = obx__pg_exec(c, "events_add", 5, ep, &r, err);
        if (!rc)
            PQclear(r);
    }
    if (!rc) {
        char tb[24];
        const char *dp[] = {a[5].p, a[6].p, I64(tb, now)};
        rc = obx__pg_exec(c, "deliv_add", 3, dp, &r, err);
        if (!rc)
            PQclear(r);
    }
    for (int k = 0; k < 7; k++)
        free(a[k].p);
    free(ids);
    return rc;
}

/* One batch: every queued call in one transaction; all fail if the commit fails. A call
 * failing on its own (cap) is answered before the transaction. */
static void run_batch(pg_store *s, pg_enq *list)
{
    obx_error err = {0};
    pg_conn *pc = NULL;
    int rc = obx__pg_acquire(s, &pc, &err);
    size_t n_ops = 0;
    int64_t t0 = mono_us();
    for (int attempt = 0; !rc && attempt < 10; attempt++) {
        n_ops = 0;
        obx__pg_conflict = 0;
        rc = obx__pg_cmd(pc->c, "BEGIN", &err);
        int64_t now = obx_now_ms();
        for (pg_enq *q = list; q && !rc; q = q->next) {
            if (check_room(s, pc->c, &q->err) != OBX_OK) {
                q->rc = q->err.code;
                continue;
            }
            q->rc = OBX_OK;
            n_ops++;
        }
        if (!rc) /* idempotency keys first: a replayed call stores nothing */
            rc = obx__pg_idem_claim(s, pc->c, list, now, &err);
        if (!rc)
            rc = enqueue_batch(s, pc->c, list, now, &err);
        if (!rc)
            rc = obx__pg_idem_store(s, pc->c, list, now, &err);
        if (!rc) {
            OBX_CRASH_POINT("enqueue-before-commit");
            rc = obx__pg_cmd(pc->c, "COMMIT", &err);
        } else if (PQtransactionStatus(pc->c) == PQTRANS_INERROR ||
                   PQtransactionStatus(pc->c) == PQTRANS_INTRANS) {
            PQclear(PQexec(pc->c, "ROLLBACK"));
        }
        if (rc != OBX_ERR_DB || !obx__pg_conflict)
            break;
        rc = OBX_OK;
    }
    /* Wake the other nodes after the commit, not inside the transaction: a transaction
     * that notifies holds the server's notification queue lock through its commit (and
     * the standby's flush), which would serialize the commits of every node. A node that
     * dies before this line leaves the others to find the events at their next poll. */
    if (!rc && n_ops) {
        obx_error ne;
        (void)notify_nodes(s, pc->c, &ne);
    }
    if (pc)
        obx__pg_release(s, pc);
    if (!rc)
        OBX_CRASH_POINT("enqueue-after-commit");
    int64_t us = mono_us() - t0;
    unsigned b = 0;
    while (b < OBX_BATCH_BUCKETS && (1u << b) < n_ops)
        b++;
    unsigned cb = 0;
    while (cb < OBX_COMMIT_BUCKETS && (int64_t)obx_commit_bounds_us[cb] < us)
        cb++;
    __atomic_add_fetch(&s->batch_hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_hist[cb], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_us_sum, (uint64_t)us, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_ops, n_ops, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->mu);
    for (pg_enq *q = list; q; q = q->next) {
        if (rc && q->rc == OBX_OK) {
            q->rc = rc;
            q->err = err;
        }
        q->done = 1;
    }
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&s->mu);
    if (!rc && n_ops)
        do_notify(s);
}

static void *committer_main(void *arg)
{
    pg_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv_work, &s->mu);
        if (!s->head && s->stopping)
            break;
        pg_enq *list = s->head;
        size_t n = 0;
        pg_enq *last = list;
        for (pg_enq *q = list; q && n < s->opts.max_batch; q = q->next) {
            last = q;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, list);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int pg_enqueue(obx_store *h, const obx_event_in *events, size_t n, uint64_t *ids,
                      obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = need_owner(s, "enqueue", err);
    if (!rc)
        rc = obx__validate_events(events, n, err);
    if (rc)
        return rc;
    pg_enq q = {.events = events, .n = n, .ids = ids};
    pthread_mutex_lock(&s->mu);
    if (s->closed_for_enqueue || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return obx__fail(err, OBX_ERR_CLOSED, "store is shutting down");
    }
    if (s->tail)
        s->tail->next = &q;
    else
        s->head = &q;
    s->tail = &q;
    pthread_cond_signal(&s->cv_work);
    while (!q.done)
        pthread_cond_wait(&s->cv_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (q.rc && err)
        *err = q.err;
    return q.rc;
}

/* obx_enqueue_batch: the requests queued together (they share group commits, as
 * concurrent obx_enqueue calls do), each with its own result; a key is taken or found in
 * the commit's transaction (idem.c). */
static int pg_enqueue_batch(obx_store *h, obx_enqueue_req *reqs, size_t n)
{
    pg_store *s = (pg_store *)h;
    pg_enq *q = calloc(n ? n : 1, sizeof *q);
    size_t *which = calloc(n ? n : 1, sizeof *which);
    size_t k = 0;
    if (!q || !which) {
        obx__batch_nomem(reqs, n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        obx_enqueue_req *r = &reqs[i];
        memset(&r->res, 0, sizeof r->res);
        memset(&r->err, 0, sizeof r->err);
        r->rc = need_owner(s, "enqueue", &r->err);
        if (!r->rc && r->idem)
            r->rc = obx__idem_check(r->idem, &r->err);
        if (!r->rc && (r->n > 0 || !r->idem)) /* a key alone may store no events */
            r->rc = obx__validate_events(r->events, r->n, &r->err);
        if (r->rc)
            continue;
        q[k] = (pg_enq){
            .events = r->events, .n = r->n, .ids = r->ids, .idem = r->idem, .res = &r->res};
        which[k++] = i;
    }
    if (k == 0)
        goto out;
    pthread_mutex_lock(&s->mu);
    if (s->closed_for_enqueue || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        for (size_t j = 0; j < k; j++)
            reqs[which[j]].rc =
                obx__fail(&reqs[which[j]].err, OBX_ERR_CLOSED, "store is shutting down");
        goto out;
    }
    for (size_t j = 0; j < k; j++) {
        if (s->tail)
            s->tail->next = &q[j];
        else
            s->head = &q[j];
        s->tail = &q[j];
    }
    pthread_cond_signal(&s->cv_work);
    for (size_t j = 0; j < k; j++)
        while (!q[j].done)
            pthread_cond_wait(&s->cv_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (size_t j = 0; j < k; j++) {
        reqs[which[j]].rc = q[j].rc;
        if (q[j].rc) {
            reqs[which[j]].err = q[j].err;
            obx_idem_result_clear(&reqs[which[j]].res);
        }
    }
out:
    free(q);
    free(which);
    return OBX_OK;
}

/* ---- claims and results ---- */

typedef struct claim_ctx {
    uint32_t sink;
    int64_t now;
    size_t max;
    obx_job *jobs;
    size_t n;
    int64_t ask_at; /* no room (limit taken, ordered head not due): when to ask again */
} claim_ctx;

/* A sink whose limit is taken gets a slot back when a node records a result: this node's
 * own results wake its engine at once (pg_record); another node's are noticed by asking
 * again this much later. */
#define HELD_POLL_MS 200

static int job_cmp(const void *a, const void *b)
{
    const obx_job *x = a, *y = b;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return x->event_id < y->event_id ? -1 : x->event_id > y->event_id;
}

/* A sink with a cluster-wide limit: lock its registry row (claims of that sink from all
 * nodes take turns) and lower *max to what the limit leaves. */
static int apply_limit(pg_store *s, PGconn *c, uint32_t sink, size_t *max, obx_error *err)
{
    pthread_mutex_lock(&s->mu);
    unsigned limit = s->limit[sink];
    pthread_mutex_unlock(&s->mu);
    if (!limit)
        return OBX_OK;
    char sb[24];
    const char *p[] = {I64(sb, sink)};
    PGresult *r;
    int rc = obx__pg_exec(c, "sink_lock", 1, p, &r, err);
    if (rc)
        return rc;
    PQclear(r);
    pthread_mutex_lock(&s->mu);
    s->held[sink] = 1; /* before counting: a result committed meanwhile wakes a claim */
    pthread_mutex_unlock(&s->mu);
    if ((rc = obx__pg_exec(c, "inflight", 1, p, &r, err)) != OBX_OK)
        return rc;
    uint64_t busy = (uint64_t)obx__pg_i64(r, 0, 0);
    PQclear(r);
    size_t room = busy >= limit ? 0 : (size_t)(limit - busy);
    if (*max > room)
        *max = room;
    pthread_mutex_lock(&s->mu);
    s->held[sink] = room == 0;
    pthread_mutex_unlock(&s->mu);
    return OBX_OK;
}

/* The current lease owner id into out. */
static void lease_id(pg_store *s, char out[48])
{
    pthread_mutex_lock(&s->mu);
    memcpy(out, s->lease_id, 48);
    pthread_mutex_unlock(&s->mu);
}

static void new_generation(pg_store *s)
{
    pthread_mutex_lock(&s->mu);
    s->gen++;
    snprintf(s->lease_id, sizeof s->lease_id, "%s%u", s->node, s->gen);
    pthread_mutex_unlock(&s->mu);
}

static int claim_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    claim_ctx *cc = ud;
    obx_jobs_free(cc->jobs, cc->n); /* a run before a deadlock retry */
    cc->jobs = NULL;
    cc->n = 0;
    char owner[48];
    lease_id(s, owner);
    char sb[24], nb[24], mb[24], lb[24];
    PGresult *r;
    const char *rp[] = {I64(sb, cc->sink), I64(nb, cc->now)};
    int rc = obx__pg_exec(c, "reclaim", 2, rp, &r, err);
    if (rc)
        return rc;
    PQclear(r);
    size_t max = cc->max;
    cc->ask_at = 0;
    if ((rc = apply_limit(s, c, cc->sink, &max, err)) != OBX_OK)
        return rc;
    if (max == 0) {
        cc->ask_at = cc->now + HELD_POLL_MS;
        return OBX_OK;
    }
    pthread_mutex_lock(&s->mu);
    int ordered = s->ordered[cc->sink];
    pthread_mutex_unlock(&s->mu);
    const char *p[] = {sb, nb, I64(mb, max), owner, I64(lb, cc->now + s->opts.pg_lease_ms)};
    if (ordered) /* the oldest pending one, when due: order holds across nodes */
        rc = obx__pg_exec(c, "claim_head", 4, (const char *[]){sb, nb, owner, lb}, &r, err);
    else
        rc = obx__pg_exec(c, "claim", 5, p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    if (ordered && n == 0) { /* the head is not due: nothing behind it is either */
        PQclear(r);
        if ((rc = obx__pg_exec(c, "head_due", 1, (const char *[]){sb}, &r, err)) != OBX_OK)
            return rc;
        cc->ask_at = PQntuples(r) ? obx__pg_i64(r, 0, 0) : INT64_MAX;
    }
    obx_job *jobs = n ? calloc((size_t)n, sizeof *jobs) : NULL;
    if (n && !jobs) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        obx_job *j = &jobs[i];
        j->event_id = (uint64_t)obx__pg_i64(r, i, 0);
        j->sink_id = cc->sink;
        j->attempts = (uint32_t)obx__pg_i64(r, i, 1);
        j->first_attempt_ms = obx__pg_i64(r, i, 2);
        j->deadline_ms = obx__pg_i64(r, i, 3);
        j->due_ms = obx__pg_i64(r, i, 4);
        j->in_doubt = PQgetvalue(r, i, 5)[0] == 't';
        obx_delivery_id((obx_store *)s, j->event_id, j->sink_id, j->webhook_id,
                        sizeof j->webhook_id);
        j->received_ms = obx__pg_i64(r, i, 6);
        j->type = strdup(PQgetvalue(r, i, 7));
        j->action = strdup(PQgetvalue(r, i, 8));
        size_t bl = 0;
        j->body = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 9), &bl);
        j->body_len = bl;
        if (!j->type || !j->action || !j->body) {
            PQclear(r);
            obx_jobs_free(jobs, (size_t)n);
            return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        }
        /* PQunescapeBytea memory must go through PQfreemem; keep the API's free(). */
        unsigned char *copy = malloc(bl ? bl : 1);
        if (!copy) {
            PQclear(r);
            obx_jobs_free(jobs, (size_t)n);
            return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        }
        memcpy(copy, j->body, bl);
        PQfreemem(j->body);
        j->body = copy;
    }
    PQclear(r);
    if (n > 1)
        qsort(jobs, (size_t)n, sizeof *jobs, job_cmp);
    cc->jobs = jobs;
    cc->n = (size_t)n;
    return OBX_OK;
}

static int pg_next_due(obx_store *h, uint32_t sink_id, int64_t *next_due, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    char sb[24];
    const char *p[] = {I64(sb, sink_id)};
    PGresult *r;
    if ((rc = obx__pg_exec(pc->c, "next_due", 1, p, &r, err)) == OBX_OK) {
        *next_due = PQgetisnull(r, 0, 0) ? INT64_MAX : obx__pg_i64(r, 0, 0);
        PQclear(r);
    }
    obx__pg_release(s, pc);
    return rc;
}

static int pg_claim_due(obx_store *h, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                        size_t *n, int64_t *next_due, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    *jobs = NULL;
    *n = 0;
    int rc = need_owner(s, "claim", err);
    if (rc)
        return rc;
    if (max > 0) {
        claim_ctx cc = {.sink = sink_id, .now = now_ms, .max = max};
        if ((rc = obx__pg_txn(s, claim_txn, &cc, err)) != OBX_OK) {
            obx_jobs_free(cc.jobs, cc.n);
            new_generation(s); /* whatever it may have leased is left to expire */
            return rc;
        }
        *jobs = cc.jobs;
        *n = cc.n;
        if (cc.n == max) {
            if (next_due)
                *next_due = now_ms;
            return OBX_OK;
        }
        if (cc.ask_at > now_ms) {
            if (next_due)
                *next_due = cc.ask_at;
            return OBX_OK;
        }
    }
    int nrc = next_due ? pg_next_due(h, sink_id, next_due, err) : OBX_OK;
    if (nrc != OBX_OK) {
        if (*n == 0)
            return nrc;
        /* The claim committed: its jobs must reach the caller (an error here would lose
         * them while their leases are renewed). Ask again soon instead. */
        *next_due = now_ms;
        if (err)
            memset(err, 0, sizeof *err);
    }
    return OBX_OK;
}

/* An array literal's NULL element. */
static void sb_null(sbuf *b)
{
    sb_str(b, b->len > 1 ? ",NULL" : "NULL");
}

static void sb_text_or_null(sbuf *b, const char *v)
{
    if (v)
        sb_elem(b, v);
    else
        sb_null(b);
}

/* The record statement's arrays (schema.c "record": $3..$16), one element per result. */
enum { A_EV, A_SK, A_ST, A_T, A_D, A_S, A_E, A_F, A_DL, A_NX, A_WHY, A_H, A_B, A_Z, A_N };

/* The response captured for an attempt appended to the headers, body and size arrays: the
 * headers as one bytea of "name NUL value NUL" pairs and the body, cut to the OBX_CAPTURE_*
 * bounds by the rule the LMDB store uses (obx__attempt_set_capture); NULL when none. */
static int capture_append(const obx_result *r, sbuf *a, obx_error *err)
{
    obx_attempt at = {0};
    if (obx__attempt_set_capture(&at, r->headers, r->n_headers, r->body, r->body_len,
                                 r->body_size) != OBX_OK)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    if (at.n_headers) {
        sb_bytea_open(&a[A_H]);
        for (size_t k = 0; k < at.n_headers; k++) {
            sb_hex(&a[A_H], at.headers[k].name, strlen(at.headers[k].name) + 1);
            sb_hex(&a[A_H], at.headers[k].value, strlen(at.headers[k].value) + 1);
        }
        sb_put(&a[A_H], "\"", 1);
    } else {
        sb_null(&a[A_H]);
    }
    if (at.body) {
        sb_bytea(&a[A_B], (const unsigned char *)at.body, at.body_len);
    } else {
        sb_null(&a[A_B]);
    }
    if (at.body_size)
        sb_num(&a[A_Z], (long long)at.body_size);
    else
        sb_null(&a[A_Z]);
    obx_attempt_clear(&at);
    return OBX_OK;
}

/* One result's elements appended to every array of the record statement. */
static int record_append(const obx_result *r, sbuf *a, obx_error *err)
{
    int state = r->outcome == OBX_OUTCOME_DELIVERED ? OBX_STATE_DELIVERED
                : r->outcome == OBX_OUTCOME_RETRY   ? OBX_STATE_PENDING
                                                    : OBX_STATE_DEAD;
    sb_num(&a[A_EV], (long long)r->event_id);
    sb_num(&a[A_SK], (long long)r->sink_id);
    sb_num(&a[A_ST], state);
    sb_num(&a[A_T], r->started_ms);
    sb_num(&a[A_D], r->duration_ms);
    sb_num(&a[A_S], r->status);
    sb_text_or_null(&a[A_E], r->error);
    sb_num(&a[A_F], r->first_attempt_ms ? r->first_attempt_ms : r->started_ms);
    sb_num(&a[A_DL], r->deadline_ms);
    sb_num(&a[A_NX], r->next_attempt_ms);
    sb_text_or_null(&a[A_WHY], state == OBX_STATE_DEAD ? (r->reason ? r->reason : "dead") : NULL);
    return capture_append(r, a, err);
}

typedef struct rec_ctx {
    const obx_result *r;
    size_t n;
    int notify;
} rec_ctx;

/* Results in delivery order, a delivery's first result first (qsort is not stable). */
static int result_cmp(const void *x, const void *y)
{
    const obx_result *a = *(const obx_result *const *)x, *b = *(const obx_result *const *)y;
    if (a->event_id != b->event_id)
        return a->event_id < b->event_id ? -1 : 1;
    if (a->sink_id != b->sink_id)
        return a->sink_id < b->sink_id ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Run one batched statement over the arrays a[0..n) (each closed here with "}"). */
static int exec_arrays(PGconn *c, const char *stmt, const char *const *head, int n_head, sbuf *a,
                       int n, obx_error *err)
{
    const char *p[2 + A_N];
    for (int i = 0; i < n_head; i++)
        p[i] = head[i];
    for (int i = 0; i < n; i++) {
        sb_put(&a[i], "}", 1);
        if (a[i].bad)
            return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        p[n_head + i] = a[i].p;
    }
    PGresult *res;
    int rc = obx__pg_exec(c, stmt, n_head + n, p, &res, err);
    if (rc == OBX_OK)
        PQclear(res);
    return rc;
}

/* All results of a call in at most two statements: the attempts recorded, the leases given
 * back. A delivery's later results in the same call are skipped, as they would be one
 * statement at a time (the first one ends the lease). Rows are locked in key order. */
static int record_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    rec_ctx *rc_ = ud;
    sbuf a[A_N], rel[2];
    memset(a, 0, sizeof a);
    memset(rel, 0, sizeof rel);
    size_t n_rec = 0, n_rel = 0;
    int rc = OBX_OK;
    const obx_result **ord = malloc((rc_->n ? rc_->n : 1) * sizeof *ord);
    if (!ord)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < rc_->n; i++)
        if (rc_->r[i].event_id != 0) /* 0: the engine's fence, nothing to record */
            ord[m++] = &rc_->r[i];
    qsort(ord, m, sizeof *ord, result_cmp);
    for (int i = 0; i < A_N; i++)
        sb_put(&a[i], "{", 1);
    for (int i = 0; i < 2; i++)
        sb_put(&rel[i], "{", 1);
    for (size_t i = 0; i < m; i++) {
        const obx_result *r = ord[i];
        if (i && ord[i - 1]->event_id == r->event_id && ord[i - 1]->sink_id == r->sink_id)
            continue;
        if (r->outcome == OBX_OUTCOME_RELEASE) {
            sb_num(&rel[0], (long long)r->event_id);
            sb_num(&rel[1], (long long)r->sink_id);
            n_rel++;
            rc_->notify = 1;
        } else {
            if ((rc = record_append(r, a, err)) != OBX_OK)
                goto out;
            n_rec++;
        }
    }
    char hb[24];
    /* s->node is fixed after open: "<node>.", any generation of this node */
    const char *head[] = {s->node, I64(hb, s->opts.history)};
    if (n_rec && (rc = exec_arrays(c, "record", head, 2, a, A_N, err)) != OBX_OK)
        goto out;
    if (n_rel && (rc = exec_arrays(c, "release", head, 1, rel, 2, err)) != OBX_OK)
        goto out;
out:
    for (int i = 0; i < A_N; i++)
        free(a[i].p);
    for (int i = 0; i < 2; i++)
        free(rel[i].p);
    free(ord);
    return rc;
}

static int pg_record(obx_store *h, const obx_result *results, size_t n, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = need_owner(s, "record", err);
    if (rc || n == 0)
        return rc;
    rec_ctx rc_ = {.r = results, .n = n};
    if ((rc = obx__pg_txn(s, record_txn, &rc_, err)) != OBX_OK)
        return rc;
    /* released ones are due again; a sink whose claim the limit held has a slot again
     * (held is set before a claim counts, so a commit it did not see is never missed) */
    int wake = rc_.notify;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = results[i].sink_id;
        if (results[i].event_id && k < OBX_MAX_SINKS && s->held[k]) {
            s->held[k] = 0;
            wake = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (wake)
        do_notify(s);
    return OBX_OK;
}

/* ---- replay / purge ---- */

typedef struct many_ctx {
    obx_target *t;
    size_t n;
    int64_t now;
    int purge;
} many_ctx;

static int drop_events(PGconn *c, const uint64_t *ids, size_t n, obx_error *err)
{
    if (n == 0)
        return OBX_OK;
    char *arr = obx__pg_id_array(ids, n);
    if (!arr)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    const char *p[] = {arr};
    PGresult *r;
    int rc = obx__pg_exec(c, "event_drop", 1, p, &r, err);
    if (!rc)
        PQclear(r);
    free(arr);
    return rc;
}

/* Why nothing matched: no such event, no delivery to that sink, or the wrong states. */
static int explain(PGconn *c, obx_target *t, int purge, obx_error *terr, obx_error *err)
{
    char eb[24], sb[24];
    const char *p[] = {I64(eb, t->event_id), I64(sb, t->sink_id)};
    PGresult *r;
    int rc = obx__pg_exec(c, "states", 2, p, &r, err);
    if (rc)
        return rc;
    long long n = obx__pg_i64(r, 0, 1);
    if (n == 0) {
        PQclear(r);
        if ((rc = obx__pg_exec(c, "event_exists", 1, p, &r, err)) != OBX_OK)
            return rc;
        int exists = PQntuples(r) > 0;
        PQclear(r);
        if (exists)
            t->rc = obx__fail(terr, OBX_ERR_NOTFOUND, "event %llu has no delivery to sink %u",
                              (unsigned long long)t->event_id, t->sink_id);
        else
            t->rc = obx__fail(terr, OBX_ERR_NOTFOUND, "no event with id %llu",
                              (unsigned long long)t->event_id);
        return OBX_OK;
    }
    t->rc = obx__fail(terr, OBX_ERR_STATE, "event %llu: nothing to %s (deliveries are %s)",
                      (unsigned long long)t->event_id, purge ? "purge: no dead letter" : "replay",
                      PQgetvalue(r, 0, 0));
    PQclear(r);
    return OBX_OK;
}

static int many_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    many_ctx *m = ud;
    for (size_t i = 0; i < m->n; i++) {
        obx_target *t = &m->t[i];
        char eb[24], sb[24], nb[24];
        const char *p[] = {I64(eb, t->event_id), I64(sb, t->sink_id), I64(nb, m->now)};
        PGresult *r;
        int rc = obx__pg_exec(c, m->purge ? "purge" : "replay", m->purge ? 2 : 3, p, &r, err);
        if (rc)
            return rc;
        t->count = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        t->rc = OBX_OK;
        obx_error terr;
        if (t->count == 0 && (rc = explain(c, t, m->purge, &terr, err)) != OBX_OK)
            return rc;
        if (m->purge && t->count && (rc = drop_events(c, &t->event_id, 1, err)) != OBX_OK)
            return rc;
    }
    if (!m->purge)
        return notify_nodes(s, c, err);
    return OBX_OK;
}

static int pg_replay_many(obx_store *h, obx_target *t, size_t n, int64_t now_ms, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = need_write(s, err);
    if (rc || n == 0)
        return rc;
    many_ctx m = {.t = t, .n = n, .now = now_ms ? now_ms : obx_now_ms()};
    rc = obx__pg_txn(s, many_txn, &m, err);
    if (rc)
        for (size_t i = 0; i < n; i++) {
            t[i].rc = rc;
            t[i].count = 0;
        }
    else
        do_notify(s);
    return rc;
}

static int pg_purge_many(obx_store *h, obx_target *t, size_t n, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = need_write(s, err);
    if (rc || n == 0)
        return rc;
    many_ctx m = {.t = t, .n = n, .purge = 1};
    rc = obx__pg_txn(s, many_txn, &m, err);
    if (rc)
        for (size_t i = 0; i < n; i++) {
            t[i].rc = rc;
            t[i].count = 0;
        }
    return rc;
}

/* One target through the bulk path, with its own error message. */
static int one(obx_store *h, int purge, uint64_t id, uint32_t sink, int64_t now, size_t *count,
               obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc = need_write(s, err);
    if (rc)
        return rc;
    obx_target t = {.event_id = id, .sink_id = sink};
    many_ctx m = {.t = &t, .n = 1, .now = now ? now : obx_now_ms(), .purge = purge};
    rc = obx__pg_txn(s, many_txn, &m, err);
    if (count)
        *count = rc || t.rc ? 0 : t.count;
    if (rc)
        return rc;
    if (t.rc) {
        /* explain() wrote the message into a scratch error: run it again for err */
        pg_conn *pc;
        if (obx__pg_acquire(s, &pc, err) == OBX_OK) {
            obx_error e2;
            explain(pc->c, &t, purge, err ? err : &e2, &e2);
            obx__pg_release(s, pc);
        }
        return t.rc;
    }
    if (!purge)
        do_notify(s);
    return OBX_OK;
}

static int pg_replay(obx_store *h, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
                     obx_error *err)
{
    return one(h, 0, id, sink_id, now_ms, count, err);
}

static int pg_purge(obx_store *h, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err)
{
    return one(h, 1, id, sink_id, 0, count, err);
}

/* ---- retention ---- */

typedef struct sweep_ctx {
    int64_t before;
    size_t max, removed;
} sweep_ctx;

static int sweep_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    sweep_ctx *w = ud;
    char bb[24], mb[24];
    const char *p[] = {I64(bb, w->before), I64(mb, w->max)};
    PGresult *r;
    int rc = obx__pg_exec(c, "sweep", 2, p, &r, err);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(r);
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint64_t)obx__pg_i64(r, (int)i, 0);
    PQclear(r);
    rc = drop_events(c, ids, n, err);
    free(ids);
    w->removed = n;
    if (!rc)
        OBX_CRASH_POINT("retention");
    return rc;
}

static int pg_retention_sweep(obx_store *h, int64_t before_ms, size_t max, size_t *removed,
                              obx_error *err)
{
    pg_store *s = (pg_store *)h;
    sweep_ctx w = {.before = before_ms, .max = max ? max : 1000};
    int rc = need_write(s, err);
    if (!rc)
        rc = obx__pg_txn(s, sweep_txn, &w, err);
    if (removed)
        *removed = rc ? 0 : w.removed;
    return rc;
}

/* ---- threads: listener and lease keeper ---- */

static void *listener_main(void *arg)
{
    pg_store *s = arg;
    PGconn *c = NULL;
    for (;;) {
        if (!c) {
            obx_error e;
            char sql[200];
            int ok = obx__pg_connect(s, &c, &e) == OBX_OK;
            char *q = ok ? PQescapeIdentifier(c, s->channel, strlen(s->channel)) : NULL;
            if (q)
                snprintf(sql, sizeof sql, "LISTEN %s", q);
            PQfreemem(q);
            if (!q || obx__pg_cmd(c, sql, &e) != OBX_OK) {
                PQfinish(c);
                c = NULL;
                if (obx__pg_wait_stop(s, -1, 1000))
                    break;
                continue;
            }
            do_notify(s); /* anything committed while we were not listening */
        }
        if (obx__pg_wait_stop(s, PQsocket(c), 5000))
            break;
        if (!PQconsumeInput(c)) {
            PQfinish(c);
            c = NULL;
            continue;
        }
        int got = 0;
        PGnotify *nf;
        while ((nf = PQnotifies(c)) != NULL) {
            got = 1;
            PQfreemem(nf);
        }
        if (got)
            do_notify(s);
    }
    PQfinish(c);
    return NULL;
}

static void *keeper_main(void *arg)
{
    pg_store *s = arg;
    int every = (int)(s->opts.pg_lease_ms / 3);
    while (!obx__pg_wait_stop(s, -1, every)) {
        pg_conn *pc;
        obx_error e;
        if (obx__pg_acquire(s, &pc, &e) != OBX_OK)
            continue;
        char lb[24];
        char owner[48];
        lease_id(s, owner);
        const char *p[] = {owner, I64(lb, obx_now_ms() + s->opts.pg_lease_ms)};
        PGresult *r;
        if (obx__pg_exec(pc->c, "renew", 2, p, &r, &e) == OBX_OK)
            PQclear(r);
        obx__pg_release(s, pc);
    }
    return NULL;
}

/* ---- open / close ---- */

static void pg_close(obx_store *h)
{
    pg_store *s = (pg_store *)h;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    if (s->stop_pipe[1] >= 0 && write(s->stop_pipe[1], "x", 1) < 0)
        (void)0;
    if (s->committer_running)
        pthread_join(s->committer, NULL);
    if (s->listener_running)
        pthread_join(s->listener, NULL);
    if (s->keeper_running)
        pthread_join(s->keeper, NULL);
    obx__pg_health_stop(s);
    for (unsigned i = 0; i < s->n_pool; i++)
        PQfinish(s->pool[i].c);
    if (s->stop_pipe[0] >= 0)
        close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0)
        close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_conn);
    pthread_cond_destroy(&s->cv_work);
    pthread_cond_destroy(&s->cv_done);
    free(s->dsn);
    if (s->password) {
        memset(s->password, 0, strlen(s->password));
        free(s->password);
    }
    free(s->schema);
    free(s);
}

static void pg_shutdown(obx_store *h)
{
    pg_store *s = (pg_store *)h;
    pthread_mutex_lock(&s->mu);
    s->closed_for_enqueue = 1;
    pthread_mutex_unlock(&s->mu);
}

static void pg_set_notify(obx_store *h, obx_notify_fn fn, void *ud)
{
    pg_store *s = (pg_store *)h;
    pthread_mutex_lock(&s->mu);
    s->notify = fn;
    s->notify_ud = ud;
    pthread_mutex_unlock(&s->mu);
}

/* Refuse a server that acknowledges commits before they are flushed. */
static int check_sync_commit(pg_store *s, PGconn *c, obx_error *err)
{
    PGresult *r = PQexec(c, "SHOW synchronous_commit");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return obx__pg_fail(c, r, err, "SHOW synchronous_commit");
    int off = strcmp(PQgetvalue(r, 0, 0), "off") == 0;
    PQclear(r);
    if (off && !s->opts.allow_async_commit)
        return obx__fail(err, OBX_ERR_INVALID,
                         "postgres: synchronous_commit is off on %s:%s, so an acknowledged "
                         "event could be lost in a server crash; turn it on, or set "
                         "outbox.postgres.allow_async_commit to accept that",
                         PQhost(c), PQport(c));
    return OBX_OK;
}

static void random_id(char out[34])
{
    unsigned char b[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(b, 1, sizeof b, f) != sizeof b) {
        uint64_t t = (uint64_t)obx_now_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(b, &t, sizeof t);
    }
    if (f)
        fclose(f);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int start_thread(pthread_t *t, int *running, void *(*fn)(void *), pg_store *s,
                        const char *name, obx_error *err)
{
    if (pthread_create(t, NULL, fn, s) != 0)
        return obx__fail(err, OBX_ERR_IO, "cannot start the %s thread", name);
    *running = 1;
    pthread_setname_np(*t, name);
    return OBX_OK;
}

static int pg_open(const char *dir, const obx_options *opts, obx_store **out, obx_error *err)
{
    (void)dir;
    *out = NULL;
    if (!opts || !opts->pg_dsn || !*opts->pg_dsn)
        return obx__fail(err, OBX_ERR_INVALID, "postgres backend: no DSN (outbox.postgres.dsn)");
    pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    s->be = &obx__pg_backend;
    s->opts = *opts;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_conn, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    pthread_cond_init(&s->cv_done, NULL);
    int rc = OBX_OK;
    PGconn *c = NULL;
    obx__options_normalize(&s->opts);
    if (s->opts.pg_pool == 0)
        s->opts.pg_pool = 8;
    if (s->opts.pg_pool > OBX_PG_MAX_POOL)
        s->opts.pg_pool = OBX_PG_MAX_POOL;
    if (s->opts.pg_lease_ms < 300)
        s->opts.pg_lease_ms = 60000;
    s->n_pool = s->opts.pg_pool;
    s->owner = (s->opts.flags & OBX_OPEN_OWNER) != 0;
    s->readonly = (s->opts.flags & OBX_OPEN_READONLY) != 0;
    s->dsn = strdup(opts->pg_dsn);
    s->schema = strdup(opts->pg_schema && *opts->pg_schema ? opts->pg_schema : "outbox");
    s->password = opts->pg_password ? strdup(opts->pg_password) : NULL;
    if (!s->dsn || !s->schema || (opts->pg_password && !s->password)) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    random_id(s->node);
    strcat(s->node, ".");
    snprintf(s->lease_id, sizeof s->lease_id, "%s%u", s->node, s->gen);
    if ((rc = obx__pg_connect_raw(s, &c, err)) != OBX_OK)
        goto fail;
    if ((rc = check_sync_commit(s, c, err)) != OBX_OK)
        goto fail;
    if (!s->readonly && (rc = obx__pg_migrate(s, c, err)) != OBX_OK)
        goto fail;
    if (s->readonly && (rc = obx__pg_schema_check(s, c, err)) != OBX_OK)
        goto fail;
    if ((rc = obx__pg_prepare_all(c, err)) != OBX_OK)
        goto fail;
    if (s->readonly) {
        PGresult *r = PQexec(c, "SELECT value FROM meta WHERE key = 'uid'");
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            rc = obx__pg_fail(c, r, err, "read the store uid");
            goto fail;
        }
        snprintf(s->uid, sizeof s->uid, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    s->pool[0].c = c;
    c = NULL;
    snprintf(s->channel, sizeof s->channel, "outbox due %s", s->schema);
    if (pipe(s->stop_pipe) != 0) {
        rc = obx__fail(err, OBX_ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (s->owner && ((rc = start_thread(&s->committer, &s->committer_running, committer_main, s,
                                        "obx-writer", err)) != OBX_OK ||
                     (rc = start_thread(&s->listener, &s->listener_running, listener_main, s,
                                        "obx-listen", err)) != OBX_OK ||
                     (rc = start_thread(&s->keeper, &s->keeper_running, keeper_main, s, "obx-lease",
                                        err)) != OBX_OK ||
                     (rc = obx__pg_health_start(s, err)) != OBX_OK))
        goto fail;
    *out = (obx_store *)s;
    return OBX_OK;
fail:
    PQfinish(c);
    pg_close((obx_store *)s);
    return rc;
}

static int pg_ping(obx_store *h, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    PGresult *r = PQexec(pc->c, "SHOW transaction_read_only");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = obx__pg_fail(pc->c, r, err, "ping");
    } else {
        if (strcmp(PQgetvalue(r, 0, 0), "on") == 0)
            rc = obx__fail(err, OBX_ERR_UNAVAILABLE, "postgres: %s:%s is read-only", PQhost(pc->c),
                           PQport(pc->c));
        PQclear(r);
    }
    if (rc == OBX_ERR_UNAVAILABLE) { /* find the new primary on the next use */
        PQfinish(pc->c);
        pc->c = NULL;
    }
    obx__pg_release(s, pc);
    return rc;
}

/* The webhook-id (obx__delivery_id_format), with the database outbox's uid. */
static int pg_delivery_id(obx_store *h, uint64_t event_id, uint32_t sink_id, char *buf, size_t n)
{
    return obx__delivery_id_format(((pg_store *)h)->uid, event_id, sink_id, buf, n);
}

const struct obx__backend obx__pg_backend = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .shutdown = pg_shutdown,
    .set_notify = pg_set_notify,
    .sink_id = pg_sink_id,
    .sink_find = pg_sink_find,
    .sink_limit = pg_sink_limit,
    .sink_name = pg_sink_name,
    .enqueue = pg_enqueue,
    .event_get = obx__pg_event_get,
    .claim_due = pg_claim_due,
    .next_due = pg_next_due,
    .record = pg_record,
    .replay = pg_replay,
    .purge = pg_purge,
    .replay_many = pg_replay_many,
    .purge_many = pg_purge_many,
    .retention_sweep = pg_retention_sweep,
    .stats_get = obx__pg_stats_get,
    .list = obx__pg_list,
    .check = obx__pg_check,
    .backup = obx__pg_backup,
    .ping = pg_ping,
    .delivery_id = pg_delivery_id,
    .sink_retire = obx__pg_sink_retire,
    .sink_state_get = obx__pg_sink_state_get,
    .sink_state_set = obx__pg_sink_state_set,
    .enqueue_batch = pg_enqueue_batch,
    .idem_sweep = obx__pg_idem_sweep,
    .describe = obx__pg_describe,
    .pool_get = obx__pg_pool_get,
};
