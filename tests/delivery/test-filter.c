/*
 * tests/delivery/test-filter.c - Flipt's audit.events filter: expansion, matching and the
 * exact error texts of checker.go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/filter.h"

static dlv_filter *parse(const char *const *e, size_t n)
{
    dlv_filter *f = NULL;
    char err[128] = "";
    if (dlv_filter_parse(e, n, &f, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(f);
    return f;
}

static void expect_err(const char *const *e, size_t n, const char *want)
{
    dlv_filter *f = (dlv_filter *)0x1;
    char err[128] = "";
    assert_int_equal(dlv_filter_parse(e, n, &f, err, sizeof err), DLV_ERR_INVALID);
    assert_string_equal(err, want);
    assert_ptr_equal(f, (dlv_filter *)0x1); /* untouched */
}

static void test_all(void **state)
{
    (void)state;
    const char *e[] = {"*:*"};
    dlv_filter *f = parse(e, 1);
    assert_int_equal(dlv_filter_count(f), 27);
    assert_true(dlv_filter_match(f, "flag", "created"));
    assert_true(dlv_filter_match(f, "token", "deleted"));
    assert_true(dlv_filter_match(f, "variant", "updated"));
    assert_false(dlv_filter_match(f, "flag", "read"));    /* read never matches */
    assert_false(dlv_filter_match(f, "Flag", "created")); /* case-sensitive */
    assert_false(dlv_filter_match(f, "authentication", "created"));
    assert_false(dlv_filter_match(f, NULL, "created"));
    dlv_filter_free(f);

    dlv_filter *a = dlv_filter_new_all();
    assert_int_equal(dlv_filter_count(a), 27);
    assert_true(dlv_filter_match(a, "segment", "deleted"));
    dlv_filter_free(a);
    /* NULL filter = everything known */
    assert_true(dlv_filter_match(NULL, "rule", "updated"));
    assert_false(dlv_filter_match(NULL, "rule", "read"));
    dlv_filter_free(NULL);
}

static void test_expansion(void **state)
{
    (void)state;
    const char *e[] = {"flag:*", "namespace:deleted", "segment:created:ignored"};
    dlv_filter *f = parse(e, 3);
    /* flag x 3, namespace:deleted, segment:created */
    assert_int_equal(dlv_filter_count(f), 3 + 1 + 1);
    assert_true(dlv_filter_match(f, "flag", "updated"));
    assert_true(dlv_filter_match(f, "namespace", "deleted"));
    assert_true(dlv_filter_match(f, "segment", "created"));
    assert_false(dlv_filter_match(f, "segment", "updated"));
    assert_false(dlv_filter_match(f, "rollout", "created"));
    /* lengths instead of NUL terminators */
    assert_true(dlv_filter_match_n(f, "flagXX", 4, "updatedYY", 7));
    assert_false(dlv_filter_match_n(f, "flag", 3, "updated", 7));
    dlv_filter *d = dlv_filter_dup(f);
    assert_non_null(d);
    assert_int_equal(dlv_filter_count(d), 5);
    assert_true(dlv_filter_match(d, "segment", "created"));
    dlv_filter_free(f);
    dlv_filter_free(d);

    const char *one[] = {"token:deleted"};
    f = parse(one, 1);
    assert_int_equal(dlv_filter_count(f), 1);
    assert_true(dlv_filter_match(f, "token", "deleted"));
    assert_false(dlv_filter_match(f, "token", "created"));
    dlv_filter_free(f);
}

static void test_errors(void **state)
{
    (void)state;
    const char *a[] = {"flag"};
    expect_err(a, 1, "invalid event pair: flag");
    const char *b[] = {"*:*", "flags:created"};
    expect_err(b, 2, "invalid noun: flags");
    const char *c[] = {"flag:create"};
    expect_err(c, 1, "invalid verb: create");
    const char *c2[] = {"flag:read"};
    expect_err(c2, 1, "invalid verb: read");
    const char *d[] = {"*:created", "flag:created"};
    expect_err(d, 2, "repeated event pair: flag:created");
    const char *d2[] = {"flag:created", "flag:created"};
    expect_err(d2, 2, "repeated event pair: flag:created");
    const char *d4[] = {"flag:*", "*:deleted"};
    expect_err(d4, 2, "repeated event pair: flag:deleted");
    const char *d3[] = {"flag:updated", "*:*"};
    expect_err(d3, 2, "repeated event pair: flag:updated");
    expect_err(NULL, 0, "no event pairs exist");
    const char *e[] = {""};
    expect_err(e, 1, "invalid event pair: ");
    const char *g[] = {":created"};
    expect_err(g, 1, "invalid noun: ");
    const char *h[] = {"FLAG:created"};
    expect_err(h, 1, "invalid noun: FLAG");
}

static void test_speed(void **state)
{
    (void)state;
    const char *e[] = {"flag:*", "segment:created"};
    dlv_filter *f = parse(e, 2);
    static const char *const types[] = {"flag", "segment", "variant", "token"};
    static const char *const acts[] = {"created", "updated", "deleted", "read"};
    size_t hits = 0;
    for (size_t i = 0; i < 400000; i++)
        hits += dlv_filter_match(f, types[i & 3], acts[(i >> 2) & 3]);
    /* per 16 combinations: flag x 3 + segment:created = 4 */
    assert_int_equal(hits, 400000 / 16 * 4);
    dlv_filter_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all),
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
