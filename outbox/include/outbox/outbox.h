/*
 * outbox.h - the public API of liboutbox, the durable LMDB outbox.
 *
 * An outbox directory holds one LMDB environment with events (the bytes a producer
 * handed us) and deliveries (one per event and sink, with state, backoff bookkeeping
 * and a short attempt history). Indexes keep every hot operation O(log n): due
 * deliveries per sink by time, pending deliveries per sink by age, dead letters and
 * delivered records by time.
 *
 * Caveats (read these):
 * - One owner process per directory. obx_open() with OBX_OPEN_OWNER takes an exclusive
 *   lock and starts the group-commit writer thread; a second owner gets OBX_ERR_LOCKED.
 *   Any number of non-owner processes (outboxctl) may open the same directory to read,
 *   replay and purge; their writes are ordinary LMDB write transactions.
 * - Do not use a store across fork(), and do not put it on a network filesystem.
 * - All functions are thread-safe on one obx_store handle unless stated otherwise.
 * - Strings and buffers returned to the caller are copies owned by the caller and freed
 *   with the matching *_free() function; nothing points into LMDB's map.
 * - Errors are returned, never logged: every function that can fail returns an obx_err
 *   code (0 = OBX_OK) and, when `err` is not NULL, fills it with a message that names
 *   what was wrong.
 *
 * Times are Unix epoch milliseconds (int64_t). Event ids are positive, monotonic, never
 * reused. Sink ids are small positive integers from the store's sink registry.
 */
#ifndef OUTBOX_OUTBOX_H
#define OUTBOX_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/version.h"

#ifdef __cplusplus
extern "C" {
#endif
/* liboutbox is built with -fvisibility=hidden: exactly what this header declares is
   exported from the shared library. */
#pragma GCC visibility push(default)

typedef enum obx_err {
    OBX_OK = 0,
    OBX_ERR_INVALID = 1,      /* a bad argument (message says which) */
    OBX_ERR_NOMEM = 2,        /* out of memory */
    OBX_ERR_IO = 3,           /* a system call failed (message has errno text) */
    OBX_ERR_LMDB = 4,         /* LMDB failed (message has mdb_strerror text) */
    OBX_ERR_FULL = 5,         /* store at its size cap: retry later, nothing was written */
    OBX_ERR_LOCKED = 6,       /* another process owns this outbox directory */
    OBX_ERR_VERSION = 7,      /* on-disk schema version differs from this build's */
    OBX_ERR_NOTFOUND = 8,     /* no such event, delivery or sink */
    OBX_ERR_CORRUPT = 9,      /* a record failed its checksum or could not be decoded */
    OBX_ERR_CLOSED = 10,      /* the store is shutting down */
    OBX_ERR_STATE = 11,       /* not allowed in the delivery's current state */
    OBX_ERR_LOCKLOST = 12,    /* lock.mdb was deleted or replaced under the running owner:
                                 enqueue refused, other processes refuse to open; restart */
    OBX_ERR_UNAVAILABLE = 13, /* postgres: the database is unreachable or read-only (a
                                 failover in progress): retry later, nothing was written */
    OBX_ERR_DB = 14,          /* postgres: the database refused a statement (message has
                                 the server's text) */
    OBX_ERR_CONFLICT = 15,    /* an idempotency key already stored with a different request
                                 fingerprint: nothing was stored */
} obx_err;

/* A returned error: the code again and a human-readable message (never a secret). */
typedef struct obx_error {
    int code;
    char msg[256];
} obx_error;

/* A static English name for an error code. */
const char *obx_strerror(int code);

/* ------------------------------------------------------------------------------------ */
/* Opening and closing                                                                   */

typedef enum obx_durability {
    OBX_DURABILITY_FULL = 0,       /* default: each commit is synced (data + meta page); an
                                      acknowledged event survives power loss. */
    OBX_DURABILITY_NOMETASYNC = 1, /* one sync per commit: survives a process crash;
                                      an OS crash or power loss may undo the last
                                      commit. Never the default. */
} obx_durability;

enum {
    OBX_OPEN_OWNER = 1u << 0,    /* take the owner lock; start the writer thread */
    OBX_OPEN_READONLY = 1u << 1, /* inspection only: write calls fail OBX_ERR_STATE */
    OBX_OPEN_NOCREATE = 1u << 2, /* fail with OBX_ERR_NOTFOUND if the dir has no store */
};

typedef enum obx_backend {
    OBX_BACKEND_LMDB = 0,     /* default: the embedded LMDB store in a directory */
    OBX_BACKEND_POSTGRES = 1, /* cluster mode: a PostgreSQL database shared by many nodes */
} obx_backend;

typedef struct obx_options {
    unsigned flags;            /* OBX_OPEN_* */
    uint64_t max_size;         /* store cap in bytes (default 1 GiB); enqueue fails with
                                  OBX_ERR_FULL once used pages pass high_water_pct */
    unsigned high_water_pct;   /* percent of max_size that enqueue may fill (default 90);
                                  the rest is headroom for deletes, replays, dead moves */
    obx_durability durability; /* default OBX_DURABILITY_FULL */
    unsigned history;          /* attempts kept per delivery (default 10, max 64) */
    unsigned max_batch;        /* max operations per group commit (default 4096) */
    int prefill;               /* owner: keep 4..32 MiB of zero-filled space ahead of the
                                  last page so synced commits overwrite allocated blocks
                                  (default 1; 0 on copy-on-write filesystems) */
    /* Backend choice and the PostgreSQL settings (ignored by LMDB). Strings are borrowed
     * for the duration of obx_open() only. With OBX_BACKEND_POSTGRES, obx_open's `dir` is
     * unused; any number of processes may open the same database as owners (nodes). */
    obx_backend backend;
    const char *pg_dsn;      /* libpq conninfo or URI (several hosts +
                                target_session_attrs=read-write follow a failover) */
    const char *pg_password; /* NULL = from the DSN, PGPASSWORD or .pgpass; never logged */
    const char *pg_schema;   /* schema holding every table (default "outbox") */
    unsigned pg_pool;        /* connections per process (default 8) */
    unsigned pg_lease_ms;    /* claim lease: an in-flight delivery whose node stopped
                                renewing it is taken back, in doubt (default 60000) */
    int allow_async_commit;  /* run even when the server's synchronous_commit is off */
} obx_options;

/* Fill *o with the defaults above. */
void obx_options_init(obx_options *o);

typedef struct obx_store obx_store;

/*
 * Open (creating when absent, mode 0700 dir / 0600 files) the outbox at `dir`.
 * Checks the schema version, clears stale reader slots (mdb_reader_check) and, with
 * OBX_OPEN_OWNER, takes the owner lock and moves deliveries left in flight by a crash
 * back to due (marked in doubt).
 * @param[in] dir   directory path; copied.
 * @param[in] opts  NULL for defaults.
 * @param[out] out  the handle, to be closed with obx_close().
 * @return OBX_OK, OBX_ERR_LOCKED, OBX_ERR_VERSION, OBX_ERR_IO, OBX_ERR_LMDB, ...
 */
int obx_open(const char *dir, const obx_options *opts, obx_store **out, obx_error *err);

/* Stop the writer (pending operations are committed first) and close. NULL is a no-op. */
void obx_close(obx_store *s);

/* Begin shutdown: new enqueues fail with OBX_ERR_CLOSED; others still work. */
void obx_shutdown(obx_store *s);

/* ------------------------------------------------------------------------------------ */
/* Sinks                                                                                 */

#define OBX_SINK_NAME_MAX 64

/*
 * Look up or register a sink by name (1..63 bytes) and return its id. Registration is
 * durable and idempotent; the id never changes for a name.
 */
int obx_sink_id(obx_store *s, const char *name, uint32_t *id, obx_error *err);

/* Find a registered sink without registering it (OBX_ERR_NOTFOUND if absent). */
int obx_sink_find(obx_store *s, const char *name, uint32_t *id, obx_error *err);

/*
 * How many deliveries of sink `id` may be in flight at once across every process that
 * shares the store (0 = no limit), and whether the sink is strictly ordered (claims only
 * its oldest pending delivery, when due, and only while none is in flight). Kept in this
 * handle, not stored: each process declares its sinks. The LMDB store has one owner, whose
 * engine enforces both itself (a no-op there); the PostgreSQL store caps claims by them.
 */
int obx_sink_limit(obx_store *s, uint32_t id, unsigned max_in_flight, int ordered, obx_error *err);

/* Copy the name of sink `id` into buf (OBX_SINK_NAME_MAX bytes). */
int obx_sink_name(obx_store *s, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err);

/* ------------------------------------------------------------------------------------ */
/* Enqueue                                                                               */

typedef struct obx_event_in {
    const char *type;   /* event type, e.g. "flag" (<= 255 bytes) */
    const char *action; /* e.g. "created" (<= 255 bytes) */
    const void *body;   /* the bytes to deliver, as received; copied */
    size_t body_len;
    int64_t received_ms;   /* 0 = now */
    const uint32_t *sinks; /* ids of the sinks it is routed to (1..64, distinct) */
    size_t n_sinks;
} obx_event_in;

/*
 * Store `n` events (all or nothing) and one pending delivery per (event, sink), due now.
 * Blocks until the transaction is committed and synced; only then are ids[] filled.
 * Many threads may call this at once: their events share one commit (group commit).
 * Requires OBX_OPEN_OWNER.
 * @return OBX_OK; OBX_ERR_FULL (retryable, nothing stored); OBX_ERR_CLOSED; OBX_ERR_LMDB
 *         when the commit failed (nothing in that batch is acknowledged).
 */
int obx_enqueue(obx_store *s, const obx_event_in *events, size_t n, uint64_t *ids, obx_error *err);

/*
 * Idempotent enqueue. A batch may carry an idempotency key; the key is written in the
 * SAME commit as the batch's events, so once an enqueue is acknowledged (or merely
 * committed before a crash) any later enqueue with that key, until the key expires, stores
 * nothing and gets the original ids back. Two enqueues with one key in one group commit:
 * the first stores, the second replays. Keys count against the store cap like events.
 */
#define OBX_IDEM_KEY_MAX  255  /* key: 1..255 bytes of printable ASCII (0x20..0x7e) */
#define OBX_IDEM_HASH_LEN 32   /* request fingerprint (e.g. SHA-256 of the body) */
#define OBX_IDEM_NOTE_MAX 4096 /* caller's bytes kept with the key */

typedef struct obx_idem {
    const char *key;                       /* copied; see obx_idem_key_check */
    unsigned char hash[OBX_IDEM_HASH_LEN]; /* the request's fingerprint */
    int64_t expires_ms;                    /* forgotten after this (obx_idem_sweep); an
                                              expired key is treated as never seen */
    const void *note;                      /* 0..OBX_IDEM_NOTE_MAX bytes returned on a
                                              replay (e.g. how to rebuild the answer) */
    size_t note_len;
} obx_idem;

/* What an idempotent enqueue found. Free the contents with obx_idem_result_clear. */
typedef struct obx_idem_result {
    int replayed;       /* 1: the key was known; nothing was stored */
    int64_t created_ms; /* when the key was first stored */
    uint64_t *ids;      /* replayed: the original ids (n_ids; malloc'd) */
    size_t n_ids;
    unsigned char *note; /* replayed: the original note (malloc'd, NULL when empty) */
    size_t note_len;
} obx_idem_result;

void obx_idem_result_clear(obx_idem_result *r); /* NULL ok; zeroes it */

/* OBX_OK when `key` is a valid idempotency key, else OBX_ERR_INVALID saying why. */
int obx_idem_key_check(const char *key, obx_error *err);

/*
 * obx_enqueue with an idempotency key (idem NULL: exactly obx_enqueue). n may be 0 (only
 * the key is stored: a request that routed no events). When the key is stored, unexpired,
 * with the same hash: res->replayed = 1 with the original ids and note; ids[] untouched.
 * Otherwise the events and the key are stored in one commit; ids[] filled, replayed = 0.
 * @return as obx_enqueue, plus OBX_ERR_INVALID (bad key, note too long) and
 *         OBX_ERR_CONFLICT (the key is stored with another hash; nothing stored).
 *         *res is cleared on any error.
 */
int obx_enqueue_idem(obx_store *s, const obx_event_in *events, size_t n, const obx_idem *idem,
                     uint64_t *ids, obx_idem_result *res, obx_error *err);

/* One request of obx_enqueue_batch: obx_enqueue_idem's arguments and its results. */
typedef struct obx_enqueue_req {
    const obx_event_in *events; /* in: n events (n may be 0 with a key) */
    size_t n;
    const obx_idem *idem; /* in: NULL = no key */
    uint64_t *ids;        /* out: n ids once stored */
    obx_idem_result res;  /* out: with a key; clear it with obx_idem_result_clear */
    int rc;               /* out: as obx_enqueue_idem returns */
    obx_error err;        /* out: its message when rc != OBX_OK */
} obx_enqueue_req;

/*
 * The same as calling obx_enqueue_idem for each request in order, but queued together so
 * they share group commits (one sync for all, up to obx_options.max_batch operations):
 * each request is stored, replayed or refused on its own (a conflict or a full store fails
 * that request only; a failed commit fails every request in it). Requests with one key:
 * the first stores, the later ones replay. Blocks until all are committed. Returns OBX_OK
 * once every request has its rc.
 */
int obx_enqueue_batch(obx_store *s, obx_enqueue_req *reqs, size_t n);

/*
 * Called once on the store's writer thread when a request queued by obx_enqueue_submit is
 * finished (req->rc, ids, res and err set as obx_enqueue_batch sets them). It must be
 * short and must not call into the store: the next commit waits for it.
 */
typedef void (*obx_enqueue_done_fn)(void *ud, obx_enqueue_req *req);

/*
 * obx_enqueue_batch for one request without blocking: the request joins the writer's
 * queue (sharing group commits like any other) and done(ud, req) reports its result from
 * the writer thread. req, its events, ids and idem stay borrowed until done is called.
 * Returns OBX_OK when queued (done will be called exactly once, also when the store is
 * closed meanwhile: obx_close finishes every queued request first); any other code when
 * refused at once (req->rc and req->err set, done never called). OBX_ERR_STATE with
 * obx_enqueue_can_submit false: this store has no writer thread (a PostgreSQL store, a
 * tool's handle): use obx_enqueue_batch.
 */
int obx_enqueue_submit(obx_store *s, obx_enqueue_req *req, obx_enqueue_done_fn done, void *ud);

/* Whether obx_enqueue_submit can queue on this store (an owner LMDB store). */
int obx_enqueue_can_submit(const obx_store *s);

/*
 * Forget idempotency keys whose expires_ms <= now_ms, oldest expiry first, at most `max`
 * (0 = 1000) in one short transaction (call again while *removed == max). Any process.
 */
int obx_idem_sweep(obx_store *s, int64_t now_ms, size_t max, size_t *removed, obx_error *err);

/*
 * Called from the writer thread after each commit that made deliveries due (enqueue,
 * or a replay by this process; on PostgreSQL also results that released deliveries or
 * freed a slot of a sink whose claims its limit held). Must be quick and must not call
 * back into the store.
 */
typedef void (*obx_notify_fn)(void *ud);
void obx_set_notify(obx_store *s, obx_notify_fn fn, void *ud);

/* ------------------------------------------------------------------------------------ */
/* Delivery states and records                                                           */

typedef enum obx_state {
    OBX_STATE_PENDING = 1,   /* waiting for its next attempt */
    OBX_STATE_INFLIGHT = 2,  /* claimed by the scheduler; an attempt has started */
    OBX_STATE_DELIVERED = 3, /* a 2xx was recorded */
    OBX_STATE_DEAD = 4,      /* a dead letter: see reason */
} obx_state;

/* "pending", "inflight", "delivered", "dead"; parse returns 0 when unknown. */
const char *obx_state_name(int state);
int obx_state_parse(const char *name);

/* A response header kept for forensics (both strings owned by the attempt). */
typedef struct obx_header {
    char *name;
    char *value;
} obx_header;

/* Bounds of what one attempt keeps of its response; longer input is cut to them. */
#define OBX_CAPTURE_HEADERS_MAX 16          /* headers per attempt */
#define OBX_CAPTURE_NAME_MAX    64          /* bytes of a header name */
#define OBX_CAPTURE_VALUE_MAX   256         /* bytes of a header value */
#define OBX_CAPTURE_BODY_MAX    (64 * 1024) /* bytes of the response body */

typedef struct obx_attempt {
    int64_t started_ms;
    uint32_t duration_ms;
    int status;  /* HTTP status, 0 when no response */
    char *error; /* NULL or a short text (transport error); owned by the record */
    /* the response, as received (records written before forensics have none of it) */
    size_t n_headers;    /* at most OBX_CAPTURE_HEADERS_MAX */
    obx_header *headers; /* owned; NULL when none */
    unsigned char *body; /* owned; the first body_len bytes of the body, NULL when none */
    size_t body_len;     /* at most OBX_CAPTURE_BODY_MAX */
    uint64_t body_size;  /* bytes the whole response body had */
} obx_attempt;

/* Deep-copy src into *dst (everything owned by dst afterwards). OBX_OK / OBX_ERR_NOMEM
 * (dst then holds nothing). */
int obx_attempt_copy(obx_attempt *dst, const obx_attempt *src);
/* Free what an attempt owns and zero it. NULL is fine. */
void obx_attempt_clear(obx_attempt *a);

/*
 * The id of a delivery: "evt_<store id, 32 hex>_<event id>_<sink id>", sent as the
 * `webhook-id` header on every attempt. The store id is 128 random bits made when the
 * store is created (or, for an older store, at its first writable open) and kept in it,
 * so the id is the same across restarts and replays and differs between stores.
 * @param buf  at least OBX_DELIVERY_ID_MAX bytes.
 * @return OBX_OK; OBX_ERR_INVALID (buf too small); OBX_ERR_NOTFOUND (a store opened
 *         read-only that has no id yet: it was never opened writable by this version).
 */
#define OBX_DELIVERY_ID_MAX 72
int obx_delivery_id(obx_store *s, uint64_t event_id, uint32_t sink_id, char *buf, size_t n);

typedef struct obx_delivery {
    uint64_t event_id;
    uint32_t sink_id;
    int state;                /* obx_state */
    int in_doubt;             /* an attempt started and no result was recorded (crash) */
    uint32_t attempts;        /* attempts in the current budget (reset by replay) */
    uint32_t total_attempts;  /* attempts ever */
    int64_t first_attempt_ms; /* start of the current budget; 0 before the first */
    int64_t last_attempt_ms;
    int64_t next_attempt_ms; /* for pending */
    int64_t deadline_ms;     /* end of the elapsed budget; 0 until first attempt */
    int64_t done_ms;         /* delivered-at or dead-at */
    int last_status;
    char *last_error; /* NULL or text */
    char *reason;     /* dead letters: why */
    uint32_t replays; /* times replayed */
    size_t n_history; /* newest last */
    obx_attempt *history;
    char webhook_id[OBX_DELIVERY_ID_MAX]; /* obx_delivery_id(), filled by the store's reads
                                             ("" when unknown) */
} obx_delivery;

typedef struct obx_event {
    uint64_t id;
    int64_t received_ms;
    char *type;
    char *action;
    unsigned char *body;
    size_t body_len;
    size_t n_deliveries;
    obx_delivery *deliveries; /* one per routed sink (absent ones purged) */
} obx_event;

void obx_event_free(obx_event *e);        /* NULL ok; frees everything inside */
void obx_delivery_clear(obx_delivery *d); /* frees the strings/history inside */

/* Get an event with all its deliveries. OBX_ERR_NOTFOUND / OBX_ERR_CORRUPT. */
int obx_event_get(obx_store *s, uint64_t id, obx_event **out, obx_error *err);

/* ------------------------------------------------------------------------------------ */
/* Scheduling (the delivery engine)                                                      */

/* A claimed delivery: everything needed to send one attempt. Owned by the caller. */
typedef struct obx_job {
    uint64_t event_id;
    uint32_t sink_id;
    uint32_t attempts;        /* attempts already made in this budget */
    int64_t first_attempt_ms; /* 0 = this is the first attempt of the budget */
    int64_t deadline_ms;      /* 0 = not set yet (set it in the result) */
    int64_t due_ms;
    int in_doubt; /* previous attempt's outcome unknown (crash) */
    int64_t received_ms;
    char *type;
    char *action;
    unsigned char *body;
    size_t body_len;
    char webhook_id[OBX_DELIVERY_ID_MAX]; /* obx_delivery_id(): the webhook-id to send */
} obx_job;

void obx_jobs_free(obx_job *jobs, size_t n); /* frees the array and its contents */

/*
 * Claim up to `max` deliveries of `sink_id` that are due at `now_ms`, oldest due first,
 * and mark them in flight durably (a crash from here on shows them in doubt and makes
 * them due again at the next owner start). Never returns a delivery already in flight.
 * @param[out] jobs      array of *n jobs (NULL when *n == 0); free with obx_jobs_free.
 * @param[out] next_due  when *n < max: due time of the next pending delivery of this
 *                       sink (INT64_MAX when none). May be NULL.
 * Requires OBX_OPEN_OWNER.
 */
int obx_claim_due(obx_store *s, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                  size_t *n, int64_t *next_due, obx_error *err);

/* Peek (read-only) at the due time of the next pending delivery of a sink. */
int obx_next_due(obx_store *s, uint32_t sink_id, int64_t *next_due, obx_error *err);

typedef enum obx_outcome {
    OBX_OUTCOME_DELIVERED = 1, /* 2xx */
    OBX_OUTCOME_RETRY = 2,     /* back to pending, due at next_attempt_ms */
    OBX_OUTCOME_DEAD = 3,      /* dead letter with reason */
    OBX_OUTCOME_RELEASE = 4,   /* no attempt was made (shutdown): back to pending as it was */
} obx_outcome;

typedef struct obx_result {
    uint64_t event_id;
    uint32_t sink_id;
    int outcome;        /* obx_outcome */
    int64_t started_ms; /* the attempt (ignored for RELEASE) */
    uint32_t duration_ms;
    int status;               /* HTTP status or 0 */
    const char *error;        /* transport/render error text or NULL; copied */
    int64_t first_attempt_ms; /* start of budget (from the job, or started_ms if first) */
    int64_t deadline_ms;      /* end of budget */
    int64_t next_attempt_ms;  /* RETRY only */
    const char *reason;       /* DEAD only; copied */
    /* the response captured for the attempt's history (copied, cut to the OBX_CAPTURE_*
     * bounds; ignored for RELEASE) */
    const obx_header *headers;
    size_t n_headers;
    const unsigned char *body;
    size_t body_len;
    uint64_t body_size; /* bytes the whole response body had */
} obx_result;

/*
 * Record attempt results for claimed deliveries; one commit for all `n`. Blocks until
 * committed and synced. A result for a delivery that is not in flight (e.g. purged
 * meanwhile) is skipped. Requires OBX_OPEN_OWNER.
 */
int obx_record(obx_store *s, const obx_result *results, size_t n, obx_error *err);

/* ------------------------------------------------------------------------------------ */
/* Operator actions (any process)                                                        */

#define OBX_ALL_SINKS UINT32_MAX

/*
 * Replay: put dead (or delivered) deliveries of event `id` back to pending, due at
 * now_ms, with a fresh elapsed budget. sink_id OBX_ALL_SINKS = every dead or delivered
 * delivery of the event. *count (may be NULL) = deliveries replayed.
 * OBX_ERR_NOTFOUND if the event (or sink) does not exist; OBX_ERR_STATE if none was
 * dead or delivered (pending and in-flight ones are left alone).
 */
int obx_replay(obx_store *s, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
               obx_error *err);

/* Delete dead letter(s) of event `id` (sink or all); the event goes with its last one. */
int obx_purge(obx_store *s, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err);

/* One delivery (or, with OBX_ALL_SINKS, every delivery of an event) for a bulk call. */
typedef struct obx_target {
    uint64_t event_id;
    uint32_t sink_id; /* or OBX_ALL_SINKS */
    int rc;           /* out: OBX_OK, OBX_ERR_STATE, OBX_ERR_NOTFOUND, ... */
    size_t count;     /* out: deliveries replayed or purged */
} obx_target;

/*
 * Bulk replay / purge: the same as calling obx_replay / obx_purge for each target, but in
 * one write transaction (one sync). Each target gets its own rc and count; the call
 * returns OBX_OK unless the transaction itself failed (then nothing changed).
 */
int obx_replay_many(obx_store *s, obx_target *t, size_t n, int64_t now_ms, obx_error *err);
int obx_purge_many(obx_store *s, obx_target *t, size_t n, obx_error *err);

/*
 * Retention: delete delivered deliveries whose delivered-at <= before_ms, oldest first,
 * at most `max` in one short transaction (call again while *removed == max). Events
 * without deliveries left are deleted with them.
 */
int obx_retention_sweep(obx_store *s, int64_t before_ms, size_t max, size_t *removed,
                        obx_error *err);

/*
 * Retire a sink that is no longer configured. Every delivery of the sink is visited, in
 * pages of short write transactions (a daemon writing meanwhile waits for one page at
 * most; a failure leaves the pages before it committed, and calling again resumes):
 * - OBX_RETIRE_DEAD_LETTER: pending and in-flight deliveries become dead letters whose
 *   reason says the sink was retired (dead and delivered ones are left as they are). The
 *   sink keeps its registry slot while records of it remain: they carry its id, and a new
 *   sink given that id would inherit them (a replay would send them to it).
 * - OBX_RETIRE_PURGE: every delivery of the sink (pending, in flight, dead, delivered) is
 *   deleted, and an event with its last one. When nothing of the sink is left its
 *   registry entry is freed: its name is unknown from then on and its id is reused by the
 *   next sink registered (obx_sink_id).
 * In-flight deliveries are taken too: a result recorded for one afterwards is skipped
 * (obx_record), though its request may already have reached the receiver. The caller
 * decides whether that is acceptable (outboxctl refuses while a daemon has some in flight).
 * With dry_run nothing changes (read transactions) and *counts says what would happen.
 * Corrupt delivery records are left alone and counted; the slot is then not freed.
 * @param[out] counts  may be NULL; filled also on failure with what was committed.
 * On a PostgreSQL store, deliveries in flight under a live lease (a node delivering to the
 * sink) make it fail with OBX_ERR_STATE, changing nothing; expired leases are taken.
 * @return OBX_OK, OBX_ERR_INVALID (mode or id), OBX_ERR_STATE (read-only handle; live
 *         leases), OBX_ERR_FULL, OBX_ERR_LMDB,
 *         OBX_ERR_NOMEM.
 */
enum { OBX_RETIRE_DEAD_LETTER = 1, OBX_RETIRE_PURGE = 2 };
typedef struct obx_retire_counts {
    size_t pending;        /* pending (in doubt included) dead-lettered or purged */
    size_t inflight;       /* in flight, likewise */
    size_t dead;           /* dead letters purged (purge) */
    size_t delivered;      /* delivered records purged (purge) */
    size_t events;         /* events deleted with their last delivery (purge) */
    size_t dead_kept;      /* dead letters left (dead-letter mode) */
    size_t delivered_kept; /* delivered records left (dead-letter mode; retention takes them) */
    size_t corrupt;        /* records that did not decode, left alone */
    int slot_freed;        /* the registry entry was (dry run: would be) freed */
} obx_retire_counts;
int obx_sink_retire(obx_store *s, uint32_t sink_id, int mode, int dry_run,
                    obx_retire_counts *counts, obx_error *err);

/* ------------------------------------------------------------------------------------ */
/* Inspection                                                                            */

typedef struct obx_sink_stats {
    uint32_t id;
    char name[OBX_SINK_NAME_MAX];
    uint64_t pending;
    uint64_t inflight; /* includes in doubt */
    uint64_t in_doubt;
    uint64_t delivered;
    uint64_t dead;
    int64_t oldest_pending_ms; /* received time of the oldest pending event, 0 if none */
    int64_t next_due_ms;       /* INT64_MAX if none */
} obx_sink_stats;

#define OBX_BATCH_BUCKETS  13 /* commit batch size histogram: upper bounds 1, 2, 4, ..., 4096 */
#define OBX_COMMIT_BUCKETS 10 /* commit (and sync) duration histogram: see obx_commit_bounds_us */
/* Upper bounds, in microseconds, of the commit duration histogram's buckets. */
extern const uint32_t obx_commit_bounds_us[OBX_COMMIT_BUCKETS];

typedef struct obx_stats {
    uint64_t events;     /* events stored */
    uint64_t enqueued;   /* events ever acknowledged */
    uint64_t used_bytes; /* pages in use x page size */
    uint64_t file_bytes; /* size of the data file */
    uint64_t max_size;   /* cap */
    uint64_t high_water; /* bytes at which enqueue starts failing */
    uint64_t map_size;
    uint32_t schema_version;
    uint64_t idem_keys; /* idempotency keys stored (expired ones until swept) */
    /* Group commits by this process since it opened the store (owner only; zero in tools):
     * commit_batches[i] counts commits of at most 2^i operations, the last slot the rest. */
    uint64_t commit_batches[OBX_BATCH_BUCKETS + 1];
    uint64_t commit_ops; /* operations committed in those commits */
    /* Their durations (mdb_txn_commit: page writes and syncs): commit_us[i] counts commits
     * of at most obx_commit_bounds_us[i], the last slot the rest; commit_us_sum in total.
     * The disk's sync latency bounds every acknowledgement. */
    uint64_t commit_us[OBX_COMMIT_BUCKETS + 1];
    uint64_t commit_us_sum;
    size_t n_sinks;
    obx_sink_stats *sinks;
} obx_stats;

/* One consistent snapshot of counters (no scans). Free with obx_stats_free. */
int obx_stats_get(obx_store *s, obx_stats **out, obx_error *err);
void obx_stats_free(obx_stats *st);

typedef struct obx_query {
    int state;        /* 0 = all, else obx_state */
    uint32_t sink_id; /* OBX_ALL_SINKS = any */
    const char *type; /* NULL = any */
    const char *action;
    int64_t since_ms; /* received time >= since (0 = no bound) */
    int64_t until_ms; /* received time < until (0 = no bound) */
    int newest_first;
    size_t limit;      /* 0 = no limit */
    uint64_t after_id; /* resume: only events after (or, newest_first, before) this id */
} obx_query;

void obx_query_init(obx_query *q);

/*
 * Called per matching delivery, with its event (body included). Both are valid only
 * during the call. Return non-zero to stop.
 */
typedef int (*obx_list_fn)(void *ud, const obx_event *ev, const obx_delivery *d);
/* Called for a record that failed to decode; listing goes on. */
typedef void (*obx_corrupt_fn)(void *ud, uint64_t event_id, uint32_t sink_id, const char *what);

/*
 * Iterate deliveries matching q in (event id, sink) order - for state dead or delivered
 * in (done time, event id, sink) order - both backends alike, through short paged read
 * transactions (never one long reader). Corrupt records are reported to on_corrupt
 * (may be NULL) and skipped.
 */
int obx_list(obx_store *s, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt, void *ud,
             obx_error *err);

/* Verify invariants (indexes vs records, counters); report each problem. *problems = n. */
typedef void (*obx_problem_fn)(void *ud, const char *problem);
int obx_check(obx_store *s, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err);

/* A consistent, compacted hot copy into directory `dest` (created; must be empty). */
int obx_backup(obx_store *s, const char *dest, obx_error *err);

/*
 * The pid of the process that owns the outbox at `dir` (holds its owner lock), found in
 * /proc/locks without touching the lock, so a daemon starting meanwhile is never refused.
 * @param[out] pid  the owner's pid, or 0 when no process owns it (no daemon running).
 * @return OBX_OK, or OBX_ERR_IO when /proc/locks cannot be read (Linux only).
 */
int obx_owner_pid(const char *dir, long *pid, obx_error *err);

/*
 * Whether the store can take writes now (for health checks): OBX_OK, or for a database
 * store OBX_ERR_UNAVAILABLE while the server is unreachable or read-only (a failover in
 * progress). Always OBX_OK for an LMDB store.
 */
int obx_ping(obx_store *s, obx_error *err);

/*
 * Where the store lives, for people (outboxctl stats, logs), into buf (always
 * NUL-terminated, truncated to n): "lmdb DIR", or "postgres host=H port=P dbname=D
 * user=U schema=S" with only those connection fields, never a password.
 */
void obx_describe(obx_store *s, char *buf, size_t n);

/* A database store's connection pool at one moment (obx_pool_get). */
typedef struct obx_pool {
    unsigned size;     /* connections the pool may hold (outbox.postgres.pool) */
    unsigned busy;     /* in use by a statement or transaction now */
    unsigned idle;     /* connected, free */
    unsigned unopened; /* not connected (never yet, or dropped after a failure) */
} obx_pool;

/* The pool's counts (no I/O). 1 for a database store; 0 (and *out zeroed) for an LMDB
 * store, which has no pool. */
int obx_pool_get(obx_store *s, obx_pool *out);

/* ------------------------------------------------------------------------------------ */
/* Sink health (sinkstate.c)                                                             */

/*
 * A sink's persisted health: whether the delivery engine's breaker holds it (down),
 * whether an operator paused it, since when and why, and the time it spent held (down or
 * paused, or both). The engine keeps delivery budgets relative to held_ms, so time held
 * does not spend them. A sink with no stored state is up, not paused, never held.
 * Both backends store it; on a PostgreSQL store one row per sink is shared by every node,
 * and an owner handle answers get from memory kept current through NOTIFY.
 */
#define OBX_SINK_WHY_MAX 256
enum { OBX_SINK_DOWN = 1, OBX_SINK_PAUSED = 2 }; /* obx_sink_state_set's `what` */
typedef struct obx_sink_state {
    int down;                          /* 1: the breaker is open */
    int paused;                        /* 1: paused by an operator */
    int64_t down_since_ms;             /* when it went down (0 when up) */
    int64_t paused_since_ms;           /* when it was paused (0 when not) */
    int64_t changed_ms;                /* the last transition (0: never) */
    int64_t held_ms;                   /* time held before held_since_ms */
    int64_t held_since_ms;             /* start of the current held stretch (0: not held now) */
    uint64_t changes;                  /* transitions so far (down, up, pause, resume) */
    char why[OBX_SINK_WHY_MAX];        /* the last transition's reason */
    char last_error[OBX_SINK_WHY_MAX]; /* the last failure when it went down, or "" */
} obx_sink_state;

/* Read sink `id`'s state into *out (zeroed when none is stored). Any process.
 * @return OBX_OK, OBX_ERR_INVALID (no such id), OBX_ERR_CORRUPT, OBX_ERR_LMDB. */
int obx_sink_state_get(obx_store *s, uint32_t id, obx_sink_state *out, obx_error *err);

/*
 * Set one flag of sink `id` (what = OBX_SINK_DOWN or OBX_SINK_PAUSED) to `on` at now_ms, in
 * one durable write transaction (read, change, write: the engine's down and an operator's
 * pause never overwrite each other), keeping held_ms/held_since_ms up to date. A call that
 * changes nothing writes nothing. why and last_error (may be NULL) are copied, cut to
 * OBX_SINK_WHY_MAX - 1 bytes; last_error is kept only with down. Any process except a
 * read-only handle.
 * @param[out] out  the state after the call (may be NULL).
 * @param[out] changed  1 when the flag changed (may be NULL).
 * @return OBX_OK, OBX_ERR_INVALID, OBX_ERR_STATE (read-only), OBX_ERR_LMDB.
 */
int obx_sink_state_set(obx_store *s, uint32_t id, int what, int on, int64_t now_ms, const char *why,
                       const char *last_error, obx_sink_state *out, int *changed, obx_error *err);

/* The change obx_sink_state_set stores, applied to *st in memory (the one rule for it; the
 * engine uses it where the backend stores no state). Returns 1, or 0 when it changes nothing. */
int obx_sink_state_apply(obx_sink_state *st, int what, int on, int64_t now_ms, const char *why,
                         const char *last_error);

/* Time sink state `st` has been held (down or paused) up to now_ms, in ms. The one rule
 * for it: the engine and outboxctl call it. */
int64_t obx_sink_held_ms(const obx_sink_state *st, int64_t now_ms);

/* Wall clock in ms (CLOCK_REALTIME). */
int64_t obx_now_ms(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
