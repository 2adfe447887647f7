/*
 * outboxctl-config.h - where outboxctl learns which store to open and what the sinks
 * are: --data-dir, else the config's outbox.path (--config FILE, outboxd's YAML), else
 * $OUTBOX_DATA_DIR. The config is loaded at most once per invocation and freed by
 * ctl_config_free.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_CONFIG_H
#define OUTBOX_TOOLS_OUTBOXCTL_CONFIG_H

#include "outboxctl.h"

/*
 * Load the config when --config was given (once) and set c->data_dir and
 * c->config_max_size. Prints the error and returns an exit code (0 on success).
 */
int ctl_config_resolve(ctl_ctx *c);

/* The config's backend settings (outbox.backend, outbox.postgres.*) into o; nothing
 * without --config. Pointers borrowed from the config. */
void ctl_config_store_options(const ctl_ctx *c, obx_options *o);

/* Free what ctl_config_resolve loaded. */
void ctl_config_free(ctl_ctx *c);

#endif
