/*
 * codec.c - encoding and decoding of the store's records (see codec.h for the format).
 * Uses msgpack-c for the payload and CRC32C (hardware or table) for integrity.
 */
#include "codec.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void obx__buf_free(obx_buf *b)
{
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(obx_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_write(void *data, const char *src, size_t len)
{
    obx_buf *b = data;
    if (buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->p + b->len, src, len);
    b->len += len;
    return 0;
}

/* CRC32C (Castagnoli), reflected polynomial 0x82F63B78: the SSE4.2 crc32 instruction
 * when the CPU has it (~20x the table's speed; every record written or read is summed),
 * else a table. */
static uint32_t crc_table[256];
static int crc_ready;
static int crc_hw_ok;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw_ok = __builtin_cpu_supports("sse4.2");
#endif
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint32_t obx__crc32c_table(uint32_t crc, const void *data, size_t len)
{
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init(); /* idempotent: concurrent callers compute the same table */
    const unsigned char *p = data;
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len)
{
    uint64_t c = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* unaligned, little-endian as the instruction expects */
        c = _mm_crc32_u64(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

uint32_t obx__crc32c(uint32_t crc, const void *data, size_t len)
{
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init();
#if defined(__x86_64__)
    if (crc_hw_ok)
        return crc_hw(crc, data, len);
#endif
    return obx__crc32c_table(crc, data, len);
}

/* Start a record: format byte and room for the checksum. */
static int rec_begin(obx_buf *b, msgpack_packer *pk)
{
    b->len = 0;
    if (buf_reserve(b, 5) != 0)
        return -1;
    b->p[0] = OBX_REC_FORMAT;
    b->len = 5;
    msgpack_packer_init(pk, b, buf_write);
    return 0;
}

static void rec_end(obx_buf *b)
{
    uint32_t crc = obx__crc32c(0, b->p + 5, b->len - 5);
    for (int i = 0; i < 4; i++)
        b->p[1 + i] = (unsigned char)(crc >> (8 * i));
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    if (!s)
        return msgpack_pack_nil(pk);
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

int obx__codec_event_encode(obx_buf *b, const rec_event *e)
{
    msgpack_packer pk;
    if (rec_begin(b, &pk) != 0)
        return OBX_ERR_NOMEM; /* pk is not set up: nothing may be packed */
    int bad = 0;
    bad |= msgpack_pack_array(&pk, 5);
    bad |= msgpack_pack_int64(&pk, e->received_ms);
    bad |= pack_cstr(&pk, e->type);
    bad |= pack_cstr(&pk, e->action);
    bad |= msgpack_pack_bin(&pk, e->body_len);
    bad |= msgpack_pack_bin_body(&pk, e->body, e->body_len);
    bad |= msgpack_pack_array(&pk, e->n_sinks);
    for (size_t i = 0; i < e->n_sinks; i++)
        bad |= msgpack_pack_uint32(&pk, e->sinks[i]);
    if (bad)
        return OBX_ERR_NOMEM;
    rec_end(b);
    return OBX_OK;
}

int obx__codec_delivery_encode(obx_buf *b, const obx_delivery *d)
{
    msgpack_packer pk;
    if (rec_begin(b, &pk) != 0)
        return OBX_ERR_NOMEM; /* pk is not set up: nothing may be packed */
    int bad = 0;
    bad |= msgpack_pack_array(&pk, 14);
    bad |= msgpack_pack_int(&pk, d->state);
    bad |= msgpack_pack_int(&pk, d->in_doubt);
    bad |= msgpack_pack_uint32(&pk, d->attempts);
    bad |= msgpack_pack_uint32(&pk, d->total_attempts);
    bad |= msgpack_pack_int64(&pk, d->first_attempt_ms);
    bad |= msgpack_pack_int64(&pk, d->last_attempt_ms);
    bad |= msgpack_pack_int64(&pk, d->next_attempt_ms);
    bad |= msgpack_pack_int64(&pk, d->deadline_ms);
    bad |= msgpack_pack_int64(&pk, d->done_ms);
    bad |= msgpack_pack_int(&pk, d->last_status);
    bad |= pack_cstr(&pk, d->last_error);
    bad |= pack_cstr(&pk, d->reason);
    bad |= msgpack_pack_uint32(&pk, d->replays);
    bad |= msgpack_pack_array(&pk, d->n_history);
    for (size_t i = 0; i < d->n_history; i++) {
        const obx_attempt *a = &d->history[i];
        /* fields 0-3 since the first version; 4-6 (response capture) added after: a
         * decoder takes 4 or at least 7, so older records still read */
        bad |= msgpack_pack_array(&pk, 7);
        bad |= msgpack_pack_int64(&pk, a->started_ms);
        bad |= msgpack_pack_uint32(&pk, a->duration_ms);
        bad |= msgpack_pack_int(&pk, a->status);
        bad |= pack_cstr(&pk, a->error);
        bad |= msgpack_pack_array(&pk, a->n_headers);
        for (size_t k = 0; k < a->n_headers; k++) {
            bad |= msgpack_pack_array(&pk, 2);
            bad |= pack_cstr(&pk, a->headers[k].name);
            bad |= pack_cstr(&pk, a->headers[k].value);
        }
        if (a->body) {
            bad |= msgpack_pack_bin(&pk, a->body_len);
            bad |= msgpack_pack_bin_body(&pk, a->body, a->body_len);
        } else {
            bad |= msgpack_pack_nil(&pk);
        }
        bad |= msgpack_pack_uint64(&pk, a->body_size);
    }
    if (bad)
        return OBX_ERR_NOMEM;
    rec_end(b);
    return OBX_OK;
}

static int corrupt(obx_error *err, const char *what)
{
    if (err) {
        err->code = OBX_ERR_CORRUPT;
        snprintf(err->msg, sizeof err->msg, "corrupt record: %s", what);
    }
    return OBX_ERR_CORRUPT;
}

/* A failed allocation while decoding: the record may be fine, so never OBX_ERR_CORRUPT
 * (callers treat that as permanent: dead letters, dropped index entries). */
static int nomem(obx_error *err, const char *what)
{
    if (err) {
        err->code = OBX_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory decoding %s", what);
    }
    return OBX_ERR_NOMEM;
}

/* Field-decoder results: the field is fine, has the wrong shape, or could not be copied. */
enum { FIELD_OK = 0, FIELD_BAD = -1, FIELD_NOMEM = -2 };

static uint64_t rd_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Walk the msgpack bytes once, checking that every declared length and element count
 * fits in what is left, before msgpack-c sees them: its unpacker allocates for the
 * declared count first, so a corrupt count could otherwise ask for gigabytes.
 * Exactly one object must fill the buffer.
 */
static int msgpack_shape_ok(const unsigned char *p, size_t len)
{
    size_t pos = 0;
    uint64_t need = 1; /* objects still to read */
    while (need > 0) {
        if (pos >= len)
            return 0;
        unsigned c = p[pos++];
        uint64_t skip = 0, items = 0;
        need--;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            skip = 0;
        } else if (c >= 0x80 && c <= 0x8f) {
            items = 2u * (c & 0x0f);
        } else if (c >= 0x90 && c <= 0x9f) {
            items = c & 0x0f;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            static const unsigned char width[] = {/* c4 bin8 */ 1,   2, 4,
                                                  /* c7 ext */ 1,    2, 4,
                                                  /* ca float */ 4,  8,
                                                  /* cc uint */ 1,   2, 4, 8,
                                                  /* d0 int */ 1,    2, 4, 8,
                                                  /* d4 fixext */ 2, 3, 5, 9, 17,
                                                  /* d9 str */ 1,    2, 4,
                                                  /* dc array */ 2,  4,
                                                  /* de map */ 2,    4};
            if (c < 0xc4 || c > 0xdf)
                return 0; /* 0xc1 is never used */
            unsigned w = width[c - 0xc4];
            if (c >= 0xca && c <= 0xd8) {
                skip = w; /* fixed-size scalars and fixext (type byte included) */
            } else {
                if (len - pos < w)
                    return 0;
                uint64_t n = rd_be(p + pos, (int)w);
                pos += w;
                if (c >= 0xc7 && c <= 0xc9)
                    skip = n + 1; /* ext: type byte + data */
                else if (c == 0xdc || c == 0xdd)
                    items = n;
                else if (c == 0xde || c == 0xdf)
                    items = 2 * n;
                else
                    skip = n; /* bin, str */
            }
        }
        if (skip > len - pos || items > len - pos)
            return 0; /* each element takes at least one byte */
        pos += skip;
        need += items;
        if (need > len - pos + 1)
            return 0;
    }
    return pos == len;
}

/* Check the envelope and unpack the payload into *u. */
static int rec_open(const void *data, size_t len, msgpack_unpacked *u, obx_error *err)
{
    const unsigned char *p = data;
    if (len < 6)
        return corrupt(err, "too short");
    if (p[0] != OBX_REC_FORMAT)
        return corrupt(err, "unknown record format");
    uint32_t want =
        (uint32_t)p[1] | ((uint32_t)p[2] << 8) | ((uint32_t)p[3] << 16) | ((uint32_t)p[4] << 24);
    if (obx__crc32c(0, p + 5, len - 5) != want)
        return corrupt(err, "checksum mismatch");
    if (!msgpack_shape_ok(p + 5, len - 5))
        return corrupt(err, "bad msgpack payload");
    size_t off = 0;
    msgpack_unpacked_init(u);
    msgpack_unpack_return ur = msgpack_unpack_next(u, (const char *)p + 5, len - 5, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_unpacked_destroy(u);
        return nomem(err, "record");
    }
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len - 5) {
        msgpack_unpacked_destroy(u);
        return corrupt(err, "bad msgpack payload");
    }
    if (u->data.type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(u);
        return corrupt(err, "payload is not an array");
    }
    return OBX_OK;
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return -1;
}

static int get_int(const msgpack_object *o, int *v)
{
    int64_t x;
    if (get_i64(o, &x) != 0 || x < INT32_MIN || x > INT32_MAX)
        return -1;
    *v = (int)x;
    return 0;
}

static int get_u32(const msgpack_object *o, uint32_t *v)
{
    int64_t x;
    if (get_i64(o, &x) != 0 || x < 0 || x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

/* NULL for nil, else a malloc'd NUL-terminated copy: FIELD_OK, FIELD_BAD or FIELD_NOMEM. */
static int get_str(const msgpack_object *o, char **out)
{
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL)
        return FIELD_OK;
    if (o->type != MSGPACK_OBJECT_STR)
        return FIELD_BAD;
    char *s = malloc(o->via.str.size + 1);
    if (!s)
        return FIELD_NOMEM;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    *out = s;
    return FIELD_OK;
}

int obx__codec_event_decode(const void *data, size_t len, obx_event *out, uint32_t **sinks,
                            size_t *n_sinks, obx_error *err)
{
    msgpack_unpacked u;
    int rc = rec_open(data, len, &u, err);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (sinks)
        *sinks = NULL;
    if (n_sinks)
        *n_sinks = 0;
    const msgpack_object_array *a = &u.data.via.array;
    int fr = FIELD_BAD;
    const char *what = "event has the wrong number of fields";
    if (a->size != 5)
        goto fail;
    what = "event field received_ms";
    if (get_i64(&a->ptr[0], &out->received_ms) != 0)
        goto fail;
    what = "event field type";
    if ((fr = get_str(&a->ptr[1], &out->type)) != FIELD_OK || !out->type)
        goto fail;
    what = "event field action";
    if ((fr = get_str(&a->ptr[2], &out->action)) != FIELD_OK || !out->action)
        goto fail;
    what = "event field body";
    if (a->ptr[3].type != MSGPACK_OBJECT_BIN)
        goto fail;
    out->body_len = a->ptr[3].via.bin.size;
    out->body = malloc(out->body_len ? out->body_len : 1);
    if (!out->body) {
        fr = FIELD_NOMEM;
        goto fail;
    }
    memcpy(out->body, a->ptr[3].via.bin.ptr, out->body_len);
    what = "event field sinks";
    if (a->ptr[4].type != MSGPACK_OBJECT_ARRAY)
        goto fail;
    if (sinks) {
        size_t n = a->ptr[4].via.array.size;
        uint32_t *ids = calloc(n ? n : 1, sizeof *ids);
        if (!ids) {
            fr = FIELD_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (get_u32(&a->ptr[4].via.array.ptr[i], &ids[i]) != 0) {
                free(ids);
                goto fail;
            }
        }
        *sinks = ids;
        *n_sinks = n;
    }
    msgpack_unpacked_destroy(&u);
    return OBX_OK;
fail:
    msgpack_unpacked_destroy(&u);
    free(out->type);
    free(out->action);
    free(out->body);
    memset(out, 0, sizeof *out);
    return fr == FIELD_NOMEM ? nomem(err, what) : corrupt(err, what);
}

/* Fields 4-6 of an attempt: the response headers, body and body size, within the
 * OBX_CAPTURE_* bounds. */
static int get_capture(const msgpack_object *f, obx_attempt *at, const char **what)
{
    *what = "delivery history: response headers";
    if (f[4].type != MSGPACK_OBJECT_ARRAY || f[4].via.array.size > OBX_CAPTURE_HEADERS_MAX)
        return FIELD_BAD;
    size_t nh = f[4].via.array.size;
    if (nh && !(at->headers = calloc(nh, sizeof *at->headers)))
        return FIELD_NOMEM;
    for (size_t k = 0; k < nh; k++) {
        const msgpack_object *p = &f[4].via.array.ptr[k];
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 2)
            return FIELD_BAD;
        at->n_headers = k + 1;
        int fr = get_str(&p->via.array.ptr[0], &at->headers[k].name);
        if (fr == FIELD_OK)
            fr = get_str(&p->via.array.ptr[1], &at->headers[k].value);
        if (fr != FIELD_OK)
            return fr;
        if (!at->headers[k].name || !at->headers[k].value ||
            strlen(at->headers[k].name) > OBX_CAPTURE_NAME_MAX ||
            strlen(at->headers[k].value) > OBX_CAPTURE_VALUE_MAX)
            return FIELD_BAD;
    }
    *what = "delivery history: response body";
    if (f[5].type == MSGPACK_OBJECT_BIN) {
        size_t n = f[5].via.bin.size;
        if (n > OBX_CAPTURE_BODY_MAX)
            return FIELD_BAD;
        if (!(at->body = malloc(n ? n : 1)))
            return FIELD_NOMEM;
        memcpy(at->body, f[5].via.bin.ptr, n);
        at->body_len = n;
    } else if (f[5].type != MSGPACK_OBJECT_NIL) {
        return FIELD_BAD;
    }
    int64_t size;
    if (get_i64(&f[6], &size) || size < (int64_t)at->body_len)
        return FIELD_BAD;
    at->body_size = (uint64_t)size;
    return FIELD_OK;
}

int obx__codec_delivery_decode(const void *data, size_t len, obx_delivery *d, obx_error *err)
{
    msgpack_unpacked u;
    int rc = rec_open(data, len, &u, err);
    if (rc)
        return rc;
    uint64_t ev = d->event_id;
    uint32_t sink = d->sink_id;
    memset(d, 0, sizeof *d);
    d->event_id = ev;
    d->sink_id = sink;
    const msgpack_object_array *a = &u.data.via.array;
    int fr = FIELD_BAD;
    const char *what = "delivery has the wrong number of fields";
    if (a->size != 14)
        goto fail;
    what = "delivery numeric fields";
    if (get_int(&a->ptr[0], &d->state) || get_int(&a->ptr[1], &d->in_doubt) ||
        get_u32(&a->ptr[2], &d->attempts) || get_u32(&a->ptr[3], &d->total_attempts) ||
        get_i64(&a->ptr[4], &d->first_attempt_ms) || get_i64(&a->ptr[5], &d->last_attempt_ms) ||
        get_i64(&a->ptr[6], &d->next_attempt_ms) || get_i64(&a->ptr[7], &d->deadline_ms) ||
        get_i64(&a->ptr[8], &d->done_ms) || get_int(&a->ptr[9], &d->last_status))
        goto fail;
    what = "delivery state";
    if (d->state < OBX_STATE_PENDING || d->state > OBX_STATE_DEAD)
        goto fail;
    what = "delivery text fields";
    if ((fr = get_str(&a->ptr[10], &d->last_error)) != FIELD_OK ||
        (fr = get_str(&a->ptr[11], &d->reason)) != FIELD_OK)
        goto fail;
    what = "delivery field replays";
    if (get_u32(&a->ptr[12], &d->replays))
        goto fail;
    what = "delivery history";
    if (a->ptr[13].type != MSGPACK_OBJECT_ARRAY)
        goto fail;
    size_t n = a->ptr[13].via.array.size;
    if (n) {
        d->history = calloc(n, sizeof *d->history);
        if (!d->history) {
            fr = FIELD_NOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *h = &a->ptr[13].via.array.ptr[i];
        obx_attempt *at = &d->history[i];
        if (h->type != MSGPACK_OBJECT_ARRAY || (h->via.array.size != 4 && h->via.array.size < 7))
            goto fail;
        d->n_history = i + 1;
        if (get_i64(&h->via.array.ptr[0], &at->started_ms) ||
            get_u32(&h->via.array.ptr[1], &at->duration_ms) ||
            get_int(&h->via.array.ptr[2], &at->status) ||
            (fr = get_str(&h->via.array.ptr[3], &at->error)) != FIELD_OK)
            goto fail;
        if (h->via.array.size >= 7 && (fr = get_capture(h->via.array.ptr, at, &what)) != FIELD_OK)
            goto fail;
    }
    msgpack_unpacked_destroy(&u);
    return OBX_OK;
fail:
    msgpack_unpacked_destroy(&u);
    obx_delivery_clear(d);
    d->event_id = ev;
    d->sink_id = sink;
    return fr == FIELD_NOMEM ? nomem(err, what) : corrupt(err, what);
}

void obx_attempt_clear(obx_attempt *a)
{
    if (!a)
        return;
    free(a->error);
    for (size_t k = 0; k < a->n_headers; k++) {
        free(a->headers[k].name);
        free(a->headers[k].value);
    }
    free(a->headers);
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* A copy of at most max bytes of s (NULL stays NULL); *bad set when memory ran out. */
static char *dup_cut(const char *s, size_t max, int *bad)
{
    if (!s)
        return NULL;
    size_t n = strnlen(s, max);
    char *c = malloc(n + 1);
    if (!c) {
        *bad = 1;
        return NULL;
    }
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

int obx__attempt_set_capture(obx_attempt *a, const obx_header *headers, size_t n_headers,
                             const unsigned char *body, size_t body_len, uint64_t body_size)
{
    int bad = 0;
    size_t nh = n_headers < OBX_CAPTURE_HEADERS_MAX ? n_headers : OBX_CAPTURE_HEADERS_MAX;
    if (nh && !(a->headers = calloc(nh, sizeof *a->headers)))
        return OBX_ERR_NOMEM;
    for (size_t k = 0; k < nh && !bad; k++) {
        if (!headers[k].name || !headers[k].value)
            continue; /* nothing to keep */
        obx_header *h = &a->headers[a->n_headers++];
        h->name = dup_cut(headers[k].name, OBX_CAPTURE_NAME_MAX, &bad);
        h->value = dup_cut(headers[k].value, OBX_CAPTURE_VALUE_MAX, &bad);
    }
    if (body && !bad) {
        a->body_len = body_len < OBX_CAPTURE_BODY_MAX ? body_len : OBX_CAPTURE_BODY_MAX;
        if ((a->body = malloc(a->body_len ? a->body_len : 1)) != NULL)
            memcpy(a->body, body, a->body_len);
        else
            bad = 1;
    }
    a->body_size = body_size > a->body_len ? body_size : a->body_len;
    if (bad) {
        char *err = a->error;
        a->error = NULL;
        obx_attempt_clear(a);
        a->error = err;
        return OBX_ERR_NOMEM;
    }
    return OBX_OK;
}

int obx_attempt_copy(obx_attempt *dst, const obx_attempt *src)
{
    memset(dst, 0, sizeof *dst);
    dst->started_ms = src->started_ms;
    dst->duration_ms = src->duration_ms;
    dst->status = src->status;
    int bad = 0;
    dst->error = dup_cut(src->error, SIZE_MAX, &bad);
    if (bad || obx__attempt_set_capture(dst, src->headers, src->n_headers, src->body, src->body_len,
                                        src->body_size) != OBX_OK) {
        obx_attempt_clear(dst);
        return OBX_ERR_NOMEM;
    }
    return OBX_OK;
}

int obx__delivery_push_attempt(obx_delivery *d, int64_t started_ms, uint32_t duration_ms,
                               int status, const char *error, unsigned keep)
{
    char *copy = NULL;
    if (error && !(copy = strdup(error)))
        return OBX_ERR_NOMEM;
    if (keep == 0)
        keep = 1;
    while (d->n_history >= keep) {
        obx_attempt_clear(&d->history[0]);
        memmove(d->history, d->history + 1, (d->n_history - 1) * sizeof *d->history);
        d->n_history--;
    }
    obx_attempt *h = realloc(d->history, (d->n_history + 1) * sizeof *h);
    if (!h) {
        free(copy);
        return OBX_ERR_NOMEM;
    }
    d->history = h;
    h[d->n_history++] = (obx_attempt){
        .started_ms = started_ms, .duration_ms = duration_ms, .status = status, .error = copy};
    return OBX_OK;
}

void obx_delivery_clear(obx_delivery *d)
{
    if (!d)
        return;
    free(d->last_error);
    free(d->reason);
    for (size_t i = 0; i < d->n_history; i++)
        obx_attempt_clear(&d->history[i]);
    free(d->history);
    d->last_error = d->reason = NULL;
    d->history = NULL;
    d->n_history = 0;
}

void obx_event_free(obx_event *e)
{
    if (!e)
        return;
    free(e->type);
    free(e->action);
    free(e->body);
    for (size_t i = 0; i < e->n_deliveries; i++)
        obx_delivery_clear(&e->deliveries[i]);
    free(e->deliveries);
    free(e);
}
