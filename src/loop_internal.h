/* The loop's private state, shared by loop.c, timer_heap.c and
 * loop_signal.c (never installed). */
#ifndef SM_LOOP_INTERNAL_H
#define SM_LOOP_INTERNAL_H

#include <stdatomic.h>

#include "loop_poller.h"
#include "sockmsg/loop.h"

/* sm_io.flags */
#define SM__IO_ACTIVE   0x1u
#define SM__IO_CLOSING  0x2u
#define SM__IO_DIRTY    0x4u  /* its fd is in loop->changes */
#define SM__IO_INTERNAL 0x8u  /* the loop's own: does not keep sm_loop_run going */
#define SM__IO_EDGE     0x10u /* edge triggered (only on a backend that can) */
#define SM__IO_MISSED   0x20u /* edge: a readiness it did not want was dropped */
#define SM__IO_ACCEPT   0x40u /* a listener: accepts by completions where it can */

struct sm__sigstate;

struct sm_loop {
    const sm__poller_ops *ops;
    void *poller;
    int64_t now;
    size_t active;  /* started user watchers: io, timers, signals */
    size_t pending; /* queued deferred callbacks and on_close calls */
    bool running;

    /* io: the watcher of each fd, and fds whose removals wait for the end
     * of the iteration. changes_cap >= nchanges + io_clean always holds, so
     * recording a removal never allocates. */
    sm_io **fds;
    size_t fds_cap;
    int *changes;
    size_t nchanges, changes_cap;
    size_t io_clean; /* active watchers not SM__IO_DIRTY */
    sm__poll_event events[SM__LOOP_MAX_EVENTS];
    int nevents, ev_next; /* the batch being dispatched */

    /* timers: the root of a pairing heap on (due, seq) linked through the
     * timers (timer_heap.c); nothing to allocate or free */
    sm_timer *timers;
    size_t ntimers; /* scheduled */
    uint32_t timer_seq;

    /* deferred callbacks: circular lists with sentinels; `defer_run` holds
     * the ones being run by the current iteration */
    sm_defer defer_q, defer_run;
    sm_io *close_head, *close_tail;

    struct sm__sigstate *sig;

    int wake_fd;
    sm_io wake_io;
    atomic_int wake_pending; /* an eventfd write is in flight */
    atomic_int wake_user;    /* on_wakeup is owed */
    atomic_int stop_req;
    atomic_int polling; /* the loop is in (or about to enter) its wait */
    sm_wakeup_cb on_wakeup;
    void *data;

    /* State a module built on the loop shares among its objects here (the
     * stream module's read buffer and timing wheel), created by that module
     * on first use, freed by streams_free when the loop is freed. */
    void *streams;
    void (*streams_free)(void *streams);

    uint64_t ctl_calls; /* backend add/modify/del calls, for tests */
    /* Why the backend asked for is not the one running ("" when it is). */
    char backend_why[160];
};

/* Tables indexed by fd number (loop_table.c): *p holds *cap slots of size
 * bytes in an anonymous mapping (NULL, 0: none yet). Make room for need
 * slots: slots past the old *cap read as zero, the table may move, and no
 * outgrown copy stays behind; only pages of slots written are resident.
 * 0 or -ENOMEM (the table is left as it was). Free with sm__table_free. */
int sm__table_reserve(void **p, size_t *cap, size_t need, size_t size);
void sm__table_free(void *p, size_t cap, size_t size);

/* Timers (timer_heap.c). */
int sm__timers_timeout(const sm_loop *loop); /* ms until the nearest, -1: none */
void sm__timers_run(sm_loop *loop);

/* Signals (loop_signal.c). */
void sm__signals_free(sm_loop *loop);

/* How many add/modify/del calls the loop made on its backend so far. */
uint64_t sm__loop_ctl_calls(const sm_loop *loop);

/* Edge-triggered readiness for w where the backend offers it (set after
 * sm_io_init, before sm_io_start). Its owner promises to consume each
 * readiness fully: read until a short read (on past it after SM__EV_HUP) or
 * EAGAIN, and write until the kernel takes less than offered, or else call
 * sm__io_rearm. Only for sockets where a short read means "empty for now":
 * TCP, not AF_UNIX (a read stops early at passed fds, credentials or OOB
 * marks). In exchange, when a readiness arrived for an event w did not want
 * (dispatch drops it), the next sm_io_set_events that adds an event gives
 * the interest to the kernel again, which re-reports what is pending. */
void sm__io_set_edge(sm_io *w);

/* Edge-triggered w stopped before consuming all it was told (a read budget
 * spent, a batch ended early): have the next wait report it again. 0 or
 * -errno; no syscall for a level-triggered watcher. */
int sm__io_rearm(sm_io *w);

/* w watches a listening socket (set after sm_io_init, before
 * sm_io_start): where the backend can, it accepts connections itself
 * (io_uring: a multishot accept) and SM_READ means "accepted ones are
 * waiting"; take them with sm__io_accept. */
void sm__io_set_accept(sm_io *w);

/* The next connection of listener w, non-blocking and close-on-exec: an fd,
 * or -errno (-EAGAIN: none now, and SM_READ will come when there is). */
int sm__io_accept(sm_io *w);

/* Keep the loop alive while requests of a closing object are in flight
 * (+1), or not any more (-1): sm_loop_run does not return and
 * sm_loop_free refuses while any are held. */
void sm__loop_hold(sm_loop *loop, int delta);

#endif
