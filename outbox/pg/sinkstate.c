/*
 * sinkstate.c - a sink's persisted health on the PostgreSQL backend (obx_sink_state_get/
 * set, outbox.h; table sink_state, schema.c): the breaker's down flag, the operator's
 * pause, since when and why, and the time held. One row per sink, shared by every node:
 * a node whose breaker opens or whose probe succeeds sets it, outboxctl pause/resume sets
 * it, and every node's engine takes it at its next poll (0.5 s).
 *
 * A change is one transaction that locks the sink's row, applies the one rule
 * (obx_sink_state_apply) and writes it back, so a down and a pause from two processes
 * never overwrite each other; a change that changes nothing writes nothing (a second
 * node whose breaker opens finds it already down). The transaction sends a NOTIFY on
 * "outbox health <schema>", delivered at its commit.
 *
 * How nodes learn of a change: an owner (daemon) keeps every sink's state in memory, kept
 * by a watcher thread on its own connection that LISTENs on that channel and reloads the
 * table on each notification, on every (re)connection and every 5 s (a notification sent
 * while its connection was down is lost; the reload covers it). The engine reads this
 * cache at each poll without touching the database: a poll costs no round trip and never
 * waits for a pooled connection (the alternative, every node querying every sink twice a
 * second, costs the database that many queries and blocks the engine loop on the pool).
 * While the watcher has no connection the cache is not used: a read goes to the database
 * and fails as the database does. Other handles (outboxctl) always read the database.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELOAD_EVERY_MS 5000
#define RECONNECT_MS    1000

struct pg_health {
    pthread_mutex_t mu;
    obx_sink_state *st; /* OBX_MAX_SINKS, by sink id; zero: no row */
    int valid;          /* the watcher is connected and has loaded the table */
    unsigned epoch;     /* bumped by each write-through (a reload racing it
                           is dropped; its NOTIFY brings another) */
    pthread_t thread;
    int running;
    char channel[160];
};

/* The NOTIFY channel of this outbox's health changes. */
static const char *channel(const pg_store *s, char out[160])
{
    snprintf(out, 160, "outbox health %s", s->schema);
    return out;
}

/* Row columns from `col` on, in the order of the statements (schema.c), into *st. */
static void row_state(PGresult *r, int row, int col, obx_sink_state *st)
{
    memset(st, 0, sizeof *st);
    st->down = PQgetvalue(r, row, col)[0] == 't';
    st->paused = PQgetvalue(r, row, col + 1)[0] == 't';
    st->down_since_ms = obx__pg_i64(r, row, col + 2);
    st->paused_since_ms = obx__pg_i64(r, row, col + 3);
    st->changed_ms = obx__pg_i64(r, row, col + 4);
    st->held_ms = obx__pg_i64(r, row, col + 5);
    st->held_since_ms = obx__pg_i64(r, row, col + 6);
    st->changes = (uint64_t)obx__pg_i64(r, row, col + 7);
    snprintf(st->why, sizeof st->why, "%s", PQgetvalue(r, row, col + 8));
    snprintf(st->last_error, sizeof st->last_error, "%s", PQgetvalue(r, row, col + 9));
}

/* One sink's stored state from the database (zeroed when it has no row). */
static int read_one(PGconn *c, uint32_t id, int lock, obx_sink_state *st, int *exists,
                    obx_error *err)
{
    char ib[24];
    const char *p[] = {I64(ib, id)};
    PGresult *r;
    int rc = obx__pg_exec(c, lock ? "health_lock" : "health_get", 1, p, &r, err);
    if (rc)
        return rc;
    *exists = PQntuples(r) == 1;
    if (*exists)
        row_state(r, 0, 0, st);
    else
        memset(st, 0, sizeof *st);
    PQclear(r);
    return OBX_OK;
}

int obx__pg_sink_state_get(obx_store *h, uint32_t id, obx_sink_state *out, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc;
    struct pg_health *hc = s->health;
    if (hc) {
        pthread_mutex_lock(&hc->mu);
        int valid = hc->valid;
        if (valid)
            *out = hc->st[id];
        pthread_mutex_unlock(&hc->mu);
        if (valid)
            return OBX_OK;
    }
    pg_conn *pc;
    if ((rc = obx__pg_acquire(s, &pc, err)) != OBX_OK)
        return rc;
    int exists;
    rc = read_one(pc->c, id, 0, out, &exists, err);
    obx__pg_release(s, pc);
    return rc;
}

typedef struct set_args {
    uint32_t id;
    int what, on;
    int64_t now;
    const char *why, *last_error;
    obx_sink_state st;
    int did;
} set_args;

/* Lock (creating) the sink's row, apply the change, write it and notify the nodes. */
static int set_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    set_args *a = ud;
    char ib[24];
    const char *ip[] = {I64(ib, a->id)};
    PGresult *r;
    int rc = obx__pg_exec(c, "health_add", 1, ip, &r, err);
    if (rc)
        return rc;
    PQclear(r);
    int exists;
    if ((rc = read_one(c, a->id, 1, &a->st, &exists, err)) != OBX_OK)
        return rc;
    if (!exists)
        return obx__fail(err, OBX_ERR_INVALID, "sink state: no sink with id %u in this outbox",
                         a->id);
    a->did = obx_sink_state_apply(&a->st, a->what, a->on, a->now, a->why, a->last_error);
    if (!a->did)
        return OBX_OK;
    const obx_sink_state *st = &a->st;
    char v[6][24];
    const char *p[] = {ib,
                       st->down ? "t" : "f",
                       st->paused ? "t" : "f",
                       I64(v[0], st->down_since_ms),
                       I64(v[1], st->paused_since_ms),
                       I64(v[2], st->changed_ms),
                       I64(v[3], st->held_ms),
                       I64(v[4], st->held_since_ms),
                       I64(v[5], st->changes),
                       st->why,
                       st->last_error};
    if ((rc = obx__pg_exec(c, "health_put", 11, p, &r, err)) != OBX_OK)
        return rc;
    PQclear(r);
    char chan[160];
    const char *np[] = {channel(s, chan)};
    if ((rc = obx__pg_exec(c, "notify", 1, np, &r, err)) != OBX_OK)
        return rc;
    PQclear(r);
    return OBX_OK;
}

int obx__pg_sink_state_set(obx_store *h, uint32_t id, int what, int on, int64_t now_ms,
                           const char *why, const char *last_error, obx_sink_state *out,
                           int *changed, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    int rc;
    if (s->readonly)
        return obx__fail(err, OBX_ERR_STATE, "sink state: store opened read-only");
    set_args a = {
        .id = id, .what = what, .on = on, .now = now_ms, .why = why, .last_error = last_error};
    if ((rc = obx__pg_txn(s, set_txn, &a, err)) != OBX_OK)
        return rc;
    struct pg_health *hc = s->health;
    if (hc) { /* write through: this node's engine sees its own change at once */
        pthread_mutex_lock(&hc->mu);
        hc->st[id] = a.st;
        hc->epoch++;
        pthread_mutex_unlock(&hc->mu);
    }
    if (changed)
        *changed = a.did;
    if (out)
        *out = a.st;
    return OBX_OK;
}

/* Read every row into the cache (dropped when a write-through raced it). */
static int reload(struct pg_health *hc, PGconn *c, obx_error *err)
{
    pthread_mutex_lock(&hc->mu);
    unsigned epoch = hc->epoch;
    pthread_mutex_unlock(&hc->mu);
    PGresult *r;
    int rc = obx__pg_exec(c, "health_all", 0, NULL, &r, err);
    if (rc)
        return rc;
    obx_sink_state *st = calloc(OBX_MAX_SINKS, sizeof *st);
    if (!st) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t id = obx__pg_i64(r, i, 0);
        if (id > 0 && id < OBX_MAX_SINKS)
            row_state(r, i, 1, &st[id]);
    }
    PQclear(r);
    pthread_mutex_lock(&hc->mu);
    if (hc->epoch == epoch) {
        obx_sink_state *old = hc->st; /* swapped: readers copy under mu */
        hc->st = st;
        st = old;
        hc->valid = 1;
    }
    pthread_mutex_unlock(&hc->mu);
    free(st);
    return OBX_OK;
}

static void set_valid(struct pg_health *hc, int valid)
{
    pthread_mutex_lock(&hc->mu);
    hc->valid = valid;
    pthread_mutex_unlock(&hc->mu);
}

static void *watcher_main(void *arg)
{
    pg_store *s = arg;
    struct pg_health *hc = s->health;
    PGconn *c = NULL;
    for (;;) {
        obx_error e;
        if (!c) {
            char sql[200];
            char *q = NULL;
            if (obx__pg_connect(s, &c, &e) == OBX_OK)
                q = PQescapeIdentifier(c, hc->channel, strlen(hc->channel));
            if (q)
                snprintf(sql, sizeof sql, "LISTEN %s", q);
            PQfreemem(q);
            if (!q || obx__pg_cmd(c, sql, &e) != OBX_OK || reload(hc, c, &e) != OBX_OK) {
                set_valid(hc, 0);
                PQfinish(c);
                c = NULL;
                if (obx__pg_wait_stop(s, -1, RECONNECT_MS))
                    break;
                continue;
            }
        }
        if (obx__pg_wait_stop(s, PQsocket(c), RELOAD_EVERY_MS))
            break;
        if (!PQconsumeInput(c)) {
            set_valid(hc, 0);
            PQfinish(c);
            c = NULL;
            continue;
        }
        PGnotify *nf;
        while ((nf = PQnotifies(c)) != NULL)
            PQfreemem(nf);
        if (reload(hc, c, &e) != OBX_OK) { /* a notification, or RELOAD_EVERY_MS passed */
            set_valid(hc, 0);
            PQfinish(c);
            c = NULL;
        }
    }
    PQfinish(c);
    return NULL;
}

int obx__pg_health_start(pg_store *s, obx_error *err)
{
    struct pg_health *hc = calloc(1, sizeof *hc);
    obx_sink_state *st = calloc(OBX_MAX_SINKS, sizeof *st);
    if (!hc || !st) {
        free(hc);
        free(st);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    hc->st = st;
    pthread_mutex_init(&hc->mu, NULL);
    channel(s, hc->channel);
    s->health = hc;
    if (pthread_create(&hc->thread, NULL, watcher_main, s) != 0) {
        obx__pg_health_stop(s);
        return obx__fail(err, OBX_ERR_IO, "cannot start the sink health thread");
    }
    hc->running = 1;
    pthread_setname_np(hc->thread, "obx-health");
    return OBX_OK;
}

void obx__pg_health_stop(pg_store *s)
{
    struct pg_health *hc = s->health;
    if (!hc)
        return;
    if (hc->running) /* the caller has written to the stop pipe */
        pthread_join(hc->thread, NULL);
    s->health = NULL;
    pthread_mutex_destroy(&hc->mu);
    free(hc->st);
    free(hc);
}
