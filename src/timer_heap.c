/* Timers: a binary min-heap of timer pointers ordered by (due, seq), each
 * timer knowing its place, so start, stop and restart are O(log n) and the
 * nearest deadline is O(1). The heap is 1-based: index 0 means "not
 * scheduled", which a zeroed timer already says. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "internal.h"
#include "loop_internal.h"

/* seq breaks ties so that timers due together fire in start order. It wraps
 * after 2^32 starts; comparing by difference keeps the order right as long
 * as timers due at the same millisecond were started fewer than 2^31 starts
 * apart, and a wrong tie-break never breaks the deadline order. */
static bool
before(const sm_timer *a, const sm_timer *b)
{
    if (a->due != b->due) return a->due < b->due;
    return (int32_t)(a->seq - b->seq) < 0;
}

static void
place(sm_timer **heap, uint32_t i, sm_timer *t)
{
    heap[i] = t;
    t->heap_index = i;
}

static void
sift_up(sm_timer **heap, uint32_t i)
{
    sm_timer *t = heap[i];
    while (i > 1 && before(t, heap[i / 2])) {
        place(heap, i, heap[i / 2]);
        i /= 2;
    }
    place(heap, i, t);
}

static void
sift_down(sm_timer **heap, uint32_t n, uint32_t i)
{
    sm_timer *t = heap[i];
    for (;;) {
        uint32_t c = 2 * i;
        if (c > n || c < i) break;
        if (c + 1 <= n && before(heap[c + 1], heap[c])) c++;
        if (!before(heap[c], t)) break;
        place(heap, i, heap[c]);
        i = c;
    }
    place(heap, i, t);
}

/* Restore the order around i after its timer's key changed either way. */
static void
fix(sm_loop *loop, uint32_t i)
{
    if (i > 1 && before(loop->heap[i], loop->heap[i / 2]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->heap_len, i);
}

static void
heap_remove(sm_loop *loop, sm_timer *t)
{
    uint32_t i = t->heap_index;
    sm_timer *last = loop->heap[loop->heap_len--];
    t->heap_index = 0;
    if (last == t) return;
    place(loop->heap, i, last);
    fix(loop, i);
}

static int64_t
add_ms(int64_t now, uint64_t ms)
{
    return ms >= (uint64_t)(INT64_MAX - now) ? INT64_MAX : now + (int64_t)ms;
}

/* Give t a new deadline and a fresh place in the tie order. */
static void
schedule(sm_loop *loop, sm_timer *t, uint64_t timeout_ms)
{
    t->due = add_ms(loop->now, timeout_ms);
    t->seq = loop->timer_seq++;
}

void
sm_timer_init(sm_loop *loop, sm_timer *t, sm_timer_cb cb)
{
    t->loop = loop;
    t->cb = cb;
    t->due = 0;
    t->repeat = 0;
    t->heap_index = 0;
    t->seq = 0;
}

int
sm_timer_start(sm_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    sm_loop *loop = t->loop;
    /* Inside a run, every callback of an iteration counts from the same
     * instant; outside, the cached time may be arbitrarily old. */
    if (!loop->running) loop->now = sm__now_ms();
    if (t->heap_index) {
        t->repeat = repeat_ms;
        schedule(loop, t, timeout_ms);
        fix(loop, t->heap_index);
        return 0;
    }
    if (loop->heap_len + 1 >= loop->heap_cap) {
        if (loop->heap_cap >= UINT32_MAX / 2) return -ENOMEM;
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        sm_timer **heap = realloc(loop->heap, (size_t)cap * sizeof *heap);
        if (!heap) return -ENOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    t->repeat = repeat_ms;
    schedule(loop, t, timeout_ms);
    loop->heap[++loop->heap_len] = t;
    sift_up(loop->heap, loop->heap_len);
    loop->active++;
    return 0;
}

void
sm_timer_stop(sm_timer *t)
{
    if (!t->heap_index) return;
    heap_remove(t->loop, t);
    t->loop->active--;
}

int
sm_timer_again(sm_timer *t)
{
    if (!t->repeat) return -EINVAL;
    return sm_timer_start(t, t->repeat, t->repeat);
}

void
sm_timer_set_repeat(sm_timer *t, uint64_t repeat_ms)
{
    t->repeat = repeat_ms;
}

uint64_t
sm_timer_get_repeat(const sm_timer *t)
{
    return t->repeat;
}

bool
sm_timer_is_active(const sm_timer *t)
{
    return t->heap_index != 0;
}

int
sm__timers_timeout(const sm_loop *loop)
{
    if (!loop->heap_len) return -1;
    int64_t left = loop->heap[1]->due - loop->now;
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

void
sm__timers_run(sm_loop *loop)
{
    /* At most as many firings as there were timers: one re-arming itself
     * with a 0 timeout cannot hold the loop here forever. */
    for (uint32_t budget = loop->heap_len; budget > 0 && loop->heap_len > 0; budget--) {
        sm_timer *t = loop->heap[1];
        if (t->due > loop->now) break;
        if (t->repeat) {
            schedule(loop, t, t->repeat);
            sift_down(loop->heap, loop->heap_len, 1);
        } else {
            heap_remove(loop, t);
            loop->active--;
        }
        /* The last touch: the callback may stop, restart or free t. */
        t->cb(t);
    }
}

void
sm__timers_free(sm_loop *loop)
{
    free(loop->heap);
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = 0;
}
