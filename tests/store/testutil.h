/* testutil.h - small helpers shared by the store tests: temp dirs and quick events. */
#ifndef OUTBOX_TESTUTIL_H
#define OUTBOX_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox/outbox.h"

/* A fresh directory under TMPDIR (or /tmp); the caller removes it with rm_rf(). */
static inline char *tmpdir_new(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/outbox-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void rm_rf(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* Open `dir` as its owner with default options, or fail the test. */
static inline obx_store *owner_open(const char *dir)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_store *s = NULL;
    obx_error err = {0};
    if (obx_open(dir, &o, &s, &err) != OBX_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err.msg);
        abort();
    }
    return s;
}

/* Close the store and remove its directory (freeing the tmpdir_new() string). */
static inline void store_dispose(obx_store *s, char *dir)
{
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

static inline obx_event_in ev_in(const char *body, const uint32_t *sinks, size_t n)
{
    obx_event_in e = {"flag", "created", body, strlen(body), 0, sinks, n};
    return e;
}

#endif
