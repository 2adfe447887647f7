/*
 * scheduler.c - the delivery engine (see delivery/engine.h): threads around one libcurl
 * multi handle.
 *
 * - The engine thread owns everything in flight: per sink a queue of claimed jobs and a
 *   count of running requests. Each turn it takes in claim replies and commit acks,
 *   starts requests within the per-sink and global limits, asks for claims where there
 *   is room, waits in curl_multi_poll (woken by the store notify, a kick, a claim reply
 *   or a commit ack through curl_multi_wakeup) and classifies finished attempts.
 * - The claimer thread runs obx_next_due/obx_claim_due for the sinks the engine thread
 *   asked for, so that claim commits never stall sending.
 * - The committer thread records results with obx_record in batches: while one batch is
 *   being committed, the next accumulates.
 * - Render workers (template sinks only) render bodies from per-sink queues and hand the
 *   jobs back through the engine thread's inbox, which signs and sends them.
 *
 * Claims are sized to keep up to max(prefetch, max_in_flight) jobs queued behind the
 * running requests of a sink, so that a claim commit (an fsync) never leaves it idle;
 * queued jobs are in flight in the store, so a crash shows them in doubt and re-sends
 * them. An ordered sink claims one job at a time and only
 * after the previous result is committed.
 *
 * Why one file of ~1,300 lines: the four kinds of threads hand jobs and results to each
 * other through the engine's private state (the structs below, their locks and queues);
 * each section is one thread's side of it. Splitting would put that state in a shared
 * header for the sake of file length alone.
 */
#include "config.h"
#include "engine-internal.h"
#include "health.h"
#include "outage.h"
#include "obx_hooks.h"
#include "test-hooks.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double dlv_attempt_duration_bounds[DLV_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
const double dlv_latency_bounds[DLV_HIST_BUCKETS] = {0.01, 0.05, 0.1, 0.5, 1,    5,
                                                     15,   60,   300, 900, 3600, 86400};

/* A claimed batch; its obx_job array is freed once every job in it is finished. */
typedef struct batch {
    obx_job *jobs;
    size_t n;
    size_t left;
} batch;

typedef struct job {
    obx_job *j; /* inside its batch */
    batch *b;
    size_t sink;
    int64_t started_ms;
    dlv__xfer x;
    dlv__request rq;
    int probe;            /* sent as the probe of a sink that is down (health.c) */
    int render_rc;        /* template mode: what the render worker returned */
    char render_err[256]; /* and its message */
    struct job *next;     /* ready, render and rendered queues, running list */
    struct job *prev;     /* running list */
} job;

/* What a claim is for: due deliveries (normal), the probe of a sink that is down (due
 * ones too: a Retry-After is kept), or, whatever their due time, the held deliveries of an
 * outage past breaker.give_up_after (sweep). */
enum { CLAIM_DUE = 0, CLAIM_PROBE, CLAIM_SWEEP };

typedef struct claim_reply {
    size_t sink;
    size_t asked;
    int mode;
    obx_job *jobs;
    size_t n;
    int64_t next_due;
    int rc;
    char msg[256];
    struct claim_reply *next;
} claim_reply;

typedef struct result_item {
    obx_result r;
    char *error;
    char *reason;
    obx_attempt capture; /* owned copies of the response headers and body r points at */
    size_t sink;
} result_item;

typedef struct sink_rt {
    dlv__prepared p;
    uint32_t id;
    char name[OBX_SINK_NAME_MAX];
    /* engine thread only */
    job *ready_head, *ready_tail;
    size_t n_ready;
    size_t active;
    size_t pub_active, pub_ready; /* last published gauges */
    int claiming;
    int dirty;
    int64_t next_due;      /* INT64_MAX: nothing pending; 0: unknown, ask */
    int64_t retry_min;     /* earliest retry scheduled here since the last claim */
    size_t uncommitted;    /* results handed to the committer, not yet acknowledged */
    int64_t blocked_until; /* ordered: the head's next attempt */
    int recovering;        /* ordered: first claim since start not taken in yet */
    dlv__health h;         /* breaker, pause, held time (health.c) */
    int sweep_more;        /* down past give_up_after: held deliveries may be left */
    /* render queue (template mode), under rd_mu: jobs waiting for a render worker, and
     * whether one is rendering for this sink now (one at a time per sink) */
    job *rd_head, *rd_tail;
    int rd_busy;
    /* claimer request, under cl_mu */
    size_t want;
    int want_mode;
    /* commit acks, under in_mu */
    size_t acked;
    /* metrics, under m_mu */
    dlv_sink_metrics m;
} sink_rt;

struct dlv_engine {
    obx_store *store;
    dlv_engine_options o;
    size_t n;
    sink_rt *sinks;
    dlv__sender sender;
    int sender_ok;
    dlv_rng rng;

    pthread_t loop_th, claim_th, commit_th;
    pthread_t *rd_th; /* render workers (template sinks only) */
    size_t n_rd, rd_started;
    int started;

    /* render workers: template bodies are rendered off the engine thread, so a slow
     * template never holds up the requests of other sinks */
    pthread_mutex_t rd_mu;
    pthread_cond_t rd_cv;
    int rd_stop;
    size_t rd_rr;
    size_t rendering; /* engine thread: jobs handed to the workers, not back yet */

    /* engine-thread inbox */
    pthread_mutex_t in_mu;
    claim_reply *replies, *replies_tail;
    job *rendered, *rendered_tail; /* back from the render workers */
    int acks_pending;
    int stop_req;
    int64_t stop_deadline; /* monotonic ms */
    int notified;          /* atomic: store notify / kick */

    /* claimer */
    pthread_mutex_t cl_mu;
    pthread_cond_t cl_cv;
    int cl_work;
    int cl_stop;

    /* committer: the engine thread appends to q (under cm_mu); the committer moves entries
     * out into its own buffers (items, rs) and signals cm_space. q only grows, so a push
     * that cannot grow it waits for room instead of dropping a result. */
    pthread_mutex_t cm_mu;
    pthread_cond_t cm_cv;
    pthread_cond_t cm_space;
    result_item *q;
    size_t nq, capq;
    int cm_stop;
    result_item *cm_items; /* committer thread only, cm_cap entries */
    obx_result *cm_rs;     /* committer thread only, cm_cap entries */
    size_t cm_cap;

    /* engine thread state */
    job *running; /* list of running transfers */
    size_t total_active;
    size_t rr;

    int health_in_memory; /* engine thread: the backend stores no sink health */
    dlv__outage outage;   /* engine thread: when claims found the store unavailable */

    /* metrics */
    pthread_mutex_t m_mu;
    dlv_metrics gm; /* global counters (sinks unused) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(dlv_engine *e)
{
    return e->o.clock ? e->o.clock(e->o.clock_ud) : obx_now_ms();
}

static double rnd(dlv_engine *e)
{
    return e->o.random ? e->o.random(e->o.random_ud) : dlv_rng_unit(&e->rng);
}

void dlv_engine_options_init(dlv_engine_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_in_flight_total = DLV_ENGINE_MAX_IN_FLIGHT;
    o->poll_ms = DLV_ENGINE_POLL_MS;
    o->commit_batch = DLV_ENGINE_COMMIT_BATCH;
    o->prefetch = DLV_ENGINE_PREFETCH;
}

/* The caller's options with the defaults in place of zero fields. */
static void options_apply(dlv_engine_options *o, const dlv_engine_options *given)
{
    dlv_engine_options d;
    dlv_engine_options_init(&d);
    *o = given ? *given : d;
    if (!o->max_in_flight_total)
        o->max_in_flight_total = d.max_in_flight_total;
    if (!o->poll_ms)
        o->poll_ms = d.poll_ms;
    if (!o->commit_batch)
        o->commit_batch = d.commit_batch;
    if (!o->prefetch)
        o->prefetch = d.prefetch;
}

static void hist_add(dlv_histogram *h, const double *bounds, double v)
{
    size_t i = 0;
    while (i < DLV_HIST_BUCKETS && v > bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += v;
}

/* ---- committer ------------------------------------------------------------------- */

#ifdef DLV_TEST_HOOKS
size_t dlv__test_result_queue_max;
#endif

/* Grow the result queue's buffer to cap entries (realloc, or a test's simulated failure). */
static result_item *queue_grow(result_item *q, size_t cap)
{
#ifdef DLV_TEST_HOOKS
    if (dlv__test_result_queue_max && cap > dlv__test_result_queue_max)
        return NULL;
#endif
    return realloc(q, cap * sizeof *q);
}

/* Entries the result queue and the committer's buffers start with (allocated up front, so
 * the committer always has room to take results out). */
#define RESULTS_MIN 64

/* A copy of `text` for a queued result; when memory is short the text is replaced (never
 * the result itself dropped). *owned is what to free later. */
static const char *keep_text(const char *text, char **owned)
{
    *owned = text ? strdup(text) : NULL;
    if (text && !*owned)
        return "(text lost: out of memory)";
    return *owned;
}

/*
 * Hand one result to the committer: it owns it. Never drops it: when the queue is full and
 * cannot grow, wait until the committer has taken entries out (it always can, into its own
 * buffers).
 */
static void push_item(dlv_engine *e, const result_item *it)
{
    pthread_mutex_lock(&e->cm_mu);
    while (e->nq == e->capq) {
        size_t cap = e->capq ? e->capq * 2 : RESULTS_MIN;
        result_item *q = queue_grow(e->q, cap);
        if (q) {
            e->q = q;
            e->capq = cap;
            break;
        }
        pthread_cond_signal(&e->cm_cv);
        pthread_cond_wait(&e->cm_space, &e->cm_mu);
    }
    e->q[e->nq++] = *it;
    pthread_cond_signal(&e->cm_cv);
    pthread_mutex_unlock(&e->cm_mu);
    e->sinks[it->sink].uncommitted++;
}

/* The queue entry of r, its texts copied; its capture is set by the caller. */
static result_item result_of(size_t sink, const obx_result *r)
{
    result_item it = {.r = *r, .sink = sink};
    it.r.error = keep_text(r->error, &it.error);
    it.r.reason = keep_text(r->reason, &it.reason);
    return it;
}

/* The result points at its capture (it.capture). */
static void point_capture(result_item *it)
{
    it->r.headers = it->capture.headers;
    it->r.n_headers = it->capture.n_headers;
    it->r.body = it->capture.body;
    it->r.body_len = it->capture.body_len;
    it->r.body_size = it->capture.body_size;
}

/* Hand a copy of r (and of the response it points at) to the committer. */
static void push_result(dlv_engine *e, size_t sink, const obx_result *r)
{
    result_item it = result_of(sink, r);
    obx_attempt src = {.headers = (obx_header *)r->headers,
                       .n_headers = r->n_headers,
                       .body = (unsigned char *)r->body,
                       .body_len = r->body_len,
                       .body_size = r->body_size};
    /* the capture is best effort: without memory for it the result goes on without it */
    if ((r->n_headers || r->body) && obx_attempt_copy(&it.capture, &src) != OBX_OK)
        memset(&it.capture, 0, sizeof it.capture);
    point_capture(&it);
    push_item(e, &it);
}

/* Hand r to the committer with the response captured in o, which it takes over (o's
 * capture is left empty; the sender cut it to the store's limits already). */
static void push_result_taking(dlv_engine *e, size_t sink, const obx_result *r, dlv__outcome *o)
{
    result_item it = result_of(sink, r);
    it.capture = (obx_attempt){.headers = o->headers,
                               .n_headers = o->n_headers,
                               .body = o->body,
                               .body_len = o->body_len,
                               .body_size = o->body_size};
    o->headers = NULL;
    o->n_headers = 0;
    o->body = NULL;
    o->body_len = 0;
    if (!it.capture.n_headers && !it.capture.body)
        it.capture.body_size = 0; /* as push_result: no capture, no size */
    point_capture(&it);
    push_item(e, &it);
}

/* Store errors worth retrying the same batch for: they may pass (memory, disk, LMDB,
 * database unreachable). */
static int record_retryable(int rc)
{
    return rc == OBX_ERR_NOMEM || rc == OBX_ERR_IO || rc == OBX_ERR_LMDB || rc == OBX_ERR_FULL ||
           rc == OBX_ERR_UNAVAILABLE; /* postgres down or failing over: kept until it is back */
}

/*
 * Record results[0..k) (and their attempts). A retryable failure is retried with a growing
 * pause (50 ms to 1 s) until it succeeds; once the engine is stopping, three more tries,
 * then the deliveries stay in flight in the store and come back in doubt at the next
 * start (sent again, same webhook-id). Returns the last obx_record code.
 */
static int record_batch(dlv_engine *e, obx_result *rs, size_t k, obx_error *oe)
{
    int rc = OBX_OK;
    long pause_ms = 50;
    for (int tries_stopping = 0;;) {
        rc = obx_record(e->store, rs, k, oe);
        if (rc == OBX_OK)
            return rc;
        pthread_mutex_lock(&e->m_mu);
        e->gm.commit_errors++;
        e->gm.last_store_error = rc;
        snprintf(e->gm.last_error, sizeof e->gm.last_error, "recording results: %.200s", oe->msg);
        pthread_mutex_unlock(&e->m_mu);
        if (rc == OBX_ERR_CLOSED || !record_retryable(rc))
            return rc;
        pthread_mutex_lock(&e->cm_mu);
        int stopping = e->cm_stop;
        pthread_mutex_unlock(&e->cm_mu);
        if (stopping && ++tries_stopping > 3)
            return rc;
        struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        pause_ms = pause_ms * 2 > 1000 ? 1000 : pause_ms * 2;
    }
}

/*
 * Results committed in groups: while results stream in (the last commit took at least
 * COMMIT_BUSY of them), the committer waits COMMIT_LINGER_NS before taking a short queue,
 * so that one store transaction (and one sync) records more of them: the store's work per
 * result shrinks with the group (pages shared by neighbouring keys are written once). Not
 * when an ordered sink's result is queued (its next delivery waits for that commit), nor
 * when stopping. Sending is never held up: the engine thread goes on meanwhile.
 */
#define COMMIT_BUSY      32
#define COMMIT_GROUP     256
#define COMMIT_LINGER_NS 1000000L /* 1 ms, less than a sync */

/* Under cm_mu: whether to wait for more results before committing the queue. */
static int linger_worth(const dlv_engine *e, size_t last_n)
{
    if (e->cm_stop || last_n < COMMIT_BUSY || e->nq >= COMMIT_GROUP)
        return 0;
    for (size_t i = 0; i < e->nq; i++)
        if (e->sinks[e->q[i].sink].p.ordered)
            return 0;
    return 1;
}

static void *committer_main(void *arg)
{
    dlv_engine *e = arg;
    result_item *mine = e->cm_items;
    obx_result *rs = e->cm_rs;
    size_t last_n = 0;
    for (;;) {
        pthread_mutex_lock(&e->cm_mu);
        while (e->nq == 0 && !e->cm_stop)
            pthread_cond_wait(&e->cm_cv, &e->cm_mu);
        if (e->nq == 0 && e->cm_stop) {
            pthread_mutex_unlock(&e->cm_mu);
            break;
        }
        if (linger_worth(e, last_n)) {
            pthread_mutex_unlock(&e->cm_mu);
            struct timespec ts = {0, COMMIT_LINGER_NS};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&e->cm_mu);
        }
        /* move what fits into our buffers (grown when possible); the rest waits its turn */
        if (e->nq > e->cm_cap) {
            size_t cap = e->nq;
            result_item *ni = realloc(mine, cap * sizeof *ni);
            if (ni) {
                mine = e->cm_items = ni;
                obx_result *nr = realloc(rs, cap * sizeof *nr);
                if (nr) {
                    rs = e->cm_rs = nr;
                    e->cm_cap = cap;
                }
            }
        }
        size_t n = e->nq < e->cm_cap ? e->nq : e->cm_cap;
        last_n = n;
        memcpy(mine, e->q, n * sizeof *mine);
        memmove(e->q, e->q + n, (e->nq - n) * sizeof *e->q);
        e->nq -= n;
        pthread_cond_broadcast(&e->cm_space);
        pthread_mutex_unlock(&e->cm_mu);

        size_t batch_max = e->o.commit_batch;
        for (size_t off = 0; off < n;) {
            size_t k = n - off < batch_max ? n - off : batch_max;
            obx_error oe = {0};
            for (size_t i = 0; i < k; i++) {
                if (mine[off + i].r.outcome != OBX_OUTCOME_RELEASE) {
                    OBX_CRASH_POINT("delivery-before-record"); /* after a send */
                    break;
                }
            }
            for (size_t i = 0; i < k; i++)
                rs[i] = mine[off + i].r;
            int rc = record_batch(e, rs, k, &oe);
            if (rc == OBX_OK) { /* failures were counted by record_batch */
                pthread_mutex_lock(&e->m_mu);
                e->gm.commits++;
                e->gm.results_committed += k;
                pthread_mutex_unlock(&e->m_mu);
            }
            pthread_mutex_lock(&e->in_mu);
            for (size_t i = 0; i < k; i++)
                e->sinks[mine[off + i].sink].acked++;
            e->acks_pending = 1;
            pthread_mutex_unlock(&e->in_mu);
            dlv__sender_wakeup(&e->sender);
            for (size_t i = 0; i < k; i++) {
                free(mine[off + i].error);
                free(mine[off + i].reason);
                obx_attempt_clear(&mine[off + i].capture);
            }
            off += k;
        }
    }
    return NULL;
}

/* ---- claimer ---------------------------------------------------------------------- */

static void *claimer_main(void *arg)
{
    dlv_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->cl_mu);
        while (!e->cl_work && !e->cl_stop)
            pthread_cond_wait(&e->cl_cv, &e->cl_mu);
        if (e->cl_stop && !e->cl_work) {
            pthread_mutex_unlock(&e->cl_mu);
            break;
        }
        e->cl_work = 0;
        pthread_mutex_unlock(&e->cl_mu);
        for (size_t i = 0; i < e->n; i++) {
            pthread_mutex_lock(&e->cl_mu);
            size_t want = e->sinks[i].want;
            int mode = e->sinks[i].want_mode;
            e->sinks[i].want = 0;
            pthread_mutex_unlock(&e->cl_mu);
            if (!want)
                continue;
            claim_reply *r = calloc(1, sizeof *r);
            if (!r) {
                /* cannot even reply: tell the engine thread through an empty reply later */
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&e->cl_mu);
                e->sinks[i].want = want;
                e->cl_work = 1;
                pthread_mutex_unlock(&e->cl_mu);
                continue;
            }
            r->sink = i;
            r->asked = want;
            r->mode = mode;
            r->next_due = INT64_MAX;
            obx_error oe = {0};
            /* a sweep takes the sink's front whatever its due time */
            int64_t now = mode == CLAIM_SWEEP ? INT64_MAX / 4 : now_ms(e);
            int rc = obx_next_due(e->store, e->sinks[i].id, &r->next_due, &oe);
            if (rc == OBX_OK && r->next_due <= now)
                rc = obx_claim_due(e->store, e->sinks[i].id, now, want, &r->jobs, &r->n,
                                   &r->next_due, &oe);
            r->rc = rc;
            if (rc)
                snprintf(r->msg, sizeof r->msg, "%s", oe.msg);
            pthread_mutex_lock(&e->in_mu);
            if (e->replies_tail)
                e->replies_tail->next = r;
            else
                e->replies = r;
            e->replies_tail = r;
            pthread_mutex_unlock(&e->in_mu);
            dlv__sender_wakeup(&e->sender);
        }
    }
    return NULL;
}

static void ask_claim(dlv_engine *e, size_t i, size_t want, int mode)
{
    sink_rt *s = &e->sinks[i];
    s->claiming = 1;
    s->dirty = 0;
    pthread_mutex_lock(&e->cl_mu);
    s->want = want;
    s->want_mode = mode;
    e->cl_work = 1;
    pthread_cond_signal(&e->cl_cv);
    pthread_mutex_unlock(&e->cl_mu);
}

/* ---- job queues (FIFO lists through job.next; the caller holds the queue's lock) ------ */

static void jobq_push(job **head, job **tail, job *jb)
{
    jb->next = NULL;
    if (*tail)
        (*tail)->next = jb;
    else
        *head = jb;
    *tail = jb;
}

static job *jobq_pop(job **head, job **tail)
{
    job *jb = *head;
    if (!jb)
        return NULL;
    *head = jb->next;
    if (!*head)
        *tail = NULL;
    jb->next = NULL;
    return jb;
}

/* ---- render workers --------------------------------------------------------------- */

/* Most render workers; there are as many as template sinks, up to this. */
#define RENDER_WORKERS_MAX 4

/* The next job to render: round robin over the sinks, one render at a time per sink (so a
 * slow template occupies one worker, never all of them). Under rd_mu. */
static job *render_pick(dlv_engine *e)
{
    for (size_t k = 0; k < e->n; k++) {
        size_t i = (e->rd_rr + k) % e->n;
        sink_rt *s = &e->sinks[i];
        if (!s->rd_head || s->rd_busy)
            continue;
        job *jb = jobq_pop(&s->rd_head, &s->rd_tail);
        s->rd_busy = 1;
        e->rd_rr = (i + 1) % e->n;
        return jb;
    }
    return NULL;
}

/* A render worker: renders queued template bodies and hands each job back to the engine
 * thread (the `rendered` inbox), which signs and sends it. */
static void *render_main(void *arg)
{
    dlv_engine *e = arg;
    pthread_mutex_lock(&e->rd_mu);
    for (;;) {
        job *jb = render_pick(e);
        if (!jb) {
            if (e->rd_stop)
                break;
            pthread_cond_wait(&e->rd_cv, &e->rd_mu);
            continue;
        }
        pthread_mutex_unlock(&e->rd_mu);
        sink_rt *s = &e->sinks[jb->sink];
        jb->render_err[0] = '\0';
        jb->render_rc =
            dlv__request_render(&s->p, jb->j, &jb->rq, jb->render_err, sizeof jb->render_err);
        pthread_mutex_lock(&e->in_mu);
        jobq_push(&e->rendered, &e->rendered_tail, jb);
        pthread_mutex_unlock(&e->in_mu);
        dlv__sender_wakeup(&e->sender);
        pthread_mutex_lock(&e->rd_mu);
        s->rd_busy = 0;
        if (s->rd_head)
            pthread_cond_signal(&e->rd_cv); /* its next job, for any free worker */
    }
    pthread_mutex_unlock(&e->rd_mu);
    return NULL;
}

/* Engine thread: queue a job of a template sink for rendering. */
static void render_submit(dlv_engine *e, job *jb)
{
    sink_rt *s = &e->sinks[jb->sink];
    e->rendering++;
    pthread_mutex_lock(&e->rd_mu);
    jobq_push(&s->rd_head, &s->rd_tail, jb);
    pthread_cond_signal(&e->rd_cv);
    pthread_mutex_unlock(&e->rd_mu);
}

/* Engine thread: take back the jobs no worker has started (stopping). */
static job *render_take_queued(dlv_engine *e)
{
    job *all = NULL;
    pthread_mutex_lock(&e->rd_mu);
    for (size_t i = 0; i < e->n; i++) {
        sink_rt *s = &e->sinks[i];
        if (s->rd_head) {
            s->rd_tail->next = all;
            all = s->rd_head;
            s->rd_head = s->rd_tail = NULL;
        }
    }
    pthread_mutex_unlock(&e->rd_mu);
    return all;
}

/* ---- engine thread ---------------------------------------------------------------- */

static void send_job(dlv_engine *e, job *jb);
static void release_active(dlv_engine *e, job *jb);

static void job_free(job *jb)
{
    dlv__request_clear(&jb->rq);
    if (--jb->b->left == 0) {
        obx_jobs_free(jb->b->jobs, jb->b->n);
        free(jb->b);
    }
    free(jb);
}

static void record_release(dlv_engine *e, job *jb)
{
    if (jb->probe) /* paused or stopping before the probe went out: another one later */
        e->sinks[jb->sink].h.probing = 0;
    obx_result r = {
        .event_id = jb->j->event_id, .sink_id = jb->j->sink_id, .outcome = OBX_OUTCOME_RELEASE};
    push_result(e, jb->sink, &r);
    pthread_mutex_lock(&e->m_mu);
    e->sinks[jb->sink].m.released++;
    pthread_mutex_unlock(&e->m_mu);
    job_free(jb);
}

static void enqueue_ready(sink_rt *s, job *jb)
{
    jobq_push(&s->ready_head, &s->ready_tail, jb);
    s->n_ready++;
}

static job *dequeue_ready(sink_rt *s)
{
    job *jb = jobq_pop(&s->ready_head, &s->ready_tail);
    if (jb)
        s->n_ready--;
    return jb;
}

static void take_reply(dlv_engine *e, claim_reply *r, int stopping)
{
    sink_rt *s = &e->sinks[r->sink];
    s->claiming = 0;
    if (r->rc == OBX_OK || r->rc == OBX_ERR_UNAVAILABLE)
        dlv__outage_note(&e->outage, r->rc == OBX_ERR_UNAVAILABLE, now_ms(e));
    if (r->rc) {
        pthread_mutex_lock(&e->m_mu);
        e->gm.claim_errors++;
        e->gm.last_store_error = r->rc;
        snprintf(e->gm.last_error, sizeof e->gm.last_error, "claiming for sink %s: %.160s", s->name,
                 r->msg);
        pthread_mutex_unlock(&e->m_mu);
        s->next_due = now_ms(e) + 1000; /* try again in a second */
        return;
    }
    s->next_due = r->n == r->asked ? 0 : r->next_due;
    if (r->n < r->asked && r->mode == CLAIM_SWEEP)
        s->sweep_more = 0;
    if (r->n == 0)
        return;
    int64_t now = now_ms(e);
    char reason[DLV_REASON_MAX];
    int sweep = r->mode == CLAIM_SWEEP && dlv__health_give_up(&s->h, now, reason, sizeof reason);
    int probe = r->mode == CLAIM_PROBE && s->h.st.down && !s->h.st.paused;
    if (sweep || (dlv__health_held(&s->h) && !probe) || stopping) {
        /* an outage past give_up_after: dead letters, never sent; or the sink was paused or
         * went down while this claim ran: back to pending as they were */
        for (size_t k = 0; k < r->n; k++) {
            obx_result rr = {.event_id = r->jobs[k].event_id,
                             .sink_id = r->jobs[k].sink_id,
                             .outcome = sweep ? OBX_OUTCOME_DEAD : OBX_OUTCOME_RELEASE,
                             .started_ms = now,
                             .first_attempt_ms = r->jobs[k].first_attempt_ms,
                             .deadline_ms = r->jobs[k].deadline_ms,
                             .error = sweep ? "not sent: the sink is down" : NULL,
                             .reason = sweep ? reason : NULL};
            push_result(e, r->sink, &rr);
        }
        pthread_mutex_lock(&e->m_mu);
        if (sweep)
            s->m.dead += r->n;
        else
            s->m.released += r->n;
        pthread_mutex_unlock(&e->m_mu);
        obx_jobs_free(r->jobs, r->n);
        return;
    }
    batch *b = calloc(1, sizeof *b);
    if (!b) {
        /* cannot track them: back to pending, no attempt counted */
        for (size_t k = 0; k < r->n; k++) {
            obx_result rr = {.event_id = r->jobs[k].event_id,
                             .sink_id = r->jobs[k].sink_id,
                             .outcome = OBX_OUTCOME_RELEASE};
            push_result(e, r->sink, &rr);
        }
        obx_jobs_free(r->jobs, r->n);
        s->next_due = 0; /* ask again */
        return;
    }
    b->jobs = r->jobs;
    b->n = r->n;
    b->left = r->n;
    /* An ordered sink's first claim after start looks at a window: the delivery left in
     * flight by a crash (in doubt, made due at the restart, so behind the others) goes
     * first; the rest of the window goes back untouched. */
    size_t pick = 0;
    int window = s->p.ordered && r->n > 1;
    if (window && (!probe || s->p.ordered))
        for (size_t k = r->n; k-- > 0;)
            if (r->jobs[k].in_doubt &&
                (!r->jobs[pick].in_doubt || r->jobs[k].event_id < r->jobs[pick].event_id))
                pick = k;
    if (probe) { /* one probe: the oldest due, not the last probe again while others wait */
        window = r->n > 1;
        while (!s->p.ordered && pick + 1 < r->n && r->jobs[pick].event_id == s->h.last_probe)
            pick++;
        s->h.probing = 1;
    }
    s->recovering = 0;
    for (size_t k = 0; k < r->n; k++) {
        job *jb = (window && k != pick) ? NULL : calloc(1, sizeof *jb);
        if (!jb) {
            /* not taken (window) or out of memory: back to pending, no attempt counted */
            obx_result rr = {.event_id = r->jobs[k].event_id,
                             .sink_id = r->jobs[k].sink_id,
                             .outcome = OBX_OUTCOME_RELEASE};
            push_result(e, r->sink, &rr);
            if (--b->left == 0) {
                obx_jobs_free(b->jobs, b->n);
                free(b);
            }
            continue;
        }
        jb->j = &r->jobs[k];
        jb->b = b;
        jb->sink = r->sink;
        jb->probe = probe;
        enqueue_ready(s, jb);
    }
}

/* Take in what the other threads posted. Returns 1 when a stop was requested. */
static int drain_inbox(dlv_engine *e, int stopping, int64_t *deadline)
{
    pthread_mutex_lock(&e->in_mu);
    claim_reply *r = e->replies;
    e->replies = e->replies_tail = NULL;
    job *rendered = e->rendered;
    e->rendered = e->rendered_tail = NULL;
    if (e->acks_pending) {
        for (size_t i = 0; i < e->n; i++) {
            sink_rt *s = &e->sinks[i];
            s->uncommitted -= s->acked < s->uncommitted ? s->acked : s->uncommitted;
            s->acked = 0;
        }
        e->acks_pending = 0;
    }
    int stop = e->stop_req;
    *deadline = e->stop_deadline;
    pthread_mutex_unlock(&e->in_mu);
    if (__atomic_exchange_n(&e->notified, 0, __ATOMIC_ACQ_REL))
        for (size_t i = 0; i < e->n; i++)
            e->sinks[i].dirty = 1;
    while (r) {
        claim_reply *nx = r->next;
        take_reply(e, r, stopping || stop);
        free(r);
        r = nx;
    }
    while (rendered) {
        job *nx = rendered->next;
        e->rendering--;
        if (stopping || stop)
            release_active(e, rendered); /* not sent yet: back to pending */
        else
            send_job(e, rendered);
        rendered = nx;
    }
    return stop;
}

/* Publish a sink's health in its metrics (under m_mu), with a transition of kind `turn`
 * (DLV_TURN_*) or none (-1). */
static void health_publish(dlv_engine *e, sink_rt *s, int turn)
{
    pthread_mutex_lock(&e->m_mu);
    if (turn >= 0) {
        s->m.turns[turn]++;
        snprintf(s->m.turn_why[turn], sizeof s->m.turn_why[turn], "%s", s->h.st.why);
    }
    s->m.up = !s->h.st.down;
    s->m.paused = s->h.st.paused;
    s->m.state_changes = s->h.st.changes;
    s->m.state_since_ms = s->h.st.changed_ms;
    snprintf(s->m.state_why, sizeof s->m.state_why, "%s", s->h.st.why);
    pthread_mutex_unlock(&e->m_mu);
}

/* The sink is held now (down or paused): its claimed jobs not started go back. */
static void release_ready(dlv_engine *e, sink_rt *s)
{
    job *jb;
    while ((jb = dequeue_ready(s)) != NULL)
        record_release(e, jb);
}

/*
 * The breaker turned (DLV__HEALTH_DOWN / _UP): store it (one short write transaction on
 * this thread; transitions are rare), publish it, and stop or resume claiming. A store
 * failure keeps the new state in memory and is retried at the next transition.
 */
static void health_turn(dlv_engine *e, size_t i, int turn, int64_t now, const char *why)
{
    sink_rt *s = &e->sinks[i];
    obx_sink_state st;
    obx_error oe = {0};
    int down = turn == DLV__HEALTH_DOWN;
    int rc = obx_sink_state_set(e->store, s->id, OBX_SINK_DOWN, down, now, why,
                                down ? s->h.last_error : NULL, &st, NULL, &oe);
    if (rc == OBX_OK) {
        (void)dlv__health_take(&s->h, &st, now);
    } else {
        /* kept in memory (until the next poll reads the store, if it stores health) */
        s->h.st.down = !down; /* as before the turn, for the rule to apply it */
        obx_sink_state_apply(&s->h.st, OBX_SINK_DOWN, down, now, why,
                             down ? s->h.last_error : NULL);
        if (rc == OBX_ERR_STATE)
            e->health_in_memory = 1; /* the backend stores no health: never read it back */
    }
    if (rc != OBX_OK && rc != OBX_ERR_STATE) { /* ERR_STATE: the backend stores no health */
        pthread_mutex_lock(&e->m_mu);
        e->gm.claim_errors++;
        e->gm.last_store_error = rc;
        snprintf(e->gm.last_error, sizeof e->gm.last_error, "sink %.63s health: %.160s", s->name,
                 oe.msg);
        pthread_mutex_unlock(&e->m_mu);
    }
    if (down) {
        release_ready(e, s);
        s->sweep_more = 1;
    } else {
        s->blocked_until = 0;
        s->dirty = 1;
    }
    health_publish(e, s, down ? DLV_TURN_DOWN : DLV_TURN_UP);
}

/* Read the stored state of every sink (each poll): pause and resume by outboxctl. */
static void health_poll(dlv_engine *e, int64_t now)
{
    if (e->health_in_memory)
        return;
    for (size_t i = 0; i < e->n; i++) {
        sink_rt *s = &e->sinks[i];
        obx_sink_state st;
        if (obx_sink_state_get(e->store, s->id, &st, NULL) != OBX_OK)
            continue;
        uint64_t before = s->h.st.changes;
        int turn = -1;
        if (dlv__health_take(&s->h, &st, now)) {
            turn = st.paused ? DLV_TURN_PAUSED : DLV_TURN_RESUMED;
            if (st.paused)
                release_ready(e, s);
        }
        if (st.changes != before)
            health_publish(e, s, turn);
    }
}

static void finish_attempt(dlv_engine *e, job *jb, dlv__outcome *o)
{
    sink_rt *s = &e->sinks[jb->sink];
    int64_t now = now_ms(e);
    dlv__decision d;
    obx_job wall; /* the budget on the wall clock: time held does not spend it */
    dlv__health_job_to_wall(&s->h, jb->j, now, &wall);
    if (wall.first_attempt_ms) { /* the store unavailable since it fell due spends nothing */
        int64_t since = jb->j->due_ms;
        if (s->p.ordered && s->blocked_until > since) /* its due time stays the head's */
            since = s->blocked_until;
        int64_t off = dlv__outage_overlap(&e->outage, since, now);
        wall.first_attempt_ms += off;
        if (wall.deadline_ms)
            wall.deadline_ms += off;
    }
    dlv__decide(&s->p, &wall, o, jb->started_ms, now, rnd(e), &d);
    char why[OBX_SINK_WHY_MAX] = "";
    int turn = dlv__health_attempt(&s->h, jb->j->event_id, jb->probe, &d, o, now, why, sizeof why);
    if (d.outcome == OBX_OUTCOME_RETRY && turn == DLV__HEALTH_SAME &&
        dlv__health_give_up(&s->h, now, d.reason, sizeof d.reason))
        d.outcome = OBX_OUTCOME_DEAD; /* a probe of an outage past give_up_after */
    dlv__health_decision_to_stored(&s->h, now, &d);
    obx_result r = {.event_id = jb->j->event_id,
                    .sink_id = jb->j->sink_id,
                    .outcome = d.outcome,
                    .started_ms = jb->started_ms,
                    .duration_ms = o->duration_ms,
                    .status = o->status,
                    .error = o->error[0] ? o->error : NULL,
                    .first_attempt_ms = d.first_attempt_ms,
                    .deadline_ms = d.deadline_ms,
                    .next_attempt_ms = d.next_attempt_ms,
                    .reason = d.outcome == OBX_OUTCOME_DEAD ? d.reason : NULL,
                    .body_size = o->body_size};
    if (d.outcome == OBX_OUTCOME_RETRY && s->p.ordered) {
        /* keep the head first in the sink's due index; wait for its time in memory */
        s->blocked_until = d.next_attempt_ms;
        r.next_attempt_ms = jb->j->due_ms < d.next_attempt_ms ? jb->j->due_ms : d.next_attempt_ms;
    }
    if (d.outcome == OBX_OUTCOME_RETRY && !s->p.ordered && d.next_attempt_ms < s->retry_min)
        s->retry_min = d.next_attempt_ms; /* a claim reply may not know of it yet */
    push_result_taking(e, jb->sink, &r, o);
    if (d.outcome != OBX_OUTCOME_DELIVERED && e->o.on_failed_attempt) {
        dlv_attempt_event ev = {.sink = jb->sink,
                                .sink_name = s->name,
                                .event_id = jb->j->event_id,
                                .attempt = jb->j->attempts + 1,
                                .status = o->transport_error ? 0 : o->status,
                                .error = o->error[0] ? o->error : NULL,
                                .outcome = d.outcome,
                                .next_attempt_ms = d.next_attempt_ms};
        e->o.on_failed_attempt(e->o.on_failed_attempt_ud, &ev);
    }
    if (turn != DLV__HEALTH_SAME)
        health_turn(e, jb->sink, turn, now, why);
    pthread_mutex_lock(&e->m_mu);
    dlv_sink_metrics *m = &s->m;
    m->attempts++;
    m->attempts_by_class[o->cls >= 0 && o->cls < DLV_CLASS_COUNT ? o->cls : DLV_CLASS_OTHER]++;
    hist_add(&m->attempt_duration, dlv_attempt_duration_bounds, o->duration_ms / 1000.0);
    if (d.outcome == OBX_OUTCOME_DELIVERED) {
        m->delivered++;
        int64_t lat = jb->started_ms + o->duration_ms - jb->j->received_ms;
        hist_add(&m->latency, dlv_latency_bounds, lat > 0 ? lat / 1000.0 : 0.0);
    } else if (d.outcome == OBX_OUTCOME_RETRY) {
        m->retried++;
    } else {
        m->dead++;
    }
    pthread_mutex_unlock(&e->m_mu);
}

static void running_add(dlv_engine *e, job *jb)
{
    jb->prev = NULL;
    jb->next = e->running;
    if (e->running)
        e->running->prev = jb;
    e->running = jb;
}

static void running_del(dlv_engine *e, job *jb)
{
    if (jb->prev)
        jb->prev->next = jb->next;
    else
        e->running = jb->next;
    if (jb->next)
        jb->next->prev = jb->prev;
    jb->next = jb->prev = NULL;
}

/* Publish the in-flight and queued gauges (one lock, and only when something changed). */
static void publish_gauges(dlv_engine *e)
{
    int changed = 0;
    for (size_t i = 0; i < e->n && !changed; i++)
        changed = e->sinks[i].active != e->sinks[i].pub_active ||
                  e->sinks[i].n_ready != e->sinks[i].pub_ready;
    if (!changed)
        return;
    pthread_mutex_lock(&e->m_mu);
    for (size_t i = 0; i < e->n; i++) {
        sink_rt *s = &e->sinks[i];
        s->m.in_flight = s->pub_active = s->active;
        s->m.queued = s->pub_ready = s->n_ready;
    }
    e->gm.in_flight = e->total_active;
    pthread_mutex_unlock(&e->m_mu);
}

/* A job that counted as active ends without an attempt: back to pending. */
static void release_active(dlv_engine *e, job *jb)
{
    e->sinks[jb->sink].active--;
    e->total_active--;
    record_release(e, jb);
}

/* A job that counted as active ends here (its result was pushed). */
static void end_active(dlv_engine *e, job *jb)
{
    if (jb->probe) /* its attempt is counted (or it died unsent, of its template) */
        e->sinks[jb->sink].h.probing = 0;
    e->sinks[jb->sink].active--;
    e->total_active--;
    job_free(jb);
}

/*
 * Sign and send an active job whose body is ready (URL mode, or rendered by a worker with
 * render_rc set). A body that cannot be rendered makes the delivery dead at once, never
 * sent; a request that cannot even start is an attempt that failed locally, retried as
 * usual.
 */
static void send_job(dlv_engine *e, job *jb)
{
    sink_rt *s = &e->sinks[jb->sink];
    jb->started_ms = now_ms(e);
    char err[256] = "";
    int rc = s->p.tmpl ? jb->render_rc : DLV_OK;
    if (rc != DLV_OK)
        snprintf(err, sizeof err, "%s", jb->render_err);
    else
        rc = dlv__request_build(&s->p, jb->j, jb->started_ms, &jb->rq, err, sizeof err);
    if (rc == DLV_ERR_TEMPLATE) {
        char reason[300];
        snprintf(reason, sizeof reason, "template: %s", err);
        obx_result r = {.event_id = jb->j->event_id,
                        .sink_id = jb->j->sink_id,
                        .outcome = OBX_OUTCOME_DEAD,
                        .started_ms = jb->started_ms,
                        .error = err,
                        .first_attempt_ms =
                            jb->j->first_attempt_ms ? jb->j->first_attempt_ms : jb->started_ms,
                        .deadline_ms = jb->j->deadline_ms,
                        .reason = reason};
        push_result(e, jb->sink, &r);
        pthread_mutex_lock(&e->m_mu);
        s->m.dead++;
        s->m.render_errors++;
        pthread_mutex_unlock(&e->m_mu);
        end_active(e, jb);
        return;
    }
    if (rc == DLV_OK)
        rc = dlv__sender_start(&e->sender, &jb->x, &s->p.transport, jb->rq.body, jb->rq.body_len,
                               jb->rq.headers, err, sizeof err);
    if (rc != DLV_OK) {
        dlv__outcome o = {.transport_error = 1, .cls = DLV_CLASS_OTHER};
        snprintf(o.error, sizeof o.error, "%.180s", err[0] ? err : "out of memory");
        finish_attempt(e, jb, &o);
        end_active(e, jb);
        return;
    }
    jb->x.ud = jb;
    running_add(e, jb);
}

/* Start one job of sink i: send it, or hand it to the render workers (template mode).
 * Returns 1 when a job was taken. */
static int start_one(dlv_engine *e, size_t i)
{
    sink_rt *s = &e->sinks[i];
    job *jb = dequeue_ready(s);
    if (!jb)
        return 0;
    s->active++;
    e->total_active++;
    if (s->p.tmpl)
        render_submit(e, jb);
    else
        send_job(e, jb);
    return 1;
}

static void start_ready(dlv_engine *e)
{
    size_t global = e->o.max_in_flight_total;
    int progress = 1;
    while (progress && e->total_active < global) {
        progress = 0;
        for (size_t k = 0; k < e->n && e->total_active < global; k++) {
            size_t i = (e->rr + k) % e->n;
            sink_rt *s = &e->sinks[i];
            if (s->active < s->p.limit && s->n_ready)
                progress |= start_one(e, i);
        }
        e->rr = (e->rr + 1) % (e->n ? e->n : 1);
    }
}

/* How many jobs sink s would take now (0 = none). */
/* Deliveries an ordered sink's first claim looks at to find one left in doubt. */
#define ORDERED_RECOVERY_WINDOW 1024

static size_t claim_room(const sink_rt *s, size_t prefetch, int64_t now)
{
    if (s->claiming)
        return 0;
    if (s->p.ordered) {
        if (s->active || s->n_ready || s->uncommitted || now < s->blocked_until)
            return 0;
        return s->recovering ? ORDERED_RECOVERY_WINDOW : 1;
    }
    /* keep up to `queue` claimed jobs waiting behind the running ones, so that a claim
     * commit never leaves the sink idle; ask again when half of them are gone */
    size_t queue = prefetch > s->p.limit ? prefetch : s->p.limit;
    size_t have = s->active + s->n_ready;
    size_t target = s->p.limit + queue;
    if (have >= target || s->n_ready > queue / 2)
        return 0;
    size_t room = target - have;
    size_t min_batch = s->p.limit / 4 ? s->p.limit / 4 : 1;
    if (have && room < min_batch)
        return 0;
    return room;
}

/* Deliveries swept into dead letters per claim, once an outage passes give_up_after. */
#define SWEEP_BATCH 256

/*
 * Claims of a sink that is down or paused: nothing while paused; while down, one probe
 * at a time once nothing of the sink runs and the probe interval has passed: the oldest
 * due delivery (two are asked for, so that the last probe is not taken again while
 * another is due; ordered sinks probe with their head), and past give_up_after the other
 * held deliveries as dead letters.
 */
static void held_claims(dlv_engine *e, size_t i, int64_t now, int64_t *wait)
{
    sink_rt *s = &e->sinks[i];
    if (s->h.st.paused || s->claiming)
        return;
    if (s->dirty)
        s->sweep_more = 1; /* new deliveries may have come */
    char reason[DLV_REASON_MAX];
    if (s->sweep_more && s->h.probing && dlv__health_give_up(&s->h, now, reason, sizeof reason)) {
        ask_claim(e, i, SWEEP_BATCH, CLAIM_SWEEP);
        return;
    }
    if (s->active || s->n_ready || (s->p.ordered && s->uncommitted) || s->h.probing)
        return;
    if (!dlv__health_probe_due(&s->h, now)) {
        if (s->h.probe_at - now < *wait)
            *wait = s->h.probe_at - now;
        return;
    }
    int64_t due = s->next_due < s->retry_min ? s->next_due : s->retry_min;
    if (s->dirty || due <= now) {
        if (s->retry_min <= now)
            s->retry_min = INT64_MAX;
        ask_claim(e, i,
                  !s->p.ordered   ? 2
                  : s->recovering ? ORDERED_RECOVERY_WINDOW
                                  : 1,
                  CLAIM_PROBE);
    } else if (due != INT64_MAX && due - now < *wait) {
        *wait = due - now;
    }
}

static void *loop_main(void *arg)
{
    dlv_engine *e = arg;
    int stopping = 0;
    int64_t deadline = 0;
    int64_t last_poll = mono_ms();
    for (;;) {
        int stop = drain_inbox(e, stopping, &deadline);
        if (stop && !stopping) {
            stopping = 1;
            for (size_t i = 0; i < e->n; i++) {
                job *jb;
                while ((jb = dequeue_ready(&e->sinks[i])) != NULL)
                    record_release(e, jb);
            }
            /* bodies not yet being rendered go back too; those being rendered come back
             * through the inbox and are released there */
            for (job *jb = render_take_queued(e), *nx; jb; jb = nx) {
                nx = jb->next;
                e->rendering--;
                release_active(e, jb);
            }
            publish_gauges(e);
        }
        int64_t mono = mono_ms();
        int64_t now = now_ms(e);
        if (mono - last_poll >= (int64_t)e->o.poll_ms) {
            last_poll = mono;
            for (size_t i = 0; i < e->n; i++)
                e->sinks[i].dirty = 1;
            if (!stopping)
                health_poll(e, now);
        }
        int64_t wait = (int64_t)e->o.poll_ms - (mono - last_poll);
        if (stopping) {
            if (mono >= deadline) {
                while (e->running) {
                    job *jb = e->running;
                    running_del(e, jb);
                    dlv__sender_abort(&e->sender, &jb->x);
                    release_active(e, jb);
                }
            }
            int claiming = 0;
            for (size_t i = 0; i < e->n; i++)
                claiming |= e->sinks[i].claiming;
            if (!e->running && !claiming && !e->rendering)
                break;
            if (deadline - mono < wait)
                wait = deadline - mono;
        } else {
            start_ready(e);
            for (size_t i = 0; i < e->n; i++) {
                sink_rt *s = &e->sinks[i];
                if (dlv__health_held(&s->h)) {
                    held_claims(e, i, now, &wait);
                    continue;
                }
                size_t room = claim_room(s, e->o.prefetch, now);
                if (!room)
                    continue;
                int64_t due = s->next_due < s->retry_min ? s->next_due : s->retry_min;
                if (s->dirty || due <= now) {
                    if (s->retry_min <= now)
                        s->retry_min = INT64_MAX;
                    ask_claim(e, i, room, CLAIM_DUE);
                } else if (due != INT64_MAX && due - now < wait) {
                    wait = due - now;
                }
            }
            for (size_t i = 0; i < e->n; i++) {
                sink_rt *s = &e->sinks[i];
                if (s->p.ordered && !s->claiming && s->blocked_until > now &&
                    s->blocked_until - now < wait)
                    wait = s->blocked_until - now;
            }
        }
        if (wait < 0)
            wait = 0;
        (void)dlv__sender_run(&e->sender, (int)wait);
        dlv__outcome o;
        dlv__xfer *x;
        while ((x = dlv__sender_done(&e->sender, &o)) != NULL) {
            job *jb = x->ud;
            running_del(e, jb);
            finish_attempt(e, jb, &o);
            dlv__outcome_clear(&o);
            end_active(e, jb);
        }
        publish_gauges(e);
    }
    publish_gauges(e);
    return NULL;
}

/* ---- public API ------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int set_error(dlv_error *err, int code, int store,
                                                           const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->store = store;
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int dlv_engine_new(obx_store *store, const dlv_sink_config *sinks, size_t n,
                   const dlv_engine_options *opts, dlv_engine **out, dlv_error *err)
{
    int rc;
    *out = NULL;
    if (!store || (n && !sinks))
        return set_error(err, DLV_ERR_INVALID, 0, "engine: store and sinks are required");
    dlv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return set_error(err, DLV_ERR_NOMEM, 0, "engine: out of memory");
    e->store = store;
    options_apply(&e->o, opts);
    dlv_rng_seed(&e->rng, (uint64_t)obx_now_ms() ^ (uint64_t)(uintptr_t)e);
    pthread_mutex_init(&e->in_mu, NULL);
    pthread_mutex_init(&e->cl_mu, NULL);
    pthread_cond_init(&e->cl_cv, NULL);
    pthread_mutex_init(&e->cm_mu, NULL);
    pthread_cond_init(&e->cm_cv, NULL);
    pthread_cond_init(&e->cm_space, NULL);
    pthread_mutex_init(&e->m_mu, NULL);
    pthread_mutex_init(&e->rd_mu, NULL);
    pthread_cond_init(&e->rd_cv, NULL);
    e->sinks = calloc(n ? n : 1, sizeof *e->sinks);
    e->cm_items = malloc(RESULTS_MIN * sizeof *e->cm_items);
    e->cm_rs = malloc(RESULTS_MIN * sizeof *e->cm_rs);
    e->cm_cap = RESULTS_MIN;
    e->q = queue_grow(NULL, RESULTS_MIN);
    e->capq = RESULTS_MIN;
    if (!e->q) { /* a test's cap below RESULTS_MIN: start with one entry */
        e->q = queue_grow(NULL, 1);
        e->capq = 1;
    }
    if (!e->sinks || !e->cm_items || !e->cm_rs || !e->q) {
        rc = set_error(err, DLV_ERR_NOMEM, 0, "engine: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        sink_rt *s = &e->sinks[i];
        char perr[DLV_ERRMSG_MAX] = "";
        rc = dlv__prepare(&s->p, &sinks[i], perr, sizeof perr);
        if (rc != DLV_OK) {
            set_error(err, rc, 0, "sinks[%zu]: %s", i, perr);
            e->n = i;
            goto fail;
        }
        e->n = i + 1;
        s->p.transport.slot = i; /* its own pool of easy handles in the sender */
        obx_error oe = {0};
        const char *name = sinks[i].name;
        int orc = obx_sink_id(store, name, &s->id, &oe);
        if (orc == OBX_OK) /* a store shared by several nodes enforces these across them */
            orc = obx_sink_limit(store, s->id, sinks[i].max_in_flight, sinks[i].ordered, &oe);
        if (orc != OBX_OK) {
            rc = set_error(err, DLV_ERR_STORE, orc, "sink '%s': %s", name ? name : "", oe.msg);
            goto fail;
        }
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->m.name, sizeof s->m.name, "%s", name);
        s->m.sink_id = s->id;
        obx_sink_state st;
        if (dlv__health_init(&s->h, &sinks[i]) != DLV_OK) {
            rc = set_error(err, DLV_ERR_NOMEM, 0, "engine: out of memory");
            goto fail;
        }
        orc = obx_sink_state_get(store, s->id, &st, &oe);
        if (orc != OBX_OK) {
            rc = set_error(err, DLV_ERR_STORE, orc, "sink '%s': %s", name, oe.msg);
            goto fail;
        }
        (void)dlv__health_take(&s->h, &st, obx_now_ms());
        health_publish(e, s, -1);
        s->next_due = 0;
        s->retry_min = INT64_MAX;
        s->dirty = 1;
        for (size_t k = 0; k < i; k++)
            if (e->sinks[k].id == s->id) {
                rc = set_error(err, DLV_ERR_INVALID, 0, "sink '%s' is configured twice", name);
                goto fail;
            }
    }
    for (size_t i = 0; i < n; i++)
        e->n_rd += e->sinks[i].p.tmpl != NULL;
    if (e->n_rd > RENDER_WORKERS_MAX)
        e->n_rd = RENDER_WORKERS_MAX;
    if (e->n_rd && !(e->rd_th = calloc(e->n_rd, sizeof *e->rd_th))) {
        rc = set_error(err, DLV_ERR_NOMEM, 0, "engine: out of memory");
        goto fail;
    }
    size_t conns = 0;
    for (size_t i = 0; i < n; i++)
        conns += e->sinks[i].p.limit;
    if (conns > e->o.max_in_flight_total)
        conns = e->o.max_in_flight_total;
    char serr[DLV_ERRMSG_MAX] = "";
    rc = dlv__sender_init(&e->sender, (long)(conns ? conns : 1), serr, sizeof serr);
    if (rc != DLV_OK) {
        set_error(err, rc, 0, "%s", serr);
        goto fail;
    }
    e->sender_ok = 1;
    *out = e;
    return DLV_OK;
fail:
    dlv_engine_free(e);
    return rc;
}

static void on_notify(void *ud)
{
    dlv_engine *e = ud;
    __atomic_store_n(&e->notified, 1, __ATOMIC_RELEASE);
    dlv__sender_wakeup(&e->sender);
}

static void stop_render_workers(dlv_engine *e)
{
    pthread_mutex_lock(&e->rd_mu);
    e->rd_stop = 1;
    pthread_cond_broadcast(&e->rd_cv);
    pthread_mutex_unlock(&e->rd_mu);
    for (size_t i = 0; i < e->rd_started; i++)
        pthread_join(e->rd_th[i], NULL);
    e->rd_started = 0;
}

static void stop_claimer(dlv_engine *e)
{
    pthread_mutex_lock(&e->cl_mu);
    e->cl_stop = 1;
    pthread_cond_signal(&e->cl_cv);
    pthread_mutex_unlock(&e->cl_mu);
    pthread_join(e->claim_th, NULL);
}

static void stop_committer(dlv_engine *e)
{
    pthread_mutex_lock(&e->cm_mu);
    e->cm_stop = 1;
    pthread_cond_signal(&e->cm_cv);
    pthread_mutex_unlock(&e->cm_mu);
    pthread_join(e->commit_th, NULL);
}

int dlv_engine_start(dlv_engine *e, dlv_error *err)
{
    if (e->started)
        return set_error(err, DLV_ERR_INVALID, 0, "engine: already started");
    e->stop_req = 0;
    e->cl_stop = 0;
    e->cm_stop = 0;
    e->rd_stop = 0;
    for (size_t i = 0; i < e->n; i++)
        e->sinks[i].recovering = e->sinks[i].p.ordered;
    if (pthread_create(&e->commit_th, NULL, committer_main, e) != 0)
        return set_error(err, DLV_ERR_SYSTEM, 0, "engine: cannot start the committer thread");
    pthread_setname_np(e->commit_th, "dlv-commit");
    if (pthread_create(&e->claim_th, NULL, claimer_main, e) != 0) {
        set_error(err, DLV_ERR_SYSTEM, 0, "engine: cannot start the claimer thread");
        goto stop_commit;
    }
    pthread_setname_np(e->claim_th, "dlv-claim");
    for (; e->rd_started < e->n_rd; e->rd_started++) {
        if (pthread_create(&e->rd_th[e->rd_started], NULL, render_main, e) != 0) {
            set_error(err, DLV_ERR_SYSTEM, 0, "engine: cannot start a render thread");
            goto stop_render;
        }
        pthread_setname_np(e->rd_th[e->rd_started], "dlv-render");
    }
    if (pthread_create(&e->loop_th, NULL, loop_main, e) != 0) {
        set_error(err, DLV_ERR_SYSTEM, 0, "engine: cannot start the engine thread");
        goto stop_render;
    }
    pthread_setname_np(e->loop_th, "dlv-send");
    e->started = 1;
    obx_set_notify(e->store, on_notify, e);
    return DLV_OK;
stop_render:
    stop_render_workers(e);
    stop_claimer(e);
stop_commit:
    stop_committer(e);
    return DLV_ERR_SYSTEM;
}

void dlv_engine_stop(dlv_engine *e, unsigned grace_ms)
{
    if (!e || !e->started)
        return;
    pthread_mutex_lock(&e->in_mu);
    e->stop_req = 1;
    e->stop_deadline = mono_ms() + grace_ms;
    pthread_mutex_unlock(&e->in_mu);
    dlv__sender_wakeup(&e->sender);
    pthread_join(e->loop_th, NULL);
    /* no renders, claims or results after the engine thread is gone (it waited for every
     * job it handed to a render worker) */
    stop_render_workers(e);
    stop_claimer(e);
    stop_committer(e);
    obx_set_notify(e->store, NULL, NULL);
    /* A no-op write as a fence: the writer runs batches one after another and calls the
     * notify callback inside a batch, so once this returns no call that read the old
     * callback (and this engine) can still be running. */
    obx_result fence = {.event_id = 0, .sink_id = 0, .outcome = OBX_OUTCOME_RELEASE};
    (void)obx_record(e->store, &fence, 1, NULL);
    e->started = 0;
    /* claim replies that raced with the stop are released (none expected: the engine
     * thread waits for its claims before it exits) */
    claim_reply *r = e->replies;
    e->replies = e->replies_tail = NULL;
    while (r) {
        claim_reply *nx = r->next;
        if (r->n) {
            obx_result *rs = calloc(r->n, sizeof *rs);
            for (size_t k = 0; rs && k < r->n; k++)
                rs[k] = (obx_result){.event_id = r->jobs[k].event_id,
                                     .sink_id = r->jobs[k].sink_id,
                                     .outcome = OBX_OUTCOME_RELEASE};
            if (rs)
                (void)obx_record(e->store, rs, r->n, NULL);
            free(rs);
            obx_jobs_free(r->jobs, r->n);
        }
        free(r);
        r = nx;
    }
}

void dlv_engine_free(dlv_engine *e)
{
    if (!e)
        return;
    dlv_engine_stop(e, 0);
    if (e->sender_ok)
        dlv__sender_cleanup(&e->sender);
    for (size_t i = 0; i < e->n; i++) {
        dlv__prepared_clear(&e->sinks[i].p);
        dlv__health_clear(&e->sinks[i].h);
    }
    free(e->sinks);
    free(e->q);
    free(e->cm_items);
    free(e->cm_rs);
    pthread_mutex_destroy(&e->in_mu);
    pthread_mutex_destroy(&e->cl_mu);
    pthread_cond_destroy(&e->cl_cv);
    pthread_mutex_destroy(&e->cm_mu);
    pthread_cond_destroy(&e->cm_cv);
    pthread_cond_destroy(&e->cm_space);
    pthread_mutex_destroy(&e->m_mu);
    pthread_mutex_destroy(&e->rd_mu);
    pthread_cond_destroy(&e->rd_cv);
    free(e->rd_th);
    free(e);
}

void dlv_engine_kick(dlv_engine *e)
{
    if (!e || !e->sender_ok)
        return;
    on_notify(e);
}

size_t dlv_engine_insecure_sinks(const dlv_engine *e, const char **names, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (!e->sinks[i].p.transport.insecure)
            continue;
        if (names && k < max)
            names[k] = e->sinks[i].name;
        k++;
    }
    return k;
}

int dlv_engine_metrics(dlv_engine *e, dlv_metrics *out)
{
    memset(out, 0, sizeof *out);
    dlv_sink_metrics *sm = calloc(e->n ? e->n : 1, sizeof *sm);
    if (!sm)
        return DLV_ERR_NOMEM;
    pthread_mutex_lock(&e->m_mu);
    *out = e->gm;
    for (size_t i = 0; i < e->n; i++)
        sm[i] = e->sinks[i].m;
    pthread_mutex_unlock(&e->m_mu);
    out->n_sinks = e->n;
    out->sinks = sm;
    return DLV_OK;
}

void dlv_metrics_free(dlv_metrics *m)
{
    if (!m)
        return;
    free(m->sinks);
    m->sinks = NULL;
    m->n_sinks = 0;
}
