/*
 * tools/listen-addr.c - parsing "HOST:PORT" / "[IPV6]:PORT" (see listen-addr.h).
 */
#include "listen-addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longest host kept (DNS names are at most 253 bytes). */
#define HOST_MAX 255

int listen_addr_parse(const char *addr, char *host, size_t cap, uint16_t *port, char *err,
                      size_t errlen)
{
    /* each failure says why and names the address (it holds no secret) */
    const char *why = NULL;
    const char *h = addr, *colon = NULL;
    size_t hl = 0;
    unsigned long v = 0;
    if (!addr)
        addr = h = "";
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            why = "expected [IPV6]:PORT";
        else {
            h = addr + 1;
            hl = (size_t)(rb - h);
            colon = rb + 1;
        }
    } else {
        colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon)
            why = "expected HOST:PORT";
        else
            hl = (size_t)(colon - addr);
    }
    if (!why && hl == 0)
        why = "expected HOST:PORT with a host";
    if (!why && (hl > HOST_MAX || (host && hl >= cap)))
        why = "the host is longer than 255 bytes";
    if (!why) {
        const char *p = colon + 1;
        size_t nd = strspn(p, "0123456789");
        for (size_t i = 0; i < nd && i < 6; i++)
            v = v * 10 + (unsigned long)(p[i] - '0');
        if (nd == 0 || p[nd] || nd > 5 || v > 65535)
            why = "port must be a number 0..65535";
    }
    if (why) {
        if (err && errlen)
            (void)snprintf(err, errlen, "%s, found \"%.300s\"", why, addr);
        return -1;
    }
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

int listen_addr_is_loopback(const char *addr)
{
    char host[HOST_MAX + 1];
    if (listen_addr_parse(addr, host, sizeof host, NULL, NULL, 0) != 0)
        return 0;
    return listen_host_is_loopback(host);
}

int listen_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}
