/*
 * dispatch.c - the public obx_* calls on a handle: obx_open() picks the backend named by
 * obx_options.backend, every other call goes through the handle's backend table
 * (backend.h). Nothing here knows what a backend does.
 */
#include "backend.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct obx__backend *const backends[] = {
    [OBX_BACKEND_LMDB] = &obx__lmdb_backend,
    [OBX_BACKEND_POSTGRES] = &obx__pg_backend,
};

/* The backend table at the head of every handle. */
static const struct obx__backend *be(obx_store *s)
{
    return ((const struct obx__handle *)(const void *)s)->be;
}

int obx_open(const char *dir, const obx_options *opts, obx_store **out, obx_error *err)
{
    unsigned b = opts ? (unsigned)opts->backend : OBX_BACKEND_LMDB;
    if (b >= sizeof backends / sizeof backends[0] || !backends[b]) {
        *out = NULL;
        if (err) {
            err->code = OBX_ERR_INVALID;
            snprintf(err->msg, sizeof err->msg, "unknown store backend %u", b);
        }
        return OBX_ERR_INVALID;
    }
    return backends[b]->open(dir, opts, out, err);
}

void obx_close(obx_store *s)
{
    if (s)
        be(s)->close(s);
}

void obx_shutdown(obx_store *s)
{
    if (s)
        be(s)->shutdown(s);
}

void obx_set_notify(obx_store *s, obx_notify_fn fn, void *ud)
{
    be(s)->set_notify(s, fn, ud);
}

int obx_sink_id(obx_store *s, const char *name, uint32_t *id, obx_error *err)
{
    return be(s)->sink_id(s, name, id, err);
}

int obx_sink_find(obx_store *s, const char *name, uint32_t *id, obx_error *err)
{
    return be(s)->sink_find(s, name, id, err);
}

int obx_sink_limit(obx_store *s, uint32_t id, unsigned max_in_flight, int ordered, obx_error *err)
{
    if (id == 0 || id >= OBX_MAX_SINKS)
        return obx__fail(err, OBX_ERR_INVALID, "sink id %u out of range", id);
    return be(s)->sink_limit ? be(s)->sink_limit(s, id, max_in_flight, ordered, err) : OBX_OK;
}

int obx_sink_name(obx_store *s, uint32_t id, char buf[OBX_SINK_NAME_MAX], obx_error *err)
{
    return be(s)->sink_name(s, id, buf, err);
}

int obx_enqueue(obx_store *s, const obx_event_in *events, size_t n, uint64_t *ids, obx_error *err)
{
    return be(s)->enqueue(s, events, n, ids, err);
}

int obx_event_get(obx_store *s, uint64_t id, obx_event **out, obx_error *err)
{
    return be(s)->event_get(s, id, out, err);
}

int obx_claim_due(obx_store *s, uint32_t sink_id, int64_t now_ms, size_t max, obx_job **jobs,
                  size_t *n, int64_t *next_due, obx_error *err)
{
    return be(s)->claim_due(s, sink_id, now_ms, max, jobs, n, next_due, err);
}

int obx_next_due(obx_store *s, uint32_t sink_id, int64_t *next_due, obx_error *err)
{
    return be(s)->next_due(s, sink_id, next_due, err);
}

int obx_record(obx_store *s, const obx_result *results, size_t n, obx_error *err)
{
    return be(s)->record(s, results, n, err);
}

int obx_replay(obx_store *s, uint64_t id, uint32_t sink_id, int64_t now_ms, size_t *count,
               obx_error *err)
{
    return be(s)->replay(s, id, sink_id, now_ms, count, err);
}

int obx_purge(obx_store *s, uint64_t id, uint32_t sink_id, size_t *count, obx_error *err)
{
    return be(s)->purge(s, id, sink_id, count, err);
}

int obx_replay_many(obx_store *s, obx_target *t, size_t n, int64_t now_ms, obx_error *err)
{
    return be(s)->replay_many(s, t, n, now_ms, err);
}

int obx_purge_many(obx_store *s, obx_target *t, size_t n, obx_error *err)
{
    return be(s)->purge_many(s, t, n, err);
}

int obx_retention_sweep(obx_store *s, int64_t before_ms, size_t max, size_t *removed,
                        obx_error *err)
{
    return be(s)->retention_sweep(s, before_ms, max, removed, err);
}

int obx_stats_get(obx_store *s, obx_stats **out, obx_error *err)
{
    return be(s)->stats_get(s, out, err);
}

int obx_list(obx_store *s, const obx_query *q, obx_list_fn fn, obx_corrupt_fn on_corrupt, void *ud,
             obx_error *err)
{
    return be(s)->list(s, q, fn, on_corrupt, ud, err);
}

int obx_check(obx_store *s, obx_problem_fn fn, void *ud, size_t *problems, obx_error *err)
{
    return be(s)->check(s, fn, ud, problems, err);
}

int obx_backup(obx_store *s, const char *dest, obx_error *err)
{
    return be(s)->backup(s, dest, err);
}

int obx_ping(obx_store *s, obx_error *err)
{
    return be(s)->ping ? be(s)->ping(s, err) : OBX_OK;
}

void obx_describe(obx_store *s, char *buf, size_t n)
{
    if (!buf || n == 0)
        return;
    buf[0] = '\0';
    if (s)
        be(s)->describe(s, buf, n);
}

int obx_pool_get(obx_store *s, obx_pool *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !be(s)->pool_get)
        return 0;
    be(s)->pool_get(s, out);
    return 1;
}

int obx_delivery_id(obx_store *s, uint64_t event_id, uint32_t sink_id, char *buf, size_t n)
{
    if (!s || !buf || n == 0)
        return OBX_ERR_INVALID;
    return be(s)->delivery_id(s, event_id, sink_id, buf, n);
}

int obx_sink_retire(obx_store *s, uint32_t sink_id, int mode, int dry_run,
                    obx_retire_counts *counts, obx_error *err)
{
    if (counts)
        memset(counts, 0, sizeof *counts);
    if (mode != OBX_RETIRE_DEAD_LETTER && mode != OBX_RETIRE_PURGE)
        return obx__fail(err, OBX_ERR_INVALID, "retire: mode %d is neither dead-letter nor purge",
                         mode);
    if (sink_id == 0 || sink_id >= OBX_MAX_SINKS)
        return obx__fail(err, OBX_ERR_INVALID, "retire: no sink can have id %u", sink_id);
    return be(s)->sink_retire(s, sink_id, mode, dry_run, counts, err);
}

static int sink_state_id(uint32_t id, obx_error *err)
{
    if (id == 0 || id >= OBX_MAX_SINKS)
        return obx__fail(err, OBX_ERR_INVALID, "sink state: no sink can have id %u", id);
    return OBX_OK;
}

int obx_sink_state_get(obx_store *s, uint32_t id, obx_sink_state *out, obx_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = sink_state_id(id, err);
    if (rc || !be(s)->sink_state_get)
        return rc;
    return be(s)->sink_state_get(s, id, out, err);
}

int obx_sink_state_set(obx_store *s, uint32_t id, int what, int on, int64_t now_ms, const char *why,
                       const char *last_error, obx_sink_state *out, int *changed, obx_error *err)
{
    if (changed)
        *changed = 0;
    int rc = sink_state_id(id, err);
    if (rc)
        return rc;
    if (what != OBX_SINK_DOWN && what != OBX_SINK_PAUSED)
        return obx__fail(err, OBX_ERR_INVALID, "sink state: unknown flag %d", what);
    if (!be(s)->sink_state_set)
        return obx__fail(err, OBX_ERR_STATE,
                         "sink health (pause, breaker state) is not stored by "
                         "the %s backend",
                         be(s)->name);
    return be(s)->sink_state_set(s, id, what, on, now_ms, why, last_error, out, changed, err);
}

int obx_enqueue_batch(obx_store *s, obx_enqueue_req *reqs, size_t n)
{
    return be(s)->enqueue_batch(s, reqs, n);
}

int obx_enqueue_submit(obx_store *s, obx_enqueue_req *req, obx_enqueue_done_fn done, void *ud)
{
    if (!be(s)->enqueue_submit || !be(s)->can_submit(s)) {
        memset(&req->res, 0, sizeof req->res);
        req->rc = obx__fail(&req->err, OBX_ERR_STATE,
                            "asynchronous enqueue needs the owner's LMDB store (the %s "
                            "backend, or a tool's handle, has no writer thread)",
                            be(s)->name);
        return req->rc;
    }
    return be(s)->enqueue_submit(s, req, done, ud);
}

int obx_enqueue_can_submit(const obx_store *s)
{
    const struct obx__backend *b = be((obx_store *)s);
    return b->enqueue_submit && b->can_submit(s);
}

int obx_enqueue_idem(obx_store *s, const obx_event_in *events, size_t n, const obx_idem *idem,
                     uint64_t *ids, obx_idem_result *res, obx_error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!idem)
        return obx_enqueue(s, events, n, ids, err);
    if (!res)
        return obx__fail(err, OBX_ERR_INVALID, "idempotent enqueue needs a result");
    obx_enqueue_req r = {.events = events, .n = n, .idem = idem, .ids = ids};
    be(s)->enqueue_batch(s, &r, 1);
    *res = r.res;
    if (r.rc && err)
        *err = r.err;
    return r.rc;
}

int obx_idem_sweep(obx_store *s, int64_t now_ms, size_t max, size_t *removed, obx_error *err)
{
    return be(s)->idem_sweep(s, now_ms, max, removed, err);
}

const struct obx__backend obx__lmdb_backend = {
    .name = "lmdb",
    .open = obx__lmdb_open,
    .close = obx__lmdb_close,
    .shutdown = obx__lmdb_shutdown,
    .set_notify = obx__lmdb_set_notify,
    .sink_id = obx__lmdb_sink_id,
    .sink_find = obx__lmdb_sink_find,
    .sink_name = obx__lmdb_sink_name,
    .enqueue = obx__lmdb_enqueue,
    .event_get = obx__lmdb_event_get,
    .claim_due = obx__lmdb_claim_due,
    .next_due = obx__lmdb_next_due,
    .record = obx__lmdb_record,
    .replay = obx__lmdb_replay,
    .purge = obx__lmdb_purge,
    .replay_many = obx__lmdb_replay_many,
    .purge_many = obx__lmdb_purge_many,
    .retention_sweep = obx__lmdb_retention_sweep,
    .stats_get = obx__lmdb_stats_get,
    .list = obx__lmdb_list,
    .check = obx__lmdb_check,
    .backup = obx__lmdb_backup,
    .delivery_id = obx__lmdb_delivery_id,
    .sink_retire = obx__lmdb_sink_retire,
    .sink_state_get = obx__lmdb_sink_state_get,
    .sink_state_set = obx__lmdb_sink_state_set,
    .enqueue_batch = obx__lmdb_enqueue_batch,
    .enqueue_submit = obx__lmdb_enqueue_submit,
    .can_submit = obx__lmdb_can_submit,
    .idem_sweep = obx__lmdb_idem_sweep,
    .describe = obx__lmdb_describe,
};
