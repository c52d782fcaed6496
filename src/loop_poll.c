/* poll(2) backend: the portable path. A dense pollfd array (deleting moves
 * the last entry into the hole) and an fd-indexed map into it keep add,
 * modify and delete O(1); a wait costs O(watched fds) in the kernel and in
 * the scan below. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

/* Both arrays live in sm__table mappings (loop_table.c): growing them never
 * leaves an outgrown copy in the heap. */
typedef struct poll_state {
    struct pollfd *pfds;
    int n;
    size_t cap;
    int *slot; /* fd -> index in pfds + 1; 0: not watched */
    size_t slot_cap;
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
    sm__table_free(s->pfds, s->cap, sizeof *s->pfds);
    sm__table_free(s->slot, s->slot_cap, sizeof *s->slot);
    free(s);
}

static int
ps_add(void *state, int fd, unsigned events)
{
    poll_state *s = state;
    if (sm__table_reserve((void **)&s->slot, &s->slot_cap, (size_t)fd + 1, sizeof *s->slot) < 0)
        return -ENOMEM;
    if (s->slot[fd]) return -EEXIST;
    if (sm__table_reserve((void **)&s->pfds, &s->cap, (size_t)s->n + 1, sizeof *s->pfds) < 0)
        return -ENOMEM;
    s->pfds[s->n] = (struct pollfd){.fd = fd, .events = to_poll(events)};
    s->slot[fd] = ++s->n;
    return 0;
}

static int
ps_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    poll_state *s = state;
    (void)old_events;
    if ((size_t)fd >= s->slot_cap || !s->slot[fd]) return -ENOENT;
    s->pfds[s->slot[fd] - 1].events = to_poll(events);
    return 0;
}

static int
ps_del(void *state, int fd, unsigned old_events)
{
    poll_state *s = state;
    (void)old_events;
    if ((size_t)fd >= s->slot_cap || !s->slot[fd]) return -ENOENT;
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
