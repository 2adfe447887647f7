/*
 * outbox-json.c - the JSON shapes shared by outboxctl --json and outboxd's admin API
 * (see outbox-json.h).
 */
#include "outbox-json.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "outboxctl-time.h"

json_t *ctl_json_time(int64_t ms)
{
    if (ms == 0 || ms == INT64_MAX)
        return json_null();
    char b[40];
    ctl_time_rfc3339(ms, b, sizeof b);
    return json_string(b);
}

json_t *ctl_json_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

int ctl_body_is_json(const unsigned char *body, size_t len)
{
    if (len == 0)
        return 0;
    json_error_t e;
    json_t *v = json_loadb((const char *)body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        return 0;
    json_decref(v);
    return 1;
}

/* Drop insignificant whitespace from valid JSON text; out holds len+1 bytes. */
static size_t json_minify(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = in[i];
        if (in_str) {
            out[o++] = (char)ch;
            if (ch == '\\' && i + 1 < len)
                out[o++] = (char)in[++i];
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
            out[o++] = '"';
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

int ctl_json_print_with_body(json_t *obj, const unsigned char *body, size_t len, FILE *f)
{
    int rc = -1;
    char *head = json_dumps(obj, JSON_COMPACT);
    char *mini = NULL, *b64 = NULL;
    json_decref(obj);
    if (!head)
        goto out;
    size_t hl = strlen(head);
    if (hl < 2 || head[hl - 1] != '}')
        goto out;
    head[hl - 1] = '\0';
    int is_json = ctl_body_is_json(body, len);
    int multi_line = is_json && (memchr(body, '\n', len) || memchr(body, '\r', len));
    if (!is_json || multi_line) {
        b64 = ctl_base64_encode(body, len);
        if (!b64)
            goto out;
    }
    fputs(head, f);
    fputs(hl > 2 ? "," : "", f);
    if (is_json && !multi_line) {
        fputs("\"body\":", f);
        fwrite(body, 1, len, f);
    } else if (is_json) {
        mini = malloc(len + 1);
        if (!mini)
            goto out;
        json_minify(body, len, mini);
        fprintf(f, "\"body\":%s,\"body_base64\":\"%s\"", mini, b64);
    } else {
        fprintf(f, "\"body_base64\":\"%s\"", b64);
    }
    fputs("}\n", f);
    rc = 0;
out:
    free(head);
    free(mini);
    free(b64);
    return rc;
}

char *ctl_base64_encode(const unsigned char *in, size_t len)
{
    if (len > (size_t)INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

const char *ctl_webhook_id(const obx_delivery *d, char *buf, size_t n)
{
    snprintf(buf, n, "%s", d->webhook_id); /* obx_delivery_id(), filled by the store */
    return buf;
}

const char *ctl_state_label(const obx_delivery *d)
{
    const char *n = obx_state_name(d->state);
    return n ? n : "unknown";
}

static int set(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

json_t *ctl_event_json(const obx_event *ev)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "id", json_integer((json_int_t)ev->id));
    bad |= set(o, "type", json_string(ev->type));
    bad |= set(o, "action", json_string(ev->action));
    bad |= set(o, "received", ctl_json_time(ev->received_ms));
    bad |= set(o, "received_ms", json_integer(ev->received_ms));
    bad |= set(o, "body_bytes", json_integer((json_int_t)ev->body_len));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Length of the valid UTF-8 sequence at s[i] (1..4), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    unsigned char ch = s[i];
    if (ch < 0x80)
        return 1;
    size_t n = (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 : (ch & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || i + n > len || ch == 0xC0 || ch == 0xC1 || ch > 0xF4)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
    return n;
}

int ctl_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = utf8_seq(s, i, len)))
            return 0;
    return 1;
}

void ctl_print_escaped(const unsigned char *s, size_t len, FILE *f)
{
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        size_t n = utf8_seq(s, i, len);
        if (n > 1 && !(ch == 0xC2 && s[i + 1] < 0xA0)) { /* C2 80..9F: C1 controls */
            fwrite(s + i, 1, n, f);
            i += n;
            continue;
        }
        if (ch == '\\')
            fputs("\\\\", f);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\r')
            fputs("\\r", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, f);
        else
            fprintf(f, "\\x%02x", ch);
        i++;
    }
}

/* A string for bytes a receiver sent: as they are when valid UTF-8, else escaped
 * (ctl_print_escaped's form). New reference, NULL when out of memory. */
static json_t *peer_string(const unsigned char *s, size_t len)
{
    if (ctl_utf8_valid(s, len))
        return json_stringn((const char *)s, len);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    ctl_print_escaped(s, len, f);
    fclose(f);
    json_t *v = buf ? json_stringn(buf, n) : NULL;
    free(buf);
    return v;
}

/* An attempt's captured response: {"headers":{name:value},"body":text|null,
 * "body_base64":...,"body_size":N,"body_truncated":bool}. */
static json_t *response_json(const obx_attempt *a)
{
    json_t *r = json_object(), *h = json_object();
    int bad = !r || set(r, "headers", h);
    for (size_t i = 0; !bad && i < a->n_headers; i++) {
        json_t *v =
            peer_string((const unsigned char *)a->headers[i].value, strlen(a->headers[i].value));
        json_t *k =
            peer_string((const unsigned char *)a->headers[i].name, strlen(a->headers[i].name));
        bad |= !k || set(h, json_string_value(k), v);
        json_decref(k);
    }
    if (!bad && a->body) {
        int text = ctl_utf8_valid(a->body, a->body_len);
        bad |=
            set(r, "body", text ? json_stringn((const char *)a->body, a->body_len) : json_null());
        if (!text) {
            char *b64 = ctl_base64_encode(a->body, a->body_len);
            bad |= set(r, "body_base64", b64 ? json_string(b64) : NULL);
            free(b64);
        }
    }
    if (!bad)
        bad |= set(r, "body_size", json_integer((json_int_t)a->body_size));
    if (!bad)
        bad |= set(r, "body_truncated", json_boolean(a->body_size > a->body_len));
    if (bad) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *ctl_delivery_json(const obx_delivery *d, const char *sink_name, int history)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "sink", json_string(sink_name));
    bad |= set(o, "sink_id", json_integer(d->sink_id));
    char wid[OBX_DELIVERY_ID_MAX];
    bad |= set(o, "webhook_id", json_string(ctl_webhook_id(d, wid, sizeof wid)));
    bad |= set(o, "state", json_string(ctl_state_label(d)));
    bad |= set(o, "in_doubt", json_boolean(d->in_doubt));
    bad |= set(o, "attempts", json_integer(d->attempts));
    bad |= set(o, "total_attempts", json_integer(d->total_attempts));
    bad |= set(o, "replays", json_integer(d->replays));
    bad |= set(o, "first_attempt", ctl_json_time(d->first_attempt_ms));
    bad |= set(o, "last_attempt", ctl_json_time(d->last_attempt_ms));
    bad |= set(o, "next_attempt",
               d->state == OBX_STATE_PENDING || d->state == OBX_STATE_INFLIGHT
                   ? ctl_json_time(d->next_attempt_ms)
                   : json_null());
    bad |= set(o, "deadline", ctl_json_time(d->deadline_ms));
    bad |= set(o, "done", ctl_json_time(d->done_ms));
    bad |= set(o, "last_status", d->last_status ? json_integer(d->last_status) : json_null());
    bad |= set(o, "last_error", ctl_json_str(d->last_error));
    bad |= set(o, "reason", ctl_json_str(d->reason));
    bad |= set(o, "first_attempt_ms", json_integer(d->first_attempt_ms));
    bad |= set(o, "last_attempt_ms", json_integer(d->last_attempt_ms));
    bad |= set(o, "next_attempt_ms", json_integer(d->next_attempt_ms));
    bad |= set(o, "deadline_ms", json_integer(d->deadline_ms));
    bad |= set(o, "done_ms", json_integer(d->done_ms));
    if (history) {
        json_t *h = json_array();
        bad |= set(o, "history", h);
        for (size_t i = 0; h && i < d->n_history; i++) {
            const obx_attempt *a = &d->history[i];
            json_t *ao = json_object();
            if (!ao || json_array_append_new(h, ao)) {
                bad = 1;
                break;
            }
            bad |= set(ao, "started", ctl_json_time(a->started_ms));
            bad |= set(ao, "started_ms", json_integer(a->started_ms));
            bad |= set(ao, "duration_ms", json_integer(a->duration_ms));
            bad |= set(ao, "status", a->status ? json_integer(a->status) : json_null());
            bad |= set(ao, "error", ctl_json_str(a->error));
            if (a->n_headers || a->body)
                bad |= set(ao, "response", response_json(a));
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int ctl_state_filter(const char *name, int *state)
{
    if (strcmp(name, "all") == 0)
        *state = 0;
    else if (strcmp(name, "in-flight") == 0 || strcmp(name, "in_flight") == 0)
        *state = OBX_STATE_INFLIGHT;
    else if (!(*state = obx_state_parse(name)))
        return -1;
    return 0;
}

void ctl_sink_stats_json(json_t *arr, const obx_sink_stats *ss, int64_t now, int conf)
{
    json_t *o = json_object();
    if (conf >= 0)
        json_object_set_new(o, "configured", json_boolean(conf));
    json_object_set_new(o, "name", json_string(ss->name));
    json_object_set_new(o, "id", json_integer(ss->id));
    json_object_set_new(o, "pending", json_integer((json_int_t)ss->pending));
    json_object_set_new(o, "inflight", json_integer((json_int_t)ss->inflight));
    json_object_set_new(o, "in_doubt", json_integer((json_int_t)ss->in_doubt));
    json_object_set_new(o, "delivered", json_integer((json_int_t)ss->delivered));
    json_object_set_new(o, "dead", json_integer((json_int_t)ss->dead));
    json_object_set_new(o, "oldest_pending", ctl_json_time(ss->oldest_pending_ms));
    json_object_set_new(o, "oldest_pending_age_ms",
                        ss->oldest_pending_ms ? json_integer(now - ss->oldest_pending_ms)
                                              : json_null());
    json_object_set_new(o, "next_due", ctl_json_time(ss->next_due_ms));
    json_array_append_new(arr, o);
}

void ctl_sink_stats_total(const obx_stats *st, obx_sink_stats *tot)
{
    memset(tot, 0, sizeof *tot);
    snprintf(tot->name, sizeof tot->name, "TOTAL");
    tot->next_due_ms = INT64_MAX;
    for (size_t i = 0; i < st->n_sinks; i++) {
        const obx_sink_stats *ss = &st->sinks[i];
        tot->pending += ss->pending;
        tot->inflight += ss->inflight;
        tot->in_doubt += ss->in_doubt;
        tot->delivered += ss->delivered;
        tot->dead += ss->dead;
        if (ss->oldest_pending_ms &&
            (!tot->oldest_pending_ms || ss->oldest_pending_ms < tot->oldest_pending_ms))
            tot->oldest_pending_ms = ss->oldest_pending_ms;
        if (ss->next_due_ms < tot->next_due_ms)
            tot->next_due_ms = ss->next_due_ms;
    }
}

void ctl_stats_json(json_t *o, const obx_stats *st, uint64_t cap, uint64_t high, int64_t now_ms,
                    int (*configured)(const void *ud, const char *name), const void *ud)
{
    json_object_set_new(o, "now", ctl_json_time(now_ms));
    json_object_set_new(o, "schema_version", json_integer(st->schema_version));
    json_object_set_new(o, "events", json_integer((json_int_t)st->events));
    json_object_set_new(o, "enqueued", json_integer((json_int_t)st->enqueued));
    json_object_set_new(o, "idempotency_keys", json_integer((json_int_t)st->idem_keys));
    json_object_set_new(o, "used_bytes", json_integer((json_int_t)st->used_bytes));
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)st->file_bytes));
    json_object_set_new(o, "max_size", json_integer((json_int_t)cap));
    json_object_set_new(o, "high_water", json_integer((json_int_t)high));
    json_object_set_new(o, "map_size", json_integer((json_int_t)st->map_size));
    json_object_set_new(o, "full", json_boolean(st->used_bytes >= high));
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < st->n_sinks; i++)
        ctl_sink_stats_json(arr, &st->sinks[i], now_ms, configured(ud, st->sinks[i].name));
    json_object_set_new(o, "sinks", arr);
    obx_sink_stats tot;
    ctl_sink_stats_total(st, &tot);
    json_t *t = json_array();
    if (t)
        ctl_sink_stats_json(t, &tot, now_ms, -1);
    json_t *t0 = json_incref(json_array_get(t, 0));
    json_object_del(t0, "name");
    json_object_del(t0, "id");
    json_object_set_new(o, "total", t0 ? t0 : json_null());
    json_decref(t);
}
