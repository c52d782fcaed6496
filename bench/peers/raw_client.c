/* raw_client: a hand-written len32be pipelined load generator on bare epoll,
 * the yardstick for `sockmsg bench` (as raw_epoll is for servers).
 *
 *   raw_client ENDPOINT [--conns C] [--depth D] [--size S] [--duration SEC] [--verify]
 *
 * ENDPOINT is tcp://IPV4:PORT or unix:/path. C connections each keep D
 * messages of S payload bytes in flight for SEC seconds (defaults 1, 1, 64,
 * 5). A message is a 4-byte big-endian length, an 8-byte sequence number and
 * filler; a reply must have the right length and the right number (the
 * filler is checked only with --verify, which does what `sockmsg bench`
 * does with every byte: this is the minimal client). Latency is taken per
 * batch (before the write, after the read) into a log-linear histogram.
 * Ends with the result line `sockmsg bench` prints:
 *   result conns=C depth=D size=S msgs/s=.. MB/s=.. p50_us=.. p99_us=.. errors=N cpu_s=..
 * One thread, level-triggered epoll, one write per batch, one read per wake-up
 * into a per-connection buffer sized for everything that can be in flight.
 * It uses no sockmsg code at all, on purpose. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../bench_arg.h"

#define HEAD      12 /* length + sequence number */
#define COPY_MAX  2048
#define SCRATCH   ((size_t)64 << 10)
#define RBUF_MAX  ((size_t)256 << 10)
#define IOV_MSGS  256
#define SUB_BITS  7
#define SUB       (1u << SUB_BITS)
#define NBUCKETS  ((48 - SUB_BITS + 1) * SUB)
#define DRAIN_MAX 5000000000LL

struct conn {
    int fd;
    int open, wout;       /* wout: EPOLLOUT is on */
    uint64_t sent, recvd; /* messages wholly sent, replies received */
    size_t soff;          /* bytes of message `sent` already out */
    int64_t *ts;
    uint8_t *rbuf;
    size_t rlen;
};

static size_t size, frame, rcap;
static int depth, verify;
static uint64_t mask;
static uint8_t *filler, *scratch;
static uint8_t heads[IOV_MSGS][HEAD];
static struct iovec iov[2 * IOV_MSGS];
static uint64_t counts[NBUCKETS], nlat, errors, messages;
static int64_t t_end;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
record(uint64_t v)
{
    if (v >> 48) v = ((uint64_t)1 << 48) - 1;
    int msb = 63 - __builtin_clzll(v | 1);
    int shift = msb > (int)SUB_BITS ? msb - (int)SUB_BITS : 0;
    counts[(unsigned)shift * SUB + (unsigned)(v >> shift)]++;
    nlat++;
}

static double
percentile(double q)
{
    uint64_t want = (uint64_t)(q * (double)nlat), seen = 0;
    if ((double)want < q * (double)nlat) want++;
    if (!nlat) return 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += counts[i];
        if (seen >= want) {
            unsigned shift = i < 2 * SUB ? 0 : i / SUB - 1;
            uint64_t low = i < 2 * SUB ? i : (uint64_t)(i - shift * SUB) << shift;
            return (double)(low + ((uint64_t)1 << shift) - 1) / 1e3;
        }
    }
    return 0;
}

static void
put_head(uint8_t *p, uint64_t seq)
{
    uint32_t n = htonl((uint32_t)size);
    memcpy(p, &n, 4);
    memcpy(p + 4, &seq, 8);
}

static const uint8_t *
fill(uint64_t seq)
{
    return filler + (seq & 255);
}

static void
drop(struct conn *c, int ep)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->open = 0;
}

/* Send what the window allows; returns 1 if the socket is full. */
static int
pump(struct conn *c, int64_t now, int ep)
{
    uint64_t lim = now >= t_end ? c->sent + (c->soff > 0) : c->recvd + (uint64_t)depth;
    while (c->sent < lim) {
        uint64_t s = c->sent, end;
        ssize_t n;
        if (frame <= COPY_MAX) {
            size_t len = 0;
            for (; s < lim && len + frame <= SCRATCH; s++, len += frame) {
                if (s != c->sent || !c->soff) c->ts[s & mask] = now;
                put_head(scratch + len, s);
                memcpy(scratch + len + HEAD, fill(s), size - 8);
            }
            end = s;
            n = send(c->fd, scratch + c->soff, len - c->soff, MSG_NOSIGNAL);
        } else {
            int k = 0;
            for (unsigned m = 0; s < lim && m < IOV_MSGS; s++, m++) {
                if (s != c->sent || !c->soff) c->ts[s & mask] = now;
                put_head(heads[m], s);
                iov[k++] = (struct iovec){heads[m], HEAD};
                iov[k++] = (struct iovec){(void *)fill(s), size - 8};
            }
            end = s;
            struct iovec *v = iov;
            size_t skip = c->soff;
            while (skip) {
                if (v->iov_len > skip) {
                    v->iov_base = (uint8_t *)v->iov_base + skip;
                    v->iov_len -= skip;
                    break;
                }
                skip -= v->iov_len;
                v++;
                k--;
            }
            n = writev(c->fd, v, k);
        }
        if (n < 0) {
            if (errno == EAGAIN) return 1;
            errors++;
            drop(c, ep);
            return 0;
        }
        size_t total = c->soff + (size_t)n;
        c->sent += total / frame;
        c->soff = total % frame;
        if (c->sent != end) return 1;
    }
    return 0;
}

static void
on_readable(struct conn *c, int ep)
{
    ssize_t n = read(c->fd, c->rbuf + c->rlen, rcap - c->rlen);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return;
        errors++;
        drop(c, ep);
        return;
    }
    int64_t now = now_ns();
    c->rlen += (size_t)n;
    size_t pos = 0;
    while (c->rlen - pos >= 4) {
        uint32_t len;
        memcpy(&len, c->rbuf + pos, 4);
        len = ntohl(len);
        if (len != size || c->recvd >= c->sent) {
            errors++;
            drop(c, ep);
            return;
        }
        if (c->rlen - pos < 4 + (size_t)len) break;
        uint64_t seq;
        memcpy(&seq, c->rbuf + pos + 4, 8);
        if (seq != c->recvd) errors++;
        if (verify && memcmp(c->rbuf + pos + HEAD, fill(seq), size - 8) != 0) errors++;
        if (now < t_end) {
            messages++;
            record((uint64_t)(now - c->ts[c->recvd & mask]));
        }
        c->recvd++;
        pos += 4 + len;
    }
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
}

static int
dial(const char *where)
{
    int fd;
    if (!strncmp(where, "unix:", 5)) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", where + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) < 0) return -1;
    } else {
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", colon ? (int)(colon - host) : 0, host);
        struct sockaddr_in in = {
            .sin_family = AF_INET,
            .sin_port = htons((uint16_t)bench_arg_long(colon ? colon + 1 : "0", 0, 65535))};
        if (inet_pton(AF_INET, ip, &in.sin_addr) != 1) return -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof in) < 0) return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static double
cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Setup failed: say why and exit, which closes and frees everything. */
static void __attribute__((noreturn)) die(const char *what)
{
    perror(what);
    exit(1);
}

static size_t
parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K') v <<= 10;
    if (*end == 'm' || *end == 'M') v <<= 20;
    return (size_t)v;
}

int
main(int argc, char **argv)
{
    const char *where = NULL;
    int conns = 1;
    double duration = 5;
    size = 64;
    depth = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--conns") && more)
            conns = (int)bench_arg_long(argv[++i], 1, INT_MAX);
        else if (!strcmp(a, "--depth") && more)
            depth = (int)bench_arg_long(argv[++i], 1, INT_MAX);
        else if (!strcmp(a, "--size") && more)
            size = parse_size(argv[++i]);
        else if (!strcmp(a, "--duration") && more)
            duration = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--verify"))
            verify = 1;
        else if (a[0] != '-' && !where)
            where = a;
        else
            where = NULL, i = argc;
    }
    if (!where || conns < 1 || depth < 1 || size < 8 || duration <= 0) {
        fprintf(stderr, "usage: raw_client ENDPOINT [--conns C] [--depth D] [--size S>=8] "
                        "[--duration SEC] [--verify]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    frame = 4 + size;
    uint64_t ring = 1;
    while (ring < (uint64_t)depth)
        ring <<= 1;
    mask = ring - 1;
    size_t want = frame * (size_t)depth + 64;
    rcap = want < RBUF_MAX ? want : RBUF_MAX;
    if (rcap < frame + 64) rcap = frame + 64;
    filler = malloc(size + 256);
    scratch = malloc(SCRATCH);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!filler || !scratch || !cs || ep < 0) die("raw_client");
    for (size_t i = 0; i < size + 256; i++)
        filler[i] = (uint8_t)(i * 131 + 7);
    for (int i = 0; i < conns; i++) {
        struct conn *c = &cs[i];
        c->fd = dial(where);
        c->ts = malloc(ring * sizeof *c->ts);
        c->rbuf = malloc(rcap);
        if (c->fd < 0 || !c->ts || !c->rbuf) die(where);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        c->open = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }

    int64_t t0 = now_ns();
    t_end = t0 + (int64_t)(duration * 1e9);
    double cpu0 = cpu(), cpu1 = -1;
    for (int i = 0; i < conns; i++)
        if (pump(&cs[i], t0, ep)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &cs[i]};
            epoll_ctl(ep, EPOLL_CTL_MOD, cs[i].fd, &ev);
            cs[i].wout = 1;
        }
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        if (now >= t_end && cpu1 < 0) cpu1 = cpu();
        if (now >= t_end + DRAIN_MAX) break;
        /* After the end, close the connections whose replies are all in. */
        if (now >= t_end) {
            int open = 0;
            for (int i = 0; i < conns; i++) {
                struct conn *c = &cs[i];
                if (c->open && c->recvd == c->sent && !c->soff) drop(c, ep);
                open += c->open;
            }
            if (!open) break;
        }
        int left = now < t_end ? (int)((t_end - now) / 1000000) + 1 : 10;
        int n = epoll_wait(ep, evs, 256, left);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->open) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c, ep);
            if (!c->open) continue;
            int full = pump(c, now_ns(), ep);
            if (!c->open || full == c->wout) continue;
            struct epoll_event ev = {.events = EPOLLIN | (full ? EPOLLOUT : 0), .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            c->wout = full;
        }
    }
    for (int i = 0; i < conns; i++) {
        if (cs[i].open) {
            errors++;
            drop(&cs[i], ep);
        }
        free(cs[i].ts);
        free(cs[i].rbuf);
    }
    double secs = duration, rate = (double)messages / secs;
    printf("result conns=%d depth=%d size=%zu msgs/s=%.0f MB/s=%.2f p50_us=%.1f p99_us=%.1f "
           "errors=%llu cpu_s=%.3f\n",
           conns, depth, size, rate, rate * (double)size / 1e6, percentile(0.5), percentile(0.99),
           (unsigned long long)errors, cpu1 - cpu0);
    free(cs);
    free(filler);
    free(scratch);
    close(ep);
    return errors ? 1 : 0;
}
