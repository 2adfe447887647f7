/*
 * outboxctl-health.c - sink health for the operator: `pause SINK` and `resume SINK`
 * (persisted in the store with obx_sink_state_set; a running outboxd notices within a
 * second), and the health lines and JSON fields `stats` prints for each sink (up, down
 * since when and why, paused, time held).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "outboxctl-health.h"
#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "outboxctl-time.h"
#include "outboxctl.h"

static const char *state_word(const obx_sink_state *st)
{
    if (st->paused)
        return st->down ? "paused+down" : "paused";
    return st->down ? "down" : "up";
}

/* pause (on = 1) or resume (on = 0) */
static int pause_resume(ctl_ctx *c, int argc, char **argv, int on)
{
    int json = 0, first, rc;
    if (ctl_parse_simple(c, argc, argv, 1, 1, "which sink? give its name", &json, &first, &rc))
        return rc;
    const char *name = argv[first];
    obx_store *s;
    if ((rc = ctl_open_store(c, 0, &s)))
        return rc;
    uint32_t id;
    if ((rc = ctl_sink_resolve(s, name, &id)))
        goto out;
    char why[128];
    snprintf(why, sizeof why, "%s by outboxctl (uid %u)", on ? "paused" : "resumed",
             (unsigned)getuid());
    obx_sink_state before, st;
    obx_error err = {0};
    int changed = 0;
    if (obx_sink_state_get(s, id, &before, &err) ||
        obx_sink_state_set(s, id, OBX_SINK_PAUSED, on, c->now_ms, why, NULL, &st, &changed, &err)) {
        ctl_err("%s %s: %s", argv[0], name, err.msg);
        rc = ctl_exit_for(err.code);
        goto out;
    }
    char held[32];
    int64_t paused_for = before.paused_since_ms ? c->now_ms - before.paused_since_ms : 0;
    ctl_duration_fmt(paused_for, held, sizeof held);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "sink", json_string(name));
        json_object_set_new(o, "paused", json_boolean(on));
        json_object_set_new(o, "changed", json_boolean(changed));
        json_object_set_new(o, "state", json_string(state_word(&st)));
        ctl_json_print(o, stdout);
    } else if (!changed) {
        printf("sink %s was already %s\n", name, on ? "paused" : "running (not paused)");
    } else if (on) {
        printf("sink %s paused: outboxd makes no attempt to it from within a second; its "
               "deliveries keep their budgets (outboxctl resume %s)\n",
               name, name);
    } else {
        printf("sink %s resumed after %s paused%s\n", name, held,
               st.down ? "; its breaker is open (down): outboxd probes it" : "");
    }
out:
    obx_close(s);
    return rc;
}

int ctl_cmd_pause(ctl_ctx *c, int argc, char **argv)
{
    return pause_resume(c, argc, argv, 1);
}

int ctl_cmd_resume(ctl_ctx *c, int argc, char **argv)
{
    return pause_resume(c, argc, argv, 0);
}

void ctl_health_json_add(json_t *sink, obx_store *s, uint32_t id, int64_t now_ms)
{
    obx_sink_state st;
    if (!sink || obx_sink_state_get(s, id, &st, NULL) != OBX_OK)
        return;
    json_t *h = json_object();
    json_object_set_new(h, "state", json_string(state_word(&st)));
    json_object_set_new(h, "down", json_boolean(st.down));
    json_object_set_new(h, "paused", json_boolean(st.paused));
    json_object_set_new(h, "since", st.changed_ms ? ctl_json_time(st.changed_ms) : json_null());
    json_object_set_new(h, "why", json_string(st.why));
    json_object_set_new(h, "last_error", json_string(st.last_error));
    json_object_set_new(h, "held_ms", json_integer((json_int_t)obx_sink_held_ms(&st, now_ms)));
    json_object_set_new(h, "changes", json_integer((json_int_t)st.changes));
    json_object_set_new(sink, "health", h);
}

int64_t ctl_health_deadline(obx_store *s, const obx_delivery *d, int64_t now_ms)
{
    obx_sink_state st;
    if (!d->deadline_ms || obx_sink_state_get(s, d->sink_id, &st, NULL) != OBX_OK)
        return d->deadline_ms;
    return d->deadline_ms + obx_sink_held_ms(&st, now_ms);
}

void ctl_health_lines(FILE *f, obx_store *s, const obx_stats *st, int64_t now_ms)
{
    for (size_t i = 0; i < st->n_sinks; i++) {
        obx_sink_state h;
        if (obx_sink_state_get(s, st->sinks[i].id, &h, NULL) != OBX_OK || !h.changes)
            continue;
        char since[32], held[32];
        ctl_age(h.changed_ms, now_ms, since, sizeof since);
        ctl_duration_fmt(obx_sink_held_ms(&h, now_ms), held, sizeof held);
        fprintf(f, "health   %s: %s since %s (%s)", st->sinks[i].name, state_word(&h), since,
                h.why);
        if (h.down && h.last_error[0])
            fprintf(f, "; last error: %s", h.last_error);
        fprintf(f, "; held %s in all, not counted against budgets\n", held);
    }
}
