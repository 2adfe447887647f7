/*
 * version.c - the runtime library's version, so a program linked against the shared
 * liboutbox can check at run time that it got the library its headers describe.
 */
#include "outbox/outbox.h"

#include "config.h"

const char *obx_version(void)
{
    return OUTBOX_VERSION;
}

unsigned obx_version_num(void)
{
    return OBX_VERSION_NUM;
}

int obx_version_check(unsigned header_num)
{
    unsigned have = obx_version_num();
    unsigned major = header_num >> 16, minor = (header_num >> 8) & 0xff;
    if ((have >> 16) != major)
        return 0;
    if (major == 0)
        return ((have >> 8) & 0xff) == minor;
    return ((have >> 8) & 0xff) >= minor;
}
