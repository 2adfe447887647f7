/*
 * outboxctl.h - what the modules of outboxctl (the operator's CLI) share: the exit codes,
 * the per-invocation context (which store, which config), opening the store, option
 * parsing helpers and the entry point of every command.
 *
 * Each command lives in its own outboxctl-<group>.c file and has the signature
 * `int ctl_cmd_x(ctl_ctx *c, int argc, char **argv)`: argv[0] is the command name, the
 * return value is the process exit code (CTL_EXIT_*). Commands print their results on
 * stdout and their errors (prefixed "outboxctl: ") on stderr; nothing else does.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_H
#define OUTBOX_TOOLS_OUTBOXCTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox/outbox.h"

/* Exit codes, as README's outboxctl section documents them. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_NOTFOUND = 3,
};

/* One invocation. Strings point into argv or into `owned` copies freed by ctl_ctx_free. */
typedef struct ctl_ctx {
    const char *config_path;  /* --config FILE, or NULL */
    const char *data_dir_arg; /* --data-dir DIR, or NULL */
    const char *env_dir;      /* $OUTBOX_DATA_DIR, or NULL */
    const char *data_dir;     /* resolved by ctl_config_resolve: --data-dir, else the
                                 config's outbox.path, else $OUTBOX_DATA_DIR; NULL = unset */
    void *config;             /* the loaded config (outboxctl-config.c), or NULL */
    uint64_t config_max_size; /* outbox.max_size from the config, 0 when unknown */
    int64_t now_ms;           /* one clock reading per invocation: ages agree */
} ctl_ctx;

/* Print "outboxctl: <message>\n" on stderr. */
__attribute__((format(printf, 1, 2))) void ctl_err(const char *fmt, ...);
/* Print "outboxctl: warning: <message>\n" on stderr. */
__attribute__((format(printf, 1, 2))) void ctl_warn(const char *fmt, ...);

/*
 * Resolve the store directory (--data-dir, else the config's outbox.path, else
 * $OUTBOX_DATA_DIR) into c->data_dir. Prints the error and returns an exit code.
 */
int ctl_resolve_dir(ctl_ctx *c);

/*
 * Resolve the store directory (--data-dir, else the config's outbox.path) and open it
 * without the owner lock (next to a running daemon). `readonly` opens it for inspection
 * only. Prints the error and returns an exit code (0 on success, *out set).
 */
int ctl_open_store(ctl_ctx *c, int readonly, obx_store **out);

/*
 * Handle an option every command accepts (--config, --data-dir); returns 1 when `opt`
 * was one of them. The long option table entries are CTL_COMMON_OPTIONS.
 */
enum { CTL_OPT_CONFIG = 1000, CTL_OPT_DATA_DIR, CTL_OPT_FIRST_LOCAL = 1100 };
#define CTL_COMMON_OPTIONS                                                                         \
    {"config", required_argument, NULL, CTL_OPT_CONFIG},                                           \
        {"data-dir", required_argument, NULL, CTL_OPT_DATA_DIR},                                   \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
int ctl_common_option(ctl_ctx *c, int opt, const char *arg);

/* Print a command's --help text on stdout; returns CTL_EXIT_OK. */
int ctl_help(const char *cmd);

/* Report an unknown option or a missing value from getopt_long (opt '?' or ':'). */
int ctl_bad_option(const char *cmd, int opt, char **argv);

/* Print "outboxctl CMD: <usage hint>; see outboxctl CMD --help" and return CTL_EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * After option parsing: exactly one operand must be left at argv[optind]. Returns 0, or
 * prints `missing` (none left) or "one NOUN at a time" (more) and returns CTL_EXIT_USAGE.
 */
int ctl_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char *noun);

/* Parse a non-negative decimal integer; 0 on success, -1 (nothing stored) otherwise. */
int ctl_parse_u64(const char *s, uint64_t *out);

/*
 * Resolve --sink NAME to its id (OBX_ALL_SINKS when name is NULL). Unknown names print
 * the known ones and return CTL_EXIT_NOTFOUND.
 */
int ctl_sink_resolve(obx_store *s, const char *name, uint32_t *id);

/* Map a store error to an exit code (NOTFOUND -> 3, others -> 1). */
int ctl_exit_for(int obx_rc);

/* Commands. */
int ctl_cmd_stats(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_list(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_show(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_check(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_backup(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_replay(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_purge(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_retire(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_export(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_import(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_render(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_sign(ctl_ctx *c, int argc, char **argv);
int ctl_cmd_listen(ctl_ctx *c, int argc, char **argv);

#endif
