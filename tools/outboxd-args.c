/*
 * outboxd-args.c - outboxd's command line (getopt_long); see outboxd-args.h.
 */
#include "outboxd-args.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "listen-addr.h"
#include "outbox-config.h"

static const char usage_text[] =
    "usage: outboxd [--config FILE] [options]\n"
    "\n"
    "A crash-safe webhook outbox: events POSTed to /v1/events are stored durably,\n"
    "then delivered to every configured sink with retries; failures become dead letters.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        YAML configuration (required, here or in OUTBOXD_CONFIG)\n"
    "  -l, --listen HOST:PORT   override ingest.listen\n"
    "  -d, --data-dir DIR       override outbox.path (the store directory)\n"
    "      --log-format FMT     text (default) or json, one line per event on stderr\n"
    "      --log-level LEVEL    debug, info (default), warn or error\n"
    "      --check-config       validate the configuration and exit (0 valid, 2 invalid);\n"
    "                           the same rules as a start, with the same flags\n"
    "      --allow-no-sinks     start (or pass --check-config) with no sink configured:\n"
    "                           events are then acknowledged and dropped\n"
    "      --print-config       print the effective configuration (after the environment\n"
    "                           and the flags) as YAML, secrets redacted, and exit\n"
    "      --config-keys        list every configuration key with a line about it\n"
    "  -h, --help               show this help\n"
    "  -V, --version            show the version\n"
    "\n"
    "HTTP: POST /v1/events (application/json or application/x-ndjson), GET /healthz,\n"
    "GET /metrics. Signals: SIGTERM/SIGINT stop gracefully.\n"
    "Environment: OUTBOXD_CONFIG, OUTBOXD_LISTEN, OUTBOXD_DATA_DIR, OUTBOXD_LOG_FORMAT and\n"
    "OUTBOXD_LOG_LEVEL stand for the flags when these are absent (flags win); ${NAME} in any\n"
    "value of the configuration file is replaced by the variable NAME ($$ for a literal $).\n"
    "Exit status: 0 clean stop, 1 runtime error (store, listener), 2 usage or config error.\n";

/* One rule per setting, for its flag and its variable alike (`what` names the one used). */
static int set_listen(od_args *a, const char *v, const char *what, FILE *err)
{
    char e[400];
    if (listen_addr_check(v, e, sizeof e) != 0) {
        fprintf(err, "outboxd: %s: %s\n", what, e);
        return 2;
    }
    a->listen = v;
    return 0;
}

static int set_data_dir(od_args *a, const char *v, const char *what, FILE *err)
{
    if (!*v) {
        fprintf(err, "outboxd: %s: must not be empty\n", what);
        return 2;
    }
    a->data_dir = v;
    return 0;
}

static int set_format(od_args *a, const char *v, const char *what, FILE *err)
{
    if (olog_format_parse(v, &a->log_format) != 0) {
        fprintf(err, "outboxd: %s: \"%.80s\" is not json or text\n", what, v);
        return 2;
    }
    return 0;
}

static int set_level(od_args *a, const char *v, const char *what, FILE *err)
{
    if (olog_level_parse(v, &a->log_level) != 0) {
        fprintf(err, "outboxd: %s: \"%.80s\" is not debug, info, warn or error\n", what, v);
        return 2;
    }
    return 0;
}

typedef int (*setter)(od_args *a, const char *v, const char *what, FILE *err);

/* The variables standing for flags, applied where the flag was absent (flags win). */
static int from_env(od_args *a, const unsigned char given[4], FILE *err)
{
    static const struct {
        const char *var;
        setter set;
    } vars[4] = {
        {"OUTBOXD_LISTEN", set_listen},
        {"OUTBOXD_DATA_DIR", set_data_dir},
        {"OUTBOXD_LOG_FORMAT", set_format},
        {"OUTBOXD_LOG_LEVEL", set_level},
    };
    if (!a->config)
        a->config = getenv("OUTBOXD_CONFIG");
    if (a->config && !*a->config) {
        fprintf(err, "outboxd: OUTBOXD_CONFIG: must not be empty\n");
        return 2;
    }
    for (size_t i = 0; i < 4; i++) {
        const char *v = getenv(vars[i].var);
        int rc = !given[i] && v ? vars[i].set(a, v, vars[i].var, err) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int od_args_parse(int argc, char **argv, od_args *a, FILE *out, FILE *err)
{
    enum { OPT_FORMAT = 256, OPT_LEVEL, OPT_CHECK, OPT_NO_SINKS, OPT_KEYS, OPT_PRINT };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"allow-no-sinks", no_argument, NULL, OPT_NO_SINKS},
        {"config-keys", no_argument, NULL, OPT_KEYS},
        {"print-config", no_argument, NULL, OPT_PRINT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->log_format = OLOG_TEXT;
    a->log_level = OLOG_INFO;
    opterr = 0;
    optind = 1;
    unsigned char given[4] = {0}; /* listen, data-dir, log-format, log-level */
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, ":c:l:d:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'l':
            given[0] = 1;
            rc = set_listen(a, optarg, "--listen", err);
            break;
        case 'd':
            given[1] = 1;
            rc = set_data_dir(a, optarg, "--data-dir", err);
            break;
        case OPT_FORMAT:
            given[2] = 1;
            rc = set_format(a, optarg, "--log-format", err);
            break;
        case OPT_LEVEL:
            given[3] = 1;
            rc = set_level(a, optarg, "--log-level", err);
            break;
        case OPT_PRINT:
            a->print_config = 1;
            break;
        case OPT_CHECK:
            a->check_config = 1;
            break;
        case OPT_NO_SINKS:
            a->allow_no_sinks = 1;
            break;
        case OPT_KEYS:
            outbox_config_print_keys(out);
            return 0;
        case 'h':
            fputs(usage_text, out);
            return 0;
        case 'V':
            fprintf(out, "outboxd %s\n", OUTBOX_VERSION);
            return 0;
        case ':':
            fprintf(err, "outboxd: option %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(err, "outboxd: unknown option %s (see --help)\n", argv[optind - 1]);
            return 2;
        }
        if (rc)
            return rc;
    }
    if (optind < argc) {
        fprintf(err, "outboxd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if ((rc = from_env(a, given, err)) != 0)
        return rc;
    if (!a->config) {
        fprintf(err, "outboxd: --config FILE (or OUTBOXD_CONFIG) is required (see --help)\n");
        return 2;
    }
    return -1;
}
