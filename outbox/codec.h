/*
 * codec.h - private: the on-disk record formats of the store (msgpack + CRC32C) and the
 * big-endian key layouts of every index. Nothing here touches LMDB; it only turns C
 * structs into bytes and back, so it can be fuzzed and unit-tested on its own.
 *
 * Record = [format byte 0x01][CRC32C of payload, little-endian u32][msgpack payload].
 * A record whose format byte, checksum or msgpack shape is wrong decodes to
 * OBX_ERR_CORRUPT with a message naming the field; decoding never crashes. A failed
 * allocation while decoding is OBX_ERR_NOMEM, never OBX_ERR_CORRUPT: callers treat
 * corruption as permanent (a dead letter, a dropped index entry), a memory shortage as
 * a reason to fail the whole operation and try again later.
 */
#ifndef OUTBOX_CODEC_H
#define OUTBOX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

#define OBX_REC_FORMAT 0x01

/* A growable byte buffer (owned; free with obx__buf_free). */
typedef struct obx_buf {
    unsigned char *p;
    size_t len, cap;
} obx_buf;

void obx__buf_free(obx_buf *b);

/* CRC32C of data, continuing from crc (0 to start): the CPU's crc32 instruction when it
 * has SSE4.2, else obx__crc32c_table(). */
uint32_t obx__crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table-driven CRC32C (tests compare the two). */
uint32_t obx__crc32c_table(uint32_t crc, const void *data, size_t len);

/* Event record: received time, type, action, body, routed sink ids. */
typedef struct rec_event {
    int64_t received_ms;
    const char *type;   /* decode: malloc'd copy */
    const char *action; /* decode: malloc'd copy */
    const unsigned char *body;
    size_t body_len;
    const uint32_t *sinks;
    size_t n_sinks;
} rec_event;

/* Encode into b (b->len reset first). Returns OBX_OK or OBX_ERR_NOMEM. */
int obx__codec_event_encode(obx_buf *b, const rec_event *e);
/* Decode into an obx_event (id not set, deliveries empty) plus its sink list (malloc'd). */
int obx__codec_event_decode(const void *data, size_t len, obx_event *out, uint32_t **sinks,
                            size_t *n_sinks, obx_error *err);

int obx__codec_delivery_encode(obx_buf *b, const obx_delivery *d);
/* Decode into d (strings malloc'd; clear with obx_delivery_clear). event_id/sink_id untouched. */
int obx__codec_delivery_decode(const void *data, size_t len, obx_delivery *d, obx_error *err);

/* Append one attempt to d's history keeping at most `keep` (newest last); copies error. */
int obx__delivery_push_attempt(obx_delivery *d, int64_t started_ms, uint32_t duration_ms,
                               int status, const char *error, unsigned keep);

/* Give attempt a copies of a response's headers and body, cut to the OBX_CAPTURE_*
 * bounds (entries with a NULL name or value are skipped). OBX_OK or OBX_ERR_NOMEM (a
 * keeps no capture then). */
int obx__attempt_set_capture(obx_attempt *a, const obx_header *headers, size_t n_headers,
                             const unsigned char *body, size_t body_len, uint64_t body_size);

/* Big-endian helpers for keys. */
static inline void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}
static inline uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void be32_put(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}
static inline uint32_t be32_get(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Key layouts. */
#define KEY_EVENT_LEN 8  /* event id */
#define KEY_DELIV_LEN 12 /* event id, sink id */
#define KEY_DUE_LEN   20 /* sink id, due ms, event id */
#define KEY_PEND_LEN  12 /* sink id, event id */
#define KEY_TIME_LEN  20 /* time ms, event id, sink id (dead, done) */

static inline void key_deliv(unsigned char *k, uint64_t ev, uint32_t sink)
{
    be64_put(k, ev);
    be32_put(k + 8, sink);
}
static inline void key_due(unsigned char *k, uint32_t sink, int64_t t, uint64_t ev)
{
    be32_put(k, sink);
    be64_put(k + 4, (uint64_t)(t < 0 ? 0 : t));
    be64_put(k + 12, ev);
}
static inline void key_pend(unsigned char *k, uint32_t sink, uint64_t ev)
{
    be32_put(k, sink);
    be64_put(k + 4, ev);
}
static inline void key_time(unsigned char *k, int64_t t, uint64_t ev, uint32_t sink)
{
    be64_put(k, (uint64_t)(t < 0 ? 0 : t));
    be64_put(k + 8, ev);
    be32_put(k + 16, sink);
}

#endif
