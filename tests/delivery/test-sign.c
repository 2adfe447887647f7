/*
 * tests/delivery/test-sign.c - Flipt and Standard Webhooks signatures: the spec vectors,
 * rotation, whsec_ decoding, verification (tolerance, tampering) and constant-time helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/sign.h"

static const char body_a[] =
    "{\"version\":\"\",\"type\":\"flag\",\"action\":\"create\",\"metadata\":"
    "{},\"payload\":null,\"timestamp\":\"\",\"status\":\"\"}";
static const char body_b[] =
    "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"metadata\":{\"actor\":{"
    "\"authentication\":\"none\",\"ip\":\"127.0.0.1\"}},\"payload\":{\"description\":\"\","
    "\"enabled\":true,\"key\":\"my-flag\",\"name\":\"My Flag\",\"namespace_key\":\"default\"},"
    "\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}";

#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define STD_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define STD_TS     INT64_C(1614265330)
#define STD_BODY   "{\"test\": 2432232314}"
#define STD_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_flipt_vectors(void **state)
{
    (void)state;
    char out[DLV_FLIPT_SIG_HEX_LEN + 1];
    assert_int_equal(sizeof body_b - 1, 271);
    assert_int_equal(dlv_sign_flipt("s3crET", 6, body_a, sizeof body_a - 1, out), DLV_OK);
    assert_string_equal(out, "6bc16d7434cbd746abfd25e3350a3f43fba04883b7f0b83f09bbc373116f84b0");
    assert_int_equal(dlv_sign_flipt("s3crET", 6, body_b, sizeof body_b - 1, out), DLV_OK);
    assert_string_equal(out, "8820fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6");
    /* empty key and empty body are valid HMAC inputs */
    assert_int_equal(dlv_sign_flipt("", 0, NULL, 0, out), DLV_OK);
    assert_string_equal(out, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_int_equal(dlv_sign_flipt(NULL, 3, body_a, 1, out), DLV_ERR_INVALID);
}

/* A signer keeps its key across signatures: each one is byte for byte the one-shot's, in
 * any order, for both schemes (the engine signs every request of a sink with one). */
static void test_signer_reused(void **state)
{
    (void)state;
    dlv_signer *f = NULL, *sd = NULL, *raw = NULL;
    assert_int_equal(dlv_signer_new("s3crET", 0, &f), DLV_OK);
    assert_int_equal(dlv_signer_new(STD_SECRET, 1, &sd), DLV_OK);
    assert_int_equal(dlv_signer_new("s3crET", 1, &raw), DLV_OK);
    char out[DLV_FLIPT_SIG_HEX_LEN + 1], tok[DLV_STANDARD_TOKEN_LEN + 1],
        want[DLV_FLIPT_SIG_HEX_LEN + 1];
    for (int round = 0; round < 3; round++) {
        assert_int_equal(dlv_signer_flipt(f, body_b, sizeof body_b - 1, out), DLV_OK);
        assert_string_equal(out,
                            "8820fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6");
        assert_int_equal(
            dlv_signer_standard(sd, STD_ID, STD_TS, STD_BODY, strlen(STD_BODY), tok, sizeof tok),
            DLV_OK);
        assert_string_equal(tok, STD_SIG);
        assert_int_equal(dlv_signer_flipt(f, body_a, sizeof body_a - 1, out), DLV_OK);
        assert_string_equal(out,
                            "6bc16d7434cbd746abfd25e3350a3f43fba04883b7f0b83f09bbc373116f84b0");
        assert_int_equal(dlv_signer_flipt(f, NULL, 0, out), DLV_OK);
        assert_int_equal(dlv_sign_flipt("s3crET", 6, NULL, 0, want), DLV_OK);
        assert_string_equal(out, want);
        /* a plain secret used raw by the Standard scheme, as dlv_sign_standard does */
        assert_int_equal(dlv_signer_standard(raw, STD_ID, STD_TS + round, body_b, sizeof body_b - 1,
                                             tok, sizeof tok),
                         DLV_OK);
        assert_int_equal(dlv_sign_standard("s3crET", STD_ID, STD_TS + round, body_b,
                                           sizeof body_b - 1, want, sizeof want),
                         DLV_OK);
        assert_string_equal(tok, want);
    }
    assert_int_equal(dlv_signer_standard(sd, STD_ID, STD_TS, STD_BODY, 3, tok, 20),
                     DLV_ERR_INVALID);
    assert_int_equal(dlv_signer_flipt(NULL, body_a, 1, out), DLV_ERR_INVALID);
    dlv_signer *bad = (dlv_signer *)1;
    assert_int_equal(dlv_signer_new("whsec_!!", 1, &bad), DLV_ERR_INVALID);
    assert_null(bad);
    dlv_signer_free(f);
    dlv_signer_free(sd);
    dlv_signer_free(raw);
    dlv_signer_free(NULL);
}

static void test_flipt_verify(void **state)
{
    (void)state;
    const char *secrets[] = {"old", "s3crET"};
    const char *good = "8820fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6";
    assert_int_equal(dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 1, good), 0);
    assert_int_equal(dlv_verify_flipt(secrets, 2, body_b, sizeof body_b - 1, good), 0);
    assert_int_equal(dlv_verify_flipt(secrets, 1, body_b, sizeof body_b - 1, good),
                     DLV_ERR_MISMATCH);
    /* upper-case hex and surrounding spaces accepted */
    assert_int_equal(
        dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 1,
                         " 8820FC7DDD8A127297AA9FC8DC0939B7A97320B543EDE98FE7CE4A2C992132D6 "),
        0);
    /* one byte of the body changed */
    assert_int_equal(dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 2, good),
                     DLV_ERR_MISMATCH);
    assert_int_equal(dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 1, NULL),
                     DLV_ERR_FORMAT);
    assert_int_equal(dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 1, "abc"),
                     DLV_ERR_FORMAT);
    assert_int_equal(
        dlv_verify_flipt(secrets + 1, 1, body_b, sizeof body_b - 1,
                         "zz20fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6"),
        DLV_ERR_FORMAT);
}

static void test_standard_vector(void **state)
{
    (void)state;
    char tok[64];
    assert_int_equal(
        dlv_sign_standard(STD_SECRET, STD_ID, STD_TS, STD_BODY, strlen(STD_BODY), tok, sizeof tok),
        DLV_OK);
    assert_string_equal(tok, STD_SIG);
    assert_int_equal(strlen(tok), DLV_STANDARD_TOKEN_LEN);
    /* the same secret without its base64 padding gives the same key */
    unsigned char k1[64], k2[64];
    size_t l1 = 0, l2 = 0;
    assert_int_equal(dlv_standard_key(STD_SECRET, k1, &l1), 0);
    assert_int_equal(dlv_standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", k2, &l2), 0);
    assert_int_equal(l1, 24);
    assert_memory_equal(k1, k2, 24);
    assert_int_equal(dlv_standard_key("whsec_AAE", k1, &l1), 0); /* "AAE=" without padding */
    assert_int_equal(l1, 2);
    assert_int_equal(k1[0], 0);
    assert_int_equal(k1[1], 1);
    assert_int_equal(dlv_standard_key("whsec_AAE=", k2, &l2), 0);
    assert_int_equal(l2, 2);
    assert_int_equal(dlv_standard_key("whsec_not base64!", k1, &l1), DLV_ERR_INVALID);
    assert_int_equal(dlv_standard_key("whsec_A", k1, &l1), DLV_ERR_INVALID);
    /* a plain secret is used as raw bytes */
    assert_int_equal(dlv_standard_key("s3crET", k1, &l1), 0);
    assert_int_equal(l1, 6);
    assert_memory_equal(k1, "s3crET", 6);
    assert_int_equal(dlv_sign_standard("whsec_!!", STD_ID, STD_TS, STD_BODY, 3, tok, sizeof tok),
                     DLV_ERR_INVALID);
    assert_int_equal(dlv_sign_standard(STD_SECRET, STD_ID, STD_TS, STD_BODY, 3, tok, 20),
                     DLV_ERR_INVALID);
}

static void test_standard_rotation_and_verify(void **state)
{
    (void)state;
    const char *secrets[] = {"s3crET", STD_SECRET};
    char *h = NULL;
    assert_int_equal(
        dlv_sign_standard_header(secrets, 2, STD_ID, STD_TS, STD_BODY, strlen(STD_BODY), &h), 0);
    assert_non_null(h);
    assert_int_equal(strlen(h), 2 * DLV_STANDARD_TOKEN_LEN + 1);
    assert_int_equal(h[DLV_STANDARD_TOKEN_LEN], ' ');
    assert_string_equal(h + DLV_STANDARD_TOKEN_LEN + 1, STD_SIG);
    assert_memory_equal(h, "v1,", 3);

    const char *only_new[] = {STD_SECRET};
    const char *only_old[] = {"s3crET"};
    const char *other[] = {"nope"};
    const size_t bl = strlen(STD_BODY);
    /* a receiver knowing either secret accepts the rotated header */
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl, h, STD_TS, 300), 0);
    assert_int_equal(
        dlv_verify_standard(only_old, 1, STD_ID, "1614265330", STD_BODY, bl, h, STD_TS + 299, 300),
        0);
    assert_int_equal(
        dlv_verify_standard(other, 1, STD_ID, "1614265330", STD_BODY, bl, h, STD_TS, 300),
        DLV_ERR_MISMATCH);
    /* tolerance, both directions; negative tolerance skips the check */
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl, h, STD_TS + 301, 300),
        DLV_ERR_TIMESTAMP);
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl, h, STD_TS - 301, 300),
        DLV_ERR_TIMESTAMP);
    assert_int_equal(dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl, h,
                                         STD_TS + 100000, -1),
                     0);
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "16142x5330", STD_BODY, bl, h, STD_TS, 300),
        DLV_ERR_TIMESTAMP);
    /* tampered id, timestamp or body */
    assert_int_equal(
        dlv_verify_standard(only_new, 1, "msg_other", "1614265330", STD_BODY, bl, h, STD_TS, 300),
        DLV_ERR_MISMATCH);
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265331", STD_BODY, bl, h, STD_TS, 300),
        DLV_ERR_MISMATCH);
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl - 1, h, STD_TS, 300),
        DLV_ERR_MISMATCH);
    /* unknown versions are skipped; no v1 token at all is a format error */
    assert_int_equal(dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl,
                                         "v1a,xyz " STD_SIG, STD_TS, 300),
                     0);
    assert_int_equal(dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl,
                                         "v2,abc v1a,xyz", STD_TS, 300),
                     DLV_ERR_FORMAT);
    assert_int_equal(
        dlv_verify_standard(only_new, 1, STD_ID, "1614265330", STD_BODY, bl, NULL, STD_TS, 300),
        DLV_ERR_FORMAT);
    free(h);
    assert_string_equal(dlv_strerror(DLV_ERR_MISMATCH), "signature does not match");
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(dlv_ct_streq("token-abc", "token-abc"));
    assert_false(dlv_ct_streq("token-abc", "token-abd"));
    assert_false(dlv_ct_streq("token-abc", "token-ab"));
    assert_false(dlv_ct_streq("token-ab", "token-abc"));
    assert_false(dlv_ct_streq("", "x"));
    assert_true(dlv_ct_streq("", ""));
    assert_false(dlv_ct_streq(NULL, "x"));
    assert_false(dlv_ct_streq(NULL, NULL));
    assert_true(dlv_ct_equal("ab", 2, "ab", 2));
    assert_false(dlv_ct_equal("ab", 2, "ac", 2));
    assert_false(dlv_ct_equal("ab", 2, "ab", 1));
    assert_true(dlv_ct_equal(NULL, 0, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flipt_vectors),
        cmocka_unit_test(test_signer_reused),
        cmocka_unit_test(test_flipt_verify),
        cmocka_unit_test(test_standard_vector),
        cmocka_unit_test(test_standard_rotation_and_verify),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
