/*
 * test-nginx.h - an nginx receiver for benchmarks: the fastest ordinary HTTP server at
 * hand, answering 200 (empty body) to every request, so that a benchmark measures the
 * sender and not the receiver. Started from a config written into its own temp dir
 * (daemon off, one worker, access log off, keep-alive without a request limit) on a
 * loopback port, stopped by PID.
 *
 * Ownership: tngx_start() returns a receiver freed (nginx stopped, temp dir removed) by
 * tngx_stop(). Needs /usr/sbin/nginx (or $NGINX): tngx_start() fails with a message
 * without it.
 */
#ifndef OUTBOX_TEST_NGINX_H
#define OUTBOX_TEST_NGINX_H

#include <stdint.h>
#include <sys/types.h>

typedef struct tngx tngx;

/* Start nginx on 127.0.0.1 (a free port); waits until it accepts. 0 on success. */
int tngx_start(tngx **out, char *err, size_t errlen);

/* Stop nginx (SIGTERM to its master, then wait) and remove its temp dir. NULL: no-op. */
void tngx_stop(tngx *n);

uint16_t tngx_port(const tngx *n);

/* "http://127.0.0.1:<port><path>" in a per-receiver buffer. */
const char *tngx_url(tngx *n, const char *path);

/* CPU seconds (user, system) used so far by nginx's master and its worker. */
void tngx_cpu(const tngx *n, double *user_s, double *sys_s);

#endif
