/* loop module, part 2: timers. Order, time, cancel, restart, repeat, many
 * timers, freeing from callbacks, that a busy timer cannot starve I/O, and
 * that starting timers never allocates.
 * Runs once per backend (SOCKMSG_BACKEND=epoll / poll). Timing assertions are
 * lower bounds (a timer never fires early) and generous upper bounds. */
#include "smtest.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/loop.h>

#include "loop_internal.h" /* sm__timers_timeout */

/* ASan and TSan replace malloc, so glibc's counters see nothing there: ask
 * the sanitizer's allocator instead. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SM_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define SM_SANITIZER_MALLOC 1
#endif
#endif
#ifdef SM_SANITIZER_MALLOC
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static sm_loop *
loop_new(void)
{
    sm_loop *l = NULL;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    return l;
}

static void
loop_free(sm_loop *l)
{
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 0);
    SM_ASSERT_ERR(sm_loop_free(l), 0);
}

/* A timer that records when and in which order it fired. */
typedef struct tr {
    sm_timer t;
    int id;
    int calls;
    int64_t fired_at;   /* sm_loop_now() in its callback */
    int64_t started_at; /* sm_loop_now() right after sm_timer_start */
    int64_t due;        /* its deadline then */
    struct order *order;
} tr;

#define ORDER_MAX 1024
typedef struct order {
    int ids[ORDER_MAX];
    int n;
} order;

static void
tr_cb(sm_timer *t)
{
    tr *r = (tr *)t;
    r->calls++;
    r->fired_at = sm_loop_now(t->loop);
    if (r->order && r->order->n < ORDER_MAX) r->order->ids[r->order->n++] = r->id;
}

static void
tr_init(sm_loop *l, tr *r, int id, order *o)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->order = o;
    sm_timer_init(l, &r->t, tr_cb);
}

static void
tr_start(tr *r, uint64_t timeout, uint64_t repeat)
{
    SM_ASSERT_OK(sm_timer_start(&r->t, timeout, repeat));
    r->started_at = sm_loop_now(r->t.loop); /* refreshed by the start */
    r->due = r->t.due;
}

/* ---- on time, in order --------------------------------------------------- */

static void
test_timer_on_time(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    static const uint64_t ms[] = {1, 15, 40, 80};
    tr r[4];
    for (int i = 0; i < 4; i++) {
        tr_init(l, &r[i], i, NULL);
        tr_start(&r[i], ms[i], 0);
        assert_true(sm_timer_is_active(&r[i].t));
    }
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    for (int i = 0; i < 4; i++) {
        int64_t took = r[i].fired_at - r[i].started_at;
        print_message("timer %llu ms fired after %lld ms\n", (unsigned long long)ms[i],
                      (long long)took);
        assert_int_equal(r[i].calls, 1);
        assert_false(sm_timer_is_active(&r[i].t));
        /* Due timeout ms after the start, and never early by the loop's own
         * clock. How late is load's business, not asserted. */
        assert_int_equal(r[i].due, r[i].started_at + (int64_t)ms[i]);
        assert_true(r[i].fired_at >= r[i].due);
    }
    loop_free(l);
}

/* Started from one callback, so they share one "now": ordered by timeout,
 * equal timeouts by start order. */
static tr *order_set;
static void
start_set_cb(sm_timer *t)
{
    static const uint64_t ms[] = {30, 10, 20, 0, 10, 10, 0, 30};
    (void)t;
    for (int i = 0; i < 8; i++)
        SM_ASSERT_OK(sm_timer_start(&order_set[i].t, ms[i], 0));
}

static void
test_timer_order(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    order o = {0};
    tr set[8], starter;
    for (int i = 0; i < 8; i++)
        tr_init(l, &set[i], i, &o);
    order_set = set;
    sm_timer_init(l, &starter.t, start_set_cb);
    SM_ASSERT_OK(sm_timer_start(&starter.t, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    static const int want[] = {3, 6, 1, 4, 5, 2, 0, 7};
    assert_int_equal(o.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(o.ids[i], want[i]);
    loop_free(l);
}

/* ---- cancel ------------------------------------------------------------- */

typedef struct killer {
    sm_timer t;
    sm_timer *victim;
    bool free_victim;
    int calls;
} killer;

static void
killer_cb(sm_timer *t)
{
    killer *k = (killer *)t;
    k->calls++;
    if (!k->victim) return;
    sm_timer_stop(k->victim);
    if (k->free_victim) free(k->victim);
    k->victim = NULL;
}

static void
test_timer_cancel(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    tr a, b;
    tr_init(l, &a, 0, NULL);
    tr_init(l, &b, 1, NULL);
    tr_start(&a, 5, 0);
    tr_start(&b, 10, 0);
    sm_timer_stop(&b.t);
    sm_timer_stop(&b.t); /* twice is fine */
    assert_false(sm_timer_is_active(&b.t));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);

    /* Both due in the same iteration; the first stops and frees the second,
     * whichever order they run in (same deadline: start order). */
    killer k;
    tr *victim = malloc(sizeof *victim);
    assert_non_null(victim);
    tr_init(l, victim, 2, NULL);
    memset(&k, 0, sizeof k);
    sm_timer_init(l, &k.t, killer_cb);
    k.victim = &victim->t;
    k.free_victim = true;
    SM_ASSERT_OK(sm_timer_start(&k.t, 0, 0));
    SM_ASSERT_OK(sm_timer_start(&victim->t, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(k.calls, 1);

    /* A repeating timer stopped from another callback. */
    tr rep;
    tr_init(l, &rep, 3, NULL);
    tr_start(&rep, 1, 1);
    memset(&k, 0, sizeof k);
    sm_timer_init(l, &k.t, killer_cb);
    k.victim = &rep.t;
    SM_ASSERT_OK(sm_timer_start(&k.t, 30, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(k.calls, 1);
    assert_true(rep.calls >= 1);
    assert_false(sm_timer_is_active(&rep.t));
    loop_free(l);
}

/* ---- restart, repeat, again ------------------------------------------------ */

static void
test_timer_restart(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    /* A witness timer b between the old and the new deadline shows which
     * one counted: by order, not by how long it took. */
    order o = {0};
    tr a, b;
    tr_init(l, &a, 0, &o);
    tr_init(l, &b, 1, &o);
    tr_start(&a, 10, 0);
    tr_start(&b, 30, 0);
    tr_start(&a, 60, 0); /* restart: later */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.ids[0], 1); /* b, then a */
    assert_int_equal(a.due, a.started_at + 60);
    assert_true(a.fired_at >= a.due);

    o.n = 0;
    tr_start(&a, 5000, 0);
    tr_start(&a, 5, 0);  /* restart: earlier */
    tr_start(&b, 50, 0); /* after a's restart: due later than a by the clock */
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(a.calls, 2);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.ids[0], 0); /* a, then b: 5 ms, not 5000 */
    assert_true(a.fired_at >= a.due);
    loop_free(l);
}

typedef struct repeater {
    sm_timer t;
    int calls, limit;
    int64_t now[16];
    bool active_in_cb;
} repeater;

static void
repeater_cb(sm_timer *t)
{
    repeater *r = (repeater *)t;
    r->now[r->calls++] = sm_loop_now(t->loop);
    assert_int_equal(sm_loop_now(t->loop), r->now[r->calls - 1]); /* cached */
    r->active_in_cb = sm_timer_is_active(t);
    if (r->calls == r->limit) sm_timer_stop(t);
}

static void
test_timer_repeat(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    repeater r = {.limit = 5};
    sm_timer_init(l, &r.t, repeater_cb);
    SM_ASSERT_OK(sm_timer_start(&r.t, 5, 5));
    int64_t t0 = sm_loop_now(l); /* the start refreshed it */
    assert_int_equal(sm_timer_get_repeat(&r.t), 5);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 5);
    assert_true(r.active_in_cb); /* rescheduled before its callback */
    /* Each firing 5 ms or more after the one before, by the loop's clock. */
    assert_true(r.now[0] >= t0 + 5);
    for (int i = 1; i < 5; i++)
        assert_true(r.now[i] - r.now[i - 1] >= 5);

    /* again: restart with the repeat interval; a 0 interval is refused. */
    sm_timer b;
    sm_timer_init(l, &b, NULL);
    SM_ASSERT_ERR(sm_timer_again(&b), -EINVAL);
    assert_false(sm_timer_is_active(&b));
    r.calls = 0;
    r.limit = 2;
    sm_timer_set_repeat(&r.t, 20);
    assert_int_equal(sm_timer_get_repeat(&r.t), 20);
    SM_ASSERT_OK(sm_timer_again(&r.t));
    SM_ASSERT_OK(sm_timer_again(&r.t)); /* resets, does not add */
    t0 = sm_loop_now(l);
    assert_int_equal(r.t.due, t0 + 20);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_true(r.now[0] >= t0 + 20);
    assert_true(r.now[1] - r.now[0] >= 20);
    loop_free(l);
}

/* A one-shot restarting itself from its callback, where it is inactive. */
typedef struct reviver {
    sm_timer t;
    int calls;
    bool inactive_in_cb;
} reviver;

static void
reviver_cb(sm_timer *t)
{
    reviver *r = (reviver *)t;
    r->inactive_in_cb = !sm_timer_is_active(t);
    if (++r->calls < 3) SM_ASSERT_OK(sm_timer_start(t, 2, 0));
}

static void
test_timer_restart_from_callback(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    reviver r = {0};
    sm_timer_init(l, &r.t, reviver_cb);
    SM_ASSERT_OK(sm_timer_start(&r.t, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    assert_true(r.inactive_in_cb);
    loop_free(l);
}

/* ---- freeing from callbacks ------------------------------------------------ */

static int freed;
static void
free_self_cb(sm_timer *t)
{
    sm_timer_stop(t); /* a no-op for a one-shot, needed for a repeating one */
    free(t);
    freed++;
}

static void
test_timer_free_in_callback(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    freed = 0;
    for (int i = 0; i < 10; i++) {
        sm_timer *t = malloc(sizeof *t);
        assert_non_null(t);
        sm_timer_init(l, t, free_self_cb);
        SM_ASSERT_OK(sm_timer_start(t, (uint64_t)(i % 3), i % 2 ? 1 : 0));
    }
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(freed, 10);
    loop_free(l);
}

/* ---- no starvation --------------------------------------------------------- */

static int zero_calls;
static void
zero_cb(sm_timer *t)
{
    zero_calls++;
    SM_ASSERT_OK(sm_timer_start(t, 0, 0));
}

static int io_calls;
static void
io_cb(sm_io *w, unsigned events)
{
    (void)events;
    io_calls++;
    sm_io_stop(w);
}

static void
test_timer_zero_no_starvation(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    int sv[2];
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    sm_io w;
    sm_io_init(l, &w, sv[0], io_cb);
    SM_ASSERT_OK(sm_io_start(&w, SM_WRITE));
    sm_timer t;
    sm_timer_init(l, &t, zero_cb);
    zero_calls = io_calls = 0;
    SM_ASSERT_OK(sm_timer_start(&t, 0, 0));
    /* One firing per iteration: the re-armed timer waits for the next one,
     * and the io watcher gets its turn in the first. */
    for (int i = 1; i <= 3; i++) {
        SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_ONCE), 1);
        assert_int_equal(zero_calls, i);
        assert_int_equal(io_calls, 1);
    }
    sm_timer_stop(&t);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

/* ---- extremes ----------------------------------------------------------- */

static void
test_timer_huge_timeout(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    sm_timer t;
    sm_timer_init(l, &t, NULL);
    SM_ASSERT_OK(sm_timer_start(&t, UINT64_MAX, UINT64_MAX));
    assert_true(t.due > sm_loop_now(l));
    assert_true(sm__timers_timeout(l) > 1000000);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    sm_timer_stop(&t);
    assert_int_equal(sm__timers_timeout(l), -1);
    loop_free(l);
}

/* ---- 100k timers --------------------------------------------------------- */

#define NT 110000 /* every 11th is cancelled: 100000 fire */

typedef struct bulk {
    int fired;
    int64_t last_due;
    uint32_t last_seq;
    bool in_order;
} bulk;

static void
bulk_cb(sm_timer *t)
{
    bulk *b = sm_loop_get_data(t->loop);
    /* Deadline order; equal deadlines in (last) start order. */
    if (t->due < b->last_due || (t->due == b->last_due && t->seq < b->last_seq))
        b->in_order = false;
    if (t->due > sm_loop_now(t->loop)) b->in_order = false; /* early */
    b->last_due = t->due;
    b->last_seq = t->seq;
    b->fired++;
    t->data = t; /* mark */
}

static void
test_timer_100k(void **state)
{
    (void)state;
    bulk b = {.in_order = true};
    sm_loop *l = NULL;
    SM_ASSERT_OK(sm_loop_new(&l, &(sm_loop_opts){.data = &b}));
    sm_timer *ts = calloc(NT, sizeof *ts);
    assert_non_null(ts);
    uint64_t seed = 0x5eed1234abcdull;
    int64_t t0 = sm_test_now_ms();
    int cancelled = 0;
    for (int i = 0; i < NT; i++) {
        sm_timer_init(l, &ts[i], bulk_cb);
        ts[i].data = NULL;
        SM_ASSERT_OK(sm_timer_start(&ts[i], sm_test_rand(&seed) % 200, 0));
    }
    /* Cancel every 11th, and restart every 7th (new deadline). */
    for (int i = 0; i < NT; i += 11) {
        sm_timer_stop(&ts[i]);
        cancelled++;
    }
    for (int i = 3; i < NT; i += 7)
        if (i % 11) SM_ASSERT_OK(sm_timer_start(&ts[i], sm_test_rand(&seed) % 200, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    int64_t took = sm_test_now_ms() - t0;
    print_message("%d timers fired in %lld ms (seed %llx)\n", b.fired, (long long)took,
                  0x5eed1234abcdull);
    assert_true(b.in_order);
    assert_int_equal(b.fired, NT - cancelled);
    assert_int_equal(b.fired, 100000);
    for (int i = 0; i < NT; i++)
        assert_true((ts[i].data != NULL) == (i % 11 != 0));
    /* How long it took is printed, not asserted: the test's timeout bounds it. */
    free(ts);
    loop_free(l);
}

/* ---- starting never allocates --------------------------------------------- */

#define NA 10000

/* Bytes of heap in use, or -1 if this libc cannot tell. */
static long long
heap_in_use(void)
{
#if defined(SM_SANITIZER_MALLOC)
    return (long long)__sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd); /* hblkhd: mmap()ed blocks */
#else
    return -1;
#endif
}

static void *volatile keep; /* so that the probe's malloc is not optimized away */

static void
test_timer_start_never_allocates(void **state)
{
    (void)state;
    if (heap_in_use() < 0) {
        print_message("skipped: no way to read the heap in use (needs glibc >= 2.33)\n");
        skip();
    }
    sm_loop *l = loop_new();
    sm_timer *ts = calloc(NA, sizeof *ts);
    assert_non_null(ts);
    for (int i = 0; i < NA; i++)
        sm_timer_init(l, &ts[i], NULL);
    uint64_t seed = 0xa110c;

    /* The meter sees an allocation at all (else a 0 below proves nothing). */
    long long m0 = heap_in_use();
    keep = malloc(4096);
    assert_non_null(keep);
    long long m1 = heap_in_use();
    free(keep);
    keep = NULL;
    print_message("malloc(4096) moved the meter by %lld bytes\n", m1 - m0);
    assert_true(m1 - m0 >= 4096);

    /* No assertion inside: cmocka might allocate. */
    long long before = heap_in_use();
    int bad = 0;
    for (int i = 0; i < NA; i++)
        bad |= sm_timer_start(&ts[i], sm_test_rand(&seed) % 100000, 0);
    long long started = heap_in_use();
    for (int i = 0; i < NA; i += 2) /* restart half of them while active */
        bad |= sm_timer_start(&ts[i], sm_test_rand(&seed) % 100000, i % 3 ? 0 : 7);
    long long restarted = heap_in_use();
    for (int i = 0; i < NA; i++)
        sm_timer_stop(&ts[(i * 7919) % NA]); /* 7919 is prime: every timer once */
    long long stopped = heap_in_use();
    print_message("heap in use: %lld before, %+lld started, %+lld restarted, %+lld stopped\n",
                  before, started - before, restarted - before, stopped - before);
    assert_int_equal(bad, 0);
    assert_int_equal(started, before);
    assert_int_equal(restarted, before);
    assert_int_equal(stopped, before);
    for (int i = 0; i < NA; i++)
        assert_false(sm_timer_is_active(&ts[i]));
    assert_int_equal(sm__timers_timeout(l), -1);

    /* Only a timer that never went through sm_timer_init can be refused. */
    sm_timer zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    SM_ASSERT_ERR(sm_timer_start(&zeroed, 1, 0), -EINVAL);
    SM_ASSERT_ERR(sm_timer_start(NULL, 1, 0), -EINVAL);
    assert_false(sm_timer_is_active(&zeroed));
    sm_timer_stop(&zeroed); /* a no-op */
    free(ts);
    loop_free(l);
}

/* ---- random operations against a model -------------------------------------- */

/* Timers started, restarted and stopped at random (from callbacks, with many
 * equal deadlines), checked against a model at every firing: the timer that
 * fires is the active one with the smallest (due, start order), where a
 * restart or a repeat's rescheduling counts as a new start. */
#define NM 600

typedef struct mtimer {
    sm_timer t;
    int id;
    bool active; /* the model's view */
    int64_t due;
    uint64_t order, repeat;
    int fires;
} mtimer;

typedef struct model {
    sm_loop *loop;
    mtimer m[NM];
    uint64_t rng, next_order;
    int ops_left; /* random operations callbacks may still do */
    int fired;
    bool ok;
    char why[160];
} model;

static bool
m_before(const mtimer *a, const mtimer *b)
{
    if (a->due != b->due) return a->due < b->due;
    return a->order < b->order;
}

static void
m_start(model *md, mtimer *x, uint64_t timeout, uint64_t repeat)
{
    int rc = sm_timer_start(&x->t, timeout, repeat);
    if (rc != 0 && md->ok) {
        md->ok = false;
        snprintf(md->why, sizeof md->why, "start of timer %d returned %d", x->id, rc);
    }
    x->active = true;
    x->due = sm_loop_now(md->loop) + (int64_t)timeout;
    x->order = md->next_order++;
    x->repeat = repeat;
}

static void
m_stop(mtimer *x)
{
    sm_timer_stop(&x->t);
    x->active = false;
}

/* One random operation on a random timer. */
static void
m_random_op(model *md)
{
    mtimer *x = &md->m[sm_test_rand(&md->rng) % NM];
    uint64_t r = sm_test_rand(&md->rng) % 10;
    if (r < 3)
        m_stop(x);
    else /* a start, or a restart (earlier or later) if active; few distinct deadlines */
        m_start(md, x, sm_test_rand(&md->rng) % 12, r == 9 ? 1 + sm_test_rand(&md->rng) % 5 : 0);
}

static void
m_fail(model *md, const char *what, const mtimer *x)
{
    if (!md->ok) return;
    md->ok = false;
    snprintf(md->why, sizeof md->why, "firing %d (timer %d, due %lld, order %llu): %s", md->fired,
             x->id, (long long)x->due, (unsigned long long)x->order, what);
}

static void
m_fire_cb(sm_timer *t)
{
    mtimer *x = (mtimer *)t;
    model *md = sm_loop_get_data(t->loop);
    const mtimer *min = NULL;
    for (int i = 0; i < NM; i++)
        if (md->m[i].active && (!min || m_before(&md->m[i], min))) min = &md->m[i];
    if (!x->active)
        m_fail(md, "fired while stopped", x);
    else if (min != x)
        m_fail(md, "not the earliest active timer", x);
    else if (x->due > sm_loop_now(t->loop))
        m_fail(md, "early", x);
    md->fired++;
    x->fires++;
    if (x->repeat) { /* rescheduled before this callback, from the same now */
        x->due = sm_loop_now(t->loop) + (int64_t)x->repeat;
        x->order = md->next_order++;
        if (sm_timer_is_active(t) != true)
            m_fail(md, "repeating timer inactive in its callback", x);
        if (x->fires >= 3) m_stop(x);
    } else {
        x->active = false;
        if (sm_timer_is_active(t)) m_fail(md, "one-shot active in its callback", x);
    }
    /* Stop or (re)start others, or this one, from inside the callback. */
    for (int k = (int)(sm_test_rand(&md->rng) % 3); k > 0 && md->ops_left > 0; k--, md->ops_left--)
        m_random_op(md);
}

static void
m_setup_cb(sm_timer *t)
{
    model *md = sm_loop_get_data(t->loop);
    for (int i = 0; i < NM; i++) /* all of them, then a mix */
        m_start(md, &md->m[i], sm_test_rand(&md->rng) % 12, 0);
    for (int i = 0; i < NM; i++)
        m_random_op(md);
}

static void
test_timer_random_model(void **state)
{
    (void)state;
    model *md = calloc(1, sizeof *md);
    assert_non_null(md);
    for (int round = 0; round < 8; round++) {
        uint64_t seed = 0x71e5eed0ull + (uint64_t)round;
        memset(md, 0, sizeof *md);
        md->rng = seed;
        md->ok = true;
        md->ops_left = 2 * NM;
        SM_ASSERT_OK(sm_loop_new(&md->loop, &(sm_loop_opts){.data = md}));
        for (int i = 0; i < NM; i++) {
            md->m[i].id = i;
            sm_timer_init(md->loop, &md->m[i].t, m_fire_cb);
        }
        sm_timer setup;
        sm_timer_init(md->loop, &setup, m_setup_cb);
        SM_ASSERT_OK(sm_timer_start(&setup, 0, 0));
        /* Bounded: callbacks do at most 2 * NM operations and repeating
         * timers stop after 3 firings, all due within ~20 ms of a start. */
        SM_ASSERT_ERR(sm_loop_run(md->loop, SM_RUN_DEFAULT), 0);
        if (!md->ok) fail_msg("seed %llx: %s", (unsigned long long)seed, md->why);
        for (int i = 0; i < NM; i++)
            if (md->m[i].active)
                fail_msg("seed %llx: timer %d never fired", (unsigned long long)seed, i);
        if (round == 0)
            print_message("seed %llx: %d firings in order\n", (unsigned long long)seed, md->fired);
        assert_true(md->fired >= NM / 2);
        loop_free(md->loop);
    }
    free(md);
}

/* ---- stop and restart in the middle ------------------------------------------ */

/* A deterministic picture of stops and restarts inside an active heap, and
 * of a callback stopping and restarting others due in the same iteration. */
#define NMID 200
static tr mids[NMID];

static void
mid_setup_cb(sm_timer *t)
{
    (void)t;
    for (int i = 0; i < NMID; i++) /* due in NMID - 1 - i ms: reverse order */
        tr_start(&mids[i], (uint64_t)(NMID - 1 - i), 0);
    for (int i = 3; i < NMID - 1; i += 6) /* stop every 6th */
        sm_timer_stop(&mids[i].t);
    for (int i = 10; i < NMID - 1; i += 10) /* restart: same deadline, or later */
        tr_start(&mids[i], i % 20 ? 300 : (uint64_t)(NMID - 1 - i), 0);
    tr_start(&mids[NMID - 1], 250, 0); /* the earliest, restarted later */
    tr_start(&mids[0], 0, 0);          /* the latest, restarted earliest */
    /* Stopped above; now due with mids[100], behind it: it fires in the
     * same iteration as mids[100], whose callback stops it. */
    tr_start(&mids[99], NMID - 1 - 100, 0);
}

/* mids[100]'s callback stops mids[99] (due in the same iteration) and
 * restarts mids[98] (active, due soon) for later than everything else
 * (now is at least 99 ms past the setup: 280 ms lands after 300). */
static void
mid_meddler_cb(sm_timer *t)
{
    tr_cb(t);
    sm_timer_stop(&mids[99].t);
    tr_start(&mids[98], 280, 0);
}

static void
test_timer_stop_restart_middle(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    order *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < NMID; i++)
        tr_init(l, &mids[i], i, o);
    mids[100].t.cb = mid_meddler_cb;
    sm_timer setup;
    sm_timer_init(l, &setup, mid_setup_cb);
    SM_ASSERT_OK(sm_timer_start(&setup, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);

    /* The expected order: mids[0] (0 ms), then by deadline (i descending)
     * without the stopped ones, those restarted later, mids[99] and
     * mids[98]; then mids[NMID - 1] (250 ms), the 300s in restart order,
     * and mids[98]. */
    int want[ORDER_MAX], nw = 0;
    want[nw++] = 0;
    for (int i = NMID - 2; i >= 1; i--) {
        bool stopped = i % 6 == 3, later = i % 20 == 10;
        if (!stopped && !later && i != 98) want[nw++] = i;
    }
    want[nw++] = NMID - 1;
    for (int i = 10; i < NMID - 1; i += 20)
        want[nw++] = i;
    want[nw++] = 98;
    assert_int_equal(o->n, nw);
    for (int k = 0; k < nw; k++)
        if (o->ids[k] != want[k]) fail_msg("firing %d: timer %d, want %d", k, o->ids[k], want[k]);
    for (int i = 0; i < NMID; i++)
        assert_false(sm_timer_is_active(&mids[i].t));
    assert_int_equal(mids[99].calls, 0);
    free(o);
    loop_free(l);
}

/* ---- equal deadlines: first started, first fired ------------------------------- */

#define NFIFO 1000
static tr fifo[NFIFO];

static void
fifo_setup_cb(sm_timer *t)
{
    (void)t;
    for (int i = 0; i < NFIFO; i++) /* one "now": the same deadline */
        tr_start(&fifo[i], 5, 0);
    for (int i = 0; i < NFIFO; i += 7) /* restarted: to the back of the line */
        tr_start(&fifo[i], 5, 0);
    for (int i = 1; i < NFIFO; i += 13) /* stopped: out of it */
        sm_timer_stop(&fifo[i].t);
}

static void
test_timer_equal_due_fifo(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    order *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < NFIFO; i++)
        tr_init(l, &fifo[i], i, o);
    sm_timer setup;
    sm_timer_init(l, &setup, fifo_setup_cb);
    SM_ASSERT_OK(sm_timer_start(&setup, 0, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    int want[ORDER_MAX], nw = 0;
    for (int i = 0; i < NFIFO; i++)
        if (i % 7 && i % 13 != 1) want[nw++] = i;
    for (int i = 0; i < NFIFO; i += 7)
        if (i % 13 != 1) want[nw++] = i;
    assert_int_equal(o->n, nw);
    for (int k = 0; k < nw; k++)
        if (o->ids[k] != want[k]) fail_msg("firing %d: timer %d, want %d", k, o->ids[k], want[k]);
    free(o);
    loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_on_time),
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_restart),
        cmocka_unit_test(test_timer_repeat),
        cmocka_unit_test(test_timer_restart_from_callback),
        cmocka_unit_test(test_timer_free_in_callback),
        cmocka_unit_test(test_timer_zero_no_starvation),
        cmocka_unit_test(test_timer_huge_timeout),
        cmocka_unit_test(test_timer_100k),
        cmocka_unit_test(test_timer_start_never_allocates),
        cmocka_unit_test(test_timer_random_model),
        cmocka_unit_test(test_timer_stop_restart_middle),
        cmocka_unit_test(test_timer_equal_due_fifo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
