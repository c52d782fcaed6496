/* Timers: a pairing heap ordered by (due, seq), kept inside the timers
 * themselves, so that starting one never allocates and cannot fail (as
 * sm_io_set_events never allocates). Start is O(1); stop, restart and
 * firing are O(log n) amortized; the nearest deadline is the root, O(1).
 *
 * Each scheduled timer links to its first child (child), its next sibling
 * (next), and back (prev) to its previous sibling, or to its parent if it
 * is the first child. The root has prev == NULL and next == NULL. A timer
 * that is not scheduled has all three NULL, which a zeroed one already
 * says; it is scheduled iff it has a prev or is the root. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "internal.h"
#include "loop_internal.h"

/* seq breaks ties so that timers due together fire in start order. It wraps
 * after 2^32 starts; comparing by difference keeps the order right as long
 * as timers due at the same millisecond were started fewer than 2^31 starts
 * apart, and a wrong tie-break never breaks the deadline order. Being a
 * strict total order, it alone decides the firing order: the shape of the
 * heap never shows through. */
static bool
before(const sm_timer *a, const sm_timer *b)
{
    if (a->due != b->due) return a->due < b->due;
    return (int32_t)(a->seq - b->seq) < 0;
}

/* Join two heaps (roots a and b, their next and prev ignored): the later
 * root becomes the first child of the earlier, which is returned, its own
 * next and prev left for the caller to set. */
static sm_timer *
meld(sm_timer *a, sm_timer *b)
{
    if (before(b, a)) {
        sm_timer *x = a;
        a = b;
        b = x;
    }
    b->prev = a;
    b->next = a->child;
    if (a->child) a->child->prev = b;
    a->child = b;
    return a;
}

/* Make one heap of the sibling list starting at first (non-NULL): the
 * two-pass pairing that gives the heap its amortized O(log n). Without a
 * recursion or an array: pass 1 melds pairs left to right, stacking the
 * results through next; pass 2 melds the stack, so right to left. */
static sm_timer *
meld_siblings(sm_timer *first)
{
    sm_timer *stack = NULL;
    while (first) {
        sm_timer *a = first, *b = first->next;
        if (b) {
            first = b->next;
            a = meld(a, b);
        } else {
            first = NULL;
        }
        a->next = stack;
        stack = a;
    }
    sm_timer *root = stack;
    for (stack = stack->next; stack;) {
        sm_timer *up = stack->next;
        root = meld(root, stack);
        stack = up;
    }
    root->next = root->prev = NULL;
    return root;
}

static void
heap_insert(sm_loop *loop, sm_timer *t)
{
    t->child = t->next = t->prev = NULL;
    loop->timers = loop->timers ? meld(loop->timers, t) : t;
    loop->ntimers++;
}

static void
heap_remove(sm_loop *loop, sm_timer *t)
{
    sm_timer *sub = t->child ? meld_siblings(t->child) : NULL;
    if (t == loop->timers) {
        loop->timers = sub;
    } else {
        if (t->prev->child == t)
            t->prev->child = t->next;
        else
            t->prev->next = t->next;
        if (t->next) t->next->prev = t->prev;
        if (sub) loop->timers = meld(loop->timers, sub);
    }
    t->child = t->next = t->prev = NULL;
    loop->ntimers--;
}

static bool
scheduled(const sm_timer *t)
{
    return t->prev || (t->loop && t->loop->timers == t);
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
    t->child = t->next = t->prev = NULL;
    t->seq = 0;
}

int
sm_timer_start(sm_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    if (!t || !t->loop) return -EINVAL;
    sm_loop *loop = t->loop;
    /* Inside a run, every callback of an iteration counts from the same
     * instant; outside, the cached time may be arbitrarily old. */
    if (!loop->running) loop->now = sm__now_ms();
    if (scheduled(t))
        heap_remove(loop, t);
    else
        loop->active++;
    t->repeat = repeat_ms;
    schedule(loop, t, timeout_ms);
    heap_insert(loop, t);
    return 0;
}

void
sm_timer_stop(sm_timer *t)
{
    if (!scheduled(t)) return;
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
    return scheduled(t);
}

int
sm__timers_timeout(const sm_loop *loop)
{
    if (!loop->timers) return -1;
    int64_t left = loop->timers->due - loop->now;
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

void
sm__timers_run(sm_loop *loop)
{
    /* At most as many firings as there were timers: one re-arming itself
     * with a 0 timeout cannot hold the loop here forever. */
    for (size_t budget = loop->ntimers; budget > 0 && loop->timers; budget--) {
        sm_timer *t = loop->timers;
        if (t->due > loop->now) break;
        heap_remove(loop, t);
        if (t->repeat) {
            schedule(loop, t, t->repeat);
            heap_insert(loop, t);
        } else {
            loop->active--;
        }
        /* The last touch: the callback may stop, restart or free t. */
        t->cb(t);
    }
}
