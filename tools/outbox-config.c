/*
 * tools/outbox-config.c - loading outboxd's YAML configuration (see outbox-config.h).
 *
 * libyaml loads the file into a document (anchors and aliases resolved); this file walks it
 * section by section, converting every value with the key path and line at hand so that
 * each error reads "<file>:<line>: <key path>: <reason>". Secret values are never copied
 * into a message: messages about secrets name the key, the variable or the file only.
 */
#include "outbox-config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "delivery/duration.h"

#define PATH_MAX_LEN   256
#define SECRET_MAX     65536
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_PATH   "./outbox-data"

typedef struct ctx {
    const char *file;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    outbox_config *c;
} ctx;

static void errf(ctx *x, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void errf(ctx *x, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->err || x->errlen == 0)
        return;
    if (path && *path)
        (void)snprintf(x->err, x->errlen, "%s:%lu: %s: %s", x->file,
                       n ? (unsigned long)n->start_mark.line + 1 : 1ul, path, msg);
    else
        (void)snprintf(x->err, x->errlen, "%s:%lu: %s", x->file,
                       n ? (unsigned long)n->start_mark.line + 1 : 1ul, msg);
}

static void oom(ctx *x, const yaml_node_t *n, const char *path)
{
    errf(x, n, path, "out of memory");
}

/* ---- small helpers -------------------------------------------------------------------- */

/* Key paths are bounded (PATH_MAX_LEN); a longer one is truncated, which only shortens a
 * message. vsnprintf through a function keeps that truncation deliberate. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
}

static void subpath(char *out, const char *parent, const char *key)
{
    if (parent && *parent)
        pathf(out, "%s.%s", parent, key);
    else
        pathf(out, "%s", key);
}

static void indexpath(char *out, const char *parent, size_t i)
{
    pathf(out, "%s[%zu]", parent, i);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = scalar(n);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int want_scalar(ctx *x, const yaml_node_t *n, const char *path, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        errf(x, n, path, "expected %s, found %s", what, node_kind(n));
        return -1;
    }
    return 0;
}

static int want_map(ctx *x, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_MAPPING_NODE) {
        errf(x, n, path, "expected a mapping, found %s", node_kind(n));
        return -1;
    }
    return 0;
}

static int want_seq(ctx *x, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        errf(x, n, path, "expected a list, found %s", node_kind(n));
        return -1;
    }
    return 0;
}

/* Iterate a mapping: key string and value node. Checks keys are scalars and unique. */
typedef int (*pair_fn)(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *ud);

static int each_pair(ctx *x, yaml_node_t *map, const char *path, pair_fn fn, void *ud)
{
    if (want_map(x, map, path) < 0)
        return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            errf(x, k, path, "mapping keys must be strings");
            return -1;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(x->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && strcmp(scalar(k2), scalar(k)) == 0) {
                char sp[PATH_MAX_LEN];
                subpath(sp, path, scalar(k));
                errf(x, k, sp, "duplicate key (first at line %lu)",
                     (unsigned long)k2->start_mark.line + 1);
                return -1;
            }
        }
        char sp[PATH_MAX_LEN];
        subpath(sp, path, scalar(k));
        if (fn(x, scalar(k), k, v, sp, ud) < 0)
            return -1;
    }
    return 0;
}

static int unknown_key(ctx *x, const yaml_node_t *k, const char *path, const char *allowed)
{
    errf(x, k, path, "unknown key (expected one of: %s)", allowed);
    return -1;
}

static int dup_string(ctx *x, const yaml_node_t *n, const char *path, char **dst)
{
    if (want_scalar(x, n, path, "a string") < 0)
        return -1;
    char *s = strdup(scalar(n));
    if (!s) {
        oom(x, n, path);
        return -1;
    }
    free(*dst);
    *dst = s;
    return 0;
}

/* A string, NULL for null/empty. */
static int opt_string(ctx *x, const yaml_node_t *n, const char *path, char **dst)
{
    if (is_null(n)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (dup_string(x, n, path, dst) < 0)
        return -1;
    if (!**dst) {
        free(*dst);
        *dst = NULL;
    }
    return 0;
}

static int get_bool(ctx *x, const yaml_node_t *n, const char *path, int *dst)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON",  "1"};
    static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                     "NO",    "off",   "Off",   "OFF", "0"};
    if (want_scalar(x, n, path, "true or false") < 0)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(scalar(n), yes[i]) == 0) {
            *dst = 1;
            return 0;
        }
        if (strcmp(scalar(n), no[i]) == 0) {
            *dst = 0;
            return 0;
        }
    }
    errf(x, n, path, "expected true or false, found \"%s\"", scalar(n));
    return -1;
}

static int get_int(ctx *x, const yaml_node_t *n, const char *path, long long lo, long long hi,
                   long long *dst)
{
    if (want_scalar(x, n, path, "an integer") < 0)
        return -1;
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        errf(x, n, path, "expected an integer, found \"%s\"", s);
        return -1;
    }
    if (v < lo || v > hi) {
        errf(x, n, path, "%lld is out of range (%lld..%lld)", v, lo, hi);
        return -1;
    }
    *dst = v;
    return 0;
}

static int get_unsigned(ctx *x, const yaml_node_t *n, const char *path, long long lo, long long hi,
                        unsigned *dst)
{
    long long v;
    if (get_int(x, n, path, lo, hi, &v) < 0)
        return -1;
    *dst = (unsigned)v;
    return 0;
}

static int get_double(ctx *x, const yaml_node_t *n, const char *path, double lo, double hi,
                      double *dst)
{
    if (want_scalar(x, n, path, "a number") < 0)
        return -1;
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        errf(x, n, path, "expected a number, found \"%s\"", s);
        return -1;
    }
    if (v < lo || v > hi) {
        errf(x, n, path, "%g is out of range (%g..%g)", v, lo, hi);
        return -1;
    }
    *dst = v;
    return 0;
}

/* A Go duration; a plain YAML integer is nanoseconds (as Flipt/viper read it). */
static int get_duration_ns(ctx *x, const yaml_node_t *n, const char *path, int64_t *dst)
{
    char e[256];
    if (want_scalar(x, n, path, "a duration") < 0)
        return -1;
    const char *s = scalar(n);
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && *s) {
        const char *p = s + (*s == '-' || *s == '+');
        if (*p && strspn(p, "0123456789") == strlen(p)) {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (errno || *end) {
                errf(x, n, path, "integer duration out of range");
                return -1;
            }
            *dst = v;
            return 0;
        }
    }
    if (dlv_duration_parse(s, dst, e, sizeof e) < 0) {
        errf(x, n, path, "%s", e);
        return -1;
    }
    return 0;
}

static int get_duration_ms(ctx *x, const yaml_node_t *n, const char *path, int64_t *dst)
{
    int64_t ns;
    if (get_duration_ns(x, n, path, &ns) < 0)
        return -1;
    *dst = dlv_ns_to_ms(ns);
    return 0;
}

static int get_positive_ms(ctx *x, const yaml_node_t *n, const char *path, int64_t *dst)
{
    int64_t ms;
    if (get_duration_ms(x, n, path, &ms) < 0)
        return -1;
    if (ms <= 0) {
        errf(x, n, path, "must be a positive duration, found \"%s\"", scalar(n));
        return -1;
    }
    *dst = ms;
    return 0;
}

static int get_size(ctx *x, const yaml_node_t *n, const char *path, uint64_t *dst)
{
    char e[256];
    if (want_scalar(x, n, path, "a size") < 0)
        return -1;
    if (dlv_size_parse(scalar(n), dst, e, sizeof e) < 0) {
        errf(x, n, path, "%s", e);
        return -1;
    }
    return 0;
}

/* A list of strings (a single scalar is not accepted: the schema says list). */
static int get_string_list(ctx *x, yaml_node_t *n, const char *path, char ***dst, size_t *count)
{
    if (is_null(n)) {
        *count = 0;
        return 0;
    }
    if (want_seq(x, n, path) < 0)
        return -1;
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc(len ? len : 1, sizeof *v);
    if (!v) {
        oom(x, n, path);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *it = yaml_document_get_node(x->doc, n->data.sequence.items.start[i]);
        char ip[PATH_MAX_LEN];
        indexpath(ip, path, i);
        if (!it || dup_string(x, it, ip, &v[i]) < 0) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return -1;
        }
    }
    *dst = v;
    *count = len;
    return 0;
}

static void free_string_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    for (volatile char *p = s; *p; p++)
        *p = 0;
    free(s);
}

/* ---- secrets ------------------------------------------------------------------------- */

/* "${NAME}" (the whole value) -> the environment variable; anything else literally.
 * *dst becomes NULL for an empty value. */
static int resolve_secret(ctx *x, const yaml_node_t *n, const char *path, char **dst)
{
    if (is_null(n)) {
        *dst = NULL;
        return 0;
    }
    if (n->type != YAML_SCALAR_NODE) {
        errf(x, n, path, "expected a string, found %s", node_kind(n));
        return -1;
    }
    const char *s = scalar(n);
    size_t len = strlen(s);
    const char *val = s;
    if (len > 3 && s[0] == '$' && s[1] == '{' && s[len - 1] == '}') {
        char name[256];
        if (len - 3 >= sizeof name) {
            errf(x, n, path, "environment variable name too long");
            return -1;
        }
        memcpy(name, s + 2, len - 3);
        name[len - 3] = '\0';
        val = getenv(name);
        if (!val) {
            errf(x, n, path, "environment variable %s is not set", name);
            return -1;
        }
        if (!*val) {
            errf(x, n, path, "environment variable %s is empty", name);
            return -1;
        }
    }
    if (!*val) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(val);
    if (!*dst) {
        oom(x, n, path);
        return -1;
    }
    return 0;
}

/* Read a secret file, trimming one trailing "\n" or "\r\n". */
static int read_secret_file(ctx *x, const yaml_node_t *n, const char *path, char **dst)
{
    if (want_scalar(x, n, path, "a file path") < 0)
        return -1;
    const char *file = scalar(n);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errf(x, n, path, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    char *buf = malloc(SECRET_MAX + 1);
    size_t len = 0;
    int rc = -1;
    if (!buf) {
        oom(x, n, path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, SECRET_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errf(x, n, path, "cannot read %s: %s", file, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > SECRET_MAX) {
            errf(x, n, path, "%s is larger than %d bytes", file, SECRET_MAX);
            goto out;
        }
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    if (len == 0) {
        errf(x, n, path, "%s is empty", file);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        errf(x, n, path, "%s contains a NUL byte", file);
        goto out;
    }
    *dst = buf;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        memset(buf, 0, SECRET_MAX + 1);
        free(buf);
    }
    (void)close(fd);
    return rc;
}

/* Append a secret (taken) to a secret list. */
static int push_secret(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* ---- outbox: ---------------------------------------------------------------------------- */

static int outbox_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *ud)
{
    outbox_config_store *s = ud;
    if (strcmp(key, "path") == 0) {
        if (dup_string(x, v, path, &s->path) < 0)
            return -1;
        if (!*s->path) {
            errf(x, v, path, "must not be empty");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "max_size") == 0) {
        if (get_size(x, v, path, &s->max_size) < 0)
            return -1;
        if (s->max_size < (UINT64_C(1) << 20)) {
            errf(x, v, path, "must be at least 1MiB");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "retention") == 0) {
        if (get_duration_ms(x, v, path, &s->retention_ms) < 0)
            return -1;
        if (s->retention_ms < 0) {
            errf(x, v, path, "must not be negative");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "durability") == 0) {
        if (want_scalar(x, v, path, "full or nometasync") < 0)
            return -1;
        if (strcmp(scalar(v), "full") == 0)
            s->durability = OUTBOX_CONFIG_DURABILITY_FULL;
        else if (strcmp(scalar(v), "nometasync") == 0)
            s->durability = OUTBOX_CONFIG_DURABILITY_NOMETASYNC;
        else {
            errf(x, v, path, "expected full or nometasync, found \"%s\"", scalar(v));
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "prefill") == 0)
        return get_bool(x, v, path, &s->prefill);
    return unknown_key(x, k, path, "path, max_size, retention, durability, prefill");
}

/* ---- ingest: ---------------------------------------------------------------------------- */

typedef struct ingest_state {
    outbox_config_ingest *in;
    const yaml_node_t *secret_node, *secret_file_node;
} ingest_state;

static int ingest_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *ud)
{
    ingest_state *st = ud;
    outbox_config_ingest *in = st->in;
    if (strcmp(key, "listen") == 0) {
        if (dup_string(x, v, path, &in->listen) < 0)
            return -1;
        const char *colon = strrchr(in->listen, ':');
        if (!colon || colon == in->listen || !colon[1] ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535) {
            errf(x, v, path, "expected HOST:PORT, found \"%s\"", in->listen);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "max_body") == 0) {
        if (get_size(x, v, path, &in->max_body) < 0)
            return -1;
        if (in->max_body == 0) {
            errf(x, v, path, "must be positive");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "tokens") == 0) {
        if (is_null(v))
            return 0;
        if (want_seq(x, v, path) < 0)
            return -1;
        size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        for (size_t i = 0; i < len; i++) {
            yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
            char ip[PATH_MAX_LEN], *tok = NULL;
            indexpath(ip, path, i);
            if (resolve_secret(x, it, ip, &tok) < 0)
                return -1;
            if (!tok) {
                errf(x, it, ip, "a token must not be empty");
                return -1;
            }
            if (push_secret(&in->tokens, &in->n_tokens, tok) < 0) {
                wipe_free(tok);
                oom(x, it, ip);
                return -1;
            }
        }
        return 0;
    }
    if (strcmp(key, "signing_secret") == 0) {
        st->secret_node = v;
        return 0; /* resolved after the walk (exclusive with signing_secret_file) */
    }
    if (strcmp(key, "signing_secret_file") == 0) {
        st->secret_file_node = v;
        return 0;
    }
    if (strcmp(key, "max_connections") == 0)
        return get_unsigned(x, v, path, 1, 1000000, &in->max_connections);
    if (strcmp(key, "max_connections_per_ip") == 0)
        return get_unsigned(x, v, path, 0, 1000000, &in->max_connections_per_ip);
    if (strcmp(key, "idle_timeout") == 0)
        return get_positive_ms(x, v, path, &in->idle_timeout_ms);
    if (strcmp(key, "pool_threads") == 0)
        return get_unsigned(x, v, path, 0, 1024, &in->pool_threads);
    if (strcmp(key, "header_timeout") == 0)
        return get_positive_ms(x, v, path, &in->header_timeout_ms);
    if (strcmp(key, "body_timeout") == 0)
        return get_positive_ms(x, v, path, &in->body_timeout_ms);
    return unknown_key(x, k, path,
                       "listen, max_body, tokens, signing_secret, signing_secret_file, "
                       "max_connections, max_connections_per_ip, idle_timeout, pool_threads, "
                       "header_timeout, body_timeout");
}

/* signing_secret / signing_secret_file pair -> one secret (or none). */
static int resolve_secret_pair(ctx *x, const yaml_node_t *secret, const yaml_node_t *file,
                               const char *parent, char **dst)
{
    char sp[PATH_MAX_LEN], fp[PATH_MAX_LEN];
    subpath(sp, parent, "signing_secret");
    subpath(fp, parent, "signing_secret_file");
    *dst = NULL;
    if (secret && file && !is_null(secret) && !is_null(file) &&
        !(secret->type == YAML_SCALAR_NODE && !*scalar(secret))) {
        errf(x, file, fp, "only one of signing_secret or signing_secret_file allowed");
        return -1;
    }
    if (file && !is_null(file))
        return read_secret_file(x, file, fp, dst);
    if (secret)
        return resolve_secret(x, secret, sp, dst);
    return 0;
}

/* ---- headers -------------------------------------------------------------------------- */

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 32 || ch >= 127 || strchr("()<>@,;:\\\"/[]?={}", ch))
            return false;
    }
    return true;
}

static int headers_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                        void *ud)
{
    dlv_sink_config *s = ud;
    if (!header_name_ok(key)) {
        errf(x, k, path, "invalid header name");
        return -1;
    }
    if (want_scalar(x, v, path, "a string") < 0)
        return -1;
    /* values may hold credentials (Authorization): never echo them */
    if (strpbrk(scalar(v), "\r\n")) {
        errf(x, v, path, "header value must not contain CR or LF");
        return -1;
    }
    dlv_header *nh = realloc(s->headers, (s->n_headers + 1) * sizeof *nh);
    if (!nh) {
        oom(x, v, path);
        return -1;
    }
    s->headers = nh;
    nh[s->n_headers].name = strdup(key);
    nh[s->n_headers].value = strdup(scalar(v));
    s->n_headers++;
    if (!nh[s->n_headers - 1].name || !nh[s->n_headers - 1].value) {
        oom(x, v, path);
        return -1;
    }
    return 0;
}

static int set_body(ctx *x, dlv_sink_config *s, const yaml_node_t *v, const char *path)
{
    char e[512];
    if (want_scalar(x, v, path, "a string") < 0)
        return -1;
    int rc = dlv_sink_config_set_body(s, scalar(v), v->data.scalar.length, e, sizeof e);
    if (rc == -2) {
        oom(x, v, path);
        return -1;
    }
    if (rc < 0) {
        errf(x, v, path, "%s", e);
        return -1;
    }
    return 0;
}

static int set_name(ctx *x, dlv_sink_config *s, const char *name, const yaml_node_t *n,
                    const char *path)
{
    free(s->name);
    s->name = strdup(name);
    if (!s->name) {
        oom(x, n, path);
        return -1;
    }
    return 0;
}

/* ---- audit: (Flipt's block; unknown keys ignored, as Flipt does) ----------------------- */

typedef struct template_src {
    const yaml_node_t *node;
    const yaml_node_t *url, *headers, *body;
} template_src;

typedef struct webhook_state {
    const yaml_node_t *node;
    int enabled;
    const yaml_node_t *url, *secret, *secret_file, *templates;
    int64_t max_backoff_ns;
    int have_backoff;
    const yaml_node_t *events; /* audit.events */
    const yaml_node_t *capacity, *flush;
} webhook_state;

static int template_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                         void *ud)
{
    template_src *t = ud;
    (void)x;
    (void)k;
    (void)path;
    if (strcmp(key, "url") == 0)
        t->url = v;
    else if (strcmp(key, "headers") == 0)
        t->headers = v;
    else if (strcmp(key, "body") == 0)
        t->body = v;
    return 0;
}

static int webhook_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                        void *ud)
{
    webhook_state *w = ud;
    (void)k;
    if (strcmp(key, "enabled") == 0)
        return get_bool(x, v, path, &w->enabled);
    if (strcmp(key, "url") == 0) {
        w->url = v;
        return is_null(v) ? 0 : want_scalar(x, v, path, "a string");
    }
    if (strcmp(key, "signing_secret") == 0) {
        w->secret = v;
        return 0;
    }
    if (strcmp(key, "signing_secret_file") == 0) { /* our extension */
        w->secret_file = v;
        return 0;
    }
    if (strcmp(key, "max_backoff_duration") == 0) {
        w->have_backoff = 1;
        return get_duration_ns(x, v, path, &w->max_backoff_ns);
    }
    if (strcmp(key, "templates") == 0) {
        w->templates = v;
        return is_null(v) ? 0 : want_seq(x, v, path);
    }
    return 0;
}

static int audit_sinks_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v,
                            const char *path, void *ud)
{
    webhook_state *w = ud;
    (void)k;
    if (strcmp(key, "webhook") == 0) {
        w->node = v;
        if (is_null(v))
            return 0;
        return each_pair(x, v, path, webhook_pair, w);
    }
    return 0; /* log, kafka, cloud...: not ours */
}

static int buffer_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *ud)
{
    webhook_state *w = ud;
    (void)x;
    (void)k;
    (void)path;
    if (strcmp(key, "capacity") == 0)
        w->capacity = v;
    else if (strcmp(key, "flush_period") == 0)
        w->flush = v;
    return 0;
}

static int audit_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                      void *ud)
{
    webhook_state *w = ud;
    (void)k;
    if (strcmp(key, "events") == 0) {
        w->events = v;
        return 0;
    }
    if (strcmp(key, "buffer") == 0)
        return is_null(v) ? 0 : each_pair(x, v, path, buffer_pair, w);
    if (strcmp(key, "sinks") == 0)
        return is_null(v) ? 0 : each_pair(x, v, path, audit_sinks_pair, w);
    return 0;
}

static int parse_events(ctx *x, yaml_node_t *n, const char *path, dlv_filter **dst)
{
    char **ev = NULL, e[256];
    size_t nev = 0;
    if (get_string_list(x, n, path, &ev, &nev) < 0)
        return -1;
    dlv_filter *f = NULL;
    int rc = dlv_filter_parse((const char *const *)ev, nev, &f, e, sizeof e);
    free_string_list(ev, nev);
    if (rc < 0) {
        errf(x, n, path, "%s", e);
        return -1;
    }
    dlv_filter_free(*dst);
    *dst = f;
    return 0;
}

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

static int copy_secrets(dlv_sink_config *s, const char *secret)
{
    if (!secret)
        return 0;
    char *d = strdup(secret);
    if (!d || push_secret(&s->secrets, &s->n_secrets, d) < 0) {
        free(d);
        return -1;
    }
    return 0;
}

static int load_audit(ctx *x, yaml_node_t *audit)
{
    outbox_config *c = x->c;
    webhook_state w = {0};
    char *secret = NULL;
    int rc = -1;

    if (audit && !is_null(audit) && each_pair(x, audit, "audit", audit_pair, &w) < 0)
        return -1;
    const yaml_node_t *wn = w.node ? w.node : audit;
    c->audit.webhook_enabled = w.enabled;
    /* Flipt's order: webhook (if enabled), kafka, capacity, flush period. */
    if (w.enabled) {
        bool has_url = w.url && !is_null(w.url) && *scalar(w.url);
        size_t nt = w.templates && w.templates->type == YAML_SEQUENCE_NODE
                        ? (size_t)(w.templates->data.sequence.items.top -
                                   w.templates->data.sequence.items.start)
                        : 0;
        if (!has_url && nt == 0) {
            errf(x, wn, "audit.sinks.webhook", "url or template(s) not provided");
            return -1;
        }
        if (has_url && nt > 0) {
            errf(x, wn, "audit.sinks.webhook", "only one of url or template(s) allowed");
            return -1;
        }
    }
    if (w.capacity) {
        long long cap;
        if (get_int(x, w.capacity, "audit.buffer.capacity", LLONG_MIN, LLONG_MAX, &cap) < 0)
            return -1;
        if (cap < 2 || cap > 10) {
            errf(x, w.capacity, "audit.buffer.capacity", "buffer capacity below 2 or above 10");
            return -1;
        }
        c->audit.buffer_capacity = (int)cap;
    }
    if (w.flush) {
        int64_t ns;
        if (get_duration_ns(x, w.flush, "audit.buffer.flush_period", &ns) < 0)
            return -1;
        if (ns < INT64_C(120000000000) || ns > INT64_C(300000000000)) {
            errf(x, w.flush, "audit.buffer.flush_period",
                 "flush period below 2 minutes or greater than 5 minutes");
            return -1;
        }
        c->audit.buffer_flush_period_ns = ns;
    }
    if (w.events && parse_events(x, (yaml_node_t *)w.events, "audit.events", &c->audit.events) < 0)
        return -1;
    if (!w.enabled)
        return 0;

    if (resolve_secret_pair(x, w.secret, w.secret_file, "audit.sinks.webhook", &secret) < 0)
        return -1;
    /* 0, unset or negative: 15 s at runtime (internal/cmd/grpc.go) */
    int64_t bound_ms = w.have_backoff && w.max_backoff_ns > 0 ? dlv_ns_to_ms(w.max_backoff_ns)
                                                              : DLV_BACKOFF_MAX_ELAPSED_MS;
    if (w.url && !is_null(w.url) && *scalar(w.url)) {
        dlv_sink_config *s = new_sink(c);
        if (!s || set_name(x, s, "webhook", wn, "audit.sinks.webhook") < 0 ||
            dup_string(x, w.url, "audit.sinks.webhook.url", &s->url) < 0)
            goto fail_oom;
        s->backoff.max_elapsed_ms = bound_ms;
        s->filter = dlv_filter_dup(c->audit.events);
        if (copy_secrets(s, secret) < 0 || !s->filter)
            goto fail_oom;
    } else {
        size_t nt =
            (size_t)(w.templates->data.sequence.items.top - w.templates->data.sequence.items.start);
        for (size_t i = 0; i < nt; i++) {
            yaml_node_t *tn =
                yaml_document_get_node(x->doc, w.templates->data.sequence.items.start[i]);
            char tp[PATH_MAX_LEN], sp[PATH_MAX_LEN], name[32];
            template_src t = {tn, NULL, NULL, NULL};
            indexpath(tp, "audit.sinks.webhook.templates", i);
            if (each_pair(x, tn, tp, template_pair, &t) < 0)
                goto out;
            dlv_sink_config *s = new_sink(c);
            (void)snprintf(name, sizeof name, "template-%zu", i + 1);
            if (!s || set_name(x, s, name, tn, tp) < 0)
                goto fail_oom;
            subpath(sp, tp, "url");
            if (t.url && !is_null(t.url)) {
                if (dup_string(x, t.url, sp, &s->url) < 0)
                    goto out;
            }
            if (!s->url || !*s->url) {
                /* Flipt accepts it and fails every send; we cannot send anywhere */
                errf(x, tn, sp, "url not provided");
                goto out;
            }
            subpath(sp, tp, "headers");
            if (t.headers && !is_null(t.headers) &&
                each_pair(x, (yaml_node_t *)t.headers, sp, headers_pair, s) < 0)
                goto out;
            subpath(sp, tp, "body");
            if (t.body && !is_null(t.body) && set_body(x, s, t.body, sp) < 0)
                goto out;
            if (!s->body) {
                errf(x, tn, sp, "body not provided (an empty body fails every event in Flipt)");
                goto out;
            }
            s->backoff.max_elapsed_ms = bound_ms;
            s->filter = dlv_filter_dup(c->audit.events);
            if (copy_secrets(s, secret) < 0 || !s->filter)
                goto fail_oom;
        }
    }
    rc = 0;
    goto out;
fail_oom:
    oom(x, wn, "audit.sinks.webhook");
out:
    wipe_free(secret);
    return rc;
}

/* ---- sinks: --------------------------------------------------------------------------- */

typedef struct sink_state {
    dlv_sink_config *s;
    const yaml_node_t *name_node, *url_node, *secret, *secret_file, *secrets;
    int have_signature;
} sink_state;

#define SINK_KEYS                                                                                  \
    "name, url, events, headers, body, signing_secret, signing_secret_file, signing_secrets, "     \
    "signature, max_backoff_duration, initial_interval, max_interval, multiplier, "                \
    "randomization_factor, timeout, connect_timeout, max_in_flight, ordered, dead_letter_on, "     \
    "ca_file, client_cert, client_key, insecure"

static int sink_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                     void *ud)
{
    sink_state *st = ud;
    dlv_sink_config *s = st->s;
    if (strcmp(key, "name") == 0) {
        st->name_node = v;
        if (dup_string(x, v, path, &s->name) < 0)
            return -1;
        if (!dlv_sink_name_valid(s->name)) {
            errf(x, v, path, "invalid sink name \"%.80s\": use 1 to 63 of A-Z a-z 0-9 . _ -",
                 s->name);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "url") == 0) {
        st->url_node = v;
        if (dup_string(x, v, path, &s->url) < 0)
            return -1;
        if (strncmp(s->url, "http://", 7) != 0 && strncmp(s->url, "https://", 8) != 0) {
            errf(x, v, path, "expected an http:// or https:// URL");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "events") == 0)
        return parse_events(x, v, path, &s->filter);
    if (strcmp(key, "headers") == 0)
        return is_null(v) ? 0 : each_pair(x, v, path, headers_pair, s);
    if (strcmp(key, "body") == 0)
        return is_null(v) ? 0 : set_body(x, s, v, path);
    if (strcmp(key, "signing_secret") == 0) {
        st->secret = v;
        return 0;
    }
    if (strcmp(key, "signing_secret_file") == 0) {
        st->secret_file = v;
        return 0;
    }
    if (strcmp(key, "signing_secrets") == 0) {
        st->secrets = v;
        return is_null(v) ? 0 : want_seq(x, v, path);
    }
    if (strcmp(key, "signature") == 0) {
        if (want_scalar(x, v, path, "both, flipt, standard or none") < 0)
            return -1;
        if (dlv_signature_parse(scalar(v), &s->signature) < 0) {
            errf(x, v, path, "expected both, flipt, standard or none, found \"%.40s\"", scalar(v));
            return -1;
        }
        st->have_signature = 1;
        return 0;
    }
    if (strcmp(key, "max_backoff_duration") == 0)
        return get_positive_ms(x, v, path, &s->backoff.max_elapsed_ms);
    if (strcmp(key, "initial_interval") == 0)
        return get_positive_ms(x, v, path, &s->backoff.initial_interval_ms);
    if (strcmp(key, "max_interval") == 0)
        return get_positive_ms(x, v, path, &s->backoff.max_interval_ms);
    if (strcmp(key, "multiplier") == 0)
        return get_double(x, v, path, 1.0, 1000.0, &s->backoff.multiplier);
    if (strcmp(key, "randomization_factor") == 0)
        return get_double(x, v, path, 0.0, 1.0, &s->backoff.randomization_factor);
    if (strcmp(key, "timeout") == 0)
        return get_positive_ms(x, v, path, &s->timeout_ms);
    if (strcmp(key, "connect_timeout") == 0)
        return get_positive_ms(x, v, path, &s->connect_timeout_ms);
    if (strcmp(key, "max_in_flight") == 0)
        return get_unsigned(x, v, path, 1, 100000, &s->max_in_flight);
    if (strcmp(key, "ordered") == 0)
        return get_bool(x, v, path, &s->ordered);
    if (strcmp(key, "insecure") == 0)
        return get_bool(x, v, path, &s->insecure);
    if (strcmp(key, "ca_file") == 0)
        return opt_string(x, v, path, &s->ca_file);
    if (strcmp(key, "client_cert") == 0)
        return opt_string(x, v, path, &s->client_cert);
    if (strcmp(key, "client_key") == 0)
        return opt_string(x, v, path, &s->client_key);
    if (strcmp(key, "dead_letter_on") == 0) {
        if (is_null(v))
            return 0;
        if (want_seq(x, v, path) < 0)
            return -1;
        size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        free(s->dead_letter_on);
        s->n_dead_letter_on = 0;
        s->dead_letter_on = calloc(len ? len : 1, sizeof *s->dead_letter_on);
        if (!s->dead_letter_on) {
            oom(x, v, path);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
            char ip[PATH_MAX_LEN];
            long long code;
            indexpath(ip, path, i);
            if (get_int(x, it, ip, 100, 599, &code) < 0)
                return -1;
            if (code >= 200 && code <= 299) {
                errf(x, it, ip, "%lld is a success status; it cannot dead-letter", code);
                return -1;
            }
            s->dead_letter_on[s->n_dead_letter_on++] = (int)code;
        }
        return 0;
    }
    return unknown_key(x, k, path, SINK_KEYS);
}

static int load_sink(ctx *x, yaml_node_t *n, const char *path)
{
    dlv_sink_config *s = new_sink(x->c);
    char *secret = NULL, sp[PATH_MAX_LEN];
    if (!s) {
        oom(x, n, path);
        return -1;
    }
    sink_state st = {s, NULL, NULL, NULL, NULL, NULL, 0};
    if (each_pair(x, n, path, sink_pair, &st) < 0)
        return -1;
    if (!s->name) {
        subpath(sp, path, "name");
        errf(x, n, sp, "required");
        return -1;
    }
    if (!s->url) {
        subpath(sp, path, "url");
        errf(x, n, sp, "required");
        return -1;
    }
    if (resolve_secret_pair(x, st.secret, st.secret_file, path, &secret) < 0)
        return -1;
    if (secret && push_secret(&s->secrets, &s->n_secrets, secret) < 0) {
        wipe_free(secret);
        oom(x, n, path);
        return -1;
    }
    if (st.secrets && !is_null(st.secrets)) {
        size_t len =
            (size_t)(st.secrets->data.sequence.items.top - st.secrets->data.sequence.items.start);
        subpath(sp, path, "signing_secrets");
        for (size_t i = 0; i < len; i++) {
            yaml_node_t *it =
                yaml_document_get_node(x->doc, st.secrets->data.sequence.items.start[i]);
            char ip[PATH_MAX_LEN];
            indexpath(ip, sp, i);
            if (resolve_secret(x, it, ip, &secret) < 0)
                return -1;
            if (!secret) {
                errf(x, it, ip, "a secret must not be empty");
                return -1;
            }
            if (push_secret(&s->secrets, &s->n_secrets, secret) < 0) {
                wipe_free(secret);
                oom(x, it, ip);
                return -1;
            }
        }
    }
    /* Every secret must be usable for Standard Webhooks when that scheme is on. */
    for (size_t i = 0; (s->signature & DLV_SIG_STANDARD) && i < s->n_secrets; i++) {
        if (strncmp(s->secrets[i], "whsec_", 6) == 0) {
            const char *b = s->secrets[i] + 6;
            size_t bl = strlen(b);
            while (bl > 0 && b[bl - 1] == '=')
                bl--;
            if (bl % 4 == 1 ||
                strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
                    bl) {
                errf(x, n, path, "signing secret %zu starts with whsec_ but is not valid base64",
                     i + 1);
                return -1;
            }
        }
    }
    if (st.have_signature && s->signature != DLV_SIG_NONE && s->n_secrets == 0) {
        subpath(sp, path, "signature");
        errf(x, n, sp, "signature %s needs a signing_secret", dlv_signature_name(s->signature));
        return -1;
    }
    if ((s->client_cert != NULL) != (s->client_key != NULL)) {
        subpath(sp, path, s->client_cert ? "client_key" : "client_cert");
        errf(x, n, sp, "client_cert and client_key go together");
        return -1;
    }
    if (s->backoff.initial_interval_ms > s->backoff.max_interval_ms) {
        subpath(sp, path, "initial_interval");
        errf(x, n, sp, "must not exceed max_interval");
        return -1;
    }
    return 0;
}

/* ---- top level --------------------------------------------------------------------------- */

typedef struct top_state {
    yaml_node_t *outbox, *ingest, *audit, *sinks;
} top_state;

static int top_pair(ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                    void *ud)
{
    top_state *t = ud;
    if (strcmp(key, "outbox") == 0)
        t->outbox = v;
    else if (strcmp(key, "ingest") == 0)
        t->ingest = v;
    else if (strcmp(key, "audit") == 0)
        t->audit = v;
    else if (strcmp(key, "sinks") == 0)
        t->sinks = v;
    else
        return unknown_key(x, k, path, "outbox, ingest, audit, sinks");
    return 0;
}

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
    c->ingest.idempotency_window_ms = INT64_C(24) * 3600 * 1000;
    c->audit.events = dlv_filter_new_all();
    c->audit.buffer_capacity = 2;
    c->audit.buffer_flush_period_ns = INT64_C(120000000000);
    if (!c->outbox.path || !c->ingest.listen || !c->audit.events) {
        outbox_config_clear(c);
        return -1;
    }
    return 0;
}

static int load_document(ctx *x)
{
    outbox_config *c = x->c;
    yaml_node_t *root = yaml_document_get_root_node(x->doc);
    top_state t = {0};
    if (!root || is_null(root))
        return 0; /* an empty file: all defaults, no sinks */
    if (root->type != YAML_MAPPING_NODE) {
        errf(x, root, NULL, "the top level must be a mapping, found %s", node_kind(root));
        return -1;
    }
    if (each_pair(x, root, "", top_pair, &t) < 0)
        return -1;
    if (t.outbox && !is_null(t.outbox) &&
        each_pair(x, t.outbox, "outbox", outbox_pair, &c->outbox) < 0)
        return -1;
    if (t.ingest && !is_null(t.ingest)) {
        ingest_state st = {&c->ingest, NULL, NULL};
        if (each_pair(x, t.ingest, "ingest", ingest_pair, &st) < 0)
            return -1;
        if (resolve_secret_pair(x, st.secret_node, st.secret_file_node, "ingest",
                                &c->ingest.signing_secret) < 0)
            return -1;
    }
    if (load_audit(x, t.audit) < 0)
        return -1;
    if (t.sinks && !is_null(t.sinks)) {
        if (want_seq(x, t.sinks, "sinks") < 0)
            return -1;
        size_t len =
            (size_t)(t.sinks->data.sequence.items.top - t.sinks->data.sequence.items.start);
        const size_t n_audit = c->n_sinks;
        for (size_t i = 0; i < len; i++) {
            yaml_node_t *n = yaml_document_get_node(x->doc, t.sinks->data.sequence.items.start[i]);
            char ip[PATH_MAX_LEN];
            indexpath(ip, "sinks", i);
            if (load_sink(x, n, ip) < 0)
                return -1;
            /* names unique across audit-derived and listed sinks */
            const char *name = c->sinks[c->n_sinks - 1].name;
            for (size_t j = 0; j + 1 < c->n_sinks; j++) {
                if (strcmp(c->sinks[j].name, name) == 0) {
                    char np[PATH_MAX_LEN];
                    subpath(np, ip, "name");
                    if (j < n_audit)
                        errf(x, n, np,
                             "duplicate sink name \"%s\" (already made from the audit "
                             "block)",
                             name);
                    else
                        errf(x, n, np, "duplicate sink name \"%s\" (also sinks[%zu])", name,
                             j - n_audit);
                    return -1;
                }
            }
        }
    }
    return 0;
}

int outbox_config_load_buffer(const char *name, const char *yaml, size_t len, outbox_config **out,
                              char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    outbox_config *c = calloc(1, sizeof *c);
    ctx x = {name ? name : "config", &doc, err, errlen, c};
    int rc = -1, have_doc = 0;

    if (err && errlen)
        err[0] = '\0';
    if (!c || outbox_config_defaults(c) < 0) {
        errf(&x, NULL, NULL, "out of memory");
        free(c);
        return -1;
    }
    c->file = strdup(x.file);
    if (!c->file) {
        errf(&x, NULL, NULL, "out of memory");
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        errf(&x, NULL, NULL, "out of memory");
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (err && errlen)
            (void)snprintf(err, errlen, "%s:%lu: YAML syntax error: %s%s%s", x.file,
                           (unsigned long)parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "unknown problem",
                           parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        goto out;
    }
    have_doc = 1;
    yaml_parser_delete(&parser);
    if (load_document(&x) < 0)
        goto out;
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
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
            if (cap >= (size_t)16 << 20) {
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
        memset(buf, 0, cap); /* the file may hold secrets */
        free(buf);
    }
    (void)fclose(f);
    return rc;
}

void outbox_config_clear(outbox_config *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->outbox.path);
    free(c->ingest.listen);
    for (size_t i = 0; i < c->ingest.n_tokens; i++)
        wipe_free(c->ingest.tokens[i]);
    free(c->ingest.tokens);
    wipe_free(c->ingest.signing_secret);
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
