/*
 * backend.h - private: the store interface that every public obx_* call on a handle
 * dispatches through, and its two implementations (LMDB in store.c/ops.c/inspect.c,
 * PostgreSQL in pg/). obx_open() picks the implementation from obx_options.backend; the
 * daemon, the engine and outboxctl only ever see the public API.
 *
 * Every handle, whatever its backend, starts with `const struct obx__backend *be`: the
 * dispatcher (dispatch.c) reads it through a pointer to that first member. Each entry has
 * the contract of the public function of the same name (outbox.h).
 */
#ifndef OUTBOX_BACKEND_H
#define OUTBOX_BACKEND_H

#include "outbox/outbox.h"

/* The common head of every backend's handle. */
struct obx__handle {
    const struct obx__backend *be;
};

struct obx__backend {
    const char *name; /* "lmdb", "postgres" */
    int (*open)(const char *dir, const obx_options *opts, obx_store **out, obx_error *err);
    void (*close)(obx_store *s);
    void (*shutdown)(obx_store *s);
    void (*set_notify)(obx_store *s, obx_notify_fn fn, void *ud);
    int (*sink_id)(obx_store *s, const char *name, uint32_t *id, obx_error *err);
    int (*sink_find)(obx_store *s, const char *name, uint32_t *id, obx_error *err);
    int (*sink_limit)(obx_store *s, uint32_t id, unsigned max_in_flight, int ordered,
                      obx_error *err); /* NULL: the backend needs no limits */
    int (*sink_name)(obx_store *s, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err);
    int (*enqueue)(obx_store *s, const obx_event_in *events, size_t n, uint64_t *ids,
                   obx_error *err);
    int (*event_get)(obx_store *s, uint64_t id, obx_event **out, obx_error *err);
    int (*claim_due)(obx_store *s, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                     size_t *n, int64_t *next_due, obx_error *err);
    int (*next_due)(obx_store *s, uint32_t sink_id, int64_t *next_due, obx_error *err);
    int (*record)(obx_store *s, const obx_result *results, size_t n, obx_error *err);
    int (*replay)(obx_store *s, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
                  obx_error *err);
    int (*purge)(obx_store *s, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err);
    int (*replay_many)(obx_store *s, obx_target *t, size_t n, int64_t now_ms, obx_error *err);
    int (*purge_many)(obx_store *s, obx_target *t, size_t n, obx_error *err);
    int (*retention_sweep)(obx_store *s, int64_t before_ms, size_t max, size_t *removed,
                           obx_error *err);
    int (*stats_get)(obx_store *s, obx_stats **out, obx_error *err);
    int (*list)(obx_store *s, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt,
                void *ud, obx_error *err);
    int (*check)(obx_store *s, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err);
    int (*backup)(obx_store *s, const char *dest, obx_error *err);
    int (*ping)(obx_store *s, obx_error *err);           /* NULL: always writable */
    void (*describe)(obx_store *s, char *buf, size_t n); /* see obx_describe */
    void (*pool_get)(obx_store *s, obx_pool *out);       /* NULL: no pool (LMDB) */
    int (*delivery_id)(obx_store *s, uint64_t event_id, uint32_t sink_id, char *buf, size_t n);
    /* retire and sink state: mode, flag and id are checked by dispatch.c */
    int (*sink_retire)(obx_store *s, uint32_t sink_id, int mode, int dry_run,
                       obx_retire_counts *counts, obx_error *err);
    /* NULL: the backend stores no sink health (get: up; set: OBX_ERR_STATE) */
    int (*sink_state_get)(obx_store *s, uint32_t id, obx_sink_state *out, obx_error *err);
    int (*sink_state_set)(obx_store *s, uint32_t id, int what, int on, int64_t now_ms,
                          const char *why, const char *last_error, obx_sink_state *out,
                          int *changed, obx_error *err);
    int (*enqueue_batch)(obx_store *s, obx_enqueue_req *reqs, size_t n);
    /* NULL: no asynchronous enqueue (obx_enqueue_submit answers OBX_ERR_STATE) */
    int (*enqueue_submit)(obx_store *s, obx_enqueue_req *req, obx_enqueue_done_fn done, void *ud);
    int (*can_submit)(const obx_store *s);
    int (*idem_sweep)(obx_store *s, int64_t now_ms, size_t max, size_t *removed, obx_error *err);
};

#define OBX_MAX_SINKS  1024u /* sink ids are 1..OBX_MAX_SINKS-1 */
#define OBX_MAX_ROUTES 64u   /* sinks per event */

/* Rules both backends apply (store.c): a sink name's syntax; an enqueue's arguments. */
int obx__valid_sink_name(const char *name);
/* Out-of-range settings replaced by their defaults (history, max_batch, high_water_pct,
 * max_size), as obx_options documents them. */
void obx__options_normalize(obx_options *o);
int obx__validate_events(const obx_event_in *events, size_t n, obx_error *err);
/* An idempotent request's key and note (idempotency.c; both backends). */
int obx__idem_check(const obx_idem *idem, obx_error *err);
/* A key found stored with another request's hash: OBX_ERR_CONFLICT into *err, naming the
 * key (idempotency.c; both backends). */
int obx__idem_conflict(const char *key, obx_error *err);
/* The webhook-id "evt_<uid>_<event>_<sink>" into buf[0..n) (identity.c; both backends,
 * each with its store's uid, at most 64 characters). OBX_OK, or OBX_ERR_INVALID when it
 * does not fit (buf is then ""). */
int obx__delivery_id_format(const char *uid, uint64_t event_id, uint32_t sink_id, char *buf,
                            size_t n);
/* obx_enqueue_batch's out-of-memory exit (both backends): every request fails with
 * OBX_ERR_NOMEM. */
void obx__batch_nomem(obx_enqueue_req *reqs, size_t n);
/* Errors (store.c): fill err with code and a formatted message, return code. */
int obx__fail(obx_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

extern const struct obx__backend obx__lmdb_backend;
extern const struct obx__backend obx__pg_backend;

/* The LMDB implementation's entries (store.c, ops.c, inspect.c). */
int obx__lmdb_open(const char *dir, const obx_options *opts, obx_store **out, obx_error *err);
void obx__lmdb_close(obx_store *s);
void obx__lmdb_shutdown(obx_store *s);
void obx__lmdb_set_notify(obx_store *s, obx_notify_fn fn, void *ud);
int obx__lmdb_sink_id(obx_store *s, const char *name, uint32_t *id, obx_error *err);
int obx__lmdb_sink_find(obx_store *s, const char *name, uint32_t *id, obx_error *err);
int obx__lmdb_sink_name(obx_store *s, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err);
int obx__lmdb_enqueue(obx_store *s, const obx_event_in *events, size_t n, uint64_t *ids,
                      obx_error *err);
int obx__lmdb_event_get(obx_store *s, uint64_t id, obx_event **out, obx_error *err);
int obx__lmdb_claim_due(obx_store *s, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                        size_t *n, int64_t *next_due, obx_error *err);
int obx__lmdb_next_due(obx_store *s, uint32_t sink_id, int64_t *next_due, obx_error *err);
int obx__lmdb_record(obx_store *s, const obx_result *results, size_t n, obx_error *err);
int obx__lmdb_replay(obx_store *s, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
                     obx_error *err);
int obx__lmdb_purge(obx_store *s, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err);
int obx__lmdb_replay_many(obx_store *s, obx_target *t, size_t n, int64_t now_ms, obx_error *err);
int obx__lmdb_purge_many(obx_store *s, obx_target *t, size_t n, obx_error *err);
int obx__lmdb_retention_sweep(obx_store *s, int64_t before_ms, size_t max, size_t *removed,
                              obx_error *err);
int obx__lmdb_stats_get(obx_store *s, obx_stats **out, obx_error *err);
int obx__lmdb_list(obx_store *s, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt,
                   void *ud, obx_error *err);
int obx__lmdb_check(obx_store *s, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err);
int obx__lmdb_backup(obx_store *s, const char *dest, obx_error *err);
void obx__lmdb_describe(obx_store *s, char *buf, size_t n);
int obx__lmdb_delivery_id(obx_store *s, uint64_t event_id, uint32_t sink_id, char *buf,
                          size_t n); /* identity.c */
int obx__lmdb_sink_state_get(obx_store *s, uint32_t id, obx_sink_state *out, obx_error *err);
int obx__lmdb_sink_state_set(obx_store *s, uint32_t id, int what, int on, int64_t now_ms,
                             const char *why, const char *last_error, obx_sink_state *out,
                             int *changed, obx_error *err);
int obx__lmdb_sink_retire(obx_store *s, uint32_t sink_id, int mode, int dry_run,
                          obx_retire_counts *counts, obx_error *err);       /* retire.c */
int obx__lmdb_enqueue_batch(obx_store *s, obx_enqueue_req *reqs, size_t n); /* idempotency.c */
int obx__lmdb_enqueue_submit(obx_store *s, obx_enqueue_req *req, obx_enqueue_done_fn done,
                             void *ud);       /* idempotency.c */
int obx__lmdb_can_submit(const obx_store *s); /* idempotency.c */
int obx__lmdb_idem_sweep(obx_store *s, int64_t now_ms, size_t max, size_t *removed,
                         obx_error *err); /* idempotency.c */

#endif
