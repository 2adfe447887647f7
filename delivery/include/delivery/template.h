/*
 * delivery/template.h - Go text/template engine for webhook bodies, faithful to Flipt.
 *
 * Flipt renders each configured webhook body with Go's text/template plus a `toJson`
 * function, with the audit event as dot (flipt-compat.md §3). This engine parses the
 * same templates into a tree once (config load) and executes them per event so that the
 * rendered bytes equal Go's, or fails where Go fails with an error of the same kind and
 * Go's message text ("template: :1:3: executing \"\" at <.Payload.key>: ...").
 *
 * Supported: the MUST and most SHOULD items of flipt-compat.md §3.6 (text, trim markers,
 * comments, literals, variables, pipelines, parentheses, if/else if/else, with/else
 * (also `else with`), range over arrays, maps, integers with else/break/continue, the
 * functions and eq ne lt le gt ge and or not len index slice print println printf html
 * urlquery js toJson). Refused at parse time with a message starting "unsupported: ":
 * define/template/block, call, printf verbs other than %v %s %d %q %t %f %e %g %x %X %%
 * (and explicit argument indexes or '*' widths), complex/imaginary and some exotic number
 * literals, non-ASCII identifiers, and printing `.` or `.Metadata` (Go prints a pointer
 * address there). Printing those values in ways only visible at run time is an execution
 * error with the same "unsupported: " prefix.
 *
 * Known differences from Go (each fails visibly, never renders differently, except the
 * last three): caps on output, intermediate strings, steps and nesting depth (200);
 * number literals with '_', 0b/0o prefixes, hex floats or beyond int64 are refused;
 * methods of audit.Event (e.g. .DecodeToAttributes) are "can't evaluate field"; the 0
 * flag with %s/%q is refused (Go changed it); event JSON with invalid UTF-8 is refused
 * (Go would substitute U+FFFD); `slice` of an array takes len as its capacity (Go's
 * decoder may leave spare capacity, so slice beyond len differs); unicode.IsPrint (for
 * %q and js) is approximated outside Latin-1; js follows Go 1.19 (spec vector T31).
 *
 * Threads: a parsed gotmpl and a gotmpl_event are immutable; any number of threads may
 * execute the same template against the same or different events at once.
 */
#ifndef OUTBOX_DELIVERY_TEMPLATE_H
#define OUTBOX_DELIVERY_TEMPLATE_H

#include <stddef.h>

/* Base of the execution step budget (see gotmpl_execute). */
#define GOTMPL_MAX_STEPS_BASE 10000000ULL

typedef struct gotmpl gotmpl;             /* parsed template; immutable */
typedef struct gotmpl_event gotmpl_event; /* a decoded Flipt audit event; immutable */

/* Return codes. */
enum {
    GOTMPL_OK = 0,
    GOTMPL_ESYNTAX = -1, /* parse error or unsupported construct (message in err) */
    GOTMPL_ENOMEM = -2,  /* allocation failed */
    GOTMPL_EEXEC = -3,   /* execution error, as Go would report it (message in err) */
    GOTMPL_ETOOBIG = -4, /* output, intermediate values or steps over the cap */
    GOTMPL_EEVENT = -5,  /* event JSON not decodable into the Flipt Event model */
    GOTMPL_EJSON = -6,   /* rendered body is not valid JSON (gotmpl_render only) */
};

/*
 * Parse a template.
 * @param[in]  src, len  template source (borrowed; copied as needed, may contain NULs).
 * @param[out] out       the parsed template on success (free with gotmpl_free); untouched
 *                       on failure.
 * @param[out] err       on failure: Go's message ("template: :LINE: ...") or
 *                       "template: :LINE: unsupported: ..."; may be NULL when errlen is 0.
 * @return GOTMPL_OK, GOTMPL_ESYNTAX or GOTMPL_ENOMEM.
 */
int gotmpl_parse(const char *src, size_t len, gotmpl **out, char *err, size_t errlen);

/* Free a parsed template. NULL is fine. */
void gotmpl_free(gotmpl *t);

/*
 * Decode an event body (the JSON producers POST, Flipt's wire shape §1.2) into the Event
 * model: string fields version/type/action/timestamp/status (absent or null => ""),
 * metadata.actor (absent/null => empty actor), payload (generic JSON, numbers as float64;
 * absent or null => nil). Keys match Go's rules (exact, else case-insensitive).
 * @param[in]  json, len  event bytes (borrowed).
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
 * rule for events: the event decoder above and outboxd's ingest validation use it.
 * @return a borrowed reference (valid while obj is), or NULL when no key matches or obj is
 *         not an object.
 */
struct json_t *gotmpl_json_field(const struct json_t *obj, const char *name);

/*
 * Execute a template with the event as dot.
 * @param[in]  max_out  cap on the output in bytes (0 = no cap other than memory).
 *                      Intermediate strings are capped at 8 * max_out + 1 MiB in total,
 *                      and the work at GOTMPL_MAX_STEPS_BASE + 16 * max_out steps (nodes
 *                      walked plus range iterations), so that e.g. `range 1000000000000`
 *                      fails cleanly instead of running for hours (Go has no such limit).
 * @param[out] out      malloc'd output, NUL-terminated (NUL not counted), caller frees;
 *                      set only on success.
 * @param[out] out_len  output length.
 * @param[out] err      on failure: Go's message, e.g.
 *                      "template: :1:11: executing \"\" at <.Payload.key>: nil pointer
 *                      evaluating interface {}.key", or the cap that was exceeded.
 * @return GOTMPL_OK, GOTMPL_EEXEC, GOTMPL_ETOOBIG or GOTMPL_ENOMEM.
 */
int gotmpl_execute(const gotmpl *t, const gotmpl_event *ev, size_t max_out, char **out,
                   size_t *out_len, char *err, size_t errlen);

/*
 * What Flipt's template sink does per event: decode the event, execute, and require the
 * output to pass json.Valid (else GOTMPL_EJSON with "invalid JSON: <rendered>", the
 * rendered text truncated to fit err). Convenience over the three calls above.
 * @param[in]  event, event_len  the event body as stored (borrowed).
 * Other parameters and ownership as gotmpl_execute.
 * @return GOTMPL_OK, GOTMPL_EEVENT, GOTMPL_EEXEC, GOTMPL_ETOOBIG, GOTMPL_EJSON or
 *         GOTMPL_ENOMEM.
 */
int gotmpl_render(const gotmpl *t, const void *event, size_t event_len, size_t max_out, char **out,
                  size_t *out_len, char *err, size_t errlen);

/*
 * The event encoded as Go's json.Marshal of Flipt's Event (= `toJson .`, the URL-mode body
 * Flipt v1.61 would send): struct key order, actor fields omitted when empty, payload with
 * sorted keys, "status" always present.
 * @param[out] out, out_len  malloc'd NUL-terminated bytes, caller frees.
 * @return GOTMPL_OK or GOTMPL_ENOMEM.
 */
int gotmpl_event_to_json(const gotmpl_event *ev, char **out, size_t *out_len);

#endif
