/*
 * outboxd-event.h - parsing and validating ingested events (one JSON object, or NDJSON).
 *
 * Validation follows Flipt's Event.Valid(): `version`, `type`, `action` and `timestamp`
 * must be present, strings, and non-empty; keys match in any case, as Flipt decodes them
 * (gotmpl_json_field). The event is otherwise stored as the exact
 * bytes received (one line per event for NDJSON, without its line terminator), so what
 * is delivered is byte-identical to what the producer sent.
 */
#ifndef OUTBOXD_EVENT_H
#define OUTBOXD_EVENT_H

#include <stddef.h>

/* Most events accepted in one NDJSON request (a 400 beyond it). */
#define OEV_MAX_BATCH 10000

typedef enum oev_ctype {
    OEV_CT_OTHER = 0, /* unsupported: 415 */
    OEV_CT_JSON = 1,  /* application/json: one event */
    OEV_CT_NDJSON = 2 /* application/x-ndjson (or application/jsonl): one per line */
} oev_ctype;

typedef enum oev_err {
    OEV_ERR_JSON = -1,  /* not JSON (message has line/column) */
    OEV_ERR_EVENT = -2, /* JSON but not a valid event (message names the field) */
    OEV_ERR_NOMEM = -3,
} oev_err;

/* Classify a Content-Type header value (NULL = missing), ignoring parameters and case. */
oev_ctype oev_content_type(const char *value);

typedef struct oev_event {
    const char *body; /* points into the caller's buffer: valid while it is */
    size_t body_len;
    char *type;   /* owned; freed by oev_events_free */
    char *action; /* owned */
} oev_event;

/*
 * Parse `len` bytes of `buf` as one event (ctype OEV_CT_JSON) or as NDJSON (blank lines
 * skipped, `\n` or `\r\n` terminated, at least one event). All or nothing: on error no
 * events are returned and `err` (cap bytes, always NUL-terminated) says what is wrong and
 * where (NDJSON line, JSON line/column, field name).
 * @param[out] out  array of *n events, freed with oev_events_free(); bodies point into buf.
 * @return 0, or an oev_err with err filled.
 */
int oev_parse(oev_ctype ctype, const char *buf, size_t len, oev_event **out, size_t *n, char *err,
              size_t cap);

/* Free an array from oev_parse (NULL ok). */
void oev_events_free(oev_event *ev, size_t n);

#endif
