/* nng_echo: an nng echo server for nng's own request/reply protocol (SP
 * over TCP: it does not speak len32be; drive it with nng_client).
 *
 *   nng_echo [tcp://HOST:PORT | unix:/path] [CONTEXTS]
 *
 * Prints "listening on ENDPOINT" first, in sockmsg's endpoint form (PORT 0
 * picks one and prints it; unix:/path is nng's ipc:///path).
 * A rep0 socket served the way nng's demo/async server is: CONTEXTS contexts
 * (default 1024, enough for every request of 50 connections x 16 in flight
 * to be answered without waiting for a context), each an asynchronous
 * receive-then-send loop on its own aio that sends back the very message it
 * received (no copy, no allocation). Callbacks run on nng's task threads.
 * TCP_NODELAY on (nng's default, set again). SIGTERM and SIGINT exit 0. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#define MAX_MSG (16u * 1024 * 1024 + 64)

struct work {
    nng_aio *aio;
    nng_ctx ctx;
    int sending;
};

static char unix_path[108];

static void
on_signal(int sig)
{
    (void)sig;
    if (unix_path[0]) unlink(unix_path);
    _exit(0);
}

static void
on_done(void *arg)
{
    struct work *w = arg;
    int rv = nng_aio_result(w->aio);
    if (w->sending) {
        if (rv != 0) nng_msg_free(nng_aio_get_msg(w->aio));
        w->sending = 0;
        nng_ctx_recv(w->ctx, w->aio);
        return;
    }
    if (rv == NNG_ECLOSED) return;
    if (rv != 0) {
        nng_ctx_recv(w->ctx, w->aio);
        return;
    }
    /* The request is the reply: hand the same message back. */
    nng_aio_set_msg(w->aio, nng_aio_get_msg(w->aio));
    w->sending = 1;
    nng_ctx_send(w->ctx, w->aio);
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
    int nwork = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1024;
    if (nwork < 1) nwork = 1;
    char url[300];
    if (!strncmp(where, "unix:", 5)) {
        snprintf(unix_path, sizeof unix_path, "%s", where + 5);
        unlink(unix_path);
        snprintf(url, sizeof url, "ipc://%s", unix_path);
    } else {
        snprintf(url, sizeof url, "%s", where);
    }

    nng_socket s;
    nng_listener l;
    int rv;
    if ((rv = nng_rep0_open(&s)) != 0 ||
        (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, MAX_MSG)) != 0 ||
        (rv = nng_listener_create(&l, s, url)) != 0) {
        fprintf(stderr, "nng_echo: %s: %s\n", url, nng_strerror(rv));
        return 1;
    }
    if (!unix_path[0]) nng_listener_set_bool(l, NNG_OPT_TCP_NODELAY, true);
    struct work *works = calloc((size_t)nwork, sizeof *works);
    if (!works) return 1;
    for (int i = 0; i < nwork; i++) {
        if ((rv = nng_aio_alloc(&works[i].aio, on_done, &works[i])) != 0 ||
            (rv = nng_ctx_open(&works[i].ctx, s)) != 0) {
            fprintf(stderr, "nng_echo: %s\n", nng_strerror(rv));
            return 1;
        }
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        fprintf(stderr, "nng_echo: %s: %s\n", url, nng_strerror(rv));
        return 1;
    }
    for (int i = 0; i < nwork; i++)
        nng_ctx_recv(works[i].ctx, works[i].aio);
    if (unix_path[0]) {
        printf("listening on unix:%s\n", unix_path);
    } else {
        int port = 0;
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        printf("listening on tcp://%.*s:%d\n", colon ? (int)(colon - host) : 0, host, port);
    }
    fflush(stdout);
    for (;;)
        pause();
}
