/*
 * outboxd-args.h - outboxd's command line.
 *
 *   outboxd [--config FILE] [--listen HOST:PORT] [--data-dir DIR]
 *           [--log-format json|text] [--log-level debug|info|warn|error] [--check-config]
 *           [--print-config] [--allow-no-sinks]
 *   outboxd --help | --version | --config-keys
 *
 * OUTBOXD_CONFIG, OUTBOXD_LISTEN, OUTBOXD_DATA_DIR, OUTBOXD_LOG_FORMAT and OUTBOXD_LOG_LEVEL
 * stand for the flags that are absent (flags win); a bad value is a usage error naming the
 * variable. --listen / OUTBOXD_LISTEN are checked with the one listen-address parser
 * (listen-addr.h).
 */
#ifndef OUTBOXD_ARGS_H
#define OUTBOXD_ARGS_H

#include <stdio.h>

#include "outboxd-log.h"

typedef struct od_args {
    const char *config;   /* points into argv or the environment */
    const char *listen;   /* NULL = from config; points into argv or the environment */
    const char *data_dir; /* NULL = from config; likewise */
    olog_format log_format;
    olog_level log_level;
    int check_config;
    int print_config;   /* print the effective configuration, secrets redacted */
    int allow_no_sinks; /* start without any sink (otherwise a config error) */
} od_args;

/*
 * Parse argv. Returns -1 to go on, or an exit code: 0 after --help/--version/--config-keys
 * (printed to `out`), 2 on a usage error (message to `err`).
 */
int od_args_parse(int argc, char **argv, od_args *a, FILE *out, FILE *err);

#endif
