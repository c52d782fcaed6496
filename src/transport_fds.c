/* The fd-passing transport: a Unix socket on a readiness loop (epoll,
 * poll, or io_uring's poll requests), read with recvmsg(2) and a control
 * buffer sized by the stream's max_fds, written by stream_fds.c with the
 * fds of each message in the sendmsg that starts at its first byte. Picked
 * at connect for a Unix socket when opts.max_fds is set (stream.c), never
 * the completion transport: its provided buffers carry no control data.
 * Level-triggered: a Unix read stops short at every sendmsg with fds. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/error.h>

#include "internal.h"
#include "stream_fds.h"
#include "stream_internal.h"
#include "transport.h"

#define WHY_MAX 256

static void fds_io_cb(sm_io *w, unsigned events);

/* One readiness event: a receive batch, up to the stream's read budget. */
static void
fds_read(sm_stream *s)
{
    sm__rx rx;
    if (sm__rx_begin(s, &rx) < 0) return;
    for (;;) {
        struct iovec iov[2];
        int cnt = sm__rx_buffers(s, &rx, iov);
        if (cnt <= 0) break;
        /* One piece: a second one would only join bytes the kernel may cut
         * off at the next fds anyway. rx.have bytes before it are the
         * start of the one unfinished message. */
        char why[WHY_MAX] = "";
        ssize_t n = sm__fds_recv(&s->sx->fds->rq, s->io.fd, iov[0].iov_base, iov[0].iov_len, 0,
                                 rx.have, why, sizeof why);
        if (n == -ETIMEDOUT || n == -EAGAIN) break; /* nothing waiting */
        if (n == SM_ERR_FDS_TRUNCATED) {
            sm__stream_fail(s, (int)n, "%s", why);
            break;
        }
        if (n < 0) {
            sm__rx_fail(s, (int)n);
            break;
        }
        if (n == 0) {
            sm__rx_eof(s, &rx);
            break;
        }
        if (!sm__rx_done(s, &rx, (size_t)n, (size_t)n < iov[0].iov_len)) break;
    }
    (void)sm__rx_end(s, &rx);
}

static void
fds_io_cb(sm_io *w, unsigned events)
{
    sm_stream *s = (sm_stream *)w;
    if (events & SM_READ)
        fds_read(s);
    else
        sm__tx_ready(s);
}

static void
fds_init(sm_stream *s)
{
    sm_io_init(s->io.loop, &s->io, -1, fds_io_cb);
}

static int
fds_open(sm_stream *s, int fd)
{
    int rc = sm__sfds_open(s, fd);
    if (rc < 0) return rc;
    sm_io_init(s->io.loop, &s->io, fd, fds_io_cb);
    rc = sm_io_start(&s->io, SM_READ);
    if (rc < 0) {
        sm__sfds_free(s);
        fds_init(s);
    }
    return rc;
}

static int
fds_want(sm_stream *s, unsigned events)
{
    if (events == sm_io_get_events(&s->io)) return 0;
    return sm_io_set_events(&s->io, events);
}

static int
fds_resume(sm_stream *s)
{
    return sm__io_rearm(&s->io);
}

static ssize_t
fds_send(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    return sm__sfds_send(s, iov, iovcnt);
}

static int
fds_shutdown(sm_stream *s)
{
    if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) return -errno;
    return 0;
}

/* A lost connection takes its fds along: those received and not yet
 * claimed, and the copies of unsent messages' (a message sent again on the
 * next connection goes without them). */
static void
fds_drop(sm_stream *s)
{
    int fd = s->io.fd;
    sm_io_stop(&s->io);
    close(fd);
    sm__sfds_free(s);
    fds_init(s);
}

/* fds received and not claimed stay with the stream (closed at its free):
 * the raw bytes handed off carry none. */
static void
fds_quiesce(sm_stream *s)
{
    int fd = s->io.fd;
    sm_io_stop(&s->io);
    fds_init(s);
    sm__detach_quiet(s, fd, 0);
}

static void
fds_close(sm_stream *s, sm_io_close_cb closed)
{
    sm_io_close(&s->io, closed);
}

bool
sm__tp_fds_is_io(const sm_io *w)
{
    return w->u.cb == fds_io_cb;
}

const sm__transport_ops sm__tp_fds = {
    .name = "socket+fds",
    .init = fds_init,
    .open = fds_open,
    .want = fds_want,
    .resume = fds_resume,
    .send = fds_send,
    .shutdown = fds_shutdown,
    .drop = fds_drop,
    .close = fds_close,
    .quiesce = fds_quiesce,
};
