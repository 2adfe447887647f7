/*
 * store_internal.h - private: the store handle, the write-operation queue shared by the
 * group-commit writer (owner process) and direct writes (tool processes), and helpers
 * used across store.c, ops.c and inspect.c.
 */
#ifndef OUTBOX_STORE_INTERNAL_H
#define OUTBOX_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>

#include "backend.h"
#include "codec.h"
#include "obx_hooks.h"
#include "outbox/outbox.h"

#define OBX_SCHEMA_VERSION 1u
#define OBX_STORE_ID_LEN   16 /* bytes of the random store id (identity.c) */

/* Per-sink counter slots, stored in meta under "c" + be32(sink). */
enum { CNT_PENDING, CNT_INFLIGHT, CNT_IN_DOUBT, CNT_DELIVERED, CNT_DEAD, CNT_N };

typedef enum op_kind {
    OP_ENQUEUE,
    OP_CLAIM,
    OP_RECORD,
    OP_REPLAY,
    OP_PURGE,
    OP_SWEEP,
    OP_SINK,
    OP_IDEM_SWEEP,
} op_kind;

typedef struct obx_op {
    op_kind kind;
    int rc;
    obx_error err;
    int done;
    unsigned finished; /* owner mode: set (release) by the writer when the op's batch is
                          finished; the submitter waits for it on the store's wake word */
    struct obx_op *next;
    /* Asynchronous (obx_enqueue_submit): called by the writer instead of waking a waiting
     * submitter; it owns the op from then on. NULL for every waiting submitter. */
    void (*finish)(struct obx_op *op);
    union {
        struct {
            const obx_event_in *events;
            size_t n;
            uint64_t *ids;
            const obx_idem *idem; /* NULL: no idempotency key */
            obx_idem_result *res; /* with idem */
        } enq;
        struct {
            uint32_t sink;
            int64_t now;
            size_t max;
            obx_job *jobs;
            size_t n;
            int64_t next_due;
        } claim;
        struct {
            const obx_result *results;
            size_t n;
        } rec;
        struct {
            uint64_t id;
            uint32_t sink;
            int64_t now;
            size_t count;
        } replay; /* also purge */
        struct {
            int64_t before;
            size_t max;
            size_t removed;
        } sweep; /* also idempotency keys (before = now) */
        struct {
            const char *name;
            uint32_t id;
            int create;
        } sink;
    } u;
} obx_op;

/* Per-transaction scratch: counter deltas, applied once before commit. */
typedef struct txn_ctx {
    MDB_txn *txn;
    int64_t (*delta)[CNT_N];     /* indexed by sink id, OBX_MAX_SINKS rows */
    unsigned char *touched_flag; /* OBX_MAX_SINKS bytes */
    uint32_t *touched_list;      /* sinks with deltas, n_touched of them */
    size_t n_touched;
    int64_t events_delta;
    uint64_t enqueued_delta;
    int64_t idem_delta;   /* idempotency keys added minus removed */
    uint64_t next_id;     /* next event id to hand out */
    uint64_t used_bytes;  /* at txn start, for the high-water check */
    uint64_t room_bytes;  /* at txn start: obx__store_room_bytes() */
    uint64_t added_bytes; /* estimate of what this txn added */
    int notify;           /* deliveries became due: wake the scheduler after commit */
    obx_buf buf;          /* encode scratch */
} txn_ctx;

struct obx_store {
    const struct obx__backend *be; /* first: see backend.h */
    char *dir;
    MDB_env *env;
    MDB_dbi db_meta, db_events, db_deliv, db_due, db_pend, db_dead, db_done, db_flight;
    MDB_dbi db_idem; /* idempotency keys (idempotency.c); 0 when a read-only handle
                        opened a store made before they existed */
    obx_options opts;
    int owner;
    int lock_fd;
    unsigned page_size;
    uint64_t next_id; /* owner: persisted next event id */

    /* group-commit writer (owner only) */
    pthread_t writer;
    int writer_running;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    obx_op *head, *tail;
    unsigned qlen;       /* ops queued */
    unsigned last_batch; /* size of the previous batch: how many submitters it released */
    unsigned want;       /* queue length at which the waiting writer wants a signal (1 when
                            idle, last_batch while gathering, UINT_MAX while committing):
                            one wake-up of the writer per batch, not one per submit */
    int stopping;
    int closed_for_enqueue;

    uint64_t stat_ops;   /* operations committed by the group-commit writer */
    uint64_t file_bytes; /* owner: data.mdb's size as of the last prefill check */
    uint64_t batch_hist[OBX_BATCH_BUCKETS + 1];   /* written by the writer, read atomically */
    uint64_t commit_hist[OBX_COMMIT_BUCKETS + 1]; /* commit durations, likewise */
    uint64_t commit_us_sum;
    unsigned wake_word; /* futex: bumped after each batch's ops are marked finished */
    char store_hex[2 * OBX_STORE_ID_LEN + 1]; /* the store id in hex; "" if none yet */
    uint64_t lock_dev, lock_ino; /* owner: identity of the lock.mdb it opened (lockwatch.c) */
    int64_t lock_checked_ms;     /* writer: last comparison with the file on disk */
    int lock_lost;               /* OBX_LOCK_DELETED / _REPLACED once noticed (atomic) */
    obx_notify_fn notify;
    void *notify_ud;
    txn_ctx ctx;
};

int obx__fail(obx_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int obx__mdb_fail(obx_error *err, int rc, const char *what);

/* obx_enqueue and the idempotent ones: whether n events may be enqueued now (owner handle,
 * valid events, n > 0 unless `keyed`, not closing, lock not lost). */
int obx__enqueue_check(obx_store *s, const obx_event_in *events, size_t n, int keyed,
                       obx_error *err);

/* Run operations: through the writer (owner) or in one direct write txn (tools). */
int obx__store_submit(obx_store *s, obx_op *op);
/* Submit n ops as one batch (tools: one transaction; owner: queued together); each op
 * gets its own rc and err. OBX_OK unless they could not be submitted at all. */
int obx__store_submit_many(obx_store *s, obx_op *ops, size_t n);
/* Owner only: queue one op for the writer without waiting (obx__store_submit waits after
 * it; an asynchronous op sets finish, which the writer calls). OBX_ERR_CLOSED when the
 * store is closing (finish is then never called). */
int obx__store_submit_async(obx_store *s, obx_op *op);

/* ops.c: apply one operation inside ctx->txn. Returns OBX_OK, a logical error (txn still
 * usable, nothing written by this op), OBX_ERR_LMDB with *mdb_rc set (txn unusable), or
 * OBX_ERR_NOMEM / OBX_ERR_LMDB with op->err set and *mdb_rc 0 (a failed allocation or
 * read part-way: the op may have written, so the txn must be aborted too). */
int obx__op_apply(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc);
/* Whether obx__op_apply's result means the transaction must be aborted (the op fails whole). */
static inline int op_breaks_txn(int rc)
{
    return rc == OBX_ERR_LMDB || rc == OBX_ERR_NOMEM;
}
/* Write accumulated counter deltas and next_id into meta. */
int obx__ctx_flush(obx_store *s, txn_ctx *ctx, int *mdb_rc);
void obx__ctx_reset(txn_ctx *ctx, uint64_t next_id);
uint64_t obx__store_used_bytes(obx_store *s, MDB_txn *txn);
/* prefill.c: in the owner's write txn, before it writes, extend data.mdb with zeros when
 * less than half a chunk is left past the last page (see prefill.c). Never fails. */
void obx__store_prefill(obx_store *s);
uint64_t obx__store_high_water(const obx_store *s);
/*
 * Map room beyond max_size, for the writes that free space (claims, results, retention,
 * dead-letter moves) once enqueue has stopped at the high-water mark. LMDB cannot reuse
 * the pages freed by the latest commits, so with a small max_size the 10 % margin ran
 * out and every write, retention included, failed with MDB_MAP_FULL for good. Not added
 * with high_water_pct 100 (then the map itself is the cap).
 */
#define OBX_MAP_HEADROOM (4ull << 20)
/* The LMDB map size the owner sets: max_size plus OBX_MAP_HEADROOM when it applies. */
uint64_t obx__store_map_size(const obx_store *s);
/*
 * Disk kept free for the writes that free space (claims, results, retention): enqueue is
 * refused (OBX_ERR_FULL) when it would leave less than this for new pages. Without it a
 * full disk let enqueue take the last free bytes and then every other write failed.
 */
#define OBX_DISK_RESERVE (1ull << 20)
/* Bytes LMDB can still use for new pages: free space on the store's filesystem plus the
 * file's pages not in use (`used` = obx__store_used_bytes). UINT64_MAX if statvfs fails. */
uint64_t obx__store_room_bytes(obx_store *s, uint64_t used);

/* capacity.c: fail with OBX_ERR_FULL naming the limit that was hit and its numbers
 * (`used`: bytes in use; `what`: NULL or a prefix naming the operation). */
enum { OBX_FULL_CAP, OBX_FULL_MAP, OBX_FULL_DISK };
int obx__store_full(obx_store *s, obx_error *err, int limit, const char *what, uint64_t used);
/* obx__mdb_fail, but MDB_MAP_FULL and a full disk get obx__store_full's message. */
int obx__store_mdb_fail(obx_store *s, obx_error *err, int rc, const char *what);

/* Read helpers (inspect.c / ops.c). */
int obx__rd_begin(obx_store *s, MDB_txn **txn, obx_error *err);
int obx__load_delivery(obx_store *s, MDB_txn *txn, uint64_t ev, uint32_t sink, obx_delivery *d,
                       obx_error *err);
int obx__load_event(obx_store *s, MDB_txn *txn, uint64_t ev, obx_event *out, uint32_t **sinks,
                    size_t *n_sinks, obx_error *err);
int obx__read_counters(obx_store *s, MDB_txn *txn, uint32_t sink, uint64_t cnt[CNT_N]);
int obx__meta_get_u64(obx_store *s, MDB_txn *txn, const char *key, uint64_t *v);

/* identity.c: read the store id from meta into s->store_hex; with `create` (a write txn)
 * make one when the store has none. */
int obx__store_id_load(obx_store *s, MDB_txn *txn, int create, obx_error *err);

/* identity.c: refuse a directory that held a store but lost its data file (data.mdb
 * empty, or missing while lock.mdb or outbox.lock is there). */
int obx__data_file_check(const char *dir, obx_error *err);
/* The sinks of event ev that have a delivery record, ascending (at most OBX_MAX_ROUTES).
 * Returns an LMDB error code (0 = ok). */
int obx__event_sinks(obx_store *s, MDB_txn *txn, uint64_t ev, uint32_t *out, size_t *n);

/* retire.c: take a registry slot freed by obx_sink_retire (0, *id set and the slot
 * taken), MDB_NOTFOUND when there is none, or another LMDB error. */
int obx__sink_slot_take(obx_store *s, MDB_txn *txn, uint32_t *id);

/* sinkstate.c: read sink id's health record in txn into *st (zeroed when absent): OBX_OK,
 * OBX_ERR_CORRUPT (format byte, checksum or lengths wrong), OBX_ERR_LMDB. */
int obx__sink_state_read(obx_store *s, MDB_txn *txn, uint32_t id, obx_sink_state *st,
                         obx_error *err);

/* lockwatch.c: the owner's lock.mdb must be the one every process opens. */
enum { OBX_LOCK_DELETED = 1, OBX_LOCK_REPLACED = 2 };
/* Owner, after opening the environment: remember lock.mdb's identity, in outbox.lock. */
int obx__lock_identity_record(obx_store *s, obx_error *err);
/* Non-owner: OBX_ERR_LOCKLOST when a running owner holds a different (or no) lock.mdb. */
int obx__lock_identity_verify(const char *dir, obx_error *err);
/* Writer thread: compare lock.mdb on disk with the recorded identity (at most every
 * 500 ms); sets lock_lost when it was deleted or replaced. */
void obx__lock_watch(obx_store *s);
/* OBX_OK, or OBX_ERR_LOCKLOST with the message once lock_lost is set. */
int obx__lock_lost_fail(obx_store *s, obx_error *err);

/* idempotency.c, inside op_enqueue's transaction, before anything is written: look the
 * op's key up. OBX_OK with op->u.enq.res->replayed set (found: answer from it, store
 * nothing) or not (store, then obx__idem_put); OBX_ERR_CONFLICT; an LMDB error as ops. */
int obx__idem_lookup(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc);
/* Bytes the key of this op adds (for the cap check). */
uint64_t obx__idem_estimate(const obx_op *op);
/* After the op's events are written (ids in op->u.enq.ids): store its key. LMDB rc. */
int obx__idem_put(obx_store *s, txn_ctx *ctx, const obx_op *op, int64_t now);
/* obx_check: what the "idem" database holds. Returns an LMDB rc (0 = ok). */
typedef struct obx_idem_census {
    uint64_t keys;      /* 'k' records */
    uint64_t expiries;  /* 'x' entries */
    uint64_t bad;       /* 'k' records that do not decode */
    uint64_t unindexed; /* 'k' records without their 'x' entry (never swept) */
} obx_idem_census;
int obx__idem_census(obx_store *s, MDB_txn *txn, obx_idem_census *out);
/* OP_IDEM_SWEEP. */
int obx__idem_sweep_apply(obx_store *s, txn_ctx *ctx, obx_op *op, int *mdb_rc);

/* Recover deliveries left in flight by a crash (owner open). */
int obx__store_recover_inflight(obx_store *s, obx_error *err);

#endif
