/* Framed streams: the receive side a transport feeds (see transport.h). A
 * batch decodes every frame in place, from the loop's shared read buffer or
 * from the transport's own, delivers it, and keeps only the start of an
 * unfinished frame (in s->rd, freed at the next boundary); at the batch's
 * end the replies go out in one write. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "frame_internal.h"
#include "internal.h"
#include "stream_fds.h"
#include "stream_internal.h"
#include "transport.h"

/* A leftover this small is copied in front of the shared buffer and read
 * behind (one read serves the unfinished message and what follows); a
 * longer one is read into directly, to avoid copying it again and again. */
#define SMALL_LEFTOVER ((size_t)16 << 10)
/* Header and trailer bytes a frame of max payload bytes may add. */
#define FRAME_SLACK 128
#define DETAIL_MAX  256

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
swallowed(const sm_stream_opts *o, const sm_frame_spec *spec, const sm_frame_msg *m)
{
    return o->swallow_pings && sm__ping_matches(spec, o->ping, o->ping_len, o->ping_type, m);
}

/* The common case of deliver_all, a loop of its own: a plain length
 * prefix of w bytes, the decoder at a boundary, no fds to pass and no
 * pings to swallow, so a message is a load, a compare and the callback;
 * per message only d->pos and the stream's flags are touched (one test
 * covers a close, a failure and sm_stream_set_spec). Delivers from
 * buf[*off..len) until a frame is unfinished (0), the stream ends (-1) or
 * the general loop must go on (1: a length over max, a spec switch due). */
static inline __attribute__((always_inline)) int
deliver_plain(sm_stream *s, sm_frame_decoder *d, const uint8_t *buf, size_t len, size_t *off,
              uint64_t max, sm_stream_message_cb on_message, unsigned w, bool little)
{
    size_t at = *off;
    int rc;
    for (;;) {
        if (len - at < w) {
            rc = 0;
            break;
        }
        uint64_t n = sm__load_len(buf + at, w, little);
        if (n > max) {
            rc = 1;
            break;
        }
        if (len - at - w < n) {
            rc = 0;
            break;
        }
        sm_frame_msg m = {.data = buf + at + w,
                          .len = (size_t)n,
                          .frame = buf + at,
                          .frame_len = w + (size_t)n,
                          .type = -1};
        at += w + (size_t)n;
        d->pos += w + n;
        on_message(s, &m);
        unsigned f = s->flags & (SM__S_CONNECTED | SM__S_CLOSING | SM__S_RESPEC);
        if (__builtin_expect(f != SM__S_CONNECTED, 0)) {
            rc = sm__stream_live(s) ? 1 : -1;
            break;
        }
    }
    *off = at;
    return rc;
}

/* Deliver every whole message of buf[*off..len). 0: all delivered; -1: the
 * stream failed or closed or lost its connection meanwhile: stop at once. */
static int
deliver_all(sm_stream *s, sm_frame_decoder *d, const uint8_t *buf, size_t len, size_t *off)
{
    const sm_stream_opts *o = s->opts;
    sm_stream_message_cb on_message = o->on_message;
    bool swallow = o->swallow_pings, plain = sm__frame_plain_len(d->spec);
    uint64_t max = sm_frame_max(d->spec);
    if (plain && !swallow && s->tp != SM__TP_FDS && !(s->sx && s->sx->fds) &&
        !(d->err | d->flags) && !(s->flags & SM__S_RESPEC)) {
        unsigned w = d->spec->len_width;
        bool little = d->spec->len_little;
        /* len32be, the usual framing, gets a copy with both constant. */
        int rc = w == 4 && !little ? deliver_plain(s, d, buf, len, off, max, on_message, 4, false)
                                   : deliver_plain(s, d, buf, len, off, max, on_message, w, little);
        if (rc <= 0) return rc;
    }
    size_t at = *off;
    for (;;) {
        /* sm_stream_set_spec from on_message: what follows is decoded with
         * the new spec (the check is one flag test per message). */
        if (__builtin_expect(s->flags & SM__S_RESPEC, 0) && sm__stream_respec(s, d)) {
            plain = sm__frame_plain_len(d->spec);
            max = sm_frame_max(d->spec);
        }
        sm_frame_msg m;
        uint64_t from = d->pos;
        ssize_t r = sm__frame_decode_fast(d, plain, max, buf + at, len - at, &m);
        if (r < 0) {
            *off = at;
            if (r == -EAGAIN) return 0;
            frame_fail(s, d, (int)r);
            return -1;
        }
        at += (size_t)r;
        if (!m.data || (swallow && swallowed(o, d->spec, &m))) continue;
        if (sm__sfds_deliver(s, &m, from, d->pos) == 0) on_message(s, &m);
        if (!sm__stream_live(s)) return -1;
    }
}

/* deliver_all over buf[0..len), whose frames sm_stream_send_frame may queue
 * by reference until the batch's flush. */
static int
deliver_in(sm_stream *s, sm_frame_decoder *d, const uint8_t *buf, size_t len, size_t *off)
{
    sm__stream_loop *sl = sm__sl(s);
    /* A completion transport's write is done after the batch: frames by
     * reference only into its provided buffer, which it pins for them
     * (sl->pin_lo..pin_hi), never into a block or the shared buffer. */
    bool async = sm__tp_of(s)->async_send, pin = false;
    if (async) pin = (uintptr_t)buf >= sl->pin_lo && (uintptr_t)buf + len <= sl->pin_hi;
    /* The stream's block: a reply to the one frame it holds takes the block
     * along (sm__rx_block_give), on every transport. */
    bool block = s->rd && buf == s->rd->data;
    sl->zc_s = !async || pin || block ? s : NULL;
    sl->zc_pin = pin;
    sl->zc_block = block;
    sl->zc_lo = (uintptr_t)buf;
    sl->zc_hi = (uintptr_t)(buf + len);
    int rc = deliver_all(s, d, buf, len, off);
    sl->zc_s = NULL;
    sl->zc_pin = sl->zc_block = false;
    sm__fast_end(sl);
    return rc;
}

static uint64_t
rd_limit(const sm_stream *s)
{
    uint64_t max = sm_frame_max(sm__rx_spec(s));
    return max > UINT64_MAX - FRAME_SLACK ? UINT64_MAX : max + FRAME_SLACK;
}

/* Keep buf[off..len) (the start of an unfinished message) and the decoder
 * state: in s->rd, or nowhere when the decoder is at a boundary. */
static int
keep_leftover(sm_stream *s, const sm_frame_decoder *d, const uint8_t *buf, size_t off, size_t len)
{
    size_t left = len - off;
    sm__rd *rd = s->rd;
    if (left == 0 && decoder_idle(d)) {
        /* Most batches end on a boundary with nothing kept: no call then. */
        if (rd) {
            free(rd);
            s->rd = NULL;
        }
        s->rx_pos = d->pos;
        return 0;
    }
    /* A length prefix tells the whole frame's size: a block of exactly
     * that size is read into directly, and the frame is delivered from it
     * without a copy of what follows it. */
    size_t want = 0;
    const sm_frame_spec *spec = d->spec;
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
            size_t got = cap;
            /* A block a reply took along, written since: no malloc. */
            sm__rd *n = rd ? NULL : sm__wq_block_take(sm__sl(s), cap, &got);
            if (!n && !(n = realloc(rd, sizeof *rd + cap))) return -ENOMEM;
            s->rd = rd = n;
            rd->cap = got;
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

static bool
read_buffer_failed(sm_stream *s, int rc)
{
    sm__stream_fail(s, rc, "read buffer: %s", sm_strerror(rc));
    return false;
}

/* The replies of the batch so far go out while the frames they point at
 * are still in the buffer; only what the kernel does not take is copied. */
static void
rx_flush(sm_stream *s, sm__rx *rx)
{
    sm__stream_set_in_read(s, false);
    sm__stream_flush(s);
    rx->flushed = true;
}

/* buf[0..total) was decoded up to off: the batch goes on or ends, and what
 * is left of an unfinished frame is kept. */
static bool
rx_settle(sm_stream *s, sm__rx *rx, size_t got, bool drained, const uint8_t *buf, size_t off,
          size_t total)
{
    rx->budget = got >= rx->budget ? 0 : rx->budget - got;
    /* A short read means the socket had no more just now: waiting for the
     * next readiness is cheaper than an extra read that says EAGAIN.
     * Replies queued by reference end the batch too: written now, they
     * need no copy (the transport brings the rest). */
    bool last = drained || rx->budget == 0 || !sm__stream_reading(s) || sm__sl(s)->refs_used;
    if (last) rx_flush(s, rx);
    int rc = sm__wq_unref(s);
    if (rc == 0 && sm__stream_live(s)) rc = keep_leftover(s, &rx->dec, buf, off, total);
    if (rc < 0) return read_buffer_failed(s, rc);
    return !last && sm__stream_live(s);
}

int
sm__rx_begin(sm_stream *s, sm__rx *rx)
{
    sm__stream_loop *sl = sm__sl(s);
    if (!sl->rbuf && !(sl->rbuf = malloc(SM__RBUF_SIZE))) {
        read_buffer_failed(s, -ENOMEM);
        return -1;
    }
    rx->budget = sm__budget(s->opts);
    if (s->rd) {
        rx->dec = s->rd->dec;
    } else {
        sm_frame_decoder_init(&rx->dec, sm__rx_spec(s));
        rx->dec.pos = s->rx_pos;
    }
    rx->flushed = false;
    sm__stream_set_in_read(s, true);
    return 0;
}

int
sm__rx_buffers(sm_stream *s, sm__rx *rx, struct iovec iov[2])
{
    if (!sm__stream_reading(s)) return 0;
    sm__stream_loop *sl = sm__sl(s);
    sm__rd *rd = s->rd;
    rx->room2 = 0;
    if (!rd || rd->len <= SMALL_LEFTOVER) {
        rx->base = sl->rbuf;
        rx->have = 0;
        if (rd) memcpy(rx->base, rd->data, rx->have = rd->len);
        rx->room = SM__RBUF_SIZE - rx->have;
    } else {
        int rc = rd_grow(s);
        if (rc < 0) {
            read_buffer_failed(s, rc);
            return -1;
        }
        rd = s->rd;
        rx->base = rd->data;
        rx->have = rd->len;
        rx->room = rd->cap - rd->len;
        /* The block is one frame exactly: what follows that frame goes to
         * the shared buffer in the same syscall (read alone, it would end
         * at the frame's end and the next frames cost a read of their own:
         * 2 reads per 64 KiB frame instead of 0.35 in scenario B). */
        if (rd->want == rd->cap) rx->room2 = SM__RBUF_SIZE;
    }
    iov[0] = (struct iovec){.iov_base = rx->base + rx->have, .iov_len = rx->room};
    if (!rx->room2) return 1;
    iov[1] = (struct iovec){.iov_base = sl->rbuf, .iov_len = rx->room2};
    return 2;
}

bool
sm__rx_done(sm_stream *s, sm__rx *rx, size_t n, bool drained)
{
    sm__stream_note_rx(s);
    const uint8_t *base = rx->base;
    size_t extra = n > rx->room ? n - rx->room : 0;
    size_t total = rx->have + n - extra, off = 0;
    if (deliver_in(s, &rx->dec, base, total, &off) < 0) return false;
    if (extra) {
        /* The block's frame is whole and delivered; the rest is in the
         * shared buffer. The block stays until the flush (replies may
         * point into it), then keep_leftover reuses or frees it. */
        if (off != total) {
            sm__stream_fail(s, -EPROTO, "read: frame block not at a boundary");
            return false;
        }
        base = sm__sl(s)->rbuf;
        total = extra;
        off = 0;
        if (deliver_in(s, &rx->dec, base, total, &off) < 0) return false;
    }
    return rx_settle(s, rx, n, drained, base, off, total);
}

/* How many bytes of p finish the unfinished frame in rd, when its size is
 * known (a length prefix, its header in rd and p); else all of p. */
static size_t
rest_of_frame(const sm__rd *rd, const uint8_t *p, size_t n)
{
    const sm_frame_spec *spec = rd->dec.spec;
    if (!sm__frame_plain_len(spec) || !decoder_idle(&rd->dec)) return n;
    size_t w = spec->len_width;
    uint8_t hdr[8];
    size_t from_rd = SM__MIN(rd->len, w);
    if (from_rd + n < w) return n;
    memcpy(hdr, rd->data, from_rd);
    memcpy(hdr + from_rd, p, w - from_rd);
    uint64_t len = sm__load_len(hdr, w, spec->len_little);
    if (len > sm_frame_max(spec)) return n; /* the decoder refuses it */
    uint64_t rest = w + len - rd->len;
    return rest < n ? (size_t)rest : n;
}

bool
sm__rx_input(sm_stream *s, sm__rx *rx, const uint8_t *p, size_t n, bool drained)
{
    if (!sm__stream_reading(s)) return false;
    sm__stream_note_rx(s);
    sm__rd *rd = s->rd;
    if (!rd) {
        size_t off = 0;
        if (deliver_in(s, &rx->dec, p, n, &off) < 0) return false;
        return rx_settle(s, rx, n, drained, p, off, n);
    }
    /* An unfinished frame continues in p. Only its rest joins the block
     * (for a length prefix; other framings cannot tell where the frame
     * ends, and p joins whole), and is delivered from there; what follows
     * it is decoded in place in p. The decoder bounds the block: a frame
     * over max fails before the bytes it announces arrive. */
    size_t take = rest_of_frame(rd, p, n);
    if (take > SIZE_MAX - sizeof *rd - rd->len) return read_buffer_failed(s, -EMSGSIZE);
    if (rd->cap - rd->len < take) {
        size_t need = rd->len + take, cap = rd->cap * 2 < need ? need : rd->cap * 2;
        if (rd->want && cap > rd->want && need <= rd->want) cap = rd->want;
        if (cap > SIZE_MAX - sizeof *rd) cap = need;
        sm__rd *g = realloc(rd, sizeof *rd + cap);
        if (!g) return read_buffer_failed(s, -ENOMEM);
        s->rd = rd = g;
        rd->cap = cap;
    }
    memcpy(rd->data + rd->len, p, take);
    /* A reply may take the block along (sm__rx_block_give): rd is not
     * looked at again, only its bytes. */
    const uint8_t *blk = rd->data;
    size_t total = rd->len + take, off = 0;
    if (deliver_in(s, &rx->dec, blk, total, &off) < 0) return false;
    if (take == n) return rx_settle(s, rx, n, drained, blk, off, total);
    /* The block's frame is whole and delivered; the block stays until the
     * batch's flush or sm__wq_unref (replies may point into it). */
    if (off != total) {
        sm__stream_fail(s, -EPROTO, "read: frame block not at a boundary");
        return false;
    }
    off = 0;
    if (deliver_in(s, &rx->dec, p + take, n - take, &off) < 0) return false;
    return rx_settle(s, rx, n, drained, p + take, off, n - take);
}

size_t
sm__rx_block_rest(const sm_stream *s)
{
    const sm__rd *rd = s->rd;
    return rd && rd->want > rd->len ? rd->want - rd->len : 0;
}

size_t
sm__rx_block_room(sm_stream *s, size_t min, uint8_t **at)
{
    if (sm__rx_block_rest(s) <= min || rd_grow(s) < 0) return 0;
    sm__rd *rd = s->rd;
    *at = rd->data + rd->len;
    return SM__MIN(rd->cap, rd->want) - rd->len;
}

void
sm__rx_block_put(sm_stream *s, size_t n)
{
    s->rd->len += n;
}

bool
sm__rx_block(sm_stream *s, sm__rx *rx, size_t n, bool drained)
{
    if (!sm__stream_reading(s) || !s->rd) return false;
    if (n) sm__stream_note_rx(s);
    /* A reply may take the block along (sm__rx_block_give): what the
     * batch still needs of it is kept here. */
    const uint8_t *buf = s->rd->data;
    size_t len = s->rd->len, off = 0;
    if (deliver_in(s, &rx->dec, buf, len, &off) < 0) return false;
    return rx_settle(s, rx, n, drained, buf, off, len);
}

sm__wblock *
sm__rx_block_give(sm_stream *s, size_t len)
{
    sm__rd *rd = s->rd;
    _Static_assert(sizeof(sm__wblock) <= offsetof(sm__rd, data), "a block's node fits its header");
    s->rd = NULL; /* the batch's frame is whole: the decoder state is in rx */
    size_t cap = rd->cap;
    const uint8_t *p = rd->data;
    sm__wblock *b = (sm__wblock *)(void *)rd;
    b->p = p;
    b->cap = cap;
    b->n.len = len;
    b->n.kind = SM__WN_BLOCK;
    return b;
}

void
sm__rx_eof(sm_stream *s, sm__rx *rx)
{
    /* What the spec makes of the rest (eof framing's final message). */
    const sm_stream_opts *o = s->opts;
    const uint8_t *buf = s->rd ? s->rd->data : NULL;
    size_t len = s->rd ? s->rd->len : 0, off = 0;
    if (s->flags & SM__S_RESPEC) (void)sm__stream_respec(s, &rx->dec);
    for (;;) {
        sm_frame_msg m;
        uint64_t from = rx->dec.pos;
        ssize_t r = sm_frame_decode_eof(&rx->dec, buf ? buf + off : NULL, len - off, &m);
        if (r < 0) {
            frame_fail(s, &rx->dec, (int)r);
            return;
        }
        off += (size_t)r;
        if (m.data && !swallowed(o, rx->dec.spec, &m)) {
            if (sm__sfds_deliver(s, &m, from, rx->dec.pos) == 0) o->on_message(s, &m);
            if (!sm__stream_live(s)) return;
        }
        if (r == 0) break;
    }
    free(s->rd);
    s->rd = NULL;
    sm__stream_set_eof(s);
    if (o->on_eof) {
        o->on_eof(s);
        if (!sm__stream_live(s)) return;
    }
    /* Finish our side too, unless half-open. */
    if (!o->half_open) sm__stream_shut_req(s, false);
    rx_flush(s, rx);
}

void
sm__rx_fail(sm_stream *s, int err)
{
    sm__stream_fail(s, err, "read: %s", sm_strerror(err));
}

bool
sm__rx_end(sm_stream *s, sm__rx *rx)
{
    if (!rx->flushed) {
        sm__stream_set_in_read(s, false);
        if (sm__stream_live(s)) sm__stream_flush(s);
    }
    return sm__stream_live(s) && sm__stream_reading(s) && !(s->flags & SM__S_EOF);
}
