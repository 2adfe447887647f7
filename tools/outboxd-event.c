/*
 * outboxd-event.c - parse and validate ingested events as Flipt's Event.Valid() does.
 *
 * jansson parses each event (it reports line and column of a syntax error); only the four
 * fields Valid() checks are inspected, found with the template engine's key rule
 * (gotmpl_json_field: case-insensitive like Go's encoding/json, so "Type" is "type"), and
 * the raw bytes are kept as the stored body.
 */
#include "outboxd-event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gotmpl/gotmpl.h"

/* The store accepts type and action of 1..255 bytes. */
#define FIELD_MAX 255

oev_ctype oev_content_type(const char *value)
{
    if (!value)
        return OEV_CT_OTHER;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strcspn(value, "; \t");
    const char *rest = value + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest && *rest != ';')
        return OEV_CT_OTHER;
    if (n == 16 && strncasecmp(value, "application/json", n) == 0)
        return OEV_CT_JSON;
    if ((n == 20 && strncasecmp(value, "application/x-ndjson", n) == 0) ||
        (n == 19 && strncasecmp(value, "application/x-jsonl", n) == 0) ||
        (n == 17 && strncasecmp(value, "application/jsonl", n) == 0))
        return OEV_CT_NDJSON;
    return OEV_CT_OTHER;
}

void oev_events_free(oev_event *ev, size_t n)
{
    if (!ev)
        return;
    for (size_t i = 0; i < n; i++) {
        free(ev[i].type);
        free(ev[i].action);
    }
    free(ev);
}

/* Check one required string field; return its value or NULL with err filled. Keys match
 * as Flipt decodes them (any case, the last match wins): the template engine's rule. */
static const char *field(json_t *obj, const char *name, const char *where, char *err, size_t cap)
{
    json_t *v = gotmpl_json_field(obj, name);
    if (!v) {
        snprintf(err, cap, "%smissing field \"%s\"", where, name);
        return NULL;
    }
    if (!json_is_string(v)) {
        snprintf(err, cap, "%sfield \"%s\" must be a string", where, name);
        return NULL;
    }
    if (json_string_length(v) == 0) {
        snprintf(err, cap, "%sfield \"%s\" must not be empty", where, name);
        return NULL;
    }
    return json_string_value(v);
}

/*
 * Parse and validate one event from buf[0..len); `line` > 0 names the NDJSON line in
 * messages. Fills ev (type/action allocated) and returns 0, or an oev_err with err.
 */
static int parse_one(const char *buf, size_t len, size_t line, oev_event *ev, char *err, size_t cap)
{
    char where[48] = "";
    if (line)
        snprintf(where, sizeof where, "line %zu: ", line);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    int rc = OEV_ERR_EVENT;
    if (!root) {
        if (line) /* one line: the column says where */
            snprintf(err, cap, "%sinvalid JSON at column %d: %s", where, jerr.column, jerr.text);
        else
            snprintf(err, cap, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                     jerr.text);
        return OEV_ERR_JSON;
    }
    if (!json_is_object(root)) {
        snprintf(err, cap, "%sevent must be a JSON object", where);
        goto out;
    }
    const char *type = NULL, *action = NULL;
    /* Check in Flipt's key order, so the first problem named is the first field. */
    if (!field(root, "version", where, err, cap) ||
        !(type = field(root, "type", where, err, cap)) ||
        !(action = field(root, "action", where, err, cap)) ||
        !field(root, "timestamp", where, err, cap))
        goto out;
    if (strlen(type) > FIELD_MAX || strlen(action) > FIELD_MAX) {
        snprintf(err, cap, "%sfield \"%s\" is longer than %d bytes", where,
                 strlen(type) > FIELD_MAX ? "type" : "action", FIELD_MAX);
        goto out;
    }
    ev->body = buf;
    ev->body_len = len;
    ev->type = strdup(type);
    ev->action = strdup(action);
    if (!ev->type || !ev->action) {
        free(ev->type);
        free(ev->action);
        ev->type = ev->action = NULL;
        snprintf(err, cap, "out of memory");
        rc = OEV_ERR_NOMEM;
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

int oev_parse(oev_ctype ctype, const char *buf, size_t len, oev_event **out, size_t *n, char *err,
              size_t cap)
{
    *out = NULL;
    *n = 0;
    if (ctype == OEV_CT_JSON) {
        oev_event *ev = calloc(1, sizeof *ev);
        if (!ev) {
            snprintf(err, cap, "out of memory");
            return OEV_ERR_NOMEM;
        }
        int rc = parse_one(buf, len, 0, ev, err, cap);
        if (rc != 0) {
            free(ev);
            return rc;
        }
        *out = ev;
        *n = 1;
        return 0;
    }
    if (ctype != OEV_CT_NDJSON) {
        snprintf(err, cap, "unsupported content type");
        return OEV_ERR_EVENT;
    }
    int rc = OEV_ERR_EVENT;
    size_t lines = 0, count = 0, alloc = 0;
    oev_event *evs = NULL;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t ll = (size_t)(eol - p);
        lines++;
        if (ll > 0 && p[ll - 1] == '\r')
            ll--;
        if (!blank(p, ll)) {
            if (count == OEV_MAX_BATCH) {
                snprintf(err, cap, "line %zu: too many events in one request (at most %d)", lines,
                         OEV_MAX_BATCH);
                rc = OEV_ERR_EVENT;
                goto fail;
            }
            if (count == alloc) {
                size_t na = alloc ? alloc * 2 : 16;
                oev_event *ne = realloc(evs, na * sizeof *ne);
                if (!ne) {
                    snprintf(err, cap, "out of memory");
                    rc = OEV_ERR_NOMEM;
                    goto fail;
                }
                evs = ne;
                alloc = na;
            }
            rc = parse_one(p, ll, lines, &evs[count], err, cap);
            if (rc != 0)
                goto fail;
            count++;
        }
        p = nl ? nl + 1 : end;
    }
    if (count == 0) {
        snprintf(err, cap, "no events in body");
        rc = OEV_ERR_EVENT;
        goto fail;
    }
    *out = evs;
    *n = count;
    return 0;
fail:
    oev_events_free(evs, count);
    return rc;
}
