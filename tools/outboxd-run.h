/*
 * outboxd-run.h - the daemon's lifecycle, given a validated configuration.
 *
 * od_run() opens the store as its owner, registers the sinks, starts the delivery engine,
 * the retention sweeper, the HTTP listener and the admin listener, logs "started", then waits for
 * SIGTERM or SIGINT. Shutdown: stop accepting, answer requests already waiting on the store, stop
 * the engine within the grace period (in-flight deliveries finish or are released with
 * their backoff state intact), stop the sweeper, close the store (pending commits are
 * written), log "stopped".
 *
 * Everything in od_config is borrowed for the duration of the call.
 */
#ifndef OUTBOXD_RUN_H
#define OUTBOXD_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/sink.h"

typedef struct od_config {
    const char *data_dir;      /* outbox.path (after --data-dir) */
    const obx_options *store;  /* backend choice and its settings (outbox.backend,
                                  outbox.postgres.*); NULL = LMDB defaults */
    uint64_t max_size;         /* outbox.max_size, bytes */
    int durability;            /* outbox.durability: obx_durability value */
    int prefill;               /* outbox.prefill */
    int64_t retention_ms;      /* outbox.retention */
    int64_t idem_window_ms;    /* ingest.idempotency_window */
    const char *listen;        /* ingest.listen (after --listen) */
    size_t max_body;           /* ingest.max_body */
    const char *const *tokens; /* ingest.tokens */
    size_t n_tokens;
    const char *const *ingest_secrets; /* ingest.signing_secret(s): verify Flipt's header */
    size_t n_ingest_secrets;
    unsigned max_connections; /* HTTP connection cap */
    unsigned per_ip_limit;    /* HTTP connections per client address (0 = no cap) */
    unsigned timeout_s;       /* idle HTTP connection timeout */
    unsigned pool_threads;    /* 0 = thread per connection; else epoll threads */
    unsigned grace_ms;        /* shutdown grace for in-flight deliveries */

    /* Request deadlines, ms (0 = the ingest defaults). */
    unsigned header_timeout_ms; /* headers complete after their first byte */
    unsigned body_timeout_ms;   /* body complete after the headers */

    /* Validated by the config loader (outbox-config.h): at most OUTBOX_CONFIG_MAX_SINKS
     * (= OIN_MAX_ROUTES), every rule the engine applies already applied. */
    const dlv_sink_config *sinks;
    size_t n_sinks;

    /* The admin API and console (outboxd-admin.h); NULL = no admin listener. */
    const char *admin_listen;
    const char *const *admin_tokens; /* read-write */
    size_t n_admin_tokens;
    const char *const *admin_ro_tokens; /* read-only */
    size_t n_admin_ro_tokens;
} od_config;

/* Run until SIGTERM/SIGINT. Returns the process exit code: 0 clean stop, 1 runtime error. */
int od_run(const od_config *c);

/*
 * Block SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every thread it
 * creates afterwards) and ignore SIGPIPE; od_run() waits for them with sigtimedwait.
 * Call after the configuration has loaded (until then SIGTERM/SIGINT simply end the
 * process) and before any thread exists.
 */
void od_signals_block(void);

#endif
