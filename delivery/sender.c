/*
 * sender.c - the HTTP sender: one libcurl multi handle shared by every sink, so that
 * connections are reused (keep-alive) and HTTP/2 is multiplexed where offered.
 *
 * Easy handles are pooled per transport (sink) with its settings in place, so an attempt
 * sets only what changes (body, headers, where its outcome goes); the multi handle keeps the
 * connection cache. Every transfer is a POST with the body passed by pointer (no copy); of the
 * response body only the first capture_body bytes are kept (the rest is read and
 * counted, so the connection stays reusable), and of its headers Content-Type,
 * Retry-After, Location and the sink's capture_headers; redirects are not followed,
 * only http and https are allowed,
 * and libcurl never raises signals. Errors are reduced to short texts that never carry
 * the URL (which may hold credentials) or header values (which may hold secrets).
 */
#include "sender.h"
#include "delivery/engine.h"
#include "delivery/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Keep the first capture_body bytes of the response body, count all of them. */
static size_t capture(char *ptr, size_t size, size_t nmemb, void *ud)
{
    dlv__xfer *x = ud;
    size_t n = size * nmemb;
    x->body_size += n;
    size_t max = x->t->capture_body;
    if (x->cap_len < max) {
        if (!x->cap && !(x->cap = malloc(max)))
            return n; /* no capture, but the delivery goes on */
        size_t take = n < max - x->cap_len ? n : max - x->cap_len;
        memcpy(x->cap + x->cap_len, ptr, take);
        x->cap_len += take;
    }
    return n;
}

void dlv__outcome_clear(dlv__outcome *o)
{
    for (size_t i = 0; i < o->n_headers; i++) {
        free(o->headers[i].name);
        free(o->headers[i].value);
    }
    free(o->headers);
    free(o->body);
    o->headers = NULL;
    o->n_headers = 0;
    o->body = NULL;
    o->body_len = 0;
    o->body_size = 0;
}

/* Add the response header `name` (its first instance in the last response) to o, unless
 * o already has it or memory is short (the capture is best effort). Its value is returned
 * (libcurl's, valid until the handle's next transfer), NULL when absent. */
static const char *capture_header(CURL *e, const char *name, dlv__outcome *o)
{
    struct curl_header *h = NULL;
    if (o->n_headers >= OBX_CAPTURE_HEADERS_MAX ||
        curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h || !h->value)
        return NULL;
    for (size_t i = 0; i < o->n_headers; i++)
        if (strcasecmp(o->headers[i].name, h->name) == 0)
            return h->value;
    obx_header *hs = o->headers;
    if (!hs && !(hs = o->headers = calloc(OBX_CAPTURE_HEADERS_MAX, sizeof *hs)))
        return h->value;
    char *n = strndup(h->name, OBX_CAPTURE_NAME_MAX);
    char *v = strndup(h->value, OBX_CAPTURE_VALUE_MAX);
    if (!n || !v) {
        free(n);
        free(v);
        return h->value;
    }
    hs[o->n_headers++] = (obx_header){.name = n, .value = v};
    return h->value;
}

/* Keep Content-Type, Retry-After (also as o->retry_after), Location and the sink's
 * capture_headers, and the first capture_body bytes of the body. One lookup per name:
 * cheaper than walking every header with curl_easy_nextheader, which counts a name's
 * instances at each step. */
static void capture_response(CURL *e, dlv__xfer *x, dlv__outcome *o)
{
    (void)capture_header(e, "Content-Type", o);
    const char *ra = capture_header(e, "Retry-After", o);
    if (ra)
        snprintf(o->retry_after, sizeof o->retry_after, "%s", ra);
    (void)capture_header(e, "Location", o);
    for (size_t i = 0; i < x->t->n_capture_headers; i++)
        (void)capture_header(e, x->t->capture_headers[i], o);
    o->body = x->cap;
    o->body_len = x->cap_len;
    o->body_size = x->body_size;
    x->cap = NULL;
    x->cap_len = 0;
}

/* Whether the environment names a proxy libcurl would use for http or https URLs (it
 * reads these at every transfer unless a proxy is set on the handle). */
static int proxy_in_env(void)
{
    static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                        "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

int dlv__sender_init(dlv__sender *s, long max_connects, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->proxy_env = proxy_in_env();
    s->multi = curl_multi_init();
    if (!s->multi) {
        snprintf(err, errlen, "sender: curl_multi_init failed");
        dlv__sender_cleanup(s);
        return DLV_ERR_SYSTEM;
    }
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, max_connects > 0 ? max_connects : 64L);
    return DLV_OK;
}

void dlv__sender_cleanup(dlv__sender *s)
{
    for (size_t k = 0; k < s->n_pools; k++) {
        for (size_t i = 0; i < s->pools[k].n; i++)
            curl_easy_cleanup(s->pools[k].h[i]);
        free(s->pools[k].h);
        curl_url_cleanup(s->pools[k].url);
    }
    free(s->pools);
    s->pools = NULL;
    s->n_pools = 0;
    if (s->multi)
        curl_multi_cleanup(s->multi);
    s->multi = NULL;
}

/* The settings of every request on transport t: set once per easy handle. */
static CURLcode setup_transport(const dlv__sender *s, CURL *e, const dlv__transport *t, CURLU *url)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_CURLU, url); /* parsed once per transport, not at each transfer */
    SET(CURLOPT_NOSIGNAL, 1L);
    if (!s->proxy_env) { /* what libcurl would find at every transfer: no proxy */
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_NOPROXY, "");
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_WRITEFUNCTION, capture);
    SET(CURLOPT_TIMEOUT_MS, t->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, t->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, t->insecure ? 0L : 2L);
    if (t->ca_file)
        SET(CURLOPT_CAINFO, t->ca_file);
    if (t->client_cert)
        SET(CURLOPT_SSLCERT, t->client_cert);
    if (t->client_key)
        SET(CURLOPT_SSLKEY, t->client_key);
#undef SET
    return rc;
}

/* The pool of transport t (grown to its slot when needed), or NULL without memory. */
static dlv__pool *pool_of(dlv__sender *s, const dlv__transport *t)
{
    if (t->slot >= s->n_pools) {
        size_t n = t->slot + 1;
        dlv__pool *p = realloc(s->pools, n * sizeof *p);
        if (!p)
            return NULL;
        memset(p + s->n_pools, 0, (n - s->n_pools) * sizeof *p);
        s->pools = p;
        s->n_pools = n;
    }
    return &s->pools[t->slot];
}

/* An easy handle set up for t: an idle one of its pool, else a new one. */
static CURL *easy_get(dlv__sender *s, const dlv__transport *t, CURLcode *rc)
{
    dlv__pool *p = pool_of(s, t);
    *rc = CURLE_OUT_OF_MEMORY;
    if (!p)
        return NULL;
    if (p->n) {
        *rc = CURLE_OK;
        return p->h[--p->n];
    }
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    if (!p->url) {
        CURLUcode uc = CURLUE_OUT_OF_MEMORY;
        if ((p->url = curl_url()) != NULL)
            uc = curl_url_set(p->url, CURLUPART_URL, t->url,
                              CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME);
        if (uc != CURLUE_OK) {
            curl_url_cleanup(p->url);
            p->url = NULL;
            curl_easy_cleanup(e);
            *rc = uc == CURLUE_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_URL_MALFORMAT;
            return NULL;
        }
    }
    if ((*rc = setup_transport(s, e, t, p->url)) != CURLE_OK) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* Back to t's pool (kept with its settings and its connection), or freed. */
static void easy_put(dlv__sender *s, const dlv__transport *t, CURL *e)
{
    dlv__pool *p = pool_of(s, t);
    if (p && p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        CURL **h = realloc(p->h, cap * sizeof *h);
        if (h) {
            p->h = h;
            p->cap = cap;
        }
    }
    if (!p || p->n == p->cap) {
        curl_easy_cleanup(e);
        return;
    }
    p->h[p->n++] = e;
}

int dlv__sender_start(dlv__sender *s, dlv__xfer *x, const dlv__transport *t, const void *body,
                      size_t body_len, struct curl_slist *headers, char *err, size_t errlen)
{
    CURLcode rc;
    CURL *e = easy_get(s, t, &rc);
    if (!e) {
        snprintf(err, errlen, "sender: setting up the request failed: %s", curl_easy_strerror(rc));
        return DLV_ERR_SYSTEM;
    }
    x->easy = e;
    x->errbuf[0] = 0;
    x->t = t;
    free(x->cap);
    x->cap = NULL;
    x->cap_len = 0;
    x->body_size = 0;
    x->timeout_ms = t->timeout_ms;
    x->connect_timeout_ms = t->connect_timeout_ms;
    /* what changes per attempt; the rest stays from setup_transport */
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_HTTPHEADER, headers);
#undef SET
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "sender: setting up the request failed: %s", curl_easy_strerror(rc));
        easy_put(s, t, e);
        x->easy = NULL;
        return DLV_ERR_SYSTEM;
    }
    CURLMcode mrc = curl_multi_add_handle(s->multi, e);
    if (mrc != CURLM_OK) {
        snprintf(err, errlen, "sender: curl_multi_add_handle: %s", curl_multi_strerror(mrc));
        easy_put(s, t, e);
        x->easy = NULL;
        return DLV_ERR_SYSTEM;
    }
    s->running++;
    return DLV_OK;
}

int dlv__sender_run(dlv__sender *s, int timeout_ms)
{
    int still = 0;
    CURLMcode rc = curl_multi_poll(s->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, NULL);
    if (rc == CURLM_OK)
        rc = curl_multi_perform(s->multi, &still);
    return rc == CURLM_OK ? 0 : -1;
}

static const char *const class_names[DLV_CLASS_COUNT] = {"2xx",     "3xx", "4xx", "5xx",  "timeout",
                                                         "connect", "tls", "dns", "other"};

const char *dlv_attempt_class_name(int c)
{
    return c >= 0 && c < DLV_CLASS_COUNT ? class_names[c] : "other";
}

/* The class of a finished transfer: its transport failure, else its status. */
static int classify(CURLcode code, long status)
{
    switch (code) {
    case CURLE_OK:
        return status >= 200 && status < 600 ? DLV_CLASS_2XX + (int)(status / 100 - 2)
                                             : DLV_CLASS_OTHER;
    case CURLE_OPERATION_TIMEDOUT:
        return DLV_CLASS_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return DLV_CLASS_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return DLV_CLASS_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return DLV_CLASS_TLS;
    default:
        return DLV_CLASS_OTHER;
    }
}

/* A short, secret-free description of a failed transfer. */
static void describe(CURL *e, CURLcode code, const dlv__xfer *x, char *out, size_t len)
{
    long os_errno = 0;
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect_us);
    switch (code) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            snprintf(out, len, "connection refused");
        else if (os_errno)
            snprintf(out, len, "connect failed: %s", strerror((int)os_errno));
        else
            snprintf(out, len, "connect failed");
        return;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us == 0)
            snprintf(out, len, "connect timeout after %ld ms", x->connect_timeout_ms);
        else
            snprintf(out, len, "timeout after %ld ms", x->timeout_ms);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, len, "DNS: could not resolve host");
        return;
    case CURLE_GOT_NOTHING:
        snprintf(out, len, "connection closed without a response");
        return;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        if (os_errno == ECONNRESET)
            snprintf(out, len, "connection reset by peer");
        else if (os_errno)
            snprintf(out, len, "%s: %s",
                     code == CURLE_SEND_ERROR ? "send failed" : "receive failed",
                     strerror((int)os_errno));
        else
            snprintf(out, len, "%s", code == CURLE_SEND_ERROR ? "send failed" : "receive failed");
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(out, len, "unsupported protocol (only http and https)");
        return;
    default:
        break;
    }
    const char *what = curl_easy_strerror(code);
    int tls = code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
              code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CIPHER ||
              code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_ISSUER_ERROR ||
              code == CURLE_SSL_CRL_BADFILE || code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
    /* curl's error buffer names hosts and certificate problems, never header values or
     * URL credentials; it is cut short to keep stored texts small. */
    if (x->errbuf[0])
        snprintf(out, len, "%s%.150s", tls ? "TLS: " : "", x->errbuf);
    else
        snprintf(out, len, "%s%s", tls ? "TLS: " : "", what);
}

dlv__xfer *dlv__sender_done(dlv__sender *s, dlv__outcome *out)
{
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode code = m->data.result;
        dlv__xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        memset(out, 0, sizeof *out);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t total_us = 0;
        curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);
        out->duration_ms = (uint32_t)(total_us / 1000);
        out->status = (int)status;
        out->cls = classify(code, status);
        if (code != CURLE_OK) {
            out->transport_error = 1;
            describe(e, code, x, out->error, sizeof out->error);
        }
        if (status)
            capture_response(e, x, out);
        free(x->cap);
        x->cap = NULL;
        x->cap_len = 0;
        curl_multi_remove_handle(s->multi, e);
        s->running--;
        easy_put(s, x->t, e);
        x->easy = NULL;
        return x;
    }
    return NULL;
}

void dlv__sender_abort(dlv__sender *s, dlv__xfer *x)
{
    if (!x->easy)
        return;
    curl_multi_remove_handle(s->multi, x->easy);
    s->running--;
    /* an abandoned handle may still hold a half-used connection: do not pool it */
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    free(x->cap);
    x->cap = NULL;
    x->cap_len = 0;
}

void dlv__sender_wakeup(dlv__sender *s)
{
    curl_multi_wakeup(s->multi);
}
