/*
 * test-receiver.c - the scriptable test HTTP receiver (see test-receiver.h), on
 * libmicrohttpd.
 *
 * Each request gets a small state (struct pending) through MHD's per-request context:
 * the body accumulates there; when it is complete the request is published to the
 * record list, the answer is chosen (handler, else script), and the delay, hang, close
 * or reset is carried out on the connection's thread. The request-completed callback
 * decrements the concurrency gauge and frees the state.
 */
#include "test-receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct owned_step {
    trx_step s;
    char *retry_after, *location, *body;
} owned_step;

struct trx {
    struct MHD_Daemon *d;
    uint16_t port;
    int tls;
    int no_record;
    char url[256];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    trx_request **reqs;
    size_t n_reqs, cap_reqs;
    size_t count;
    owned_step *script;
    size_t n_script;
    size_t script_pos;
    trx_handler_fn handler;
    void *handler_ud;
    unsigned cur, max_cur;
    unsigned conns;
};

typedef struct pending {
    trx_request *req;
    size_t cap;
    int counted;
} pending;

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t trx_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void request_free(trx_request *q)
{
    if (!q)
        return;
    free(q->method);
    free(q->path);
    for (size_t i = 0; i < q->n_headers; i++) {
        free(q->headers[i].name);
        free(q->headers[i].value);
    }
    free(q->headers);
    free(q->body);
    free(q);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    trx_request *q = cls;
    trx_header *h = realloc(q->headers, (q->n_headers + 1) * sizeof *h);
    if (!h)
        return MHD_NO;
    q->headers = h;
    h[q->n_headers].name = strdup(key);
    h[q->n_headers].value = strdup(value ? value : "");
    q->n_headers++;
    return MHD_YES;
}

static void script_clear(trx *r)
{
    for (size_t i = 0; i < r->n_script; i++) {
        free(r->script[i].retry_after);
        free(r->script[i].location);
        free(r->script[i].body);
    }
    free(r->script);
    r->script = NULL;
    r->n_script = 0;
    r->script_pos = 0;
}

/* The answer for the next request, under r->mu. */
static trx_step next_step(trx *r, const trx_request *q)
{
    trx_step st = {.status = 200};
    if (r->handler) {
        trx_handler_fn fn = r->handler;
        void *ud = r->handler_ud;
        pthread_mutex_unlock(&r->mu);
        st = fn(ud, q);
        pthread_mutex_lock(&r->mu);
        return st;
    }
    if (r->n_script) {
        size_t k = r->script_pos < r->n_script ? r->script_pos : r->n_script - 1;
        r->script_pos++;
        st = r->script[k].s;
    }
    return st;
}

/* CLOCK_REALTIME + ms, for pthread_cond_timedwait. */
static struct timespec deadline_in(unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = (int64_t)until.tv_nsec + (int64_t)ms * 1000000;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    return until;
}

/* Wait ms (or until stop when ms == 0 and forever is set); returns early on stop. */
static void nap(trx *r, unsigned ms, int forever)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        if (forever) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->mu);
}

static unsigned conn_serial(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? (unsigned)(uintptr_t)ci->socket_context : 0;
}

static enum MHD_Result answer(trx *r, struct MHD_Connection *c, pending *p)
{
    trx_request *q = p->req;
    q->body[q->body_len] = 0;
    pthread_mutex_lock(&r->mu);
    q->index = r->count++;
    trx_step st = next_step(r, q);
    /* copy the strings out while the script cannot change under us */
    char *ra = dup_or_null(st.retry_after), *loc = dup_or_null(st.location),
         *body = dup_or_null(st.body);
    if (r->no_record) {
        request_free(q);
    } else {
        if (r->n_reqs == r->cap_reqs) {
            size_t cap = r->cap_reqs ? r->cap_reqs * 2 : 64;
            trx_request **n = realloc(r->reqs, cap * sizeof *n);
            if (n) {
                r->reqs = n;
                r->cap_reqs = cap;
            }
        }
        if (r->n_reqs < r->cap_reqs)
            r->reqs[r->n_reqs++] = q;
        else
            request_free(q);
    }
    p->req = NULL;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    /* q may not be touched past here except through the record list */

    enum MHD_Result ret = MHD_NO;
    if (st.delay_ms)
        nap(r, st.delay_ms, 0);
    switch (st.action) {
    case TRX_HANG:
        nap(r, st.hang_ms, st.hang_ms == 0);
        goto out;
    case TRX_CLOSE:
        goto out;
    case TRX_RESET: {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
            struct linger lg = {1, 0};
            (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        goto out;
    }
    case TRX_RESPOND:
        break;
    }
    {
        size_t blen = body ? strlen(body) : 0;
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(blen, body ? body : (char *)"", MHD_RESPMEM_MUST_COPY);
        if (!resp)
            goto out;
        if (ra)
            MHD_add_response_header(resp, "Retry-After", ra);
        if (loc)
            MHD_add_response_header(resp, "Location", loc);
        ret = MHD_queue_response(c, (unsigned)(st.status ? st.status : 200), resp);
        MHD_destroy_response(resp);
        if (!r->no_record) {
            pthread_mutex_lock(&r->mu);
            /* the record is ours to annotate: only this thread writes `answered` */
            for (size_t i = r->n_reqs; i-- > 0;) {
                if (r->reqs[i] == q) {
                    q->answered = st.status ? st.status : 200;
                    break;
                }
            }
            pthread_mutex_unlock(&r->mu);
        }
    }
out:
    free(ra);
    free(loc);
    free(body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    trx *r = cls;
    pending *p = *con_cls;
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            return MHD_NO;
        p->req = calloc(1, sizeof *p->req);
        p->cap = 256;
        if (!p->req || !(p->req->body = malloc(p->cap))) {
            if (p->req)
                free(p->req);
            free(p);
            return MHD_NO;
        }
        trx_request *q = p->req;
        q->method = strdup(method);
        q->path = strdup(url);
        q->arrived_ms = clock_ms(CLOCK_REALTIME);
        q->arrived_mono_ms = clock_ms(CLOCK_MONOTONIC);
        q->connection = conn_serial(c);
        MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, q);
        pthread_mutex_lock(&r->mu);
        r->cur++;
        if (r->cur > r->max_cur)
            r->max_cur = r->cur;
        pthread_mutex_unlock(&r->mu);
        p->counted = 1;
        *con_cls = p;
        return MHD_YES;
    }
    if (!p->req)
        return MHD_NO; /* already answered (should not happen) */
    if (*upload_data_size) {
        trx_request *q = p->req;
        size_t need = q->body_len + *upload_data_size + 1;
        if (need > p->cap) {
            size_t cap = p->cap;
            while (cap < need)
                cap *= 2;
            unsigned char *nb = realloc(q->body, cap);
            if (!nb)
                return MHD_NO;
            q->body = nb;
            p->cap = cap;
        }
        memcpy(q->body + q->body_len, upload_data, *upload_data_size);
        q->body_len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return answer(r, c, p);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    trx *r = cls;
    pending *p = *con_cls;
    if (!p)
        return;
    if (p->counted) {
        pthread_mutex_lock(&r->mu);
        r->cur--;
        pthread_mutex_unlock(&r->mu);
    }
    request_free(p->req);
    free(p);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    trx *r = cls;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&r->mu);
    unsigned serial = ++r->conns;
    pthread_mutex_unlock(&r->mu);
    *socket_context = (void *)(uintptr_t)serial;
}

int trx_start(const trx_options *opts, trx **out, char *err, size_t errlen)
{
    trx_options o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    trx *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "receiver: out of memory");
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->no_record = o.no_record;
    r->tls = o.tls_cert_pem && o.tls_key_pem;

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
    if (o.threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    else
        flags |= MHD_USE_POLL; /* epoll mode (0.9.75) left some answers unsent until the client
                                  timed out */
    if (r->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[8];
    size_t k = 0;
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, r};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, r};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 1000, NULL};
    if (o.threads > 1)
        ops[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)o.threads, NULL};
    if (r->tls) {
        ops[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o.tls_cert_pem};
        ops[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o.tls_key_pem};
    }
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    r->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, r, MHD_OPTION_ARRAY, ops,
                            MHD_OPTION_END);
    if (!r->d) {
        snprintf(err, errlen, "receiver: MHD_start_daemon failed on 127.0.0.1%s",
                 r->tls ? " (TLS)" : "");
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    r->port = di ? di->port : 0;
    *out = r;
    return 0;
}

void trx_stop(trx *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    MHD_stop_daemon(r->d);
    for (size_t i = 0; i < r->n_reqs; i++)
        request_free(r->reqs[i]);
    free(r->reqs);
    script_clear(r);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

uint16_t trx_port(const trx *r)
{
    return r->port;
}

const char *trx_url(trx *r, const char *path)
{
    snprintf(r->url, sizeof r->url, "%s://127.0.0.1:%u%s", r->tls ? "https" : "http",
             (unsigned)r->port, path ? path : "/");
    return r->url;
}

void trx_script(trx *r, const trx_step *steps, size_t n)
{
    owned_step *s = n ? calloc(n, sizeof *s) : NULL;
    for (size_t i = 0; s && i < n; i++) {
        s[i].s = steps[i];
        s[i].retry_after = dup_or_null(steps[i].retry_after);
        s[i].location = dup_or_null(steps[i].location);
        s[i].body = dup_or_null(steps[i].body);
        s[i].s.retry_after = s[i].retry_after;
        s[i].s.location = s[i].location;
        s[i].s.body = s[i].body;
    }
    pthread_mutex_lock(&r->mu);
    script_clear(r);
    r->script = s;
    r->n_script = s ? n : 0;
    pthread_mutex_unlock(&r->mu);
}

void trx_set_handler(trx *r, trx_handler_fn fn, void *ud)
{
    pthread_mutex_lock(&r->mu);
    r->handler = fn;
    r->handler_ud = ud;
    pthread_mutex_unlock(&r->mu);
}

size_t trx_count(trx *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

const trx_request *trx_get(trx *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    const trx_request *q = i < r->n_reqs ? r->reqs[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return q;
}

int trx_wait(trx *r, size_t n, unsigned timeout_ms)
{
    struct timespec until = deadline_in(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int ok = 1;
    while (r->count < n) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) {
            ok = r->count >= n;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

unsigned trx_max_concurrent(trx *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned m = r->max_cur;
    pthread_mutex_unlock(&r->mu);
    return m;
}

unsigned trx_connections(trx *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned m = r->conns;
    pthread_mutex_unlock(&r->mu);
    return m;
}

void trx_reset_max_concurrent(trx *r)
{
    pthread_mutex_lock(&r->mu);
    r->max_cur = r->cur;
    pthread_mutex_unlock(&r->mu);
}

const char *trx_header_get(const trx_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

size_t trx_header_count(const trx_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            n++;
    return n;
}

uint16_t trx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
