/*
 * fuzz-template.c - libFuzzer target for the template parser and executor. The input is
 * split at the first NUL: template source, then (optionally) an event JSON; without one,
 * a fixed event with nested payload values is used. Parsing and executing must never
 * crash, leak or exceed the output cap; successful output must be within the cap and
 * NUL-terminated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gotmpl/gojson.h"
#include "gotmpl/gotmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char default_event[] =
    "{\"version\":\"0.2\",\"type\":\"segment\",\"action\":\"created\",\"metadata\":{\"actor\":{"
    "\"authentication\":\"oidc\",\"ip\":\"127.0.0.1\",\"email\":\"a@b\"}},\"payload\":{\"key\":"
    "\"seg\",\"n\":null,\"f\":1.5,\"big\":1e21,\"t\":true,\"s\":\"<a&b>\",\"constraints\":[{"
    "\"property\":\"region\",\"value\":\"eu\"},{\"property\":\"age\",\"value\":18}],\"m\":{"
    "\"b\":[1,2,[3]],\"a\":{}}},\"timestamp\":\"2024-06-09T12:00:00Z\",\"status\":\"success\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    gotmpl *t = NULL;
    gotmpl_event *ev = NULL;
    char err[256];
    if (gotmpl_parse((const char *)data, tlen, &t, err, sizeof err) != GOTMPL_OK)
        return 0;
    int have_event = 0;
    if (nul && size - tlen - 1 > 0)
        have_event =
            gotmpl_event_parse(nul + 1, size - tlen - 1, &ev, err, sizeof err) == GOTMPL_OK;
    if (!have_event && gotmpl_event_parse(default_event, sizeof default_event - 1, &ev, err,
                                          sizeof err) != GOTMPL_OK)
        abort();
    char *out = NULL;
    size_t len = 0;
    const size_t cap = 65536;
    gotmpl_limits lim = gotmpl_limits_default(cap);
    if (gotmpl_execute(t, ev, &lim, &out, &len, err, sizeof err) == GOTMPL_OK) {
        if (len > cap || out[len] != '\0')
            abort();
        (void)gojson_valid(out, len);
        free(out);
    }
    gotmpl_free(t);
    gotmpl_event_free(ev);
    return 0;
}
