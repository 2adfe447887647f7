/*
 * tests/delivery/test-duration.c - Go time.ParseDuration compatibility (values and error
 * texts), Duration.String formatting, and the size parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/duration.h"

#define NS  INT64_C(1)
#define US  (1000 * NS)
#define MS  (1000 * US)
#define SEC (1000 * MS)
#define MIN (60 * SEC)
#define HR  (60 * MIN)

static void ok(const char *s, int64_t want)
{
    int64_t got = 12345;
    char err[256] = "";
    int rc = dlv_duration_parse(s, &got, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: unexpected error %s", s, err);
    if (got != want)
        fail_msg("%s: got %lld want %lld", s, (long long)got, (long long)want);
}

static void bad(const char *s, const char *want)
{
    int64_t got = 777;
    char err[256] = "";
    assert_int_equal(dlv_duration_parse(s, &got, err, sizeof err), DLV_ERR_INVALID);
    assert_string_equal(err, want);
    assert_int_equal(got, 777); /* untouched */
}

static void test_valid(void **state)
{
    (void)state;
    ok("0", 0);
    ok("-0", 0);
    ok("+0", 0);
    ok("5s", 5 * SEC);
    ok("30s", 30 * SEC);
    ok("1478s", 1478 * SEC);
    ok("-5s", -5 * SEC);
    ok("+5s", 5 * SEC);
    ok("-0s", 0);
    ok("15s", 15 * SEC);
    ok("1m30s", 90 * SEC);
    ok("1h", HR);
    ok("500ms", 500 * MS);
    ok("250us", 250 * US);
    ok("250\xc2\xb5s", 250 * US); /* U+00B5 */
    ok("250\xce\xbcs", 250 * US); /* U+03BC */
    ok("10ns", 10);
    ok("1.5h", HR + 30 * MIN);
    ok(".5s", 500 * MS);
    ok("5.s", 5 * SEC);
    ok("1.004s", 1004 * MS);
    ok("1.0040s", 1004 * MS);
    ok("100.00100s", 100 * SEC + 1 * MS);
    ok("1h2m3.5s", HR + 2 * MIN + 3 * SEC + 500 * MS);
    ok("1s1s", 2 * SEC);
    ok("3h30m", 3 * HR + 30 * MIN);
    ok("10.5s4m", 4 * MIN + 10 * SEC + 500 * MS);
    ok("-2m3.4s", -(2 * MIN + 3 * SEC + 400 * MS));
    ok("1h2m3s4ms5us6ns", HR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6 * NS);
    ok("39h9m14.425s", 39 * HR + 9 * MIN + 14 * SEC + 425 * MS);
    ok("52763797000ns", 52763797000 * NS);
    ok("0.3333333333333333333h", 20 * MIN);
    ok("9007199254740993ns", (INT64_C(1) << 53) + 1);
    ok("9223372036854775807ns", INT64_MAX);
    ok("9223372036.854775807s", INT64_MAX);
    ok("-9223372036854775808ns", INT64_MIN);
    ok("0.100000000000000000000h", 6 * MIN);
    ok("0.830103483285477580700h", 49 * MIN + 48 * SEC + 372539827 * NS);
}

static void test_errors(void **state)
{
    (void)state;
    bad("", "time: invalid duration \"\"");
    bad("15", "time: missing unit in duration \"15\"");
    bad("1d", "time: unknown unit \"d\" in duration \"1d\"");
    bad("3", "time: missing unit in duration \"3\"");
    bad("-", "time: invalid duration \"-\"");
    bad("s", "time: invalid duration \"s\"");
    bad(".", "time: invalid duration \".\"");
    bad("-.", "time: invalid duration \"-.\"");
    bad(".s", "time: invalid duration \".s\"");
    bad("+.s", "time: invalid duration \"+.s\"");
    bad("1s ", "time: unknown unit \"s \" in duration \"1s \"");
    bad(" 1s", "time: invalid duration \" 1s\"");
    bad("1.5", "time: missing unit in duration \"1.5\"");
    bad("9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\"");
    bad("9223372036854775.808us", "time: invalid duration \"9223372036854775.808us\"");
    bad("9223372036854ms775us808ns", "time: invalid duration \"9223372036854ms775us808ns\"");
    bad("-9223372036854775809ns", "time: invalid duration \"-9223372036854775809ns\"");
    bad("3000000h", "time: invalid duration \"3000000h\"");
    /* non-ASCII and quotes are escaped the way Go's time.quote does */
    bad("1\xc3\xa9", "time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\"");
    bad("\"1s", "time: invalid duration \"\\\"1s\"");
    bad("1..5s", "time: missing unit in duration \"1..5s\"");
    bad("\xd9\xa3s", "time: invalid duration \"\\xd9\\xa3s\"");
    bad("5\xc2\xb5x", "time: unknown unit \"\\xc2\\xb5x\" in duration \"5\\xc2\\xb5x\"");
    bad("abc", "time: invalid duration \"abc\"");
    bad("1m\t", "time: unknown unit \"m\\x09\" in duration \"1m\\x09\"");
}

static void test_ms_and_format(void **state)
{
    (void)state;
    int64_t ms = -1;
    char err[128];
    assert_int_equal(dlv_duration_parse_ms("15s", &ms, err, sizeof err), DLV_OK);
    assert_int_equal(ms, 15000);
    assert_int_equal(dlv_duration_parse_ms("1ns", &ms, err, sizeof err), DLV_OK);
    assert_int_equal(ms, 1); /* rounded up: a wait never becomes zero */
    assert_int_equal(dlv_duration_parse_ms("1.5ms", &ms, err, sizeof err), DLV_OK);
    assert_int_equal(ms, 2);
    assert_int_equal(dlv_duration_parse_ms("0", &ms, err, sizeof err), DLV_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(dlv_duration_parse_ms("-1500us", &ms, err, sizeof err), DLV_OK);
    assert_int_equal(ms, -1);
    assert_int_equal(dlv_duration_parse_ms("1x", &ms, err, sizeof err), DLV_ERR_INVALID);
    assert_string_equal(err, "time: unknown unit \"x\" in duration \"1x\"");
    assert_int_equal(dlv_duration_parse_n("15s", 2, &ms, err, sizeof err), DLV_ERR_INVALID);
    assert_string_equal(err, "time: missing unit in duration \"15\"");

    static const struct {
        int64_t ns;
        const char *s;
    } f[] = {
        {0, "0s"},
        {1, "1ns"},
        {1100, "1.1\xc2\xb5s"},
        {2200 * US, "2.2ms"},
        {3300 * MS, "3.3s"},
        {-(4 * MIN + 5 * SEC), "-4m5s"},
        {4 * MIN + 5001 * MS, "4m5.001s"},
        {5 * HR + 6 * MIN + 7001 * MS, "5h6m7.001s"},
        {8 * MIN + 1, "8m0.000000001s"},
        {15 * SEC, "15s"},
        {HR, "1h0m0s"},
        {INT64_MAX, "2562047h47m16.854775807s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char buf[64];
        size_t n = dlv_duration_format(f[i].ns, buf, sizeof buf);
        assert_string_equal(buf, f[i].s);
        assert_int_equal(n, strlen(f[i].s));
    }
    char tiny[4];
    assert_int_equal(dlv_duration_format(15 * SEC + 500 * MS, tiny, sizeof tiny), 3);
    assert_string_equal(tiny, "15.");
}

static void test_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"512B", 512},
        {"1KiB", 1024},
        {"1MiB", 1048576},
        {"1GiB", UINT64_C(1) << 30},
        {"2 TiB", UINT64_C(2) << 40},
        {"1KB", 1000},
        {"5MB", 5000000},
        {"1GB", 1000000000},
        {"3TB", UINT64_C(3000000000000)},
        {"16384 KiB", UINT64_C(16384) * 1024},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 99;
        char err[200] = "";
        if (dlv_size_parse(good[i].s, &v, err, sizeof err) != 0)
            fail_msg("%s: %s", good[i].s, err);
        assert_int_equal(v, good[i].v);
    }
    static const struct {
        const char *s, *err;
    } badv[] = {
        {"", "invalid size \"\": empty"},
        {"-1MiB", "invalid size \"-1MiB\": expected a non-negative integer, optionally followed "
                  "by B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"},
        {"MiB", "invalid size \"MiB\": expected a non-negative integer, optionally followed by "
                "B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"},
        {"10XB", "invalid size \"10XB\": unknown unit \"XB\" (use B, KiB, MiB, GiB, TiB, or KB, "
                 "MB, GB, TB for powers of 1000)"},
        {"1.5GiB", "invalid size \"1.5GiB\": unknown unit \".5GiB\" (use B, KiB, MiB, GiB, TiB, "
                   "or KB, MB, GB, TB for powers of 1000)"},
        {"1mib", "invalid size \"1mib\": unknown unit \"mib\" (use B, KiB, MiB, GiB, TiB, or KB, "
                 "MB, GB, TB for powers of 1000)"},
        {"99999999999999999999", "invalid size \"99999999999999999999\": too large"},
        {"20000000TiB", "invalid size \"20000000TiB\": too large"},
    };
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        uint64_t v = 99;
        char err[200] = "";
        assert_int_equal(dlv_size_parse(badv[i].s, &v, err, sizeof err), DLV_ERR_INVALID);
        assert_string_equal(err, badv[i].err);
        assert_int_equal(v, 99);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ms_and_format),
        cmocka_unit_test(test_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
