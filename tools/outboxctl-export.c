/*
 * outboxctl-export.c - `export` (JSON lines of events with their delivery state) and
 * `import` (those lines back as new events: straight into a stopped store as its owner,
 * or POSTed to a running daemon with --url through libcurl).
 *
 * Export walks deliveries in event-id order (so an event's deliveries are adjacent and
 * each event is one line) and filters states itself; the body is carried byte-exact
 * (outboxctl-out.h). Import keeps type, action, received time and the body bytes; the
 * events get new ids and fresh pending deliveries.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outboxctl-config.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl-time.h"
#include "outboxctl.h"

enum { OPT_URL = CTL_OPT_LOCAL, OPT_TOKEN, OPT_DRY_RUN };

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

typedef struct import_ev {
    char *type, *action;
    unsigned char *body;
    size_t body_len;
    int64_t received_ms;
    uint32_t sinks[MAX_ROUTES];
    size_t n_sinks;
} import_ev;

static void import_ev_clear(import_ev *e)
{
    free(e->type);
    free(e->action);
    free(e->body);
    memset(e, 0, sizeof *e);
}

/* Add sink id to the route list once. */
static void route_add(import_ev *e, uint32_t id)
{
    for (size_t i = 0; i < e->n_sinks; i++)
        if (e->sinks[i] == id)
            return;
    if (e->n_sinks < MAX_ROUTES)
        e->sinks[e->n_sinks++] = id;
}

/* Parse one export line into e; store mode resolves sink names through s (registering). */
static int parse_line(const char *line, size_t len, obx_store *s, const uint32_t *forced,
                      size_t n_forced, import_ev *e, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, 0, &je);
    int rc = -1;
    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object (%s)", root ? "another JSON value" : je.text);
        goto out;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    const char *action = json_string_value(json_object_get(root, "action"));
    if (!type || !action) {
        snprintf(err, errlen, "\"type\" and \"action\" must be strings");
        goto out;
    }
    e->type = strdup(type);
    e->action = strdup(action);
    if (!e->type || !e->action) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    json_t *rm = json_object_get(root, "received_ms");
    e->received_ms = json_is_integer(rm) ? (int64_t)json_integer_value(rm) : 0;
    if (ctl_body_from_line(line, len, &e->body, &e->body_len, err, errlen))
        goto out;
    if (s) {
        for (size_t i = 0; i < n_forced; i++)
            route_add(e, forced[i]);
        json_t *dels = json_object_get(root, "deliveries");
        size_t i;
        json_t *d;
        json_array_foreach(dels, i, d)
        {
            if (n_forced)
                break;
            const char *name = json_string_value(json_object_get(d, "sink"));
            if (!name)
                continue;
            uint32_t id;
            obx_error oe = {0};
            if (obx_sink_id(s, name, &id, &oe)) {
                snprintf(err, errlen, "sink \"%.64s\": %.160s", name, oe.msg);
                goto out;
            }
            route_add(e, id);
        }
        if (e->n_sinks == 0) {
            snprintf(err, errlen, "no sinks to deliver to (the line lists none): give --sink");
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int flush_batch(obx_store *s, import_ev *batch, size_t n, uint64_t *first, uint64_t *last,
                       size_t *stored)
{
    if (n == 0)
        return 0;
    obx_event_in in[IMPORT_BATCH];
    uint64_t ids[IMPORT_BATCH];
    for (size_t i = 0; i < n; i++) {
        in[i] = (obx_event_in){batch[i].type,     batch[i].action,      batch[i].body,
                               batch[i].body_len, batch[i].received_ms, batch[i].sinks,
                               batch[i].n_sinks};
    }
    obx_error err = {0};
    int rc = obx_enqueue(s, in, n, ids, &err);
    for (size_t i = 0; i < n; i++)
        import_ev_clear(&batch[i]);
    if (rc) {
        ctl_err("storing events: %s (%zu stored before this batch)", err.msg, *stored);
        return -1;
    }
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

int ctl_cmd_import(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {CTL_COMMON_OPTIONS,
                                         CTL_OPTION_SINK,
                                         {"url", required_argument, NULL, OPT_URL},
                                         {"token", required_argument, NULL, OPT_TOKEN},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {0}};
    const char *url = NULL, *token = NULL;
    const char *sink_names[MAX_ROUTES];
    size_t n_sink_names = 0;
    int dry = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":hn", opts, NULL, &rc)) >= 0) {
        switch (opt) {
        case CTL_OPT_SINK:
            if (n_sink_names == MAX_ROUTES)
                return ctl_usage_error(argv[0], "at most %d sinks", MAX_ROUTES);
            sink_names[n_sink_names++] = optarg;
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
    if (optind >= argc)
        return ctl_usage_error(argv[0], "which file? give an export file ('-' for stdin)");
    if (optind + 1 < argc)
        return ctl_usage_error(argv[0], "one file at a time (got \"%s\" too)", argv[optind + 1]);
    if (url && n_sink_names)
        return ctl_usage_error(argv[0], "with --url the daemon routes events by its config; "
                                        "--sink is for importing into a stopped store");
    const char *path = argv[optind];
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        ctl_err("%s: cannot open: %s", path, strerror(errno));
        return CTL_EXIT_ERROR;
    }
    rc = CTL_EXIT_OK;
    obx_store *s = NULL;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    import_ev *batch = calloc(IMPORT_BATCH, sizeof *batch);
    uint32_t forced[MAX_ROUTES];
    size_t nb = 0, stored = 0, lines = 0;
    uint64_t first = 0, last = 0;
    char *line = NULL;
    size_t cap = 0;
    if (!batch) {
        ctl_err("out of memory");
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    if (url) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(h = curl_easy_init())) {
            ctl_err("cannot initialise libcurl");
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        if (token) {
            char auth[1024];
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
            hdrs = curl_slist_append(hdrs, auth);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    } else if (!dry) {
        if ((rc = ctl_resolve_dir(c)))
            goto out;
        obx_options o;
        obx_options_init(&o);
        ctl_config_store_options(c, &o);
        o.flags = OBX_OPEN_OWNER | OBX_OPEN_NOCREATE;
        if (c->config_max_size)
            o.max_size = c->config_max_size;
        obx_error err = {0};
        int orc = obx_open(c->data_dir, &o, &s, &err);
        if (orc == OBX_ERR_LOCKED) {
            ctl_err("the outbox in %s is in use by a running outboxd. import writes new events, "
                    "which only the owner may do: stop the daemon first, or post the events to "
                    "it with --url http://HOST:PORT/v1/events",
                    c->data_dir);
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        if (orc) {
            ctl_err("cannot open the outbox in %s: %s", c->data_dir, err.msg);
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        for (size_t i = 0; i < n_sink_names; i++) {
            if (obx_sink_id(s, sink_names[i], &forced[i], &err)) {
                ctl_err("sink \"%s\": %s", sink_names[i], err.msg);
                rc = CTL_EXIT_ERROR;
                goto out;
            }
        }
    }
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lines++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char perr[256];
        import_ev *e = &batch[nb];
        if (parse_line(line, (size_t)len, s, forced, n_sink_names, e, perr, sizeof perr)) {
            import_ev_clear(e);
            ctl_err("%s:%zu: %s (%zu events imported before this line)", path, lines, perr, stored);
            rc = CTL_EXIT_ERROR;
            goto out;
        }
        if (url) {
            int pr = dry ? 0 : post_one(h, url, e->body, e->body_len, lines);
            import_ev_clear(e);
            if (pr) {
                ctl_err("%zu events posted before this line", stored);
                rc = CTL_EXIT_ERROR;
                goto out;
            }
            stored++;
        } else if (dry) {
            import_ev_clear(e);
            stored++;
        } else if (++nb == IMPORT_BATCH) {
            int fr = flush_batch(s, batch, nb, &first, &last, &stored);
            nb = 0;
            if (fr) {
                rc = CTL_EXIT_ERROR;
                goto out;
            }
        }
    }
    if (ferror(in)) {
        ctl_err("%s: read error", path);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    if (s && flush_batch(s, batch, nb, &first, &last, &stored)) {
        nb = 0;
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    nb = 0;
    if (dry)
        printf("would import %zu events\n", stored);
    else if (url)
        printf("posted %zu events to %s\n", stored, url);
    else if (stored)
        printf("imported %zu events as new events %llu..%llu (pending)\n", stored,
               (unsigned long long)first, (unsigned long long)last);
    else
        printf("imported 0 events (the file has no lines)\n");
out:
    for (size_t i = 0; batch && i < nb; i++)
        import_ev_clear(&batch[i]);
    free(batch);
    free(line);
    if (in && in != stdin)
        fclose(in);
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (url)
        curl_global_cleanup();
    obx_close(s);
    return rc;
}
