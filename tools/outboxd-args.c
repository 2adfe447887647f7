/*
 * outboxd-args.c - outboxd's command line (getopt_long); see outboxd-args.h.
 */
#include "outboxd-args.h"

#include <getopt.h>
#include <string.h>

#include "config.h"
#include "listen-addr.h"
#include "outbox-config.h"

static const char usage_text[] =
    "usage: outboxd --config FILE [options]\n"
    "\n"
    "A crash-safe webhook outbox: events POSTed to /v1/events are stored durably,\n"
    "then delivered to every configured sink with retries; failures become dead letters.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        YAML configuration (required)\n"
    "  -l, --listen HOST:PORT   override ingest.listen\n"
    "  -d, --data-dir DIR       override outbox.path (the store directory)\n"
    "      --log-format FMT     text (default) or json, one line per event on stderr\n"
    "      --log-level LEVEL    debug, info (default), warn or error\n"
    "      --check-config       validate the configuration and exit (0 valid, 2 invalid);\n"
    "                           the same rules as a start, with the same flags\n"
    "      --allow-no-sinks     start (or pass --check-config) with no sink configured:\n"
    "                           events are then acknowledged and dropped\n"
    "      --config-keys        list every configuration key with a line about it\n"
    "  -h, --help               show this help\n"
    "  -V, --version            show the version\n"
    "\n"
    "HTTP: POST /v1/events (application/json or application/x-ndjson), GET /healthz,\n"
    "GET /metrics. Signals: SIGTERM/SIGINT stop gracefully.\n"
    "Exit status: 0 clean stop, 1 runtime error (store, listener), 2 usage or config error.\n";

int od_args_parse(int argc, char **argv, od_args *a, FILE *out, FILE *err)
{
    enum { OPT_FORMAT = 256, OPT_LEVEL, OPT_CHECK, OPT_NO_SINKS, OPT_KEYS };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"allow-no-sinks", no_argument, NULL, OPT_NO_SINKS},
        {"config-keys", no_argument, NULL, OPT_KEYS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->log_format = OLOG_TEXT;
    a->log_level = OLOG_INFO;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":c:l:d:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'l': {
            char e[400];
            if (listen_addr_check(optarg, e, sizeof e) != 0) {
                fprintf(err, "outboxd: --listen: %s\n", e);
                return 2;
            }
            a->listen = optarg;
            break;
        }
        case 'd':
            a->data_dir = optarg;
            break;
        case OPT_FORMAT:
            if (olog_format_parse(optarg, &a->log_format) != 0) {
                fprintf(err, "outboxd: --log-format: \"%s\" is not json or text\n", optarg);
                return 2;
            }
            break;
        case OPT_LEVEL:
            if (olog_level_parse(optarg, &a->log_level) != 0) {
                fprintf(err, "outboxd: --log-level: \"%s\" is not debug, info, warn or error\n",
                        optarg);
                return 2;
            }
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
    }
    if (optind < argc) {
        fprintf(err, "outboxd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if (!a->config) {
        fprintf(err, "outboxd: --config FILE is required (see --help)\n");
        return 2;
    }
    return -1;
}
