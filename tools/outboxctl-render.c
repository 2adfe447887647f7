/*
 * outboxctl-render.c - `render`: what a sink's Go template makes of an event, exactly as
 * the delivery engine would render it (gotmpl/gotmpl.h), so a template can be tried
 * before it goes into the config. Prints the rendered bytes; exit 1 with Go's error when
 * the template does not parse or execute, or when the output is not valid JSON (the
 * engine would not send it). Rendering is bounded by the engine's own caps
 * (gotmpl_limits_default), with --template as with --config --sink.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gotmpl/gojson.h"
#include "gotmpl/gotmpl.h"
#include "outbox-config.h"
#include "outboxctl-config.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl.h"

enum { OPT_TEMPLATE = CTL_OPT_LOCAL, OPT_EVENT, OPT_RAW };

static void print_exact(const char *out, size_t len)
{
    fwrite(out, 1, len, stdout);
    if (isatty(1) && (len == 0 || out[len - 1] != '\n'))
        fputc('\n', stdout);
}

int ctl_cmd_render(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_OPTIONS,
        CTL_OPTION_SINK,
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"event", required_argument, NULL, OPT_EVENT},
        {"raw", no_argument, NULL, OPT_RAW},
        {0},
    };
    const char *tmpl_path = NULL, *event_path = NULL, *sink = NULL;
    int raw = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":h", opts, NULL, &rc)) >= 0) {
        switch (opt) {
        case OPT_TEMPLATE:
            tmpl_path = optarg;
            continue;
        case OPT_EVENT:
            event_path = optarg;
            continue;
        case OPT_RAW:
            raw = 1;
            continue;
        case CTL_OPT_SINK:
            sink = optarg;
            continue;
        }
        return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if (optind < argc)
        return ctl_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind]);
    if (!event_path)
        return ctl_usage_error(argv[0], "which event? give --event FILE (an event as producers "
                                        "POST it; '-' = stdin)");
    if (!!tmpl_path == !!sink)
        return ctl_usage_error(argv[0], "give --template FILE, or --config FILE --sink NAME");
    if (sink && !c->config_path)
        return ctl_usage_error(argv[0], "--sink NAME needs --config FILE (the sink's template "
                                        "comes from there)");

    char *src = NULL, *ev_bytes = NULL, *out = NULL;
    size_t src_len = 0, ev_len = 0, out_len = 0, max_out = 0;
    gotmpl *t = NULL;
    gotmpl_event *ev = NULL;
    char err[1024];
    rc = CTL_EXIT_ERROR;
    if (!(ev_bytes = ctl_read_file(event_path, &ev_len)))
        goto out;
    if (sink) {
        if ((rc = ctl_config_resolve(c)))
            goto out;
        rc = CTL_EXIT_ERROR;
        const outbox_config *cfg = c->config;
        long i = outbox_config_find_sink(cfg, sink);
        if (i < 0) {
            ctl_err("%s: no sink named \"%s\"", c->config_path, sink);
            rc = CTL_EXIT_NOTFOUND;
            goto out;
        }
        const dlv_sink_config *sc = &cfg->sinks[i];
        if (!sc->body) {
            /* URL mode: the body is the event as received, byte for byte. */
            fprintf(stderr,
                    "outboxctl: sink %s is in URL mode: it sends the event as "
                    "received\n",
                    sink);
            print_exact(ev_bytes, ev_len);
            rc = CTL_EXIT_OK;
            goto out;
        }
        src_len = strlen(sc->body);
        src = strdup(sc->body);
        max_out = sc->max_body_out;
        if (!src) {
            ctl_err("out of memory");
            goto out;
        }
    } else if (!(src = ctl_read_file(tmpl_path, &src_len))) {
        goto out;
    }
    if (gotmpl_parse(src, src_len, &t, err, sizeof err) != GOTMPL_OK) {
        ctl_err("%s", err);
        goto out;
    }
    if (gotmpl_event_parse(ev_bytes, ev_len, &ev, err, sizeof err) != GOTMPL_OK) {
        ctl_err("%s: %s", event_path, err);
        goto out;
    }
    /* the engine's caps (output, intermediate strings, steps, time), whichever the entry */
    gotmpl_limits lim = gotmpl_limits_default(max_out);
    int er = gotmpl_execute(t, ev, &lim, &out, &out_len, err, sizeof err);
    if (er != GOTMPL_OK) {
        ctl_err("%s", err);
        goto out;
    }
    if (!raw && !gojson_valid(out, out_len)) {
        /* Flipt's message, with the output; the engine would dead-letter, never send. */
        ctl_err("invalid JSON: %.*s", (int)(out_len > 4000 ? 4000 : out_len), out);
        fprintf(stderr, "outboxctl: (the delivery engine would not send this; --raw prints "
                        "it anyway)\n");
        goto out;
    }
    print_exact(out, out_len);
    rc = CTL_EXIT_OK;
out:
    free(src);
    free(ev_bytes);
    free(out);
    gotmpl_free(t);
    gotmpl_event_free(ev);
    return rc;
}
