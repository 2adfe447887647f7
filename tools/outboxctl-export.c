/*
 * outboxctl-export.c - `export` (JSON lines of events with their delivery state) and
 * `import` (those lines back as new events: straight into a stopped store as its owner,
 * or POSTed to a running daemon with --url through libcurl).
 *
 * Export walks deliveries in event-id order (so an event's deliveries are adjacent and
 * each event is one line) and filters states itself; the body is carried byte-exact
 * (outboxctl-out.h). Import keeps type, action, received time and the body bytes; the
 * events get new ids and fresh pending deliveries. Import is all or nothing for bad input:
 * a first pass validates every line (the body as ingest validates it, received_ms in range,
 * every sink configured, given with --sink or mapped with --map-sink) before the second
 * stores or posts anything. Only those sinks are ever registered in the store.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox-config.h"
#include "outboxctl-config.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl-time.h"
#include "outboxctl.h"
#include "outboxd-event.h"

enum { OPT_URL = CTL_OPT_LOCAL, OPT_TOKEN, OPT_DRY_RUN, OPT_MAP_SINK };

/* ---- export ---- */

typedef struct exporter {
    size_t corrupt; /* first: the ud of ctl_corrupt_warn */
    int state;      /* filter applied here (0 = any) */
    ctl_sinks sinks;
    uint64_t limit, events;
    uint64_t cur_id;
    json_t *cur; /* the event being built, or NULL */
    json_t *dels;
    unsigned char *body;
    size_t body_len;
    int failed;
} exporter;

static int flush_event(exporter *x)
{
    if (!x->cur)
        return 0;
    int rc = 0;
    if (json_array_size(x->dels) > 0) {
        rc = ctl_json_print_with_body(x->cur, x->body, x->body_len, stdout);
        x->events++;
    } else {
        json_decref(x->cur);
    }
    x->cur = NULL;
    x->dels = NULL;
    free(x->body);
    x->body = NULL;
    return rc;
}

static int export_one(void *ud, const obx_event *ev, const obx_delivery *d)
{
    exporter *x = ud;
    if (x->state && d->state != x->state)
        return 0;
    if (!x->cur || ev->id != x->cur_id) {
        if (flush_event(x)) {
            x->failed = 1;
            return 1;
        }
        if (x->limit && x->events >= x->limit)
            return 1;
        x->cur_id = ev->id;
        x->cur = ctl_event_json(ev);
        x->dels = json_array();
        x->body = malloc(ev->body_len ? ev->body_len : 1);
        if (!x->cur || !x->dels || !x->body) {
            json_decref(x->dels);
            x->failed = 1;
            return 1;
        }
        memcpy(x->body, ev->body, ev->body_len);
        x->body_len = ev->body_len;
        json_object_set_new(x->cur, "deliveries", x->dels);
    }
    char nb[OBX_SINK_NAME_MAX + 8];
    json_t *dj = ctl_delivery_json(d, ctl_sinks_name(&x->sinks, d->sink_id, nb, sizeof nb), 0);
    if (!dj || json_array_append_new(x->dels, dj)) {
        x->failed = 1;
        return 1;
    }
    return 0;
}

int ctl_cmd_export(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_OPTIONS, CTL_OPTION_STATE, CTL_OPTION_SINK,  CTL_OPTION_TYPE, CTL_OPTION_ACTION,
        CTL_OPTION_SINCE,   CTL_OPTION_UNTIL, CTL_OPTION_LIMIT, CTL_OPTION_JSON, {0}};
    ctl_filter f = {0};
    int rc;
    if (ctl_parse_filters(c, argc, argv, opts, &f, &rc))
        return rc;
    obx_store *s;
    rc = ctl_open_store(c, 1, &s);
    if (rc)
        return rc;
    exporter x = {.state = f.state, .limit = f.limit};
    obx_query q;
    if ((rc = ctl_filter_query(s, &f, &q)))
        goto out;
    if ((rc = ctl_sinks_load(s, &x.sinks)))
        goto out;
    /* Dead and delivered would walk a time index: keep event order, filter here. */
    if (q.state == OBX_STATE_DEAD || q.state == OBX_STATE_DELIVERED)
        q.state = 0;
    q.limit = 0;
    q.newest_first = 0;
    obx_error err = {0};
    int lrc = obx_list(s, &q, export_one, ctl_corrupt_warn, &x, &err);
    if (!lrc && !x.failed && flush_event(&x))
        x.failed = 1;
    json_decref(x.cur);
    free(x.body);
    if (lrc) {
        ctl_err("export: %s", err.msg);
        rc = CTL_EXIT_ERROR;
    } else if (x.failed) {
        ctl_err("export: out of memory");
        rc = CTL_EXIT_ERROR;
    }
    fflush(stdout);
    if (x.corrupt)
        ctl_warn("%zu corrupt record(s) skipped; run `outboxctl check`", x.corrupt);
    if (isatty(2) && !rc)
        fprintf(stderr, "outboxctl: exported %llu events\n", (unsigned long long)x.events);
out:
    ctl_sinks_free(&x.sinks);
    obx_close(s);
    return rc;
}

/* ---- import ---- */

#define IMPORT_BATCH 256
#define MAX_ROUTES   64
/* received_ms may lie this far in the future (clock skew between hosts); no further. */
#define IMPORT_FUTURE_SLACK_MS (24 * 3600 * 1000LL)

/* Which sinks imported events may be delivered to (see ctl_cmd_import's help). */
typedef struct import_rules {
    const outbox_config *cfg;       /* --config, or NULL */
    const char *forced[MAX_ROUTES]; /* --sink NAME: every event goes to these */
    size_t n_forced;
    const char *map_from[MAX_ROUTES], *map_to[MAX_ROUTES]; /* --map-sink OLD=NEW */
    size_t n_map;
    int by_url; /* --url: the daemon routes by its own config */
} import_rules;

typedef struct import_ev {
    char *type, *action; /* the body's, as ingest stores them */
    unsigned char *body;
    size_t body_len;
    int64_t received_ms;
    const char *sinks[MAX_ROUTES]; /* point into argv or the config */
    size_t n_sinks;
} import_ev;

static void import_ev_clear(import_ev *e)
{
    free(e->type);
    free(e->action);
    free(e->body);
    memset(e, 0, sizeof *e);
}

/* Add a sink name to the route list once; -1 when the list is full. */
static int route_add(import_ev *e, const char *name)
{
    for (size_t i = 0; i < e->n_sinks; i++)
        if (strcmp(e->sinks[i], name) == 0)
            return 0;
    if (e->n_sinks == MAX_ROUTES)
        return -1;
    e->sinks[e->n_sinks++] = name;
    return 0;
}

/*
 * The sink a line's delivery to `name` is imported for: its --map-sink target, else the
 * configured sink of that name. NULL (err filled) for a sink nobody configured: importing
 * it would register a phantom sink whose deliveries stay pending forever.
 */
static const char *route_name(const import_rules *r, const char *name, const char *where, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < r->n_map; i++)
        if (strcmp(r->map_from[i], name) == 0)
            return r->map_to[i];
    long k = r->cfg ? outbox_config_find_sink(r->cfg, name) : -1;
    if (k >= 0)
        return r->cfg->sinks[k].name;
    if (r->cfg)
        snprintf(err, errlen,
                 "%s: sink \"%.64s\" is not in the config: map it with --map-sink %.64s=NAME, "
                 "or import for configured sinks with --sink NAME",
                 where, name, name);
    else
        snprintf(err, errlen,
                 "%s: sink \"%.64s\" is not known to be configured: give --config FILE (the "
                 "daemon's), --sink NAME or --map-sink %.64s=NAME",
                 where, name, name);
    return NULL;
}

/* Type and action of the record must be the ones ingest reads from its body. */
static int same_field(json_t *root, const char *key, const char *body_value, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "field \"%s\" must be a string", key);
        return -1;
    }
    if (strcmp(json_string_value(v), body_value) != 0) {
        snprintf(err, errlen,
                 "field \"%s\" is \"%.64s\" but the event in the body has %s \"%.64s\"", key,
                 json_string_value(v), key, body_value);
        return -1;
    }
    return 0;
}

/*
 * Parse and validate one export line into e: the body is validated by the function ingest
 * uses (oev_parse), so what is imported is what outboxd would have accepted; received_ms
 * must be a time the store can hold; each delivery's sink goes through route_name.
 * err names the field; the caller adds the line.
 */
static int parse_line(const char *line, size_t len, const import_rules *r, int64_t now,
                      import_ev *e, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, 0, &je);
    oev_event *evs = NULL;
    size_t n_evs = 0;
    int rc = -1;
    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object (%s)", root ? "another JSON value" : je.text);
        goto out;
    }
    if (ctl_body_from_line(line, len, &e->body, &e->body_len, err, errlen))
        goto out;
    if (r->cfg && e->body_len > r->cfg->ingest.max_body) {
        snprintf(err, errlen,
                 "the body is %zu bytes, over ingest.max_body (%llu) of the config: ingest "
                 "would refuse it",
                 e->body_len, (unsigned long long)r->cfg->ingest.max_body);
        goto out;
    }
    char verr[200];
    if (oev_parse(OEV_CT_JSON, (const char *)e->body, e->body_len, &evs, &n_evs, verr,
                  sizeof verr)) {
        snprintf(err, errlen, "the event in the body is not one ingest accepts: %s", verr);
        goto out;
    }
    if (same_field(root, "type", evs[0].type, err, errlen) ||
        same_field(root, "action", evs[0].action, err, errlen))
        goto out;
    e->type = evs[0].type;
    e->action = evs[0].action;
    evs[0].type = evs[0].action = NULL;
    json_t *rm = json_object_get(root, "received_ms");
    if (!rm) {
        e->received_ms = now;
    } else if (!json_is_integer(rm)) {
        snprintf(err, errlen, "field \"received_ms\" must be an integer (Unix milliseconds)");
        goto out;
    } else {
        json_int_t v = json_integer_value(rm);
        if (v <= 0 || v > now + IMPORT_FUTURE_SLACK_MS) {
            snprintf(err, errlen,
                     "field \"received_ms\" is %lld: out of range (after 1970, at most a day "
                     "ahead of now)",
                     (long long)v);
            goto out;
        }
        e->received_ms = (int64_t)v;
    }
    if (r->by_url) {
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < r->n_forced; i++)
        route_add(e, r->forced[i]);
    json_t *dels = json_object_get(root, "deliveries");
    if (dels && !json_is_array(dels)) {
        snprintf(err, errlen, "field \"deliveries\" must be an array");
        goto out;
    }
    size_t i;
    json_t *d;
    json_array_foreach(dels, i, d)
    {
        if (r->n_forced)
            break;
        char where[48];
        snprintf(where, sizeof where, "deliveries[%zu].sink", i);
        const char *name = json_string_value(json_object_get(d, "sink"));
        if (!name) {
            snprintf(err, errlen, "field \"%s\" must be a string", where);
            goto out;
        }
        const char *to = route_name(r, name, where, err, errlen);
        if (!to)
            goto out;
        if (route_add(e, to)) {
            snprintf(err, errlen, "field \"deliveries\": more than %d sinks", MAX_ROUTES);
            goto out;
        }
    }
    if (e->n_sinks == 0) {
        snprintf(err, errlen, "no sinks to deliver to (the line lists none): give --sink");
        goto out;
    }
    rc = 0;
out:
    oev_events_free(evs, n_evs);
    json_decref(root);
    return rc;
}

/* The ids of the sinks an import routes to, registered once (only configured or
 * explicitly named sinks ever reach the registry). */
typedef struct sink_ids {
    const char *name[MAX_ROUTES * 2 + 1];
    uint32_t id[MAX_ROUTES * 2 + 1];
    size_t n;
} sink_ids;

static int sink_id_of(obx_store *s, sink_ids *t, const char *name, uint32_t *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->name[i] == name || strcmp(t->name[i], name) == 0) {
            *id = t->id[i];
            return 0;
        }
    obx_error err = {0};
    if (obx_sink_id(s, name, id, &err)) {
        ctl_err("sink \"%s\": %s", name, err.msg);
        return -1;
    }
    if (t->n < sizeof t->id / sizeof t->id[0]) {
        t->name[t->n] = name;
        t->id[t->n++] = *id;
    }
    return 0;
}

static int flush_batch(obx_store *s, sink_ids *t, import_ev *batch, size_t n, uint64_t *first,
                       uint64_t *last, size_t *stored)
{
    if (n == 0)
        return 0;
    obx_event_in in[IMPORT_BATCH];
    uint64_t ids[IMPORT_BATCH];
    static uint32_t routes[IMPORT_BATCH][MAX_ROUTES];
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        for (size_t j = 0; j < batch[i].n_sinks && !rc; j++)
            rc = sink_id_of(s, t, batch[i].sinks[j], &routes[i][j]);
        in[i] = (obx_event_in){batch[i].type,     batch[i].action,      batch[i].body,
                               batch[i].body_len, batch[i].received_ms, routes[i],
                               batch[i].n_sinks};
    }
    obx_error err = {0};
    if (!rc && (rc = obx_enqueue(s, in, n, ids, &err)))
        ctl_err("storing events: %s (%zu stored before this batch)", err.msg, *stored);
    for (size_t i = 0; i < n; i++)
        import_ev_clear(&batch[i]);
    if (rc)
        return -1;
    if (!*first)
        *first = ids[0];
    *last = ids[n - 1];
    *stored += n;
    return 0;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    char *buf = ud;
    size_t n = size * nmemb, have = strlen(buf);
    if (have < 255) {
        size_t take = n < 255 - have ? n : 255 - have;
        memcpy(buf + have, ptr, take);
        buf[have + take] = '\0';
    }
    return n;
}

/* POST one body; retries 503 (store full / shutting down) a few times, honouring
 * Retry-After. 0 on 2xx, else -1 with the reason printed. */
static int post_one(CURL *h, const char *url, const unsigned char *body, size_t len, size_t line_no)
{
    for (int attempt = 0;; attempt++) {
        char resp[256] = "";
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)resp);
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            ctl_err("line %zu: POST %s: %s", line_no, url, curl_easy_strerror(cc));
            return -1;
        }
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            return 0;
        curl_off_t retry_after = -1;
        curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
        if (status == 503 && attempt < 5) {
            unsigned wait = retry_after > 0 && retry_after < 10 ? (unsigned)retry_after : 1;
            sleep(wait);
            continue;
        }
        ctl_err("line %zu: the daemon answered %ld %s", line_no, status, resp);
        return -1;
    }
}

/* What the second pass does with each validated event. */
typedef struct import_run {
    obx_store *s; /* store mode */
    sink_ids ids;
    import_ev *batch;
    size_t nb;
    CURL *h; /* --url mode */
    const char *url;
    size_t done; /* events validated (first pass) or stored/posted (second) */
    uint64_t first, last;
} import_run;

/* Take e (cleared here); -1 after printing the error. */
static int import_one(import_run *x, import_ev *e, size_t line_no)
{
    if (x->h) {
        int pr = post_one(x->h, x->url, e->body, e->body_len, line_no);
        import_ev_clear(e);
        if (pr) {
            ctl_err("%zu events posted before this line", x->done);
            return -1;
        }
        x->done++;
        return 0;
    }
    if (!x->s) { /* the validating pass */
        import_ev_clear(e);
        x->done++;
        return 0;
    }
    x->batch[x->nb] = *e;
    memset(e, 0, sizeof *e);
    if (++x->nb < IMPORT_BATCH)
        return 0;
    size_t n = x->nb;
    x->nb = 0;
    return flush_batch(x->s, &x->ids, x->batch, n, &x->first, &x->last, &x->done);
}

/*
 * Read every line of `in` (copying it to `spool` when not NULL, for a second pass over
 * stdin), parse and validate it, and hand it to import_one. Stops at the first bad line,
 * naming it. Returns 0 or -1 (printed).
 */
static int import_pass(FILE *in, FILE *spool, const char *path, const import_rules *r, int64_t now,
                       import_run *x)
{
    char *line = NULL;
    size_t cap = 0, lines = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lines++;
        if (spool && fwrite(line, 1, (size_t)len, spool) != (size_t)len) {
            ctl_err("spooling standard input to a temporary file: %s", strerror(errno));
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char perr[400];
        import_ev e = {0};
        if (parse_line(line, (size_t)len, r, now, &e, perr, sizeof perr)) {
            import_ev_clear(&e);
            ctl_err("%s:%zu: %s", path, lines, perr);
            rc = -1;
            break;
        }
        if ((rc = import_one(x, &e, lines)))
            break;
    }
    if (!rc && ferror(in)) {
        ctl_err("%s: read error", path);
        rc = -1;
    }
    free(line);
    return rc;
}

/* Parse OLD=NEW of --map-sink. */
static int parse_map(import_rules *r, char *arg, const char *cmd)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return ctl_usage_error(cmd, "--map-sink wants OLD=NEW (got \"%s\")", arg);
    if (r->n_map == MAX_ROUTES)
        return ctl_usage_error(cmd, "at most %d --map-sink", MAX_ROUTES);
    *eq = '\0';
    r->map_from[r->n_map] = arg;
    r->map_to[r->n_map++] = eq + 1;
    return 0;
}

/* With --config, an explicit sink must be one the daemon delivers to. */
static int check_configured(const import_rules *r, const char *name, const char *opt,
                            const char *config_path)
{
    if (!r->cfg || outbox_config_find_sink(r->cfg, name) >= 0)
        return 0;
    ctl_err("%s %s: %s has no sink named \"%s\" (its deliveries would stay pending forever)", opt,
            name, config_path, name);
    return -1;
}

int ctl_cmd_import(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS,
                                         CTL_OPTION_SINK,
                                         {"map-sink", required_argument, NULL, OPT_MAP_SINK},
                                         {"url", required_argument, NULL, OPT_URL},
                                         {"token", required_argument, NULL, OPT_TOKEN},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {0}};
    const char *url = NULL, *token = NULL;
    import_rules r = {0};
    int dry = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":hn", opts, NULL, &rc)) >= 0) {
        switch (opt) {
        case CTL_OPT_SINK:
            if (r.n_forced == MAX_ROUTES)
                return ctl_usage_error(argv[0], "at most %d sinks", MAX_ROUTES);
            r.forced[r.n_forced++] = optarg;
            continue;
        case OPT_MAP_SINK:
            if ((rc = parse_map(&r, optarg, argv[0])))
                return rc;
            continue;
        case OPT_URL:
            url = optarg;
            continue;
        case OPT_TOKEN:
            token = optarg;
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
    if ((rc = ctl_one_operand(argv[0], argc, argv,
                              "which file? give an export file ('-' for stdin)", "file")))
        return rc;
    if (url && (r.n_forced || r.n_map))
        return ctl_usage_error(argv[0], "with --url the daemon routes events by its config; "
                                        "--sink and --map-sink are for importing into a "
                                        "stopped store");
    if (r.n_forced && r.n_map)
        return ctl_usage_error(argv[0], "--sink sends every event to the sinks named; "
                                        "--map-sink renames the sinks of each line: one or the "
                                        "other");
    r.by_url = url != NULL;
    if (c->config_path && (rc = ctl_config_resolve(c)))
        return rc;
    r.cfg = c->config;
    for (size_t i = 0; i < r.n_forced; i++)
        if (check_configured(&r, r.forced[i], "--sink", c->config_path))
            return CTL_EXIT_ERROR;
    for (size_t i = 0; i < r.n_map; i++)
        if (check_configured(&r, r.map_to[i], "--map-sink", c->config_path))
            return CTL_EXIT_ERROR;
    const char *path = argv[optind];
    int from_stdin = strcmp(path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(path, "r");
    if (!in) {
        ctl_err("%s: cannot open: %s", path, strerror(errno));
        return CTL_EXIT_ERROR;
    }
    rc = CTL_EXIT_ERROR;
    FILE *spool = NULL;
    struct curl_slist *hdrs = NULL;
    import_run x = {.url = url};
    int64_t now = obx_now_ms();
    if (from_stdin && !dry && !(spool = tmpfile())) {
        ctl_err("cannot create a temporary file for standard input: %s", strerror(errno));
        goto out;
    }
    /* First pass: every line is validated before anything is stored or posted. */
    if (import_pass(in, spool, path, &r, now, &x)) {
        ctl_err("nothing imported");
        goto out;
    }
    size_t valid = x.done;
    if (dry) {
        printf("would import %zu events\n", valid);
        rc = CTL_EXIT_OK;
        goto out;
    }
    if (spool) {
        in = spool;
        spool = NULL;
    }
    rewind(in);
    x.done = 0;
    if (url) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(x.h = curl_easy_init())) {
            ctl_err("cannot initialise libcurl");
            goto out;
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        if (token) {
            char auth[1024];
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
            hdrs = curl_slist_append(hdrs, auth);
        }
        curl_easy_setopt(x.h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(x.h, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(x.h, CURLOPT_CONNECTTIMEOUT, 10L);
    } else {
        if ((rc = ctl_resolve_dir(c)))
            goto out;
        rc = CTL_EXIT_ERROR;
        if (!(x.batch = calloc(IMPORT_BATCH, sizeof *x.batch))) {
            ctl_err("out of memory");
            goto out;
        }
        obx_options o;
        obx_options_init(&o);
        ctl_config_store_options(c, &o);
        o.flags = OBX_OPEN_OWNER | OBX_OPEN_NOCREATE;
        if (c->config_max_size)
            o.max_size = c->config_max_size;
        obx_error err = {0};
        int orc = obx_open(c->data_dir, &o, &x.s, &err);
        if (orc == OBX_ERR_LOCKED) {
            ctl_err("the outbox in %s is in use by a running outboxd. import writes new events, "
                    "which only the owner may do: stop the daemon first, or post the events to "
                    "it with --url http://HOST:PORT/v1/events",
                    c->data_dir);
            goto out;
        }
        if (orc) {
            ctl_err("cannot open the outbox in %s: %s", c->data_dir, err.msg);
            goto out;
        }
    }
    if (import_pass(in, NULL, path, &r, now, &x) ||
        (x.s && flush_batch(x.s, &x.ids, x.batch, x.nb, &x.first, &x.last, &x.done))) {
        x.nb = 0;
        goto out;
    }
    x.nb = 0;
    if (url)
        printf("posted %zu events to %s\n", x.done, url);
    else if (x.done)
        printf("imported %zu events as new events %llu..%llu (pending)\n", x.done,
               (unsigned long long)x.first, (unsigned long long)x.last);
    else
        printf("imported 0 events (the file has no lines)\n");
    rc = CTL_EXIT_OK;
out:
    for (size_t i = 0; x.batch && i < x.nb; i++)
        import_ev_clear(&x.batch[i]);
    free(x.batch);
    if (in && in != stdin)
        fclose(in);
    if (spool)
        fclose(spool);
    if (x.h)
        curl_easy_cleanup(x.h);
    curl_slist_free_all(hdrs);
    if (url)
        curl_global_cleanup();
    obx_close(x.s);
    return rc;
}
