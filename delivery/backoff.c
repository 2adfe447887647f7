/*
 * delivery/backoff.c - exponential backoff with jitter bounded by a maximum elapsed
 * duration, Retry-After parsing and outcome classification (see backoff.h). Pure
 * functions: time and randomness come from the caller.
 */
#include "delivery/backoff.h"
#include "delivery/error.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "delivery/duration.h"

void dlv_backoff_config_init(dlv_backoff_config *c)
{
    c->initial_interval_ms = DLV_BACKOFF_INITIAL_MS;
    c->multiplier = DLV_BACKOFF_MULTIPLIER;
    c->randomization_factor = DLV_BACKOFF_RANDOMIZATION;
    c->max_interval_ms = DLV_BACKOFF_MAX_INTERVAL_MS;
    c->max_elapsed_ms = DLV_BACKOFF_MAX_ELAPSED_MS;
}

/* ---- random sources ----------------------------------------------------------------- */

void dlv_rng_seed(dlv_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t dlv_rng_next_u64(dlv_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double dlv_rng_unit(void *ud)
{
    /* 53 random bits -> [0, 1) */
    return (double)(dlv_rng_next_u64((dlv_rng *)ud) >> 11) * 0x1.0p-53;
}

double dlv_rng_default(void *ud)
{
    static _Thread_local dlv_rng tl;
    static _Thread_local bool seeded;
    (void)ud;
    if (!seeded) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
            struct timespec ts;
            (void)clock_gettime(CLOCK_MONOTONIC, &ts);
            seed = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                   (uint64_t)(uintptr_t)&tl;
        }
        dlv_rng_seed(&tl, seed);
        seeded = true;
    }
    return dlv_rng_unit(&tl);
}

/* ---- intervals ------------------------------------------------------------------------ */

int64_t dlv_backoff_interval(const dlv_backoff_config *c, uint32_t attempts)
{
    double mult = c->multiplier < 1 ? 1 : c->multiplier;
    double initial = c->initial_interval_ms < 0 ? 0 : (double)c->initial_interval_ms;
    double maxi = c->max_interval_ms <= 0 ? INFINITY : (double)c->max_interval_ms;
    uint32_t k = attempts == 0 ? 0 : attempts - 1;
    double v = initial * pow(mult, (double)k);
    if (!(v <= maxi)) /* also catches inf and nan */
        v = maxi;
    if (!(v < 9.0e15)) /* keep far away from int64 overflow (285 000 years) */
        v = 9.0e15;
    return (int64_t)v;
}

int64_t dlv_backoff_delay(const dlv_backoff_config *c, uint32_t attempts, dlv_unit_random_fn rnd,
                          void *ud)
{
    double rf = c->randomization_factor;
    if (!(rf > 0))
        rf = 0;
    if (rf > 1)
        rf = 1;
    double i = (double)dlv_backoff_interval(c, attempts);
    double lo = i * (1 - rf), hi = i * (1 + rf);
    double u = (rnd ? rnd : dlv_rng_default)(ud);
    if (!(u >= 0) || u >= 1)
        u = 0;
    double d = lo + u * (hi - lo);
    if (d > hi)
        d = hi;
    if (d < 0)
        d = 0;
    return (int64_t)llround(d);
}

/* ---- decision ----------------------------------------------------------------------- */

/* ms -> ns for messages, saturating instead of overflowing (about 292 years). */
static int64_t ms_to_ns_sat(int64_t ms)
{
    if (ms > INT64_MAX / 1000000)
        return INT64_MAX;
    if (ms < INT64_MIN / 1000000)
        return INT64_MIN;
    return ms * 1000000;
}

/* vsnprintf through a function so that truncation of long error texts is accepted
 * (the reason is a bounded summary). */
static void fmt_reason(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt_reason(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static void describe_last(const dlv_attempt_result *r, char *buf, size_t n)
{
    if (r->http_status > 0 && r->last_error && *r->last_error)
        (void)snprintf(buf, n, "last status %d, last error: %s", r->http_status, r->last_error);
    else if (r->http_status > 0)
        (void)snprintf(buf, n, "last status %d", r->http_status);
    else if (r->last_error && *r->last_error)
        (void)snprintf(buf, n, "no response, last error: %s", r->last_error);
    else
        (void)snprintf(buf, n, "no response");
}

void dlv_backoff_decide(const dlv_backoff_config *c, const dlv_attempt_result *r, int64_t now_ms,
                        dlv_unit_random_fn rnd, void *ud, dlv_backoff_decision *out)
{
    char last[160], bound[32], elapsed[32];
    memset(out, 0, sizeof *out);
    out->deadline_ms = c->max_elapsed_ms > 0 && r->first_attempt_ms <= INT64_MAX - c->max_elapsed_ms
                           ? r->first_attempt_ms + c->max_elapsed_ms
                           : INT64_MAX;
    describe_last(r, last, sizeof last);
    (void)dlv_duration_format(ms_to_ns_sat(c->max_elapsed_ms), bound, sizeof bound);
    (void)dlv_duration_format(ms_to_ns_sat(now_ms - r->first_attempt_ms), elapsed, sizeof elapsed);

    bool ra = (r->http_status == 429 || r->http_status == 503) && r->retry_after_ms >= 0;
    int64_t delay = ra ? r->retry_after_ms : dlv_backoff_delay(c, r->attempts, rnd, ud);
    bool fits = now_ms <= out->deadline_ms && delay <= out->deadline_ms - now_ms;
    if (fits) {
        out->dead = 0;
        out->delay_ms = delay;
        out->retry_at_ms = now_ms + delay;
        return;
    }
    out->dead = 1;
    if (ra) {
        int64_t left = out->deadline_ms > now_ms ? out->deadline_ms - now_ms : 0;
        fmt_reason(out->reason, sizeof out->reason,
                   "Retry-After %" PRId64 " s exceeds the remaining backoff budget (%" PRId64
                   " ms left of max_backoff_duration %s) after %" PRIu32 " attempt(s); %s",
                   (r->retry_after_ms + 999) / 1000, left, bound, r->attempts, last);
    } else {
        fmt_reason(out->reason, sizeof out->reason,
                   "gave up after %" PRIu32 " attempt(s) in %s: the next attempt would fall "
                   "past max_backoff_duration %s; %s",
                   r->attempts, elapsed, bound, last);
    }
}

dlv_outcome dlv_classify_status(int http_status, const int *dead_letter_on, size_t n)
{
    if (http_status >= 200 && http_status <= 299)
        return DLV_OUTCOME_DELIVERED;
    for (size_t i = 0; dead_letter_on && i < n; i++)
        if (http_status != 0 && dead_letter_on[i] == http_status)
            return DLV_OUTCOME_DEAD;
    return DLV_OUTCOME_RETRY;
}

/* ---- Retry-After -------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int month_index(const char *s)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strcmp(s, months[i]) == 0)
            return i + 1;
    return 0;
}

static bool valid_wday(const char *s, bool full)
{
    static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const fulls[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < 7; i++)
        if (strcmp(s, full ? fulls[i] : days[i]) == 0)
            return true;
    return false;
}

/* Parse an HTTP-date into Unix seconds. 0 or -1. */
static int parse_http_date(const char *s, int64_t now_s, int64_t *ret)
{
    char wday[16], mon[8], tz[8];
    int d = 0, y = 0, H = 0, M = 0, S = 0, used = 0;
    bool ok = false;

    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3s%n", wday, &d, mon, &y, &H, &M, &S,
               tz, &used) == 8 &&
        !s[used] && valid_wday(wday, false) && strcmp(tz, "GMT") == 0) {
        ok = true;
    } else if (sscanf(s, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d %3s%n", wday, &d, mon, &y, &H,
                      &M, &S, tz, &used) == 8 &&
               !s[used] && valid_wday(wday, true) && strcmp(tz, "GMT") == 0) {
        /* RFC 850, two-digit year: RFC 7231 7.1.1.1 - a year more than 50 years in the
         * future is taken as the most recent past year with those digits. */
        int64_t now_year = 1970 + now_s / 31556952;
        y += (int)(now_year / 100 * 100);
        if (y > now_year + 50)
            y -= 100;
        ok = true;
    } else if (sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon, &d, &H, &M, &S,
                      &y, &used) == 7 &&
               !s[used] && valid_wday(wday, false)) {
        ok = true; /* asctime: Sun Nov  6 08:49:37 1994 */
    }
    if (!ok)
        return -1;
    int m = month_index(mon);
    if (!m || d < 1 || d > 31 || H > 23 || M > 59 || S > 60 || y < 1900 || H < 0 || M < 0 || S < 0)
        return -1;
    *ret = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + H * 3600 + M * 60 + S;
    return 0;
}

int dlv_retry_after_parse(const char *value, int64_t now_ms, int64_t *ret_delay_ms)
{
    char buf[64];
    if (!value)
        return DLV_ERR_INVALID;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof buf)
        return DLV_ERR_INVALID;
    memcpy(buf, value, n);
    buf[n] = '\0';

    if (buf[0] >= '0' && buf[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return DLV_ERR_INVALID;
            if (secs < INT64_C(1000000000000)) /* saturate at ~31 700 years */
                secs = secs * 10 + (buf[i] - '0');
        }
        *ret_delay_ms = secs * 1000;
        return DLV_OK;
    }
    int64_t when;
    if (parse_http_date(buf, now_ms / 1000, &when) < 0)
        return DLV_ERR_INVALID;
    int64_t d = when * 1000 - now_ms;
    *ret_delay_ms = d > 0 ? d : 0;
    return DLV_OK;
}
