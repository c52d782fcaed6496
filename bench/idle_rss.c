/* idle_rss: what an idle connection costs a server, in RSS.
 *
 *   idle_rss ENDPOINT SERVER_PID [N] [--json]
 *
 * Opens N connections (default 10,000) to a len32be echo server, sends one
 * 16-byte message on each and reads its echo (so every connection has
 * exchanged a message, as it would in real life), then, with all of them open
 * and idle, reads the server's RSS from /proc/PID/smaps_rollup. The figure is
 * (RSS with N idle connections - RSS before the first) / N.
 *
 * The server runs in its own process (the one measured); this client needs N
 * fds, so it raises its RLIMIT_NOFILE soft limit to the hard one. Not a test:
 * it prints a measurement. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/socket.h>
#include <sockmsg/sockmsg.h>

#include "bench_arg.h"

/* The server's resident set in bytes (Rss: in smaps_rollup, else VmRSS). */
static long long
rss_of(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    const char *key = "Rss:";
    if (!f) {
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        f = fopen(path, "r");
        key = "VmRSS:";
    }
    if (!f) return -1;
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) {
            kb = strtoll(line + strlen(key), NULL, 10);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: idle_rss ENDPOINT SERVER_PID [N] [--json]\n");
        return 2;
    }
    const char *ep = argv[1];
    int pid = (int)bench_arg_long(argv[2], 1, INT_MAX);
    long n = 10000;
    bool json = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else
            n = bench_arg_long(argv[i], 1, 10000000);
    }

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < n + 16) {
        fprintf(stderr, "idle_rss: RLIMIT_NOFILE %ld is too low for %ld connections\n",
                (long)rl.rlim_cur, n);
        return 1;
    }

    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds) return 1;
    long long before = rss_of(pid);
    if (before < 0) {
        fprintf(stderr, "idle_rss: cannot read the RSS of pid %d\n", pid);
        free(fds);
        return 1;
    }

    /* The message: a len32be frame of 16 bytes, echoed back whole. */
    static const uint8_t msg[20] = "\0\0\0\x10"
                                   "idle-connection!"; /* no NUL: exactly 20 bytes */
    uint8_t echo[20];
    double t0 = now_s();
    long open = 0;
    int rc = 0;
    for (; open < n; open++) {
        int fd = sm_dial(ep, 10000);
        if (fd < 0) {
            rc = fd;
            break;
        }
        fds[open] = fd;
        ssize_t s = sm_send_all(fd, msg, sizeof msg, 10000, NULL);
        ssize_t r = s < 0 ? s : sm_recv_exact(fd, echo, sizeof echo, 10000, NULL);
        if (r != (ssize_t)sizeof echo || memcmp(msg, echo, sizeof msg) != 0) {
            rc = r < 0 ? (int)r : -EPROTO;
            open++;
            break;
        }
    }
    double t1 = now_s();
    /* Let the server finish whatever it does after the last echo (deferred
     * releases run at the end of its loop iteration). A short pause, then
     * measure: this is a benchmark, not a test. */
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 200L * 1000 * 1000};
    nanosleep(&pause, NULL);
    long long after = rss_of(pid);

    if (rc < 0) fprintf(stderr, "idle_rss: connection %ld: %s\n", open, sm_strerror(rc));
    double per = open ? (double)(after - before) / (double)open : 0;
    if (json)
        printf("{\"connections\": %ld, \"rss_before\": %lld, \"rss_after\": %lld, "
               "\"bytes_per_conn\": %.1f, \"setup_s\": %.3f}\n",
               open, before, after, per, t1 - t0);
    else
        printf("%ld idle connections (one echoed message each): server RSS %lld -> %lld KiB, "
               "%.1f B per connection (set up in %.2f s)\n",
               open, before / 1024, after / 1024, per, t1 - t0);

    for (long i = 0; i < open; i++)
        close(fds[i]);
    free(fds);
    return rc < 0 ? 1 : 0;
}
