/* The event-driven model: N loops, one thread each; every connection is an
 * sm_stream on one loop for its whole life. Cross-thread traffic goes
 * through each worker's inbox (handed-over fds, broadcast messages) and
 * sm_loop_wakeup; everything else a worker touches is its own. Here: the
 * model's table, accepting and handing over, the inbox and broadcasts,
 * stopping, the worker thread. The peers are server_lpeer.c's, PROXY
 * handshakes server_proxy.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"

/* ---- accepting ------------------------------------------------------------------- */

static void
take_local(sm__worker *w, int ep, int fd)
{
    sm_server *srv = w->srv;
    if (!sm__accepted_setup(w, ep, fd)) return;
    bool tls = srv->eps[ep].ep.tls;
    if (srv->o.proxy_protocol)
        sm__lproxy_start(w, fd, tls);
    else
        sm__lpeer_open(w, fd, NULL, tls);
}

static void
take_cb(sm__worker *w, sm__listener *l, int fd)
{
    sm_server *srv = w->srv;
    if (!l->dispatch) {
        take_local(w, l->ep, fd);
        return;
    }
    int k = (int)(w->rr++ % (unsigned)srv->nw);
    sm__worker *to = &srv->ws[k];
    if (to == w) {
        take_local(w, l->ep, fd);
        return;
    }
    sm__handoff h = {.fd = fd, .ep = l->ep};
    pthread_mutex_lock(&to->lock);
    int rc = to->exited ? 1 : sm__vec_push(&to->in_fds, &h, sizeof h);
    pthread_mutex_unlock(&to->lock);
    if (rc == 1) { /* its loop is gone (it failed): serve it here */
        take_local(w, l->ep, fd);
        return;
    }
    if (rc < 0) {
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    w->wake_mask |= (uint64_t)1 << k;
}

static void
wake_handed(sm__worker *w)
{
    for (int k = 0; w->wake_mask; k++) {
        if (w->wake_mask & ((uint64_t)1 << k)) sm_loop_wakeup(w->srv->ws[k].loop);
        w->wake_mask &= ~((uint64_t)1 << k);
    }
}

static void
listener_cb(sm_io *io, unsigned events)
{
    (void)events;
    sm__listener *l = io->data;
    sm__accept_batch(l->w, l, false, take_cb);
    wake_handed(l->w);
}

/* ---- the inbox and broadcasts ------------------------------------------------------- */

static void
bmsg_unref(sm__bmsg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}

static void
take_inbox(sm__worker *w)
{
    pthread_mutex_lock(&w->lock);
    sm__vec t = w->in_fds;
    w->in_fds = w->work_fds;
    w->work_fds = t;
    t = w->in_msgs;
    w->in_msgs = w->work_msgs;
    w->work_msgs = t;
    pthread_mutex_unlock(&w->lock);

    sm__handoff *hs = w->work_fds.items;
    for (size_t i = 0; i < w->work_fds.n; i++)
        take_local(w, hs[i].ep, hs[i].fd);
    w->work_fds.n = 0;
    sm__bmsg **ms = w->work_msgs.items;
    for (size_t i = 0; i < w->work_msgs.n; i++) {
        sm__lpeer_deliver(w, ms[i]->from, ms[i]->type, ms[i]->data, ms[i]->len);
        bmsg_unref(ms[i]);
    }
    w->work_msgs.n = 0;
}

static int
lmodel_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len)
{
    sm__worker *own = except ? sm__lpeer_worker(except) : NULL;
    uint64_t from = except ? sm__peer_id(except) : 0;
    if (own) sm__lpeer_deliver(own, from, type, msg, len);
    if (srv->nw == (own ? 1 : 0)) return 0;
    if (len > SIZE_MAX - sizeof(sm__bmsg)) return -EMSGSIZE;
    sm__bmsg *m = malloc(sizeof *m + len);
    if (!m) return -ENOMEM;
    atomic_init(&m->refs, 1);
    m->type = type;
    m->from = from;
    m->len = len;
    if (len) memcpy(m->data, msg, len);
    int rc = 0;
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        if (w == own) continue;
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        pthread_mutex_lock(&w->lock);
        int pr = w->exited ? 1 : sm__vec_push(&w->in_msgs, &m, sizeof(sm__bmsg *));
        pthread_mutex_unlock(&w->lock);
        if (pr != 0) {
            /* The analyzer does not model the atomic reference count: this
             * drops the reference taken above, never the last one. */
            bmsg_unref(m); // NOLINT(clang-analyzer-unix.Malloc)
            if (pr < 0) rc = pr;
            continue;
        }
        sm_loop_wakeup(w->loop);
    }
    /* Our own reference (see above: the analyzer cannot count them). */
    bmsg_unref(m); // NOLINT(clang-analyzer-unix.Malloc)
    return rc;
}

/* ---- stopping ------------------------------------------------------------------------- */

static void
drain_tick_cb(sm_timer *t)
{
    sm__lpeer_drain(t->data);
}

static void
force_all(sm__worker *w)
{
    w->forced = true;
    sm__lproxy_cancel_all(w);
    sm__lpeer_force_all(w);
}

static void
deadline_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    if (!w->forced) {
        sm__log(w->srv, SM_LOG_WARN, "drain deadline: closing %zu connections",
                atomic_load_explicit(&w->npeers, memory_order_relaxed) + w->npending);
        force_all(w);
    }
}

/* Close w's listeners, first serving what the kernel has already accepted
 * for them (serve_backlog), else leaving it to be reset. The last worker
 * to stop listening wakes the others: their exit waits for it. */
static void
stop_listening(sm__worker *w, bool serve_backlog)
{
    sm_server *srv = w->srv;
    w->stopping = true;
    sm_timer_stop(&w->pause);
    for (int i = 0; i < w->nlst; i++) {
        sm__listener *l = &w->lst[i];
        if (!sm_io_is_active(&l->io)) continue;
        if (serve_backlog) sm__accept_batch(w, l, true, take_cb);
        sm_io_close(&l->io, NULL);
        *l->slot = -1;
    }
    wake_handed(w);
    if (atomic_fetch_sub(&srv->listening, 1) == 1) sm__wake_all(srv);
}

static void
stop_timers(sm__worker *w)
{
    sm_timer_stop(&w->keepalive);
    sm_timer_stop(&w->fresh_timer);
    sm_timer_stop(&w->pend_timer);
    sm_timer_stop(&w->drain_tick);
    sm_timer_stop(&w->deadline);
    sm_timer_stop(&w->pause);
    sm_timer_stop(&w->msg_sweep);
}

/* Nothing more is posted to w: broadcasts waiting are dropped, connections
 * handed over and not yet taken are closed. */
static void
close_inbox(sm__worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->exited = true;
    sm__bmsg **ms = w->in_msgs.items;
    for (size_t i = 0; i < w->in_msgs.n; i++)
        bmsg_unref(ms[i]);
    w->in_msgs.n = 0;
    sm__handoff *hs = w->in_fds.items;
    for (size_t i = 0; i < w->in_fds.n; i++) {
        close(hs[i].fd);
        sm__count_close(w->srv, &w->ctrs, SM_CLOSE_OTHER);
    }
    w->in_fds.n = 0;
    pthread_mutex_unlock(&w->lock);
}

static void
begin_stop(sm__worker *w)
{
    sm_server *srv = w->srv;
    /* What the kernel has already accepted for us is served, not reset. */
    stop_listening(w, true);
    uint64_t tick = (uint64_t)SM__MIN(SM__MAX(srv->o.drain_quiet_ms / 2, 5), 50);
    sm_timer_start(&w->drain_tick, tick, tick);
    int64_t dl = sm__drain_deadline(srv);
    if (dl != INT64_MAX) {
        int64_t left = dl - sm_loop_now(w->loop);
        sm_timer_start(&w->deadline, left > 0 ? (uint64_t)left : 0, 0);
    }
}

void
sm__lmodel_maybe_exit(sm__worker *w)
{
    sm_server *srv = w->srv;
    if (!w->stopping || w->done || atomic_load(&srv->listening) > 0) return;
    if (atomic_load_explicit(&w->npeers, memory_order_relaxed) || w->npending) return;
    /* Worker 0 watches the signals: it stays until the others are gone, so
     * a second signal still forces their close. */
    if (w->index == 0 && srv->o.handle_signals && atomic_load(&srv->alive) > 1) return;
    pthread_mutex_lock(&w->lock);
    bool handed = w->in_fds.n > 0;
    pthread_mutex_unlock(&w->lock);
    if (handed) return;
    w->done = true;
    stop_timers(w);
    sm_loop_stop(w->loop);
}

/* The loop cannot run: end the worker's part without it. Its listeners
 * close (their backlog is reset: taking it would put streams on a loop
 * that cannot serve them), its inbox closes, its handshakes and peers
 * close at once (their on_close runs in lmodel_main's last pass, if the
 * loop still manages one). */
static void
lmodel_abandon(sm__worker *w)
{
    if (!w->stopping) stop_listening(w, false);
    close_inbox(w);
    force_all(w);
    w->done = true;
    stop_timers(w);
}

static void
lmodel_wakeup(sm_loop *loop)
{
    sm__worker *w = sm_loop_get_data(loop);
    sm_server *srv = w->srv;
    if (w->done) return;
    take_inbox(w);
    if (atomic_load(&srv->stopping) && !w->stopping) begin_stop(w);
    if (atomic_load(&srv->forced) && !w->forced) force_all(w);
    sm__lmodel_maybe_exit(w);
}

/* ---- the worker thread ------------------------------------------------------------------- */

static int
online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return n > SM__MAX_LOOPS ? SM__MAX_LOOPS : (int)n;
}

static int
lmodel_configure(sm_server *srv, char *why, size_t why_len)
{
    sm_server_opts *o = &srv->o;
    if (o->threads == 0) o->threads = online_cpus();
    if (o->threads > SM__MAX_LOOPS)
        return sm__why(why, why_len, -EINVAL, "at most %d loops", SM__MAX_LOOPS);
    srv->nw = o->threads;
    /* REUSEPORT: every loop has a socket of its own on each TCP endpoint. */
    srv->nfd_sets = o->accept == SM_ACCEPT_REUSEPORT ? o->threads : 1;
    return 0;
}

static void
lmodel_force(sm_server *srv)
{
    (void)srv; /* each worker closes its connections as it wakes (lmodel_wakeup) */
}

static bool
lmodel_is_own_thread(sm_server *srv)
{
    (void)srv; /* the workers are the only threads */
    return false;
}

/* why is written on failure; the model ops table fixes the signature. */
static int
lmodel_init(sm_server *srv, char *why, size_t why_len) // NOLINT(readability-non-const-parameter)
{
    (void)why;
    (void)why_len;
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        sm__lpeer_init(w);
        sm_timer *const timers[] = {&w->pause,      &w->fresh_timer, &w->pend_timer,
                                    &w->drain_tick, &w->deadline,    &w->msg_sweep};
        static const sm_timer_cb cbs[] = {sm__pause_cb,  sm__lpeer_fresh_cb, sm__lproxy_timer_cb,
                                          drain_tick_cb, deadline_cb,        sm__lpeer_sweep_cb};
        sm__worker_init(w, timers, cbs, sizeof cbs / sizeof cbs[0]);
    }
    return 0;
}

static void *
lmodel_main(void *arg)
{
    sm__worker *w = arg;
    sm_server *srv = w->srv;
    char who[32];
    snprintf(who, sizeof who, "loop %d", w->index);
    sm__worker_run(w, listener_cb, w->index == 0 && srv->o.handle_signals, who);
    close_inbox(w);
    /* The last on_close calls, also after a failure (the real run here,
     * whatever srv->run is: a failed loop may still manage one pass). */
    int rc = sm_loop_run(w->loop, SM_RUN_NOWAIT);
    if (rc < 0)
        sm__log(srv, SM_LOG_ERROR, "%s: %s: connections left without their on_close", who,
                sm_strerror(rc));
    if (atomic_fetch_sub(&srv->alive, 1) == 2 && srv->o.handle_signals)
        sm_loop_wakeup(srv->ws[0].loop);
    return NULL;
}

const sm__model sm__lmodel = {
    .configure = lmodel_configure,
    .init = lmodel_init,
    .main = lmodel_main,
    .wakeup = lmodel_wakeup,
    .broadcast = lmodel_broadcast,
    .force = lmodel_force,
    .is_own_thread = lmodel_is_own_thread,
    .abandon = lmodel_abandon,
};
