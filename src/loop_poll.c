/* poll(2) backend: the portable path. A dense pollfd array (deleting moves
 * the last entry into the hole) and an fd-indexed map into it keep add,
 * modify and delete O(1); a wait costs O(watched fds) in the kernel and in
 * the scan below. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_poller.h"

typedef struct poll_state {
    struct pollfd *pfds;
    int n, cap;
    int *slot; /* fd -> index in pfds + 1; 0: not watched */
    int slot_cap;
    int scan; /* where the next scan starts, see ps_wait */
} poll_state;

static short
to_poll(unsigned events)
{
    return (short)((events & SM_READ ? POLLIN : 0) | (events & SM_WRITE ? POLLOUT : 0));
}

static unsigned
from_poll(short r)
{
    unsigned events = 0;
    if (r & (POLLIN | POLLPRI)) events |= SM_READ;
    if (r & POLLOUT) events |= SM_WRITE;
    /* POLLNVAL: the fd was closed while watched; the callback's next call
     * fails with EBADF, which says so better than silence. */
    if (r & (POLLERR | POLLHUP | POLLNVAL)) events |= SM_READ | SM_WRITE;
    return events;
}

static int
ps_create(void **state)
{
    poll_state *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    *state = s;
    return 0;
}

static void
ps_destroy(void *state)
{
    poll_state *s = state;
    free(s->pfds);
    free(s->slot);
    free(s);
}

static int
grow(void **p, int *cap, int need, size_t size)
{
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, (size_t)ncap * size);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

static int
ps_add(void *state, int fd, unsigned events)
{
    poll_state *s = state;
    int old_cap = s->slot_cap;
    if (grow((void **)&s->slot, &s->slot_cap, fd + 1, sizeof *s->slot) < 0) return -ENOMEM;
    memset(s->slot + old_cap, 0, (size_t)(s->slot_cap - old_cap) * sizeof *s->slot);
    if (s->slot[fd]) return -EEXIST;
    if (grow((void **)&s->pfds, &s->cap, s->n + 1, sizeof *s->pfds) < 0) return -ENOMEM;
    s->pfds[s->n] = (struct pollfd){.fd = fd, .events = to_poll(events)};
    s->slot[fd] = ++s->n;
    return 0;
}

static int
ps_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    poll_state *s = state;
    (void)old_events;
    if (fd >= s->slot_cap || !s->slot[fd]) return -ENOENT;
    s->pfds[s->slot[fd] - 1].events = to_poll(events);
    return 0;
}

static int
ps_del(void *state, int fd, unsigned old_events)
{
    poll_state *s = state;
    (void)old_events;
    if (fd >= s->slot_cap || !s->slot[fd]) return -ENOENT;
    int i = s->slot[fd] - 1;
    s->slot[fd] = 0;
    if (i != --s->n) {
        s->pfds[i] = s->pfds[s->n];
        s->slot[s->pfds[i].fd] = i + 1;
    }
    return 0;
}

static int
ps_wait(void *state, sm__poll_event *out, int max, int timeout_ms)
{
    poll_state *s = state;
    int ready = poll(s->pfds, (nfds_t)s->n, timeout_ms);
    if (ready < 0) return -errno;
    /* With more ready fds than fit, start where the last full scan stopped,
     * so the ones at the front of the array cannot starve the rest. */
    int got = 0, i = s->scan < s->n ? s->scan : 0;
    for (int seen = 0; seen < s->n && got < ready && got < max; seen++) {
        if (s->pfds[i].revents) {
            out[got].fd = s->pfds[i].fd;
            out[got].events = from_poll(s->pfds[i].revents);
            got++;
        }
        if (++i == s->n) i = 0;
    }
    s->scan = got == max ? i : 0;
    return got;
}

const sm__poller_ops sm__poller_poll = {
    .name = "poll",
    .create = ps_create,
    .destroy = ps_destroy,
    .add = ps_add,
    .modify = ps_modify,
    .del = ps_del,
    .wait = ps_wait,
};
