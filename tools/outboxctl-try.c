/*
 * outboxctl-try.c - PLACEHOLDER until delivery's template.h lands: render prints its
 * help, and otherwise reports that it is not available in this build.
 */
#include <string.h>

#include "outboxctl.h"

static int unavailable(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return ctl_help(argv[0]);
    ctl_err("%s: not available in this build yet", argv[0]);
    return CTL_EXIT_ERROR;
}

int ctl_cmd_render(ctl_ctx *c, int argc, char **argv)
{
    (void)c;
    return unavailable(argc, argv);
}
