/*
 * outboxctl-time.c - parsing and printing of times and durations for outboxctl
 * (see outboxctl-time.h for the accepted forms).
 */
#include "outboxctl-time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delivery/duration.h"
#include "delivery/error.h"

int ctl_duration_parse(const char *s, int64_t *ms, char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "empty duration (use e.g. 90s, 30m, 1h30m, 7d)");
        return -1;
    }
    if (!isdigit((unsigned char)*s) && *s != '.') {
        /* no sign: a duration here always means "that long ago" */
        snprintf(err, errlen, "invalid duration \"%s\": expected a number at \"%s\"", s, s);
        return -1;
    }
    /* the one duration parser (Go's grammar), with days and weeks added */
    int64_t ns;
    char why[160];
    if (dlv_duration_parse_units(s, strlen(s), DLV_DURATION_DAYS, &ns, why, sizeof why) != DLV_OK) {
        snprintf(err, errlen, "%s (use ns, us, ms, s, m, h, d or w, e.g. 30m or 7d)", why);
        return -1;
    }
    *ms = dlv_ns_to_ms(ns);
    return 0;
}

/* Read exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int rfc3339_parse(const char *s, int64_t *out, char *err, size_t errlen)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0;
    int64_t frac_ms = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        goto range;
    long off_s = 0;
    if (*p == '\0')
        goto done; /* a bare date: midnight UTC */
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        goto bad;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &se))
            goto bad;
        if (*p == '.' || *p == ',') {
            p++;
            int64_t scale = 1000;
            if (!isdigit((unsigned char)*p))
                goto bad;
            while (isdigit((unsigned char)*p)) {
                if (scale > 1) {
                    scale /= 10;
                    frac_ms += (*p - '0') * scale;
                }
                p++;
            }
        }
    }
    if (h > 23 || mi > 59 || se > 60)
        goto range;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh))
            goto bad;
        if (*p == ':')
            p++;
        if (digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
        off_s = sign * (oh * 3600L + om * 60L);
    } else if (*p == '\0') {
        snprintf(err, errlen,
                 "invalid time \"%s\": no time zone (add Z for UTC or an offset like +02:00)", s);
        return -1;
    } else {
        goto bad;
    }
    if (*p)
        goto bad;
done:;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* normalised: Feb 30 and the like */
        goto range;
    *out = ((int64_t)t - off_s) * 1000 + frac_ms;
    return 0;
bad:
    snprintf(err, errlen,
             "invalid time \"%s\": use RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26), "
             "\"now\", or a duration ago (30m, 1h, 7d)",
             s);
    return -1;
range:
    snprintf(err, errlen, "invalid time \"%s\": a field is out of range", s);
    return -1;
}

int ctl_time_parse(const char *s, int64_t now_ms, int64_t *out, char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "empty time");
        return -1;
    }
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    /* "2026-..." is a date; anything else starting with a digit is a duration ago. */
    if (strlen(s) >= 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && s[4] == '-')
        return rfc3339_parse(s, out, err, errlen);
    int64_t d;
    if (isdigit((unsigned char)s[0]) || s[0] == '.') {
        if (ctl_duration_parse(s, &d, err, errlen))
            return -1;
        *out = now_ms - d;
        return 0;
    }
    return rfc3339_parse(s, out, err, errlen);
}

void ctl_time_rfc3339(int64_t ms, char *buf, size_t n)
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int rem = (int)(ms - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, n, "?");
        return;
    }
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem);
}

void ctl_duration_fmt(int64_t ms, char *buf, size_t n)
{
    if (ms < 0)
        ms = -ms;
    if (ms < 1000) {
        snprintf(buf, n, "%lldms", (long long)ms);
        return;
    }
    static const struct {
        char u;
        int64_t ms;
    } u[] = {{'d', 86400000}, {'h', 3600000}, {'m', 60000}, {'s', 1000}};
    int64_t secs_ms = ms - ms % 1000;
    for (size_t i = 0; i < 4; i++) {
        if (secs_ms >= u[i].ms) {
            int64_t a = secs_ms / u[i].ms, rest = secs_ms % u[i].ms;
            if (i < 3 && rest >= u[i + 1].ms)
                snprintf(buf, n, "%lld%c%lld%c", (long long)a, u[i].u,
                         (long long)(rest / u[i + 1].ms), u[i + 1].u);
            else
                snprintf(buf, n, "%lld%c", (long long)a, u[i].u);
            return;
        }
    }
    snprintf(buf, n, "0s");
}

void ctl_age(int64_t t_ms, int64_t now_ms, char *buf, size_t n)
{
    int64_t diff = now_ms - t_ms;
    if (diff > -500 && diff < 500) {
        snprintf(buf, n, "now");
        return;
    }
    char d[32];
    ctl_duration_fmt(diff, d, sizeof d);
    if (diff > 0)
        snprintf(buf, n, "%s ago", d);
    else
        snprintf(buf, n, "in %s", d);
}
