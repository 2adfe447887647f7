/*
 * outboxd.c - main() of the outbox daemon: command line, configuration (validated before
 * anything touches the store), logging set-up, then the lifecycle in outboxd-run.c.
 *
 * Exit status: 0 clean stop (or --help, --version, a valid --check-config or
 * --print-config), 1 runtime
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

/* Grace period for in-flight deliveries at shutdown. */
#define DEFAULT_GRACE_MS 10000

_Static_assert(OUTBOX_CONFIG_MAX_SINKS == OIN_MAX_ROUTES,
               "the config's sink limit is the ingest router's");

/*
 * Every rule applied to the configuration before the daemon touches anything, for a start
 * and for --check-config alike: the loader's (keys, values, sinks, secrets, listen address)
 * and outbox_config_check's (a sink is required unless --allow-no-sinks). --listen was
 * checked by od_args_parse with the same listen-address parser. 0, or -1 (logged).
 */
static int load_config(const od_args *a, outbox_config **out)
{
    char err[1024];
    outbox_config *cfg = NULL;
    if (outbox_config_load(a->config, &cfg, err, sizeof err) != 0 ||
        outbox_config_check(cfg, a->allow_no_sinks ? 0 : OUTBOX_CONFIG_REQUIRE_SINKS, err,
                            sizeof err) != 0) {
        olog(OLOG_ERROR, "invalid configuration", OLOG_S("error", err));
        outbox_config_free(cfg);
        return -1;
    }
    if (cfg->n_sinks == 0)
        olog(OLOG_WARN,
             "no sinks configured (--allow-no-sinks): events are acknowledged but "
             "not stored",
             OLOG_S("config", a->config));
    *out = cfg;
    return 0;
}

/* --listen / --data-dir (or their variables) replace the file's values, so everything after
 * this (the run, --print-config) reads one configuration. 0, or -1 when out of memory. */
static int apply_flags(const od_args *a, outbox_config *cfg)
{
    char *listen = a->listen ? strdup(a->listen) : NULL;
    char *dir = a->data_dir ? strdup(a->data_dir) : NULL;
    if ((a->listen && !listen) || (a->data_dir && !dir)) {
        free(listen);
        free(dir);
        return -1;
    }
    if (listen) {
        free(cfg->ingest.listen);
        cfg->ingest.listen = listen;
    }
    if (dir) {
        free(cfg->outbox.path);
        cfg->outbox.path = dir;
    }
    return 0;
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

    /* SIGTERM/SIGINT keep their default action while the config loads: nothing to clean up
     * yet, and a file that blocks must not make the daemon deaf to them. */
    outbox_config *cfg = NULL;
    if (load_config(&a, &cfg) != 0)
        return 2;
    if (apply_flags(&a, cfg) != 0) {
        olog(OLOG_ERROR, "out of memory", OLOG_S("config", a.config));
        outbox_config_free(cfg);
        return 1;
    }
    if (a.print_config) {
        rc = outbox_config_print(cfg, stdout) != 0 || fflush(stdout) != 0 ? 1 : 0;
        outbox_config_free(cfg);
        return rc;
    }
    if (a.check_config) {
        printf("%s: configuration OK (%zu sink%s)\n", a.config, cfg->n_sinks,
               cfg->n_sinks == 1 ? "" : "s");
        outbox_config_free(cfg);
        return 0;
    }
    od_signals_block(); /* before any thread exists */
    const char *secrets[1] = {cfg->ingest.signing_secret};
    int64_t idle_s = (cfg->ingest.idle_timeout_ms + 999) / 1000;
    obx_options store;
    obx_options_init(&store);
    outbox_config_store_options(&cfg->outbox, &store);
    od_config c = {
        .data_dir = cfg->outbox.path,
        .store = &store,
        .max_size = cfg->outbox.max_size,
        .durability = cfg->outbox.durability,
        .prefill = cfg->outbox.prefill,
        .retention_ms = cfg->outbox.retention_ms,
        .listen = cfg->ingest.listen,
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
        .admin_listen = cfg->admin.listen,
        .admin_tokens = (const char *const *)cfg->admin.tokens,
        .n_admin_tokens = cfg->admin.n_tokens,
        .admin_ro_tokens = (const char *const *)cfg->admin.read_only_tokens,
        .n_admin_ro_tokens = cfg->admin.n_read_only_tokens,
    };
    rc = od_run(&c);
    outbox_config_free(cfg);
    return rc;
}
