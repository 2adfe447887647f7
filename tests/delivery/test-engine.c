/*
 * test-engine.c - integration tests of the delivery engine against a real store and a
 * real HTTP receiver on 127.0.0.1 (tests/common/test-receiver): success, retries,
 * dead letters after the elapsed bound, Retry-After, transport errors, redirects not
 * followed, signatures checked with OpenSSL directly, concurrency limits, ordered
 * sinks, crash between send and commit, graceful stop, and waking on enqueue.
 *
 * Both backends: run as `engine` on LMDB and as `pg-engine` on PostgreSQL (tests/pg, the
 * fixture switched by OUTBOX_PG_DSN). Every test applies to both and none is skipped; two
 * assert what differs by design: after a crash the delivery is in flight under the dead
 * process's lease on PostgreSQL (pending in doubt on LMDB), and PostgreSQL never claims
 * more than a sink's max_in_flight ahead (LMDB hands the engine every due one).
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <strings.h>

#include "delivery/sign.h"
#include "engine-fixture.h"
#include "test-tls.h"

typedef struct fx {
    char *dir;
    obx_store *st;
    trx *rx;
    dlv_engine *eng;
    dlv_sink_config sc[2];
    size_t n_sc;
    uint32_t sink_id[2];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_base b;
    assert_int_equal(fx_base_open(&b, "engine"), 0);
    f->dir = b.dir;
    f->st = b.st;
    f->rx = b.rx;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    dlv_engine_free(f->eng);
    for (size_t i = 0; i < f->n_sc; i++)
        dlv_sink_config_clear(&f->sc[i]);
    fx_base b = {f->dir, f->st, f->rx};
    fx_base_close(&b);
    free(f);
    return 0;
}

/* Add a sink named `name` posting to the receiver's /hook; returns it for tweaking. */
static dlv_sink_config *add_sink(fx *f, const char *name)
{
    dlv_sink_config *c = &f->sc[f->n_sc];
    fx_sink(c, name, trx_url(f->rx, "/hook"));
    obx_error err;
    assert_int_equal(obx_sink_id(f->st, name, &f->sink_id[f->n_sc], &err), OBX_OK);
    f->n_sc++;
    return c;
}

static void start(fx *f, const dlv_engine_options *o)
{
    dlv_error err = {0};
    int rc = dlv_engine_new(f->st, f->sc, f->n_sc, o, &f->eng, &err);
    if (rc)
        fprintf(stderr, "dlv_engine_new: %s\n", err.msg);
    assert_int_equal(rc, DLV_OK);
    assert_int_equal(dlv_engine_start(f->eng, &err), DLV_OK);
}

#define BODY FX_BODY

/* Start the engine with options o (NULL: defaults), enqueue BODY and wait (bounded) for the
 * delivery to reach `st`. */
static uint64_t send_with(fx *f, const dlv_engine_options *o, int st, unsigned timeout_ms,
                          obx_delivery *d)
{
    start(f, o);
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    assert_true(id > 0);
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], st, timeout_ms, d));
    return id;
}

static uint64_t send_one(fx *f, int st, unsigned timeout_ms, obx_delivery *d)
{
    return send_with(f, NULL, st, timeout_ms, d);
}

static void test_success(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    obx_delivery d;
    uint64_t id = send_one(f, OBX_STATE_DELIVERED, 5000, &d);
    assert_int_equal(d.attempts, 1);
    assert_int_equal(d.last_status, 200);
    obx_delivery_clear(&d);
    assert_int_equal(trx_count(f->rx), 1);
    const trx_request *q = trx_get(f->rx, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/hook");
    assert_int_equal(q->body_len, strlen(BODY));
    assert_memory_equal(q->body, BODY, strlen(BODY));
    assert_string_equal(trx_header_get(q, "Content-Type"), "application/json");
    char ua[64];
    snprintf(ua, sizeof ua, "outbox/%s", OBX_VERSION_STRING);
    assert_string_equal(trx_header_get(q, "User-Agent"), ua);
    char wid[OBX_DELIVERY_ID_MAX];
    assert_int_equal(obx_delivery_id(f->st, id, f->sink_id[0], wid, sizeof wid), OBX_OK);
    assert_string_equal(trx_header_get(q, "webhook-id"), wid);
    assert_null(strchr(wid, '.'));
    assert_null(trx_header_get(q, "Expect"));
    /* no secret: no signature headers */
    assert_null(trx_header_get(q, "X-Flipt-Webhook-Signature"));
    assert_null(trx_header_get(q, "webhook-signature"));

    dlv_metrics m;
    assert_int_equal(dlv_engine_metrics(f->eng, &m), 0);
    assert_int_equal(m.n_sinks, 1);
    assert_int_equal(m.sinks[0].delivered, 1);
    assert_int_equal(m.sinks[0].attempts, 1);
    assert_int_equal(m.sinks[0].attempt_duration.count, 1);
    assert_int_equal(m.sinks[0].latency.count, 1);
    dlv_metrics_free(&m);
    const char *names[2];
    assert_int_equal(dlv_engine_insecure_sinks(f->eng, names, 2), 0);
}

static void test_500_then_success(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    trx_step steps[] = {{.status = 500}, {.status = 200}};
    trx_script(f->rx, steps, 2);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, &d);
    assert_int_equal(d.attempts, 2);
    assert_int_equal(d.n_history, 2);
    assert_int_equal(d.history[0].status, 500);
    assert_int_equal(d.history[1].status, 200);
    obx_delivery_clear(&d);
    assert_int_equal(trx_count(f->rx), 2);
    const trx_request *a = trx_get(f->rx, 0), *b = trx_get(f->rx, 1);
    assert_string_equal(trx_header_get(a, "webhook-id"), trx_header_get(b, "webhook-id"));
    /* the retry waited for the initial interval (50 ms, no jitter) */
    assert_true(b->arrived_mono_ms - a->arrived_mono_ms >= 45);
}

static void test_always_500_dead_after_bound(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->backoff.initial_interval_ms = 100;
    c->backoff.max_interval_ms = 100;
    c->backoff.max_elapsed_ms = 1000;
    trx_step steps[] = {{.status = 500}};
    trx_script(f->rx, steps, 1);
    start(f, NULL);
    int64_t t0 = trx_mono_ms();
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_DEAD, 5000, &d));
    int64_t took = trx_mono_ms() - t0;
    /* attempts at ~0, 100, ..., 1000 ms: the next one would pass the 1 s bound */
    assert_in_range(d.attempts, 8, 11);
    assert_int_equal(trx_count(f->rx), d.attempts);
    assert_int_equal(d.last_status, 500);
    assert_non_null(d.reason);
    assert_non_null(strstr(d.reason, "500"));
    assert_true(d.deadline_ms - d.first_attempt_ms == 1000);
    const trx_request *first = trx_get(f->rx, 0), *last = trx_get(f->rx, d.attempts - 1);
    assert_true(last->arrived_mono_ms - first->arrived_mono_ms <= 1000);
    assert_true(last->arrived_mono_ms - first->arrived_mono_ms >= 700);
    assert_true(took < 3000);
    obx_delivery_clear(&d);
    dlv_metrics m;
    assert_int_equal(dlv_engine_metrics(f->eng, &m), 0);
    assert_int_equal(m.sinks[0].dead, 1);
    assert_int_equal(m.sinks[0].retried + 1, m.sinks[0].attempts);
    dlv_metrics_free(&m);
}

/* Make `status` dead-letter at once on sink c. */
static void dead_letter_on(dlv_sink_config *c, int status)
{
    c->dead_letter_on = calloc(1, sizeof(int));
    assert_non_null(c->dead_letter_on);
    c->dead_letter_on[0] = status;
    c->n_dead_letter_on = 1;
}

static void test_dead_letter_on(void **state)
{
    fx *f = *state;
    dead_letter_on(add_sink(f, "hook"), 410);
    trx_step steps[] = {{.status = 410}};
    trx_script(f->rx, steps, 1);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DEAD, 5000, &d);
    assert_int_equal(d.attempts, 1);
    assert_non_null(strstr(d.reason, "410"));
    obx_delivery_clear(&d);
    fx_sleep_ms(100);
    assert_int_equal(trx_count(f->rx), 1);
}

/* Failed attempts reported to on_failed_attempt (counted; the engine thread calls it). */
typedef struct failed_log {
    int n, last_status, last_outcome;
    uint32_t last_attempt;
} failed_log;

static void on_failed(void *ud, const dlv_attempt_event *ev)
{
    failed_log *l = ud;
    l->n++;
    l->last_status = ev->status;
    l->last_outcome = ev->outcome;
    l->last_attempt = ev->attempt;
}

/* The response's headers (the default three plus capture_headers, no duplicates) and the
 * first capture_body bytes of its body are kept in the attempt's history. */
static void test_capture_response(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    dead_letter_on(c, 500);
    c->capture_body = 10;
    c->capture_headers = calloc(2, sizeof(char *));
    c->capture_headers[0] = strdup("Date");
    c->capture_headers[1] = strdup("retry-after"); /* a default one: kept once */
    c->n_capture_headers = 2;
    static const char body[] = "a 500 body, longer than capture_body";
    trx_step steps[] = {{.status = 500, .retry_after = "9", .location = "/moved", .body = body}};
    trx_script(f->rx, steps, 1);
    failed_log fl = {0};
    dlv_engine_options o;
    dlv_engine_options_init(&o);
    o.on_failed_attempt = on_failed;
    o.on_failed_attempt_ud = &fl;
    obx_delivery d;
    (void)send_with(f, &o, OBX_STATE_DEAD, 5000, &d);
    assert_int_equal(d.n_history, 1);
    const obx_attempt *a = &d.history[0];
    assert_int_equal(a->status, 500);
    int ra = 0, loc = 0, date = 0;
    for (size_t i = 0; i < a->n_headers; i++) {
        ra += strcasecmp(a->headers[i].name, "Retry-After") == 0 &&
              strcmp(a->headers[i].value, "9") == 0;
        loc += strcasecmp(a->headers[i].name, "Location") == 0 &&
               strcmp(a->headers[i].value, "/moved") == 0;
        date += strcasecmp(a->headers[i].name, "Date") == 0;
    }
    assert_int_equal(ra, 1);
    assert_int_equal(loc, 1);
    assert_int_equal(date, 1);
    assert_int_equal(a->body_len, 10);
    assert_memory_equal(a->body, body, 10);
    assert_int_equal(a->body_size, strlen(body));
    obx_delivery_clear(&d);
    dlv_engine_stop(f->eng, 1000); /* the callback ran on the engine thread: joined now */
    assert_int_equal(fl.n, 1);
    assert_int_equal(fl.last_status, 500);
    assert_int_equal(fl.last_outcome, OBX_OUTCOME_DEAD);
    assert_int_equal(fl.last_attempt, 1);
}

/* An invalid capture setting is refused by the engine with the key named. */
static void test_capture_config_checked(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->capture_body = DLV_SINK_CAPTURE_BODY_MAX + 1;
    dlv_error err = {0};
    assert_int_equal(dlv_engine_new(f->st, f->sc, f->n_sc, NULL, &f->eng, &err), DLV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "capture_body"));
    c->capture_body = 0;
    c->capture_headers = calloc(1, sizeof(char *));
    c->capture_headers[0] = strdup("Bad Name");
    c->n_capture_headers = 1;
    assert_int_equal(dlv_engine_new(f->st, f->sc, f->n_sc, NULL, &f->eng, &err), DLV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "capture_headers[0]"));
}

static void test_retry_after(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->backoff.max_elapsed_ms = 5000;
    trx_step steps[] = {{.status = 429, .retry_after = "1"}, {.status = 200}};
    trx_script(f->rx, steps, 2);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, &d);
    assert_int_equal(d.attempts, 2);
    obx_delivery_clear(&d);
    const trx_request *a = trx_get(f->rx, 0), *b = trx_get(f->rx, 1);
    int64_t gap = b->arrived_mono_ms - a->arrived_mono_ms;
    assert_true(gap >= 950); /* Retry-After: 1 obeyed, not the 50 ms backoff */
    assert_true(gap <= 1600);
}

static void test_retry_after_past_bound(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->backoff.max_elapsed_ms = 2000;
    trx_step steps[] = {{.status = 503, .retry_after = "30"}};
    trx_script(f->rx, steps, 1);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DEAD, 3000, &d);
    assert_int_equal(d.attempts, 1);
    assert_non_null(strstr(d.reason, "Retry-After"));
    obx_delivery_clear(&d);
}

static void test_connection_refused(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    uint16_t port = trx_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hook", (unsigned)port);
    free(c->url);
    c->url = strdup(url);
    c->backoff.max_elapsed_ms = 300;
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DEAD, 5000, &d);
    assert_true(d.attempts >= 2);
    assert_int_equal(d.last_status, 0);
    assert_non_null(d.last_error);
    assert_string_equal(d.last_error, "connection refused");
    assert_non_null(strstr(d.reason, "connection refused"));
    obx_delivery_clear(&d);
}

static void test_timeout(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->timeout_ms = 200;
    c->backoff.max_elapsed_ms = 500;
    trx_step steps[] = {{.action = TRX_HANG, .hang_ms = 3000}};
    trx_script(f->rx, steps, 1);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DEAD, 5000, &d);
    assert_true(d.attempts >= 2);
    assert_string_equal(d.last_error, "timeout after 200 ms");
    assert_true(d.history[0].duration_ms >= 190 && d.history[0].duration_ms < 1000);
    obx_delivery_clear(&d);
}

static void test_reset_and_close_retried(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    trx_step steps[] = {{.action = TRX_RESET}, {.action = TRX_CLOSE}, {.status = 204}};
    trx_script(f->rx, steps, 3);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, &d);
    assert_int_equal(d.attempts, 3);
    assert_int_equal(d.history[0].status, 0);
    assert_non_null(d.history[0].error);
    assert_non_null(d.history[1].error);
    assert_int_equal(d.last_status, 204);
    obx_delivery_clear(&d);
}

static void test_redirect_not_followed(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->backoff.max_elapsed_ms = 200;
    trx_step steps[] = {{.status = 302, .location = "/elsewhere"}};
    trx_script(f->rx, steps, 1);
    obx_delivery d;
    (void)send_one(f, OBX_STATE_DEAD, 5000, &d);
    assert_int_equal(d.last_status, 302);
    obx_delivery_clear(&d);
    for (size_t i = 0; i < trx_count(f->rx); i++)
        assert_string_equal(trx_get(f->rx, i)->path, "/hook");
}

static void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[32])
{
    unsigned int olen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen));
    assert_int_equal(olen, 32);
}

static void test_signatures(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->secrets = calloc(2, sizeof(char *));
    c->secrets[0] = strdup("s3crET");
    c->secrets[1] = strdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    c->n_secrets = 2;
    c->signature = DLV_SIG_BOTH;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, NULL);
    const trx_request *q = trx_get(f->rx, 0);
    assert_non_null(q);

    /* Flipt: lower-case hex HMAC-SHA256 of the body with the first secret */
    unsigned char mac[32];
    hmac_sha256("s3crET", 6, q->body, q->body_len, mac);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(trx_header_get(q, "X-Flipt-Webhook-Signature"), hex);

    /* Standard Webhooks: v1,<base64 HMAC(id.timestamp.body)> per secret, space separated */
    const char *wid = trx_header_get(q, "webhook-id");
    const char *ts = trx_header_get(q, "webhook-timestamp");
    assert_non_null(wid);
    assert_non_null(ts);
    long long tsv = strtoll(ts, NULL, 10);
    assert_true(llabs(tsv - (long long)(q->arrived_ms / 1000)) <= 2);
    size_t mlen = strlen(wid) + strlen(ts) + q->body_len + 2;
    char *msg = malloc(mlen + 1);
    snprintf(msg, mlen + 1, "%s.%s.", wid, ts);
    memcpy(msg + strlen(wid) + strlen(ts) + 2, q->body, q->body_len);
    unsigned char key2[64];
    int k2 = EVP_DecodeBlock(key2, (const unsigned char *)"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 32);
    assert_int_equal(k2, 24);
    char expect[256];
    unsigned char b64a[64], b64b[64];
    hmac_sha256("s3crET", 6, msg, mlen, mac);
    EVP_EncodeBlock(b64a, mac, 32);
    hmac_sha256(key2, 24, msg, mlen, mac);
    EVP_EncodeBlock(b64b, mac, 32);
    snprintf(expect, sizeof expect, "v1,%s v1,%s", b64a, b64b);
    assert_string_equal(trx_header_get(q, "webhook-signature"), expect);
    free(msg);
}

static void test_signature_flipt_only(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->secrets = calloc(1, sizeof(char *));
    c->secrets[0] = strdup("s3crET");
    c->n_secrets = 1;
    c->signature = DLV_SIG_FLIPT;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, NULL);
    const trx_request *q = trx_get(f->rx, 0);
    /* the spec's vector B: the 271-byte body with secret s3crET */
    assert_int_equal(q->body_len, 271);
    assert_string_equal(trx_header_get(q, "X-Flipt-Webhook-Signature"),
                        "8820fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6");
    assert_null(trx_header_get(q, "webhook-signature"));
    assert_null(trx_header_get(q, "webhook-timestamp"));
}

/* More header lines than a request holds inline (14 configured + ours) and three secrets
 * (a signature line longer than its inline buffer): every configured header arrives once,
 * in the configured order and before webhook-id, and webhook-signature has one token per
 * secret, each the one-shot signature's. Also a second delivery, so that an easy handle,
 * the sink's lines and its signers are reused. */
static void test_many_headers_three_secrets(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    enum { NH = 14 };
    c->headers = calloc(NH, sizeof *c->headers);
    for (int i = 0; i < NH; i++) {
        char n[16], v[16];
        snprintf(n, sizeof n, "X-H-%d", i);
        snprintf(v, sizeof v, "v%d", i);
        c->headers[i].name = strdup(n);
        c->headers[i].value = strdup(v);
    }
    c->n_headers = NH;
    const char *secrets[3] = {"s3crET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "third"};
    c->secrets = calloc(3, sizeof(char *));
    for (int i = 0; i < 3; i++)
        c->secrets[i] = strdup(secrets[i]);
    c->n_secrets = 3;
    c->signature = DLV_SIG_BOTH;
    (void)send_one(f, OBX_STATE_DELIVERED, 5000, NULL);
    uint64_t id2 = fx_enqueue(f->st, f->sink_id[0], "{\"second\":true}");
    assert_true(fx_wait_state(f->st, id2, f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
    assert_int_equal(trx_count(f->rx), 2);
    for (size_t r = 0; r < 2; r++) {
        const trx_request *q = trx_get(f->rx, r);
        assert_non_null(q);
        int at = 0;
        size_t wid_at = 0;
        for (size_t k = 0; k < q->n_headers; k++) {
            char n[16];
            snprintf(n, sizeof n, "X-H-%d", at);
            if (at < NH && strcasecmp(q->headers[k].name, n) == 0) {
                char v[16];
                snprintf(v, sizeof v, "v%d", at);
                assert_string_equal(q->headers[k].value, v);
                at++;
            } else if (strncasecmp(q->headers[k].name, "X-H-", 4) == 0) {
                fail_msg("header %s out of order or twice", q->headers[k].name);
            }
            if (strcasecmp(q->headers[k].name, "webhook-id") == 0)
                wid_at = k;
        }
        assert_int_equal(at, NH);
        assert_true(wid_at >= NH);
        const char *wid = trx_header_get(q, "webhook-id");
        const char *ts = trx_header_get(q, "webhook-timestamp");
        assert_non_null(wid);
        assert_non_null(ts);
        char want[3 * (DLV_STANDARD_TOKEN_LEN + 1)] = "";
        for (int i = 0; i < 3; i++) {
            char tok[DLV_STANDARD_TOKEN_LEN + 1];
            assert_int_equal(dlv_sign_standard(secrets[i], wid, strtoll(ts, NULL, 10), q->body,
                                               q->body_len, tok, sizeof tok),
                             DLV_OK);
            if (i)
                strcat(want, " ");
            strcat(want, tok);
        }
        assert_string_equal(trx_header_get(q, "webhook-signature"), want);
        char hex[DLV_FLIPT_SIG_HEX_LEN + 1];
        assert_int_equal(dlv_sign_flipt("s3crET", 6, q->body, q->body_len, hex), DLV_OK);
        assert_string_equal(trx_header_get(q, "X-Flipt-Webhook-Signature"), hex);
    }
}

/* A proxy named in the environment is still used (the sender skips libcurl's per-transfer
 * lookup only when none is set): the receiver stands in as the proxy for a host that does
 * not resolve, and gets the request with its absolute URL. */
static void test_proxy_from_environment(void **state)
{
    fx *f = *state;
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", trx_port(f->rx));
    assert_int_equal(setenv("http_proxy", proxy, 1), 0);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    dlv_sink_config *c = &f->sc[f->n_sc];
    fx_sink(c, "hook", "http://outbox-proxy-test.invalid/hook");
    obx_error err;
    assert_int_equal(obx_sink_id(f->st, "hook", &f->sink_id[f->n_sc], &err), OBX_OK);
    f->n_sc++;
    start(f, NULL);
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    int ok = fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL);
    unsetenv("http_proxy");
    assert_true(ok);
    const trx_request *q = trx_get(f->rx, 0);
    assert_non_null(q);
    assert_non_null(strstr(q->path, "outbox-proxy-test.invalid/hook"));
}

static void test_concurrency_limit(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->max_in_flight = 4;
    trx_step steps[] = {{.status = 200, .delay_ms = 50}};
    trx_script(f->rx, steps, 1);
    uint64_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = fx_enqueue(f->st, f->sink_id[0], BODY);
    start(f, NULL);
    assert_true(trx_wait(f->rx, 40, 10000));
    for (int i = 0; i < 40; i++)
        assert_true(fx_wait_state(f->st, ids[i], f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
    assert_true(trx_max_concurrent(f->rx) <= 4);
    assert_true(trx_max_concurrent(f->rx) >= 3);
    /* keep-alive: connections reused, not one per request */
    assert_true(trx_connections(f->rx) <= 8);
}

static void test_global_limit(void **state)
{
    fx *f = *state;
    add_sink(f, "a")->max_in_flight = 4;
    add_sink(f, "b")->max_in_flight = 4;
    trx_step steps[] = {{.status = 200, .delay_ms = 50}};
    trx_script(f->rx, steps, 1);
    for (int i = 0; i < 20; i++) {
        assert_true(fx_enqueue(f->st, f->sink_id[0], BODY) > 0);
        assert_true(fx_enqueue(f->st, f->sink_id[1], BODY) > 0);
    }
    dlv_engine_options o;
    dlv_engine_options_init(&o);
    o.max_in_flight_total = 3;
    start(f, &o);
    assert_true(trx_wait(f->rx, 40, 10000));
    assert_true(trx_max_concurrent(f->rx) <= 3);
    assert_true(trx_max_concurrent(f->rx) >= 2);
}

/* Ordered test: the receiver fails the first two attempts of event "n":3. */
typedef struct ord_state {
    int fails_left;
} ord_state;

static trx_step ordered_handler(void *ud, const trx_request *req)
{
    ord_state *os = ud;
    trx_step st = {.status = 200};
    if (strstr((const char *)req->body, "\"n\":3}") && os->fails_left > 0) {
        os->fails_left--;
        st.status = 500;
    }
    return st;
}

static void test_ordered(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->ordered = 1;
    c->backoff.max_elapsed_ms = 5000;
    ord_state os = {2};
    trx_set_handler(f->rx, ordered_handler, &os);
    uint64_t ids[8];
    for (int i = 0; i < 8; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        ids[i] = fx_enqueue(f->st, f->sink_id[0], body);
    }
    start(f, NULL);
    for (int i = 0; i < 8; i++)
        assert_true(fx_wait_state(f->st, ids[i], f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
    assert_int_equal(trx_count(f->rx), 10);
    assert_int_equal(trx_max_concurrent(f->rx), 1);
    /* arrival order: 0 1 2 3 3 3 4 5 6 7 */
    int want[] = {0, 1, 2, 3, 3, 3, 4, 5, 6, 7};
    for (size_t i = 0; i < 10; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", want[i]);
        assert_string_equal((const char *)trx_get(f->rx, i)->body, body);
    }
}

static void test_wakes_on_enqueue(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    start(f, NULL);
    fx_sleep_ms(700); /* idle past a poll period */
    int64_t t0 = trx_mono_ms();
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    assert_true(trx_wait(f->rx, 1, 3000));
    int64_t lag = trx_get(f->rx, 0)->arrived_mono_ms - t0;
    assert_true(lag < 200); /* the notify, not the 500 ms poll */
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
}

static void test_graceful_stop_releases(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    trx_step steps[] = {{.action = TRX_HANG}};
    trx_script(f->rx, steps, 1);
    start(f, NULL);
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    assert_true(trx_wait(f->rx, 1, 3000));
    int64_t t0 = trx_mono_ms();
    dlv_engine_stop(f->eng, 200);
    int64_t took = trx_mono_ms() - t0;
    assert_true(took >= 150 && took < 2000);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_PENDING, 1000, &d));
    assert_int_equal(d.attempts, 0); /* released: no attempt counted */
    assert_int_equal(d.in_doubt, 0);
    obx_delivery_clear(&d);
    dlv_metrics m;
    assert_int_equal(dlv_engine_metrics(f->eng, &m), 0);
    assert_int_equal(m.sinks[0].released, 1);
    assert_int_equal(m.in_flight, 0);
    dlv_metrics_free(&m);
}

/* Stopping with work queued behind the running requests releases all of it. */
static void test_stop_releases_queued(void **state)
{
    fx *f = *state;
    add_sink(f, "hook")->max_in_flight = 4;
    trx_step steps[] = {{.status = 200, .delay_ms = 300}};
    trx_script(f->rx, steps, 1);
    enum { N = 50 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = fx_enqueue(f->st, f->sink_id[0], BODY);
    start(f, NULL);
    assert_true(trx_wait(f->rx, 4, 3000));
    dlv_engine_stop(f->eng, 0);
    obx_stats *st = NULL;
    obx_error err;
    assert_int_equal(obx_stats_get(f->st, &st, &err), OBX_OK);
    assert_int_equal(st->sinks[0].inflight, 0);
    assert_int_equal(st->sinks[0].in_doubt, 0);
    assert_int_equal(st->sinks[0].pending + st->sinks[0].delivered, N);
    assert_true(st->sinks[0].pending >= N - 8);
    obx_stats_free(st);
    for (int i = 0; i < N; i++) {
        obx_delivery d;
        if (fx_wait_state(f->st, ids[i], f->sink_id[0], OBX_STATE_PENDING, 0, &d)) {
            assert_int_equal(d.attempts, 0);
            obx_delivery_clear(&d);
        }
    }
    dlv_metrics m;
    assert_int_equal(dlv_engine_metrics(f->eng, &m), 0);
    if (fx_on_pg()) { /* claims count what is in flight: never more than the limit out */
        assert_true(m.sinks[0].released <= 4);
        assert_true(m.sinks[0].released + m.sinks[0].delivered >= 4); /* the 4 sent */
    } else { /* the LMDB store hands every due delivery to the engine at once */
        assert_int_equal(m.sinks[0].released + m.sinks[0].delivered, N);
    }
    assert_int_equal(m.sinks[0].in_flight, 0);
    assert_int_equal(m.sinks[0].queued, 0);
    dlv_metrics_free(&m);
}

static void test_graceful_stop_finishes(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    trx_step steps[] = {{.status = 200, .delay_ms = 300}};
    trx_script(f->rx, steps, 1);
    start(f, NULL);
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    assert_true(trx_wait(f->rx, 1, 3000));
    dlv_engine_stop(f->eng, 5000);
    /* committed before stop returned */
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_DELIVERED, 0, NULL));
}

/* A replay by another process (as outboxctl does) is noticed within about a second. */
static void test_replay_by_other_process(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->backoff.max_elapsed_ms = 100;
    trx_step steps[] = {{.status = 500}};
    trx_script(f->rx, steps, 1);
    uint64_t id = send_one(f, OBX_STATE_DEAD, 5000, NULL);
    trx_script(f->rx, NULL, 0); /* now 200 */
    size_t before = trx_count(f->rx);
    fx_sleep_ms(100);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        obx_store *st = fx_open_store_flags(f->dir, 0); /* not the owner: a tool process */
        obx_error err;
        size_t n = 0;
        if (!st || obx_replay(st, id, OBX_ALL_SINKS, 0, &n, &err) != OBX_OK || n != 1)
            _exit(3);
        obx_close(st);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    int64_t t0 = trx_mono_ms();
    assert_true(fx_wait_state(f->st, id, f->sink_id[0], OBX_STATE_DELIVERED, 3000, NULL));
    assert_true(trx_mono_ms() - t0 <= 1200);
    assert_int_equal(trx_count(f->rx), before + 1);
}

/* An overdue backlog drains oldest first at the sink's limit; another sink's new events
 * are not held up behind it. */
static void test_backlog_and_new_events(void **state)
{
    fx *f = *state;
    add_sink(f, "slow")->max_in_flight = 4;
    dlv_sink_config *b = add_sink(f, "fresh");
    free(b->url);
    b->url = strdup(trx_url(f->rx, "/fresh"));
    trx_step steps[] = {{.status = 200, .delay_ms = 20}};
    trx_script(f->rx, steps, 1);
    enum { N = 200 };
    uint64_t first = 0, last = 0;
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        last = fx_enqueue(f->st, f->sink_id[0], body);
        if (i == 0)
            first = last;
    }
    start(f, NULL);
    assert_true(trx_wait(f->rx, 20, 5000));
    int64_t t0 = trx_mono_ms();
    uint64_t fresh = fx_enqueue(f->st, f->sink_id[1], "{\"fresh\":true}");
    assert_true(fx_wait_state(f->st, fresh, f->sink_id[1], OBX_STATE_DELIVERED, 3000, NULL));
    assert_true(trx_mono_ms() - t0 < 400);
    /* the backlog was still draining when the new event got through */
    obx_delivery d;
    assert_false(fx_wait_state(f->st, last, f->sink_id[0], OBX_STATE_DELIVERED, 0, NULL));
    assert_true(fx_wait_state(f->st, last, f->sink_id[0], OBX_STATE_DELIVERED, 10000, &d));
    obx_delivery_clear(&d);
    assert_true(fx_wait_state(f->st, first, f->sink_id[0], OBX_STATE_DELIVERED, 0, NULL));
    assert_true(trx_max_concurrent(f->rx) <= 5); /* 4 slow + at most 1 fresh */
    /* oldest first: the k-th backlog request is one of the first k + 8 events */
    size_t k = 0;
    for (size_t i = 0; i < trx_count(f->rx); i++) {
        const trx_request *q = trx_get(f->rx, i);
        if (strcmp(q->path, "/hook") != 0)
            continue;
        long n = strtol((const char *)q->body + 5, NULL, 10);
        assert_true((size_t)n < k + 8);
        k++;
    }
    assert_int_equal(k, N);
}

/* HTTPS: a self-signed receiver is refused without its CA (a retried TLS error), trusted
 * through ca_file, and reached with the explicit insecure switch (which is reported). */
static void test_tls(void **state)
{
    fx *f = *state;
    char *cert = NULL, *key = NULL;
    assert_int_equal(ttls_selfsigned(&cert, &key), 0);
    char ca[1024];
    snprintf(ca, sizeof ca, "%s/ca.pem", f->dir);
    assert_int_equal(ttls_write_file(ca, cert), 0);
    trx *tls = NULL;
    char err[256];
    trx_options ro = {.tls_cert_pem = cert, .tls_key_pem = key};
    assert_int_equal(trx_start(&ro, &tls, err, sizeof err), 0);
    const char *url = trx_url(tls, "/hook");
    assert_int_equal(strncmp(url, "https://", 8), 0);

    dlv_sink_config *untrusted = add_sink(f, "untrusted");
    free(untrusted->url);
    untrusted->url = strdup(url);
    untrusted->backoff.max_elapsed_ms = 200;
    dlv_sink_config *trusted = add_sink(f, "trusted");
    free(trusted->url);
    trusted->url = strdup(url);
    trusted->ca_file = strdup(ca);
    start(f, NULL);
    uint64_t a = fx_enqueue(f->st, f->sink_id[0], BODY);
    uint64_t b = fx_enqueue(f->st, f->sink_id[1], BODY);
    obx_delivery d;
    assert_true(fx_wait_state(f->st, a, f->sink_id[0], OBX_STATE_DEAD, 5000, &d));
    assert_int_equal(d.last_status, 0);
    assert_non_null(d.last_error);
    assert_non_null(strstr(d.last_error, "TLS"));
    assert_non_null(strstr(d.last_error, "certificate"));
    obx_delivery_clear(&d);
    assert_true(fx_wait_state(f->st, b, f->sink_id[1], OBX_STATE_DELIVERED, 5000, NULL));
    const char *names[2];
    assert_int_equal(dlv_engine_insecure_sinks(f->eng, names, 2), 0);
    dlv_engine_free(f->eng);
    f->eng = NULL;

    /* insecure: no CA at all, verification off, and the engine says so */
    dlv_sink_config_clear(&f->sc[0]);
    dlv_sink_config_clear(&f->sc[1]);
    f->n_sc = 0;
    dlv_sink_config *ins = add_sink(f, "insecure");
    free(ins->url);
    ins->url = strdup(url);
    ins->insecure = 1;
    start(f, NULL);
    assert_int_equal(dlv_engine_insecure_sinks(f->eng, names, 2), 1);
    assert_string_equal(names[0], "insecure");
    uint64_t c = fx_enqueue(f->st, f->sink_id[0], BODY);
    assert_true(fx_wait_state(f->st, c, f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
    assert_int_equal(trx_count(tls), 2);
    dlv_engine_free(f->eng);
    f->eng = NULL;
    trx_stop(tls);
    free(cert);
    free(key);
}

static int64_t clock_plus_hour(void *ud)
{
    (void)ud;
    return obx_now_ms() + 3600 * 1000;
}

static double fixed_random(void *ud)
{
    return *(const double *)ud;
}

/* The clock and random source options drive timestamps and jitter. */
static void test_clock_and_random(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    c->secrets = calloc(1, sizeof(char *));
    c->secrets[0] = strdup("s3crET");
    c->n_secrets = 1;
    c->signature = DLV_SIG_STANDARD;
    c->backoff.initial_interval_ms = 200;
    c->backoff.max_interval_ms = 200;
    c->backoff.randomization_factor = 0.5;
    c->backoff.max_elapsed_ms = 5000;
    trx_step steps[] = {{.status = 500}, {.status = 500}, {.status = 200}};
    trx_script(f->rx, steps, 3);
    dlv_engine_options o;
    dlv_engine_options_init(&o);
    o.clock = clock_plus_hour;
    double r = 0.0; /* lowest jitter: 200 ms * (1 - 0.5) */
    o.random = fixed_random;
    o.random_ud = &r;
    obx_delivery d;
    (void)send_with(f, &o, OBX_STATE_DELIVERED, 5000, &d);
    assert_true(d.first_attempt_ms > obx_now_ms() + 3500 * 1000); /* the engine's clock */
    obx_delivery_clear(&d);
    const trx_request *a = trx_get(f->rx, 0), *b = trx_get(f->rx, 1);
    int64_t ts = strtoll(trx_header_get(a, "webhook-timestamp"), NULL, 10);
    assert_true(ts - a->arrived_ms / 1000 >= 3598 && ts - a->arrived_ms / 1000 <= 3602);
    int64_t gap = b->arrived_mono_ms - a->arrived_mono_ms;
    assert_true(gap >= 95 && gap < 180);
}

static void test_bad_config(void **state)
{
    fx *f = *state;
    dlv_sink_config *c = add_sink(f, "hook");
    free(c->url);
    c->url = strdup("ftp://127.0.0.1/x");
    dlv_error err = {0};
    assert_int_equal(dlv_engine_new(f->st, f->sc, f->n_sc, NULL, &f->eng, &err), DLV_ERR_INVALID);
    assert_null(f->eng);
    assert_int_equal(err.code, DLV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "hook"));
    assert_non_null(strstr(err.msg, "http"));
}

#ifdef OBX_TEST_HOOKS /* crash points exist only in builds with -Dtest_hooks=true */
/* Crash between send and commit: a child process sends and aborts before recording; the
 * restarted owner re-sends with the same webhook-id. */
/* Close the store, then run the engine in a child process that aborts right before its
 * first obx_record (after sending); reopen the store as the owner. */
static void crash_before_record(fx *f)
{
    obx_close(f->st);
    f->st = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OUTBOX_CRASH_POINT", "delivery-before-record", 1);
        obx_store *st = fx_open_store(f->dir);
        dlv_engine *e = NULL;
        dlv_error err;
        if (!st || dlv_engine_new(st, f->sc, f->n_sc, NULL, &e, &err) || dlv_engine_start(e, &err))
            _exit(3);
        fx_sleep_ms(5000);
        _exit(4); /* the crash point never fired */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    f->st = fx_open_store(f->dir);
    assert_non_null(f->st);
}

/* The delivery the crashed child had sent is in doubt. LMDB: the owner's reopen made it
 * pending, in doubt. PostgreSQL: it stays in flight, leased to the killed process, until
 * the lease runs out and a claim takes it back in doubt (no other node is known dead). */
static void assert_in_doubt_after_crash(fx *f, uint64_t id, uint32_t sink)
{
    obx_delivery d;
    if (fx_on_pg()) {
        assert_true(fx_wait_state(f->st, id, sink, OBX_STATE_INFLIGHT, 0, &d));
    } else {
        assert_true(fx_wait_state(f->st, id, sink, OBX_STATE_PENDING, 0, &d));
        assert_int_equal(d.in_doubt, 1);
    }
    assert_int_equal(d.attempts, 0);
    obx_delivery_clear(&d);
}

static void test_crash_between_send_and_commit(void **state)
{
    fx *f = *state;
    add_sink(f, "hook");
    uint64_t id = fx_enqueue(f->st, f->sink_id[0], BODY);
    uint32_t sink = f->sink_id[0];
    crash_before_record(f);
    assert_int_equal(trx_count(f->rx), 1);
    assert_in_doubt_after_crash(f, id, sink);
    obx_delivery d;
    start(f, NULL);
    assert_true(fx_wait_state(f->st, id, sink, OBX_STATE_DELIVERED, 5000, &d));
    assert_int_equal(d.in_doubt, 0);
    obx_delivery_clear(&d);
    assert_int_equal(trx_count(f->rx), 2);
    assert_string_equal(trx_header_get(trx_get(f->rx, 0), "webhook-id"),
                        trx_header_get(trx_get(f->rx, 1), "webhook-id"));
}

/* An ordered sink keeps its order across a crash: the head that was in flight (now in
 * doubt, due at the restart) is sent again before the ones queued behind it. */
static void test_ordered_crash_keeps_order(void **state)
{
    fx *f = *state;
    add_sink(f, "hook")->ordered = 1;
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        ids[i] = fx_enqueue(f->st, f->sink_id[0], body);
    }
    crash_before_record(f);
    assert_int_equal(trx_count(f->rx), 1);
    assert_in_doubt_after_crash(f, ids[0], f->sink_id[0]);
    start(f, NULL);
    for (int i = 0; i < 5; i++)
        assert_true(fx_wait_state(f->st, ids[i], f->sink_id[0], OBX_STATE_DELIVERED, 5000, NULL));
    assert_int_equal(trx_count(f->rx), 6);
    int want[] = {0, 0, 1, 2, 3, 4};
    for (size_t i = 0; i < 6; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", want[i]);
        assert_string_equal((const char *)trx_get(f->rx, i)->body, body);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_always_500_dead_after_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_config_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_past_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_and_close_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_flipt_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_headers_three_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wakes_on_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_releases_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_by_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_and_new_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_and_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
#ifdef OBX_TEST_HOOKS
        cmocka_unit_test_setup_teardown(test_crash_between_send_and_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordered_crash_keeps_order, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
