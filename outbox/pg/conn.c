/*
 * conn.c - the PostgreSQL backend's connections: connecting (password, search_path,
 * prepared statements), the per-process pool, running statements, and turning libpq
 * failures into obx errors (unreachable or read-only = OBX_ERR_UNAVAILABLE, retryable).
 */
#include "pg_internal.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local int obx__pg_conflict;

int obx__pg_fail(PGconn *c, PGresult *res, obx_error *err, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    obx__pg_conflict = obx__pg_retryable(res);
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = c ? PQerrorMessage(c) : "no connection";
    int code = OBX_ERR_DB;
    /* 08: connection exceptions; 57P01..03: shutdown / cannot connect now; 25006: a
     * read-only transaction (a standby, or a primary being demoted); 53300 too many
     * connections. All mean "try again, possibly on another server". */
    if (!c || PQstatus(c) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P0", 4) == 0 || strcmp(state, "25006") == 0 ||
        strcmp(state, "53300") == 0)
        code = OBX_ERR_UNAVAILABLE;
    if (err) {
        err->code = code;
        int n = snprintf(err->msg, sizeof err->msg, "postgres: %s: %s", what, msg);
        /* libpq messages end with a newline */
        while (n > 0 && (size_t)n < sizeof err->msg && err->msg[n - 1] == '\n')
            err->msg[--n] = 0;
    }
    if (res)
        PQclear(res);
    return code;
}

int obx__pg_retryable(PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

int obx__pg_exec(PGconn *c, const char *stmt, int n, const char *const *params, PGresult **res,
                 obx_error *err)
{
    *res = PQexecPrepared(c, stmt, n, params, NULL, NULL, 0);
    ExecStatusType st = *res ? PQresultStatus(*res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return OBX_OK;
    int rc = obx__pg_fail(c, *res, err, stmt);
    *res = NULL;
    return rc;
}

int obx__pg_cmd(PGconn *c, const char *sql, obx_error *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return OBX_OK;
    }
    return obx__pg_fail(c, r, err, sql);
}

int64_t obx__pg_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

char *obx__pg_id_array(const uint64_t *ids, size_t n)
{
    char *arr = malloc(n * 22 + 3);
    if (!arr)
        return NULL;
    size_t o = 0;
    arr[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(arr + o, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
    arr[o++] = '}';
    arr[o] = 0;
    return arr;
}

int obx__pg_wait_stop(pg_store *s, int fd, int ms)
{
    struct pollfd p[2] = {{s->stop_pipe[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int r = poll(p, fd >= 0 ? 2 : 1, ms);
    return r > 0 && (p[0].revents & POLLIN);
}

char *obx__pg_strdup_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static void quiet(void *ud, const char *msg)
{
    (void)ud;
    (void)msg;
}

/* Connect and set search_path to the outbox schema (statements not prepared yet). */
static int connect_raw(pg_store *s, PGconn **out, obx_error *err)
{
    const char *keys[] = {"dbname", "password", "application_name", NULL};
    const char *vals[] = {s->dsn, s->password, "outbox", NULL};
    if (!s->password) {
        keys[1] = "application_name";
        vals[1] = "outbox";
        keys[2] = NULL;
        vals[2] = NULL;
    }
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        int rc = obx__pg_fail(c, NULL, err, "connect");
        if (err) /* the message names the host; never the password */
            err->code = rc = OBX_ERR_UNAVAILABLE;
        PQfinish(c);
        return rc;
    }
    PQsetNoticeProcessor(c, quiet, NULL); /* a library never prints */
    char *q = PQescapeIdentifier(c, s->schema, strlen(s->schema));
    char sql[300];
    snprintf(sql, sizeof sql, "SET search_path TO %s", q ? q : "outbox");
    PQfreemem(q);
    int rc = obx__pg_cmd(c, sql, err);
    if (rc) {
        PQfinish(c);
        return rc;
    }
    *out = c;
    return OBX_OK;
}

int obx__pg_connect(pg_store *s, PGconn **out, obx_error *err)
{
    PGconn *c;
    int rc = connect_raw(s, &c, err);
    if (rc)
        return rc;
    if ((rc = obx__pg_prepare_all(c, err)) != OBX_OK) {
        PQfinish(c);
        return rc;
    }
    *out = c;
    return OBX_OK;
}

int obx__pg_connect_raw(pg_store *s, PGconn **out, obx_error *err)
{
    return connect_raw(s, out, err);
}

int obx__pg_acquire(pg_store *s, pg_conn **out, obx_error *err)
{
    pthread_mutex_lock(&s->mu);
    pg_conn *pc = NULL;
    for (;;) {
        for (unsigned i = 0; i < s->n_pool && !pc; i++)
            if (!s->pool[i].busy)
                pc = &s->pool[i];
        if (pc)
            break;
        pthread_cond_wait(&s->cv_conn, &s->mu);
    }
    pc->busy = 1;
    pthread_mutex_unlock(&s->mu);
    if (pc->c && PQstatus(pc->c) != CONNECTION_OK) {
        PQfinish(pc->c);
        pc->c = NULL;
    }
    if (!pc->c) {
        int rc = obx__pg_connect(s, &pc->c, err);
        if (rc) {
            obx__pg_release(s, pc);
            return rc;
        }
    }
    *out = pc;
    return OBX_OK;
}

void obx__pg_release(pg_store *s, pg_conn *pc)
{
    /* A connection left inside a transaction (a failed COMMIT path) is dropped. */
    if (pc->c && (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) != PQTRANS_IDLE)) {
        PQfinish(pc->c);
        pc->c = NULL;
    }
    pthread_mutex_lock(&s->mu);
    pc->busy = 0;
    pthread_cond_signal(&s->cv_conn);
    pthread_mutex_unlock(&s->mu);
}

void obx__pg_describe(obx_store *h, char *buf, size_t n)
{
    pg_store *s = (pg_store *)h;
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname", "user"};
    size_t o = (size_t)snprintf(buf, n, "postgres");
    PQconninfoOption *opts = PQconninfoParse(s->dsn, NULL);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) /* in keep's order */
        for (PQconninfoOption *p = opts; p && p->keyword && o < n; p++)
            if (p->val && *p->val && strcmp(p->keyword, keep[i]) == 0)
                o += (size_t)snprintf(buf + o, n - o, " %s=%s", p->keyword, p->val);
    PQconninfoFree(opts);
    if (o < n)
        snprintf(buf + o, n - o, " schema=%s", s->schema ? s->schema : "outbox");
}

void obx__pg_pool_get(obx_store *h, obx_pool *out)
{
    pg_store *s = (pg_store *)h;
    pthread_mutex_lock(&s->mu);
    out->size = s->n_pool;
    for (unsigned i = 0; i < s->n_pool; i++) {
        if (s->pool[i].busy)
            out->busy++;
        else if (s->pool[i].c)
            out->idle++;
        else
            out->unopened++;
    }
    pthread_mutex_unlock(&s->mu);
}
