/*
 * test-nginx.c - an nginx receiver for benchmarks (see test-nginx.h): config in a temp
 * dir, nginx in the foreground as our child, stopped by its PID.
 */
#include "test-nginx.h"
#include "test-receiver.h" /* trx_free_port, trx_mono_ms */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tngx {
    pid_t pid;
    uint16_t port;
    char dir[256];
    char url[512];
};

static int accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int write_config(const tngx *n, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const char *d = n->dir;
    /* keepalive_requests and keepalive_timeout high: the connections of a run are never
     * closed by nginx, so reconnects do not blur the per-request cost */
    fprintf(f,
            "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n"
            "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n"
            "  server {\n    listen 127.0.0.1:%u;\n"
            "    location / { return 200; }\n  }\n}\n",
            d, d, d, d, d, d, d, n->port);
    return fclose(f);
}

static void remove_dir(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test-nginx: could not remove %s\n", dir);
}

int tngx_start(tngx **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *exe = getenv("NGINX") ? getenv("NGINX") : "/usr/sbin/nginx";
    if (access(exe, X_OK) != 0) {
        snprintf(err, errlen, "%s: %s (install nginx-light)", exe, strerror(errno));
        return -1;
    }
    tngx *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(n->dir, sizeof n->dir, "%s/test-nginx-XXXXXX", tmp);
    char conf[300], log[300];
    if (!mkdtemp(n->dir)) {
        snprintf(err, errlen, "mkdtemp %s: %s", n->dir, strerror(errno));
        free(n);
        return -1;
    }
    /* run as root, nginx's worker is another user: it must reach its temp paths */
    chmod(n->dir, 0755);
    n->port = trx_free_port();
    snprintf(conf, sizeof conf, "%s/nginx.conf", n->dir);
    snprintf(log, sizeof log, "%s/error.log", n->dir);
    if (!n->port || write_config(n, conf) != 0) {
        snprintf(err, errlen, "%s: cannot write the config (port %u)", conf, n->port);
        goto fail;
    }
    n->pid = fork();
    if (n->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        goto fail;
    }
    if (n->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        execl(exe, exe, "-p", n->dir, "-e", log, "-c", conf, (char *)NULL);
        _exit(127);
    }
    int64_t t0 = trx_mono_ms();
    while (!accepts(n->port) && trx_mono_ms() - t0 < 10000) {
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = 0;
            snprintf(err, errlen, "nginx exited at start (see %s)", log);
            goto fail;
        }
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    if (!accepts(n->port)) {
        snprintf(err, errlen, "nginx did not accept on port %u within 10 s", n->port);
        goto fail;
    }
    snprintf(n->url, sizeof n->url, "http://127.0.0.1:%u/", n->port);
    *out = n;
    return 0;
fail:
    tngx_stop(n);
    return -1;
}

void tngx_stop(tngx *n)
{
    if (!n)
        return;
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        int64_t t0 = trx_mono_ms();
        while (waitpid(n->pid, NULL, WNOHANG) != n->pid) {
            if (trx_mono_ms() - t0 > 10000) {
                kill(n->pid, SIGKILL);
                waitpid(n->pid, NULL, 0);
                break;
            }
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
        }
    }
    remove_dir(n->dir);
    free(n);
}

uint16_t tngx_port(const tngx *n)
{
    return n->port;
}

const char *tngx_url(tngx *n, const char *path)
{
    snprintf(n->url, sizeof n->url, "http://127.0.0.1:%u%s", n->port, path ? path : "/");
    return n->url;
}

/* utime and stime of one process, in clock ticks; 0 when it cannot be read. */
static void proc_ticks(pid_t pid, unsigned long long *ut, unsigned long long *st)
{
    char path[64], buf[1024];
    *ut = *st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", ut, st) != 2)
        *ut = *st = 0;
}

void tngx_cpu(const tngx *n, double *user_s, double *sys_s)
{
    unsigned long long ut, st, tu = 0, ts = 0;
    proc_ticks(n->pid, &ut, &st);
    tu += ut;
    ts += st;
    /* the worker: the master's children */
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)n->pid, (int)n->pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    for (char *p = buf, *end; *p; p = end) {
        long child = strtol(p, &end, 10);
        if (end == p)
            break;
        proc_ticks((pid_t)child, &ut, &st);
        tu += ut;
        ts += st;
    }
    double hz = (double)sysconf(_SC_CLK_TCK);
    *user_s = (double)tu / hz;
    *sys_s = (double)ts / hz;
}
