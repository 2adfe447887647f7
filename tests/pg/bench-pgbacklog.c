/*
 * bench-pgbacklog.c - does the PostgreSQL backend's cost grow with its backlog? Two
 * outboxes in one database (schemas "bench_small" and "bench_big"), filled through the
 * store API in big batches with OUTBOX_PG_SMALL (default 1,000) and OUTBOX_PG_BACKLOG
 * (default 1,000,000) pending deliveries of 300-byte events, then measured in alternating
 * rounds (so the shared machine's slow spells hit both alike), each figure the median of
 * its samples:
 *   - obx_claim_due of 64 (the claim a node runs: reclaim expired leases, claim the
 *     oldest due with SKIP LOCKED), each batch then released back to pending as it was;
 *   - claim + record: claims of 64 each recorded as a failed attempt due again at once
 *     (the scheduler's store work; the backlog keeps its size), per second for 1 s;
 *   - obx_stats_get (counters, oldest pending, size);
 *   - a listing page: the first 50 pending, and the newest 50 of any state;
 *   - `outboxctl --config stats` wall time (a process: connect, prepare, stats).
 * Prints a table with the big/small ratio. Run through pgharness.py (OUTBOX_PG_DSN).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox/outbox.h"
#include "../bench/bench-common.h"

enum { ROUNDS = 5, CLAIMS = 20, STATS = 20, PAGES = 10, CTLS = 3, FILL_BATCH = 5000 };

typedef struct side {
    const char *schema;
    long n;
    obx_store *s;
    uint32_t sink;
    char cfg[256];
    double claim[ROUNDS * CLAIMS], stats[ROUNDS * STATS], page_pending[ROUNDS * PAGES],
        page_newest[ROUNDS * PAGES], ctl[ROUNDS * CTLS], cycle[ROUNDS];
    size_t n_cycle, n_claim, n_stats, n_pp, n_pn, n_ctl;
} side;

static const char *dsn;

static void die(const char *what, const obx_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

static void open_side(side *sd, const char *tmp)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    o.backend = OBX_BACKEND_POSTGRES;
    o.pg_dsn = dsn;
    o.pg_schema = sd->schema;
    o.pg_pool = 2;
    o.max_size = 64ull << 30;
    obx_error err = {0};
    if (obx_open(NULL, &o, &sd->s, &err) != OBX_OK)
        die(sd->schema, &err);
    if (obx_sink_id(sd->s, "hook", &sd->sink, &err) != OBX_OK)
        die("sink", &err);
    snprintf(sd->cfg, sizeof sd->cfg, "%s/%s.yaml", tmp, sd->schema);
    FILE *f = fopen(sd->cfg, "w");
    if (!f) {
        perror(sd->cfg);
        exit(1);
    }
    fprintf(f,
            "outbox:\n  backend: postgres\n  max_size: 64GiB\n  postgres:\n    dsn: \"%s\"\n"
            "    schema: %s\n    pool: 1\ningest:\n  listen: 127.0.0.1:0\nsinks:\n"
            "  - name: hook\n    url: http://127.0.0.1:9/hook\n    events: [\"*:*\"]\n",
            dsn, sd->schema);
    fclose(f);
}

/* Store sd->n events routed to the sink, FILL_BATCH per commit. */
static void fill(side *sd)
{
    static char body[301];
    static obx_event_in evs[FILL_BATCH];
    static uint64_t ids[FILL_BATCH];
    memset(body, 'x', 300);
    for (int i = 0; i < FILL_BATCH; i++)
        evs[i] = (obx_event_in){"flag", "created", body, 300, 0, &sd->sink, 1};
    double t0 = bench_now_s();
    obx_error err = {0};
    for (long done = 0; done < sd->n;) {
        size_t b = (size_t)(sd->n - done < FILL_BATCH ? sd->n - done : FILL_BATCH);
        if (obx_enqueue(sd->s, evs, b, ids, &err) != OBX_OK)
            die("fill", &err);
        done += (long)b;
    }
    double t = bench_now_s() - t0;
    fprintf(stderr, "filled %s with %ld pending in %.1f s (%.0f events/s)\n", sd->schema, sd->n, t,
            sd->n / t);
}

static int count_row(void *ud, const obx_event *ev, const obx_delivery *d)
{
    (void)ev;
    (void)d;
    (*(size_t *)ud)++;
    return 0;
}

static double list_page(side *sd, int state, int newest)
{
    obx_query q;
    obx_query_init(&q);
    q.state = state;
    q.newest_first = newest;
    q.limit = 50;
    size_t rows = 0;
    obx_error err = {0};
    double t0 = bench_now_s();
    if (obx_list(sd->s, &q, count_row, NULL, &rows, &err) != OBX_OK)
        die("list", &err);
    double t = bench_now_s() - t0;
    if (rows != 50) {
        fprintf(stderr, "%s: a listing page had %zu rows, not 50\n", sd->schema, rows);
        exit(1);
    }
    return t;
}

static void round_of(side *sd, const char *build)
{
    obx_error err = {0};
    for (int i = 0; i < CLAIMS; i++) {
        obx_job *jobs = NULL;
        size_t n = 0;
        double t0 = bench_now_s();
        if (obx_claim_due(sd->s, sd->sink, obx_now_ms(), 64, &jobs, &n, NULL, &err) != OBX_OK)
            die("claim", &err);
        sd->claim[sd->n_claim++] = bench_now_s() - t0;
        if (n != 64) {
            fprintf(stderr, "%s: claimed %zu, not 64\n", sd->schema, n);
            exit(1);
        }
        obx_result res[64];
        for (size_t j = 0; j < n; j++)
            res[j] = (obx_result){.event_id = jobs[j].event_id,
                                  .sink_id = jobs[j].sink_id,
                                  .outcome = OBX_OUTCOME_RELEASE};
        if (obx_record(sd->s, res, n, &err) != OBX_OK)
            die("release", &err);
        obx_jobs_free(jobs, n);
    }
    /* claim + record for 1 s: each claimed delivery gets a failed attempt, due again now */
    size_t done = 0;
    double c0 = bench_now_s(), t = 0;
    while ((t = bench_now_s() - c0) < 1.0) {
        obx_job *jobs = NULL;
        size_t n = 0;
        int64_t now = obx_now_ms();
        if (obx_claim_due(sd->s, sd->sink, now, 64, &jobs, &n, NULL, &err) != OBX_OK)
            die("claim", &err);
        obx_result res[64];
        for (size_t j = 0; j < n; j++)
            res[j] = (obx_result){.event_id = jobs[j].event_id,
                                  .sink_id = jobs[j].sink_id,
                                  .outcome = OBX_OUTCOME_RETRY,
                                  .started_ms = now,
                                  .duration_ms = 1,
                                  .status = 503,
                                  .first_attempt_ms = now,
                                  .deadline_ms = now + 3600000,
                                  .next_attempt_ms = now};
        if (n && obx_record(sd->s, res, n, &err) != OBX_OK)
            die("record", &err);
        obx_jobs_free(jobs, n);
        done += n;
    }
    sd->cycle[sd->n_cycle++] = t / (double)done; /* seconds per delivery */
    for (int i = 0; i < STATS; i++) {
        obx_stats *st = NULL;
        double t0 = bench_now_s();
        if (obx_stats_get(sd->s, &st, &err) != OBX_OK)
            die("stats", &err);
        sd->stats[sd->n_stats++] = bench_now_s() - t0;
        uint64_t pending = 0;
        for (size_t j = 0; j < st->n_sinks; j++)
            pending += st->sinks[j].pending;
        if (pending != (uint64_t)sd->n) {
            fprintf(stderr, "%s: stats say %llu pending, not %ld\n", sd->schema,
                    (unsigned long long)pending, sd->n);
            exit(1);
        }
        obx_stats_free(st);
    }
    for (int i = 0; i < PAGES; i++) {
        sd->page_pending[sd->n_pp++] = list_page(sd, OBX_STATE_PENDING, 0);
        sd->page_newest[sd->n_pn++] = list_page(sd, 0, 1);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/tools/outboxctl --config %s stats --json >/dev/null", build,
             sd->cfg);
    for (int i = 0; i < CTLS; i++) {
        double t0 = bench_now_s();
        if (system(cmd) != 0) {
            fprintf(stderr, "%s failed\n", cmd);
            exit(1);
        }
        sd->ctl[sd->n_ctl++] = bench_now_s() - t0;
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, dbl_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void row(const char *name, double *a, size_t na, double *b, size_t nb)
{
    double x = median(a, na) * 1e3, y = median(b, nb) * 1e3;
    printf("%-36s %12.2f %12.2f %8.2fx\n", name, x, y, y / x);
}

int main(void)
{
    dsn = getenv("OUTBOX_PG_DSN");
    const char *build = getenv("OUTBOX_BUILD_ROOT");
    if (!dsn || !build) {
        fprintf(stderr, "run through pgharness.py (OUTBOX_PG_DSN) from meson "
                        "(OUTBOX_BUILD_ROOT)\n");
        return 77;
    }
    const char *e = getenv("OUTBOX_PG_BACKLOG");
    const char *es = getenv("OUTBOX_PG_SMALL");
    static side small = {.schema = "bench_small", .n = 1000},
                big = {.schema = "bench_big", .n = 1000000};
    if (e)
        big.n = atol(e);
    if (es)
        small.n = atol(es);
    char tmp[] = "/tmp/obx-pgbacklog-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    open_side(&small, tmp);
    open_side(&big, tmp);
    fill(&small);
    fill(&big);
    for (int r = 0; r < ROUNDS; r++) {
        round_of(&small, build);
        round_of(&big, build);
    }
    printf("PostgreSQL backend, %ld vs %ld pending (one sink, 300-byte events), median ms\n",
           small.n, big.n);
    printf("%-36s %12s %12s %9s\n", "operation", "small", "backlog", "ratio");
    row("obx_claim_due, 64 (then released)", small.claim, small.n_claim, big.claim, big.n_claim);
    row("claim + record, per delivery", small.cycle, small.n_cycle, big.cycle, big.n_cycle);
    row("obx_stats_get", small.stats, small.n_stats, big.stats, big.n_stats);
    row("list: first 50 pending", small.page_pending, small.n_pp, big.page_pending, big.n_pp);
    row("list: newest 50, any state", small.page_newest, small.n_pn, big.page_newest, big.n_pn);
    row("outboxctl --config stats (process)", small.ctl, small.n_ctl, big.ctl, big.n_ctl);
    obx_close(small.s);
    obx_close(big.s);
    unlink(small.cfg);
    unlink(big.cfg);
    rmdir(tmp);
    return 0;
}
