/* The impaired link of impair.h: one thread, a poll over both TUN fds and an
 * eventfd that stops it, a FIFO of delayed packets per direction (the delay
 * is constant, so arrival order is due order). */
#include "impair.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PKT_MAX 2048 /* above the TUN MTU (1500) */

typedef struct pkt {
    int64_t due_ns;
    uint16_t len;
    uint8_t data[PKT_MAX];
} pkt;

typedef struct way {
    pkt *q; /* ring of IMPAIR_QUEUE */
    size_t head, n;
    int from, to;
    _Atomic uint64_t in, out, lost, dup, reordered, cut, overflow;
} way;

struct impair {
    pthread_t thread;
    int stop_fd;
    atomic_bool cut;
    impair_cfg cfg;
    uint64_t rng;
    way d[2];
};

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: reproducible from the seed, good enough for coin flips. */
static double
coin(impair *im)
{
    uint64_t x = im->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    im->rng = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static void
emit(way *d, const uint8_t *data, size_t len)
{
    /* A TUN write injects the packet into the other namespace's stack; it
     * does not block. A failure is a packet lost on the wire. */
    if (write(d->to, data, len) == (ssize_t)len)
        atomic_fetch_add(&d->out, 1);
    else
        atomic_fetch_add(&d->overflow, 1);
}

static void
enqueue(way *d, const uint8_t *data, size_t len, int64_t due)
{
    if (d->n == IMPAIR_QUEUE) {
        atomic_fetch_add(&d->overflow, 1);
        return;
    }
    pkt *p = &d->q[(d->head + d->n++) % IMPAIR_QUEUE];
    p->due_ns = due;
    p->len = (uint16_t)len;
    memcpy(p->data, data, len);
}

static void
arrive(impair *im, way *d, const uint8_t *data, size_t len)
{
    atomic_fetch_add(&d->in, 1);
    if (atomic_load(&im->cut)) {
        atomic_fetch_add(&d->cut, 1);
        return;
    }
    if (coin(im) < im->cfg.loss) {
        atomic_fetch_add(&d->lost, 1);
        return;
    }
    int copies = 1;
    if (coin(im) < im->cfg.dup) {
        copies = 2;
        atomic_fetch_add(&d->dup, 1);
    }
    bool now = coin(im) < im->cfg.reorder;
    if (now) atomic_fetch_add(&d->reordered, 1);
    int64_t due = now_ns() + (int64_t)im->cfg.delay_ms * 1000000;
    for (int i = 0; i < copies; i++) {
        if (now)
            emit(d, data, len);
        else
            enqueue(d, data, len, due);
    }
}

/* Send what is due; the time until the next packet is due, in ms (-1: none). */
static int
flush_due(way *d, int64_t now)
{
    while (d->n && d->q[d->head].due_ns <= now) {
        pkt *p = &d->q[d->head];
        emit(d, p->data, p->len);
        d->head = (d->head + 1) % IMPAIR_QUEUE;
        d->n--;
    }
    if (!d->n) return -1;
    int64_t left = d->q[d->head].due_ns - now;
    return (int)((left + 999999) / 1000000);
}

static void *
run(void *arg)
{
    impair *im = arg;
    uint8_t buf[PKT_MAX];
    for (;;) {
        int64_t now = now_ns();
        int t0 = flush_due(&im->d[0], now), t1 = flush_due(&im->d[1], now);
        int timeout = t0 < 0 ? t1 : t1 < 0 ? t0 : (t0 < t1 ? t0 : t1);
        struct pollfd pf[3] = {{.fd = im->d[0].from, .events = POLLIN},
                               {.fd = im->d[1].from, .events = POLLIN},
                               {.fd = im->stop_fd, .events = POLLIN}};
        int n = poll(pf, 3, timeout);
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        if (pf[2].revents) break;
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & POLLIN)) continue;
            /* A bounded batch per wakeup, so one busy direction cannot
             * starve the other's due packets. */
            for (int k = 0; k < 64; k++) {
                ssize_t r = read(im->d[i].from, buf, sizeof buf);
                if (r <= 0) break;
                arrive(im, &im->d[i], buf, (size_t)r);
            }
        }
    }
    return NULL;
}

int
impair_start(impair **out, int a, int b, const impair_cfg *cfg)
{
    impair *im = calloc(1, sizeof *im);
    if (!im) return -ENOMEM;
    im->cfg = *cfg;
    im->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ull;
    im->d[0].from = a, im->d[0].to = b;
    im->d[1].from = b, im->d[1].to = a;
    im->d[0].q = calloc(IMPAIR_QUEUE, sizeof(pkt));
    im->d[1].q = calloc(IMPAIR_QUEUE, sizeof(pkt));
    im->stop_fd = eventfd(0, EFD_CLOEXEC);
    int rc = 0;
    if (!im->d[0].q || !im->d[1].q)
        rc = -ENOMEM;
    else if (im->stop_fd < 0)
        rc = -errno;
    else if ((rc = -pthread_create(&im->thread, NULL, run, im)) == 0) {
        *out = im;
        return 0;
    }
    if (im->stop_fd >= 0) close(im->stop_fd);
    free(im->d[0].q);
    free(im->d[1].q);
    free(im);
    close(a);
    close(b);
    return rc;
}

void
impair_cut(impair *im, bool cut)
{
    atomic_store(&im->cut, cut);
}

void
impair_get_stats(impair *im, int dir, impair_stats *o)
{
    way *d = &im->d[dir];
    *o = (impair_stats){atomic_load(&d->in),      atomic_load(&d->out),       atomic_load(&d->lost),
                        atomic_load(&d->dup),     atomic_load(&d->reordered), atomic_load(&d->cut),
                        atomic_load(&d->overflow)};
}

void
impair_stop(impair *im)
{
    uint64_t one = 1;
    if (write(im->stop_fd, &one, sizeof one) != sizeof one) abort();
    pthread_join(im->thread, NULL);
    close(im->stop_fd);
    close(im->d[0].from);
    close(im->d[1].from);
    free(im->d[0].q);
    free(im->d[1].q);
    free(im);
}
