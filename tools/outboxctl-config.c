/*
 * outboxctl-config.c - resolving the store directory for outboxctl, and reading outboxd's
 * config (tools/outbox-config.h) when --config is given (see outboxctl-config.h).
 */
#include "outboxctl-config.h"

#include "outbox-config.h"

int ctl_config_resolve(ctl_ctx *c)
{
    if (c->config_path && !c->config) {
        char err[512];
        outbox_config *cfg = NULL;
        if (outbox_config_load(c->config_path, &cfg, err, sizeof err)) {
            ctl_err("%s", err);
            return CTL_EXIT_ERROR;
        }
        c->config = cfg;
        c->config_max_size = cfg->outbox.max_size;
    }
    if (c->data_dir_arg)
        c->data_dir = c->data_dir_arg;
    else if (c->config)
        c->data_dir = ((outbox_config *)c->config)->outbox.path;
    else
        c->data_dir = c->env_dir;
    return CTL_EXIT_OK;
}

void ctl_config_store_options(const ctl_ctx *c, obx_options *o)
{
    if (c->config)
        outbox_config_store_options(&((const outbox_config *)c->config)->outbox, o);
}

void ctl_config_free(ctl_ctx *c)
{
    outbox_config_free(c->config);
    c->config = NULL;
}
