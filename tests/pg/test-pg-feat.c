/*
 * test-pg-feat.c - what the PostgreSQL backend does that the LMDB store did first, on the
 * server tests/pg/pgharness.py runs (OUTBOX_PG_DSN), each test in a schema of its own:
 * idempotency keys (replay with the first ids and note, conflict on another hash, one key
 * twice in one batch, a known key answered by a full store, two nodes racing for the same
 * keys: one stores, the other replays or conflicts, expiry and sweep, stats and check),
 * persisted sink health (pause seen by another node's cache and by outboxctl's kind of
 * handle, held time, down set once by two nodes, survives a reopen), retire (dead-letter,
 * purge, dry run, slot reuse, refusal while a node holds a live lease), and the migration
 * of a version 1 database.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgfixture.h"

static obx_stats *stats(obx_store *s)
{
    obx_stats *st = NULL;
    obx_error err = {0};
    if (obx_stats_get(s, &st, &err) != OBX_OK)
        fail_msg("stats: %s", err.msg);
    return st;
}

static uint64_t events_stored(obx_store *s)
{
    obx_stats *st = stats(s);
    uint64_t n = st->events;
    obx_stats_free(st);
    return n;
}

static uint64_t keys_stored(obx_store *s)
{
    obx_stats *st = stats(s);
    uint64_t n = st->idem_keys;
    obx_stats_free(st);
    return n;
}

static obx_idem key_of(const char *key, unsigned char tag, int64_t expires, const char *note)
{
    obx_idem k = {.key = key, .expires_ms = expires, .note = note, .note_len = strlen(note)};
    memset(k.hash, tag, sizeof k.hash);
    return k;
}

/* A key stored with its events; the same request again replays the ids and the note and
 * stores nothing; another request with that key is a conflict and stores nothing. */
static void test_idem_replay_and_conflict(void **state)
{
    fixture *f = *state;
    obx_event_in ev[2] = {{"flag", "created", "{\"a\":1}", 7, 0, &f->sink, 1},
                          {"flag", "updated", "{\"a\":2}", 7, 0, &f->sink, 1}};
    obx_idem k = key_of("order-1", 1, obx_now_ms() + 60000, "note-1");
    uint64_t ids[2] = {0, 0}, again[2] = {0, 0};
    obx_idem_result res;
    obx_error err = {0};
    assert_int_equal(obx_enqueue_idem(f->s, ev, 2, &k, ids, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 0);
    assert_true(ids[0] > 0 && ids[1] == ids[0] + 1);
    assert_int_equal(keys_stored(f->s), 1);

    int64_t before = obx_now_ms();
    assert_int_equal(obx_enqueue_idem(f->s, ev, 2, &k, again, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.n_ids, 2);
    assert_int_equal(res.ids[0], ids[0]);
    assert_int_equal(res.ids[1], ids[1]);
    assert_int_equal(res.note_len, 6);
    assert_memory_equal(res.note, "note-1", 6);
    assert_true(res.created_ms <= before && res.created_ms > 0);
    assert_int_equal(again[0], 0); /* untouched */
    obx_idem_result_clear(&res);

    obx_idem other = key_of("order-1", 2, obx_now_ms() + 60000, "");
    assert_int_equal(obx_enqueue_idem(f->s, ev, 1, &other, again, &res, &err), OBX_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "'order-1' was already used with a different request"));
    assert_int_equal(res.replayed, 0);
    assert_int_equal(events_stored(f->s), 2);
    assert_int_equal(sink_stats(f->s, f->sink).pending, 2);
    assert_int_equal(keys_stored(f->s), 1);

    obx_idem bad = key_of("", 1, obx_now_ms() + 60000, ""); /* checked before queueing */
    assert_int_equal(obx_enqueue_idem(f->s, ev, 1, &bad, again, &res, &err), OBX_ERR_INVALID);
    assert_check_clean(f->s);
}

/* One batch: plain, key A, key A again (replays A's ids), key A with another hash
 * (conflict), key B with no events (stored, replays no ids), an invalid request. */
static void test_idem_in_one_batch(void **state)
{
    fixture *f = *state;
    obx_event_in a = {"flag", "created", "{\"a\":1}", 7, 0, &f->sink, 1};
    obx_event_in bad = {"flag", NULL, "{}", 2, 0, &f->sink, 1};
    int64_t exp = obx_now_ms() + 60000;
    obx_idem ka = key_of("A", 1, exp, "na"), ka2 = key_of("A", 2, exp, "x"),
             kb = key_of("B", 3, exp, "nb");
    uint64_t id0 = 0, ida = 0, ida2 = 0, ida3 = 0, idx = 0;
    obx_enqueue_req r[6] = {{.events = &a, .n = 1, .ids = &id0},
                            {.events = &a, .n = 1, .idem = &ka, .ids = &ida},
                            {.events = &a, .n = 1, .idem = &ka, .ids = &ida2},
                            {.events = &a, .n = 1, .idem = &ka2, .ids = &ida3},
                            {.events = NULL, .n = 0, .idem = &kb, .ids = NULL},
                            {.events = &bad, .n = 1, .ids = &idx}};
    assert_int_equal(obx_enqueue_batch(f->s, r, 6), OBX_OK);
    assert_int_equal(r[0].rc, OBX_OK);
    assert_int_equal(r[1].rc, OBX_OK);
    assert_int_equal(r[1].res.replayed, 0);
    assert_true(ida > 0 && ida != id0);
    assert_int_equal(r[2].rc, OBX_OK);
    assert_int_equal(r[2].res.replayed, 1);
    assert_int_equal(r[2].res.n_ids, 1);
    assert_int_equal(r[2].res.ids[0], ida);
    assert_memory_equal(r[2].res.note, "na", 2);
    assert_int_equal(ida2, 0);
    assert_int_equal(r[3].rc, OBX_ERR_CONFLICT);
    assert_int_equal(r[4].rc, OBX_OK);
    assert_int_equal(r[4].res.replayed, 0);
    assert_int_equal(r[5].rc, OBX_ERR_INVALID);
    for (int i = 0; i < 6; i++)
        obx_idem_result_clear(&r[i].res);
    assert_int_equal(events_stored(f->s), 2);
    assert_int_equal(keys_stored(f->s), 2);

    obx_idem_result res;
    obx_error err = {0};
    assert_int_equal(obx_enqueue_idem(f->s, NULL, 0, &kb, NULL, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.n_ids, 0);
    assert_memory_equal(res.note, "nb", 2);
    obx_idem_result_clear(&res);
    assert_check_clean(f->s);
}

/* Two nodes (two owner handles on one schema) racing through the same keys. */
typedef struct racer {
    obx_store *s;
    uint32_t sink;
    unsigned char tag; /* hash byte: equal tags = the same request */
    int n;
    uint64_t *ids; /* per key: the id this node stored or was given back */
    int stored, replayed, conflicts, errors;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < r->n; i++) {
        char key[32], body[32];
        snprintf(key, sizeof key, "race-%d", i);
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        obx_event_in e = {"flag", "created", body, strlen(body), 0, &r->sink, 1};
        obx_idem k = key_of(key, r->tag, obx_now_ms() + 60000, "");
        obx_idem_result res;
        obx_error err = {0};
        uint64_t id = 0;
        int rc = obx_enqueue_idem(r->s, &e, 1, &k, &id, &res, &err);
        if (rc == OBX_ERR_CONFLICT) {
            r->conflicts++;
        } else if (rc != OBX_OK) {
            fprintf(stderr, "race %s: %s\n", key, err.msg);
            r->errors++;
        } else if (res.replayed) {
            r->replayed++;
            r->ids[i] = res.n_ids == 1 ? res.ids[0] : 0;
        } else {
            r->stored++;
            r->ids[i] = id;
        }
        obx_idem_result_clear(&res);
    }
    return NULL;
}

/* Node a (the fixture's handle) and node b post the same 150 keys at once; b's requests
 * equal a's (same_request) or differ. Each key is stored exactly once; the other node's
 * request replays the winner's id, or is a conflict. */
static void race_two_nodes(fixture *f, int same_request)
{
    enum { N = 150 };
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    uint32_t sink_b;
    assert_int_equal(obx_sink_id(b, "webhook", &sink_b, NULL), OBX_OK);
    assert_int_equal(sink_b, f->sink);
    racer r[2] = {
        {.s = f->s, .sink = f->sink, .tag = 7, .n = N, .ids = calloc(N, 8)},
        {.s = b, .sink = sink_b, .tag = same_request ? 7 : 8, .n = N, .ids = calloc(N, 8)}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    obx_close(b);
    assert_int_equal(r[0].errors + r[1].errors, 0);
    assert_int_equal(r[0].stored + r[1].stored, N);
    assert_int_equal(r[0].replayed + r[1].replayed, same_request ? N : 0);
    assert_int_equal(r[0].conflicts + r[1].conflicts, same_request ? 0 : N);
    for (int i = 0; i < N && same_request; i++) {
        assert_true(r[0].ids[i] > 0);
        assert_int_equal(r[0].ids[i], r[1].ids[i]);
    }
    assert_int_equal(events_stored(f->s), N);
    assert_int_equal(keys_stored(f->s), N);
    fprintf(stderr, "two nodes, %s requests: node a stored %d, node b stored %d\n",
            same_request ? "same" : "different", r[0].stored, r[1].stored);
    free(r[0].ids);
    free(r[1].ids);
    assert_check_clean(f->s);
}

static void test_idem_two_nodes_same_request(void **state)
{
    race_two_nodes(*state, 1);
}

static void test_idem_two_nodes_different_request(void **state)
{
    race_two_nodes(*state, 0);
}

/* An expired key is new again (its row overwritten, the count unchanged); the sweep
 * forgets expired keys only, at most max per call. */
static void test_idem_expiry_and_sweep(void **state)
{
    fixture *f = *state;
    obx_event_in e = {"flag", "created", "{}", 2, 0, &f->sink, 1};
    int64_t now = obx_now_ms();
    obx_idem gone = key_of("gone", 1, now - 1, ""), live = key_of("live", 1, now + 600000, "");
    obx_idem_result res;
    obx_error err = {0};
    uint64_t id1 = 0, id2 = 0;
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &gone, &id1, &res, &err), OBX_OK);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &gone, &id2, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 0); /* expired: stored again */
    assert_true(id2 > id1);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &live, &id1, &res, &err), OBX_OK);
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "old-%d", i);
        obx_idem old = key_of(k, 1, now - 10 - i, "");
        assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &old, &id1, &res, &err), OBX_OK);
    }
    assert_int_equal(keys_stored(f->s), 5);
    size_t removed = 0;
    assert_int_equal(obx_idem_sweep(f->s, obx_now_ms(), 2, &removed, &err), OBX_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(obx_idem_sweep(f->s, obx_now_ms(), 0, &removed, &err), OBX_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(obx_idem_sweep(f->s, obx_now_ms(), 0, &removed, &err), OBX_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(keys_stored(f->s), 1);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &live, &id2, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1); /* the unexpired one stays */
    obx_idem_result_clear(&res);
    assert_check_clean(f->s);
}

/* The caches of running nodes follow the table within a bounded wait (NOTIFY). */
static int wait_state(obx_store *s, uint32_t id, int down, int paused)
{
    for (int i = 0; i < 1000; i++) {
        obx_sink_state st;
        if (obx_sink_state_get(s, id, &st, NULL) == OBX_OK && st.down == down &&
            st.paused == paused)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Pause on one node is seen by another node and a read-only handle; down set by two nodes
 * is one transition; held time accrues and survives reopening; resume. */
static void test_sink_state_shared(void **state)
{
    fixture *f = *state;
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    obx_store *ro = open_pg(f->schema, OBX_OPEN_READONLY);
    obx_sink_state st;
    obx_error err = {0};
    int changed = -1;
    assert_int_equal(obx_sink_state_get(b, f->sink, &st, &err), OBX_OK);
    assert_int_equal(st.changes, 0);
    assert_int_equal(
        obx_sink_state_set(ro, f->sink, OBX_SINK_PAUSED, 1, 1000, "x", NULL, &st, &changed, &err),
        OBX_ERR_STATE);

    /* outboxctl's way: a handle that is not the owner */
    obx_store *ctl = open_pg(f->schema, 0);
    assert_int_equal(obx_sink_state_set(ctl, f->sink, OBX_SINK_PAUSED, 1, 1000, "paused by test",
                                        NULL, &st, &changed, &err),
                     OBX_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(st.paused, 1);
    assert_int_equal(st.held_since_ms, 1000);
    obx_close(ctl);
    assert_true(wait_state(f->s, f->sink, 0, 1));
    assert_true(wait_state(b, f->sink, 0, 1));
    assert_true(wait_state(ro, f->sink, 0, 1));

    /* the breaker opens on both nodes: stored once */
    assert_int_equal(obx_sink_state_set(f->s, f->sink, OBX_SINK_DOWN, 1, 2000, "3 failed",
                                        "status 503", &st, &changed, &err),
                     OBX_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(obx_sink_state_set(b, f->sink, OBX_SINK_DOWN, 1, 2100, "3 failed too",
                                        "status 500", &st, &changed, &err),
                     OBX_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(st.down_since_ms, 2000);
    assert_string_equal(st.last_error, "status 503");
    assert_int_equal(st.changes, 2);
    assert_true(wait_state(b, f->sink, 1, 1));

    /* resume, then a probe on node b brings it up: held 1000..5000 */
    assert_int_equal(obx_sink_state_set(b, f->sink, OBX_SINK_PAUSED, 0, 3000, "resumed", NULL, &st,
                                        &changed, &err),
                     OBX_OK);
    assert_int_equal(obx_sink_state_set(b, f->sink, OBX_SINK_DOWN, 0, 5000, "probe delivered", NULL,
                                        &st, &changed, &err),
                     OBX_OK);
    assert_int_equal(st.held_ms, 4000);
    assert_int_equal(st.held_since_ms, 0);
    assert_true(wait_state(f->s, f->sink, 0, 0));
    obx_close(b);
    obx_close(ro);

    /* survives: a new node reads it from the table */
    obx_close(f->s);
    f->s = open_pg(f->schema, OBX_OPEN_OWNER);
    assert_int_equal(obx_sink_state_get(f->s, f->sink, &st, &err), OBX_OK);
    assert_int_equal(st.held_ms, 4000);
    assert_int_equal(st.changes, 4);
    assert_string_equal(st.why, "probe delivered");
    assert_int_equal(obx_sink_held_ms(&st, 9000), 4000);

    assert_int_equal(
        obx_sink_state_set(f->s, 999, OBX_SINK_PAUSED, 1, 1, "", NULL, &st, NULL, &err),
        OBX_ERR_INVALID); /* no such sink registered */
    assert_int_equal(obx_sink_state_get(f->s, 0, &st, &err), OBX_ERR_INVALID);
}

static void enqueue_n(obx_store *s, const uint32_t *sinks, size_t n_sinks, int n)
{
    for (int i = 0; i < n; i++) {
        obx_event_in e = {"flag", "created", "{}", 2, 0, sinks, n_sinks};
        uint64_t id;
        obx_error err = {0};
        if (obx_enqueue(s, &e, 1, &id, &err) != OBX_OK)
            fail_msg("enqueue: %s", err.msg);
    }
}

static size_t claim(obx_store *s, uint32_t sink, size_t max, obx_job **jobs)
{
    size_t n = 0;
    int64_t next;
    obx_error err = {0};
    if (obx_claim_due(s, sink, obx_now_ms() + 1000, max, jobs, &n, &next, &err) != OBX_OK)
        fail_msg("claim: %s", err.msg);
    return n;
}

/* Retire: refused while a node holds a live lease; dry run; dead-letter keeps the slot;
 * purge removes everything of the sink (events shared with another sink stay) and frees
 * the slot, which the next sink registered takes. */
static void test_retire(void **state)
{
    fixture *f = *state;
    uint32_t other, both[2];
    assert_int_equal(obx_sink_id(f->s, "other", &other, NULL), OBX_OK);
    both[0] = f->sink;
    both[1] = other;
    enqueue_n(f->s, &f->sink, 1, 600); /* more than one page */
    enqueue_n(f->s, both, 2, 3);
    obx_store *node = open_pg(f->schema, OBX_OPEN_OWNER); /* a node delivering to it */
    obx_job *jobs = NULL;
    assert_int_equal(claim(node, f->sink, 2, &jobs), 2);
    obx_jobs_free(jobs, 2);
    obx_retire_counts c;
    obx_error err = {0};
    assert_int_equal(obx_sink_retire(f->s, f->sink, OBX_RETIRE_DEAD_LETTER, 0, &c, &err),
                     OBX_ERR_STATE);
    assert_non_null(strstr(err.msg, "2 deliveries of sink"));
    assert_int_equal(sink_stats(f->s, f->sink).pending, 601);

    /* the node dies: nothing renews its leases, which expire (moved into the past here
     * rather than waiting for them) */
    obx_close(node);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SET search_path TO %s; UPDATE deliveries SET lease_until_ms = 1 WHERE state = 2",
             f->schema);
    assert_non_null(pgtest_sql(sql));
    assert_int_equal(obx_sink_retire(f->s, f->sink, OBX_RETIRE_DEAD_LETTER, 1, &c, &err), OBX_OK);
    assert_int_equal(c.pending, 601);
    assert_int_equal(c.inflight, 2);
    assert_int_equal(sink_stats(f->s, f->sink).pending, 601); /* dry run: nothing changed */

    assert_int_equal(obx_sink_retire(f->s, f->sink, OBX_RETIRE_DEAD_LETTER, 0, &c, &err), OBX_OK);
    assert_int_equal(c.pending, 601);
    assert_int_equal(c.inflight, 2);
    assert_int_equal(c.slot_freed, 0);
    obx_sink_stats ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending + ss.inflight, 0);
    assert_int_equal(ss.dead, 603);
    assert_check_clean(f->s);

    assert_int_equal(obx_sink_retire(f->s, f->sink, OBX_RETIRE_PURGE, 1, &c, &err), OBX_OK);
    assert_int_equal(c.dead, 603);
    assert_int_equal(c.events, 600);
    assert_int_equal(c.slot_freed, 1);
    assert_int_equal(obx_sink_retire(f->s, f->sink, OBX_RETIRE_PURGE, 0, &c, &err), OBX_OK);
    assert_int_equal(c.dead, 603);
    assert_int_equal(c.events, 600);
    assert_int_equal(c.slot_freed, 1);
    assert_int_equal(events_stored(f->s), 3); /* the shared ones, for "other" */
    assert_int_equal(sink_stats(f->s, other).pending, 3);
    uint32_t id;
    assert_int_equal(obx_sink_find(f->s, "webhook", &id, &err), OBX_ERR_NOTFOUND);
    assert_int_equal(obx_sink_id(f->s, "newcomer", &id, &err), OBX_OK);
    assert_int_equal(id, f->sink); /* the freed slot, reused */
    assert_int_equal(sink_stats(f->s, id).dead, 0);
    assert_int_equal(obx_sink_retire(f->s, id, 3, 0, &c, &err), OBX_ERR_INVALID);
    assert_check_clean(f->s);
}

/* A full store still answers a known key (replay or conflict) and refuses a new one, as
 * the LMDB store does: a replay stores nothing. */
static void test_idem_replay_when_full(void **state)
{
    fixture *f = *state;
    obx_event_in e = {"flag", "created", "{}", 2, 0, &f->sink, 1};
    obx_idem k = key_of("known", 1, obx_now_ms() + 60000, "n"), k2 = key_of("known", 2, 0, "");
    obx_idem fresh = key_of("fresh", 1, obx_now_ms() + 60000, "");
    k2.expires_ms = k.expires_ms;
    uint64_t id = 0, id2 = 0;
    obx_idem_result res;
    obx_error err = {0};
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &k, &id, &res, &err), OBX_OK);
    obx_close(f->s);
    obx_options o;
    pgtest_options(&o, f->schema, OBX_OPEN_OWNER);
    o.max_size = 1u << 20;
    o.high_water_pct = 1; /* ~10 KiB: the schema's empty tables exceed it */
    f->s = NULL;
    assert_int_equal(obx_open(NULL, &o, &f->s, &err), OBX_OK);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &fresh, &id2, &res, &err), OBX_ERR_FULL);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &k, &id2, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.n_ids, 1);
    assert_int_equal(res.ids[0], id);
    obx_idem_result_clear(&res);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &k2, &id2, &res, &err), OBX_ERR_CONFLICT);
    assert_int_equal(events_stored(f->s), 1);
    assert_int_equal(keys_stored(f->s), 1);
}

/* A version 1 database (before keys and health): a read-only handle refuses it naming
 * both versions; the first owner migrates it (once, under the advisory lock) and keys and
 * health work on it; a second owner finds it migrated. */
static void test_migrate_from_v1(void **state)
{
    fixture *f = *state;
    obx_event_in e = {"flag", "created", "{}", 2, 0, &f->sink, 1};
    uint64_t id = 0;
    obx_error err = {0};
    assert_int_equal(obx_enqueue(f->s, &e, 1, &id, &err), OBX_OK);
    obx_close(f->s);
    f->s = NULL;
    char sql[400];
    snprintf(sql, sizeof sql,
             "SET search_path TO %s; DROP TABLE idem_keys, sink_state;"
             " DROP FUNCTION count_idem(); DELETE FROM counters WHERE kind = 12;"
             " DELETE FROM schema_version WHERE version = 2",
             f->schema);
    assert_non_null(pgtest_sql(sql));
    obx_options o;
    pgtest_options(&o, f->schema, OBX_OPEN_READONLY);
    obx_store *ro = NULL;
    assert_int_equal(obx_open(NULL, &o, &ro, &err), OBX_ERR_VERSION);
    assert_null(ro);
    assert_non_null(strstr(err.msg, "version 1, older than this build's 2"));

    f->s = open_pg(f->schema, OBX_OPEN_OWNER);
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(version::text, ',' ORDER BY version) FROM %s.schema_version",
             f->schema);
    assert_string_equal(pgtest_sql(sql), "1,2");
    obx_idem k = key_of("after-migration", 1, obx_now_ms() + 60000, "");
    obx_idem_result res;
    assert_int_equal(obx_enqueue_idem(b, &e, 1, &k, &id, &res, &err), OBX_OK);
    assert_int_equal(obx_enqueue_idem(f->s, &e, 1, &k, &id, &res, &err), OBX_OK);
    assert_int_equal(res.replayed, 1);
    obx_idem_result_clear(&res);
    assert_int_equal(
        obx_sink_state_set(f->s, f->sink, OBX_SINK_PAUSED, 1, 5, "p", NULL, NULL, NULL, &err),
        OBX_OK);
    obx_close(b);
    assert_int_equal(events_stored(f->s), 2);
    assert_int_equal(keys_stored(f->s), 1);
    assert_check_clean(f->s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idem_replay_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_in_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_two_nodes_same_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_two_nodes_different_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_expiry_and_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_replay_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_state_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
