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

/* Where the first frame not completely written starts in the head chunk. */
static size_t
first_unsent(const sm_stream *s, const sm__wq *q)
{
    const sm__wchunk *c = (const sm__wchunk *)q->head;
    size_t at = (q->flags & SM__WQ_PING_HEAD) ? q->ping_end : 0;
    if (at >= q->off) return at;
    return at + sm__frames_start(s, c->data + at, c->n.len - at, q->off - at);
}

/* SM_UNSENT_KEEP: the next connection starts with the first message not
 * completely written, from its first byte; a heartbeat ping is dropped. */
void
sm__wq_requeue(sm_stream *s)
{
    sm__wq *q = s->wq;
    if (!q || !q->head) return;
    size_t start = q->head->kind == SM__WN_CHUNK ? first_unsent(s, q) : 0;
    q->bytes = q->bytes + q->off - start;
    q->off = start;
    q->flags &= (uint8_t)~SM__WQ_PING_HEAD;
    if (q->head->kind == SM__WN_CHUNK && start == q->head->len) {
        sm__wnode *h = q->head;
        q->head = h->next;
        if (!q->head) q->tail = NULL;
        q->off = 0;
        free(h);
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
    size_t at = q->head && q->head->kind == SM__WN_CHUNK ? first_unsent(s, q) : 0;
    while (q->head) {
        sm__wnode *n = q->head;
        q->head = n->next;
        if (n->kind == SM__WN_TAKE) {
            sm__wtake *t = (sm__wtake *)n;
            t->free_cb(t->ctx, reason);
        } else {
            sm__wchunk *c = (sm__wchunk *)n;
            while (at < n->len) {
                sm_frame_msg m;
                at += next_frame(sm__tx_spec(s), c->data + at, n->len - at, &m);
                if (o->on_dropped) o->on_dropped(s, &m);
            }
        }
        free(n);
        at = 0;
    }
    free(q);
}
