/* zmq_echo: a ZeroMQ echo server for ZeroMQ's own request/reply protocol
 * (ZMTP framing: it does not speak len32be; drive it with zmq_client).
 *
 *   zmq_echo [tcp://HOST:PORT | unix:/path] [router|rep]
 *
 * Prints "listening on ENDPOINT" first, in sockmsg's endpoint form (PORT 0
 * picks one and prints it; unix:/path is ZeroMQ's ipc:///path).
 * The default ROUTER socket sends every multipart message back as it came
 * (routing id, any envelope, body), so it answers REQ clients (ping-pong) and
 * pipelining DEALER clients alike, many requests in flight per connection;
 * "rep" uses a REP socket instead, the textbook lockstep server. One
 * application thread and ZeroMQ's one I/O thread; zmq_msg_t parts are
 * received and sent back without copying (libzmq's perf/local_lat does the
 * same), high-water marks are lifted so a burst is never dropped, and
 * TCP_NODELAY is libzmq's default. SIGTERM and SIGINT exit 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

static char unix_path[108];

static void
on_signal(int sig)
{
    (void)sig;
    if (unix_path[0]) unlink(unix_path);
    _exit(0);
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    int rep = argc > 2 && !strcmp(argv[2], "rep");
    char zep[300];
    if (!strncmp(where, "unix:", 5)) {
        snprintf(unix_path, sizeof unix_path, "%s", where + 5);
        unlink(unix_path);
        snprintf(zep, sizeof zep, "ipc://%s", unix_path);
    } else {
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        int port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
        int hlen = colon ? (int)(colon - host) : (int)strlen(host);
        if (port)
            snprintf(zep, sizeof zep, "tcp://%.*s:%d", hlen, host, port);
        else
            snprintf(zep, sizeof zep, "tcp://%.*s:*", hlen, host);
    }

    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, rep ? ZMQ_REP : ZMQ_ROUTER) : NULL;
    int zero = 0;
    if (!s) {
        fprintf(stderr, "zmq_echo: %s\n", zmq_strerror(errno));
        return 1;
    }
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(s, zep) < 0) {
        fprintf(stderr, "zmq_echo: %s: %s\n", zep, zmq_strerror(errno));
        return 1;
    }
    if (unix_path[0]) {
        printf("listening on unix:%s\n", unix_path);
    } else {
        char last[300];
        size_t len = sizeof last;
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, last, &len);
        printf("listening on %s\n", last);
    }
    fflush(stdout);

    zmq_msg_t part;
    zmq_msg_init(&part);
    for (;;) {
        /* Each part goes straight back; zmq_msg_send leaves `part` empty for
         * the next receive, so nothing is copied or allocated here. */
        if (zmq_msg_recv(&part, s, 0) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "zmq_echo: recv: %s\n", zmq_strerror(errno));
            return 1;
        }
        int flags = zmq_msg_more(&part) ? ZMQ_SNDMORE : 0, rc;
        while ((rc = zmq_msg_send(&part, s, flags)) < 0 && errno == EINTR) {
        }
        if (rc < 0) {
            fprintf(stderr, "zmq_echo: send: %s\n", zmq_strerror(errno));
            return 1;
        }
    }
}
