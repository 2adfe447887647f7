/*
 * fuzz-codec.c - libFuzzer target for the store's record decoder: any bytes fed to the
 * event and delivery decoders must give OBX_OK or OBX_ERR_CORRUPT, never a crash or a
 * leak. Inputs whose checksum is valid are also produced (the first byte picks whether
 * the envelope is fixed up) so the msgpack shape checks get exercised, not only the CRC.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fix = data[0] & 1;
    size_t n = size - 1 + 5;
    unsigned char *rec = malloc(n);
    if (!rec)
        return 0;
    rec[0] = OBX_REC_FORMAT;
    memcpy(rec + 5, data + 1, size - 1);
    uint32_t crc = obx__crc32c(0, rec + 5, size - 1);
    for (int i = 0; i < 4; i++)
        rec[1 + i] = fix ? (unsigned char)(crc >> (8 * i)) : (unsigned char)(data[0] >> i);
    obx_event e;
    uint32_t *sinks = NULL;
    size_t ns = 0;
    obx_error err;
    if (obx__codec_event_decode(rec, n, &e, &sinks, &ns, &err) == OBX_OK) {
        free(e.type);
        free(e.action);
        free(e.body);
        free(sinks);
    }
    obx_delivery d = {0};
    if (obx__codec_delivery_decode(rec, n, &d, &err) == OBX_OK) {
        /* re-encoding what was decoded must decode to the same thing */
        obx_buf b = {0};
        if (obx__codec_delivery_encode(&b, &d) == OBX_OK) {
            obx_delivery d2 = {0};
            if (obx__codec_delivery_decode(b.p, b.len, &d2, &err) != OBX_OK ||
                d2.state != d.state || d2.n_history != d.n_history)
                abort();
            obx_delivery_clear(&d2);
        }
        obx__buf_free(&b);
        obx_delivery_clear(&d);
    }
    /* raw input as a whole record too */
    if (obx__codec_delivery_decode(data, size, &d, &err) == OBX_OK)
        obx_delivery_clear(&d);
    free(rec);
    return 0;
}
