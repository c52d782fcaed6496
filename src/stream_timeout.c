/* Framed streams: read, write and idle timeouts and heartbeats, for all the
 * streams of a loop with one timer and no per-stream timer.
 *
 * Each stream records when it last read and wrote (two 32-bit stores per
 * syscall, nothing else). Its deadlines follow from those times and its
 * options, and activity only ever moves them later, so the loop keeps each
 * timed stream in a hashed timing wheel under a lower bound of its next
 * deadline: when that slot comes due, the stream's deadlines are computed
 * exactly and it either times out, sends a heartbeat, or moves to the slot
 * of its true next deadline. Activity costs no list operation at all (cheaper
 * than moving the stream to the tail of a list, libev's recipe, which also
 * only works for one kind of timeout); the few events that make a deadline
 * earlier (blocking on a full socket with a write timeout, emptying the queue
 * with a heartbeat) move the stream, in O(1). A slot is a tick of
 * SM_STREAM_TIMER_RES_MS; deadlines beyond the wheel's horizon (512 ticks,
 * 4 s) park the stream at the horizon, to be looked at again then. */
#include <errno.h>
#include <stdint.h>

#include "internal.h"
#include "stream_internal.h"

#define RES  SM_STREAM_TIMER_RES_MS
#define MASK (SM__WHEEL_SLOTS - 1)
/* Timestamps older than this are moved up to it: every timed stream is
 * looked at within the horizon, so wrapping 32-bit times never mislead. */
#define OLDEST ((uint32_t)1 << 30)

enum { W_NONE, W_HEARTBEAT, W_READ, W_WRITE, W_IDLE, W_PING };

bool
sm__timeouts_used(const sm_stream_opts *o)
{
    return o->read_timeout_ms || o->write_timeout_ms || o->idle_timeout_ms || o->heartbeat_ms ||
           o->heartbeat_timeout_ms;
}

/* The absolute time of a 32-bit timestamp (refreshing an ancient one). */
static int64_t
absolute(uint32_t *ts, int64_t now)
{
    uint32_t age = (uint32_t)now - *ts;
    if (age > OLDEST) {
        age = OLDEST;
        *ts = (uint32_t)now - OLDEST;
    }
    return now - (int64_t)age;
}

static void
consider(int64_t *best, int *what, int64_t at, int w)
{
    if (at < *best) {
        *best = at;
        *what = w;
    }
}

static int64_t
next_deadline(sm_stream *s, int64_t now, int *what)
{
    const sm_stream_opts *o = s->opts;
    int64_t rx = absolute(&s->rx_ts, now), tx = absolute(&s->tx_ts, now);
    int64_t best = INT64_MAX;
    *what = W_NONE;
    if (o->heartbeat_timeout_ms) consider(&best, what, rx + o->heartbeat_timeout_ms, W_HEARTBEAT);
    if (o->read_timeout_ms) consider(&best, what, rx + o->read_timeout_ms, W_READ);
    if (o->write_timeout_ms && (s->flags & SM__S_BLOCKED) && s->wq)
        consider(&best, what, absolute(&s->wq->progress, now) + o->write_timeout_ms, W_WRITE);
    if (o->idle_timeout_ms) consider(&best, what, SM__MAX(rx, tx) + o->idle_timeout_ms, W_IDLE);
    /* A ping queues behind nothing: while the queue holds bytes, writing it is
     * what the peer will hear (and tx moves when it does). */
    if (o->heartbeat_ms && !s->wq) consider(&best, what, tx + o->heartbeat_ms, W_PING);
    return best;
}

/* ---- the wheel -------------------------------------------------------------- */

static void
arm(sm__stream_loop *sl, int64_t tick)
{
    int64_t now = sm_loop_now(sl->loop), at = tick * RES;
    sm_timer_start(&sl->timer, at > now ? (uint64_t)(at - now) : 0, 0); /* cannot fail */
    sl->timer_tick = tick;
}

static void
insert(sm__stream_loop *sl, sm_stream *s, int64_t at)
{
    if (sl->timed == 0 && !sl->in_cb) sl->tick = sm_loop_now(sl->loop) / RES;
    int64_t tick = at / RES + (at % RES != 0);
    if (tick < sl->tick) tick = sl->tick;
    if (tick > sl->tick + MASK) tick = sl->tick + MASK;
    size_t i = (size_t)(tick & MASK);
    s->t_next = sl->slots[i];
    if (s->t_next) s->t_next->t_pprev = &s->t_next;
    sl->slots[i] = s;
    s->t_pprev = &sl->slots[i];
    sl->used[i / 64] |= (uint64_t)1 << (i % 64);
    sl->timed++;
    if (!sl->in_cb && tick < sl->timer_tick) arm(sl, tick);
}

static void
unlink_timed(sm__stream_loop *sl, sm_stream *s)
{
    *s->t_pprev = s->t_next;
    if (s->t_next) s->t_next->t_pprev = s->t_pprev;
    s->t_next = NULL;
    s->t_pprev = NULL;
    sl->timed--;
}

void
sm__timeouts_remove(sm_stream *s)
{
    if (!s->t_pprev) return;
    sm__stream_loop *sl = sm__sl(s);
    unlink_timed(sl, s);
    if (sl->timed == 0 && !sl->in_cb) {
        sm_timer_stop(&sl->timer);
        sl->timer_tick = INT64_MAX;
    }
}

/* (Re)file s under its exact next deadline. Never acts, even if that is
 * past: callers may be inside a user's call; the wheel acts soon after. */
void
sm__timeouts_arm(sm_stream *s)
{
    if (!sm__timeouts_used(s->opts) || !sm__stream_live(s)) return;
    sm__stream_loop *sl = sm__sl(s);
    if (s->t_pprev) unlink_timed(sl, s);
    int what;
    int64_t at = next_deadline(s, sm_loop_now(s->io.loop), &what);
    if (what != W_NONE)
        insert(sl, s, at);
    else if (sl->timed == 0 && !sl->in_cb) {
        sm_timer_stop(&sl->timer);
        sl->timer_tick = INT64_MAX;
    }
}

/* A stream whose slot came due (and that is out of the wheel). */
static void
check(sm__stream_loop *sl, sm_stream *s, int64_t now)
{
    const sm_stream_opts *o = s->opts;
    for (int round = 0; round < 2; round++) {
        int what;
        int64_t at = next_deadline(s, now, &what);
        if (what == W_NONE) return;
        if (at > now) {
            insert(sl, s, at);
            return;
        }
        switch (what) {
        case W_HEARTBEAT:
            sm__stream_fail(s, SM_ERR_HEARTBEAT, "heartbeat lost: nothing received for %d ms",
                            o->heartbeat_timeout_ms);
            return;
        case W_READ:
            sm__stream_fail(s, -ETIMEDOUT, "read timeout: nothing received for %d ms",
                            o->read_timeout_ms);
            return;
        case W_WRITE:
            sm__stream_fail(s, -ETIMEDOUT,
                            "write timeout: %zu queued bytes made no progress for %d ms",
                            sm_stream_queued(s), o->write_timeout_ms);
            return;
        case W_IDLE:
            sm__stream_fail(s, -ETIMEDOUT, "idle timeout: nothing sent or received for %d ms",
                            o->idle_timeout_ms);
            return;
        default: /* W_PING */
            sm__stream_send_ping(s);
            if (!sm__stream_live(s) || s->t_pprev) return;
            break;
        }
    }
    /* Still due right after a ping went out in full: cannot happen (tx moved),
     * but never spin on it. */
    insert(sl, s, now + RES);
}

void
sm__wheel_cb(sm_timer *t)
{
    sm__stream_loop *sl = t->data;
    int64_t now = sm_loop_now(sl->loop), end = now / RES;
    sl->timer_tick = INT64_MAX;
    sl->in_cb = true;
    /* A loop late by more than the horizon: each slot once is enough. */
    if (end - sl->tick >= SM__WHEEL_SLOTS) sl->tick = end - MASK;
    for (; sl->tick <= end; sl->tick++) {
        size_t i = (size_t)(sl->tick & MASK);
        sm_stream *s;
        /* check() files a stream under a tick > end, never this slot. */
        while ((s = sl->slots[i]) != NULL) {
            unlink_timed(sl, s);
            check(sl, s, now);
        }
    }
    sl->in_cb = false;
    if (sl->timed == 0) return;
    /* The nearest non-empty slot; bits of emptied slots are cleared here. */
    for (int64_t k = 0; k < SM__WHEEL_SLOTS; k++) {
        int64_t tick = sl->tick + k;
        size_t i = (size_t)(tick & MASK);
        uint64_t *w = &sl->used[i / 64];
        if (*w == 0 && i % 64 == 0) {
            k += 63;
            continue;
        }
        if (!(*w & ((uint64_t)1 << (i % 64)))) continue;
        if (!sl->slots[i]) {
            *w &= ~((uint64_t)1 << (i % 64));
            continue;
        }
        arm(sl, tick);
        return;
    }
}
