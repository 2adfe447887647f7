/*
 * fuzz-event.c - libFuzzer target for outboxd's ingest parsing and validation: any bytes,
 * as one JSON event and as NDJSON, must parse or fail with a message, never crash, leak
 * or read outside the buffer; accepted events must point inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outboxd-event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (int ct = OEV_CT_JSON; ct <= OEV_CT_NDJSON; ct++) {
        oev_event *ev = NULL;
        size_t n = 0;
        char err[256];
        int rc = oev_parse((oev_ctype)ct, buf, size, &ev, &n, err, sizeof err);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++)
                if (ev[i].body < buf || ev[i].body + ev[i].body_len > buf + size || !ev[i].type ||
                    !ev[i].action || !*ev[i].type)
                    abort();
            oev_events_free(ev, n);
        } else if (memchr(err, 0, sizeof err) == NULL || !err[0]) {
            abort(); /* every failure says what was wrong */
        }
    }
    free(buf);
    return 0;
}
