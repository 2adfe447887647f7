/*
 * outboxctl.c - the operator's CLI for an outbox: global options, command dispatch,
 * help texts and the helpers every command shares (opening the store, sink names,
 * exit codes). The commands themselves live in outboxctl-<group>.c.
 *
 * outboxctl never takes the owner lock (except `import`, which must): it works next to
 * a running outboxd (LMDB readers never block the writer) and against a stopped one.
 */
#include "outboxctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "outboxctl-config.h"

typedef struct command {
    const char *name;
    int (*fn)(ctl_ctx *c, int argc, char **argv);
    const char *summary;
    const char *usage; /* the rest of the help text */
} command;

static const command commands[] = {
    {"stats", ctl_cmd_stats, "counts per state and sink, oldest pending age, store size",
     "usage: outboxctl stats [--json]\n"
     "\n"
     "One consistent snapshot (no scan): per sink the deliveries pending, in flight, in\n"
     "doubt (an attempt may have reached the receiver before a crash), delivered and dead,\n"
     "the age of the oldest pending event and when the next attempt is due; the events\n"
     "stored; the store's size against its cap.\n"
     "\n"
     "  --json    one JSON object\n"},
    {"list", ctl_cmd_list, "one line per delivery, with filters",
     "usage: outboxctl list [--state pending|inflight|dead|delivered|all] [--sink NAME]\n"
     "                      [--type T] [--action A] [--since TIME] [--until TIME]\n"
     "                      [--newest|--oldest] [--limit N] [--json]\n"
     "\n"
     "One line per delivery: event id, sink, state, type:action, received age, attempts,\n"
     "last status/error (or the dead letter's reason), next attempt.\n"
     "\n"
     "  --state S      pending, inflight, dead, delivered or all (default all)\n"
     "  --sink NAME    only this sink\n"
     "  --type T       only events of this type (flag, segment, ...)\n"
     "  --action A     only this action (created, updated, deleted)\n"
     "  --since TIME   received at or after TIME; --until TIME: received before TIME.\n"
     "                 TIME is RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26),\n"
     "                 'now', or a duration ago (30m, 1h, 7d)\n"
     "  --newest       newest first (dead/delivered: by when they died/were delivered)\n"
     "  --oldest       oldest first (the default)\n"
     "  --limit N      at most N lines (default 100; 0 = no limit)\n"
     "  --json         one JSON object per line\n"},
    {"show", ctl_cmd_show, "an event, and per sink its state and attempt history",
     "usage: outboxctl show ID [--json]\n"
     "\n"
     "The event's body and, per sink: state, in-doubt flag, attempts (time, duration,\n"
     "status, error), next attempt, deadline, dead-letter reason. Exit 3 if there is no\n"
     "event ID.\n"},
    {"replay", ctl_cmd_replay, "dead (or delivered) deliveries back to pending",
     "usage: outboxctl replay ID... [--sink NAME] [--dry-run] [--json]\n"
     "       outboxctl replay --dead [--sink NAME] [--type T] [--action A] [--since TIME]\n"
     "                        [--until TIME] [--dry-run] [--json]\n"
     "\n"
     "Puts dead deliveries (or, by id, delivered ones too) back to pending with a fresh\n"
     "retry budget; a running daemon picks them up within a second. Prints how many.\n"
     "Every request keeps its webhook-id, so receivers can deduplicate.\n"
     "\n"
     "  --dead       every dead letter matching the filters (--since/--until: received)\n"
     "  --sink NAME  only deliveries to this sink\n"
     "  --dry-run    count what would be replayed, change nothing\n"},
    {"purge", ctl_cmd_purge, "delete dead letters",
     "usage: outboxctl purge --dead [--sink NAME] [--before TIME] [--yes] [--dry-run]\n"
     "\n"
     "Deletes dead letters (an event goes with its last delivery). Refuses (exit 1) when\n"
     "more than one would be deleted and --yes is not given, and says how many.\n"
     "\n"
     "  --before TIME  only those that died before TIME (e.g. 7d = a week ago)\n"
     "  --sink NAME    only dead letters of this sink\n"
     "  --dry-run      count, delete nothing\n"},
    {"retire", ctl_cmd_retire, "retire a sink no longer configured",
     "usage: outboxctl retire SINK --dead-letter|--purge [--dry-run] [--json]\n"
     "\n"
     "For a sink removed from the config. --dead-letter: its pending and in-flight\n"
     "deliveries become dead letters (reason: sink retired), which list, export, replay\n"
     "and purge still show under its name. --purge: every delivery of it (dead and\n"
     "delivered too) is deleted, and then its registry slot is freed for a new sink (a\n"
     "store holds at most 1,023 sinks). Works in short transactions next to a running\n"
     "daemon; prints the counts.\n"
     "Refused when --config still names the sink; when a daemon owns the outbox and no\n"
     "--config is given (retire could not check the daemon no longer delivers to it); and\n"
     "while that daemon has deliveries of the sink in flight.\n"
     "\n"
     "  --dead-letter   keep its undelivered deliveries as dead letters\n"
     "  --purge         delete all its deliveries and free its registry slot\n"
     "  --dry-run       count, change nothing\n"},
    {"pause", ctl_cmd_pause, "stop delivering to a sink (persisted) until resumed",
     "usage: outboxctl pause SINK [--json]\n"
     "\n"
     "A running outboxd makes no attempt to SINK from within a second on, until `outboxctl\n"
     "resume SINK` (requests already running finish). Kept in the store, so a restart\n"
     "keeps it. Time paused does not count against the deliveries' budgets\n"
     "(max_backoff_duration): nothing dies of being paused.\n"},
    {"resume", ctl_cmd_resume, "deliver to a paused sink again",
     "usage: outboxctl resume SINK [--json]\n"
     "\n"
     "Ends a pause; a running outboxd resumes within a second. Every deadline of the\n"
     "sink's deliveries moves later by the time it was paused.\n"},
    {"export", ctl_cmd_export, "JSON lines of events with their delivery state",
     "usage: outboxctl export [--state S] [--sink NAME] [--type T] [--action A]\n"
     "                        [--since TIME] [--until TIME] [--limit N]\n"
     "\n"
     "One JSON object per event on stdout: id, received, type, action, its deliveries\n"
     "(sink, state, attempts, ...) and the body (\"body\" when it is JSON, byte-exact;\n"
     "\"body_base64\" otherwise). Only the deliveries matching --state/--sink are listed;\n"
     "events with none are left out. `outboxctl import` reads this back.\n"},
    {"import", ctl_cmd_import, "read exported lines back as new events",
     "usage: outboxctl import FILE [--sink NAME]... [--map-sink OLD=NEW]... [--dry-run]\n"
     "       outboxctl import FILE --url http://HOST:PORT/v1/events [--token T] [--dry-run]\n"
     "\n"
     "Stores each line of FILE ('-' = stdin) as a new event, pending for the sinks its\n"
     "line lists (or the --sink ones). Writing events needs the owner lock: without --url\n"
     "the daemon must be stopped. With --url the bodies are POSTed to a running daemon,\n"
     "which routes them by its own configuration. Importing twice stores twice.\n"
     "\n"
     "Only sinks the daemon delivers to are accepted: a sink a line lists must be in\n"
     "--config FILE or be renamed with --map-sink OLD=NEW; --sink NAME sends every event to\n"
     "NAME instead (with --config it must be configured there). Every line is validated\n"
     "first - the body as outboxd's ingest validates it, type and action equal to the\n"
     "body's, received_ms a real time - and one bad line imports nothing (the error names\n"
     "the line and field).\n"
     "\n"
     "  --sink NAME          deliver every event to NAME (repeatable)\n"
     "  --map-sink OLD=NEW   deliveries to OLD go to NEW (repeatable)\n"
     "  --dry-run            validate and count, import nothing\n"},
    {"render", ctl_cmd_render, "print the body a template renders for an event",
     "usage: outboxctl render --template FILE --event FILE [--raw]\n"
     "       outboxctl render --config FILE --sink NAME --event FILE [--raw]\n"
     "\n"
     "Prints the body the delivery engine renders for the event (a JSON event as producers\n"
     "POST it; '-' = stdin). Exit 1 with the Go-style error when the template does not\n"
     "parse or execute, or when its output is not valid JSON (it would not be sent; --raw\n"
     "prints it anyway). A sink without a template (URL mode) sends the event as is.\n"},
    {"listen", ctl_cmd_listen, "a receiver for trying things out",
     "usage: outboxctl listen --port P [--host 127.0.0.1] [--secret S] [--status CODE]\n"
     "                        [--count N] [--json]\n"
     "\n"
     "Prints each request (method, path, the headers that matter, the body) and, with\n"
     "--secret, whether its Flipt and Standard Webhooks signatures are valid. Answers with\n"
     "--status (default 200). --count N exits after N requests. --json: one object per\n"
     "request. The secret may come from $OUTBOX_SIGNING_SECRET instead (out of ps).\n"},
    {"sign", ctl_cmd_sign, "print the signatures a sink would send for a body",
     "usage: outboxctl sign --secret S [--id ID] [--timestamp UNIX] [--json] [FILE]\n"
     "\n"
     "Reads the body from FILE (stdin when absent) and prints the X-Flipt-Webhook-Signature\n"
     "header and the Standard Webhooks headers (webhook-id, webhook-timestamp,\n"
     "webhook-signature) a sink with this signing secret would send. The secret may come\n"
     "from $OUTBOX_SIGNING_SECRET instead (out of ps); it is never printed.\n"},
    {"backup", ctl_cmd_backup, "a consistent, compacted hot copy of the store",
     "usage: outboxctl backup DEST\n"
     "\n"
     "Copies the store into directory DEST (created; must not hold a store) from one\n"
     "snapshot, compacted. Safe while the daemon runs. Start a daemon on the copy with\n"
     "--data-dir DEST.\n"},
    {"check", ctl_cmd_check, "verify the store's invariants",
     "usage: outboxctl check [--json]\n"
     "\n"
     "Decodes every record and checks indexes and counters against them. Prints each\n"
     "problem; exit 1 when there is any.\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char global_usage[] =
    "usage: outboxctl [--config FILE | --data-dir DIR] COMMAND [ARGS]\n"
    "\n"
    "The operator's window into an outbox; works next to a running outboxd.\n"
    "\n"
    "  --config FILE   outboxd's YAML config (gives outbox.path and the sinks)\n"
    "  --data-dir DIR  the outbox directory (overrides the config's outbox.path;\n"
    "                  default: $OUTBOX_DATA_DIR)\n"
    "  --help          this text; COMMAND --help for a command's\n"
    "  --version\n"
    "\n"
    "Exit codes: 0 ok, 1 error, 2 usage, 3 not found.\n"
    "\n"
    "Commands:\n";

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_global_help(FILE *f)
{
    fputs(global_usage, f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

void ctl_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("outboxctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("outboxctl: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "outboxctl %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see: outboxctl %s --help)\n", cmd);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

int ctl_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char *noun)
{
    if (optind >= argc)
        return ctl_usage_error(cmd, "%s", missing);
    if (optind + 1 < argc)
        return ctl_usage_error(cmd, "one %s at a time (got \"%s\" too)", noun, argv[optind + 1]);
    return 0;
}

/* Print a command's help on stdout; used for COMMAND --help. */
int ctl_help(const char *cmd)
{
    const command *c = find_command(cmd);
    if (!c)
        return CTL_EXIT_USAGE;
    fprintf(stdout, "outboxctl %s - %s\n\n%s", c->name, c->summary, c->usage);
    fputs("\nGlobal options (before or after the command): --config FILE, --data-dir DIR\n",
          stdout);
    return CTL_EXIT_OK;
}

int ctl_bad_option(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (opt == ':')
        return ctl_usage_error(cmd, "%s needs a value", arg);
    if (optopt && optopt < 256)
        return ctl_usage_error(cmd, "unknown option -%c", optopt);
    return ctl_usage_error(cmd, "unknown option %s", arg);
}

int ctl_common_option(ctl_ctx *c, int opt, const char *arg)
{
    if (opt == CTL_OPT_CONFIG) {
        c->config_path = arg;
        return 1;
    }
    if (opt == CTL_OPT_DATA_DIR) {
        c->data_dir_arg = arg;
        return 1;
    }
    return 0;
}

int ctl_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int ctl_exit_for(int obx_rc)
{
    return obx_rc == OBX_ERR_NOTFOUND ? CTL_EXIT_NOTFOUND : CTL_EXIT_ERROR;
}

int ctl_resolve_dir(ctl_ctx *c)
{
    int rc = ctl_config_resolve(c);
    if (rc)
        return rc;
    if (!c->data_dir) {
        ctl_err("which outbox? give --data-dir DIR or --config FILE (or set OUTBOX_DATA_DIR)");
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

int ctl_open_store(ctl_ctx *c, int readonly, obx_store **out)
{
    *out = NULL;
    int rc = ctl_resolve_dir(c);
    if (rc)
        return rc;
    obx_options o;
    obx_options_init(&o);
    ctl_config_store_options(c, &o);
    o.flags = OBX_OPEN_NOCREATE | (readonly ? OBX_OPEN_READONLY : 0);
    obx_error err = {0};
    int orc = obx_open(c->data_dir, &o, out, &err);
    if (orc == OBX_ERR_NOTFOUND) {
        ctl_err("no outbox store in %s%s%s%s (is the path right? outboxd creates it on first "
                "start)",
                c->data_dir, !c->data_dir_arg && c->config ? " (outbox.path of " : "",
                !c->data_dir_arg && c->config ? c->config_path : "",
                !c->data_dir_arg && c->config ? ", relative to the current directory)" : "");
        return CTL_EXIT_ERROR;
    }
    if (orc) {
        ctl_err("cannot open the outbox in %s: %s", c->data_dir, err.msg);
        return CTL_EXIT_ERROR;
    }
    return CTL_EXIT_OK;
}

int ctl_sink_resolve(obx_store *s, const char *name, uint32_t *id)
{
    *id = OBX_ALL_SINKS;
    if (!name)
        return CTL_EXIT_OK;
    obx_error err = {0};
    int rc = obx_sink_find(s, name, id, &err);
    if (rc == OBX_OK)
        return CTL_EXIT_OK;
    if (rc != OBX_ERR_NOTFOUND) {
        ctl_err("sink %s: %s", name, err.msg);
        return CTL_EXIT_ERROR;
    }
    /* Name the known sinks: the usual mistake is a typo. */
    obx_stats *st = NULL;
    char known[1024] = "";
    size_t kl = 0;
    if (obx_stats_get(s, &st, NULL) == OBX_OK) {
        for (size_t i = 0; i < st->n_sinks && kl < sizeof known - 1; i++) {
            int n =
                snprintf(known + kl, sizeof known - kl, "%s%s", i ? ", " : "", st->sinks[i].name);
            if (n < 0)
                break;
            kl += (size_t)n;
        }
        obx_stats_free(st);
    }
    ctl_err("no sink named \"%s\" in this outbox (known: %s)", name, kl ? known : "none");
    return CTL_EXIT_NOTFOUND;
}

int main(int argc, char **argv)
{
    ctl_ctx c = {0};
    c.now_ms = obx_now_ms();
    const char *env_dir = getenv("OUTBOX_DATA_DIR");
    if (env_dir && *env_dir)
        c.env_dir = env_dir;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_global_help(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("outboxctl %s\n", OUTBOX_VERSION);
            return CTL_EXIT_OK;
        }
        const char *val = NULL;
        int which = 0;
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '='))
            which = CTL_OPT_CONFIG, val = a[8] == '=' ? a + 9 : NULL;
        else if (strncmp(a, "--data-dir", 10) == 0 && (a[10] == '\0' || a[10] == '='))
            which = CTL_OPT_DATA_DIR, val = a[10] == '=' ? a + 11 : NULL;
        else if (a[0] == '-') {
            fprintf(stderr, "outboxctl: unknown option %s\n\n", a);
            print_global_help(stderr);
            return CTL_EXIT_USAGE;
        } else
            break;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "outboxctl: %s needs a value\n", a);
                return CTL_EXIT_USAGE;
            }
            val = argv[++i];
        }
        ctl_common_option(&c, which, val);
    }
    if (i >= argc) {
        print_global_help(stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc && find_command(argv[i + 1]))
            return ctl_help(argv[i + 1]);
        print_global_help(stdout);
        return CTL_EXIT_OK;
    }
    const command *cmd = find_command(argv[i]);
    if (!cmd) {
        fprintf(stderr, "outboxctl: unknown command \"%s\"\n\n", argv[i]);
        print_global_help(stderr);
        return CTL_EXIT_USAGE;
    }
    optind = 0; /* commands parse with getopt_long from their own argv[0] */
    opterr = 0;
    int rc = cmd->fn(&c, argc - i, argv + i);
    ctl_config_free(&c);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        ctl_err("writing output: %s", strerror(errno));
        rc = CTL_EXIT_ERROR;
    }
    return rc;
}
