/* Servers: file descriptors and credentials on peers (unix.h), in both
 * models. The loop model's peer is an sm_stream made with its worker's
 * options, which carry opts.max_fds: its calls are the stream's. The
 * thread model's peer sits on an sm_conn with fd passing turned on at the
 * accept: sends go under the peer's send lock (server_tconn.c), takes and
 * releases on its connection thread. Also the checks of opts.max_fds. */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include "conn_fds.h"
#include "fd_io.h"
#include "internal.h"
#include "server_internal.h"
#include "stream_owner.h"

int
sm__fds_opts_check(sm_server *srv, char *why, size_t why_len)
{
    sm_server_opts *o = &srv->o;
    if (o->msg_cred && !o->max_fds)
        return sm__why(why, why_len, -EINVAL,
                       "msg_cred needs max_fds (SCM_CREDENTIALS come "
                       "through the fd-passing receive)");
    if (o->max_fds == 0) return 0;
    if (o->max_fds < 0 || o->max_fds > SM_FDS_MAX)
        return sm__why(why, why_len, -EINVAL, "max_fds %d is outside 0..%d", o->max_fds,
                       SM_FDS_MAX);
    if (o->proxy_protocol)
        return sm__why(why, why_len, -EINVAL,
                       "max_fds with proxy_protocol: the PROXY header is read without room "
                       "for fds, which would be lost");
    /* Refused here, before anything is bound: a TCP client's fds could
     * never arrive, and a half-working server is worse than none. */
    for (int i = 0; i < o->listen_count; i++) {
        sm_endpoint ep;
        char cause[160] = "";
        int rc = sm_endpoint_parse(&ep, o->listen[i], cause, sizeof cause);
        if (rc < 0) return sm__why(why, why_len, rc, "listener %s: %s", o->listen[i], cause);
        if (ep.kind == SM_ENDPOINT_TCP)
            return sm__why(why, why_len, -EINVAL,
                           "max_fds needs unix: listeners; %s cannot pass file descriptors",
                           o->listen[i]);
    }
    if (o->model == SM_SERVER_THREAD) {
        /* The front reads the first message with recv(2): the fds that
         * came with it would be closed by the kernel. */
        if (o->commit == SM_COMMIT_FIRST_MESSAGE)
            return sm__why(why, why_len, -EINVAL,
                           "max_fds with commit SM_COMMIT_FIRST_MESSAGE: the first message's "
                           "fds would be lost on the front (use the default)");
        o->commit = SM_COMMIT_ACCEPT;
    }
    return 0;
}

/* ---- the loop model: the peer's stream ------------------------------------------------ */

int
sm__lpeer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds)
{
    sm__worker *w = sm__lpeer_worker(p);
    int rc = sm_stream_send_fds(sm__stream_of_extra(p), msg, len, fds, nfds);
    if (rc >= 0) {
        sm__ctr_add_own(&w->ctrs.msgs_out, 1);
        sm__ctr_add_own(&w->ctrs.bytes_out, len);
    }
    return rc;
}

int
sm__lpeer_take_fds(sm_peer *p, int *fds, int cap)
{
    return sm_stream_take_fds(sm__stream_of_extra(p), fds, cap);
}

int
sm__lpeer_cred(const sm_peer *p, sm_cred *out)
{
    return sm_stream_peer_cred(sm__stream_of_extra(p), out);
}

int
sm__lpeer_msg_cred(sm_peer *p, sm_cred *out)
{
    return sm_stream_msg_cred(sm__stream_of_extra(p), out);
}

/* ---- the thread model: the peer's conn -------------------------------------------------- */

/* Whether the caller is t's connection thread (the receiving side is its
 * own: another thread must not touch the conn's fd queue). */
static bool
on_conn_thread(sm__tpeer *t)
{
    sm_server *srv = t->p.srv;
    pthread_mutex_lock(&srv->reg_lock);
    bool mine = t->has_self && pthread_equal(pthread_self(), t->self);
    pthread_mutex_unlock(&srv->reg_lock);
    return mine;
}

int
sm__tpeer_fds_open(sm__tpeer *t)
{
    const sm_server_opts *o = &t->p.srv->o;
    int rc = o->max_fds ? sm_conn_enable_fds(t->c, o->max_fds) : 0;
    if (rc == 0 && o->msg_cred) rc = sm_conn_enable_cred(t->c);
    return rc;
}

void
sm__tpeer_fds_done(sm__tpeer *t)
{
    sm__fdq *q = *sm__conn_fdq(t->c);
    if (!q) return;
    sm__fdq_release(q);
    q->msg_cred_ok = false; /* sm_peer_msg_cred: on_message only */
}

int
sm__tpeer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds)
{
    /* Checked before the lock, as sm_conn_send_fds would: a TCP peer is
     * refused, not sent a message without its fds. The conn could send
     * without max_fds, but the loop model's stream cannot: both refuse. */
    if (nfds) {
        int rc = sm__fds_check_unix(p->fd);
        if (rc < 0) return rc;
        if (!p->srv->o.max_fds) return -EINVAL;
    }
    return sm__tpeer_send_with_fds(p, msg, len, fds, nfds);
}

int
sm__tpeer_take_fds(sm_peer *p, int *fds, int cap)
{
    sm__tpeer *t = (sm__tpeer *)p;
    /* Outside the connection thread there is no message being delivered
     * to the caller; t->c is that thread's to read. */
    if (!on_conn_thread(t) || !t->c) return 0;
    return sm_conn_take_fds(t->c, fds, cap);
}

int
sm__tpeer_msg_cred(sm_peer *p, sm_cred *out)
{
    sm__tpeer *t = (sm__tpeer *)p;
    if (!on_conn_thread(t) || !t->c) return 0;
    return sm_conn_msg_cred(t->c, out);
}

int
sm__tpeer_cred(const sm_peer *p, sm_cred *out)
{
    /* p->fd is the connection's until the peer is freed (after on_close):
     * any thread may ask. */
    int rc = sm__fds_check_unix(p->fd);
    if (rc < 0) return rc;
    struct ucred u;
    socklen_t ul = sizeof u;
    if (getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &u, &ul) < 0) return -errno;
    *out = (sm_cred){.pid = u.pid, .uid = u.uid, .gid = u.gid};
    return 0;
}

/* ---- the calls -------------------------------------------------------------------------- */

int
sm_peer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds)
{
    if (!p || (!msg && len) || nfds < 0 || nfds > SM_FDS_MAX || (nfds && !fds)) return -EINVAL;
    return sm__peer_ops_of(p)->send_fds(p, msg, len, fds, nfds);
}

int
sm_peer_take_fds(sm_peer *p, int *fds, int cap)
{
    if (!p || !fds || cap <= 0) return -EINVAL;
    return sm__peer_ops_of(p)->take_fds(p, fds, cap);
}

int
sm_peer_cred(const sm_peer *p, sm_cred *out)
{
    if (!p || !out) return -EINVAL;
    return sm__peer_ops_of(p)->cred(p, out);
}

int
sm_peer_msg_cred(sm_peer *p, sm_cred *out)
{
    if (!p || !out) return -EINVAL;
    return sm__peer_ops_of(p)->msg_cred(p, out);
}
