/*
 * bench-engine.c - delivery throughput: a store pre-filled with N pending deliveries
 * (default 100,000; 271-byte Flipt events, one URL sink) drained by the engine, results
 * committed, to nginx (one worker, answering 200; started here, tests/common/test-nginx)
 * and, for comparison, to the in-process no-op receiver (tests/common/test-receiver, one
 * poll thread). Rounds alternate between the two so that the shared machine's slow
 * spells hit both alike. Prints per round deliveries/s (counted by the store: committed),
 * the CPU of this process (the engine; with the in-process receiver, it too) and of
 * nginx, and for nginx the engine's threads' shares. Bounded: 60 s per drain (exit 1).
 *
 * Usage: bench-engine [N] [max_in_flight]. Environment: BENCH_RECEIVER nginx|trx|both
 * (default both), BENCH_ROUNDS (default 3), BENCH_RX_THREADS the in-process receiver's
 * threads (default 1; 0 = one per connection), BENCH_SECRET a signing secret (Flipt and
 * Standard Webhooks signatures on every request; default none, as in the figure).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine-fixture.h"
#include "test-nginx.h"

#define BODY FX_BODY

static uint64_t delivered(obx_store *st)
{
    obx_stats *s = NULL;
    obx_error err;
    uint64_t n = 0;
    if (obx_stats_get(st, &s, &err) == OBX_OK) {
        for (size_t i = 0; i < s->n_sinks; i++)
            n += s->sinks[i].delivered;
        obx_stats_free(s);
    }
    return n;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* CPU seconds of this process's engine and store threads (dlv-*, obx-*), by name. */
enum { THREADS_MAX = 8 };
typedef struct thread_cpu {
    char name[THREADS_MAX][20];
    double s[THREADS_MAX];
    int n;
} thread_cpu;

static void threads_cpu(thread_cpu *t)
{
    memset(t, 0, sizeof *t);
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    double hz = (double)sysconf(_SC_CLK_TCK);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = 0;
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (!open || !close ||
            sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) !=
                2)
            continue;
        char name[20];
        snprintf(name, sizeof name, "%.*s", (int)(close - open - 1), open + 1);
        if (strncmp(name, "dlv-", 4) != 0 && strncmp(name, "obx-", 4) != 0)
            continue; /* this thread, the receiver's */
        int k = 0;
        while (k < t->n && strcmp(t->name[k], name) != 0)
            k++;
        if (k == t->n) {
            if (t->n == THREADS_MAX)
                continue;
            snprintf(t->name[t->n++], sizeof t->name[0], "%s", name);
        }
        t->s[k] += (double)(ut + st) / hz;
    }
    if (d)
        closedir(d);
}

typedef struct run_figs {
    double rate;
    double ours_user, ours_sys; /* this process */
    double rx_user, rx_sys;     /* nginx (0 for the in-process receiver) */
    uint64_t commits, results;
    thread_cpu threads;     /* at the end of the drain, the engine's and store's threads */
    double cores_s, busy_s; /* the whole machine: CPU seconds there were, and were used */
    int ok;
} run_figs;

/* CPU seconds of the whole machine so far (/proc/stat): all, and all but idle and iowait. */
static void machine_cpu(double *total_s, double *busy_s)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]) != 8)
        memset(v, 0, sizeof v);
    if (f)
        fclose(f);
    double hz = (double)sysconf(_SC_CLK_TCK), all = 0;
    for (int i = 0; i < 8; i++)
        all += (double)v[i];
    *total_s = all / hz;
    *busy_s = (all - (double)v[3] - (double)v[4]) / hz;
}

/* Fill a new store with n deliveries and drain it to url; 0 when all were delivered. */
static int drain(size_t n, unsigned limit, const char *url, tngx *ngx, run_figs *f)
{
    memset(f, 0, sizeof *f);
    char *dir = tmpdir_new("bench-engine");
    obx_store *st = dir ? fx_open_store(dir) : NULL;
    dlv_engine *eng = NULL;
    dlv_sink_config sc;
    fx_sink(&sc, "bench", url);
    sc.max_in_flight = limit;
    sc.backoff.max_elapsed_ms = 15000;
    const char *secret = getenv("BENCH_SECRET");
    if (secret && *secret) {
        sc.secrets = calloc(1, sizeof *sc.secrets);
        sc.secrets[0] = strdup(secret);
        sc.n_secrets = 1;
        sc.signature = DLV_SIG_FLIPT | DLV_SIG_STANDARD;
    }
    uint32_t sink = 0;
    obx_error oe;
    if (!st || obx_sink_id(st, "bench", &sink, &oe) != OBX_OK) {
        fprintf(stderr, "store: %s\n", st ? oe.msg : "cannot open");
        goto out;
    }
    enum { BATCH = 1000 };
    static obx_event_in evs[BATCH];
    static uint64_t ids[BATCH];
    for (size_t i = 0; i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        for (size_t j = 0; j < k; j++)
            evs[j] = (obx_event_in){"flag", "created", BODY, strlen(BODY), 0, &sink, 1};
        if (obx_enqueue(st, evs, k, ids, &oe) != OBX_OK) {
            fprintf(stderr, "enqueue: %s\n", oe.msg);
            goto out;
        }
    }
    dlv_engine_options o;
    dlv_engine_options_init(&o);
    dlv_error derr;
    if (dlv_engine_new(st, &sc, 1, &o, &eng, &derr) != DLV_OK) {
        fprintf(stderr, "engine: %s\n", derr.msg);
        goto out;
    }
    struct rusage r0, r1;
    double nu0 = 0, ns0 = 0, nu1 = 0, ns1 = 0, mt0, mb0, mt1, mb1;
    if (ngx)
        tngx_cpu(ngx, &nu0, &ns0);
    getrusage(RUSAGE_SELF, &r0);
    machine_cpu(&mt0, &mb0);
    int64_t t0 = trx_mono_ms();
    if (dlv_engine_start(eng, &derr) != DLV_OK) {
        fprintf(stderr, "engine start: %s\n", derr.msg);
        goto out;
    }
    uint64_t got = 0;
    while ((got = delivered(st)) < n && trx_mono_ms() - t0 < 60000)
        fx_sleep_ms(5);
    int64_t took = trx_mono_ms() - t0;
    getrusage(RUSAGE_SELF, &r1);
    machine_cpu(&mt1, &mb1);
    f->cores_s = mt1 - mt0;
    f->busy_s = mb1 - mb0;
    threads_cpu(&f->threads);
    if (ngx)
        tngx_cpu(ngx, &nu1, &ns1);
    dlv_engine_stop(eng, 1000);
    f->rate = took ? got * 1000.0 / (double)took : 0.0;
    f->ours_user = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
    f->ours_sys = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
    f->rx_user = nu1 - nu0;
    f->rx_sys = ns1 - ns0;
    dlv_metrics m;
    if (dlv_engine_metrics(eng, &m) == 0) {
        f->commits = m.commits;
        f->results = m.results_committed;
        if (m.sinks[0].retried || m.sinks[0].dead)
            fprintf(stderr, "retried %" PRIu64 ", dead %" PRIu64 "\n", m.sinks[0].retried,
                    m.sinks[0].dead);
        dlv_metrics_free(&m);
    }
    f->ok = got == n;
    if (!f->ok)
        fprintf(stderr, "delivered %" PRIu64 " of %zu within 60 s\n", got, n);
out:
    dlv_engine_free(eng);
    obx_close(st);
    dlv_sink_config_clear(&sc);
    fx_remove_store(dir);
    return f->ok ? 0 : 1;
}

static void print_run(const char *rx, int round, const run_figs *f, size_t n)
{
    double ours = f->ours_user + f->ours_sys, theirs = f->rx_user + f->rx_sys;
    double others = f->busy_s - ours - theirs, all = f->cores_s > 0 ? f->cores_s : 1;
    printf("%-7s %5d %13.0f %9" PRIu64 " %8.1f %7.2f/%-6.2f %7.2f/%-6.2f %9.1f %9.1f %5.0f%% "
           "%5.0f%% %5.0f%% %5.0f%%\n",
           rx, round, f->rate, f->commits,
           f->commits ? (double)f->results / (double)f->commits : 0.0, f->ours_user, f->ours_sys,
           f->rx_user, f->rx_sys, ours * 1e6 / (double)n, theirs * 1e6 / (double)n,
           100 * ours / all, 100 * theirs / all, 100 * (others > 0 ? others : 0) / all,
           100 * (all - f->busy_s) / all);
}

static void load_avg(char *out, size_t len)
{
    double l[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
        l[0] = -1;
    if (f)
        fclose(f);
    snprintf(out, len, "%.2f %.2f %.2f", l[0], l[1], l[2]);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    unsigned limit = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 128;
    const char *which = getenv("BENCH_RECEIVER") ? getenv("BENCH_RECEIVER") : "both";
    int rounds = getenv("BENCH_ROUNDS") ? atoi(getenv("BENCH_ROUNDS")) : 3;
    int use_ngx = strcmp(which, "trx") != 0, use_trx = strcmp(which, "nginx") != 0;
    int rc = 1;
    char err[256] = "";
    trx *rx = NULL;
    tngx *ngx = NULL;
    trx_options ro = {.threads = (unsigned)(getenv("BENCH_RX_THREADS")
                                                ? strtoul(getenv("BENCH_RX_THREADS"), NULL, 10)
                                                : 1),
                      .no_record = 1};
    if (use_trx && trx_start(&ro, &rx, err, sizeof err) != 0) {
        fprintf(stderr, "receiver: %s\n", err);
        goto out;
    }
    if (use_ngx && tngx_start(&ngx, err, sizeof err) != 0) {
        fprintf(stderr, "nginx: %s\n", err);
        goto out;
    }
    char load[64];
    load_avg(load, sizeof load);
    printf("# engine throughput: %zu pending deliveries drained per round (271-byte events, "
           "results committed), max_in_flight %u, %s; load average %s at start\n",
           n, limit, getenv("BENCH_SECRET") ? "signed" : "unsigned", load);
    printf("# CPU: 'ours' is this process (the engine, and the in-process receiver in the trx "
           "rows), 'rx' nginx's master+worker; then the shares of the machine's %ld cores "
           "during the drain: ours, rx, other processes, idle\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-7s %5s %13s %9s %8s %14s %14s %9s %9s %6s %6s %6s %6s\n", "to", "round",
           "deliveries/s", "commits", "per", "ours usr/sys s", "rx usr/sys s", "ours us/d",
           "rx us/d", "ours", "rx", "others", "idle");
    double sum[2] = {0, 0}, cpu[2] = {0, 0};
    run_figs last_ngx = {0};
    rc = 0;
    for (int k = 0; k < rounds; k++) {
        for (int i = 0; i < 2; i++) {
            if ((i == 0 && !use_ngx) || (i == 1 && !use_trx))
                continue;
            run_figs f;
            const char *url = i == 0 ? tngx_url(ngx, "/hook") : trx_url(rx, "/hook");
            rc |= drain(n, limit, url, i == 0 ? ngx : NULL, &f);
            print_run(i == 0 ? "nginx" : "trx", k + 1, &f, n);
            fflush(stdout);
            sum[i] += f.rate / rounds;
            cpu[i] += (f.ours_user + f.ours_sys) * 1e6 / (double)n / rounds;
            if (i == 0)
                last_ngx = f;
        }
    }
    load_avg(load, sizeof load);
    if (use_ngx) {
        printf("nginx: %.0f deliveries/s (mean of %d), engine CPU %.1f us per delivery; "
               "threads in the last round:",
               sum[0], rounds, cpu[0]);
        for (int t = 0; t < last_ngx.threads.n; t++)
            printf(" %s %.2f s", last_ngx.threads.name[t], last_ngx.threads.s[t]);
        printf("\n");
    }
    if (use_trx)
        printf("trx:   %.0f deliveries/s (mean of %d), process CPU %.1f us per delivery\n", sum[1],
               rounds, cpu[1]);
    printf("# load average %s at the end\n", load);
out:
    tngx_stop(ngx);
    trx_stop(rx);
    return rc;
}
