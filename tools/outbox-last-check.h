/*
 * outbox-last-check.h - the outcome of the last `outboxctl check`, kept in the outbox
 * directory (file `last-check`, mode 0600) so that outboxd can warn at start when that
 * check found problems. Written by outboxctl, read by outboxd.
 *
 * The file is three `key=value` lines (checked_ms, problems, structural), written to a
 * temporary file and renamed over the old one, so a reader sees a whole record or none.
 */
#ifndef OUTBOX_TOOLS_LAST_CHECK_H
#define OUTBOX_TOOLS_LAST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define OLC_FILE "last-check"

typedef struct olc_result {
    int64_t checked_ms; /* when the check ended (Unix ms) */
    uint64_t problems;  /* problems reported (at least 1 when structural) */
    int structural;     /* the traversal crashed: the store's pages are damaged */
} olc_result;

/* Record r in DIR/last-check. 0, or -1 with err (cap bytes) naming the file and errno. */
int olc_write(const char *dir, const olc_result *r, char *err, size_t cap);

/*
 * Read DIR/last-check. 1 with *r filled; 0 when there is none (never checked); -1 with
 * err when it cannot be read or parsed (err names the file, and the line).
 */
int olc_read(const char *dir, olc_result *r, char *err, size_t cap);

#endif
