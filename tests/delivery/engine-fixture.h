/*
 * engine-fixture.h - helpers shared by the delivery engine tests and benchmark: a store
 * in a temp directory (or, when OUTBOX_PG_DSN is set, a PostgreSQL store in a schema of
 * its own), a test receiver, a sink config pointing at it, and waits on delivery state
 * with bounded timeouts.
 */
#ifndef OUTBOX_TESTS_ENGINE_FIXTURE_H
#define OUTBOX_TESTS_ENGINE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery/engine.h"
#include "delivery/sink.h"
#include "outbox/outbox.h"
#include "pgtest.h" /* tests/pg: the DSN, admin SQL, store options */
#include "test-receiver.h"
#include "testutil.h" /* tests/store: tmpdir_new, rm_rf */

/* The one choice of backend: PostgreSQL when OUTBOX_PG_DSN is set (tests/pg/pgharness.py
 * sets it for the pg suite's runs of these tests), LMDB otherwise. */
static inline int fx_on_pg(void)
{
    const char *d = getenv("OUTBOX_PG_DSN");
    return d && *d;
}

/* On PostgreSQL the store behind temp dir `dir` is the schema named after the dir
 * ("fx_" and its basename, '-' as '_'), so every handle on `dir` - a reopen, a child
 * process - finds the same store, and no two live dirs share one. */
static inline void fx_pg_schema(const char *dir, char out[64])
{
    const char *base = strrchr(dir, '/');
    snprintf(out, 64, "fx_%s", base ? base + 1 : dir);
    for (char *p = out; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* Open the store behind `dir` with open flags `flags` (OBX_OPEN_OWNER: the engine's). */
static inline obx_store *fx_open_store_flags(const char *dir, unsigned flags)
{
    obx_options o;
    char schema[64];
    if (fx_on_pg()) {
        fx_pg_schema(dir, schema);
        pgtest_options(&o, schema, flags);
        /* a node killed in a crash test gives its deliveries up within 2 s */
        o.pg_lease_ms = 2000;
    } else {
        obx_options_init(&o);
        o.flags = flags;
        o.max_size = 1ull << 30;
    }
    obx_store *s = NULL;
    obx_error err;
    if (obx_open(fx_on_pg() ? NULL : dir, &o, &s, &err) != OBX_OK) {
        fprintf(stderr, "obx_open %s: %s\n", fx_on_pg() ? schema : dir, err.msg);
        return NULL;
    }
    return s;
}

static inline obx_store *fx_open_store(const char *dir)
{
    return fx_open_store_flags(dir, OBX_OPEN_OWNER);
}

/* Remove the store behind `dir` (closed by then) and the dir; frees `dir`. */
static inline void fx_remove_store(char *dir)
{
    if (!dir)
        return;
    if (fx_on_pg()) {
        char schema[64], sql[128];
        fx_pg_schema(dir, schema);
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
        pgtest_sql(sql);
    }
    rm_rf(dir);
    free(dir);
}

/* A 271-byte Flipt audit event, the shape outboxd ingests (README, outboxd). */
static const char FX_BODY[] =
    "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"metadata\":{\"actor\":{"
    "\"authentication\":\"none\",\"ip\":\"127.0.0.1\"}},\"payload\":{\"description\":\"\","
    "\"enabled\":true,\"key\":\"my-flag\",\"name\":\"My Flag\",\"namespace_key\":\"default\"},"
    "\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}";

/* A store and receiver in a fresh temp dir (the engine is the test's). */
typedef struct fx_base {
    char *dir;
    obx_store *st;
    trx *rx;
} fx_base;

/* 0 on success; prints why not. */
static inline int fx_base_open(fx_base *b, const char *tag)
{
    char err[256] = "";
    b->dir = tmpdir_new(tag);
    b->st = b->dir ? fx_open_store(b->dir) : NULL;
    if (!b->st || trx_start(NULL, &b->rx, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: %s\n", err);
        return -1;
    }
    return 0;
}

static inline void fx_base_close(fx_base *b)
{
    obx_close(b->st);
    trx_stop(b->rx);
    fx_remove_store(b->dir);
    memset(b, 0, sizeof *b);
}

/* A URL-mode sink named `name` posting to `url`, with small test-friendly backoff. */
static inline void fx_sink(dlv_sink_config *c, const char *name, const char *url)
{
    dlv_sink_config_init(c);
    c->name = strdup(name);
    c->url = strdup(url);
    c->backoff.initial_interval_ms = 50;
    c->backoff.multiplier = 1.0;
    c->backoff.randomization_factor = 0;
    c->backoff.max_interval_ms = 50;
    c->backoff.max_elapsed_ms = 1000;
}

/* Enqueue one event with `body` to sink `sink_id`; returns its id (0 on failure). */
static inline uint64_t fx_enqueue(obx_store *s, uint32_t sink_id, const char *body)
{
    obx_event_in ev = {"flag", "created", body, strlen(body), 0, &sink_id, 1};
    uint64_t id = 0;
    obx_error err;
    if (obx_enqueue(s, &ev, 1, &id, &err) != OBX_OK) {
        fprintf(stderr, "obx_enqueue: %s\n", err.msg);
        return 0;
    }
    return id;
}

static inline void fx_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Wait until the delivery (id, sink) reaches `state` (and is not in flight); copies it
 * into *out (caller clears with obx_delivery_clear). 1 if reached within timeout_ms.
 */
static inline int fx_wait_state(obx_store *s, uint64_t id, uint32_t sink, int state,
                                unsigned timeout_ms, obx_delivery *out)
{
    int64_t end = trx_mono_ms() + timeout_ms;
    for (;;) {
        obx_event *ev = NULL;
        obx_error err;
        int found = 0;
        if (obx_event_get(s, id, &ev, &err) == OBX_OK) {
            for (size_t i = 0; i < ev->n_deliveries; i++) {
                obx_delivery *d = &ev->deliveries[i];
                if (d->sink_id == sink && d->state == state) {
                    found = 1;
                    if (out) {
                        *out = *d;
                        /* steal the strings and history */
                        memset(d, 0, sizeof *d);
                    }
                }
            }
            obx_event_free(ev);
        }
        if (found)
            return 1;
        if (trx_mono_ms() >= end)
            return 0;
        fx_sleep_ms(10);
    }
}

#endif
