/*
 * outboxd-ingest.c - HTTP ingest, health and metrics on libmicrohttpd (see outboxd-ingest.h).
 *
 * Requests are answered from the access handler. Everything that can be refused from the
 * headers alone (path, method, auth token, content type, Content-Length over max_body,
 * shutdown) is refused in the first call, before any body byte is read: MHD then closes
 * the connection instead of reading the body. A body that grows past max_body while
 * streaming (chunked) aborts the connection. A complete body is parsed and validated
 * (outboxd-event.c) and routed; then it is stored durably before the 202 is queued:
 * - thread per connection: the connection's thread blocks in obx_enqueue(), so many
 *   requests wait on (and share) one group commit;
 * - pool mode: the connection is suspended and the request handed to the store's writer
 *   (obx_enqueue_submit), whose completion (on the writer thread) records the result and
 *   resumes the connection; its handler then answers from the recorded result. Without a
 *   writer thread (PostgreSQL) the request is parked in a queue instead, and committer
 *   threads store everything parked with one obx_enqueue_batch() and resume them.
 * A stored request stays counted in `waiting` until MHD reports its answer sent, so a
 * graceful stop never drops the 202 of a durable event.
 * Every open connection is tracked (MHD's notify-connection callback) with the phase of
 * its request; the `ingest-deadline` thread closes those past their header or body
 * deadline and gives memory back to the system after a burst of connections.
 * The file stays whole because its parts share one MHD connection lifecycle and the
 * server struct; libmicrohttpd stays (measured against h2o and nginx: README, Ingest
 * throughput).
 */
#include "outboxd-ingest-server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "delivery/sign.h"
#include "gotmpl/gojson.h"
#include "listen-addr.h"
#include "outboxd-event.h"
#include "outboxd-idem.h"
#include "outboxd-log.h"

/* ---- responses ---- */

/* Answer; `close` (or a shutdown in progress) adds Connection: close, and MHD closes. */
static enum MHD_Result send_body(oin_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *ctype, char *body, size_t len, int must_free,
                                 const char *allow, int close)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (close || atomic_load(&s->closing))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answer {"error":"<msg>"}, the message escaped by the one JSON string encoder
 * (gojson_encode_string; invalid UTF-8 from a parser's quote becomes U+FFFD). */
static enum MHD_Result send_error_x(oin_server *s, struct MHD_Connection *c, unsigned status,
                                    omet_reason reason, const char *msg, const char *allow,
                                    int close)
{
    omet_rejected(s->cfg.metrics, reason);
    char out[1024];
    char *q = NULL;
    size_t qn = 0;
    if (gojson_encode_string(msg, strnlen(msg, 900), &q, &qn) != 0 || qn > 900) {
        free(q);
        q = NULL;
    }
    int n = snprintf(out, sizeof out, "{\"error\":%s}\n", q ? q : "\"out of memory\"");
    free(q);
    return send_body(s, c, status, "application/json", out, (size_t)n, 0, allow, close);
}

static enum MHD_Result send_error(oin_server *s, struct MHD_Connection *c, unsigned status,
                                  omet_reason reason, const char *msg, const char *allow)
{
    return send_error_x(s, c, status, reason, msg, allow, 0);
}

static enum MHD_Result send_json(oin_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *json)
{
    return send_body(s, c, status, "application/json", (char *)json, strlen(json), 0, NULL, 0);
}

/* ---- checks on headers ---- */

static int token_ok(const oin_server *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    int ok = 0;
    for (size_t i = 0; i < s->cfg.n_tokens; i++) /* no early exit: same work for any match */
        ok |= dlv_ct_streq(tok, s->cfg.tokens[i]);
    return ok;
}

/* Parse a Content-Length value; -1 when absent or not a plain decimal. */
static long long content_length(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!h || !*h)
        return -1;
    long long v = 0;
    for (const char *p = h; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (1LL << 50))
            return 1LL << 50; /* absurd: certainly over the limit */
        v = v * 10 + (*p - '0');
    }
    return v;
}

typedef struct framing {
    unsigned n_cl, n_te;
    const char *te;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->n_cl++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->n_te++;
        f->te = value;
    }
    return MHD_YES;
}

/*
 * NULL when the request's body length is unambiguous, else why not (RFC 9112 sec. 6.3).
 * Two Content-Length headers are refused even when equal: no client sends them, and a
 * proxy in front may have framed the body differently.
 */
static const char *framing_error(struct MHD_Connection *c)
{
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.n_te && f.n_cl)
        return "both Transfer-Encoding and Content-Length: ambiguous body length";
    if (f.n_cl > 1)
        return "more than one Content-Length header: ambiguous body length";
    if (f.n_te > 1 || (f.n_te && strcasecmp(f.te ? f.te : "", "chunked") != 0))
        return "Transfer-Encoding other than a single chunked: ambiguous body length";
    return NULL;
}

/* ---- GET endpoints ---- */

static enum MHD_Result serve_health(oin_server *s, struct MHD_Connection *c)
{
    if (atomic_load(&s->closing))
        return send_json(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"status\":\"shutting down\"}\n");
    if (obx_ping(s->cfg.store, NULL) == OBX_ERR_UNAVAILABLE) /* cluster mode: database down */
        return send_json(s, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "{\"status\":\"database unavailable\"}\n");
    return send_json(s, c, MHD_HTTP_OK, "{\"status\":\"ok\"}\n");
}

static enum MHD_Result serve_metrics(oin_server *s, struct MHD_Connection *c)
{
    obuf b = {.limit = 64u << 20};
    s->cfg.render_metrics(s->cfg.metrics_ud, &b);
    if (b.failed || !b.p) {
        obuf_free(&b);
        return send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR,
                          "could not render metrics", NULL);
    }
    return send_body(s, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, 1,
                     NULL, 0);
}

/* ---- POST /v1/events ---- */

/* Headers are in: refuse early, or set up the request state. */
static enum MHD_Result events_begin(oin_server *s, struct MHD_Connection *c, void **con_cls)
{
    if (atomic_load(&s->closing))
        return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_SHUTTING_DOWN, "shutting down",
                          NULL);
    if (s->cfg.n_tokens > 0 && !token_ok(s, c))
        return send_error(s, c, MHD_HTTP_UNAUTHORIZED, OMET_UNAUTHORIZED,
                          "missing or invalid bearer token", NULL);
    const char *ctv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    oev_ctype ct = oev_content_type(ctv);
    if (ct == OEV_CT_OTHER)
        return send_error(s, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, OMET_MEDIA_TYPE,
                          "Content-Type must be application/json (one event) or "
                          "application/x-ndjson (one event per line)",
                          NULL);
    long long cl = content_length(c);
    if (cl > (long long)s->cfg.max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %lld bytes is over the limit of %zu bytes (max_body)",
                 cl, s->cfg.max_body);
        return send_error(s, c, MHD_HTTP_CONTENT_TOO_LARGE, OMET_TOO_LARGE, msg, NULL);
    }
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, OID_HEADER);
    char kerr[512];
    if (key && oid_check(key, kerr, sizeof kerr) != 0)
        return send_error(s, c, MHD_HTTP_BAD_REQUEST, OMET_BAD_REQUEST, kerr, NULL);
    req *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->ct = ct;
    if (key && !(r->idem_header = strdup(key))) {
        free(r);
        return MHD_NO;
    }
    r->cap = cl > 0 ? (size_t)cl : 4096;
    if (r->cap > s->cfg.max_body)
        r->cap = s->cfg.max_body;
    r->buf = malloc(r->cap ? r->cap : 1);
    if (!r->buf) {
        free(r->idem_header);
        free(r);
        return MHD_NO;
    }
    *con_cls = r;
    return MHD_YES;
}

/* Append a body chunk; MHD_NO (abort the connection) once past max_body. */
static enum MHD_Result events_data(oin_server *s, req *r, const char *data, size_t n)
{
    if (n > s->cfg.max_body - r->len) {
        omet_rejected(s->cfg.metrics, OMET_TOO_LARGE);
        olog(OLOG_DEBUG, "request aborted", OLOG_S("reason", "body over max_body while streaming"),
             OLOG_I("max_body", (long long)s->cfg.max_body));
        return MHD_NO;
    }
    if (r->len + n > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4096;
        while (nc < r->len + n)
            nc *= 2;
        if (nc > s->cfg.max_body)
            nc = s->cfg.max_body;
        char *nb = realloc(r->buf, nc);
        if (!nb)
            return MHD_NO;
        r->buf = nb;
        r->cap = nc;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

static void waiting_done(oin_server *s)
{
    if (atomic_fetch_sub(&s->waiting, 1) == 1 && atomic_load(&s->closing)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Build {"id":"N"} / {"id":null} / {"ids":[...]} for the answer. NULL on OOM. */
static char *ids_json(int many, const uint64_t *ids, const int *routed, size_t n)
{
    size_t cap = 16 + n * 24;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t len = (size_t)snprintf(out, cap, many ? "{\"ids\":[" : "{\"id\":");
    for (size_t i = 0, k = 0; i < n; i++) {
        if (routed[i])
            len += (size_t)snprintf(out + len, cap - len, "%s\"%llu\"", i ? "," : "",
                                    (unsigned long long)ids[k++]);
        else
            len += (size_t)snprintf(out + len, cap - len, "%snull", i ? "," : "");
    }
    snprintf(out + len, cap - len, many ? "]}\n" : "}\n");
    return out;
}

static void req_free(req *r)
{
    oev_events_free(r->evs, r->n);
    free(r->in);
    free(r->sinks);
    free(r->routed);
    free(r->ids);
    free(r->buf);
    free(r->idem_header);
    oid_clear(&r->idem);
    obx_idem_result_clear(&r->replay);
    free(r);
}

/*
 * The whole body is in: check the signature, parse, validate and route. Returns 1 when
 * an answer was queued (error, or nothing to store), else 0 with r->in/k ready to commit.
 */
static int events_prepare(oin_server *s, struct MHD_Connection *c, req *r, enum MHD_Result *ret)
{
    char err[512];
    if (atomic_load(&s->closing)) {
        *ret = send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_SHUTTING_DOWN, "shutting down",
                          NULL);
        return 1;
    }
    if (s->cfg.verify) {
        const char *sig =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Flipt-Webhook-Signature");
        if (!s->cfg.verify(s->cfg.verify_ud, r->buf, r->len, sig)) {
            *ret = send_error(s, c, MHD_HTTP_UNAUTHORIZED, OMET_UNAUTHORIZED,
                              sig ? "invalid X-Flipt-Webhook-Signature"
                                  : "missing X-Flipt-Webhook-Signature",
                              NULL);
            return 1;
        }
    }
    int prc = oev_parse(r->ct, r->buf, r->len, &r->evs, &r->n, err, sizeof err);
    if (prc != 0) {
        *ret = prc == OEV_ERR_NOMEM
                   ? send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR, err, NULL)
                   : send_error(s, c, MHD_HTTP_BAD_REQUEST,
                                prc == OEV_ERR_JSON ? OMET_INVALID_JSON : OMET_INVALID_EVENT, err,
                                NULL);
        return 1;
    }
    size_t n = r->n;
    r->in = calloc(n, sizeof *r->in);
    r->ids = calloc(n, sizeof *r->ids);
    r->routed = calloc(n, sizeof *r->routed);
    r->sinks = malloc(n * OIN_MAX_ROUTES * sizeof *r->sinks);
    if (!r->in || !r->ids || !r->routed || !r->sinks) {
        *ret = send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR, "out of memory",
                          NULL);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t *sk = r->sinks + i * OIN_MAX_ROUTES;
        size_t ns = s->cfg.route(s->cfg.route_ud, r->evs[i].type, r->evs[i].action, sk);
        if (ns == 0)
            continue;
        r->routed[i] = 1;
        r->in[r->k++] = (obx_event_in){.type = r->evs[i].type,
                                       .action = r->evs[i].action,
                                       .body = r->evs[i].body,
                                       .body_len = r->evs[i].body_len,
                                       .sinks = sk,
                                       .n_sinks = ns};
    }
    if (r->idem_header && oid_prepare(&r->idem, r->idem_header, r->ct, r->buf, r->len, r->routed, n,
                                      s->cfg.idem_window_ms) != 0) {
        *ret = send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR, "out of memory",
                          NULL);
        return 1;
    }
    if (r->k == 0 && !r->idem_header) { /* nothing to store: acknowledge at once */
        r->committed = 1;
        r->rc = OBX_OK;
        return 0;
    }
    r->t0_us = oin__mono_us();
    return 0;
}

/*
 * A store-full episode is logged once when it begins, with the store's message (which
 * names the limit: outbox.max_size or disk space), and once when it ends: at the first
 * event stored FULL_QUIET_US after the episode's latest refusal (a store hovering at its
 * limit, storing some requests and refusing others, is one episode, not a line each).
 */
#define FULL_QUIET_US 5000000u

static void store_full(oin_server *s, const char *why)
{
    atomic_fetch_add(&s->full_refused, 1);
    atomic_store(&s->full_last_us, oin__mono_us());
    if (atomic_exchange(&s->full, 1) == 0)
        olog(OLOG_WARN, "store full: refusing events with 503 until there is room",
             OLOG_S("error", why));
}

static void store_has_room(oin_server *s)
{
    if (!atomic_load_explicit(&s->full, memory_order_relaxed) ||
        oin__mono_us() - atomic_load(&s->full_last_us) < FULL_QUIET_US)
        return;
    if (atomic_exchange(&s->full, 0))
        olog(OLOG_INFO, "store has room again: accepting events",
             OLOG_I("refused", (long long)atomic_exchange(&s->full_refused, 0)));
}

/* The key was known: the first request's 202 again, marked as a replay; nothing stored. */
static enum MHD_Result answer_replay(oin_server *s, struct MHD_Connection *c, req *r)
{
    if (oid_routed(&r->replay, r->n, r->routed) != 0) {
        olog(OLOG_ERROR, "idempotency key record does not match its request",
             OLOG_S("key", r->idem_header));
        return send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR,
                          "store error: the idempotency key's record does not match the request",
                          NULL);
    }
    omet_replayed(s->cfg.metrics, r->replay.n_ids);
    char *body = ids_json(r->ct == OEV_CT_NDJSON, r->replay.ids, r->routed, r->n);
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, OID_REPLAYED_HEADER, "true");
    if (atomic_load(&s->closing))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_ACCEPTED, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The commit finished (or there was nothing to commit): answer from r->rc. */
static enum MHD_Result events_answer(oin_server *s, struct MHD_Connection *c, req *r)
{
    if (r->rc == OBX_ERR_FULL) {
        store_full(s, r->errmsg);
        char msg[320];
        snprintf(msg, sizeof msg, "store is full; retry later (%s)", r->errmsg);
        return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_STORE_FULL, msg, NULL);
    }
    if (r->rc == OBX_ERR_CLOSED)
        return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_SHUTTING_DOWN, "shutting down",
                          NULL);
    /* lock.mdb deleted or replaced under the store: logged once, refused until restart */
    if (r->rc == OBX_ERR_LOCKLOST) {
        static int logged;
        if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
            olog(OLOG_ERROR, "store lock file lost; refusing events", OLOG_S("error", r->errmsg));
        return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_STORE_ERROR,
                          "the store's lock file (lock.mdb) was deleted or replaced; events are "
                          "refused until outboxd is restarted",
                          NULL);
    }
    if (r->rc == OBX_ERR_UNAVAILABLE) /* cluster mode: database down or failing over */
        return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, OMET_STORE_ERROR,
                          "database unavailable; nothing was stored, retry later", NULL);
    if (r->rc == OBX_ERR_CONFLICT)
        return send_error(s, c, MHD_HTTP_UNPROCESSABLE_CONTENT, OMET_IDEMPOTENCY_CONFLICT,
                          r->errmsg, NULL);
    if (r->rc == OBX_OK && r->replay.replayed)
        return answer_replay(s, c, r);
    if (r->rc != OBX_OK) {
        olog(OLOG_ERROR, "enqueue failed", OLOG_S("error", r->errmsg));
        return send_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, OMET_STORE_ERROR,
                          "store error; nothing was stored", NULL);
    }
    if (r->k > 0) {
        store_has_room(s);
        omet_ack_latency(s->cfg.metrics, oin__mono_us() - r->t0_us);
        omet_stored(s->cfg.metrics, r->k);
    }
    if (r->n > r->k)
        omet_unrouted(s->cfg.metrics, r->n - r->k);
    char *body = ids_json(r->ct == OEV_CT_NDJSON, r->ids, r->routed, r->n);
    if (!body)
        return MHD_NO;
    return send_body(s, c, MHD_HTTP_ACCEPTED, "application/json", body, strlen(body), 1, NULL, 0);
}

static enum MHD_Result events_finish(oin_server *s, struct MHD_Connection *c, req *r)
{
    if (r->committed) /* resumed after the committer stored it */
        return events_answer(s, c, r);
    enum MHD_Result ret;
    if (events_prepare(s, c, r, &ret))
        return ret;
    if (r->committed) /* nothing routed */
        return events_answer(s, c, r);
    /* Counted until its answer has been sent (completed()), so shutdown waits for it. */
    atomic_fetch_add(&s->waiting, 1);
    r->counted = 1;
    if (s->cfg.pool_threads == 0) { /* thread per connection: wait right here */
        oin__commit_now(s, r);
        return events_answer(s, c, r);
    }
    oin__park(s, c, r);
    return MHD_YES;
}

/* ---- dispatch ---- */

/*
 * Marks a GET request whose answer waits for the second call: MHD closes the connection
 * after a response queued in the first call (it cannot know the body was empty), which
 * would cost scrapers and probes their keep-alive connection.
 */
static char get_marker;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    oin_server *s = cls;
    if (*con_cls == &get_marker) {
        if (*upload_data_size) { /* a GET with a body: ignore it */
            *upload_data_size = 0;
            return MHD_YES;
        }
        oin__phase_set(s, c, PH_BUSY);
        return url[1] == 'h' ? serve_health(s, c) : serve_metrics(s, c);
    }
    req *r = *con_cls;
    if (r) {
        if (*upload_data_size) {
            enum MHD_Result ok = events_data(s, r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return ok;
        }
        if (!r->committed)
            oin__phase_set(s, c, PH_BUSY);
        return events_finish(s, c, r);
    }
    /* First call: the headers are complete; the body deadline starts. */
    const char *bad = framing_error(c);
    if (bad)
        return send_error_x(s, c, MHD_HTTP_BAD_REQUEST, OMET_BAD_REQUEST, bad, NULL, 1);
    oin__phase_set(s, c, PH_BODY);
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/v1/events") == 0) {
        if (strcmp(method, "POST") != 0)
            return send_error(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, OMET_METHOD,
                              "method not allowed; use POST", "POST");
        return events_begin(s, c, con_cls);
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0) {
        if (!get)
            return send_error(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, OMET_METHOD,
                              "method not allowed; use GET", "GET, HEAD");
        *con_cls = &get_marker;
        return MHD_YES;
    }
    return send_error(s, c, MHD_HTTP_NOT_FOUND, OMET_NOT_FOUND,
                      "no such endpoint (POST /v1/events, GET /healthz, GET /metrics)", NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    oin_server *s = cls;
    oin__phase_set(s, c, PH_IDLE);
    req *r = *con_cls;
    if (r && *con_cls != &get_marker) {
        int counted = r->counted;
        req_free(r);
        if (counted) /* its answer is sent (or the connection failed): no longer waiting */
            waiting_done(s);
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (!olog_enabled(OLOG_DEBUG))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    olog(OLOG_DEBUG, "http server", OLOG_S("detail", msg));
}

/* ---- lifecycle ---- */

/* Resolve, bind and listen; return the socket or -1 with err. */
int oin_bind_listen(const char *addr, int *is_v6, uint16_t *bound, char *err, size_t cap)
{
    char host[256], portstr[8], perr[256];
    uint16_t port;
    if (listen_addr_parse(addr, host, sizeof host, &port, perr, sizeof perr) != 0) {
        snprintf(err, cap, "listen address %s", perr);
        return -1;
    }
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(host, portstr, &hints, &ai);
    if (gr != 0) {
        snprintf(err, cap, "listen address \"%s\": %s", addr, gai_strerror(gr));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
            *is_v6 = a->ai_family == AF_INET6;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, cap, "cannot listen on %s: %s", addr, strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void server_free(oin_server *s)
{
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->sweep_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->q_cv);
    free(s);
}

oin_server *oin_start(const oin_config *cfg, char *err, size_t cap)
{
    oin_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (s->cfg.idem_window_ms <= 0)
        s->cfg.idem_window_ms = OIN_IDEM_WINDOW_MS;
    s->cfg.listen = NULL; /* not kept */
    s->quiesced_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->sweep_cv, NULL);
    s->header_us =
        (uint64_t)(cfg->header_timeout_ms ? cfg->header_timeout_ms : OIN_HEADER_TIMEOUT_MS) * 1000u;
    s->body_us =
        (uint64_t)(cfg->body_timeout_ms ? cfg->body_timeout_ms : OIN_BODY_TIMEOUT_MS) * 1000u;
    /* A deadline is enforced within two ticks of passing (detection, then the close). */
    s->tick_us = (s->header_us < s->body_us ? s->header_us : s->body_us) / 10;
    if (s->tick_us < 20000)
        s->tick_us = 20000;
    if (s->tick_us > 1000000)
        s->tick_us = 1000000;
    int v6 = 0;
    s->listen_fd = oin_bind_listen(cfg->listen, &v6, &s->port, err, cap);
    if (s->listen_fd < 0)
        goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (cfg->pool_threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    else
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    s->async = cfg->pool_threads && obx_enqueue_can_submit(cfg->store);
    if ((cfg->pool_threads && !s->async && oin__committers_start(s, err, cap) != 0) ||
        oin__sweeper_start(s, err, cap) != 0)
        goto fail;
    if (v6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, completed,
        s, MHD_OPTION_NOTIFY_CONNECTION, oin__on_connection, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
        /* last, so that without a pool the list simply ends here */
        cfg->pool_threads ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
        (unsigned)cfg->pool_threads, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, cap, "cannot start the HTTP server on %s", cfg->listen);
        goto fail;
    }
    return s;
fail:
    oin__sweeper_stop(s);
    oin__commit_drain(s);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    server_free(s);
    return NULL;
}

uint16_t oin_port(const oin_server *s)
{
    return s->port;
}

void oin_begin_shutdown(oin_server *s)
{
    if (!s || atomic_exchange(&s->closing, 1))
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    olog(OLOG_DEBUG, "listener quiesced", OLOG_I("fd", fd));
    if (fd != MHD_INVALID_SOCKET) {
        /*
         * MHD's threads may still touch the socket: close it only after MHD_stop_daemon.
         * shutdown() makes Linux refuse new connections (and reset queued ones) now.
         */
        (void)shutdown(fd, SHUT_RDWR);
        s->quiesced_fd = fd;
    }
}

void oin_stop(oin_server *s, unsigned wait_ms)
{
    if (!s)
        return;
    oin_begin_shutdown(s);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->waiting) > 0 && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&s->mu);
    /* Every parked request is resumed before MHD stops (MHD requires it): the committers
     * drain their queue; the store's writer finishes every request queued with it. */
    oin__commit_drain(s);
    oin__sweeper_stop(s);
    MHD_stop_daemon(s->d); /* closes the listen socket unless quiesced above */
    if (s->quiesced_fd >= 0)
        close(s->quiesced_fd);
    server_free(s);
}
