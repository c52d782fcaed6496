/* Framed streams: unsent messages, after a lost connection or a close. The
 * queue keeps no per-message records: frames are found again by decoding the
 * queued bytes with the stream's own spec (the encoder made them, so they
 * decode exactly), which costs nothing until a connection is lost. */
#include <errno.h>
#include <stdlib.h>

#include "stream_internal.h"

/* The frame at p[0..len) (a queue holds whole frames only): its length, and
 * the message in *m. eof framing: the rest is one message. */
static size_t
next_frame(const sm_frame_spec *spec, const uint8_t *p, size_t len, sm_frame_msg *m)
{
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    ssize_t r = sm_frame_decode(&d, p, len, m);
    if (r == -EAGAIN) r = sm_frame_decode_eof(&d, p, len, m);
    if (r > 0 && m->data) return (size_t)r;
    /* Not a frame after all (cannot happen for what the encoder made): the
     * rest as raw bytes rather than losing track of it. */
    *m = (sm_frame_msg){.data = p, .len = len, .frame = p, .frame_len = len, .type = -1};
    return len;
}

size_t
sm__frames_start(const sm_stream *s, const uint8_t *p, size_t len, size_t off)
{
    size_t at = 0;
    while (at < off) {
        sm_frame_msg m;
        size_t f = next_frame(sm__tx_spec(s), p + at, len - at, &m);
        if (at + f > off) break;
        at += f;
    }
    return at;
}

/* The bytes of a copied, pinned or handed-over node (whole frames back to
 * back; a block's node starts like a reference's). */
static const uint8_t *
node_bytes(const sm__wnode *n)
{
    return n->kind == SM__WN_CHUNK ? ((const sm__wchunk *)n)->data : ((const sm__wref *)n)->p;
}

static bool
has_frames(const sm__wnode *n)
{
    return n && (n->kind == SM__WN_CHUNK || n->kind == SM__WN_PIN || n->kind == SM__WN_BLOCK);
}

/* Where the first frame not completely written starts in the head node. */
static size_t
first_unsent(const sm_stream *s, const sm__wq *q)
{
    const uint8_t *p = node_bytes(q->head);
    size_t at = (q->flags & SM__WQ_PING_HEAD) ? q->ping_end : 0;
    if (at >= q->off) return at;
    return at + sm__frames_start(s, p + at, q->head->len - at, q->off - at);
}

static void
node_free(sm_stream *s, sm__wnode *n)
{
    if (n->kind == SM__WN_PIN)
        sm__wq_pin_put(sm__sl(s), (sm__wref *)n);
    else
        free(n);
}

/* SM_UNSENT_KEEP: the next connection starts with the first message not
 * completely written, from its first byte; a heartbeat ping is dropped. */
void
sm__wq_requeue(sm_stream *s)
{
    sm__wq *q = s->wq;
    if (!q || !q->head) return;
    size_t start = has_frames(q->head) ? first_unsent(s, q) : 0;
    q->bytes = q->bytes + q->off - start;
    q->off = start;
    q->flags &= (uint8_t)~SM__WQ_PING_HEAD;
    if (has_frames(q->head) && start == q->head->len) {
        sm__wnode *h = q->head;
        q->head = h->next;
        if (!q->head) q->tail = NULL;
        q->off = 0;
        node_free(s, h);
    }
    sm__wq_free_if_empty(s);
}

void
sm__wq_report(sm_stream *s, sm__wq *q, int reason)
{
    /* Detached first: the callbacks may queue new messages on s. */
    if (s->wq == q) s->wq = NULL;
    sm__wq_unlist(q);
    const sm_stream_opts *o = s->opts;
    size_t at = has_frames(q->head) ? first_unsent(s, q) : 0;
    while (q->head) {
        sm__wnode *n = q->head;
        q->head = n->next;
        if (n->kind == SM__WN_TAKE) {
            sm__wtake *t = (sm__wtake *)n;
            t->free_cb(t->ctx, reason);
        } else {
            const uint8_t *p = node_bytes(n);
            while (at < n->len) {
                sm_frame_msg m;
                at += next_frame(sm__tx_spec(s), p + at, n->len - at, &m);
                if (o->on_dropped) o->on_dropped(s, &m);
            }
        }
        node_free(s, n);
        at = 0;
    }
    free(q);
}
