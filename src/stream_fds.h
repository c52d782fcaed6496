/* The hooks between the stream module and its fd passing (stream_fds.c),
 * which only streams on the fd transport (transport_fds.c) have. */
#ifndef SM_STREAM_FDS_H
#define SM_STREAM_FDS_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fd_io.h"
#include "fd_queue.h"
#include "stream_internal.h"

/* A message's fds waiting to be sent: copies the queue owns (dup'ed at
 * sm_stream_send_fds), going with the sendmsg that starts at byte `at` of
 * the stream and holds at most len bytes (the message's frame). */
typedef struct sm__fds_out {
    struct sm__fds_out *next;
    uint64_t at, len; /* len UINT64_MAX: still being queued, to the end of the write */
    int n;
    int fds[];
} sm__fds_out;

/* One connection's fd passing state, in s->sx->fds. */
typedef struct sm__sfds {
    sm__fdq rq;       /* received fds, by stream offset */
    uint64_t tx;      /* bytes written so far: the offset of the next one */
    sm__fds_out *out; /* ascending by at */
    sm__fds_out *out_tail;
} sm__sfds;

/* transport_fds.c's open: the state, for a connection on fd (SO_PASSCRED
 * set with opts.pass_cred). 0, -ENOMEM or setsockopt's -errno. */
int sm__sfds_open(sm_stream *s, int fd);
/* Close every fd held (received, or waiting to be sent) and free. */
void sm__sfds_free(sm_stream *s);
/* Write iov the way the fds need: each sendmsg carrying fds starts at its
 * message's first byte and holds nothing past its frame. As the transport
 * send op. */
ssize_t sm__sfds_send(sm_stream *s, const struct iovec *iov, int iovcnt);

int sm__sfds_deliver_slow(sm_stream *s, const sm_frame_msg *m, uint64_t from, uint64_t to);

/* stream_read.c, per message of bytes [from, to): 0 when the stream has no
 * fd passing (the caller delivers); else the message was delivered with
 * its fds, which are closed after on_message unless taken (1), or the
 * stream failed because they were lost (-1). */
static inline int
sm__sfds_deliver(sm_stream *s, const sm_frame_msg *m, uint64_t from, uint64_t to)
{
    if (__builtin_expect(!s->sx || !s->sx->fds, 1)) return 0;
    return sm__sfds_deliver_slow(s, m, from, to);
}

#endif
