/*
 * test-gojson.c - CMocka tests of the Go-compatible JSON layer: float64 formatting as
 * encoding/json writes it, string escaping, sorted-key encoding of generic values, and
 * json.Valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gotmpl/gojson.h"

static void check_float(double v, const char *want)
{
    char buf[GOJSON_FLOAT_MAX];
    int n = gojson_format_float(v, buf, sizeof buf);
    if (n < 0 || strcmp(buf, want) != 0)
        fail_msg("%.17g: want %s got %s", v, want, n < 0 ? "(error)" : buf);
    assert_int_equal((size_t)n, strlen(want));
}

static void test_floats(void **st)
{
    (void)st;
    check_float(0, "0");
    check_float(-0.0, "-0");
    check_float(1, "1");
    check_float(-1, "-1");
    check_float(33.3, "33.3");
    check_float(0.1, "0.1");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(1e21, "1e+21");
    check_float(1e20, "100000000000000000000");
    check_float(123456789e12, "123456789000000000000");
    check_float(12345678901234567890.0, "12345678901234567000");
    check_float(1e-6, "0.000001");
    check_float(1e-7, "1e-7");
    check_float(1.5e-7, "1.5e-7");
    check_float(1e-10, "1e-10");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(5e-324, "5e-324");
    check_float(2.2250738585072014e-308, "2.2250738585072014e-308");
    check_float(9007199254740993.0, "9007199254740992");
    check_float(1e23, "1e+23");
    check_float(123456.789, "123456.789");
    check_float(66.7, "66.7");
    check_float(50, "50");
    check_float(1000000, "1000000");
    check_float(12345678, "12345678");
    check_float(0.000001234, "0.000001234");
    check_float(100, "100");
    check_float(5e-7, "5e-7");
    check_float(1.2345e25, "1.2345e+25");
    check_float(4.940656458412465e-324 * 3, "1.5e-323");
    char buf[GOJSON_FLOAT_MAX];
    assert_int_equal(gojson_format_float(0.0 / 0.0, buf, sizeof buf), -1);
    assert_int_equal(gojson_format_float(1.0 / 0.0, buf, sizeof buf), -1);
    /* round trip for many values */
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (d != d || d - d != 0)
            continue;
        int n = gojson_format_float(d, buf, sizeof buf);
        assert_true(n > 0);
        assert_true(strtod(buf, NULL) == d);
    }
}

static void check_encode(const char *json, const char *want)
{
    json_error_t je;
    json_t *v = json_loads(json, JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    assert_non_null(v);
    char *out;
    size_t len;
    char err[128];
    assert_int_equal(gojson_encode(v, &out, &len, err, sizeof err), 0);
    if (strcmp(out, want) != 0)
        fail_msg("%s: want %s got %s", json, want, out);
    assert_int_equal(len, strlen(want));
    free(out);
    json_decref(v);
}

static void test_encode(void **st)
{
    (void)st;
    check_encode("{\"b\":1,\"a\":[true,false,null],\"B\":{\"y\":2,\"x\":1}}",
                 "{\"B\":{\"x\":1,\"y\":2},\"a\":[true,false,null],\"b\":1}");
    check_encode("\"<b>&</b>\"", "\"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\"");
    check_encode("\"\\u2028\\u2029\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\\u007f\"",
                 "\"\\u2028\\u2029\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\x7f\"");
    check_encode("\"\\u0000é\"", "\"\\u0000é\"");
    check_encode("{\"n\":1e21,\"s\":1e-7,\"i\":12345678901234567890}",
                 "{\"i\":12345678901234567000,\"n\":1e+21,\"s\":1e-7}");
    check_encode("[]", "[]");
    check_encode("{}", "{}");
    char *out;
    size_t len;
    assert_int_equal(gojson_encode(NULL, &out, &len, NULL, 0), 0);
    assert_string_equal(out, "null");
    free(out);
    assert_int_equal(gojson_encode_string("a\xff"
                                          "b",
                                          3, &out, &len),
                     0);
    assert_string_equal(out, "\"a\\ufffdb\"");
    free(out);
    assert_int_equal(gojson_encode_string("\xe2\x80", 2, &out, &len), 0);
    assert_string_equal(out, "\"\\ufffd\\ufffd\"");
    free(out);
}

static void test_valid(void **st)
{
    (void)st;
    static const char *const good[] = {
        "0",
        "-0",
        "1.5e+10",
        "\"x\"",
        " {\"a\" : [1, 2, {}]} \n",
        "true",
        "null",
        "[]",
        "{\"a\":\"\\u00e9\\n\"}",
        "\"\xff\"",
        "-1.0E-2",
    };
    static const char *const bad[] = {
        "",           " ",         "01",     "1.",      ".5",  "+1",       "[1,]",
        "{\"a\":1,}", "{a:1}",     "\"\t\"", "\"\\x\"", "tru", "nul",      "[1] [2]",
        "{\"a\"}",    "\"\\u12\"", "1e",     "[",       "]",   "{\"a\":1", "NaN",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!gojson_valid(good[i], strlen(good[i])))
            fail_msg("should be valid: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gojson_valid(bad[i], strlen(bad[i])))
            fail_msg("should be invalid: %s", bad[i]);
    assert_int_equal(gojson_valid(NULL, 0), 0);
    /* nesting: 10000 is fine, 10001 is not (Go's scanner limit) */
    size_t n = 10001;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_int_equal(gojson_valid(deep + 1, 2 * n - 2), 1);
    assert_int_equal(gojson_valid(deep, 2 * n), 0);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
