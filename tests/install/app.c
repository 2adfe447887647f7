/*
 * app.c - a program an outbox user would write, built by test-install.py against the
 * installed headers and liboutbox.so through pkg-config: checks the runtime library's
 * version, opens a store in argv[1], enqueues one event for sink "webhook", reads it back.
 */
#include <outbox/outbox.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: app DIR\n");
        return 2;
    }
    if (!OBX_VERSION_OK() || strcmp(obx_version(), OBX_VERSION_STRING) != 0) {
        fprintf(stderr, "app: liboutbox %s does not match headers %s\n", obx_version(),
                OBX_VERSION_STRING);
        return 1;
    }
    obx_options o;
    obx_options_init(&o);
    o.flags = OBX_OPEN_OWNER;
    obx_store *s = NULL;
    obx_error err;
    int rc = 1;
    static const char body[] = "{\"type\":\"flag\",\"action\":\"created\"}";
    uint32_t sink;
    uint64_t id = 0;
    obx_event *e = NULL;
    if (obx_open(argv[1], &o, &s, &err) != OBX_OK || obx_sink_id(s, "webhook", &sink, &err) ||
        obx_enqueue(s, &(obx_event_in){"flag", "created", body, sizeof body - 1, 0, &sink, 1}, 1,
                    &id, &err) != OBX_OK ||
        obx_event_get(s, id, &e, &err) != OBX_OK) {
        fprintf(stderr, "app: %s\n", err.msg);
        goto out;
    }
    if (e->body_len != sizeof body - 1 || memcmp(e->body, body, e->body_len) != 0) {
        fprintf(stderr, "app: event %llu reads back with another body\n", (unsigned long long)id);
        goto out;
    }
    printf("enqueued %llu version %s\n", (unsigned long long)id, obx_version());
    rc = 0;
out:
    obx_event_free(e);
    obx_close(s);
    return rc;
}
