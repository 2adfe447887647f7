/*
 * outboxctl-ops.c - the commands of outboxctl that change the store: replay (dead or
 * delivered deliveries back to pending with a fresh budget), purge (delete dead
 * letters) and retire (a sink no longer configured: its deliveries dead-lettered or
 * purged, its registry slot freed; obx_sink_retire does the work in pages). They open
 * the store without the owner lock; each change is an ordinary write transaction that a
 * running daemon notices within a second.
 *
 * Bulk forms first collect the matching (event, sink) pairs through the paged listing,
 * then change them one by one, so no read transaction is held while writing; a delivery
 * that changed state in between (replayed by someone else, say) is skipped and counted.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox-config.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl-time.h"
#include "outboxctl.h"

enum { OPT_DEAD = CTL_OPT_LOCAL, OPT_DRY_RUN, OPT_YES, OPT_BEFORE, OPT_PURGE };

typedef struct pair {
    uint64_t ev;
    uint32_t sink;
} pair;

typedef struct collector {
    size_t corrupt; /* first: the ud of ctl_corrupt_warn */
    pair *v;
    size_t n, cap;
    int64_t before_ms; /* purge: only dead before this (0 = any) */
    int oom;
} collector;

static int collect_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    collector *col = ud;
    if (col->before_ms && d->done_ms >= col->before_ms)
        return 1; /* the dead index is in dead-at order: nothing later qualifies */
    if (col->n == col->cap) {
        size_t nc = col->cap ? col->cap * 2 : 256;
        pair *nv = realloc(col->v, nc * sizeof *nv);
        if (!nv) {
            col->oom = 1;
            return 1;
        }
        col->v = nv;
        col->cap = nc;
    }
    col->v[col->n].ev = ev->id;
    col->v[col->n].sink = d->sink_id;
    col->n++;
    return 0;
}

/* Progress on stderr, only when it is a terminal; at most ~10 updates a second. */
typedef struct progress {
    int tty;
    int64_t last_ms;
    const char *verb;
} progress;

static void progress_show(progress *p, size_t done, size_t total, int final)
{
    if (!p->tty)
        return;
    int64_t now = obx_now_ms();
    if (!final && now - p->last_ms < 100)
        return;
    p->last_ms = now;
    fprintf(stderr, "\r%s %zu/%zu", p->verb, done, total);
    if (final)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/*
 * Replay (replay=1) or purge the next chunk of pairs from *pos in one store transaction
 * (one sync per chunk instead of one per delivery). Adds to *done / *skipped; on a store
 * failure returns its code and sets *failed to the index of the pair that failed.
 */
#define BULK_CHUNK 512
static int bulk(obx_store *s, int replay, const pair *v, size_t n, size_t *pos, int64_t now,
                size_t *done, size_t *skipped, size_t *failed, obx_error *err)
{
    obx_target t[BULK_CHUNK];
    size_t m = n - *pos < BULK_CHUNK ? n - *pos : BULK_CHUNK;
    for (size_t j = 0; j < m; j++)
        t[j] = (obx_target){v[*pos + j].ev, v[*pos + j].sink, 0, 0};
    int rc = replay ? obx_replay_many(s, t, m, now, err) : obx_purge_many(s, t, m, err);
    for (size_t j = 0; j < m; j++) {
        if (t[j].rc == OBX_OK && t[j].count)
            *done += t[j].count;
        else if (t[j].rc == OBX_OK || t[j].rc == OBX_ERR_STATE || t[j].rc == OBX_ERR_NOTFOUND)
            (*skipped)++;
        else if (rc == OBX_OK)
            rc = t[j].rc;
        if (t[j].rc != OBX_OK && t[j].rc != OBX_ERR_STATE && t[j].rc != OBX_ERR_NOTFOUND)
            *failed = *pos + j;
    }
    *pos += m;
    return rc;
}

static void print_result(int json, int dry, const char *verb, const char *verb_past, size_t n,
                         size_t events, size_t skipped)
{
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, verb_past, json_integer((json_int_t)n));
        json_object_set_new(o, "events", json_integer((json_int_t)events));
        json_object_set_new(o, "skipped", json_integer((json_int_t)skipped));
        json_object_set_new(o, "dry_run", json_boolean(dry));
        ctl_json_print(o, stdout);
        return;
    }
    int purge = strcmp(verb, "purge") == 0;
    const char *noun =
        purge ? (n == 1 ? "dead letter" : "dead letters") : (n == 1 ? "delivery" : "deliveries");
    if (dry)
        printf("would %s %zu %s (%zu event%s)", verb, n, noun, events, events == 1 ? "" : "s");
    else
        printf("%s %zu %s (%zu event%s)", verb_past, n, noun, events, events == 1 ? "" : "s");
    if (skipped)
        printf("; %zu skipped: changed state meanwhile", skipped);
    printf("\n");
}

/* Sort the pairs by event (they come in index order) and count the distinct events. */
static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->ev != y->ev)
        return x->ev < y->ev ? -1 : 1;
    return x->sink < y->sink ? -1 : x->sink > y->sink;
}

static size_t distinct_events(pair *v, size_t n)
{
    if (n == 0)
        return 0; /* v may be NULL: qsort must not see it */
    qsort(v, n, sizeof *v, cmp_pair);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || v[i].ev != v[i - 1].ev)
            k++;
    return k;
}

/* ---- replay ---- */

static int replay_ids(ctl_ctx *c, obx_store *s, uint32_t sink, char **ids, int n_ids, int dry,
                      int json)
{
    int rc = CTL_EXIT_OK;
    size_t total = 0, events = 0;
    for (int i = 0; i < n_ids; i++) {
        uint64_t id;
        ctl_parse_u64(ids[i], &id);
        obx_error err = {0};
        size_t count = 0;
        int r;
        if (dry) {
            obx_event *e = NULL;
            r = obx_event_get(s, id, &e, &err);
            if (r == OBX_OK) {
                for (size_t k = 0; k < e->n_deliveries; k++) {
                    const obx_delivery *d = &e->deliveries[k];
                    if ((sink == OBX_ALL_SINKS || d->sink_id == sink) &&
                        (d->state == OBX_STATE_DEAD || d->state == OBX_STATE_DELIVERED))
                        count++;
                }
                if (!count)
                    r = OBX_ERR_STATE;
            }
            obx_event_free(e);
        } else {
            r = obx_replay(s, id, sink, c->now_ms, &count, &err);
        }
        if (r == OBX_ERR_NOTFOUND) {
            ctl_err("no event %llu (or it has no delivery to that sink)", (unsigned long long)id);
            rc = rc ? rc : CTL_EXIT_NOTFOUND;
            continue;
        }
        if (r == OBX_ERR_STATE) {
            ctl_err("event %llu: nothing to replay: its deliveries%s are pending or in flight",
                    (unsigned long long)id, sink == OBX_ALL_SINKS ? "" : " to that sink");
            rc = CTL_EXIT_ERROR;
            continue;
        }
        if (r) {
            ctl_err("event %llu: %s", (unsigned long long)id, err.msg);
            rc = CTL_EXIT_ERROR;
            continue;
        }
        total += count;
        events++;
    }
    if (rc == CTL_EXIT_OK || total)
        print_result(json, dry, "replay", "replayed", total, events, 0);
    if (!json && !dry && total)
        printf("replayed with a fresh retry budget; a running outboxd sends them within a "
               "second\n");
    return rc;
}

int ctl_cmd_replay(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS,
                                         CTL_OPTION_SINK,
                                         CTL_OPTION_TYPE,
                                         CTL_OPTION_ACTION,
                                         CTL_OPTION_SINCE,
                                         CTL_OPTION_UNTIL,
                                         CTL_OPTION_LIMIT,
                                         CTL_OPTION_JSON,
                                         {"dead", no_argument, NULL, OPT_DEAD},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {0}};
    ctl_filter f = {0};
    int dead = 0, dry = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":hn", opts, &f, &rc)) >= 0) {
        if (opt == OPT_DEAD)
            dead = 1;
        else if (opt == OPT_DRY_RUN || opt == 'n')
            dry = 1;
        else
            return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if (f.state || f.newest_first)
        return ctl_usage_error(argv[0], "--state/--newest do not apply: replay takes dead "
                                        "letters (--dead) or event ids");
    int n_ids = argc - optind;
    if (dead && n_ids)
        return ctl_usage_error(argv[0], "give event ids or --dead, not both");
    if (!dead && !n_ids)
        return ctl_usage_error(argv[0], "what to replay? give event ids, or --dead for every "
                                        "dead letter (narrow with --sink, --type, --since)");
    if (!dead && (f.type || f.action || f.since_ms || f.until_ms || f.limit_set))
        return ctl_usage_error(argv[0], "--type/--action/--since/--until/--limit go with --dead");
    for (int i = optind; i < argc; i++) {
        uint64_t id;
        if (ctl_parse_u64(argv[i], &id) || id == 0)
            return ctl_usage_error(argv[0], "\"%s\" is not an event id (a positive number)",
                                   argv[i]);
    }
    obx_store *s;
    if ((rc = ctl_open_store(c, dry, &s)))
        return rc;
    uint32_t sink;
    if ((rc = ctl_sink_resolve(s, f.sink, &sink)))
        goto out;
    if (!dead) {
        rc = replay_ids(c, s, sink, argv + optind, n_ids, dry, f.json);
        goto out;
    }
    f.state = OBX_STATE_DEAD;
    obx_query q;
    if ((rc = ctl_filter_query(s, &f, &q)))
        goto out;
    collector col = {0};
    obx_error err = {0};
    if (obx_list(s, &q, collect_one, ctl_corrupt_warn, &col, &err) || col.oom) {
        ctl_err("listing dead letters: %s", col.oom ? "out of memory" : err.msg);
        free(col.v);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    size_t events = distinct_events(col.v, col.n), done = 0, skipped = 0;
    if (!dry) {
        progress pg = {isatty(2), 0, "replaying"};
        size_t i = 0;
        while (i < col.n && rc == CTL_EXIT_OK) {
            size_t k = 0;
            int r = bulk(s, 1, col.v, col.n, &i, c->now_ms, &done, &skipped, &k, &err);
            if (r != OBX_OK) {
                progress_show(&pg, i, col.n, 1);
                ctl_err("replaying event %llu: %s (%zu replayed before this)",
                        (unsigned long long)col.v[k].ev, err.msg, done);
                rc = CTL_EXIT_ERROR;
            }
            progress_show(&pg, i, col.n, 0);
        }
        progress_show(&pg, col.n, col.n, 1);
    } else {
        done = col.n;
    }
    if (rc == CTL_EXIT_OK) {
        print_result(f.json, dry, "replay", "replayed", done, events, skipped);
        if (!f.json && !dry && done)
            printf("replayed with a fresh retry budget; a running outboxd sends them within "
                   "a second\n");
    }
    free(col.v);
out:
    obx_close(s);
    return rc;
}

/* ---- purge ---- */

int ctl_cmd_purge(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS,
                                         CTL_OPTION_SINK,
                                         CTL_OPTION_TYPE,
                                         CTL_OPTION_ACTION,
                                         CTL_OPTION_JSON,
                                         {"dead", no_argument, NULL, OPT_DEAD},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"yes", no_argument, NULL, OPT_YES},
                                         {"before", required_argument, NULL, OPT_BEFORE},
                                         {0}};
    ctl_filter f = {0};
    int dead = 0, dry = 0, yes = 0, opt, rc;
    int64_t before = 0;
    char terr[256];
    while ((opt = ctl_next_option(c, argc, argv, ":hny", opts, &f, &rc)) >= 0) {
        switch (opt) {
        case OPT_DEAD:
            dead = 1;
            continue;
        case OPT_DRY_RUN:
        case 'n':
            dry = 1;
            continue;
        case OPT_YES:
        case 'y':
            yes = 1;
            continue;
        case OPT_BEFORE:
            if (ctl_time_parse(optarg, c->now_ms, &before, terr, sizeof terr))
                return ctl_usage_error(argv[0], "--before: %s", terr);
            if (before <= 0)
                before = 1;
            continue;
        }
        return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if (optind < argc)
        return ctl_usage_error(argv[0],
                               "unexpected argument \"%s\" (purge takes --dead and "
                               "filters, not ids)",
                               argv[optind]);
    if (!dead)
        return ctl_usage_error(argv[0], "purge deletes dead letters only: say --dead");
    obx_store *s;
    if ((rc = ctl_open_store(c, dry, &s)))
        return rc;
    f.state = OBX_STATE_DEAD;
    obx_query q;
    collector col = {.before_ms = before};
    obx_error err = {0};
    if ((rc = ctl_filter_query(s, &f, &q)))
        goto out;
    q.newest_first = 0;
    if (obx_list(s, &q, collect_one, ctl_corrupt_warn, &col, &err) || col.oom) {
        ctl_err("listing dead letters: %s", col.oom ? "out of memory" : err.msg);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    size_t events = distinct_events(col.v, col.n);
    if (col.n == 0) {
        if (f.json)
            print_result(1, dry, "purge", "purged", 0, 0, 0);
        else
            printf("no dead letters match; nothing to purge\n");
        goto out;
    }
    if (dry) {
        print_result(f.json, 1, "purge", "purged", col.n, events, 0);
        goto out;
    }
    if (col.n > 1 && !yes) {
        ctl_err("this would delete %zu dead letters (%zu events) for good; run again with "
                "--yes to confirm (or --dry-run to only count)",
                col.n, events);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    size_t done = 0, skipped = 0;
    progress pg = {isatty(2), 0, "purging"};
    size_t i = 0;
    while (i < col.n) {
        size_t k = 0;
        int r = bulk(s, 0, col.v, col.n, &i, 0, &done, &skipped, &k, &err);
        if (r != OBX_OK) {
            progress_show(&pg, i, col.n, 1);
            ctl_err("purging event %llu: %s (%zu deleted before this)",
                    (unsigned long long)col.v[k].ev, err.msg, done);
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        progress_show(&pg, i, col.n, 0);
    }
    progress_show(&pg, col.n, col.n, 1);
    print_result(f.json, 0, "purge", "purged", done, events, skipped);
out:
    free(col.v);
    obx_close(s);
    return rc;
}

/* ---- retire ---- */

/* The retire's outcome: one JSON object, or one line saying what was (would be) done. */
static void print_retired(int json, int dry, const char *name, int purge,
                          const obx_retire_counts *r)
{
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "sink", name, "mode",
            purge ? "purge" : "dead-letter", "dry_run", dry, "pending", (json_int_t)r->pending,
            "inflight", (json_int_t)r->inflight, "dead", (json_int_t)r->dead, "delivered",
            (json_int_t)r->delivered, "events", (json_int_t)r->events, "dead_kept",
            (json_int_t)r->dead_kept, "delivered_kept", (json_int_t)r->delivered_kept, "corrupt",
            (json_int_t)r->corrupt, "slot_freed", r->slot_freed);
        ctl_json_print(o, stdout);
        return;
    }
    const char *w = dry ? "would be " : "";
    if (purge)
        printf("sink %s: %zu pending, %zu in flight, %zu dead and %zu delivered deliveries %s"
               "purged (%zu events deleted with their last delivery)",
               name, r->pending, r->inflight, r->dead, r->delivered, w, r->events);
    else
        printf("sink %s: %zu pending and %zu in flight deliveries %sdead-lettered (reason: sink "
               "retired); %zu dead letters and %zu delivered kept",
               name, r->pending, r->inflight, w, r->dead_kept, r->delivered_kept);
    if (r->corrupt)
        printf("; %zu corrupt records left alone (run `outboxctl check`)", r->corrupt);
    if (r->slot_freed)
        printf("; its registry slot %sfreed for a new sink\n", dry ? "would be " : "is ");
    else if (purge)
        printf("; its registry slot is kept while records of it remain\n");
    else
        printf("; its registry slot stays while its records remain (`outboxctl retire %s "
               "--purge` frees it)\n",
               name);
}

/* Deliveries of sink `id` in flight now (a stats snapshot). */
static uint64_t sink_inflight(obx_store *s, uint32_t id)
{
    obx_stats *st = NULL;
    uint64_t n = 0;
    if (obx_stats_get(s, &st, NULL) == OBX_OK)
        for (size_t i = 0; i < st->n_sinks; i++)
            if (st->sinks[i].id == id)
                n = st->sinks[i].inflight;
    obx_stats_free(st);
    return n;
}

int ctl_cmd_retire(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS,
                                         CTL_OPTION_JSON,
                                         {"dead-letter", no_argument, NULL, OPT_DEAD},
                                         {"purge", no_argument, NULL, OPT_PURGE},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {0}};
    ctl_filter f = {0};
    int mode = 0, dry = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":hn", opts, &f, &rc)) >= 0) {
        switch (opt) {
        case OPT_DEAD:
        case OPT_PURGE:
            if (mode && mode != (opt == OPT_PURGE ? OBX_RETIRE_PURGE : OBX_RETIRE_DEAD_LETTER))
                return ctl_usage_error(argv[0], "--dead-letter or --purge, not both");
            mode = opt == OPT_PURGE ? OBX_RETIRE_PURGE : OBX_RETIRE_DEAD_LETTER;
            continue;
        case OPT_DRY_RUN:
        case 'n':
            dry = 1;
            continue;
        }
        return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if ((rc = ctl_one_operand(argv[0], argc, argv, "which sink? give its name", "sink")))
        return rc;
    if (!mode)
        return ctl_usage_error(argv[0], "say what happens to its deliveries: --dead-letter "
                                        "(kept as dead letters) or --purge (deleted)");
    const char *name = argv[optind];
    if ((rc = ctl_resolve_dir(c)))
        return rc;
    const outbox_config *cfg = c->config;
    if (cfg && outbox_config_find_sink(cfg, name) >= 0) {
        ctl_err("sink \"%s\" is still configured in %s: remove it there and restart outboxd "
                "first (the daemon delivers to every sink of its config)",
                name, c->config_path);
        return CTL_EXIT_ERROR;
    }
    obx_store *s;
    if ((rc = ctl_open_store(c, dry, &s)))
        return rc;
    uint32_t id;
    obx_error err = {0};
    long pid = 0;
    if ((rc = ctl_sink_resolve(s, name, &id)))
        goto out;
    obx_owner_pid(c->data_dir, &pid, NULL);
    if (pid && !cfg) {
        ctl_err("outboxd (pid %ld) owns this outbox: give its --config FILE, so that retire can "
                "check that sink \"%s\" is no longer configured",
                pid, name);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    uint64_t inflight = pid ? sink_inflight(s, id) : 0;
    if (inflight) {
        ctl_err("%llu deliveries of sink \"%s\" are in flight under outboxd (pid %ld): their "
                "requests may be on the wire. Wait until they finish (a daemon whose config "
                "lacks the sink claims no more) and run again",
                (unsigned long long)inflight, name, pid);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    obx_retire_counts r;
    int orc = obx_sink_retire(s, id, mode, dry, &r, &err);
    if (orc) {
        ctl_err("retire %s: %s", name, err.msg);
        print_retired(0, dry, name, mode == OBX_RETIRE_PURGE, &r);
        rc = ctl_exit_for(orc);
        goto out;
    }
    print_retired(f.json, dry, name, mode == OBX_RETIRE_PURGE, &r);
    rc = r.corrupt ? CTL_EXIT_ERROR : CTL_EXIT_OK;
out:
    obx_close(s);
    return rc;
}
