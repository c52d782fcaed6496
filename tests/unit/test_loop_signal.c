/* loop module, part 3: signal watchers over signalfd. Signals are raised to
 * this thread (raise(3)), where the watcher keeps them blocked. Runs once per
 * backend (SOCKMSG_BACKEND=epoll / poll). */
#include "smtest.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/loop.h>

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

static bool
blocked(int signum)
{
    sigset_t cur;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, signum);
}

static bool
pending(int signum)
{
    sigset_t set;
    assert_int_equal(sigpending(&set), 0);
    return sigismember(&set, signum);
}

/* Bounds a run. */
typedef struct guard {
    sm_timer t;
    bool fired;
} guard;

static void
guard_cb(sm_timer *t)
{
    ((guard *)t)->fired = true;
    sm_loop_stop(t->loop);
}

static void
guard_start(sm_loop *l, guard *g)
{
    g->fired = false;
    sm_timer_init(l, &g->t, guard_cb);
    SM_ASSERT_OK(sm_timer_start(&g->t, 10000, 0));
}

/* A watcher that counts. */
typedef struct srec {
    sm_signal w;
    int calls;
    int last;
    struct srec *stop_other; /* stop (and free) this one from the callback */
    bool stop_self;
} srec;

static void
srec_cb(sm_signal *w, int signum)
{
    srec *r = (srec *)w;
    r->calls++;
    r->last = signum;
    assert_int_equal(w->signum, signum);
    if (r->stop_other) {
        sm_signal_stop(&r->stop_other->w);
        free(r->stop_other);
        r->stop_other = NULL;
    }
    if (r->stop_self) sm_signal_stop(w);
}

static void
srec_init(sm_loop *l, srec *r)
{
    memset(r, 0, sizeof *r);
    sm_signal_init(l, &r->w, srec_cb);
}

/* Run single iterations until every counter reached its goal or the guard
 * fired. */
static void
run_until(sm_loop *l, guard *g, const int *count, int want)
{
    for (int i = 0; i < 100 && *count < want && !g->fired; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    assert_false(g->fired);
}

static void
test_signal_basic(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    assert_false(blocked(SIGUSR1));
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR1));
    assert_true(sm_signal_is_active(&r.w));
    assert_true(blocked(SIGUSR1));

    guard g;
    guard_start(l, &g);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(r.calls, 0); /* never in signal context */
    run_until(l, &g, &r.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, SIGUSR1);

    /* Standard signals coalesce while pending. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    run_until(l, &g, &r.calls, 2);
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 2);

    sm_signal_stop(&r.w);
    assert_false(sm_signal_is_active(&r.w));
    assert_false(blocked(SIGUSR1));
    sm_timer_stop(&g.t);
    loop_free(l);
}

static void
test_signal_realtime_queue(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGRTMIN));
    guard g;
    guard_start(l, &g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raise(SIGRTMIN), 0);
    run_until(l, &g, &r.calls, 3);
    assert_int_equal(r.calls, 3);
    sm_signal_stop(&r.w);
    sm_timer_stop(&g.t);
    loop_free(l);
}

static void
test_signal_several_watchers(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec a, b, u2;
    srec_init(l, &a);
    srec_init(l, &b);
    srec_init(l, &u2);
    SM_ASSERT_OK(sm_signal_start(&a.w, SIGUSR1));
    SM_ASSERT_OK(sm_signal_start(&b.w, SIGUSR1));
    SM_ASSERT_OK(sm_signal_start(&u2.w, SIGUSR2));
    guard g;
    guard_start(l, &g);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    run_until(l, &g, &u2.calls, 1);
    run_until(l, &g, &a.calls, 1);
    run_until(l, &g, &b.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(u2.calls, 1);
    assert_int_equal(u2.last, SIGUSR2);

    /* Stopping the last watcher of one signal leaves the other watched. */
    sm_signal_stop(&u2.w);
    assert_false(blocked(SIGUSR2));
    assert_true(blocked(SIGUSR1));
    sm_signal_stop(&a.w);
    assert_true(blocked(SIGUSR1));
    sm_signal_stop(&b.w);
    assert_false(blocked(SIGUSR1));
    sm_timer_stop(&g.t);
    loop_free(l);
}

/* Each of two watchers of one signal stops and frees the other: exactly one
 * runs, whatever the dispatch order. */
static void
test_signal_stop_other_in_callback(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    srec_init(l, x);
    srec_init(l, y);
    SM_ASSERT_OK(sm_signal_start(&x->w, SIGUSR1));
    SM_ASSERT_OK(sm_signal_start(&y->w, SIGUSR1));
    /* y is dispatched first (newest first); it stops and frees x. */
    y->stop_other = x;
    x->stop_other = NULL;
    guard g;
    guard_start(l, &g);
    assert_int_equal(raise(SIGUSR1), 0);
    run_until(l, &g, &y->calls, 1);
    assert_int_equal(y->calls, 1);
    assert_null(y->stop_other);
    sm_signal_stop(&y->w);
    free(y);
    assert_false(blocked(SIGUSR1));
    sm_timer_stop(&g.t);
    loop_free(l);
}

/* A signal watcher keeps SM_RUN_DEFAULT going; a timer raises the signal and
 * the watcher stops itself: the run then ends. */
static void
raise_cb(sm_timer *t)
{
    (void)t;
    assert_int_equal(raise(SIGUSR2), 0);
}

static void
test_signal_keeps_loop_alive(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    r.stop_self = true;
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR2));
    sm_timer t;
    sm_timer_init(l, &t, raise_cb);
    SM_ASSERT_OK(sm_timer_start(&t, 5, 0));
    SM_ASSERT_ERR(sm_loop_run(l, SM_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_false(blocked(SIGUSR2));
    loop_free(l);
}

static void
test_signal_pending_discarded_on_stop(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR1));
    assert_int_equal(raise(SIGUSR1), 0);
    assert_true(pending(SIGUSR1));
    /* Unblocking now would kill us (default action); the stop drops it. */
    sm_signal_stop(&r.w);
    assert_false(pending(SIGUSR1));
    assert_false(blocked(SIGUSR1));
    assert_int_equal(r.calls, 0);
    loop_free(l);
}

static void
test_signal_already_blocked(void **state)
{
    (void)state;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &one, NULL), 0);
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR2));
    sm_signal_stop(&r.w);
    assert_true(blocked(SIGUSR2)); /* as the caller had it */
    assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &one, NULL), 0);
    loop_free(l);
}

static void
test_signal_start_errors_and_moves(void **state)
{
    (void)state;
    sm_loop *l = loop_new();
    srec r;
    srec_init(l, &r);
    SM_ASSERT_ERR(sm_signal_start(&r.w, 0), -EINVAL);
    SM_ASSERT_ERR(sm_signal_start(&r.w, -1), -EINVAL);
    SM_ASSERT_ERR(sm_signal_start(&r.w, 65), -EINVAL);
    SM_ASSERT_ERR(sm_signal_start(&r.w, SIGKILL), -EINVAL);
    SM_ASSERT_ERR(sm_signal_start(&r.w, SIGSTOP), -EINVAL);
    assert_false(sm_signal_is_active(&r.w));

    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR1));
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR1)); /* no-op */
    SM_ASSERT_ERR(sm_loop_free(l), -EBUSY);
    SM_ASSERT_OK(sm_signal_start(&r.w, SIGUSR2)); /* moves */
    assert_false(blocked(SIGUSR1));
    assert_true(blocked(SIGUSR2));
    guard g;
    guard_start(l, &g);
    assert_int_equal(raise(SIGUSR2), 0);
    run_until(l, &g, &r.calls, 1);
    assert_int_equal(r.last, SIGUSR2);
    sm_signal_stop(&r.w);
    sm_signal_stop(&r.w);
    assert_false(blocked(SIGUSR2));
    sm_timer_stop(&g.t);
    loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_basic),
        cmocka_unit_test(test_signal_realtime_queue),
        cmocka_unit_test(test_signal_several_watchers),
        cmocka_unit_test(test_signal_stop_other_in_callback),
        cmocka_unit_test(test_signal_keeps_loop_alive),
        cmocka_unit_test(test_signal_pending_discarded_on_stop),
        cmocka_unit_test(test_signal_already_blocked),
        cmocka_unit_test(test_signal_start_errors_and_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
