/*
 * outboxd-ingest-commit.c - handing complete ingest requests to the store (see
 * outboxd-ingest-server.h), every way sharing the store's group commits:
 * - thread per connection: the connection's thread blocks in obx_enqueue_batch();
 * - pool mode on an LMDB store: the request is queued to the store's writer
 *   (obx_enqueue_submit) with its connection suspended; the writer's completion records
 *   the result and resumes the connection (MHD's inter-thread wake-up);
 * - pool mode without a writer thread (PostgreSQL): the request is parked in a queue and
 *   committer threads store everything parked with one obx_enqueue_batch() each, then
 *   resume the connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outboxd-ingest-server.h"

/*
 * Store the requests of `list` (linked by next) with ONE obx_enqueue_batch call, blocking
 * until they are durable, then record the result in each request. The requests without
 * an idempotency key are merged into one all-or-nothing enqueue (answered alike); each
 * request with a key is its own entry of the batch (stored, replayed or in conflict on
 * its own). All share group commits.
 */
static void commit_list(oin_server *s, req *list)
{
    size_t total = 0, nplain = 0, nkeyed = 0;
    req *one = NULL;
    for (req *r = list; r; r = r->next) {
        if (r->idem_header) {
            nkeyed++;
            continue;
        }
        total += r->k;
        nplain++;
        one = r;
    }
    obx_enqueue_req *reqs = calloc(nkeyed + 1, sizeof *reqs);
    obx_event_in *in = nplain > 1 ? calloc(total, sizeof *in) : NULL;
    uint64_t *ids = nplain > 1 ? malloc(total * sizeof *ids) : NULL;
    int oom = !reqs || (nplain > 1 && (!in || !ids));
    size_t m = 0;
    if (!oom && nplain == 1) {
        reqs[m++] = (obx_enqueue_req){.events = one->in, .n = one->k, .ids = one->ids};
    } else if (!oom && nplain > 1) {
        size_t off = 0;
        for (req *r = list; r; r = r->next) {
            if (r->idem_header)
                continue;
            memcpy(in + off, r->in, r->k * sizeof *in);
            off += r->k;
        }
        reqs[m++] = (obx_enqueue_req){.events = in, .n = total, .ids = ids};
    }
    for (req *r = list; r && !oom; r = r->next)
        if (r->idem_header)
            reqs[m++] =
                (obx_enqueue_req){.events = r->in, .n = r->k, .idem = &r->idem.idem, .ids = r->ids};
    if (!oom)
        obx_enqueue_batch(s->cfg.store, reqs, m);
    size_t j = nplain ? 1 : 0, off = 0;
    for (req *r = list; r; r = r->next) {
        obx_enqueue_req *q = oom ? NULL : r->idem_header ? &reqs[j++] : &reqs[0];
        r->rc = q ? q->rc : OBX_ERR_NOMEM;
        if (r->rc != OBX_OK)
            snprintf(r->errmsg, sizeof r->errmsg, "%s", q ? q->err.msg : "out of memory");
        if (q && r->idem_header) {
            r->replay = q->res; /* taken over: freed with the request */
        } else if (q && nplain > 1 && r->rc == OBX_OK) {
            memcpy(r->ids, ids + off, r->k * sizeof *ids);
            off += r->k;
        }
        r->committed = 1;
    }
    free(reqs);
    free(in);
    free(ids);
}

/* Most events one committer stores in one call (bounds its allocation and the commit). */
#define COMMIT_MAX_EVENTS 4096

/* Pool mode: a committer thread takes every queued request and stores them at once. */
static void *committer(void *arg)
{
    oin_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->q_head && !s->q_stop)
            pthread_cond_wait(&s->q_cv, &s->mu);
        if (!s->q_head)
            break; /* stopping and drained */
        req *list = s->q_head, *last = list;
        size_t events = list->k;
        while (last->next && events + last->next->k <= COMMIT_MAX_EVENTS) {
            last = last->next;
            events += last->k;
        }
        s->q_head = last->next;
        if (!s->q_head)
            s->q_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);
        commit_list(s, list);
        for (req *r = list, *nx; r; r = nx) {
            nx = r->next; /* r may be answered and freed once resumed */
            r->next = NULL;
            MHD_resume_connection(r->conn);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/*
 * Async pool mode: the store's writer thread reports the request durable (or refused).
 * Record the result and resume the connection (MHD's wake-up of the worker thread owning
 * it), whose handler then answers; r may be freed from then on.
 */
static void stored(void *ud, obx_enqueue_req *q)
{
    req *r = ud;
    oin_server *s = r->srv;
    r->rc = q->rc;
    if (r->rc != OBX_OK)
        snprintf(r->errmsg, sizeof r->errmsg, "%s", q->err.msg);
    if (r->idem_header)
        r->replay = q->res; /* taken over: freed with the request */
    r->committed = 1;
    MHD_resume_connection(r->conn);
    pthread_mutex_lock(&s->mu);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Async pool mode: park the request with the store's writer (see stored()). */
static void submit(oin_server *s, struct MHD_Connection *c, req *r)
{
    r->conn = c;
    r->srv = s;
    r->sreq = (obx_enqueue_req){
        .events = r->in, .n = r->k, .idem = r->idem_header ? &r->idem.idem : NULL, .ids = r->ids};
    pthread_mutex_lock(&s->mu);
    s->inflight++;
    pthread_mutex_unlock(&s->mu);
    /* Suspended before it is queued: the writer may resume it at once. */
    MHD_suspend_connection(c);
    if (obx_enqueue_submit(s->cfg.store, &r->sreq, stored, r) != OBX_OK)
        stored(r, &r->sreq); /* refused at once (store closing): answered from its rc */
}

void oin__commit_drain(oin_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->q_stop = 1;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_committers; i++)
        pthread_join(s->committers[i], NULL);
    s->n_committers = 0;
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void oin__commit_now(oin_server *s, req *r)
{
    r->next = NULL;
    commit_list(s, r);
}

void oin__park(oin_server *s, struct MHD_Connection *c, req *r)
{
    if (s->async) {
        submit(s, c, r);
        return;
    }
    r->conn = c;
    MHD_suspend_connection(c);
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->mu);
}

int oin__committers_start(oin_server *s, char *err, size_t cap)
{
    for (size_t i = 0; i < OIN_COMMITTERS; i++) {
        int rc = pthread_create(&s->committers[i], NULL, committer, s);
        if (rc != 0) {
            snprintf(err, cap, "cannot start committer thread: %s", strerror(rc));
            return -1;
        }
        s->n_committers++;
        pthread_setname_np(s->committers[i], "ingest-commit");
    }
    return 0;
}
