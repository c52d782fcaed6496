/* The completion transport: a stream's socket on an io_uring loop.
 *
 * Receiving: one multishot receive per stream, into the loop's provided
 * buffers (loop_uring.c). Each completion is a receive batch of its own:
 * the stream decodes the buffer in place and copies only an unfinished
 * frame (sm__rx_input), then the buffer goes back to the kernel at once.
 * A stream that stops reading (paused by its queue, stopped by the user)
 * cancels its receive, so the kernel's socket buffer and TCP's window
 * push back on the peer; what completes before the cancel lands is kept
 * in a held block and handed over, before anything newer, once the stream
 * reads again.
 *
 * Sending: one gather write (IORING_OP_SENDMSG) in flight per stream. The
 * stream sees it as "blocked" until its completion, which advances the
 * queue and writes what came meanwhile: the replies of every stream in an
 * iteration are submitted together by the loop's next wait.
 *
 * Closing: the stream's requests are cancelled and `closed` runs only once
 * every one of them has completed, so no completion can touch a freed
 * stream or a freed queue.
 *
 * Only streams that never reconnect use it (sm_stream_new_take, servers'
 * connections): a reconnecting stream would need to tell a completion of
 * its old connection from its new one, and stays on readiness (the
 * socket transport over the ring's poll requests). */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "loop_uring.h"
#include "stream_internal.h"
#include "transport.h"

/* s->tp_state, written only here */
enum {
    U_RECV = 0x1,    /* the multishot receive is in flight */
    U_SEND = 0x2,    /* a gather write is in flight */
    U_CLOSING = 0x4, /* closed: `closed` waits for the requests */
    U_HELD = 0x8,    /* received while not reading: kept in the held list */
    U_CANCEL = 0x10, /* the receive's cancel is on its way */
    U_BLOCK = 0x20,  /* the receive is a plain one into the frame's block */
    U_LONG = 0x40,   /* long frames come: one receive at a time, not multishot */
    U_BATCH = 0x80,  /* a receive batch runs: the block may move, receive elsewhere */
};

/* A held block's first size (it doubles as it must). */
#define HELD_FIRST ((size_t)16 << 10)

/* Pieces one write takes; the queue's rest follows with the next. */
#define UTX_IOV 64

/* A write in flight: its msghdr and iovecs must stay put until it
 * completes (the kernel may read them late). Pooled per loop. */
typedef struct utx {
    struct utx *next_free;
    sm_stream *s;
    struct msghdr mh;
    struct iovec iov[UTX_IOV];
} utx;

/* Bytes, then maybe an end (EOF or an error), that arrived while the
 * stream was not reading. */
typedef struct held {
    struct held *next;
    sm_stream *s;
    int end;    /* 0: none; 1: EOF; < 0: -errno */
    bool ready; /* the stream reads again: hand it over */
    size_t len, cap;
    uint8_t *data;
} held;

typedef struct sm__tpu sm__tpu;
struct sm__tpu {
    sm__uring *u;
    utx *free_tx;
    held *held;
    sm_defer resume; /* hands held blocks over */
};

static void
set_state(sm_stream *s, unsigned on, unsigned off)
{
    s->tp_state = (uint8_t)((s->tp_state & ~off) | on);
}

static sm__tpu *
tpu_of(const sm_stream *s)
{
    return sm__sl(s)->tpu;
}

static uint64_t
ud_of(const void *p, unsigned tag)
{
    return (uint64_t)(uintptr_t)p | tag;
}

static void *
ptr_of(uint64_t ud)
{
    /* user_data is the only thing a completion carries: the address comes
     * back through it. */
    return (void *)(uintptr_t)(ud & ~SM__UT_MASK); // NOLINT(performance-no-int-to-ptr)
}

static void uring_io_cb(sm_io *w, unsigned events);
static void maybe_quiet(sm_stream *s);

/* ---- requests -------------------------------------------------------------- */

static int
arm_recv(sm_stream *s)
{
    struct io_uring_sqe *sqe = sm__uring_sqe(tpu_of(s)->u);
    if (!sqe) return -EBUSY;
    /* More than a buffer's worth of a frame still to come: its rest goes
     * straight into the frame's block, in one completion (MSG_WAITALL),
     * instead of being copied there from buffer after buffer. The block
     * stays put until that completion: nothing else receives meanwhile. */
    uint8_t *at = NULL;
    /* Inside a batch (a reply's flush, a read_start from on_message) the
     * batch still moves, grows or frees the block: not into it then. */
    size_t room =
        s->tp_state & U_BATCH ? 0 : sm__rx_block_room(s, sm__uring_buf_size(tpu_of(s)->u), &at);
    if (room) {
        io_uring_prep_recv(sqe, s->io.fd, at, room, MSG_WAITALL);
        io_uring_sqe_set_data64(sqe, ud_of(s, SM__UT_RECV));
        set_state(s, U_RECV | U_BLOCK, U_CANCEL);
        return 0;
    }
    if (s->tp_state & U_LONG)
        io_uring_prep_recv(sqe, s->io.fd, NULL, sm__uring_buf_size(tpu_of(s)->u), 0);
    else
        io_uring_prep_recv_multishot(sqe, s->io.fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, ud_of(s, SM__UT_RECV));
    set_state(s, U_RECV, U_CANCEL | U_BLOCK);
    return 0;
}

/* Stop the receive (the stream does not read): 0 or -EBUSY. */
static int
cancel_recv(sm_stream *s)
{
    if (!(s->tp_state & U_RECV) || (s->tp_state & U_CANCEL)) return 0;
    struct io_uring_sqe *sqe = sm__uring_sqe(tpu_of(s)->u);
    if (!sqe) return -EBUSY;
    io_uring_prep_cancel64(sqe, ud_of(s, SM__UT_RECV), 0);
    io_uring_sqe_set_data64(sqe, SM__UT_IGNORE);
    set_state(s, U_CANCEL, 0);
    return 0;
}

static bool
reading(const sm_stream *s)
{
    return sm__stream_live(s) && sm__stream_reading(s) && !(s->flags & SM__S_EOF);
}

/* ---- held input ---------------------------------------------------------- */

static held **
held_find(sm__tpu *t, const sm_stream *s)
{
    held **pp = &t->held;
    while (*pp && (*pp)->s != s)
        pp = &(*pp)->next;
    return pp;
}

static void
held_free(sm__tpu *t, sm_stream *s)
{
    held **pp = held_find(t, s), *h = *pp;
    if (!h) return;
    *pp = h->next;
    free(h->data);
    free(h);
    set_state(s, 0, U_HELD);
}

/* Keep what arrived while the stream does not read: bytes (n > 0) or an
 * end. 0 or -ENOMEM. */
static int
hold(sm_stream *s, const uint8_t *p, size_t n, int end)
{
    sm__tpu *t = tpu_of(s);
    held **pp = held_find(t, s), *h = *pp;
    if (!h) {
        if (!(h = calloc(1, sizeof *h))) return -ENOMEM;
        h->s = s;
        h->next = t->held;
        t->held = h;
        set_state(s, U_HELD, 0);
    }
    if (n) {
        if (h->cap - h->len < n) {
            size_t cap = h->cap ? h->cap * 2 : HELD_FIRST;
            while (cap - h->len < n)
                cap *= 2;
            uint8_t *d = realloc(h->data, cap);
            if (!d) return -ENOMEM;
            h->data = d;
            h->cap = cap;
        }
        memcpy(h->data + h->len, p, n);
        h->len += n;
    }
    if (end) h->end = end;
    return 0;
}

/* One receive batch over p[0..n), then an end if one came. p is in
 * provided buffer bid (>= 0; -1: a held block): replies to its frames may
 * be queued by reference, pinning it (sm__uring_buf_pin). */
static void
deliver(sm_stream *s, const uint8_t *p, size_t n, int end, bool drained, int bid)
{
    sm__rx rx;
    if (sm__rx_begin(s, &rx) < 0) return;
    set_state(s, U_BATCH, 0);
    sm__stream_loop *sl = sm__sl(s);
    if (bid >= 0 && n) {
        sl->pin_lo = (uintptr_t)p;
        sl->pin_hi = (uintptr_t)(p + n);
        sl->pin_bid = (unsigned)bid;
    }
    if (n)
        (void)sm__rx_input(s, &rx, p, n, drained && !end);
    else if (s->rd)
        (void)sm__rx_block(s, &rx, 0, drained && !end); /* bytes the block received */
    sl->pin_lo = sl->pin_hi = 0;
    if (end && sm__stream_live(s)) {
        if (end > 0)
            sm__rx_eof(s, &rx);
        else
            sm__rx_fail(s, end);
    }
    (void)sm__rx_end(s, &rx);
    set_state(s, 0, U_BATCH);
}

static void
fail(sm_stream *s, int rc)
{
    sm__stream_fail(s, rc, "io_uring: %s", sm_strerror(rc));
}

/* The stream reads again (or wants to): hand over what was held, then
 * receive on. Runs from the loop's deferred callbacks, never inside the
 * transition that asked for it. */
static void
resume_cb(sm_defer *d)
{
    sm__tpu *t = d->data;
    for (held **pp = &t->held; *pp;) {
        held *h = *pp;
        sm_stream *s = h->s;
        if (!h->ready || !reading(s) || (s->tp_state & U_RECV)) {
            h->ready = false;
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        set_state(s, 0, U_HELD);
        deliver(s, h->data, h->len, h->end, true, -1);
        free(h->data);
        free(h);
        if (reading(s) && !(s->tp_state & (U_RECV | U_HELD))) {
            int rc = arm_recv(s);
            if (rc < 0) fail(s, rc);
        }
        pp = &t->held; /* delivery may have changed the list */
    }
}

/* Receive wanted or not, as the stream says now. */
static void
sync_recv(sm_stream *s)
{
    int rc = 0;
    if (reading(s)) {
        if (s->tp_state & U_HELD) {
            held *h = *held_find(tpu_of(s), s);
            h->ready = true;
            sm_defer_start(&tpu_of(s)->resume);
        } else if (!(s->tp_state & U_RECV)) {
            rc = arm_recv(s);
        }
    } else {
        rc = cancel_recv(s);
    }
    if (rc < 0) fail(s, rc);
}

/* ---- completions ------------------------------------------------------------ */

static void
maybe_closed(sm_stream *s)
{
    if ((s->tp_state & (U_CLOSING | U_RECV | U_SEND)) != U_CLOSING) return;
    set_state(s, 0, U_CLOSING);
    sm__loop_hold(s->io.loop, -1);
    sm_io_close_cb closed = s->io.u.on_close;
    sm_io_close(&s->io, closed);
}

/* The plain receive into the frame's block completed. */
static void
on_block(sm_stream *s, int32_t res)
{
    set_state(s, 0, U_RECV | U_CANCEL | U_BLOCK);
    if (s->tp_state & U_CLOSING) {
        maybe_closed(s);
        return;
    }
    int end = res == 0 ? 1 : res < 0 && res != -ECANCELED && res != -EINTR ? res : 0;
    size_t n = res > 0 ? (size_t)res : 0;
    if (n) sm__rx_block_put(s, n);
    if (n || end) {
        if ((s->tp_state & U_HELD) || !reading(s)) {
            /* Received while not reading: the bytes wait in the block, an
             * empty held entry hands them over when it reads again. */
            int rc = hold(s, NULL, 0, end);
            if (rc < 0) fail(s, rc);
        } else {
            sm__rx rx;
            if (sm__rx_begin(s, &rx) < 0) return;
            set_state(s, U_BATCH, 0);
            if (n) (void)sm__rx_block(s, &rx, n, !end);
            if (end && sm__stream_live(s)) {
                if (end > 0)
                    sm__rx_eof(s, &rx);
                else
                    sm__rx_fail(s, end);
            }
            (void)sm__rx_end(s, &rx);
            set_state(s, 0, U_BATCH);
        }
    }
    if (s->flags & SM__S_DETACH) maybe_quiet(s);
    if (end || (s->flags & SM__S_CLOSING)) return;
    sync_recv(s);
}

static void
on_recv(sm_loop *loop, uint64_t ud, int32_t res, uint32_t flags)
{
    sm_stream *s = ptr_of(ud);
    sm__uring *u = sm__loop_uring(loop);
    if (s->tp_state & U_BLOCK) {
        on_block(s, res);
        return;
    }
    if (!(flags & IORING_CQE_F_MORE)) set_state(s, 0, U_RECV | U_CANCEL);
    const uint8_t *p = NULL;
    unsigned bid = 0;
    if (flags & IORING_CQE_F_BUFFER) {
        bid = flags >> IORING_CQE_BUFFER_SHIFT;
        p = sm__uring_buf(u, bid);
    }
    if (s->tp_state & U_CLOSING) {
        if (p) sm__uring_buf_put(u, bid, res > 0 ? (size_t)res : 0, flags);
        maybe_closed(s);
        return;
    }
    int end = res == 0 ? 1 : res < 0 && res != -ENOBUFS && res != -ECANCELED ? res : 0;
    size_t n = res > 0 ? (size_t)res : 0;
    if (n && !p) { /* bytes without a buffer: not what a buffer-select receive gives */
        n = 0;
        end = -EIO;
    }
    if (n || end) {
        if ((s->tp_state & U_HELD) || !reading(s)) {
            int rc = hold(s, p, n, end);
            if (rc < 0) fail(s, rc);
        } else {
            deliver(s, p, n, end, !(flags & IORING_CQE_F_SOCK_NONEMPTY), p ? (int)bid : -1);
        }
    }
    if (p) sm__uring_buf_put(u, bid, n, flags);
    if (s->flags & SM__S_DETACH) maybe_quiet(s);
    if (end || (s->flags & SM__S_CLOSING)) return;
    /* A long frame started: receives go one at a time (a multishot one
     * takes whatever the socket has into buffers, to be copied), so that
     * the frame's rest can go straight into its block. Back to multishot
     * once a receive of its own is short (small messages again; not the
     * rest a cancelled multishot one brings). */
    if (sm__rx_block_rest(s) > sm__uring_buf_size(tpu_of(s)->u)) {
        set_state(s, U_LONG, 0);
        if ((s->tp_state & U_RECV) && reading(s)) {
            int rc = cancel_recv(s);
            if (rc < 0) fail(s, rc);
            return;
        }
    } else if (n && n < sm__uring_buf_size(tpu_of(s)->u) && !(s->tp_state & U_CANCEL) &&
               !(flags & IORING_CQE_F_SOCK_NONEMPTY)) {
        set_state(s, 0, U_LONG);
    }
    /* Out of buffers, cancelled, or the stream stopped or resumed reading
     * meanwhile: the receive as the stream wants it now. */
    sync_recv(s);
}

static void
on_send(sm_loop *loop, uint64_t ud, int32_t res, uint32_t flags)
{
    (void)loop;
    (void)flags;
    utx *x = ptr_of(ud);
    sm_stream *s = x->s;
    sm__tpu *t = tpu_of(s);
    x->next_free = t->free_tx;
    t->free_tx = x;
    set_state(s, 0, U_SEND);
    if (s->tp_state & U_CLOSING) {
        if (res > 0) sm__tx_done(s, res); /* the report leaves out what went */
        maybe_closed(s);
        return;
    }
    sm__tx_done(s, res == -ECANCELED ? -EPIPE : res);
}

static sm__tpu *
tpu_get(sm_stream *s, sm__uring *u)
{
    sm__stream_loop *sl = sm__sl(s);
    if (sl->tpu) return sl->tpu;
    sm__tpu *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->u = u;
    sm_defer_init(s->io.loop, &t->resume, resume_cb);
    t->resume.data = t;
    sm__uring_on(u, SM__UT_RECV, on_recv);
    sm__uring_on(u, SM__UT_SEND, on_send);
    sl->tpu = t;
    return t;
}

void
sm__tpu_free(sm__tpu *t)
{
    if (!t) return;
    while (t->free_tx) {
        utx *x = t->free_tx;
        t->free_tx = x->next_free;
        free(x);
    }
    while (t->held) {
        held *h = t->held;
        t->held = h->next;
        free(h->data);
        free(h);
    }
    sm_defer_stop(&t->resume);
    free(t);
}

bool
sm__tpu_pin(sm__tpu *t, unsigned bid)
{
    return sm__uring_buf_pin(t->u, bid);
}

void
sm__tpu_unpin(sm__tpu *t, unsigned bid)
{
    sm__uring_buf_unpin(t->u, bid);
}

/* ---- the transport ops --------------------------------------------------- */

static void
uring_io_cb(sm_io *w, unsigned events)
{
    /* Never called: the watcher is in the loop's table (sm__stream_at finds
     * the stream) with no interest. */
    (void)w;
    (void)events;
}

static void
uring_init(sm_stream *s)
{
    sm_io_init(s->io.loop, &s->io, -1, uring_io_cb);
    s->tp_state = 0;
}

bool
sm__tpu_usable(sm_loop *loop, int fd)
{
    sm__uring *u = sm__loop_uring(loop);
    if (!u || sm__uring_bufs(u) < 0) return false;
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

static int
uring_open(sm_stream *s, int fd)
{
    sm__uring *u = sm__loop_uring(s->io.loop);
    if (!u || !tpu_get(s, u)) return -ENOMEM;
    sm_io_init(s->io.loop, &s->io, fd, uring_io_cb);
    s->tp_state = 0;
    int rc = sm_io_start(&s->io, 0);
    if (rc == 0 && (rc = arm_recv(s)) < 0) sm_io_stop(&s->io);
    if (rc < 0) uring_init(s);
    return rc;
}

static int
uring_want(sm_stream *s, unsigned events)
{
    /* SM_WRITE needs nothing: a write in flight completes by itself. */
    (void)events;
    sync_recv(s);
    return 0;
}

static int
uring_resume(sm_stream *s)
{
    (void)s; /* want(SM_READ) restarted the receive */
    return 0;
}

static ssize_t
uring_send(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    if (s->tp_state & U_SEND) return -EINPROGRESS; /* the completion writes the rest */
    sm__tpu *t = tpu_of(s);
    struct io_uring_sqe *sqe = sm__uring_sqe(t->u);
    if (!sqe) return -EBUSY;
    utx *x = t->free_tx;
    if (x) {
        t->free_tx = x->next_free;
    } else if (!(x = malloc(sizeof *x))) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, SM__UT_IGNORE);
        return -ENOMEM;
    }
    int cnt = iovcnt < UTX_IOV ? iovcnt : UTX_IOV;
    memcpy(x->iov, iov, (size_t)cnt * sizeof *iov);
    memset(&x->mh, 0, sizeof x->mh);
    x->mh.msg_iov = x->iov;
    x->mh.msg_iovlen = (size_t)cnt;
    x->s = s;
    io_uring_prep_sendmsg(sqe, s->io.fd, &x->mh, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_of(x, SM__UT_SEND));
    sm__uring_wrote(t->u);
    set_state(s, U_SEND, 0);
    return -EINPROGRESS;
}

static int
uring_shutdown(sm_stream *s)
{
    if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) return -errno;
    return 0;
}

/* A hand-off waits for the last receive completion (the cancel's): then
 * what was held goes to the detach, the socket leaves the loop. */
static void
maybe_quiet(sm_stream *s)
{
    if ((s->tp_state & (U_RECV | U_SEND | U_CLOSING)) || !sm__detach_quiescing(s)) return;
    held **pp = held_find(tpu_of(s), s);
    int err = *pp && (*pp)->len ? sm__detach_keep(s, (*pp)->data, (*pp)->len) : 0;
    if (*pp && (*pp)->end < 0 && !err) err = (*pp)->end; /* the connection broke */
    held_free(tpu_of(s), s);
    int fd = s->io.fd;
    sm_io_stop(&s->io);
    uring_init(s);
    sm__detach_quiet(s, fd, err);
}

static void
uring_quiesce(sm_stream *s)
{
    int rc = cancel_recv(s); /* reading stopped: usually on its way already */
    if (rc < 0)
        sm__detach_quiet(s, -1, rc);
    else
        maybe_quiet(s);
}

static void
uring_close(sm_stream *s, sm_io_close_cb closed)
{
    held_free(tpu_of(s), s);
    if (!(s->tp_state & (U_RECV | U_SEND))) {
        sm_io_close(&s->io, closed);
        return;
    }
    /* Out of the loop's table now (nothing finds a closing stream), the fd
     * open until the last request is done with it. */
    sm_io_stop(&s->io);
    s->io.u.on_close = closed;
    set_state(s, U_CLOSING, 0);
    sm__loop_hold(s->io.loop, +1);
    struct io_uring_sqe *sqe = sm__uring_sqe(tpu_of(s)->u);
    if (sqe) {
        io_uring_prep_cancel_fd(sqe, s->io.fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, SM__UT_IGNORE);
    } else {
        /* No room to cancel: a shutdown ends the receive and the write
         * just as surely. */
        (void)shutdown(s->io.fd, SHUT_RDWR);
    }
}

bool
sm__tpu_is_stream_io(const sm_io *w)
{
    return w->u.cb == uring_io_cb;
}

const sm__transport_ops sm__tp_uring = {
    .name = "io_uring",
    .async_send = true,
    .init = uring_init,
    .open = uring_open,
    .want = uring_want,
    .resume = uring_resume,
    .send = uring_send,
    .shutdown = uring_shutdown,
    .drop = NULL, /* never reconnects: see the top of this file */
    .close = uring_close,
    .quiesce = uring_quiesce,
};
