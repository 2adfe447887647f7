/*
 * outboxd-idem.h - the `Idempotency-Key` of POST /v1/events: what the ingest stores with
 * the request's events (obx_enqueue_idem) and how a replay rebuilds the first answer.
 *
 * The request's fingerprint is SHA-256 over its content type and body, so the same key
 * with another body (or the same bytes sent as JSON and then as NDJSON) is a conflict.
 * The note kept with the key records which of the request's events were routed (stored)
 * and which were not, so a replay answers with the first request's ids and nulls even if
 * the routing changed since.
 */
#ifndef OUTBOXD_IDEM_H
#define OUTBOXD_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"
#include "outboxd-event.h"

/* The request header and the answer header of a replay. */
#define OID_HEADER          "Idempotency-Key"
#define OID_REPLAYED_HEADER "Idempotent-Replayed"

/* An idempotency key ready for obx_enqueue_idem. Owned by the request; oid_clear frees. */
typedef struct oid_key {
    char *key;           /* owned copy of the header */
    obx_idem idem;       /* points at key and note */
    unsigned char *note; /* owned: be32 n, then n bits (routed), LSB first */
} oid_key;

/* Check the header value; 0, or -1 with err naming the problem (answer 400). */
int oid_check(const char *header, char *err, size_t cap);

/*
 * Fill *k for a request whose header passed oid_check: its fingerprint, expiry (now +
 * window_ms) and the note of its n events' routing. 0, or -1 when out of memory.
 */
int oid_prepare(oid_key *k, const char *header, oev_ctype ct, const char *body, size_t len,
                const int *routed, size_t n, int64_t window_ms);

/* From a replay's note, the routing of the first request's n events into routed[n]:
 * 0, or -1 when the note does not describe n events matching the replayed ids. */
int oid_routed(const obx_idem_result *res, size_t n, int *routed);

void oid_clear(oid_key *k);

#endif
