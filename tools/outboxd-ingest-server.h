/*
 * outboxd-ingest-server.h - internal to the ingest listener (outboxd-ingest*.c), never
 * included elsewhere: the server, connection and request state its modules share, and
 * their entry points:
 *   outboxd-ingest.c           MHD callbacks, answers, checks, lifecycle (oin_start/stop)
 *   outboxd-ingest-deadline.c  connection tracking, header/body deadlines, memory trim
 *   outboxd-ingest-commit.c    handing complete requests to the store (group commits)
 * Every function here takes the server; none keeps a pointer past oin_stop().
 */
#ifndef OUTBOXD_INGEST_SERVER_H
#define OUTBOXD_INGEST_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "outboxd-event.h"
#include "outboxd-idem.h"
#include "outboxd-ingest.h"

struct oin_server {
    struct MHD_Daemon *d;
    oin_config cfg;
    int listen_fd;
    int quiesced_fd; /* ours to close after MHD_stop_daemon, or -1 */
    uint16_t port;
    atomic_int closing;
    atomic_int waiting; /* requests between a complete body and their answer being sent */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when waiting drops to 0 during shutdown */
    /* Pool mode on an LMDB store: each complete request is queued for the store's writer
     * (obx_enqueue_submit), which resumes its connection once durable. `inflight` counts
     * them (under mu, cv signalled at 0): MHD must not stop with one still suspended. */
    int async;
    size_t inflight;
    /* Pool mode otherwise (PostgreSQL): complete requests wait here (connection
     * suspended) for a committer. */
    struct req *q_head, *q_tail;
    int q_stop;
    pthread_cond_t q_cv;
    pthread_t committers[OIN_COMMITTERS];
    size_t n_committers;
    /* Deadlines: every open connection is tracked; a sweeper thread closes late ones. */
    pthread_mutex_t conn_mu;
    struct conn *conns;        /* doubly linked, under conn_mu */
    size_t n_conns, conn_peak; /* open now; most since memory was last given back */
    uint64_t header_us, body_us, tick_us;
    pthread_cond_t sweep_cv; /* under conn_mu */
    int sweep_stop;
    int sweeping; /* the sweeper thread was started */
    pthread_t sweeper;
    /* Store-full episode: logged once when it starts, once when intake resumes. */
    atomic_int full;
    atomic_ullong full_refused;
    atomic_ullong full_last_us; /* the episode's latest refusal */
};

/* Where a connection's current request is, for its deadline. */
typedef enum conn_phase {
    PH_IDLE,    /* between requests: no deadline of ours (MHD's idle timeout applies) */
    PH_HEADERS, /* bytes of a request arrived, headers not complete: header deadline */
    PH_BODY,    /* headers complete, body not: body deadline */
    PH_BUSY,    /* request complete: being stored and answered, no deadline */
    PH_CLOSING, /* closed by a deadline, waiting for MHD to clean it up */
} conn_phase;

/* One open connection (MHD's socket context), under conn_mu. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    conn_phase phase;
    uint64_t since_us; /* PH_HEADERS: first byte seen; PH_BODY: headers complete */
    uint64_t rx_base;  /* PH_IDLE: bytes received from the peer when it became idle */
} conn;

/* Per-request state for POST /v1/events (MHD's con_cls). */
typedef struct req {
    oev_ctype ct;
    char *buf;
    size_t len, cap;
    /* Once the body is complete and valid: */
    oev_event *evs; /* n parsed events (bodies point into buf) */
    size_t n;
    obx_event_in *in; /* k routed events, in request order */
    size_t k;
    uint32_t *sinks;             /* n * OIN_MAX_ROUTES route slots */
    int *routed;                 /* per event: stored (1) or unrouted (0) */
    uint64_t *ids;               /* k ids once committed */
    char *idem_header;           /* Idempotency-Key as received (checked), or NULL */
    oid_key idem;                /* with idem_header: what is stored with the events */
    obx_idem_result replay;      /* with idem_header: a replay's original ids */
    int committed;               /* the commit has finished: rc holds its result */
    int counted;                 /* counted in waiting until its answer is sent */
    int rc;                      /* obx_enqueue's result */
    char errmsg[256];            /* its message when rc != OBX_OK */
    uint64_t t0_us;              /* when the body was complete */
    struct MHD_Connection *conn; /* pool mode: the suspended connection */
    struct req *next;            /* committer queue */
    struct oin_server *srv;      /* async pool mode: for the writer's completion */
    obx_enqueue_req sreq;        /* async pool mode: what the writer stores */
} req;

/* Microseconds on the monotonic clock. */
uint64_t oin__mono_us(void);

/* ---- outboxd-ingest-deadline.c ---- */

/* Record the phase of c's request (from c's own MHD callbacks: its socket is open). */
void oin__phase_set(oin_server *s, struct MHD_Connection *c, conn_phase ph);
/* MHD_OPTION_NOTIFY_CONNECTION (cls = the server): track every open connection. */
void oin__on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
/* Start the `ingest-deadline` thread; -1 with err on failure. */
int oin__sweeper_start(oin_server *s, char *err, size_t cap);
/* Stop and join it (a no-op when it was not started). */
void oin__sweeper_stop(oin_server *s);

/* ---- outboxd-ingest-commit.c ---- */

/* Thread per connection: store r now, blocking until durable; the result is in r. */
void oin__commit_now(oin_server *s, req *r);
/* Pool mode: suspend c and hand r to the store's writer (or the committers); c is
 * resumed once r->committed. */
void oin__park(oin_server *s, struct MHD_Connection *c, req *r);
/* Pool mode on a store without a writer thread: start the committer threads. */
int oin__committers_start(oin_server *s, char *err, size_t cap);
/* Let the committers drain their queue and join them, then wait until every request
 * handed to the store's writer is finished (so no connection stays suspended). */
void oin__commit_drain(oin_server *s);

#endif
