/*
 * gotmpl/gojson.h - JSON exactly as Go's encoding/json writes and checks it.
 *
 * Encoding follows json.Marshal of the value Go would hold after decoding the same JSON
 * into interface{}: compact, object keys sorted byte-wise, strings with Go's escapes
 * (\" \\ \n \r \t \b \f, other C0 controls as \u00xx, < > & as \u003c \u003e \u0026,
 * U+2028/U+2029 escaped, invalid UTF-8 replaced by \ufffd), numbers as float64 in Go's
 * shortest round-trip form ("1e+21", "1e-7", "12345678901234567000").
 *
 * Errors are gotmpl_err codes (gotmpl/gotmpl.h). All functions are thread-safe and keep
 * no state. Values passed in are borrowed and
 * never retained. Buffers returned through `out` are malloc'd, NUL-terminated (the NUL is
 * not counted in the length) and owned by the caller (free()).
 */
#ifndef GOTMPL_GOJSON_H
#define GOTMPL_GOJSON_H

#include <jansson.h>
#include <stddef.h>

#include "gotmpl/gotmpl.h" /* gotmpl_err */

/* Size of a buffer that holds any formatted float64 plus the NUL. */
#define GOJSON_FLOAT_MAX 40

/*
 * Go's json.Valid: exactly one JSON value with optional surrounding whitespace (space, tab,
 * CR, LF); empty input is invalid; nesting deeper than 10000 is invalid (as in Go).
 * @param[in] buf, len  bytes to check (buf may be NULL when len == 0; borrowed).
 * @return 1 valid, 0 not.
 */
int gojson_valid(const void *buf, size_t len);

/*
 * Format a float64 as encoding/json does: shortest round-trip digits, plain decimal when
 * 1e-6 <= |v| < 1e21 (or v == 0), otherwise exponent form "1e+21" / "1e-7".
 * @param[out] buf  at least GOJSON_FLOAT_MAX bytes; NUL-terminated.
 * @return the length written, or -1 for NaN/±Inf (Go's "json: unsupported value").
 */
int gojson_format_float(double v, char *buf, size_t size);

/*
 * Encode a jansson value as Go would marshal the interface{} it decodes to (integers are
 * treated as float64; object keys sorted; see above).
 * @param[in]  v        the value (borrowed); NULL encodes as "null".
 * @param[out] out      malloc'd NUL-terminated bytes, caller frees; untouched on failure.
 * @param[out] out_len  length of *out without the NUL.
 * @return GOTMPL_OK, GOTMPL_EVALUE on a value Go cannot encode (NaN/Inf, message in err),
 *         GOTMPL_ENOMEM.
 */
int gojson_encode(const json_t *v, char **out, size_t *out_len, char *err, size_t errlen);

/*
 * Encode bytes as a Go JSON string literal (quotes included, HTML-escaped as above).
 * @return GOTMPL_OK or GOTMPL_ENOMEM. Same ownership as gojson_encode.
 */
int gojson_encode_string(const char *s, size_t len, char **out, size_t *out_len);

#endif
