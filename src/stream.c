/* Framed streams: the loop's shared stream state, creating, connecting,
 * losing and closing streams, and the read path. Writing lives in
 * stream_write.c, timeouts in stream_timeout.c, dialing in stream_dial.c. */
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
#include "stream_internal.h"

/* A leftover this small is copied in front of the shared buffer and read
 * behind (one read serves the unfinished message and what follows); a
 * longer one is read into directly, to avoid copying it again and again. */
#define SMALL_LEFTOVER (16 * 1024)
/* Header and trailer bytes a frame of max payload bytes may add. */
#define FRAME_SLACK 128
#define DETAIL_MAX  256

/* ---- the loop's shared state ----------------------------------------------- */

static void
loop_state_free(void *p)
{
    sm__stream_loop *sl = p;
    free(sl->rbuf);
    free(sl->spare_wq);
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
    if (rc < 0) return rc;
    if (bad_timeout(o->read_timeout_ms) || bad_timeout(o->write_timeout_ms) ||
        bad_timeout(o->idle_timeout_ms) || bad_timeout(o->heartbeat_ms) ||
        bad_timeout(o->heartbeat_timeout_ms) || bad_timeout(o->reconnect_min_ms) ||
        bad_timeout(o->reconnect_max_ms) || o->reconnect_max_attempts < 0 ||
        (o->connect_timeout_ms != SM_FOREVER && bad_timeout(o->connect_timeout_ms)))
        return -EINVAL;
    if (o->unsent != SM_UNSENT_KEEP && o->unsent != SM_UNSENT_DROP) return -EINVAL;
    if (sm__low(o) > sm__high(o) || sm__cap(o) < sm__high(o)) return -EINVAL;
    if (o->ping_len && !o->ping) return -EINVAL;
    if ((o->heartbeat_ms || o->swallow_pings) &&
        sm__ping_unframable(o->spec, o->ping, o->ping_len, o->ping_type, o->heartbeat_ms != 0))
        return SM_ERR_SPEC;
    return 0;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void stream_io_cb(sm_io *w, unsigned events);

/* Owners' extra areas start right behind the struct: it must keep them
 * aligned for pointers and 64-bit integers. */
_Static_assert(sizeof(sm_stream) % 8 == 0, "sm_stream keeps its extra area aligned");

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
    sm_io_init(loop, &s->io, -1, stream_io_cb);
    s->io.data = data;
    s->opts = opts;
    return s;
}

void
sm__stream_free(sm_stream *s)
{
    sm__dial_free(s);
    free(s->rd);
    free(s->detail);
    free(s);
}

void
sm__stream_set_detail(sm_stream *s, const char *fmt, ...)
{
    free(s->detail);
    s->detail = NULL;
    if (!fmt) return;
    char buf[DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->detail = strdup(buf); /* NULL on ENOMEM: sm_strerror stands in */
}

/* Install a connected socket. 0, or the loop's error (fd left open). */
int
sm__stream_connected(sm_stream *s, int fd)
{
    sm_io_init(s->io.loop, &s->io, fd, stream_io_cb);
    /* read_batch reads to a short read or re-arms, and the writer writes to
     * EAGAIN or a short write: edges are enough (see loop_epoll.c). Not on
     * Unix sockets, where a read may stop short with more queued. */
    if (sm__sock_is_inet(fd) == 1) sm__io_set_edge(&s->io);
    int rc = sm_io_start(&s->io, SM_READ);
    if (rc < 0) {
        sm_io_init(s->io.loop, &s->io, -1, stream_io_cb);
        return rc;
    }
    /* A shutdown asked for before the connection was up still applies. */
    s->flags &= SM__S_USER_END | SM__S_SHUT_REQ | SM__S_PAUSED | SM__S_DIALED | SM__S_STOPPED;
    if (!(s->flags & SM__S_USER_END)) s->flags &= (uint16_t)~SM__S_SHUT_REQ;
    s->flags |= SM__S_CONNECTED;
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
    sm__timeouts_remove(s);
    sm__wq_unref(s); /* the queue outlives the read batch's buffer */
    if (s->wq) sm__wq_unlist(s->wq);
    if (s->flags & SM__S_CONNECTED) {
        int fd = s->io.fd;
        sm_io_stop(&s->io);
        close(fd);
        sm_io_init(s->io.loop, &s->io, -1, stream_io_cb);
    }
    s->flags &= (uint16_t) ~(SM__S_CONNECTED | SM__S_EOF | SM__S_WR_DONE | SM__S_BLOCKED);
    if (!(s->flags & SM__S_USER_END)) s->flags &= (uint16_t)~SM__S_SHUT_REQ;
}

static void
stream_closed(sm_io *w)
{
    sm_stream *s = (sm_stream *)w;
    /* Older messages first: those of a lost connection, then the queue. */
    if (s->flags & SM__S_DIALED) sm__dial_report(s);
    if (s->wq) sm__wq_report(s, s->wq, s->reason);
    if (s->opts->on_close) s->opts->on_close(s, s->reason);
    sm__stream_free(s);
}

void
sm__stream_close_final(sm_stream *s, int reason)
{
    if (s->flags & SM__S_CLOSING) return;
    s->flags |= SM__S_CLOSING;
    s->flags &= (uint16_t)~SM__S_CONNECTED;
    s->reason = reason;
    sm__timeouts_remove(s);
    sm__wq_unref(s); /* reported after the read batch's buffer is reused */
    if (s->wq) sm__wq_unlist(s->wq);
    if (s->flags & SM__S_DIALED) sm__dial_stop(s);
    sm_io_close(&s->io, stream_closed);
}

void
sm__stream_fail(sm_stream *s, int reason, const char *fmt, ...)
{
    if (s->flags & SM__S_CLOSING) return;
    free(s->detail);
    s->detail = NULL;
    if (fmt) {
        char buf[DETAIL_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        s->detail = strdup(buf);
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
    if (want == sm_io_get_events(&s->io)) return;
    int rc = sm_io_set_events(&s->io, want);
    if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
}

/* ---- reading -------------------------------------------------------------------- */

/* The decoder holds nothing but its position: no unfinished message, no
 * discard in progress, no error. Then the stream keeps only rx_pos. (flags
 * is the decoder's internal state, read here and nowhere else.) */
static bool
decoder_idle(const sm_frame_decoder *d)
{
    return !d->err && !d->flags && !d->scan && !d->skip;
}

static void
frame_fail(sm_stream *s, const sm_frame_decoder *d, int err)
{
    char why[DETAIL_MAX];
    sm_frame_decoder_detail(d, why, sizeof why);
    sm__stream_fail(s, err, "%s", why[0] ? why : sm_strerror(err));
}

static bool
swallowed(const sm_stream_opts *o, const sm_frame_msg *m)
{
    return o->swallow_pings && sm__ping_matches(o->spec, o->ping, o->ping_len, o->ping_type, m);
}

/* Deliver every whole message of buf[*off..len). 0: all delivered; -1: the
 * stream failed or closed or lost its connection meanwhile: stop at once. */
static int
deliver_all(sm_stream *s, sm_frame_decoder *d, const uint8_t *buf, size_t len, size_t *off)
{
    const sm_stream_opts *o = s->opts;
    sm_stream_message_cb on_message = o->on_message;
    bool swallow = o->swallow_pings, plain = sm__frame_plain_len(o->spec);
    uint64_t max = sm_frame_max(o->spec);
    size_t at = *off;
    for (;;) {
        sm_frame_msg m;
        ssize_t r = sm__frame_decode_fast(d, plain, max, buf + at, len - at, &m);
        if (r < 0) {
            *off = at;
            if (r == -EAGAIN) return 0;
            frame_fail(s, d, (int)r);
            return -1;
        }
        at += (size_t)r;
        if (!m.data || (swallow && swallowed(o, &m))) continue;
        on_message(s, &m);
        if (!sm__stream_live(s)) return -1;
    }
}

static uint64_t
rd_limit(const sm_stream *s)
{
    return sm_frame_max(s->opts->spec) + FRAME_SLACK;
}

/* Keep buf[off..len) (the start of an unfinished message) and the decoder
 * state: in s->rd, or nowhere when the decoder is at a boundary. */
static int
keep_leftover(sm_stream *s, const sm_frame_decoder *d, uint8_t *buf, size_t off, size_t len)
{
    size_t left = len - off;
    sm__rd *rd = s->rd;
    if (left == 0 && decoder_idle(d)) {
        free(rd);
        s->rd = NULL;
        s->rx_pos = d->pos;
        return 0;
    }
    /* A length prefix tells the whole frame's size: a block of exactly
     * that size is read into directly, and the frame is delivered from it
     * without a copy of what follows it. */
    size_t want = 0;
    const sm_frame_spec *spec = s->opts->spec;
    if (sm__frame_plain_len(spec) && decoder_idle(d) && left >= spec->len_width) {
        uint64_t n = sm__load_len(buf + off, spec->len_width, spec->len_little);
        if (n <= sm_frame_max(spec) && n + spec->len_width > SMALL_LEFTOVER)
            want = spec->len_width + (size_t)n;
    }
    if (rd && buf == rd->data) {
        memmove(rd->data, rd->data + off, left);
    } else {
        /* Grown for a big message once, a block would otherwise stay big for
         * as long as small leftovers keep coming: shrink it. */
        bool oversized = rd && rd->cap > SM__RBUF_SIZE && rd->cap / 4 > left && rd->cap / 4 > want;
        if (!rd || rd->cap < left || oversized || rd->cap < want) {
            size_t cap = left < 256 ? 256 : left;
            /* Room for the announced frame, but never more than a read's
             * worth beyond what arrived: a header alone must not make us
             * allocate what it announces (rd_grow follows the bytes). */
            if (cap < want) cap = SM__MIN(want, left + SM__RBUF_SIZE);
            sm__rd *n = realloc(rd, sizeof *rd + cap);
            if (!n) return -ENOMEM;
            s->rd = rd = n;
            rd->cap = cap;
        }
        memcpy(rd->data, buf + off, left);
    }
    rd->len = left;
    rd->want = want;
    rd->dec = *d;
    return 0;
}

/* Room to read a long unfinished message into s->rd directly. */
static int
rd_grow(sm_stream *s)
{
    sm__rd *rd = s->rd;
    uint64_t cap;
    if (rd->want > rd->len) {
        if (rd->cap >= rd->want) return 0; /* room for just the rest */
        if (rd->cap - rd->len >= SM__RBUF_SIZE / 2) return 0;
        /* Toward the announced size as the bytes come, doubling: the block
         * ends exactly that big, never sooner than the peer sends. */
        cap = SM__MIN((uint64_t)rd->want,
                      SM__MAX((uint64_t)rd->cap * 2, (uint64_t)rd->len + SM__RBUF_SIZE));
    } else {
        if (rd->cap - rd->len >= SM__RBUF_SIZE / 2) return 0;
        uint64_t limit = rd_limit(s);
        if (rd->cap >= limit) return rd->cap > rd->len ? 0 : -EMSGSIZE;
        cap = SM__MAX((uint64_t)rd->cap * 2, (uint64_t)rd->len + SM__RBUF_SIZE);
        if (cap > limit) cap = limit;
    }
    if (cap > SIZE_MAX - sizeof *rd) return -ENOMEM;
    sm__rd *n = realloc(rd, sizeof *rd + (size_t)cap);
    if (!n) return -ENOMEM;
    n->cap = (size_t)cap;
    s->rd = n;
    return 0;
}

/* The peer shut down: deliver what the spec makes of the rest (eof framing's
 * final message), report on_eof, then finish our side unless half-open. */
static void
peer_eof(sm_stream *s, sm_frame_decoder *d, const uint8_t *buf, size_t len)
{
    const sm_stream_opts *o = s->opts;
    size_t off = 0;
    for (;;) {
        sm_frame_msg m;
        ssize_t r = sm_frame_decode_eof(d, buf + off, len - off, &m);
        if (r < 0) {
            frame_fail(s, d, (int)r);
            return;
        }
        off += (size_t)r;
        if (m.data && !swallowed(o, &m)) {
            o->on_message(s, &m);
            if (!sm__stream_live(s)) return;
        }
        if (r == 0) break;
    }
    free(s->rd);
    s->rd = NULL;
    s->flags |= SM__S_EOF;
    sm__stream_update_io(s);
    if (o->on_eof) {
        o->on_eof(s);
        if (!sm__stream_live(s)) return;
    }
    if (!o->half_open) s->flags |= SM__S_SHUT_REQ;
    s->flags &= (uint16_t)~SM__S_IN_READ;
    sm__stream_flush(s);
}

/* deliver_all over buf[0..len), whose frames sm_stream_send_frame may queue
 * by reference until the batch's flush. */
static int
deliver_in(sm_stream *s, sm_frame_decoder *d, uint8_t *buf, size_t len, size_t *off)
{
    sm__stream_loop *sl = sm__sl(s);
    sl->zc_s = s;
    sl->zc_lo = (uintptr_t)buf;
    sl->zc_hi = (uintptr_t)(buf + len);
    int rc = deliver_all(s, d, buf, len, off);
    sl->zc_s = NULL;
    sl->zc_next = 0;
    return rc;
}

/* One readiness event: read (up to the budget), decode in place, deliver,
 * keep the leftover; then write all the replies in one go. */
static void
read_batch(sm_stream *s, bool hup)
{
    sm__stream_loop *sl = sm__sl(s);
    if (!sl->rbuf && !(sl->rbuf = malloc(SM__RBUF_SIZE))) {
        sm__stream_fail(s, -ENOMEM, "read buffer: %s", sm_strerror(-ENOMEM));
        return;
    }
    size_t budget = sm__budget(s->opts);
    sm_frame_decoder dec;
    if (s->rd) {
        dec = s->rd->dec;
    } else {
        sm_frame_decoder_init(&dec, s->opts->spec);
        dec.pos = s->rx_pos;
    }
    bool flushed = false, more = false;
    s->flags |= SM__S_IN_READ;
    while (!(s->flags & (SM__S_PAUSED | SM__S_STOPPED))) {
        sm__rd *rd = s->rd;
        uint8_t *base = sl->rbuf;
        size_t have = 0, room, room2 = 0;
        if (!rd || rd->len <= SMALL_LEFTOVER) {
            if (rd) memcpy(base, rd->data, have = rd->len);
            room = SM__RBUF_SIZE - have;
        } else {
            int rc = rd_grow(s);
            if (rc < 0) {
                sm__stream_fail(s, rc, "read buffer: %s", sm_strerror(rc));
                break;
            }
            rd = s->rd;
            base = rd->data;
            have = rd->len;
            room = rd->cap - rd->len;
            /* The block is one frame exactly: what follows that frame goes to
             * the shared buffer in the same syscall (read alone, it would end
             * at the frame's end and the next frames cost a read of their own:
             * 2 reads per 64 KiB frame instead of 0.35 in scenario B). */
            if (rd->want == rd->cap) room2 = SM__RBUF_SIZE;
        }
        ssize_t n;
        if (room2) {
            struct iovec iov[2] = {{base + have, room}, {sl->rbuf, room2}};
            n = readv(s->io.fd, iov, 2);
        } else {
            n = read(s->io.fd, base + have, room);
        }
        if (n < 0) {
            int err = errno;
            if (err == EINTR) continue;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                more = false;
                break;
            }
            sm__stream_fail(s, -err, "read: %s", sm_strerror(-err));
            break;
        }
        if (n == 0) {
            peer_eof(s, &dec, base, have);
            break;
        }
        s->rx_ts = sm__now32(s);
        size_t got = (size_t)n, extra = got > room ? got - room : 0;
        /* After a hang-up the end is to be read too (see SM__EV_HUP). */
        more = got == room + room2 || hup;
        size_t total = have + got - extra, off = 0;
        int rc = deliver_in(s, &dec, base, total, &off);
        if (rc < 0) break; /* closed or lost: nothing is held by reference now */
        if (extra) {
            /* The block's frame is whole and delivered; the rest is in the
             * shared buffer. The block stays until the flush below (replies
             * may point into it), then keep_leftover reuses or frees it. */
            if (off != total) {
                sm__stream_fail(s, -EPROTO, "read: frame block not at a boundary");
                break;
            }
            base = sl->rbuf;
            total = extra;
            off = 0;
            if ((rc = deliver_in(s, &dec, base, total, &off)) < 0) break;
        }
        budget = got >= budget ? 0 : budget - got;
        /* A short read means the socket had no more just now: waiting for the
         * next readiness is cheaper than an extra read that says EAGAIN. */
        /* Replies queued by reference end the batch too: written now, they
         * need no copy (a re-arm below brings the rest). */
        bool last = (got < room + room2 && !hup) || budget == 0 ||
                    (s->flags & (SM__S_PAUSED | SM__S_STOPPED)) || sl->refs_used;
        if (last) {
            /* The replies go out while the frames they point at are still
             * in the buffer; only what the kernel does not take is copied. */
            s->flags &= (uint16_t)~SM__S_IN_READ;
            sm__stream_flush(s);
            flushed = true;
        }
        if ((rc = sm__wq_unref(s)) == 0 && sm__stream_live(s))
            rc = keep_leftover(s, &dec, base, off, total);
        if (rc < 0) {
            sm__stream_fail(s, rc, "read buffer: %s", sm_strerror(rc));
            break;
        }
        if (last || !sm__stream_live(s)) break;
    }
    s->flags &= (uint16_t)~SM__S_IN_READ;
    if (!flushed && sm__stream_live(s)) sm__stream_flush(s);
    /* Stopped with bytes perhaps still waiting (the last read filled all it
     * was given, and the budget, zero-copy replies or a hang-up ended the
     * batch): an edge-triggered socket will not say so again by itself. A paused
     * stream is re-armed when reading resumes (sm_io_set_events). */
    if (more && sm__stream_live(s) && !(s->flags & (SM__S_PAUSED | SM__S_EOF | SM__S_STOPPED))) {
        int rc = sm__io_rearm(&s->io);
        if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
    }
}

static void
stream_io_cb(sm_io *w, unsigned events)
{
    sm_stream *s = (sm_stream *)w;
    if (events & SM_READ)
        read_batch(s, events & SM__EV_HUP);
    else
        sm__stream_flush(s);
}

/* ---- public --------------------------------------------------------------------- */

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
    /* Only a connected stream's watcher is in the table, with this callback. */
    return w && w->u.cb == stream_io_cb ? (sm_stream *)w : NULL;
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
    if (s->flags & SM__S_STOPPED) return 0;
    s->flags |= SM__S_STOPPED;
    sm__stream_update_io(s);
    return 0;
}

int
sm_stream_read_start(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (!(s->flags & SM__S_STOPPED)) return 0;
    s->flags &= (uint16_t)~SM__S_STOPPED;
    sm__stream_update_io(s);
    /* Bytes may be waiting since before the stop (a batch cut short) with
     * no readiness to come for them on an edge-triggered socket: ask again.
     * One syscall, and only here. */
    if (sm__stream_live(s) && !(s->flags & (SM__S_PAUSED | SM__S_EOF))) {
        int rc = sm__io_rearm(&s->io);
        if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
    }
    return 0;
}

int
sm_stream_shutdown(sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    s->flags |= SM__S_SHUT_REQ | SM__S_USER_END;
    sm__sl(s)->zc_next = 0; /* no more sends */
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
    s->flags |= SM__S_USER_END;
    sm__stream_set_detail(s, NULL);
    sm__stream_close_final(s, SM_ERR_CLOSED);
    return 0;
}

const char *
sm_stream_error_detail(const sm_stream *s)
{
    if (!s) return "";
    if (s->detail) return s->detail;
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
