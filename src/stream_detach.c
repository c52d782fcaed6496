/* A raw hand-off (sm_stream_detach): reading stops at the message
 * boundary, the queue goes out, the transport stops every request and
 * lets go of the socket, and the socket with the bytes read beyond the
 * boundary goes to the caller, right before on_close(SM_ERR_DETACHED).
 *
 * The steps, each waiting for the one before:
 *   begin    (sm__stream_begin_detach) the receiving spec becomes eof
 *            framing and reading stops: whatever follows the boundary,
 *            in this batch or held by the transport, is no message; it
 *            stays in s->rd or in the transport;
 *   flush    the queue is written as ever (backpressure, the write
 *            timeout); stream_write.c kicks us when it is empty;
 *   quiesce  the transport's op (transport.h): nothing in flight, held
 *            bytes handed over (sm__detach_keep), socket out of the loop;
 *   quiet    s->rd's bytes then the held ones become the rest, and the
 *            stream closes with SM_ERR_DETACHED; stream_closed reports
 *            (sm__detach_report) before on_close.
 * Any failure on the way (a reset, a timeout, sm_stream_close) closes the
 * stream as usual; the report then gives the reason and no socket, closed
 * by whoever held it. A stream keeps nothing of this in its struct: a flag
 * bit and this record behind s->sx. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "stream_internal.h"
#include "transport.h"

typedef struct sm__detach {
    sm_stream *s;
    sm_stream_detach_cb cb;
    void *arg;
    sm_defer step; /* the next step, from the loop: never inside the call */
    bool quiescing;
    int fd;        /* the socket once the transport let go of it, else -1 */
    uint8_t *kept; /* bytes the transport held, then the whole rest */
    size_t len, cap;
} sm__detach;

static sm__detach *
det_of(const sm_stream *s)
{
    return (s->flags & SM__S_DETACH) && s->sx ? s->sx->det : NULL;
}

static void
step_cb(sm_defer *d)
{
    sm__detach *det = d->data;
    sm_stream *s = det->s;
    if (det->quiescing || !sm__stream_live(s)) return;
    /* Queued bytes, or a write in flight (the queue stays until it is
     * done): the queue is on its way out already, and its end kicks
     * again (stream_write.c). */
    if (s->wq) return;
    det->quiescing = true;
    sm__tp_of(s)->quiesce(s);
}

void
sm__detach_kick(sm_stream *s)
{
    sm__detach *det = det_of(s);
    if (det && !det->quiescing) sm_defer_start(&det->step);
}

bool
sm__detach_quiescing(const sm_stream *s)
{
    const sm__detach *det = det_of(s);
    return det && det->quiescing && det->fd < 0;
}

int
sm__detach_keep(sm_stream *s, const uint8_t *p, size_t n)
{
    sm__detach *det = det_of(s);
    if (det->cap - det->len < n) {
        size_t cap = det->len + n;
        uint8_t *k = realloc(det->kept, cap);
        if (!k) return -ENOMEM;
        det->kept = k;
        det->cap = cap;
    }
    memcpy(det->kept + det->len, p, n);
    det->len += n;
    return 0;
}

/* The rest, in order: what the stream read beyond the boundary (s->rd),
 * then what the transport held. 0 or -ENOMEM. */
static int
gather_rest(sm_stream *s, sm__detach *det)
{
    size_t first = s->rd ? s->rd->len : 0;
    if (!first) return 0;
    uint8_t *all = malloc(first + det->len);
    if (!all) return -ENOMEM;
    memcpy(all, s->rd->data, first);
    if (det->len) memcpy(all + first, det->kept, det->len);
    free(det->kept);
    det->kept = all;
    det->len = det->cap = first + det->len;
    free(s->rd); /* nothing reads it any more */
    s->rd = NULL;
    return 0;
}

void
sm__detach_quiet(sm_stream *s, int fd, int err)
{
    sm__detach *det = det_of(s);
    det->fd = fd;
    if (err == 0) err = gather_rest(s, det);
    if (err < 0) {
        sm__stream_fail(s, err, "detach: %s", sm_strerror(err));
        return;
    }
    sm__stream_set_detail(s, NULL);
    sm__stream_close_final(s, SM_ERR_DETACHED);
}

void
sm__detach_report(sm_stream *s)
{
    sm__detach *det = s->sx->det;
    sm_defer_stop(&det->step);
    int status = s->reason == SM_ERR_DETACHED ? 0 : s->reason;
    int fd = det->fd;
    uint8_t *rest = NULL;
    size_t len = 0;
    if (status == 0) {
        rest = det->len ? det->kept : NULL;
        len = det->len;
        if (!rest) free(det->kept);
        det->kept = NULL;
    } else if (fd >= 0) {
        close(fd); /* let go of before the failure: ours to close */
        fd = -1;
    }
    det->fd = -1;
    sm_stream_detach_cb cb = det->cb;
    void *arg = det->arg;
    cb(s, fd, rest, len, status, arg);
}

void
sm__detach_free(sm_stream *s)
{
    sm__detach *det = s->sx->det;
    if (!det) return;
    sm_defer_stop(&det->step);
    if (det->fd >= 0) close(det->fd); /* never reported: nobody took it */
    free(det->kept);
    free(det);
    s->sx->det = NULL;
}

int
sm_stream_detach(sm_stream *s, sm_stream_detach_cb cb, void *arg)
{
    if (!s || !cb) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (s->flags & SM__S_DETACH) return -EALREADY;
    if (!(s->flags & SM__S_CONNECTED)) return -ENOTCONN;
    if (!sm__tp_of(s)->quiesce) return -EINVAL;   /* TLS: the session cannot go along */
    if (s->flags & SM__S_SHUT_REQ) return -EPIPE; /* our FIN is due or gone */
    sm__detach *det = calloc(1, sizeof *det);
    if (!det) return -ENOMEM;
    int rc = sm__stream_begin_detach(s);
    if (rc < 0) {
        free(det);
        return rc;
    }
    det->s = s;
    det->cb = cb;
    det->arg = arg;
    det->fd = -1;
    sm_defer_init(s->io.loop, &det->step, step_cb);
    det->step.data = det;
    s->sx->det = det;
    sm_defer_start(&det->step);
    return 0;
}
