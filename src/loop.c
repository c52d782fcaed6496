/* The event loop core: io watchers, deferred callbacks, wake-up, run and
 * stop. Timers live in timer_heap.c, signals in loop_signal.c, the kernel
 * interfaces behind loop_poller.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "loop_internal.h"
#ifdef SM_HAVE_URING
#include "loop_uring.h"
#endif
#include "sockmsg/error.h"

#define IO_EVENTS (SM_READ | SM_WRITE)

/* ---- backend calls -------------------------------------------------------- */

static unsigned
edge_bit(const sm_io *w)
{
    return (w->flags & SM__IO_EDGE ? SM__EV_EDGE : 0) |
           (w->flags & SM__IO_ACCEPT ? SM__EV_ACCEPT : 0);
}

/* An add or modify makes the kernel look at the fd's readiness again: what
 * an edge-triggered watcher missed is reported anew. */
static int
ctl_add(sm_loop *loop, sm_io *w, unsigned events)
{
    loop->ctl_calls++;
    w->flags &= (uint8_t)~SM__IO_MISSED;
    return loop->ops->add(loop->poller, w->fd, events | edge_bit(w));
}

static int
ctl_modify(sm_loop *loop, sm_io *w, unsigned old_events, unsigned events)
{
    loop->ctl_calls++;
    w->flags &= (uint8_t)~SM__IO_MISSED;
    return loop->ops->modify(loop->poller, w->fd, old_events, events | edge_bit(w));
}

static void
ctl_del(sm_loop *loop, int fd, unsigned old_events)
{
    loop->ctl_calls++;
    /* Fails only if the caller closed the fd before stopping, and then the
     * kernel has forgotten it already. */
    (void)loop->ops->del(loop->poller, fd, old_events);
}

/* The backend asked for: opts, else $SOCKMSG_BACKEND, else epoll. */
static int
pick_backend(sm_loop_backend b, sm_loop_backend *out)
{
    if (b == SM_BACKEND_DEFAULT) {
        const char *env = getenv("SOCKMSG_BACKEND");
        b = SM_BACKEND_EPOLL;
        if (env && *env) {
            if (!strcmp(env, "epoll"))
                b = SM_BACKEND_EPOLL;
            else if (!strcmp(env, "poll"))
                b = SM_BACKEND_POLL;
            else if (!strcmp(env, "io_uring"))
                b = SM_BACKEND_IO_URING;
            else
                return SM_ERR_BACKEND; /* a typo must not silently pick another backend */
        }
    }
    if (b != SM_BACKEND_EPOLL && b != SM_BACKEND_POLL && b != SM_BACKEND_IO_URING) return -EINVAL;
    *out = b;
    return 0;
}

/* A backend instance for the loop. io_uring may be missing (not built,
 * disabled by sysctl or seccomp, an old kernel): the loop runs on epoll
 * then, and keeps the reason for sm_loop_backend_why. */
static int
create_backend(sm_loop *loop, sm_loop_backend b)
{
    if (b == SM_BACKEND_IO_URING) {
#ifdef SM_HAVE_URING
        char why[sizeof loop->backend_why - 32];
        if (sm__uring_create(&loop->poller, why, sizeof why) == 0) {
            loop->ops = &sm__poller_uring;
            loop->ops->attach(loop->poller, loop);
            return 0;
        }
        snprintf(loop->backend_why, sizeof loop->backend_why, "io_uring unavailable: %s", why);
#else
        snprintf(loop->backend_why, sizeof loop->backend_why,
                 "io_uring unavailable: built without liburing");
#endif
        b = SM_BACKEND_EPOLL;
    }
    loop->ops = b == SM_BACKEND_POLL ? &sm__poller_poll : &sm__poller_epoll;
    return loop->ops->create(&loop->poller);
}

/* ---- growth: the only allocations io watchers cause ----------------------- */

static int
fds_reserve(sm_loop *loop, int fd)
{
    return sm__table_reserve((void **)&loop->fds, &loop->fds_cap, (size_t)fd + 1, sizeof(sm_io *));
}

static int
changes_reserve(sm_loop *loop, size_t need)
{
    return sm__table_reserve((void **)&loop->changes, &loop->changes_cap, need, sizeof(int));
}

/* Carry out the interest removals recorded during the iteration, unless an
 * addition since has done it or the interest came back. */
static void
flush_changes(sm_loop *loop)
{
    for (size_t i = 0; i < loop->nchanges; i++) {
        sm_io *w = loop->fds[loop->changes[i]];
        /* Entries of watchers stopped since are stale: skip them. */
        if (!w || !(w->flags & SM__IO_DIRTY)) continue;
        w->flags &= ~SM__IO_DIRTY;
        loop->io_clean++;
        if (w->events == w->kernel) continue;
        if (!w->events) {
            ctl_del(loop, w->fd, w->kernel);
            w->kernel = 0;
        } else if (ctl_modify(loop, w, w->kernel, w->events) == 0) {
            w->kernel = w->events;
        }
        /* A failed narrowing leaves the kernel a superset; dispatch filters. */
    }
    loop->nchanges = 0;
}

/* ---- deferred callbacks --------------------------------------------------- */

static void
dlist_init(sm_defer *head)
{
    head->next = head->prev = head;
}

static void
dlist_unlink(sm_defer *d)
{
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->next = d->prev = NULL;
}

static void
run_defers(sm_loop *loop)
{
    sm_defer *q = &loop->defer_q, *r = &loop->defer_run;
    if (q->next == q) return;
    /* Run what is queued now; what these callbacks queue waits for the next
     * iteration. */
    r->next = q->next;
    r->prev = q->prev;
    r->next->prev = r;
    r->prev->next = r;
    dlist_init(q);
    while (r->next != r) {
        sm_defer *d = r->next;
        dlist_unlink(d);
        loop->pending--;
        d->cb(d);
    }
}

static void
run_closes(sm_loop *loop)
{
    sm_io *w;
    while ((w = loop->close_head) != NULL) {
        loop->close_head = w->next_closing;
        if (!loop->close_head) loop->close_tail = NULL;
        w->next_closing = NULL;
        loop->pending--;
        /* The last touch: on_close may free w. */
        if (w->u.on_close) w->u.on_close(w);
    }
}

/* ---- wake-up -------------------------------------------------------------- */

/* Write the eventfd unless a write is already in flight. Only called when the
 * loop is (about to be) blocked in its wait: otherwise the flags suffice. */
static void
wake(sm_loop *loop)
{
    if (atomic_exchange(&loop->wake_pending, 1)) return;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(loop->wake_fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

static void
wake_cb(sm_io *w, unsigned events)
{
    sm_loop *loop = w->loop;
    (void)events;
    /* Drain first, then clear: clearing first let a writer set the flag and
     * write between the two, its write drained here with the flag left set,
     * and every later wake() skipped the write (a lost wake-up). */
    uint64_t v;
    ssize_t n = read(loop->wake_fd, &v, sizeof v);
    (void)n; /* EAGAIN: another wait drained it already */
    atomic_store(&loop->wake_pending, 0);
}

/* ---- loop ----------------------------------------------------------------- */

static bool
alive(const sm_loop *loop)
{
    return loop->active || loop->pending;
}

int
sm_loop_new(sm_loop **out, const sm_loop_opts *opts)
{
    static const sm_loop_opts defaults = {0};
    if (!opts) opts = &defaults;
    sm_loop_backend backend;
    int rc = pick_backend(opts->backend, &backend);
    if (rc < 0) return rc;

    sm_loop *loop = calloc(1, sizeof *loop);
    if (!loop) return -ENOMEM;
    loop->on_wakeup = opts->on_wakeup;
    loop->data = opts->data;
    dlist_init(&loop->defer_q);
    dlist_init(&loop->defer_run);
    atomic_init(&loop->wake_pending, 0);
    atomic_init(&loop->wake_user, 0);
    atomic_init(&loop->stop_req, 0);
    atomic_init(&loop->polling, 0);
    if ((rc = create_backend(loop, backend)) < 0) {
        free(loop);
        return rc;
    }
    /* After the backend: setting up a ring takes a while, and what the
     * loop's first watchers record as "now" must not predate the loop. */
    loop->now = sm__now_ms();
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    sm_io_init(loop, &loop->wake_io, loop->wake_fd, wake_cb);
    loop->wake_io.flags = SM__IO_INTERNAL;
    if ((rc = sm_io_start(&loop->wake_io, SM_READ)) < 0) goto fail;
    *out = loop;
    return 0;

fail:
    if (loop->wake_fd >= 0) close(loop->wake_fd);
    loop->ops->destroy(loop->poller);
    sm__table_free(loop->fds, loop->fds_cap, sizeof(sm_io *));
    sm__table_free(loop->changes, loop->changes_cap, sizeof(int));
    free(loop);
    return rc;
}

int
sm_loop_free(sm_loop *loop)
{
    if (!loop) return 0;
    if (loop->running || alive(loop)) return -EBUSY;
    if (loop->streams_free) loop->streams_free(loop->streams);
    sm__signals_free(loop);
    sm_io_stop(&loop->wake_io);
    close(loop->wake_fd);
    loop->ops->destroy(loop->poller);
    sm__table_free(loop->fds, loop->fds_cap, sizeof(sm_io *));
    sm__table_free(loop->changes, loop->changes_cap, sizeof(int));
    free(loop);
    return 0;
}

/* Wait for I/O and run the io callbacks. Returns 1 if stopped before
 * waiting, 0, or a backend error. */
static int
poll_io(sm_loop *loop, int timeout)
{
    flush_changes(loop);
    /* Announce the wait before the last look at the flags, so that a
     * thread calling sm_loop_stop / sm_loop_wakeup either sees `polling`
     * and writes the eventfd, or has its flag seen here (both seq_cst). */
    atomic_store(&loop->polling, 1);
    if (atomic_exchange(&loop->stop_req, 0)) {
        atomic_store(&loop->polling, 0);
        return 1;
    }
    if (atomic_load(&loop->wake_user)) timeout = 0;
    int64_t until = timeout > 0 ? sm__now_ms() + timeout : 0;
    int n;
    for (;;) {
        n = loop->ops->wait(loop->poller, loop->events, SM__LOOP_MAX_EVENTS, timeout);
        if (n != -EINTR) break;
        /* A signal handler ran, or the kernel ran task work of an io_uring
         * ring (its teardown interrupts the task's waits even where the
         * loop is on epoll): wait out the rest, unless asked to stop. */
        if (atomic_load(&loop->stop_req) || atomic_load(&loop->wake_user)) {
            n = 0;
            break;
        }
        if (timeout > 0) {
            int64_t left = until - sm__now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
    }
    atomic_store(&loop->polling, 0);
    loop->now = sm__now_ms();
    if (n < 0) return n;

    loop->nevents = n;
    for (loop->ev_next = 0; loop->ev_next < loop->nevents;) {
        sm__poll_event ev = loop->events[loop->ev_next++];
        /* fd -1: its watcher was stopped by an earlier callback of this
         * batch; a NULL slot: likewise, seen through the table. */
        if (ev.fd < 0 || (size_t)ev.fd >= loop->fds_cap) continue;
        sm_io *w = loop->fds[ev.fd];
        if (!w) continue;
        unsigned got = ev.events & w->events;
        if (w->flags & SM__IO_EDGE) {
            /* The kernel will not repeat it: remembered for sm_io_set_events. */
            if (ev.events & ~w->events & IO_EVENTS) w->flags |= SM__IO_MISSED;
            if (got) got |= ev.events & SM__EV_HUP;
        }
        if (got) w->u.cb(w, got);
    }
    loop->nevents = loop->ev_next = 0;
    if (loop->ops->complete) loop->ops->complete(loop->poller);

    if (atomic_exchange(&loop->wake_user, 0) && loop->on_wakeup) loop->on_wakeup(loop);
    return 0;
}

int
sm_loop_run(sm_loop *loop, sm_run_mode mode)
{
    if (loop->running) return -EBUSY;
    if (mode != SM_RUN_DEFAULT && mode != SM_RUN_ONCE && mode != SM_RUN_NOWAIT) return -EINVAL;
    loop->running = true;
    loop->now = sm__now_ms();
    int rc = 0;
    while (alive(loop)) {
        int timeout = 0;
        if (mode != SM_RUN_NOWAIT && !loop->pending) timeout = sm__timers_timeout(loop);
        if ((rc = poll_io(loop, timeout)) != 0) break;
        sm__timers_run(loop);
        run_defers(loop);
        run_closes(loop);
        if (mode != SM_RUN_DEFAULT) break;
    }
    if (loop->ops->submit) loop->ops->submit(loop->poller);
    /* A stop that arrived during this run is spent by its return. */
    atomic_store(&loop->stop_req, 0);
    loop->running = false;
    return rc < 0 ? rc : alive(loop);
}

void
sm_loop_stop(sm_loop *loop)
{
    atomic_store(&loop->stop_req, 1);
    if (atomic_load(&loop->polling)) wake(loop);
}

void
sm_loop_wakeup(sm_loop *loop)
{
    atomic_store(&loop->wake_user, 1);
    if (atomic_load(&loop->polling)) wake(loop);
}

int64_t
sm_loop_now(const sm_loop *loop)
{
    return loop->now;
}

const char *
sm_loop_backend_name(const sm_loop *loop)
{
    return loop->ops->name;
}

const char *
sm_loop_backend_why(const sm_loop *loop)
{
    return loop->backend_why[0] ? loop->backend_why : NULL;
}

void
sm__loop_hold(sm_loop *loop, int delta)
{
    loop->pending = delta > 0 ? loop->pending + 1 : loop->pending - 1;
}

void *
sm_loop_get_data(const sm_loop *loop)
{
    return loop->data;
}

void
sm_loop_set_data(sm_loop *loop, void *data)
{
    loop->data = data;
}

uint64_t
sm__loop_ctl_calls(const sm_loop *loop)
{
    return loop->ctl_calls;
}

/* ---- io watchers ---------------------------------------------------------- */

void
sm_io_init(sm_loop *loop, sm_io *w, int fd, sm_io_cb cb)
{
    w->loop = loop;
    w->u.cb = cb;
    w->next_closing = NULL;
    w->fd = fd;
    w->events = 0;
    w->kernel = 0;
    w->flags = 0;
    w->reserved = 0;
}

int
sm_io_start(sm_io *w, unsigned events)
{
    if (events & ~IO_EVENTS) return -EINVAL;
    if (w->flags & SM__IO_CLOSING) return SM_ERR_CLOSED;
    if (w->flags & SM__IO_ACTIVE) return sm_io_set_events(w, events);
    sm_loop *loop = w->loop;
    int fd = w->fd;
    if (fd < 0) return -EBADF;
    int rc = fds_reserve(loop, fd);
    if (rc < 0) return rc;
    if (loop->fds[fd]) return -EEXIST;
    /* Room for a removal record of every clean watcher, this one included:
     * sm_io_set_events never has to allocate. */
    if ((rc = changes_reserve(loop, loop->nchanges + loop->io_clean + 1)) < 0) return rc;
    if (events && (rc = ctl_add(loop, w, events)) < 0) return rc;
    w->events = w->kernel = (uint8_t)events;
    w->flags |= SM__IO_ACTIVE;
    loop->fds[fd] = w;
    loop->io_clean++;
    if (!(w->flags & SM__IO_INTERNAL)) loop->active++;
    return 0;
}

int
sm_io_set_events(sm_io *w, unsigned events)
{
    if (events & ~IO_EVENTS) return -EINVAL;
    if (!(w->flags & SM__IO_ACTIVE)) {
        w->events = (uint8_t)events;
        return 0;
    }
    sm_loop *loop = w->loop;
    /* An edge-triggered watcher that missed a readiness while it did not
     * want the event: asking for an event again re-arms it. */
    bool again = (w->flags & SM__IO_MISSED) && (events & ~w->events);
    if ((events & ~w->kernel) || again) {
        int rc = w->kernel ? ctl_modify(loop, w, w->kernel, events) : ctl_add(loop, w, events);
        if (rc < 0) return rc;
        w->kernel = (uint8_t)events;
    } else if (events != w->kernel && !(w->flags & SM__IO_DIRTY)) {
        loop->changes[loop->nchanges++] = w->fd;
        w->flags |= SM__IO_DIRTY;
        loop->io_clean--;
    }
    w->events = (uint8_t)events;
    return 0;
}

unsigned
sm_io_get_events(const sm_io *w)
{
    return w->events;
}

void
sm_io_stop(sm_io *w)
{
    if (!(w->flags & SM__IO_ACTIVE)) return;
    sm_loop *loop = w->loop;
    if (w->kernel) ctl_del(loop, w->fd, w->kernel);
    w->kernel = 0;
    loop->fds[w->fd] = NULL;
    /* An event of this batch still to come for the fd must not reach a
     * watcher started on the same fd number later in this iteration. */
    for (int i = loop->ev_next; i < loop->nevents; i++)
        if (loop->events[i].fd == w->fd) loop->events[i].fd = -1;
    if (!(w->flags & SM__IO_DIRTY)) loop->io_clean--;
    w->flags &= ~(SM__IO_ACTIVE | SM__IO_DIRTY);
    if (!(w->flags & SM__IO_INTERNAL)) loop->active--;
}

int
sm_io_close(sm_io *w, sm_io_close_cb on_close)
{
    if (w->flags & SM__IO_CLOSING) return SM_ERR_CLOSED;
    sm_loop *loop = w->loop;
    sm_io_stop(w);
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    w->flags |= SM__IO_CLOSING;
    w->u.on_close = on_close;
    w->next_closing = NULL;
    if (loop->close_tail)
        loop->close_tail->next_closing = w;
    else
        loop->close_head = w;
    loop->close_tail = w;
    loop->pending++;
    return 0;
}

bool
sm_io_is_active(const sm_io *w)
{
    return (w->flags & SM__IO_ACTIVE) != 0;
}

/* ---- deferred callbacks --------------------------------------------------- */

void
sm_defer_init(sm_loop *loop, sm_defer *d, sm_defer_cb cb)
{
    d->loop = loop;
    d->cb = cb;
    d->next = d->prev = NULL;
}

void
sm_defer_start(sm_defer *d)
{
    if (d->next) return;
    sm_defer *head = &d->loop->defer_q;
    d->next = head;
    d->prev = head->prev;
    head->prev->next = d;
    head->prev = d;
    d->loop->pending++;
}

void
sm_defer_stop(sm_defer *d)
{
    if (!d->next) return;
    dlist_unlink(d);
    d->loop->pending--;
}

bool
sm_defer_is_active(const sm_defer *d)
{
    return d->next != NULL;
}

void
sm__io_set_edge(sm_io *w)
{
    if (w->loop->ops->edge) w->flags |= SM__IO_EDGE;
}

void
sm__io_set_accept(sm_io *w)
{
    if (w->loop->ops->accepted) w->flags |= SM__IO_ACCEPT;
}

int
sm__io_accept(sm_io *w)
{
    sm_loop *loop = w->loop;
    if ((w->flags & SM__IO_ACCEPT) && w->kernel) {
        int fd = loop->ops->accepted(loop->poller, w->fd);
        if (fd != -ENOENT) return fd;
    }
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) return fd;
        if (errno != EINTR) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int
sm__io_rearm(sm_io *w)
{
    if ((w->flags & (SM__IO_EDGE | SM__IO_ACTIVE)) != (SM__IO_EDGE | SM__IO_ACTIVE) || !w->kernel)
        return 0;
    return ctl_modify(w->loop, w, w->kernel, w->kernel);
}
