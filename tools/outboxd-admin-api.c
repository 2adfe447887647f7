/*
 * outboxd-admin-api.c - the JSON endpoints of the admin listener (outboxd-admin-api.h):
 * stats, the paged delivery listing, one event, replay and purge, through liboutbox's
 * public calls only and in outboxctl --json's shapes (outbox-json.h).
 */
#include "outboxd-admin-api.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox-json.h"
#include "outboxctl-time.h"
#include "outboxd-admin.h"
#include "outboxd-log.h"

#define BULK_CHUNK 512

/* ---- sink names ---- */

typedef struct names {
    obx_store *store;
    obx_stats *st;
} names;

static const char *sink_name(names *nm, uint32_t id, char *buf, size_t n)
{
    for (size_t i = 0; nm->st && i < nm->st->n_sinks; i++)
        if (nm->st->sinks[i].id == id)
            return nm->st->sinks[i].name;
    char name[OBX_SINK_NAME_MAX];
    if (obx_sink_name(nm->store, id, name, NULL) == OBX_OK)
        snprintf(buf, n, "%s", name);
    else
        snprintf(buf, n, "#%u", id);
    return buf;
}

/* ---- filters (query string or JSON body, the same names and meanings) ---- */

typedef struct filter {
    int state;
    uint32_t sink_id;
    const char *type, *action;
    int64_t since_ms, until_ms;
    int newest_first;
} filter;

/* Apply one filter key; 1 when it was one, 0 when not, -1 with err filled. */
static int filter_key(obx_store *st, filter *f, const char *key, const char *val, int64_t now,
                      char *err, size_t cap)
{
    char terr[256];
    if (strcmp(key, "state") == 0) {
        if (ctl_state_filter(val, &f->state)) {
            snprintf(err, cap, "state: unknown state \"%s\" (use " CTL_STATE_NAMES ")", val);
            return -1;
        }
    } else if (strcmp(key, "sink") == 0) {
        if (obx_sink_find(st, val, &f->sink_id, NULL) != OBX_OK) {
            snprintf(err, cap, "sink: no sink \"%s\" in the store", val);
            return -1;
        }
    } else if (strcmp(key, "type") == 0) {
        f->type = val;
    } else if (strcmp(key, "action") == 0) {
        f->action = val;
    } else if (strcmp(key, "since") == 0 || strcmp(key, "until") == 0) {
        int64_t t;
        if (ctl_time_parse(val, now, &t, terr, sizeof terr)) {
            snprintf(err, cap, "%s: %s", key, terr);
            return -1;
        }
        *(key[0] == 's' ? &f->since_ms : &f->until_ms) = t > 0 ? t : 1;
    } else if (strcmp(key, "order") == 0) {
        if (strcmp(val, "newest") == 0)
            f->newest_first = 1;
        else if (strcmp(val, "oldest") == 0)
            f->newest_first = 0;
        else {
            snprintf(err, cap, "order: \"%s\" (use newest or oldest)", val);
            return -1;
        }
    } else {
        return 0;
    }
    return 1;
}

static void filter_query(const filter *f, obx_query *q)
{
    obx_query_init(q);
    q->state = f->state;
    q->sink_id = f->sink_id;
    q->type = f->type;
    q->action = f->action;
    q->since_ms = f->since_ms;
    q->until_ms = f->until_ms;
    q->newest_first = f->newest_first;
}

/* ---- GET /api/v1/stats ---- */

/* Whether the configuration names the sink (for "configured"). */
static int configured(const void *ud, const char *name)
{
    const oadm_ctx *s = ud;
    for (size_t k = 0; k < s->n_sink_names; k++)
        if (strcmp(s->sink_names[k], name) == 0)
            return 1;
    return 0;
}

enum MHD_Result oadm_get_stats(const oadm_ctx *s, struct MHD_Connection *c)
{
    obx_stats *st = NULL;
    obx_error e = {0};
    int rc = obx_stats_get(s->store, &st, &e);
    if (rc)
        return oadm_send_store_err(c, rc, &e);
    json_t *o = json_object();
    if (o)
        ctl_stats_json(o, st, st->max_size, st->high_water, obx_now_ms(), configured, s);
    obx_stats_free(st);
    return oadm_send_json(c, MHD_HTTP_OK, o);
}

/* ---- GET /api/v1/deliveries ---- */

/*
 * The listing's position: obx_list walks the dead and delivered indexes in (done time,
 * event, sink) order and the others in (event, sink) order, so a cursor is that key of
 * the last delivery answered, plus the query's state and order (a cursor is only good
 * for the query that made it).
 */
typedef struct pos {
    int64_t t;
    uint64_t ev;
    uint32_t sink;
} pos;

static int time_ordered(int state)
{
    return state == OBX_STATE_DEAD || state == OBX_STATE_DELIVERED;
}

static int pos_cmp(const pos *a, const pos *b)
{
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->ev != b->ev)
        return a->ev < b->ev ? -1 : 1;
    return a->sink < b->sink ? -1 : a->sink > b->sink;
}

static void cursor_encode(const pos *p, int state, int newest, char *out, size_t cap)
{
    char raw[128];
    int n = snprintf(raw, sizeof raw, "c1:%lld:%llu:%u:%d:%d", (long long)p->t,
                     (unsigned long long)p->ev, p->sink, state, newest);
    size_t o = 0;
    for (int i = 0; i < n && o + 3 <= cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", (unsigned char)raw[i]);
}

static int cursor_decode(const char *s, int state, int newest, pos *p, char *err, size_t cap)
{
    char raw[128];
    size_t len = strlen(s), n = 0;
    if (len == 0 || len % 2 || len / 2 >= sizeof raw)
        goto bad;
    for (size_t i = 0; i < len; i += 2) {
        if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
            goto bad;
        unsigned v;
        sscanf(s + i, "%2x", &v);
        raw[n++] = (char)v;
    }
    raw[n] = '\0';
    long long t;
    unsigned long long ev;
    unsigned sink;
    int cs, cn, used = 0;
    if (sscanf(raw, "c1:%lld:%llu:%u:%d:%d%n", &t, &ev, &sink, &cs, &cn, &used) != 5 ||
        (size_t)used != n)
        goto bad;
    if (cs != state || cn != newest) {
        snprintf(err, cap, "cursor: it belongs to a listing with another state or order");
        return -1;
    }
    *p = (pos){t, ev, sink};
    return 0;
bad:
    snprintf(err, cap, "cursor: not a cursor this server gave out");
    return -1;
}

typedef struct pager {
    names nm;
    int state, newest;
    int has_cursor;
    pos cursor, last;
    size_t limit, n;
    int more;
    json_t *arr;
    int oom;
} pager;

static int page_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    pager *p = ud;
    pos k = {time_ordered(p->state) ? d->done_ms : 0, ev->id, d->sink_id};
    if (p->has_cursor) {
        int c = pos_cmp(&k, &p->cursor);
        if (p->newest ? c >= 0 : c <= 0)
            return 0;
    }
    if (p->n == p->limit) {
        p->more = 1;
        return 1;
    }
    char nb[OBX_SINK_NAME_MAX + 8];
    json_t *o = ctl_event_json(ev);
    json_t *dj = ctl_delivery_json(d, sink_name(&p->nm, d->sink_id, nb, sizeof nb), 0);
    if (!o || !dj || json_object_update(o, dj) || json_array_append_new(p->arr, o)) {
        json_decref(dj);
        p->oom = 1;
        return 1;
    }
    json_decref(dj);
    p->n++;
    p->last = k;
    return 0;
}

typedef struct qarg {
    const char *bad;
} qarg;

static enum MHD_Result known_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    static const char *const known[] = {"state", "sink",  "type",  "action", "since",
                                        "until", "order", "limit", "cursor"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(key, known[i]) == 0)
            return MHD_YES;
    ((qarg *)cls)->bad = key;
    return MHD_NO;
}

enum MHD_Result oadm_get_deliveries(const oadm_ctx *s, struct MHD_Connection *c)
{
    qarg qa = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, known_arg, &qa);
    if (qa.bad)
        return oadm_send_err(
            c, MHD_HTTP_BAD_REQUEST, NULL,
            "unknown parameter \"%s\" (use state, sink, type, action, since, until, "
            "order, limit, cursor)",
            qa.bad);
    filter f = {.sink_id = OBX_ALL_SINKS, .newest_first = 1};
    char err[512];
    int64_t now = obx_now_ms();
    static const char *const keys[] = {"state", "sink",  "type", "action",
                                       "since", "until", "order"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, keys[i]);
        if (v && filter_key(s->store, &f, keys[i], v, now, err, sizeof err) < 0)
            return oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
    }
    size_t limit = OADM_DEFAULT_LIMIT;
    const char *lv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (lv) {
        char *end;
        errno = 0;
        unsigned long long l = strtoull(lv, &end, 10);
        if (!isdigit((unsigned char)lv[0]) || *end || errno || l == 0 || l > OADM_MAX_LIMIT)
            return oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "limit: \"%s\" is not a number from 1 to %d", lv, OADM_MAX_LIMIT);
        limit = (size_t)l;
    }
    pager p = {.nm = {s->store, NULL}, .state = f.state, .newest = f.newest_first, .limit = limit};
    const char *cv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
    if (cv) {
        if (cursor_decode(cv, f.state, f.newest_first, &p.cursor, err, sizeof err))
            return oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
        p.has_cursor = 1;
    }
    obx_query q;
    filter_query(&f, &q);
    if (p.has_cursor && !time_ordered(f.state)) /* skip what came before, in the store */
        q.after_id = f.newest_first ? p.cursor.ev + 1 : p.cursor.ev - 1;
    obx_error e = {0};
    int rc = obx_stats_get(s->store, &p.nm.st, &e);
    p.arr = json_array();
    if (rc == OBX_OK && p.arr)
        rc = obx_list(s->store, &q, page_one, NULL, &p, &e);
    obx_stats_free(p.nm.st);
    if (rc) {
        json_decref(p.arr);
        return oadm_send_store_err(c, rc, &e);
    }
    json_t *o = json_object();
    if (!o || !p.arr || p.oom) {
        json_decref(o);
        json_decref(p.arr);
        return oadm_send_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
    }
    json_object_set_new(o, "deliveries", p.arr);
    char cur[300] = "";
    if (p.more)
        cursor_encode(&p.last, f.state, f.newest_first, cur, sizeof cur);
    json_object_set_new(o, "next_cursor", p.more ? json_string(cur) : json_null());
    json_object_set_new(o, "limit", json_integer((json_int_t)limit));
    json_object_set_new(o, "order", json_string(f.newest_first ? "newest" : "oldest"));
    return oadm_send_json(c, MHD_HTTP_OK, o);
}

/* ---- GET /api/v1/events/{id} ---- */

enum MHD_Result oadm_get_event(const oadm_ctx *s, struct MHD_Connection *c, uint64_t id)
{
    obx_event *ev = NULL;
    obx_error e = {0};
    int rc = obx_event_get(s->store, id, &ev, &e);
    if (rc == OBX_ERR_NOTFOUND)
        return oadm_send_err(c, MHD_HTTP_NOT_FOUND, NULL, "no event %llu", (unsigned long long)id);
    if (rc)
        return oadm_send_store_err(c, rc, &e);
    names nm = {s->store, NULL};
    obx_stats_get(s->store, &nm.st, NULL);
    json_t *o = ctl_event_json(ev), *arr = json_array();
    for (size_t i = 0; o && arr && i < ev->n_deliveries; i++) {
        char nb[OBX_SINK_NAME_MAX + 8];
        const obx_delivery *d = &ev->deliveries[i];
        json_array_append_new(arr,
                              ctl_delivery_json(d, sink_name(&nm, d->sink_id, nb, sizeof nb), 1));
    }
    obx_stats_free(nm.st);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int bad = !o || !arr || !f;
    if (!bad) {
        json_object_set_new(o, "deliveries", arr);
        arr = NULL;
        bad = ctl_json_print_with_body(o, ev->body, ev->body_len, f) != 0; /* takes o */
        o = NULL;
    }
    if (f)
        fclose(f);
    json_decref(o);
    json_decref(arr);
    obx_event_free(ev);
    if (bad) {
        free(buf);
        return oadm_send_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
    }
    return oadm_send_buf(c, MHD_HTTP_OK, "application/json", buf, len, MHD_RESPMEM_MUST_FREE, NULL);
}

/* ---- writes ---- */

/* The JSON body of a POST as an object (an empty body is {}); NULL after answering. */
static json_t *body_object(struct MHD_Connection *c, const char *text, size_t len,
                           enum MHD_Result *ret)
{
    json_error_t je;
    json_t *o = len ? json_loadb(text, len, 0, &je) : json_object();
    if (!o) {
        *ret = oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL,
                             "request body: invalid JSON at line %d: %s", je.line, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        *ret = oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL, "request body: want a JSON object");
        return NULL;
    }
    return o;
}

/* Read the body's members into f, dry_run and confirm; -1 with err filled. `allowed` is
 * the filter keys the endpoint takes. */
static int body_fields(obx_store *st, json_t *o, const char *const *allowed, filter *f, int *dry,
                       int *confirm, char *err, size_t cap)
{
    const char *key;
    json_t *v;
    int64_t now = obx_now_ms();
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "dry_run") == 0 || strcmp(key, "confirm") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, cap, "%s: want true or false", key);
                return -1;
            }
            *(key[0] == 'd' ? dry : confirm) = json_is_true(v);
            continue;
        }
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(allowed[i], key) == 0;
        if (!ok) {
            snprintf(err, cap, "unknown member \"%s\"", key);
            return -1;
        }
        if (!json_is_string(v)) {
            snprintf(err, cap, "%s: want a string", key);
            return -1;
        }
        if (filter_key(st, f, key, json_string_value(v), now, err, cap) < 0)
            return -1;
    }
    return 0;
}

typedef struct collector {
    obx_target *v;
    size_t n, cap, max;
    int more, oom;
} collector;

static int collect_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    collector *col = ud;
    if (col->n == col->max) {
        col->more = 1;
        return 1;
    }
    if (col->n == col->cap) {
        size_t nc = col->cap ? col->cap * 2 : 64;
        obx_target *nv = realloc(col->v, nc * sizeof *nv);
        if (!nv) {
            col->oom = 1;
            return 1;
        }
        col->v = nv;
        col->cap = nc;
    }
    col->v[col->n++] = (obx_target){ev->id, d->sink_id, OBX_OK, 0};
    return 0;
}

static size_t distinct_events(const obx_target *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && v[j].event_id != v[i].event_id)
            j++;
        k += j == i;
    }
    return k;
}

/* The answer of a replay or purge: counts, and the deliveries affected (with a dry run,
 * those that would be). */
static json_t *write_answer(const oadm_ctx *s, const char *verb_past, const obx_target *v, size_t n,
                            size_t done, size_t skipped, int dry, int more)
{
    names nm = {s->store, NULL};
    obx_stats_get(s->store, &nm.st, NULL);
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < n; i++) {
        if (!dry && (v[i].rc != OBX_OK || v[i].count == 0))
            continue;
        char nb[OBX_SINK_NAME_MAX + 8];
        json_t *o = json_object();
        json_object_set_new(o, "event_id", json_integer((json_int_t)v[i].event_id));
        json_object_set_new(o, "sink", json_string(sink_name(&nm, v[i].sink_id, nb, sizeof nb)));
        json_array_append_new(ids, o);
    }
    obx_stats_free(nm.st);
    return json_pack("{s:I,s:I,s:I,s:I,s:b,s:b,s:o}", verb_past, (json_int_t)done, "matched",
                     (json_int_t)n, "events", (json_int_t)distinct_events(v, n), "skipped",
                     (json_int_t)skipped, "dry_run", dry, "more", more, "ids",
                     ids ? ids : json_null());
}

/* Replay (replay=1) or purge targets in chunks of one transaction each. */
static int apply(obx_store *st, int replay, obx_target *v, size_t n, size_t *done, size_t *skipped,
                 obx_error *e)
{
    int64_t now = obx_now_ms();
    for (size_t i = 0; i < n; i += BULK_CHUNK) {
        size_t m = n - i < BULK_CHUNK ? n - i : BULK_CHUNK;
        int rc = replay ? obx_replay_many(st, v + i, m, now, e) : obx_purge_many(st, v + i, m, e);
        if (rc)
            return rc;
        for (size_t j = i; j < i + m; j++) {
            if (v[j].rc == OBX_OK && v[j].count)
                *done += v[j].count;
            else if (v[j].rc == OBX_OK || v[j].rc == OBX_ERR_STATE || v[j].rc == OBX_ERR_NOTFOUND)
                (*skipped)++;
            else
                return v[j].rc;
        }
    }
    return OBX_OK;
}

static void log_write(const char *who, const char *what, size_t matched, size_t done)
{
    olog(OLOG_INFO, "admin write", OLOG_S("by", who), OLOG_S("what", what),
         OLOG_I("matched", (long long)matched), OLOG_I("changed", (long long)done));
}

/*
 * POST /api/v1/replay and /api/v1/purge (event == 0), or POST /api/v1/events/{id}/replay
 * and /purge (event > 0, body: optional sink). Dead letters only for the bulk forms;
 * replaying one event also takes its delivered deliveries (as outboxctl replay ID).
 */
enum MHD_Result oadm_post_write(const oadm_ctx *s, struct MHD_Connection *c, const char *body_text,
                                size_t body_len, int replay, uint64_t event)
{
    enum MHD_Result ret = MHD_NO;
    json_t *body = body_object(c, body_text, body_len, &ret);
    if (!body)
        return ret;
    static const char *const bulk_keys[] = {"state", "sink",  "type", "action",
                                            "since", "until", NULL};
    static const char *const one_keys[] = {"sink", NULL};
    filter f = {.sink_id = OBX_ALL_SINKS};
    int dry = 0, confirm = 0;
    char err[512];
    collector col = {.max = OADM_MAX_BULK};
    obx_event *ev = NULL;
    obx_error e = {0};
    if (body_fields(s->store, body, event ? one_keys : bulk_keys, &f, &dry, &confirm, err,
                    sizeof err)) {
        ret = oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
        goto out;
    }
    if (!event && f.state && f.state != OBX_STATE_DEAD) {
        ret = oadm_send_err(c, MHD_HTTP_BAD_REQUEST, NULL,
                            "state: %s takes dead letters only (state dead, or leave it out)",
                            replay ? "replay" : "purge");
        goto out;
    }
    int rc;
    if (event) { /* this event's deliveries that the call would change */
        rc = obx_event_get(s->store, event, &ev, &e);
        if (rc == OBX_ERR_NOTFOUND) {
            ret = oadm_send_err(c, MHD_HTTP_NOT_FOUND, NULL, "no event %llu",
                                (unsigned long long)event);
            goto out;
        }
        for (size_t i = 0; rc == OBX_OK && i < ev->n_deliveries; i++) {
            const obx_delivery *d = &ev->deliveries[i];
            if ((f.sink_id == OBX_ALL_SINKS || d->sink_id == f.sink_id) &&
                (d->state == OBX_STATE_DEAD || (replay && d->state == OBX_STATE_DELIVERED)))
                collect_one(&col, ev, d);
        }
        if (rc == OBX_OK && col.n == 0) {
            ret = oadm_send_err(c, MHD_HTTP_CONFLICT, NULL,
                                "event %llu has no %s delivery%s to %s (pending and in-flight ones "
                                "are left alone)",
                                (unsigned long long)event, replay ? "dead or delivered" : "dead",
                                f.sink_id == OBX_ALL_SINKS ? "" : " for that sink",
                                replay ? "replay" : "purge");
            goto out;
        }
    } else {
        f.state = OBX_STATE_DEAD;
        obx_query q;
        filter_query(&f, &q);
        rc = obx_list(s->store, &q, collect_one, NULL, &col, &e);
    }
    if (rc || col.oom) {
        ret = col.oom ? oadm_send_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory")
                      : oadm_send_store_err(c, rc, &e);
        goto out;
    }
    if (!replay && !dry && col.n > 1 && !confirm) {
        ret = oadm_send_err(c, MHD_HTTP_CONFLICT, NULL,
                            "this would delete %zu dead letters (%zu events) for good: send "
                            "\"confirm\": true (or \"dry_run\": true to only count)",
                            col.n, distinct_events(col.v, col.n));
        goto out;
    }
    size_t done = 0, skipped = 0;
    if (dry) {
        done = col.n;
    } else if (col.n) {
        rc = apply(s->store, replay, col.v, col.n, &done, &skipped, &e);
        log_write(s->who, replay ? "replay" : "purge", col.n, done);
        if (rc) {
            ret = oadm_send_store_err(c, rc, &e);
            goto out;
        }
    }
    ret = oadm_send_json(c, MHD_HTTP_OK,
                         write_answer(s, replay ? "replayed" : "purged", col.v, col.n, done,
                                      skipped, dry, col.more));
out:
    obx_event_free(ev);
    free(col.v);
    json_decref(body);
    return ret;
}
