/*
 * tools/listen-addr.h - the one parser of listen addresses ("HOST:PORT", "[IPV6]:PORT").
 *
 * Used for the config's ingest.listen, outboxd's --listen and the HTTP listener itself, so
 * an address the config check accepts is an address the daemon can bind (name resolution
 * and binding aside). Pure functions, thread-safe, no allocation.
 */
#ifndef OUTBOX_TOOLS_LISTEN_ADDR_H
#define OUTBOX_TOOLS_LISTEN_ADDR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Split `addr` into host and port. The host is non-empty; an IPv6 address is written in
 * brackets (the brackets are not copied); the port is decimal, 0..65535 (0 = any free port).
 * @param[out] host  cap bytes; the host, NUL-terminated (may be NULL to only validate).
 * @param[out] port  may be NULL.
 * @param[out] err   on failure, e.g. `expected HOST:PORT, found "localhost"`; may be NULL.
 * @return 0, or -1 when addr is not a listen address.
 */
int listen_addr_parse(const char *addr, char *host, size_t cap, uint16_t *port, char *err,
                      size_t errlen);

/* Validate only: listen_addr_parse without outputs (the shape of the config's checks). */
int listen_addr_check(const char *addr, char *err, size_t errlen);

/*
 * 1 when the address's host is a loopback one: 127.0.0.0/8, ::1 or "localhost" (other
 * names are not resolved: they count as not loopback). 0 otherwise or when it does not
 * parse. The admin listener's rule: without tokens it must be on loopback.
 */
int listen_addr_is_loopback(const char *addr);
/* The same for a host alone (no port, no brackets). */
int listen_host_is_loopback(const char *host);

#endif
