/*
 * outbox-json.h - the JSON shapes of the store's records, shared by `outboxctl --json`
 * and outboxd's admin API (outboxd-admin.h), so both answer with the same fields: an
 * event's header, a delivery (with its attempt history), a sink's counters, event
 * bodies carried byte-exact, and the delivery state names the filters accept.
 *
 * Event bodies are carried byte-exact in JSON: a body that is valid JSON on one line is
 * spliced in verbatim as "body" (no re-encoding, so numbers and key order survive); a
 * valid multi-line body is given minified as "body" plus its exact bytes as
 * "body_base64"; anything else only as "body_base64".
 *
 * Every json_t returned is a new reference owned by the caller; strings passed in are
 * copied.
 */
#ifndef OUTBOX_TOOLS_OUTBOX_JSON_H
#define OUTBOX_TOOLS_OUTBOX_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox/outbox.h"

/*
 * Print `obj` compact on one line with the body members appended last (see above), then
 * drop the reference to obj. -1 when out of memory.
 */
int ctl_json_print_with_body(json_t *obj, const unsigned char *body, size_t len, FILE *f);
/* RFC 3339 string, or JSON null when ms == 0 (unset) or INT64_MAX (never). New ref. */
json_t *ctl_json_time(int64_t ms);
/* A string or JSON null. New reference. */
json_t *ctl_json_str(const char *s);

/* 1 when the body is valid JSON (any value). */
int ctl_body_is_json(const unsigned char *body, size_t len);

/* base64 (standard, padded); malloc'd, NULL when out of memory. Decoding is
 * dlv_base64_decode (delivery/base64.h). */
char *ctl_base64_encode(const unsigned char *in, size_t len);

/*
 * Print bytes from a remote peer (a receiver's headers or body) safely for a terminal:
 * printable ASCII and valid UTF-8 as they are, backslash as \\, TAB/CR/LF as \t \r \n,
 * every other byte (controls, escapes, DEL, C1 controls, invalid UTF-8) as \xNN.
 */
void ctl_print_escaped(const unsigned char *s, size_t len, FILE *f);
/* 1 when s[0..len) is valid UTF-8 (NUL bytes allowed). */
int ctl_utf8_valid(const unsigned char *s, size_t len);

/* The webhook-id header the delivery engine sends for d on every attempt
 * (obx_delivery_id: evt_<store id>_<event id>_<sink id>), written into buf. */
const char *ctl_webhook_id(const obx_delivery *d, char *buf, size_t n);

/* "pending", "inflight", "delivered", "dead". */
const char *ctl_state_label(const obx_delivery *d);

/*
 * A state filter by name: "pending", "inflight" (also "in-flight", "in_flight"),
 * "delivered", "dead", or "all" (*state = 0). -1 when the name is unknown.
 */
int ctl_state_filter(const char *name, int *state);
#define CTL_STATE_NAMES "pending, inflight, dead, delivered or all"

/* An event's header as JSON (new reference): id, type, action, received (RFC 3339 and
 * _ms), body_bytes. NULL when out of memory. */
json_t *ctl_event_json(const obx_event *ev);

/*
 * A delivery as JSON (new reference): sink, state, in_doubt, attempts, times (RFC 3339
 * and *_ms), last status/error, reason, replays and, when `history` is set, the attempt
 * history. NULL when out of memory.
 */
json_t *ctl_delivery_json(const obx_delivery *d, const char *sink_name, int history);

/*
 * A sink's counters (name, id, pending, inflight, in_doubt, delivered, dead, oldest
 * pending and its age at now_ms, next due), appended to the array `arr`. conf >= 0 adds
 * "configured": whether the configuration names the sink.
 */
void ctl_sink_stats_json(json_t *arr, const obx_sink_stats *ss, int64_t now_ms, int conf);
/* The sums over every sink of st (named "TOTAL"; oldest pending and next due the
 * earliest). */
void ctl_sink_stats_total(const obx_stats *st, obx_sink_stats *tot);

/*
 * The stats of a store into the object o: now, schema_version, events, enqueued, used_bytes,
 * file_bytes, max_size (= cap), high_water (= high), map_size, full, "sinks" (each with
 * "configured" from configured(ud, name): -1 leaves it out) and "total".
 */
void ctl_stats_json(json_t *o, const obx_stats *st, uint64_t cap, uint64_t high, int64_t now_ms,
                    int (*configured)(const void *ud, const char *name), const void *ud);

#endif
