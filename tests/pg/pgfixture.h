/*
 * pgfixture.h - the cmocka fixture of the store API tests on PostgreSQL (test-pg.c,
 * test-pg-feat.c): an owner handle on a fresh schema with one sink "webhook", dropped
 * afterwards; opening more handles on that schema; a sink's stats; `check` finding
 * nothing. Include after cmocka.h.
 */
#ifndef OUTBOX_PGFIXTURE_H
#define OUTBOX_PGFIXTURE_H

#include "pgtest.h"

typedef struct fixture {
    char schema[64];
    obx_store *s;
    uint32_t sink;
} fixture;

static inline obx_store *open_pg(const char *schema, unsigned flags)
{
    obx_options o;
    pgtest_options(&o, schema, flags);
    obx_store *s = NULL;
    obx_error err = {0};
    if (obx_open(NULL, &o, &s, &err) != OBX_OK)
        fail_msg("open postgres store %s: %s", schema, err.msg);
    return s;
}

static inline int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    pgtest_schema(f->schema);
    f->s = open_pg(f->schema, OBX_OPEN_OWNER);
    assert_int_equal(obx_sink_id(f->s, "webhook", &f->sink, NULL), OBX_OK);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture *f = *state;
    obx_close(f->s);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    pgtest_sql(sql);
    free(f);
    return 0;
}

static inline obx_sink_stats sink_stats(obx_store *s, uint32_t sink)
{
    obx_stats *st = NULL;
    obx_error err = {0};
    if (obx_stats_get(s, &st, &err) != OBX_OK)
        fail_msg("stats: %s", err.msg);
    obx_sink_stats out = {0};
    for (size_t i = 0; i < st->n_sinks; i++)
        if (st->sinks[i].id == sink)
            out = st->sinks[i];
    obx_stats_free(st);
    return out;
}

static inline void problem(void *ud, const char *p)
{
    (void)ud;
    fprintf(stderr, "check: %s\n", p);
}

static inline void assert_check_clean(obx_store *s)
{
    size_t problems = 99;
    obx_error err = {0};
    if (obx_check(s, problem, NULL, &problems, &err) != OBX_OK)
        fail_msg("check: %s", err.msg);
    assert_int_equal(problems, 0);
}

#endif
