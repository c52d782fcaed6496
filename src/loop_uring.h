/* The io_uring backend's ring, as the completion transports under streams
 * and listeners see it (loop_uring.c). Never installed.
 *
 * A loop on io_uring is a readiness loop for plain sm_io watchers (one-shot
 * poll requests, re-armed at each wait while wanted: level triggered) and,
 * underneath, a completion ring: a transport prepares requests with
 * sm__uring_sqe, tags their user_data, and gets each completion through the
 * handler registered for its tag, after the iteration's io callbacks. Every
 * request prepared during an iteration is submitted by the next wait, in
 * one io_uring_enter with the wait itself.
 *
 * user_data: the low 4 bits are the tag; the rest is the tag's own (a
 * stream's address, 16-byte aligned as malloc gives it, for a transport's
 * requests). */
#ifndef SM_LOOP_URING_H
#define SM_LOOP_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop_internal.h"

enum {
    SM__UT_POLL = 1,   /* a watcher's poll request (loop_uring.c) */
    SM__UT_IGNORE = 2, /* removals, cancellations: no one waits for them */
    SM__UT_RECV = 3,   /* a stream's multishot receive (transport_uring.c) */
    SM__UT_SEND = 4,   /* a stream's gather write */
    SM__UT_ACCEPT = 5, /* a listener's multishot accept (loop_uring.c) */
    SM__UT_KINDS = 16,
};
#define SM__UT_MASK ((uint64_t)0xf)

/* The loop's provided receive buffers, shared by all its streams (an idle
 * connection holds none): 4 MiB in all, as SM__UBUF_COUNT_INC buffers of
 * 64 KiB where the kernel consumes them incrementally (small receives
 * share a buffer, a long frame needs fewer completions and copies), else
 * SM__UBUF_COUNT_WHOLE of 16 KiB (each receive takes a whole buffer: more
 * of them, so busy connections do not run the ring dry). See
 * sm__uring_buf_size and sm__uring_buf_count. */
#define SM__UBUF_BYTES       ((size_t)4 << 20)
#define SM__UBUF_COUNT_INC   64u
#define SM__UBUF_COUNT_WHOLE 256u
#define SM__UBUF_MAX         SM__UBUF_COUNT_WHOLE

typedef struct sm__uring sm__uring;
typedef void (*sm__uring_cb)(sm_loop *loop, uint64_t user_data, int32_t res, uint32_t flags);

/* A new ring for a loop: 0, or -errno with `why` saying what is missing
 * ("io_uring_setup: Operation not permitted", "kernel too old: ...").
 * The poller ops below take it as their state. */
int sm__uring_create(void **state, char *why, size_t why_len);

/* The ring of a loop on io_uring, or NULL (epoll, poll). */
sm__uring *sm__loop_uring(const sm_loop *loop);

/* A submission queue entry to fill, submitted by the loop's next wait;
 * NULL when the queue is full and cannot be flushed now. */
struct io_uring_sqe *sm__uring_sqe(sm__uring *u);

/* A write was prepared: the next wait expects its completion at once and
 * waits for one more (see ur_wait). */
void sm__uring_wrote(sm__uring *u);

/* Completions tagged `tag` go to cb (one handler per tag and ring). */
void sm__uring_on(sm__uring *u, unsigned tag, sm__uring_cb cb);

/* The provided-buffer group for receives, set up on first use: its id
 * (>= 0), or -errno when the kernel cannot give one. */
int sm__uring_bufs(sm__uring *u);
/* Where a completion's bytes are in buffer bid (its IORING_CQE_F_BUFFER
 * id): the buffer's start, or behind what earlier completions took of it
 * when buffers are consumed incrementally. */
uint8_t *sm__uring_buf(sm__uring *u, unsigned bid);
/* The completion's n bytes of buffer bid are done with: the buffer goes
 * back to the kernel, unless (flags has IORING_CQE_F_BUF_MORE) the kernel
 * goes on filling it. */
void sm__uring_buf_put(sm__uring *u, unsigned bid, size_t n, uint32_t flags);

/* Pins: a reply queued by reference to a buffer's bytes keeps the buffer
 * out of the ring until its write completed. sm__uring_buf_pin takes one
 * (false: half the buffers are pinned already, the caller copies
 * instead, so peers that do not read never starve the others' receives);
 * sm__uring_buf_unpin drops it, and the last one gives the buffer back if
 * the kernel was done with it meanwhile (sm__uring_buf_put). */
bool sm__uring_buf_pin(sm__uring *u, unsigned bid);
void sm__uring_buf_unpin(sm__uring *u, unsigned bid);
/* Buffers with pins now (tests). */
unsigned sm__uring_bufs_pinned(const sm__uring *u);
/* The size and number of the provided buffers, once sm__uring_bufs set
 * them up; at most half of them are ever pinned. */
size_t sm__uring_buf_size(const sm__uring *u);
unsigned sm__uring_buf_count(const sm__uring *u);

/* Newer than liburing 2.3's header (Linux 6.12's uapi values). */
#define SM__PBUF_RING_INC  2u
#define SM__CQE_F_BUF_MORE (1u << 4)

#endif
