/*
 * outboxd-process.c - the build info and the standard Prometheus process_* metrics of the
 * daemon, read from /proc/self (Linux) each time /metrics is rendered
 * (see omet_render_process in outboxd-metrics.h).
 */
#include "outboxd-metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "outbox/version.h"

/* Fields of /proc/self/stat the page needs. 0 when read, -1 when not. */
typedef struct proc_stat {
    unsigned long long utime, stime; /* clock ticks */
    unsigned long long starttime;    /* ticks after boot */
    unsigned long long vsize;        /* bytes */
    long long rss;                   /* pages */
} proc_stat;

static int read_stat(proc_stat *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the command name (field 2) may hold spaces and parentheses: start after its last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss */
    int got = sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu %llu %lld",
                     &ps->utime, &ps->stime, &ps->starttime, &ps->vsize, &ps->rss);
    return got == 5 ? 0 : -1;
}

/* Boot time, seconds since the epoch (btime of /proc/stat); 0 when unknown. */
static unsigned long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* Open file descriptors (entries of /proc/self/fd, without the directory's own); -1. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the descriptor opendir holds */
}

static void family(obuf *b, const char *name, const char *type, const char *help)
{
    obuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void omet_render_process(obuf *b)
{
    family(b, "outbox_build_info", "gauge", "The running outboxd's version (always 1).");
    obuf_printf(b, "outbox_build_info{version=\"");
    obuf_label(b, OBX_VERSION_STRING);
    obuf_printf(b, "\"} 1\n");
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    proc_stat ps;
    if (tick > 0 && page > 0 && read_stat(&ps) == 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent "
               "in seconds.");
        obuf_printf(b, "process_cpu_seconds_total %.2f\n",
                    (double)(ps.utime + ps.stime) / (double)tick);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        obuf_printf(b, "process_virtual_memory_bytes %llu\n", ps.vsize);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        obuf_printf(b, "process_resident_memory_bytes %lld\n", ps.rss * (long long)page);
        unsigned long long bt = boot_time();
        if (bt) {
            family(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
            obuf_printf(b, "process_start_time_seconds %.2f\n",
                        (double)bt + (double)ps.starttime / (double)tick);
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        obuf_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        obuf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}
