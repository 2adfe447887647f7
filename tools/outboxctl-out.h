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
 * Print `obj` compact on one line with the body members appended last (see above), then
 * drop the reference to obj. -1 when out of memory.
 */
int ctl_json_print_with_body(json_t *obj, const unsigned char *body, size_t len, FILE *f);
/* RFC 3339 string, or JSON null when ms == 0 (unset) or INT64_MAX (never). New ref. */
json_t *ctl_json_time(int64_t ms);
/* A string or JSON null. New reference. */
json_t *ctl_json_str(const char *s);

/*
 * From one export line (a JSON object), get the event body byte-exact: "body_base64"
 * when present, else the raw text of "body". *out is malloc'd (caller frees). 0 ok; -1
 * with err filled.
 */
int ctl_body_from_line(const char *line, size_t len, unsigned char **out, size_t *out_len,
                       char *err, size_t errlen);

/* ---- bodies for people ---- */

/* 1 when the body is valid JSON (any value). */
int ctl_body_is_json(const unsigned char *body, size_t len);
/* Print a body for a person: as-is when it is printable UTF-8 text, else a base64 dump. */
void ctl_body_print(const unsigned char *body, size_t len, FILE *f);

/*
 * Print bytes from a remote peer (a receiver's headers or body) safely for a terminal:
 * printable ASCII and valid UTF-8 as they are, backslash as \\, TAB/CR/LF as \t \r \n,
 * every other byte (controls, escapes, DEL, C1 controls, invalid UTF-8) as \xNN.
 */
void ctl_print_escaped(const unsigned char *s, size_t len, FILE *f);
/* 1 when s[0..len) is valid UTF-8 (NUL bytes allowed). */
int ctl_utf8_valid(const unsigned char *s, size_t len);

/* base64 (standard, padded); malloc'd, NULL when out of memory. Decoding is
 * dlv_base64_decode (delivery/base64.h). */
char *ctl_base64_encode(const unsigned char *in, size_t len);

/*
 * Read a whole file ('-' = stdin) into a malloc'd, NUL-terminated buffer (caller frees);
 * *len excludes the NUL. NULL after printing the error.
 */
char *ctl_read_file(const char *path, size_t *len);

/* "12.3 MiB". buf should hold 32 bytes. */
void ctl_bytes_fmt(uint64_t n, char *buf, size_t bufn);

#endif
