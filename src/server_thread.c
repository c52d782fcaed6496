/* The thread-per-connection model: an acceptor thread runs a loop over the
 * listeners (and the signals); each connection gets a thread that runs a
 * blocking loop over an sm_conn. A per-peer lock serializes sends, so any
 * thread may send to a peer; the registry of live peers (under reg_lock)
 * serves broadcasts and forced stops. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame_internal.h"
#include "internal.h"
#include "server_internal.h"

typedef struct tpeer {
    sm_peer p;            /* first: an sm_peer * is a tpeer * */
    pthread_mutex_t lock; /* sends, and the fields below it */
    sm_conn *c;
    bool ready; /* c is set: sends may go out */
    bool shut;  /* FIN sent */
    bool gone;  /* the connection is being torn down: no more sends */
    atomic_bool closing;
    atomic_int refs; /* the thread's own, plus broadcasts in progress */
    _Atomic int64_t last_out;
    pthread_t self; /* under srv->reg_lock: set by the connection thread itself */
    bool has_self;
    char detail[192];
} tpeer;

static void
tpeer_unref(tpeer *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&t->lock);
    free(t->p.px);
    free(t);
}

/* ---- sends (any thread) ------------------------------------------------------- */

/* A send that timed out left part of a frame on the wire: the connection
 * is unusable, and the peer does not read. Called with t->lock held. */
static void
slow_consumer(tpeer *t)
{
    if (atomic_exchange(&t->closing, true)) return;
    t->p.override = SM_ERR_SLOW_CONSUMER;
    snprintf(t->detail, sizeof t->detail, "a send made no progress for %d ms",
             t->p.srv->o.write_timeout_ms);
    shutdown(t->p.fd, SHUT_RDWR);
}

/* One message out, under the send lock: iov encoded with `type` (-1: none),
 * or, with `frame`, a received frame's bytes as they are. */
static int
send_locked(sm_peer *p, int type, const struct iovec *iov, int iovcnt, const sm_frame_msg *frame)
{
    tpeer *t = (tpeer *)p;
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
            /* The conn buffers nothing on the send side: raw bytes are safe. */
            n = sm_send_all(p->fd, frame->frame, frame->frame_len, wt, NULL);
            if (n >= 0) n = (ssize_t)frame->len;
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

static int
tpeer_send(sm_peer *p, int type, const struct iovec *iov, int iovcnt)
{
    return send_locked(p, type, iov, iovcnt, NULL);
}

static int
tpeer_send_frame(sm_peer *p, const sm_frame_msg *msg)
{
    return send_locked(p, -1, NULL, 0, msg);
}

static int
tpeer_shutdown(sm_peer *p)
{
    tpeer *t = (tpeer *)p;
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
    tpeer *t = (tpeer *)p;
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
    return ((const tpeer *)p)->detail;
}

const sm__peer_ops sm__tpeer_ops = {
    .send = tpeer_send,
    .send_frame = tpeer_send_frame,
    .shutdown = tpeer_shutdown,
    .close = tpeer_close,
    .addr = tpeer_addr,
    .get_data = tpeer_get_data,
    .set_data = tpeer_set_data,
    .server = tpeer_server,
    .detail = tpeer_detail,
};

static int
tmodel_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len)
{
    pthread_mutex_lock(&srv->reg_lock);
    size_t n = 0;
    for (sm__node *k = srv->registry.next; k != &srv->registry; k = k->next)
        n++;
    tpeer **to = n ? malloc(n * sizeof *to) : NULL;
    size_t m = 0;
    for (sm__node *k = srv->registry.next; to && k != &srv->registry; k = k->next) {
        tpeer *t = (tpeer *)SM__CONTAINER(k, sm_peer, link);
        if (&t->p == except) continue;
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        to[m++] = t;
    }
    pthread_mutex_unlock(&srv->reg_lock);
    if (n && !to) return -ENOMEM;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    for (size_t i = 0; i < m; i++) {
        tpeer_send(&to[i]->p, type, &v, 1);
        tpeer_unref(to[i]);
    }
    free(to);
    return 0;
}

static bool
tmodel_is_own_thread(sm_server *srv)
{
    pthread_t self = pthread_self();
    bool own = false;
    pthread_mutex_lock(&srv->reg_lock);
    for (sm__node *k = srv->registry.next; !own && k != &srv->registry; k = k->next) {
        tpeer *t = (tpeer *)SM__CONTAINER(k, sm_peer, link);
        own = t->has_self && pthread_equal(t->self, self);
    }
    pthread_mutex_unlock(&srv->reg_lock);
    return own;
}

static void
force_conns(sm_server *srv)
{
    pthread_mutex_lock(&srv->reg_lock);
    for (sm__node *k = srv->registry.next; k != &srv->registry; k = k->next) {
        sm_peer *p = SM__CONTAINER(k, sm_peer, link);
        shutdown(p->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&srv->reg_lock);
}

/* ---- the connection thread ------------------------------------------------------ */

static void
unregister(tpeer *t)
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

static int
read_proxy(tpeer *t, int64_t start)
{
    sm_server *srv = t->p.srv;
    int ms =
        srv->o.first_message_timeout_ms ? srv->o.first_message_timeout_ms : SM__PROXY_DEFAULT_MS;
    int64_t until = start + ms;
    sm__proxy_rd rd;
    sm__proxy_rd_init(&rd);
    sm_proxy_info info;
    ssize_t h;
    while ((h = sm__proxy_read(t->p.fd, &rd, &info, t->detail, sizeof t->detail)) == -EAGAIN) {
        if (atomic_load(&srv->forced)) {
            h = -ECANCELED;
            break;
        }
        if (sm__now_ms() >= until) {
            snprintf(t->detail, sizeof t->detail, "no complete header in time");
            h = -ETIMEDOUT;
            break;
        }
        wait_input(srv, t->p.fd, true, SM__MIN(until, sm__now_ms() + 100));
    }
    sm__proxy_rd_free(&rd);
    int err = (int)h;
    if (h > 0) t->p.px = sm__proxied_new(&info, &err);
    if (err < 0) sm__log_proxy_fail(srv, t->p.fd, err, t->detail);
    return err;
}

/* The heartbeat ping, sent like a reply (under the send lock) but not
 * counted as one. Never waits: a send under way on another thread, or a
 * full socket, is traffic already, and the connection thread must get back
 * to its heartbeat timeout. */
static void
send_ping(tpeer *t)
{
    const sm_server_opts *o = &t->p.srv->o;
    const void *ping = o->ping ? o->ping : "";
    if (pthread_mutex_trylock(&t->lock) != 0) return;
    struct pollfd pf = {.fd = t->p.fd, .events = POLLOUT};
    bool room = poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT);
    if (room && t->ready && !t->gone && !t->shut && !atomic_load(&t->closing)) {
        ssize_t n =
            o->spec->kind == SM_FRAME_TYPE
                ? sm_conn_send_type(t->c, o->ping_type, ping, o->ping_len, o->write_timeout_ms)
                : sm_conn_send(t->c, ping, o->ping_len, o->write_timeout_ms);
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
static int end_with(tpeer *t, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
end_with(tpeer *t, int reason, const char *fmt, ...)
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
ping_due(tpeer *t, int64_t start, int64_t now)
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
serve(tpeer *t, int64_t start)
{
    sm_peer *p = &t->p;
    sm_server *srv = p->srv;
    const sm_server_opts *o = &srv->o;
    int64_t last_in = start;
    bool got_first = false;
    for (;;) {
        if (atomic_load(&t->closing)) return SM_ERR_CLOSED;
        if (atomic_load(&srv->forced)) return -ECANCELED;
        sm_frame_msg m;
        int rc = sm_conn_recv(t->c, &m, 0);
        if (atomic_load(&t->closing)) return SM_ERR_CLOSED;
        if (atomic_load(&srv->forced)) return -ECANCELED;
        if (rc == 1) {
            last_in = sm__now_ms();
            if (is_ping(o, &m)) continue;
            got_first = true;
            sm__ctr_add(&srv->tctrs.msgs_in, 1);
            sm__ctr_add(&srv->tctrs.bytes_in, m.len);
            o->on_message(p, &m);
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
        if (wait_input(srv, p->fd, stopping, until)) last_in = sm__now_ms();
    }
}

static void
finish(tpeer *t)
{
    sm__worker *w = &t->p.srv->ws[0];
    pthread_t self = pthread_self();
    pthread_mutex_lock(&w->lock);
    int rc = sm__vec_push(&w->in_done, &self, sizeof self);
    if (rc == 0) pthread_cond_signal(&w->done_cond); /* for tmodel_abandon */
    pthread_mutex_unlock(&w->lock);
    /* Out of memory for the join list: detach, so nobody needs to join. */
    if (rc < 0) pthread_detach(self);
    sm_loop_wakeup(w->loop);
}

static void *
conn_main(void *arg)
{
    tpeer *t = arg;
    sm_peer *p = &t->p;
    sm_server *srv = p->srv;
    pthread_mutex_lock(&srv->reg_lock);
    t->self = pthread_self();
    t->has_self = true;
    pthread_mutex_unlock(&srv->reg_lock);
    int64_t start = sm__now_ms();
    int reason = srv->o.proxy_protocol ? read_proxy(t, start) : 0;
    bool opened = false;
    bool fd_gone = false;
    if (reason == 0) {
        /* The conn owns the fd from here; p->fd stays valid until
         * sm_conn_free, after the peer has left the registry. */
        reason = sm_conn_new_take(&t->c, p->fd, srv->o.spec);
        fd_gone = reason < 0;
    }
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
    if (reason != 0 && t->c) shutdown(p->fd, SHUT_RDWR);
    pthread_mutex_lock(&t->lock);
    /* A clean end: the client's EOF at a boundary, all replies written. */
    if (reason == 0 && t->ready && !t->shut) sm_conn_shutdown(t->c);
    t->gone = true;
    if (reason == SM_ERR_CLOSED && p->override) reason = p->override;
    pthread_mutex_unlock(&t->lock);
    if (reason == -ECANCELED && !t->detail[0])
        snprintf(t->detail, sizeof t->detail, "closed by the server's stop");

    sm_close_kind kind = sm_server_close_kind(reason);
    if (opened) sm__log_close(srv, p, kind, reason);
    sm__count_close(srv, &srv->tctrs, kind);
    if (opened && srv->o.on_close) srv->o.on_close(p, reason);
    unregister(t);
    if (t->c)
        sm_conn_free(t->c);
    else if (!fd_gone)
        close(p->fd);
    finish(t);
    tpeer_unref(t);
    return NULL;
}

/* ---- the acceptor -------------------------------------------------------------- */

static void
spawn(sm__worker *w, sm__listener *l, int fd)
{
    sm_server *srv = w->srv;
    if (!sm__accepted_setup(w, l->ep, fd)) return;
    /* The connection thread blocks in poll, not in the socket. */
    tpeer *t = calloc(1, sizeof *t);
    if (!t) {
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    t->p.srv = srv;
    t->p.fd = fd;
    t->p.tag = sm__next_id(srv) << SM__P_ID_SHIFT;
    pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->refs, 1);
    atomic_init(&t->closing, false);
    atomic_init(&t->last_out, 0);
    pthread_mutex_lock(&srv->reg_lock);
    sm__list_append(&srv->registry, &t->p.link);
    pthread_mutex_unlock(&srv->reg_lock);

    pthread_t th;
    int rc = pthread_create(&th, NULL, conn_main, t);
    if (rc != 0) {
        unregister(t);
        close(fd);
        tpeer_unref(t);
        sm__ctr_add(&w->ctrs.closes[SM_CLOSE_REFUSED], 1);
        sm__release(srv);
        sm__log(srv, SM_LOG_WARN, "connection refused: cannot start a thread: %s",
                sm_strerror(-rc));
        return;
    }
    atomic_fetch_add_explicit(&w->npeers, 1, memory_order_relaxed);
}

static void
join_done(sm__worker *w)
{
    pthread_mutex_lock(&w->lock);
    sm__vec t = w->in_done;
    w->in_done = w->work_done;
    w->work_done = t;
    pthread_mutex_unlock(&w->lock);
    pthread_t *ths = w->work_done.items;
    for (size_t i = 0; i < w->work_done.n; i++)
        pthread_join(ths[i], NULL);
    atomic_fetch_sub_explicit(&w->npeers, w->work_done.n, memory_order_relaxed);
    w->work_done.n = 0;
}

static void
acceptor_cb(sm_io *io, unsigned events)
{
    (void)events;
    sm__listener *l = io->data;
    sm__accept_batch(l->w, l, false, spawn);
}

static void
stop_timers(sm__worker *w)
{
    sm_timer_stop(&w->keepalive);
    sm_timer_stop(&w->deadline);
    sm_timer_stop(&w->pause);
}

static void
maybe_exit(sm__worker *w)
{
    if (!w->stopping || w->done || atomic_load_explicit(&w->npeers, memory_order_relaxed)) return;
    w->done = true;
    stop_timers(w);
    sm_loop_stop(w->loop);
}

/* Close the listeners, first serving what the kernel has already accepted
 * (serve_backlog), else leaving it to be reset. */
static void
stop_accepting(sm__worker *w, bool serve_backlog)
{
    w->stopping = true;
    sm_timer_stop(&w->pause);
    for (int i = 0; i < w->nlst; i++) {
        sm__listener *l = &w->lst[i];
        if (!sm_io_is_active(&l->io)) continue;
        if (serve_backlog) sm__accept_batch(w, l, true, spawn);
        sm_io_close(&l->io, NULL);
        *l->slot = -1;
    }
    atomic_store(&w->srv->listening, 0);
}

static void
deadline_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    size_t n = atomic_load_explicit(&w->npeers, memory_order_relaxed);
    sm__log(w->srv, SM_LOG_WARN, "drain deadline: closing %zu connections", n);
    atomic_store(&w->srv->forced, true);
    force_conns(w->srv);
}

static void
tmodel_wakeup(sm_loop *loop)
{
    sm__worker *w = sm_loop_get_data(loop);
    sm_server *srv = w->srv;
    if (w->done) return;
    join_done(w);
    if (atomic_load(&srv->stopping) && !w->stopping) {
        stop_accepting(w, true);
        int64_t dl = sm__drain_deadline(srv);
        if (dl != INT64_MAX) {
            int64_t left = dl - sm_loop_now(w->loop);
            sm_timer_start(&w->deadline, left > 0 ? (uint64_t)left : 0, 0);
        }
    }
    maybe_exit(w);
}

#define DEFAULT_THREADS_MAX 256

static int
tmodel_configure(sm_server *srv, char *why, size_t why_len)
{
    (void)why;
    (void)why_len;
    sm_server_opts *o = &srv->o;
    if (o->threads == 0) o->threads = DEFAULT_THREADS_MAX;
    /* Past the thread limit a connection is refused as at max_conns. */
    if (!srv->limit || srv->limit > o->threads) srv->limit = o->threads;
    srv->nw = 1; /* the acceptor */
    srv->nfd_sets = 1;
    return 0;
}

static void
tmodel_force(sm_server *srv)
{
    force_conns(srv);
}

/* The acceptor's loop cannot run: stop accepting, close every connection,
 * and join their threads without the loop (each finish() signals). */
static void
tmodel_abandon(sm__worker *w)
{
    sm_server *srv = w->srv;
    if (!w->stopping) stop_accepting(w, false);
    atomic_store(&srv->forced, true);
    force_conns(srv);
    for (;;) {
        join_done(w);
        if (!atomic_load_explicit(&w->npeers, memory_order_relaxed)) break;
        pthread_mutex_lock(&w->lock);
        while (!w->in_done.n)
            pthread_cond_wait(&w->done_cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
    }
    w->done = true;
    stop_timers(w);
}

static int
tmodel_init(sm_server *srv, char *why, size_t why_len)
{
    srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv->stop_fd < 0) {
        int err = -errno;
        snprintf(why, why_len, "eventfd: %s", sm_strerror(err));
        return err;
    }
    sm__worker *w = &srv->ws[0];
    sm_timer *const timers[] = {&w->pause, &w->deadline};
    static const sm_timer_cb cbs[] = {sm__pause_cb, deadline_cb};
    sm__worker_init(w, timers, cbs, sizeof cbs / sizeof cbs[0]);
    return 0;
}

static void *
tmodel_main(void *arg)
{
    sm__worker *w = arg;
    sm__worker_run(w, acceptor_cb, w->srv->o.handle_signals, "acceptor");
    join_done(w);
    sm_loop_run(w->loop, SM_RUN_NOWAIT);
    return NULL;
}

const sm__model sm__tmodel = {
    .name = "thread",
    .configure = tmodel_configure,
    .init = tmodel_init,
    .main = tmodel_main,
    .wakeup = tmodel_wakeup,
    .broadcast = tmodel_broadcast,
    .force = tmodel_force,
    .is_own_thread = tmodel_is_own_thread,
    .abandon = tmodel_abandon,
};
