/*
 * pgtest.h - helpers for tests that run against the PostgreSQL backend: the server's DSN
 * from the environment (set by tests/pg/pgharness.py, which starts and stops the server),
 * a fresh schema per test, admin SQL over libpq, and store options for that schema.
 */
#ifndef OUTBOX_PGTEST_H
#define OUTBOX_PGTEST_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox/outbox.h"

/* The DSN of the harness's primary; exits 1 (a failure, never a skip) when unset. */
static inline const char *pgtest_dsn(void)
{
    const char *d = getenv("OUTBOX_PG_DSN");
    if (!d || !*d) {
        fprintf(stderr, "OUTBOX_PG_DSN is not set: run this test through "
                        "tests/pg/pgharness.py run -- ...\n");
        exit(1);
    }
    return d;
}

/* A schema name no other test uses: "t_<pid>_<n>". */
static inline void pgtest_schema(char out[64])
{
    static int n;
    snprintf(out, 64, "t_%ld_%d", (long)getpid(), ++n);
}

/* Run admin SQL on the primary; returns the first value of the first row (static
 * buffer, "" when none) or NULL on failure (message on stderr). */
static inline const char *pgtest_sql(const char *sql)
{
    static char val[256];
    PGconn *c = PQconnectdb(pgtest_dsn());
    const char *ret = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            snprintf(val, sizeof val, "%s",
                     st == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
            ret = val;
        } else {
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        }
        PQclear(r);
    } else {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ret;
}

/* Options for the PostgreSQL backend on `schema` (flags added by the caller). */
static inline void pgtest_options(obx_options *o, const char *schema, unsigned flags)
{
    obx_options_init(o);
    o->backend = OBX_BACKEND_POSTGRES;
    o->pg_dsn = pgtest_dsn();
    o->pg_schema = schema;
    o->pg_pool = 4;
    o->flags = flags;
}

#endif
