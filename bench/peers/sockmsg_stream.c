/* sockmsg_stream: the len32be echo server on one sm_loop with sm_stream, as a
 * benchmark peer (the same work as raw_epoll, through the library).
 *
 *   peer_sockmsg_stream [ENDPOINT]
 *
 * Prints "listening on ENDPOINT" first; runs until killed. */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/loop.h>
#include <sockmsg/socket.h>
#include <sockmsg/stream.h>

static const sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};

static void
on_message(sm_stream *s, const sm_frame_msg *m)
{
    sm_stream_send_frame(s, m);
}

/* An echo server: its reads produce writes, so it pauses reading a client
 * that does not read its replies (what sm_server does too). */
static const sm_stream_opts opts = {
    .spec = &spec, .on_message = on_message, .read_backpressure = SM_READ_BP_PAUSE};

static void
on_accept(sm_io *w, unsigned events)
{
    (void)events;
    /* Accept a batch per readiness event; the rest comes back next time. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        sm_sock_set_opts(fd, NULL);
        sm_stream *s;
        if (sm_stream_new_take(&s, w->loop, fd, &opts, NULL) < 0) continue;
    }
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    sm_endpoint ep, bound;
    char why[256] = "", addr[256];
    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    int lfd = sm_endpoint_parse(&ep, where, why, sizeof why);
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    sm_loop *loop;
    if (lfd < 0 || sm_sock_set_nonblock(lfd, true) < 0 || sm_loop_new(&loop, NULL) < 0) {
        fprintf(stderr, "peer_sockmsg_stream: %s\n", why[0] ? why : sm_strerror(lfd));
        return 1;
    }
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    sm_io acceptor;
    sm_io_init(loop, &acceptor, lfd, on_accept);
    sm_io_start(&acceptor, SM_READ);
    sm_loop_run(loop, SM_RUN_DEFAULT);
    return 0;
}
