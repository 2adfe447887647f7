/*
 * tools/config-schema.h - configuration schemas as tables.
 *
 * A section of the configuration (a YAML mapping) is described by one cs_table: one cs_key
 * row per key with its name, type, where the value goes (a field offset), its bounds, an
 * optional rule function and a one-line description. cs_walk() dispatches each key of a
 * mapping to its row, converts and checks the value, and for an unknown key in a strict
 * section answers "unknown key (expected one of: <the table's keys, in order>)". Nothing else
 * lists the keys: adding a key is adding a row.
 *
 * A row writes either into the section's object (CS_OBJ: the config struct being filled)
 * or into the caller's walk state (CS_STATE: e.g. a node kept to be resolved after the walk,
 * like a secret whose two spellings exclude each other). Tables are static and read-only.
 */
#ifndef OUTBOX_TOOLS_CONFIG_SCHEMA_H
#define OUTBOX_TOOLS_CONFIG_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config-yaml.h"

typedef enum cs_type {
    CS_STRING,      /* char *: a string (check: the rule function, if any) */
    CS_OPT_STRING,  /* char *: NULL for null/empty (else checked by the rule, if any) */
    CS_BOOL,        /* int */
    CS_UINT,        /* unsigned, lo..hi */
    CS_DOUBLE,      /* double, lo..hi */
    CS_SIZE,        /* uint64_t bytes, at least lo */
    CS_DURATION_MS, /* int64_t ms, not negative; within lo..hi ms when hi > 0 */
    CS_POSITIVE_MS, /* int64_t ms, > 0 (and within lo..hi ms when hi > 0) */
    CS_DURATION_NS, /* int64_t ns, any */
    CS_ENUM,        /* int: one of words[], stored as values[] */
    CS_NODE,        /* const cy_node *: kept as is, for the caller */
    CS_NODE_SCALAR, /* const cy_node *: kept; a scalar or null */
    CS_NODE_LIST,   /* const cy_node *: kept; a list or null */
    CS_SECTION,     /* a nested mapping walked with `sub` (same object and state); null skips;
                       the node is also kept at off unless off is CS_NO_FIELD */
    CS_CUSTOM,      /* fn(x, node, path, field) converts and checks */
} cs_type;

enum { CS_OBJ = 0, CS_STATE = 1 };

#define CS_NO_FIELD ((size_t)-1)

typedef struct cs_table cs_table;

/* A rule: 0 when value is acceptable, else -1 with a message (the key path is added). */
typedef int (*cs_rule_fn)(const char *value, char *err, size_t errlen);
/* A converter for CS_CUSTOM: field is object/state + off. 0 or -1 (error written). */
typedef int (*cs_custom_fn)(cy_ctx *x, const cy_node *v, const char *path, void *field);

/* A printer for --print-config: writes the row's whole "name: value" line(s) at `indent`
 * spaces from obj (the section's object), or nothing. Secrets print as CS_REDACTED. */
typedef void (*cs_print_fn)(FILE *out, const char *name, const void *obj, int indent);

#define CS_REDACTED "<redacted>"

typedef struct cs_key {
    const char *name;
    cs_type type;
    int base;   /* CS_OBJ or CS_STATE */
    size_t off; /* field offset in the base */
    double lo, hi;
    cs_rule_fn rule;            /* CS_STRING: checked after conversion */
    cs_custom_fn custom;        /* CS_CUSTOM */
    const char *const *words;   /* CS_ENUM: accepted words, NULL-terminated */
    const int *values;          /* CS_ENUM: the value stored for each word */
    const struct cs_table *sub; /* CS_SECTION */
    const char *doc;            /* one line: what the key means, its default */
    cs_print_fn print;          /* --print-config: NULL prints CS_OBJ rows of plain types
                                   from their field and skips the others */
} cs_key;

struct cs_table {
    const cs_key *keys;
    size_t n_keys;
    int strict; /* 1: unknown keys are errors; 0: ignored (Flipt's block) */
};

#define CS_TABLE(rows, strict_)                                                                    \
    {                                                                                              \
        (rows), sizeof(rows) / sizeof((rows)[0]), (strict_)                                        \
    }

/*
 * Walk mapping `map` (NULL or a YAML null: nothing to do) at key path `path` with table t, writing
 * into obj / state. *seen (may be NULL) gets bit i set for each row i < 64 present in the file.
 * @return 0, or -1 with the error written.
 */
int cs_walk(cy_ctx *x, const cy_node *map, const char *path, const cs_table *t, void *obj,
            void *state, uint64_t *seen);

/* Bit of the row called name in a cs_walk `seen` mask (0 when there is none). */
uint64_t cs_bit(const cs_table *t, const char *name);

/*
 * Print obj's values for every row of t as YAML lines at `indent` spaces, in table order:
 * a row's `print` function when it has one, else the field of a CS_OBJ row of a plain type
 * (strings quoted; NULL strings left out; sizes, durations and enum words as the file
 * spells them); other rows (kept nodes, sections, custom converters) print nothing.
 */
void cs_print(FILE *out, const cs_table *t, const void *obj, int indent);

/* value as a YAML double-quoted scalar (escapes for ", \ and control bytes). */
void cs_print_quoted(FILE *out, const char *value);

/* "a, b, c": the table's keys in order, cut to fit cap. */
void cs_key_list(const cs_table *t, char *out, size_t cap);

#endif
