/*
 * tools/listen-addr.c - parsing "HOST:PORT" / "[IPV6]:PORT" (see listen-addr.h).
 */
#include "listen-addr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Longest host kept (DNS names are at most 253 bytes). */
#define HOST_MAX 255

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int listen_addr_parse(const char *addr, char *host, size_t cap, uint16_t *port, char *err,
                      size_t errlen)
{
    if (!addr)
        return fail(err, errlen, "expected HOST:PORT, found nothing");
    const char *h = addr, *colon;
    size_t hl;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return fail(err, errlen, "expected [IPV6]:PORT, found \"%.300s\"", addr);
        h = addr + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon)
            return fail(err, errlen, "expected HOST:PORT, found \"%.300s\"", addr);
        hl = (size_t)(colon - addr);
    }
    if (hl == 0)
        return fail(err, errlen, "expected HOST:PORT, found \"%.300s\" (no host)", addr);
    if (hl > HOST_MAX || (host && hl >= cap))
        return fail(err, errlen, "host in \"%.40s...\" is longer than %d bytes", addr, HOST_MAX);
    const char *p = colon + 1;
    unsigned long v = 0;
    size_t nd = strspn(p, "0123456789");
    for (size_t i = 0; i < nd && i < 6; i++)
        v = v * 10 + (unsigned long)(p[i] - '0');
    if (nd == 0 || p[nd] || nd > 5 || v > 65535)
        return fail(err, errlen, "port must be a number 0..65535, found \"%.300s\"", addr);
    if (host) {
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port)
        *port = (uint16_t)v;
    return 0;
}

int listen_addr_check(const char *addr, char *err, size_t errlen)
{
    return listen_addr_parse(addr, NULL, 0, NULL, err, errlen);
}
