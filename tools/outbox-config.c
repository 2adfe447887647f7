/*
 * tools/outbox-config.c - outboxd's configuration schema and loader (see outbox-config.h).
 *
 * The YAML is read by config-yaml.c into a node tree; this file holds the schema: one table
 * per section (the rows below are the only list of keys there is: dispatch, the "expected
 * one of" messages and the value checks all come from them), the few converters a table
 * row cannot express (events, headers, bodies, tokens, statuses), the rules that span keys
 * (secrets, TLS pairs, intervals), and Flipt's audit block, which becomes sinks. Every rule
 * the daemon applies to its configuration at start is applied here, with file, line and key
 * path, so `outboxd --check-config` sees exactly what the daemon would refuse. Secret values
 * are never copied into a message.
 */
#include "outbox-config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-schema.h"
#include "config-value.h"
#include "config-yaml.h"
#include "delivery/duration.h"
#include "delivery/secret.h"
#include "delivery/sign.h"
#include "listen-addr.h"
#include "outboxd-ingest.h" /* OIN_*: the ingest defaults */

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define SECRET_KEYS    "signing_secret", "signing_secret_file"
#define DEFAULT_PATH   "./outbox-data"
#define CONFIG_MAX     ((size_t)16 << 20)

static void oom(cy_ctx *x, const cy_node *n, const char *path)
{
    cy_errf(x, n, path, "out of memory");
}

/* ---- converters a table row cannot express -------------------------------------------- */

static int path_rule(const char *v, char *err, size_t errlen)
{
    if (*v)
        return 0;
    (void)snprintf(err, errlen, "must not be empty");
    return -1;
}

static int conv_events(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    dlv_filter **dst = field;
    char **ev = NULL, e[256];
    size_t nev = 0;
    if (cv_strings(x, n, path, &ev, &nev) < 0)
        return -1;
    dlv_filter *f = NULL;
    int rc = dlv_filter_parse((const char *const *)ev, nev, &f, e, sizeof e);
    cv_free_strings(ev, nev);
    if (rc < 0) {
        cy_errf(x, n, path, "%s", e);
        return -1;
    }
    dlv_filter_free(*dst);
    *dst = f;
    return 0;
}

static int header_pair(cy_ctx *x, const cy_node *k, const cy_node *v, const char *path, void *ud)
{
    dlv_sink_config *s = ud;
    char e[256];
    if (dlv_header_check(k->str, NULL, e, sizeof e) != DLV_OK) {
        cy_errf(x, k, path, "%s", e);
        return -1;
    }
    if (cy_want_scalar(x, v, path, "a string") < 0)
        return -1;
    /* the message never echoes the value: it may hold credentials (Authorization) */
    if (strlen(v->str) != v->len || dlv_header_check(k->str, v->str, e, sizeof e) != DLV_OK) {
        cy_errf(x, v, path, "%s", strlen(v->str) != v->len ? "the value has a NUL byte" : e);
        return -1;
    }
    dlv_header *nh = realloc(s->headers, (s->n_headers + 1) * sizeof *nh);
    if (!nh) {
        oom(x, v, path);
        return -1;
    }
    s->headers = nh;
    nh[s->n_headers].name = strdup(k->str);
    nh[s->n_headers].value = strdup(v->str);
    s->n_headers++;
    if (!nh[s->n_headers - 1].name || !nh[s->n_headers - 1].value) {
        oom(x, v, path);
        return -1;
    }
    return 0;
}

static int conv_headers(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    return cy_is_null(n) ? 0 : cy_each_pair(x, n, path, header_pair, field);
}

static int conv_body(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    dlv_sink_config *s = field;
    char e[512];
    if (cy_is_null(n))
        return 0;
    if (cy_want_scalar(x, n, path, "a string") < 0)
        return -1;
    int rc = dlv_sink_config_set_body(s, n->str, n->len, e, sizeof e);
    if (rc == DLV_ERR_NOMEM) {
        oom(x, n, path);
        return -1;
    }
    if (rc < 0) {
        cy_errf(x, n, path, "%s", e);
        return -1;
    }
    return 0;
}

static int conv_signature(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    if (cy_want_scalar(x, n, path, "both, flipt, standard or none") < 0)
        return -1;
    if (dlv_signature_parse(n->str, (int *)field) < 0) {
        cy_errf(x, n, path, "expected both, flipt, standard or none, found \"%.40s\"", n->str);
        return -1;
    }
    return 0;
}

static int conv_dead_letter_on(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    dlv_sink_config *s = field;
    if (cy_is_null(n))
        return 0;
    if (cy_want_list(x, n, path) < 0)
        return -1;
    free(s->dead_letter_on);
    s->n_dead_letter_on = 0;
    s->dead_letter_on = calloc(n->n_items ? n->n_items : 1, sizeof *s->dead_letter_on);
    if (!s->dead_letter_on) {
        oom(x, n, path);
        return -1;
    }
    for (size_t i = 0; i < n->n_items; i++) {
        char ip[CY_PATH_MAX];
        long long code;
        cy_indexpath(ip, path, i);
        if (cv_int(x, n->items[i], ip, 100, 599, &code) < 0)
            return -1;
        if (code >= 200 && code <= 299) {
            cy_errf(x, n->items[i], ip, "%lld is a success status; it cannot dead-letter", code);
            return -1;
        }
        s->dead_letter_on[s->n_dead_letter_on++] = (int)code;
    }
    return 0;
}

/* Report dlv_capture_check's verdict on s at node n; its message names the key, so the
 * path given is the sink's (path without its last component). */
static int capture_checked(cy_ctx *x, const cy_node *n, const char *path, dlv_sink_config *s)
{
    char e[256], parent[CY_PATH_MAX];
    if (dlv_capture_check(s, e, sizeof e) == DLV_OK)
        return 0;
    const char *dot = strrchr(path, '.');
    snprintf(parent, sizeof parent, "%.*s", dot ? (int)(dot - path) : (int)strlen(path), path);
    cy_errf(x, n, parent, "%s", e);
    return -1;
}

static int conv_capture_headers(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    dlv_sink_config *s = field;
    cv_free_strings(s->capture_headers, s->n_capture_headers);
    s->capture_headers = NULL;
    s->n_capture_headers = 0;
    if (cv_strings(x, n, path, &s->capture_headers, &s->n_capture_headers) < 0)
        return -1;
    return capture_checked(x, n, path, s);
}

static int conv_capture_body(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    dlv_sink_config *s = field;
    uint64_t v;
    if (cv_size(x, n, path, &v) < 0)
        return -1;
    s->capture_body = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
    return capture_checked(x, n, path, s);
}

/* A list of secrets ("${NAME}" resolved), none empty, appended to *v / *count. */
static int push_secrets(cy_ctx *x, const cy_node *n, const char *path, const char *what, char ***v,
                        size_t *count)
{
    if (!n || cy_is_null(n))
        return 0;
    if (cy_want_list(x, n, path) < 0)
        return -1;
    for (size_t i = 0; i < n->n_items; i++) {
        char ip[CY_PATH_MAX], *s = NULL;
        cy_indexpath(ip, path, i);
        if (cv_secret(x, n->items[i], ip, &s) < 0)
            return -1;
        if (!s) {
            cy_errf(x, n->items[i], ip, "a %s must not be empty", what);
            return -1;
        }
        if (cv_push(v, count, s) < 0) {
            dlv_secret_free(s);
            oom(x, n->items[i], ip);
            return -1;
        }
    }
    return 0;
}

static int conv_tokens(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    outbox_config_ingest *in = field;
    return push_secrets(x, n, path, "token", &in->tokens, &in->n_tokens);
}

static int conv_admin_tokens(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    outbox_config_admin *a = field;
    return push_secrets(x, n, path, "token", &a->tokens, &a->n_tokens);
}

static int conv_admin_ro_tokens(cy_ctx *x, const cy_node *n, const char *path, void *field)
{
    outbox_config_admin *a = field;
    return push_secrets(x, n, path, "token", &a->read_only_tokens, &a->n_read_only_tokens);
}

/* ---- --print-config: printers for the rows a plain field cannot print ------------------ */

static void print_redacted_list(FILE *out, const char *name, size_t n, int indent)
{
    if (n == 0)
        return;
    fprintf(out, "%*s%s: [", indent, "", name);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", "\"" CS_REDACTED "\"");
    fputs("]\n", out);
}

static void print_redacted(FILE *out, const char *name, const char *secret, int indent)
{
    if (secret)
        fprintf(out, "%*s%s: \"" CS_REDACTED "\"\n", indent, "", name);
}

static void print_ingest_tokens(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted_list(out, name, ((const outbox_config_ingest *)obj)->n_tokens, indent);
}

static void print_ingest_secret(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted(out, name, ((const outbox_config_ingest *)obj)->signing_secret, indent);
}

static void print_admin_tokens(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted_list(out, name, ((const outbox_config_admin *)obj)->n_tokens, indent);
}

static void print_admin_ro_tokens(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted_list(out, name, ((const outbox_config_admin *)obj)->n_read_only_tokens, indent);
}

static void print_pg_password(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted(out, name, ((const outbox_config_store *)obj)->pg_password, indent);
}

/* A connection string may carry a password (password=..., or user:pass@ in a URI). */
static void print_pg_dsn(FILE *out, const char *name, const void *obj, int indent)
{
    const char *dsn = ((const outbox_config_store *)obj)->pg_dsn;
    if (!dsn)
        return;
    fprintf(out, "%*s%s: ", indent, "", name);
    if (strstr(dsn, "password") || strchr(dsn, '@'))
        fputs("\"" CS_REDACTED "\"", out);
    else
        cs_print_quoted(out, dsn);
    fputc('\n', out);
}

/* A URL's password (user:pass@) and query (tokens often ride there) are secrets. */
static void print_sink_url(FILE *out, const char *name, const void *obj, int indent)
{
    const char *url = ((const dlv_sink_config *)obj)->url, *p = strstr(url, "://");
    const char *host = p ? p + 3 : url, *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
    const char *q = strchr(end, '?');
    fprintf(out, "%*s%s: \"", indent, "", name);
    if (colon)
        fprintf(out, "%.*s" CS_REDACTED, (int)(colon + 1 - url), url);
    const char *from = colon ? at : url;
    fprintf(out, "%.*s", q ? (int)(q - from) : (int)strlen(from), from);
    if (q)
        fputs("?" CS_REDACTED, out);
    fputs("\"\n", out);
}

static void print_sink_events(FILE *out, const char *name, const void *obj, int indent)
{
    char t[1024];
    dlv_filter_format(((const dlv_sink_config *)obj)->filter, t, sizeof t);
    fprintf(out, "%*s%s: [", indent, "", name);
    for (char *p = t, *end; *p; p = *end ? end + 2 : end) { /* quoted: "*" starts an alias */
        end = p + strcspn(p, ",");
        fprintf(out, "%s\"%.*s\"", p == t ? "" : ", ", (int)(end - p), p);
    }
    fputs("]\n", out);
}

/* Credentials travel in headers too: values of these names are redacted. */
static int secret_header(const char *name)
{
    static const char *const words[] = {"auth",   "token",    "secret",    "key",
                                        "cookie", "password", "signature", "session"};
    char low[128];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof low; n++)
        low[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

static void print_sink_headers(FILE *out, const char *name, const void *obj, int indent)
{
    const dlv_sink_config *s = obj;
    if (s->n_headers == 0)
        return;
    fprintf(out, "%*s%s:\n", indent, "", name);
    for (size_t i = 0; i < s->n_headers; i++) {
        fprintf(out, "%*s", indent + 2, "");
        cs_print_quoted(out, s->headers[i].name);
        fputs(": ", out);
        if (secret_header(s->headers[i].name))
            fputs("\"" CS_REDACTED "\"", out);
        else
            cs_print_quoted(out, s->headers[i].value);
        fputc('\n', out);
    }
}

static void print_sink_body(FILE *out, const char *name, const void *obj, int indent)
{
    const char *body = ((const dlv_sink_config *)obj)->body;
    if (!body)
        return;
    fprintf(out, "%*s%s: ", indent, "", name);
    cs_print_quoted(out, body);
    fputc('\n', out);
}

/* signing_secret, signing_secret_file and signing_secrets all end up in secrets[]. */
static void print_sink_secrets(FILE *out, const char *name, const void *obj, int indent)
{
    print_redacted_list(out, name, ((const dlv_sink_config *)obj)->n_secrets, indent);
}

static void print_sink_signature(FILE *out, const char *name, const void *obj, int indent)
{
    if (((const dlv_sink_config *)obj)->n_secrets == 0) /* it needs a secret to be written */
        return;
    fprintf(out, "%*s%s: %s\n", indent, "", name,
            dlv_signature_name(((const dlv_sink_config *)obj)->signature));
}

static void print_dead_letter_on(FILE *out, const char *name, const void *obj, int indent)
{
    const dlv_sink_config *s = obj;
    fprintf(out, "%*s%s: [", indent, "", name);
    for (size_t i = 0; i < s->n_dead_letter_on; i++)
        fprintf(out, "%s%d", i ? ", " : "", s->dead_letter_on[i]);
    fputs("]\n", out);
}

static void print_capture_headers(FILE *out, const char *name, const void *obj, int indent)
{
    const dlv_sink_config *s = obj;
    fprintf(out, "%*s%s: [", indent, "", name);
    for (size_t i = 0; i < s->n_capture_headers; i++) {
        fputs(i ? ", " : "", out);
        cs_print_quoted(out, s->capture_headers[i]);
    }
    fputs("]\n", out);
}

static void print_capture_body(FILE *out, const char *name, const void *obj, int indent)
{
    fprintf(out, "%*s%s: %zu\n", indent, "", name, ((const dlv_sink_config *)obj)->capture_body);
}

/* ---- the tables ------------------------------------------------------------------------ */

/* Row makers: R(name, type, struct, field, lo, hi, doc) writes into the section's object;
 * S(...) into the walk's state. */
#define R(name, type, st, field, lo, hi, doc)                                                      \
    {                                                                                              \
        (name), (type), CS_OBJ, offsetof(st, field), (lo), (hi), NULL, NULL, NULL, NULL, NULL,     \
            (doc)                                                                                  \
    }
#define RULE(name, st, field, rule, doc)                                                           \
    {                                                                                              \
        (name), CS_STRING, CS_OBJ, offsetof(st, field), 0, 0, (rule), NULL, NULL, NULL, NULL,      \
            (doc)                                                                                  \
    }
/* A file read later by the TLS library: when it exists, a regular file. */
#define OPT_FILE(name, st, field, doc)                                                             \
    {                                                                                              \
        (name), CS_OPT_STRING, CS_OBJ, offsetof(st, field), 0, 0, cv_regular_file_rule, NULL,      \
            NULL, NULL, NULL, (doc)                                                                \
    }
#define CUSTOM(name, base, off, fn, doc, print)                                                    \
    {                                                                                              \
        (name), CS_CUSTOM, (base), (off), 0, 0, NULL, (fn), NULL, NULL, NULL, (doc), (print)       \
    }
/* A row kept as a node in the walk state, printed by `print` (secrets: redacted). */
#define SP(name, type, st, field, doc, print)                                                      \
    {                                                                                              \
        (name), (type), CS_STATE, offsetof(st, field), 0, 0, NULL, NULL, NULL, NULL, NULL, (doc),  \
            (print)                                                                                \
    }
#define S(name, type, st, field, doc)                                                              \
    {                                                                                              \
        (name), (type), CS_STATE, offsetof(st, field), 0, 0, NULL, NULL, NULL, NULL, NULL, (doc)   \
    }
#define SECTION(name, st, field, sub, doc)                                                         \
    {                                                                                              \
        (name), CS_SECTION, CS_STATE, offsetof(st, field), 0, 0, NULL, NULL, NULL, NULL, (sub),    \
            (doc)                                                                                  \
    }

typedef outbox_config_store store_t;
typedef outbox_config_ingest ingest_t;
typedef dlv_sink_config sink_t;

static const char *const durability_words[] = {"full", "nometasync", NULL};
static const int durability_values[] = {OUTBOX_CONFIG_DURABILITY_FULL,
                                        OUTBOX_CONFIG_DURABILITY_NOMETASYNC};

static const char *const backend_words[] = {"lmdb", "postgres", NULL};
static const int backend_values[] = {OBX_BACKEND_LMDB, OBX_BACKEND_POSTGRES};

/* outbox.postgres.password{,_file}: kept as nodes, resolved after the walk (one of them). */
typedef struct outbox_state {
    const cy_node *postgres, *pg_password, *pg_password_file;
} outbox_state;

static const cs_key postgres_keys[] = {
    {"dsn", CS_STRING, CS_OBJ, offsetof(store_t, pg_dsn), 0, 0, NULL, NULL, NULL, NULL, NULL,
     "libpq connection string or URI (required with backend: postgres)", print_pg_dsn},
    SP("password", CS_NODE, outbox_state, pg_password,
       "the database password (\"${VAR}\": from env)", print_pg_password),
    S("password_file", CS_NODE, outbox_state, pg_password_file,
      "the same, read from a regular file"),
    R("schema", CS_STRING, store_t, pg_schema, 0, 0, "the outbox's schema (default outbox)"),
    R("pool", CS_UINT, store_t, pg_pool, 1, 64, "connections per node (default 8)"),
    R("allow_async_commit", CS_BOOL, store_t, pg_allow_async, 0, 0,
      "accept synchronous_commit=off (default false: refused)"),
    R("lease", CS_DURATION_MS, store_t, pg_lease_ms, 1000, 3600000,
      "claim lease another node takes over after (default 60s)"),
};
static const cs_table postgres_table = CS_TABLE(postgres_keys, 1);

/* outbox.postgres: printed when it is the backend. */
static void print_postgres(FILE *out, const char *name, const void *obj, int indent)
{
    if (((const store_t *)obj)->backend != OBX_BACKEND_POSTGRES)
        return;
    fprintf(out, "%*s%s:\n", indent, "", name);
    cs_print(out, &postgres_table, obj, indent + 2);
}

static const cs_key outbox_keys[] = {
    RULE("path", store_t, path, path_rule, "the store's directory (default ./outbox-data)"),
    R("max_size", CS_SIZE, store_t, max_size, 1 << 20, 0, "store cap (default 1GiB)"),
    R("retention", CS_DURATION_MS, store_t, retention_ms, 0, 0,
      "how long delivered events are kept (default 24h)"),
    {"durability", CS_ENUM, CS_OBJ, offsetof(store_t, durability), 0, 0, NULL, NULL,
     durability_words, durability_values, NULL, "full (default) or nometasync"},
    R("prefill", CS_BOOL, store_t, prefill, 0, 0,
      "zero-fill ahead of the store's last page (default true)"),
    {"backend", CS_ENUM, CS_OBJ, offsetof(store_t, backend), 0, 0, NULL, NULL, backend_words,
     backend_values, NULL, "lmdb (default) or postgres (cluster mode)"},
    {"postgres", CS_SECTION, CS_STATE, offsetof(outbox_state, postgres), 0, 0, NULL, NULL, NULL,
     NULL, &postgres_table, "cluster mode: the PostgreSQL database", print_postgres},
};
static const cs_table outbox_table = CS_TABLE(outbox_keys, 1);

typedef struct ingest_state {
    const cy_node *secret, *secret_file;
} ingest_state;

static const cs_key ingest_keys[] = {
    RULE("listen", ingest_t, listen, listen_addr_check, "HOST:PORT (default 127.0.0.1:8080)"),
    R("max_body", CS_SIZE, ingest_t, max_body, 1, 0, "largest request body (default 1MiB)"),
    CUSTOM("tokens", CS_OBJ, 0, conv_tokens, "accepted Authorization: Bearer tokens",
           print_ingest_tokens),
    SP("signing_secret", CS_NODE, ingest_state, secret, "require a valid X-Flipt-Webhook-Signature",
       print_ingest_secret),
    S("signing_secret_file", CS_NODE, ingest_state, secret_file,
      "the same, read from a regular file"),
    R("max_connections", CS_UINT, ingest_t, max_connections, 1, 1000000,
      "connection cap (default 1024)"),
    R("max_connections_per_ip", CS_UINT, ingest_t, max_connections_per_ip, 0, 1000000,
      "connections per client address (default 256; 0 = no cap)"),
    R("idle_timeout", CS_POSITIVE_MS, ingest_t, idle_timeout_ms, 0, 0,
      "idle connections are closed after it (default 30s)"),
    R("pool_threads", CS_UINT, ingest_t, pool_threads, 0, 1024,
      "0: a thread per connection (default); N: N epoll threads"),
    R("header_timeout", CS_POSITIVE_MS, ingest_t, header_timeout_ms, 0, 0,
      "a request's headers within this of its first byte (default 10s)"),
    R("body_timeout", CS_POSITIVE_MS, ingest_t, body_timeout_ms, 0, 0,
      "its body within this of its headers (default 60s)"),
    R("idempotency_window", CS_POSITIVE_MS, ingest_t, idempotency_window_ms, 0, 0,
      "how long an Idempotency-Key is remembered (default 24h)"),
};
static const cs_table ingest_table = CS_TABLE(ingest_keys, 1);

typedef struct sink_state {
    const cy_node *secret, *secret_file, *secrets;
} sink_state;

/* sinks[].breaker: the circuit breaker (dlv_breaker_config, delivery/sink.h). */
static const cs_key breaker_keys[] = {
    R("enabled", CS_BOOL, sink_t, breaker.enabled, 0, 0, "hold a failing sink (default true)"),
    R("failures", CS_UINT, sink_t, breaker.failures, 1, DLV_BREAKER_FAILURES_MAX,
      "different deliveries failing in a row that take it down (default 5)"),
    R("give_up_after", CS_DURATION_MS, sink_t, breaker.give_up_after_ms, 0, 0,
      "outage after which held deliveries become dead letters (default 0: never)"),
};
static const cs_table breaker_table = CS_TABLE(breaker_keys, 1);

static void print_sink_breaker(FILE *out, const char *name, const void *obj, int indent)
{
    fprintf(out, "%*s%s:\n", indent, "", name);
    cs_print(out, &breaker_table, obj, indent + 2);
}

static const cs_key sink_keys[] = {
    RULE("name", sink_t, name, dlv_sink_name_check, "unique, 1 to 63 of A-Z a-z 0-9 . _ -"),
    {"url", CS_STRING, CS_OBJ, offsetof(sink_t, url), 0, 0, dlv_url_check, NULL, NULL, NULL, NULL,
     "http:// or https:// (any case)", print_sink_url},
    CUSTOM("events", CS_OBJ, offsetof(sink_t, filter), conv_events,
           "noun:verb pairs the sink takes (default every event)", print_sink_events),
    CUSTOM("headers", CS_OBJ, 0, conv_headers, "extra request headers", print_sink_headers),
    CUSTOM("body", CS_OBJ, 0, conv_body, "a Go template for the body (default: the event)",
           print_sink_body),
    S("signing_secret", CS_NODE, sink_state, secret, "sign requests with it"),
    S("signing_secret_file", CS_NODE, sink_state, secret_file,
      "the same, read from a regular file"),
    SP("signing_secrets", CS_NODE_LIST, sink_state, secrets, "more secrets (rotation)",
       print_sink_secrets),
    CUSTOM("signature", CS_OBJ, offsetof(sink_t, signature), conv_signature,
           "both (default), flipt, standard or none", print_sink_signature),
    R("max_backoff_duration", CS_POSITIVE_MS, sink_t, backoff.max_elapsed_ms, 0, 0,
      "retry budget from the first attempt (default 24h; the audit webhook's: 15s)"),
    R("initial_interval", CS_POSITIVE_MS, sink_t, backoff.initial_interval_ms, 0, 0,
      "first retry delay (default 500ms)"),
    R("max_interval", CS_POSITIVE_MS, sink_t, backoff.max_interval_ms, 0, 0,
      "longest retry delay (default 60s)"),
    R("multiplier", CS_DOUBLE, sink_t, backoff.multiplier, 1.0, 1000.0,
      "delay growth per retry (default 1.5)"),
    R("randomization_factor", CS_DOUBLE, sink_t, backoff.randomization_factor, 0.0, 1.0,
      "delay jitter (default 0.5)"),
    R("timeout", CS_POSITIVE_MS, sink_t, timeout_ms, 0, 0, "whole request (default 10s)"),
    R("connect_timeout", CS_POSITIVE_MS, sink_t, connect_timeout_ms, 0, 0,
      "connection set-up (default 5s)"),
    R("max_in_flight", CS_UINT, sink_t, max_in_flight, 1, 100000,
      "concurrent requests (default 64)"),
    R("ordered", CS_BOOL, sink_t, ordered, 0, 0, "strict FIFO, one at a time (default false)"),
    CUSTOM("dead_letter_on", CS_OBJ, 0, conv_dead_letter_on, "statuses that dead-letter at once",
           print_dead_letter_on),
    OPT_FILE("ca_file", sink_t, ca_file, "CA bundle for https"),
    OPT_FILE("client_cert", sink_t, client_cert, "PEM client certificate (mTLS)"),
    OPT_FILE("client_key", sink_t, client_key, "PEM client key (mTLS)"),
    R("insecure", CS_BOOL, sink_t, insecure, 0, 0, "skip TLS verification (default false)"),
    CUSTOM("capture_headers", CS_OBJ, 0, conv_capture_headers,
           "response headers kept per attempt besides Content-Type, Retry-After, Location",
           print_capture_headers),
    CUSTOM("capture_body", CS_OBJ, 0, conv_capture_body,
           "response body bytes kept per attempt (default 1KiB, 0 = none, at most 64KiB)",
           print_capture_body),
    {"breaker", CS_SECTION, CS_STATE, CS_NO_FIELD, 0, 0, NULL, NULL, NULL, NULL, &breaker_table,
     "the circuit breaker: enabled, failures, give_up_after", print_sink_breaker},
};
static const cs_table sink_table = CS_TABLE(sink_keys, 1);

/* Flipt's audit block: unknown keys ignored, as Flipt does; nodes are kept and checked in
 * Flipt's order by load_audit. */
typedef struct audit_state {
    const cy_node *events, *buffer, *sinks, *capacity, *flush;
    const cy_node *webhook, *url, *secret, *secret_file, *templates;
    int enabled;
    int64_t backoff_ns; /* 0, unset or negative: the default */
} audit_state;

typedef struct template_src {
    const cy_node *url, *headers, *body;
} template_src;

static const cs_key template_keys[] = {
    S("url", CS_NODE, template_src, url, "where the rendered body is POSTed"),
    S("headers", CS_NODE, template_src, headers, "extra request headers"),
    S("body", CS_NODE, template_src, body, "the Go template"),
};
static const cs_table template_table = CS_TABLE(template_keys, 0);

static const cs_key webhook_keys[] = {
    S("enabled", CS_BOOL, audit_state, enabled, "deliver to this webhook (default false)"),
    S("url", CS_NODE_SCALAR, audit_state, url, "the sink \"webhook\" (URL mode)"),
    S("signing_secret", CS_NODE, audit_state, secret, "X-Flipt-Webhook-Signature secret"),
    S("signing_secret_file", CS_NODE, audit_state, secret_file, "the same, from a file"),
    S("max_backoff_duration", CS_DURATION_NS, audit_state, backoff_ns,
      "retry budget (default 15s)"),
    S("templates", CS_NODE_LIST, audit_state, templates, "sinks template-1, template-2, ..."),
};
static const cs_table webhook_table = CS_TABLE(webhook_keys, 0);

static const cs_key audit_sinks_keys[] = {
    SECTION("webhook", audit_state, webhook, &webhook_table, "Flipt's webhook sink"),
};
static const cs_table audit_sinks_table = CS_TABLE(audit_sinks_keys, 0);

static const cs_key buffer_keys[] = {
    S("capacity", CS_NODE, audit_state, capacity, "validated 2..10 as Flipt; unused"),
    S("flush_period", CS_NODE, audit_state, flush, "validated 2m..5m as Flipt; unused"),
};
static const cs_table buffer_table = CS_TABLE(buffer_keys, 0);

static const cs_key audit_keys[] = {
    S("events", CS_NODE, audit_state, events, "noun:verb pairs (default *:*)"),
    SECTION("buffer", audit_state, buffer, &buffer_table, "Flipt's buffer settings"),
    SECTION("sinks", audit_state, sinks, &audit_sinks_table, "Flipt's sinks"),
};
static const cs_table audit_table = CS_TABLE(audit_keys, 0);

typedef outbox_config_admin admin_t;

static const cs_key admin_keys[] = {
    RULE("listen", admin_t, listen, listen_addr_check,
         "HOST:PORT of the admin API and console (absent: none)"),
    CUSTOM("tokens", CS_OBJ, 0, conv_admin_tokens, "read-write bearer tokens", print_admin_tokens),
    CUSTOM("read_only_tokens", CS_OBJ, 0, conv_admin_ro_tokens,
           "bearer tokens that may read, not replay or purge", print_admin_ro_tokens),
};
static const cs_table admin_table = CS_TABLE(admin_keys, 1);

typedef struct top_state {
    const cy_node *outbox, *ingest, *audit, *sinks, *admin;
} top_state;

static const cs_key top_keys[] = {
    S("outbox", CS_NODE, top_state, outbox, "the store"),
    S("ingest", CS_NODE, top_state, ingest, "the HTTP listener"),
    S("audit", CS_NODE, top_state, audit, "Flipt's audit block"),
    S("sinks", CS_NODE, top_state, sinks, "named sinks"),
    S("admin", CS_NODE, top_state, admin, "the admin API and console listener"),
};
static const cs_table top_table = CS_TABLE(top_keys, 1);

/* ---- sinks ----------------------------------------------------------------------------- */

/* Grow c->sinks by one initialised config; returns it or NULL. */
static dlv_sink_config *new_sink(outbox_config *c)
{
    dlv_sink_config *v = realloc(c->sinks, (c->n_sinks + 1) * sizeof *v);
    if (!v)
        return NULL;
    c->sinks = v;
    dlv_sink_config_init(&v[c->n_sinks]);
    return &v[c->n_sinks++];
}

/*
 * The rules that span a sink's keys, for every sink (listed or made from the audit block):
 * the ones the delivery engine would otherwise refuse at start, with the sink's line.
 */
static int check_sink(cy_ctx *x, const cy_node *n, const char *path, const dlv_sink_config *s,
                      int have_signature)
{
    char sp[CY_PATH_MAX], e[256];
    for (size_t i = 0; i < s->n_secrets; i++)
        if (dlv_signing_secret_check(s->secrets[i], (s->signature & DLV_SIG_STANDARD) != 0, e,
                                     sizeof e) != DLV_OK) {
            cy_errf(x, n, path, "signing secret %zu: %s", i + 1, e);
            return -1;
        }
    if (have_signature && s->signature != DLV_SIG_NONE && s->n_secrets == 0) {
        cy_subpath(sp, path, "signature");
        cy_errf(x, n, sp, "signature %s needs a signing_secret", dlv_signature_name(s->signature));
        return -1;
    }
    if ((s->client_cert != NULL) != (s->client_key != NULL)) {
        cy_subpath(sp, path, s->client_cert ? "client_key" : "client_cert");
        cy_errf(x, n, sp, "client_cert and client_key go together");
        return -1;
    }
    if (s->backoff.initial_interval_ms > s->backoff.max_interval_ms) {
        cy_subpath(sp, path, "initial_interval");
        cy_errf(x, n, sp, "must not exceed max_interval");
        return -1;
    }
    return 0;
}

/* Append the sink just made (the last of c->sinks): names are unique, at most
 * OUTBOX_CONFIG_MAX_SINKS. n_audit: how many came from the audit block. */
static int check_added(cy_ctx *x, const outbox_config *c, const cy_node *n, const char *path,
                       size_t n_audit)
{
    char np[CY_PATH_MAX];
    const char *name = c->sinks[c->n_sinks - 1].name;
    if (c->n_sinks > OUTBOX_CONFIG_MAX_SINKS) {
        cy_errf(x, n, path, "more than %d sinks", OUTBOX_CONFIG_MAX_SINKS);
        return -1;
    }
    for (size_t j = 0; j + 1 < c->n_sinks; j++) {
        if (strcmp(c->sinks[j].name, name) != 0)
            continue;
        cy_subpath(np, path, "name");
        if (j < n_audit)
            cy_errf(x, n, np, "duplicate sink name \"%s\" (already made from the audit block)",
                    name);
        else
            cy_errf(x, n, np, "duplicate sink name \"%s\" (also sinks[%zu])", name, j - n_audit);
        return -1;
    }
    return 0;
}

static int load_sink(cy_ctx *x, outbox_config *c, const cy_node *n, const char *path)
{
    dlv_sink_config *s = new_sink(c);
    char *secret = NULL, sp[CY_PATH_MAX];
    if (!s) {
        oom(x, n, path);
        return -1;
    }
    /* A durable outbox rides out a receiver's outage: a day's budget, not Flipt's 15 s
       (the audit block's sinks keep Flipt's default). */
    s->backoff.max_elapsed_ms = OUTBOX_CONFIG_SINK_MAX_BACKOFF_MS;
    sink_state st = {0};
    uint64_t seen = 0;
    if (cs_walk(x, n, path, &sink_table, s, &st, &seen) < 0 || cy_want_map(x, n, path) < 0)
        return -1;
    if (!s->name || !s->url) {
        cy_subpath(sp, path, !s->name ? "name" : "url");
        cy_errf(x, n, sp, "required");
        return -1;
    }
    if (cv_secret_pair(x, st.secret, st.secret_file, path, SECRET_KEYS, &secret) < 0)
        return -1;
    if (secret && cv_push(&s->secrets, &s->n_secrets, secret) < 0) {
        dlv_secret_free(secret);
        oom(x, n, path);
        return -1;
    }
    cy_subpath(sp, path, "signing_secrets");
    if (push_secrets(x, st.secrets, sp, "secret", &s->secrets, &s->n_secrets) < 0)
        return -1;
    return check_sink(x, n, path, s, (seen & cs_bit(&sink_table, "signature")) != 0);
}

/* ---- audit: Flipt's block -------------------------------------------------------------- */

static int copy_secret(dlv_sink_config *s, const char *secret)
{
    if (!secret)
        return 0;
    char *d = strdup(secret);
    if (!d || cv_push(&s->secrets, &s->n_secrets, d) < 0) {
        free(d);
        return -1;
    }
    return 0;
}

/* One sink made from the audit block: name, url node, the shared settings. */
static int audit_sink(cy_ctx *x, outbox_config *c, const char *name, const cy_node *n,
                      const char *path, const cy_node *url, const char *secret, int64_t bound_ms,
                      dlv_sink_config **out)
{
    char up[CY_PATH_MAX], e[256];
    dlv_sink_config *s = new_sink(c);
    if (!s || !(s->name = strdup(name)) || !(s->filter = dlv_filter_dup(c->audit.events)) ||
        copy_secret(s, secret) < 0) {
        oom(x, n, path);
        return -1;
    }
    cy_subpath(up, path, "url");
    if (url && !cy_is_null(url) && cv_string(x, url, up, &s->url) < 0)
        return -1;
    if (!s->url || !*s->url) { /* Flipt accepts it and fails every send */
        cy_errf(x, n, up, "url not provided");
        return -1;
    }
    if (dlv_url_check(s->url, e, sizeof e) != DLV_OK) {
        cy_errf(x, url, up, "%s", e);
        return -1;
    }
    s->backoff.max_elapsed_ms = bound_ms;
    *out = s;
    return 0;
}

static int load_audit(cy_ctx *x, outbox_config *c, const cy_node *audit)
{
    audit_state w = {0};
    char *secret = NULL;
    int rc = -1;
    if (cs_walk(x, audit, "audit", &audit_table, NULL, &w, NULL) < 0)
        return -1;
    const int enabled = w.enabled;
    const cy_node *wn = w.webhook ? w.webhook : audit;
    c->audit.webhook_enabled = enabled;
    /* Flipt's order: webhook (if enabled), kafka, capacity, flush period. */
    size_t nt = w.templates && w.templates->kind == CY_LIST ? w.templates->n_items : 0;
    bool has_url = w.url && !cy_is_null(w.url) && *w.url->str;
    if (enabled && !has_url && nt == 0) {
        cy_errf(x, wn, "audit.sinks.webhook", "url or template(s) not provided");
        return -1;
    }
    if (enabled && has_url && nt > 0) {
        cy_errf(x, wn, "audit.sinks.webhook", "only one of url or template(s) allowed");
        return -1;
    }
    if (w.capacity) {
        long long cap;
        if (cv_int(x, w.capacity, "audit.buffer.capacity", LLONG_MIN, LLONG_MAX, &cap) < 0)
            return -1;
        if (cap < 2 || cap > 10) {
            cy_errf(x, w.capacity, "audit.buffer.capacity", "buffer capacity below 2 or above 10");
            return -1;
        }
        c->audit.buffer_capacity = (int)cap;
    }
    if (w.flush) {
        int64_t ns;
        if (cv_duration_ns(x, w.flush, "audit.buffer.flush_period", &ns) < 0)
            return -1;
        if (ns < INT64_C(120000000000) || ns > INT64_C(300000000000)) {
            cy_errf(x, w.flush, "audit.buffer.flush_period",
                    "flush period below 2 minutes or greater than 5 minutes");
            return -1;
        }
        c->audit.buffer_flush_period_ns = ns;
    }
    if (w.events && conv_events(x, w.events, "audit.events", &c->audit.events) < 0)
        return -1;
    if (!enabled)
        return 0;

    if (cv_secret_pair(x, w.secret, w.secret_file, "audit.sinks.webhook", SECRET_KEYS, &secret) < 0)
        return -1;
    /* 0, unset or negative: 15 s at runtime (Flipt's internal/cmd/grpc.go) */
    int64_t bound_ms = w.backoff_ns > 0 ? dlv_ns_to_ms(w.backoff_ns) : DLV_BACKOFF_MAX_ELAPSED_MS;
    dlv_sink_config *s;
    if (has_url) {
        if (audit_sink(x, c, "webhook", wn, "audit.sinks.webhook", w.url, secret, bound_ms, &s) <
                0 ||
            check_sink(x, wn, "audit.sinks.webhook", s, 0) < 0)
            goto out;
    }
    for (size_t i = 0; !has_url && i < nt; i++) {
        const cy_node *tn = w.templates->items[i];
        char tp[CY_PATH_MAX], sp[CY_PATH_MAX], name[32];
        template_src t = {0};
        cy_indexpath(tp, "audit.sinks.webhook.templates", i);
        if (cs_walk(x, tn, tp, &template_table, NULL, &t, NULL) < 0 || cy_want_map(x, tn, tp) < 0)
            goto out;
        (void)snprintf(name, sizeof name, "template-%zu", i + 1);
        if (audit_sink(x, c, name, tn, tp, t.url, secret, bound_ms, &s) < 0 ||
            check_added(x, c, tn, tp, c->n_sinks) < 0)
            goto out;
        cy_subpath(sp, tp, "headers");
        if (t.headers && conv_headers(x, t.headers, sp, s) < 0)
            goto out;
        cy_subpath(sp, tp, "body");
        if (t.body && conv_body(x, t.body, sp, s) < 0)
            goto out;
        if (!s->body) {
            cy_errf(x, tn, sp, "body not provided (an empty body fails every event in Flipt)");
            goto out;
        }
        if (check_sink(x, tn, tp, s, 0) < 0)
            goto out;
    }
    rc = 0;
out:
    dlv_secret_free(secret);
    return rc;
}

/* ---- top level ------------------------------------------------------------------------- */

int outbox_config_defaults(outbox_config *c)
{
    memset(c, 0, sizeof *c);
    c->outbox.path = strdup(DEFAULT_PATH);
    c->outbox.max_size = UINT64_C(1) << 30;
    c->outbox.retention_ms = INT64_C(24) * 3600 * 1000;
    c->outbox.durability = OUTBOX_CONFIG_DURABILITY_FULL;
    c->outbox.prefill = 1;
    c->ingest.listen = strdup(DEFAULT_LISTEN);
    c->ingest.max_body = UINT64_C(1) << 20;
    c->ingest.max_connections = 1024;
    c->ingest.max_connections_per_ip = 256;
    c->ingest.idle_timeout_ms = 30000;
    c->ingest.header_timeout_ms = OIN_HEADER_TIMEOUT_MS;
    c->ingest.body_timeout_ms = OIN_BODY_TIMEOUT_MS;
    c->ingest.idempotency_window_ms = OIN_IDEM_WINDOW_MS;
    c->audit.events = dlv_filter_new_all();
    c->audit.buffer_capacity = 2;
    c->audit.buffer_flush_period_ns = INT64_C(120000000000);
    if (!c->outbox.path || !c->ingest.listen || !c->audit.events) {
        outbox_config_clear(c);
        return -1;
    }
    return 0;
}

/* `admin:`: listen is required; without a token it must be a loopback address. */
static int load_admin(cy_ctx *x, outbox_config_admin *a, const cy_node *n)
{
    if (!n || cy_is_null(n))
        return 0;
    if (cs_walk(x, n, "admin", &admin_table, a, NULL, NULL) < 0)
        return -1;
    if (!a->listen) {
        cy_errf(x, n, "admin", "listen is required (e.g. 127.0.0.1:8081)");
        return -1;
    }
    if (a->n_tokens + a->n_read_only_tokens == 0 && !listen_addr_is_loopback(a->listen)) {
        cy_errf(x, n, "admin.listen",
                "\"%s\" is not a loopback address: an admin listener reachable from other "
                "hosts needs admin.tokens (or listen on 127.0.0.1)",
                a->listen);
        return -1;
    }
    return 0;
}

static int load_document(cy_ctx *x, outbox_config *c, const cy_node *root)
{
    top_state t = {0};
    if (!root || cy_is_null(root))
        return 0; /* an empty file: all defaults, no sinks */
    if (root->kind != CY_MAP) {
        cy_errf(x, root, NULL, "the top level must be a mapping, found %s", cy_kind_name(root));
        return -1;
    }
    outbox_state ost = {0};
    if (cs_walk(x, root, "", &top_table, NULL, &t, NULL) < 0 ||
        cs_walk(x, t.outbox, "outbox", &outbox_table, &c->outbox, &ost, NULL) < 0 ||
        cv_secret_pair(x, ost.pg_password, ost.pg_password_file, "outbox.postgres", "password",
                       "password_file", &c->outbox.pg_password) < 0)
        return -1;
    if (c->outbox.backend == OBX_BACKEND_POSTGRES && !c->outbox.pg_dsn) {
        cy_errf(x, ost.postgres ? ost.postgres : t.outbox, "outbox.postgres.dsn",
                "required with backend: postgres");
        return -1;
    }
    ingest_state ist = {0};
    if (cs_walk(x, t.ingest, "ingest", &ingest_table, &c->ingest, &ist, NULL) < 0 ||
        cv_secret_pair(x, ist.secret, ist.secret_file, "ingest", SECRET_KEYS,
                       &c->ingest.signing_secret) < 0)
        return -1;
    if (load_admin(x, &c->admin, t.admin) < 0 || load_audit(x, c, t.audit) < 0)
        return -1;
    if (!t.sinks || cy_is_null(t.sinks))
        return 0;
    if (cy_want_list(x, t.sinks, "sinks") < 0)
        return -1;
    const size_t n_audit = c->n_sinks;
    for (size_t i = 0; i < t.sinks->n_items; i++) {
        char ip[CY_PATH_MAX];
        cy_indexpath(ip, "sinks", i);
        if (load_sink(x, c, t.sinks->items[i], ip) < 0 ||
            check_added(x, c, t.sinks->items[i], ip, n_audit) < 0)
            return -1;
    }
    return 0;
}

int outbox_config_load_buffer(const char *name, const char *yaml, size_t len, outbox_config **out,
                              char *err, size_t errlen)
{
    outbox_config *c = calloc(1, sizeof *c);
    cy_ctx x = {name ? name : "config", err, errlen};
    cy_doc *doc = NULL;
    int rc = -1;

    if (err && errlen)
        err[0] = '\0';
    if (!c || outbox_config_defaults(c) < 0) {
        cy_errf(&x, NULL, NULL, "out of memory");
        free(c);
        return -1;
    }
    c->file = strdup(x.file);
    if (!c->file) {
        cy_errf(&x, NULL, NULL, "out of memory");
        goto out;
    }
    if (cy_parse(&x, yaml, len, CY_MAX_DEPTH, &doc) < 0 || load_document(&x, c, cy_root(doc)) < 0)
        goto out;
    rc = 0;
out:
    cy_doc_free(doc);
    if (rc == 0)
        *out = c;
    else
        outbox_config_free(c);
    return rc;
}

int outbox_config_load(const char *path, outbox_config **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (!f) {
        if (err && errlen)
            (void)snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CONFIG_MAX) {
                if (err && errlen)
                    (void)snprintf(err, errlen, "%s: larger than 16 MiB", path);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                if (err && errlen)
                    (void)snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) {
                if (err && errlen)
                    (void)snprintf(err, errlen, "%s: read error", path);
                goto out;
            }
            break;
        }
    }
    rc = outbox_config_load_buffer(path, buf ? buf : "", len, out, err, errlen);
out:
    if (buf) {
        dlv_secret_wipe(buf, cap); /* the file may hold secrets */
        free(buf);
    }
    (void)fclose(f);
    return rc;
}

int outbox_config_check(const outbox_config *c, unsigned flags, char *err, size_t errlen)
{
    if ((flags & OUTBOX_CONFIG_REQUIRE_SINKS) && c->n_sinks == 0) {
        if (err && errlen)
            (void)snprintf(err, errlen,
                           "%s: sinks: no sink is configured (sinks: is empty and "
                           "audit.sinks.webhook is not enabled): every event would be "
                           "acknowledged and dropped; add a sink, or start with "
                           "--allow-no-sinks",
                           c->file ? c->file : "config");
        return -1;
    }
    return 0;
}

void outbox_config_store_options(const outbox_config_store *s, obx_options *o)
{
    o->backend = (obx_backend)s->backend;
    o->pg_dsn = s->pg_dsn;
    o->pg_password = s->pg_password;
    o->pg_schema = s->pg_schema;
    o->pg_pool = s->pg_pool;
    o->allow_async_commit = s->pg_allow_async;
    o->pg_lease_ms = (unsigned)s->pg_lease_ms;
}

void outbox_config_clear(outbox_config *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->outbox.path);
    free(c->outbox.pg_dsn);
    dlv_secret_free(c->outbox.pg_password);
    free(c->outbox.pg_schema);
    free(c->ingest.listen);
    for (size_t i = 0; i < c->ingest.n_tokens; i++)
        dlv_secret_free(c->ingest.tokens[i]);
    free(c->ingest.tokens);
    dlv_secret_free(c->ingest.signing_secret);
    free(c->admin.listen);
    for (size_t i = 0; i < c->admin.n_tokens; i++)
        dlv_secret_free(c->admin.tokens[i]);
    free(c->admin.tokens);
    for (size_t i = 0; i < c->admin.n_read_only_tokens; i++)
        dlv_secret_free(c->admin.read_only_tokens[i]);
    free(c->admin.read_only_tokens);
    dlv_filter_free(c->audit.events);
    dlv_sink_configs_free(c->sinks, c->n_sinks);
    memset(c, 0, sizeof *c);
}

void outbox_config_free(outbox_config *c)
{
    outbox_config_clear(c);
    free(c);
}

long outbox_config_find_sink(const outbox_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_sinks; i++)
        if (strcmp(c->sinks[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void print_table(FILE *out, const char *section, const cs_table *t)
{
    for (size_t i = 0; i < t->n_keys; i++) {
        const cs_key *k = &t->keys[i];
        if (k->type == CS_SECTION)
            continue;
        char key[128];
        (void)snprintf(key, sizeof key, "%s%s%s", section, *section ? "." : "", k->name);
        fprintf(out, "  %-42s %s\n", key, k->doc);
    }
}

/* The sections outboxd reads, for --config-keys and --print-config alike: where each
 * table's rows are written in an outbox_config (NO_OBJ: only listed, as Flipt's audit
 * block, which --print-config shows as the sinks made from it). */
#define NO_OBJ ((size_t)-1)
static const struct section {
    const char *path;
    const cs_table *t;
    size_t obj;
} sections[] = {
    {"outbox", &outbox_table, offsetof(outbox_config, outbox)},
    {"outbox.postgres", &postgres_table, NO_OBJ}, /* printed inside outbox */
    {"ingest", &ingest_table, offsetof(outbox_config, ingest)},
    {"admin", &admin_table, offsetof(outbox_config, admin)},
    {"audit", &audit_table, NO_OBJ},
    {"audit.buffer", &buffer_table, NO_OBJ},
    {"audit.sinks.webhook", &webhook_table, NO_OBJ},
    {"audit.sinks.webhook.templates[]", &template_table, NO_OBJ},
    {"sinks[]", &sink_table, NO_OBJ}, /* printed as a list below */
    {"sinks[].breaker", &breaker_table, NO_OBJ},
};

void outbox_config_print_keys(FILE *out)
{
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        print_table(out, sections[i].path, sections[i].t);
}

/* A table's rows for `obj` at `indent`, into a new string (*buf, *len; the caller frees
 * *buf). -1 when out of memory. */
static int print_rows(const cs_table *t, const void *obj, int indent, char **buf, size_t *len)
{
    FILE *m = open_memstream(buf, len);
    if (!m)
        return -1;
    cs_print(m, t, obj, indent);
    if (fclose(m) != 0) {
        free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

int outbox_config_print(const outbox_config *c, FILE *out)
{
    fprintf(out,
            "# effective configuration of %s (environment and flags applied, secrets "
            "redacted)\n",
            c->file ? c->file : "(buffer)");
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (sections[i].obj == NO_OBJ)
            continue;
        /* a section with nothing set (admin: without a listener) is left out whole */
        char *buf = NULL;
        size_t len = 0;
        if (print_rows(sections[i].t, (const char *)c + sections[i].obj, 2, &buf, &len) < 0)
            return -1;
        if (len)
            fprintf(out, "%s:\n%s", sections[i].path, buf);
        free(buf);
    }
    fprintf(out, "sinks:%s\n", c->n_sinks ? "" : " []");
    for (size_t i = 0; i < c->n_sinks; i++) {
        /* each sink's rows at indent 4, the first line's indent turned into "  - " */
        char *buf = NULL;
        size_t len = 0;
        if (print_rows(&sink_table, &c->sinks[i], 4, &buf, &len) < 0)
            return -1;
        if (len >= 4)
            memcpy(buf, "  - ", 4);
        fputs(buf, out);
        free(buf);
    }
    return ferror(out) ? -1 : 0;
}
