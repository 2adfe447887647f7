/*
 * outboxctl-fill.c - test helper for the outboxctl tests: builds a store with deliveries
 * in every state through the public API (as the owner, playing the scheduler), or damages
 * one delivery record with plain LMDB.
 *
 *   outboxctl-fill fill DIR [EXTRA_DEAD]   prints {"ev":[id1..id5],"extra":[...]}
 *   outboxctl-fill corrupt DIR EVENT SINK  flips a byte in that delivery's record
 *   outboxctl-fill hold DIR                holds the owner lock (prints "ready") until
 *                                          stdin closes, like a running daemon
 *   outboxctl-fill enqueue DIR N [SINK]    N more flag:created events, pending (for the
 *                                          daemon tests); prints the ids as JSON
 *
 * The "fill" layout (sinks: webhook = 1, slack = 2; received 10h..5h ago):
 *   ev1 flag:created     webhook delivered (200)          slack dead (500, 2 attempts)
 *   ev2 segment:created  webhook dead (connection refused) slack pending, never tried
 *   ev3 flag:updated     webhook pending, 1 attempt (503), next in 1h; slack delivered (204)
 *   ev4 flag:deleted     webhook in flight (claimed, no result)
 *   ev5 token:created    webhook pending; the body is not JSON
 *   extra               token:deleted, webhook dead
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox/outbox.h"

static void die(const char *what, int rc, const obx_error *err)
{
    fprintf(stderr, "outboxctl-fill: %s: %s (%s)\n", what, obx_strerror(rc), err ? err->msg : "");
    exit(1);
}

static const char *read_fixture(const char *name, char *buf, size_t cap)
{
    const char *dir = getenv("OUTBOX_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/events/%s", dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "outboxctl-fill: %s: cannot open\n", path);
        exit(1);
    }
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}

static obx_store *open_owner(const char *dir)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_store *s;
    obx_error err = {0};
    int rc = obx_open(dir, &o, &s, &err);
    if (rc)
        die("open", rc, &err);
    return s;
}

static obx_result result(const obx_job *j, int outcome, int status, const char *error, int64_t now)
{
    obx_result r = {0};
    r.event_id = j->event_id;
    r.sink_id = j->sink_id;
    r.outcome = outcome;
    r.started_ms = now - 200;
    r.duration_ms = 120;
    r.status = status;
    r.error = error;
    r.first_attempt_ms = j->first_attempt_ms ? j->first_attempt_ms : r.started_ms;
    r.deadline_ms = j->deadline_ms ? j->deadline_ms : r.started_ms + 15000;
    return r;
}

static void record1(obx_store *s, obx_result r)
{
    obx_error err = {0};
    int rc = obx_record(s, &r, 1, &err);
    if (rc)
        die("record", rc, &err);
}

static int fill(const char *dir, int extra)
{
    obx_store *s = open_owner(dir);
    obx_error err = {0};
    int rc;
    uint32_t wh, sl;
    if ((rc = obx_sink_id(s, "webhook", &wh, &err)) || (rc = obx_sink_id(s, "slack", &sl, &err)))
        die("sink", rc, &err);
    int64_t now = obx_now_ms(), hour = 3600000;
    static char b1[4096], b2[4096], b3[4096], b4[4096];
    read_fixture("flag-created.json", b1, sizeof b1);
    read_fixture("segment-created.json", b2, sizeof b2);
    read_fixture("flag-updated-v01.json", b3, sizeof b3);
    snprintf(b4, sizeof b4,
             "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"deleted\",\"metadata\":"
             "{\"actor\":{}},\"payload\":{\"key\":\"gone\",\"namespace_key\":\"default\"},"
             "\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}");
    static const char b5[] = "not json \x01\x02 victim-binary";
    uint32_t both[2] = {wh, sl};
    obx_event_in in[5] = {
        {"flag", "created", b1, strlen(b1), now - 10 * hour, both, 2},
        {"segment", "created", b2, strlen(b2), now - 9 * hour, both, 2},
        {"flag", "updated", b3, strlen(b3), now - 8 * hour, both, 2},
        {"flag", "deleted", b4, strlen(b4), now - 7 * hour, &wh, 1},
        {"token", "created", b5, sizeof b5 - 1, now - 6 * hour, &wh, 1},
    };
    uint64_t ids[5];
    if ((rc = obx_enqueue(s, in, 5, ids, &err)))
        die("enqueue", rc, &err);
    uint64_t *xids = calloc((size_t)extra + 1, sizeof *xids);
    for (int i = 0; i < extra; i++) {
        char b[256];
        snprintf(b, sizeof b,
                 "{\"version\":\"0.2\",\"type\":\"token\",\"action\":\"deleted\",\"n\":%d}", i);
        obx_event_in e = {"token", "deleted", b, strlen(b), now - 5 * hour + i, &wh, 1};
        if ((rc = obx_enqueue(s, &e, 1, &xids[i], &err)))
            die("enqueue extra", rc, &err);
    }

    /* webhook: play the scheduler once. */
    obx_job *jobs;
    size_t n;
    if ((rc = obx_claim_due(s, wh, obx_now_ms() + 1, 100000, &jobs, &n, NULL, &err)))
        die("claim", rc, &err);
    for (size_t i = 0; i < n; i++) {
        const obx_job *j = &jobs[i];
        obx_result r;
        if (j->event_id == ids[0]) {
            r = result(j, OBX_OUTCOME_DELIVERED, 200, NULL, now);
        } else if (j->event_id == ids[1]) {
            r = result(j, OBX_OUTCOME_DEAD, 0, "connection refused", now);
            r.reason = "connection refused; gave up after 1 attempt (max_backoff_duration 15s)";
        } else if (j->event_id == ids[2]) {
            r = result(j, OBX_OUTCOME_RETRY, 503, NULL, now);
            r.next_attempt_ms = now + hour;
            r.deadline_ms = now + 2 * hour;
        } else if (j->event_id == ids[3]) {
            continue; /* stays in flight */
        } else if (j->event_id == ids[4]) {
            r = result(j, OBX_OUTCOME_RELEASE, 0, NULL, now);
        } else {
            r = result(j, OBX_OUTCOME_DEAD, 410, NULL, now);
            r.reason = "HTTP 410 (dead-letter status)";
        }
        record1(s, r);
    }
    obx_jobs_free(jobs, n);

    /* slack: ev1 fails twice then dies; ev3 is delivered; ev2 is left alone. */
    for (int round = 0; round < 2; round++) {
        if ((rc = obx_claim_due(s, sl, obx_now_ms() + 1, 100, &jobs, &n, NULL, &err)))
            die("claim", rc, &err);
        for (size_t i = 0; i < n; i++) {
            const obx_job *j = &jobs[i];
            obx_result r;
            if (j->event_id == ids[0] && round == 0) {
                r = result(j, OBX_OUTCOME_RETRY, 500, "Internal Server Error", now);
                r.next_attempt_ms = now - 1;
            } else if (j->event_id == ids[0]) {
                r = result(j, OBX_OUTCOME_DEAD, 500, "Internal Server Error", now);
                r.reason = "HTTP 500 after 2 attempts; max_backoff_duration 15s elapsed";
            } else if (j->event_id == ids[2]) {
                r = result(j, OBX_OUTCOME_DELIVERED, 204, NULL, now);
            } else {
                r = result(j, OBX_OUTCOME_RELEASE, 0, NULL, now);
            }
            record1(s, r);
        }
        obx_jobs_free(jobs, n);
    }
    obx_close(s);
    printf("{\"ev\":[%llu,%llu,%llu,%llu,%llu],\"extra\":[", (unsigned long long)ids[0],
           (unsigned long long)ids[1], (unsigned long long)ids[2], (unsigned long long)ids[3],
           (unsigned long long)ids[4]);
    for (int i = 0; i < extra; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)xids[i]);
    printf("]}\n");
    free(xids);
    return 0;
}

static int enqueue_more(const char *dir, int count, const char *sink)
{
    obx_store *s = open_owner(dir);
    obx_error err = {0};
    int rc;
    uint32_t id;
    if ((rc = obx_sink_id(s, sink, &id, &err)))
        die("sink", rc, &err);
    printf("[");
    /* In batches: one commit (one sync) per 500 events. */
    static char bodies[500][128];
    obx_event_in batch[500];
    uint64_t ids[500];
    for (int done = 0; done < count;) {
        int n = count - done < 500 ? count - done : 500;
        for (int i = 0; i < n; i++) {
            snprintf(bodies[i], sizeof bodies[i],
                     "{\"version\":\"0.2\",\"type\":\"flag\",\"action\":\"created\",\"seq\":%d}",
                     done + i);
            batch[i] = (obx_event_in){"flag", "created", bodies[i], strlen(bodies[i]), 0, &id, 1};
        }
        if ((rc = obx_enqueue(s, batch, (size_t)n, ids, &err)))
            die("enqueue", rc, &err);
        for (int i = 0; i < n; i++)
            printf("%s%llu", done + i ? "," : "", (unsigned long long)ids[i]);
        done += n;
    }
    printf("]\n");
    obx_close(s);
    return 0;
}

/* Flip the last byte of the (event, sink) delivery record, as test-store.c does. */
static int corrupt(const char *dir, uint64_t ev, uint32_t sink)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 12) || mdb_env_open(env, dir, 0, 0600) ||
        mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "deliveries", 0, &dbi)) {
        fprintf(stderr, "outboxctl-fill: cannot open %s with LMDB\n", dir);
        return 1;
    }
    unsigned char k[12] = {0};
    for (int i = 7; i >= 0; i--)
        k[i] = (unsigned char)(ev >> (8 * (7 - i)));
    for (int i = 0; i < 4; i++)
        k[8 + i] = (unsigned char)(sink >> (8 * (3 - i)));
    MDB_val key = {12, k}, val;
    if (mdb_get(txn, dbi, &key, &val)) {
        fprintf(stderr, "outboxctl-fill: no delivery %llu/%u\n", (unsigned long long)ev, sink);
        return 1;
    }
    unsigned char *copy = malloc(val.mv_size);
    memcpy(copy, val.mv_data, val.mv_size);
    copy[val.mv_size - 1] ^= 0x5a;
    MDB_val nv = {val.mv_size, copy};
    int rc = mdb_put(txn, dbi, &key, &nv, 0) || mdb_txn_commit(txn);
    mdb_env_close(env);
    free(copy);
    return rc ? 1 : 0;
}

static int hold(const char *dir)
{
    obx_store *s = open_owner(dir);
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    obx_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return hold(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "fill") == 0)
        return fill(argv[2], argc > 3 ? (int)strtol(argv[3], NULL, 10) : 0);
    if (argc >= 4 && strcmp(argv[1], "enqueue") == 0)
        return enqueue_more(argv[2], (int)strtol(argv[3], NULL, 10),
                            argc > 4 ? argv[4] : "webhook");
    if (argc == 5 && strcmp(argv[1], "corrupt") == 0)
        return corrupt(argv[2], strtoull(argv[3], NULL, 10), (uint32_t)strtoul(argv[4], NULL, 10));
    fprintf(stderr, "usage: outboxctl-fill fill DIR [EXTRA_DEAD] | enqueue DIR N [SINK] | "
                    "corrupt DIR EVENT SINK | hold DIR\n");
    return 2;
}
