/*
 * outboxd-run.c - the daemon's lifecycle: store, sinks, engine, sweeper, HTTP, signals,
 * graceful shutdown; plus the glue the HTTP module calls back into (routing by each
 * sink's event filter, Flipt signature verification, the /metrics page).
 */
#include "outboxd-run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "delivery/engine.h"
#include "delivery/filter.h"
#include "delivery/sign.h"
#include "outbox-last-check.h"
#include "outbox/outbox.h"
#include "listen-addr.h"
#include "outboxd-admin.h"
#include "outboxd-attemptlog.h"
#include "outboxd-ingest.h"
#include "outboxd-log.h"
#include "outboxd-metrics.h"
#include "outboxd-notify.h"
#include "outboxd-sweeper.h"

/* Retention sweeper: every 5 s, 1000 deliveries per transaction, 100k per tick at most. */
#define SWEEP_INTERVAL_MS  5000
#define SWEEP_BATCH        1000
#define SWEEP_MAX_PER_TICK 100000
/* How long shutdown waits for requests already waiting on the store. */
#define INGEST_DRAIN_MS 10000
/* At most one failed-attempt line per sink per second. */
#define ATTEMPT_LOG_INTERVAL_MS 1000

typedef struct od_state {
    const od_config *c;
    obx_store *store;
    uint32_t *ids; /* store sink id per configured sink */
    dlv_engine *engine;
    omet *metrics;
    osw_sweeper *sweeper;
    oin_server *http;
    oadm_server *admin;                          /* NULL when not configured */
    uint64_t *dead_seen;                         /* per sink: dead letters already logged */
    uint64_t (*health_seen)[DLV_TURN_KINDS + 1]; /* per sink: transitions logged (log_health) */
    uint64_t claim_errors_seen, commit_errors_seen;
    oal *attempt_log; /* rate-limited failed-attempt lines */
} od_state;

void od_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- callbacks from the HTTP module ---- */

static size_t route(void *ud, const char *type, const char *action, uint32_t *sinks)
{
    const od_state *st = ud;
    size_t k = 0;
    for (size_t i = 0; i < st->c->n_sinks && k < OIN_MAX_ROUTES; i++)
        if (dlv_filter_match(st->c->sinks[i].filter, type, action))
            sinks[k++] = st->ids[i];
    return k;
}

static int verify(void *ud, const char *body, size_t len, const char *header)
{
    const od_state *st = ud;
    return dlv_verify_flipt(st->c->ingest_secrets, st->c->n_ingest_secrets, body, len, header) ==
           DLV_OK;
}

static void sink_label(obuf *b, const char *name)
{
    obuf_printf(b, "sink=\"");
    obuf_label(b, name);
    obuf_printf(b, "\"");
}

static void render_engine(const dlv_metrics *m, obuf *b)
{
    static const char *const outcomes[] = {"delivered", "dead"};
    obuf_printf(b, "# HELP outbox_deliveries_total Deliveries finished since start, by sink and "
                   "final outcome (retries and releases are families of their own).\n"
                   "# TYPE outbox_deliveries_total counter\n");
    for (size_t i = 0; i < m->n_sinks; i++) {
        const dlv_sink_metrics *s = &m->sinks[i];
        const uint64_t v[] = {s->delivered, s->dead};
        for (size_t o = 0; o < 2; o++) {
            obuf_printf(b, "outbox_deliveries_total{");
            sink_label(b, s->name);
            obuf_printf(b, ",outcome=\"%s\"} %llu\n", outcomes[o], (unsigned long long)v[o]);
        }
    }
    obuf_printf(b, "# HELP outbox_delivery_attempts_total HTTP attempts finished, by sink and "
                   "class (response status class, or timeout, connect, tls, dns, other).\n"
                   "# TYPE outbox_delivery_attempts_total counter\n");
    for (size_t i = 0; i < m->n_sinks; i++)
        for (int k = 0; k < DLV_CLASS_COUNT; k++) {
            obuf_printf(b, "outbox_delivery_attempts_total{");
            sink_label(b, m->sinks[i].name);
            obuf_printf(b, ",class=\"%s\"} %llu\n", dlv_attempt_class_name(k),
                        (unsigned long long)m->sinks[i].attempts_by_class[k]);
        }
    struct {
        const char *name, *type, *help;
        size_t off;
    } fam[] = {
        {"outbox_delivery_retries_total", "counter",
         "Attempts that failed and scheduled a retry, by sink.",
         offsetof(dlv_sink_metrics, retried)},
        {"outbox_delivery_released_total", "counter",
         "Claimed deliveries put back unattempted (shutdown), by sink.",
         offsetof(dlv_sink_metrics, released)},
        {"outbox_delivery_render_errors_total", "counter",
         "Template render failures (dead letters), by sink.",
         offsetof(dlv_sink_metrics, render_errors)},
        {"outbox_delivery_in_flight", "gauge", "Requests running now, by sink.",
         offsetof(dlv_sink_metrics, in_flight)},
        {"outbox_delivery_queued", "gauge", "Claimed deliveries waiting for a slot, by sink.",
         offsetof(dlv_sink_metrics, queued)},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                    fam[f].type);
        for (size_t i = 0; i < m->n_sinks; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&m->sinks[i] + fam[f].off, sizeof v);
            obuf_printf(b, "%s{", fam[f].name);
            sink_label(b, m->sinks[i].name);
            obuf_printf(b, "} %llu\n", (unsigned long long)v);
        }
    }
    omet_render_sink_health(b, m);
    const struct {
        const char *name, *help;
        const double *bounds;
        size_t off;
    } hist[] = {
        {"outbox_attempt_duration_seconds", "Duration of each HTTP attempt, by sink.",
         dlv_attempt_duration_bounds, offsetof(dlv_sink_metrics, attempt_duration)},
        {"outbox_delivery_latency_seconds", "From event received to delivered, by sink.",
         dlv_latency_bounds, offsetof(dlv_sink_metrics, latency)},
    };
    for (size_t h = 0; h < 2; h++) {
        obuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", hist[h].name, hist[h].help,
                    hist[h].name);
        for (size_t i = 0; i < m->n_sinks; i++) {
            const dlv_histogram *hg =
                (const dlv_histogram *)((const char *)&m->sinks[i] + hist[h].off);
            obuf lb = {.limit = 512};
            sink_label(&lb, m->sinks[i].name);
            omet_render_histogram(b, hist[h].name, lb.p ? lb.p : "", hist[h].bounds, hg->buckets,
                                  DLV_HIST_BUCKETS, hg->sum);
            obuf_free(&lb);
        }
    }
    obuf_printf(b,
                "# HELP outbox_engine_commits_total Result batches recorded in the store.\n"
                "# TYPE outbox_engine_commits_total counter\noutbox_engine_commits_total %llu\n"
                "# HELP outbox_engine_commit_errors_total Result batches the store refused.\n"
                "# TYPE outbox_engine_commit_errors_total counter\n"
                "outbox_engine_commit_errors_total %llu\n"
                "# HELP outbox_engine_claim_errors_total Failed claims of due deliveries.\n"
                "# TYPE outbox_engine_claim_errors_total counter\n"
                "outbox_engine_claim_errors_total %llu\n",
                (unsigned long long)m->commits, (unsigned long long)m->commit_errors,
                (unsigned long long)m->claim_errors);
}

static void render(void *ud, obuf *b)
{
    od_state *st = ud;
    omet_render_process(b);
    omet_render_ingest(st->metrics, b);
    obx_stats *stats = NULL;
    if (obx_stats_get(st->store, &stats, NULL) != OBX_OK)
        stats = NULL;
    omet_render_store(stats, obx_now_ms(), b);
    obx_stats_free(stats);
    omet_render_pool(st->store, b);
    dlv_metrics m;
    if (st->engine && dlv_engine_metrics(st->engine, &m) == 0) {
        render_engine(&m, b);
        dlv_metrics_free(&m);
    }
}

/* ---- start-up helpers ---- */

/* "scheme://host[:port]" of a URL: no userinfo, path or query (which may hold secrets). */
static void url_origin(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    size_t hl = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hl);
    if (at) {
        hl -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(out, cap, "%.*s%.*s", p ? (int)(p + 3 - url) : 0, url, (int)hl, host);
}

/*
 * One log line per sink health transition since the last check (seen[]: per DLV_TURN_*
 * kind, what was logged; [DLV_TURN_KINDS]: 1 after the first check), in the order they
 * happened: the current state's last. At the first check, a sink that was already down or
 * paused when the daemon started is named once.
 */
static void log_health(const dlv_sink_metrics *sm, uint64_t seen[DLV_TURN_KINDS + 1])
{
    static const char *const msg[] = {"sink down", "sink up", "sink paused", "sink resumed"};
    if (!seen[DLV_TURN_KINDS]) {
        seen[DLV_TURN_KINDS] = 1;
        int down = !sm->up && !sm->turns[DLV_TURN_DOWN]; /* as stored, not since */
        int paused = sm->paused && !sm->turns[DLV_TURN_PAUSED];
        if (down || paused)
            olog(OLOG_WARN, paused ? "sink paused" : "sink down", OLOG_S("sink", sm->name),
                 OLOG_S("why", sm->state_why), OLOG_S("since", "before this start"));
    }
    /* a pair of one kind each way: the one matching the current state came last */
    int order[] = {sm->up ? DLV_TURN_DOWN : DLV_TURN_UP, sm->up ? DLV_TURN_UP : DLV_TURN_DOWN,
                   sm->paused ? DLV_TURN_RESUMED : DLV_TURN_PAUSED,
                   sm->paused ? DLV_TURN_PAUSED : DLV_TURN_RESUMED};
    for (int k = 0; k < DLV_TURN_KINDS; k++) {
        int t = order[k];
        if (sm->turns[t] == seen[t])
            continue;
        olog(t == DLV_TURN_DOWN || t == DLV_TURN_PAUSED ? OLOG_WARN : OLOG_INFO, msg[t],
             OLOG_S("sink", sm->name), OLOG_S("why", sm->turn_why[t]),
             OLOG_I("times", (long long)(sm->turns[t] - seen[t])));
        seen[t] = sm->turns[t];
    }
}

/* Log (warn) dead letters and engine store errors that appeared since the last check. */
static void watch_engine(od_state *st)
{
    dlv_metrics m;
    if (!st->engine || dlv_engine_metrics(st->engine, &m) != 0)
        return;
    for (size_t i = 0; i < m.n_sinks && i < st->c->n_sinks; i++) {
        uint64_t dead = m.sinks[i].dead;
        if (dead > st->dead_seen[i])
            olog(OLOG_WARN, "dead letters", OLOG_S("sink", m.sinks[i].name),
                 OLOG_I("new", (long long)(dead - st->dead_seen[i])),
                 OLOG_I("total_since_start", (long long)dead),
                 OLOG_S("hint", "outboxctl list --state dead; outboxctl replay"));
        st->dead_seen[i] = dead;
    }
    for (size_t i = 0; i < m.n_sinks && i < st->c->n_sinks; i++)
        log_health(&m.sinks[i], st->health_seen[i]);
    if (m.claim_errors > st->claim_errors_seen || m.commit_errors > st->commit_errors_seen)
        olog(OLOG_ERROR, "delivery engine store error", OLOG_S("error", m.last_error),
             OLOG_I("claim_errors", (long long)m.claim_errors),
             OLOG_I("commit_errors", (long long)m.commit_errors));
    st->claim_errors_seen = m.claim_errors;
    st->commit_errors_seen = m.commit_errors;
    dlv_metrics_free(&m);
}

static int open_store(od_state *st)
{
    obx_options o;
    obx_options_init(&o);
    if (st->c->store)
        o = *st->c->store;
    o.flags = OBX_OPEN_OWNER;
    o.max_size = st->c->max_size;
    o.durability = (obx_durability)st->c->durability;
    o.prefill = st->c->prefill;
    obx_error err = {0};
    int rc = obx_open(st->c->data_dir, &o, &st->store, &err);
    if (rc != OBX_OK) {
        olog(OLOG_ERROR, "cannot open the store", OLOG_S("path", st->c->data_dir),
             OLOG_S("error", err.msg), OLOG_S("code", obx_strerror(rc)));
        return -1;
    }
    olc_result lc; /* what the last `outboxctl check` found */
    if (olc_read(st->c->data_dir, &lc, err.msg, sizeof err.msg) == 1 && lc.problems)
        olog(OLOG_WARN,
             "the last outboxctl check found problems: run it again, and restore from a backup if "
             "they remain",
             OLOG_I("problems", (long long)lc.problems),
             OLOG_S("kind", lc.structural ? "structural corruption" : "records"));
    for (size_t i = 0; i < st->c->n_sinks; i++) {
        rc = obx_sink_id(st->store, st->c->sinks[i].name, &st->ids[i], &err);
        if (rc != OBX_OK) {
            olog(OLOG_ERROR, "cannot register sink", OLOG_S("sink", st->c->sinks[i].name),
                 OLOG_S("error", err.msg));
            return -1;
        }
    }
    return 0;
}

static int start_engine(od_state *st)
{
    dlv_error err;
    dlv_engine_options eo;
    dlv_engine_options_init(&eo);
    eo.on_failed_attempt = oal_failed;
    eo.on_failed_attempt_ud = st->attempt_log;
    if (dlv_engine_new(st->store, st->c->sinks, st->c->n_sinks, &eo, &st->engine, &err) != DLV_OK ||
        dlv_engine_start(st->engine, &err) != DLV_OK) {
        olog(OLOG_ERROR, "cannot start the delivery engine", OLOG_S("error", err.msg));
        return -1;
    }
    const char *names[64];
    size_t n = dlv_engine_insecure_sinks(st->engine, names, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        olog(OLOG_WARN, "TLS verification disabled for sink (tls insecure)",
             OLOG_S("sink", names[i]));
    return 0;
}

static int start_http(od_state *st, char *bound, size_t cap)
{
    oin_config ic = {
        .listen = st->c->listen,
        .max_body = st->c->max_body,
        .tokens = st->c->tokens,
        .n_tokens = st->c->n_tokens,
        .verify = st->c->n_ingest_secrets ? verify : NULL,
        .verify_ud = st,
        .max_connections = st->c->max_connections,
        .per_ip_limit = st->c->per_ip_limit,
        .timeout_s = st->c->timeout_s,
        .header_timeout_ms = st->c->header_timeout_ms,
        .body_timeout_ms = st->c->body_timeout_ms,
        .pool_threads = st->c->pool_threads,
        .idem_window_ms = st->c->idem_window_ms,
        .store = st->store,
        .route = route,
        .route_ud = st,
        .render_metrics = render,
        .metrics_ud = st,
        .metrics = st->metrics,
    };
    char err[512];
    st->http = oin_start(&ic, err, sizeof err);
    if (!st->http) {
        olog(OLOG_ERROR, "cannot start the HTTP listener", OLOG_S("error", err));
        return -1;
    }
    char host[256];
    uint16_t port;
    if (listen_addr_parse(st->c->listen, host, sizeof host, &port, err, sizeof err) == 0)
        snprintf(bound, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)oin_port(st->http));
    else
        snprintf(bound, cap, "%s", st->c->listen);
    return 0;
}

/* The admin listener, when configured; its bound address into bound ("off" without). */
static int start_admin(od_state *st, char *bound, size_t cap)
{
    snprintf(bound, cap, "off");
    if (!st->c->admin_listen)
        return 0;
    const char *names[OIN_MAX_ROUTES];
    for (size_t i = 0; i < st->c->n_sinks && i < OIN_MAX_ROUTES; i++)
        names[i] = st->c->sinks[i].name;
    oadm_config ac = {
        .listen = st->c->admin_listen,
        .tokens = st->c->admin_tokens,
        .n_tokens = st->c->n_admin_tokens,
        .ro_tokens = st->c->admin_ro_tokens,
        .n_ro_tokens = st->c->n_admin_ro_tokens,
        .sink_names = names,
        .n_sink_names = st->c->n_sinks < OIN_MAX_ROUTES ? st->c->n_sinks : OIN_MAX_ROUTES,
        .store = st->store,
    };
    char err[512], host[256];
    uint16_t port;
    st->admin = oadm_start(&ac, err, sizeof err);
    if (!st->admin) {
        olog(OLOG_ERROR, "cannot start the admin listener", OLOG_S("error", err));
        return -1;
    }
    if (listen_addr_parse(st->c->admin_listen, host, sizeof host, &port, err, sizeof err) == 0)
        snprintf(bound, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)oadm_port(st->admin));
    return 0;
}

static void log_started(const od_state *st, const char *bound, const char *admin)
{
    char names[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < st->c->n_sinks; i++) {
        const dlv_sink_config *s = &st->c->sinks[i];
        int n = snprintf(names + len, sizeof names - len, "%s%s", i ? "," : "", s->name);
        if (n > 0 && (size_t)n < sizeof names - len)
            len += (size_t)n;
        char origin[256];
        url_origin(s->url ? s->url : "", origin, sizeof origin);
        olog(OLOG_INFO, "sink", OLOG_S("sink", s->name), OLOG_I("id", st->ids[i]),
             OLOG_S("target", origin), OLOG_S("mode", s->body ? "template" : "url"),
             OLOG_S("signature", s->n_secrets ? dlv_signature_name(s->signature) : "none"),
             OLOG_I("filter_pairs", (long long)dlv_filter_count(s->filter)),
             OLOG_I("max_backoff_ms", (long long)s->backoff.max_elapsed_ms));
    }
    olog(OLOG_INFO, "started", OLOG_S("version", OUTBOX_VERSION), OLOG_S("listen", bound),
         OLOG_S("store", st->c->data_dir), OLOG_I("max_size", (long long)st->c->max_size),
         OLOG_I("sinks", (long long)st->c->n_sinks), OLOG_S("sink_names", names),
         OLOG_S("auth", st->c->n_tokens && st->c->n_ingest_secrets ? "token+signature"
                        : st->c->n_tokens                          ? "token"
                        : st->c->n_ingest_secrets                  ? "signature"
                                                                   : "none"),
         OLOG_S("admin", admin),
         OLOG_S("admin_auth", !st->admin ? "off"
                              : st->c->n_admin_tokens + st->c->n_admin_ro_tokens
                                  ? "token"
                                  : "none: no admin tokens, loopback only"),
         OLOG_I("pid", (long long)getpid()));
}

/* Wait for SIGTERM/SIGINT, watching the engine once a second. Returns the signal. */
static int wait_for_stop(od_state *st)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int watchdog = ond_watchdog_usec() > 0; /* WatchdogSec= (>= 2s): pinged every second */
    for (;;) {
        if (watchdog)
            ond_notify("WATCHDOG=1");
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP)
            olog0(OLOG_WARN, "SIGHUP ignored: configuration reload is not supported; restart "
                             "the daemon (pending deliveries resume)");
        watch_engine(st);
        oal_flush(st->attempt_log);
    }
}

int od_run(const od_config *c)
{
    od_state st = {.c = c};
    int rc = 1;
    char bound[300], admin[300];
    st.ids = calloc(c->n_sinks ? c->n_sinks : 1, sizeof *st.ids);
    st.dead_seen = calloc(c->n_sinks ? c->n_sinks : 1, sizeof *st.dead_seen);
    st.health_seen = calloc(c->n_sinks ? c->n_sinks : 1, sizeof *st.health_seen);
    st.metrics = omet_new();
    st.attempt_log = oal_new(c->n_sinks, ATTEMPT_LOG_INTERVAL_MS);
    if (!st.ids || !st.dead_seen || !st.health_seen || !st.metrics || !st.attempt_log) {
        olog0(OLOG_ERROR, "out of memory");
        goto out;
    }
    if (open_store(&st) != 0 || start_engine(&st) != 0)
        goto out;
    char err[256];
    st.sweeper = osw_start(st.store, c->retention_ms, SWEEP_INTERVAL_MS, SWEEP_BATCH,
                           SWEEP_MAX_PER_TICK, err, sizeof err);
    if (!st.sweeper) {
        olog(OLOG_ERROR, "cannot start the retention sweeper", OLOG_S("error", err));
        goto out;
    }
    if (start_http(&st, bound, sizeof bound) != 0 || start_admin(&st, admin, sizeof admin) != 0)
        goto out;
    log_started(&st, bound, admin);
    if (ond_notify("READY=1") != 0)
        olog(OLOG_WARN, "sd_notify failed", OLOG_S("socket", getenv("NOTIFY_SOCKET")),
             OLOG_S("error", strerror(errno)));

    int sig = wait_for_stop(&st);
    ond_notify("STOPPING=1");
    olog(OLOG_INFO, "stopping", OLOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
         OLOG_I("grace_ms", c->grace_ms));
    oin_stop(st.http, INGEST_DRAIN_MS); /* in-flight ingests answered, listener closed */
    st.http = NULL;
    oadm_stop(st.admin);
    st.admin = NULL;
    obx_shutdown(st.store);
    dlv_engine_stop(st.engine, c->grace_ms);
    watch_engine(&st);
    rc = 0;
out:
    oadm_stop(st.admin);
    oin_stop(st.http, 0);
    osw_stop(st.sweeper);
    dlv_engine_free(st.engine);
    obx_close(st.store);
    if (rc == 0)
        olog(OLOG_INFO, "stopped", OLOG_S("store", c->data_dir));
    omet_free(st.metrics);
    oal_free(st.attempt_log);
    free(st.ids);
    free(st.dead_seen);
    free(st.health_seen);
    return rc;
}
