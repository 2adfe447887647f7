/*
 * outboxctl-query.c - delivery filters and per-delivery labels shared by the listing
 * commands of outboxctl (see outboxctl-query.h).
 */
#include "outboxctl-query.h"

#include <string.h>

#include "outboxctl-out.h"
#include "outboxctl-time.h"

int ctl_filter_option(const char *cmd, ctl_filter *f, int opt, const char *arg, int64_t now_ms)
{
    char err[256];
    switch (opt) {
    case CTL_OPT_STATE:
        if (strcmp(arg, "all") == 0)
            f->state = 0;
        else if (strcmp(arg, "in-flight") == 0 || strcmp(arg, "in_flight") == 0)
            f->state = OBX_STATE_INFLIGHT;
        else if (!(f->state = obx_state_parse(arg))) {
            ctl_usage_error(cmd,
                            "unknown state \"%s\" (use pending, inflight, dead, "
                            "delivered or all)",
                            arg);
            return -1;
        }
        return 1;
    case CTL_OPT_SINK:
        f->sink = arg;
        return 1;
    case CTL_OPT_TYPE:
        f->type = arg;
        return 1;
    case CTL_OPT_ACTION:
        f->action = arg;
        return 1;
    case CTL_OPT_SINCE:
    case CTL_OPT_UNTIL: {
        int64_t t;
        if (ctl_time_parse(arg, now_ms, &t, err, sizeof err)) {
            ctl_usage_error(cmd, "--%s: %s", opt == CTL_OPT_SINCE ? "since" : "until", err);
            return -1;
        }
        if (t <= 0)
            t = 1;
        if (opt == CTL_OPT_SINCE)
            f->since_ms = t;
        else
            f->until_ms = t;
        return 1;
    }
    case CTL_OPT_NEWEST:
        f->newest_first = 1;
        return 1;
    case CTL_OPT_OLDEST:
        f->newest_first = 0;
        return 1;
    case CTL_OPT_LIMIT:
        if (ctl_parse_u64(arg, &f->limit)) {
            ctl_usage_error(cmd, "--limit: \"%s\" is not a number (0 = no limit)", arg);
            return -1;
        }
        f->limit_set = 1;
        return 1;
    case CTL_OPT_JSON:
        f->json = 1;
        return 1;
    default:
        return 0;
    }
}

int ctl_next_option(ctl_ctx *c, int argc, char **argv, const char *shorts,
                    const struct option *opts, ctl_filter *f, int *rc)
{
    int opt;
    while ((opt = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (opt == 'h') {
            *rc = ctl_help(argv[0]);
            return CTL_OPTS_RETURN;
        }
        if (ctl_common_option(c, opt, optarg))
            continue;
        if (opt == '?' || opt == ':') {
            *rc = ctl_bad_option(argv[0], opt, argv);
            return CTL_OPTS_RETURN;
        }
        int fr = f ? ctl_filter_option(argv[0], f, opt, optarg, c->now_ms) : 0;
        if (fr < 0) {
            *rc = CTL_EXIT_USAGE;
            return CTL_OPTS_RETURN;
        }
        if (fr == 0)
            return opt;
    }
    *rc = CTL_EXIT_OK;
    return CTL_OPTS_END;
}

int ctl_parse_filters(ctl_ctx *c, int argc, char **argv, const struct option *opts, ctl_filter *f,
                      int *rc)
{
    int opt = ctl_next_option(c, argc, argv, ":h", opts, f, rc);
    if (opt == CTL_OPTS_RETURN)
        return 1;
    if (opt != CTL_OPTS_END) {
        *rc = ctl_bad_option(argv[0], '?', argv);
        return 1;
    }
    if (optind < argc) {
        *rc = ctl_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind]);
        return 1;
    }
    return 0;
}

int ctl_parse_simple(ctl_ctx *c, int argc, char **argv, int nmin, int nmax, const char *missing,
                     int *json, int *first, int *rc)
{
    static const struct option with_json[] = {CTL_COMMON_OPTIONS, CTL_OPTION_JSON, {0}};
    static const struct option without[] = {CTL_COMMON_OPTIONS, {0}};
    ctl_filter f = {0};
    int opt = ctl_next_option(c, argc, argv, ":h", json ? with_json : without, &f, rc);
    if (opt == CTL_OPTS_RETURN)
        return 1;
    if (opt != CTL_OPTS_END || (!json && f.json)) {
        *rc = ctl_bad_option(argv[0], '?', argv);
        return 1;
    }
    if (json)
        *json = f.json;
    int n = argc - optind;
    if (n < nmin) {
        *rc = ctl_usage_error(argv[0], "%s", missing);
        return 1;
    }
    if (n > nmax) {
        *rc = ctl_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind + nmax]);
        return 1;
    }
    *first = optind;
    return 0;
}

void ctl_corrupt_warn(void *counter, uint64_t event_id, uint32_t sink_id, const char *what)
{
    size_t *n = counter;
    (*n)++;
    if (strstr(what, "event"))
        ctl_warn("skipping a corrupt record: %s", what);
    else if (sink_id)
        ctl_warn("skipping a corrupt record: event %llu, sink %u: %s", (unsigned long long)event_id,
                 sink_id, what);
    else
        ctl_warn("skipping a corrupt record: event %llu: %s", (unsigned long long)event_id, what);
}

int ctl_filter_query(obx_store *s, const ctl_filter *f, obx_query *q)
{
    obx_query_init(q);
    q->state = f->state;
    int rc = ctl_sink_resolve(s, f->sink, &q->sink_id);
    if (rc)
        return rc;
    q->type = f->type;
    q->action = f->action;
    q->since_ms = f->since_ms;
    q->until_ms = f->until_ms;
    q->newest_first = f->newest_first;
    q->limit = (size_t)f->limit;
    return CTL_EXIT_OK;
}

const char *ctl_webhook_id(const obx_delivery *d, char *buf, size_t n)
{
    snprintf(buf, n, "%s", d->webhook_id); /* obx_delivery_id(), filled by the store */
    return buf;
}

const char *ctl_state_label(const obx_delivery *d)
{
    const char *n = obx_state_name(d->state);
    return n ? n : "unknown";
}

const char *ctl_last_outcome(const obx_delivery *d, char *buf, size_t n)
{
    if (d->state == OBX_STATE_DEAD && d->reason && *d->reason) {
        snprintf(buf, n, "%s", d->reason);
        return buf;
    }
    if (d->last_status && d->last_error && *d->last_error)
        snprintf(buf, n, "HTTP %d: %s", d->last_status, d->last_error);
    else if (d->last_status)
        snprintf(buf, n, "HTTP %d", d->last_status);
    else if (d->last_error && *d->last_error)
        snprintf(buf, n, "%s", d->last_error);
    else
        return NULL;
    return buf;
}

int ctl_sinks_load(obx_store *s, ctl_sinks *sk)
{
    obx_error err = {0};
    sk->st = NULL;
    sk->s = s;
    if (obx_stats_get(s, &sk->st, &err)) {
        ctl_err("reading the sink registry: %s", err.msg);
        return CTL_EXIT_ERROR;
    }
    return CTL_EXIT_OK;
}

const char *ctl_sinks_name(ctl_sinks *sk, uint32_t id, char *buf, size_t n)
{
    for (size_t i = 0; sk->st && i < sk->st->n_sinks; i++)
        if (sk->st->sinks[i].id == id)
            return sk->st->sinks[i].name;
    char name[OBX_SINK_NAME_MAX];
    if (sk->s && obx_sink_name(sk->s, id, name, NULL) == OBX_OK)
        snprintf(buf, n, "%s", name);
    else
        snprintf(buf, n, "#%u", id);
    return buf;
}

void ctl_sinks_free(ctl_sinks *sk)
{
    obx_stats_free(sk->st);
    sk->st = NULL;
}

static int set(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

json_t *ctl_event_json(const obx_event *ev)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "id", json_integer((json_int_t)ev->id));
    bad |= set(o, "type", json_string(ev->type));
    bad |= set(o, "action", json_string(ev->action));
    bad |= set(o, "received", ctl_json_time(ev->received_ms));
    bad |= set(o, "received_ms", json_integer(ev->received_ms));
    bad |= set(o, "body_bytes", json_integer((json_int_t)ev->body_len));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A string for bytes a receiver sent: as they are when valid UTF-8, else escaped
 * (ctl_print_escaped's form). New reference, NULL when out of memory. */
static json_t *peer_string(const unsigned char *s, size_t len)
{
    if (ctl_utf8_valid(s, len))
        return json_stringn((const char *)s, len);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    ctl_print_escaped(s, len, f);
    fclose(f);
    json_t *v = buf ? json_stringn(buf, n) : NULL;
    free(buf);
    return v;
}

/* An attempt's captured response: {"headers":{name:value},"body":text|null,
 * "body_base64":...,"body_size":N,"body_truncated":bool}. */
static json_t *response_json(const obx_attempt *a)
{
    json_t *r = json_object(), *h = json_object();
    int bad = !r || set(r, "headers", h);
    for (size_t i = 0; !bad && i < a->n_headers; i++) {
        json_t *v =
            peer_string((const unsigned char *)a->headers[i].value, strlen(a->headers[i].value));
        json_t *k =
            peer_string((const unsigned char *)a->headers[i].name, strlen(a->headers[i].name));
        bad |= !k || set(h, json_string_value(k), v);
        json_decref(k);
    }
    if (!bad && a->body) {
        int text = ctl_utf8_valid(a->body, a->body_len);
        bad |=
            set(r, "body", text ? json_stringn((const char *)a->body, a->body_len) : json_null());
        if (!text) {
            char *b64 = ctl_base64_encode(a->body, a->body_len);
            bad |= set(r, "body_base64", b64 ? json_string(b64) : NULL);
            free(b64);
        }
    }
    if (!bad)
        bad |= set(r, "body_size", json_integer((json_int_t)a->body_size));
    if (!bad)
        bad |= set(r, "body_truncated", json_boolean(a->body_size > a->body_len));
    if (bad) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *ctl_delivery_json(const obx_delivery *d, const char *sink_name, int history)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "sink", json_string(sink_name));
    bad |= set(o, "sink_id", json_integer(d->sink_id));
    char wid[OBX_DELIVERY_ID_MAX];
    bad |= set(o, "webhook_id", json_string(ctl_webhook_id(d, wid, sizeof wid)));
    bad |= set(o, "state", json_string(ctl_state_label(d)));
    bad |= set(o, "in_doubt", json_boolean(d->in_doubt));
    bad |= set(o, "attempts", json_integer(d->attempts));
    bad |= set(o, "total_attempts", json_integer(d->total_attempts));
    bad |= set(o, "replays", json_integer(d->replays));
    bad |= set(o, "first_attempt", ctl_json_time(d->first_attempt_ms));
    bad |= set(o, "last_attempt", ctl_json_time(d->last_attempt_ms));
    bad |= set(o, "next_attempt",
               d->state == OBX_STATE_PENDING || d->state == OBX_STATE_INFLIGHT
                   ? ctl_json_time(d->next_attempt_ms)
                   : json_null());
    bad |= set(o, "deadline", ctl_json_time(d->deadline_ms));
    bad |= set(o, "done", ctl_json_time(d->done_ms));
    bad |= set(o, "last_status", d->last_status ? json_integer(d->last_status) : json_null());
    bad |= set(o, "last_error", ctl_json_str(d->last_error));
    bad |= set(o, "reason", ctl_json_str(d->reason));
    bad |= set(o, "first_attempt_ms", json_integer(d->first_attempt_ms));
    bad |= set(o, "last_attempt_ms", json_integer(d->last_attempt_ms));
    bad |= set(o, "next_attempt_ms", json_integer(d->next_attempt_ms));
    bad |= set(o, "deadline_ms", json_integer(d->deadline_ms));
    bad |= set(o, "done_ms", json_integer(d->done_ms));
    if (history) {
        json_t *h = json_array();
        bad |= set(o, "history", h);
        for (size_t i = 0; h && i < d->n_history; i++) {
            const obx_attempt *a = &d->history[i];
            json_t *ao = json_object();
            if (!ao || json_array_append_new(h, ao)) {
                bad = 1;
                break;
            }
            bad |= set(ao, "started", ctl_json_time(a->started_ms));
            bad |= set(ao, "started_ms", json_integer(a->started_ms));
            bad |= set(ao, "duration_ms", json_integer(a->duration_ms));
            bad |= set(ao, "status", a->status ? json_integer(a->status) : json_null());
            bad |= set(ao, "error", ctl_json_str(a->error));
            if (a->n_headers || a->body)
                bad |= set(ao, "response", response_json(a));
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
