/*
 * gotmpl/gotmpl.h - Go text/template engine for webhook bodies, faithful to Flipt.
 *
 * Flipt renders each configured webhook body with Go's text/template plus a `toJson`
 * function, with the audit event as dot (delivery/template/README.md). This engine parses
 * the same templates into a tree once (config load) and executes them per event so that
 * the rendered bytes equal Go's, or fails where Go fails with an error of the same kind
 * and Go's message text ("template: :1:3: executing \"\" at <.Payload.key>: ...").
 *
 * Supported (delivery/template/README.md lists it in full): text, trim markers, comments,
 * literals, variables, pipelines, parentheses, if/else if/else, with/else (also `else
 * with`), range over arrays, maps, integers with else/break/continue, the functions and eq
 * ne lt le gt ge and or not len index slice print println printf html urlquery js toJson.
 * Refused at parse time with a message starting "unsupported: ": define/template/block,
 * call, printf verbs other than %v %s %d %q %t %f %e %g %x %X %% (and explicit argument
 * indexes or '*' widths), complex/imaginary and some exotic number literals, non-ASCII
 * identifiers, and printing `.` or `.Metadata` (Go prints a pointer address there).
 * Printing those values in ways only visible at run time is an execution error with the
 * same "unsupported: " prefix.
 *
 * Known differences from Go (each fails visibly, never renders differently, except the
 * last three): caps on output, intermediate strings, steps, time (gotmpl_limits) and
 * nesting depth (200); number literals with '_', 0b/0o prefixes, hex floats or beyond
 * int64 are refused; methods of audit.Event (e.g. .DecodeToAttributes) are "can't evaluate
 * field"; the 0 flag with %s/%q is refused (Go changed it); event JSON with invalid UTF-8
 * is refused (Go would substitute U+FFFD); `slice` of an array takes len as its capacity
 * (Go's decoder may leave spare capacity, so slice beyond len differs); unicode.IsPrint
 * (for %q and js) is approximated outside Latin-1; js follows Go 1.19.
 *
 * Errors: every function that can fail returns a gotmpl_err (GOTMPL_OK = 0, else a
 * negative code), never logs, and where it takes (err, errlen) writes a NUL-terminated
 * message naming what was wrong and where into err, cut to errlen (err may be NULL when
 * errlen is 0; it is set to "" on success). gojson_* (gotmpl/gojson.h) use the same codes.
 *
 * Ownership: inputs are borrowed and never retained (gotmpl_parse copies the source).
 * Returned objects (gotmpl, gotmpl_event) belong to the caller and are released with their
 * _free function; returned byte buffers are malloc'd, NUL-terminated (the NUL is not
 * counted in the length), owned by the caller (free()), and set only on success.
 *
 * Threads: a parsed gotmpl and a gotmpl_event are immutable; any number of threads may
 * execute the same template against the same or different events at once. The library
 * keeps no global state.
 */
#ifndef GOTMPL_GOTMPL_H
#define GOTMPL_GOTMPL_H

#include <stddef.h>
#include <stdint.h>

typedef struct gotmpl gotmpl;             /* parsed template; immutable */
typedef struct gotmpl_event gotmpl_event; /* a decoded Flipt audit event; immutable */

/* The library's error codes (see "Errors" above). */
typedef enum gotmpl_err {
    GOTMPL_OK = 0,
    GOTMPL_ESYNTAX = -1, /* parse error or unsupported construct (message in err) */
    GOTMPL_ENOMEM = -2,  /* allocation failed */
    GOTMPL_EEXEC = -3,   /* execution error, as Go would report it (message in err) */
    GOTMPL_ETOOBIG = -4, /* output, intermediate strings or steps over their cap */
    GOTMPL_EEVENT = -5,  /* event JSON not decodable into the Flipt Event model */
    GOTMPL_EJSON = -6,   /* rendered body is not valid JSON (gotmpl_render only) */
    GOTMPL_ETIME = -7,   /* execution ran past its time budget (gotmpl_limits.max_ns) */
    GOTMPL_EVALUE = -8,  /* a value JSON cannot encode: NaN or +-Inf (gojson_encode) */
} gotmpl_err;

/* A short static description of a code ("unknown error" for any other value); never NULL,
 * never to be freed. */
const char *gotmpl_strerror(int rc);

/* Default output cap (1 MiB), base of the step budget, and default time budget (50 ms; a
 * typical body renders in microseconds). */
#define GOTMPL_DEFAULT_MAX_OUT (1024u * 1024u)
#define GOTMPL_MAX_STEPS_BASE  10000000ULL
#define GOTMPL_DEFAULT_MAX_NS  (50ULL * 1000 * 1000)

/*
 * The caps on one execution, so that a hostile or careless template fails cleanly instead
 * of exhausting memory or a thread (Go has none of these). A field of 0 means no cap of
 * that kind (for tests; every entry point of outbox takes gotmpl_limits_default).
 * Exceeding a cap fails with GOTMPL_ETOOBIG ("template: output exceeds N bytes",
 * "template: intermediate values exceed N bytes ...", "template: execution exceeds N steps
 * ...") or GOTMPL_ETIME ("template: render exceeded 50ms budget").
 */
typedef struct gotmpl_limits {
    size_t max_out;     /* bytes of output */
    size_t max_scratch; /* bytes of strings computed during the execution, in total */
    uint64_t max_steps; /* nodes walked plus range iterations */
    uint64_t max_ns;    /* wall-clock (CLOCK_MONOTONIC) nanoseconds, checked every few steps */
} gotmpl_limits;

/*
 * The one set of default caps, used by every entry point (the delivery engine, `outboxctl
 * render`): max_out as given (0 = GOTMPL_DEFAULT_MAX_OUT), max_scratch 8 * max_out +
 * 1 MiB, max_steps GOTMPL_MAX_STEPS_BASE + 16 * max_out, max_ns GOTMPL_DEFAULT_MAX_NS.
 */
gotmpl_limits gotmpl_limits_default(size_t max_out);

/*
 * Parse a template.
 * @param[in]  src, len  template source (borrowed; copied, may contain NULs).
 * @param[out] out       the parsed template on success (free with gotmpl_free); untouched
 *                       on failure.
 * @param[out] err       on failure: Go's message ("template: :LINE: ...") or
 *                       "template: :LINE: unsupported: ...".
 * @return GOTMPL_OK, GOTMPL_ESYNTAX or GOTMPL_ENOMEM.
 */
int gotmpl_parse(const char *src, size_t len, gotmpl **out, char *err, size_t errlen);

/* Free a parsed template. NULL is fine. */
void gotmpl_free(gotmpl *t);

/*
 * Decode an event body (the JSON producers POST, Flipt's wire shape) into the Event
 * model: string fields version/type/action/timestamp/status (absent or null => ""),
 * metadata.actor (absent/null => empty actor), payload (generic JSON, numbers as float64;
 * absent or null => nil). Keys match Go's rules (exact, else case-insensitive).
 * @param[in]  json, len  event bytes (borrowed; the event keeps its own copy).
 * @param[out] out        the event on success (free with gotmpl_event_free).
 * @param[out] err        on failure: what was wrong and where.
 * @return GOTMPL_OK, GOTMPL_EEVENT or GOTMPL_ENOMEM.
 */
int gotmpl_event_parse(const void *json, size_t len, gotmpl_event **out, char *err, size_t errlen);

/* Free an event. NULL is fine. */
void gotmpl_event_free(gotmpl_event *e);

struct json_t; /* <jansson.h> */

/*
 * The member of JSON object `obj` that Go's encoding/json stores into the struct field with
 * JSON name `name` (ASCII `name`): keys match under Go's case folding (ASCII letters in
 * any case, and U+017F and U+212A standing for 's' and 'k'), and of several matching
 * members the last in the document wins (Flipt decodes events this way). The one key-match
 * rule for events: the event decoder and outboxd's ingest validation use it.
 * @return a borrowed reference (valid while obj is), or NULL when no key matches or obj is
 *         not an object.
 */
struct json_t *gotmpl_json_field(const struct json_t *obj, const char *name);

/*
 * Execute a template with the event as dot.
 * @param[in]  lim      the caps (see gotmpl_limits; borrowed); NULL = gotmpl_limits_default(0).
 *                      The time budget counts from this call.
 * @param[out] out      malloc'd output, NUL-terminated (NUL not counted), caller frees;
 *                      set only on success.
 * @param[out] out_len  output length.
 * @param[out] err      on failure: Go's message, e.g.
 *                      "template: :1:11: executing \"\" at <.Payload.key>: nil pointer
 *                      evaluating interface {}.key", or the cap that was exceeded.
 * @return GOTMPL_OK, GOTMPL_EEXEC, GOTMPL_ETOOBIG, GOTMPL_ETIME or GOTMPL_ENOMEM.
 */
int gotmpl_execute(const gotmpl *t, const gotmpl_event *ev, const gotmpl_limits *lim, char **out,
                   size_t *out_len, char *err, size_t errlen);

/*
 * What Flipt's template sink does per event: decode the event, execute, and require the
 * output to pass json.Valid (else GOTMPL_EJSON with "invalid JSON: <rendered>", the
 * rendered text cut to 160 bytes and "..."). The delivery engine renders through this.
 * @param[in]  event, event_len  the event body as stored (borrowed).
 * Other parameters and ownership as gotmpl_execute.
 * @return GOTMPL_OK, GOTMPL_EEVENT, GOTMPL_EEXEC, GOTMPL_ETOOBIG, GOTMPL_ETIME, GOTMPL_EJSON
 *         or GOTMPL_ENOMEM.
 */
int gotmpl_render(const gotmpl *t, const void *event, size_t event_len, const gotmpl_limits *lim,
                  char **out, size_t *out_len, char *err, size_t errlen);

/*
 * The event encoded as Go's json.Marshal of Flipt's Event (= `toJson .`, the URL-mode body
 * Flipt v1.61 would send): struct key order, actor fields omitted when empty, payload with
 * sorted keys, "status" always present.
 * @param[out] out, out_len  malloc'd NUL-terminated bytes, caller frees.
 * @return GOTMPL_OK or GOTMPL_ENOMEM.
 */
int gotmpl_event_to_json(const gotmpl_event *ev, char **out, size_t *out_len);

#endif
