/*
 * outboxd.c - main() of the outbox daemon: command line, configuration (validated before
 * anything touches the store), logging set-up, then the lifecycle in outboxd-run.c.
 *
 * Exit status: 0 clean stop (or --help, --version, a valid --check-config), 1 runtime
 * error (store, listener, engine), 2 usage or configuration error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox-config.h"
#include "outboxd-args.h"
#include "outboxd-ingest.h"
#include "outboxd-log.h"
#include "outboxd-run.h"

/* Grace period for in-flight deliveries at shutdown (DESIGN: config or 10 s). */
#define DEFAULT_GRACE_MS 10000

/* Check what the config loader cannot know: the --listen override's syntax. */
static int check_listen(const char *listen, const char *source)
{
    char host[256], err[256];
    uint16_t port;
    if (oin_parse_listen(listen, host, sizeof host, &port, err, sizeof err) == 0)
        return 0;
    olog(OLOG_ERROR, "invalid configuration", OLOG_S("key", source), OLOG_S("error", err));
    return -1;
}

/* A deadline in ms for the ingest options: 0 (unset) stays 0, capped at about 49 days. */
static unsigned clamp_ms(int64_t ms)
{
    return ms <= 0 ? 0 : ms > (int64_t)UINT32_MAX ? UINT32_MAX : (unsigned)ms;
}

int main(int argc, char **argv)
{
    od_args a;
    int rc = od_args_parse(argc, argv, &a, stdout, stderr);
    if (rc >= 0)
        return rc;
    olog_setup(a.log_level, a.log_format);
    od_signals_block(); /* before any thread exists */

    outbox_config *cfg = NULL;
    char err[1024];
    if (outbox_config_load(a.config, &cfg, err, sizeof err) != 0) {
        olog(OLOG_ERROR, "invalid configuration", OLOG_S("error", err));
        return 2;
    }
    rc = 2;
    const char *listen = a.listen ? a.listen : cfg->ingest.listen;
    if (check_listen(listen, a.listen ? "--listen" : "ingest.listen") != 0)
        goto out;
    if (cfg->n_sinks == 0)
        olog(OLOG_WARN, "no sinks configured: events are acknowledged but not stored",
             OLOG_S("config", a.config));
    if (cfg->n_sinks > OIN_MAX_ROUTES) {
        olog(OLOG_ERROR, "invalid configuration", OLOG_S("key", "sinks"),
             OLOG_S("error", "more than 64 sinks"));
        goto out;
    }
    if (a.check_config) {
        printf("%s: configuration OK (%zu sink%s)\n", a.config, cfg->n_sinks,
               cfg->n_sinks == 1 ? "" : "s");
        rc = 0;
        goto out;
    }
    const char *secrets[1] = {cfg->ingest.signing_secret};
    int64_t idle_s = (cfg->ingest.idle_timeout_ms + 999) / 1000;
    od_config c = {
        .data_dir = a.data_dir ? a.data_dir : cfg->outbox.path,
        .max_size = cfg->outbox.max_size,
        .durability = cfg->outbox.durability,
        .prefill = cfg->outbox.prefill,
        .retention_ms = cfg->outbox.retention_ms,
        .listen = listen,
        .max_body = (size_t)cfg->ingest.max_body,
        .tokens = (const char *const *)cfg->ingest.tokens,
        .n_tokens = cfg->ingest.n_tokens,
        .ingest_secrets = secrets,
        .n_ingest_secrets = cfg->ingest.signing_secret ? 1 : 0,
        .max_connections = cfg->ingest.max_connections,
        .per_ip_limit = cfg->ingest.max_connections_per_ip,
        .timeout_s = idle_s > 0 ? (unsigned)idle_s : 1,
        .header_timeout_ms = clamp_ms(cfg->ingest.header_timeout_ms),
        .body_timeout_ms = clamp_ms(cfg->ingest.body_timeout_ms),
        .pool_threads = cfg->ingest.pool_threads,
        .idem_window_ms = cfg->ingest.idempotency_window_ms,
        .grace_ms = DEFAULT_GRACE_MS,
        .sinks = cfg->sinks,
        .n_sinks = cfg->n_sinks,
    };
    rc = od_run(&c);
out:
    outbox_config_free(cfg);
    return rc;
}
