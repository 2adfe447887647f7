/*
 * outboxd-ingest-deadline.c - the ingest listener's connection tracking (see
 * outboxd-ingest-server.h): every open connection is known (MHD's notify-connection
 * callback) with the phase of its request; the `ingest-deadline` thread closes those
 * past their header or body deadline and gives memory back to the system after a burst
 * of connections.
 */
#include <errno.h>
#include <linux/tcp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "outboxd-ingest-server.h"
#include "outboxd-log.h"

uint64_t oin__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Bytes received from the peer so far (TCP_INFO), or UINT64_MAX when unknown. */
static uint64_t rx_bytes(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return UINT64_MAX;
    return ti.tcpi_bytes_received;
}

/* The tracked state of a connection (NULL when it could not be tracked). */
static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void oin__phase_set(oin_server *s, struct MHD_Connection *c, conn_phase ph)
{
    conn *k = conn_of(c);
    if (!k)
        return;
    uint64_t base = ph == PH_IDLE ? rx_bytes(k->fd) : 0;
    pthread_mutex_lock(&s->conn_mu);
    if (k->phase != PH_CLOSING) {
        k->phase = ph;
        k->since_us = oin__mono_us();
        k->rx_base = base;
    }
    pthread_mutex_unlock(&s->conn_mu);
}

void oin__on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code)
{
    oin_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *k = ci ? calloc(1, sizeof *k) : NULL;
        *socket_context = k;
        if (!k) {
            olog(OLOG_WARN, "connection not tracked for deadlines", OLOG_S("reason", "no memory"));
            return;
        }
        k->fd = ci->connect_fd;
        k->phase = PH_IDLE; /* rx_base 0: its first byte starts the header deadline */
        pthread_mutex_lock(&s->conn_mu);
        k->next = s->conns;
        if (s->conns)
            s->conns->prev = k;
        s->conns = k;
        if (++s->n_conns > s->conn_peak)
            s->conn_peak = s->n_conns;
        pthread_mutex_unlock(&s->conn_mu);
        return;
    }
    conn *k = *socket_context; /* MHD closes the socket only after this returns */
    if (!k)
        return;
    pthread_mutex_lock(&s->conn_mu);
    if (k->prev)
        k->prev->next = k->next;
    else
        s->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    s->n_conns--;
    pthread_mutex_unlock(&s->conn_mu);
    free(k);
    *socket_context = NULL;
}

/*
 * Close every connection past its deadline (under conn_mu). shutdown() wakes the MHD
 * thread that owns the connection, which sees the end of input and closes it.
 */
static void sweep(oin_server *s, uint64_t now)
{
    for (conn *k = s->conns; k; k = k->next) {
        omet_phase late;
        if (k->phase == PH_IDLE) {
            if (rx_bytes(k->fd) > k->rx_base) { /* a request has begun */
                k->phase = PH_HEADERS;
                k->since_us = now;
            }
            continue;
        }
        if (k->phase == PH_HEADERS && now - k->since_us >= s->header_us)
            late = OMET_PHASE_HEADERS;
        else if (k->phase == PH_BODY && now - k->since_us >= s->body_us)
            late = OMET_PHASE_BODY;
        else
            continue;
        k->phase = PH_CLOSING;
        (void)shutdown(k->fd, SHUT_RDWR);
        omet_deadline_closed(s->cfg.metrics, late);
        olog(OLOG_DEBUG, "connection closed",
             OLOG_S("reason", late == OMET_PHASE_HEADERS ? "headers not complete in time "
                                                           "(ingest.header_timeout)"
                                                         : "body not complete in time "
                                                           "(ingest.body_timeout)"));
    }
}

/*
 * After a burst of connections (at least TRIM_AFTER_CONNS, then at most half as many
 * open), give the memory they used back to the system: each connection's buffers (about
 * 45 KiB) are freed into malloc's arenas, which otherwise keep them resident for good.
 */
#define TRIM_AFTER_CONNS 64

static void *sweeper(void *arg)
{
    oin_server *s = arg;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->sweep_stop) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        uint64_t ns = (uint64_t)dl.tv_nsec + s->tick_us * 1000u;
        dl.tv_sec += (time_t)(ns / 1000000000u);
        dl.tv_nsec = (long)(ns % 1000000000u);
        (void)pthread_cond_timedwait(&s->sweep_cv, &s->conn_mu, &dl);
        if (s->sweep_stop)
            break;
        sweep(s, oin__mono_us());
        if (s->conn_peak >= s->n_conns + TRIM_AFTER_CONNS && s->n_conns <= s->conn_peak / 2) {
            s->conn_peak = s->n_conns;
            pthread_mutex_unlock(&s->conn_mu);
            (void)malloc_trim(0);
            pthread_mutex_lock(&s->conn_mu);
        }
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

void oin__sweeper_stop(oin_server *s)
{
    if (!s->sweeping)
        return;
    pthread_mutex_lock(&s->conn_mu);
    s->sweep_stop = 1;
    pthread_cond_signal(&s->sweep_cv);
    pthread_mutex_unlock(&s->conn_mu);
    pthread_join(s->sweeper, NULL);
    s->sweeping = 0;
}

int oin__sweeper_start(oin_server *s, char *err, size_t cap)
{
    int rc = pthread_create(&s->sweeper, NULL, sweeper, s);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the deadline thread: %s", strerror(rc));
        return -1;
    }
    s->sweeping = 1;
    pthread_setname_np(s->sweeper, "ingest-deadline");
    return 0;
}
