/*
 * event.c - decoding an event body into Flipt's Event model (what Go's json.Unmarshal into
 * audit.Event gives after Flipt's span round-trip; see delivery/template/README.md), and
 * the value helpers shared by the executor and the printer.
 */
#include "gotmpl-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const gotmpl_actor_fields[ACT_N] = {"Authentication", "IP", "Email", "Name", "Picture"};

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

/* The value Go would decode into the field with JSON name `name` (jsonfold.c). */
static json_t *field(json_t *obj, const char *name)
{
    return gotmpl_json_field(obj, name);
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "number";
    }
}

static int str_field(json_t *obj, const char *name, const char *where, gostr *out, char *err,
                     size_t errlen)
{
    json_t *v = field(obj, name);
    out->p = "";
    out->n = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char what[96];
        snprintf(what, sizeof what, "%s.%s", where, name);
        seterr(err, errlen, "json: cannot unmarshal %s into Go struct field %s of type string",
               json_kind(v), what);
        return -1;
    }
    out->p = json_string_value(v);
    out->n = json_string_length(v);
    return 0;
}

int gotmpl_event_parse(const void *json, size_t len, gotmpl_event **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
    if (!root) {
        if (errlen)
            snprintf(err, errlen, "event: invalid JSON at line %d column %d: %s", je.line,
                     je.column, je.text);
        return GOTMPL_EEVENT;
    }
    if (!json_is_object(root)) {
        seterr(err, errlen, "event: cannot unmarshal %s into Go value of type audit.Event%s",
               json_kind(root), "");
        json_decref(root);
        return GOTMPL_EEVENT;
    }
    gotmpl_event *ev = calloc(1, sizeof *ev);
    if (!ev) {
        json_decref(root);
        return GOTMPL_ENOMEM;
    }
    ev->root = root;
    int rc = GOTMPL_EEVENT;
    if (str_field(root, "version", "Event", &ev->version, err, errlen) ||
        str_field(root, "type", "Event", &ev->type, err, errlen) ||
        str_field(root, "action", "Event", &ev->action, err, errlen) ||
        str_field(root, "timestamp", "Event", &ev->timestamp, err, errlen) ||
        str_field(root, "status", "Event", &ev->status, err, errlen))
        goto fail;
    for (int i = 0; i < ACT_N; i++) {
        ev->actor[i].p = "";
        ev->actor[i].n = 0;
    }
    json_t *md = field(root, "metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md)) {
            seterr(err, errlen,
                   "json: cannot unmarshal %s into Go struct field Event.metadata of type "
                   "audit.Metadata%s",
                   json_kind(md), "");
            goto fail;
        }
        json_t *actor = field(md, "actor");
        if (actor && !json_is_null(actor)) {
            if (!json_is_object(actor)) {
                seterr(err, errlen,
                       "json: cannot unmarshal %s into Go struct field Metadata.metadata.actor "
                       "of type audit.Actor%s",
                       json_kind(actor), "");
                goto fail;
            }
            static const char *const keys[ACT_N] = {"authentication", "ip", "email", "name",
                                                    "picture"};
            for (int i = 0; i < ACT_N; i++)
                if (str_field(actor, keys[i], "Actor.metadata.actor", &ev->actor[i], err, errlen))
                    goto fail;
        }
    }
    json_t *p = field(root, "payload");
    ev->payload = (p && !json_is_null(p)) ? p : NULL;
    *out = ev;
    return GOTMPL_OK;
fail:
    gotmpl_event_free(ev);
    return rc;
}

void gotmpl_event_free(gotmpl_event *e)
{
    if (!e)
        return;
    json_decref(e->root);
    free(e);
}

/* ------------------------------------------------------------------ values */

const char *gv_type_name(const gv *v)
{
    if (v->iface && v->kind != GV_INVALID)
        return "interface {}";
    switch (v->kind) {
    case GV_NIL:
        return "interface {}";
    case GV_BOOL:
        return "bool";
    case GV_INT:
        return "int";
    case GV_UINT8:
        return "uint8";
    case GV_FLOAT:
        return "float64";
    case GV_STRING:
        return "string";
    case GV_MAP:
        return "map[string]interface {}";
    case GV_SLICE:
        return "[]interface {}";
    case GV_EVENT:
        return "audit.Event";
    case GV_META:
        return "audit.Metadata";
    case GV_ACTOR:
        return "*audit.Actor";
    }
    return "<invalid reflect.Value>";
}

gv gv_from_json(json_t *j)
{
    gv v;
    memset(&v, 0, sizeof v);
    v.iface = 1;
    if (!j) {
        v.kind = GV_NIL;
        return v;
    }
    switch (json_typeof(j)) {
    case JSON_NULL:
        v.kind = GV_NIL;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.kind = GV_BOOL;
        v.u.b = json_is_true(j);
        break;
    case JSON_INTEGER:
        v.kind = GV_FLOAT;
        v.u.f = (double)json_integer_value(j);
        break;
    case JSON_REAL:
        v.kind = GV_FLOAT;
        v.u.f = json_real_value(j);
        break;
    case JSON_STRING:
        v.kind = GV_STRING;
        v.u.s.p = json_string_value(j);
        v.u.s.n = json_string_length(j);
        break;
    case JSON_ARRAY:
        v.kind = GV_SLICE;
        v.u.c.j = j;
        v.u.c.off = 0;
        v.u.c.len = json_array_size(j);
        break;
    case JSON_OBJECT:
        v.kind = GV_MAP;
        v.u.c.j = j;
        break;
    }
    return v;
}

size_t gv_len(const gv *v)
{
    switch (v->kind) {
    case GV_STRING:
        return v->u.s.n;
    case GV_MAP:
        return json_object_size(v->u.c.j);
    case GV_SLICE:
        return v->u.c.len;
    default:
        return 0;
    }
}

gv gv_slice_at(const gv *v, size_t i)
{
    return gv_from_json(json_array_get(v->u.c.j, v->u.c.off + i));
}
