/*
 * obx_hooks.h - internal, not part of the public API: test hooks of liboutbox, compiled
 * in only when meson's `test_hooks` option is on (OBX_TEST_HOOKS, passed to outbox and to
 * everything that depends on it). In a production build every hook is an empty statement:
 * no code, no getenv.
 *
 * OBX_CRASH_POINT(name): when the environment variable OUTBOX_CRASH_POINT equals `name`
 * (and OUTBOX_CRASH_AFTER, default 1, hits have been counted), the process aborts right
 * there. The store has "enqueue-before-commit", "enqueue-after-commit" (committed,
 * callers not yet woken), "dead-move" (a dead-letter move half written), "retention" (a
 * sweep half done) and "prefill-partial"; the delivery engine adds
 * "delivery-before-record". Crash tests are registered only in builds with the option.
 */
#ifndef OUTBOX_OBX_HOOKS_H
#define OUTBOX_OBX_HOOKS_H

#ifdef OBX_TEST_HOOKS
void obx__crash_point(const char *name);
#define OBX_CRASH_POINT(name) obx__crash_point(name)
#else
#define OBX_CRASH_POINT(name) ((void)0)
#endif

#endif
