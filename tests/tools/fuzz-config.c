/*
 * fuzz-config.c - libFuzzer target for the YAML config loader: any bytes either load or
 * fail with a message naming where, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outbox-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outbox_config *c = NULL;
    char err[512] = "";
    int rc = outbox_config_load_buffer("fuzz.yaml", (const char *)data, size, &c, err, sizeof err);
    if (rc == 0)
        outbox_config_free(c);
    else if (!err[0])
        abort(); /* every failure says what was wrong */
    return 0;
}
