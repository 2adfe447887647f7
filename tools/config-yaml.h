/*
 * tools/config-yaml.h - a small YAML reader for configuration files: libyaml's event stream
 * turned into a tree of scalars, lists and mappings with their line numbers, plus the
 * walking helpers every schema needs (key paths, "<file>:<line>: <path>: <what>" errors,
 * node kinds, unique mapping keys). It knows nothing about outbox's keys: the schema is in
 * config-schema.h and outbox-config.c.
 *
 * Reading is bounded: nesting deeper than max_depth lists/mappings stops the reader at the
 * first node too deep (libyaml's own loader is very slow on deeply nested input). Anchors
 * and aliases are resolved (an alias is the anchored node itself, shared). Only the first
 * document of a stream is read, as libyaml's loader does.
 *
 * Ownership: a cy_doc owns every node reachable from its root; nodes live until
 * cy_doc_free(), which wipes scalar text first (configuration files hold secrets).
 */
#ifndef OUTBOX_TOOLS_CONFIG_YAML_H
#define OUTBOX_TOOLS_CONFIG_YAML_H

#include <stddef.h>

/* Key paths ("sinks[1].headers.X-A") are cut at this length (only messages get shorter). */
#define CY_PATH_MAX 256

/* Default nesting bound: outbox's schema needs 6 levels; 64 leaves room for Flipt blocks. */
#define CY_MAX_DEPTH 64

typedef enum cy_kind { CY_SCALAR, CY_LIST, CY_MAP } cy_kind;

typedef struct cy_node cy_node;

typedef struct cy_pair {
    cy_node *key, *value;
} cy_pair;

struct cy_node {
    cy_kind kind;
    unsigned long line; /* 1-based line where the node starts */
    /* CY_SCALAR */
    char *str;  /* NUL-terminated (may also contain NULs: use len) */
    size_t len; /* bytes */
    int plain;  /* 1 for a plain (unquoted) scalar: only those can be null or numbers */
    char *env;  /* owned: the first ${NAME} expanded into str (for messages), or NULL */
    int walked; /* expansion bookkeeping (aliases share nodes) */
    /* CY_LIST */
    cy_node **items;
    size_t n_items;
    /* CY_MAP, in file order */
    cy_pair *pairs;
    size_t n_pairs;
};

typedef struct cy_doc cy_doc;

/* Where errors go: "<file>:<line>: <path>: <what>" into err (errlen bytes). */
typedef struct cy_ctx {
    const char *file;
    char *err;
    size_t errlen;
} cy_ctx;

/*
 * Read the first document of yaml[0..len) and expand ${NAME} in its scalar values.
 * @param[out] out  the document (cy_doc_free); its root is NULL for an empty stream.
 * @return 0, or -1 with x->err set ("YAML syntax error: ...", the nesting bound, an unset
 *         or malformed ${NAME}, or out of memory), *out untouched.
 */
int cy_parse(cy_ctx *x, const char *yaml, size_t len, unsigned max_depth, cy_doc **out);

/* The root node, or NULL for an empty document. */
cy_node *cy_root(const cy_doc *d);

/* Free a document and every node (scalars wiped). NULL is fine. */
void cy_doc_free(cy_doc *d);

/* Write "<file>:<line>: <path>: <message>" (no path part when path is NULL or empty; line
 * 1 when n is NULL). */
void cy_errf(cy_ctx *x, const cy_node *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "parent.key" (or "key" at the top) and "parent[i]", cut at CY_PATH_MAX. */
void cy_subpath(char out[CY_PATH_MAX], const char *parent, const char *key);
void cy_indexpath(char out[CY_PATH_MAX], const char *parent, size_t i);

/* "a scalar", "a list", "a mapping" ("nothing" for NULL). */
const char *cy_kind_name(const cy_node *n);

/* A plain scalar "", "~", "null", "Null" or "NULL" (not one that came from ${NAME}). */
int cy_is_null(const cy_node *n);

/* Kind checks: 0, or -1 with "expected <what>, found <kind>". */
int cy_want_scalar(cy_ctx *x, const cy_node *n, const char *path, const char *what);
int cy_want_list(cy_ctx *x, const cy_node *n, const char *path);
int cy_want_map(cy_ctx *x, const cy_node *n, const char *path);

/*
 * Visit a mapping's pairs in file order with the key path of each value. Keys must be
 * scalars ("mapping keys must be strings") and unique ("duplicate key (first at line N)",
 * reported when the walk reaches the second one). fn returns 0 to go on, -1 to stop.
 */
typedef int (*cy_pair_fn)(cy_ctx *x, const cy_node *key, const cy_node *value, const char *path,
                          void *ud);
int cy_each_pair(cy_ctx *x, const cy_node *map, const char *path, cy_pair_fn fn, void *ud);

#endif
