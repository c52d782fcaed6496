/* Framed streams: the write queue. Copied messages are packed back to back
 * into chunks that grow geometrically (1 KiB ... 32 KiB), so many small
 * messages cost a few allocations; a big message or a caller's buffers
 * (sendv_take) get a node of their own. Echo replies (sm_stream_send_frame
 * of a received frame) are not copied where that can be avoided: a
 * reference into the batch's buffer, written before the batch ends; on a
 * completion transport a reference that pins the provided buffer until
 * its write completes; a frame alone in its block takes the block along.
 * The queue goes out by sendmsg with up to IOV_MAX pieces, and exists only
 * while something is queued. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "stream_internal.h"
#include "transport.h"

#define CHUNK_FIRST 1024
#define CHUNK_MAX   (32 * 1024)
/* Frames above this get a node of their own: a chunk then wastes less than a
 * quarter of itself on a frame that did not fit. */
#define BIG (CHUNK_MAX / 4)
/* Written chunks the loop keeps for reuse: at most SPARES of them, of at
 * most SPARE_CAP bytes each (a 64 KiB frame with its header), and at most
 * SPARE_BYTES of capacity in all. Per loop, not per stream: an idle
 * connection holds none. */
#define SPARES      64
#define SPARE_CAP   ((size_t)(64 << 10) + 64)
#define SPARE_BYTES ((size_t)256 << 10)
/* Emptied queues the loop keeps for the next ones. */
#define SPARE_QUEUES 64
/* Written blocks (a frame's whole block, handed over by its reply) the
 * loop keeps for the next frames' blocks: at most BLOCKS, BLOCK_BYTES in
 * all, none over BLOCK_CAP. */
#define BLOCKS      8
#define BLOCK_CAP   ((size_t)1 << 20)
#define BLOCK_BYTES ((size_t)512 << 10)
/* The preprocessor picks, not ?:, whose two arms are the same where IOV_MAX
 * is 1024 (Linux). */
#if IOV_MAX < 1024
#define WRITE_IOV IOV_MAX
#else
#define WRITE_IOV 1024
#endif

/* ---- queue structure -------------------------------------------------------- */

static sm__wq *
queue_get(sm_stream *s)
{
    if (s->wq) return s->wq;
    /* A queue comes and goes with every batch of replies: reuse one. */
    sm__stream_loop *sl = sm__sl(s);
    sm__wq *q = sl->spare_wq;
    if (q) {
        sl->spare_wq = (sm__wq *)(void *)q->link.next; /* link is first */
        sl->nspare_wq--;
        memset(q, 0, sizeof *q);
    } else if (!(q = calloc(1, sizeof *q))) {
        return NULL;
    }
    q->s = s;
    q->chunk_next = CHUNK_FIRST;
    s->wq = q;
    return q;
}

void
sm__wq_free_if_empty(sm_stream *s)
{
    sm__wq *q = s->wq;
    if (!q || q->head) return;
    sm__wq_unlist(q);
    s->wq = NULL;
    sm__stream_loop *sl = sm__sl(s);
    /* On a completion transport a queue lives until its write completes,
     * so every busy stream holds one: keep a few, not one. */
    if (sl->nspare_wq < SPARE_QUEUES) {
        q->link.next = (sm__link *)(void *)sl->spare_wq;
        sl->spare_wq = q;
        sl->nspare_wq++;
    } else {
        free(q);
    }
}

/* The only writer of q->tail. sm_stream_send_frame's fast path grows the
 * tail node in place, so it must end whenever the tail changes. */
static void
set_tail(sm__wq *q, sm__wnode *n)
{
    q->tail = n;
    sm__fast_end(sm__sl(q->s));
}

static void
append(sm__wq *q, sm__wnode *n)
{
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    set_tail(q, n);
}

/* Where frame_len bytes of a copied frame go, or NULL (ENOMEM). The caller
 * fills them and then counts them in (commit). */
static uint8_t *
reserve(sm__wq *q, size_t frame_len, sm__wchunk **into)
{
    /* The tail chunk fills here too: the copying fast path's room is gone. */
    sm__fast_end(sm__sl(q->s));
    sm__wchunk *c = (sm__wchunk *)q->tail;
    if (frame_len <= BIG && c && c->n.kind == SM__WN_CHUNK && c->cap - c->n.len >= frame_len) {
        *into = c;
        return c->data + c->n.len;
    }
    size_t cap = frame_len;
    if (frame_len <= BIG) {
        cap = SM__MAX(q->chunk_next, frame_len);
        q->chunk_next = SM__MIN(cap * 2, (size_t)CHUNK_MAX);
    }
    /* A chunk comes and goes with every batch of copied replies (and on a
     * completion transport stays until its write completes, so every busy
     * stream holds one): reuse the loop's spares. */
    sm__stream_loop *sl = sm__sl(q->s);
    c = NULL;
    if (cap <= SPARE_CAP) {
        /* First fit: a bigger spare only takes more frames behind this one. */
        for (sm__wnode **pp = &sl->spare_chunks; *pp; pp = &(*pp)->next) {
            if (((sm__wchunk *)*pp)->cap < cap) continue;
            c = (sm__wchunk *)*pp;
            *pp = c->n.next;
            sl->nspare--;
            sl->spare_bytes -= c->cap;
            cap = c->cap;
            break;
        }
    }
    if (!c && !(c = malloc(sizeof *c + cap))) return NULL;
    c->n.len = 0;
    c->n.kind = SM__WN_CHUNK;
    c->cap = cap;
    append(q, &c->n);
    *into = c;
    return c->data;
}

/* A written chunk: kept among the loop's spares while they stay within
 * SPARES and SPARE_BYTES, else freed (a spare is memory no stream uses). */
static void
chunk_put(sm__stream_loop *sl, sm__wchunk *c)
{
    if (c->cap > SPARE_CAP || sl->nspare >= SPARES || sl->spare_bytes + c->cap > SPARE_BYTES) {
        free(c);
        return;
    }
    c->n.next = sl->spare_chunks;
    sl->spare_chunks = &c->n;
    sl->nspare++;
    sl->spare_bytes += c->cap;
}

static void
ref_put(sm__stream_loop *sl, sm__wref *r)
{
    r->n.next = (sm__wnode *)(void *)sl->ref_free; /* n is first */
    sl->ref_free = r;
    sl->refs_used--;
}

static sm__wref *
ref_take(sm__stream_loop *sl)
{
    sm__wref *r = sl->ref_free;
    if (r) {
        sl->ref_free = (sm__wref *)(void *)r->n.next;
        sl->refs_used++;
    }
    return r;
}

/* A node for a pinned reference to the batch's provided buffer, with the
 * buffer pinned; NULL when the pins or the nodes are at their bounds (the
 * frame is copied then). */
static sm__wref *
pin_take(sm__stream_loop *sl)
{
#ifdef SM_HAVE_URING
    sm__wref *r = sl->pin_free;
    if (!r) {
        if (sl->pin_nodes >= SM__PIN_NODES || !(r = malloc(sizeof *r))) return NULL;
        sl->pin_nodes++;
    } else {
        sl->pin_free = (sm__wref *)(void *)r->n.next;
    }
    if (sm__tpu_pin(sl->tpu, sl->pin_bid)) {
        r->bid = sl->pin_bid;
        return r;
    }
    r->n.next = (sm__wnode *)(void *)sl->pin_free;
    sl->pin_free = r;
#else
    (void)sl;
#endif
    return NULL;
}

/* A written block: kept for the reader's next block within the bounds,
 * else freed. */
static void
block_put(sm__stream_loop *sl, sm__wblock *b)
{
    if (b->cap > BLOCK_CAP || sl->nblocks >= BLOCKS || sl->block_bytes + b->cap > BLOCK_BYTES) {
        free(b);
        return;
    }
    b->n.next = sl->spare_blocks;
    sl->spare_blocks = &b->n;
    sl->nblocks++;
    sl->block_bytes += b->cap;
}

void *
sm__wq_block_take(sm__stream_loop *sl, size_t cap, size_t *got)
{
    /* Not a big block for a small leftover: within 4x, or any up to the
     * size B's frames have. */
    for (sm__wnode **pp = &sl->spare_blocks; *pp; pp = &(*pp)->next) {
        sm__wblock *b = (sm__wblock *)*pp;
        if (b->cap < cap || (b->cap / 4 > cap && b->cap > SPARE_CAP)) continue;
        *pp = b->n.next;
        sl->nblocks--;
        sl->block_bytes -= b->cap;
        *got = b->cap;
        return b;
    }
    return NULL;
}

void
sm__wq_pin_put(sm__stream_loop *sl, sm__wref *r)
{
#ifdef SM_HAVE_URING
    sm__tpu_unpin(sl->tpu, r->bid);
#endif
    r->n.next = (sm__wnode *)(void *)sl->pin_free;
    sl->pin_free = r;
}

int
sm__wq_unref(sm_stream *s)
{
    sm__stream_loop *sl = sm__sl(s);
    sm__wq *q = s->wq;
    sm__fast_end(sl); /* a new batch buffer, or none: no fast path */
    if (!sl->refs_used || !q) return 0;
    int rc = 0;
    sm__wnode *prev = NULL;
    for (sm__wnode *n = q->head; n;) {
        sm__wnode *next = n->next;
        if (n->kind != SM__WN_REF) {
            prev = n;
            n = next;
            continue;
        }
        sm__wref *r = (sm__wref *)n;
        /* A partly written head keeps its unfinished frame whole: a lost
         * connection resends from that frame's first byte. */
        size_t from = n == q->head ? sm__frames_start(s, r->p, n->len, q->off) : 0;
        size_t len = n->len - from;
        sm__wchunk *c = malloc(sizeof *c + len);
        if (c) {
            memcpy(c->data, r->p + from, len);
            c->n.len = len;
            c->n.kind = SM__WN_CHUNK;
            c->cap = len;
            c->n.next = next;
            if (n == q->head) q->off -= from;
        } else {
            rc = -ENOMEM;
            q->bytes -= n == q->head ? n->len - q->off : n->len;
            if (n == q->head) q->off = 0;
        }
        sm__wnode *repl = c ? &c->n : next;
        if (prev)
            prev->next = repl;
        else
            q->head = repl;
        if (q->tail == n) set_tail(q, c ? &c->n : prev);
        if (c) prev = &c->n;
        ref_put(sl, r);
        n = next;
    }
    sm__wq_free_if_empty(s);
    return rc;
}

void
sm__wq_unlist(sm__wq *q)
{
    if (!(q->flags & SM__WQ_LISTED)) return;
    q->link.prev->next = q->link.next;
    q->link.next->prev = q->link.prev;
    q->link.next = q->link.prev = NULL;
    q->flags &= (uint8_t)~SM__WQ_LISTED;
}

void
sm__stream_kick(sm_stream *s)
{
    sm__wq *q = s->wq;
    if (!q || (q->flags & SM__WQ_LISTED)) return;
    sm__stream_loop *sl = sm__sl(s);
    q->link.next = &sl->flush_list;
    q->link.prev = sl->flush_list.prev;
    sl->flush_list.prev->next = &q->link;
    sl->flush_list.prev = &q->link;
    q->flags |= SM__WQ_LISTED;
    sm_defer_start(&sl->flush);
}

void
sm__stream_flush_all(sm_defer *d)
{
    sm__stream_loop *sl = d->data;
    sm__link *head = &sl->flush_list, run;
    if (head->next == head) return;
    /* Work on a private list: queues kicked by callbacks run from here wait
     * for the next iteration (the defer re-queues itself then). */
    run.next = head->next;
    run.prev = head->prev;
    run.next->prev = &run;
    run.prev->next = &run;
    head->next = head->prev = head;
    while (run.next != &run) {
        sm__wq *q = (sm__wq *)run.next;
        sm__wq_unlist(q);
        sm__stream_flush(q->s);
    }
}

/* ---- enqueueing ------------------------------------------------------------- */

static int
can_send(const sm_stream *s)
{
    if (!s) return -EINVAL;
    if (s->flags & SM__S_CLOSING) return SM_ERR_CLOSED;
    if (s->flags & (SM__S_SHUT_REQ | SM__S_DETACH)) return -EPIPE; /* no more ours to send */
    return 0;
}

/* The hard cap: closing (or reconnecting) now keeps memory bounded. A frame
 * bigger than the cap on its own is refused without closing. */
static int
check_cap(sm_stream *s, size_t frame_len)
{
    size_t queued = s->wq ? s->wq->bytes : 0, cap = sm__cap(s->opts);
    /* Never fits, however fast the peer: the message's fault, not the peer's. */
    if (frame_len > cap) return -EMSGSIZE;
    if (queued <= cap - frame_len) return 0;
    sm__stream_fail(s, SM_ERR_SLOW_CONSUMER,
                    "slow consumer: %zu queued bytes + a %zu-byte frame exceed max_queued %zu",
                    queued, frame_len, cap);
    return SM_ERR_SLOW_CONSUMER;
}

/* After a frame was queued: backpressure, and getting it written. */
static int
queued(sm_stream *s, sm__wq *q, bool was_empty, bool may_write_now)
{
    int ret = 0;
    /* No zc_next reset here: the fast path is set up only below high_water
     * with the tail its own reference node, and any tail change or state
     * transition ends it (set_tail, flags_change). */
    if (q->bytes > sm__high(s->opts)) {
        ret = 1;
        sm__stream_set_above(s, true);
    }
    /* Not connected: written once connected. In a read batch: written at its
     * end. Blocked: written when the socket says so. */
    if ((s->flags & (SM__S_CONNECTED | SM__S_IN_READ | SM__S_BLOCKED | SM__S_CLOSING)) !=
        SM__S_CONNECTED)
        return ret;
    /* Writing here runs no callback only while no on_drain can be owed. */
    if (was_empty && may_write_now && s->opts->write_now && !(s->flags & SM__S_ABOVE))
        sm__stream_flush(s);
    else
        sm__stream_kick(s);
    return ret;
}

/* A delimiter must not occur inside a delimited payload, also not across the
 * border of two pieces: carry the last delim_len-1 bytes seen. */
static bool
iov_has_delim(const sm_frame_spec *spec, const struct iovec *iov, int iovcnt)
{
    const uint8_t *d = spec->delim;
    size_t dl = spec->delim_len, carried = 0;
    uint8_t carry[2 * SM_FRAME_DELIM_MAX];
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t n = iov[i].iov_len;
        if (n == 0) continue;
        if (memmem(p, n, d, dl)) return true;
        if (dl == 1) continue;
        size_t take = SM__MIN(n, dl - 1);
        memcpy(carry + carried, p, take);
        if (carried && memmem(carry, carried + take, d, dl)) return true;
        /* Keep the last dl-1 bytes of everything so far. */
        size_t total = carried + take, keep = SM__MIN(total, dl - 1);
        if (n > take) {
            memcpy(carry, p + n - keep, keep);
        } else {
            memmove(carry, carry + total - keep, keep);
        }
        carried = keep;
    }
    return false;
}

/* The header and trailer of one message: the caller's header bytes
 * (sm_frame_encode_hdr) when head is not NULL, else those of type. */
static int
frame_header_of(const sm_stream *s, const void *head, size_t head_len, int type,
                const struct iovec *iov, int iovcnt, size_t *len, sm_frame_hdr *h)
{
    if (iovcnt < 0 || (iovcnt && !iov)) return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len) return -EINVAL;
        if (iov[i].iov_len > SIZE_MAX - total) return -EMSGSIZE;
        total += iov[i].iov_len;
    }
    const sm_frame_spec *spec = sm__tx_spec(s);
    /* One piece: the encoder checks it; several: checked here. */
    const void *whole = iovcnt == 1 ? iov[0].iov_base : NULL;
    if (iovcnt > 1 && spec->kind == SM_FRAME_DELIM && iov_has_delim(spec, iov, iovcnt))
        return -EINVAL;
    *len = total;
    return head ? sm_frame_encode_hdr(spec, head, head_len, whole, total, h)
                : sm_frame_encode(spec, whole, total, type, h);
}

static int
frame_header(const sm_stream *s, int type, const struct iovec *iov, int iovcnt, size_t *len,
             sm_frame_hdr *h)
{
    return frame_header_of(s, NULL, 0, type, iov, iovcnt, len, h);
}

static int
send_copy_hdr(sm_stream *s, const void *head, size_t head_len, int type, const struct iovec *iov,
              int iovcnt, bool ping)
{
    int rc = can_send(s);
    if (rc < 0) return rc;
    sm_frame_hdr h;
    size_t len;
    if ((rc = frame_header_of(s, head, head_len, type, iov, iovcnt, &len, &h)) < 0) return rc;
    if (len > SIZE_MAX - 128) return -EMSGSIZE;
    size_t frame = h.head_len + len + h.tail_len;
    if (frame == 0) return 0; /* an empty eof-framed message: nothing to send */
    if ((rc = check_cap(s, frame)) < 0) return rc;
    bool was_empty = !s->wq;
    sm__wq *q = queue_get(s);
    sm__wchunk *c;
    uint8_t *p = q ? reserve(q, frame, &c) : NULL;
    if (!p) {
        sm__wq_free_if_empty(s);
        return -ENOMEM;
    }
    memcpy(p, h.head, h.head_len);
    p += h.head_len;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len) continue;
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    memcpy(p, h.tail, h.tail_len);
    c->n.len += frame;
    q->bytes += frame;
    if (ping && was_empty) {
        q->flags |= SM__WQ_PING_HEAD;
        q->ping_end = frame;
    }
    return queued(s, q, was_empty, true);
}

static int
send_copy(sm_stream *s, int type, const struct iovec *iov, int iovcnt, bool ping)
{
    return send_copy_hdr(s, NULL, 0, type, iov, iovcnt, ping);
}

int
sm_stream_send_hdr(sm_stream *s, const void *hdr, size_t hdr_len, const void *msg, size_t len)
{
    if (!hdr && hdr_len) return -EINVAL;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    /* A non-NULL head selects the caller's header bytes, even 0 of them. */
    return send_copy_hdr(s, hdr ? hdr : "", hdr_len, -1, &v, 1, false);
}

int
sm_stream_send(sm_stream *s, const void *msg, size_t len)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return send_copy(s, -1, &v, 1, false);
}

int
sm_stream_send_type(sm_stream *s, int type, const void *msg, size_t len)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return send_copy(s, type, &v, 1, false);
}

int
sm_stream_sendv(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    return send_copy(s, -1, iov, iovcnt, false);
}

/* Not the echo's common case: checks, a new reference node, or a copy. */
static int __attribute__((noinline)) send_frame_slow(sm_stream *s, const sm_frame_msg *msg)
{
    int rc = can_send(s);
    if (rc < 0) return rc;
    if (!msg || (!msg->frame && msg->frame_len)) return -EINVAL;
    size_t len = msg->frame_len;
    if (len == 0) return 0;
    if (msg->len > sm_frame_max(sm__tx_spec(s))) return -EMSGSIZE;
    if ((rc = check_cap(s, len)) < 0) return rc;
    bool was_empty = !s->wq;
    sm__wq *q = queue_get(s);
    if (!q) return -ENOMEM;
    sm__stream_loop *sl = sm__sl(s);
    uintptr_t f = (uintptr_t)msg->frame;
    bool zc = sl->zc_s == s && f >= sl->zc_lo && f <= sl->zc_hi && len <= sl->zc_hi - f &&
              sm__stream_live(s);
    if (zc && sl->zc_block) {
        /* The stream's block holds exactly this frame: the block goes
         * along with the reply, no copy (also none of an unwritten rest
         * by sm__wq_unref). Other frames of a block: by reference where
         * the write is done within the batch, else copied. */
        if (f == sl->zc_lo && len == sl->zc_hi - f && s->rd && (uintptr_t)s->rd->data == f) {
            sm__wblock *b = sm__rx_block_give(s, len);
            /* The block is the queue's now: the same frame sent again is
             * copied, never referenced into a node the flush may free. */
            sl->zc_s = NULL;
            append(q, &b->n);
            q->bytes += len;
            return queued(s, q, was_empty, true);
        }
        if (sm__tp_of(s)->async_send) zc = false;
    }
    if (zc) {
        /* A completion transport's buffer: pinned until the write is done
         * (the batch ends before it is). */
        uint8_t kind = sl->zc_pin ? SM__WN_PIN : SM__WN_REF;
        sm__wref *r = (sm__wref *)q->tail;
        if (r && r->n.kind == kind && (uintptr_t)r->p + r->n.len == f &&
            (kind == SM__WN_REF || r->bid == sl->pin_bid)) {
            r->n.len += len; /* the next frame of the same buffer */
        } else if ((r = kind == SM__WN_PIN ? pin_take(sl) : ref_take(sl))) {
            r->n.len = len;
            r->n.kind = kind;
            r->p = msg->frame;
            append(q, &r->n);
        }
        if (r) {
            q->bytes += len;
            rc = queued(s, q, was_empty, true);
            /* The next frame right behind this one takes the fast path. */
            size_t high = sm__high(s->opts);
            if (rc == 0 && q->bytes < high) {
                sl->zc_next = f + len;
                sl->zc_room = SM__MIN(sl->zc_hi - sl->zc_next, high - q->bytes);
            }
            return rc;
        }
    }
    /* Not in the read batch's buffer (or no node left): a copy. */
    sm__wchunk *c;
    uint8_t *p = reserve(q, len, &c);
    if (!p) {
        sm__wq_free_if_empty(s);
        return -ENOMEM;
    }
    memcpy(p, msg->frame, len);
    c->n.len += len;
    q->bytes += len;
    rc = queued(s, q, was_empty, true);
    /* The next frames join this chunk at once, while it has room below
     * high_water and the stream is in a state that writes them anyway (a
     * batch, a pending flush, a write in flight). */
    if (rc == 0 && s->wq == q && q->tail == &c->n && (s->flags & (SM__S_IN_READ | SM__S_BLOCKED)) &&
        sm__stream_live(s)) {
        size_t high = sm__high(s->opts), cap = sm__cap(s->opts);
        size_t lim = SM__MIN(high, cap);
        if (q->bytes < lim) {
            sl->cp_s = s;
            sl->cp_room = SM__MIN(c->cap - c->n.len, lim - q->bytes);
            sl->cp_max = sm_frame_max(sm__tx_spec(s));
        }
    }
    return rc;
}

/* The copying fast path, else send_frame_slow. Apart from the by-reference
 * one, so that one needs no registers saved (no stack frame). */
static int __attribute__((noinline)) send_frame_copy(sm_stream *s, const sm_frame_msg *msg)
{
    if (s && msg) {
        sm__stream_loop *sl = sm__sl(s);
        size_t len = msg->frame_len;
        if (sl->cp_s == s && len <= sl->cp_room && len && msg->frame && msg->len <= sl->cp_max) {
            sm__wchunk *c = (sm__wchunk *)s->wq->tail;
            assert(c->n.kind == SM__WN_CHUNK && c->cap - c->n.len >= len);
            memcpy(c->data + c->n.len, msg->frame, len);
            c->n.len += len;
            s->wq->bytes += len;
            sl->cp_room -= len;
            return 0;
        }
    }
    return send_frame_slow(s, msg);
}

int
sm_stream_send_frame(sm_stream *s, const sm_frame_msg *msg)
{
    /* The echo's common case: the next frame of the read batch, right
     * behind the frames just queued by reference, with room below
     * high_water (zc_next is reset by anything else that touches the
     * queue or the stream's state). */
    if (s && msg) {
        sm__stream_loop *sl = sm__sl(s);
        size_t len = msg->frame_len;
        if ((uintptr_t)msg->frame == sl->zc_next && sl->zc_s == s && len <= sl->zc_room) {
            assert(s->wq && s->wq->tail &&
                   (s->wq->tail->kind == SM__WN_REF || s->wq->tail->kind == SM__WN_PIN) &&
                   ((const sm__wref *)s->wq->tail)->p + s->wq->tail->len == msg->frame);
            sl->zc_next += len;
            sl->zc_room -= len;
            s->wq->tail->len += len;
            s->wq->bytes += len;
            return 0;
        }
    }
    return send_frame_copy(s, msg);
}

int
sm__stream_send_ping(sm_stream *s)
{
    const sm_stream_opts *o = s->opts;
    struct iovec v = {.iov_base = (void *)(o->ping ? o->ping : ""), .iov_len = o->ping_len};
    int rc = send_copy(s, o->ping_type, &v, 1, true);
    if (rc >= 0) sm__stream_flush(s);
    return rc;
}

int
sm_stream_sendv_take(sm_stream *s, const struct iovec *iov, int iovcnt, sm_stream_free_cb free_cb,
                     void *ctx)
{
    int rc = can_send(s);
    if (rc < 0) return rc;
    if (!free_cb || iovcnt > WRITE_IOV - 2) return -EINVAL;
    sm_frame_hdr h;
    size_t len;
    if ((rc = frame_header(s, -1, iov, iovcnt, &len, &h)) < 0) return rc;
    if (len > SIZE_MAX - 128) return -EMSGSIZE;
    size_t frame = h.head_len + len + h.tail_len;
    if ((rc = check_cap(s, frame)) < 0) return rc;
    bool was_empty = !s->wq;
    sm__wq *q = queue_get(s);
    sm__wtake *t = q ? malloc(sizeof *t + (size_t)(iovcnt + 2) * sizeof(struct iovec)) : NULL;
    if (!t) {
        sm__wq_free_if_empty(s);
        return -ENOMEM;
    }
    int k = 0;
    if (h.head_len) {
        memcpy(t->head, h.head, h.head_len);
        t->iov[k++] = (struct iovec){.iov_base = t->head, .iov_len = h.head_len};
    }
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len) t->iov[k++] = iov[i];
    if (h.tail_len) {
        memcpy(t->tail, h.tail, h.tail_len);
        t->iov[k++] = (struct iovec){.iov_base = t->tail, .iov_len = h.tail_len};
    }
    t->iovcnt = k;
    t->free_cb = free_cb;
    t->ctx = ctx;
    t->n.len = frame;
    t->n.kind = SM__WN_TAKE;
    append(q, &t->n);
    q->bytes += frame;
    /* Written from a callback, never here: its free_cb must not run inside
     * this call. */
    return queued(s, q, was_empty, false);
}

size_t
sm_stream_queued(const sm_stream *s)
{
    return s && s->wq ? s->wq->bytes : 0;
}

/* ---- writing ------------------------------------------------------------------ */

static int
fill_iov(const sm__wq *q, struct iovec *iov, int max, size_t *total)
{
    int cnt = 0;
    size_t skip = q->off, sum = 0;
    for (const sm__wnode *n = q->head; n && cnt < max; n = n->next) {
        if (n->kind != SM__WN_TAKE) {
            const uint8_t *p =
                n->kind == SM__WN_CHUNK ? ((const sm__wchunk *)n)->data : ((const sm__wref *)n)->p;
            if (n->len > skip) {
                iov[cnt++] =
                    (struct iovec){.iov_base = (void *)(p + skip), .iov_len = n->len - skip};
                sum += n->len - skip;
            }
        } else {
            const sm__wtake *t = (const sm__wtake *)n;
            size_t sk = skip;
            for (int i = 0; i < t->iovcnt && cnt < max; i++) {
                size_t l = t->iov[i].iov_len;
                if (sk >= l) {
                    sk -= l;
                    continue;
                }
                iov[cnt++] = (struct iovec){.iov_base = (uint8_t *)t->iov[i].iov_base + sk,
                                            .iov_len = l - sk};
                sum += l - sk;
                sk = 0;
            }
        }
        skip = 0;
    }
    *total = sum;
    return cnt;
}

/* n bytes went out: drop what is done. Finished sendv_take nodes go onto
 * *done, for their free callbacks once the stream's state is consistent. */
static void
advance(sm__wq *q, size_t n, sm__wnode ***done_tail)
{
    q->bytes -= n;
    while (q->head) {
        sm__wnode *h = q->head;
        size_t rem = h->len - q->off;
        if (n < rem) {
            q->off += n;
            if ((q->flags & SM__WQ_PING_HEAD) && q->off >= q->ping_end)
                q->flags &= (uint8_t)~SM__WQ_PING_HEAD;
            return;
        }
        n -= rem;
        q->off = 0;
        q->flags &= (uint8_t)~SM__WQ_PING_HEAD;
        q->head = h->next;
        if (!q->head) set_tail(q, NULL);
        if (h->kind == SM__WN_TAKE) {
            h->next = NULL;
            **done_tail = h;
            *done_tail = &h->next;
        } else if (h->kind == SM__WN_REF) {
            ref_put(sm__sl(q->s), (sm__wref *)h);
        } else if (h->kind == SM__WN_PIN) {
            sm__wq_pin_put(sm__sl(q->s), (sm__wref *)h);
        } else if (h->kind == SM__WN_BLOCK) {
            block_put(sm__sl(q->s), (sm__wblock *)h);
        } else {
            chunk_put(sm__sl(q->s), (sm__wchunk *)h);
        }
    }
}

/* Write as much of the queue as the socket takes (no syscall per message),
 * then the consequences: FIN, clean close, resumed reading, callbacks. */
void
sm__stream_flush(sm_stream *s)
{
    if ((s->flags & (SM__S_CONNECTED | SM__S_CLOSING | SM__S_IN_READ)) != SM__S_CONNECTED) return;
    const sm_stream_opts *o = s->opts;
    sm__wq *q = s->wq;
    sm__wnode *done = NULL, **done_tail = &done;
    int err = 0;
    if (q) {
        sm__wq_unlist(q);
        bool blocked = false;
        while (q->head) {
            struct iovec iov[WRITE_IOV];
            size_t total;
            int cnt = fill_iov(q, iov, WRITE_IOV, &total);
            if (total == 0) { /* only empty nodes left */
                advance(q, 0, &done_tail);
                continue;
            }
            ssize_t n = sm__tp_of(s)->send(s, iov, cnt);
            if (n == -EAGAIN || n == -EINPROGRESS) {
                blocked = true;
                break;
            }
            if (n < 0) {
                err = (int)n;
                break;
            }
            s->tx_ts = q->progress = sm__now32(s);
            advance(q, (size_t)n, &done_tail);
            if ((size_t)n < total && q->head) {
                blocked = true; /* the kernel took less: full for now */
                break;
            }
        }
        if (!err) {
            if (q->head) {
                sm__stream_set_blocked(s, blocked);
            } else {
                sm__stream_set_blocked(s, false);
                sm__wq_free_if_empty(s);
                if (o->heartbeat_ms) sm__timeouts_arm(s);
            }
        }
    }
    size_t left = s->wq ? s->wq->bytes : 0;
    bool drained = false;
    if (err) {
        sm__stream_fail(s, err, "write: %s", sm_strerror(err));
    } else {
        if ((s->flags & SM__S_ABOVE) && left <= sm__low(o)) {
            drained = true;
            sm__stream_set_above(s, false);
        }
        if (!s->wq && (s->flags & (SM__S_SHUT_REQ | SM__S_WR_DONE)) == SM__S_SHUT_REQ &&
            sm__stream_live(s)) {
            sm__stream_set_wr_done(s);
            int rc = sm__tp_of(s)->shutdown(s);
            if (rc < 0) sm__stream_fail(s, rc, "shutdown: %s", sm_strerror(rc));
        }
        if ((s->flags & (SM__S_WR_DONE | SM__S_EOF)) == (SM__S_WR_DONE | SM__S_EOF) &&
            sm__stream_live(s))
            sm__stream_fail(s, 0, NULL);
    }
    if (!s->wq && (s->flags & SM__S_DETACH)) sm__detach_kick(s); /* flushed: hand off */
    /* User code last: it may close or send on this stream. */
    while (done) {
        sm__wtake *t = (sm__wtake *)done;
        done = done->next;
        t->free_cb(t->ctx, 0);
        free(t);
    }
    if (drained && o->on_drain && !(s->flags & SM__S_CLOSING)) o->on_drain(s);
}

void
sm__tx_ready(sm_stream *s)
{
    sm__stream_flush(s);
}

void
sm__tx_done(sm_stream *s, ssize_t n)
{
    sm__wq *q = s->wq;
    sm__wnode *done = NULL, **done_tail = &done;
    if (n > 0 && q) {
        s->tx_ts = q->progress = sm__now32(s);
        advance(q, (size_t)n, &done_tail);
    }
    if (sm__stream_live(s)) {
        if (n < 0)
            sm__stream_fail(s, (int)n, "write: %s", sm_strerror((int)n));
        else
            sm__stream_flush(s); /* the rest, and what the write's end brings */
    }
    while (done) {
        sm__wtake *t = (sm__wtake *)done;
        done = done->next;
        t->free_cb(t->ctx, 0);
        free(t);
    }
}
