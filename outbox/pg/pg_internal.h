/*
 * pg_internal.h - private to the PostgreSQL backend (outbox/pg/): the handle, the
 * connection pool, SQL helpers with error classification, and the schema.
 *
 * Threads of an owner (a node): the callers', one enqueue committer (group commit), one
 * listener (LISTEN for new due deliveries, calls the notify callback) and one lease
 * keeper (renews the leases of this node's in-flight deliveries). Each uses a pooled
 * connection at a time; a libpq connection is never shared by two threads at once.
 */
#ifndef OUTBOX_PG_INTERNAL_H
#define OUTBOX_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>

#include "../backend.h"
#include "obx_hooks.h"

#define OBX_PG_SCHEMA_VERSION 2
#define OBX_PG_MAX_POOL       64

/* One queued enqueue call waiting for the committer. */
typedef struct pg_enq {
    const obx_event_in *events;
    size_t n;
    uint64_t *ids;
    const obx_idem *idem;  /* NULL: no idempotency key */
    obx_idem_result *res;  /* with idem: what the key's lookup found (idem.c) */
    int replayed;          /* the key was known: nothing of this call is stored */
    int claimed;           /* this call stores the key (idem.c writes its ids) */
    struct pg_enq *dup_of; /* the same key claimed earlier in this batch */
    int rc;
    obx_error err;
    int done;
    struct pg_enq *next;
} pg_enq;

typedef struct pg_conn {
    PGconn *c;
    int busy;
} pg_conn;

typedef struct pg_store {
    const struct obx__backend *be; /* first: see backend.h */
    obx_options opts;
    char *dsn, *password, *schema;
    /* Lease owner ids: "<node>.<generation>". Claims take the current generation and the
     * lease keeper renews only it; a claim whose outcome is unknown (the COMMIT failed
     * or its answer was lost) moves to a new generation, so the rows it may have leased
     * expire and return to the others instead of being renewed forever. Results match
     * any generation of this node ("<node>."). Under mu. */
    char node[34]; /* this process's id + "." */
    unsigned gen;
    char lease_id[48]; /* node + generation */
    char uid[40];      /* the store's uid (schema meta), unique per database outbox */
    char channel[160]; /* quoted NOTIFY channel name */
    int owner, readonly;

    pthread_mutex_t mu;
    pthread_cond_t cv_conn; /* a pooled connection became free */
    pg_conn pool[OBX_PG_MAX_POOL];
    unsigned n_pool;

    /* group commit (owner) */
    pthread_cond_t cv_work, cv_done;
    pg_enq *head, *tail;
    int stopping, closed_for_enqueue;
    pthread_t committer, listener, keeper;
    int committer_running, listener_running, keeper_running;
    int stop_pipe[2];

    /* obx_sink_limit: per sink id, max in flight across the cluster (0 = none), ordered;
     * held: this handle's last claim of the sink found its limit taken */
    unsigned limit[OBX_MAX_SINKS];
    unsigned char ordered[OBX_MAX_SINKS], held[OBX_MAX_SINKS];

    obx_notify_fn notify;
    void *notify_ud;

    struct pg_health *health; /* sinkstate.c: an owner's cache of sink health, or NULL */

    int64_t size_checked_ms; /* cap: when the size below was read */
    uint64_t size_bytes;

    uint64_t batch_hist[OBX_BATCH_BUCKETS + 1];
    uint64_t commit_hist[OBX_COMMIT_BUCKETS + 1];
    uint64_t commit_us_sum, commit_ops;
} pg_store;

/* A number as text for a statement parameter, in a caller's buffer (char buf[24]). */
#define I64(buf, v) (snprintf(buf, sizeof buf, "%lld", (long long)(v)), buf)

/* conn.c */
/* Take a connected pooled connection (connecting or reconnecting as needed). */
int obx__pg_acquire(pg_store *s, pg_conn **out, obx_error *err);
/* Give it back; `broken` drops the connection (next acquire reconnects). */
void obx__pg_release(pg_store *s, pg_conn *pc);
/* A new connection with search_path set and the statements prepared (listener). */
int obx__pg_connect(pg_store *s, PGconn **out, obx_error *err);
/* The same before the schema exists: search_path set, nothing prepared (migration). */
int obx__pg_connect_raw(pg_store *s, PGconn **out, obx_error *err);
/* Turn a failed result (or NULL) into an obx error naming `what`; clears res. Returns
 * OBX_ERR_UNAVAILABLE for lost connections and read-only servers, OBX_ERR_DB else. */
int obx__pg_fail(PGconn *c, PGresult *res, obx_error *err, const char *what);
/* Run a statement with text parameters; *res is set on success (caller PQclear()s). */
int obx__pg_exec(PGconn *c, const char *stmt, int n, const char *const *params, PGresult **res,
                 obx_error *err);
/* Plain SQL without parameters and without result rows (BEGIN, COMMIT, DDL). */
int obx__pg_cmd(PGconn *c, const char *sql, obx_error *err);
/* Set by obx__pg_fail: the failure was a deadlock or serialization conflict (the
 * transaction can simply be run again). Per thread. */
extern _Thread_local int obx__pg_conflict;
/* SQLSTATEs after which a transaction is simply run again. */
int obx__pg_retryable(PGresult *res);
int64_t obx__pg_i64(PGresult *r, int row, int col);
/* ids as a bigint[] literal "{1,2,3}" (malloc'd; NULL when out of memory). */
char *obx__pg_id_array(const uint64_t *ids, size_t n);
/* Wait up to ms for the handle's stop pipe (and fd when >= 0); 1 when asked to stop. */
int obx__pg_wait_stop(pg_store *s, int fd, int ms);
char *obx__pg_strdup_or_null(PGresult *r, int row, int col);

/* conn.c: obx_describe for a database store (conninfo fields, never the password). */
void obx__pg_describe(obx_store *h, char *buf, size_t n);
/* conn.c: obx_pool_get (counts under the pool's lock). */
void obx__pg_pool_get(obx_store *h, obx_pool *out);

/* store.c: run fn inside BEGIN/COMMIT on a pooled connection, again on a deadlock or
 * serialization failure (fn must then be safe to run again); a failure rolls back. */
typedef int (*obx__pg_txn_fn)(pg_store *s, PGconn *c, void *ud, obx_error *err);
int obx__pg_txn(pg_store *s, obx__pg_txn_fn fn, void *ud, obx_error *err);

/* schema.c */
/* Create or migrate the schema under an advisory lock; read the store uid. */
int obx__pg_migrate(pg_store *s, PGconn *c, obx_error *err);
/* Prepare every statement on a new connection. */
int obx__pg_prepare_all(PGconn *c, obx_error *err);
/* A handle that does not migrate (read-only): refuse a schema at another version than
 * this build's, naming both. */
int obx__pg_schema_check(pg_store *s, PGconn *c, obx_error *err);

/* idem.c: idempotency keys inside the group commit's transaction. Before the events are
 * inserted, claim: each keyed call of `list` with rc OBX_OK takes its key (a new row, or an
 * expired one overwritten), or finds it stored (replayed, or OBX_ERR_CONFLICT in its rc).
 * A key another node's open transaction holds waits for that transaction: the loser then
 * sees the winner's row. After the events are inserted, store: the claimed keys get their
 * ids. Both return a transaction-level error (the whole batch fails or is run again). */
int obx__pg_idem_claim(pg_store *s, PGconn *c, pg_enq *list, int64_t now, obx_error *err);
int obx__pg_idem_store(pg_store *s, PGconn *c, pg_enq *list, int64_t now, obx_error *err);
int obx__pg_idem_sweep(obx_store *h, int64_t now_ms, size_t max, size_t *removed, obx_error *err);

/* sinkstate.c: obx_sink_state_get/set, and for an owner the cache its watcher thread
 * keeps (LISTEN for changes, reload every few seconds). */
int obx__pg_sink_state_get(obx_store *h, uint32_t id, obx_sink_state *out, obx_error *err);
int obx__pg_sink_state_set(obx_store *h, uint32_t id, int what, int on, int64_t now_ms,
                           const char *why, const char *last_error, obx_sink_state *out,
                           int *changed, obx_error *err);
int obx__pg_health_start(pg_store *s, obx_error *err);
void obx__pg_health_stop(pg_store *s);

/* retire.c: obx_sink_retire. */
int obx__pg_sink_retire(obx_store *h, uint32_t sink_id, int mode, int dry_run,
                        obx_retire_counts *counts, obx_error *err);

/* inspect.c: the read side's backend entries */
int obx__pg_event_get(obx_store *h, uint64_t id, obx_event **out, obx_error *err);
int obx__pg_stats_get(obx_store *h, obx_stats **out, obx_error *err);
int obx__pg_list(obx_store *h, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt,
                 void *ud, obx_error *err);
int obx__pg_check(obx_store *h, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err);
int obx__pg_backup(obx_store *h, const char *dest, obx_error *err);

#endif
