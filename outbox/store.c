/*
 * store.c - opening and closing an outbox, the owner lock, schema checks, and the
 * group-commit writer.
 *
 * Every write is an operation (obx_op). In the owner process a single writer thread
 * drains the queue of operations submitted by any number of threads, applies them all in
 * one LMDB write transaction, commits (and so syncs) once, then wakes every submitter
 * with its own result: one sync acknowledges a whole batch. If the commit fails, every
 * operation of the batch fails and nothing is acknowledged. An operation that fails on
 * its own (store full, not found) is dropped from the batch without affecting the rest:
 * logical failures are detected before anything is written, and an LMDB failure (e.g.
 * MDB_MAP_FULL) or a failed allocation aborts the transaction, fails that operation and
 * re-runs the others (op_breaks_txn): an operation fails whole and changes nothing.
 *
 * Tool processes (outboxctl) have no writer thread: each operation runs in its own
 * write transaction; LMDB serializes writers across processes.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *obx_strerror(int code)
{
    switch (code) {
    case OBX_OK:
        return "ok";
    case OBX_ERR_INVALID:
        return "invalid argument";
    case OBX_ERR_NOMEM:
        return "out of memory";
    case OBX_ERR_IO:
        return "I/O error";
    case OBX_ERR_LMDB:
        return "LMDB error";
    case OBX_ERR_FULL:
        return "store full";
    case OBX_ERR_LOCKED:
        return "outbox owned by another process";
    case OBX_ERR_VERSION:
        return "schema version mismatch";
    case OBX_ERR_NOTFOUND:
        return "not found";
    case OBX_ERR_CORRUPT:
        return "corrupt record";
    case OBX_ERR_CLOSED:
        return "store shutting down";
    case OBX_ERR_STATE:
        return "not allowed in this state";
    case OBX_ERR_LOCKLOST:
        return "lock file lost (deleted or replaced under the owner)";
    case OBX_ERR_UNAVAILABLE:
        return "database unavailable";
    case OBX_ERR_DB:
        return "database error";
    case OBX_ERR_CONFLICT:
        return "idempotency key used with a different request";
    default:
        return "unknown error";
    }
}

int obx__fail(obx_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int obx__mdb_fail(obx_error *err, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return obx__fail(err, OBX_ERR_FULL, "%s: store map is full (%s)", what, mdb_strerror(rc));
    /* A full disk is the same retryable condition for callers (the daemon's 503). */
    if (rc == ENOMEM)
        return obx__fail(err, OBX_ERR_NOMEM, "%s: out of memory", what);
    if (rc == ENOSPC || rc == EDQUOT)
        return obx__fail(err, OBX_ERR_FULL, "%s: disk full (%s)", what, mdb_strerror(rc));
    return obx__fail(err, OBX_ERR_LMDB, "%s: %s", what, mdb_strerror(rc));
}

#ifdef OBX_TEST_HOOKS
static long crash_hits;

void obx__crash_point(const char *name)
{
    /* Read each time (a few calls per commit): tests set it in forked children. */
    const char *want = getenv("OUTBOX_CRASH_POINT");
    if (!want || strcmp(want, name) != 0)
        return;
    const char *n = getenv("OUTBOX_CRASH_AFTER");
    long after = n && *n ? strtol(n, NULL, 10) : 1;
    if (__atomic_add_fetch(&crash_hits, 1, __ATOMIC_SEQ_CST) >= after)
        abort();
}
#endif

int64_t obx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void obx_options_init(obx_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_size = 1ull << 30;
    o->high_water_pct = 90;
    o->durability = OBX_DURABILITY_FULL;
    o->history = 10;
    o->max_batch = 4096;
    o->prefill = 1;
}

static const char *state_names[] = {NULL, "pending", "inflight", "delivered", "dead"};

const char *obx_state_name(int state)
{
    if (state < OBX_STATE_PENDING || state > OBX_STATE_DEAD)
        return "unknown";
    return state_names[state];
}

int obx_state_parse(const char *name)
{
    for (int i = OBX_STATE_PENDING; i <= OBX_STATE_DEAD; i++)
        if (name && strcmp(name, state_names[i]) == 0)
            return i;
    if (name && strcmp(name, "in-flight") == 0)
        return OBX_STATE_INFLIGHT;
    return 0;
}

int obx__rd_begin(obx_store *s, MDB_txn **txn, obx_error *err)
{
    for (int tries = 0; tries < 3; tries++) {
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_MAP_RESIZED) {
            mdb_env_set_mapsize(s->env, 0); /* adopt the size another process set */
            continue;
        }
        if (rc == MDB_READERS_FULL) {
            int dead = 0;
            mdb_reader_check(s->env, &dead);
            continue;
        }
        if (rc)
            return obx__mdb_fail(err, rc, "begin read transaction");
        return OBX_OK;
    }
    return obx__fail(err, OBX_ERR_LMDB, "begin read transaction: retries exhausted");
}

static int wr_begin(obx_store *s, MDB_txn **txn, obx_error *err)
{
    for (int tries = 0; tries < 3; tries++) {
        int rc = mdb_txn_begin(s->env, NULL, 0, txn);
        if (rc == MDB_MAP_RESIZED) {
            mdb_env_set_mapsize(s->env, 0);
            continue;
        }
        if (rc)
            return obx__mdb_fail(err, rc, "begin write transaction");
        return OBX_OK;
    }
    return obx__fail(err, OBX_ERR_LMDB, "begin write transaction: retries exhausted");
}

const uint32_t obx_commit_bounds_us[OBX_COMMIT_BUCKETS] = {100,  250,   500,   1000,   2500,
                                                           5000, 10000, 25000, 100000, 1000000};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Count one commit's duration in the histogram (read by obx_stats_get from any thread). */
static void note_commit_time(obx_store *s, int64_t us)
{
    unsigned b = 0;
    while (b < OBX_COMMIT_BUCKETS && (int64_t)obx_commit_bounds_us[b] < us)
        b++;
    __atomic_add_fetch(&s->commit_hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_us_sum, (uint64_t)(us > 0 ? us : 0), __ATOMIC_RELAXED);
}

/* Apply a list of ops in one transaction; sets each op's rc/err. Returns after commit. */
static void run_batch(obx_store *s, obx_op *list)
{
    txn_ctx *ctx = &s->ctx;
    for (;;) {
        obx_error err = {0};
        int mdb_rc = 0;
        MDB_txn *txn;
        int rc = wr_begin(s, &txn, &err);
        if (rc) {
            for (obx_op *op = list; op; op = op->next)
                if (!op->done) {
                    op->rc = rc;
                    op->err = err;
                    op->done = 1;
                }
            return;
        }
        obx__store_prefill(s);
        obx__ctx_reset(ctx, s->next_id);
        ctx->txn = txn;
        ctx->used_bytes = obx__store_used_bytes(s, txn);
        ctx->room_bytes = obx__store_room_bytes(s, ctx->used_bytes);
        obx_op *broken = NULL;
        for (obx_op *op = list; op; op = op->next) {
            if (op->done)
                continue;
            memset(&op->err, 0, sizeof op->err);
            op->rc = obx__op_apply(s, ctx, op, &mdb_rc);
            if (op_breaks_txn(op->rc)) {
                broken = op;
                break;
            }
        }
        if (!broken && obx__ctx_flush(s, ctx, &mdb_rc) != OBX_OK)
            broken = list; /* counters failed: fail the batch below */
        if (broken) {
            mdb_txn_abort(txn);
            /* Free results of the aborted attempt before trying again. */
            for (obx_op *op = list; op; op = op->next)
                if (!op->done && op->kind == OP_CLAIM && op->u.claim.jobs) {
                    obx_jobs_free(op->u.claim.jobs, op->u.claim.n);
                    op->u.claim.jobs = NULL;
                    op->u.claim.n = 0;
                }
            /* Fail the op that broke the txn (a map-full enqueue is "store full"); an op
             * that failed without an LMDB code (out of memory, a failed read) keeps its own
             * message. */
            if (mdb_rc)
                obx__store_mdb_fail(s, &broken->err, mdb_rc,
                                    broken->kind == OP_ENQUEUE ? "enqueue" : "write");
            broken->rc = broken->err.code;
            broken->done = 1;
            int left = 0;
            for (obx_op *op = list; op; op = op->next)
                left += !op->done;
            if (!left)
                return;
            continue;
        }
        int has_enqueue = 0;
        for (obx_op *op = list; op; op = op->next)
            has_enqueue |= op->kind == OP_ENQUEUE;
        if (has_enqueue)
            OBX_CRASH_POINT("enqueue-before-commit");
        int64_t t0 = mono_us();
        rc = mdb_txn_commit(txn);
        note_commit_time(s, mono_us() - t0);
        if (has_enqueue && !rc)
            OBX_CRASH_POINT("enqueue-after-commit");
        if (rc) {
            obx__store_mdb_fail(s, &err, rc, "commit");
            for (obx_op *op = list; op; op = op->next) {
                if (op->done)
                    continue;
                if (op->kind == OP_CLAIM && op->u.claim.jobs) {
                    obx_jobs_free(op->u.claim.jobs, op->u.claim.n);
                    op->u.claim.jobs = NULL;
                    op->u.claim.n = 0;
                }
                op->rc = err.code;
                op->err = err;
                op->done = 1;
            }
            return;
        }
        s->next_id = ctx->next_id;
        for (obx_op *op = list; op; op = op->next)
            op->done = 1;
        if (ctx->notify && s->notify)
            s->notify(s->notify_ud);
        return;
    }
}

/*
 * Waking submitters. Every waiting submitter sleeps on one futex word; the writer marks
 * each op of a finished batch, bumps the word and wakes all sleepers with ONE system call.
 * Measured at 32 producers on a 2-vCPU VM, one semaphore post per op took ~0.2 ms per
 * batch (the writer was preempted by the threads it woke), a quarter of the commit cycle.
 * Submitters still queued for the next batch wake spuriously, see their op unfinished
 * and sleep again; there are few of them, since a batch takes everything queued (up to
 * max_batch).
 */
static void futex_wait(unsigned *word, unsigned seen)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void wake_batch(obx_store *s, obx_op *list)
{
    /* An op lives on its submitter's stack: never touch it after marking it. An
     * asynchronous op is handed to its finish callback, which owns (and frees) it. */
    for (obx_op *op = list; op;) {
        obx_op *next = op->next;
        if (op->finish)
            op->finish(op);
        else
            __atomic_store_n(&op->finished, 1, __ATOMIC_RELEASE);
        op = next;
    }
    __atomic_add_fetch(&s->wake_word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &s->wake_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Block until the writer has finished `op` (a lost wake-up is impossible: the word is
 * read before the flag, and FUTEX_WAIT returns at once if the word moved since). */
static void op_wait(obx_store *s, obx_op *op)
{
    for (;;) {
        unsigned seen = __atomic_load_n(&s->wake_word, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&op->finished, __ATOMIC_ACQUIRE))
            return;
        futex_wait(&s->wake_word, seen);
    }
}

#define GROUP_WAIT_NS 200000L /* at most 0.2 ms for stragglers of the previous batch */

static void *writer_main(void *arg)
{
    obx_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        s->want = 1;
        while (!s->head && !s->stopping) {
            /* Idle: wake every second to look at lock.mdb (lockwatch.c). */
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            if (pthread_cond_timedwait(&s->cv_work, &s->mu, &dl) != 0) {
                pthread_mutex_unlock(&s->mu);
                obx__lock_watch(s);
                pthread_mutex_lock(&s->mu);
            }
        }
        if (!s->head && s->stopping)
            break;
        /*
         * Group commit: the submitters released by the previous commit come back within
         * microseconds. Wait briefly (far less than a sync) until as many have queued
         * again, so one sync serves them all instead of splitting them in two batches.
         */
        if (s->qlen < s->last_batch && !s->stopping) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += GROUP_WAIT_NS;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            s->want = s->last_batch;
            while (s->qlen < s->last_batch && !s->stopping &&
                   pthread_cond_timedwait(&s->cv_work, &s->mu, &dl) == 0)
                ;
        }
        s->want = UINT_MAX; /* busy: the queue is looked at again after this batch */
        /* Take up to max_batch operations. */
        obx_op *list = s->head, *last = list;
        unsigned n = 1;
        while (last->next && n < s->opts.max_batch) {
            last = last->next;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        s->qlen -= n;
        s->last_batch = n;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);

        obx__lock_watch(s); /* busy: at most every 500 ms */
        run_batch(s, list);
        __atomic_add_fetch(&s->stat_ops, n, __ATOMIC_RELAXED);
        unsigned b = 0;
        while (b < OBX_BATCH_BUCKETS && (1u << b) < n)
            b++;
        __atomic_add_fetch(&s->batch_hist[b], 1, __ATOMIC_RELAXED);

        wake_batch(s, list);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Owner: append op to the writer's queue (OBX_ERR_CLOSED when closing). The writer wakes
 * its waiting submitter, or calls op->finish for an asynchronous op. */
int obx__store_submit_async(obx_store *s, obx_op *op)
{
    op->done = 0;
    op->next = NULL;
    op->finished = 0;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return obx__fail(&op->err, OBX_ERR_CLOSED, "store is closing");
    }
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->qlen++;
    if (s->qlen >= s->want)
        pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    return OBX_OK;
}

int obx__store_submit(obx_store *s, obx_op *op)
{
    if (!s->owner) {
        op->done = 0;
        op->next = NULL;
        if (s->opts.flags & OBX_OPEN_READONLY)
            return obx__fail(&op->err, OBX_ERR_STATE, "store opened read-only");
        pthread_mutex_lock(&s->mu); /* one write txn at a time per handle */
        run_batch(s, op);
        pthread_mutex_unlock(&s->mu);
        return op->rc;
    }
    int rc = obx__store_submit_async(s, op);
    if (rc)
        return rc;
    op_wait(s, op);
    return op->rc;
}

static int open_dbs(obx_store *s, int create, obx_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return obx__mdb_fail(err, rc, "open databases");
    unsigned f = create ? MDB_CREATE : 0;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"meta", &s->db_meta}, {"events", &s->db_events},   {"deliveries", &s->db_deliv},
               {"due", &s->db_due},   {"pending", &s->db_pend},    {"dead", &s->db_dead},
               {"done", &s->db_done}, {"inflight", &s->db_flight}, {"idem", &s->db_idem}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, f, dbs[i].dbi);
        /* "idem" came later: a read-only handle on an older store goes without it. */
        if (rc == MDB_NOTFOUND && dbs[i].dbi == &s->db_idem) {
            s->db_idem = 0;
            rc = 0;
            continue;
        }
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                return obx__fail(err, OBX_ERR_VERSION,
                                 "%s: not an outbox store (database '%s' missing)", s->dir,
                                 dbs[i].name);
            return obx__mdb_fail(err, rc, "open database");
        }
    }
    /* Schema version: written on creation, checked always. */
    MDB_val k = {6, "schema"}, v;
    rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND && create) {
        unsigned char b[4];
        be32_put(b, OBX_SCHEMA_VERSION);
        v.mv_size = 4;
        v.mv_data = b;
        rc = mdb_put(txn, s->db_meta, &k, &v, 0);
    } else if (rc == 0) {
        uint32_t have = v.mv_size == 4 ? be32_get(v.mv_data) : 0;
        if (have != OBX_SCHEMA_VERSION) {
            mdb_txn_abort(txn);
            return obx__fail(err, OBX_ERR_VERSION,
                             "%s: store schema version %u, but this build of outbox reads "
                             "version %u",
                             s->dir, have, OBX_SCHEMA_VERSION);
        }
    } else if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return obx__fail(err, OBX_ERR_VERSION, "%s: store has no schema version", s->dir);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return obx__mdb_fail(err, rc, "schema version");
    }
    if ((rc = obx__store_id_load(s, txn, create, err)) != OBX_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    uint64_t next = 1;
    obx__meta_get_u64(s, txn, "next_id", &next);
    s->next_id = next ? next : 1;
    rc = mdb_txn_commit(txn); /* also for read-only: keeps the DBI handles open */
    if (rc)
        return obx__mdb_fail(err, rc, "create databases");
    return OBX_OK;
}

static int take_lock(obx_store *s, obx_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/outbox.lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        return obx__fail(err, OBX_ERR_LOCKED,
                         "%s is owned by another outboxd (pid %s); only one daemon may own an "
                         "outbox directory",
                         s->dir, pid[0] ? pid : "unknown");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
        return obx__fail(err, OBX_ERR_IO, "%s: %s", path, strerror(errno));
    return OBX_OK;
}

void obx__options_normalize(obx_options *o)
{
    if (o->history == 0 || o->history > 64)
        o->history = 10;
    if (o->max_batch == 0)
        o->max_batch = 4096;
    if (o->high_water_pct == 0 || o->high_water_pct > 100)
        o->high_water_pct = 90;
    if (o->max_size < (1u << 20))
        o->max_size = 1u << 20;
}

int obx__lmdb_open(const char *dir, const obx_options *opts, obx_store **out, obx_error *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return obx__fail(err, OBX_ERR_INVALID, "outbox directory path is empty");
    obx_store *s = calloc(1, sizeof *s);
    if (!s)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    int rc = OBX_OK;
    s->be = &obx__lmdb_backend;
    s->lock_fd = -1;
    if (opts)
        s->opts = *opts;
    else
        obx_options_init(&s->opts);
    obx__options_normalize(&s->opts);
    s->owner = (s->opts.flags & OBX_OPEN_OWNER) != 0;
    s->dir = strdup(dir);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    s->ctx.delta = calloc(OBX_MAX_SINKS, sizeof *s->ctx.delta);
    s->ctx.touched_flag = calloc(OBX_MAX_SINKS, 1);
    s->ctx.touched_list = calloc(OBX_MAX_SINKS, sizeof *s->ctx.touched_list);
    if (!s->dir || !s->ctx.delta || !s->ctx.touched_flag || !s->ctx.touched_list) {
        rc = obx__fail(err, OBX_ERR_NOMEM, "out of memory");
        goto fail;
    }

    char data[4096];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    struct stat st;
    if ((rc = obx__data_file_check(dir, err)) != OBX_OK)
        goto fail;
    int exists = stat(data, &st) == 0;
    if (!exists && (s->opts.flags & (OBX_OPEN_NOCREATE | OBX_OPEN_READONLY))) {
        rc = obx__fail(err, OBX_ERR_NOTFOUND, "%s: no outbox store here (no data.mdb)", dir);
        goto fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = obx__fail(err, OBX_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
        goto fail;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = obx__fail(err, OBX_ERR_IO, "%s: not a directory", dir);
        goto fail;
    }
    if (s->owner && (rc = take_lock(s, err)) != OBX_OK)
        goto fail;
    /* Before LMDB could create a new lock.mdb beside a running owner's deleted one. */
    if (!s->owner && (rc = obx__lock_identity_verify(dir, err)) != OBX_OK)
        goto fail;

    int mrc = mdb_env_create(&s->env);
    if (!mrc)
        mrc = mdb_env_set_maxdbs(s->env, 12);
    if (!mrc)
        mrc = mdb_env_set_maxreaders(s->env, 512);
    if (!mrc && s->owner)
        mrc = mdb_env_set_mapsize(s->env, (size_t)obx__store_map_size(s));
    if (mrc) {
        rc = obx__mdb_fail(err, mrc, "create environment");
        goto fail;
    }
    unsigned flags = MDB_NOTLS;
    if (s->opts.durability == OBX_DURABILITY_NOMETASYNC)
        flags |= MDB_NOMETASYNC;
    if (s->opts.flags & OBX_OPEN_READONLY)
        flags |= MDB_RDONLY;
    mrc = mdb_env_open(s->env, dir, flags, 0600);
    if (mrc) {
        rc = obx__mdb_fail(err, mrc, dir);
        goto fail;
    }
    MDB_stat est;
    mdb_env_stat(s->env, &est);
    s->page_size = est.ms_psize;
    /* A data.mdb shorter than its last used page (a truncated copy, a disk error) would
     * fault with SIGBUS on the first access through the map: refuse it. */
    MDB_envinfo einfo;
    mdb_env_info(s->env, &einfo);
    if (stat(data, &st) == 0 &&
        (uint64_t)st.st_size < ((uint64_t)einfo.me_last_pgno + 1) * est.ms_psize) {
        rc = obx__fail(err, OBX_ERR_CORRUPT,
                       "%s: data.mdb is truncated (%llu bytes; the store uses %llu)", dir,
                       (unsigned long long)st.st_size,
                       (unsigned long long)(((uint64_t)einfo.me_last_pgno + 1) * est.ms_psize));
        goto fail;
    }
    rc = s->owner ? obx__lock_identity_record(s, err) : obx__lock_identity_verify(dir, err);
    if (rc != OBX_OK)
        goto fail;
    int dead = 0;
    mdb_reader_check(s->env, &dead);

    if ((rc = open_dbs(s, !(s->opts.flags & OBX_OPEN_READONLY), err)) != OBX_OK)
        goto fail;
    if (s->owner) {
        if ((rc = obx__store_recover_inflight(s, err)) != OBX_OK)
            goto fail;
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
            rc = obx__fail(err, OBX_ERR_IO, "cannot start the writer thread");
            goto fail;
        }
        s->writer_running = 1;
        pthread_setname_np(s->writer, "obx-writer");
    }
    *out = s;
    return OBX_OK;
fail:
    obx_close(s);
    return rc;
}

void obx__lmdb_shutdown(obx_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closed_for_enqueue = 1;
    pthread_mutex_unlock(&s->mu);
}

void obx__lmdb_close(obx_store *s)
{
    if (!s)
        return;
    if (s->writer_running) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cv_work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_work);
    obx__buf_free(&s->ctx.buf);
    free(s->ctx.delta);
    free(s->ctx.touched_flag);
    free(s->ctx.touched_list);
    free(s->dir);
    free(s);
}

void obx__lmdb_set_notify(obx_store *s, obx_notify_fn fn, void *ud)
{
    pthread_mutex_lock(&s->mu);
    s->notify = fn;
    s->notify_ud = ud;
    pthread_mutex_unlock(&s->mu);
}

/* ---- public write calls: thin wrappers building an op ---- */

static int finish(obx_op *op, int rc, obx_error *err)
{
    if (rc && err)
        *err = op->err;
    return rc;
}

void obx__batch_nomem(obx_enqueue_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reqs[i].rc = obx__fail(&reqs[i].err, OBX_ERR_NOMEM, "out of memory");
}

int obx__validate_events(const obx_event_in *events, size_t n, obx_error *err)
{
    if (n == 0)
        return obx__fail(err, OBX_ERR_INVALID, "no events to enqueue");
    for (size_t i = 0; i < n; i++) {
        const obx_event_in *e = &events[i];
        if (!e->type || !e->action || strlen(e->type) > 255 || strlen(e->action) > 255)
            return obx__fail(err, OBX_ERR_INVALID,
                             "event %zu: type and action must be 1..255 bytes", i);
        if (e->n_sinks == 0 || e->n_sinks > OBX_MAX_ROUTES || !e->sinks)
            return obx__fail(err, OBX_ERR_INVALID, "event %zu: needs 1..%u sinks", i,
                             OBX_MAX_ROUTES);
        if (!e->body && e->body_len)
            return obx__fail(err, OBX_ERR_INVALID, "event %zu: body is NULL", i);
        for (size_t j = 0; j < e->n_sinks; j++) {
            if (e->sinks[j] == 0 || e->sinks[j] >= OBX_MAX_SINKS)
                return obx__fail(err, OBX_ERR_INVALID, "event %zu: sink id %u out of range", i,
                                 e->sinks[j]);
            for (size_t k = 0; k < j; k++)
                if (e->sinks[k] == e->sinks[j])
                    return obx__fail(err, OBX_ERR_INVALID, "event %zu: sink id %u repeated", i,
                                     e->sinks[j]);
        }
    }
    return OBX_OK;
}

int obx__lmdb_enqueue(obx_store *s, const obx_event_in *events, size_t n, uint64_t *ids,
                      obx_error *err)
{
    int rc = obx__enqueue_check(s, events, n, 0, err);
    if (rc)
        return rc;
    obx_op op = {.kind = OP_ENQUEUE};
    op.u.enq.events = events;
    op.u.enq.n = n;
    op.u.enq.ids = ids;
    return finish(&op, obx__store_submit(s, &op), err);
}

int obx__enqueue_check(obx_store *s, const obx_event_in *events, size_t n, int keyed,
                       obx_error *err)
{
    if (!s->owner)
        return obx__fail(err, OBX_ERR_STATE, "enqueue needs the owner (daemon) handle");
    if (n > 0 || !keyed) {
        int rc = obx__validate_events(events, n, err);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&s->mu);
    int closed = s->closed_for_enqueue;
    pthread_mutex_unlock(&s->mu);
    if (closed)
        return obx__fail(err, OBX_ERR_CLOSED, "store is shutting down");
    if (obx__lock_lost_fail(s, err) != OBX_OK)
        return OBX_ERR_LOCKLOST;
    return OBX_OK;
}

int obx__lmdb_claim_due(obx_store *s, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                        size_t *n, int64_t *next_due, obx_error *err)
{
    *jobs = NULL;
    *n = 0;
    if (!s->owner)
        return obx__fail(err, OBX_ERR_STATE, "claim needs the owner (daemon) handle");
    if (max == 0) {
        if (next_due)
            return obx_next_due(s, sink_id, next_due, err);
        return OBX_OK;
    }
    obx_op op = {.kind = OP_CLAIM};
    op.u.claim.sink = sink_id;
    op.u.claim.now = now_ms;
    op.u.claim.max = max;
    int rc = obx__store_submit(s, &op);
    if (rc)
        return finish(&op, rc, err);
    *jobs = op.u.claim.jobs;
    *n = op.u.claim.n;
    if (next_due)
        *next_due = op.u.claim.next_due;
    return OBX_OK;
}

int obx__lmdb_record(obx_store *s, const obx_result *results, size_t n, obx_error *err)
{
    if (!s->owner)
        return obx__fail(err, OBX_ERR_STATE, "record needs the owner (daemon) handle");
    if (n == 0)
        return OBX_OK;
    obx_op op = {.kind = OP_RECORD};
    op.u.rec.results = results;
    op.u.rec.n = n;
    return finish(&op, obx__store_submit(s, &op), err);
}

static int replay_or_purge(obx_store *s, op_kind kind, uint64_t id, uint32_t sink, int64_t now,
                           size_t *count, obx_error *err)
{
    obx_op op = {.kind = kind};
    op.u.replay.id = id;
    op.u.replay.sink = sink;
    op.u.replay.now = now ? now : obx_now_ms();
    int rc = obx__store_submit(s, &op);
    if (count)
        *count = rc ? 0 : op.u.replay.count;
    return finish(&op, rc, err);
}

int obx__lmdb_replay(obx_store *s, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
                     obx_error *err)
{
    return replay_or_purge(s, OP_REPLAY, id, sink_id, now_ms, count, err);
}

int obx__lmdb_purge(obx_store *s, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err)
{
    return replay_or_purge(s, OP_PURGE, id, sink_id, 0, count, err);
}

int obx__store_submit_many(obx_store *s, obx_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ops[i].done = 0;
        ops[i].next = i + 1 < n ? &ops[i + 1] : NULL;
    }
    if (!s->owner) {
        if (s->opts.flags & OBX_OPEN_READONLY) {
            for (size_t i = 0; i < n; i++)
                ops[i].rc = obx__fail(&ops[i].err, OBX_ERR_STATE, "store opened read-only");
            return OBX_ERR_STATE;
        }
        pthread_mutex_lock(&s->mu);
        run_batch(s, ops);
        pthread_mutex_unlock(&s->mu);
        return OBX_OK;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n; i++)
            ops[i].rc = obx__fail(&ops[i].err, OBX_ERR_CLOSED, "store is closing");
        return OBX_ERR_CLOSED;
    }
    for (size_t i = 0; i < n; i++) {
        ops[i].finished = 0;
        ops[i].next = NULL;
        if (s->tail)
            s->tail->next = &ops[i];
        else
            s->head = &ops[i];
        s->tail = &ops[i];
        s->qlen++;
    }
    if (s->qlen >= s->want)
        pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        op_wait(s, &ops[i]);
    return OBX_OK;
}

static int many(obx_store *s, op_kind kind, obx_target *t, size_t n, int64_t now, obx_error *err)
{
    if (n == 0)
        return OBX_OK;
    obx_op *ops = calloc(n, sizeof *ops);
    if (!ops)
        return obx__fail(err, OBX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ops[i].kind = kind;
        ops[i].u.replay.id = t[i].event_id;
        ops[i].u.replay.sink = t[i].sink_id;
        ops[i].u.replay.now = now ? now : obx_now_ms();
    }
    int rc = obx__store_submit_many(s, ops, n);
    int txn_failed = 0;
    for (size_t i = 0; i < n; i++) {
        t[i].rc = ops[i].rc;
        t[i].count = ops[i].rc ? 0 : ops[i].u.replay.count;
        if (ops[i].rc && ops[i].rc != OBX_ERR_STATE && ops[i].rc != OBX_ERR_NOTFOUND &&
            !txn_failed) {
            txn_failed = 1;
            if (err)
                *err = ops[i].err;
            rc = ops[i].rc;
        }
    }
    free(ops);
    return rc;
}

int obx__lmdb_replay_many(obx_store *s, obx_target *t, size_t n, int64_t now_ms, obx_error *err)
{
    return many(s, OP_REPLAY, t, n, now_ms, err);
}

int obx__lmdb_purge_many(obx_store *s, obx_target *t, size_t n, obx_error *err)
{
    return many(s, OP_PURGE, t, n, 0, err);
}

int obx__lmdb_retention_sweep(obx_store *s, int64_t before_ms, size_t max, size_t *removed,
                              obx_error *err)
{
    obx_op op = {.kind = OP_SWEEP};
    op.u.sweep.before = before_ms;
    op.u.sweep.max = max ? max : 1000;
    int rc = obx__store_submit(s, &op);
    if (removed)
        *removed = rc ? 0 : op.u.sweep.removed;
    return finish(&op, rc, err);
}

int obx__valid_sink_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= OBX_SINK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int obx__lmdb_sink_find(obx_store *s, const char *name, uint32_t *id, obx_error *err)
{
    if (!obx__valid_sink_name(name))
        return obx__fail(err, OBX_ERR_INVALID,
                         "sink name '%s' is invalid (1..63 bytes of A-Z a-z 0-9 . _ -)",
                         name ? name : "");
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    char k[80];
    int kl = snprintf(k, sizeof k, "s:%s", name);
    MDB_val key = {(size_t)kl, k}, val;
    int mrc = mdb_get(txn, s->db_meta, &key, &val);
    if (mrc == 0 && val.mv_size == 4)
        *id = be32_get(val.mv_data);
    mdb_txn_abort(txn);
    if (mrc == MDB_NOTFOUND)
        return obx__fail(err, OBX_ERR_NOTFOUND, "no sink named '%s' in this outbox", name);
    if (mrc)
        return obx__mdb_fail(err, mrc, "sink lookup");
    return OBX_OK;
}

int obx__lmdb_sink_id(obx_store *s, const char *name, uint32_t *id, obx_error *err)
{
    int rc = obx_sink_find(s, name, id, err);
    if (rc != OBX_ERR_NOTFOUND)
        return rc;
    obx_op op = {.kind = OP_SINK};
    op.u.sink.name = name;
    op.u.sink.create = 1;
    rc = obx__store_submit(s, &op);
    if (rc)
        return finish(&op, rc, err);
    *id = op.u.sink.id;
    if (err)
        memset(err, 0, sizeof *err);
    return OBX_OK;
}

int obx__lmdb_sink_name(obx_store *s, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err)
{
    MDB_txn *txn;
    int rc = obx__rd_begin(s, &txn, err);
    if (rc)
        return rc;
    unsigned char k[6] = {'i', ':'};
    be32_put(k + 2, id);
    MDB_val key = {6, k}, val;
    int mrc = mdb_get(txn, s->db_meta, &key, &val);
    if (mrc == 0) {
        size_t n = val.mv_size < OBX_SINK_NAME_MAX - 1 ? val.mv_size : OBX_SINK_NAME_MAX - 1;
        memcpy(buf, val.mv_data, n);
        buf[n] = 0;
    }
    mdb_txn_abort(txn);
    if (mrc == MDB_NOTFOUND)
        return obx__fail(err, OBX_ERR_NOTFOUND, "no sink with id %u", id);
    if (mrc)
        return obx__mdb_fail(err, mrc, "sink name");
    return OBX_OK;
}
