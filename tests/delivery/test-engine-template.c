/*
 * test-engine-template.c - the delivery engine in template mode against a real store and
 * the test receiver: the rendered body is sent with the configured headers, a
 * Content-Type when none is configured, and signatures over the rendered bytes; output
 * that is not valid JSON, or a template that fails at execution, makes the delivery a
 * dead letter that is never sent.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine-fixture.h"

typedef struct fx {
    char *dir;
    obx_store *st;
    trx *rx;
    dlv_engine *eng;
    dlv_sink_config sc;
    uint32_t sink_id;
} fx;

#define BODY FX_BODY

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_base b;
    assert_int_equal(fx_base_open(&b, "engine-tmpl"), 0);
    f->dir = b.dir;
    f->st = b.st;
    f->rx = b.rx;
    fx_sink(&f->sc, "tmpl", trx_url(f->rx, "/hook"));
    obx_error oe;
    assert_int_equal(obx_sink_id(f->st, "tmpl", &f->sink_id, &oe), OBX_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    dlv_engine_free(f->eng);
    dlv_sink_config_clear(&f->sc);
    fx_base b = {f->dir, f->st, f->rx};
    fx_base_close(&b);
    free(f);
    return 0;
}

static void set_body(fx *f, const char *tmpl)
{
    char err[256] = "";
    int rc = dlv_sink_config_set_body(&f->sc, tmpl, strlen(tmpl), err, sizeof err);
    if (rc)
        fprintf(stderr, "template: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(f->sc.tmpl);
}

static void add_header(dlv_sink_config *c, const char *name, const char *value)
{
    c->headers = realloc(c->headers, (c->n_headers + 1) * sizeof *c->headers);
    assert_non_null(c->headers);
    c->headers[c->n_headers].name = strdup(name);
    c->headers[c->n_headers].value = strdup(value);
    c->n_headers++;
}

/* Start the engine, enqueue BODY, wait for `st`; returns the event id. */
static uint64_t run(fx *f, int st)
{
    dlv_error err = {0};
    int rc = dlv_engine_new(f->st, &f->sc, 1, NULL, &f->eng, &err);
    if (rc)
        fprintf(stderr, "dlv_engine_new: %s\n", err.msg);
    assert_int_equal(rc, DLV_OK);
    assert_int_equal(dlv_engine_start(f->eng, &err), DLV_OK);
    obx_event_in ev = {"flag", "created", BODY, strlen(BODY), 0, &f->sink_id, 1};
    uint64_t id = 0;
    obx_error oe;
    assert_int_equal(obx_enqueue(f->st, &ev, 1, &id, &oe), OBX_OK);
    assert_true(fx_wait_state(f->st, id, f->sink_id, st, 5000, NULL));
    return id;
}

static void test_rendered_and_signed(void **state)
{
    fx *f = *state;
    set_body(f, "{\"text\": \"{{ .Type }}/{{ .Action }} {{ .Payload.key }}\"}");
    add_header(&f->sc, "X-Api-Key", "k-123");
    f->sc.secrets = calloc(1, sizeof(char *));
    f->sc.secrets[0] = strdup("s3crET");
    f->sc.n_secrets = 1;
    f->sc.signature = DLV_SIG_BOTH;
    run(f, OBX_STATE_DELIVERED);
    const trx_request *q = trx_get(f->rx, 0);
    assert_non_null(q);
    const char *want = "{\"text\": \"flag/created my-flag\"}";
    assert_string_equal((const char *)q->body, want);
    assert_string_equal(trx_header_get(q, "X-Api-Key"), "k-123");
    assert_int_equal(trx_header_count(q, "Content-Type"), 1);
    assert_string_equal(trx_header_get(q, "Content-Type"), "application/json");
    assert_non_null(trx_header_get(q, "webhook-id"));
    /* templates are signed too, over the rendered bytes */
    unsigned char mac[32];
    unsigned int len = 0;
    assert_non_null(HMAC(EVP_sha256(), "s3crET", 6, q->body, q->body_len, mac, &len));
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(trx_header_get(q, "X-Flipt-Webhook-Signature"), hex);
    assert_non_null(trx_header_get(q, "webhook-signature"));
}

static void test_configured_content_type_kept(void **state)
{
    fx *f = *state;
    set_body(f, "{\"a\": {{ toJson .Payload.enabled }}}");
    add_header(&f->sc, "Content-Type", "application/json; charset=utf-8");
    run(f, OBX_STATE_DELIVERED);
    const trx_request *q = trx_get(f->rx, 0);
    assert_string_equal((const char *)q->body, "{\"a\": true}");
    assert_int_equal(trx_header_count(q, "Content-Type"), 1);
    assert_string_equal(trx_header_get(q, "Content-Type"), "application/json; charset=utf-8");
}

static void test_invalid_json_dead_never_sent(void **state)
{
    fx *f = *state;
    /* Flipt's documented example misses a comma: never valid JSON */
    set_body(f, "{\"type\": \"{{ .Type }}\" \"action\": \"{{ .Action }}\"}");
    uint64_t id = run(f, OBX_STATE_DEAD);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, id, f->sink_id, OBX_STATE_DEAD, 0, &d));
    assert_non_null(d.reason);
    assert_non_null(strstr(d.reason, "invalid JSON"));
    assert_int_equal(d.last_status, 0);
    obx_delivery_clear(&d);
    fx_sleep_ms(100);
    assert_int_equal(trx_count(f->rx), 0);
    dlv_metrics m;
    assert_int_equal(dlv_engine_metrics(f->eng, &m), 0);
    assert_int_equal(m.sinks[0].render_errors, 1);
    assert_int_equal(m.sinks[0].dead, 1);
    assert_int_equal(m.sinks[0].attempts, 0);
    dlv_metrics_free(&m);
}

static void test_execution_error_dead_never_sent(void **state)
{
    fx *f = *state;
    /* field access on a string: an execution error in Go */
    set_body(f, "{\"x\": \"{{ .Payload.key.sub }}\"}");
    uint64_t id = run(f, OBX_STATE_DEAD);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, id, f->sink_id, OBX_STATE_DEAD, 0, &d));
    assert_non_null(strstr(d.reason, "template"));
    obx_delivery_clear(&d);
    fx_sleep_ms(100);
    assert_int_equal(trx_count(f->rx), 0);
}

static void test_output_cap_dead_never_sent(void **state)
{
    fx *f = *state;
    set_body(f, "{\"payload\": {{ toJson .Payload }}}");
    f->sc.max_body_out = 32; /* the payload alone is longer */
    uint64_t id = run(f, OBX_STATE_DEAD);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, id, f->sink_id, OBX_STATE_DEAD, 0, &d));
    assert_non_null(strstr(d.reason, "exceeds 32 bytes"));
    obx_delivery_clear(&d);
    fx_sleep_ms(100);
    assert_int_equal(trx_count(f->rx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rendered_and_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configured_content_type_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_json_dead_never_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_error_dead_never_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_cap_dead_never_sent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
