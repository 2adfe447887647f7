/*
 * gojson.c - Go-compatible JSON: json.Marshal of generic JSON values, of Go values and of
 * the Event struct (encoding/json's escaping, sorted map keys, Go float formatting), and
 * json.Valid.
 */
#include "gotmpl-internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gojson_format_float(double v, char *buf, size_t size)
{
    if (!isfinite(v))
        return -1;
    gobuf b;
    gobuf_init(&b, 0);
    double a = fabs(v);
    int e = a != 0 && (a < 1e-6 || a >= 1e21);
    gofloat_format(&b, v, e ? 'e' : 'f', -1);
    if (b.err) {
        gobuf_free(&b);
        return -1;
    }
    size_t n = b.len;
    if (e && n >= 4 && b.p[n - 4] == 'e' && b.p[n - 3] == '-' && b.p[n - 2] == '0') {
        b.p[n - 2] = b.p[n - 1];
        n--;
    }
    if (n + 1 > size) {
        gobuf_free(&b);
        return -1;
    }
    memcpy(buf, b.p, n);
    buf[n] = '\0';
    gobuf_free(&b);
    return (int)n;
}

/* ------------------------------------------------------------------ encoder */

int gojson__string(gobuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    gobuf_putc(b, '"');
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            gobuf_put(b, s + start, i - start);
            switch (c) {
            case '"':
            case '\\':
                gobuf_putc(b, '\\');
                gobuf_putc(b, (char)c);
                break;
            case '\b':
                gobuf_puts(b, "\\b");
                break;
            case '\f':
                gobuf_puts(b, "\\f");
                break;
            case '\n':
                gobuf_puts(b, "\\n");
                break;
            case '\r':
                gobuf_puts(b, "\\r");
                break;
            case '\t':
                gobuf_puts(b, "\\t");
                break;
            default: {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                gobuf_put(b, e, 6);
            }
            }
            i++;
            start = i;
            continue;
        }
        int size;
        int32_t r = goutf8_decode(u + i, n - i, &size);
        if (r == 0xFFFD && size == 1) {
            gobuf_put(b, s + start, i - start);
            gobuf_puts(b, "\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            gobuf_put(b, s + start, i - start);
            gobuf_puts(b, r == 0x2028 ? "\\u2028" : "\\u2029");
            i += (size_t)size;
            start = i;
            continue;
        }
        i += (size_t)size;
    }
    gobuf_put(b, s + start, n - start);
    return gobuf_putc(b, '"');
}

static int number(gobuf *b, double v, char *err, size_t errlen)
{
    char buf[GOJSON_FLOAT_MAX];
    int n = gojson_format_float(v, buf, sizeof buf);
    if (n < 0) {
        if (errlen)
            snprintf(err, errlen, "json: unsupported value: %s",
                     isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
        return -1;
    }
    return gobuf_put(b, buf, (size_t)n);
}

static int kv_cmp(const void *a, const void *b)
{
    const gokv *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->k, y->k, m);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

size_t gokv_sorted(const json_t *o, gokv *a, size_t cap)
{
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)o); it && i < cap;
         it = json_object_iter_next((json_t *)o, it), i++) {
        a[i].k = json_object_iter_key(it);
        a[i].n = json_object_iter_key_len(it);
        a[i].v = json_object_iter_value(it);
    }
    if (i > 1)
        qsort(a, i, sizeof *a, kv_cmp);
    return i;
}

/* Iterative-enough recursion: jansson limits parse depth to 2048, which bounds this too. */
int gojson__value(gobuf *b, const json_t *v, char *err, size_t errlen)
{
    if (!v)
        return gobuf_puts(b, "null");
    switch (json_typeof(v)) {
    case JSON_NULL:
        return gobuf_puts(b, "null");
    case JSON_TRUE:
        return gobuf_puts(b, "true");
    case JSON_FALSE:
        return gobuf_puts(b, "false");
    case JSON_INTEGER:
        return number(b, (double)json_integer_value(v), err, errlen);
    case JSON_REAL:
        return number(b, json_real_value(v), err, errlen);
    case JSON_STRING:
        return gojson__string(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        gobuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                gobuf_putc(b, ',');
            int rc = gojson__value(b, json_array_get(v, i), err, errlen);
            if (rc)
                return rc;
        }
        return gobuf_putc(b, ']');
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        gokv *a = n ? malloc(n * sizeof *a) : NULL;
        if (n && !a) {
            b->err = GOTMPL_ENOMEM;
            return b->err;
        }
        n = gokv_sorted(v, a, n);
        gobuf_putc(b, '{');
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            if (i)
                gobuf_putc(b, ',');
            gojson__string(b, a[i].k, a[i].n);
            gobuf_putc(b, ':');
            rc = gojson__value(b, a[i].v, err, errlen);
        }
        free(a);
        return rc ? rc : gobuf_putc(b, '}');
    }
    }
    return gobuf_puts(b, "null");
}

static void actor_json(gobuf *b, const gotmpl_event *ev)
{
    static const char *const keys[ACT_N] = {"authentication", "ip", "email", "name", "picture"};
    gobuf_putc(b, '{');
    int first = 1;
    for (int i = 0; i < ACT_N; i++) {
        if (ev->actor[i].n == 0)
            continue;
        if (!first)
            gobuf_putc(b, ',');
        first = 0;
        gobuf_putc(b, '"');
        gobuf_puts(b, keys[i]);
        gobuf_puts(b, "\":");
        gojson__string(b, ev->actor[i].p, ev->actor[i].n);
    }
    gobuf_putc(b, '}');
}

int gojson__event(gobuf *b, const gotmpl_event *ev, char *err, size_t errlen)
{
    gobuf_puts(b, "{\"version\":");
    gojson__string(b, ev->version.p, ev->version.n);
    gobuf_puts(b, ",\"type\":");
    gojson__string(b, ev->type.p, ev->type.n);
    gobuf_puts(b, ",\"action\":");
    gojson__string(b, ev->action.p, ev->action.n);
    gobuf_puts(b, ",\"metadata\":{\"actor\":");
    actor_json(b, ev);
    gobuf_puts(b, "},\"payload\":");
    int rc = gojson__value(b, ev->payload, err, errlen);
    if (rc)
        return rc;
    gobuf_puts(b, ",\"timestamp\":");
    gojson__string(b, ev->timestamp.p, ev->timestamp.n);
    gobuf_puts(b, ",\"status\":");
    gojson__string(b, ev->status.p, ev->status.n);
    return gobuf_putc(b, '}');
}

int gojson__gv(gobuf *b, const gv *v, char *err, size_t errlen)
{
    switch (v->kind) {
    case GV_INVALID:
    case GV_NIL:
        return gobuf_puts(b, "null");
    case GV_BOOL:
        return gobuf_puts(b, v->u.b ? "true" : "false");
    case GV_INT: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        return gobuf_puts(b, buf);
    }
    case GV_UINT8: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        return gobuf_puts(b, buf);
    }
    case GV_FLOAT:
        return number(b, v->u.f, err, errlen);
    case GV_STRING:
        return gojson__string(b, v->u.s.p, v->u.s.n);
    case GV_MAP:
        return gojson__value(b, v->u.c.j, err, errlen);
    case GV_SLICE: {
        gobuf_putc(b, '[');
        for (size_t i = 0; i < v->u.c.len; i++) {
            if (i)
                gobuf_putc(b, ',');
            int rc = gojson__value(b, json_array_get(v->u.c.j, v->u.c.off + i), err, errlen);
            if (rc)
                return rc;
        }
        return gobuf_putc(b, ']');
    }
    case GV_EVENT:
        return gojson__event(b, v->u.ev, err, errlen);
    case GV_META:
        gobuf_puts(b, "{\"actor\":");
        actor_json(b, v->u.ev);
        return gobuf_putc(b, '}');
    case GV_ACTOR:
        actor_json(b, v->u.ev);
        return b->err;
    }
    return gobuf_puts(b, "null");
}

static int finish(gobuf *b, int rc, char **out, size_t *out_len)
{
    if (rc == 0 && !b->err && !b->p)
        gobuf_put(b, "", 0);
    if (rc == 0 && !b->err && !b->p) {
        b->p = malloc(1);
        if (!b->p)
            b->err = GOTMPL_ENOMEM;
        else
            b->p[0] = '\0';
    }
    if (rc || b->err) {
        gobuf_free(b);
        return rc == -1 ? GOTMPL_EVALUE : GOTMPL_ENOMEM;
    }
    *out = b->p;
    *out_len = b->len;
    return 0;
}

int gojson_encode(const json_t *v, char **out, size_t *out_len, char *err, size_t errlen)
{
    gobuf b;
    gobuf_init(&b, 0);
    int rc = gojson__value(&b, v, err, errlen);
    return finish(&b, rc, out, out_len);
}

int gojson_encode_string(const char *s, size_t len, char **out, size_t *out_len)
{
    gobuf b;
    gobuf_init(&b, 0);
    int rc = gojson__string(&b, s, len);
    return finish(&b, rc, out, out_len);
}

int gotmpl_event_to_json(const gotmpl_event *ev, char **out, size_t *out_len)
{
    gobuf b;
    gobuf_init(&b, 0);
    char err[64];
    int rc = gojson__event(&b, ev, err, sizeof err);
    return finish(&b, rc, out, out_len) ? GOTMPL_ENOMEM : GOTMPL_OK;
}

/* ------------------------------------------------------------------ json.Valid */

static size_t skip_ws(const unsigned char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static int hexd(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Scan a string starting at s[i] == '"'; returns index after it or 0 on error. */
static size_t scan_string(const unsigned char *s, size_t n, size_t i)
{
    i++;
    while (i < n) {
        unsigned c = s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            unsigned e = s[i + 1];
            if (e == 'u') {
                if (i + 5 >= n || !hexd(s[i + 2]) || !hexd(s[i + 3]) || !hexd(s[i + 4]) ||
                    !hexd(s[i + 5]))
                    return 0;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)e) || e == 0)
                return 0;
            i += 2;
            continue;
        }
        i++;
    }
    return 0;
}

static size_t scan_number(const unsigned char *s, size_t n, size_t i)
{
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i;
}

/* Scan `"key" :` at s[i] and the whitespace after it; index of the value, or 0. */
static size_t scan_key(const unsigned char *s, size_t n, size_t i)
{
    if (i >= n || s[i] != '"')
        return 0;
    i = scan_string(s, n, i);
    if (!i)
        return 0;
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != ':')
        return 0;
    return skip_ws(s, n, i + 1);
}

#define GOJSON_MAX_DEPTH 10000

int gojson_valid(const void *buf, size_t len)
{
    const unsigned char *s = buf;
    if (!s)
        return 0;
    /* stack of container kinds: 1 bit per level would do; a byte array keeps it simple */
    unsigned char *stack = malloc(GOJSON_MAX_DEPTH + 1);
    if (!stack)
        return 0;
    size_t depth = 0, i = skip_ws(s, len, 0);
    int ok = 0;
    for (;;) {
        /* expect a value at s[i] */
        if (i >= len)
            goto out;
        unsigned c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= GOJSON_MAX_DEPTH)
                goto out;
            stack[depth++] = (unsigned char)c;
            i = skip_ws(s, len, i + 1);
            if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
                goto after_value;
            }
            if (c == '{') {
                i = scan_key(s, len, i);
                if (!i)
                    goto out;
            }
            continue;
        } else if (c == '"') {
            i = scan_string(s, len, i);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            i = scan_number(s, len, i);
        } else if (len - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            i += 4;
        } else if (len - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            i += 5;
        } else if (len - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
        } else {
            goto out;
        }
        if (!i)
            goto out;
    after_value:
        for (;;) {
            i = skip_ws(s, len, i);
            if (depth == 0) {
                ok = i == len;
                goto out;
            }
            if (i >= len)
                goto out;
            unsigned char top = stack[depth - 1];
            if (s[i] == ',') {
                i = skip_ws(s, len, i + 1);
                if (top == '{') {
                    i = scan_key(s, len, i);
                    if (!i)
                        goto out;
                }
                break; /* next value */
            }
            if (s[i] == (top == '{' ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            goto out;
        }
    }
out:
    free(stack);
    return ok;
}
