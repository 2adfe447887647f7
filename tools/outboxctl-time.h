/*
 * outboxctl-time.h - times and durations as operators type and read them.
 *
 * Input: durations like `90s`, `30m`, `1h30m`, `7d`, `2w`, `500ms`; points in time as
 * RFC 3339 (`2026-11-26T10:00:00Z`, `...+02:00`, fractional seconds), a bare date
 * (`2026-11-26`, midnight UTC), `now`, or a duration meaning "that long ago" (`1h`).
 * Output: RFC 3339 in UTC with milliseconds, relative ages (`3m ago`, `in 5s`) and short
 * durations (`1h5m`, `120ms`). All times are Unix epoch milliseconds.
 * No allocation; errors are written into the caller's buffer (never NULL-terminated past
 * errlen) and name the text that was wrong.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_TIME_H
#define OUTBOX_TOOLS_OUTBOXCTL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Parse a duration: dlv_duration_parse (Go's grammar and units) plus d and w, no sign.
 * 0 ok, -1 with err filled. */
int ctl_duration_parse(const char *s, int64_t *ms, char *err, size_t errlen);

/* Parse a point in time; durations count back from now_ms. 0 ok, -1 with err filled. */
int ctl_time_parse(const char *s, int64_t now_ms, int64_t *out, char *err, size_t errlen);

/* "2026-11-26T10:00:00.000Z" (UTC). buf should hold 32 bytes. */
void ctl_time_rfc3339(int64_t ms, char *buf, size_t n);

/* "3m ago", "in 5s", "now" (within half a second). buf should hold 32 bytes. */
void ctl_age(int64_t t_ms, int64_t now_ms, char *buf, size_t n);

/* "1h5m", "3d4h", "12s", "120ms" (two most significant units). buf should hold 32 bytes. */
void ctl_duration_fmt(int64_t ms, char *buf, size_t n);

#endif
