/*
 * test-rules.c - each rule that has one home in the delivery library, checked through that
 * home and through its callers: URLs (scheme in any case, host, no control characters),
 * sink names (the store's 63-byte limit), headers, signing secrets, the base64 decoder,
 * durations (Go's units, plus d/w for outboxctl), secret wiping, engine defaults, and the
 * event key rule shared by the template decoder and outboxd's ingest validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "delivery/base64.h"
#include "delivery/duration.h"
#include "delivery/error.h"
#include "delivery/secret.h"
#include "delivery/sign.h"
#include "gotmpl/gotmpl.h"
#include "engine-fixture.h"
#include "outboxd-event.h"

static void url_ok(const char *u)
{
    char err[256] = "";
    if (dlv_url_check(u, err, sizeof err) != DLV_OK)
        fail_msg("%s refused: %s", u, err);
}

static void url_bad(const char *u, const char *needle)
{
    char err[256] = "";
    assert_int_equal(dlv_url_check(u, err, sizeof err), DLV_ERR_INVALID);
    if (!strstr(err, needle))
        fail_msg("error for a bad url is \"%s\", expected \"%s\"", err, needle);
}

static void test_url_rule(void **state)
{
    (void)state;
    url_ok("http://example.com/hook");
    url_ok("HTTP://example.com/hook");
    url_ok("HtTpS://example.com:8443/a?b=c#d");
    url_ok("http://user:pw@example.com/");
    url_ok("http://[::1]:8080/x");
    url_ok("http://127.0.0.1:");
    url_bad("ftp://example.com/", "http:// or https://");
    url_bad("example.com/hook", "http:// or https://");
    url_bad("http://", "no host");
    url_bad("http:///path", "no host");
    url_bad("http://@/x", "no host");
    url_bad("http://:80/x", "no host");
    url_bad("http://h:8o/x", "port");
    url_bad("http://[::1/x", "IPv6");
    url_bad("http://h/a\r\nX-Injected: 1", "control character (0x0d) at byte 11");
    url_bad("http://h/a\nb", "control character (0x0a)");
    url_bad("http://h/a\tb", "control character (0x09)");
    url_bad("http://h/a b", "space at byte 11");
    url_bad("", "empty");
    /* the message never carries the URL (its query may hold a token) */
    char err[256] = "";
    assert_int_equal(dlv_url_check("http://h/?token=s3cr3t\n", err, sizeof err), DLV_ERR_INVALID);
    assert_null(strstr(err, "s3cr3t"));
}

static void test_sink_name_rule(void **state)
{
    (void)state;
    char n63[64], n64[65], err[256];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_int_equal(DLV_SINK_NAME_MAX, OBX_SINK_NAME_MAX - 1);
    assert_true(dlv_sink_name_valid(n63));
    assert_false(dlv_sink_name_valid(n64));
    assert_int_equal(dlv_sink_name_check(n64, err, sizeof err), DLV_ERR_INVALID);
    assert_non_null(strstr(err, "64 bytes, at most 63"));
    assert_int_equal(dlv_sink_name_check("a b", err, sizeof err), DLV_ERR_INVALID);
    assert_non_null(strstr(err, "' ' at byte 2"));
    assert_int_equal(dlv_sink_name_check("", err, sizeof err), DLV_ERR_INVALID);
    assert_int_equal(dlv_sink_name_check("web.hook_1-x", err, sizeof err), DLV_OK);
}

static void test_header_rule(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(dlv_header_check("X-Api-Key", "abc\tdef", err, sizeof err), DLV_OK);
    assert_int_equal(dlv_header_check("X Api", "v", err, sizeof err), DLV_ERR_INVALID);
    assert_int_equal(dlv_header_check("X:Api", "v", err, sizeof err), DLV_ERR_INVALID);
    assert_int_equal(dlv_header_check("", "v", err, sizeof err), DLV_ERR_INVALID);
    assert_int_equal(dlv_header_check("X-Key", "secret\r\nX-Evil: 1", err, sizeof err),
                     DLV_ERR_INVALID);
    assert_null(strstr(err, "secret")); /* values are never echoed */
}

static void test_base64_rule(void **state)
{
    (void)state;
    unsigned char out[32];
    size_t n = 99;
    assert_int_equal(dlv_base64_decode("aGVsbG8=", 8, out, &n), DLV_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(dlv_base64_decode("aGVsbG8", 7, out, &n), DLV_OK); /* unpadded */
    assert_int_equal(n, 5);
    assert_int_equal(dlv_base64_decode("", 0, out, &n), DLV_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dlv_base64_decode("+/+/", 4, out, &n), DLV_OK);
    assert_int_equal(n, 3);
    n = 99;
    assert_int_equal(dlv_base64_decode("aGVsb", 5, out, &n), DLV_ERR_INVALID); /* 1 left */
    assert_int_equal(dlv_base64_decode("aGVsbG8", 7, NULL, NULL), DLV_OK);
    assert_int_equal(dlv_base64_decode("aGV sbG8", 8, out, &n), DLV_ERR_INVALID);
    assert_int_equal(dlv_base64_decode("aGVs-G8_", 8, out, &n), DLV_ERR_INVALID); /* URL-safe */
    assert_int_equal(dlv_base64_decode("aG=sbG8=", 8, out, &n), DLV_ERR_INVALID);
    assert_int_equal(dlv_base64_decode("aGVsbG8==", 9, out, &n), DLV_ERR_INVALID);
    assert_int_equal(dlv_base64_decode("aGVsbA===", 9, out, &n), DLV_ERR_INVALID);
    assert_int_equal(n, 99); /* untouched on failure */
    unsigned char *buf = NULL;
    assert_int_equal(dlv_base64_decode_alloc("AAEC", 4, &buf, &n), DLV_OK);
    assert_int_equal(n, 3);
    assert_true(buf[0] == 0 && buf[1] == 1 && buf[2] == 2 && buf[3] == 0);
    free(buf);

    /* the signer uses the same decoder for whsec_ secrets */
    unsigned char key[32];
    size_t klen = 0;
    assert_int_equal(dlv_standard_key("whsec_aGVsbG8", key, &klen), DLV_OK);
    assert_int_equal(klen, 5);
    assert_memory_equal(key, "hello", 5);
    assert_int_equal(dlv_standard_key("whsec_aGV sbG8", key, &klen), DLV_ERR_INVALID);
    char err[256];
    assert_int_equal(dlv_signing_secret_check("whsec_a", 1, err, sizeof err), DLV_ERR_INVALID);
    assert_non_null(strstr(err, "not valid base64"));
    assert_int_equal(dlv_signing_secret_check("whsec_a", 0, err, sizeof err), DLV_OK);
    assert_int_equal(dlv_signing_secret_check("", 0, err, sizeof err), DLV_ERR_INVALID);
    assert_int_equal(dlv_signing_secret_check("plain", 1, err, sizeof err), DLV_OK);
}

static void test_duration_rule(void **state)
{
    (void)state;
    int64_t ns = 0;
    char err[256];
    assert_int_equal(dlv_duration_parse("1h30m", &ns, err, sizeof err), DLV_OK);
    assert_true(ns == 5400LL * 1000000000);
    assert_int_equal(dlv_duration_parse("7d", &ns, err, sizeof err), DLV_ERR_INVALID);
    assert_string_equal(err, "time: unknown unit \"d\" in duration \"7d\"");
    assert_int_equal(dlv_duration_parse_units("7d", 2, DLV_DURATION_DAYS, &ns, err, sizeof err),
                     DLV_OK);
    assert_true(ns == 7LL * 86400 * 1000000000);
    assert_int_equal(dlv_duration_parse_units("1w2d3h", 6, DLV_DURATION_DAYS, &ns, err, sizeof err),
                     DLV_OK);
    assert_true(ns == (9LL * 86400 + 3 * 3600) * 1000000000);
    /* Go's units stay: µs with the extension too */
    assert_int_equal(
        dlv_duration_parse_units("1\xc2\xb5s", 4, DLV_DURATION_DAYS, &ns, err, sizeof err), DLV_OK);
    assert_true(ns == 1000);
}

static void test_secret_wipe(void **state)
{
    (void)state;
    unsigned char buf[16];
    memset(buf, 0xa5, sizeof buf);
    dlv_secret_wipe(buf, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[8], 0xa5);
    dlv_secret_wipe(NULL, 0);
    dlv_secret_free(NULL);
    dlv_secret_free(strdup("s3cr3t"));
}

static void test_engine_defaults(void **state)
{
    (void)state;
    dlv_engine_options o;
    dlv_engine_options_init(&o);
    assert_int_equal(o.max_in_flight_total, DLV_ENGINE_MAX_IN_FLIGHT);
    assert_int_equal(o.poll_ms, DLV_ENGINE_POLL_MS);
    assert_int_equal(o.commit_batch, DLV_ENGINE_COMMIT_BATCH);
    assert_int_equal(o.prefetch, DLV_ENGINE_PREFETCH);
    dlv_sink_config c;
    dlv_sink_config_init(&c);
    assert_int_equal(c.timeout_ms, DLV_SINK_TIMEOUT_MS);
    assert_int_equal(c.max_in_flight, DLV_SINK_MAX_IN_FLIGHT);
    assert_int_equal(c.backoff.max_elapsed_ms, DLV_BACKOFF_MAX_ELAPSED_MS);
    assert_int_equal(c.signature, DLV_SIG_BOTH);
}

/* ---- the engine applies the same rules ---- */

static int engine_new_with(fx_base *b, dlv_sink_config *c, char *err, size_t errlen)
{
    dlv_engine *e = NULL;
    dlv_error de = {0};
    int rc = dlv_engine_new(b->st, c, 1, NULL, &e, &de);
    assert_null(e == NULL ? NULL : "an engine despite the error");
    assert_int_equal(de.code, rc);
    snprintf(err, errlen, "%s", de.msg);
    return rc;
}

static void test_engine_applies_rules(void **state)
{
    (void)state;
    fx_base b;
    assert_int_equal(fx_base_open(&b, "rules"), 0);
    char err[512] = "";
    dlv_sink_config c;

    fx_sink(&c, "crlf", "http://127.0.0.1:1/hook\r\nX-Injected: 1");
    assert_int_not_equal(engine_new_with(&b, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "control character"));
    dlv_sink_config_clear(&c);

    char n64[65];
    memset(n64, 'n', 64);
    n64[64] = '\0';
    fx_sink(&c, n64, "http://127.0.0.1:1/hook");
    assert_int_not_equal(engine_new_with(&b, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "at most 63"));
    dlv_sink_config_clear(&c);
    /* the store refuses it too */
    uint32_t id;
    obx_error oe;
    assert_int_not_equal(obx_sink_id(b.st, n64, &id, &oe), OBX_OK);

    fx_sink(&c, "bad-secret", "http://127.0.0.1:1/hook");
    c.secrets = calloc(1, sizeof *c.secrets);
    c.secrets[0] = strdup("whsec_!!");
    c.n_secrets = 1;
    assert_int_not_equal(engine_new_with(&b, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "not valid base64"));
    assert_null(strstr(err, "whsec_!!"));
    dlv_sink_config_clear(&c);

    /* an upper-case scheme is accepted, and the request actually goes out */
    char url[128];
    snprintf(url, sizeof url, "HTTP://127.0.0.1:%u/hook", (unsigned)trx_port(b.rx));
    fx_sink(&c, "upper", url);
    dlv_engine *e = NULL;
    dlv_error de;
    assert_int_equal(dlv_engine_new(b.st, &c, 1, NULL, &e, &de), DLV_OK);
    assert_int_equal(obx_sink_id(b.st, "upper", &id, &oe), OBX_OK);
    uint64_t ev = fx_enqueue(b.st, id, FX_BODY);
    assert_true(ev != 0);
    assert_int_equal(dlv_engine_start(e, &de), DLV_OK);
    assert_true(fx_wait_state(b.st, ev, id, OBX_STATE_DELIVERED, 10000, NULL));
    assert_int_equal(trx_count(b.rx), 1);
    assert_string_equal(trx_get(b.rx, 0)->path, "/hook");
    dlv_engine_free(e);
    dlv_sink_config_clear(&c);
    fx_base_close(&b);
}

/* A store failure reaches the caller as DLV_ERR_STORE with the store's own code. */
static void test_engine_keeps_store_code(void **state)
{
    (void)state;
    fx_base b;
    assert_int_equal(fx_base_open(&b, "rules-store"), 0);
    obx_close(b.st);
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_READONLY;
    obx_error oe;
    assert_int_equal(obx_open(b.dir, &o, &b.st, &oe), OBX_OK);
    uint32_t id;
    int want = obx_sink_id(b.st, "fresh", &id, &oe); /* what the store says */
    assert_int_not_equal(want, OBX_OK);
    dlv_sink_config c;
    fx_sink(&c, "fresh", "http://127.0.0.1:1/hook");
    dlv_engine *e = NULL;
    dlv_error de = {0};
    assert_int_equal(dlv_engine_new(b.st, &c, 1, NULL, &e, &de), DLV_ERR_STORE);
    assert_null(e);
    assert_int_equal(de.code, DLV_ERR_STORE);
    assert_int_equal(de.store, want);
    assert_non_null(strstr(de.msg, "fresh"));
    assert_string_equal(dlv_strerror(de.code), "store error");
    dlv_sink_config_clear(&c);
    fx_base_close(&b);
}

/* ---- event keys: ingest and the template decoder use one rule ---- */

/* What the template decoder sees as `.Type`, rendered. */
static char *template_type(const char *body)
{
    gotmpl *t = NULL;
    char err[256];
    assert_int_equal(gotmpl_parse("{{ .Type }}", 11, &t, err, sizeof err), GOTMPL_OK);
    gotmpl_event *ev = NULL;
    assert_int_equal(gotmpl_event_parse(body, strlen(body), &ev, err, sizeof err), GOTMPL_OK);
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(gotmpl_execute(t, ev, NULL, &out, &n, err, sizeof err), GOTMPL_OK);
    gotmpl_event_free(ev);
    gotmpl_free(t);
    return out;
}

static void test_event_keys_fold(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"Version\":\"0.2\",\"Type\":\"flag\",\"ACTION\":\"created\",\"timeStamp\":\"t\"}",
        /* several matches: the last one wins, as in Go */
        "{\"version\":\"0.2\",\"type\":\"segment\",\"Type\":\"flag\",\"action\":\"created\","
        "\"timestamp\":\"t\"}",
        "{\"version\":\"0.2\",\"TYPE\":\"segment\",\"type\":\"flag\",\"action\":\"created\","
        "\"timestamp\":\"t\"}",
        /* Go folds U+017F (long s) onto 's' */
        "{\"ver\u017fion\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"time\u017ftamp\":"
        "\"t\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        oev_event *evs = NULL;
        size_t n = 0;
        char err[256] = "";
        int rc = oev_parse(OEV_CT_JSON, bodies[i], strlen(bodies[i]), &evs, &n, err, sizeof err);
        if (rc != 0)
            fail_msg("ingest refused %s: %s", bodies[i], err);
        assert_int_equal(n, 1);
        assert_string_equal(evs[0].type, "flag");
        assert_string_equal(evs[0].action, "created");
        char *tt = template_type(bodies[i]);
        assert_string_equal(tt, evs[0].type); /* both read the same member */
        free(tt);
        oev_events_free(evs, n);
    }
    /* an empty value under any case is still refused, naming the field */
    const char *bad =
        "{\"version\":\"0.2\",\"Type\":\"\",\"action\":\"created\",\"timestamp\":\"t\"}";
    oev_event *evs = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(oev_parse(OEV_CT_JSON, bad, strlen(bad), &evs, &n, err, sizeof err),
                     OEV_ERR_EVENT);
    assert_non_null(strstr(err, "\"type\" must not be empty"));
    /* the helper itself */
    json_t *o = json_loads("{\"a\":1,\"TyPe\":2}", 0, NULL);
    assert_non_null(o);
    assert_true(json_integer_value(gotmpl_json_field(o, "type")) == 2);
    assert_null(gotmpl_json_field(o, "types"));
    assert_null(gotmpl_json_field(o, "typ"));
    json_decref(o);
    /* Go's folding beyond ASCII: the long s and the Kelvin sign stand for 's' and 'k' */
    o = json_loads("{\"\u017ftatu\u017f\":1,\"\u212aey\":2,\"\u00e9type\":3}", 0, NULL);
    assert_non_null(o);
    assert_true(json_integer_value(gotmpl_json_field(o, "status")) == 1);
    assert_true(json_integer_value(gotmpl_json_field(o, "key")) == 2);
    assert_null(gotmpl_json_field(o, "type"));
    json_t *arr = json_array();
    assert_null(gotmpl_json_field(arr, "type"));
    json_decref(arr);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_rule),
        cmocka_unit_test(test_sink_name_rule),
        cmocka_unit_test(test_header_rule),
        cmocka_unit_test(test_base64_rule),
        cmocka_unit_test(test_duration_rule),
        cmocka_unit_test(test_secret_wipe),
        cmocka_unit_test(test_engine_defaults),
        cmocka_unit_test(test_engine_applies_rules),
        cmocka_unit_test(test_engine_keeps_store_code),
        cmocka_unit_test(test_event_keys_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
