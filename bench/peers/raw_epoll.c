/* raw_epoll: a hand-tuned len32be echo server on bare epoll, the reference
 * every other server is measured against ("the physical limit").
 *
 *   raw_epoll [tcp://127.0.0.1:PORT | unix:/path]
 *
 * Prints "listening on ENDPOINT" first. One thread, level-triggered epoll.
 * Every read goes into one shared 256 KiB buffer; all whole frames in it are
 * echoed with one write; only a partial frame's bytes (and unwritten output)
 * are copied to per-connection heap memory, freed as soon as they are used.
 * An idle connection costs one 16-byte slot in an fd-indexed table. It uses no
 * sockmsg code at all, on purpose. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../bench_arg.h"

#define RBUF      (256 * 1024)
#define MAX_FRAME (16u * 1024 * 1024)

/* Pending bytes of a connection: a partial input frame or unwritten output.
 * One heap block holds both kinds, [0, in) then [in, in + out). */
struct pend {
    uint32_t in, out, out_off;
    uint8_t data[];
};

struct slot {
    struct pend *p;
    uint32_t open;
};

static struct slot *slots;
static int nslots;
static uint8_t rbuf[RBUF];

static void
drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(slots[fd].p);
    slots[fd] = (struct slot){0};
}

/* Keep bytes in a per-connection block (partial frame `in`, unsent `out`). */
static int
keep(int fd, const uint8_t *in, uint32_t nin, const uint8_t *out, uint32_t nout)
{
    struct pend *p = NULL;
    if (nin || nout) {
        p = malloc(sizeof *p + nin + nout);
        if (!p) return -1;
        p->in = nin;
        p->out = nout;
        p->out_off = 0;
        if (nin) memcpy(p->data, in, nin);
        if (nout) memcpy(p->data + nin, out, nout);
    }
    free(slots[fd].p);
    slots[fd].p = p;
    return 0;
}

static void
on_readable(int ep, int fd)
{
    struct pend *old = slots[fd].p;
    if (old && old->out) /* output pending: backpressure, read later */
        return;
    uint32_t have = 0;
    if (old) {
        /* A partial frame from before goes first; its size is bounded. */
        if (old->in > RBUF / 2) {
            drop(ep, fd);
            return;
        }
        memcpy(rbuf, old->data, old->in);
        have = old->in;
    }
    ssize_t n = read(fd, rbuf + have, RBUF - have);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) drop(ep, fd);
        return;
    }
    have += (uint32_t)n;
    uint32_t pos = 0;
    while (have - pos >= 4) {
        uint32_t len;
        memcpy(&len, rbuf + pos, 4);
        len = ntohl(len);
        if (len > MAX_FRAME || len > RBUF / 2 - 4) {
            drop(ep, fd);
            return;
        }
        if (have - pos < 4 + len) break;
        pos += 4 + len;
    }
    /* Echo every whole frame with one write; the frames are the prefix. */
    ssize_t w = pos ? write(fd, rbuf, pos) : 0;
    if (w < 0) {
        if (errno != EAGAIN) {
            drop(ep, fd);
            return;
        }
        w = 0;
    }
    uint32_t unsent = pos - (uint32_t)w;
    if (keep(fd, rbuf + pos, have - pos, rbuf + w, unsent) < 0) {
        drop(ep, fd);
        return;
    }
    if (unsent) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
}

static void
on_writable(int ep, int fd)
{
    struct pend *p = slots[fd].p;
    if (!p || !p->out) return;
    ssize_t w = write(fd, p->data + p->in + p->out_off, p->out - p->out_off);
    if (w < 0) {
        if (errno != EAGAIN) drop(ep, fd);
        return;
    }
    p->out_off += (uint32_t)w;
    if (p->out_off < p->out) return;
    if (keep(fd, p->data, p->in, NULL, 0) < 0) {
        drop(ep, fd);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static int
listen_on(const char *where)
{
    int fd;
    if (!strncmp(where, "unix:", 5)) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", where + 5);
        unlink(un.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0 || listen(fd, SOMAXCONN) < 0)
            return -1;
        printf("listening on %s\n", where);
    } else {
        const char *colon = strrchr(where, ':');
        struct sockaddr_in in = {
            .sin_family = AF_INET,
            .sin_port = htons((uint16_t)bench_arg_long(colon ? colon + 1 : "0", 0, 65535)),
            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        socklen_t len = sizeof in;
        if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 ||
            getsockname(fd, (struct sockaddr *)&in, &len) < 0 || listen(fd, SOMAXCONN) < 0)
            return -1;
        printf("listening on tcp://127.0.0.1:%u\n", ntohs(in.sin_port));
    }
    /* Printed only once listening: a client may connect the moment it reads it. */
    fflush(stdout);
    return fd;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    nslots = (int)rl.rlim_cur;
    slots = calloc((size_t)nslots, sizeof *slots);

    int lfd = listen_on(argc > 1 ? argv[1] : "tcp://127.0.0.1:0");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0 || !slots) {
        perror("raw_epoll");
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (int k = 0; k < 64; k++) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if (c >= nslots) {
                        close(c);
                        continue;
                    }
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    slots[c].open = 1;
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                on_writable(ep, fd);
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(ep, fd);
        }
    }
}
