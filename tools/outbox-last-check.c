/*
 * outbox-last-check.c - the `last-check` record in the outbox directory (see
 * outbox-last-check.h).
 */
#include "outbox-last-check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int olc_write(const char *dir, const olc_result *r, char *err, size_t cap)
{
    char path[4096], tmp[4112], text[128];
    snprintf(path, sizeof path, "%s/%s", dir, OLC_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n =
        snprintf(text, sizeof text, "checked_ms=%" PRId64 "\nproblems=%" PRIu64 "\nstructural=%d\n",
                 r->checked_ms, r->problems, r->structural ? 1 : 0);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (close(fd) != 0 && !rc) {
        snprintf(err, cap, "%s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (!rc && rename(tmp, path) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc)
        unlink(tmp);
    return rc;
}

int olc_read(const char *dir, olc_result *r, char *err, size_t cap)
{
    char path[4096], line[128];
    snprintf(path, sizeof path, "%s/%s", dir, OLC_FILE);
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    int seen = 0, rc = 1;
    for (int no = 1; fgets(line, sizeof line, f); no++) {
        int64_t t;
        uint64_t p;
        int s;
        if (sscanf(line, "checked_ms=%" SCNd64, &t) == 1) {
            r->checked_ms = t;
            seen |= 1;
        } else if (sscanf(line, "problems=%" SCNu64, &p) == 1) {
            r->problems = p;
            seen |= 2;
        } else if (sscanf(line, "structural=%d", &s) == 1) {
            r->structural = s != 0;
            seen |= 4;
        } else {
            snprintf(err, cap, "%s:%d: not checked_ms=, problems= or structural=", path, no);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 1 && seen != 7) {
        snprintf(err, cap, "%s: incomplete (checked_ms, problems and structural expected)", path);
        rc = -1;
    }
    return rc;
}
