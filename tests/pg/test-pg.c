/*
 * test-pg.c - the store API against the PostgreSQL backend, on the server that
 * tests/pg/pgharness.py runs (OUTBOX_PG_DSN): claim and results (every outcome and a lost
 * lease in one call, each row its own result), replay and purge (single
 * and bulk), listings, stats counters, retention, lease expiry (a node that stopped
 * renewing loses its deliveries to another, in doubt), captured responses kept byte-exact,
 * a claim held by a limit or an ordered head tells when to ask again (not "now"),
 * two handles claiming at once never get the same delivery, the synchronous_commit refusal
 * and the schema-version refusal.
 * Each test works in a schema of its own.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgfixture.h"

static uint64_t enqueue1(obx_store *s, const char *body, const uint32_t *sinks, size_t n)
{
    obx_event_in e = {"flag", "created", body, strlen(body), 0, sinks, n};
    uint64_t id = 0;
    obx_error err = {0};
    if (obx_enqueue(s, &e, 1, &id, &err) != OBX_OK)
        fail_msg("enqueue: %s", err.msg);
    return id;
}

static obx_result result(const obx_job *j, int outcome, int status)
{
    int64_t now = obx_now_ms();
    obx_result r = {.event_id = j->event_id,
                    .sink_id = j->sink_id,
                    .outcome = outcome,
                    .started_ms = now,
                    .duration_ms = 3,
                    .status = status,
                    .first_attempt_ms = j->first_attempt_ms ? j->first_attempt_ms : now,
                    .deadline_ms = now + 15000,
                    .next_attempt_ms = now + 60000,
                    .reason = outcome == OBX_OUTCOME_DEAD ? "gave up: 500" : NULL,
                    .error = status ? NULL : "connection refused"};
    return r;
}

static void test_enqueue_claim_record(void **state)
{
    fixture *f = *state;
    uint32_t other;
    assert_int_equal(obx_sink_id(f->s, "other", &other, NULL), OBX_OK);
    assert_int_not_equal(other, f->sink);
    uint32_t both[] = {f->sink, other};
    uint64_t a = enqueue1(f->s, "{\"a\":1}", both, 2);
    uint64_t b = enqueue1(f->s, "{\"b\":2}", &f->sink, 1);
    uint64_t c = enqueue1(f->s, "{\"c\":3}", &f->sink, 1);
    assert_true(a < b && b < c);
    obx_sink_stats ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending, 3);
    assert_true(ss.oldest_pending_ms > 0);

    obx_job *jobs;
    size_t n;
    int64_t next;
    obx_error err = {0};
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), 2, &jobs, &n, &next, &err), OBX_OK);
    assert_int_equal(n, 2);
    assert_int_equal(jobs[0].event_id, a); /* oldest due first */
    assert_int_equal(jobs[1].event_id, b);
    assert_memory_equal(jobs[0].body, "{\"a\":1}", 7);
    assert_int_equal(jobs[0].body_len, 7);
    assert_string_equal(jobs[0].type, "flag");
    assert_true(strncmp(jobs[0].webhook_id, "evt_", 4) == 0);
    ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending, 1);
    assert_int_equal(ss.inflight, 2);

    /* a claim never returns what is in flight */
    obx_job *more;
    size_t nm;
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), 10, &more, &nm, NULL, NULL),
                     OBX_OK);
    assert_int_equal(nm, 1);
    assert_int_equal(more[0].event_id, c);

    obx_result rs[3] = {result(&jobs[0], OBX_OUTCOME_DELIVERED, 200),
                        result(&jobs[1], OBX_OUTCOME_RETRY, 0),
                        result(&more[0], OBX_OUTCOME_DEAD, 500)};
    assert_int_equal(obx_record(f->s, rs, 3, &err), OBX_OK);
    ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending, 1);
    assert_int_equal(ss.inflight, 0);
    assert_int_equal(ss.delivered, 1);
    assert_int_equal(ss.dead, 1);
    assert_true(ss.next_due_ms >= rs[1].next_attempt_ms);

    obx_event *ev;
    assert_int_equal(obx_event_get(f->s, c, &ev, &err), OBX_OK);
    assert_int_equal(ev->n_deliveries, 1);
    assert_int_equal(ev->deliveries[0].state, OBX_STATE_DEAD);
    assert_string_equal(ev->deliveries[0].reason, "gave up: 500");
    assert_int_equal(ev->deliveries[0].n_history, 1);
    assert_int_equal(ev->deliveries[0].history[0].status, 500);
    obx_event_free(ev);
    assert_int_equal(obx_event_get(f->s, b, &ev, &err), OBX_OK);
    assert_int_equal(ev->deliveries[0].state, OBX_STATE_PENDING);
    assert_string_equal(ev->deliveries[0].last_error, "connection refused");
    assert_int_equal(ev->deliveries[0].attempts, 1);
    obx_event_free(ev);
    assert_int_equal(obx_event_get(f->s, 999999, &ev, &err), OBX_ERR_NOTFOUND);

    /* the retried one is not due before its time; a record twice is skipped */
    obx_jobs_free(jobs, n);
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), 10, &jobs, &n, &next, NULL),
                     OBX_OK);
    assert_int_equal(n, 0);
    assert_true(next >= rs[1].next_attempt_ms);
    assert_int_equal(obx_record(f->s, rs, 1, &err), OBX_OK);
    assert_int_equal(sink_stats(f->s, f->sink).delivered, 1);
    obx_jobs_free(more, nm);
    assert_check_clean(f->s);
}

/* Bodies are stored byte-exact (NUL, high bytes, quotes, backslashes), and so are type and
 * action text with quotes and backslashes, also when several events share a batch. */
static void test_bytes_exact(void **state)
{
    fixture *f = *state;
    static const unsigned char body[] = {0, 255, '"', '\\', '\n', '{', 0x80, 0};
    obx_event_in evs[2] = {{"a\"b\\c", "x,{y}", body, sizeof body, 0, &f->sink, 1},
                           {"flag", "created", "", 0, 0, &f->sink, 1}};
    uint64_t ids[2];
    obx_error err = {0};
    assert_int_equal(obx_enqueue(f->s, evs, 2, ids, &err), OBX_OK);
    assert_int_equal(ids[1], ids[0] + 1);
    obx_event *ev;
    assert_int_equal(obx_event_get(f->s, ids[0], &ev, &err), OBX_OK);
    assert_int_equal(ev->body_len, sizeof body);
    assert_memory_equal(ev->body, body, sizeof body);
    assert_string_equal(ev->type, "a\"b\\c");
    assert_string_equal(ev->action, "x,{y}");
    obx_event_free(ev);
    assert_int_equal(obx_event_get(f->s, ids[1], &ev, &err), OBX_OK);
    assert_int_equal(ev->body_len, 0);
    obx_event_free(ev);
}

/* The response captured for an attempt is kept byte-exact (high bytes in a header value,
 * NUL and high bytes in the body) and cut to the OBX_CAPTURE_* bounds, as in the LMDB
 * store; an attempt without one keeps none. */
static void test_capture_kept(void **state)
{
    fixture *f = *state;
    uint64_t id = enqueue1(f->s, "{}", &f->sink, 1);
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), 1, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    char longv[OBX_CAPTURE_VALUE_MAX + 10];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    obx_header hs[OBX_CAPTURE_HEADERS_MAX + 2];
    for (size_t i = 0; i < OBX_CAPTURE_HEADERS_MAX + 2; i++)
        hs[i] = (obx_header){"X-N", longv};
    hs[0] = (obx_header){"Retry-After", "\xff\x80 \"\\"};
    static const unsigned char body[] = {0, 255, '"', '\\', 0x80, 'x'};
    obx_result rs[2] = {result(&jobs[0], OBX_OUTCOME_RETRY, 503),
                        result(&jobs[0], OBX_OUTCOME_DEAD, 500)};
    rs[0].next_attempt_ms = 0;
    rs[0].headers = hs;
    rs[0].n_headers = OBX_CAPTURE_HEADERS_MAX + 2;
    rs[0].body = body;
    rs[0].body_len = sizeof body;
    rs[0].body_size = 1000;
    assert_int_equal(obx_record(f->s, rs, 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), 1, &jobs, &n, NULL, NULL), OBX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(obx_record(f->s, &rs[1], 1, NULL), OBX_OK);
    obx_jobs_free(jobs, n);
    obx_event *ev;
    assert_int_equal(obx_event_get(f->s, id, &ev, NULL), OBX_OK);
    obx_delivery *d = &ev->deliveries[0];
    assert_int_equal(d->n_history, 2);
    const obx_attempt *a = &d->history[0];
    assert_int_equal(a->status, 503);
    assert_int_equal(a->n_headers, OBX_CAPTURE_HEADERS_MAX);
    assert_string_equal(a->headers[0].name, "Retry-After");
    assert_string_equal(a->headers[0].value, "\xff\x80 \"\\");
    assert_int_equal(strlen(a->headers[1].value), OBX_CAPTURE_VALUE_MAX);
    assert_int_equal(a->body_len, sizeof body);
    assert_memory_equal(a->body, body, sizeof body);
    assert_int_equal(a->body_size, 1000);
    assert_int_equal(d->history[1].n_headers, 0);
    assert_null(d->history[1].body);
    assert_int_equal(d->history[1].body_size, 0);
    obx_event_free(ev);
}

/* Claim `expect` due deliveries of the fixture's sink (and assert that many came), record
 * the same outcome for all; returns the first (oldest due) event id. */
static uint64_t settle_all(fixture *f, size_t expect, int outcome, int status)
{
    obx_job *jobs;
    size_t n;
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms(), expect, &jobs, &n, NULL, NULL),
                     OBX_OK);
    assert_int_equal(n, expect);
    obx_result rs[16];
    for (size_t i = 0; i < n; i++)
        rs[i] = result(&jobs[i], outcome, status);
    assert_int_equal(obx_record(f->s, rs, n, NULL), OBX_OK);
    uint64_t first = n ? jobs[0].event_id : 0;
    obx_jobs_free(jobs, n);
    return first;
}

static void dead_letter(fixture *f, uint64_t *id)
{
    enqueue1(f->s, "{}", &f->sink, 1);
    *id = settle_all(f, 1, OBX_OUTCOME_DEAD, 500); /* the oldest due one */
}

static void test_replay_and_purge(void **state)
{
    fixture *f = *state;
    uint64_t a, b, c;
    dead_letter(f, &a);
    dead_letter(f, &b);
    dead_letter(f, &c);
    uint64_t p = enqueue1(f->s, "{}", &f->sink, 1);
    size_t count = 0;
    obx_error err = {0};
    assert_int_equal(obx_replay(f->s, a, OBX_ALL_SINKS, 0, &count, &err), OBX_OK);
    assert_int_equal(count, 1);
    assert_int_equal(obx_replay(f->s, p, OBX_ALL_SINKS, 0, &count, &err), OBX_ERR_STATE);
    assert_non_null(strstr(err.msg, "pending"));
    assert_int_equal(obx_replay(f->s, 424242, OBX_ALL_SINKS, 0, &count, &err), OBX_ERR_NOTFOUND);
    assert_int_equal(obx_purge(f->s, b, f->sink, &count, &err), OBX_OK);
    assert_int_equal(count, 1);
    obx_event *ev;
    assert_int_equal(obx_event_get(f->s, b, &ev, NULL), OBX_ERR_NOTFOUND); /* event went too */

    obx_target t[3] = {{.event_id = c, .sink_id = OBX_ALL_SINKS},
                       {.event_id = p, .sink_id = OBX_ALL_SINKS},
                       {.event_id = 777777, .sink_id = OBX_ALL_SINKS}};
    assert_int_equal(obx_replay_many(f->s, t, 3, 0, &err), OBX_OK);
    assert_int_equal(t[0].rc, OBX_OK);
    assert_int_equal(t[0].count, 1);
    assert_int_equal(t[1].rc, OBX_ERR_STATE);
    assert_int_equal(t[2].rc, OBX_ERR_NOTFOUND);
    obx_sink_stats ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending, 3);
    assert_int_equal(ss.dead, 0);

    /* a replayed delivery has a fresh budget */
    assert_int_equal(obx_event_get(f->s, a, &ev, NULL), OBX_OK);
    assert_int_equal(ev->deliveries[0].attempts, 0);
    assert_int_equal(ev->deliveries[0].replays, 1);
    assert_null(ev->deliveries[0].reason);
    obx_event_free(ev);

    /* every pending one (a, c, p) dies; purge a of them in one call */
    settle_all(f, 3, OBX_OUTCOME_DEAD, 500);
    obx_target pt[3] = {{.event_id = a, .sink_id = f->sink},
                        {.event_id = p, .sink_id = OBX_ALL_SINKS},
                        {.event_id = 777777, .sink_id = OBX_ALL_SINKS}};
    assert_int_equal(obx_purge_many(f->s, pt, 3, &err), OBX_OK);
    assert_int_equal(pt[0].rc, OBX_OK);
    assert_int_equal(pt[1].rc, OBX_OK);
    assert_int_equal(pt[2].rc, OBX_ERR_NOTFOUND);
    ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.dead, 1);
    assert_int_equal(ss.pending, 0);
    assert_check_clean(f->s);
}

typedef struct seen {
    size_t n;
    uint64_t ids[64];
} seen;

static int collect(void *ud, const obx_event *ev, const obx_delivery *d)
{
    seen *s = ud;
    if (s->n < 64)
        s->ids[s->n++] = d->event_id;
    return 0;
}

static void test_list_and_paging(void **state)
{
    fixture *f = *state;
    uint64_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = enqueue1(f->s, "{}", &f->sink, 1);
    uint64_t dead;
    dead_letter(f, &dead); /* claims ids[0], the oldest due */
    obx_query q;
    obx_query_init(&q);
    seen s = {0};
    assert_int_equal(obx_list(f->s, &q, collect, NULL, &s, NULL), OBX_OK);
    assert_int_equal(s.n, 41);
    for (size_t i = 1; i < s.n; i++)
        assert_true(s.ids[i] > s.ids[i - 1]);
    q.state = OBX_STATE_DEAD;
    memset(&s, 0, sizeof s);
    assert_int_equal(obx_list(f->s, &q, collect, NULL, &s, NULL), OBX_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ids[0], ids[0]);
    obx_query_init(&q);
    q.newest_first = 1;
    q.limit = 5;
    q.after_id = ids[30];
    memset(&s, 0, sizeof s);
    assert_int_equal(obx_list(f->s, &q, collect, NULL, &s, NULL), OBX_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.ids[0], ids[29]);
    assert_int_equal(s.ids[4], ids[25]);
    obx_query_init(&q);
    q.type = "segment";
    memset(&s, 0, sizeof s);
    assert_int_equal(obx_list(f->s, &q, collect, NULL, &s, NULL), OBX_OK);
    assert_int_equal(s.n, 0);
}

static void test_retention(void **state)
{
    fixture *f = *state;
    uint64_t first = enqueue1(f->s, "{}", &f->sink, 1);
    for (int i = 0; i < 4; i++)
        enqueue1(f->s, "{}", &f->sink, 1);
    assert_int_equal(settle_all(f, 5, OBX_OUTCOME_DELIVERED, 204), first);
    size_t removed = 0;
    assert_int_equal(obx_retention_sweep(f->s, obx_now_ms() - 3600000, 10, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 0); /* nothing that old */
    assert_int_equal(obx_retention_sweep(f->s, obx_now_ms() + 1000, 3, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 3);
    assert_int_equal(obx_retention_sweep(f->s, obx_now_ms() + 1000, 3, &removed, NULL), OBX_OK);
    assert_int_equal(removed, 2);
    obx_stats *st;
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    assert_int_equal(st->events, 0);
    assert_int_equal(st->enqueued, 5);
    obx_stats_free(st);
    assert_int_equal(sink_stats(f->s, f->sink).delivered, 0);
    obx_event *ev;
    assert_int_equal(obx_event_get(f->s, first, &ev, NULL), OBX_ERR_NOTFOUND);
    assert_check_clean(f->s);
}

/* A node that stops renewing (closed or killed) loses its claims when the lease ends:
 * another node claims them, in doubt, with the same webhook-id; the first node's late
 * result is ignored. */
static void test_lease_expiry(void **state)
{
    fixture *f = *state;
    uint64_t id = enqueue1(f->s, "{}", &f->sink, 1);
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    obx_job *ja, *jb;
    size_t na, nb;
    int64_t now = obx_now_ms();
    assert_int_equal(obx_claim_due(f->s, f->sink, now, 5, &ja, &na, NULL, NULL), OBX_OK);
    assert_int_equal(na, 1);
    assert_int_equal(obx_claim_due(b, f->sink, now, 5, &jb, &nb, NULL, NULL), OBX_OK);
    assert_int_equal(nb, 0); /* leased to the first */
    /* past the lease (60 s by default): the other node takes it back */
    assert_int_equal(obx_claim_due(b, f->sink, now + 61000, 5, &jb, &nb, NULL, NULL), OBX_OK);
    assert_int_equal(nb, 1);
    assert_int_equal(jb[0].event_id, id);
    assert_true(jb[0].in_doubt);
    assert_string_equal(jb[0].webhook_id, ja[0].webhook_id);
    assert_int_equal(sink_stats(b, f->sink).in_doubt, 1);
    obx_result late = result(&ja[0], OBX_OUTCOME_DEAD, 500);
    assert_int_equal(obx_record(f->s, &late, 1, NULL), OBX_OK);
    assert_int_equal(sink_stats(b, f->sink).dead, 0); /* not its lease any more */
    obx_result ok = result(&jb[0], OBX_OUTCOME_DELIVERED, 200);
    assert_int_equal(obx_record(b, &ok, 1, NULL), OBX_OK);
    obx_sink_stats ss = sink_stats(b, f->sink);
    assert_int_equal(ss.delivered, 1);
    assert_int_equal(ss.in_doubt, 0);
    obx_jobs_free(ja, na);
    obx_jobs_free(jb, nb);
    obx_close(b);
    assert_check_clean(f->s);
}

/* The one delivery of event id (asserted), from obx_event_get; free with obx_event_free. */
static obx_event *event_of(obx_store *s, uint64_t id)
{
    obx_event *ev = NULL;
    assert_int_equal(obx_event_get(s, id, &ev, NULL), OBX_OK);
    assert_int_equal(ev->n_deliveries, 1);
    return ev;
}

/* One obx_record call with every outcome and a lost lease, in no particular order (the
 * store records a call's results in one statement): each row gets its own result, the lost
 * one is left to its new owner, a result given twice counts once, and the counters add up. */
static void test_record_mixed_batch(void **state)
{
    fixture *f = *state;
    uint64_t ids[5];
    ids[0] = enqueue1(f->s, "{}", &f->sink, 1);
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    obx_job *j0, *jb, *js;
    size_t n0, nb, ns;
    int64_t now = obx_now_ms();
    assert_int_equal(obx_claim_due(f->s, f->sink, now, 1, &j0, &n0, NULL, NULL), OBX_OK);
    assert_int_equal(n0, 1);
    assert_int_equal(j0[0].event_id, ids[0]);
    /* the lease runs out: the other node takes ids[0]; this one claims the other four */
    assert_int_equal(obx_claim_due(b, f->sink, now + 61000, 1, &jb, &nb, NULL, NULL), OBX_OK);
    assert_int_equal(nb, 1);
    assert_int_equal(jb[0].event_id, ids[0]);
    for (int i = 1; i < 5; i++)
        ids[i] = enqueue1(f->s, "{}", &f->sink, 1);
    assert_int_equal(obx_claim_due(f->s, f->sink, now + 61000, 4, &js, &ns, NULL, NULL), OBX_OK);
    assert_int_equal(ns, 4);
    assert_int_equal(js[0].event_id, ids[1]);
    assert_int_equal(js[3].event_id, ids[4]);

    static const unsigned char body[] = {'o', 'k', 0, '"'};
    obx_header hs[] = {{"X-Row", "one"}};
    obx_result rs[6] = {
        result(&js[2], OBX_OUTCOME_DEAD, 500),      /* ids[3] */
        result(&j0[0], OBX_OUTCOME_DELIVERED, 202), /* ids[0]: lease lost */
        result(&js[3], OBX_OUTCOME_RELEASE, 0),     /* ids[4] */
        result(&js[0], OBX_OUTCOME_DELIVERED, 201), /* ids[1] */
        result(&js[1], OBX_OUTCOME_RETRY, 503),     /* ids[2] */
        result(&js[0], OBX_OUTCOME_DEAD, 500),      /* ids[1] again: skipped */
    };
    rs[0].duration_ms = 30;
    rs[0].reason = "row three";
    rs[3].duration_ms = 10;
    rs[3].headers = hs;
    rs[3].n_headers = 1;
    rs[3].body = body;
    rs[3].body_len = sizeof body;
    rs[3].body_size = 4;
    rs[4].duration_ms = 20;
    rs[4].error = "row two";
    rs[4].next_attempt_ms = now + 123456;
    rs[4].deadline_ms = now + 777;
    obx_error err = {0};
    assert_int_equal(obx_record(f->s, rs, 6, &err), OBX_OK);

    obx_event *ev = event_of(f->s, ids[1]);
    obx_delivery *d = &ev->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_DELIVERED);
    assert_int_equal(d->attempts, 1);
    assert_int_equal(d->last_status, 201);
    assert_int_equal(d->done_ms, rs[3].started_ms + 10);
    assert_int_equal(d->n_history, 1);
    assert_int_equal(d->history[0].status, 201);
    assert_int_equal(d->history[0].duration_ms, 10);
    assert_int_equal(d->history[0].n_headers, 1);
    assert_string_equal(d->history[0].headers[0].value, "one");
    assert_int_equal(d->history[0].body_len, sizeof body);
    assert_memory_equal(d->history[0].body, body, sizeof body);
    assert_null(d->reason);
    obx_event_free(ev);

    ev = event_of(f->s, ids[2]);
    d = &ev->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_PENDING);
    assert_int_equal(d->attempts, 1);
    assert_int_equal(d->last_status, 503);
    assert_string_equal(d->last_error, "row two");
    assert_int_equal(d->next_attempt_ms, now + 123456);
    assert_int_equal(d->deadline_ms, now + 777);
    assert_int_equal(d->first_attempt_ms, rs[4].first_attempt_ms);
    assert_int_equal(d->done_ms, 0);
    assert_int_equal(d->n_history, 1);
    assert_int_equal(d->history[0].duration_ms, 20);
    assert_int_equal(d->history[0].n_headers, 0);
    assert_null(d->history[0].body);
    obx_event_free(ev);

    ev = event_of(f->s, ids[3]);
    d = &ev->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_DEAD);
    assert_int_equal(d->last_status, 500);
    assert_string_equal(d->reason, "row three");
    assert_int_equal(d->done_ms, rs[0].started_ms + 30);
    assert_int_equal(d->n_history, 1);
    assert_int_equal(d->history[0].duration_ms, 30);
    obx_event_free(ev);

    ev = event_of(f->s, ids[4]); /* released: due again, no attempt counted */
    d = &ev->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_PENDING);
    assert_int_equal(d->attempts, 0);
    assert_int_equal(d->n_history, 0);
    obx_event_free(ev);

    ev = event_of(f->s, ids[0]); /* the other node's lease: untouched */
    d = &ev->deliveries[0];
    assert_int_equal(d->state, OBX_STATE_INFLIGHT);
    assert_true(d->in_doubt);
    assert_int_equal(d->attempts, 0);
    assert_int_equal(d->n_history, 0);
    obx_event_free(ev);

    obx_sink_stats ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.pending, 2);
    assert_int_equal(ss.inflight, 1);
    assert_int_equal(ss.delivered, 1);
    assert_int_equal(ss.dead, 1);
    assert_int_equal(ss.in_doubt, 1);

    /* the owner records it; counters follow */
    obx_result ok = result(&jb[0], OBX_OUTCOME_DELIVERED, 200);
    assert_int_equal(obx_record(b, &ok, 1, NULL), OBX_OK);
    ss = sink_stats(f->s, f->sink);
    assert_int_equal(ss.inflight, 0);
    assert_int_equal(ss.delivered, 2);
    assert_int_equal(ss.in_doubt, 0);
    obx_jobs_free(j0, n0);
    obx_jobs_free(jb, nb);
    obx_jobs_free(js, ns);
    obx_close(b);
    assert_check_clean(f->s);
}

typedef struct claimer {
    obx_store *s;
    uint32_t sink;
    size_t n;
    uint64_t ids[400];
} claimer;

static void *claim_loop(void *arg)
{
    claimer *c = arg;
    for (int round = 0; round < 400; round++) {
        obx_job *jobs;
        size_t n;
        obx_error err = {0};
        if (obx_claim_due(c->s, c->sink, obx_now_ms(), 7, &jobs, &n, NULL, &err) != OBX_OK) {
            fprintf(stderr, "claim: %s\n", err.msg);
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n && c->n < 400; i++)
            c->ids[c->n++] = jobs[i].event_id;
        obx_jobs_free(jobs, n);
    }
    return NULL;
}

static void test_two_nodes_never_claim_the_same(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    obx_event_in evs[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++)
        evs[i] = (obx_event_in){"flag", "created", "{}", 2, 0, &f->sink, 1};
    assert_int_equal(obx_enqueue(f->s, evs, N, ids, NULL), OBX_OK);
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    claimer *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
    x->s = f->s;
    y->s = b;
    x->sink = y->sink = f->sink;
    pthread_t tx, ty;
    pthread_create(&tx, NULL, claim_loop, x);
    pthread_create(&ty, NULL, claim_loop, y);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    assert_int_equal(x->n + y->n, N);
    unsigned char *got = calloc(N, 1);
    for (size_t i = 0; i < x->n + y->n; i++) {
        uint64_t id = i < x->n ? x->ids[i] : y->ids[i - x->n];
        assert_true(id >= ids[0] && id <= ids[N - 1]);
        assert_int_equal(got[id - ids[0]], 0); /* never twice */
        got[id - ids[0]] = 1;
    }
    assert_int_equal(sink_stats(b, f->sink).inflight, N);
    free(got);
    free(x);
    free(y);
    obx_close(b);
    assert_check_clean(f->s);
}

static size_t claim_n(obx_store *s, uint32_t sink, int64_t now, size_t max, uint64_t *first,
                      obx_job **keep)
{
    obx_job *jobs;
    size_t n;
    obx_error err = {0};
    if (obx_claim_due(s, sink, now, max, &jobs, &n, NULL, &err) != OBX_OK)
        fail_msg("claim: %s", err.msg);
    if (first)
        *first = n ? jobs[0].event_id : 0;
    if (keep)
        *keep = jobs;
    else
        obx_jobs_free(jobs, n);
    return n;
}

/* max_in_flight holds across nodes; an ordered sink has one in flight in the whole cluster
 * and a retrying head holds the rest back on every node. */
static void test_cluster_limits(void **state)
{
    fixture *f = *state;
    obx_store *b = open_pg(f->schema, OBX_OPEN_OWNER);
    uint32_t ord;
    assert_int_equal(obx_sink_id(f->s, "ordered", &ord, NULL), OBX_OK);
    obx_store *both[] = {f->s, b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(obx_sink_limit(both[i], f->sink, 3, 0, NULL), OBX_OK);
        assert_int_equal(obx_sink_limit(both[i], ord, 64, 1, NULL), OBX_OK);
    }
    uint32_t sinks[] = {f->sink, ord};
    uint64_t first = enqueue1(f->s, "{}", sinks, 2);
    for (int i = 0; i < 9; i++)
        enqueue1(f->s, "{}", sinks, 2);
    int64_t now = obx_now_ms();
    obx_job *held;
    assert_int_equal(claim_n(f->s, f->sink, now, 10, NULL, &held), 3);
    assert_int_equal(claim_n(b, f->sink, now, 10, NULL, NULL), 0);
    obx_result done = result(&held[0], OBX_OUTCOME_DELIVERED, 200);
    assert_int_equal(obx_record(f->s, &done, 1, NULL), OBX_OK);
    assert_int_equal(claim_n(b, f->sink, now, 10, NULL, NULL), 1);
    obx_jobs_free(held, 3);

    uint64_t head;
    assert_int_equal(claim_n(f->s, ord, now, 10, &head, &held), 1);
    assert_int_equal(head, first);
    assert_int_equal(claim_n(b, ord, now, 10, NULL, NULL), 0);
    obx_result retry = result(&held[0], OBX_OUTCOME_RETRY, 503); /* due in 60 s */
    assert_int_equal(obx_record(f->s, &retry, 1, NULL), OBX_OK);
    obx_jobs_free(held, 1);
    assert_int_equal(claim_n(b, ord, now + 1000, 10, NULL, NULL), 0); /* the head waits */
    assert_int_equal(claim_n(b, ord, now + 61000, 10, &head, NULL), 1);
    assert_int_equal(head, first);
    obx_close(b);
}

/* Notify calls made on the recording thread (the listener thread's are not counted). */
typedef struct own_notify {
    pthread_t self;
    int n;
} own_notify;

static void count_own(void *ud)
{
    own_notify *o = ud;
    if (pthread_equal(o->self, pthread_self()))
        o->n++;
}

/* A claim that finds no room - the sink's limit taken, an ordered sink's head not due - says
 * when to ask again instead of "now" (the engine asked again at once: a busy loop of claim
 * transactions while a sink was saturated), and a result that frees a slot of such a sink
 * wakes this process's engine through the store's notify at once. */
static void test_held_claim_not_due_now(void **state)
{
    fixture *f = *state;
    uint32_t ord;
    assert_int_equal(obx_sink_id(f->s, "ordered", &ord, NULL), OBX_OK);
    assert_int_equal(obx_sink_limit(f->s, f->sink, 2, 0, NULL), OBX_OK);
    assert_int_equal(obx_sink_limit(f->s, ord, 64, 1, NULL), OBX_OK);
    uint32_t sinks[] = {f->sink, ord};
    for (int i = 0; i < 5; i++)
        enqueue1(f->s, "{}", sinks, 2);
    own_notify on = {pthread_self(), 0};
    obx_set_notify(f->s, count_own, &on);
    int64_t now = obx_now_ms();
    obx_job *held, *jobs;
    size_t n;
    int64_t next = 0;
    assert_int_equal(claim_n(f->s, f->sink, now, 10, NULL, &held), 2);
    assert_int_equal(obx_claim_due(f->s, f->sink, now, 10, &jobs, &n, &next, NULL), OBX_OK);
    assert_int_equal(n, 0);
    assert_true(next > now); /* three are due, but no slot is free */
    obx_result done = result(&held[0], OBX_OUTCOME_DELIVERED, 200);
    assert_int_equal(obx_record(f->s, &done, 1, NULL), OBX_OK);
    assert_int_equal(on.n, 1);
    assert_int_equal(claim_n(f->s, f->sink, now, 10, NULL, NULL), 1);
    obx_jobs_free(held, 2);

    assert_int_equal(claim_n(f->s, ord, now, 10, NULL, &held), 1);
    obx_result retry = result(&held[0], OBX_OUTCOME_RETRY, 503); /* due in 60 s */
    assert_int_equal(obx_record(f->s, &retry, 1, NULL), OBX_OK);
    obx_jobs_free(held, 1);
    assert_int_equal(obx_claim_due(f->s, ord, now + 1000, 10, &jobs, &n, &next, NULL), OBX_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, retry.next_attempt_ms); /* the head's time, not the others' */
    obx_set_notify(f->s, NULL, NULL);
}

/* obx_delivery_id on a postgres handle is the webhook-id the claim hands out (from the
 * store uid). */
static void test_delivery_id(void **state)
{
    fixture *f = *state;
    uint64_t id = enqueue1(f->s, "{}", &f->sink, 1);
    obx_error err = {0};
    obx_job *jobs = NULL;
    size_t n = 0;
    int64_t next = 0;
    assert_int_equal(obx_claim_due(f->s, f->sink, obx_now_ms() + 1000, 1, &jobs, &n, &next, &err),
                     OBX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].event_id, id);
    char wid[OBX_DELIVERY_ID_MAX];
    assert_int_equal(obx_delivery_id(f->s, id, f->sink, wid, sizeof wid), OBX_OK);
    assert_string_equal(wid, jobs[0].webhook_id);
    assert_int_equal(obx_delivery_id(f->s, id, f->sink, wid, 8), OBX_ERR_INVALID);
    assert_string_equal(wid, "");
    obx_result r = result(&jobs[0], OBX_OUTCOME_DELIVERED, 200);
    assert_int_equal(obx_record(f->s, &r, 1, &err), OBX_OK);
    obx_jobs_free(jobs, n);
}

/* obx_enqueue_batch on postgres: every request is stored with its own ids and result, a
 * keyed one too (tests/pg/test-pg-feat.c covers keys), an invalid one is refused alone. */
static void test_enqueue_batch_and_keys(void **state)
{
    fixture *f = *state;
    obx_event_in a[2] = {{"flag", "created", "{\"a\":1}", 7, 0, &f->sink, 1},
                         {"flag", "updated", "{\"a\":2}", 7, 0, &f->sink, 1}};
    obx_event_in b = {"segment", "created", "{\"b\":1}", 7, 0, &f->sink, 1};
    obx_event_in bad = {"flag", NULL, "{}", 2, 0, &f->sink, 1};
    obx_idem key = {.key = "order-42", .expires_ms = obx_now_ms() + 60000};
    uint64_t ida[2] = {0, 0}, idb = 0, idk = 0, idx = 0;
    obx_enqueue_req r[4] = {{.events = a, .n = 2, .ids = ida},
                            {.events = &b, .n = 1, .idem = &key, .ids = &idk},
                            {.events = &b, .n = 1, .ids = &idb},
                            {.events = &bad, .n = 1, .ids = &idx}};
    assert_int_equal(obx_enqueue_batch(f->s, r, 4), OBX_OK);
    assert_int_equal(r[0].rc, OBX_OK);
    assert_int_equal(r[1].rc, OBX_OK);
    assert_int_equal(r[1].res.replayed, 0);
    assert_int_equal(r[2].rc, OBX_OK);
    assert_true(ida[0] > 0 && ida[1] == ida[0] + 1);
    assert_true(idb > 0 && idb != ida[0] && idb != ida[1]);
    assert_true(idk > 0 && idk != idb && idk != ida[0] && idk != ida[1]);
    assert_int_equal(r[3].rc, OBX_ERR_INVALID); /* checked per request */
    assert_int_equal(sink_stats(f->s, f->sink).pending, 4);
    obx_event *ev;
    obx_error err = {0};
    assert_int_equal(obx_event_get(f->s, idb, &ev, &err), OBX_OK);
    assert_string_equal(ev->type, "segment");
    obx_event_free(ev);
    obx_stats *st = NULL;
    assert_int_equal(obx_stats_get(f->s, &st, &err), OBX_OK);
    assert_int_equal(st->idem_keys, 1);
    obx_stats_free(st);
    assert_check_clean(f->s);
}

static void test_sync_commit_off_refused(void **state)
{
    (void)state;
    char schema[64];
    pgtest_schema(schema);
    assert_non_null(pgtest_sql("ALTER SYSTEM SET synchronous_commit = off"));
    assert_non_null(pgtest_sql("SELECT pg_reload_conf()"));
    obx_options o;
    pgtest_options(&o, schema, OBX_OPEN_OWNER);
    obx_store *s = NULL;
    obx_error err = {0};
    int rc = OBX_OK;
    for (int i = 0; i < 100 && rc == OBX_OK; i++) { /* the reload reaches new sessions */
        rc = obx_open(NULL, &o, &s, &err);
        obx_close(s);
        s = NULL;
        if (rc == OBX_OK)
            usleep(20000);
    }
    assert_int_equal(rc, OBX_ERR_INVALID);
    assert_non_null(strstr(err.msg, "synchronous_commit is off"));
    assert_non_null(strstr(err.msg, "allow_async_commit"));
    o.allow_async_commit = 1;
    assert_int_equal(obx_open(NULL, &o, &s, &err), OBX_OK);
    obx_close(s);
    assert_non_null(pgtest_sql("ALTER SYSTEM RESET synchronous_commit"));
    assert_non_null(pgtest_sql("SELECT pg_reload_conf()"));
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    pgtest_sql(sql);
}

/* A read-only server (the standby) is "unavailable", retryable, not a plain error. */
static void test_standby_is_unavailable(void **state)
{
    fixture *f = *state;
    assert_int_equal(obx_ping(f->s, NULL), OBX_OK);
    const char *standby = getenv("OUTBOX_PG_STANDBY_DSN");
    if (!standby)
        fail_msg("OUTBOX_PG_STANDBY_DSN not set: run with pgharness.py --standby");
    obx_options o;
    pgtest_options(&o, f->schema, OBX_OPEN_OWNER);
    o.pg_dsn = standby;
    obx_store *s = NULL;
    obx_error err = {0};
    assert_int_equal(obx_open(NULL, &o, &s, &err), OBX_ERR_UNAVAILABLE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "read-only"));
}

static void test_newer_schema_refused(void **state)
{
    fixture *f = *state;
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s.schema_version SET version = 99", f->schema);
    assert_non_null(pgtest_sql(sql));
    obx_options o;
    pgtest_options(&o, f->schema, OBX_OPEN_OWNER);
    obx_store *s = NULL;
    obx_error err = {0};
    assert_int_equal(obx_open(NULL, &o, &s, &err), OBX_ERR_VERSION);
    assert_null(s);
    assert_non_null(strstr(err.msg, "version 99"));
    assert_non_null(strstr(err.msg, "build's 2"));
}

typedef struct producer {
    obx_store *s;
    uint32_t sink;
    uint64_t ids[50];
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < 50; i++)
        p->ids[i] = enqueue1(p->s, "{\"x\":1}", &p->sink, 1);
    return NULL;
}

static void test_concurrent_enqueue_group_commit(void **state)
{
    fixture *f = *state;
    producer p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i].s = f->s;
        p[i].sink = f->sink;
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 50; k++) {
            obx_event *ev;
            assert_int_equal(obx_event_get(f->s, p[i].ids[k], &ev, NULL), OBX_OK);
            obx_event_free(ev);
        }
    obx_stats *st;
    assert_int_equal(obx_stats_get(f->s, &st, NULL), OBX_OK);
    assert_int_equal(st->events, 200);
    assert_int_equal(st->commit_ops, 200);
    obx_stats_free(st);
    assert_int_equal(sink_stats(f->s, f->sink).pending, 200);
    assert_check_clean(f->s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_claim_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_mixed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_never_claim_the_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_enqueue_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_claim_not_due_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_batch_and_keys, setup, teardown),
        cmocka_unit_test(test_sync_commit_off_refused),
        cmocka_unit_test_setup_teardown(test_standby_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
