/* epoll(7) backend: the only file that includes <sys/epoll.h>.
 *
 * Level-triggered by default: it lets a consumer stop early (a per-wakeup
 * read budget for fairness, a paused reader under backpressure) without
 * losing the readiness, and behaves exactly like the poll backend. A watcher
 * the loop marks edge-only (framed streams, see sm__io_set_edge) gets
 * EPOLLET: a level-triggered item goes back on epoll's ready list after each
 * report and costs one more poll of the socket at the next wait, about 2% of
 * the server's CPU in the pipelined benchmark (docs/design.md). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop_poller.h"

typedef struct epoll_state {
    int epfd;
    struct epoll_event evs[SM__LOOP_MAX_EVENTS];
} epoll_state;

static uint32_t
to_epoll(unsigned events)
{
    return (events & SM_READ ? EPOLLIN : 0) | (events & SM_WRITE ? EPOLLOUT : 0) |
           (events & SM__EV_EDGE ? EPOLLET | EPOLLRDHUP : 0);
}

static unsigned
from_epoll(uint32_t e)
{
    unsigned events = 0;
    if (e & (EPOLLIN | EPOLLPRI)) events |= SM_READ;
    if (e & EPOLLOUT) events |= SM_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) events |= SM_READ | SM_WRITE;
    if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) events |= SM_READ | SM__EV_HUP;
    return events;
}

static int
ep_create(void **state)
{
    epoll_state *s = malloc(sizeof *s);
    if (!s) return -ENOMEM;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    *state = s;
    return 0;
}

static void
ep_destroy(void *state)
{
    epoll_state *s = state;
    close(s->epfd);
    free(s);
}

static int
ctl(epoll_state *s, int op, int fd, unsigned events)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
    return epoll_ctl(s->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static int
ep_add(void *state, int fd, unsigned events)
{
    return ctl(state, EPOLL_CTL_ADD, fd, events);
}

static int
ep_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    (void)old_events;
    return ctl(state, EPOLL_CTL_MOD, fd, events);
}

static int
ep_del(void *state, int fd, unsigned old_events)
{
    (void)old_events;
    return ctl(state, EPOLL_CTL_DEL, fd, 0);
}

static int
ep_wait(void *state, sm__poll_event *out, int max, int timeout_ms)
{
    epoll_state *s = state;
    if (max > SM__LOOP_MAX_EVENTS) max = SM__LOOP_MAX_EVENTS;
    int n = epoll_wait(s->epfd, s->evs, max, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        out[i].fd = s->evs[i].data.fd;
        out[i].events = from_epoll(s->evs[i].events);
    }
    return n;
}

const sm__poller_ops sm__poller_epoll = {
    .name = "epoll",
    .edge = true,
    .create = ep_create,
    .destroy = ep_destroy,
    .add = ep_add,
    .modify = ep_modify,
    .del = ep_del,
    .wait = ep_wait,
};
