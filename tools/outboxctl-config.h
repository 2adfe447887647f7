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

/* Free what ctl_config_resolve loaded. */
void ctl_config_free(ctl_ctx *c);

#endif
