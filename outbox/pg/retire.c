/*
 * retire.c - retiring a sink that is no longer configured on the PostgreSQL backend
 * (obx_sink_retire, outbox.h): its deliveries dead-lettered or purged in pages of short
 * transactions (RETIRE_PAGE rows each, the counter triggers keep stats right in the
 * same transaction), then, when nothing of it is left, its registry row deleted (its
 * health row goes with it) so the lowest free id is given to the next sink registered.
 *
 * Several nodes may run: a delivery of the sink in flight under a live lease is being
 * attempted by some node right now (its config still names the sink), so the retire is
 * refused while one exists and says until when. Deliveries in flight whose lease has
 * expired (their node died) are taken like pending ones: no node would ever take them
 * back, since only a claim for the sink does.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETIRE_PAGE 512

/* Counts per state of the sink's deliveries, the live leases and, for a purge, the events
 * that would go with their last delivery. */
static int census(PGconn *c, const char *sink, int64_t now, obx_retire_counts *k, int64_t *live,
                  int64_t *live_until, obx_error *err)
{
    char nb[24];
    const char *p[] = {sink, I64(nb, now)};
    PGresult *r;
    int rc = obx__pg_exec(c, "retire_census", 2, p, &r, err);
    if (rc)
        return rc;
    k->pending = (size_t)obx__pg_i64(r, 0, 0);
    k->inflight = (size_t)obx__pg_i64(r, 0, 1);
    k->dead = (size_t)obx__pg_i64(r, 0, 2);
    k->delivered = (size_t)obx__pg_i64(r, 0, 3);
    k->events = (size_t)obx__pg_i64(r, 0, 4);
    *live = obx__pg_i64(r, 0, 5);
    *live_until = obx__pg_i64(r, 0, 6);
    PQclear(r);
    return OBX_OK;
}

typedef struct page_args {
    const char *sink;
    int purge;
    int64_t now;
    obx_retire_counts d; /* what this page did */
    int n;
} page_args;

/* One page: dead-letter or delete up to RETIRE_PAGE deliveries (and, purging, the events
 * left without one). Safe to run again: it recounts from zero. */
static int page_txn(pg_store *s, PGconn *c, void *ud, obx_error *err)
{
    (void)s;
    page_args *a = ud;
    memset(&a->d, 0, sizeof a->d);
    char nb[24], mb[24];
    const char *p[] = {a->sink, I64(nb, a->now), I64(mb, RETIRE_PAGE)};
    PGresult *r;
    int rc = obx__pg_exec(c, a->purge ? "retire_purge" : "retire_dead", 3, p, &r, err);
    if (rc)
        return rc;
    a->n = PQntuples(r);
    uint64_t *evs = malloc(((size_t)a->n + 1) * sizeof *evs);
    if (!evs) {
        PQclear(r);
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < a->n; i++) {
        int state = (int)obx__pg_i64(r, i, 1);
        *(state == OBX_STATE_PENDING    ? &a->d.pending
          : state == OBX_STATE_INFLIGHT ? &a->d.inflight
          : state == OBX_STATE_DEAD     ? &a->d.dead
                                        : &a->d.delivered) += 1;
        evs[i] = (uint64_t)obx__pg_i64(r, i, 0);
    }
    PQclear(r);
    char *ids = a->purge && a->n ? obx__pg_id_array(evs, (size_t)a->n) : NULL;
    free(evs);
    if (!a->purge || !a->n)
        return OBX_OK;
    if (!ids)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    const char *ep[] = {ids};
    rc = obx__pg_exec(c, "event_drop", 1, ep, &r, err);
    free(ids);
    if (rc)
        return rc;
    a->d.events = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return OBX_OK;
}

/* One page in one transaction; adds what it did to *c; *more when the page was full. */
static int page(pg_store *s, const char *sink, int purge, int64_t now, obx_retire_counts *c,
                int *more, obx_error *err)
{
    page_args a = {.sink = sink, .purge = purge, .now = now};
    int rc = obx__pg_txn(s, page_txn, &a, err);
    if (rc)
        return rc;
    c->pending += a.d.pending;
    c->inflight += a.d.inflight;
    c->dead += a.d.dead;
    c->delivered += a.d.delivered;
    c->events += a.d.events;
    *more = a.n == RETIRE_PAGE;
    return OBX_OK;
}

/* Delete the sink's registry row if no delivery of it is left (one statement). */
static int free_slot(pg_store *s, const char *sink, obx_retire_counts *c, obx_error *err)
{
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    const char *p[] = {sink};
    PGresult *r;
    if ((rc = obx__pg_exec(pc->c, "retire_slot", 1, p, &r, err)) == OBX_OK) {
        c->slot_freed = PQntuples(r) == 1;
        PQclear(r);
    }
    obx__pg_release(s, pc);
    return rc;
}

int obx__pg_sink_retire(obx_store *h, uint32_t sink_id, int mode, int dry_run,
                        obx_retire_counts *out, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    obx_retire_counts c = {0}, k = {0};
    if (!dry_run && s->readonly)
        return obx__fail(err, OBX_ERR_STATE, "retire: store opened read-only");
    int purge = mode == OBX_RETIRE_PURGE;
    char sb[24];
    I64(sb, sink_id);
    int64_t now = obx_now_ms(), live = 0, live_until = 0;
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    rc = census(pc->c, sb, now, &k, &live, &live_until, err);
    obx__pg_release(s, pc);
    if (rc)
        return rc;
    if (live)
        return obx__fail(err, OBX_ERR_STATE,
                         "retire: %lld deliveries of sink %u are in flight on a node (leases "
                         "until %lld ms from now): a node still delivers to it; remove the "
                         "sink from every node's config, wait for them to finish and run again",
                         (long long)live, sink_id, (long long)(live_until - now));
    if (dry_run) {
        c = k;
        if (!purge) {
            c.dead_kept = k.dead;
            c.delivered_kept = k.delivered;
            c.dead = c.delivered = c.events = 0;
        }
        c.slot_freed = purge;
        if (out)
            *out = c;
        return OBX_OK;
    }
    for (int more = 1; more && !rc;) {
        more = 0;
        rc = page(s, sb, purge, obx_now_ms(), &c, &more, err);
        if (out)
            *out = c; /* what is committed so far, also when a later page fails */
    }
    if (rc)
        return rc;
    if (!purge) {
        c.dead_kept = k.dead;
        c.delivered_kept = k.delivered;
    } else if ((rc = free_slot(s, sb, &c, err)) != OBX_OK) {
        return rc;
    }
    if (out)
        *out = c;
    return OBX_OK;
}
