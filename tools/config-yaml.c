/*
 * tools/config-yaml.c - libyaml events -> a node tree with line numbers, and the walking
 * helpers (see config-yaml.h).
 *
 * The tree is built from yaml_parser_parse() events rather than yaml_parser_load() so that
 * nesting is bounded while reading: the reader stops at the first list or mapping deeper
 * than the bound instead of letting libyaml compose an arbitrarily deep document.
 */
#include "config-yaml.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "delivery/secret.h"

typedef struct anchor {
    char *name;
    cy_node *node;
} anchor;

struct cy_doc {
    cy_node *root;
    cy_node **all; /* every node, for freeing (aliases share nodes) */
    size_t n_all, cap_all;
};

/* One open list or mapping while reading. */
typedef struct frame {
    cy_node *node;
    cy_node *key; /* mapping: the key read, waiting for its value */
    size_t cap;   /* capacity of items / pairs */
} frame;

typedef struct reader {
    cy_ctx *x;
    cy_doc *d;
    frame *stack;
    size_t depth, max_depth;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
} reader;

void cy_errf(cy_ctx *x, const cy_node *n, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->err || x->errlen == 0)
        return;
    unsigned long line = n ? n->line : 1ul;
    if (path && *path)
        (void)snprintf(x->err, x->errlen, "%s:%lu: %s: %s", x->file, line, path, msg);
    else
        (void)snprintf(x->err, x->errlen, "%s:%lu: %s", x->file, line, msg);
}

static void at_line(cy_ctx *x, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void at_line(cy_ctx *x, unsigned long line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->err && x->errlen)
        (void)snprintf(x->err, x->errlen, "%s:%lu: %s", x->file, line, msg);
}

/* ---- building ------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static cy_node *new_node(reader *r, cy_kind kind, const yaml_mark_t *m)
{
    cy_doc *d = r->d;
    if (grow((void **)&d->all, &d->cap_all, d->n_all + 1, sizeof *d->all) < 0)
        return NULL;
    cy_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = (unsigned long)m->line + 1;
    d->all[d->n_all++] = n;
    return n;
}

static int add_anchor(reader *r, const yaml_char_t *name, cy_node *n)
{
    if (!name)
        return 0;
    /* a later anchor of the same name replaces the earlier one (YAML 1.2) */
    for (size_t i = r->n_anchors; i-- > 0;)
        if (strcmp(r->anchors[i].name, (const char *)name) == 0) {
            r->anchors[i].node = n;
            return 0;
        }
    if (grow((void **)&r->anchors, &r->cap_anchors, r->n_anchors + 1, sizeof *r->anchors) < 0)
        return -1;
    char *s = strdup((const char *)name);
    if (!s)
        return -1;
    r->anchors[r->n_anchors++] = (anchor){s, n};
    return 0;
}

/* Attach n to the open container (or make it the root). */
static int attach(reader *r, cy_node *n)
{
    if (r->depth == 0) {
        r->d->root = n;
        return 0;
    }
    frame *f = &r->stack[r->depth - 1];
    cy_node *p = f->node;
    if (p->kind == CY_LIST) {
        if (grow((void **)&p->items, &f->cap, p->n_items + 1, sizeof *p->items) < 0)
            return -1;
        p->items[p->n_items++] = n;
        return 0;
    }
    if (!f->key) {
        f->key = n;
        return 0;
    }
    if (grow((void **)&p->pairs, &f->cap, p->n_pairs + 1, sizeof *p->pairs) < 0)
        return -1;
    p->pairs[p->n_pairs++] = (cy_pair){f->key, n};
    f->key = NULL;
    return 0;
}

static int on_scalar(reader *r, const yaml_event_t *ev)
{
    cy_node *n = new_node(r, CY_SCALAR, &ev->start_mark);
    if (!n)
        return -1;
    n->len = ev->data.scalar.length;
    n->str = malloc(n->len + 1);
    if (!n->str)
        return -1;
    memcpy(n->str, ev->data.scalar.value, n->len);
    n->str[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (add_anchor(r, ev->data.scalar.anchor, n) < 0)
        return -1;
    return attach(r, n);
}

/* 0, -1 out of memory, -2 too deep (error written). */
static int on_start(reader *r, const yaml_event_t *ev, cy_kind kind, const yaml_char_t *anch)
{
    if (r->depth >= r->max_depth) {
        at_line(r->x, (unsigned long)ev->start_mark.line + 1,
                "YAML nesting deeper than %zu levels (lists and mappings inside each other); "
                "a configuration needs only a few",
                r->max_depth);
        return -2;
    }
    cy_node *n = new_node(r, kind, &ev->start_mark);
    if (!n || add_anchor(r, anch, n) < 0 || attach(r, n) < 0)
        return -1;
    r->stack[r->depth++] = (frame){n, NULL, 0};
    return 0;
}

static int on_alias(reader *r, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = r->n_anchors; i-- > 0;)
        if (strcmp(r->anchors[i].name, name) == 0)
            return attach(r, r->anchors[i].node);
    at_line(r->x, (unsigned long)ev->start_mark.line + 1,
            "YAML syntax error: found undefined alias *%.64s", name);
    return -2;
}

/* 0, -1 out of memory, -2 error written. Stops after the first document. */
static int read_events(reader *r, yaml_parser_t *p)
{
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            at_line(r->x, (unsigned long)p->problem_mark.line + 1, "YAML syntax error: %s%s%s",
                    p->problem ? p->problem : "unknown problem", p->context ? " " : "",
                    p->context ? p->context : "");
            return -2;
        }
        int rc = 0, done = 0;
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            rc = on_scalar(r, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(r, &ev, CY_LIST, ev.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(r, &ev, CY_MAP, ev.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (r->depth > 0)
                r->depth--;
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(r, &ev);
            break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default: /* stream and document start */
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            return rc;
        if (done)
            return 0;
    }
}

/* ---- ${NAME} expansion ------------------------------------------------------------------ */

#define ENV_NAME_MAX 256

/* Expand scalar n in place. 0, or -1 with the error written (naming variables, no values). */
static int expand_scalar(cy_ctx *x, cy_node *n, const char *path)
{
    if (!memchr(n->str, '$', n->len))
        return 0;
    size_t cap = n->len + 1, len = 0;
    char *out = malloc(cap), name[ENV_NAME_MAX];
    if (!out)
        goto oom;
    for (size_t i = 0; i < n->len;) {
        const char *val = NULL;
        size_t vlen = 1, skip = 1;
        if (n->str[i] == '$' && i + 1 < n->len && n->str[i + 1] == '$') {
            val = "$";
            skip = 2;
        } else if (n->str[i] == '$' && i + 1 < n->len && n->str[i + 1] == '{') {
            const char *start = n->str + i + 2, *end = memchr(start, '}', n->len - i - 2);
            size_t nl = end ? (size_t)(end - start) : 0;
            if (!end || nl == 0 || nl >= sizeof name ||
                strspn(start, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") <
                    nl ||
                (*start >= '0' && *start <= '9')) {
                cy_errf(x, n, path,
                        "malformed ${NAME} (a name of letters, digits and _; write $$ for a "
                        "literal $)");
                goto fail;
            }
            memcpy(name, start, nl);
            name[nl] = '\0';
            val = getenv(name);
            if (!val) {
                cy_errf(x, n, path, "environment variable %s is not set", name);
                goto fail;
            }
            if (!n->env && !(n->env = strdup(name)))
                goto oom;
            skip = nl + 3;
            vlen = strlen(val);
        } else {
            val = n->str + i;
        }
        if (len + vlen + 1 > cap) {
            size_t ncap = (len + vlen + 1) * 2;
            char *q = malloc(ncap);
            if (!q)
                goto oom;
            memcpy(q, out, len);
            dlv_secret_wipe(out, cap);
            free(out);
            out = q;
            cap = ncap;
        }
        memcpy(out + len, val, vlen);
        len += vlen;
        i += skip;
    }
    out[len] = '\0';
    dlv_secret_wipe(n->str, n->len);
    free(n->str);
    n->str = out;
    n->len = len;
    return 0;
oom:
    cy_errf(x, n, path, "out of memory");
fail:
    if (out) {
        dlv_secret_wipe(out, cap);
        free(out);
    }
    return -1;
}

/* Expand every scalar value under n once (aliases share nodes; keys are left alone). */
static int expand(cy_ctx *x, cy_node *n, const char *path)
{
    if (!n || n->walked)
        return 0;
    n->walked = 1;
    char sp[CY_PATH_MAX];
    switch (n->kind) {
    case CY_SCALAR:
        return expand_scalar(x, n, path);
    case CY_LIST:
        for (size_t i = 0; i < n->n_items; i++) {
            cy_indexpath(sp, path, i);
            if (expand(x, n->items[i], sp) < 0)
                return -1;
        }
        return 0;
    case CY_MAP:
        for (size_t i = 0; i < n->n_pairs; i++) {
            const cy_node *k = n->pairs[i].key;
            cy_subpath(sp, path, k->kind == CY_SCALAR ? k->str : "?");
            if (expand(x, n->pairs[i].value, sp) < 0)
                return -1;
        }
        return 0;
    }
    return 0;
}

int cy_parse(cy_ctx *x, const char *yaml, size_t len, unsigned max_depth, cy_doc **out)
{
    reader r = {.x = x, .max_depth = max_depth ? max_depth : CY_MAX_DEPTH};
    yaml_parser_t p;
    int rc = -1, have_parser = 0;
    r.d = calloc(1, sizeof *r.d);
    r.stack = calloc(r.max_depth, sizeof *r.stack);
    if (!r.d || !r.stack)
        goto oom;
    if (!yaml_parser_initialize(&p))
        goto oom;
    have_parser = 1;
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    int e = read_events(&r, &p);
    if (e == -1)
        goto oom;
    if (e == 0 && expand(x, r.d->root, "") < 0)
        e = -2;
    if (e == 0) {
        *out = r.d;
        r.d = NULL;
        rc = 0;
    }
    goto out;
oom:
    at_line(x, 1, "out of memory");
out:
    if (have_parser)
        yaml_parser_delete(&p);
    for (size_t i = 0; i < r.n_anchors; i++)
        free(r.anchors[i].name);
    free(r.anchors);
    free(r.stack);
    cy_doc_free(r.d);
    return rc;
}

cy_node *cy_root(const cy_doc *d)
{
    return d ? d->root : NULL;
}

void cy_doc_free(cy_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_all; i++) {
        cy_node *n = d->all[i];
        if (n->str) {
            dlv_secret_wipe(n->str, n->len);
            free(n->str);
        }
        free(n->env);
        free(n->items);
        free(n->pairs);
        free(n);
    }
    free(d->all);
    free(d);
}

/* ---- walking ------------------------------------------------------------------------- */

/* Key paths are bounded; a longer one is cut, which only shortens a message. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out, CY_PATH_MAX, fmt, ap);
    va_end(ap);
}

void cy_subpath(char out[CY_PATH_MAX], const char *parent, const char *key)
{
    if (parent && *parent)
        pathf(out, "%s.%s", parent, key);
    else
        pathf(out, "%s", key);
}

void cy_indexpath(char out[CY_PATH_MAX], const char *parent, size_t i)
{
    pathf(out, "%s[%zu]", parent, i);
}

const char *cy_kind_name(const cy_node *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case CY_SCALAR:
        return "a scalar";
    case CY_LIST:
        return "a list";
    case CY_MAP:
        return "a mapping";
    }
    return "nothing";
}

int cy_is_null(const cy_node *n)
{
    if (!n || n->kind != CY_SCALAR || !n->plain || n->env) /* ${NAME} is a string */
        return 0;
    const char *s = n->str;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

int cy_want_scalar(cy_ctx *x, const cy_node *n, const char *path, const char *what)
{
    if (n && n->kind == CY_SCALAR)
        return 0;
    cy_errf(x, n, path, "expected %s, found %s", what, cy_kind_name(n));
    return -1;
}

int cy_want_list(cy_ctx *x, const cy_node *n, const char *path)
{
    if (n && n->kind == CY_LIST)
        return 0;
    cy_errf(x, n, path, "expected a list, found %s", cy_kind_name(n));
    return -1;
}

int cy_want_map(cy_ctx *x, const cy_node *n, const char *path)
{
    if (n && n->kind == CY_MAP)
        return 0;
    cy_errf(x, n, path, "expected a mapping, found %s", cy_kind_name(n));
    return -1;
}

typedef struct keyix {
    const char *key;
    size_t i;
} keyix;

static int by_key_then_index(const void *a, const void *b)
{
    const keyix *p = a, *q = b;
    int c = strcmp(p->key, q->key);
    return c ? c : (p->i > q->i) - (p->i < q->i);
}

/*
 * The first pair (in file order) whose scalar key repeats an earlier one: its index into
 * *dup and the earlier one's into *first; SIZE_MAX when none. O(n log n), so a mapping with
 * many keys costs no more than sorting them. -1 when out of memory.
 */
static int find_duplicate(const cy_node *map, size_t *dup, size_t *first)
{
    size_t n = map->n_pairs, k = 0;
    *dup = *first = SIZE_MAX;
    if (n < 2)
        return 0;
    keyix *ix = malloc(n * sizeof *ix);
    if (!ix)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (map->pairs[i].key->kind == CY_SCALAR)
            ix[k++] = (keyix){map->pairs[i].key->str, i};
    qsort(ix, k, sizeof *ix, by_key_then_index);
    /* in each run of equal keys (sorted by index), the second member is its first repeat */
    for (size_t a = 0; a + 1 < k; a++) {
        if (a > 0 && strcmp(ix[a - 1].key, ix[a].key) == 0)
            continue;
        if (strcmp(ix[a].key, ix[a + 1].key) == 0 && ix[a + 1].i < *dup) {
            *dup = ix[a + 1].i;
            *first = ix[a].i;
        }
    }
    free(ix);
    return 0;
}

int cy_each_pair(cy_ctx *x, const cy_node *map, const char *path, cy_pair_fn fn, void *ud)
{
    if (cy_want_map(x, map, path) < 0)
        return -1;
    size_t dup, first;
    if (find_duplicate(map, &dup, &first) < 0) {
        cy_errf(x, map, path, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < map->n_pairs; i++) {
        const cy_node *k = map->pairs[i].key, *v = map->pairs[i].value;
        char sp[CY_PATH_MAX];
        if (k->kind != CY_SCALAR) {
            cy_errf(x, k, path, "mapping keys must be strings");
            return -1;
        }
        cy_subpath(sp, path, k->str);
        if (i == dup) {
            cy_errf(x, k, sp, "duplicate key (first at line %lu)", map->pairs[first].key->line);
            return -1;
        }
        if (fn(x, k, v, sp, ud) < 0)
            return -1;
    }
    return 0;
}
