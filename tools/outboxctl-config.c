/*
 * outboxctl-config.c - resolving the store directory for outboxctl
 * (see outboxctl-config.h).
 */
#include "outboxctl-config.h"

int ctl_config_resolve(ctl_ctx *c)
{
    if (c->config_path && !c->config) {
        ctl_err("%s: reading outboxd's config is not available in this build; use --data-dir",
                c->config_path);
        return CTL_EXIT_ERROR;
    }
    if (c->data_dir_arg)
        c->data_dir = c->data_dir_arg;
    else if (!c->data_dir)
        c->data_dir = c->env_dir;
    return CTL_EXIT_OK;
}

void ctl_config_free(ctl_ctx *c)
{
    c->config = NULL;
}
