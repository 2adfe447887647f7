/*
 * delivery/duration.h - Go's time.ParseDuration and a byte-size parser, for config values.
 *
 * dlv_duration_parse follows Go's time.ParseDuration exactly (README, Configuration): an
 * optional sign, then one or more "<digits>[.<digits>]<unit>" with units ns, us, µs (U+00B5),
 * μs (U+03BC), ms, s, m, h; components sum; a bare "0" is allowed; no days. The error texts
 * are Go's: `time: invalid duration "x"`, `time: missing unit in duration "15"`,
 * `time: unknown unit "d" in duration "1d"` (non-printable and non-ASCII bytes quoted as
 * \xHH, as Go does).
 *
 * dlv_size_parse reads sizes: plain bytes ("1048576"), binary units KiB MiB GiB TiB (powers of
 * 1024), decimal units KB MB GB TB (powers of 1000, as the SI prefixes say), and B; an optional
 * space between number and unit; integers only.
 */
#ifndef OUTBOX_DELIVERY_DURATION_H
#define OUTBOX_DELIVERY_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/error.h"

/*
 * @param[in]  s       NUL-terminated text (borrowed).
 * @param[out] ret_ns  nanoseconds; untouched on failure.
 * @param[out] err     Go's error text on failure (may be NULL).
 * @return DLV_OK, or DLV_ERR_INVALID on a syntax error / overflow.
 */
int dlv_duration_parse(const char *s, int64_t *ret_ns, char *err, size_t errlen);

/* Same, with an explicit length (s need not be NUL-terminated). */
int dlv_duration_parse_n(const char *s, size_t len, int64_t *ret_ns, char *err, size_t errlen);

/* Flags of dlv_duration_parse_units. */
#define DLV_DURATION_DAYS 1u /* also accept d (24h) and w (7d): outboxctl's "--since 7d" */

/*
 * The one duration parser; the functions above are it with flags 0 (Go exactly). With
 * DLV_DURATION_DAYS the units d and w are added; grammar and error texts stay Go's.
 */
int dlv_duration_parse_units(const char *s, size_t len, unsigned flags, int64_t *ret_ns, char *err,
                             size_t errlen);

/* Parse and convert to milliseconds, rounding a sub-millisecond remainder up (so "1ns" is
 * 1 ms, not 0: a configured wait never becomes "no wait"; 0 stays 0, negatives round
 * toward zero). */
int dlv_duration_parse_ms(const char *s, int64_t *ret_ms, char *err, size_t errlen);

/* Nanoseconds to milliseconds with the rounding described above. */
int64_t dlv_ns_to_ms(int64_t ns);

/*
 * Format like Go's Duration.String ("1h2m3.5s", "500ms", "0s").
 * @return the length written (excluding NUL), truncated to buflen-1.
 */
size_t dlv_duration_format(int64_t ns, char *buf, size_t buflen);

/*
 * @param[out] ret_bytes  the size; untouched on failure.
 * @param[out] err        e.g. `invalid size "10XB": unknown unit "XB" (use B, KiB, MiB, GiB,
 *                        TiB, or KB, MB, GB, TB for powers of 1000)`.
 * @return DLV_OK, or DLV_ERR_INVALID (empty, negative, no digits, unknown unit, overflow).
 */
int dlv_size_parse(const char *s, uint64_t *ret_bytes, char *err, size_t errlen);

#endif
