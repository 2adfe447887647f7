/* gen-corpus.c - writes seed inputs for fuzz-codec (valid records minus their envelope). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void emit(const char *dir, const char *name, const obx_buf *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    unsigned char first = 1; /* fix up the checksum */
    fwrite(&first, 1, 1, f);
    fwrite(b->p + 5, 1, b->len - 5, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    obx_buf b = {0};
    uint32_t sinks[] = {1, 2};
    rec_event e = {1700000000000, "flag", "created", (const unsigned char *)"{\"a\":1}", 7,
                   sinks,         2};
    obx__codec_event_encode(&b, &e);
    emit(dir, "event", &b);
    obx_delivery d = {
        .state = OBX_STATE_DEAD, .attempts = 3, .last_status = 500, .reason = strdup("gave up")};
    obx__delivery_push_attempt(&d, 1, 2, 500, "HTTP 500", 10);
    obx__delivery_push_attempt(&d, 3, 4, 0, "connection refused", 10);
    obx__codec_delivery_encode(&b, &d);
    emit(dir, "delivery", &b);
    /* an attempt with a captured response (headers, body, body size) */
    obx_header hs[] = {{"Content-Type", "text/plain"}, {"Retry-After", "5"}};
    obx__attempt_set_capture(&d.history[0], hs, 2, (const unsigned char *)"oops\x1b", 5, 900);
    obx__codec_delivery_encode(&b, &d);
    emit(dir, "delivery-capture", &b);
    obx_delivery_clear(&d);
    obx__buf_free(&b);
    return 0;
}
