/* io_uring(7) backend: the only file that talks to the ring directly
 * (through liburing). See loop_uring.h for what it offers transports.
 *
 * Watchers: a one-shot poll request per watched fd. After it fires, the
 * next wait arms a new one while the watcher still wants events, so a
 * consumer that stops early is told again (level triggered, like the
 * epoll and poll backends); interest changes are carried out at the next
 * wait too, by removing the request and arming one with the new mask.
 * Each request's user_data carries the fd and a per-fd sequence number:
 * a completion of a request replaced since is recognised and dropped.
 *
 * The ring runs completion work cooperatively (COOP_TASKRUN: no
 * interrupt of the loop's thread to run it; it runs when the loop enters).
 * Not SINGLE_ISSUER / DEFER_TASKRUN: they pin the ring to one thread for
 * its life, and a loop may be run, and is freed, by another thread than
 * the one that ran it first (sm_server frees its loops from the thread
 * that calls sm_server_free). A pinned ring cannot cancel its requests
 * from there, and a poll request keeps its socket open: a stopped server
 * kept its port (docs/design.md). */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_uring.h"

#define RING_ENTRIES 1024u
#define COMP_MAX     512
#define SEQ_BITS     28

/* Connections a listener's multishot accept took, not yet taken from it.
 * Listeners are few: their queues sit on a list of their own, which keeps
 * the per-fd table at 8 bytes a slot. */
typedef struct uacc {
    struct uacc *next;
    int fd;
    int *fds;
    unsigned head, n, cap;
    int err; /* an accept error to report once the queue is empty */
} uacc;

typedef struct ufd {
    uint32_t seq;   /* of the request armed last */
    uint8_t want;   /* SM_READ / SM_WRITE the loop asked for */
    uint8_t armed;  /* the mask of the request in flight, 0: none */
    uint8_t dirty;  /* on the dirty list */
    uint8_t accept; /* a listener: a multishot accept instead of a poll */
} ufd;              /* 8 bytes: the listeners' accept queues live on a list of their own */

typedef struct ucomp {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
} ucomp;

/* fds and dirty are sm__table mappings (loop_table.c): growing them leaves
 * no outgrown copy in the heap, and only slots in use take memory. */
struct sm__uring {
    struct io_uring ring;
    ufd *fds;
    size_t fds_cap;
    uacc *accs; /* the listeners' accepted queues */
    int *dirty; /* fds whose requests the next wait changes */
    size_t ndirty, dirty_cap;
    sm_loop *loop;
    sm__uring_cb handlers[SM__UT_KINDS];
    ucomp comp[COMP_MAX]; /* completions reaped by the wait, run by complete */
    unsigned writes;      /* writes prepared since the last wait (sm__uring_wrote) */
    int ncomp;
    /* provided receive buffers */
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    bool inc;                   /* consumed incrementally (IOU_PBUF_RING_INC) */
    uint32_t off[SM__UBUF_MAX]; /* incrementally: what of each buffer is used */
    /* Writes still to go out of each buffer's bytes (sm__uring_buf_pin), and
     * whether the kernel is done with it meanwhile (it goes back to the
     * ring when the last pin goes); npinned buffers have any pins. */
    uint16_t pins[SM__UBUF_MAX];
    bool parked[SM__UBUF_MAX];
    size_t bsize;   /* each buffer's size (sm__uring_bufs) */
    unsigned nbufs; /* how many (a power of two) */
    unsigned npinned;
    int bgid; /* 0 once set up, -errno if that failed, 1: not tried */
};

static uint64_t
fd_ud(unsigned tag, int fd, uint32_t seq)
{
    return tag | (uint64_t)(uint32_t)fd << 4 | (uint64_t)seq << 36;
}

static uint64_t
poll_ud(const ufd *f, int fd)
{
    return fd_ud(f->accept ? SM__UT_ACCEPT : SM__UT_POLL, fd, f->seq);
}

static unsigned
to_poll(unsigned events)
{
    return (events & SM_READ ? POLLIN | POLLRDHUP : 0) | (events & SM_WRITE ? POLLOUT : 0);
}

static unsigned
from_poll(int32_t res)
{
    if (res < 0) return SM_READ | SM_WRITE; /* the next read or write says what */
    unsigned r = (unsigned)res, events = 0;
    if (r & (POLLIN | POLLPRI | POLLRDHUP)) events |= SM_READ;
    if (r & POLLOUT) events |= SM_WRITE;
    if (r & (POLLERR | POLLHUP | POLLNVAL)) events |= SM_READ | SM_WRITE;
    return events;
}

/* ---- setup ---------------------------------------------------------------- */

static int
setup(struct io_uring *ring, char *why, size_t why_len)
{
    /* The most the kernel offers first; each later one drops a flag an
     * older kernel refuses with EINVAL. */
    static const unsigned tries[] = {
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i] | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
        p.cq_entries = RING_ENTRIES * 4;
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
        if (rc == 0) {
            if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
                io_uring_queue_exit(ring);
                snprintf(why, why_len, "kernel too old: io_uring lacks EXT_ARG/NODROP");
                return -ENOSYS;
            }
            return 0;
        }
        if (rc != -EINVAL) break;
    }
    snprintf(why, why_len, "io_uring_setup: %s%s", strerror(-rc),
             rc == -EPERM ? " (kernel.io_uring_disabled, or a seccomp filter)" : "");
    return rc;
}

/* Every request the backend and the transports use, and SEND_ZC as the
 * mark of Linux 6.0, which brought multishot receive with provided
 * buffer rings. */
static int
probe(struct io_uring *ring, char *why, size_t why_len)
{
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_POLL_REMOVE, "POLL_REMOVE"},
        {IORING_OP_RECV, "RECV"},
        {IORING_OP_SENDMSG, "SENDMSG"},
        {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
        {IORING_OP_SEND_ZC, "SEND_ZC (Linux 6.0)"},
    };
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (!p) {
        snprintf(why, why_len, "io_uring probe failed");
        return -ENOSYS;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0] && rc == 0; i++) {
        if (!io_uring_opcode_supported(p, need[i].op)) {
            snprintf(why, why_len, "kernel too old: io_uring has no %s", need[i].name);
            rc = -ENOSYS;
        }
    }
    io_uring_free_probe(p);
    return rc;
}

int
sm__uring_create(void **state, char *why, size_t why_len)
{
    sm__uring *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    int rc = setup(&u->ring, why, why_len);
    if (rc == 0 && (rc = probe(&u->ring, why, why_len)) < 0) io_uring_queue_exit(&u->ring);
    if (rc < 0) {
        free(u);
        return rc;
    }
    u->bgid = 1;
    *state = u;
    return 0;
}

static int
ur_create(void **state)
{
    char why[128];
    return sm__uring_create(state, why, sizeof why);
}

/* Listener fd's queue of accepted connections, or NULL. */
static uacc *
acc_of(const sm__uring *u, int fd)
{
    uacc *a = u->accs;
    while (a && a->fd != fd)
        a = a->next;
    return a;
}

/* Connections accepted for a listener that stopped: nobody takes them. */
static void
acc_free(sm__uring *u, int fd)
{
    uacc **pp = &u->accs;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    uacc *a = *pp;
    if (!a) return;
    *pp = a->next;
    for (unsigned i = a->head; i < a->n; i++)
        close(a->fds[i]);
    free(a->fds);
    free(a);
}

/* Cancel requests now, waiting until the kernel let go of them: a poll
 * request holds a reference to its file, so without this a socket closed
 * right after its watcher stopped would linger (a listener would still
 * hold its port) until the next wait. 0 or -errno (-ENOENT: none left). */
static int
sync_cancel(sm__uring *u, uint64_t ud, unsigned flags)
{
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.addr = ud;
    reg.fd = -1;
    reg.flags = flags;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    return io_uring_register_sync_cancel(&u->ring, &reg);
}

static void
ur_destroy(void *state)
{
    sm__uring *u = state;
    /* Exiting the ring cancels what is left too, but lets go of the files
     * later, from a kernel worker: cancelled here, every socket the loop
     * watched is closed by the time sm_loop_free returns. */
    (void)sync_cancel(u, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_queue_exit(&u->ring);
    if (u->br) munmap(u->br, SM__UBUF_MAX * sizeof(struct io_uring_buf));
    if (u->bufs) munmap(u->bufs, SM__UBUF_BYTES);
    while (u->accs)
        acc_free(u, u->accs->fd);
    sm__table_free(u->fds, u->fds_cap, sizeof *u->fds);
    sm__table_free(u->dirty, u->dirty_cap, sizeof *u->dirty);
    free(u);
}

/* ---- watchers ----------------------------------------------------------- */

static int
fd_reserve(sm__uring *u, int fd)
{
    size_t need = (size_t)fd + 1;
    if (sm__table_reserve((void **)&u->fds, &u->fds_cap, need, sizeof *u->fds) < 0) return -ENOMEM;
    /* A slot on the dirty list for every fd: marking never allocates (and
     * only the list's longest prefix ever used is resident). */
    return sm__table_reserve((void **)&u->dirty, &u->dirty_cap, u->fds_cap, sizeof *u->dirty);
}

static void
mark(sm__uring *u, int fd)
{
    ufd *f = &u->fds[fd];
    if (f->dirty) return;
    f->dirty = 1;
    u->dirty[u->ndirty++] = fd;
}

static int
ur_add(void *state, int fd, unsigned events)
{
    sm__uring *u = state;
    int rc = fd_reserve(u, fd);
    if (rc < 0) return rc;
    u->fds[fd].want = (uint8_t)(events & (SM_READ | SM_WRITE));
    u->fds[fd].accept = (events & SM__EV_ACCEPT) != 0;
    mark(u, fd);
    return 0;
}

static int
ur_modify(void *state, int fd, unsigned old_events, unsigned events)
{
    (void)old_events;
    return ur_add(state, fd, events);
}

static int
ur_del(void *state, int fd, unsigned old_events)
{
    sm__uring *u = state;
    (void)old_events;
    if ((size_t)fd >= u->fds_cap) return -ENOENT;
    ufd *f = &u->fds[fd];
    f->want = 0;
    /* Its completion, if one comes, finds the fd unarmed and is dropped.
     * Where the cancel cannot be made here (another thread), the next wait
     * removes the request. */
    int rc = f->armed ? sync_cancel(u, poll_ud(f, fd), 0) : -ENOENT;
    if (rc == 0 || rc == -ENOENT || rc == -EALREADY)
        f->armed = 0;
    else
        mark(u, fd);
    acc_free(u, fd);
    return 0;
}

struct io_uring_sqe *
sm__uring_sqe(sm__uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && io_uring_submit(&u->ring) >= 0) sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

/* Carry out the interest changes: remove a request whose mask is wrong,
 * arm one where an event is wanted and none is in flight. A change that
 * finds the queue full stays on the list for the next wait. */
static void
apply_changes(sm__uring *u)
{
    size_t keep = 0;
    for (size_t i = 0; i < u->ndirty; i++) {
        int fd = u->dirty[i];
        ufd *f = &u->fds[fd];
        if (f->armed && f->armed != f->want) {
            struct io_uring_sqe *sqe = sm__uring_sqe(u);
            if (!sqe) {
                u->dirty[keep++] = fd;
                continue;
            }
            if (f->accept)
                io_uring_prep_cancel64(sqe, poll_ud(f, fd), 0);
            else
                io_uring_prep_poll_remove(sqe, poll_ud(f, fd));
            io_uring_sqe_set_data64(sqe, SM__UT_IGNORE);
            f->armed = 0;
        }
        if (f->want && !f->armed) {
            struct io_uring_sqe *sqe = sm__uring_sqe(u);
            if (!sqe) {
                u->dirty[keep++] = fd;
                continue;
            }
            f->seq = (f->seq + 1) & ((1u << SEQ_BITS) - 1);
            if (f->accept && f->want == SM_READ)
                io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            else
                io_uring_prep_poll_add(sqe, fd, to_poll(f->want));
            io_uring_sqe_set_data64(sqe, poll_ud(f, fd));
            f->armed = f->want;
        }
        f->dirty = 0;
    }
    u->ndirty = keep;
    for (size_t i = 0; i < keep; i++)
        u->fds[u->dirty[i]].dirty = 1;
}

/* A poll request's completion: its event, or nothing when the request was
 * replaced since. */
static bool
poll_done(sm__uring *u, uint64_t ud, int32_t res, sm__poll_event *ev)
{
    int fd = (int)(uint32_t)(ud >> 4);
    uint32_t seq = (uint32_t)(ud >> 36);
    if ((size_t)fd >= u->fds_cap) return false;
    ufd *f = &u->fds[fd];
    if (!f->armed || f->seq != seq) return false;
    f->armed = 0;
    if (f->want) mark(u, fd); /* level triggered: asked again at the next wait */
    if (res == -ECANCELED) return false;
    ev->fd = fd;
    ev->events = from_poll(res);
    return true;
}

/* A listener's multishot accept: the connection joins the listener's
 * queue (a connection for a listener replaced since is closed), and the
 * listener hears SM_READ. The request goes on while F_MORE says so. */
static bool
accept_done(sm__uring *u, uint64_t ud, int32_t res, uint32_t flags, sm__poll_event *ev)
{
    int fd = (int)(uint32_t)(ud >> 4);
    uint32_t seq = (uint32_t)(ud >> 36);
    ufd *f = (size_t)fd < u->fds_cap ? &u->fds[fd] : NULL;
    bool current = f && f->armed && f->seq == seq && f->accept;
    if (!current) {
        if (res >= 0) close(res);
        return false;
    }
    if (!(flags & IORING_CQE_F_MORE)) {
        f->armed = 0;
        if (f->want) mark(u, fd);
    }
    if (res == -ECANCELED) return false;
    uacc *a = acc_of(u, fd);
    if (!a && (a = calloc(1, sizeof *a))) {
        a->fd = fd;
        a->next = u->accs;
        u->accs = a;
    }
    if (!a) {
        if (res >= 0) close(res); /* the client sees a reset: better than a leak */
        return false;
    }
    if (res < 0) {
        a->err = res;
    } else {
        if (a->head == a->n) a->head = a->n = 0;
        if (a->n == a->cap) {
            unsigned cap = a->cap ? a->cap * 2 : 64;
            int *p = realloc(a->fds, cap * sizeof *p);
            if (!p) {
                close(res);
                return false;
            }
            a->fds = p;
            a->cap = cap;
        }
        a->fds[a->n++] = res;
    }
    ev->fd = fd;
    ev->events = SM_READ;
    return true;
}

/* Take the accept completions of fd's request that sit in the completion
 * queue, unreaped, into its queue now (the wait then skips them). 1 when
 * any was taken. */
static bool
claim_accepts(sm__uring *u, int fd)
{
    bool any = false;
    unsigned head;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        uint64_t ud = cqe->user_data;
        if ((ud & SM__UT_MASK) != SM__UT_ACCEPT || (int)(uint32_t)(ud >> 4) != fd) continue;
        sm__poll_event ev;
        any |= accept_done(u, ud, cqe->res, cqe->flags, &ev);
        cqe->user_data = SM__UT_IGNORE; /* entries before the head we move are ours */
    }
    return any;
}

static int
acc_pop(uacc *a)
{
    if (a && a->head < a->n) return a->fds[a->head++];
    if (a && a->err) {
        int err = a->err;
        a->err = 0;
        return err;
    }
    return -EAGAIN;
}

static int
ur_accepted(void *state, int fd)
{
    sm__uring *u = state;
    ufd *f = (size_t)fd < u->fds_cap ? &u->fds[fd] : NULL;
    if (!f || !f->accept) return -ENOENT;
    int got = acc_pop(acc_of(u, fd));
    if (got != -EAGAIN) return got;
    /* Nothing taken yet: what the kernel accepted may wait in the
     * completion queue, or in task work not yet run. A listener about to
     * close (a server's stop serves its backlog) must see those too: a
     * connection closed as stale would be reset. */
    if (f->armed && !claim_accepts(u, fd)) {
        (void)io_uring_get_events(&u->ring);
        (void)claim_accepts(u, fd);
    }
    got = acc_pop(acc_of(u, fd));
    if (got != -EAGAIN) return got;
    /* Not accepting right now (paused, or between requests): the caller's
     * accept4 drains what the kernel holds. */
    return f->armed && !f->dirty ? -EAGAIN : -ENOENT;
}

/* ---- waiting ------------------------------------------------------------- */

static int
ur_wait(void *state, sm__poll_event *out, int max, int timeout_ms)
{
    sm__uring *u = state;
    apply_changes(u);
    if (max > SM__LOOP_MAX_EVENTS) max = SM__LOOP_MAX_EVENTS;
    /* Completions left from the last wait: do not block. */
    if (io_uring_cq_ready(&u->ring)) timeout_ms = 0;
    int rc;
    if (timeout_ms == 0) {
        rc = io_uring_submit_and_get_events(&u->ring);
    } else {
        /* The iteration's writes usually complete as they are submitted,
         * and their completions alone would end the wait: one more loop
         * iteration and syscall before the receives it waits for. So the
         * wait asks for one completion beyond them, for at most 1 ms
         * (a write the socket cannot take yet completes later: the wait
         * must not hang on it). */
        unsigned nr = 1;
        if (u->writes) {
            nr += u->writes;
            if (timeout_ms < 0 || timeout_ms > 1) timeout_ms = 1;
        }
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc =
            io_uring_submit_and_wait_timeout(&u->ring, &cqe, nr, timeout_ms < 0 ? NULL : &ts, NULL);
    }
    u->writes = 0;
    if (rc < 0 && rc != -ETIME && rc != -EBUSY) {
        if (rc == -EINTR) return -EINTR;
        return rc;
    }
    int n = 0;
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        if (n == max || u->ncomp == COMP_MAX) break;
        seen++;
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        unsigned tag = (unsigned)(ud & SM__UT_MASK);
        if (tag == SM__UT_POLL) {
            if (poll_done(u, ud, cqe->res, &out[n])) n++;
        } else if (tag == SM__UT_ACCEPT) {
            if (accept_done(u, ud, cqe->res, cqe->flags, &out[n])) n++;
        } else if (tag != SM__UT_IGNORE) {
            u->comp[u->ncomp++] = (ucomp){.ud = ud, .res = cqe->res, .flags = cqe->flags};
        }
    }
    io_uring_cq_advance(&u->ring, seen);
    return n;
}

/* The completions the wait reaped, after the io callbacks. A handler may
 * prepare requests (submitted by the next wait) and close streams. */
static void
ur_complete(void *state)
{
    sm__uring *u = state;
    for (int i = 0; i < u->ncomp; i++) {
        ucomp c = u->comp[i];
        sm__uring_cb cb = u->handlers[c.ud & SM__UT_MASK];
        if (cb) cb(u->loop, c.ud, c.res, c.flags);
    }
    u->ncomp = 0;
}

static void
ur_submit(void *state)
{
    sm__uring *u = state;
    apply_changes(u);
    if (io_uring_sq_ready(&u->ring)) (void)io_uring_submit(&u->ring);
}

static void
ur_attach(void *state, sm_loop *loop)
{
    ((sm__uring *)state)->loop = loop;
}

const sm__poller_ops sm__poller_uring = {
    .name = "io_uring",
    .edge = false,
    .create = ur_create,
    .destroy = ur_destroy,
    .add = ur_add,
    .modify = ur_modify,
    .del = ur_del,
    .wait = ur_wait,
    .complete = ur_complete,
    .submit = ur_submit,
    .accepted = ur_accepted,
    .attach = ur_attach,
};

/* ---- what transports use -------------------------------------------------- */

sm__uring *
sm__loop_uring(const sm_loop *loop)
{
    return loop->ops == &sm__poller_uring ? loop->poller : NULL;
}

void
sm__uring_wrote(sm__uring *u)
{
    u->writes++;
}

void
sm__uring_on(sm__uring *u, unsigned tag, sm__uring_cb cb)
{
    u->handlers[tag & SM__UT_MASK] = cb;
}

int
sm__uring_bufs(sm__uring *u)
{
    if (u->bgid <= 0) return u->bgid;
    size_t ring_bytes = SM__UBUF_MAX * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *bufs =
        mmap(NULL, SM__UBUF_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int rc = 0;
    if (br == MAP_FAILED || bufs == MAP_FAILED) {
        rc = -ENOMEM;
    } else {
        struct io_uring_buf_reg reg;
        memset(&reg, 0, sizeof reg);
        reg.ring_addr = (uint64_t)(uintptr_t)br;
        reg.ring_entries = SM__UBUF_COUNT_INC;
        reg.bgid = 0;
        /* Incremental consumption (Linux 6.12): a receive takes only what
         * it fills of a buffer and the next one goes on behind it, so small
         * messages share pages instead of touching a page of every buffer
         * in turn (1 MiB of RSS for 256 buffers, idle connections or not).
         * Older kernels refuse the flag: buffers used whole then. */
        reg.pad = SM__PBUF_RING_INC;
        rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
        u->inc = rc == 0;
        if (rc == -EINVAL) {
            reg.pad = 0;
            reg.ring_entries = SM__UBUF_COUNT_WHOLE;
            rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
        }
        u->nbufs = reg.ring_entries;
        u->bsize = SM__UBUF_BYTES / reg.ring_entries;
    }
    if (rc < 0) {
        if (br != MAP_FAILED) munmap(br, ring_bytes);
        if (bufs != MAP_FAILED) munmap(bufs, SM__UBUF_BYTES);
        u->bgid = rc;
        return rc;
    }
    u->br = br;
    u->bufs = bufs;
    io_uring_buf_ring_init(u->br);
    int mask = io_uring_buf_ring_mask(u->nbufs);
    for (unsigned i = 0; i < u->nbufs; i++)
        io_uring_buf_ring_add(u->br, u->bufs + i * u->bsize, (unsigned)u->bsize, (unsigned short)i,
                              mask, (int)i);
    io_uring_buf_ring_advance(u->br, (int)u->nbufs);
    u->bgid = 0;
    return 0;
}

uint8_t *
sm__uring_buf(sm__uring *u, unsigned bid)
{
    bid &= u->nbufs - 1;
    return u->bufs + (size_t)bid * u->bsize + u->off[bid];
}

static void
buf_return(sm__uring *u, unsigned bid)
{
    u->off[bid] = 0;
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->bsize, (unsigned)u->bsize,
                          (unsigned short)bid, io_uring_buf_ring_mask(u->nbufs), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

void
sm__uring_buf_put(sm__uring *u, unsigned bid, size_t n, uint32_t flags)
{
    bid &= u->nbufs - 1;
    if (u->inc && (flags & SM__CQE_F_BUF_MORE)) {
        /* The kernel goes on filling it behind these bytes. */
        u->off[bid] += (uint32_t)n;
        return;
    }
    if (u->pins[bid]) {
        u->parked[bid] = true; /* back with its last pin */
        return;
    }
    buf_return(u, bid);
}

bool
sm__uring_buf_pin(sm__uring *u, unsigned bid)
{
    bid &= u->nbufs - 1;
    if (!u->pins[bid]) {
        /* Half the ring stays the kernel's whatever peers do not read. */
        if (u->npinned >= u->nbufs / 2) return false;
        u->npinned++;
    } else if (u->pins[bid] == UINT16_MAX) {
        return false;
    }
    u->pins[bid]++;
    return true;
}

void
sm__uring_buf_unpin(sm__uring *u, unsigned bid)
{
    bid &= u->nbufs - 1;
    if (--u->pins[bid]) return;
    u->npinned--;
    if (!u->parked[bid]) return;
    u->parked[bid] = false;
    buf_return(u, bid);
}

unsigned
sm__uring_bufs_pinned(const sm__uring *u)
{
    return u->npinned;
}

size_t
sm__uring_buf_size(const sm__uring *u)
{
    return u->bsize;
}

unsigned
sm__uring_buf_count(const sm__uring *u)
{
    return u->nbufs;
}
