/*
 * schema.c - the PostgreSQL backend's tables, indexes and counter triggers, created or
 * migrated at open under an advisory lock (any number of nodes may start at once), and
 * the prepared statements every connection gets.
 *
 * Tables (all in the configured schema):
 *   schema_version  the version this database is at; a newer one than the build's is refused
 *   meta            key/value: the store's uid
 *   sinks           the sink registry (id, name)
 *   events          id, received time, type, action, body bytes
 *   deliveries      one per (event, sink): state, due time, lease (owner node, expiry),
 *                   attempts, budget start and deadline, last status/error, reason,
 *                   replays, the last attempts as a jsonb array
 *   counters        per sink and state (and in doubt), kept by statement-level triggers in
 *                   the same transaction as the rows, so stats never count the backlog;
 *                   sink 0 holds the events stored and ever enqueued, and the
 *                   idempotency keys stored
 * Indexes: due per sink (state pending), pending per sink by event, leases per sink
 * (in flight), delivered and dead by time, state and event for listings.
 * Version 2 adds:
 *   idem_keys       idempotency keys (idem.c): key, expiry, request hash, the ids stored
 *                   and the caller's note; indexed by expiry for the sweep
 *   sink_state      a sink's health (sinkstate.c): down, paused, since when, why, time held
 *
 * Each version's DDL runs once, in the transaction that records the version, so a node
 * that starts while another migrates waits for the advisory lock and finds it done.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counters are split in shards by the writing session, so that concurrent transactions
 * (several nodes, several pooled connections) rarely wait for each other's counter row
 * until commit; readers sum the shards. */
#define SHARD "(pg_backend_pid() % 16)"

/* Counter kinds beyond the obx_state values 1..4. */
#define K_IN_DOUBT 5
#define K_EVENTS   10
#define K_ENQUEUED 11

/* Version 1, in pieces (C compilers need not take longer strings than 4095 bytes). */
static const char *const ddl_v1[] = {
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO meta VALUES ('uid', replace(gen_random_uuid()::text, '-', ''));"
    "CREATE TABLE sinks (id serial PRIMARY KEY, name text NOT NULL UNIQUE);"
    "CREATE TABLE events (id bigserial PRIMARY KEY, received_ms bigint NOT NULL,"
    " type text NOT NULL, action text NOT NULL, body bytea NOT NULL);"
    "CREATE TABLE deliveries (event_id bigint NOT NULL, sink_id int NOT NULL,"
    " state smallint NOT NULL, in_doubt boolean NOT NULL DEFAULT false,"
    " attempts int NOT NULL DEFAULT 0, total_attempts int NOT NULL DEFAULT 0,"
    " first_attempt_ms bigint NOT NULL DEFAULT 0, last_attempt_ms bigint NOT NULL DEFAULT 0,"
    " next_attempt_ms bigint NOT NULL, deadline_ms bigint NOT NULL DEFAULT 0,"
    " done_ms bigint NOT NULL DEFAULT 0, lease_owner text, lease_until_ms bigint NOT NULL"
    " DEFAULT 0, last_status int NOT NULL DEFAULT 0, last_error text, reason text,"
    " replays int NOT NULL DEFAULT 0, history jsonb NOT NULL DEFAULT '[]',"
    " PRIMARY KEY (event_id, sink_id));"
    "CREATE INDEX deliveries_due ON deliveries (sink_id, next_attempt_ms, event_id)"
    " WHERE state = 1;"
    "CREATE INDEX deliveries_pending ON deliveries (sink_id, event_id) WHERE state = 1;"
    "CREATE INDEX deliveries_lease ON deliveries (sink_id, lease_until_ms) WHERE state = 2;"
    "CREATE INDEX deliveries_owner ON deliveries (lease_owner) WHERE state = 2;"
    "CREATE INDEX deliveries_done ON deliveries (done_ms) WHERE state = 3;"
    "CREATE INDEX deliveries_dead ON deliveries (done_ms) WHERE state = 4;"
    "CREATE INDEX deliveries_state ON deliveries (state, event_id);"
    "CREATE TABLE counters (sink_id int NOT NULL, kind smallint NOT NULL,"
    " shard smallint NOT NULL, n bigint NOT NULL DEFAULT 0, PRIMARY KEY (sink_id, kind, shard));",
    /* One function for the three triggers; each only touches its transition tables. */
    "CREATE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n)"
    "    SELECT sink_id, state, " SHARD ", count(*) FROM new_t GROUP BY 1, 2 ORDER BY 1, 2"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  ELSIF TG_OP = 'DELETE' THEN"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n)"
    "    SELECT sink_id, k, " SHARD ", -count(*) FROM (SELECT sink_id, state AS k FROM old_t"
    "     UNION ALL SELECT sink_id, 5 FROM old_t WHERE in_doubt) x GROUP BY 1, 2 ORDER BY 1, 2"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  ELSE"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n)"
    "    SELECT sink_id, k, " SHARD ", sum(d) FROM ("
    "      SELECT sink_id, state AS k, 1 AS d FROM new_t"
    "      UNION ALL SELECT sink_id, 5, 1 FROM new_t WHERE in_doubt"
    "      UNION ALL SELECT sink_id, state, -1 FROM old_t"
    "      UNION ALL SELECT sink_id, 5, -1 FROM old_t WHERE in_doubt) x"
    "    GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER deliveries_ins AFTER INSERT ON deliveries REFERENCING NEW TABLE AS new_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();"
    "CREATE TRIGGER deliveries_upd AFTER UPDATE ON deliveries REFERENCING OLD TABLE AS old_t"
    " NEW TABLE AS new_t FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();"
    "CREATE TRIGGER deliveries_del AFTER DELETE ON deliveries REFERENCING OLD TABLE AS old_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();",
    "CREATE FUNCTION count_events() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n)"
    "    SELECT 0, k, " SHARD ", count(*) FROM new_t, (VALUES (10), (11)) v(k) GROUP BY 1, 2"
    " ORDER BY 1, 2"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  ELSE"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n) SELECT 0, 10, " SHARD
    ", -count(*) FROM old_t"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER events_ins AFTER INSERT ON events REFERENCING NEW TABLE AS new_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_events();"
    "CREATE TRIGGER events_del AFTER DELETE ON events REFERENCING OLD TABLE AS old_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_events();",
};

/* Version 2: idempotency keys and sink health. */
static const char *const ddl_v2[] = {
    "CREATE TABLE idem_keys (key text PRIMARY KEY, expires_ms bigint NOT NULL,"
    " created_ms bigint NOT NULL, hash bytea NOT NULL, ids bigint[] NOT NULL,"
    " note bytea NOT NULL);"
    "CREATE INDEX idem_keys_expiry ON idem_keys (expires_ms);"
    /* kind 12 of sink 0: keys stored (an expired key overwritten is an update: no change) */
    "CREATE FUNCTION count_idem() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n) SELECT 0, 12, " SHARD ", count(*)"
    " FROM new_t HAVING count(*) > 0"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  ELSE"
    "   INSERT INTO counters AS c (sink_id, kind, shard, n) SELECT 0, 12, " SHARD ", -count(*)"
    " FROM old_t HAVING count(*) > 0"
    "    ON CONFLICT (sink_id, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER idem_keys_ins AFTER INSERT ON idem_keys REFERENCING NEW TABLE AS new_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_idem();"
    "CREATE TRIGGER idem_keys_del AFTER DELETE ON idem_keys REFERENCING OLD TABLE AS old_t"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_idem();",
    "CREATE TABLE sink_state (sink_id int PRIMARY KEY REFERENCES sinks (id) ON DELETE CASCADE,"
    " down boolean NOT NULL DEFAULT false, paused boolean NOT NULL DEFAULT false,"
    " down_since_ms bigint NOT NULL DEFAULT 0, paused_since_ms bigint NOT NULL DEFAULT 0,"
    " changed_ms bigint NOT NULL DEFAULT 0, held_ms bigint NOT NULL DEFAULT 0,"
    " held_since_ms bigint NOT NULL DEFAULT 0, changes bigint NOT NULL DEFAULT 0,"
    " why text NOT NULL DEFAULT '', last_error text NOT NULL DEFAULT '');",
};

/* Every version's DDL, in order: versions[i] takes the schema from version i to i + 1. */
static const struct {
    const char *const *ddl;
    size_t n;
} versions[] = {
    {ddl_v1, sizeof ddl_v1 / sizeof ddl_v1[0]},
    {ddl_v2, sizeof ddl_v2 / sizeof ddl_v2[0]},
};
_Static_assert(sizeof versions / sizeof versions[0] == OBX_PG_SCHEMA_VERSION,
               "one DDL list per schema version");

/* A database newer than this build is refused; an older one too unless migrating. */
static int version_rule(pg_store *s, int have, int migrating, obx_error *err)
{
    if (have > OBX_PG_SCHEMA_VERSION)
        return obx__fail(err, OBX_ERR_VERSION,
                         "postgres schema \"%s\" is at version %d, newer than this build's %d: "
                         "upgrade outbox",
                         s->schema, have, OBX_PG_SCHEMA_VERSION);
    if (have < OBX_PG_SCHEMA_VERSION && !migrating)
        return obx__fail(err, OBX_ERR_VERSION,
                         "postgres schema \"%s\" is at version %d, older than this build's %d: "
                         "open it read-write once (outboxd, or outboxctl pause/resume) to "
                         "migrate it",
                         s->schema, have, OBX_PG_SCHEMA_VERSION);
    return OBX_OK;
}

int obx__pg_migrate(pg_store *s, PGconn *c, obx_error *err)
{
    char *q = PQescapeIdentifier(c, s->schema, strlen(s->schema));
    char *lit = PQescapeLiteral(c, s->schema, strlen(s->schema));
    char sql[600];
    int rc = OBX_ERR_NOMEM;
    PGresult *r = NULL;
    if (!q || !lit) {
        rc = obx__pg_fail(c, NULL, err, "quote schema name");
        goto out;
    }
    if ((rc = obx__pg_cmd(c, "BEGIN", err)) != OBX_OK)
        goto out;
    /* Serializes schema creation between nodes starting together; released at COMMIT. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(hashtext('outbox schema ' || %s))",
             lit);
    if ((rc = obx__pg_cmd(c, sql, err)) != OBX_OK)
        goto out;
    snprintf(sql, sizeof sql,
             "CREATE SCHEMA IF NOT EXISTS %s;"
             "CREATE TABLE IF NOT EXISTS %s.schema_version (version int NOT NULL)",
             q, q);
    if ((rc = obx__pg_cmd(c, sql, err)) != OBX_OK)
        goto out;
    r = PQexec(c, "SELECT max(version) FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = obx__pg_fail(c, r, err, "read schema_version");
        r = NULL;
        goto out;
    }
    int have = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if ((rc = version_rule(s, have, 1, err)) != OBX_OK)
        goto out;
    for (int v = have < 0 ? 0 : have; v < OBX_PG_SCHEMA_VERSION; v++) {
        for (size_t i = 0; i < versions[v].n; i++)
            if ((rc = obx__pg_cmd(c, versions[v].ddl[i], err)) != OBX_OK)
                goto out;
        snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES (%d)", v + 1);
        if ((rc = obx__pg_cmd(c, sql, err)) != OBX_OK)
            goto out;
    }
    if ((rc = obx__pg_cmd(c, "COMMIT", err)) != OBX_OK)
        goto out;
    r = PQexec(c, "SELECT value FROM meta WHERE key = 'uid'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = obx__pg_fail(c, r, err, "read the store uid");
        r = NULL;
        goto out;
    }
    snprintf(s->uid, sizeof s->uid, "%s", PQgetvalue(r, 0, 0));
    rc = OBX_OK;
out:
    if (r)
        PQclear(r);
    if (rc && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    PQfreemem(q);
    PQfreemem(lit);
    return rc;
}

/* Every prepared statement: name and SQL. Parameters are text. */
static const struct {
    const char *name, *sql;
} stmts[] = {
    {"sink_find", "SELECT id FROM sinks WHERE name = $1"},
    /* the lowest free id (retire frees them; ids stay below OBX_MAX_SINKS); two nodes
     * taking one id at once: the second inserts nothing and registers again */
    {"sink_add", "INSERT INTO sinks (id, name) SELECT (SELECT min(g) FROM generate_series(1,"
                 " 1023) g WHERE NOT EXISTS (SELECT 1 FROM sinks WHERE id = g)), $1"
                 " WHERE NOT EXISTS (SELECT 1 FROM sinks WHERE name = $1) ON CONFLICT DO NOTHING"},
    {"sink_name", "SELECT name FROM sinks WHERE id = $1"},
    {"event_ids", "SELECT nextval('events_id_seq') FROM generate_series(1, $1::int)"
                  " ORDER BY 1"},
    {"events_add", "INSERT INTO events (id, received_ms, type, action, body)"
                   " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],"
                   " $5::bytea[])"},
    {"deliv_add", "INSERT INTO deliveries (event_id, sink_id, state, next_attempt_ms)"
                  " SELECT unnest($1::bigint[]), unnest($2::int[]), 1, $3"},
    {"notify", "SELECT pg_notify($1, '')"},
    /* expired leases of a sink back to pending, due now, in doubt */
    {"reclaim", "UPDATE deliveries d SET state = 1, in_doubt = true, next_attempt_ms = $2,"
                " lease_owner = NULL, lease_until_ms = 0 FROM (SELECT event_id, sink_id"
                " FROM deliveries WHERE sink_id = $1 AND state = 2 AND lease_until_ms < $2"
                " ORDER BY lease_until_ms LIMIT 1000 FOR UPDATE SKIP LOCKED) x"
                " WHERE d.event_id = x.event_id AND d.sink_id = x.sink_id"},
    {"claim", "UPDATE deliveries d SET state = 2, lease_owner = $4, lease_until_ms = $5"
              " FROM (SELECT event_id, sink_id FROM deliveries WHERE sink_id = $1 AND state = 1"
              " AND next_attempt_ms <= $2 ORDER BY next_attempt_ms, event_id LIMIT $3"
              " FOR UPDATE SKIP LOCKED) x, events e"
              " WHERE d.event_id = x.event_id AND d.sink_id = x.sink_id AND e.id = d.event_id"
              " RETURNING d.event_id, d.attempts, d.first_attempt_ms, d.deadline_ms,"
              " d.next_attempt_ms, d.in_doubt, e.received_ms, e.type, e.action, e.body"},
    {"inflight", "SELECT count(*) FROM deliveries WHERE sink_id = $1 AND state = 2"},
    {"head_due", "SELECT next_attempt_ms FROM deliveries WHERE sink_id = $1 AND state = 1"
                 " ORDER BY event_id LIMIT 1"},
    {"sink_lock", "SELECT 1 FROM sinks WHERE id = $1 FOR UPDATE"},
    {"claim_head", "UPDATE deliveries d SET state = 2, lease_owner = $3, lease_until_ms = $4"
                   " FROM (SELECT event_id, sink_id FROM deliveries WHERE sink_id = $1"
                   " AND state = 1 ORDER BY event_id LIMIT 1) x, events e"
                   " WHERE d.event_id = x.event_id AND d.sink_id = x.sink_id"
                   " AND e.id = d.event_id AND d.next_attempt_ms <= $2"
                   " RETURNING d.event_id, d.attempts, d.first_attempt_ms, d.deadline_ms,"
                   " d.next_attempt_ms, d.in_doubt, e.received_ms, e.type, e.action, e.body"},
    {"next_due", "SELECT least((SELECT min(next_attempt_ms) FROM deliveries"
                 " WHERE sink_id = $1 AND state = 1), (SELECT min(lease_until_ms)"
                 " FROM deliveries WHERE sink_id = $1 AND state = 2))"},
    {"renew", "UPDATE deliveries SET lease_until_ms = $2 WHERE lease_owner = $1 AND state = 2"},
    /* A batch of results in one statement, each applied only while its lease is still this
     * node's ($1: "<node>.", any generation); the rest are left alone. $2 history kept;
     * one array element per result, sorted by delivery, each delivery once: $3 event
     * $4 sink $5 state $6 started $7 duration $8 status $9 error $10 first $11 deadline
     * $12 next $13 reason; the captured response: $14 headers (bytea of name NUL value NUL
     * pairs) $15 body (bytea) $16 body size */
    {"record",
     "UPDATE deliveries d SET state = r.st, attempts = d.attempts + 1,"
     " total_attempts = d.total_attempts + 1, last_attempt_ms = r.t, last_status = r.s,"
     " last_error = r.e, in_doubt = false, lease_owner = NULL, lease_until_ms = 0,"
     " first_attempt_ms = CASE WHEN d.first_attempt_ms = 0 THEN r.f ELSE d.first_attempt_ms END,"
     " deadline_ms = CASE WHEN r.dl <> 0 THEN r.dl ELSE d.deadline_ms END,"
     " next_attempt_ms = CASE WHEN r.st = 1 THEN r.nx ELSE d.next_attempt_ms END,"
     " done_ms = CASE WHEN r.st IN (3, 4) THEN r.t + r.d ELSE 0 END,"
     " reason = CASE WHEN r.st = 4 THEN r.why ELSE d.reason END,"
     " history = (SELECT coalesce(jsonb_agg(x ORDER BY i), '[]') FROM jsonb_array_elements("
     "  d.history || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('t', r.t,"
     "  'd', r.d, 's', r.s, 'e', r.e, 'h', encode(r.h, 'base64'), 'b', encode(r.b, 'base64'),"
     "  'z', r.z)))) WITH ORDINALITY a(x, i) WHERE i > jsonb_array_length(d.history) + 1 - $2::int)"
     " FROM unnest($3::bigint[], $4::int[], $5::smallint[], $6::bigint[], $7::bigint[],"
     " $8::int[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[],"
     " $14::bytea[], $15::bytea[], $16::bigint[])"
     " AS r(ev, sk, st, t, d, s, e, f, dl, nx, why, h, b, z)"
     " WHERE d.event_id = r.ev AND d.sink_id = r.sk AND d.state = 2"
     " AND starts_with(d.lease_owner, $1)"},
    /* leases given back unused, in one statement: $1 node as above, $2 events $3 sinks */
    {"release", "UPDATE deliveries d SET state = 1, lease_owner = NULL, lease_until_ms = 0"
                " FROM unnest($2::bigint[], $3::int[]) AS r(ev, sk) WHERE d.event_id = r.ev"
                " AND d.sink_id = r.sk AND d.state = 2 AND starts_with(d.lease_owner, $1)"},
    {"replay", "UPDATE deliveries SET state = 1, attempts = 0, first_attempt_ms = 0,"
               " deadline_ms = 0, done_ms = 0, next_attempt_ms = $3, replays = replays + 1,"
               " reason = NULL, in_doubt = false WHERE event_id = $1"
               " AND ($2::bigint = 4294967295 OR sink_id = $2) AND state IN (3, 4)"},
    {"purge", "DELETE FROM deliveries WHERE event_id = $1"
              " AND ($2::bigint = 4294967295 OR sink_id = $2) AND state = 4"},
    {"states", "SELECT string_agg(CASE state WHEN 1 THEN 'pending' WHEN 2 THEN 'inflight'"
               " WHEN 3 THEN 'delivered' ELSE 'dead' END, ', ' ORDER BY sink_id),"
               " count(*) FROM deliveries WHERE event_id = $1"
               " AND ($2::bigint = 4294967295 OR sink_id = $2)"},
    {"event_exists", "SELECT 1 FROM events WHERE id = $1"},
    {"event_drop", "DELETE FROM events e WHERE e.id = ANY($1::bigint[])"
                   " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)"},
    {"sweep", "DELETE FROM deliveries d USING (SELECT event_id, sink_id FROM deliveries"
              " WHERE state = 3 AND done_ms <= $1 ORDER BY done_ms LIMIT $2"
              " FOR UPDATE SKIP LOCKED) x WHERE d.event_id = x.event_id"
              " AND d.sink_id = x.sink_id RETURNING d.event_id"},
    {"event_get", "SELECT id, received_ms, type, action, body FROM events WHERE id = $1"},
    {"deliveries_of", "SELECT " /* the delivery columns, in deliv_cols order */
                      "event_id, sink_id, state, in_doubt, attempts, total_attempts,"
                      " first_attempt_ms, last_attempt_ms, next_attempt_ms, deadline_ms,"
                      " done_ms, last_status, last_error, reason, replays"
                      " FROM deliveries WHERE event_id = $1 ORDER BY sink_id"},
    {"history", "SELECT (h->>'t')::bigint, (h->>'d')::bigint, (h->>'s')::int, h->>'e',"
                " decode(h->>'h', 'base64'), decode(h->>'b', 'base64'), (h->>'z')::bigint"
                " FROM deliveries, jsonb_array_elements(history) WITH ORDINALITY a(h, i)"
                " WHERE event_id = $1 AND sink_id = $2 ORDER BY i"},
    {"counters", "SELECT sink_id, kind, sum(n) FROM counters GROUP BY 1, 2"},
    {"oldest", "SELECT e.received_ms FROM deliveries d JOIN events e ON e.id = d.event_id"
               " WHERE d.sink_id = $1 AND d.state = 1 ORDER BY d.event_id LIMIT 1"},
    {"sinks", "SELECT id, name FROM sinks ORDER BY id"},
    {"size", "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
             " JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE n.nspname = $1 AND c.relkind = 'r'"},
    /* idem.c: $1 key $2 expires $3 now $4 hash $5 note; a row back = taken */
    {"idem_claim", "INSERT INTO idem_keys AS k (key, expires_ms, created_ms, hash, ids, note)"
                   " VALUES ($1, $2, $3, $4, '{}', $5) ON CONFLICT (key) DO UPDATE SET"
                   " expires_ms = EXCLUDED.expires_ms, created_ms = EXCLUDED.created_ms,"
                   " hash = EXCLUDED.hash, ids = '{}', note = EXCLUDED.note"
                   " WHERE k.expires_ms <= $3 RETURNING 1"},
    {"idem_get", "SELECT created_ms, hash, ids, note FROM idem_keys WHERE key = $1"
                 " AND expires_ms > $2"},
    {"idem_ids", "UPDATE idem_keys SET ids = $2 WHERE key = $1"},
    /* sinkstate.c: the columns in row_state's order */
    {"health_get", "SELECT down, paused, down_since_ms, paused_since_ms, changed_ms, held_ms,"
                   " held_since_ms, changes, why, last_error FROM sink_state WHERE sink_id = $1"},
    {"health_lock", "SELECT down, paused, down_since_ms, paused_since_ms, changed_ms, held_ms,"
                    " held_since_ms, changes, why, last_error FROM sink_state WHERE sink_id = $1"
                    " FOR UPDATE"},
    {"health_all", "SELECT sink_id, down, paused, down_since_ms, paused_since_ms, changed_ms,"
                   " held_ms, held_since_ms, changes, why, last_error FROM sink_state"},
    {"health_add", "INSERT INTO sink_state (sink_id) SELECT $1 WHERE EXISTS"
                   " (SELECT 1 FROM sinks WHERE id = $1) ON CONFLICT (sink_id) DO NOTHING"},
    {"health_put", "UPDATE sink_state SET down = $2, paused = $3, down_since_ms = $4,"
                   " paused_since_ms = $5, changed_ms = $6, held_ms = $7, held_since_ms = $8,"
                   " changes = $9, why = $10, last_error = $11 WHERE sink_id = $1"},
    /* retire.c: $1 sink $2 now ($3 page size) */
    {"retire_census",
     "SELECT count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2),"
     " count(*) FILTER (WHERE state = 4), count(*) FILTER (WHERE state = 3),"
     " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM deliveries o"
     "  WHERE o.event_id = d.event_id AND o.sink_id <> $1)),"
     " count(*) FILTER (WHERE state = 2 AND lease_until_ms >= $2),"
     " coalesce(max(lease_until_ms) FILTER (WHERE state = 2 AND lease_until_ms >= $2), 0)"
     " FROM deliveries d WHERE sink_id = $1"},
    {"retire_dead",
     "WITH x AS (SELECT event_id, state FROM deliveries WHERE sink_id = $1"
     " AND (state = 1 OR (state = 2 AND lease_until_ms < $2)) ORDER BY event_id LIMIT $3"
     " FOR UPDATE) UPDATE deliveries d SET state = 4, done_ms = $2, in_doubt = false,"
     " lease_owner = NULL, lease_until_ms = 0, reason = CASE WHEN d.in_doubt THEN 'sink retired"
     " by the operator (an earlier attempt may have reached the receiver)' ELSE 'sink retired"
     " by the operator' END FROM x WHERE d.event_id = x.event_id AND d.sink_id = $1"
     " RETURNING d.event_id, x.state"},
    {"retire_purge",
     "WITH x AS (SELECT event_id FROM deliveries WHERE sink_id = $1 AND (state <> 2"
     " OR lease_until_ms < $2) ORDER BY event_id LIMIT $3 FOR UPDATE) DELETE FROM deliveries d"
     " USING x WHERE d.event_id = x.event_id AND d.sink_id = $1 RETURNING d.event_id, d.state"},
    {"retire_slot", "DELETE FROM sinks WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries"
                    " WHERE sink_id = $1) RETURNING id"},
    {"idem_sweep", "DELETE FROM idem_keys k USING (SELECT key FROM idem_keys"
                   " WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED) x"
                   " WHERE k.key = x.key"},
};

int obx__pg_prepare_all(PGconn *c, obx_error *err)
{
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r = PQprepare(c, stmts[i].name, stmts[i].sql, 0, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            return obx__pg_fail(c, r, err, stmts[i].name);
        PQclear(r);
    }
    return OBX_OK;
}

int obx__pg_schema_check(pg_store *s, PGconn *c, obx_error *err)
{
    PGresult *r = PQexec(c, "SELECT max(version) FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return obx__pg_fail(c, r, err, "read schema_version");
    int have = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return version_rule(s, have, 0, err);
}
