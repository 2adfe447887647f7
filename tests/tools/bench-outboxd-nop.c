/*
 * bench-outboxd-nop.c - no-op libmicrohttpd servers for the outboxd ingest benchmark: each
 * reads a POST body and answers 202 {"id":"1"} at once, storing nothing. They measure what
 * the server library costs by itself, in two setups:
 *   tpc   (default) built like outboxd's thread-per-connection listener: internal polling
 *         thread, one thread per connection, poll. Also the benchmark's fast receiver.
 *   best  MHD in its fastest mode: MHD_USE_EPOLL_INTERNAL_THREAD with a thread pool of one
 *         thread per CPU, MHD_USE_TURBO, no suspend/resume.
 *
 * usage: bench-outboxd-nop [tpc|best]   (binds 127.0.0.1 on a free port, prints the port on
 *                                        stdout, runs until stdin reaches EOF or SIGTERM)
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char marker;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    if (!*con_cls) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*size) {
        *size = 0; /* consume the body */
        return MHD_YES;
    }
    static const char body[] = "{\"id\":\"1\"}\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_ACCEPTED, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    int best = argc > 1 && strcmp(argv[1], "best") == 0;
    if (argc > 1 && !best && strcmp(argv[1], "tpc") != 0) {
        fprintf(stderr, "usage: bench-outboxd-nop [tpc|best]\n");
        return 2;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    unsigned flags =
        best ? MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO
             : MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        best ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned)(cpus > 0 ? cpus : 1),
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench-outboxd-nop: cannot start the server\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", (unsigned)info->port);
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) /* until the driver closes our stdin */
        ;
    MHD_stop_daemon(d);
    return 0;
}
