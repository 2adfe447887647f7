/*
 * outboxd-log.c - one structured line per call to stderr, logfmt text or JSON (see
 * outboxd-log.h).
 *
 * Lines are formatted into a stack buffer and written with one write(2), which keeps
 * lines from concurrent threads whole. Values are escaped for the chosen format, so a
 * value can never forge a field or a line.
 */
#include "outboxd-log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gotmpl/gojson.h"

#define LINE_MAX_BYTES 4096

static atomic_int min_level = OLOG_INFO;
static atomic_int out_format = OLOG_TEXT;
static atomic_int out_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int olog_level_parse(const char *name, olog_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (olog_level)i;
            return 0;
        }
    }
    return -1;
}

int olog_format_parse(const char *name, olog_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = OLOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = OLOG_JSON;
    else
        return -1;
    return 0;
}

void olog_setup(olog_level level, olog_format format)
{
    atomic_store(&min_level, (int)level);
    atomic_store(&out_format, (int)format);
}

void olog_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

int olog_enabled(olog_level level)
{
    return (int)level >= atomic_load(&min_level);
}

/* A bounded appender: once full, further output is dropped (len stops at cap - 1). */
typedef struct sbuf {
    char *p;
    size_t cap, len;
    int full;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->full)
        return;
    if (b->len + n >= b->cap) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string literal, escaped by the one JSON string encoder (gojson_encode_string:
 * Go's encoding/json rules, invalid UTF-8 as U+FFFD). Out of memory writes "?". */
static void put_json_string(sbuf *b, const char *s)
{
    char *q = NULL;
    size_t n = 0;
    s = s ? s : "";
    if (gojson_encode_string(s, strlen(s), &q, &n) != 0) {
        put(b, "\"?\"", 3);
        return;
    }
    put(b, q, n);
    free(q);
}

static int text_needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == '=' || *c == '\\' || *c == 0x7f)
            return 1;
    return 0;
}

static void put_text_value(sbuf *b, const char *s)
{
    s = s ? s : "";
    if (!text_needs_quotes(s)) {
        puts_(b, s);
        return;
    }
    put_json_string(b, s); /* the same escaping reads well in text too */
}

static void put_ts(sbuf *b, long long ts_ms)
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    char ts[40];
    gmtime_r(&secs, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03lldZ", ts_ms % 1000);
    puts_(b, ts);
}

size_t olog_format_line(char *buf, size_t cap, olog_format format, long long ts_ms,
                        olog_level level, const char *msg, const olog_field *fields)
{
    /* Keep room for the closing brace and newline, so a truncated line stays valid. */
    sbuf b = {buf, cap > 3 ? cap - 2 : 1, 0, 0};
    char num[32];
    const char *lvl = level_names[(int)level & 3];
    if (format == OLOG_JSON) {
        puts_(&b, "{\"ts\":\"");
        put_ts(&b, ts_ms);
        puts_(&b, "\",\"level\":\"");
        puts_(&b, lvl);
        puts_(&b, "\",\"msg\":");
        put_json_string(&b, msg);
    } else {
        puts_(&b, "time=");
        put_ts(&b, ts_ms);
        puts_(&b, " level=");
        puts_(&b, lvl);
        puts_(&b, " msg=");
        put_text_value(&b, msg);
    }
    for (const olog_field *f = fields; f && f->kind != OLOG_END; f++) {
        size_t mark = b.len;
        if (format == OLOG_JSON) {
            put(&b, ",", 1);
            put_json_string(&b, f->key);
            put(&b, ":", 1);
        } else {
            put(&b, " ", 1);
            puts_(&b, f->key);
            put(&b, "=", 1);
        }
        if (f->kind == OLOG_INT) {
            int n = snprintf(num, sizeof num, "%lld", f->i);
            put(&b, num, (size_t)n);
        } else if (format == OLOG_JSON) {
            put_json_string(&b, f->s);
        } else {
            put_text_value(&b, f->s);
        }
        if (b.full) { /* drop the partial field, keep what is whole */
            b.len = mark;
            break;
        }
    }
    /* The two reserved bytes always fit. */
    if (format == OLOG_JSON)
        buf[b.len++] = '}';
    buf[b.len++] = '\n';
    if (b.len < cap)
        buf[b.len] = '\0';
    return b.len;
}

void olog_write(olog_level level, const char *msg, const olog_field *fields)
{
    if (!olog_enabled(level))
        return;
    char line[LINE_MAX_BYTES + 1];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    size_t n = olog_format_line(line, sizeof line, (olog_format)atomic_load(&out_format), ms, level,
                                msg, fields);
    int fd = atomic_load(&out_fd);
    const char *p = line;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}
