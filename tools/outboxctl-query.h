/*
 * outboxctl-query.h - the delivery filters shared by list, export, replay and purge
 * (--state, --sink, --type, --action, --since, --until, --newest/--oldest, --limit) and
 * what a delivery looks like in a line: its state label and its "last outcome" text.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_QUERY_H
#define OUTBOX_TOOLS_OUTBOXCTL_QUERY_H

#include <getopt.h>
#include <jansson.h>

#include "outbox-json.h"
#include "outboxctl.h"

enum {
    CTL_OPT_STATE = CTL_OPT_FIRST_LOCAL,
    CTL_OPT_SINK,
    CTL_OPT_TYPE,
    CTL_OPT_ACTION,
    CTL_OPT_SINCE,
    CTL_OPT_UNTIL,
    CTL_OPT_NEWEST,
    CTL_OPT_OLDEST,
    CTL_OPT_LIMIT,
    CTL_OPT_JSON,
    CTL_OPT_LOCAL = CTL_OPT_FIRST_LOCAL + 50, /* first id a command may use for its own */
};

#define CTL_OPTION_STATE                                                                           \
    {                                                                                              \
        "state", required_argument, NULL, CTL_OPT_STATE                                            \
    }
#define CTL_OPTION_SINK                                                                            \
    {                                                                                              \
        "sink", required_argument, NULL, CTL_OPT_SINK                                              \
    }
#define CTL_OPTION_TYPE                                                                            \
    {                                                                                              \
        "type", required_argument, NULL, CTL_OPT_TYPE                                              \
    }
#define CTL_OPTION_ACTION                                                                          \
    {                                                                                              \
        "action", required_argument, NULL, CTL_OPT_ACTION                                          \
    }
#define CTL_OPTION_SINCE                                                                           \
    {                                                                                              \
        "since", required_argument, NULL, CTL_OPT_SINCE                                            \
    }
#define CTL_OPTION_UNTIL                                                                           \
    {                                                                                              \
        "until", required_argument, NULL, CTL_OPT_UNTIL                                            \
    }
#define CTL_OPTION_NEWEST                                                                          \
    {                                                                                              \
        "newest", no_argument, NULL, CTL_OPT_NEWEST                                                \
    }
#define CTL_OPTION_OLDEST                                                                          \
    {                                                                                              \
        "oldest", no_argument, NULL, CTL_OPT_OLDEST                                                \
    }
#define CTL_OPTION_LIMIT                                                                           \
    {                                                                                              \
        "limit", required_argument, NULL, CTL_OPT_LIMIT                                            \
    }
#define CTL_OPTION_JSON                                                                            \
    {                                                                                              \
        "json", no_argument, NULL, CTL_OPT_JSON                                                    \
    }

/* Filters as given on the command line; strings point into argv. */
typedef struct ctl_filter {
    int state;        /* 0 = all, else obx_state */
    const char *sink; /* NULL = any */
    const char *type;
    const char *action;
    int64_t since_ms, until_ms; /* 0 = unbounded */
    int newest_first;
    uint64_t limit;
    int limit_set;
    int json;
} ctl_filter;

/*
 * Apply one parsed option to f. Returns 1 when it was a filter option, 0 when not, or
 * -1 after printing a usage error (then exit CTL_EXIT_USAGE).
 */
int ctl_filter_option(const char *cmd, ctl_filter *f, int opt, const char *arg, int64_t now_ms);

/*
 * getopt_long over a command's options, handling --help, --config/--data-dir and the
 * filter options itself (f may be NULL when the command has none). Returns the next
 * option that is the command's own; CTL_OPTS_END when all options are parsed (optind is
 * then the first operand); CTL_OPTS_RETURN when the command must return *rc at once
 * (help printed, or a usage error reported). Unknown options are reported here.
 * `shorts` is the getopt short-option string and must start with ":h".
 */
enum { CTL_OPTS_END = -1, CTL_OPTS_RETURN = -2 };
int ctl_next_option(ctl_ctx *c, int argc, char **argv, const char *shorts,
                    const struct option *opts, ctl_filter *f, int *rc);

/*
 * Parse a command that takes only the options in `opts` (common and filter ones) and no
 * operands. 0 on success; 1 when the command must return *rc.
 */
int ctl_parse_filters(ctl_ctx *c, int argc, char **argv, const struct option *opts, ctl_filter *f,
                      int *rc);

/*
 * Parse a command that takes only --json (when json is not NULL) and between nmin and
 * nmax operands; `missing` is the message when there are too few. On success returns 0
 * with *first = index of the first operand; else returns 1 and *rc is the exit code.
 */
int ctl_parse_simple(ctl_ctx *c, int argc, char **argv, int nmin, int nmax, const char *missing,
                     int *json, int *first, int *rc);

/*
 * An obx_corrupt_fn for listings whose user data starts with a `size_t` counter of
 * corrupt records: warns on stderr and counts.
 */
void ctl_corrupt_warn(void *counter, uint64_t event_id, uint32_t sink_id, const char *what);

/* Build the store query (resolves --sink). Returns an exit code (0 ok). */
int ctl_filter_query(obx_store *s, const ctl_filter *f, obx_query *q);

/* The last outcome: the dead letter's reason, "HTTP 503: error", "HTTP 503", the error,
 * or NULL when there is none. Written into buf. */
const char *ctl_last_outcome(const obx_delivery *d, char *buf, size_t n);

/* Sink names by id, cached from one stats snapshot (the registry only grows; a sink
 * registered later is looked up in the store). */
typedef struct ctl_sinks {
    obx_store *s;
    obx_stats *st;
} ctl_sinks;
int ctl_sinks_load(obx_store *s, ctl_sinks *sk);
/* The name of sink id, or "#<id>" in buf when unknown. */
const char *ctl_sinks_name(ctl_sinks *sk, uint32_t id, char *buf, size_t n);
void ctl_sinks_free(ctl_sinks *sk);

#endif
