/*
 * bench-outboxd-h2o.c - a no-op HTTP server on h2o's own event loop (libh2o-evloop) for the
 * outboxd ingest benchmark: every request's body is read (h2o buffers it before calling the
 * handler) and POST is answered 202 {"id":"1"} at once, storing nothing. It measures what
 * h2o costs by itself beside the no-op libmicrohttpd servers and nginx.
 *
 * usage: bench-outboxd-h2o [THREADS]   (default 1: one event loop, like nginx with one
 *        worker; each thread runs its own loop accepting on the shared listening socket.
 *        Binds 127.0.0.1 on a free port, prints the port on stdout, runs until stdin reaches
 *        EOF or SIGTERM)
 */
#define H2O_USE_LIBUV 0
#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static h2o_globalconf_t config;
static int listen_fd;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")))
        return -1;
    req->res.status = 202;
    req->res.reason = "Accepted";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    static const char body[] = "{\"id\":\"1\"}\n";
    req->res.content_length = sizeof body - 1; /* h2o_send_inline leaves it unset: no keep-alive */
    h2o_send_inline(req, body, sizeof body - 1);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err || !(sock = h2o_evloop_socket_accept(listener)))
        return;
    h2o_accept(listener->data, sock);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx = {.ctx = &ctx, .hosts = config.hosts};
    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    h2o_socket_t *sock = h2o_evloop_socket_create(ctx.loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = &accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench-outboxd-h2o [THREADS 1..64]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(path, sizeof(h2o_handler_t))->on_req = on_req;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(listen_fd, 1024) != 0 || getsockname(listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("bench-outboxd-h2o: listen");
        return 1;
    }
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, loop_thread, NULL) != 0) {
            fprintf(stderr, "bench-outboxd-h2o: cannot start a loop thread\n");
            return 1;
        }
        pthread_detach(t);
    }
    printf("%u\n", (unsigned)ntohs(sa.sin_port));
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) /* until the driver closes our stdin */
        ;
    return 0; /* the loops end with the process */
}
