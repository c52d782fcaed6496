/* The loop's backend interface: the few calls a kernel readiness API must
 * offer (after Redis' ae_epoll.c / ae_select.c). One file per backend; the
 * loop owns watchers, timers and dispatch, a backend only tracks fd interest
 * and waits. Events are SM_READ / SM_WRITE; a backend reports an error or
 * hang-up as SM_READ | SM_WRITE (plus SM__EV_HUP where it can tell) and
 * leaves filtering to the loop. Level
 * triggered: a ready fd is reported by every wait until it stops being ready
 * or is deleted; except that add and modify may carry SM__EV_EDGE, which a
 * backend may honour (epoll: EPOLLET) or ignore (poll stays level triggered,
 * which only reports more than an edge consumer needs). */
#ifndef SM_LOOP_POLLER_H
#define SM_LOOP_POLLER_H

#include <stdbool.h>

#include "sockmsg/loop.h"

/* Most events one wait returns; more ready fds are reported by the next. */
#define SM__LOOP_MAX_EVENTS 256

/* In add / modify events: edge triggered is enough for this fd. */
#define SM__EV_EDGE 0x80u
/* In reported events: the peer shut down or the socket has an error, so a
 * short read does not mean there is nothing more to learn: an EOF or an error
 * that came with the data will not be reported again. An edge-triggered
 * reader reads on past a short read then, to EOF, an error or EAGAIN (an
 * error-queue EPOLLERR ends in EAGAIN). Passed on only to edge-triggered
 * watchers. */
#define SM__EV_HUP 0x40u

typedef struct sm__poll_event {
    int fd; /* -1: invalidated by the loop after the wait */
    unsigned events;
} sm__poll_event;

typedef struct sm__poller_ops {
    const char *name;
    bool edge; /* honours SM__EV_EDGE */
    /* A new instance in *state, or -errno. Its fds are close-on-exec. */
    int (*create)(void **state);
    void (*destroy)(void *state);
    /* fd is not in the set yet; events != 0. */
    int (*add)(void *state, int fd, unsigned events);
    /* fd is in the set with old_events; events != 0. */
    int (*modify)(void *state, int fd, unsigned old_events, unsigned events);
    /* fd is in the set with old_events (it may have been closed already). */
    int (*del)(void *state, int fd, unsigned old_events);
    /* Wait up to timeout_ms (-1: no limit, 0: don't wait) and store at most
     * max (<= SM__LOOP_MAX_EVENTS) ready fds in out. Returns how many, or
     * -errno (-EINTR when a signal interrupted the wait). */
    int (*wait)(void *state, sm__poll_event *out, int max, int timeout_ms);
    /* A completion backend (io_uring): run the completions the last wait
     * reaped, after the loop dispatched its events. NULL elsewhere. */
    void (*complete)(void *state);
    /* A completion backend: hand the kernel what the iteration prepared
     * without waiting (sm_loop_run returns: work must not sit unsent until
     * a next run). NULL elsewhere. */
    void (*submit)(void *state);
    /* Learn the loop it serves, once, after create. NULL: not needed. */
    void (*attach)(void *state, struct sm_loop *loop);
} sm__poller_ops;

extern const sm__poller_ops sm__poller_epoll;
extern const sm__poller_ops sm__poller_poll;
#ifdef SM_HAVE_URING
extern const sm__poller_ops sm__poller_uring; /* loop_uring.c */
#endif

#endif
