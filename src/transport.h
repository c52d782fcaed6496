/* The I/O seam under a stream: what a stream needs from "the thing under
 * it", and what it offers that thing in return. Never installed.
 *
 * Downward (transport ops, one const table per kind of transport, picked
 * by the stream's one-byte `tp` index so a stream carries no pointer for
 * it): take a connected socket, say which events the stream waits for,
 * submit a gather write, half-close, close. Upward (stream_read.c): a
 * receive batch, fed in one of two shapes:
 *
 *   readiness (epoll, poll; a byte filter such as TLS on top of one):
 *       sm__rx_begin
 *       repeat: sm__rx_buffers -> read into them -> sm__rx_done
 *       sm__rx_end
 *   completion with buffers of the transport's own (io_uring provided
 *   buffer rings):
 *       sm__rx_begin
 *       repeat: sm__rx_input(bytes the kernel put in its buffer)
 *       sm__rx_end
 *
 * Either way the stream decodes every frame in place (from the loop's
 * shared buffer, or from the transport's buffer), copies only an
 * unfinished frame (for framings that cannot tell where a frame ends,
 * sm__rx_input copies the whole buffer that continues one), delivers, and
 * writes the batch's replies with one gather write when the batch ends
 * (in the call that returns false, or in sm__rx_end): a transport may
 * reuse a buffer it handed over once that call returns. The timing wheel
 * is armed from that flush, at most once per batch for each reason (the
 * writer unblocked, a heartbeat due). A batch reads top-down: receive,
 * decode, deliver, flush.
 *
 * Sending: the stream calls `send` with the head of its queue (one gather
 * write per batch); a readiness transport returns how many bytes it took.
 * A completion transport (`async_send`) returns -EINPROGRESS instead: it
 * took the iovecs for a write whose result sm__tx_done reports later.
 * Until then the stream counts as blocked, neither frees nor moves the
 * queued bytes, and queues no frame by reference into a read buffer (the
 * buffer goes back to the kernel before the write is done). See
 * docs/design.md, "The I/O seam". */
#ifndef SM_TRANSPORT_H
#define SM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sockmsg/frame.h"
#include "sockmsg/loop.h"
#include "sockmsg/stream.h"
#include "stream_internal.h"

typedef struct sm__transport_ops {
    const char *name;
    /* send completes later (sm__tx_done), see above */
    bool async_send;
    /* No socket (a new stream; after a drop). Cannot fail. */
    void (*init)(sm_stream *s);
    /* Take the connected socket fd (non-blocking), reading on. 0, or
     * -errno with fd left open and the stream as after init. */
    int (*open)(sm_stream *s, int fd);
    /* Wait for these events: SM_READ while the stream reads, SM_WRITE
     * while its writer is blocked. 0 or -errno. */
    int (*want)(sm_stream *s, unsigned events);
    /* Reading was off and is on again, and bytes may be waiting that no
     * new event will announce (an edge-triggered socket). 0 or -errno. */
    int (*resume)(sm_stream *s);
    /* Write from iov: the bytes taken (>= 0; fewer than offered means the
     * kernel is full for now), -EAGAIN (nothing taken: SM_WRITE will
     * come), -EINPROGRESS (async_send: taken, or a write is still in
     * flight; sm__tx_done follows), or -errno (the connection is broken).
     * Never SIGPIPE. */
    ssize_t (*send)(sm_stream *s, const struct iovec *iov, int iovcnt);
    /* FIN after everything sent: 0 or -errno. */
    int (*shutdown)(sm_stream *s);
    /* Close the socket now; the stream lives on (reconnecting). NULL for a
     * transport that carries only streams that never reconnect. */
    void (*drop)(sm_stream *s);
    /* Stop I/O now and close; `closed` runs from the loop later, once
     * nothing of the transport's can touch the stream any more. */
    void (*close)(sm_stream *s, sm_io_close_cb closed);
    /* A raw hand-off (stream_detach.c), with reading stopped and the queue
     * written: stop every request, hand the bytes it holds to
     * sm__detach_keep, take the socket out of the loop without closing it
     * and end as after init; then, once nothing of it is in flight (in
     * this call or from a completion later), sm__detach_quiet. NULL: the
     * transport cannot hand its socket over (TLS: the session's state
     * would be lost). */
    void (*quiesce)(sm_stream *s);
} sm__transport_ops;

enum { SM__TP_SOCK = 0, SM__TP_TLS, SM__TP_URING, SM__TP_FDS, SM__TP_KINDS };

extern const sm__transport_ops sm__tp_sock; /* transport_sock.c */
extern const sm__transport_ops sm__tp_tls;  /* transport_tls.c */
extern const sm__transport_ops sm__tp_fds;  /* transport_fds.c: SCM_RIGHTS */
bool sm__tp_fds_is_io(const sm_io *w);
bool sm__tp_tls_is_io(const sm_io *w);
#ifdef SM_HAVE_URING
extern const sm__transport_ops sm__tp_uring; /* transport_uring.c */
/* fd can go on the completion transport of loop (an io_uring loop with
 * provided buffers, a stream socket). */
bool sm__tpu_usable(sm_loop *loop, int fd);
bool sm__tpu_is_stream_io(const sm_io *w);
/* The transport's per-loop state (sm__stream_loop.tpu), at loop free. */
void sm__tpu_free(struct sm__tpu *t);
/* A reply queued by reference pins provided buffer bid (false: the pins
 * are at their bound, copy it); the write queue is done with it (unpin). */
bool sm__tpu_pin(struct sm__tpu *t, unsigned bid);
void sm__tpu_unpin(struct sm__tpu *t, unsigned bid);
#endif
extern const sm__transport_ops *const sm__transports[SM__TP_KINDS];

static inline const sm__transport_ops *
sm__tp_of(const sm_stream *s)
{
    return sm__transports[s->tp];
}

/* Put s on transport kind (SM__TP_*) and let it set up its watcher: the one
 * place s->tp is written (a stream's allocation, a dial or accept for
 * tls://, the pick at connect). */
static inline void
sm__tp_set(sm_stream *s, uint8_t kind)
{
    s->tp = kind;
    sm__transports[kind]->init(s);
}

/* The io callback of every transport built on sm_io watchers: a watcher
 * with it is a connected stream's (sm__stream_at finds streams so). */
bool sm__tp_is_stream_io(const sm_io *w);

/* ---- the receive side a transport feeds (stream_read.c) ---------------- */

/* One receive batch, on the transport's stack. */
typedef struct sm__rx {
    sm_frame_decoder dec;
    size_t budget;     /* bytes this batch may still read */
    uint8_t *base;     /* sm__rx_buffers: iov[0] starts at base + have */
    size_t have, room; /* bytes already at base, room behind them */
    size_t room2;      /* a second piece in the shared buffer, or 0 */
    bool flushed;      /* the replies went out already */
} sm__rx;

/* Start a batch. 0, or -1 when the stream cannot read (it failed). */
int sm__rx_begin(sm_stream *s, sm__rx *rx);
/* Where the next bytes go: 1 or 2 iovecs; 0 when the stream reads no more
 * in this batch (paused, stopped); -1 when it failed. */
int sm__rx_buffers(sm_stream *s, sm__rx *rx, struct iovec iov[2]);
/* n > 0 bytes arrived in those buffers; `drained` says the transport
 * knows nothing more is waiting (a short read). Decodes and delivers.
 * true: read on; false: the batch is over (drained, budget spent, paused,
 * replies queued by reference, closed or lost). */
bool sm__rx_done(sm_stream *s, sm__rx *rx, size_t n, bool drained);
/* n > 0 bytes in a buffer of the transport's own, valid for this call
 * only (completion I/O). Return as sm__rx_done; and when the stream is
 * not reading (paused by its queue, stopped by the user) false with
 * nothing taken: the transport keeps the bytes, stops receiving, and
 * hands them over once the stream wants reading again (want(SM_READ)). */
bool sm__rx_input(sm_stream *s, sm__rx *rx, const uint8_t *p, size_t n, bool drained);
/* A completion transport may receive the rest of a long unfinished frame
 * straight into the stream's block instead of its own buffers (one copy
 * less per byte): sm__rx_block_rest says how much of it is still to come
 * (0: no frame of known size is unfinished); sm__rx_block_room grows the
 * block toward the frame's size as rd_grow does and gives where the next
 * bytes go and how many fit (0 when the rest is min bytes or less, or on
 * no memory: the transport's buffers then). The block stays put until
 * sm__rx_block_put says n bytes landed there (the stream touches it only in
 * a receive batch); sm__rx_block (inside a batch, n may be 0) then decodes
 * and delivers what the block holds, and returns as sm__rx_done. */
size_t sm__rx_block_rest(const sm_stream *s);
size_t sm__rx_block_room(sm_stream *s, size_t min, uint8_t **at);
void sm__rx_block_put(sm_stream *s, size_t n);
bool sm__rx_block(sm_stream *s, sm__rx *rx, size_t n, bool drained);
/* The peer shut down its side (a read returned 0). */
void sm__rx_eof(sm_stream *s, sm__rx *rx);
/* Receiving failed (-errno): the connection is lost. */
void sm__rx_fail(sm_stream *s, int err);
/* End the batch: the replies go out unless they already did.
 * true when the stream still wants to read (not paused, stopped, at EOF,
 * closed or lost). */
bool sm__rx_end(sm_stream *s, sm__rx *rx);

/* ---- the send side (stream_write.c) ------------------------------------ */

/* The transport can take bytes again (SM_WRITE came): write the queue. */
void sm__tx_ready(sm_stream *s);
/* An async_send write finished: n bytes went (>= 0), or -errno (the
 * connection is broken). Advances the queue and writes on; on a closing
 * stream it only drops what went, so the close reports the rest. */
void sm__tx_done(sm_stream *s, ssize_t n);

#endif
