/*
 * bench-backlog.c - does outbox's cost grow with its backlog? Fills a store with
 * OUTBOX_BACKLOG pending deliveries (default 1,000,000), then measures against it and
 * against an empty store, in one run:
 *   - library enqueue rate (32 producers, full durability, 300-byte events);
 *   - library claim + record rate (the scheduler's store work, 64 per claim);
 *   - obx_open (owner) time and obx_stats_get time;
 *   - outboxd: start-up time (exec to accepting on its port), deliveries/s to a local
 *     no-op receiver while it drains the backlog, resident memory (VmRSS) after that;
 *   - `outboxctl stats` wall time next to the running daemon.
 * Then fan-out: outboxd with 8 sinks, each a webhook to its own local receiver, draining
 * events routed to all 8: deliveries/s in total and the slowest and fastest sink's share.
 * Prints a table with the backlog/empty ratios. Bounded: each phase a few seconds.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-common.h"
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

/* Store n events, each routed to sinks 0..n_sinks-1. */
static void fill(const char *dir, long n, int n_sinks)
{
    obx_store *s = open_owner(dir, NULL);
    uint32_t sink[MAX_SINKS];
    for (int i = 0; i < n_sinks; i++)
        obx_sink_id(s, sink_name(i), &sink[i], NULL);
    enum { B = 1000 };
    static obx_event_in evs[B];
    static uint64_t ids[B];
    for (int i = 0; i < B; i++)
        evs[i] = (obx_event_in){"flag", "created", body, 300, 0, NULL, (size_t)n_sinks};
    double t0 = bench_now_s();
    for (long done = 0; done < n; done += B) {
        for (int i = 0; i < B; i++)
            evs[i].sinks = sink;
        obx_error err;
        if (obx_enqueue(s, evs, (size_t)(n - done < B ? n - done : B), ids, &err) != OBX_OK) {
            fprintf(stderr, "fill: %s\n", err.msg);
            exit(1);
        }
    }
    printf("# filled %ld pending deliveries in %.1f s\n", n * n_sinks, bench_now_s() - t0);
    obx_close(s);
}

static double enqueue_rate(obx_store *s, uint32_t sink)
{
    return bench_enqueue_rate(s, &sink, 1, 32, phase_s);
}

static double claim_rate(obx_store *s, uint32_t sink)
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
            r[i] = (obx_result){.event_id = jobs[i].event_id, .sink_id = sink,
                                .outcome = OBX_OUTCOME_DELIVERED, .started_ms = obx_now_ms(),
                                .status = 200};
        obx_record(s, r, n, NULL);
        obx_jobs_free(jobs, n);
        done += n;
        t = bench_now_s();
    } while (t - t0 < phase_s);
    return (double)done / (bench_now_s() - t0);
}

typedef struct lib_figs {
    double open_s, stats_s, enqueue, claim;
} lib_figs;

static lib_figs lib_phase(const char *dir)
{
    lib_figs f;
    obx_store *s = open_owner(dir, &f.open_s);
    uint32_t sink;
    obx_sink_id(s, "webhook", &sink, NULL);
    double t0 = bench_now_s();
    obx_stats *st;
    obx_stats_get(s, &st, NULL);
    f.stats_s = bench_now_s() - t0;
    obx_stats_free(st);
    f.enqueue = enqueue_rate(s, sink);
    f.claim = claim_rate(s, sink);
    obx_close(s);
    return f;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static int can_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(0x7f000001)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

typedef struct daemon_figs {
    double start_s, deliver_rate, ctl_stats_s;
    double min_share, max_share; /* the slowest and fastest sink's share of deliveries */
    long rss_kib;
} daemon_figs;

static size_t received(trx **rx, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += trx_count(rx[i]);
    return total;
}

/* outboxd with n_sinks sinks, each a webhook to its own receiver, on the store at dir. */
static daemon_figs daemon_phase(const char *dir, const char *build, int n_sinks)
{
    daemon_figs f = {0};
    trx_options ro = {.threads = n_sinks > 1 ? 1 : 2, .no_record = 1};
    trx *rx[MAX_SINKS];
    char err[256];
    for (int i = 0; i < n_sinks; i++)
        if (trx_start(&ro, &rx[i], err, sizeof err) != 0) {
            fprintf(stderr, "receiver: %s\n", err);
            exit(1);
        }
    uint16_t port = trx_free_port();
    char cfg[600], listen[64];
    snprintf(cfg, sizeof cfg, "%s.yaml", dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    FILE *c = fopen(cfg, "w");
    fprintf(c,
            "outbox:\n  path: %s\n  max_size: 8GiB\n  retention: 24h\n"
            "ingest:\n  listen: %s\nsinks:\n",
            dir, listen);
    for (int i = 0; i < n_sinks; i++)
        fprintf(c, "  - name: %s\n    url: %s\n    max_in_flight: 64\n", sink_name(i),
                trx_url(rx[i], "/hook"));
    fclose(c);
    char exe[600];
    snprintf(exe, sizeof exe, "%s/tools/outboxd", build);
    double t0 = bench_now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2);
        execl(exe, exe, "--config", cfg, (char *)NULL);
        _exit(127);
    }
    while (!can_connect(port) && bench_now_s() - t0 < 30)
        usleep(1000);
    f.start_s = bench_now_s() - t0;
    size_t before[MAX_SINKS], total0 = received(rx, n_sinks);
    for (int i = 0; i < n_sinks; i++)
        before[i] = trx_count(rx[i]);
    double d0 = bench_now_s();
    usleep((useconds_t)(phase_s * 1e6));
    size_t total = received(rx, n_sinks) - total0;
    f.deliver_rate = (double)total / (bench_now_s() - d0);
    f.min_share = 1;
    for (int i = 0; i < n_sinks; i++) {
        double share = total ? (double)(trx_count(rx[i]) - before[i]) / (double)total : 0;
        f.min_share = share < f.min_share ? share : f.min_share;
        f.max_share = share > f.max_share ? share : f.max_share;
    }
    f.rss_kib = rss_kib(pid);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s/tools/outboxctl --data-dir %s stats --json >/dev/null", build,
             dir);
    double s0 = bench_now_s();
    if (system(cmd) != 0)
        fprintf(stderr, "outboxctl stats failed\n");
    f.ctl_stats_s = bench_now_s() - s0;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < n_sinks; i++)
        trx_stop(rx[i]);
    unlink(cfg);
    return f;
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

    fill(full, backlog, 1);
    /* Empty store: a sink with a few events so the daemon has something to deliver. */
    fill(empty, 20000, 1);
    lib_figs le = lib_phase(empty), lb = lib_phase(full);
    fill(empty, 200000, 1); /* enough for the daemon to drain for the whole phase */
    daemon_figs de = daemon_phase(empty, build, 1), db = daemon_phase(full, build, 1);
    fill(fan, 40000, MAX_SINKS); /* 320,000 deliveries: more than a phase drains */
    daemon_figs df = daemon_phase(fan, build, MAX_SINKS);

    printf("# backlog benchmark: %ld pending deliveries vs an empty store (%.0f s phases)\n",
           backlog, phase_s);
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
    printf("%-34s %14.3f %14.3f\n", "outboxctl stats s", de.ctl_stats_s, db.ctl_stats_s);
    printf("# fan-out: outboxd, %d sinks (one receiver each), events routed to all: %.0f "
           "deliveries/s (%.0f events/s); per-sink share %.1f%%..%.1f%% (even: %.1f%%)\n",
           MAX_SINKS, df.deliver_rate, df.deliver_rate / MAX_SINKS, 100 * df.min_share,
           100 * df.max_share, 100.0 / MAX_SINKS);
    if (df.deliver_rate <= 0 || df.min_share <= 0) {
        fprintf(stderr, "FAIL: a sink received nothing in the fan-out phase\n");
        return 1;
    }
    rm_rf(empty);
    rm_rf(full);
    rm_rf(fan);
    return 0;
}
