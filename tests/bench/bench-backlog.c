/*
 * bench-backlog.c - does outbox's cost grow with its backlog? Fills a store with
 * OUTBOX_BACKLOG pending deliveries (default 1,000,000), then measures against it and
 * against a small store, in one run, alternating between the two (three rounds, averaged)
 * so that the shared disk's slow spells hit both alike:
 *   - library enqueue rate (32 producers, full durability, 300-byte events);
 *   - library claim + record rate (the scheduler's store work, 64 per claim);
 *   - obx_open (owner) time and obx_stats_get time;
 *   - outboxd: start-up time (exec to accepting on its port), deliveries/s to a local
 *     no-op receiver while it drains the backlog, resident memory (VmRSS) after that;
 *   - `outboxctl stats` wall time next to the running daemon.
 * Then outboxd draining 100,000 pending deliveries to nginx (one worker, answering 200;
 * started here, tests/common/test-nginx), counted in the store (results committed), with
 * outboxd's and nginx's CPU. Then fan-out, on a new empty store: outboxd with 8 sinks, each a
 * webhook to its own local receiver; 8 keep-alive HTTP clients post events (routed to all 8) for a
 * phase, then the daemon drains what is left: events/s ingested, deliveries/s while ingesting,
 * after it and overall, and every sink's count (sanity only: all 202, every delivery arrived).
 * Prints tables (backlog/empty ratios; fan-out). Bounded: each phase a few seconds, the
 * final drain at most 60 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-common.h"
#include "test-nginx.h"
#include "test-receiver.h"

static char body[301];
static double phase_s = 3;

static obx_store *open_owner(const char *dir, double *secs)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.max_size = 8ull << 30;
    obx_store *s = NULL;
    obx_error err = {0};
    double t0 = bench_now_s();
    if (obx_open(dir, &o, &s, &err) != OBX_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err.msg);
        exit(1);
    }
    if (secs)
        *secs = bench_now_s() - t0;
    return s;
}

#define MAX_SINKS 8

/* The name of sink i, in the store and in the daemon's config alike. */
static const char *sink_name(int i)
{
    static char names[MAX_SINKS][16];
    snprintf(names[i], sizeof names[i], i ? "webhook-%d" : "webhook", i + 1);
    return names[i];
}

/* Store n events routed to sink 0 (the daemon phases' one sink). */
static void fill(const char *dir, long n)
{
    obx_store *s = open_owner(dir, NULL);
    uint32_t sink;
    obx_sink_id(s, sink_name(0), &sink, NULL);
    enum { B = 1000 };
    static obx_event_in evs[B];
    static uint64_t ids[B];
    for (int i = 0; i < B; i++)
        evs[i] = (obx_event_in){"flag", "created", body, 300, 0, &sink, 1};
    double t0 = bench_now_s();
    for (long done = 0; done < n; done += B) {
        obx_error err;
        if (obx_enqueue(s, evs, (size_t)(n - done < B ? n - done : B), ids, &err) != OBX_OK) {
            fprintf(stderr, "fill: %s\n", err.msg);
            exit(1);
        }
    }
    printf("# filled %ld pending deliveries in %.1f s\n", n, bench_now_s() - t0);
    obx_close(s);
}

static double enqueue_rate(obx_store *s, uint32_t sink, double secs)
{
    return bench_enqueue_rate(s, &sink, 1, 32, secs);
}

/* Claim and record (as delivered) 64 at a time for `secs` or until nothing is due; adds
 * the deliveries and the seconds taken to *done_total and *secs_total. */
static void claim_run(obx_store *s, uint32_t sink, double secs, double *done_total,
                      double *secs_total)
{
    uint64_t done = 0;
    double t0 = bench_now_s(), t;
    obx_result r[64];
    do {
        obx_job *jobs;
        size_t n;
        if (obx_claim_due(s, sink, obx_now_ms(), 64, &jobs, &n, NULL, NULL) != OBX_OK || !n)
            break;
        for (size_t i = 0; i < n; i++)
            r[i] = (obx_result){.event_id = jobs[i].event_id,
                                .sink_id = sink,
                                .outcome = OBX_OUTCOME_DELIVERED,
                                .started_ms = obx_now_ms(),
                                .status = 200};
        obx_record(s, r, n, NULL);
        obx_jobs_free(jobs, n);
        done += n;
        t = bench_now_s();
    } while (t - t0 < secs);
    *done_total += (double)done;
    *secs_total += bench_now_s() - t0;
}

typedef struct lib_figs {
    double open_s, stats_s, enqueue, claim;
} lib_figs;

#define ROUNDS 3

/*
 * The library figures of the empty store (e) and the backlog store (b), opened side by
 * side. Rates are measured in alternating slices (empty, backlog, empty, ...) and
 * averaged, so that the shared disk's slow spells hit both alike.
 */
static void lib_phases(const char *empty, const char *full, lib_figs *e, lib_figs *b)
{
    const char *dirs[2] = {empty, full};
    lib_figs *figs[2] = {e, b};
    obx_store *s[2];
    uint32_t sink[2];
    for (int i = 0; i < 2; i++) {
        *figs[i] = (lib_figs){0};
        s[i] = open_owner(dirs[i], &figs[i]->open_s);
        obx_sink_id(s[i], sink_name(0), &sink[i], NULL);
        double t0 = bench_now_s();
        obx_stats *st;
        obx_stats_get(s[i], &st, NULL);
        figs[i]->stats_s = bench_now_s() - t0;
        obx_stats_free(st);
    }
    double slice = phase_s / ROUNDS;
    for (int k = 0; k < ROUNDS; k++)
        for (int i = 0; i < 2; i++)
            figs[i]->enqueue += enqueue_rate(s[i], sink[i], slice) / ROUNDS;
    double done[2] = {0, 0}, secs[2] = {0, 0};
    for (int k = 0; k < ROUNDS; k++)
        for (int i = 0; i < 2; i++)
            claim_run(s[i], sink[i], slice, &done[i], &secs[i]);
    for (int i = 0; i < 2; i++)
        figs[i]->claim = secs[i] > 0 ? done[i] / secs[i] : 0;
    for (int i = 0; i < 2; i++)
        obx_close(s[i]);
}

/* A "Name:   N kB" field of /proc/PID/status (VmRSS, RssAnon, RssFile), or -1. */
static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kib = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static int can_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

typedef struct daemon_figs {
    double start_s, deliver_rate, ctl_stats_s;
    long rss_kib, anon_kib; /* resident; of it, anonymous (not file-backed map pages) */
} daemon_figs;

/* A running outboxd on the store at dir, with n_sinks sinks, each a webhook to its own
 * receiver (started here too). */
typedef struct outboxd_proc {
    pid_t pid;
    uint16_t port;
    int n_sinks;
    trx *rx[MAX_SINKS];
    char cfg[600];
    double start_s; /* exec to accepting on its port */
} outboxd_proc;

/* As daemon_start; with url, one sink posting there (no receiver of ours is started). */
static void daemon_start_to(outboxd_proc *d, const char *dir, const char *build, int n_sinks,
                            const char *url)
{
    trx_options ro = {.threads = n_sinks > 1 ? 1 : 2, .no_record = 1};
    char err[256];
    d->n_sinks = url ? 0 : n_sinks;
    for (int i = 0; i < d->n_sinks; i++)
        if (trx_start(&ro, &d->rx[i], err, sizeof err) != 0) {
            fprintf(stderr, "receiver: %s\n", err);
            exit(1);
        }
    d->port = trx_free_port();
    char listen[64];
    snprintf(d->cfg, sizeof d->cfg, "%s.yaml", dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", d->port);
    FILE *c = fopen(d->cfg, "w");
    if (!c) {
        fprintf(stderr, "%s: %s\n", d->cfg, strerror(errno));
        exit(1);
    }
    fprintf(c,
            "outbox:\n  path: %s\n  max_size: 8GiB\n  retention: 24h\n"
            "ingest:\n  listen: %s\nsinks:\n",
            dir, listen);
    for (int i = 0; i < n_sinks; i++)
        fprintf(c, "  - name: %s\n    url: %s\n    max_in_flight: 64\n", sink_name(i),
                url ? url : trx_url(d->rx[i], "/hook"));
    fclose(c);
    char exe[600];
    snprintf(exe, sizeof exe, "%s/tools/outboxd", build);
    double t0 = bench_now_s();
    d->pid = fork();
    if (d->pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2);
        execl(exe, exe, "--config", d->cfg, (char *)NULL);
        _exit(127);
    }
    while (!can_connect(d->port) && bench_now_s() - t0 < 30)
        usleep(1000);
    d->start_s = bench_now_s() - t0;
    if (!can_connect(d->port)) {
        fprintf(stderr, "%s did not accept on port %u within 30 s\n", exe, d->port);
        kill(d->pid, SIGKILL);
        exit(1);
    }
}

static void daemon_start(outboxd_proc *d, const char *dir, const char *build, int n_sinks)
{
    daemon_start_to(d, dir, build, n_sinks, NULL);
}

static void daemon_stop(outboxd_proc *d)
{
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    for (int i = 0; i < d->n_sinks; i++)
        trx_stop(d->rx[i]);
    unlink(d->cfg);
}

/* Requests received by all of d's receivers. */
static size_t received(outboxd_proc *d)
{
    size_t total = 0;
    for (int i = 0; i < d->n_sinks; i++)
        total += trx_count(d->rx[i]);
    return total;
}

/* outboxd with one sink draining the store at dir for a phase. */
static daemon_figs daemon_phase(const char *dir, const char *build, double secs)
{
    daemon_figs f = {0};
    outboxd_proc d;
    daemon_start(&d, dir, build, 1);
    f.start_s = d.start_s;
    size_t before = received(&d);
    double d0 = bench_now_s();
    usleep((useconds_t)(secs * 1e6));
    f.deliver_rate = (double)(received(&d) - before) / (bench_now_s() - d0);
    f.rss_kib = status_kib(d.pid, "VmRSS");
    f.anon_kib = status_kib(d.pid, "RssAnon");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s/tools/outboxctl --data-dir %s stats --json >/dev/null", build,
             dir);
    double s0 = bench_now_s();
    if (system(cmd) != 0)
        fprintf(stderr, "outboxctl stats failed\n");
    f.ctl_stats_s = bench_now_s() - s0;
    daemon_stop(&d);
    return f;
}

/* CPU seconds (user + system) used so far by process pid, or 0. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    unsigned long long ut = 0, st = 0;
    char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Deliveries recorded as delivered, read next to the running daemon. */
static uint64_t store_delivered(obx_store *ro)
{
    obx_stats *st = NULL;
    uint64_t n = 0;
    if (obx_stats_get(ro, &st, NULL) == OBX_OK) {
        for (size_t i = 0; i < st->n_sinks; i++)
            n += st->sinks[i].delivered;
        obx_stats_free(st);
    }
    return n;
}

enum { NGINX_BACKLOG = 100000, NGINX_DRAIN_S = 60 };

/* outboxd draining NGINX_BACKLOG pending deliveries to nginx; prints its figures. 0 when
 * all were delivered in time. */
static int nginx_phase(const char *dir, const char *build)
{
    char err[256];
    tngx *ngx = NULL;
    if (tngx_start(&ngx, err, sizeof err) != 0) {
        fprintf(stderr, "nginx: %s\n", err);
        return 1;
    }
    fill(dir, NGINX_BACKLOG);
    outboxd_proc d;
    daemon_start_to(&d, dir, build, 1, tngx_url(ngx, "/hook"));
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_READONLY;
    obx_store *ro = NULL;
    obx_error oe;
    if (obx_open(dir, &o, &ro, &oe) != OBX_OK) {
        fprintf(stderr, "open %s read-only: %s\n", dir, oe.msg);
        daemon_stop(&d);
        tngx_stop(ngx);
        return 1;
    }
    double nu0, ns0, nu1, ns1, t0 = bench_now_s(), c0 = proc_cpu_s(d.pid);
    tngx_cpu(ngx, &nu0, &ns0);
    uint64_t got;
    while ((got = store_delivered(ro)) < NGINX_BACKLOG && bench_now_s() - t0 < NGINX_DRAIN_S)
        usleep(10000);
    double secs = bench_now_s() - t0, ours = proc_cpu_s(d.pid) - c0;
    tngx_cpu(ngx, &nu1, &ns1);
    obx_close(ro);
    daemon_stop(&d);
    tngx_stop(ngx);
    double theirs = nu1 - nu0 + ns1 - ns0, per = got ? 1e6 / (double)got : 0;
    printf("# outboxd draining %d pending deliveries to nginx (one worker, max_in_flight 64), "
           "counted when committed\n",
           NGINX_BACKLOG);
    printf("%-44s %14.0f\n", "deliveries/s (start to all committed)", (double)got / secs);
    printf("%-44s %14.1f\n", "outboxd CPU us per delivery", ours * per);
    printf("%-44s %14.1f\n", "nginx CPU us per delivery", theirs * per);
    if (got < NGINX_BACKLOG) {
        fprintf(stderr, "FAIL: nginx phase: %llu of %d delivered within %d s\n",
                (unsigned long long)got, NGINX_BACKLOG, NGINX_DRAIN_S);
        return 1;
    }
    return 0;
}

/* One ingest client: POSTs one Flipt event at a time on a keep-alive connection until
 * *stop, counting 202s, other statuses and connection errors (then it reconnects). */
typedef struct poster {
    uint16_t port;
    atomic_int *stop;
    long acked, non202, errors;
} poster;

static const char event_json[] =
    "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"metadata\":{\"actor\":"
    "{\"authentication\":\"none\",\"ip\":\"127.0.0.1\"}},\"payload\":{\"description\":\"\","
    "\"enabled\":true,\"key\":\"my-flag\",\"name\":\"My Flag\",\"namespace_key\":\"default\"},"
    "\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}";

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Send req and read one answer; its status, or -1 on a connection error. *keep is cleared
 * when the server closes the connection after it. */
static int post_once(int fd, const char *req, size_t len, int *keep)
{
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
        return -1;
    char buf[4096];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        ssize_t n = have < sizeof buf - 1 ? recv(fd, buf + have, sizeof buf - 1 - have, 0) : 0;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    long clen = 0;
    *keep = 1;
    for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            clen = strtol(h + 17, NULL, 10);
        else if (strncasecmp(h + 2, "Connection: close", 17) == 0)
            *keep = 0;
    }
    long body_left = clen - (long)(buf + have - (end + 4));
    while (body_left > 0) {
        ssize_t n =
            recv(fd, buf, sizeof buf < (size_t)body_left ? sizeof buf : (size_t)body_left, 0);
        if (n <= 0)
            return -1;
        body_left -= n;
    }
    return status;
}

static void *post_loop(void *arg)
{
    poster *p = arg;
    char req[1024];
    int len = snprintf(req, sizeof req,
                       "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(event_json), event_json);
    int fd = -1;
    while (!atomic_load(p->stop)) {
        if (fd < 0 && (fd = connect_to(p->port)) < 0) {
            p->errors++;
            usleep(10000);
            continue;
        }
        int keep = 0, status = post_once(fd, req, (size_t)len, &keep);
        if (status == 202)
            p->acked++;
        else if (status > 0)
            p->non202++;
        else
            p->errors++;
        if (status < 0 || !keep) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* 8 clients post faster than 8 sinks deliver here, so a backlog builds and both delivery
 * figures (while ingesting, then draining it alone) measure what delivery can do. */
enum { FAN_POSTERS = 8, FAN_DRAIN_S = 60 };

/* The fan-out phase (see the header); prints its table. 0 when every sanity check holds. */
static int fanout_phase(const char *dir, const char *build)
{
    outboxd_proc d;
    daemon_start(&d, dir, build, MAX_SINKS);
    atomic_int stop = 0;
    poster p[FAN_POSTERS];
    pthread_t th[FAN_POSTERS];
    double t0 = bench_now_s();
    for (int i = 0; i < FAN_POSTERS; i++) {
        p[i] = (poster){.port = d.port, .stop = &stop};
        pthread_create(&th[i], NULL, post_loop, &p[i]);
    }
    usleep((useconds_t)(phase_s * 1e6));
    atomic_store(&stop, 1);
    long acked = 0, non202 = 0, errors = 0;
    for (int i = 0; i < FAN_POSTERS; i++) {
        pthread_join(th[i], NULL);
        acked += p[i].acked;
        non202 += p[i].non202;
        errors += p[i].errors;
    }
    double t1 = bench_now_s();
    size_t at_stop = received(&d), want = (size_t)acked * MAX_SINKS;
    while (received(&d) < want && bench_now_s() - t1 < FAN_DRAIN_S)
        usleep(2000);
    double t2 = bench_now_s();
    size_t total = received(&d), lo = SIZE_MAX, hi = 0;
    for (int i = 0; i < MAX_SINKS; i++) {
        size_t n = trx_count(d.rx[i]);
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
    }
    daemon_stop(&d);

    printf("# fan-out: outboxd, %d sinks (one receiver each), %d keep-alive clients posting "
           "for %.0f s, then drained\n",
           MAX_SINKS, FAN_POSTERS, phase_s);
    printf("%-44s %14s\n", "figure", "value");
    printf("%-44s %14.0f\n", "events/s ingested (202)", acked / (t1 - t0));
    printf("%-44s %14.0f\n", "deliveries/s while ingesting (all sinks)", at_stop / (t1 - t0));
    if (t2 - t1 >= 0.5)
        printf("%-44s %14.0f\n", "deliveries/s after ingest stopped (draining)",
               (total - at_stop) / (t2 - t1));
    else /* delivery kept up: too short a window to measure a rate */
        printf("%-44s %14s\n", "deliveries/s after ingest stopped (draining)", "-");
    printf("%-44s %14.0f\n", "deliveries/s overall (first post -> drained)", total / (t2 - t0));
    printf("%-44s %14.2f\n", "drain after ingest stopped s", t2 - t1);
    printf("%-44s %14ld\n", "events acknowledged", acked);
    char range[48];
    snprintf(range, sizeof range, "%zu..%zu", lo, hi);
    printf("%-44s %14s\n", "deliveries received per sink (min..max)", range);
    snprintf(range, sizeof range, "%ld / %ld", non202, errors);
    printf("%-44s %14s\n", "non-202 answers / connection errors", range);

    int ok = 1;
    if (acked == 0 || non202 || errors) {
        fprintf(stderr, "FAIL: fan-out ingest: %ld acknowledged, %ld non-202, %ld errors\n", acked,
                non202, errors);
        ok = 0;
    }
    if (lo < (size_t)acked) {
        fprintf(stderr,
                "FAIL: fan-out: a sink received %zu of %ld acknowledged events within %d s\n", lo,
                acked, FAN_DRAIN_S);
        ok = 0;
    }
    return ok ? 0 : 1;
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    const char *e = getenv("OUTBOX_BACKLOG");
    long backlog = e && *e ? strtol(e, NULL, 10) : 1000000;
    e = getenv("OUTBOX_BENCH_SECONDS");
    if (e && *e)
        phase_s = strtod(e, NULL);
    const char *build = getenv("OUTBOX_BUILD_ROOT");
    if (!build)
        build = "build";
    memset(body, 'x', 300);
    const char *tmp = getenv("TMPDIR");
    char empty[512], full[512], fan[512];
    snprintf(empty, sizeof empty, "%s/outbox-bench-empty-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(full, sizeof full, "%s/outbox-bench-backlog-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(fan, sizeof fan, "%s/outbox-bench-fanout-%d", tmp ? tmp : "/tmp", (int)getpid());

    fill(full, backlog);
    /* Empty store: a sink with a few events so the daemon has something to deliver. */
    fill(empty, 20000);
    lib_figs le, lb;
    lib_phases(empty, full, &le, &lb);
    fill(empty, 250000); /* enough for the daemon to drain in every phase */
    /* Daemon phases alternate too (a restart each slice; the figures are averages, the
     * resident memory the largest seen). */
    daemon_figs de = {0}, db = {0};
    for (int k = 0; k < ROUNDS; k++)
        for (int i = 0; i < 2; i++) {
            daemon_figs f = daemon_phase(i ? full : empty, build, phase_s);
            daemon_figs *t = i ? &db : &de;
            t->start_s += f.start_s / ROUNDS;
            t->deliver_rate += f.deliver_rate / ROUNDS;
            t->ctl_stats_s += f.ctl_stats_s / ROUNDS;
            t->rss_kib = f.rss_kib > t->rss_kib ? f.rss_kib : t->rss_kib;
            t->anon_kib = f.anon_kib > t->anon_kib ? f.anon_kib : t->anon_kib;
        }

    printf("# backlog benchmark: %ld pending deliveries vs a small store (20,000 pending for the "
           "library, 250,000 for the daemon to drain); %d alternating rounds: library slices "
           "of %.1f s, daemon runs of %.0f s\n",
           backlog, ROUNDS, phase_s / ROUNDS, phase_s);
    printf("%-34s %14s %14s %8s\n", "figure", "empty", "backlog", "ratio");
    printf("%-34s %14.0f %14.0f %7.0f%%\n", "library enqueue, 32 producers /s", le.enqueue,
           lb.enqueue, 100 * lb.enqueue / le.enqueue);
    printf("%-34s %14.0f %14.0f %7.0f%%\n", "library claim+record /s", le.claim, lb.claim,
           100 * lb.claim / le.claim);
    printf("%-34s %14.4f %14.4f\n", "obx_open (owner) s", le.open_s, lb.open_s);
    printf("%-34s %14.6f %14.6f\n", "obx_stats_get s", le.stats_s, lb.stats_s);
    printf("%-34s %14.3f %14.3f\n", "outboxd start-up s", de.start_s, db.start_s);
    printf("%-34s %14.0f %14.0f %7.0f%%\n", "outboxd deliveries /s", de.deliver_rate,
           db.deliver_rate, 100 * db.deliver_rate / (de.deliver_rate > 0 ? de.deliver_rate : 1));
    printf("%-34s %14ld %14ld\n", "outboxd RSS KiB", de.rss_kib, db.rss_kib);
    printf("%-34s %14ld %14ld\n", "  of it anonymous (not the map) KiB", de.anon_kib, db.anon_kib);
    printf("%-34s %14.3f %14.3f\n", "outboxctl stats s", de.ctl_stats_s, db.ctl_stats_s);
    fflush(stdout);
    char ngx[512];
    snprintf(ngx, sizeof ngx, "%s/outbox-bench-nginx-%d", tmp ? tmp : "/tmp", (int)getpid());
    int rc = nginx_phase(ngx, build);
    fflush(stdout);
    rc |= fanout_phase(fan, build);
    rm_rf(empty);
    rm_rf(full);
    rm_rf(fan);
    rm_rf(ngx);
    return rc;
}
