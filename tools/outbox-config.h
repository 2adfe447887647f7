/*
 * tools/outbox-config.h - outboxd's YAML configuration (README "Configuration"), read with
 * libyaml.
 * (Not named config.h: that name is the generated build header, which the tools sources include
 * as "config.h"; a tools/config.h would shadow it.)
 *
 * Sections: `outbox:` (the store), `ingest:` (the HTTP listener), `admin:` (the admin API
 * and console listener), Flipt's `audit:` block as
 * Flipt accepts it (unknown keys ignored, Flipt's validation messages), and the extended
 * `sinks:` list. Flipt's `audit.sinks.webhook` becomes a sink named "webhook" (URL mode) or,
 * with templates, sinks "template-1", "template-2", ... Sinks from `sinks:` follow, in file
 * order. Durations use Go's time.ParseDuration (a YAML integer is nanoseconds, as in Flipt);
 * sizes use dlv_size_parse.
 *
 * Environment: `${NAME}` in any value is expanded by the YAML reader (config-yaml.h); an
 * unset variable is an error naming the key path and NAME. Secrets: `signing_secret:
 * ${NAME}` (set but empty: an error); `signing_secret_file: PATH` reads the file
 * (one trailing newline / CRLF trimmed), which must be a regular file (a FIFO or device is
 * refused without blocking). Secret values never appear in error messages.
 *
 * Errors are one line: "<file>:<line>: <key path>: <what>", e.g.
 *   config.yaml:12: sinks[1].timeout: time: unknown unit "d" in duration "1d"
 * Unknown keys under `outbox:`, `ingest:` and `sinks:` entries are errors naming the key.
 * YAML nested deeper than CY_MAX_DEPTH (64) lists/mappings is refused while reading.
 *
 * Every rule the daemon applies to its configuration at start is applied by the loader
 * (sink names, URLs, headers, templates, signing secrets, the sink count) or by
 * outbox_config_check (rules that depend on how the daemon is started), so --check-config
 * and a start refuse the same files. The schema (keys, types, bounds, one-line docs) is the
 * table in outbox-config.c; outbox_config_print_keys prints it.
 */
#ifndef OUTBOX_TOOLS_OUTBOX_CONFIG_H
#define OUTBOX_TOOLS_OUTBOX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "delivery/filter.h"
#include "delivery/sink.h"
#include "outbox/outbox.h"

/* Most sinks a configuration may have (the ingest router's limit, OIN_MAX_ROUTES). */
#define OUTBOX_CONFIG_MAX_SINKS 64

/* Store durability (same values as obx_durability). */
enum { OUTBOX_CONFIG_DURABILITY_FULL = 0, OUTBOX_CONFIG_DURABILITY_NOMETASYNC = 1 };

/* Default of a `sinks:` entry's max_backoff_duration (the audit block's webhook keeps
 * Flipt's 15 s). */
#define OUTBOX_CONFIG_SINK_MAX_BACKOFF_MS (INT64_C(24) * 3600 * 1000)

typedef struct outbox_config_store {
    char *path;           /* owned; default "./outbox-data" */
    uint64_t max_size;    /* bytes; default 1 GiB */
    int64_t retention_ms; /* default 24 h */
    int durability;       /* OUTBOX_CONFIG_DURABILITY_*; default FULL */
    int prefill;          /* zero-fill data.mdb ahead of its last page; default 1 */
    /* Cluster mode: outbox.backend and outbox.postgres.* */
    int backend;         /* obx_backend; default OBX_BACKEND_LMDB */
    char *pg_dsn;        /* owned: postgres.dsn (required with backend: postgres) */
    char *pg_password;   /* owned secret: postgres.password (${VAR}) or password_file */
    char *pg_schema;     /* owned: postgres.schema; NULL = "outbox" */
    unsigned pg_pool;    /* postgres.pool; 0 = the store's default (8) */
    int pg_allow_async;  /* postgres.allow_async_commit; default 0 */
    int64_t pg_lease_ms; /* postgres.lease: claim lease; 0 = the store's default (60s) */
} outbox_config_store;

/* Copy the store settings that select and reach the backend into o (borrowed pointers:
 * valid while the config is). One place for outboxd and outboxctl. */
void outbox_config_store_options(const outbox_config_store *s, obx_options *o);

typedef struct outbox_config_ingest {
    char *listen;      /* owned; default "127.0.0.1:8080" */
    uint64_t max_body; /* bytes; default 1 MiB */
    char **tokens;     /* owned array of owned strings: accepted bearer tokens */
    size_t n_tokens;
    char *signing_secret;            /* owned or NULL (empty = NULL): require a valid
                                        X-Flipt-Webhook-Signature on POST /v1/events */
    unsigned max_connections;        /* default 1024 */
    unsigned max_connections_per_ip; /* default 256; 0 = no limit */
    int64_t idle_timeout_ms;         /* idle connection timeout; default 30 s (whole seconds
                                        are used by libmicrohttpd) */
    unsigned pool_threads;           /* 0 = a thread per connection; default 0 */
    int64_t header_timeout_ms;       /* a request's headers within this of its first byte;
                                        0 = the ingest default (10 s) */
    int64_t body_timeout_ms;         /* its body within this of its headers; 0 = the ingest
                                        default (60 s) */
    int64_t idempotency_window_ms;   /* how long an Idempotency-Key is remembered; 0 = the
                                        ingest default (24 h) */
} outbox_config_ingest;

/* `admin:` - outboxd's admin API and web console (outboxd-admin.h). */
typedef struct outbox_config_admin {
    char *listen;  /* owned; NULL = no admin listener (the default) */
    char **tokens; /* owned array of owned strings: read-write bearer tokens */
    size_t n_tokens;
    char **read_only_tokens; /* owned: tokens that may read but not replay or purge */
    size_t n_read_only_tokens;
} outbox_config_admin;

/* Flipt's audit block, kept for reporting (its sink is converted into sinks[]). */
typedef struct outbox_config_audit {
    dlv_filter *events;             /* owned; audit.events, default "*:*" */
    int buffer_capacity;            /* default 2 (validated 2..10 as Flipt; unused by outbox) */
    int64_t buffer_flush_period_ns; /* default 2m (validated 2m..5m; unused by outbox) */
    int webhook_enabled;            /* audit.sinks.webhook.enabled */
} outbox_config_audit;

typedef struct outbox_config {
    char *file; /* owned: the path it was loaded from */
    outbox_config_store outbox;
    outbox_config_ingest ingest;
    outbox_config_audit audit;
    outbox_config_admin admin;
    dlv_sink_config *sinks; /* owned array of n_sinks, names unique */
    size_t n_sinks;
} outbox_config;

/* Fill c with the defaults above (no sinks). Strings are allocated: free with
 * outbox_config_free's logic via outbox_config_clear. 0, or -1 when out of memory. */
int outbox_config_defaults(outbox_config *c);

/*
 * Load and validate a config file.
 * @param[in]  path  file to read (copied into (*out)->file).
 * @param[out] out   a new config, freed with outbox_config_free(); untouched on failure.
 * @param[out] err   on failure, "<file>:<line>: <key path>: <reason>" (no secrets).
 * @return 0, or -1 on any error (I/O, YAML syntax, validation, out of memory).
 */
int outbox_config_load(const char *path, outbox_config **out, char *err, size_t errlen);

/* Same, from a buffer; `name` is used in messages in place of the file name. */
int outbox_config_load_buffer(const char *name, const char *yaml, size_t len, outbox_config **out,
                              char *err, size_t errlen);

/* outbox_config_check flags. */
#define OUTBOX_CONFIG_REQUIRE_SINKS 1u /* at least one sink (outboxd without --allow-no-sinks) */

/*
 * The rules that depend on how the configuration is used, after a successful load (the
 * daemon and --check-config call it with the same flags).
 * @param[out] err  "<file>: <key>: <what>".
 * @return 0, or -1.
 */
int outbox_config_check(const outbox_config *c, unsigned flags, char *err, size_t errlen);

/* Print every key of the schema with its one-line description ("  sinks[].url  ..."). */
void outbox_config_print_keys(FILE *out);

/*
 * Print c as YAML (the same keys and spellings a file uses, driven by the schema table) with
 * every secret shown as "<redacted>": signing secrets, tokens, the database password, a
 * dsn with a password, a URL's password and query, and the values of headers whose names
 * look like credentials (auth, token, secret, key, cookie, password, signature, session).
 * Flipt's audit block appears as the sinks made from it. 0, or -1 on a write error.
 */
int outbox_config_print(const outbox_config *c, FILE *out);

/* Free every owned member of c (not c itself); c may then be reused. NULL is fine. */
void outbox_config_clear(outbox_config *c);

/* outbox_config_clear and free(c). NULL is fine. */
void outbox_config_free(outbox_config *c);

/* Index of the sink called name, or -1. */
long outbox_config_find_sink(const outbox_config *c, const char *name);

#endif
