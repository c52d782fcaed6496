/* sm_peer_detach: a server connection handed off raw. The loop model's
 * peer is a stream: sm_stream_detach does the work, and the peer ends
 * through its stream's on_close (reason SM_ERR_DETACHED), so the server's
 * connection count, its limits and a drain see it go like any close. The
 * thread model's peer is its connection thread's sm_conn: sends block
 * until written, so once the on_message that asked returns, everything
 * queued is out; the thread leaves the server's registry (no broadcast or
 * sm_peer_close from another thread touches the socket any more), takes
 * the socket and the bytes read ahead with sm_conn_detach, calls the
 * callback and ends the peer (on_close, SM_ERR_DETACHED). */
#include <errno.h>
#include <pthread.h>
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

/* ---- the thread model -------------------------------------------------- */

int
sm__tpeer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg)
{
    sm__tpeer *t = (sm__tpeer *)p;
    /* The conn's receiving side is the connection thread's own. */
    pthread_mutex_lock(&p->srv->reg_lock);
    bool mine = t->has_self && pthread_equal(pthread_self(), t->self);
    pthread_mutex_unlock(&p->srv->reg_lock);
    if (!mine) return -EINVAL;
    if (t->tls) return -EINVAL; /* the session cannot go along */
    if (t->detach_cb) return -EALREADY;
    pthread_mutex_lock(&t->lock);
    int rc = !t->ready || t->gone || atomic_load(&t->closing) ? SM_ERR_CLOSED
             : t->shut                                        ? -EPIPE
                                                              : 0;
    /* Later sends fail with -EPIPE, as after a FIN: the socket is no
     * longer the server's to write. */
    if (rc == 0) t->shut = true;
    pthread_mutex_unlock(&t->lock);
    if (rc < 0) return rc;
    t->detach_cb = cb;
    t->detach_arg = arg;
    return 0;
}

int
sm__tpeer_detach_end(sm__tpeer *t, int reason)
{
    sm_peer *p = &t->p;
    int fd = -1;
    uint8_t *rest = NULL;
    size_t rest_len = 0;
    if (reason == SM_ERR_DETACHED) {
        /* Out of the registry first: sm_peer_close on another thread shuts
         * a registered peer's socket down, which is no longer ours. */
        sm__tpeer_unregister(t);
        int rc = sm_conn_detach(t->c, &fd, &rest, &rest_len);
        if (rc == 0) {
            t->c = NULL;
            p->fd = -1; /* the caller's now: the log and sm_peer_addr leave it alone */
        } else {
            reason = rc; /* the conn is as it was: freed, its fd closed, at the end */
            fd = -1;
        }
    }
    int status = reason == SM_ERR_DETACHED ? 0 : reason;
    t->detach_cb(p, fd, rest, rest_len, status, t->detach_arg);
    return reason;
}

int
sm_peer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg)
{
    if (!p || !cb) return -EINVAL;
    const sm__peer_ops *ops = sm__peer_ops_of(p);
    return ops->detach ? ops->detach(p, cb, arg) : -EOPNOTSUPP;
}
