/*
 * test-outboxd-ingest.c - the outboxd HTTP ingest module against a real store on a free
 * 127.0.0.1 port, driven with libcurl: acknowledged events are stored byte-exact, every
 * bad input gets its status and JSON error and stores nothing, auth, limits, shutdown,
 * metrics, request deadlines and ambiguous framing (raw sockets). Also unit checks of the event
 * parser and the log line formatter.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "listen-addr.h"
#include "outbox/outbox.h"
#include "outboxd-event.h"
#include "outboxd-ingest.h"
#include "outboxd-log.h"
#include "outboxd-metrics.h"

static const char EV1[] =
    "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"metadata\":{\"actor\":{}},"
    "\"payload\":{\"key\":\"f1\"},\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}";
static const char EV_READ[] = "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"read\","
                              "\"timestamp\":\"2024-06-09T12:00:00Z\"}";

typedef struct fixture {
    char dir[256];
    obx_store *store;
    uint32_t sink;
    omet *metrics;
    oin_server *srv;
    char base[64];
} fixture;

/* Route every event to the one sink, except action "read" (unrouted, as in Flipt). */
static size_t route(void *ud, const char *type, const char *action, uint32_t *sinks)
{
    fixture *f = ud;
    if (strcmp(action, "read") == 0)
        return 0;
    sinks[0] = f->sink;
    return 1;
}

static void render(void *ud, obuf *b)
{
    fixture *f = ud;
    omet_render_ingest(f->metrics, b);
    obx_stats *st = NULL;
    (void)obx_stats_get(f->store, &st, NULL);
    omet_render_store(st, obx_now_ms(), b);
    obx_stats_free(st);
}

/* Accept the header value "good" only: enough to test the wiring. */
static int verify(void *ud, const char *body, size_t len, const char *header)
{
    return header && strcmp(header, "good") == 0;
}

static const char *const TOKENS[] = {"tok-one", "tok-two"};

/* Threading mode under test: 0 = thread per connection, else epoll pool + committers. */
static unsigned g_pool;
/* Deadlines for the next fixture (0 = the module's defaults). */
static unsigned g_header_ms, g_body_ms;

static fixture *fixture_new(int with_auth, uint64_t max_size)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/outboxd-ingest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.durability = OBX_DURABILITY_NOMETASYNC;
    if (max_size)
        o.max_size = max_size;
    obx_error err = {0};
    assert_int_equal(obx_open(f->dir, &o, &f->store, &err), OBX_OK);
    assert_int_equal(obx_sink_id(f->store, "webhook", &f->sink, &err), OBX_OK);
    f->metrics = omet_new();
    oin_config c = {.listen = "127.0.0.1:0",
                    .max_body = 1024,
                    .max_connections = 64,
                    .per_ip_limit = 32,
                    .timeout_s = 5,
                    .store = f->store,
                    .route = route,
                    .route_ud = f,
                    .render_metrics = render,
                    .metrics_ud = f,
                    .metrics = f->metrics,
                    .pool_threads = g_pool,
                    .header_timeout_ms = g_header_ms,
                    .body_timeout_ms = g_body_ms};
    if (with_auth) {
        c.tokens = TOKENS;
        c.n_tokens = 2;
        c.verify = verify;
    }
    char msg[256];
    f->srv = oin_start(&c, msg, sizeof msg);
    assert_non_null(f->srv);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)oin_port(f->srv));
    return f;
}

static void fixture_free(fixture *f)
{
    oin_stop(f->srv, 1000);
    obx_close(f->store);
    omet_free(f->metrics);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

typedef struct resp {
    long status;
    char body[65536];
    size_t len;
    char headers[4096];
    size_t hlen;
    CURLcode rc;
} resp;

/* Append what fits of p[0..len) to buf (cap bytes, kept NUL-terminated). */
static void append(char *buf, size_t cap, size_t *used, const char *p, size_t len)
{
    size_t k = len < cap - 1 - *used ? len : cap - 1 - *used;
    memcpy(buf + *used, p, k);
    *used += k;
    buf[*used] = '\0';
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    append(r->body, sizeof r->body, &r->len, p, sz * n);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    append(r->headers, sizeof r->headers, &r->hlen, p, sz * n);
    return sz * n;
}

/*
 * One request. ctype NULL = no Content-Type; extra = NULL or a NULL-terminated list of
 * more header lines. `h` NULL = a fresh handle; else reused (keep-alive).
 */
static void request(CURL *h, const fixture *f, const char *method, const char *path,
                    const char *ctype, const char *body, size_t len, const char *const *extra,
                    resp *r)
{
    int own = h == NULL;
    if (own)
        h = curl_easy_init();
    memset(r, 0, sizeof *r);
    char url[256], cth[128];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    struct curl_slist *hd = NULL;
    snprintf(cth, sizeof cth, "Content-Type: %s", ctype ? ctype : "");
    hd = curl_slist_append(hd, cth); /* "Content-Type:" alone removes the header */
    hd = curl_slist_append(hd, "Expect:");
    for (size_t i = 0; extra && extra[i]; i++)
        hd = curl_slist_append(hd, extra[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hd);
    if (own)
        curl_easy_cleanup(h);
}

static void post(const fixture *f, const char *ctype, const char *body, resp *r)
{
    request(NULL, f, "POST", "/v1/events", ctype, body, strlen(body), NULL, r);
}

static uint64_t stored_events(const fixture *f)
{
    obx_stats *st = NULL;
    assert_int_equal(obx_stats_get(f->store, &st, NULL), OBX_OK);
    uint64_t n = st->events;
    obx_stats_free(st);
    return n;
}

static void assert_body_stored(const fixture *f, uint64_t id, const char *body, size_t len)
{
    obx_event *ev = NULL;
    assert_int_equal(obx_event_get(f->store, id, &ev, NULL), OBX_OK);
    assert_int_equal(ev->body_len, len);
    assert_memory_equal(ev->body, body, len);
    obx_event_free(ev);
}

/* ---- tests ---- */

static void test_single_event_stored_exact(void **state)
{
    fixture *f = fixture_new(0, 0);
    resp r;
    /* Trailing newline kept: the body is stored exactly as received. */
    char body[sizeof EV1 + 1];
    snprintf(body, sizeof body, "%s\n", EV1);
    post(f, "application/json; charset=utf-8", body, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"id\":\"1\"}\n");
    assert_body_stored(f, 1, body, strlen(body));
    obx_event *ev = NULL;
    assert_int_equal(obx_event_get(f->store, 1, &ev, NULL), OBX_OK);
    assert_string_equal(ev->type, "flag");
    assert_string_equal(ev->action, "created");
    assert_int_equal(ev->n_deliveries, 1);
    assert_int_equal(ev->deliveries[0].sink_id, f->sink);
    obx_event_free(ev);
    fixture_free(f);
}

static void test_ndjson_all_stored(void **state)
{
    fixture *f = fixture_new(0, 0);
    char body[2048];
    snprintf(body, sizeof body, "%s\r\n\n%s\n%s", EV1, EV_READ, EV1);
    resp r;
    post(f, "application/x-ndjson", body, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"ids\":[\"1\",null,\"2\"]}\n");
    assert_int_equal(stored_events(f), 2);
    assert_body_stored(f, 1, EV1, strlen(EV1)); /* without its \r\n */
    assert_body_stored(f, 2, EV1, strlen(EV1));
    fixture_free(f);
}

static void test_ndjson_all_or_nothing(void **state)
{
    fixture *f = fixture_new(0, 0);
    char body[2048];
    snprintf(body, sizeof body, "%s\n{\"version\":\"0.2\",\"type\":1}\n%s\n", EV1, EV1);
    resp r;
    post(f, "application/x-ndjson", body, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "line 2"));
    assert_non_null(strstr(r.body, "\\\"type\\\" must be a string"));
    snprintf(body, sizeof body, "%s\n{\"version\":\n", EV1);
    post(f, "application/x-ndjson", body, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "line 2: invalid JSON at column"));
    assert_int_equal(stored_events(f), 0);
    fixture_free(f);
}

static void test_bad_events(void **state)
{
    fixture *f = fixture_new(0, 0);
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"version\":\"0.2\",", "invalid JSON at line 1, column"},
        {"{\n\"version\": \"0.2\" x}", "invalid JSON at line 2, column"},
        {"[1,2]", "event must be a JSON object"},
        {"{\"type\":\"flag\",\"action\":\"created\",\"timestamp\":\"t\"}",
         "missing field \\\"version\\\""},
        {"{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\"}",
         "missing field \\\"timestamp\\\""},
        {"{\"version\":0.2,\"type\":\"flag\",\"action\":\"created\",\"timestamp\":\"t\"}",
         "field \\\"version\\\" must be a string"},
        {"{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"\",\"timestamp\":\"t\"}",
         "field \\\"action\\\" must not be empty"},
        {"", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r;
        post(f, "application/json", cases[i].body, &r);
        assert_int_equal(r.status, 400);
        assert_true(strncmp(r.body, "{\"error\":\"", 10) == 0);
        if (!strstr(r.body, cases[i].want))
            fail_msg("case %zu: %s lacks %s", i, r.body, cases[i].want);
    }
    assert_int_equal(stored_events(f), 0);
    /* Still serving. */
    resp r;
    post(f, "application/json", EV1, &r);
    assert_int_equal(r.status, 202);
    fixture_free(f);
}

static void test_unrouted_acknowledged_not_stored(void **state)
{
    fixture *f = fixture_new(0, 0);
    resp r;
    post(f, "application/json", EV_READ, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"id\":null}\n");
    assert_int_equal(stored_events(f), 0);
    request(NULL, f, "GET", "/metrics", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "outbox_ingest_events_total{outcome=\"unrouted\"} 1\n"));
    fixture_free(f);
}

static void test_content_type_and_paths(void **state)
{
    fixture *f = fixture_new(0, 0);
    resp r;
    post(f, "text/plain", EV1, &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "application/x-ndjson"));
    post(f, NULL, EV1, &r);
    assert_int_equal(r.status, 415);
    post(f, "application/jsonx", EV1, &r);
    assert_int_equal(r.status, 415);
    request(NULL, f, "GET", "/nope", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"error\""));
    request(NULL, f, "GET", "/v1/events", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: POST"));
    request(NULL, f, "DELETE", "/healthz", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, HEAD"));
    request(NULL, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}\n");
    assert_int_equal(stored_events(f), 0);
    request(NULL, f, "GET", "/metrics", NULL, NULL, 0, NULL, &r);
    assert_non_null(
        strstr(r.body, "outbox_ingest_rejected_total{reason=\"unsupported_media_type\"} 3\n"));
    assert_non_null(strstr(r.body, "outbox_ingest_rejected_total{reason=\"not_found\"} 1\n"));
    assert_non_null(strstr(r.body, "outbox_ingest_rejected_total{reason=\"method\"} 2\n"));
    assert_non_null(strstr(r.body, "outbox_pending{sink=\"webhook\"} 0\n"));
    fixture_free(f);
}

/* A chunked upload: feeds `total` bytes of 'x'. */
typedef struct feeder {
    size_t left;
} feeder;

static size_t feed(char *buf, size_t sz, size_t n, void *ud)
{
    feeder *fd = ud;
    size_t k = sz * n < fd->left ? sz * n : fd->left;
    memset(buf, 'x', k);
    fd->left -= k;
    return k;
}

static void test_body_limits(void **state)
{
    fixture *f = fixture_new(0, 0);
    char big[2048];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, EV1, strlen(EV1)); /* valid JSON padded with spaces, over 1024 bytes */
    resp r;
    post(f, "application/json", big, &r);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "max_body"));
    /* Chunked: no Content-Length; the server aborts once past the limit. */
    CURL *h = curl_easy_init();
    feeder fd = {64u << 20};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Transfer-Encoding: chunked");
    char url[128];
    snprintf(url, sizeof url, "%s/v1/events", f->base);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, feed);
    curl_easy_setopt(h, CURLOPT_READDATA, &fd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    memset(&r, 0, sizeof r);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    assert_true(rc != CURLE_OK || status == 413);
    assert_true(fd.left > 0); /* the server stopped reading long before 64 MiB */
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    assert_int_equal(stored_events(f), 0);
    post(f, "application/json", EV1, &r);
    assert_int_equal(r.status, 202);
    fixture_free(f);
}

static void test_auth(void **state)
{
    fixture *f = fixture_new(1, 0);
    resp r;
    request(NULL, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1), NULL, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "bearer token"));
    request(NULL, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1),
            (const char *[]){"Authorization: Bearer tok-on", NULL}, &r);
    assert_int_equal(r.status, 401);
    request(NULL, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1),
            (const char *[]){"Authorization: Bearer tok-two", NULL}, &r); /* no signature */
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "missing X-Flipt-Webhook-Signature"));
    assert_int_equal(stored_events(f), 0);
    fixture_free(f);
}

static void test_signature(void **state)
{
    fixture *f = fixture_new(1, 0);
    resp r;
    request(
        NULL, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1),
        (const char *[]){"Authorization: Bearer tok-one", "X-Flipt-Webhook-Signature: bad", NULL},
        &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "invalid X-Flipt-Webhook-Signature"));
    request(
        NULL, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1),
        (const char *[]){"Authorization: Bearer tok-one", "X-Flipt-Webhook-Signature: good", NULL},
        &r);
    assert_int_equal(r.status, 202);
    assert_int_equal(stored_events(f), 1);
    fixture_free(f);
}

static void test_store_full(void **state)
{
    fixture *f = fixture_new(0, 1u << 20);
    char body[1000];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body, EV1, strlen(EV1));
    resp r;
    int full = 0;
    for (int i = 0; i < 5000 && !full; i++) {
        post(f, "application/json", body, &r);
        if (r.status == 503)
            full = 1;
        else
            assert_int_equal(r.status, 202);
    }
    assert_true(full);
    assert_non_null(strstr(r.headers, "Retry-After: 1"));
    assert_non_null(strstr(r.body, "store is full"));
    request(NULL, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    fixture_free(f);
}

static void test_shutdown(void **state)
{
    fixture *f = fixture_new(0, 0);
    CURL *h1 = curl_easy_init(), *h2 = curl_easy_init();
    resp r;
    request(h1, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r); /* two keep-alive conns */
    assert_int_equal(r.status, 200);
    request(h2, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    request(h2, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    long nc = -1;
    curl_easy_getinfo(h2, CURLINFO_NUM_CONNECTS, &nc);
    assert_int_equal(nc, 0); /* GET answers keep the connection */
    oin_begin_shutdown(f->srv);
    request(h1, f, "POST", "/v1/events", "application/json", EV1, strlen(EV1), NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.headers, "Retry-After: 1"));
    assert_non_null(strstr(r.body, "shutting down"));
    request(h2, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.headers, "Connection: close"));
    /* New connections are refused once the listener is shut. */
    request(NULL, f, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    curl_easy_cleanup(h1);
    curl_easy_cleanup(h2);
    assert_int_equal(stored_events(f), 0);
    fixture_free(f);
}

/* ---- raw sockets: framing and deadlines ---- */

static int raw_connect(const fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(oin_port(f->srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void raw_send(int fd, const char *p)
{
    size_t n = strlen(p);
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until the server closes (1) or the 20 s receive timeout passes (0). */
static int raw_read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            buf[len] = '\0';
            return 1;
        }
        if (k < 0 || len + (size_t)k >= cap - 1) {
            buf[len] = '\0';
            return 0;
        }
        len += (size_t)k;
    }
}

static size_t count_str(const char *h, const char *n)
{
    size_t c = 0;
    for (const char *p = strstr(h, n); p; p = strstr(p + 1, n))
        c++;
    return c;
}

/* A request with an ambiguous body length gets 400 and a close; what follows is not read. */
static void test_framing(void **state)
{
    fixture *f = fixture_new(0, 0);
    char next[512], chunked[512], req[2048], got[8192];
    snprintf(next, sizeof next,
             "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(EV1), EV1);
    snprintf(chunked, sizeof chunked, "%zx\r\n%s\r\n0\r\n\r\n", strlen(EV1), EV1);
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(EV1));
    const char *te = "Transfer-Encoding: chunked\r\n";
    const char *heads[][2] = {{cl, "Content-Length: 2000\r\n"},
                              {cl, cl},
                              {cl, te},
                              {te, cl},
                              {"Transfer-Encoding: identity\r\n", ""},
                              {te, "Transfer-Encoding: gzip\r\n"}};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        char head[160];
        snprintf(head, sizeof head, "%s%s", heads[i][0], heads[i][1]);
        snprintf(req, sizeof req,
                 "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "%s\r\n%s%s",
                 head, strstr(head, "chunked") ? chunked : EV1, next);
        int fd = raw_connect(f);
        raw_send(fd, req);
        assert_true(raw_read_all(fd, got, sizeof got)); /* closed, not kept open */
        close(fd);
        assert_true(strncmp(got, "HTTP/1.1 400 ", 13) == 0);
        assert_int_equal(count_str(got, "HTTP/1.1 "), 1);
        assert_non_null(strstr(got, "ambiguous body length"));
    }
    assert_int_equal(stored_events(f), 0);
    /* Plain chunked and pipelined requests are still served. */
    snprintf(req, sizeof req,
             "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%sGET /healthz HTTP/1.1\r\nHost: x\r\n"
             "Connection: close\r\n\r\n",
             chunked);
    int fd = raw_connect(f);
    raw_send(fd, req);
    assert_true(raw_read_all(fd, got, sizeof got));
    close(fd);
    assert_true(strncmp(got, "HTTP/1.1 202 ", 13) == 0);
    assert_non_null(strstr(got, "HTTP/1.1 200 "));
    assert_int_equal(stored_events(f), 1);
    fixture_free(f);
}

/* Headers or a body trickled past their deadline are cut; a silent connection is not. */
static void test_deadlines(void **state)
{
    g_header_ms = 300;
    g_body_ms = 300;
    fixture *f = fixture_new(0, 0);
    g_header_ms = g_body_ms = 0;
    int idle = raw_connect(f);
    int hdr = raw_connect(f), body = raw_connect(f);
    raw_send(hdr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    raw_send(body, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 500\r\n\r\n{");
    int hdr_open = 1, body_open = 1;
    struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
    for (int i = 0; i < 400 && (hdr_open || body_open); i++) { /* at most 20 s */
        hdr_open = hdr_open && send(hdr, "a", 1, MSG_NOSIGNAL) == 1;
        body_open = body_open && send(body, " ", 1, MSG_NOSIGNAL) == 1;
        nanosleep(&pause, NULL);
    }
    assert_false(hdr_open);
    assert_false(body_open);
    close(hdr);
    close(body);
    /* The connection that sent nothing is still served (the idle timeout is 5 s). */
    static char got[1 << 16];
    raw_send(idle, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(raw_read_all(idle, got, sizeof got));
    close(idle);
    assert_true(strncmp(got, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(strstr(got, "outbox_ingest_deadline_closed_total{phase=\"headers\"} 1\n"));
    assert_non_null(strstr(got, "outbox_ingest_deadline_closed_total{phase=\"body\"} 1\n"));
    assert_int_equal(stored_events(f), 0);
    fixture_free(f);
}

/* ---- pure units ---- */

static void test_content_types(void **state)
{
    assert_int_equal(oev_content_type("application/json"), OEV_CT_JSON);
    assert_int_equal(oev_content_type(" Application/JSON ; charset=utf-8"), OEV_CT_JSON);
    assert_int_equal(oev_content_type("application/x-ndjson"), OEV_CT_NDJSON);
    assert_int_equal(oev_content_type("application/json-seq"), OEV_CT_OTHER);
    assert_int_equal(oev_content_type("application/json x"), OEV_CT_OTHER);
    assert_int_equal(oev_content_type(NULL), OEV_CT_OTHER);
}

static void test_parse_listen(void **state)
{
    char host[64], err[128];
    uint16_t port;
    assert_int_equal(listen_addr_parse("127.0.0.1:8080", host, sizeof host, &port, err, 128), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(listen_addr_parse("[::1]:9", host, sizeof host, &port, err, 128), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    assert_int_equal(listen_addr_parse("localhost", host, sizeof host, &port, err, 128), -1);
    assert_int_equal(listen_addr_parse("h:70000", host, sizeof host, &port, err, 128), -1);
    assert_int_equal(listen_addr_parse(":80", host, sizeof host, &port, err, 128), -1);
    assert_int_equal(listen_addr_parse("::1:80", host, sizeof host, &port, err, 128), -1);
}

static void test_log_lines(void **state)
{
    char line[256];
    olog_field f[] = {OLOG_S("listen", "127.0.0.1:8080"),
                      OLOG_I("sinks", 2),
                      OLOG_S("note", "a \"b\"\n"),
                      {.kind = OLOG_END}};
    size_t n =
        olog_format_line(line, sizeof line, OLOG_JSON, 1700000000123LL, OLOG_INFO, "started", f);
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\","
                              "\"msg\":\"started\",\"listen\":\"127.0.0.1:8080\",\"sinks\":2,"
                              "\"note\":\"a \\\"b\\\"\\n\"}\n");
    olog_format_line(line, sizeof line, OLOG_TEXT, 1700000000123LL, OLOG_WARN, "started", f);
    assert_string_equal(line, "time=2023-11-14T22:13:20.123Z level=warn msg=started "
                              "listen=127.0.0.1:8080 sinks=2 note=\"a \\\"b\\\"\\n\"\n");
    /* logfmt: a message with spaces is one quoted value. */
    olog_format_line(line, sizeof line, OLOG_TEXT, 1700000000123LL, OLOG_WARN, "dead letters",
                     NULL);
    assert_string_equal(line, "time=2023-11-14T22:13:20.123Z level=warn msg=\"dead letters\"\n");
    /* Truncation keeps a JSON line well-formed. */
    n = olog_format_line(line, 60, OLOG_JSON, 0, OLOG_ERROR, "x", f);
    assert_true(n < 60);
    assert_int_equal(line[n - 1], '\n');
    assert_int_equal(line[n - 2], '}');
    olog_level lv;
    assert_int_equal(olog_level_parse("warn", &lv), 0);
    assert_int_equal(lv, OLOG_WARN);
    assert_int_equal(olog_level_parse("verbose", &lv), -1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    olog_setup(getenv("OUTBOXD_TEST_DEBUG") ? OLOG_DEBUG : OLOG_ERROR, OLOG_TEXT);
    const struct CMUnitTest units[] = {
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_log_lines),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_event_stored_exact),
        cmocka_unit_test(test_ndjson_all_stored),
        cmocka_unit_test(test_ndjson_all_or_nothing),
        cmocka_unit_test(test_bad_events),
        cmocka_unit_test(test_unrouted_acknowledged_not_stored),
        cmocka_unit_test(test_content_type_and_paths),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_deadlines),
    };
    int rc = cmocka_run_group_tests_name("units", units, NULL, NULL);
    g_pool = 0;
    rc |= cmocka_run_group_tests_name("thread-per-connection", tests, NULL, NULL);
    g_pool = 2;
    rc |= cmocka_run_group_tests_name("pool", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
