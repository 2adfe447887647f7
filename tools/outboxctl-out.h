/*
 * outboxctl-out.h - output for outboxctl: aligned tables for people, JSON (jansson) for
 * scripts, event bodies in either form, byte sizes.
 *
 * Event bodies are carried byte-exact in JSON: a body that is valid JSON on one line is
 * spliced in verbatim as "body" (no re-encoding, so numbers and key order survive); a
 * valid multi-line body is given minified as "body" plus its exact bytes as
 * "body_base64"; anything else only as "body_base64". ctl_body_from_line() reads either
 * back, byte-exact.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_OUT_H
#define OUTBOX_TOOLS_OUTBOXCTL_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox-json.h" /* the JSON shapes, shared with outboxd's admin API */

/* ---- tables ---- */

typedef struct ctl_table ctl_table;

/*
 * A table of `ncols` columns printed to `f` with two spaces between columns. Headers are
 * copied. Rows are buffered and printed by ctl_table_flush (also every 1000 rows, so a
 * long listing streams; later chunks keep the widths seen so far, growing if needed).
 * Returns NULL when out of memory.
 */
ctl_table *ctl_table_new(FILE *f, size_t ncols, const char *const *headers);
/* Add a row: `cells` holds ncols strings (NULL prints "-"); copied. -1 when out of memory. */
int ctl_table_add(ctl_table *t, const char *const *cells);
void ctl_table_flush(ctl_table *t);
/*
 * Keep lines within `line_width` columns (0 = no limit) by shortening the cells of column
 * `col` in the middle ("head...tail", so that both the start of a reason and the status at
 * its end stay visible), never below CTL_FIT_MIN columns.
 */
#define CTL_FIT_MIN 16
void ctl_table_fit(ctl_table *t, size_t col, size_t line_width);
/* s shortened in the middle to `width` code points with "..." (a copy when it fits);
 * malloc'd, NULL when out of memory. */
char *ctl_shorten_middle(const char *s, size_t width);
/* The terminal's width for output to f: $COLUMNS when set to a number, else the tty's
 * (TIOCGWINSZ), else 0 (not a terminal: no limit). */
size_t ctl_term_width(FILE *f);
/* Rows added so far. */
size_t ctl_table_rows(const ctl_table *t);
/* Flushes and frees; NULL is a no-op. */
void ctl_table_free(ctl_table *t);

/* ---- JSON ---- */

/* Print `v` compact on one line and drop the reference. */
void ctl_json_print(json_t *v, FILE *f);
/*
 * From one export line (a JSON object), get the event body byte-exact: "body_base64"
 * when present, else the raw text of "body". *out is malloc'd (caller frees). 0 ok; -1
 * with err filled.
 */
int ctl_body_from_line(const char *line, size_t len, unsigned char **out, size_t *out_len,
                       char *err, size_t errlen);

/* ---- bodies for people ---- */

/* Print a body for a person: as-is when it is printable UTF-8 text, else a base64 dump. */
void ctl_body_print(const unsigned char *body, size_t len, FILE *f);

/*
 * Read a whole file ('-' = stdin) into a malloc'd, NUL-terminated buffer (caller frees);
 * *len excludes the NUL. NULL after printing the error.
 */
char *ctl_read_file(const char *path, size_t *len);

/* "12.3 MiB". buf should hold 32 bytes. */
void ctl_bytes_fmt(uint64_t n, char *buf, size_t bufn);

#endif
