/*
 * outboxd-log.h - structured, line-oriented logging for outboxd (stderr).
 *
 * One call writes one complete line (a single write(2), so lines from several threads
 * never interleave). Two formats: `text`, logfmt (`time=2026-11-27T00:00:00.123Z
 * level=info msg=started listen=127.0.0.1:8080 sinks=2`; a value with spaces, quotes, `=`
 * or control characters is double-quoted with JSON escapes) and `json`
 * (`{"ts":"...","level":"info","msg":"started","listen":"127.0.0.1:8080","sinks":2}`). Fields are
 * typed (string or integer) so JSON output keeps numbers as numbers. Callers must never pass
 * secrets or event bodies.
 *
 * All strings passed in are only read during the call; nothing is retained.
 */
#ifndef OUTBOXD_LOG_H
#define OUTBOXD_LOG_H

#include <stddef.h>

typedef enum olog_level {
    OLOG_DEBUG = 0,
    OLOG_INFO = 1,
    OLOG_WARN = 2,
    OLOG_ERROR = 3,
} olog_level;

typedef enum olog_format {
    OLOG_TEXT = 0,
    OLOG_JSON = 1,
} olog_format;

typedef enum olog_kind {
    OLOG_END = 0, /* terminates a field list */
    OLOG_STR = 1,
    OLOG_INT = 2,
} olog_kind;

typedef struct olog_field {
    const char *key; /* a bare identifier: [a-z0-9_] */
    olog_kind kind;
    const char *s; /* OLOG_STR; NULL prints as an empty string */
    long long i;   /* OLOG_INT */
} olog_field;

#define OLOG_S(k, v) ((olog_field){.key = (k), .kind = OLOG_STR, .s = (v)})
#define OLOG_I(k, v) ((olog_field){.key = (k), .kind = OLOG_INT, .i = (long long)(v)})

/* Parse "debug|info|warn|error" / "text|json"; return 0 and set *out, or -1. */
int olog_level_parse(const char *name, olog_level *out);
int olog_format_parse(const char *name, olog_format *out);

/* Set the minimum level and format (process-wide; call before starting threads). */
void olog_setup(olog_level min_level, olog_format format);

/* Redirect output to file descriptor `fd` (default 2); for tests. */
void olog_set_fd(int fd);

/* True when a line at `level` would be written. */
int olog_enabled(olog_level level);

/*
 * Format one line into buf (always NUL-terminated, truncated to cap with the JSON kept
 * well-formed); return its length including the trailing newline. `fields` ends with an
 * OLOG_END entry (may be NULL). `ts_ms` is the Unix time in ms to print.
 */
size_t olog_format_line(char *buf, size_t cap, olog_format format, long long ts_ms,
                        olog_level level, const char *msg, const olog_field *fields);

/* Write one line if `level` is enabled. `fields` as above. */
void olog_write(olog_level level, const char *msg, const olog_field *fields);

/* Convenience: olog(OLOG_INFO, "started", OLOG_S("listen", a), OLOG_I("sinks", n)). */
#define olog(level, msg, ...)                                                                      \
    olog_write((level), (msg), (const olog_field[]){__VA_ARGS__, {.kind = OLOG_END}})
#define olog0(level, msg) olog_write((level), (msg), NULL)

#endif
