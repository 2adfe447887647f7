/*
 * tools/config-value.h - converting one YAML node into one typed value, for the schema
 * table (config-schema.h): strings, booleans (YAML 1.1 words), integers and numbers with
 * bounds, Go durations (a plain integer is nanoseconds, as Flipt reads it), sizes, string
 * lists, and secrets (inline, often `${NAME}` from the environment, or a secret file).
 *
 * Every function takes the node and its key path and, on failure, writes
 * "<file>:<line>: <path>: <what>" through cy_errf and returns -1. Secret values never
 * appear in a message. Strings written to *dst are malloc'd and owned by the caller; a
 * previous *dst is freed (secrets: wiped and freed) when replaced.
 */
#ifndef OUTBOX_TOOLS_CONFIG_VALUE_H
#define OUTBOX_TOOLS_CONFIG_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "config-yaml.h"

/* Largest secret file read (bytes). */
#define CV_SECRET_MAX 65536

int cv_string(cy_ctx *x, const cy_node *n, const char *path, char **dst);
/* A string; NULL for null or empty. */
int cv_opt_string(cy_ctx *x, const cy_node *n, const char *path, char **dst);
int cv_bool(cy_ctx *x, const cy_node *n, const char *path, int *dst);
int cv_int(cy_ctx *x, const cy_node *n, const char *path, long long lo, long long hi,
           long long *dst);
int cv_double(cy_ctx *x, const cy_node *n, const char *path, double lo, double hi, double *dst);
int cv_duration_ns(cy_ctx *x, const cy_node *n, const char *path, int64_t *dst);
/* A duration in ms (sub-millisecond rounded up, dlv_ns_to_ms). */
int cv_duration_ms(cy_ctx *x, const cy_node *n, const char *path, int64_t *dst);
int cv_size(cy_ctx *x, const cy_node *n, const char *path, uint64_t *dst);
/* A list of strings (null = empty); free with cv_free_strings. */
int cv_strings(cy_ctx *x, const cy_node *n, const char *path, char ***dst, size_t *count);
void cv_free_strings(char **v, size_t n);

/* A secret string (${NAME} already expanded by the reader). *dst becomes NULL for null or
 * an empty value; empty because of an empty environment variable is an error naming it. */
int cv_secret(cy_ctx *x, const cy_node *n, const char *path, char **dst);

/*
 * Read a secret file, trimming one trailing "\n" or "\r\n". The file must be a regular file
 * (a FIFO, device or directory is refused without blocking: it is opened O_NONBLOCK and
 * checked with fstat), at most CV_SECRET_MAX bytes, not empty, without NUL bytes.
 */
int cv_secret_file(cy_ctx *x, const cy_node *n, const char *path, char **dst);

/* A secret given inline (`key`, e.g. signing_secret) or as a file (`file_key`, e.g.
 * signing_secret_file) under `parent`; either node may be NULL. At most one of them
 * ("only one of <key> or <file_key> allowed"), resolved into *dst (NULL when neither). */
int cv_secret_pair(cy_ctx *x, const cy_node *secret, const cy_node *file, const char *parent,
                   const char *key, const char *file_key, char **dst);

/* A rule for paths read later by another library (ca_file, client_cert, client_key): when
 * the path exists it must be a regular file (checked with stat, never opened); a missing
 * file is left to that library. 0, or -1 with "<file> is a FIFO; it must be a regular file". */
int cv_regular_file_rule(const char *file, char *err, size_t errlen);

/* Append s (taken) to an array of strings; -1 when out of memory (s not taken). */
int cv_push(char ***v, size_t *n, char *s);

#endif
