/*
 * inspect.c - the PostgreSQL backend's read side: an event with its deliveries, stats
 * from the counters table (no count over the backlog), paged listings, the consistency
 * check (counters against the rows) and backup (refused: use the database's own tools).
 */
#include "pg_internal.h"

#include "../codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns of a delivery row as every query here selects them (after `off` others). */
#define DELIV_COLS                                                                                 \
    "d.event_id, d.sink_id, d.state, d.in_doubt, d.attempts, d.total_attempts,"                    \
    " d.first_attempt_ms, d.last_attempt_ms, d.next_attempt_ms, d.deadline_ms, d.done_ms,"         \
    " d.last_status, d.last_error, d.reason, d.replays"

static int read_delivery(pg_store *s, PGresult *r, int row, int off, obx_delivery *d)
{
    memset(d, 0, sizeof *d);
    d->event_id = (uint64_t)obx__pg_i64(r, row, off + 0);
    d->sink_id = (uint32_t)obx__pg_i64(r, row, off + 1);
    d->state = (int)obx__pg_i64(r, row, off + 2);
    d->in_doubt = PQgetvalue(r, row, off + 3)[0] == 't';
    d->attempts = (uint32_t)obx__pg_i64(r, row, off + 4);
    d->total_attempts = (uint32_t)obx__pg_i64(r, row, off + 5);
    d->first_attempt_ms = obx__pg_i64(r, row, off + 6);
    d->last_attempt_ms = obx__pg_i64(r, row, off + 7);
    d->next_attempt_ms = obx__pg_i64(r, row, off + 8);
    d->deadline_ms = obx__pg_i64(r, row, off + 9);
    d->done_ms = obx__pg_i64(r, row, off + 10);
    d->last_status = (int)obx__pg_i64(r, row, off + 11);
    d->last_error = obx__pg_strdup_or_null(r, row, off + 12);
    d->reason = obx__pg_strdup_or_null(r, row, off + 13);
    d->replays = (uint32_t)obx__pg_i64(r, row, off + 14);
    obx_delivery_id((obx_store *)s, d->event_id, d->sink_id, d->webhook_id, sizeof d->webhook_id);
    if ((!PQgetisnull(r, row, off + 12) && !d->last_error) ||
        (!PQgetisnull(r, row, off + 13) && !d->reason))
        return OBX_ERR_NOMEM;
    return OBX_OK;
}

/* The captured response of one attempt from the columns off.. (headers as "name NUL
 * value NUL" pairs, body, body size; NULL when none, as bytea), through the rule that
 * recorded it. OBX_OK or OBX_ERR_NOMEM. */
static int read_capture(PGresult *r, int row, int off, obx_attempt *a)
{
    size_t hl = 0, bl = 0;
    unsigned char *h = NULL, *b = NULL;
    obx_header hdr[OBX_CAPTURE_HEADERS_MAX];
    size_t nh = 0;
    int rc = OBX_ERR_NOMEM;
    if (!PQgetisnull(r, row, off) &&
        !(h = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, off), &hl)))
        goto out;
    if (!PQgetisnull(r, row, off + 1) &&
        !(b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, off + 1), &bl)))
        goto out;
    /* NUL-terminated name, value, name, ...; a pair cut short is not kept */
    for (size_t p = 0; h && p < hl && nh < OBX_CAPTURE_HEADERS_MAX;) {
        const char *name = (const char *)h + p;
        size_t nl = strnlen(name, hl - p);
        if (p + nl + 1 >= hl)
            break;
        const char *value = name + nl + 1;
        size_t vl = strnlen(value, hl - p - nl - 1);
        if (p + nl + 1 + vl >= hl)
            break;
        hdr[nh++] = (obx_header){(char *)name, (char *)value};
        p += nl + vl + 2;
    }
    if (nh || b || obx__pg_i64(r, row, off + 2))
        rc = obx__attempt_set_capture(a, hdr, nh, b, bl, (uint64_t)obx__pg_i64(r, row, off + 2));
    else
        rc = OBX_OK;
out:
    if (h)
        PQfreemem(h);
    if (b)
        PQfreemem(b);
    return rc;
}

/* The delivery's last attempts (its jsonb history), oldest first. */
static int read_history(PGconn *c, obx_delivery *d, obx_error *err)
{
    char eb[24], sb[24];
    const char *p[] = {I64(eb, d->event_id), I64(sb, d->sink_id)};
    PGresult *r;
    int rc = obx__pg_exec(c, "history", 2, p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    if (n) {
        d->history = calloc((size_t)n, sizeof *d->history);
        if (!d->history) {
            PQclear(r);
            return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < n; i++) {
        obx_attempt *a = &d->history[i];
        a->started_ms = obx__pg_i64(r, i, 0);
        a->duration_ms = (uint32_t)obx__pg_i64(r, i, 1);
        a->status = (int)obx__pg_i64(r, i, 2);
        a->error = obx__pg_strdup_or_null(r, i, 3);
        d->n_history++;
        if ((rc = read_capture(r, i, 4, a)) != OBX_OK)
            break;
    }
    PQclear(r);
    return rc ? obx__fail(err, rc, "out of memory") : OBX_OK;
}

/* Fill the event columns id, received_ms, type, action, body (escaped bytea). */
static int read_event(PGresult *r, int row, int off, obx_event *e)
{
    e->id = (uint64_t)obx__pg_i64(r, row, off);
    e->received_ms = obx__pg_i64(r, row, off + 1);
    e->type = strdup(PQgetvalue(r, row, off + 2));
    e->action = strdup(PQgetvalue(r, row, off + 3));
    size_t bl = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, off + 4), &bl);
    e->body = b ? malloc(bl ? bl : 1) : NULL;
    if (e->body)
        memcpy(e->body, b, bl);
    e->body_len = bl;
    PQfreemem(b);
    return e->type && e->action && e->body ? OBX_OK : OBX_ERR_NOMEM;
}

int obx__pg_event_get(obx_store *h, uint64_t id, obx_event **out, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    *out = NULL;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    obx_event *e = calloc(1, sizeof *e);
    PGresult *r = NULL;
    char eb[24];
    const char *p[] = {I64(eb, id)};
    if (!e) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = obx__pg_exec(pc->c, "event_get", 1, p, &r, err)) != OBX_OK)
        goto out;
    if (PQntuples(r) != 1) {
        rc = obx__fail(err, OBX_ERR_NOTFOUND, "no event with id %llu", (unsigned long long)id);
        goto out;
    }
    if (read_event(r, 0, 0, e) != OBX_OK) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    PQclear(r);
    r = NULL;
    if ((rc = obx__pg_exec(pc->c, "deliveries_of", 1, p, &r, err)) != OBX_OK)
        goto out;
    int n = PQntuples(r);
    e->deliveries = n ? calloc((size_t)n, sizeof *e->deliveries) : NULL;
    if (n && !e->deliveries) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        e->n_deliveries++;
        if (read_delivery(s, r, i, 0, &e->deliveries[i]) != OBX_OK) {
            rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = read_history(pc->c, &e->deliveries[i], err)) != OBX_OK)
            goto out;
    }
out:
    if (r)
        PQclear(r);
    obx__pg_release(s, pc);
    if (rc)
        obx_event_free(e);
    else
        *out = e;
    return rc;
}

int obx__pg_stats_get(obx_store *h, obx_stats **out, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    *out = NULL;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    obx_stats *st = calloc(1, sizeof *st);
    PGresult *r = NULL;
    if (!st) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* One snapshot for every read below. */
    if ((rc = obx__pg_cmd(pc->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err)))
        goto out;
    if ((rc = obx__pg_exec(pc->c, "sinks", 0, NULL, &r, err)) != OBX_OK)
        goto out;
    int ns = PQntuples(r);
    st->sinks = ns ? calloc((size_t)ns, sizeof *st->sinks) : NULL;
    if (ns && !st->sinks) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    st->n_sinks = (size_t)ns;
    for (int i = 0; i < ns; i++) {
        st->sinks[i].id = (uint32_t)obx__pg_i64(r, i, 0);
        snprintf(st->sinks[i].name, sizeof st->sinks[i].name, "%s", PQgetvalue(r, i, 1));
        st->sinks[i].next_due_ms = INT64_MAX;
    }
    PQclear(r);
    if ((rc = obx__pg_exec(pc->c, "counters", 0, NULL, &r, err)) != OBX_OK)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        uint32_t sink = (uint32_t)obx__pg_i64(r, i, 0);
        int kind = (int)obx__pg_i64(r, i, 1);
        int64_t v = obx__pg_i64(r, i, 2);
        uint64_t n = v > 0 ? (uint64_t)v : 0;
        if (sink == 0) {
            if (kind == 10)
                st->events = n;
            else if (kind == 11)
                st->enqueued = n;
            else if (kind == 12)
                st->idem_keys = n;
            continue;
        }
        for (size_t k = 0; k < st->n_sinks; k++) {
            obx_sink_stats *ss = &st->sinks[k];
            if (ss->id != sink)
                continue;
            if (kind == OBX_STATE_PENDING)
                ss->pending = n;
            else if (kind == OBX_STATE_INFLIGHT)
                ss->inflight = n;
            else if (kind == OBX_STATE_DELIVERED)
                ss->delivered = n;
            else if (kind == OBX_STATE_DEAD)
                ss->dead = n;
            else if (kind == 5)
                ss->in_doubt = n;
        }
    }
    PQclear(r);
    r = NULL;
    for (size_t k = 0; k < st->n_sinks; k++) {
        obx_sink_stats *ss = &st->sinks[k];
        char sb[24];
        const char *p[] = {I64(sb, ss->id)};
        if (!ss->pending && !ss->inflight)
            continue;
        if ((rc = obx__pg_exec(pc->c, "oldest", 1, p, &r, err)) != OBX_OK)
            goto out;
        if (PQntuples(r) == 1)
            ss->oldest_pending_ms = obx__pg_i64(r, 0, 0);
        PQclear(r);
        if ((rc = obx__pg_exec(pc->c, "next_due", 1, p, &r, err)) != OBX_OK)
            goto out;
        if (!PQgetisnull(r, 0, 0))
            ss->next_due_ms = obx__pg_i64(r, 0, 0);
        PQclear(r);
        r = NULL;
    }
    const char *sp[] = {s->schema};
    if ((rc = obx__pg_exec(pc->c, "size", 1, sp, &r, err)) != OBX_OK)
        goto out;
    st->used_bytes = st->file_bytes = (uint64_t)obx__pg_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    rc = obx__pg_cmd(pc->c, "COMMIT", err);
    st->max_size = s->opts.max_size;
    st->high_water = s->opts.max_size / 100 * s->opts.high_water_pct;
    st->schema_version = OBX_PG_SCHEMA_VERSION;
    for (int i = 0; i <= OBX_BATCH_BUCKETS; i++)
        st->commit_batches[i] = __atomic_load_n(&s->batch_hist[i], __ATOMIC_RELAXED);
    for (int i = 0; i <= OBX_COMMIT_BUCKETS; i++)
        st->commit_us[i] = __atomic_load_n(&s->commit_hist[i], __ATOMIC_RELAXED);
    st->commit_us_sum = __atomic_load_n(&s->commit_us_sum, __ATOMIC_RELAXED);
    st->commit_ops = __atomic_load_n(&s->commit_ops, __ATOMIC_RELAXED);
out:
    if (r)
        PQclear(r);
    obx__pg_release(s, pc);
    if (rc)
        obx_stats_free(st);
    else
        *out = st;
    return rc;
}

/* Append " AND <cond>" with the next parameter number to a query being built. */
typedef struct qb {
    char sql[2048];
    const char *p[16];
    char vals[16][32];
    int n;
} qb;

static void qb_add(qb *b, const char *cond, const char *val)
{
    size_t l = strlen(b->sql);
    b->p[b->n] = val;
    b->n++;
    snprintf(b->sql + l, sizeof b->sql - l, " AND %s $%d", cond, b->n);
}

static const char *qb_i64(qb *b, int64_t v)
{
    return I64(b->vals[b->n], v);
}

int obx__pg_list(obx_store *h, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt,
                 void *ud, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    (void)on_corrupt; /* rows are typed columns: nothing to fail a checksum */
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    uint64_t after = q->after_id;
    /* resuming at after_id itself skips all of its deliveries: sink ids are 1..UINT32_MAX-1 */
    uint32_t after_sink = q->newest_first ? 0 : UINT32_MAX;
    int resumed = after != 0;
    /* dead and delivered walk in (done time, event, sink) order, as the LMDB store's time
     * indexes do (a listing's cursor depends on it); the others in (event, sink) order */
    int timed = q->state == OBX_STATE_DEAD || q->state == OBX_STATE_DELIVERED;
    int64_t after_done = q->newest_first ? INT64_MAX : INT64_MIN;
    const char *dir = q->newest_first ? "DESC" : "ASC";
    size_t emitted = 0;
    const size_t page = 256;
    for (;;) {
        qb b = {.n = 0};
        snprintf(b.sql, sizeof b.sql,
                 "SELECT e.id, e.received_ms, e.type, e.action, e.body, " DELIV_COLS
                 " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE true");
        if (q->state)
            qb_add(&b, "d.state =", qb_i64(&b, q->state));
        if (q->sink_id != OBX_ALL_SINKS)
            qb_add(&b, "d.sink_id =", qb_i64(&b, q->sink_id));
        if (q->type)
            qb_add(&b, "e.type =", q->type);
        if (q->action)
            qb_add(&b, "e.action =", q->action);
        if (q->since_ms)
            qb_add(&b, "e.received_ms >=", qb_i64(&b, q->since_ms));
        if (q->until_ms)
            qb_add(&b, "e.received_ms <", qb_i64(&b, q->until_ms));
        if (resumed) {
            /* (event, sink) after the last row: the next page starts exactly there */
            char cond[160];
            if (timed)
                snprintf(cond, sizeof cond,
                         "(d.done_ms, d.event_id, d.sink_id) %s (%lld, %llu, %u) AND true =",
                         q->newest_first ? "<" : ">", (long long)after_done,
                         (unsigned long long)after, after_sink);
            else
                snprintf(cond, sizeof cond, "(d.event_id, d.sink_id) %s (%llu, %u) AND true =",
                         q->newest_first ? "<" : ">", (unsigned long long)after, after_sink);
            qb_add(&b, cond, "true");
        }
        size_t l = strlen(b.sql);
        if (timed)
            snprintf(b.sql + l, sizeof b.sql - l,
                     " ORDER BY d.done_ms %s, d.event_id %s, d.sink_id %s LIMIT %zu", dir, dir, dir,
                     page);
        else
            snprintf(b.sql + l, sizeof b.sql - l, " ORDER BY d.event_id %s, d.sink_id %s LIMIT %zu",
                     dir, dir, page);
        PGresult *r = PQexecParams(pc->c, b.sql, b.n, NULL, b.p, NULL, NULL, 0);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = obx__pg_fail(pc->c, r, err, "list");
            break;
        }
        int n = PQntuples(r);
        int stop = 0;
        for (int i = 0; i < n && !stop; i++) {
            obx_event ev = {0};
            obx_delivery d;
            if (read_event(r, i, 0, &ev) != OBX_OK || read_delivery(s, r, i, 5, &d) != OBX_OK ||
                (rc = read_history(pc->c, &d, err)) != OBX_OK) {
                free(ev.type);
                free(ev.action);
                free(ev.body);
                obx_delivery_clear(&d);
                if (!rc)
                    rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
                stop = 1;
                break;
            }
            ev.n_deliveries = 1;
            ev.deliveries = &d;
            after = d.event_id;
            after_sink = d.sink_id;
            after_done = d.done_ms;
            resumed = 1;
            stop = fn(ud, &ev, &d);
            emitted++;
            if (q->limit && emitted >= q->limit)
                stop = 1;
            obx_delivery_clear(&d);
            free(ev.type);
            free(ev.action);
            free(ev.body);
        }
        PQclear(r);
        if (stop || rc || (size_t)n < page)
            break;
    }
    obx__pg_release(s, pc);
    return rc;
}

int obx__pg_check(obx_store *h, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    *problems = 0;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    /* Each query returns one text row per problem. */
    static const char *const checks[] = {
        "SELECT format('counter sink %s kind %s is %s, the rows say %s', coalesce(c.sink_id,"
        " a.sink_id), coalesce(c.kind, a.kind), coalesce(c.n, 0), coalesce(a.n, 0)) FROM"
        " (SELECT sink_id, kind, sum(n) AS n FROM counters GROUP BY 1, 2) c FULL JOIN (SELECT "
        "sink_id, state AS kind, count(*) AS n FROM deliveries"
        " GROUP BY 1, 2 UNION ALL SELECT sink_id, 5, count(*) FROM deliveries WHERE in_doubt"
        " GROUP BY 1 UNION ALL SELECT 0, 10, count(*) FROM events"
        " UNION ALL SELECT 0, 12, count(*) FROM idem_keys) a ON a.sink_id = c.sink_id"
        " AND a.kind = c.kind WHERE coalesce(c.kind, a.kind) <> 11"
        " AND coalesce(c.n, 0) <> coalesce(a.n, 0)",
        "SELECT format('delivery %s/%s has no event', d.event_id, d.sink_id) FROM deliveries d"
        " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)",
        "SELECT format('event %s has no delivery', e.id) FROM events e"
        " WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
        "SELECT format('delivery %s/%s names unknown sink %s', d.event_id, d.sink_id,"
        " d.sink_id) FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM sinks s"
        " WHERE s.id = d.sink_id)",
        "SELECT format('delivery %s/%s has state %s', event_id, sink_id, state)"
        " FROM deliveries WHERE state NOT BETWEEN 1 AND 4",
    };
    if ((rc = obx__pg_cmd(pc->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err)))
        goto out;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        PGresult *r = PQexec(pc->c, checks[i]);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = obx__pg_fail(pc->c, r, err, "check");
            goto out;
        }
        for (int k = 0; k < PQntuples(r); k++) {
            (*problems)++;
            if (fn)
                fn(ud, PQgetvalue(r, k, 0));
        }
        PQclear(r);
    }
    rc = obx__pg_cmd(pc->c, "COMMIT", err);
out:
    obx__pg_release(s, pc);
    return rc;
}

int obx__pg_backup(obx_store *h, const char *dest, obx_error *err)
{
    (void)h;
    (void)dest;
    return obx__fail(err, OBX_ERR_STATE,
                     "backup is for the LMDB store; back up a postgres outbox with the "
                     "database's own tools (pg_basebackup, pg_dump --schema)");
}
