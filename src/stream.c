/* Framed streams: the loop's shared stream state, creating, connecting,
 * losing and closing streams, and the state transitions of a stream's flag
 * word (the only code that writes it). Reading lives in stream_read.c,
 * writing in stream_write.c, timeouts in stream_timeout.c, dialing in
 * stream_dial.c, the socket under it behind transport.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frame_internal.h"
#include "internal.h"
#include "stream_fds.h"
#include "stream_internal.h"
#include "transport.h"

#define DETAIL_MAX 256

/* ---- the loop's shared state ----------------------------------------------- */

static void
loop_state_free(void *p)
{
    sm__stream_loop *sl = p;
    free(sl->rbuf);
    while (sl->spare_wq) {
        sm__wq *q = sl->spare_wq;
        sl->spare_wq = (sm__wq *)(void *)q->link.next;
        free(q);
    }
    while (sl->spare_chunks) {
        sm__wnode *n = sl->spare_chunks;
        sl->spare_chunks = n->next;
        free(n);
    }
    while (sl->spare_blocks) {
        sm__wnode *n = sl->spare_blocks;
        sl->spare_blocks = n->next;
        free(n);
    }
    while (sl->pin_free) {
        sm__wref *r = sl->pin_free;
        sl->pin_free = (sm__wref *)(void *)r->n.next;
        free(r);
    }
#ifdef SM_HAVE_URING
    sm__tpu_free(sl->tpu);
#endif
    free(sl->tls); /* its entries went with their streams */
    free(sl);
}

sm__stream_loop *
sm__stream_loop_get(sm_loop *loop)
{
    if (loop->streams) return loop->streams;
    sm__stream_loop *sl = calloc(1, sizeof *sl);
    if (!sl) return NULL;
    sl->loop = loop;
    sm_defer_init(loop, &sl->flush, sm__stream_flush_all);
    sl->flush.data = sl;
    sl->flush_list.next = sl->flush_list.prev = &sl->flush_list;
    sm_timer_init(loop, &sl->timer, sm__wheel_cb);
    sl->timer.data = sl;
    sl->timer_tick = INT64_MAX;
    sl->rng = ((uint64_t)sm__now_ns() ^ (uint64_t)(uintptr_t)sl) | 1;
    for (int i = SM__REFS; i-- > 0;) {
        sl->refs[i].n.next = (sm__wnode *)(void *)sl->ref_free; /* n is first */
        sl->ref_free = &sl->refs[i];
    }
    loop->streams = sl;
    loop->streams_free = loop_state_free;
    return sl;
}

/* ---- options ------------------------------------------------------------------ */

static bool
bad_timeout(int ms)
{
    return ms < 0 || ms > SM_STREAM_TIMEOUT_MAX_MS;
}

int
sm__stream_opts_check(const sm_stream_opts *o)
{
    if (!o || !o->spec || !o->on_message) return -EINVAL;
    int rc = sm_frame_spec_check(o->spec, NULL, 0);
    if (rc < 0 || (o->send_spec && (rc = sm_frame_spec_check(o->send_spec, NULL, 0)) < 0))
        return rc;
    if (bad_timeout(o->read_timeout_ms) || bad_timeout(o->write_timeout_ms) ||
        bad_timeout(o->idle_timeout_ms) || bad_timeout(o->heartbeat_ms) ||
        bad_timeout(o->heartbeat_timeout_ms) || bad_timeout(o->reconnect_min_ms) ||
        bad_timeout(o->reconnect_max_ms) || o->reconnect_max_attempts < 0 ||
        (o->connect_timeout_ms != SM_FOREVER && bad_timeout(o->connect_timeout_ms)))
        return -EINVAL;
    if (o->unsent != SM_UNSENT_KEEP && o->unsent != SM_UNSENT_DROP) return -EINVAL;
    if (o->read_backpressure != SM_READ_BP_NONE && o->read_backpressure != SM_READ_BP_PAUSE)
        return -EINVAL;
    if (sm__low(o) > sm__high(o) || sm__cap(o) < sm__high(o)) return -EINVAL;
    if (o->max_fds < 0 || o->max_fds > SM_FDS_MAX || (o->pass_cred && !o->max_fds)) return -EINVAL;
    if (o->ping_len && !o->ping) return -EINVAL;
    /* Pings are sent with the send spec and recognised with the other. */
    if ((o->heartbeat_ms || o->swallow_pings) &&
        sm__ping_unframable(o->spec, o->ping, o->ping_len, o->ping_type, false))
        return SM_ERR_SPEC;
    if (o->heartbeat_ms &&
        sm__ping_unframable(sm__opts_tx_spec(o), o->ping, o->ping_len, o->ping_type, true))
        return SM_ERR_SPEC;
    return 0;
}

/* ---- the flag word: every write goes through here ------------------------------ */

/* Any change of a stream's state also ends the zero-copy fast path of
 * sm_stream_send_frame (sl->zc_next) and its copying one (sl->cp_s): they
 * are valid only while nothing but them has touched the stream since they
 * were set up. */
static void
flags_change(sm_stream *s, unsigned set, unsigned clear)
{
    s->flags = (uint16_t)((s->flags & ~clear) | set);
    sm__fast_end(sm__sl(s));
}

/* Above high_water (on) or back at low_water (off): on_drain is owed while
 * on. Reading pauses with it only where the options ask (a server's reads
 * produce writes: a peer that does not read them should not feed it more);
 * a client that paused too would wait for a peer waiting for it. */
void
sm__stream_set_above(sm_stream *s, bool on)
{
    if (!on == !(s->flags & SM__S_ABOVE)) return;
    unsigned bits = SM__S_ABOVE;
    if (s->opts->read_backpressure == SM_READ_BP_PAUSE) bits |= SM__S_PAUSED;
    flags_change(s, on ? bits : 0, on ? 0 : bits);
    if (bits & SM__S_PAUSED) sm__stream_update_io(s);
}

void
sm__stream_set_blocked(sm_stream *s, bool on)
{
    if (!on == !(s->flags & SM__S_BLOCKED)) return;
    flags_change(s, on ? SM__S_BLOCKED : 0, on ? 0 : SM__S_BLOCKED);
    if (on) s->wq->progress = sm__now32(s);
    sm__stream_update_io(s);
    if (s->opts->write_timeout_ms) sm__timeouts_arm(s);
}

void
sm__stream_set_eof(sm_stream *s)
{
    flags_change(s, SM__S_EOF, 0);
    sm__stream_update_io(s);
}

void
sm__stream_shut_req(sm_stream *s, bool user)
{
    flags_change(s, SM__S_SHUT_REQ | (user ? SM__S_USER_END : 0), 0);
}

void
sm__stream_set_wr_done(sm_stream *s)
{
    flags_change(s, SM__S_WR_DONE, 0);
}

void
sm__stream_set_dialed(sm_stream *s, bool on)
{
    flags_change(s, on ? SM__S_DIALED : 0, on ? 0 : SM__S_DIALED);
}

static void
set_stopped(sm_stream *s, bool on)
{
    flags_change(s, on ? SM__S_STOPPED : 0, on ? 0 : SM__S_STOPPED);
    sm__stream_update_io(s);
}

/* A new connection: what the user asked for (never reconnect, a shutdown
 * they asked for before the connection was up, reading stopped) and what
 * outlives connections (above high_water and maybe paused by the queue,
 * dialed) stay. */
static void
set_connected(sm_stream *s)
{
    unsigned keep = SM__S_USER_END | SM__S_PAUSED | SM__S_ABOVE | SM__S_DIALED | SM__S_STOPPED;
    if (s->flags & SM__S_USER_END) keep |= SM__S_SHUT_REQ;
    flags_change(s, SM__S_CONNECTED, ~keep & 0xffffu);
}

/* The connection is gone, the stream stays (reconnecting). */
static void
set_disconnected(sm_stream *s)
{
    unsigned clear = SM__S_CONNECTED | SM__S_EOF | SM__S_WR_DONE | SM__S_BLOCKED;
    if (!(s->flags & SM__S_USER_END)) clear |= SM__S_SHUT_REQ;
    flags_change(s, 0, clear);
}

static void
set_closing(sm_stream *s, bool user)
{
    flags_change(s, SM__S_CLOSING | (user ? SM__S_USER_END : 0), SM__S_CONNECTED);
}

static int set_specs(sm_stream *s, const sm_frame_spec *rx, const sm_frame_spec *tx);

/* ---- lifecycle -------------------------------------------------------------------- */

/* Owners' extra areas start right behind the struct: it must keep them
 * aligned for pointers and 64-bit integers. */
_Static_assert(sizeof(sm_stream) % 8 == 0, "sm_stream keeps its extra area aligned");

static const sm__transport_ops *
tp(const sm_stream *s)
{
    return sm__tp_of(s);
}

sm_stream *
sm__stream_alloc(sm_loop *loop, const sm_stream_opts *opts, void *data, size_t extra, int *err)
{
    *err = loop ? sm__stream_opts_check(opts) : -EINVAL;
    if (*err < 0) return NULL;
    sm_stream *s = NULL;
    if (!sm__stream_loop_get(loop) || !(s = calloc(1, sizeof *s + extra))) {
        *err = -ENOMEM;
        return NULL;
    }
    s->io.loop = loop;
    sm__tp_set(s, SM__TP_SOCK);
    s->io.data = data;
    s->opts = opts;
    return s;
}

void
sm__stream_free(sm_stream *s)
{
    sm__dial_free(s);
    free(s->rd);
    if (s->sx) {
        sm__detach_free(s);
        sm__sfds_free(s);
        free(s->sx->detail);
        free(s->sx->own);
        free(s->sx);
    }
    free(s);
}

/* s->sx, allocated on first use; NULL on ENOMEM. */
static sm__sx *
sx_get(sm_stream *s)
{
    if (!s->sx) s->sx = calloc(1, sizeof *s->sx);
    return s->sx;
}

/* Replace the detail with buf (NULL: none). On ENOMEM there is none, and
 * sm_strerror stands in. */
static void
detail_put(sm_stream *s, const char *buf)
{
    if (s->sx) {
        free(s->sx->detail);
        s->sx->detail = NULL;
    }
    if (buf && sx_get(s)) s->sx->detail = strdup(buf);
}

void
sm__stream_set_detail(sm_stream *s, const char *fmt, ...)
{
    if (!fmt) {
        detail_put(s, NULL);
        return;
    }
    char buf[DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    detail_put(s, buf);
}

/* The transport for a new connection: a stream made for TLS keeps it;
 * a plain one gets completions on an io_uring loop, except when it may
 * reconnect (see transport_uring.c). */
static uint8_t
pick_tp(const sm_stream *s, int fd)
{
    if (s->tp != SM__TP_SOCK && s->tp != SM__TP_URING && s->tp != SM__TP_FDS) return s->tp;
    /* fd passing needs recvmsg/sendmsg with control data (transport_fds.c). */
    if (s->opts->max_fds && sm__fds_check_unix(fd) == 0) return SM__TP_FDS;
#ifdef SM_HAVE_URING
    if (!(s->flags & SM__S_DIALED) && sm__tpu_usable(s->io.loop, fd)) return SM__TP_URING;
#else
    (void)fd;
#endif
    (void)s;
    return SM__TP_SOCK;
}

/* Install a connected socket. 0, or the transport's error (fd left open). */
int
sm__stream_connected(sm_stream *s, int fd)
{
    uint8_t kind = pick_tp(s, fd);
    if (kind != s->tp) sm__tp_set(s, kind);
    int rc = tp(s)->open(s, fd);
    if (rc < 0) return rc;
    set_connected(s);
    s->reason = 0;
    sm__stream_set_detail(s, NULL); /* healthy again: "" */
    s->rx_pos = 0;
    s->rx_ts = s->tx_ts = sm__now32(s);
    sm__stream_update_io(s);
    sm__timeouts_arm(s);
    return 0;
}

/* Drop the connection but keep the stream (reconnecting). The read buffer
 * stays: a read batch may still be looking at it; stream_dial.c frees it. */
void
sm__stream_disconnect(sm_stream *s)
{
    /* A new connection starts with the opts' framing again. */
    if (s->sx) s->sx->own_rx = s->sx->own_tx = false;
    flags_change(s, 0, SM__S_RESPEC);
    sm__timeouts_remove(s);
    sm__wq_unref(s); /* the queue outlives the read batch's buffer */
    if (s->wq) sm__wq_unlist(s->wq);
    if (s->flags & SM__S_CONNECTED) tp(s)->drop(s);
    set_disconnected(s);
}

static void
stream_closed(sm_io *w)
{
    sm_stream *s = (sm_stream *)w;
    /* Older messages first: those of a lost connection, then the queue. */
    if (s->flags & SM__S_DIALED) sm__dial_report(s);
    if (s->wq) sm__wq_report(s, s->wq, s->reason);
    if (s->flags & SM__S_DETACH) sm__detach_report(s); /* the socket's fate first */
    if (s->opts->on_close) s->opts->on_close(s, s->reason);
    sm__stream_free(s);
}

/* Closing, for good. `user`: sm_stream_close (never reconnect). */
static void
close_final(sm_stream *s, int reason, bool user)
{
    if (s->flags & SM__S_CLOSING) return;
    set_closing(s, user);
    s->reason = reason;
    sm__timeouts_remove(s);
    sm__wq_unref(s); /* reported after the read batch's buffer is reused */
    if (s->wq) sm__wq_unlist(s->wq);
    if (s->flags & SM__S_DIALED) sm__dial_stop(s);
    tp(s)->close(s, stream_closed);
}

void
sm__stream_close_final(sm_stream *s, int reason)
{
    close_final(s, reason, false);
}

void
sm__stream_fail(sm_stream *s, int reason, const char *fmt, ...)
{
    if (s->flags & SM__S_CLOSING) return;
    detail_put(s, NULL);
    if (fmt) {
        char buf[DETAIL_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        detail_put(s, buf);
    }
    s->reason = reason;
    if (sm__dial_wants_retry(s))
        sm__dial_lost(s);
    else
        sm__stream_close_final(s, reason);
}

void
sm__stream_update_io(sm_stream *s)
{
    if ((s->flags & (SM__S_CONNECTED | SM__S_CLOSING)) != SM__S_CONNECTED) return;
    unsigned want = 0;
    if (!(s->flags & (SM__S_EOF | SM__S_PAUSED | SM__S_STOPPED))) want |= SM_READ;
    if (s->flags & SM__S_BLOCKED) want |= SM_WRITE;
    int rc = tp(s)->want(s, want);
    if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
}

int
sm__stream_new_take_extra(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                          void *data, size_t extra)
{
    int rc = -EINVAL;
    sm_stream *s = NULL;
    if (out && fd >= 0) s = sm__stream_alloc(loop, opts, data, extra, &rc);
    if (s) rc = sm_sock_set_nonblock(fd, true);
    if (rc == 0) rc = sm__stream_connected(s, fd);
    if (rc < 0) {
        if (fd >= 0) close(fd);
        if (s) sm__stream_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

sm_stream *
sm__stream_at(const sm_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->fds_cap) return NULL;
    sm_io *w = loop->fds[fd];
    /* Only a connected stream's watcher is in the table with a transport's
     * callback. */
    return w && sm__tp_is_stream_io(w) ? (sm_stream *)w : NULL;
}

sm_stream *
sm__stream_next(const sm_loop *loop, int *fd)
{
    for (int i = *fd < 0 ? 0 : *fd; (size_t)i < loop->fds_cap; i++) {
        sm_stream *s = sm__stream_at(loop, i);
        if (s) {
            *fd = i;
            return s;
        }
    }
    return NULL;
}

int
sm_stream_new_take(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts, void *data)
{
    return sm__stream_new_take_extra(out, loop, fd, opts, data, 0);
}

int
sm_stream_read_stop(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (!(s->flags & SM__S_STOPPED)) set_stopped(s, true);
    return 0;
}

int
sm_stream_read_start(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (s->flags & SM__S_DETACH) return -EBUSY; /* reading is over: the bytes are the caller's */
    if (!(s->flags & SM__S_STOPPED)) return 0;
    set_stopped(s, false);
    /* Bytes may be waiting since before the stop (a batch cut short) that
     * no new event will announce: ask the transport to look again. */
    if (sm__stream_live(s) && !(s->flags & (SM__S_PAUSED | SM__S_EOF))) {
        int rc = tp(s)->resume(s);
        if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
    }
    return 0;
}

int
sm_stream_shutdown(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (s->flags & SM__S_DETACH) return -EBUSY; /* a FIN would go to the new owner's peer */
    sm__stream_shut_req(s, true);
    if ((s->flags & (SM__S_CONNECTED | SM__S_IN_READ)) != SM__S_CONNECTED) return 0;
    /* Writing the queue may run callbacks (free, drain): not inside this
     * call. An empty queue has none to run: FIN now. */
    if (s->wq)
        sm__stream_kick(s);
    else
        sm__stream_flush(s);
    return 0;
}

int
sm_stream_close(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    sm__stream_set_detail(s, NULL);
    close_final(s, SM_ERR_CLOSED, true);
    return 0;
}

int
sm_stream_set_spec(sm_stream *s, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (s->flags & SM__S_DETACH) return -EBUSY;
    int rc;
    if ((rx && (rc = sm_frame_spec_check(rx, NULL, 0)) < 0) ||
        (tx && (rc = sm_frame_spec_check(tx, NULL, 0)) < 0))
        return rc;
    const sm_stream_opts *o = s->opts;
    if (rx && o->swallow_pings &&
        sm__ping_unframable(rx, o->ping, o->ping_len, o->ping_type, false))
        return SM_ERR_SPEC;
    if (tx && o->heartbeat_ms && sm__ping_unframable(tx, o->ping, o->ping_len, o->ping_type, true))
        return SM_ERR_SPEC;
    return set_specs(s, rx, tx);
}

/* sm_stream_set_spec past its checks of the specs. */
static int
set_specs(sm_stream *s, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    /* Outside a read batch the decoder of an unfinished message is in rd:
     * not at a boundary while it discards an oversized message. */
    bool in_read = s->flags & SM__S_IN_READ;
    if (rx && !in_read && s->rd && (s->rd->dec.err || s->rd->dec.flags))
        return s->rd->dec.err ? s->rd->dec.err : -EBUSY;
    if (!rx && !tx) return 0;
    if (!sx_get(s) || (!s->sx->own && !(s->sx->own = calloc(3, sizeof *s->sx->own))))
        return -ENOMEM;
    if (tx) {
        s->sx->own[1] = *tx;
        s->sx->own_tx = true;
        sm__fast_end(sm__sl(s)); /* the copying fast path knows the old max */
    }
    if (!rx) return 0;
    s->sx->rx_at ^= 2;
    s->sx->own[s->sx->rx_at] = *rx;
    s->sx->own_rx = true;
    if (in_read) {
        /* The batch's decoder switches before it decodes the next byte. */
        flags_change(s, SM__S_RESPEC, 0);
    } else if (s->rd) {
        (void)sm__frame_decoder_switch(&s->rd->dec, sm__rx_spec(s));
        s->rd->want = 0; /* sized by the old spec */
    }
    return 0;
}

/* Receiving raw from the boundary on: the eof framing makes no message of
 * any bytes before the EOF, which reading stopped will not see, so what
 * follows the boundary stays in s->rd (the hand-off's rest). Its max only
 * bounds bytes already read (a batch's worth, what the transport held). */
static const sm_frame_spec raw_rx = {.kind = SM_FRAME_EOF, .max = UINT64_MAX};

int
sm__stream_begin_detach(sm_stream *s)
{
    int rc = set_specs(s, &raw_rx, NULL);
    if (rc < 0) return rc;
    flags_change(s, SM__S_DETACH | SM__S_USER_END, 0); /* never reconnect */
    set_stopped(s, true);
    return 0;
}

bool
sm__stream_respec(sm_stream *s, sm_frame_decoder *d)
{
    if (sm__frame_decoder_switch(d, sm__rx_spec(s)) < 0) return false;
    flags_change(s, 0, SM__S_RESPEC);
    return true;
}

const char *
sm_stream_error_detail(const sm_stream *s)
{
    if (!s) return "";
    if (s->sx && s->sx->detail) return s->sx->detail;
    if (s->reason) return sm_strerror(s->reason);
    return "";
}

int
sm_stream_fd(const sm_stream *s)
{
    return s && (s->flags & SM__S_CONNECTED) ? s->io.fd : -1;
}

sm_loop *
sm_stream_loop(const sm_stream *s)
{
    return s->io.loop;
}

void *
sm_stream_get_data(const sm_stream *s)
{
    return s->io.data;
}

void
sm_stream_set_data(sm_stream *s, void *data)
{
    s->io.data = data;
}

bool
sm_stream_is_connected(const sm_stream *s)
{
    return s && (s->flags & (SM__S_CONNECTED | SM__S_CLOSING)) == SM__S_CONNECTED;
}
