/* The thread model's connections: a peer's record (sm__tpeer), its sends
 * under the peer's lock from any thread and the other sm_peer_* calls on
 * it, and its connection thread: the PROXY header, the receive loop with
 * its timeouts and heartbeats, the drain, the end. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame_internal.h"
#include "internal.h"
#include "server_internal.h"
#include "tls_internal.h"

void
sm__tpeer_unref(sm__tpeer *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&t->lock);
    sm_buf_free(&t->pre);
    free(t->p.px);
    free(t);
}

/* ---- sends (any thread) ------------------------------------------------------- */

/* A send that timed out left part of a frame on the wire: the connection
 * is unusable, and the peer does not read. Called with t->lock held. */
static void
slow_consumer(sm__tpeer *t)
{
    if (atomic_exchange(&t->closing, true)) return;
    t->p.override = SM_ERR_SLOW_CONSUMER;
    snprintf(t->detail, sizeof t->detail, "a send made no progress for %d ms",
             t->p.srv->o.write_timeout_ms);
    shutdown(t->p.fd, SHUT_RDWR);
}

/* What send_locked sends: iov encoded with `type` (-1: none), or with the
 * caller's header bytes (hdr not NULL), or a received frame's bytes as they
 * are (frame not NULL). */
typedef struct tsend {
    int type;
    const struct iovec *iov;
    int iovcnt;
    const void *hdr;
    size_t hdr_len;
    const sm_frame_msg *frame;
    const int *fds; /* with nfds > 0: attached to a plain message (unix.h) */
    int nfds;
} tsend;

/* One message out, under the send lock. */
static int
send_locked(sm_peer *p, const tsend *m)
{
    int type = m->type, iovcnt = m->iovcnt;
    const struct iovec *iov = m->iov;
    const sm_frame_msg *frame = m->frame;
    sm__tpeer *t = (sm__tpeer *)p;
    sm_server *srv = p->srv;
    int wt = srv->o.write_timeout_ms;
    pthread_mutex_lock(&t->lock);
    int rc;
    if (!t->ready || t->gone || atomic_load(&t->closing)) {
        rc = SM_ERR_CLOSED;
    } else if (t->shut) {
        rc = -EPIPE;
    } else {
        ssize_t n;
        if (frame) {
            /* The conn buffers nothing on the send side: raw bytes are safe
             * (through the conn: TLS encrypts them). */
            n = t->tls ? sm__conn_send_raw(t->c, frame->frame, frame->frame_len, wt)
                       : sm_send_all(p->fd, frame->frame, frame->frame_len, wt, NULL);
            if (n >= 0) n = (ssize_t)frame->len;
        } else if (m->nfds) {
            n = sm_conn_send_fds(t->c, iov[0].iov_base, iov[0].iov_len, m->fds, m->nfds, wt);
        } else if (m->hdr) {
            n = sm_conn_send_hdr(t->c, m->hdr, m->hdr_len, iov[0].iov_base, iov[0].iov_len, wt);
        } else {
            n = type >= 0 ? sm_conn_send_type(t->c, type, iov[0].iov_base, iov[0].iov_len, wt)
                          : sm_conn_sendv(t->c, iov, iovcnt, wt);
        }
        rc = n < 0 ? (int)n : 0;
        if (n >= 0) {
            atomic_store_explicit(&t->last_out, sm__now_ms(), memory_order_relaxed);
            sm__ctr_add(&srv->tctrs.msgs_out, 1);
            sm__ctr_add(&srv->tctrs.bytes_out, (uint64_t)n);
        } else if (n == -ETIMEDOUT) {
            slow_consumer(t);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int
sm__tpeer_send(sm_peer *p, int type, const struct iovec *iov, int iovcnt)
{
    return send_locked(p, &(tsend){.type = type, .iov = iov, .iovcnt = iovcnt});
}

int
sm__tpeer_send_with_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return send_locked(p, &(tsend){.type = -1, .iov = &v, .iovcnt = 1, .fds = fds, .nfds = nfds});
}

static int
tpeer_send_frame(sm_peer *p, const sm_frame_msg *msg)
{
    return send_locked(p, &(tsend){.type = -1, .frame = msg});
}

static int
tpeer_send_hdr(sm_peer *p, const void *hdr, size_t hdr_len, const void *msg, size_t len)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return send_locked(
        p, &(tsend){.type = -1, .iov = &v, .iovcnt = 1, .hdr = hdr, .hdr_len = hdr_len});
}

static int
tpeer_set_spec(sm_peer *p, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    sm__tpeer *t = (sm__tpeer *)p;
    const sm_server_opts *o = &p->srv->o;
    if (rx) {
        pthread_mutex_lock(&p->srv->reg_lock);
        bool mine = t->has_self && pthread_equal(pthread_self(), t->self);
        pthread_mutex_unlock(&p->srv->reg_lock);
        if (!mine) return -EINVAL;
    }
    if (rx && o->swallow_pings &&
        sm__ping_unframable(rx, o->ping, o->ping_len, o->ping_type, false))
        return SM_ERR_SPEC;
    if (tx && o->heartbeat_ms && sm__ping_unframable(tx, o->ping, o->ping_len, o->ping_type, true))
        return SM_ERR_SPEC;
    /* The send lock: a sender on another thread encodes with tx. The
     * receiving side is this thread's own. */
    pthread_mutex_lock(&t->lock);
    int rc = !t->ready || t->gone || atomic_load(&t->closing) ? SM_ERR_CLOSED
                                                              : sm_conn_set_spec(t->c, rx, tx);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static int
tpeer_shutdown(sm_peer *p)
{
    sm__tpeer *t = (sm__tpeer *)p;
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    if (t->gone || !t->ready) {
        rc = SM_ERR_CLOSED;
    } else if (!t->shut) {
        t->shut = true;
        sm_conn_shutdown(t->c);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static int
tpeer_close(sm_peer *p)
{
    sm__tpeer *t = (sm__tpeer *)p;
    if (atomic_exchange(&t->closing, true)) return SM_ERR_CLOSED;
    /* From another thread: wake the connection thread out of its wait. */
    pthread_mutex_lock(&p->srv->reg_lock);
    bool mine = t->has_self && pthread_equal(pthread_self(), t->self);
    /* The registry lock, not the send lock (a send may block for seconds):
     * the socket stays open while the peer is registered. */
    if (!mine && p->link.next) shutdown(p->fd, SHUT_RDWR);
    pthread_mutex_unlock(&p->srv->reg_lock);
    return 0;
}

static int
tpeer_addr(const sm_peer *p, sm_addr *out, bool peer)
{
    return sm__peer_addr(p->px, p->fd, out, peer);
}

static void *
tpeer_get_data(const sm_peer *p)
{
    return p->data;
}

static void
tpeer_set_data(sm_peer *p, void *data)
{
    p->data = data;
}

static sm_server *
tpeer_server(const sm_peer *p)
{
    return p->srv;
}

static const char *
tpeer_detail(const sm_peer *p)
{
    if (p->override_detail) return p->override_detail;
    return ((const sm__tpeer *)p)->detail;
}

const sm__peer_ops sm__tpeer_ops = {
    .send = sm__tpeer_send,
    .send_frame = tpeer_send_frame,
    .send_hdr = tpeer_send_hdr,
    .set_spec = tpeer_set_spec,
    .shutdown = tpeer_shutdown,
    .close = tpeer_close,
    .addr = tpeer_addr,
    .get_data = tpeer_get_data,
    .set_data = tpeer_set_data,
    .server = tpeer_server,
    .detail = tpeer_detail,
    .send_fds = sm__tpeer_send_fds,
    .take_fds = sm__tpeer_take_fds,
    .cred = sm__tpeer_cred,
    .msg_cred = sm__tpeer_msg_cred,
    .detach = sm__tpeer_detach,
};

/* ---- the connection thread ------------------------------------------------------ */

void
sm__tpeer_unregister(sm__tpeer *t)
{
    sm_server *srv = t->p.srv;
    pthread_mutex_lock(&srv->reg_lock);
    sm__list_remove(&t->p.link);
    pthread_mutex_unlock(&srv->reg_lock);
}

/* Wait for fd to be readable (or the server to start stopping) until
 * `until` (INT64_MAX: no limit). Returns true when fd is readable. */
static bool
wait_input(sm_server *srv, int fd, bool stopping, int64_t until)
{
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = srv->stop_fd, .events = POLLIN}};
    int timeout = until == INT64_MAX ? -1 : sm__remaining_ms(until);
    int n = poll(pf, stopping ? 1 : 2, timeout);
    return n > 0 && pf[0].revents;
}

/* The heartbeat ping, sent like a reply (under the send lock) but not
 * counted as one. Never waits: a send under way on another thread, or a
 * full socket, is traffic already, and the connection thread must get back
 * to its heartbeat timeout. */
static void
send_ping(sm__tpeer *t)
{
    const sm_server_opts *o = &t->p.srv->o;
    const void *ping = o->ping ? o->ping : "";
    if (pthread_mutex_trylock(&t->lock) != 0) return;
    struct pollfd pf = {.fd = t->p.fd, .events = POLLOUT};
    bool room = poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT);
    if (room && t->ready && !t->gone && !t->shut && !atomic_load(&t->closing)) {
        /* The type is ignored unless the sending spec is a type: one
         * (which sm_peer_set_spec may have made it). */
        ssize_t n = sm_conn_send_type(t->c, o->ping_type, ping, o->ping_len, o->write_timeout_ms);
        if (n >= 0)
            atomic_store_explicit(&t->last_out, sm__now_ms(), memory_order_relaxed);
        else if (n == -ETIMEDOUT)
            slow_consumer(t);
    }
    pthread_mutex_unlock(&t->lock);
}

static bool
is_ping(const sm_server_opts *o, const sm_frame_msg *m)
{
    return o->swallow_pings && sm__ping_matches(o->spec, o->ping, o->ping_len, o->ping_type, m);
}

/* The connection thread ends the connection for `reason`: it claims the
 * close (and t->detail) unless a sender timed out first, whose reason
 * (override) then stands. */
static int end_with(sm__tpeer *t, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
end_with(sm__tpeer *t, int reason, const char *fmt, ...)
{
    if (atomic_exchange(&t->closing, true)) return SM_ERR_CLOSED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof t->detail, fmt, ap);
    va_end(ap);
    return reason;
}

/* Ping if heartbeat_ms passed with nothing sent; returns when the next
 * ping is due. */
static int64_t
ping_due(sm__tpeer *t, int64_t start, int64_t now)
{
    const sm_server_opts *o = &t->p.srv->o;
    int64_t out = atomic_load_explicit(&t->last_out, memory_order_relaxed);
    int64_t due = SM__MAX(out, start) + o->heartbeat_ms;
    if (due > now) return due;
    send_ping(t);
    return now + o->heartbeat_ms;
}

/* Receive and dispatch until the connection ends; returns the reason. */
static int
serve(sm__tpeer *t, int64_t start)
{
    sm_peer *p = &t->p;
    sm_server *srv = p->srv;
    const sm_server_opts *o = &srv->o;
    int64_t last_in = start;
    /* Handed over by the front with its first message buffered. */
    bool got_first = t->got_first;
    int64_t partial_since = 0; /* a later message began (first seen then) */
    for (;;) {
        if (atomic_load(&t->closing)) return SM_ERR_CLOSED;
        if (atomic_load(&srv->forced)) return -ECANCELED;
        sm_frame_msg m;
        int rc = sm_conn_recv(t->c, &m, 0);
        if (atomic_load(&t->closing)) return SM_ERR_CLOSED;
        if (atomic_load(&srv->forced)) return -ECANCELED;
        if (rc == 1) {
            last_in = sm__now_ms();
            partial_since = 0;
            if (is_ping(o, &m)) continue;
            got_first = true;
            sm__ctr_add(&srv->tctrs.msgs_in, 1);
            sm__ctr_add(&srv->tctrs.bytes_in, m.len);
            o->on_message(p, &m);
            sm__tpeer_fds_done(t);
            /* sm_peer_detach from it: the hand-off claims the close. */
            if (t->detach_cb)
                return atomic_exchange(&t->closing, true) ? SM_ERR_CLOSED : SM_ERR_DETACHED;
            /* A peer that keeps us busy still gets its pings (the time read
             * for last_in serves: one clock read per message). */
            if (o->heartbeat_ms) ping_due(t, start, last_in);
            continue;
        }
        if (rc == 0) return 0;
        if (rc != -ETIMEDOUT) return end_with(t, rc, "%s", sm_conn_error_detail(t->c));

        /* Nothing to dispatch: wait for bytes, a deadline, or the stop. */
        int64_t now = sm__now_ms(), until = INT64_MAX;
        if (!got_first && o->first_message_timeout_ms) {
            int64_t due = start + o->first_message_timeout_ms;
            if (due <= now) {
                p->override_detail = srv->fresh_detail;
                return -ETIMEDOUT;
            }
            until = SM__MIN(until, due);
        }
        if (got_first && o->message_timeout_ms && sm__conn_mid_message(t->c)) {
            if (!partial_since) partial_since = now;
            int64_t due = partial_since + o->message_timeout_ms;
            if (due <= now)
                return end_with(t, -ETIMEDOUT,
                                "message timeout: a message begun was not complete within %d ms",
                                o->message_timeout_ms);
            until = SM__MIN(until, due);
        }
        if (o->idle_timeout_ms) {
            int64_t out = atomic_load_explicit(&t->last_out, memory_order_relaxed);
            int64_t due = SM__MAX(last_in, out) + o->idle_timeout_ms;
            if (due <= now)
                return end_with(t, -ETIMEDOUT, "idle timeout: nothing sent or received for %d ms",
                                o->idle_timeout_ms);
            until = SM__MIN(until, due);
        }
        if (o->heartbeat_timeout_ms) {
            int64_t due = last_in + o->heartbeat_timeout_ms;
            if (due <= now)
                return end_with(t, SM_ERR_HEARTBEAT, "heartbeat lost: nothing received for %d ms",
                                o->heartbeat_timeout_ms);
            until = SM__MIN(until, due);
        }
        if (o->heartbeat_ms) until = SM__MIN(until, ping_due(t, start, now));
        bool stopping = atomic_load(&srv->stopping);
        if (stopping) {
            int64_t dl = sm__drain_deadline(srv);
            if (dl <= now) return end_with(t, -ECANCELED, "closed by the server's drain deadline");
            until = SM__MIN(until, dl);
            pthread_mutex_lock(&t->lock);
            bool shut = t->shut;
            if (!shut && now - last_in >= o->drain_quiet_ms) {
                /* Quiet, and every reply went out with its send: FIN. */
                t->shut = shut = true;
                sm_conn_shutdown(t->c);
            }
            pthread_mutex_unlock(&t->lock);
            if (!shut) until = SM__MIN(until, last_in + o->drain_quiet_ms);
        }
        /* Plaintext TLS already decrypted is not announced by the socket. */
        if (sm__conn_tls_pending(t->c) || wait_input(srv, p->fd, stopping, until))
            last_in = sm__now_ms();
    }
}

/* The thread's last touch of the server: queue t for the acceptor to join
 * (through its registry link, free since sm__tpeer_unregister: no
 * allocation, so no failure that would leave the thread unjoined and the
 * stop waiting for it), and wake it. */
static void
finish(sm__tpeer *t)
{
    sm__worker *w = &t->p.srv->ws[0];
    pthread_mutex_lock(&w->lock);
    sm__list_append(&w->joinable, &t->p.link);
    pthread_cond_signal(&w->done_cond); /* for tmodel_abandon */
    pthread_mutex_unlock(&w->lock);
    sm_loop_wakeup(w->loop);
}

void *
sm__tconn_main(void *arg)
{
    sm__tpeer *t = arg;
    sm_peer *p = &t->p;
    sm_server *srv = p->srv;
    pthread_mutex_lock(&srv->reg_lock);
    t->self = pthread_self();
    t->has_self = true;
    pthread_mutex_unlock(&srv->reg_lock);
    int64_t start = sm__now_ms();
    bool opened = false;
    /* The conn owns the fd from here (it is closed if that fails), with
     * the bytes the front read; p->fd stays valid until sm_conn_free,
     * after the peer has left the registry. */
    int reason;
    if (!t->tls) {
        reason = sm__conn_new_take_buf(&t->c, p->fd, srv->o.spec, &t->pre);
    } else {
        /* The front read at most a PROXY header: the handshake is next,
         * under its own deadline, so a silent client does not keep this
         * thread. */
        sm_buf_free(&t->pre);
        reason = sm_conn_new_tls(&t->c, p->fd, srv->o.spec, srv->o.tls, NULL,
                                 sm__tls_config_handshake_timeout(srv->o.tls), t->detail,
                                 sizeof t->detail);
        if (reason < 0) sm__log_tls_fail(srv, sm__peer_id(p), -1, reason, t->detail, true);
    }
    /* Sending with a spec of its own (the conn's are both the receiving
     * one). sm_server_new checked it: this cannot fail. */
    if (reason == 0 && srv->o.send_spec) (void)sm_conn_set_spec(t->c, NULL, srv->o.send_spec);
    if (reason == 0) reason = sm__tpeer_fds_open(t);
    if (reason == 0) {
        pthread_mutex_lock(&t->lock);
        t->ready = true;
        pthread_mutex_unlock(&t->lock);
        opened = true;
        sm__ctr_add(&srv->tctrs.opened, 1);
        sm__log_open(srv, p);
        if (srv->o.on_open) srv->o.on_open(p);
        reason = serve(t, start);
    }

    /* Ending for a reason: a send blocked on another thread (holding the
     * lock for up to write_timeout_ms) fails at once instead. */
    if (reason != 0 && reason != SM_ERR_DETACHED && t->c) shutdown(p->fd, SHUT_RDWR);
    pthread_mutex_lock(&t->lock);
    /* A clean end: the client's EOF at a boundary, all replies written. */
    if (reason == 0 && t->ready && !t->shut) sm_conn_shutdown(t->c);
    t->gone = true;
    if (reason == SM_ERR_CLOSED && p->override) reason = p->override;
    pthread_mutex_unlock(&t->lock);
    if (reason == -ECANCELED && !t->detail[0])
        snprintf(t->detail, sizeof t->detail, "closed by the server's stop");
    if (t->detach_cb) reason = sm__tpeer_detach_end(t, reason);

    sm_close_kind kind = sm_server_close_kind(reason);
    if (opened && kind == SM_CLOSE_TLS) /* as the loop model logs it */
        sm__log_tls_fail(srv, sm__peer_id(p), -1, reason,
                         t->detail[0] ? t->detail : sm_conn_error_detail(t->c), false);
    if (opened) sm__log_close(srv, p, kind, reason);
    /* The thread's slot is free with the connection's: a client that saw
     * this one gone (stats.current) finds a thread. What is left (on_close,
     * the cleanup) is short unless on_close blocks. */
    atomic_fetch_sub_explicit(&srv->tbusy, 1, memory_order_release);
    sm__count_close(srv, &srv->tctrs, kind);
    if (opened && srv->o.on_close) srv->o.on_close(p, reason);
    sm__tpeer_unregister(t);
    sm_conn_free(t->c);
    /* The acceptor joins this thread, then drops its reference. */
    finish(t);
    return NULL;
}
