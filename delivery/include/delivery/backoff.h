/*
 * delivery/backoff.h - the retry policy, as pure functions of their arguments.
 *
 * Exponential backoff with jitter, like cenkalti/backoff v4 (which Flipt's docs describe):
 * the wait after attempt k (k = 1, 2, ...) is
 *     i = min(initial_interval * multiplier^(k-1), max_interval)
 * jittered uniformly in [i*(1-rf), i*(1+rf)] (rf = randomization_factor). The whole
 * delivery is bounded by max_elapsed_ms (the config key max_backoff_duration), measured
 * from the first attempt: when the next attempt would fall after first_attempt + bound the
 * delivery is dead, with a reason naming attempts, last status and last error.
 * Retry-After (on 429/503) is obeyed when it fits inside the bound, else the delivery is dead.
 *
 * Nothing here reads a clock or global randomness: time and a random source are arguments,
 * so tests are deterministic (see dlv_rng_*). All functions are thread-safe.
 */
#ifndef OUTBOX_DELIVERY_BACKOFF_H
#define OUTBOX_DELIVERY_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/error.h"

typedef struct dlv_backoff_config {
    int64_t initial_interval_ms; /* default 500 */
    double multiplier;           /* default 1.5; values < 1 are treated as 1 */
    double randomization_factor; /* default 0.5; clamped to [0, 1] */
    int64_t max_interval_ms;     /* default 60000 */
    int64_t max_elapsed_ms;      /* max_backoff_duration, default 15000; <= 0 = unbounded */
} dlv_backoff_config;

#define DLV_BACKOFF_INITIAL_MS      500
#define DLV_BACKOFF_MULTIPLIER      1.5
#define DLV_BACKOFF_RANDOMIZATION   0.5
#define DLV_BACKOFF_MAX_INTERVAL_MS 60000
#define DLV_BACKOFF_MAX_ELAPSED_MS  15000

/* Fill c with the defaults above. */
void dlv_backoff_config_init(dlv_backoff_config *c);

/*
 * A random source: returns a double uniformly distributed in [0, 1). `ud` is the caller's
 * state (same signature as the engine's dlv_random_fn, so one can be passed for the other).
 */
typedef double (*dlv_unit_random_fn)(void *ud);

/* Seeded deterministic PRNG (splitmix64). Not thread-safe per instance; use one per thread. */
typedef struct dlv_rng {
    uint64_t state;
} dlv_rng;

void dlv_rng_seed(dlv_rng *r, uint64_t seed);
uint64_t dlv_rng_next_u64(dlv_rng *r);
/* dlv_unit_random_fn over a dlv_rng: ud must point to a dlv_rng. */
double dlv_rng_unit(void *ud);
/* dlv_unit_random_fn with a thread-local generator seeded once per thread from getrandom()
 * (clock fallback); ud is ignored (may be NULL). Thread-safe. */
double dlv_rng_default(void *ud);

/*
 * The jittered wait after attempt number `attempts` (>= 1; 0 is treated as 1).
 * @param[in] rnd, ud  random source; rnd NULL means dlv_rng_default.
 * @return the wait in ms, >= 0.
 */
int64_t dlv_backoff_delay(const dlv_backoff_config *c, uint32_t attempts, dlv_unit_random_fn rnd,
                          void *ud);

/* The un-jittered interval for attempt `attempts` (>= 1): min(initial*mult^(k-1), max). */
int64_t dlv_backoff_interval(const dlv_backoff_config *c, uint32_t attempts);

#define DLV_REASON_MAX 256

typedef struct dlv_backoff_decision {
    int dead;                    /* 1: give up (reason set); 0: retry at retry_at_ms */
    int64_t retry_at_ms;         /* absolute time of the next attempt (when !dead) */
    int64_t delay_ms;            /* retry_at_ms - now_ms (when !dead) */
    int64_t deadline_ms;         /* first_attempt_ms + max_elapsed_ms, or INT64_MAX if unbounded */
    char reason[DLV_REASON_MAX]; /* when dead: e.g. "gave up after 5 attempts in 14.2s
                                    (max_backoff_duration 15s): last status 503, last
                                    error: ..." ; "" otherwise */
} dlv_backoff_decision;

/* What the last attempt produced, for the decision and the dead-letter reason. */
typedef struct dlv_attempt_result {
    uint32_t attempts;        /* attempts made so far, including the one that just failed */
    int64_t first_attempt_ms; /* time of the first attempt */
    int http_status;          /* last HTTP status, 0 when there was no response */
    const char *last_error;   /* last transport error text or NULL (borrowed, copied into
                                 the reason) */
    int64_t retry_after_ms;   /* parsed Retry-After of the last response, -1 when none; only
                                 used when http_status is 429 or 503 */
} dlv_attempt_result;

/*
 * Decide what to do after a failed (retryable) attempt at time now_ms.
 * With a usable Retry-After (429/503, retry_after_ms >= 0): retry at now + RA when that is
 * <= the deadline, else dead with reason "Retry-After N s exceeds the remaining backoff
 * budget (...)". Otherwise: delay = dlv_backoff_delay(); retry when now + delay <= deadline,
 * else dead. Never returns a retry_at_ms past the deadline.
 * @param[in]  rnd, ud  random source (rnd NULL = dlv_rng_default).
 * @param[out] out      always filled.
 */
void dlv_backoff_decide(const dlv_backoff_config *c, const dlv_attempt_result *r, int64_t now_ms,
                        dlv_unit_random_fn rnd, void *ud, dlv_backoff_decision *out);

/*
 * Parse a Retry-After value: non-negative integer seconds, or an HTTP-date (RFC 7231:
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT",
 * asctime "Sun Nov  6 08:49:37 1994"). A date in the past gives 0.
 * Leading/trailing spaces are ignored.
 * @param[out] ret_delay_ms  the wait in ms; untouched on failure.
 * @return DLV_OK, or DLV_ERR_INVALID when the value is empty or not one of these forms.
 */
int dlv_retry_after_parse(const char *value, int64_t now_ms, int64_t *ret_delay_ms);

typedef enum dlv_outcome {
    DLV_OUTCOME_DELIVERED = 0, /* any 2xx */
    DLV_OUTCOME_RETRY = 1,     /* everything else, including 0 = no response */
    DLV_OUTCOME_DEAD = 2,      /* status listed in the sink's dead_letter_on */
} dlv_outcome;

/*
 * Classify an attempt's HTTP status (0 = transport error, timeout, TLS error...).
 * @param[in] dead_letter_on, n  the sink's list (borrowed; may be NULL when n == 0).
 */
dlv_outcome dlv_classify_status(int http_status, const int *dead_letter_on, size_t n);

#endif
