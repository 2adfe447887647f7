/*
 * tests/tools/test-config.c - outboxd's YAML config loader: the example file, defaults,
 * every sink key, Flipt's audit block and its messages, error paths and lines, ${ENV} and
 * secret files, and that secrets never reach an error message; the hardening rules (nesting
 * bound, secret files that are not regular files, CR/LF and any-case schemes in URLs, the
 * sink limit, a config without sinks) and the YAML reader (aliases, duplicate keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config-schema.h"
#include "outbox-config.h"

#define SINK_KEYS_TEXT                                                                             \
    "name, url, events, headers, body, signing_secret, signing_secret_file, signing_secrets, "     \
    "signature, max_backoff_duration, initial_interval, max_interval, multiplier, "                \
    "randomization_factor, timeout, connect_timeout, max_in_flight, ordered, dead_letter_on, "     \
    "ca_file, client_cert, client_key, insecure, capture_headers, capture_body, breaker"

#define SECRET "Zq7-topsecret-value-9"

static outbox_config *load_ok(const char *yaml)
{
    outbox_config *c = NULL;
    char err[512] = "";
    if (outbox_config_load_buffer("config.yaml", yaml, strlen(yaml), &c, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(c);
    return c;
}

static void load_err(const char *yaml, const char *want)
{
    outbox_config *c = (outbox_config *)0x1;
    char err[512] = "";
    assert_int_equal(
        outbox_config_load_buffer("config.yaml", yaml, strlen(yaml), &c, err, sizeof err), -1);
    assert_ptr_equal(c, (outbox_config *)0x1);
    if (strcmp(err, want) != 0)
        fail_msg("error\n  got:  %s\n  want: %s", err, want);
}

static void test_example_loads(void **state)
{
    (void)state;
    const char *root = getenv("OUTBOX_SOURCE_ROOT");
    char path[1024];
    (void)snprintf(path, sizeof path, "%s/tools/outboxd.example.yaml", root ? root : "..");
    (void)unsetenv("OUTBOX_SIGNING_SECRET");
    outbox_config *c = NULL;
    char err[512] = "";
    if (outbox_config_load(path, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->file, path);
    assert_string_equal(c->outbox.path, "./outbox-data");
    assert_int_equal(c->outbox.max_size, UINT64_C(1) << 30);
    assert_int_equal(c->outbox.retention_ms, 24 * 3600 * 1000);
    assert_string_equal(c->ingest.listen, "127.0.0.1:8080");
    assert_int_equal(c->ingest.max_body, 1 << 20);
    assert_null(c->ingest.signing_secret);
    assert_int_equal(c->n_sinks, 1);
    dlv_sink_config *s = &c->sinks[0];
    assert_string_equal(s->name, "webhook");
    assert_string_equal(s->url, "http://127.0.0.1:9000/hook");
    assert_int_equal(s->n_secrets, 1);
    assert_string_equal(s->secrets[0], "demo-secret-change-me");
    assert_int_equal(s->signature, DLV_SIG_BOTH);
    assert_int_equal(s->backoff.max_elapsed_ms, 15000);
    assert_null(s->body);
    assert_int_equal(dlv_filter_count(s->filter), 27);
    assert_int_equal(outbox_config_find_sink(c, "webhook"), 0);
    assert_int_equal(outbox_config_find_sink(c, "nope"), -1);
    outbox_config_free(c);

    assert_int_equal(outbox_config_load("/nonexistent/outbox.yaml", &c, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/outbox.yaml: cannot open: No such file or directory");
}

static void test_defaults(void **state)
{
    (void)state;
    outbox_config *c = load_ok("");
    assert_string_equal(c->outbox.path, "./outbox-data");
    assert_int_equal(c->outbox.max_size, UINT64_C(1) << 30);
    assert_int_equal(c->outbox.retention_ms, 86400000);
    assert_int_equal(c->outbox.durability, OUTBOX_CONFIG_DURABILITY_FULL);
    assert_int_equal(c->outbox.prefill, 1);
    assert_string_equal(c->ingest.listen, "127.0.0.1:8080");
    assert_int_equal(c->ingest.max_body, 1048576);
    assert_int_equal(c->ingest.n_tokens, 0);
    assert_int_equal(c->ingest.idempotency_window_ms, 86400000); /* 24 h */
    assert_int_equal(c->ingest.header_timeout_ms, 10000);
    assert_int_equal(c->ingest.body_timeout_ms, 60000);
    assert_int_equal(c->audit.buffer_capacity, 2);
    assert_int_equal(c->audit.webhook_enabled, 0);
    assert_int_equal(c->n_sinks, 0);
    outbox_config_free(c);
    outbox_config_free(NULL);

    /* a minimal sink gets every default */
    c = load_ok("sinks:\n  - name: a\n    url: http://127.0.0.1:1/x\n");
    assert_int_equal(c->n_sinks, 1);
    dlv_sink_config *s = &c->sinks[0];
    assert_int_equal(s->timeout_ms, 10000);
    assert_int_equal(s->connect_timeout_ms, 5000);
    assert_int_equal(s->max_in_flight, 64);
    assert_int_equal(s->backoff.initial_interval_ms, 500);
    assert_int_equal(s->backoff.max_interval_ms, 60000);
    /* a durable outbox's budget: a day (the audit block's webhook keeps Flipt's 15 s) */
    assert_int_equal(s->backoff.max_elapsed_ms, 86400000);
    assert_true(s->backoff.multiplier == 1.5);
    assert_true(s->backoff.randomization_factor == 0.5);
    assert_int_equal(s->max_body_out, 1 << 20);
    assert_null(s->filter); /* every event */
    assert_int_equal(s->n_secrets, 0);
    assert_int_equal(s->ordered, 0);
    outbox_config_free(c);
}

static void test_every_key(void **state)
{
    (void)state;
    outbox_config *c = load_ok("outbox:\n"
                               "  path: /var/lib/outbox\n"
                               "  max_size: 2GiB\n"
                               "  retention: 1h30m\n"
                               "  durability: nometasync\n"
                               "  prefill: false\n"
                               "ingest:\n"
                               "  listen: '[::1]:9999'\n"
                               "  max_body: 512KiB\n"
                               "  tokens: [tok-a, tok-b]\n"
                               "  signing_secret: ingest-secret\n"
                               "  max_connections: 10\n"
                               "  max_connections_per_ip: 2\n"
                               "  idle_timeout: 5s\n"
                               "  pool_threads: 4\n"
                               "  idempotency_window: 90s\n"
                               "sinks:\n"
                               "  - name: slack\n"
                               "    url: https://hooks.example.com/x\n"
                               "    events: [\"flag:*\", segment:created]\n"
                               "    headers: {Content-Type: application/json, X-A: b}\n"
                               "    body: '{\"text\": \"{{ .Type }}/{{ .Action }}\"}'\n"
                               "    signing_secret: s1\n"
                               "    signing_secrets: [s2, s3]\n"
                               "    signature: standard\n"
                               "    max_backoff_duration: 1h\n"
                               "    initial_interval: 250ms\n"
                               "    max_interval: 30s\n"
                               "    multiplier: 2\n"
                               "    randomization_factor: 0.25\n"
                               "    timeout: 3s\n"
                               "    connect_timeout: 1s\n"
                               "    max_in_flight: 8\n"
                               "    ordered: true\n"
                               "    dead_letter_on: [400, 410]\n"
                               "    ca_file: /ca.pem\n"
                               "    client_cert: /c.pem\n"
                               "    client_key: /c.key\n"
                               "    insecure: yes\n"
                               "    breaker: {enabled: false, failures: 3, give_up_after: 1h}\n"
                               "  - name: second.sink_2\n"
                               "    url: http://127.0.0.1:9000/b\n"
                               "    max_backoff_duration: 5000000000\n");
    assert_string_equal(c->outbox.path, "/var/lib/outbox");
    assert_int_equal(c->outbox.max_size, UINT64_C(2) << 30);
    assert_int_equal(c->outbox.retention_ms, 5400000);
    assert_int_equal(c->outbox.durability, OUTBOX_CONFIG_DURABILITY_NOMETASYNC);
    assert_int_equal(c->outbox.prefill, 0);
    assert_string_equal(c->ingest.listen, "[::1]:9999");
    assert_int_equal(c->ingest.max_body, 512 * 1024);
    assert_int_equal(c->ingest.n_tokens, 2);
    assert_string_equal(c->ingest.tokens[1], "tok-b");
    assert_string_equal(c->ingest.signing_secret, "ingest-secret");
    assert_int_equal(c->ingest.max_connections, 10);
    assert_int_equal(c->ingest.max_connections_per_ip, 2);
    assert_int_equal(c->ingest.idle_timeout_ms, 5000);
    assert_int_equal(c->ingest.pool_threads, 4);
    assert_int_equal(c->ingest.idempotency_window_ms, 90000);
    assert_int_equal(c->n_sinks, 2);
    dlv_sink_config *s = &c->sinks[0];
    assert_string_equal(s->name, "slack");
    assert_string_equal(s->url, "https://hooks.example.com/x");
    assert_int_equal(dlv_filter_count(s->filter), 4);
    assert_true(dlv_filter_match(s->filter, "segment", "created"));
    assert_false(dlv_filter_match(s->filter, "segment", "deleted"));
    assert_int_equal(s->n_headers, 2);
    assert_string_equal(s->headers[0].name, "Content-Type");
    assert_string_equal(s->headers[0].value, "application/json");
    assert_string_equal(s->headers[1].name, "X-A");
    assert_string_equal(s->body, "{\"text\": \"{{ .Type }}/{{ .Action }}\"}");
    assert_int_equal(s->n_secrets, 3);
    assert_string_equal(s->secrets[0], "s1");
    assert_string_equal(s->secrets[2], "s3");
    assert_int_equal(s->signature, DLV_SIG_STANDARD);
    assert_int_equal(s->backoff.max_elapsed_ms, 3600000);
    assert_int_equal(s->backoff.initial_interval_ms, 250);
    assert_int_equal(s->backoff.max_interval_ms, 30000);
    assert_true(s->backoff.multiplier == 2.0);
    assert_true(s->backoff.randomization_factor == 0.25);
    assert_int_equal(s->timeout_ms, 3000);
    assert_int_equal(s->connect_timeout_ms, 1000);
    assert_int_equal(s->max_in_flight, 8);
    assert_int_equal(s->ordered, 1);
    assert_int_equal(s->n_dead_letter_on, 2);
    assert_int_equal(s->dead_letter_on[1], 410);
    assert_string_equal(s->ca_file, "/ca.pem");
    assert_string_equal(s->client_cert, "/c.pem");
    assert_string_equal(s->client_key, "/c.key");
    assert_int_equal(s->insecure, 1);
    assert_int_equal(s->breaker.enabled, 0);
    assert_int_equal(s->breaker.failures, 3);
    assert_int_equal(s->breaker.give_up_after_ms, 3600000);
    assert_int_equal(c->sinks[1].breaker.enabled, 1); /* the defaults */
    assert_int_equal(c->sinks[1].breaker.failures, 5);
    assert_int_equal(c->sinks[1].breaker.give_up_after_ms, 0);
    /* a YAML integer duration is nanoseconds, as in Flipt */
    assert_int_equal(c->sinks[1].backoff.max_elapsed_ms, 5000);
    assert_string_equal(c->sinks[1].name, "second.sink_2");
    outbox_config_free(c);
}

static void test_flipt_block(void **state)
{
    (void)state;
    /* URL mode, unknown keys ignored (method: POST from Flipt's example), events shared */
    outbox_config *c = load_ok("audit:\n"
                               "  events: [\"flag:created\", \"segment:*\"]\n"
                               "  unknown_flipt_key: 1\n"
                               "  sinks:\n"
                               "    log: {enabled: true}\n"
                               "    webhook:\n"
                               "      enabled: true\n"
                               "      method: POST\n"
                               "      url: http://127.0.0.1:9000/hook\n"
                               "      max_backoff_duration: 0\n");
    assert_int_equal(c->n_sinks, 1);
    assert_string_equal(c->sinks[0].name, "webhook");
    assert_int_equal(c->sinks[0].backoff.max_elapsed_ms, 15000); /* 0 => 15 s as Flipt */
    assert_int_equal(c->sinks[0].n_secrets, 0);
    assert_int_equal(dlv_filter_count(c->sinks[0].filter), 4);
    assert_true(dlv_filter_match(c->sinks[0].filter, "flag", "created"));
    assert_false(dlv_filter_match(c->sinks[0].filter, "flag", "deleted"));
    outbox_config_free(c);

    /* template mode: template-1, template-2; the webhook's secret signs them too */
    c = load_ok("audit:\n"
                "  sinks:\n"
                "    webhook:\n"
                "      enabled: true\n"
                "      signing_secret: s3crET\n"
                "      max_backoff_duration: 2m\n"
                "      templates:\n"
                "        - url: https://a.example.com/x\n"
                "          headers:\n"
                "            Authorization: Bearer abc\n"
                "          body: |\n"
                "            {\"type\":\"{{ .Type }}\"}\n"
                "        - url: https://b.example.com/y\n"
                "          body: '{}'\n"
                "sinks:\n"
                "  - name: other\n"
                "    url: http://127.0.0.1:1/\n");
    assert_int_equal(c->n_sinks, 3);
    assert_string_equal(c->sinks[0].name, "template-1");
    assert_string_equal(c->sinks[0].url, "https://a.example.com/x");
    assert_int_equal(c->sinks[0].n_headers, 1);
    assert_string_equal(c->sinks[0].headers[0].value, "Bearer abc");
    assert_string_equal(c->sinks[0].body, "{\"type\":\"{{ .Type }}\"}\n");
    assert_int_equal(c->sinks[0].backoff.max_elapsed_ms, 120000);
    assert_string_equal(c->sinks[0].secrets[0], "s3crET");
    assert_string_equal(c->sinks[1].name, "template-2");
    assert_string_equal(c->sinks[1].body, "{}");
    assert_string_equal(c->sinks[2].name, "other");
    outbox_config_free(c);

    /* disabled: validated loosely, no sink */
    c = load_ok("audit:\n  sinks:\n    webhook:\n      enabled: false\n");
    assert_int_equal(c->n_sinks, 0);
    outbox_config_free(c);

    /* Flipt's validation messages, in Flipt's order */
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n",
             "config.yaml:4: audit.sinks.webhook: url or template(s) not provided");
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n      url: http://x/\n"
             "      templates:\n        - url: http://y/\n          body: '{}'\n",
             "config.yaml:4: audit.sinks.webhook: only one of url or template(s) allowed");
    load_err("audit:\n  buffer:\n    capacity: 11\n",
             "config.yaml:3: audit.buffer.capacity: buffer capacity below 2 or above 10");
    load_err("audit:\n  buffer:\n    capacity: 1\n    flush_period: 1m\n",
             "config.yaml:3: audit.buffer.capacity: buffer capacity below 2 or above 10");
    load_err("audit:\n  buffer:\n    flush_period: 6m\n",
             "config.yaml:3: audit.buffer.flush_period: flush period below 2 minutes or greater "
             "than 5 minutes");
    load_err("audit:\n  events: [\"*:created\", \"flag:created\"]\n",
             "config.yaml:2: audit.events: repeated event pair: flag:created");
    load_err("audit:\n  events: []\n", "config.yaml:2: audit.events: no event pairs exist");
    load_err("audit:\n  events: [\"flag\"]\n",
             "config.yaml:2: audit.events: invalid event pair: flag");
    load_err("audit:\n  events: [\"flags:created\"]\n",
             "config.yaml:2: audit.events: invalid noun: flags");
    load_err("audit:\n  events: [\"flag:read\"]\n",
             "config.yaml:2: audit.events: invalid verb: read");
}

static void test_flipt_block_durations(void **state)
{
    (void)state;
    /* A plain integer is nanoseconds (15 ns > 0 => kept); a quoted "15" is Go's error. */
    outbox_config *c = load_ok("audit:\n  sinks:\n    webhook:\n      enabled: true\n"
                               "      url: http://x/\n      max_backoff_duration: 15\n");
    assert_int_equal(c->sinks[0].backoff.max_elapsed_ms, 1); /* rounded up to 1 ms */
    outbox_config_free(c);
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n      url: http://x/\n"
             "      max_backoff_duration: \"15\"\n",
             "config.yaml:6: audit.sinks.webhook.max_backoff_duration: time: missing unit in "
             "duration \"15\"");
}

static void test_error_paths_and_lines(void **state)
{
    (void)state;
    load_err("sinks:\n"
             "  - name: a\n"
             "    url: http://127.0.0.1:1/\n"
             "  - name: b\n"
             "    url: http://127.0.0.1:2/\n"
             "    timeout: 1d\n",
             "config.yaml:6: sinks[1].timeout: time: unknown unit \"d\" in duration \"1d\"");
    load_err("outbox:\n  path: ./d\n\n  # comment\n  retention: -5m\n",
             "config.yaml:5: outbox.retention: must not be negative");
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n      templates:\n"
             "        - url: http://a/\n          body: '{}'\n        - url: http://b/\n",
             "config.yaml:8: audit.sinks.webhook.templates[1].body: body not provided (an empty "
             "body fails every event in Flipt)");
}

static void test_errors(void **state)
{
    (void)state;
    load_err("outbox:\n  pth: x\n",
             "config.yaml:2: outbox.pth: unknown key (expected one of: path, max_size, "
             "retention, durability, prefill, backend, postgres)");
    load_err("ingest:\n  listen: 127.0.0.1:1\n  bogus: 1\n",
             "config.yaml:3: ingest.bogus: unknown key (expected one of: listen, max_body, "
             "tokens, signing_secret, signing_secret_file, max_connections, "
             "max_connections_per_ip, idle_timeout, pool_threads, header_timeout, "
             "body_timeout, idempotency_window)");
    load_err(
        "sink:\n  - name: a\n",
        "config.yaml:1: sink: unknown key (expected one of: outbox, ingest, audit, sinks, admin)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    retries: 3\n",
             "config.yaml:4: sinks[0].retries: unknown key (expected one of: " SINK_KEYS_TEXT ")");
    load_err("outbox:\n  max_size: 10XB\n",
             "config.yaml:2: outbox.max_size: invalid size \"10XB\": unknown unit \"XB\" (use B, "
             "KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000)");
    load_err("outbox:\n  durability: fast\n",
             "config.yaml:2: outbox.durability: expected full or nometasync, found \"fast\"");
    load_err("outbox:\n  path: [a]\n",
             "config.yaml:2: outbox.path: expected a string, found a list");
    load_err("outbox:\n  path: a\n  path: b\n",
             "config.yaml:3: outbox.path: duplicate key (first at line 2)");
    load_err("ingest:\n  listen: localhost\n",
             "config.yaml:2: ingest.listen: expected HOST:PORT, found \"localhost\"");
    load_err("- a\n- b\n", "config.yaml:1: the top level must be a mapping, found a list");
    load_err("outbox:\n  path: [a\n", "config.yaml:3: YAML syntax error: did not find expected "
                                      "',' or ']' while parsing a flow sequence");
    load_err("sinks:\n  - url: http://x/\n", "config.yaml:2: sinks[0].name: required");
    load_err("sinks:\n  - name: a\n", "config.yaml:2: sinks[0].url: required");
    load_err("sinks:\n  - name: a\n    url: ftp://x/\n",
             "config.yaml:3: sinks[0].url: url must start with http:// or https://");
    load_err("sinks:\n  - name: bad/name\n    url: http://x/\n",
             "config.yaml:2: sinks[0].name: sink name \"bad/name\" has '/' at byte 4 (allowed: "
             "A-Z a-z 0-9 . _ -)");
    load_err(
        "sinks:\n  - name: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    url: http://x/\n",
        "config.yaml:2: sinks[0].name: sink name is 64 bytes, at most 63 are allowed");
    load_err("sinks:\n  - name: a\n    url: http://x/\n  - name: a\n    url: http://y/\n",
             "config.yaml:4: sinks[1].name: duplicate sink name \"a\" (also sinks[0])");
    load_err("audit:\n  sinks:\n    webhook: {enabled: true, url: 'http://x/'}\n"
             "sinks:\n  - name: webhook\n    url: http://y/\n",
             "config.yaml:5: sinks[0].name: duplicate sink name \"webhook\" (already made from "
             "the audit block)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    events: [\"flag:nope\"]\n",
             "config.yaml:4: sinks[0].events: invalid verb: nope");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    signature: sometimes\n",
             "config.yaml:4: sinks[0].signature: expected both, flipt, standard or none, found "
             "\"sometimes\"");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    signature: flipt\n",
             "config.yaml:2: sinks[0].signature: signature flipt needs a signing_secret");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    multiplier: 0.5\n",
             "config.yaml:4: sinks[0].multiplier: 0.5 is out of range (1..1000)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    breaker:\n      failures: 0\n",
             "config.yaml:5: sinks[0].breaker.failures: 0 is out of range (1..1000)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    breaker: {after: 1s}\n",
             "config.yaml:4: sinks[0].breaker.after: unknown key (expected one of: enabled, "
             "failures, give_up_after)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    max_in_flight: 0\n",
             "config.yaml:4: sinks[0].max_in_flight: 0 is out of range (1..100000)");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    ordered: maybe\n",
             "config.yaml:4: sinks[0].ordered: expected true or false, found \"maybe\"");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    dead_letter_on: [404, 204]\n",
             "config.yaml:4: sinks[0].dead_letter_on[1]: 204 is a success status; it cannot "
             "dead-letter");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    timeout: -1s\n",
             "config.yaml:4: sinks[0].timeout: must be a positive duration, found \"-1s\"");
    load_err("ingest:\n  idempotency_window: 0s\n",
             "config.yaml:2: ingest.idempotency_window: must be a positive duration, found "
             "\"0s\"");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    client_cert: /c.pem\n",
             "config.yaml:2: sinks[0].client_key: client_cert and client_key go together");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    headers: {\"Bad Name\": x}\n",
             "config.yaml:4: sinks[0].headers.Bad Name: header name \"Bad Name\" is not a token "
             "(byte 4)");
}

/* Cluster mode keys (outbox.backend, outbox.postgres.*) and what they become. */
static void test_postgres_backend(void **state)
{
    (void)state;
    setenv("OUTBOX_TEST_PGPASS", "s3cret", 1);
    outbox_config *c = load_ok("outbox:\n  backend: postgres\n  postgres:\n"
                               "    dsn: host=db1,db2 dbname=outbox\n"
                               "    password: ${OUTBOX_TEST_PGPASS}\n    schema: ob\n"
                               "    pool: 3\n    allow_async_commit: true\n    lease: 5s\n");
    obx_options o;
    obx_options_init(&o);
    outbox_config_store_options(&c->outbox, &o);
    assert_int_equal(o.backend, OBX_BACKEND_POSTGRES);
    assert_string_equal(o.pg_dsn, "host=db1,db2 dbname=outbox");
    assert_string_equal(o.pg_password, "s3cret");
    assert_string_equal(o.pg_schema, "ob");
    assert_int_equal(o.pg_pool, 3);
    assert_int_equal(o.allow_async_commit, 1);
    assert_int_equal(o.pg_lease_ms, 5000);
    outbox_config_free(c);
    c = load_ok("outbox:\n  path: x\n");
    obx_options_init(&o);
    outbox_config_store_options(&c->outbox, &o);
    assert_int_equal(o.backend, OBX_BACKEND_LMDB); /* the default */
    outbox_config_free(c);
    load_err("outbox:\n  backend: postgres\n",
             "config.yaml:2: outbox.postgres.dsn: required with backend: postgres");
    load_err("outbox:\n  backend: mysql\n",
             "config.yaml:2: outbox.backend: expected lmdb or postgres, found \"mysql\"");
    load_err("outbox:\n  postgres:\n    pool: 0\n",
             "config.yaml:3: outbox.postgres.pool: 0 is out of range (1..64)");
    load_err("outbox:\n  postgres:\n    password: a\n    password_file: /nonexistent\n",
             "config.yaml:4: outbox.postgres.password_file: only one of password or "
             "password_file allowed");
    load_err("outbox:\n  backend: postgres\n  postgres:\n    pool: 2\n",
             "config.yaml:4: outbox.postgres.dsn: required with backend: postgres");
    load_err("outbox:\n  postgres:\n    lease: 500ms\n",
             "config.yaml:3: outbox.postgres.lease: must be between 1s and 1h0m0s");
    /* password_file: read (trailing newline trimmed) into the same secret */
    char dir[] = "/tmp/outbox-test-pgpass-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[256], yaml[512];
    (void)snprintf(file, sizeof file, "%s/pgpass", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_true(fputs("from-file\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    (void)snprintf(yaml, sizeof yaml,
                   "outbox:\n  backend: postgres\n  postgres:\n    dsn: x\n"
                   "    password_file: %s\n",
                   file);
    c = load_ok(yaml);
    assert_string_equal(c->outbox.pg_password, "from-file");
    outbox_config_free(c);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);
    load_err("outbox:\n  postgres:\n    bogus: 1\n",
             "config.yaml:3: outbox.postgres.bogus: unknown key (expected one of: dsn, "
             "password, password_file, schema, pool, allow_async_commit, lease)");
}

/* Template bodies are parsed at load (gotmpl/gotmpl.h); a syntax error names the key
 * path, the line and the engine's Go-style message. */
/* A message must never carry the secret's value (err holds it if so). */
static void load_err_no_secret(const char *yaml, const char *want)
{
    outbox_config *c = NULL;
    char err[512] = "";
    assert_int_equal(
        outbox_config_load_buffer("config.yaml", yaml, strlen(yaml), &c, err, sizeof err), -1);
    assert_null(c);
    assert_null(strstr(err, SECRET));
    if (strcmp(err, want) != 0)
        fail_msg("error\n  got:  %s\n  want: %s", err, want);
}

/* ${NAME} and $$ in every kind of scalar value (strings, numbers, sizes, durations, enums,
 * booleans, lists, headers, templates, secrets, secret files); unset names are errors with
 * the line and key path; secret values never appear in a message. */
static void test_env_expansion(void **state)
{
    (void)state;
    char dir[] = "/tmp/outbox-test-env-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[256];
    (void)snprintf(file, sizeof file, "%s/sink-secret", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(SECRET "\n", f);
    assert_int_equal(fclose(f), 0);
    (void)setenv("OBX_T_PORT", "18123", 1);
    (void)setenv("OBX_T_HOST", "hooks.example", 1);
    (void)setenv("OBX_T_SIZE", "2MiB", 1);
    (void)setenv("OBX_T_DUR", "750ms", 1);
    (void)setenv("OBX_T_N", "7", 1);
    (void)setenv("OBX_T_YES", "true", 1);
    (void)setenv("OBX_T_DUR_WORD", "nometasync", 1);
    (void)setenv("OBX_T_TOKEN", "tok-1", 1);
    (void)setenv("CREDENTIALS_DIRECTORY", dir, 1);
    (void)setenv("OUTBOX_TEST_SECRET", SECRET, 1);
    (void)setenv("OBX_T_EMPTY", "", 1);
    (void)unsetenv("OBX_T_UNSET");
    outbox_config *c =
        load_ok("outbox:\n  path: /var/lib/${OBX_T_HOST}/data\n  max_size: ${OBX_T_SIZE}\n"
                "  durability: ${OBX_T_DUR_WORD}\n"
                "ingest:\n  listen: 127.0.0.1:${OBX_T_PORT}\n  tokens: [\"${OBX_T_TOKEN}\"]\n"
                "sinks:\n  - name: s-${OBX_T_N}\n"
                "    url: https://${OBX_T_HOST}:${OBX_T_PORT}/hook?cost=$$5&x=$y\n"
                "    headers:\n      X-Price: \"$$${OBX_T_N}\"\n"
                "    timeout: ${OBX_T_DUR}\n    max_in_flight: ${OBX_T_N}\n"
                "    ordered: ${OBX_T_YES}\n"
                "    signing_secret_file: ${CREDENTIALS_DIRECTORY}/sink-secret\n"
                "    body: '{\"n\": \"${OBX_T_N}\", \"v\": {{ .Version | toJson }}}'\n");
    assert_string_equal(c->outbox.path, "/var/lib/hooks.example/data");
    assert_int_equal(c->outbox.max_size, 2u << 20);
    assert_int_equal(c->outbox.durability, OUTBOX_CONFIG_DURABILITY_NOMETASYNC);
    assert_string_equal(c->ingest.listen, "127.0.0.1:18123");
    assert_string_equal(c->ingest.tokens[0], "tok-1");
    assert_string_equal(c->sinks[0].name, "s-7");
    assert_string_equal(c->sinks[0].url, "https://hooks.example:18123/hook?cost=$5&x=$y");
    assert_string_equal(c->sinks[0].headers[0].name, "X-Price");
    assert_string_equal(c->sinks[0].headers[0].value, "$7");
    assert_int_equal(c->sinks[0].timeout_ms, 750);
    assert_int_equal(c->sinks[0].max_in_flight, 7);
    assert_int_equal(c->sinks[0].ordered, 1);
    assert_string_equal(c->sinks[0].secrets[0], SECRET);
    outbox_config_free(c);

    /* an unset variable: file, line, key path and the variable's name */
    load_err("ingest:\n  max_body: 1MiB\n  listen: \"127.0.0.1:${OBX_T_UNSET}\"\n",
             "config.yaml:3: ingest.listen: environment variable OBX_T_UNSET is not set");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    headers:\n      X-A: ${OBX_T_UNSET}\n",
             "config.yaml:5: sinks[0].headers.X-A: environment variable OBX_T_UNSET is not set");
    load_err("admin:\n  tokens:\n    - ok\n    - ${OBX_T_UNSET}\n",
             "config.yaml:4: admin.tokens[1]: environment variable OBX_T_UNSET is not set");
    load_err("outbox:\n  path: \"${OBX_T bad}\"\n",
             "config.yaml:2: outbox.path: malformed ${NAME} (a name of letters, digits and _; "
             "write $$ for a literal $)");
    /* a bad value from the environment is reported like a bad value in the file */
    load_err("sinks:\n  - name: a\n    url: http://x/\n    max_in_flight: ${OBX_T_HOST}\n",
             "config.yaml:4: sinks[0].max_in_flight: expected an integer, found "
             "\"hooks.example\"");

    /* secrets: an empty variable is an error (it must not turn signing off); the value of a
     * secret never appears in a message, even when the next check refuses it */
    load_err_no_secret("ingest:\n  signing_secret: ${OBX_T_EMPTY}\n",
                       "config.yaml:2: ingest.signing_secret: environment variable OBX_T_EMPTY "
                       "is empty");
    load_err_no_secret("sinks:\n  - name: a\n    url: http://x/\n"
                       "    signing_secret: ${OUTBOX_TEST_SECRET}\n"
                       "    signing_secret_file: /nonexistent\n",
                       "config.yaml:5: sinks[0].signing_secret_file: only one of signing_secret "
                       "or signing_secret_file allowed");
    load_err_no_secret("sinks:\n  - name: a\n    url: http://x/\n"
                       "    signing_secrets: [\"${OUTBOX_TEST_SECRET}\", \"${OBX_T_UNSET}\"]\n",
                       "config.yaml:4: sinks[0].signing_secrets[1]: environment variable "
                       "OBX_T_UNSET is not set");

    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);
    (void)unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_template_body(void **state)
{
    (void)state;
    outbox_config *c = load_ok("sinks:\n  - name: t\n    url: http://x/\n"
                               "    body: '{\"t\": \"{{ .Type }}\"}'\n"
                               "audit:\n  sinks:\n    webhook:\n      enabled: true\n"
                               "      templates:\n        - url: http://a/\n"
                               "          body: '{{ toJson .Payload }}'\n");
    assert_int_equal(c->n_sinks, 2);
    assert_string_equal(c->sinks[1].name, "t");
    assert_string_equal(c->sinks[1].body, "{\"t\": \"{{ .Type }}\"}");
    assert_non_null(c->sinks[1].tmpl);
    assert_non_null(c->sinks[0].tmpl);
    outbox_config_free(c);

    outbox_config *o = NULL;
    char err[512] = "";
    const char *bad = "sinks:\n  - name: t\n    url: http://x/\n\n    body: '{{ .Type '\n";
    assert_int_equal(
        outbox_config_load_buffer("config.yaml", bad, strlen(bad), &o, err, sizeof err), -1);
    assert_null(o);
    if (strncmp(err, "config.yaml:5: sinks[0].body: template: ", 40) != 0)
        fail_msg("unexpected: %s", err);
    const char *bad2 = "audit:\n  sinks:\n    webhook:\n      enabled: true\n"
                       "      templates:\n        - url: http://a/\n"
                       "          body: '{{ nosuchfunc .Type }}'\n";
    assert_int_equal(
        outbox_config_load_buffer("config.yaml", bad2, strlen(bad2), &o, err, sizeof err), -1);
    if (strncmp(err, "config.yaml:7: audit.sinks.webhook.templates[0].body: template: ", 64) != 0)
        fail_msg("unexpected: %s", err);
}

static void test_secrets(void **state)
{
    (void)state;
    (void)setenv("OUTBOX_TEST_SECRET", SECRET, 1);
    (void)unsetenv("OUTBOX_TEST_UNSET");
    outbox_config *c = load_ok("ingest:\n  signing_secret: ${OUTBOX_TEST_SECRET}\n"
                               "  tokens: [\"${OUTBOX_TEST_SECRET}\", literal]\n"
                               "sinks:\n  - name: a\n    url: http://x/\n"
                               "    signing_secret: \"${OUTBOX_TEST_SECRET}\"\n"
                               "    signing_secrets: [\"x${OUTBOX_TEST_SECRET}\"]\n");
    assert_string_equal(c->ingest.signing_secret, SECRET);
    assert_string_equal(c->ingest.tokens[0], SECRET);
    assert_string_equal(c->ingest.tokens[1], "literal");
    assert_string_equal(c->sinks[0].secrets[0], SECRET);
    /* ${NAME} inside a value is replaced too */
    assert_string_equal(c->sinks[0].secrets[1], "x" SECRET);
    outbox_config_free(c);

    load_err("sinks:\n  - name: a\n    url: http://x/\n    signing_secret: ${OUTBOX_TEST_UNSET}\n",
             "config.yaml:4: sinks[0].signing_secret: environment variable OUTBOX_TEST_UNSET is "
             "not set");

    /* secret file: trailing newline trimmed */
    char dir[] = "/tmp/outbox-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[256], yaml[1024];
    (void)snprintf(file, sizeof file, "%s/secret", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_true(fputs(SECRET "\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    (void)snprintf(yaml, sizeof yaml,
                   "ingest:\n  signing_secret_file: %s\naudit:\n  sinks:\n    webhook:\n"
                   "      enabled: true\n      url: http://x/\n      signing_secret_file: %s\n",
                   file, file);
    c = load_ok(yaml);
    assert_string_equal(c->ingest.signing_secret, SECRET);
    assert_string_equal(c->sinks[0].secrets[0], SECRET);
    outbox_config_free(c);
    char want[1024];
    (void)snprintf(yaml, sizeof yaml,
                   "sinks:\n  - name: a\n    url: http://x/\n    signing_secret: inline\n"
                   "    signing_secret_file: %s\n",
                   file);
    (void)snprintf(want, sizeof want,
                   "config.yaml:5: sinks[0].signing_secret_file: only one of signing_secret or "
                   "signing_secret_file allowed");
    load_err(yaml, want);
    (void)snprintf(yaml, sizeof yaml, "ingest:\n  signing_secret_file: %s/missing\n", dir);
    (void)snprintf(want, sizeof want,
                   "config.yaml:2: ingest.signing_secret_file: cannot open %s/missing: No such "
                   "file or directory",
                   dir);
    load_err(yaml, want);
    f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    (void)snprintf(yaml, sizeof yaml, "ingest:\n  signing_secret_file: %s\n", file);
    (void)snprintf(want, sizeof want, "config.yaml:2: ingest.signing_secret_file: %s is empty",
                   file);
    load_err(yaml, want);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);

    /* secrets never appear in error text, whatever fails */
    static const char *const bad[] = {
        "sinks:\n  - name: a\n    url: http://x/\n    signing_secret: whsec_" SECRET "!\n",
        "sinks:\n  - name: a\n    url: http://x/\n    signing_secret: " SECRET "\n"
        "    headers: {Authorization: \"Bearer " SECRET "\\r\\nX: y\"}\n",
        "sinks:\n  - name: a\n    url: http://x/\n    signing_secret: [" SECRET "]\n",
        "ingest:\n  tokens: [" SECRET ", \"\"]\n",
        "ingest:\n  signing_secret: {k: " SECRET "}\n",
        "audit:\n  sinks:\n    webhook:\n      enabled: true\n      signing_secret: " SECRET "\n",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        outbox_config *o = NULL;
        char err[512] = "";
        assert_int_equal(
            outbox_config_load_buffer("config.yaml", bad[i], strlen(bad[i]), &o, err, sizeof err),
            -1);
        assert_true(strlen(err) > 0);
        if (strstr(err, "topsecret"))
            fail_msg("secret leaked in error %zu: %s", i, err);
    }
}

/* head, then n lines "<pre><i><post>" (i = 0..n-1), then tail; malloc'd. */
static char *repeated(const char *head, const char *pre, int n, const char *post, const char *tail)
{
    size_t cap = strlen(head) + (size_t)n * (strlen(pre) + strlen(post) + 12) + strlen(tail) + 1;
    size_t len = 0;
    char *y = malloc(cap);
    assert_non_null(y);
    len += (size_t)snprintf(y, cap, "%s", head);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(y + len, cap - len, "%s%d%s", pre, i, post);
    (void)snprintf(y + len, cap - len, "%s", tail);
    return y;
}

/* A deeply nested document is refused while reading, at the first level too deep: flow
 * and block style, ~200 KB each (libyaml's loader took ~51 s on such a file). */
static void test_nesting_bound(void **state)
{
    (void)state;
    size_t n = 100000;
    char *y = malloc(2 * n + 16);
    assert_non_null(y);
    memcpy(y, "audit: ", 7);
    for (size_t i = 0; i < n; i++)
        y[7 + i] = '[';
    for (size_t i = 0; i < n; i++)
        y[7 + n + i] = ']';
    y[7 + 2 * n] = '\n';
    y[8 + 2 * n] = '\0';
    load_err(y, "config.yaml:1: YAML nesting deeper than 64 levels (lists and mappings inside "
                "each other); a configuration needs only a few");
    free(y);

    /* block mappings, one level per line: the error names the line of level 65 */
    size_t levels = 600, len = 0, cap = levels * (levels + 8) + 64;
    y = malloc(cap);
    assert_non_null(y);
    for (size_t i = 0; i < levels; i++) {
        memset(y + len, ' ', i);
        len += i;
        len += (size_t)snprintf(y + len, cap - len, "k:\n");
    }
    y[len] = '\0';
    load_err(y, "config.yaml:65: YAML nesting deeper than 64 levels (lists and mappings inside "
                "each other); a configuration needs only a few");
    free(y);

    /* 64 levels in all are fine: two mappings and 62 lists (an ignored Flipt key) */
    char ok[256];
    (void)snprintf(ok, sizeof ok, "audit:\n  other: %.62s%.62s\n",
                   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                   "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    outbox_config_free(load_ok(ok));
}

/* Anchors and aliases resolve to the anchored node; duplicate keys are found among many. */
static void test_yaml_reader(void **state)
{
    (void)state;
    outbox_config *c = load_ok("sinks:\n  - name: a\n    url: &u http://127.0.0.1:1/\n"
                               "  - name: b\n    url: *u\n");
    assert_int_equal(c->n_sinks, 2);
    assert_string_equal(c->sinks[1].url, "http://127.0.0.1:1/");
    outbox_config_free(c);
    load_err("sinks:\n  - name: a\n    url: *nope\n",
             "config.yaml:3: YAML syntax error: found undefined alias *nope");

    /* 3,000 distinct keys in Flipt's block (ignored) and then one repeated */
    char *y = repeated("audit:\n", "  key", 3000, ": 1\n", "  key17: 2\n");
    load_err(y, "config.yaml:3002: audit.key17: duplicate key (first at line 19)");
    free(y);
}

/* The rules the delivery engine applies at start are applied at load, with the line. */
static void test_start_rules_at_load(void **state)
{
    (void)state;
    /* any-case scheme, as Go reads it */
    outbox_config *c = load_ok("sinks:\n  - name: a\n    url: HTTP://127.0.0.1:1/hook\n"
                               "  - name: b\n    url: HtTpS://example.com/\n");
    assert_string_equal(c->sinks[0].url, "HTTP://127.0.0.1:1/hook");
    outbox_config_free(c);
    load_err("sinks:\n  - name: a\n    url: \"http://x/a\\r\\nX-Injected: 1\"\n",
             "config.yaml:3: sinks[0].url: url has a control character (0x0d) at byte 11");
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n"
             "      url: \"http://x/\\n\"\n",
             "config.yaml:5: audit.sinks.webhook.url: url has a control character (0x0a) at "
             "byte 10");
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n      templates:\n"
             "        - url: ftp://a/\n          body: '{}'\n",
             "config.yaml:6: audit.sinks.webhook.templates[0].url: url must start with http:// "
             "or https://");
    /* the audit webhook's secret is used for Standard Webhooks too: it must decode */
    load_err("audit:\n  sinks:\n    webhook:\n      enabled: true\n      url: http://x/\n"
             "      signing_secret: whsec_!!\n",
             "config.yaml:4: audit.sinks.webhook: signing secret 1: the secret starts with "
             "whsec_ but the rest is not valid base64");
    load_err("sinks:\n  - name: a\n    url: http://x/\n    headers: {X-A: \"a\\u0001b\"}\n",
             "config.yaml:4: sinks[0].headers.X-A: header X-A: the value has a control "
             "character at byte 2");

    /* at most 64 sinks: the 65th is named */
    char *y = repeated("sinks:\n", "  - {name: s", 65, ", url: 'http://x/'}\n", "");
    load_err(y, "config.yaml:66: sinks[64]: more than 64 sinks");
    free(y);
    y = repeated("sinks:\n", "  - {name: s", 64, ", url: 'http://x/'}\n", "");
    outbox_config_free(load_ok(y));
    free(y);
}

/* A secret file must be a regular file: a FIFO (no writer) or a directory is refused at
 * once instead of blocking in open(). */
static void test_secret_file_kinds(void **state)
{
    (void)state;
    char dir[] = "/tmp/outbox-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[256], yaml[1024], want[1024];
    (void)snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    (void)snprintf(yaml, sizeof yaml,
                   "sinks:\n  - name: a\n    url: http://x/\n    signing_secret_file: %s\n", fifo);
    (void)snprintf(want, sizeof want,
                   "config.yaml:4: sinks[0].signing_secret_file: %s is a FIFO; a secret file "
                   "must be a regular file",
                   fifo);
    load_err(yaml, want);
    (void)snprintf(yaml, sizeof yaml, "ingest:\n  signing_secret_file: %s\n", dir);
    (void)snprintf(want, sizeof want,
                   "config.yaml:2: ingest.signing_secret_file: %s is a directory; a secret file "
                   "must be a regular file",
                   dir);
    load_err(yaml, want);
    /* TLS files are read by libcurl later: when they exist, they must be regular files */
    (void)snprintf(yaml, sizeof yaml, "sinks:\n  - name: a\n    url: https://x/\n    ca_file: %s\n",
                   fifo);
    (void)snprintf(want, sizeof want,
                   "config.yaml:4: sinks[0].ca_file: %s is a FIFO; it must be a regular file",
                   fifo);
    load_err(yaml, want);
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* No sink: loads (outboxctl reads such files), refused by the daemon's check. */
static void test_no_sinks_check(void **state)
{
    (void)state;
    static const char *const none[] = {"",
                                       "~\n",
                                       "sinks: []\n",
                                       "sinks:\n",
                                       "audit:\n  sinks:\n    webhook:\n      enabled: no\n",
                                       NULL};
    for (size_t i = 0; none[i]; i++) {
        outbox_config *c = load_ok(none[i]);
        char err[512] = "";
        assert_int_equal(outbox_config_check(c, 0, err, sizeof err), 0);
        assert_int_equal(outbox_config_check(c, OUTBOX_CONFIG_REQUIRE_SINKS, err, sizeof err), -1);
        assert_string_equal(err, "config.yaml: sinks: no sink is configured (sinks: is empty and "
                                 "audit.sinks.webhook is not enabled): every event would be "
                                 "acknowledged and dropped; add a sink, or start with "
                                 "--allow-no-sinks");
        outbox_config_free(c);
    }
    outbox_config *c = load_ok("sinks: [{name: a, url: 'http://x/'}]\n");
    assert_int_equal(outbox_config_check(c, OUTBOX_CONFIG_REQUIRE_SINKS, NULL, 0), 0);
    outbox_config_free(c);
}

/* The key reference comes from the same table as dispatch and the "expected one of" list. */
/* admin: listen, tokens, read-only tokens; without a token only a loopback address. */
static void test_admin(void **state)
{
    (void)state;
    outbox_config *c = load_ok("sinks: [{name: a, url: http://x/}]\n");
    assert_null(c->admin.listen);
    outbox_config_free(c);
    (void)setenv("OBX_TEST_ADMIN_TOKEN", "from-env", 1);
    c = load_ok("admin:\n  listen: 0.0.0.0:8081\n  tokens: [\"${OBX_TEST_ADMIN_TOKEN}\", b]\n"
                "  read_only_tokens: [r]\nsinks: [{name: a, url: http://x/}]\n");
    assert_string_equal(c->admin.listen, "0.0.0.0:8081");
    assert_int_equal(c->admin.n_tokens, 2);
    assert_string_equal(c->admin.tokens[0], "from-env");
    assert_int_equal(c->admin.n_read_only_tokens, 1);
    assert_string_equal(c->admin.read_only_tokens[0], "r");
    outbox_config_free(c);
    static const char *const loopback[] = {"127.0.0.1:1", "127.9.9.9:0", "localhost:8081",
                                           "\"[::1]:8081\""};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        char y[256];
        (void)snprintf(y, sizeof y, "admin:\n  listen: %s\nsinks: [{name: a, url: http://x/}]\n",
                       loopback[i]);
        outbox_config_free(load_ok(y));
    }
    load_err("sinks: [{name: a, url: http://x/}]\nadmin:\n  listen: 0.0.0.0:8081\n",
             "config.yaml:3: admin.listen: \"0.0.0.0:8081\" is not a loopback address: an admin "
             "listener reachable from other hosts needs admin.tokens (or listen on 127.0.0.1)");
    load_err("admin:\n  tokens: [t]\n",
             "config.yaml:2: admin: listen is required (e.g. 127.0.0.1:8081)");
    load_err("admin:\n  listen: 127.0.0.1:1\n  token: [t]\n",
             "config.yaml:3: admin.token: unknown key (expected one of: listen, tokens, "
             "read_only_tokens)");
    load_err("admin:\n  listen: 127.0.0.1:1\n  tokens: [\"\"]\n",
             "config.yaml:3: admin.tokens[0]: a token must not be empty");
}

static void test_key_reference(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    outbox_config_print_keys(f);
    assert_int_equal(fclose(f), 0);
    static const char *const keys[] = {"outbox.path",
                                       "outbox.prefill",
                                       "ingest.body_timeout",
                                       "audit.sinks.webhook.templates",
                                       "sinks[].insecure",
                                       "sinks[].dead_letter_on",
                                       NULL};
    for (size_t i = 0; keys[i]; i++)
        if (!strstr(buf, keys[i]))
            fail_msg("%s missing from the key reference", keys[i]);
    free(buf);
}

/* The table walker on its own: a two-row schema gives dispatch, bounds and the "expected
 * one of" list (the way a new section is added, e.g. a backend's settings). */
typedef struct demo {
    int64_t lease_ms;
    unsigned pool;
} demo;

static void test_schema_table(void **state)
{
    (void)state;
    static const cs_key rows[] = {
        {"lease", CS_DURATION_MS, CS_OBJ, offsetof(demo, lease_ms), 1000, 3600000, NULL, NULL, NULL,
         NULL, NULL, "claim lease (1s..1h)"},
        {"pool", CS_UINT, CS_OBJ, offsetof(demo, pool), 1, 64, NULL, NULL, NULL, NULL, NULL,
         "connections"},
    };
    static const cs_table t = CS_TABLE(rows, 1);
    struct {
        const char *yaml, *want;
    } cases[] = {
        {"lease: 5s\npool: 3\n", ""},
        {"lease: 500ms\n", "d.yaml:1: x.lease: must be between 1s and 1h0m0s"},
        {"lease: 2h\n", "d.yaml:1: x.lease: must be between 1s and 1h0m0s"},
        {"pool: 65\n", "d.yaml:1: x.pool: 65 is out of range (1..64)"},
        {"poll: 1\n", "d.yaml:1: x.poll: unknown key (expected one of: lease, pool)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        cy_ctx x = {"d.yaml", err, sizeof err};
        cy_doc *d = NULL;
        demo v = {0};
        assert_int_equal(cy_parse(&x, cases[i].yaml, strlen(cases[i].yaml), 0, &d), 0);
        int rc = cs_walk(&x, cy_root(d), "x", &t, &v, NULL, NULL);
        cy_doc_free(d);
        assert_int_equal(rc, *cases[i].want ? -1 : 0);
        assert_string_equal(err, cases[i].want);
        if (i == 0) {
            assert_int_equal(v.lease_ms, 5000);
            assert_int_equal(v.pool, 3);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_flipt_block),
        cmocka_unit_test(test_flipt_block_durations),
        cmocka_unit_test(test_error_paths_and_lines),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_template_body),
        cmocka_unit_test(test_nesting_bound),
        cmocka_unit_test(test_yaml_reader),
        cmocka_unit_test(test_start_rules_at_load),
        cmocka_unit_test(test_secret_file_kinds),
        cmocka_unit_test(test_no_sinks_check),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_key_reference),
        cmocka_unit_test(test_schema_table),
        cmocka_unit_test(test_postgres_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
