/*
 * outboxd-notify.h - systemd's service notification protocol (sd_notify), without
 * libsystemd: one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET.
 *
 * Under `Type=notify` the daemon sends READY=1 once it accepts events, STOPPING=1 when it
 * begins to shut down, and WATCHDOG=1 periodically when the unit sets WatchdogSec=. Outside
 * systemd ($NOTIFY_SOCKET unset) every call does nothing and succeeds.
 */
#ifndef OUTBOXD_NOTIFY_H
#define OUTBOXD_NOTIFY_H

/*
 * Send `state` (e.g. "READY=1", newline-separated assignments) to $NOTIFY_SOCKET; a name
 * starting with '@' is an abstract socket. `state` is only read during the call.
 * @return 0 (sent, or no $NOTIFY_SOCKET), or -1 with errno set.
 */
int ond_notify(const char *state);

/*
 * The watchdog interval systemd asks for, in microseconds, from $WATCHDOG_USEC (and
 * $WATCHDOG_PID, when set, naming this process); 0 when no watchdog is requested.
 */
unsigned long long ond_watchdog_usec(void);

#endif
