/*
 * idem.c - idempotency keys on the PostgreSQL backend (table idem_keys, schema.c): taken
 * and written inside the group commit's transaction (store.c run_batch), so a key is
 * committed exactly when the events of its request are; looked up for replays; swept
 * once expired.
 *
 * Claiming a key is an INSERT ... ON CONFLICT (key) DO UPDATE that overwrites only an
 * expired row. The primary key decides between concurrent requests with one key, on one
 * node or several: the second insert waits for the first transaction; if that commits,
 * the second finds its row (unexpired) and its request replays the first's ids, or is
 * refused with OBX_ERR_CONFLICT when its hash differs; if it rolls back, the second
 * takes the key. Keys are claimed in key order, so two nodes' batches wait for each
 * other's keys in one order (a deadlock is still possible through other rows; the batch
 * is then run again). The ids are written after the events are inserted, in the same
 * transaction: no other session ever sees a key without them.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse "{1,2,3}" into a malloc'd array; -1 when it does not parse or memory runs out. */
static int ids_parse(const char *s, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (*s++ != '{')
        return -1;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    uint64_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return -1;
    size_t k = 0;
    while (*s && *s != '}') {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || k == cap) {
            free(ids);
            return -1;
        }
        ids[k++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    if (*s != '}') {
        free(ids);
        return -1;
    }
    if (k == 0) {
        free(ids);
        ids = NULL;
    }
    *out = ids;
    *n = k;
    return 0;
}

static int conflict(pg_enq *q)
{
    q->rc = obx__idem_conflict(q->idem->key, &q->err);
    return OBX_OK;
}

/* The stored row of q's key, unexpired at now: a replay (q->replayed), or a conflict in
 * q->rc. *none when there is no such row (after a claim there always is one: it holds the
 * row's lock). */
static int found(PGconn *c, pg_enq *q, int64_t now, int *none, obx_error *err)
{
    char nb[24];
    const char *p[] = {q->idem->key, I64(nb, now)};
    PGresult *r;
    int rc = obx__pg_exec(c, "idem_get", 2, p, &r, err);
    if (rc)
        return rc;
    *none = PQntuples(r) != 1;
    if (*none) {
        PQclear(r);
        return OBX_OK;
    }
    size_t hl = 0, nl = 0;
    unsigned char *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &hl);
    unsigned char *note = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 3), &nl);
    obx_idem_result *res = q->res;
    if (!hash || !note) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory reading an idempotency key");
        goto out;
    }
    if (hl != OBX_IDEM_HASH_LEN || memcmp(hash, q->idem->hash, OBX_IDEM_HASH_LEN) != 0) {
        rc = conflict(q);
        goto out;
    }
    if (ids_parse(PQgetvalue(r, 0, 2), &res->ids, &res->n_ids) != 0) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "idempotency key '%.64s': ids unreadable", q->idem->key);
        goto out;
    }
    if (nl && !(res->note = malloc(nl))) {
        obx_idem_result_clear(res);
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory reading an idempotency key");
        goto out;
    }
    if (nl)
        memcpy(res->note, note, nl);
    res->note_len = nl;
    res->created_ms = obx__pg_i64(r, 0, 0);
    res->replayed = 1;
    q->replayed = 1;
out:
    PQfreemem(hash);
    PQfreemem(note);
    PQclear(r);
    return rc;
}

/* Take q's key (new, or expired and overwritten), or find it stored. */
static int claim_one(PGconn *c, pg_enq *q, int64_t now, obx_error *err)
{
    size_t len;
    unsigned char *hash = PQescapeByteaConn(c, q->idem->hash, OBX_IDEM_HASH_LEN, &len);
    unsigned char *note = PQescapeByteaConn(c, q->idem->note ? q->idem->note : (const void *)"",
                                            q->idem->note_len, &len);
    int rc;
    if (!hash || !note) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto out;
    }
    char eb[24], nb[24];
    const char *p[] = {q->idem->key, I64(eb, q->idem->expires_ms), I64(nb, now), (char *)hash,
                       (char *)note};
    PGresult *r;
    if ((rc = obx__pg_exec(c, "idem_claim", 5, p, &r, err)) != OBX_OK)
        goto out;
    int took = PQntuples(r) == 1;
    PQclear(r);
    int none = 0;
    if (took)
        q->claimed = 1;
    else if ((rc = found(c, q, now, &none, err)) == OBX_OK && none)
        rc = obx__fail(err, OBX_ERR_DB, "postgres: idempotency key '%.64s' vanished", q->idem->key);
out:
    PQfreemem(hash);
    PQfreemem(note);
    return rc;
}

/* A keyed call and its place in the batch's queue. */
typedef struct keyed {
    pg_enq *q;
    size_t pos;
} keyed;

/* Keyed calls in key order, then queue order (the first of one key claims it). */
static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int d = strcmp(x->q->idem->key, y->q->idem->key);
    if (d)
        return d;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int obx__pg_idem_claim(pg_store *s, PGconn *c, pg_enq *list, int64_t now, obx_error *err)
{
    (void)s;
    size_t n = 0;
    for (pg_enq *q = list; q; q = q->next) {
        if (!q->idem)
            continue;
        obx_idem_result_clear(q->res); /* a batch run again after a deadlock */
        q->replayed = q->claimed = 0;
        q->dup_of = NULL;
        if (q->rc == OBX_ERR_FULL) { /* a known key answers even when full (as on LMDB) */
            int none, rc = found(c, q, now, &none, err);
            if (rc)
                return rc;
            if (q->replayed)
                q->rc = OBX_OK;
        }
        n += q->rc == OBX_OK && !q->replayed;
    }
    if (n == 0)
        return OBX_OK;
    keyed *v = malloc(n * sizeof *v);
    if (!v)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    size_t k = 0, pos = 0;
    for (pg_enq *q = list; q; q = q->next, pos++)
        if (q->idem && q->rc == OBX_OK && !q->replayed)
            v[k++] = (keyed){q, pos};
    qsort(v, n, sizeof *v, by_key);
    int rc = OBX_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        pg_enq *q = v[i].q, *prev = i ? v[i - 1].q : NULL;
        if (prev && strcmp(prev->idem->key, q->idem->key) == 0 && (prev->claimed || prev->dup_of)) {
            q->dup_of = prev->dup_of ? prev->dup_of : prev; /* settled once its ids exist */
            q->replayed = 1;                                /* stores nothing either way */
        } else {
            rc = claim_one(c, q, now, err);
        }
    }
    free(v);
    return rc;
}

/* A later call of the batch with a key claimed earlier in it: replay its ids and note. */
static int replay_dup(pg_enq *q, int64_t now)
{
    const pg_enq *first = q->dup_of;
    q->replayed = 0;
    if (memcmp(first->idem->hash, q->idem->hash, OBX_IDEM_HASH_LEN) != 0)
        return conflict(q);
    obx_idem_result *res = q->res;
    res->ids = first->n ? malloc(first->n * sizeof *res->ids) : NULL;
    res->note = first->idem->note_len ? malloc(first->idem->note_len) : NULL;
    if ((first->n && !res->ids) || (first->idem->note_len && !res->note)) {
        obx_idem_result_clear(res);
        q->rc = obx__fail(&q->err, OBX_ERR_NOMEM, "out of memory");
        return OBX_OK;
    }
    if (first->n)
        memcpy(res->ids, first->ids, first->n * sizeof *res->ids);
    if (first->idem->note_len)
        memcpy(res->note, first->idem->note, first->idem->note_len);
    res->n_ids = first->n;
    res->note_len = first->idem->note_len;
    res->created_ms = now;
    res->replayed = 1;
    q->replayed = 1;
    return OBX_OK;
}

int obx__pg_idem_store(pg_store *s, PGconn *c, pg_enq *list, int64_t now, obx_error *err)
{
    (void)s;
    for (pg_enq *q = list; q; q = q->next) {
        if (!q->idem || q->rc != OBX_OK)
            continue;
        if (q->dup_of) {
            replay_dup(q, now);
            continue;
        }
        if (!q->claimed || q->n == 0) /* replayed; or stored with no ids ('{}') */
            continue;
        char *ids = obx__pg_id_array(q->ids, q->n);
        if (!ids)
            return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        const char *p[] = {q->idem->key, ids};
        PGresult *r;
        int rc = obx__pg_exec(c, "idem_ids", 2, p, &r, err);
        free(ids);
        if (rc)
            return rc;
        PQclear(r);
    }
    return OBX_OK;
}

int obx__pg_idem_sweep(obx_store *h, int64_t now_ms, size_t max, size_t *removed, obx_error *err)
{
    pg_store *s = (pg_store *)h;
    if (removed)
        *removed = 0;
    if (s->readonly)
        return obx__fail(err, OBX_ERR_STATE, "idempotency sweep: store opened read-only");
    pg_conn *pc;
    int rc = obx__pg_acquire(s, &pc, err);
    if (rc)
        return rc;
    char nb[24], mb[24];
    const char *p[] = {I64(nb, now_ms), I64(mb, max ? max : 1000)};
    PGresult *r;
    if ((rc = obx__pg_exec(pc->c, "idem_sweep", 2, p, &r, err)) == OBX_OK) {
        if (removed)
            *removed = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    obx__pg_release(s, pc);
    return rc;
}
