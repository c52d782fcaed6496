/* The loop model's peers. A peer is the stream of its connection and an
 * 8-byte tag behind it (a PROXY address pointer too, when it has one), in
 * the stream's allocation (stream_owner.h); a worker's peers are the
 * streams made with its stream options, found through its loop. Here:
 * opening a peer, its stream callbacks, its first-message deadline, the
 * sm_peer_* calls on it (on its loop's thread), and what the model does to
 * all of a worker's peers at once (deliver a broadcast, drain, force). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"
#include "stream_owner.h"

static const char forced_detail[] = "closed by the server's stop (drain deadline or forced stop)";
static const char failed_detail[] = "closed: the server's loop failed (see its log)";

/* ---- the representation ----------------------------------------------------------- */

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
    return (uint64_t *)(void *)p;
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

sm__worker *
sm__lpeer_worker(const sm_peer *p)
{
    return worker_of(stream_of(p));
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

/* Drop the entries at the head of the queue whose peer is no longer waiting
 * for its first message (it sent one, or closed), and free an emptied ring.
 * Run when a peer sends its first message: connections usually speak in
 * the order they came, so the queue holds only those still silent rather
 * than every connection of the last deadline period (24 bytes each, held
 * until the deadline passed). The timer stays armed for the old head: it
 * finds nothing due and re-arms for the new one. */
static void
fresh_trim(sm__worker *w)
{
    sm__fresh_q *q = &w->fresh;
    while (q->n) {
        const sm__fresh *e = &q->items[q->head];
        sm_peer *p = peer_at(w, e->fd);
        if (p && sm__peer_id(p) == e->id && has(p, SM__P_FRESH) && !has(p, SM__P_CLOSING)) return;
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
    }
    free(q->items);
    *q = (sm__fresh_q){0};
}

void
sm__lpeer_fresh_cb(sm_timer *t)
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
        clear(p, SM__P_FRESH | SM__P_MID);
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

/* ---- opening, and the stream callbacks --------------------------------------------- */

/* No per-peer timestamp: a peer mid-message at a sweep is marked (MID),
 * each whole message clears the mark (with FRESH, in the same store), and
 * a peer still marked and mid-message at the next sweep has spent at least
 * one period, and at most two, on one message. */
void
sm__lpeer_sweep_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        /* The first message has its own deadline. */
        if (has(p, SM__P_FRESH | SM__P_CLOSING)) continue;
        sm_stream *s = stream_of(p);
        if (!sm__stream_mid_message(s)) {
            clear(p, SM__P_MID);
        } else if (!has(p, SM__P_MID)) {
            set(p, SM__P_MID);
        } else {
            set(p, SM__P_TIMEDOUT | SM__P_CLOSING);
            sm_stream_close(s);
        }
    }
}

/* A whole message from a peer that is marked: its first (FRESH), or the
 * first since a sweep found it mid-message (MID). Out of line and cold: a
 * peer is marked for one message per connection or per sweep period, and
 * kept inline its queue walk made the compiler save six registers on
 * every message's entry (on_stream_message's path: 35 -> 22 instructions). */
static __attribute__((noinline, cold)) void
whole_marked(sm__worker *w, sm_peer *p)
{
    bool first = has(p, SM__P_FRESH);
    clear(p, SM__P_FRESH | SM__P_MID);
    if (first) fresh_trim(w);
}

/* Per message only a load and a test of the tag: a peer's marks are
 * cleared (a store) only when set. */
static inline void
whole_message(sm__worker *w, sm_peer *p)
{
    if (__builtin_expect(has(p, SM__P_FRESH | SM__P_MID), 0)) whole_marked(w, p);
}

static void
on_stream_message(sm_stream *s, const sm_frame_msg *m)
{
    sm_peer *p = peer_of(s);
    sm__worker *w = worker_of(s);
    whole_message(w, p);
    sm__ctr_add_own(&w->ctrs.msgs_in, 1);
    sm__ctr_add_own(&w->ctrs.bytes_in, m->len);
    w->srv->o.on_message(p, m);
}

/* on_stream_message with sm_server_handler_echo folded in (the worker's
 * streams get it when that is the server's handler): what the handler's
 * sm_peer_send_frame and lpeer_send_frame do, straight to
 * sm_stream_send_frame's fast path, and a queued reply counted once, for
 * a message in and one out (ctrs.echoed). The same counts, callbacks and
 * replies as the two-step path. */
static void
on_stream_echo(sm_stream *s, const sm_frame_msg *m)
{
    sm_peer *p = peer_of(s);
    sm__worker *w = worker_of(s);
    whole_message(w, p);
    /* An empty eof-framed message has nothing to echo (sm_peer_send_frame). */
    if (m->frame_len && sm_stream_send_frame(s, m) >= 0) {
        sm__ctr_add_own(&w->ctrs.msgs_echoed, 1);
        sm__ctr_add_own(&w->ctrs.bytes_echoed, m->len);
        return;
    }
    sm__ctr_add_own(&w->ctrs.msgs_in, 1);
    sm__ctr_add_own(&w->ctrs.bytes_in, m->len);
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
    const char *d = sm_stream_error_detail(s);
    bool in_handshake = !strncmp(d, "TLS handshake", 13);
    if (kind == SM_CLOSE_TLS || in_handshake)
        sm__log_tls_fail(srv, sm__peer_id(p), -1, reason, d, in_handshake);
    sm__log_close(srv, p, kind, reason);
    if (srv->o.on_close) srv->o.on_close(p, reason);
    free(px_of(p));
    /* The peer goes with the stream's memory when this returns. */
    sm__lmodel_maybe_exit(w);
}

void
sm__lpeer_open(sm__worker *w, int fd, sm__proxied *px, bool tls)
{
    sm_server *srv = w->srv;
    bool fresh = srv->o.first_message_timeout_ms > 0;
    /* The peer: 8 bytes behind the stream (16 with a PROXY pointer). */
    size_t extra = px ? sizeof(lpeer_px) : sizeof(uint64_t);
    sm_stream *s = NULL;
    int rc = fresh ? fresh_reserve(&w->fresh) : 0;
    if (rc < 0)
        close(fd);
    else if (!tls)
        rc = sm__stream_new_take_extra(&s, w->loop, fd, &w->sopts, NULL, extra);
    else
        rc = sm__stream_new_tls_extra(&s, w->loop, fd, &w->sopts, NULL, extra, srv->o.tls, NULL,
                                      NULL, 0);
    if (rc < 0) {
        free(px);
        sm__log(srv, SM_LOG_ERROR, "a new connection: %s", sm_strerror(rc));
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        sm__lmodel_maybe_exit(w);
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
    /* The message-deadline sweep runs once the worker has peers (a loop
     * with an active timer could not be freed unstarted). */
    uint64_t every = (uint64_t)srv->o.message_timeout_ms;
    if (every && !sm_timer_is_active(&w->msg_sweep)) sm_timer_start(&w->msg_sweep, every, every);
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

void
sm__lpeer_init(sm__worker *w)
{
    const sm_server_opts *o = &w->srv->o;
    w->sopts = (sm_stream_opts){
        .spec = o->spec,
        .send_spec = o->send_spec,
        .on_message = o->on_message == sm_server_handler_echo ? on_stream_echo : on_stream_message,
        .on_close = on_stream_close,
        .high_water = o->high_water,
        .max_queued = o->max_queued,
        /* Replies come from reads: a client that does not read them is not
         * read either (TCP slows it down), as high_water promises. */
        .read_backpressure = SM_READ_BP_PAUSE,
        .idle_timeout_ms = o->idle_timeout_ms,
        .write_timeout_ms = o->write_timeout_ms == SM_FOREVER ? 0 : o->write_timeout_ms,
        .heartbeat_ms = o->heartbeat_ms,
        .heartbeat_timeout_ms = o->heartbeat_timeout_ms,
        .ping = o->ping,
        .ping_len = o->ping_len,
        .ping_type = o->ping_type,
        .swallow_pings = o->swallow_pings,
        .max_fds = o->max_fds,
        .pass_cred = o->msg_cred,
    };
}

/* ---- every peer of a worker ------------------------------------------------------------ */

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
void
sm__lpeer_deliver(sm__worker *w, uint64_t from, int type, const void *msg, size_t len)
{
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (sm__peer_id(p) == from || has(p, SM__P_SHUT | SM__P_CLOSING)) continue;
        send_one(w, stream_of(p), type, msg, len);
    }
}

void
sm__lpeer_drain(sm__worker *w)
{
    uint32_t q = (uint32_t)w->srv->o.drain_quiet_ms;
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (has(p, SM__P_SHUT | SM__P_CLOSING) || !sm__stream_quiet(stream_of(p), q)) continue;
        set(p, SM__P_SHUT);
        sm_stream_shutdown(stream_of(p));
    }
}

void
sm__lpeer_force_all(sm__worker *w)
{
    sm_peer *p;
    for (int fd = 0; (p = peer_next(w, &fd)) != NULL; fd++) {
        if (has(p, SM__P_CLOSING)) continue;
        set(p, SM__P_CLOSING | SM__P_FORCED);
        sm_stream_close(stream_of(p));
    }
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
lpeer_send_hdr(sm_peer *p, const void *hdr, size_t hdr_len, const void *msg, size_t len)
{
    sm_stream *s = stream_of(p);
    sm__worker *w = worker_of(s);
    int rc = sm_stream_send_hdr(s, hdr, hdr_len, msg, len);
    if (rc >= 0) {
        sm__ctr_add_own(&w->ctrs.msgs_out, 1);
        sm__ctr_add_own(&w->ctrs.bytes_out, len);
    }
    return rc;
}

static int
lpeer_set_spec(sm_peer *p, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    if (has(p, SM__P_CLOSING)) return SM_ERR_CLOSED;
    return sm_stream_set_spec(stream_of(p), rx, tx);
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
    if (has(p, SM__P_TIMEDOUT))
        return has(p, SM__P_MID) ? lpeer_server(p)->msg_detail : lpeer_server(p)->fresh_detail;
    if (has(p, SM__P_FORCED))
        return worker_of(stream_of(p))->failed ? failed_detail : forced_detail;
    return sm_stream_error_detail(stream_of(p));
}

const sm__peer_ops sm__lpeer_ops = {
    .send = lpeer_send,
    .send_frame = lpeer_send_frame,
    .send_hdr = lpeer_send_hdr,
    .set_spec = lpeer_set_spec,
    .shutdown = lpeer_shutdown,
    .close = lpeer_close,
    .addr = lpeer_addr,
    .get_data = lpeer_get_data,
    .set_data = lpeer_set_data,
    .server = lpeer_server,
    .detail = lpeer_detail,
    .send_fds = sm__lpeer_send_fds,
    .take_fds = sm__lpeer_take_fds,
    .cred = sm__lpeer_cred,
    .msg_cred = sm__lpeer_msg_cred,
    .detach = sm__lpeer_detach,
};
