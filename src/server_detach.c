/* sm_peer_detach: a server connection handed off raw. The loop model's
 * peer is a stream: sm_stream_detach does the work, and the peer ends
 * through its stream's on_close (reason SM_ERR_DETACHED), so the server's
 * connection count, its limits and a drain see it go like any close. The
 * thread model's connection threads do not hand off yet (the peer op is
 * NULL there: -EOPNOTSUPP). */
#include <errno.h>
#include <stdlib.h>

#include "server_internal.h"
#include "stream_owner.h"

/* The caller's callback, carried through the stream's detach. */
typedef struct pdetach {
    sm_peer_detach_cb cb;
    void *arg;
} pdetach;

static void
lpeer_detached(sm_stream *s, int fd, uint8_t *rest, size_t rest_len, int status, void *arg)
{
    pdetach d = *(pdetach *)arg;
    free(arg);
    d.cb(sm__stream_extra(s), fd, rest, rest_len, status, d.arg);
}

int
sm__lpeer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg)
{
    if (sm__peer_tag(p) & SM__P_CLOSING) return SM_ERR_CLOSED;
    pdetach *d = malloc(sizeof *d);
    if (!d) return -ENOMEM;
    *d = (pdetach){.cb = cb, .arg = arg};
    int rc = sm_stream_detach(sm__stream_of_extra(p), lpeer_detached, d);
    if (rc < 0) free(d);
    return rc;
}

int
sm_peer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg)
{
    if (!p || !cb) return -EINVAL;
    const sm__peer_ops *ops = sm__peer_ops_of(p);
    return ops->detach ? ops->detach(p, cb, arg) : -EOPNOTSUPP;
}
