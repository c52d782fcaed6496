/* Signal watchers over one signalfd per loop: signals are blocked and read
 * as data on the loop thread, so no handler ever runs in signal context and
 * callbacks may do anything a callback may. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "loop_internal.h"

struct sm__sigstate {
    int fd;
    sm_io io;
    sigset_t watched;
    sigset_t blocked_by_us; /* blocked by a start; unblocked by the last stop */
    sm_signal *heads[NSIG];
    sm_signal *iter_next; /* dispatch cursor, moved on by a stop */
};

static void
one_signal(sigset_t *set, int signum)
{
    sigemptyset(set);
    sigaddset(set, signum);
}

static void
signal_cb(sm_io *io, unsigned events)
{
    struct sm__sigstate *st = io->loop->sig;
    struct signalfd_siginfo si[16];
    (void)events;
    /* Bounded: a signal storm must not hold the loop here. */
    for (int round = 0; round < 4; round++) {
        ssize_t n = read(st->fd, si, sizeof si);
        if (n <= 0) return;
        size_t count = (size_t)n / sizeof si[0];
        for (size_t i = 0; i < count; i++) {
            int signum = (int)si[i].ssi_signo;
            if (signum <= 0 || signum >= NSIG) continue;
            /* A callback may stop any watcher of this signal, the next one
             * included: sm_signal_stop moves the cursor past it. */
            for (sm_signal *w = st->heads[signum]; w; w = st->iter_next) {
                st->iter_next = w->next;
                w->cb(w, signum);
            }
            st->iter_next = NULL;
        }
        if ((size_t)n < sizeof si) return;
    }
}

/* The loop's signal state, made on first use; NULL with *err set on failure. */
static struct sm__sigstate *
sigstate_get(sm_loop *loop, int *err)
{
    if (loop->sig) return loop->sig;
    struct sm__sigstate *st = calloc(1, sizeof *st);
    if (!st) {
        *err = -ENOMEM;
        return NULL;
    }
    sigemptyset(&st->watched);
    sigemptyset(&st->blocked_by_us);
    st->fd = signalfd(-1, &st->watched, SFD_NONBLOCK | SFD_CLOEXEC);
    if (st->fd < 0) {
        *err = -errno;
        free(st);
        return NULL;
    }
    sm_io_init(loop, &st->io, st->fd, signal_cb);
    st->io.flags = SM__IO_INTERNAL;
    int rc = sm_io_start(&st->io, SM_READ);
    if (rc < 0) {
        close(st->fd);
        free(st);
        *err = rc;
        return NULL;
    }
    loop->sig = st;
    return st;
}

/* The first watcher of signum: block it in this thread (before the signalfd
 * asks for it, so no instance slips to the default action in between). */
static int
watch(struct sm__sigstate *st, int signum)
{
    sigset_t one, old, want = st->watched;
    one_signal(&one, signum);
    int err = pthread_sigmask(SIG_BLOCK, &one, &old);
    if (err) return -err;
    sigaddset(&want, signum);
    if (signalfd(st->fd, &want, 0) < 0) {
        err = -errno;
        if (!sigismember(&old, signum)) pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        return err;
    }
    if (!sigismember(&old, signum)) sigaddset(&st->blocked_by_us, signum);
    st->watched = want;
    return 0;
}

/* The last watcher of signum is gone: give the signal back as it was. */
static void
unwatch(struct sm__sigstate *st, int signum)
{
    sigdelset(&st->watched, signum);
    (void)signalfd(st->fd, &st->watched, 0);
    if (!sigismember(&st->blocked_by_us, signum)) return;
    sigdelset(&st->blocked_by_us, signum);
    sigset_t one;
    one_signal(&one, signum);
    /* An instance that arrived after the last read would hit the default
     * action (often death) the moment it is unblocked: it was meant for the
     * watcher, so it goes with it. */
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&one, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

void
sm_signal_init(sm_loop *loop, sm_signal *w, sm_signal_cb cb)
{
    w->loop = loop;
    w->cb = cb;
    w->next = NULL;
    w->signum = 0;
    w->reserved = 0;
}

int
sm_signal_start(sm_signal *w, int signum)
{
    if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP) return -EINVAL;
    if (w->signum == signum) return 0;
    sm_loop *loop = w->loop;
    int rc = 0;
    struct sm__sigstate *st = sigstate_get(loop, &rc);
    if (!st) return rc;
    if (!st->heads[signum] && (rc = watch(st, signum)) < 0) return rc;
    sm_signal_stop(w);
    w->signum = signum;
    w->next = st->heads[signum];
    st->heads[signum] = w;
    loop->active++;
    return 0;
}

void
sm_signal_stop(sm_signal *w)
{
    if (!w->signum) return;
    struct sm__sigstate *st = w->loop->sig;
    sm_signal **pp = &st->heads[w->signum];
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    if (st->iter_next == w) st->iter_next = w->next;
    if (!st->heads[w->signum]) unwatch(st, w->signum);
    w->next = NULL;
    w->signum = 0;
    w->loop->active--;
}

bool
sm_signal_is_active(const sm_signal *w)
{
    return w->signum != 0;
}

void
sm__signals_free(sm_loop *loop)
{
    struct sm__sigstate *st = loop->sig;
    if (!st) return;
    sm_io_stop(&st->io);
    close(st->fd);
    free(st);
    loop->sig = NULL;
}
