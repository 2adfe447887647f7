/*
 * test-codec.c - unit tests of the store's record codec: round trips, history trimming,
 * and corrupt inputs (bad format byte, checksum, truncation, a msgpack count larger
 * than the record, found by fuzzing) that must decode to OBX_ERR_CORRUPT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void seal(unsigned char *rec, size_t len)
{
    uint32_t crc = obx__crc32c(0, rec + 5, len - 5);
    rec[0] = OBX_REC_FORMAT;
    for (int i = 0; i < 4; i++)
        rec[1 + i] = (unsigned char)(crc >> (8 * i));
}

static void test_crc32c_vector(void **state)
{
    (void)state;
    assert_int_equal(obx__crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check value */
}

/* The hardware path (when the CPU has it) and the table agree on every length and
 * alignment, including continuing a running CRC. */
static void test_crc32c_paths_agree(void **state)
{
    (void)state;
    assert_int_equal(obx__crc32c_table(0, "123456789", 9), 0xE3069283u);
    static unsigned char buf[1100];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 1040; len += len < 40 ? 1 : 37) {
            uint32_t want = obx__crc32c_table(0, buf + off, len);
            assert_int_equal(obx__crc32c(0, buf + off, len), want);
            size_t half = len / 2;
            assert_int_equal(
                obx__crc32c(obx__crc32c(0, buf + off, half), buf + off + half, len - half), want);
        }
}

static void test_event_round_trip(void **state)
{
    (void)state;
    obx_buf b = {0};
    uint32_t sinks[] = {3, 7};
    rec_event e = {1717934400000, "flag", "created", (const unsigned char *)"{\"k\":\"v\"}", 9,
                   sinks,         2};
    assert_int_equal(obx__codec_event_encode(&b, &e), OBX_OK);
    obx_event out;
    uint32_t *s = NULL;
    size_t n = 0;
    assert_int_equal(obx__codec_event_decode(b.p, b.len, &out, &s, &n, NULL), OBX_OK);
    assert_int_equal(out.received_ms, 1717934400000);
    assert_string_equal(out.type, "flag");
    assert_string_equal(out.action, "created");
    assert_int_equal(out.body_len, 9);
    assert_memory_equal(out.body, "{\"k\":\"v\"}", 9);
    assert_int_equal(n, 2);
    assert_int_equal(s[1], 7);
    free(out.type);
    free(out.action);
    free(out.body);
    free(s);
    obx__buf_free(&b);
}

static void test_delivery_round_trip_and_history(void **state)
{
    (void)state;
    obx_delivery d = {.state = OBX_STATE_PENDING, .attempts = 4, .deadline_ms = 99};
    for (int i = 0; i < 15; i++)
        assert_int_equal(
            obx__delivery_push_attempt(&d, i, 10, 500 + i, i % 2 ? "timeout" : NULL, 10), OBX_OK);
    assert_int_equal(d.n_history, 10);
    assert_int_equal(d.history[0].started_ms, 5); /* oldest kept */
    obx_buf b = {0};
    assert_int_equal(obx__codec_delivery_encode(&b, &d), OBX_OK);
    obx_delivery o = {0};
    assert_int_equal(obx__codec_delivery_decode(b.p, b.len, &o, NULL), OBX_OK);
    assert_int_equal(o.attempts, 4);
    assert_int_equal(o.deadline_ms, 99);
    assert_int_equal(o.n_history, 10);
    assert_int_equal(o.history[9].status, 514);
    assert_null(o.history[9].error); /* i = 14: no error text */
    assert_string_equal(o.history[8].error, "timeout");
    obx_delivery_clear(&o);
    obx_delivery_clear(&d);
    obx__buf_free(&b);
}

/* A delivery written before response capture (attempts of 4 fields) still decodes. */
static void test_delivery_old_attempt_format(void **state)
{
    (void)state;
    unsigned char rec[] = {0,    0,    0,    0,    0, /* format byte and CRC: seal() */
                           0x9e, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                           0xcd, 0x01, 0xf4, 0xc0, 0xc0, 0x00, 0x91, 0x94, 0x05, 0x0a,
                           0xcd, 0x01, 0xf4, 0xa4, 'b',  'o',  'o',  'm'};
    seal(rec, sizeof rec);
    obx_delivery o = {0};
    assert_int_equal(obx__codec_delivery_decode(rec, sizeof rec, &o, NULL), OBX_OK);
    assert_int_equal(o.n_history, 1);
    assert_int_equal(o.history[0].status, 500);
    assert_string_equal(o.history[0].error, "boom");
    assert_int_equal(o.history[0].n_headers, 0);
    assert_null(o.history[0].body);
    assert_int_equal(o.history[0].body_size, 0);
    obx_delivery_clear(&o);
}

/* Captured headers and body round-trip, cut to the OBX_CAPTURE_* bounds. */
static void test_delivery_capture_round_trip(void **state)
{
    (void)state;
    obx_delivery d = {.state = OBX_STATE_PENDING};
    assert_int_equal(obx__delivery_push_attempt(&d, 1, 2, 500, NULL, 10), OBX_OK);
    static char longval[OBX_CAPTURE_VALUE_MAX + 50];
    memset(longval, 'v', sizeof longval - 1);
    obx_header hs[OBX_CAPTURE_HEADERS_MAX + 4];
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        hs[i] = (obx_header){.name = "X-H", .value = i == 1 ? longval : "a\x01b"};
    hs[0].name = "Content-Type";
    hs[0].value = "text/plain";
    static unsigned char body[OBX_CAPTURE_BODY_MAX + 10];
    memset(body, 0xff, sizeof body);
    assert_int_equal(obx__attempt_set_capture(&d.history[0], hs, sizeof hs / sizeof hs[0], body,
                                              sizeof body, 1u << 20),
                     OBX_OK);
    obx_buf b = {0};
    assert_int_equal(obx__codec_delivery_encode(&b, &d), OBX_OK);
    obx_delivery o = {0};
    assert_int_equal(obx__codec_delivery_decode(b.p, b.len, &o, NULL), OBX_OK);
    const obx_attempt *a = &o.history[0];
    assert_int_equal(a->n_headers, OBX_CAPTURE_HEADERS_MAX);
    assert_string_equal(a->headers[0].name, "Content-Type");
    assert_string_equal(a->headers[0].value, "text/plain");
    assert_int_equal(strlen(a->headers[1].value), OBX_CAPTURE_VALUE_MAX);
    assert_string_equal(a->headers[2].value, "a\x01b");
    assert_int_equal(a->body_len, OBX_CAPTURE_BODY_MAX);
    assert_int_equal(a->body[0], 0xff);
    assert_int_equal(a->body_size, 1u << 20);
    obx_attempt c;
    assert_int_equal(obx_attempt_copy(&c, a), OBX_OK);
    assert_int_equal(c.body_len, OBX_CAPTURE_BODY_MAX);
    assert_string_equal(c.headers[0].name, "Content-Type");
    obx_attempt_clear(&c);
    obx_delivery_clear(&o);
    obx_delivery_clear(&d);
    obx__buf_free(&b);
}

static void test_corrupt_inputs(void **state)
{
    (void)state;
    obx_buf b = {0};
    obx_delivery d = {.state = OBX_STATE_DEAD};
    assert_int_equal(obx__codec_delivery_encode(&b, &d), OBX_OK);
    obx_delivery o = {0};
    obx_error err;
    unsigned char *copy = malloc(b.len);
    memcpy(copy, b.p, b.len);
    copy[b.len - 1] ^= 1;
    assert_int_equal(obx__codec_delivery_decode(copy, b.len, &o, &err), OBX_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "checksum"));
    memcpy(copy, b.p, b.len);
    copy[0] = 9;
    assert_int_equal(obx__codec_delivery_decode(copy, b.len, &o, &err), OBX_ERR_CORRUPT);
    assert_int_equal(obx__codec_delivery_decode(b.p, b.len - 3, &o, &err), OBX_ERR_CORRUPT);
    assert_int_equal(obx__codec_delivery_decode(b.p, 3, &o, &err), OBX_ERR_CORRUPT);
    /* an event record is not a delivery record */
    uint32_t sink = 1;
    rec_event e = {1, "a", "b", (const unsigned char *)"", 0, &sink, 1};
    obx_buf eb = {0};
    assert_int_equal(obx__codec_event_encode(&eb, &e), OBX_OK);
    assert_int_equal(obx__codec_delivery_decode(eb.p, eb.len, &o, &err), OBX_ERR_CORRUPT);
    free(copy);
    obx__buf_free(&b);
    obx__buf_free(&eb);
}

/* Found by fuzz-codec: an array32 whose count is far larger than the record made
 * msgpack-c try to allocate 128 GiB. A valid checksum must not get it that far. */
static void test_huge_count_with_valid_checksum(void **state)
{
    (void)state;
    unsigned char rec[5 + 6] = {0, 0, 0, 0, 0, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xc0};
    seal(rec, sizeof rec);
    obx_delivery o = {0};
    obx_error err;
    assert_int_equal(obx__codec_delivery_decode(rec, sizeof rec, &o, &err), OBX_ERR_CORRUPT);
    obx_event ev;
    assert_int_equal(obx__codec_event_decode(rec, sizeof rec, &ev, NULL, NULL, &err),
                     OBX_ERR_CORRUPT);
    /* a str32 longer than the record, and the unused byte 0xc1 */
    unsigned char rec2[5 + 6] = {0, 0, 0, 0, 0, 0xdb, 0x7f, 0xff, 0xff, 0xff, 0x00};
    seal(rec2, sizeof rec2);
    assert_int_equal(obx__codec_delivery_decode(rec2, sizeof rec2, &o, &err), OBX_ERR_CORRUPT);
    unsigned char rec3[5 + 1] = {0, 0, 0, 0, 0, 0xc1};
    seal(rec3, sizeof rec3);
    assert_int_equal(obx__codec_delivery_decode(rec3, sizeof rec3, &o, &err), OBX_ERR_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vector),
        cmocka_unit_test(test_crc32c_paths_agree),
        cmocka_unit_test(test_event_round_trip),
        cmocka_unit_test(test_delivery_round_trip_and_history),
        cmocka_unit_test(test_delivery_old_attempt_format),
        cmocka_unit_test(test_delivery_capture_round_trip),
        cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_huge_count_with_valid_checksum),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
