/*
 * outboxd-admin.c - the admin listener (see outboxd-admin.h): the HTTP server, who may do
 * what (tokens, loopback Host, same origin, JSON writes), routing to the JSON endpoints
 * (outboxd-admin-api.c) and the console's embedded files. One thread per connection (an
 * operator's browser and scripts, never a crowd).
 */
#include "outboxd-admin.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "delivery/sign.h"
#include "listen-addr.h"
#include "outboxd-admin-api.h"
#include "outboxd-ingest.h"
#include "outboxd-log.h"

#define MAX_CONNECTIONS 64
#define IDLE_TIMEOUT_S  30

/* Served with every answer: no framing, scripts and styles only from this origin. */
#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct oadm_server {
    oadm_config cfg;
    struct MHD_Daemon *d;
    uint16_t port;
    int open_access; /* no tokens: loopback only, every request may write */
    char **names;    /* copies of cfg.sink_names */
};

/* One request's state: its body, collected up to OADM_MAX_BODY. */
typedef struct req {
    char *body;
    size_t len;
    int too_big;
} req;

/* Who is asking. */
typedef struct caller {
    int write;    /* may replay and purge */
    char who[32]; /* "token rw[0]", "token ro[1]" or "no token (loopback)" */
} caller;

/* ---- answers ---- */

enum MHD_Result oadm_send_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                              void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                              const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"outbox admin\"");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Send `o` (reference taken) as the JSON answer. */
enum MHD_Result oadm_send_json(struct MHD_Connection *c, unsigned status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        return oadm_send_buf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", (void *)oom,
                             sizeof oom - 1, MHD_RESPMEM_PERSISTENT, NULL);
    }
    return oadm_send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE, NULL);
}

enum MHD_Result oadm_send_err(struct MHD_Connection *c, unsigned status, const char *allow,
                              const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return MHD_NO;
    return oadm_send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE, allow);
}

/* An answer for a failed store call. */
enum MHD_Result oadm_send_store_err(struct MHD_Connection *c, int rc, const obx_error *e)
{
    unsigned st = rc == OBX_ERR_NOTFOUND                       ? MHD_HTTP_NOT_FOUND
                  : rc == OBX_ERR_STATE                        ? MHD_HTTP_CONFLICT
                  : rc == OBX_ERR_FULL || rc == OBX_ERR_CLOSED ? MHD_HTTP_SERVICE_UNAVAILABLE
                                                               : MHD_HTTP_INTERNAL_SERVER_ERROR;
    return oadm_send_err(c, st, NULL, "%s", e->msg[0] ? e->msg : obx_strerror(rc));
}

/* ---- who is asking ---- */

/* 1 when the caller may read; *cl says whether it may write and who it is. */
static int authenticate(const oadm_server *s, struct MHD_Connection *c, caller *cl)
{
    memset(cl, 0, sizeof *cl);
    if (s->open_access) {
        cl->write = 1;
        snprintf(cl->who, sizeof cl->who, "no token (loopback)");
        return 1;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    long rw = -1, ro = -1;
    /* no early exit: the same work whichever token matches */
    for (size_t i = 0; i < s->cfg.n_tokens; i++)
        if (dlv_ct_streq(tok, s->cfg.tokens[i]) && rw < 0)
            rw = (long)i;
    for (size_t i = 0; i < s->cfg.n_ro_tokens; i++)
        if (dlv_ct_streq(tok, s->cfg.ro_tokens[i]) && ro < 0)
            ro = (long)i;
    if (rw >= 0) {
        cl->write = 1;
        snprintf(cl->who, sizeof cl->who, "token rw[%ld]", rw);
        return 1;
    }
    if (ro >= 0) {
        snprintf(cl->who, sizeof cl->who, "token ro[%ld]", ro);
        return 1;
    }
    return 0;
}

/* Without tokens: the Host header must name loopback, so a web page on another origin
 * cannot reach the API through DNS rebinding. */
static int host_ok(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h)
        return 0;
    char host[256];
    size_t n;
    if (h[0] == '[') {
        const char *e = strchr(h, ']');
        if (!e)
            return 0;
        n = (size_t)(e - h - 1);
        h++;
    } else {
        n = strcspn(h, ":");
    }
    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    return listen_host_is_loopback(host);
}

/* 1 unless the request carries an Origin that is not http://<its Host>. */
static int same_origin(struct MHD_Connection *c)
{
    const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!o)
        return 1; /* not a browser (curl, scripts) */
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    return h && strncmp(o, "http://", 7) == 0 && strcmp(o + 7, h) == 0;
}

/* ---- routing ---- */

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *url, const char *method)
{
    for (size_t i = 0; i < oadm_n_assets; i++) {
        if (strcmp(url, oadm_assets[i].path) != 0)
            continue;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return oadm_send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD", "use GET");
        return oadm_send_buf(c, MHD_HTTP_OK, oadm_assets[i].content_type,
                             (void *)oadm_assets[i].data, oadm_assets[i].len,
                             MHD_RESPMEM_PERSISTENT, NULL);
    }
    return oadm_send_err(c, MHD_HTTP_NOT_FOUND, NULL, "no such page: %s", url);
}

/* "/api/v1/events/123[/tail]": the id and the tail ("" when none); 0 when not that. */
static uint64_t event_path(const char *url, const char **tail)
{
    static const char pre[] = "/api/v1/events/";
    if (strncmp(url, pre, sizeof pre - 1) != 0)
        return 0;
    const char *p = url + sizeof pre - 1;
    if (!isdigit((unsigned char)*p))
        return 0;
    char *end;
    errno = 0;
    unsigned long long id = strtoull(p, &end, 10);
    if (errno || id == 0)
        return 0;
    *tail = end;
    return id;
}

static enum MHD_Result route(oadm_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, const req *r)
{
    if (s->open_access && !host_ok(c))
        return oadm_send_err(c, MHD_HTTP_FORBIDDEN, NULL,
                             "the Host header must name a loopback address (no admin tokens are "
                             "configured)");
    if (strncmp(url, "/api/", 5) != 0)
        return serve_asset(c, url, method);
    caller cl;
    if (!authenticate(s, c, &cl))
        return oadm_send_err(c, MHD_HTTP_UNAUTHORIZED, NULL, "missing or invalid bearer token");
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    const char *tail = NULL;
    uint64_t id = event_path(url, &tail);
    const char *allow = NULL;
    int write = -1; /* 1 replay, 0 purge */
    if (strcmp(url, "/api/v1/stats") == 0 || strcmp(url, "/api/v1/deliveries") == 0 ||
        (id && *tail == '\0')) {
        allow = "GET";
    } else if (strcmp(url, "/api/v1/replay") == 0 || (id && strcmp(tail, "/replay") == 0)) {
        allow = "POST";
        write = 1;
    } else if (strcmp(url, "/api/v1/purge") == 0 || (id && strcmp(tail, "/purge") == 0)) {
        allow = "POST";
        write = 0;
    } else {
        return oadm_send_err(c, MHD_HTTP_NOT_FOUND, NULL, "no such endpoint: %s %s", method, url);
    }
    if (write < 0 && !get)
        return oadm_send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, allow, "%s: use GET", url);
    if (write >= 0 && !post)
        return oadm_send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, allow, "%s: use POST", url);
    oadm_ctx x = {s->cfg.store, s->names, s->cfg.n_sink_names, cl.who};
    if (write >= 0) {
        if (!cl.write)
            return oadm_send_err(c, MHD_HTTP_FORBIDDEN, NULL,
                                 "a read-only token may not replay or purge");
        if (r->too_big)
            return oadm_send_err(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "request body larger than %d bytes", OADM_MAX_BODY);
        /* Cross-site request forgery: a page on another site can post a form (any body,
         * even empty) without a preflight, but not with this type; and a browser names the
         * page's origin, which must be this listener's. */
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
            (ct[16] && ct[16] != ';' && ct[16] != ' '))
            return oadm_send_err(
                c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                "Content-Type must be application/json (a JSON object, {} for none)");
        if (!same_origin(c))
            return oadm_send_err(c, MHD_HTTP_FORBIDDEN, NULL,
                                 "the Origin header names another site than this listener");
        return oadm_post_write(&x, c, r->body, r->len, write, id);
    }
    if (id)
        return oadm_get_event(&x, c, id);
    if (strcmp(url, "/api/v1/stats") == 0)
        return oadm_get_stats(&x, c);
    return oadm_get_deliveries(&x, c);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    oadm_server *s = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->len + n > OADM_MAX_BODY) {
            r->too_big = 1;
            return MHD_YES;
        }
        char *nb = realloc(r->body, r->len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + r->len, upload, n);
        r->body = nb;
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    return route(s, c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void server_free(oadm_server *s)
{
    for (size_t i = 0; s->names && i < s->cfg.n_sink_names; i++)
        free(s->names[i]);
    free(s->names);
    free(s);
}

oadm_server *oadm_start(const oadm_config *cfg, char *err, size_t cap)
{
    if (cfg->n_tokens + cfg->n_ro_tokens == 0 && !listen_addr_is_loopback(cfg->listen)) {
        snprintf(err, cap,
                 "admin listener on %s without tokens: only a loopback address is allowed",
                 cfg->listen);
        return NULL;
    }
    oadm_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->cfg.listen = NULL; /* not kept */
    s->cfg.sink_names = NULL;
    s->names = calloc(cfg->n_sink_names + 1, sizeof *s->names);
    for (size_t i = 0; s->names && i < cfg->n_sink_names; i++)
        if (!(s->names[i] = strdup(cfg->sink_names[i]))) {
            server_free(s);
            snprintf(err, cap, "out of memory");
            return NULL;
        }
    if (!s->names) {
        free(s);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->open_access = cfg->n_tokens + cfg->n_ro_tokens == 0;
    int v6 = 0;
    int fd = oin_bind_listen(cfg->listen, &v6, &s->port, err, cap);
    if (fd < 0) {
        server_free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0);
    s->d =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, cap, "cannot start the admin HTTP server on %s", cfg->listen);
        close(fd);
        server_free(s);
        return NULL;
    }
    return s;
}

uint16_t oadm_port(const oadm_server *s)
{
    return s->port;
}

void oadm_stop(oadm_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d); /* closes the listen socket */
    server_free(s);
}
