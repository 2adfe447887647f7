/*
 * outboxctl-inspect.c - the read-only commands of outboxctl: stats, list, show, check
 * and backup. They open the store read-only and without the owner lock, so they work
 * next to a running daemon; listing goes through the store's short paged read
 * transactions, and corrupt records are reported on stderr and skipped. check runs in a
 * child process (a damaged page can crash LMDB) and records its outcome in the outbox
 * directory for outboxd (outbox-last-check.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outbox-config.h"
#include "outbox-last-check.h"
#include "outboxctl-health.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl-time.h"
#include "outboxctl.h"

#define DEFAULT_LIST_LIMIT 100

/* 1 for an LMDB outbox (a directory: owner lock, last-check file), 0 for a database. */
static int lmdb_outbox(const ctl_ctx *c)
{
    const outbox_config *cfg = c->config;
    return !cfg || cfg->outbox.backend == OBX_BACKEND_LMDB;
}

/* ---- stats ---- */

/* -1 without a config; else whether the config names the sink. */
static int configured(const void *ud, const char *name)
{
    const ctl_ctx *c = ud;
    if (!c->config)
        return -1;
    return outbox_config_find_sink(c->config, name) >= 0;
}

static void u64s(uint64_t v, char *b, size_t n)
{
    snprintf(b, n, "%llu", (unsigned long long)v);
}

int ctl_cmd_stats(ctl_ctx *c, int argc, char **argv)
{
    int json = 0, first, rc;
    if (ctl_parse_simple(c, argc, argv, 0, 0, "", &json, &first, &rc))
        return rc;
    obx_store *s;
    if ((rc = ctl_open_store(c, 1, &s)))
        return rc;
    obx_stats *st = NULL;
    obx_error err = {0};
    if (obx_stats_get(s, &st, &err)) {
        ctl_err("stats: %s", err.msg);
        obx_close(s);
        return CTL_EXIT_ERROR;
    }
    /* the daemon's pid, 0 if none runs, -1 if unknown (always for a database outbox: any
     * number of nodes use it, and there is no directory whose lock tells) */
    long owner = -1;
    int lmdb = lmdb_outbox(c);
    if (lmdb && obx_owner_pid(c->data_dir, &owner, NULL) != OBX_OK)
        owner = -1;
    char where[512];
    obx_describe(s, where, sizeof where);
    uint64_t cap = c->config_max_size ? c->config_max_size : st->max_size;
    uint64_t high = c->config_max_size ? c->config_max_size / 100 * 90 : st->high_water;
    obx_sink_stats tot;
    ctl_sink_stats_total(st, &tot);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "data_dir", lmdb ? json_string(c->data_dir) : json_null());
        json_object_set_new(o, "store", json_string(where));
        json_object_set_new(o, "daemon_pid", owner > 0 ? json_integer(owner) : json_null());
        json_object_set_new(o, "daemon_running", owner < 0 ? json_null() : json_boolean(owner > 0));
        ctl_stats_json(o, st, cap, high, c->now_ms, configured, c);
        json_t *sinks = json_object_get(o, "sinks");
        for (size_t i = 0; i < st->n_sinks; i++)
            ctl_health_json_add(json_array_get(sinks, i), s, st->sinks[i].id, c->now_ms);
        ctl_json_print(o, stdout);
    } else {
        char used[32], capb[32], highb[32], fileb[32];
        ctl_bytes_fmt(st->used_bytes, used, sizeof used);
        ctl_bytes_fmt(cap, capb, sizeof capb);
        ctl_bytes_fmt(high, highb, sizeof highb);
        ctl_bytes_fmt(st->file_bytes, fileb, sizeof fileb);
        printf("outbox   %s (schema %u)\n", lmdb ? c->data_dir : where, st->schema_version);
        if (owner > 0)
            printf("daemon   running (pid %ld)\n", owner);
        else if (owner == 0)
            printf("daemon   not running: nothing is being delivered\n");
        printf("events   %llu stored, %llu accepted since the store was created\n",
               (unsigned long long)st->events, (unsigned long long)st->enqueued);
        if (st->idem_keys)
            printf("keys     %llu idempotency keys remembered\n",
                   (unsigned long long)st->idem_keys);
        printf("size     %s used of %s (%.0f%%); new events are refused above %s; file %s\n", used,
               capb, cap ? 100.0 * (double)st->used_bytes / (double)cap : 0.0, highb, fileb);
        if (st->used_bytes >= high)
            printf("FULL     the store is past its high-water mark: producers get 503 until "
                   "deliveries drain, retention runs, or dead letters are purged\n");
        printf("\n");
        static const char *h[] = {"SINK",      "PENDING", "IN FLIGHT",      "IN DOUBT",
                                  "DELIVERED", "DEAD",    "OLDEST PENDING", "NEXT DUE"};
        ctl_table *t = ctl_table_new(stdout, 8, h);
        for (size_t i = 0; t && i <= st->n_sinks; i++) {
            const obx_sink_stats *ss = i < st->n_sinks ? &st->sinks[i] : &tot;
            if (i == st->n_sinks && st->n_sinks < 2)
                break;
            char p[24], f[24], d[24], dl[24], de[24], old[48], next[48];
            u64s(ss->pending, p, sizeof p);
            u64s(ss->inflight, f, sizeof f);
            u64s(ss->in_doubt, d, sizeof d);
            u64s(ss->delivered, dl, sizeof dl);
            u64s(ss->dead, de, sizeof de);
            if (ss->oldest_pending_ms)
                ctl_age(ss->oldest_pending_ms, c->now_ms, old, sizeof old);
            else
                snprintf(old, sizeof old, "-");
            if (ss->next_due_ms == INT64_MAX)
                snprintf(next, sizeof next, "-");
            else if (ss->next_due_ms <= c->now_ms)
                snprintf(next, sizeof next, "now");
            else
                ctl_age(ss->next_due_ms, c->now_ms, next, sizeof next);
            char name[OBX_SINK_NAME_MAX + 24];
            snprintf(name, sizeof name, "%s%s", ss->name,
                     i < st->n_sinks && configured(c, ss->name) == 0 ? " (not in config)" : "");
            const char *row[] = {name, p, f, d, dl, de, old, next};
            ctl_table_add(t, row);
        }
        if (t && st->n_sinks == 0)
            printf("no sinks registered yet (the daemon registers them at start)\n");
        else
            ctl_table_flush(t);
        ctl_table_free(t);
        ctl_health_lines(stdout, s, st, c->now_ms);
        const outbox_config *cfg = c->config;
        for (size_t i = 0; cfg && i < cfg->n_sinks; i++) {
            int known = 0;
            for (size_t k = 0; k < st->n_sinks; k++)
                known |= strcmp(st->sinks[k].name, cfg->sinks[i].name) == 0;
            if (!known)
                printf("sink %s is in the config but not in the store yet (outboxd registers "
                       "it when it starts)\n",
                       cfg->sinks[i].name);
        }
        for (size_t i = 0; i < st->n_sinks; i++)
            if (configured(c, st->sinks[i].name) == 0) {
                printf("\nsinks marked (not in config) get no deliveries: `outboxctl retire NAME "
                       "--dead-letter|--purge` deals with what they hold\n");
                break;
            }
        if (tot.in_doubt)
            printf("\nin doubt: an attempt started before a crash and its outcome is unknown; "
                   "it is re-sent with the same webhook-id\n");
        if (owner == 0 && tot.inflight)
            printf("\nno daemon owns this outbox, yet %llu deliveries are in flight: their "
                   "attempts were cut off (a crash or kill) and their outcome is unknown; outboxd "
                   "marks them in doubt and re-sends them with the same webhook-id when it "
                   "starts\n",
                   (unsigned long long)tot.inflight);
    }
    obx_stats_free(st);
    obx_close(s);
    return CTL_EXIT_OK;
}

/* ---- list ---- */

typedef struct lister {
    size_t corrupt; /* first: the ud of ctl_corrupt_warn */
    ctl_ctx *c;
    ctl_sinks sinks;
    ctl_table *t;
    int json;
    uint64_t limit; /* 0 = none */
    uint64_t shown;
    int more;
    int any_doubt;
} lister;

static int list_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    lister *l = ud;
    if (l->limit && l->shown >= l->limit) {
        l->more = 1;
        return 1;
    }
    l->shown++;
    char nb[OBX_SINK_NAME_MAX + 8];
    const char *sink = ctl_sinks_name(&l->sinks, d->sink_id, nb, sizeof nb);
    if (l->json) {
        json_t *o = ctl_event_json(ev);
        json_t *dj = ctl_delivery_json(d, sink, 0);
        if (o && dj)
            json_object_update(o, dj);
        json_decref(dj);
        if (o)
            ctl_json_print(o, stdout);
        return 0;
    }
    char id[24], state[32], evn[128], recv[48], att[48], last[512], next[48];
    snprintf(id, sizeof id, "%llu", (unsigned long long)ev->id);
    snprintf(state, sizeof state, "%s%s", ctl_state_label(d), d->in_doubt ? "*" : "");
    l->any_doubt |= d->in_doubt;
    snprintf(evn, sizeof evn, "%s:%s", ev->type, ev->action);
    ctl_age(ev->received_ms, l->c->now_ms, recv, sizeof recv);
    if (d->total_attempts > d->attempts)
        snprintf(att, sizeof att, "%u (%u total)", d->attempts, d->total_attempts);
    else
        snprintf(att, sizeof att, "%u", d->attempts);
    const char *lo = ctl_last_outcome(d, last, sizeof last); /* shortened by the table */
    if (d->state == OBX_STATE_PENDING) {
        if (d->next_attempt_ms <= l->c->now_ms + 500)
            snprintf(next, sizeof next, "due now");
        else
            ctl_age(d->next_attempt_ms, l->c->now_ms, next, sizeof next);
    } else if (d->state == OBX_STATE_INFLIGHT) {
        snprintf(next, sizeof next, "sending");
    } else {
        snprintf(next, sizeof next, "-");
    }
    const char *row[] = {id, sink, state, evn, recv, att, lo, next};
    ctl_table_add(l->t, row);
    return 0;
}

int ctl_cmd_list(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS, CTL_OPTION_STATE,  CTL_OPTION_SINK,
                                         CTL_OPTION_TYPE,    CTL_OPTION_ACTION, CTL_OPTION_SINCE,
                                         CTL_OPTION_UNTIL,   CTL_OPTION_NEWEST, CTL_OPTION_OLDEST,
                                         CTL_OPTION_LIMIT,   CTL_OPTION_JSON,   {0}};
    ctl_filter f = {0};
    int rc;
    if (ctl_parse_filters(c, argc, argv, opts, &f, &rc))
        return rc;
    if (!f.limit_set)
        f.limit = DEFAULT_LIST_LIMIT;
    obx_store *s;
    rc = ctl_open_store(c, 1, &s);
    if (rc)
        return rc;
    lister l = {.c = c, .json = f.json, .limit = f.limit};
    obx_query q;
    if ((rc = ctl_filter_query(s, &f, &q)))
        goto out;
    if ((rc = ctl_sinks_load(s, &l.sinks)))
        goto out;
    q.limit = 0; /* list_one stops one past the limit, to say there is more */
    if (!l.json) {
        static const char *h[] = {"ID",       "SINK",     "STATE", "EVENT",
                                  "RECEIVED", "ATTEMPTS", "LAST",  "NEXT"};
        l.t = ctl_table_new(stdout, 8, h);
        if (!l.t) {
            ctl_err("out of memory");
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        ctl_table_fit(l.t, 6, ctl_term_width(stdout)); /* LAST */
    }
    obx_error err = {0};
    if (obx_list(s, &q, list_one, ctl_corrupt_warn, &l, &err)) {
        ctl_table_free(l.t);
        l.t = NULL;
        ctl_err("list: %s", err.msg);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    if (l.t) {
        if (ctl_table_rows(l.t) == 0)
            printf("no deliveries match\n");
        ctl_table_free(l.t);
        if (l.any_doubt)
            printf("* in doubt: an attempt may have reached the receiver before a crash; it is "
                   "re-sent with the same webhook-id\n");
    }
    fflush(stdout);
    if (l.more)
        fprintf(stderr,
                "outboxctl: showing the first %llu; more match (use --limit N, 0 for "
                "all, or narrow with --state/--sink/--since)\n",
                (unsigned long long)l.limit);
    if (l.corrupt)
        ctl_warn("%zu corrupt record(s) skipped; run `outboxctl check` and see the docs on "
                 "restoring from a backup",
                 l.corrupt);
out:
    ctl_sinks_free(&l.sinks);
    obx_close(s);
    return rc;
}

/* ---- show ---- */

/* Deep copy of a delivery (for show's fallback path, where records come from obx_list). */
static int delivery_copy(obx_delivery *dst, const obx_delivery *src)
{
    *dst = *src;
    dst->last_error = src->last_error ? strdup(src->last_error) : NULL;
    dst->reason = src->reason ? strdup(src->reason) : NULL;
    dst->history = src->n_history ? calloc(src->n_history, sizeof *dst->history) : NULL;
    int bad = (src->last_error && !dst->last_error) || (src->reason && !dst->reason) ||
              (src->n_history && !dst->history);
    dst->n_history = 0;
    for (size_t i = 0; dst->history && i < src->n_history && !bad; i++) {
        bad |= obx_attempt_copy(&dst->history[i], &src->history[i]) != OBX_OK;
        dst->n_history = i + 1;
    }
    if (bad) {
        obx_delivery_clear(dst);
        return -1;
    }
    return 0;
}

typedef struct salvage {
    size_t corrupt; /* first: the ud of ctl_corrupt_warn */
    uint64_t id;
    obx_event *ev; /* built up from the records that decode */
    int oom;
} salvage;

static int salvage_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    salvage *sv = ud;
    if (ev->id > sv->id)
        return 1;
    if (ev->id != sv->id)
        return 0;
    obx_event *e = sv->ev;
    if (!e->type) {
        e->id = ev->id;
        e->received_ms = ev->received_ms;
        e->type = strdup(ev->type);
        e->action = strdup(ev->action);
        e->body = malloc(ev->body_len ? ev->body_len : 1);
        if (!e->type || !e->action || !e->body) {
            sv->oom = 1;
            return 1;
        }
        memcpy(e->body, ev->body, ev->body_len);
        e->body_len = ev->body_len;
    }
    obx_delivery *nd = realloc(e->deliveries, (e->n_deliveries + 1) * sizeof *nd);
    if (!nd) {
        sv->oom = 1;
        return 1;
    }
    e->deliveries = nd;
    if (delivery_copy(&nd[e->n_deliveries], d)) {
        sv->oom = 1;
        return 1;
    }
    e->n_deliveries++;
    return 0;
}

static void salvage_corrupt(void *ud, uint64_t event_id, uint32_t sink_id, const char *what)
{
    salvage *sv = ud;
    if (event_id == sv->id)
        ctl_corrupt_warn(&sv->corrupt, event_id, sink_id, what);
}

/* When a record of the event is corrupt: gather what still decodes, warn about the rest. */
static int show_salvage(obx_store *s, uint64_t id, obx_event **out)
{
    salvage sv = {.id = id};
    sv.ev = calloc(1, sizeof *sv.ev);
    if (!sv.ev)
        return OBX_ERR_NOMEM;
    obx_query q;
    obx_query_init(&q);
    q.after_id = id - 1;
    obx_error err = {0};
    int rc = obx_list(s, &q, salvage_one, salvage_corrupt, &sv, &err);
    if (rc == OBX_OK && sv.oom)
        rc = OBX_ERR_NOMEM;
    if (rc == OBX_OK && !sv.ev->type)
        rc = OBX_ERR_CORRUPT;
    if (rc) {
        obx_event_free(sv.ev);
        return rc;
    }
    *out = sv.ev;
    return OBX_OK;
}

static void print_time_line(const char *label, int64_t ms, int64_t now)
{
    if (!ms || ms == INT64_MAX)
        return;
    char t[40], a[48];
    ctl_time_rfc3339(ms, t, sizeof t);
    ctl_age(ms, now, a, sizeof a);
    printf("  %-14s %s (%s)\n", label, t, a);
}

/* Response bodies longer than this are cut in show's text output (--json has them all). */
#define SHOW_BODY_MAX 2048

/* What the receiver answered to one attempt (headers and the body kept), escaped. */
static void print_response(const obx_attempt *at, uint32_t no)
{
    if (!at->n_headers && !at->body)
        return;
    printf("  response to attempt %u (status %d):\n", no, at->status);
    for (size_t i = 0; i < at->n_headers; i++) {
        const obx_header *h = &at->headers[i];
        printf("    ");
        ctl_print_escaped((const unsigned char *)h->name, strlen(h->name), stdout);
        printf(": ");
        ctl_print_escaped((const unsigned char *)h->value, strlen(h->value), stdout);
        printf("\n");
    }
    if (!at->body)
        return;
    size_t n = at->body_len < SHOW_BODY_MAX ? at->body_len : SHOW_BODY_MAX;
    if (at->body_size > at->body_len)
        printf("    body (%zu of %llu bytes kept", at->body_len, (unsigned long long)at->body_size);
    else
        printf("    body (%zu bytes", at->body_len);
    if (n < at->body_len)
        printf("; the first %zu shown, --json has the rest", n);
    printf("): ");
    ctl_print_escaped(at->body, n, stdout);
    printf("\n");
}

static void show_human(ctl_ctx *c, const obx_event *e, ctl_sinks *sk)
{
    char t[40], a[48];
    ctl_time_rfc3339(e->received_ms, t, sizeof t);
    ctl_age(e->received_ms, c->now_ms, a, sizeof a);
    printf("event     %llu\n", (unsigned long long)e->id);
    printf("type      %s:%s\n", e->type, e->action);
    printf("received  %s (%s)\n", t, a);
    printf("body      %zu bytes%s\n", e->body_len,
           ctl_body_is_json(e->body, e->body_len) ? ", JSON" : ", not JSON");
    ctl_body_print(e->body, e->body_len, stdout);
    if (e->n_deliveries == 0)
        printf("\nno deliveries left (purged)\n");
    for (size_t i = 0; i < e->n_deliveries; i++) {
        const obx_delivery *d = &e->deliveries[i];
        char nb[OBX_SINK_NAME_MAX + 8], buf[512];
        printf("\nsink %s: %s%s\n", ctl_sinks_name(sk, d->sink_id, nb, sizeof nb),
               ctl_state_label(d),
               d->in_doubt ? " (IN DOUBT: an attempt may have reached the receiver before a "
                             "crash; it is re-sent with the same webhook-id)"
                           : "");
        char wid[OBX_DELIVERY_ID_MAX];
        printf("  %-14s %s\n", "webhook-id", ctl_webhook_id(d, wid, sizeof wid));
        printf("  %-14s %u in this budget, %u in total", "attempts", d->attempts,
               d->total_attempts);
        if (d->replays)
            printf(", replayed %u time%s", d->replays, d->replays == 1 ? "" : "s");
        printf("\n");
        print_time_line("first attempt", d->first_attempt_ms, c->now_ms);
        print_time_line("last attempt", d->last_attempt_ms, c->now_ms);
        if (d->state == OBX_STATE_PENDING)
            print_time_line("next attempt", d->next_attempt_ms, c->now_ms);
        if (d->state == OBX_STATE_PENDING || d->state == OBX_STATE_INFLIGHT)
            print_time_line("deadline", ctl_health_deadline(sk->s, d, c->now_ms), c->now_ms);
        print_time_line(d->state == OBX_STATE_DEAD ? "dead since" : "delivered",
                        d->state == OBX_STATE_DEAD || d->state == OBX_STATE_DELIVERED ? d->done_ms
                                                                                      : 0,
                        c->now_ms);
        if (d->state == OBX_STATE_DEAD && d->reason)
            printf("  %-14s %s\n", "reason", d->reason);
        const char *lo = d->state == OBX_STATE_DEAD ? NULL : ctl_last_outcome(d, buf, sizeof buf);
        if (lo)
            printf("  %-14s %s\n", "last outcome", lo);
        if (d->n_history) {
            printf("  history (newest last%s):\n",
                   d->total_attempts > d->n_history ? "; older attempts not kept" : "");
            static const char *h[] = {"    #", "STARTED", "DURATION", "STATUS", "ERROR"};
            ctl_table *tb = ctl_table_new(stdout, 5, h);
            uint32_t first_no = d->total_attempts >= d->n_history
                                    ? d->total_attempts - (uint32_t)d->n_history + 1
                                    : 1;
            for (size_t k = 0; tb && k < d->n_history; k++) {
                const obx_attempt *at = &d->history[k];
                char no[24], st[96], ts[40], ag[48], du[32], code[16];
                snprintf(no, sizeof no, "    %u", first_no + (uint32_t)k);
                ctl_time_rfc3339(at->started_ms, ts, sizeof ts);
                ctl_age(at->started_ms, c->now_ms, ag, sizeof ag);
                snprintf(st, sizeof st, "%s (%s)", ts, ag);
                ctl_duration_fmt(at->duration_ms, du, sizeof du);
                if (at->status)
                    snprintf(code, sizeof code, "%d", at->status);
                else
                    snprintf(code, sizeof code, "-");
                const char *row[] = {no, st, du, code, at->error};
                ctl_table_add(tb, row);
            }
            ctl_table_free(tb);
            for (size_t k = 0; k < d->n_history; k++)
                print_response(&d->history[k], first_no + (uint32_t)k);
        }
    }
}

static int show_json(const obx_event *e, ctl_sinks *sk)
{
    json_t *o = ctl_event_json(e);
    if (!o)
        return -1;
    json_t *arr = json_array();
    for (size_t i = 0; i < e->n_deliveries; i++) {
        char nb[OBX_SINK_NAME_MAX + 8];
        const obx_delivery *d = &e->deliveries[i];
        json_t *dj = ctl_delivery_json(d, ctl_sinks_name(sk, d->sink_id, nb, sizeof nb), 1);
        if (dj)
            json_array_append_new(arr, dj);
    }
    json_object_set_new(o, "deliveries", arr);
    return ctl_json_print_with_body(o, e->body, e->body_len, stdout);
}

int ctl_cmd_show(ctl_ctx *c, int argc, char **argv)
{
    int json = 0, nargs, rc;
    if (ctl_parse_simple(c, argc, argv, 1, 1, "which event? give its id (see outboxctl list)",
                         &json, &nargs, &rc))
        return rc;
    uint64_t id;
    if (ctl_parse_u64(argv[nargs], &id) || id == 0)
        return ctl_usage_error(argv[0], "\"%s\" is not an event id (a positive number)",
                               argv[nargs]);
    obx_store *s;
    if ((rc = ctl_open_store(c, 1, &s)))
        return rc;
    ctl_sinks sk = {0};
    obx_event *e = NULL;
    obx_error err = {0};
    int grc = obx_event_get(s, id, &e, &err);
    if (grc == OBX_ERR_CORRUPT) {
        ctl_warn("%s; showing the records of event %llu that can still be read", err.msg,
                 (unsigned long long)id);
        grc = show_salvage(s, id, &e);
        if (grc)
            snprintf(err.msg, sizeof err.msg, "the event record itself is corrupt (%s)",
                     obx_strerror(grc));
    }
    if (grc == OBX_ERR_NOTFOUND) {
        ctl_err("no event %llu (never stored, purged, or removed by retention)",
                (unsigned long long)id);
        rc = CTL_EXIT_NOTFOUND;
        goto out;
    }
    if (grc) {
        ctl_err("event %llu: %s", (unsigned long long)id, err.msg);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    if ((rc = ctl_sinks_load(s, &sk)))
        goto out;
    if (json) {
        if (show_json(e, &sk)) {
            ctl_err("out of memory");
            rc = CTL_EXIT_ERROR;
        }
    } else {
        show_human(c, e, &sk);
    }
out:
    obx_event_free(e);
    ctl_sinks_free(&sk);
    obx_close(s);
    return rc;
}

/* ---- check ---- */

typedef struct checker {
    int json;
    json_t *problems;
} checker;

static void check_problem(void *ud, const char *problem)
{
    checker *ck = ud;
    if (ck->json)
        json_array_append_new(ck->problems, json_string(problem));
    else
        printf("problem: %s\n", problem);
}

/* What the checking child tells its parent through a pipe. */
typedef struct check_report {
    int opened;      /* the store was opened: a death from here on is the traversal's */
    int done;        /* obx_check returned */
    size_t problems; /* what it reported */
} check_report;

static void report_send(int fd, const check_report *r)
{
    ssize_t n = write(fd, r, sizeof *r);
    (void)n; /* the parent treats a missing report as a crash */
}

/* The check itself, in the child: prints as before; returns its exit code. */
static int check_child(ctl_ctx *c, int json, int fd)
{
    check_report rep = {0};
    obx_store *s;
    int rc = ctl_open_store(c, 1, &s);
    if (rc)
        return rc;
    rep.opened = 1;
    report_send(fd, &rep);
    checker ck = {json, json ? json_array() : NULL};
    size_t problems = 0;
    obx_error err = {0};
    obx_stats *st = NULL;
    (void)obx_stats_get(s, &st, NULL);
    int crc = obx_check(s, check_problem, &ck, &problems, &err);
    if (crc) {
        ctl_err("check could not finish: %s", err.msg);
        rc = CTL_EXIT_ERROR;
    } else if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(problems == 0));
        json_object_set_new(o, "events", json_integer(st ? (json_int_t)st->events : 0));
        json_object_set_new(o, "problems", json_incref(ck.problems));
        ctl_json_print(o, stdout);
    } else if (problems == 0) {
        printf("ok: %llu events, indexes and counters agree with the records\n",
               st ? (unsigned long long)st->events : 0ULL);
    } else {
        printf("%zu problem%s found. Deliveries whose records are corrupt are skipped by the "
               "daemon; restore from a backup (outboxctl backup) if the rest matters.\n",
               problems, problems == 1 ? "" : "s");
    }
    if (!crc && problems)
        rc = CTL_EXIT_ERROR;
    if (!crc) {
        rep.done = 1;
        rep.problems = problems;
        report_send(fd, &rep);
    }
    json_decref(ck.problems);
    obx_stats_free(st);
    obx_close(s);
    return rc;
}

/* Record the outcome for outboxd's start-up warning; a failure to write only warns. A
 * database outbox (outbox.backend: postgres) has no directory to record it in. */
static void check_record(const ctl_ctx *c, size_t problems, int structural)
{
    if (!lmdb_outbox(c))
        return;
    const char *dir = c->data_dir;
    olc_result r = {obx_now_ms(), problems, structural};
    char err[512];
    if (olc_write(dir, &r, err, sizeof err))
        ctl_warn("could not record the outcome for outboxd: %s", err);
}

/*
 * LMDB 0.9 has no page checksums: a damaged page can make the traversal read outside the
 * map and crash. The check runs in a child process (the store is opened there, never
 * across fork), so such a crash becomes a reported structural corruption.
 */
int ctl_cmd_check(ctl_ctx *c, int argc, char **argv)
{
    int json = 0, first, rc;
    if (ctl_parse_simple(c, argc, argv, 0, 0, "", &json, &first, &rc))
        return rc;
    if ((rc = ctl_resolve_dir(c)))
        return rc;
    int pfd[2];
    if (pipe(pfd) != 0) {
        ctl_err("check: pipe: %s", strerror(errno));
        return CTL_EXIT_ERROR;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        ctl_err("check: fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return CTL_EXIT_ERROR;
    }
    if (pid == 0) {
        close(pfd[0]);
        int crc = check_child(c, json, pfd[1]);
        fflush(stdout);
        fflush(stderr);
        _exit(crc);
    }
    close(pfd[1]);
    check_report rep = {0}, got;
    ssize_t n;
    while ((n = read(pfd[0], &got, sizeof got)) == (ssize_t)sizeof got || (n < 0 && errno == EINTR))
        if (n > 0)
            rep = got;
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int crashed = WIFSIGNALED(status) || (rep.opened && !rep.done);
    if (!crashed) {
        if (rep.done)
            check_record(c, rep.problems, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : CTL_EXIT_ERROR;
    }
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "signal %d, %s", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "structural", json_true());
        json_object_set_new(o, "problems", json_integer((json_int_t)(rep.problems + 1)));
        json_object_set_new(o, "error", json_string(how));
        ctl_json_print(o, stdout);
    }
    ctl_err("structural corruption in %s/data.mdb: reading the store's pages crashed the check "
            "(%s). The file is damaged below the record level; restore from a backup "
            "(outboxctl backup makes one) and do not start outboxd on this copy",
            c->data_dir, how);
    check_record(c, rep.problems + 1, 1);
    return CTL_EXIT_ERROR;
}

/* ---- backup ---- */

int ctl_cmd_backup(ctl_ctx *c, int argc, char **argv)
{
    int json = 0, nargs, rc;
    if (ctl_parse_simple(c, argc, argv, 1, 1, "where to? give a destination directory", &json,
                         &nargs, &rc))
        return rc;
    const char *dest = argv[nargs];
    obx_store *s;
    if ((rc = ctl_open_store(c, 1, &s)))
        return rc;
    obx_error err = {0};
    int64_t t0 = obx_now_ms();
    if (obx_backup(s, dest, &err)) {
        ctl_err("backup: %s", err.msg);
        rc = CTL_EXIT_ERROR;
    } else {
        char path[4096], sz[32], dur[32];
        snprintf(path, sizeof path, "%s/data.mdb", dest);
        struct stat st;
        uint64_t bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        ctl_bytes_fmt(bytes, sz, sizeof sz);
        ctl_duration_fmt(obx_now_ms() - t0, dur, sizeof dur);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "dest", json_string(dest));
            json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
            ctl_json_print(o, stdout);
        } else {
            printf("backup written to %s (%s, compacted, in %s)\n", dest, sz, dur);
        }
    }
    obx_close(s);
    return rc;
}
