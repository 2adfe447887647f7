/* store.c - placeholder until the store lands (version and error names). */
#include "config.h"
#include "outbox/outbox.h"

const char *obx_version(void)
{
    return OUTBOX_VERSION;
}
