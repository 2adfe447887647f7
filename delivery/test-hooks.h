/*
 * delivery/test-hooks.h - private: knobs that tests turn to make rare failures happen on
 * demand. They exist only in builds configured with -Dtest_hooks=true (DLV_TEST_HOOKS);
 * a production build has none of them. Tests set them before dlv_engine_new and reset
 * them after dlv_engine_free (they are plain globals, not synchronised).
 */
#ifndef DELIVERY_TEST_HOOKS_H
#define DELIVERY_TEST_HOOKS_H

#include <stddef.h>

#ifdef DLV_TEST_HOOKS
/* The engine's queue of results for the committer cannot grow beyond this many entries
 * (as if realloc failed); 0 = no limit. */
extern size_t dlv__test_result_queue_max;
#endif

#endif
