/*
 * outboxctl-listen.c - the commands for trying sinks out: `listen`, a webhook receiver on
 * libmicrohttpd that prints each request and checks its signatures, and `sign`, which
 * prints the signature headers a sink would send for a body.
 *
 * listen serves on one internal polling thread; requests are printed whole, one at a
 * time, under a mutex. The main thread waits on a pipe that a signal (SIGINT/SIGTERM) or
 * the N-th request (--count N) writes to, then stops the server.
 */
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "outboxctl-out.h"
#include "outboxctl-query.h"
#include "delivery/sign.h"
#include "outboxctl-time.h"
#include "outboxctl.h"

enum {
    OPT_PORT = CTL_OPT_LOCAL,
    OPT_HOST,
    OPT_SECRET,
    OPT_STATUS,
    OPT_COUNT,
    OPT_ID,
    OPT_TIMESTAMP,
    OPT_MAX_BODY,
};

#define DEFAULT_MAX_BODY (16u << 20)
#define TOLERANCE_S      300 /* Standard Webhooks' reference libraries: 5 minutes */

typedef struct listener {
    const char *secret; /* NULL = no verification */
    unsigned status;
    unsigned long count; /* 0 = forever */
    size_t max_body;
    int json;
    pthread_mutex_t mu;
    unsigned long seen;
    int wake_fd; /* write end of the stop pipe */
} listener;

typedef struct request {
    char *body;
    size_t len;
    int too_big;
} request;

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    char c = 's';
    if (write(stop_pipe[1], &c, 1) < 0) {
        /* nothing useful to do in a signal handler */
    }
}

/* The headers worth printing; values of the secret-bearing ones are masked. */
static const char *const shown_headers[] = {
    "content-type",
    "content-length",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-flipt-webhook-signature",
    "authorization",
    "idempotency-key",
};

static int is_masked(const char *name)
{
    return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "cookie") == 0;
}

typedef struct header_walk {
    json_t *obj; /* --json: name -> value */
    FILE *f;     /* text */
} header_walk;

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    header_walk *w = cls;
    int shown = strncasecmp(key, "x-", 2) == 0;
    for (size_t i = 0; !shown && i < sizeof shown_headers / sizeof shown_headers[0]; i++)
        shown = strcasecmp(key, shown_headers[i]) == 0;
    if (!shown)
        return MHD_YES;
    char masked[64];
    if (is_masked(key)) {
        const char *sp = value ? strchr(value, ' ') : NULL;
        snprintf(masked, sizeof masked, "%.*s***", sp ? (int)(sp - value + 1) : 0, sp ? value : "");
        value = masked;
    }
    if (w->obj) {
        char lower[128];
        size_t i = 0;
        for (; key[i] && i < sizeof lower - 1; i++)
            lower[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
        lower[i] = '\0';
        json_object_set_new(w->obj, lower, json_string(value ? value : ""));
    } else {
        fprintf(w->f, "%s: %s\n", key, value ? value : "");
    }
    return MHD_YES;
}

/* "valid", "INVALID", or "missing"; std adds the timestamp age note in `note`. */
static const char *check_flipt(listener *l, struct MHD_Connection *conn, const request *r)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Flipt-Webhook-Signature");
    if (!h)
        return "missing";
    const char *secrets[] = {l->secret};
    return dlv_verify_flipt(secrets, 1, r->body, r->len, h) == DLV_OK ? "valid" : "INVALID";
}

static const char *check_standard(listener *l, struct MHD_Connection *conn, const request *r,
                                  char *note, size_t n)
{
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-signature");
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-timestamp");
    note[0] = '\0';
    if (!sig)
        return "missing";
    if (!id || !ts) {
        snprintf(note, n, "webhook-id or webhook-timestamp is missing");
        return "INVALID";
    }
    const char *secrets[] = {l->secret};
    /* The tolerance is reported below, not enforced: a replayed old request still shows
     * whether its signature is right. */
    int vr = dlv_verify_standard(secrets, 1, id, ts, r->body, r->len, sig, 0, -1);
    if (vr != DLV_OK) {
        if (vr != DLV_ERR_MISMATCH)
            snprintf(note, n, "%s", dlv_strerror(vr));
        return "INVALID";
    }
    char *end;
    long long t = strtoll(ts, &end, 10);
    long long age = (long long)time(NULL) - t;
    if (*end || age > DLV_STANDARD_TOLERANCE_S || age < -DLV_STANDARD_TOLERANCE_S)
        snprintf(note, n,
                 "timestamp %s is %llds %s now: receivers with the usual 5m tolerance reject it",
                 ts, age < 0 ? -age : age, age < 0 ? "ahead of" : "behind");
    return "valid";
}

static void print_request(listener *l, struct MHD_Connection *conn, const char *method,
                          const char *url, const request *r, unsigned long no)
{
    char now[40], note[256] = "";
    ctl_time_rfc3339(obx_now_ms(), now, sizeof now);
    const char *flipt = NULL, *std = NULL;
    if (l->secret) {
        flipt = check_flipt(l, conn, r);
        std = check_standard(l, conn, r, note, sizeof note);
    }
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "n", json_integer((json_int_t)no));
        json_object_set_new(o, "received", json_string(now));
        json_object_set_new(o, "method", json_string(method));
        json_object_set_new(o, "path", json_string(url));
        header_walk w = {json_object(), NULL};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, header_cb, &w);
        json_object_set_new(o, "headers", w.obj);
        if (l->secret) {
            json_t *s = json_object();
            json_object_set_new(s, "flipt", json_string(flipt));
            json_object_set_new(s, "standard", json_string(std));
            if (note[0])
                json_object_set_new(s, "note", json_string(note));
            json_object_set_new(o, "signatures", s);
        }
        json_object_set_new(o, "status", json_integer(r->too_big ? 413 : l->status));
        json_object_set_new(o, "body_bytes", json_integer((json_int_t)r->len));
        ctl_json_print_with_body(o, (const unsigned char *)r->body, r->len, stdout);
    } else {
        printf("--- request %lu at %s\n%s %s\n", no, now, method, url);
        header_walk w = {NULL, stdout};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, header_cb, &w);
        printf("body (%zu bytes%s):\n", r->len, r->too_big ? ", cut: over --max-body" : "");
        ctl_body_print((const unsigned char *)r->body, r->len, stdout);
        if (l->secret) {
            printf("signature flipt:    %s\n", flipt);
            if (note[0])
                printf("signature standard: %s (%s)\n", std, note);
            else
                printf("signature standard: %s\n", std);
        }
        printf("answered %u\n\n", r->too_big ? 413 : l->status);
    }
    fflush(stdout);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    listener *l = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (r->len + n > l->max_body) {
            r->too_big = 1;
        } else {
            char *nb = realloc(r->body, r->len + n + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + r->len, upload_data, n);
            r->body = nb;
            r->len += n;
            r->body[r->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&l->mu);
    unsigned long no = ++l->seen;
    int counted = l->count == 0 || no <= l->count;
    if (counted)
        print_request(l, conn, method, url, r, no);
    pthread_mutex_unlock(&l->mu);
    static const char ok[] = "{\"ok\":true}", big[] = "{\"error\":\"body too large\"}";
    const char *text = r->too_big ? big : ok;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, r->too_big ? 413 : l->status, resp);
    MHD_destroy_response(resp);
    if (l->count && no == l->count) {
        char c = 'n';
        if (write(l->wake_fd, &c, 1) < 0) {
            /* the main thread also polls with a timeout-free wait; nothing else to do */
        }
    }
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

int ctl_cmd_listen(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_OPTIONS,
        CTL_OPTION_JSON,
        {"port", required_argument, NULL, OPT_PORT},
        {"host", required_argument, NULL, OPT_HOST},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"status", required_argument, NULL, OPT_STATUS},
        {"count", required_argument, NULL, OPT_COUNT},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {0},
    };
    ctl_filter f = {0};
    listener l = {.status = 200, .max_body = DEFAULT_MAX_BODY};
    const char *host = "127.0.0.1";
    uint64_t port = 0, v;
    int have_port = 0, opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":h", opts, &f, &rc)) >= 0) {
        switch (opt) {
        case OPT_PORT:
            if (ctl_parse_u64(optarg, &port) || port > 65535)
                return ctl_usage_error(argv[0], "--port: \"%s\" is not a port number", optarg);
            have_port = 1;
            continue;
        case OPT_HOST:
            host = optarg;
            continue;
        case OPT_SECRET:
            l.secret = optarg;
            continue;
        case OPT_STATUS:
            if (ctl_parse_u64(optarg, &v) || v < 100 || v > 599)
                return ctl_usage_error(argv[0], "--status: \"%s\" is not an HTTP status", optarg);
            l.status = (unsigned)v;
            continue;
        case OPT_COUNT:
            if (ctl_parse_u64(optarg, &v) || v == 0)
                return ctl_usage_error(argv[0], "--count: \"%s\" is not a positive number", optarg);
            l.count = (unsigned long)v;
            continue;
        case OPT_MAX_BODY:
            if (ctl_parse_u64(optarg, &v) || v == 0)
                return ctl_usage_error(argv[0], "--max-body: \"%s\" is not a byte count", optarg);
            l.max_body = (size_t)v;
            continue;
        }
        return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if (optind < argc)
        return ctl_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind]);
    if (!have_port)
        return ctl_usage_error(argv[0], "which port? give --port P (0 picks a free one)");
    if (!l.secret) {
        const char *env = getenv("OUTBOX_SIGNING_SECRET");
        l.secret = env && *env ? env : NULL;
    }
    char why[DLV_ERRMSG_MAX];
    if (l.secret && dlv_signing_secret_check(l.secret, 1, why, sizeof why) != DLV_OK)
        return ctl_usage_error(argv[0], "--secret: %s", why);
    l.json = f.json;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return ctl_usage_error(argv[0], "--host: \"%s\" is not an IPv4 address", host);
    if (pipe(stop_pipe) != 0) {
        ctl_err("pipe: %s", strerror(errno));
        return CTL_EXIT_ERROR;
    }
    l.wake_fd = stop_pipe[1];
    pthread_mutex_init(&l.mu, NULL);
    struct sigaction sact = {0};
    sact.sa_handler = on_signal;
    sigaction(SIGINT, &sact, NULL);
    sigaction(SIGTERM, &sact, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_request,
        &l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        ctl_err("cannot listen on %s:%llu (in use? try another --port)", host,
                (unsigned long long)port);
        rc = CTL_EXIT_ERROR;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    char until[64] = "";
    if (l.count)
        snprintf(until, sizeof until, ", exiting after %lu request%s", l.count,
                 l.count == 1 ? "" : "s");
    fprintf(stderr, "outboxctl: listening on http://%s:%u/ (answering %u%s%s); Ctrl-C stops\n",
            host, bound, l.status, l.secret ? ", checking signatures" : "", until);
    struct pollfd pfd = {stop_pipe[0], POLLIN, 0};
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    MHD_stop_daemon(d);
    rc = CTL_EXIT_OK;
out:
    pthread_mutex_destroy(&l.mu);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return rc;
}

/* ---- sign ---- */

int ctl_cmd_sign(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_OPTIONS,
        CTL_OPTION_JSON,
        {"secret", required_argument, NULL, OPT_SECRET},
        {"id", required_argument, NULL, OPT_ID},
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
        {0},
    };
    ctl_filter f = {0};
    const char *secret = NULL, *id = "msg_outboxctl_sample";
    int64_t ts = c->now_ms / 1000;
    int opt, rc;
    while ((opt = ctl_next_option(c, argc, argv, ":h", opts, &f, &rc)) >= 0) {
        switch (opt) {
        case OPT_SECRET:
            secret = optarg;
            continue;
        case OPT_ID:
            id = optarg;
            continue;
        case OPT_TIMESTAMP: {
            uint64_t t;
            if (ctl_parse_u64(optarg, &t) || t > (uint64_t)INT64_MAX)
                return ctl_usage_error(argv[0], "--timestamp: \"%s\" is not Unix seconds", optarg);
            ts = (int64_t)t;
            continue;
        }
        }
        return ctl_bad_option(argv[0], '?', argv);
    }
    if (opt == CTL_OPTS_RETURN)
        return rc;
    if (!secret)
        secret = getenv("OUTBOX_SIGNING_SECRET");
    if (!secret || !*secret)
        return ctl_usage_error(argv[0], "give the sink's signing secret with --secret S (or "
                                        "$OUTBOX_SIGNING_SECRET, which stays out of ps)");
    if (argc - optind > 1)
        return ctl_usage_error(argv[0], "one body file (got \"%s\" too)", argv[optind + 1]);
    const char *path = optind < argc ? argv[optind] : "-";
    size_t len = 0;
    char *body = ctl_read_file(path, &len);
    if (!body)
        return CTL_EXIT_ERROR;
    char flipt[DLV_FLIPT_SIG_HEX_LEN + 1], std[DLV_STANDARD_TOKEN_LEN + 16], tsbuf[32];
    char why[DLV_ERRMSG_MAX];
    snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
    int fr = DLV_OK, sr = dlv_signing_secret_check(secret, 1, why, sizeof why);
    if (sr == DLV_OK)
        fr = dlv_sign_flipt(secret, strlen(secret), body, len, flipt);
    if (sr == DLV_OK && fr == DLV_OK)
        sr = dlv_sign_standard(secret, id, ts, body, len, std, sizeof std);
    if (fr != DLV_OK || sr != DLV_OK) {
        if (fr == DLV_OK && sr == DLV_ERR_INVALID)
            ctl_err("--secret: %s", why);
        else
            ctl_err("signing failed: %s", dlv_strerror(fr != DLV_OK ? fr : sr));
        rc = CTL_EXIT_ERROR;
    } else if (f.json) {
        json_t *o = json_object();
        json_object_set_new(o, "x-flipt-webhook-signature", json_string(flipt));
        json_object_set_new(o, "webhook-id", json_string(id));
        json_object_set_new(o, "webhook-timestamp", json_string(tsbuf));
        json_object_set_new(o, "webhook-signature", json_string(std));
        json_object_set_new(o, "body_bytes", json_integer((json_int_t)len));
        ctl_json_print(o, stdout);
        rc = CTL_EXIT_OK;
    } else {
        printf("X-Flipt-Webhook-Signature: %s\n", flipt);
        printf("webhook-id: %s\n", id);
        printf("webhook-timestamp: %s\n", tsbuf);
        printf("webhook-signature: %s\n", std);
        rc = CTL_EXIT_OK;
    }
    free(body);
    return rc;
}
