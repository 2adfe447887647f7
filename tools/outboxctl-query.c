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
        if (ctl_state_filter(arg, &f->state)) {
            ctl_usage_error(cmd, "unknown state \"%s\" (use " CTL_STATE_NAMES ")", arg);
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
