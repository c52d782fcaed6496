/* The first transport: a plain socket on a readiness loop (epoll, poll).
 * It reads when the loop says the socket is readable, into the buffers
 * the stream hands it, and writes with one send per call. One buffer is
 * read with recv and one piece written with send; the vector calls
 * (readv, sendmsg) are kept for two or more. read(2) passes through the
 * VFS (fdget_pos, rw_verify_area, the file's read_iter) before reaching
 * the socket, and sendmsg copies in a msghdr and its iovec array: both
 * show in the kernel's share of a small-message server's CPU. TCP
 * sockets are edge-triggered on epoll (see docs/design.md): the reader
 * reads to a short read or EAGAIN, and asks for the readiness again (a
 * re-arm) when it stops early. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "stream_internal.h"
#include "transport.h"

static void sock_io_cb(sm_io *w, unsigned events);

/* One readiness event: a receive batch, up to the stream's read budget. */
static void
sock_read(sm_stream *s, bool hup)
{
    sm__rx rx;
    if (sm__rx_begin(s, &rx) < 0) return;
    bool full = false; /* the last read filled all it was given */
    for (;;) {
        struct iovec iov[2];
        int cnt = sm__rx_buffers(s, &rx, iov);
        if (cnt <= 0) break;
        size_t room = iov[0].iov_len + (cnt > 1 ? iov[1].iov_len : 0);
        ssize_t n = cnt == 1 ? recv(s->io.fd, iov[0].iov_base, iov[0].iov_len, 0)
                             : readv(s->io.fd, iov, cnt);
        if (n < 0) {
            int err = errno;
            if (err == EINTR) continue;
            full = false;
            if (err != EAGAIN && err != EWOULDBLOCK) sm__rx_fail(s, -err);
            break;
        }
        if (n == 0) {
            sm__rx_eof(s, &rx);
            break;
        }
        /* After a hang-up the end is to be read too (see SM__EV_HUP). */
        full = (size_t)n == room || hup;
        if (!sm__rx_done(s, &rx, (size_t)n, !full)) break;
    }
    /* Stopped with bytes perhaps still waiting (the budget, zero-copy
     * replies or a hang-up ended the batch): an edge-triggered socket will
     * not say so again by itself. A paused stream is re-armed when reading
     * resumes (sm_io_set_events). */
    if (sm__rx_end(s, &rx) && full) {
        int rc = sm__io_rearm(&s->io);
        if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
    }
}

static void
sock_io_cb(sm_io *w, unsigned events)
{
    sm_stream *s = (sm_stream *)w;
    if (events & SM_READ)
        sock_read(s, events & SM__EV_HUP);
    else
        sm__tx_ready(s);
}

static void
sock_init(sm_stream *s)
{
    sm_io_init(s->io.loop, &s->io, -1, sock_io_cb);
}

static int
sock_open(sm_stream *s, int fd)
{
    sm_io_init(s->io.loop, &s->io, fd, sock_io_cb);
    /* sock_read reads to a short read or re-arms, and the writer writes to
     * EAGAIN or a short write: edges are enough (see loop_epoll.c). Not on
     * Unix sockets, where a read may stop short with more queued. */
    if (sm__sock_is_inet(fd) == 1) sm__io_set_edge(&s->io);
    int rc = sm_io_start(&s->io, SM_READ);
    if (rc < 0) sock_init(s);
    return rc;
}

static int
sock_want(sm_stream *s, unsigned events)
{
    if (events == sm_io_get_events(&s->io)) return 0;
    return sm_io_set_events(&s->io, events);
}

static int
sock_resume(sm_stream *s)
{
    return sm__io_rearm(&s->io);
}

static ssize_t
sock_send(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        /* One piece (a batch of replies in one chunk or one read buffer's
         * worth by reference) is the common write: no msghdr to import. */
        ssize_t n = iovcnt == 1 ? send(s->io.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                                : sendmsg(s->io.fd, &mh, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static int
sock_shutdown(sm_stream *s)
{
    if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) return -errno;
    return 0;
}

static void
sock_drop(sm_stream *s)
{
    int fd = s->io.fd;
    sm_io_stop(&s->io);
    close(fd);
    sock_init(s);
}

/* A readiness socket holds nothing and has nothing in flight. */
static void
sock_quiesce(sm_stream *s)
{
    int fd = s->io.fd;
    sm_io_stop(&s->io);
    sock_init(s);
    sm__detach_quiet(s, fd, 0);
}

static void
sock_close(sm_stream *s, sm_io_close_cb closed)
{
    sm_io_close(&s->io, closed);
}

bool
sm__tp_is_stream_io(const sm_io *w)
{
#ifdef SM_HAVE_URING
    if (sm__tpu_is_stream_io(w)) return true;
#endif
    return w->u.cb == sock_io_cb || sm__tp_tls_is_io(w) || sm__tp_fds_is_io(w);
}

const sm__transport_ops sm__tp_sock = {
    .name = "socket",
    .init = sock_init,
    .open = sock_open,
    .want = sock_want,
    .resume = sock_resume,
    .send = sock_send,
    .shutdown = sock_shutdown,
    .drop = sock_drop,
    .close = sock_close,
    .quiesce = sock_quiesce,
};

const sm__transport_ops *const sm__transports[SM__TP_KINDS] = {
    [SM__TP_SOCK] = &sm__tp_sock,
    [SM__TP_TLS] = &sm__tp_tls,
    [SM__TP_FDS] = &sm__tp_fds,
#ifdef SM_HAVE_URING
    [SM__TP_URING] = &sm__tp_uring,
#else
    [SM__TP_URING] = &sm__tp_sock, /* never picked: see sm__stream_connected */
#endif
};
