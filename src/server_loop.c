/* The event-driven model: N loops, one thread each; every connection is an
 * sm_stream on one loop for its whole life. Cross-thread traffic goes
 * through each worker's inbox (handed-over fds, broadcast messages) and
 * sm_loop_wakeup; everything else a worker touches is its own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"
#include "stream_owner.h"

static const char forced_detail[] = "closed by the server's stop (drain deadline or forced stop)";
static const char failed_detail[] = "closed: the server's loop failed (see its log)";

static void maybe_exit(sm__worker *w);

/* ---- peers ------------------------------------------------------------------ */

/* A loop-model peer is its tag (and, with SM__P_PX, a PROXY pointer) in the
 * extra area behind its stream; see server_internal.h. */
typedef struct lpeer_px {
    uint64_t tag;
    sm__proxied *px;
} lpeer_px;

/* An idle connection is one 128-byte malloc chunk (glibc: a request of n
 * bytes takes n + 8, rounded up to 16): the stream and the 8-byte tag. */
_Static_assert(SM__STREAM_SIZE + sizeof(uint64_t) <= 120,
               "a server connection no longer fits one 128-byte malloc chunk");

static uint64_t *
tag_of(const sm_peer *p)
{
    return (uint64_t *)(void *)(uintptr_t)p;
}

static sm_peer *
peer_of(sm_stream *s)
{
    return sm__stream_extra(s);
}

static sm_stream *
stream_of(const sm_peer *p)
{
    return sm__stream_of_extra(p);
}

static sm__worker *
worker_of(const sm_stream *s)
{
    return SM__CONTAINER(sm__stream_owner(s), sm__worker, sopts);
}

static bool
has(const sm_peer *p, unsigned flags)
{
    return (*tag_of(p) & flags) != 0;
}

static void
set(sm_peer *p, unsigned flags)
{
    *tag_of(p) |= flags;
}

static void
clear(sm_peer *p, unsigned flags)
{
    *tag_of(p) &= ~(uint64_t)flags;
}

static sm__proxied *
px_of(const sm_peer *p)
{
    return has(p, SM__P_PX) ? ((const lpeer_px *)(const void *)p)->px : NULL;
}

/* The worker's peers are the streams its server created on its loop
 * (stream_owner.h), found through the loop with no list through them. */
static sm_peer *
peer_at(sm__worker *w, int fd)
{
    sm_stream *s = sm__stream_owned_at(w->loop, fd, &w->sopts);
    return s ? peer_of(s) : NULL;
}

static sm_peer *
peer_next(sm__worker *w, int *fd)
{
    sm_stream *s = sm__stream_owned_next(w->loop, &w->sopts, fd);
    return s ? peer_of(s) : NULL;
}

/* ---- first-message deadlines ---------------------------------------------------- */

static void
fresh_arm(sm__worker *w)
{
    sm__fresh_q *q = &w->fresh;
    if (!q->n || sm_timer_is_active(&w->fresh_timer)) return;
    int64_t left = q->items[q->head].due - sm_loop_now(w->loop);
    sm_timer_start(&w->fresh_timer, left > 0 ? (uint64_t)left : 0, 0);
}

/* Room for one more entry; -ENOMEM. */
static int
fresh_reserve(sm__fresh_q *q)
{
    if (q->n < q->cap) return 0;
    size_t cap = q->cap ? q->cap * 2 : 64;
    sm__fresh *items = malloc(cap * sizeof *items);
    if (!items) return -ENOMEM;
    for (size_t i = 0; i < q->n; i++)
        items[i] = q->items[(q->head + i) & (q->cap - 1)];
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = cap;
    return 0;
}

static void
fresh_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    sm__fresh_q *q = &w->fresh;
    int64_t now = sm_loop_now(w->loop);
    while (q->n && q->items[q->head].due <= now) {
        sm__fresh e = q->items[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        sm_peer *p = peer_at(w, e.fd);
        if (!p || sm__peer_id(p) != e.id || !has(p, SM__P_FRESH) || has(p, SM__P_CLOSING)) continue;
        clear(p, SM__P_FRESH);
        set(p, SM__P_TIMEDOUT | SM__P_CLOSING);
        sm_stream_close(stream_of(p));
    }
    /* A burst of connections leaves no big ring behind. */
    if (!q->n) {
        free(q->items);
        *q = (sm__fresh_q){0};
    }
    fresh_arm(w);
}

/* ---- stream callbacks ------------------------------------------------------------ */

static void
on_stream_message(sm_stream *s, const sm_frame_msg *m)
{
    sm_peer *p = peer_of(s);
    sm__worker *w = worker_of(s);
    clear(p, SM__P_FRESH);
    sm__ctr_add_own(&w->ctrs.msgs_in, 1);
    sm__ctr_add_own(&w->ctrs.bytes_in, m->len);
    w->srv->o.on_message(p, m);
}

static void
on_stream_close(sm_stream *s, int reason)
{
    sm_peer *p = peer_of(s);
    sm__worker *w = worker_of(s);
    sm_server *srv = w->srv;
    if (reason == SM_ERR_CLOSED && has(p, SM__P_TIMEDOUT)) reason = -ETIMEDOUT;
    if (reason == SM_ERR_CLOSED && has(p, SM__P_FORCED)) reason = -ECANCELED;
    /* A first-message entry for it stays queued: its fd is no longer this
     * stream's, and its id is no one else's. */
    clear(p, SM__P_FRESH);
    atomic_fetch_sub_explicit(&w->npeers, 1, memory_order_relaxed);
    sm_close_kind kind = sm_server_close_kind(reason);
    sm__count_close(srv, &w->ctrs, kind);
    set(p, SM__P_CLOSING);
    sm__log_close(srv, p, kind, reason);
    if (srv->o.on_close) srv->o.on_close(p, reason);
    free(px_of(p));
    /* The peer goes with the stream's memory when this returns. */
    maybe_exit(w);
}

/* A connection is ready to serve (its PROXY header read, if any). Takes fd
 * and px; the connection's slot is released if this fails. */
static void
peer_open(sm__worker *w, int fd, sm__proxied *px)
{
    sm_server *srv = w->srv;
    bool fresh = srv->o.first_message_timeout_ms > 0;
    /* The peer: 8 bytes behind the stream (16 with a PROXY pointer). */
    size_t extra = px ? sizeof(lpeer_px) : sizeof(uint64_t);
    sm_stream *s = NULL;
    int rc = fresh ? fresh_reserve(&w->fresh) : 0;
    if (rc < 0)
        close(fd);
    else
        rc = sm__stream_new_take_extra(&s, w->loop, fd, &w->sopts, NULL, extra);
    if (rc < 0) {
        free(px);
        sm__log(srv, SM_LOG_ERROR, "a new connection: %s", sm_strerror(rc));
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        maybe_exit(w);
        return;
    }
    sm_peer *p = peer_of(s);
    uint64_t id = sm__next_id(srv);
    *tag_of(p) = id << SM__P_ID_SHIFT | SM__P_LOOP;
    if (px) {
        ((lpeer_px *)(void *)p)->px = px;
        set(p, SM__P_PX);
    }
    atomic_fetch_add_explicit(&w->npeers, 1, memory_order_relaxed);
    if (fresh) {
        sm__fresh_q *q = &w->fresh;
        q->items[(q->head + q->n) & (q->cap - 1)] = (sm__fresh){
            .due = sm_loop_now(w->loop) + srv->o.first_message_timeout_ms,
            .id = id,
            .fd = fd,
        };
        q->n++;
        set(p, SM__P_FRESH);
        fresh_arm(w);
    }
    sm__ctr_add(&w->ctrs.opened, 1);
    sm__log_open(srv, p);
    if (srv->o.on_open) srv->o.on_open(p);
}

/* ---- PROXY headers ---------------------------------------------------------------- */

static void
pend_arm(sm__worker *w)
{
    if (sm__list_empty(&w->pending) || sm_timer_is_active(&w->pend_timer)) return;
    sm__pending *pd = SM__CONTAINER(w->pending.next, sm__pending, link);
    int64_t left = pd->due - sm_loop_now(w->loop);
    sm_timer_start(&w->pend_timer, left > 0 ? (uint64_t)left : 0, 0);
}

/* Forget a handshake; close its fd unless it goes on as a peer. */
static int
pend_end(sm__pending *pd, bool close_fd)
{
    sm__worker *w = pd->w;
    int fd = pd->io.fd;
    sm_io_stop(&pd->io);
    if (close_fd) close(fd);
    sm__list_remove(&pd->link);
    w->npending--;
    sm__proxy_rd_free(&pd->rd);
    free(pd);
    return fd;
}

static void
pend_fail(sm__pending *pd, int err, const char *why)
{
    sm__worker *w = pd->w;
    sm__log_proxy_fail(w->srv, pd->io.fd, err, why);
    pend_end(pd, true);
    sm__count_close(w->srv, &w->ctrs, sm_server_close_kind(err));
}

static void
pend_io_cb(sm_io *io, unsigned events)
{
    (void)events;
    sm__pending *pd = io->data;
    sm__worker *w = pd->w;
    sm_proxy_info info;
    char why[160] = "";
    ssize_t h = sm__proxy_read(io->fd, &pd->rd, &info, why, sizeof why);
    if (h == -EAGAIN) return;
    int err = (int)h;
    sm__proxied *px = h > 0 ? sm__proxied_new(&info, &err) : NULL;
    if (err < 0) {
        pend_fail(pd, err, why);
    } else {
        int fd = pend_end(pd, false);
        peer_open(w, fd, px);
    }
    maybe_exit(w);
}

static void
pend_timer_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    int64_t now = sm_loop_now(w->loop);
    while (!sm__list_empty(&w->pending)) {
        sm__pending *pd = SM__CONTAINER(w->pending.next, sm__pending, link);
        if (pd->due > now) break;
        pend_fail(pd, -ETIMEDOUT, "no complete header in time");
    }
    pend_arm(w);
    maybe_exit(w);
}

static void
pend_new(sm__worker *w, int fd)
{
    sm_server *srv = w->srv;
    sm__pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    pd->w = w;
    sm__proxy_rd_init(&pd->rd);
    int ms =
        srv->o.first_message_timeout_ms ? srv->o.first_message_timeout_ms : SM__PROXY_DEFAULT_MS;
    pd->due = sm_loop_now(w->loop) + ms;
    sm_io_init(w->loop, &pd->io, fd, pend_io_cb);
    pd->io.data = pd;
    int rc = sm_io_start(&pd->io, SM_READ);
    if (rc < 0) {
        close(fd);
        free(pd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    sm__list_append(&w->pending, &pd->link);
    w->npending++;
    pend_arm(w);
}

/* ---- accepting ------------------------------------------------------------------- */

static void
take_local(sm__worker *w, int ep, int fd)
{
    sm_server *srv = w->srv;
    if (!sm__accepted_setup(w, ep, fd)) return;
    if (srv->o.proxy_protocol)
        pend_new(w, fd);
    else
        peer_open(w, fd, NULL);
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

static int
send_one(sm__worker *w, sm_stream *s, int type, const void *msg, size_t len)
{
    int rc = type >= 0 ? sm_stream_send_type(s, type, msg, len) : sm_stream_send(s, msg, len);
    if (rc >= 0) {
        sm__ctr_add_own(&w->ctrs.msgs_out, 1);
        sm__ctr_add_own(&w->ctrs.bytes_out, len);
    }
    return rc;
}

/* A broadcast looks at every fd number the loop watches (about as many as
 * it has peers). */
static void
deliver_local(sm__worker *w, uint64_t from, int type, const void *msg, size_t len)
{
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (sm__peer_id(p) == from || has(p, SM__P_SHUT | SM__P_CLOSING)) continue;
        send_one(w, stream_of(p), type, msg, len);
    }
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
        deliver_local(w, ms[i]->from, ms[i]->type, ms[i]->data, ms[i]->len);
        bmsg_unref(ms[i]);
    }
    w->work_msgs.n = 0;
}

static int
lmodel_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len)
{
    sm__worker *own = except ? worker_of(stream_of(except)) : NULL;
    uint64_t from = except ? sm__peer_id(except) : 0;
    if (own) deliver_local(own, from, type, msg, len);
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
        int pr = w->exited ? 1 : sm__vec_push(&w->in_msgs, &m, sizeof m);
        pthread_mutex_unlock(&w->lock);
        if (pr != 0) {
            bmsg_unref(m);
            if (pr < 0) rc = pr;
            continue;
        }
        sm_loop_wakeup(w->loop);
    }
    bmsg_unref(m);
    return rc;
}

/* ---- peer calls (on the peer's loop thread) --------------------------------------------- */

static int
lpeer_send(sm_peer *p, int type, const struct iovec *iov, int iovcnt)
{
    sm_stream *s = stream_of(p);
    sm__worker *w = worker_of(s);
    if (type >= 0) return send_one(w, s, type, iov[0].iov_base, iov[0].iov_len);
    int rc = iovcnt == 1 ? sm_stream_send(s, iov[0].iov_base, iov[0].iov_len)
                         : sm_stream_sendv(s, iov, iovcnt);
    if (rc >= 0) {
        size_t len = 0;
        for (int i = 0; i < iovcnt; i++)
            len += iov[i].iov_len;
        sm__ctr_add_own(&w->ctrs.msgs_out, 1);
        sm__ctr_add_own(&w->ctrs.bytes_out, len);
    }
    return rc;
}

static int
lpeer_send_frame(sm_peer *p, const sm_frame_msg *msg)
{
    sm_stream *s = stream_of(p);
    sm__worker *w = worker_of(s);
    int rc = sm_stream_send_frame(s, msg);
    if (rc >= 0) {
        sm__ctr_add_own(&w->ctrs.msgs_out, 1);
        sm__ctr_add_own(&w->ctrs.bytes_out, msg->len);
    }
    return rc;
}

static int
lpeer_shutdown(sm_peer *p)
{
    int rc = sm_stream_shutdown(stream_of(p));
    if (rc == 0) set(p, SM__P_SHUT);
    return rc;
}

static int
lpeer_close(sm_peer *p)
{
    if (has(p, SM__P_CLOSING)) return SM_ERR_CLOSED;
    set(p, SM__P_CLOSING);
    return sm_stream_close(stream_of(p));
}

static int
lpeer_addr(const sm_peer *p, sm_addr *out, bool peer)
{
    /* -1 once closing: the stream has closed the socket, whose number may
     * already be another connection's. */
    return sm__peer_addr(px_of(p), sm_stream_fd(stream_of(p)), out, peer);
}

static void *
lpeer_get_data(const sm_peer *p)
{
    return sm_stream_get_data(stream_of(p));
}

static void
lpeer_set_data(sm_peer *p, void *data)
{
    sm_stream_set_data(stream_of(p), data);
}

static sm_server *
lpeer_server(const sm_peer *p)
{
    return worker_of(stream_of(p))->srv;
}

static const char *
lpeer_detail(const sm_peer *p)
{
    if (has(p, SM__P_TIMEDOUT)) return lpeer_server(p)->fresh_detail;
    if (has(p, SM__P_FORCED))
        return worker_of(stream_of(p))->failed ? failed_detail : forced_detail;
    return sm_stream_error_detail(stream_of(p));
}

const sm__peer_ops sm__lpeer_ops = {
    .send = lpeer_send,
    .send_frame = lpeer_send_frame,
    .shutdown = lpeer_shutdown,
    .close = lpeer_close,
    .addr = lpeer_addr,
    .get_data = lpeer_get_data,
    .set_data = lpeer_set_data,
    .server = lpeer_server,
    .detail = lpeer_detail,
};

/* ---- stopping ------------------------------------------------------------------------- */

static void
drain_tick_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    uint32_t q = (uint32_t)w->srv->o.drain_quiet_ms;
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (has(p, SM__P_SHUT | SM__P_CLOSING) || !sm__stream_quiet(stream_of(p), q)) continue;
        set(p, SM__P_SHUT);
        sm_stream_shutdown(stream_of(p));
    }
}

static void
force_all(sm__worker *w)
{
    w->forced = true;
    while (!sm__list_empty(&w->pending))
        pend_fail(SM__CONTAINER(w->pending.next, sm__pending, link), -ECANCELED,
                  "closed by the server's stop");
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (has(p, SM__P_CLOSING)) continue;
        set(p, SM__P_CLOSING | SM__P_FORCED);
        sm_stream_close(stream_of(p));
    }
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

static void
maybe_exit(sm__worker *w)
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
    maybe_exit(w);
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

static int
lmodel_init(sm_server *srv, char *why, size_t why_len)
{
    (void)why;
    (void)why_len;
    const sm_server_opts *o = &srv->o;
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        w->sopts = (sm_stream_opts){
            .spec = o->spec,
            .on_message = on_stream_message,
            .on_close = on_stream_close,
            .high_water = o->high_water,
            .max_queued = o->max_queued,
            .idle_timeout_ms = o->idle_timeout_ms,
            .write_timeout_ms = o->write_timeout_ms == SM_FOREVER ? 0 : o->write_timeout_ms,
            .heartbeat_ms = o->heartbeat_ms,
            .heartbeat_timeout_ms = o->heartbeat_timeout_ms,
            .ping = o->ping,
            .ping_len = o->ping_len,
            .ping_type = o->ping_type,
            .swallow_pings = o->swallow_pings,
        };
        sm_timer *const timers[] = {&w->pause, &w->fresh_timer, &w->pend_timer, &w->drain_tick,
                                    &w->deadline};
        static const sm_timer_cb cbs[] = {sm__pause_cb, fresh_cb, pend_timer_cb, drain_tick_cb,
                                          deadline_cb};
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
    .name = "loop",
    .configure = lmodel_configure,
    .init = lmodel_init,
    .main = lmodel_main,
    .wakeup = lmodel_wakeup,
    .broadcast = lmodel_broadcast,
    .force = lmodel_force,
    .is_own_thread = lmodel_is_own_thread,
    .abandon = lmodel_abandon,
};
