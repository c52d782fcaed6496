/* The thread-per-connection model: an acceptor thread runs a loop over the
 * listeners (and the signals); each connection gets a thread that runs a
 * blocking loop over an sm_conn (server_tconn.c). A per-peer lock
 * serializes sends, so any thread may send to a peer; the registry of live
 * peers (under reg_lock) serves broadcasts and forced stops. Here: the
 * model's table, the acceptor, broadcasts, stopping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"

static int
tmodel_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len)
{
    pthread_mutex_lock(&srv->reg_lock);
    size_t n = 0;
    for (sm__node *k = srv->registry.next; k != &srv->registry; k = k->next)
        n++;
    sm__tpeer **to = n ? malloc(n * sizeof(sm__tpeer *)) : NULL;
    size_t m = 0;
    for (sm__node *k = srv->registry.next; to && k != &srv->registry; k = k->next) {
        sm__tpeer *t = (sm__tpeer *)SM__CONTAINER(k, sm_peer, link);
        if (&t->p == except) continue;
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        to[m++] = t;
    }
    pthread_mutex_unlock(&srv->reg_lock);
    if (n && !to) return -ENOMEM;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    for (size_t i = 0; i < m; i++) {
        sm__tpeer_send(&to[i]->p, type, &v, 1);
        sm__tpeer_unref(to[i]);
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
        sm__tpeer *t = (sm__tpeer *)SM__CONTAINER(k, sm_peer, link);
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

/* ---- the acceptor -------------------------------------------------------------- */

void
sm__tconn_spawn(sm__worker *w, int fd, sm__proxied *px, sm_buf *in, bool got_first, bool tls)
{
    sm_server *srv = w->srv;
    /* Past the thread limit a connection is refused as at max_conns: it
     * came this far with a whole message, so the server is busy with
     * clients that talk, not with clients that stall. */
    if (atomic_fetch_add_explicit(&srv->tbusy, 1, memory_order_relaxed) >= srv->o.threads) {
        atomic_fetch_sub_explicit(&srv->tbusy, 1, memory_order_relaxed);
        sm__ctr_add(&w->ctrs.closes[SM_CLOSE_REFUSED], 1);
        sm__release(srv);
        char what[120];
        snprintf(what, sizeof what, "connection refused: %d connection threads busy (the limit)",
                 srv->o.threads);
        sm__warn_limited(w, &w->refuse_logged_ms, &w->refuse_unlogged, what);
        close(fd);
        free(px);
        sm_buf_free(in);
        return;
    }
    /* The connection thread blocks in poll, not in the socket. */
    sm__tpeer *t = calloc(1, sizeof *t);
    if (!t) {
        atomic_fetch_sub_explicit(&srv->tbusy, 1, memory_order_relaxed);
        close(fd);
        free(px);
        sm_buf_free(in);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    t->p.srv = srv;
    t->p.fd = fd;
    t->tls = tls;
    t->p.px = px;
    t->p.tag = sm__next_id(srv) << SM__P_ID_SHIFT;
    t->pre = *in;
    sm_buf_init(in, 0);
    t->got_first = got_first;
    pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->refs, 1);
    atomic_init(&t->closing, false);
    atomic_init(&t->last_out, 0);
    pthread_mutex_lock(&srv->reg_lock);
    sm__list_append(&srv->registry, &t->p.link);
    pthread_mutex_unlock(&srv->reg_lock);

    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        rc = pthread_attr_setstacksize(&attr, srv->o.thread_stack_size);
        /* The thread sets t->self itself (under reg_lock), for the join too. */
        pthread_t th;
        if (rc == 0) rc = pthread_create(&th, &attr, sm__tconn_main, t);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        atomic_fetch_sub_explicit(&srv->tbusy, 1, memory_order_relaxed);
        sm__tpeer_unregister(t);
        close(fd);
        sm__tpeer_unref(t);
        sm__ctr_add(&w->ctrs.closes[SM_CLOSE_REFUSED], 1);
        sm__release(srv);
        sm__log(srv, SM_LOG_WARN, "connection refused: cannot start a thread: %s",
                sm_strerror(-rc));
        return;
    }
    atomic_fetch_add_explicit(&w->npeers, 1, memory_order_relaxed);
}

static void
spawn(sm__worker *w, sm__listener *l, int fd)
{
    if (!sm__accepted_setup(w, l->ep, fd)) return;
    sm__front_start(w, fd, w->srv->eps[l->ep].ep.tls);
}

/* Join the connection threads that finished (each queued itself on
 * w->joinable with its registry link, its last touch of the server) and drop
 * their records. */
static void
join_done(sm__worker *w)
{
    sm__node done;
    sm__list_init(&done);
    pthread_mutex_lock(&w->lock);
    if (!sm__list_empty(&w->joinable)) {
        done.next = w->joinable.next;
        done.prev = w->joinable.prev;
        done.next->prev = done.prev->next = &done;
        sm__list_init(&w->joinable);
    }
    pthread_mutex_unlock(&w->lock);
    size_t n = 0;
    while (!sm__list_empty(&done)) {
        sm__tpeer *t = (sm__tpeer *)SM__CONTAINER(done.next, sm_peer, link);
        sm__list_remove(&t->p.link);
        pthread_join(t->self, NULL);
        sm__tpeer_unref(t);
        n++;
    }
    atomic_fetch_sub_explicit(&w->npeers, n, memory_order_relaxed);
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
    sm_timer_stop(&w->front_timer);
}

void
sm__tmodel_maybe_exit(sm__worker *w)
{
    if (!w->stopping || w->done || w->nfront ||
        atomic_load_explicit(&w->npeers, memory_order_relaxed))
        return;
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
    sm__front_close_all(w);
    force_conns(w->srv);
    sm__tmodel_maybe_exit(w);
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
        sm__front_stop(w);
    }
    if (atomic_load(&srv->forced)) sm__front_close_all(w);
    sm__tmodel_maybe_exit(w);
}

#define DEFAULT_THREADS_MAX 256

/* why is written on failure; the model ops table fixes the signature. */
static int
// NOLINTNEXTLINE(readability-non-const-parameter)
tmodel_configure(sm_server *srv, char *why, size_t why_len)
{
    (void)why;
    (void)why_len;
    sm_server_opts *o = &srv->o;
    if (o->threads == 0) o->threads = DEFAULT_THREADS_MAX;
    /* The thread limit is checked when a connection leaves the front
     * (sm__tconn_spawn); max_conns counts the front's connections too. */
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
    sm__front_close_all(w);
    force_conns(srv);
    for (;;) {
        join_done(w);
        if (!atomic_load_explicit(&w->npeers, memory_order_relaxed)) break;
        pthread_mutex_lock(&w->lock);
        while (sm__list_empty(&w->joinable))
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
    sm__list_init(&w->joinable);
    sm__front_init(w);
    sm_timer *const timers[] = {&w->pause, &w->deadline, &w->front_timer};
    static const sm_timer_cb cbs[] = {sm__pause_cb, deadline_cb, sm__front_timer_cb};
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
    .configure = tmodel_configure,
    .init = tmodel_init,
    .main = tmodel_main,
    .wakeup = tmodel_wakeup,
    .broadcast = tmodel_broadcast,
    .force = tmodel_force,
    .is_own_thread = tmodel_is_own_thread,
    .abandon = tmodel_abandon,
};
