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
 *                   sink 0 holds the events stored and ever enqueued
 * Indexes: due per sink (state pending), pending per sink by event, leases per sink
 * (in flight), delivered and dead by time, state and event for listings.
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
    if (have > OBX_PG_SCHEMA_VERSION) {
        rc = obx__fail(err, OBX_ERR_VERSION,
                       "postgres schema \"%s\" is at version %d, newer than this build's %d: "
                       "upgrade outbox",
                       s->schema, have, OBX_PG_SCHEMA_VERSION);
        goto out;
    }
    if (have < 1) {
        for (size_t i = 0; i < sizeof ddl_v1 / sizeof ddl_v1[0]; i++)
            if ((rc = obx__pg_cmd(c, ddl_v1[i], err)) != OBX_OK)
                goto out;
        if ((rc = obx__pg_cmd(c, "INSERT INTO schema_version VALUES (1)", err)) != OBX_OK)
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
    {"sink_add", "INSERT INTO sinks (name) SELECT $1 WHERE NOT EXISTS"
                 " (SELECT 1 FROM sinks WHERE name = $1) ON CONFLICT (name) DO NOTHING"},
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
    /* $1 ev $2 sink $3 node $4 state $5 started $6 duration $7 status $8 error
     * $9 first $10 deadline $11 next $12 reason $13 history kept; the captured response:
     * $14 headers (bytea of name NUL value NUL pairs) $15 body (bytea) $16 body size */
    {"record",
     "UPDATE deliveries SET state = $4, attempts = attempts + 1,"
     " total_attempts = total_attempts + 1, last_attempt_ms = $5, last_status = $7,"
     " last_error = $8, in_doubt = false, lease_owner = NULL, lease_until_ms = 0,"
     " first_attempt_ms = CASE WHEN first_attempt_ms = 0 THEN $9 ELSE first_attempt_ms END,"
     " deadline_ms = CASE WHEN $10::bigint <> 0 THEN $10 ELSE deadline_ms END,"
     " next_attempt_ms = CASE WHEN $4::smallint = 1 THEN $11 ELSE next_attempt_ms END,"
     " done_ms = CASE WHEN $4::smallint IN (3, 4) THEN $5::bigint + $6::bigint ELSE 0 END,"
     " reason = CASE WHEN $4::smallint = 4 THEN $12 ELSE reason END,"
     " history = (SELECT coalesce(jsonb_agg(x ORDER BY i), '[]') FROM jsonb_array_elements("
     "  history || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('t', $5::bigint,"
     "  'd', $6::bigint, 's', $7::int, 'e', $8::text, 'h', encode($14::bytea, 'base64'),"
     "  'b', encode($15::bytea, 'base64'), 'z', $16::bigint)))) WITH ORDINALITY a(x, i)"
     "  WHERE i > jsonb_array_length(history) + 1 - $13::int)"
     " WHERE event_id = $1 AND sink_id = $2 AND state = 2 AND starts_with(lease_owner, $3)"},
    {"release",
     "UPDATE deliveries SET state = 1, lease_owner = NULL, lease_until_ms = 0"
     " WHERE event_id = $1 AND sink_id = $2 AND state = 2 AND starts_with(lease_owner, $3)"},
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
