/* tls_epoll: the TLS reference server, a len32be echo server written
 * directly on OpenSSL 3 and epoll, what sockmsg's TLS path is measured
 * against (issue 12 point 8).
 *
 *   tls_epoll CERT KEY [tcp://127.0.0.1:PORT]
 *
 * Prints "listening on tls://127.0.0.1:PORT" first. One thread,
 * level-triggered epoll, non-blocking sockets, one SSL per connection on
 * OpenSSL's own socket BIO (SSL_set_fd), read-ahead on (records come in
 * batches: fewer reads), partial writes on. As raw_epoll: every read
 * batch (SSL_read until OpenSSL needs the socket, or the buffer is full)
 * goes into one shared 256 KiB buffer, all whole frames in it are echoed
 * with one SSL_write, and only a partial frame and unwritten plaintext are
 * copied to per-connection memory. While output is pending the connection
 * is not read (backpressure); plaintext OpenSSL already holds is read
 * without waiting for an event, since none will come. Handshakes run
 * from the same loop. It uses no sockmsg code at all, on purpose. */
#include <arpa/inet.h>
#include <errno.h>
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
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../bench_arg.h"

#define RBUF      (256 * 1024)
#define MAX_FRAME (16u * 1024 * 1024)

/* Pending bytes of a connection: a partial input frame or unwritten
 * output, one heap block holding both, [0, in) then [in, in + out). */
struct pend {
    uint32_t in, out;
    uint8_t data[];
};

struct slot {
    SSL *ssl;
    struct pend *p;
    bool ready; /* handshake done */
    uint32_t events;
};

static struct slot *slots;
static int nslots;
static uint8_t rbuf[RBUF];

static void
drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    SSL_free(slots[fd].ssl);
    close(fd);
    free(slots[fd].p);
    slots[fd] = (struct slot){0};
    ERR_clear_error();
}

static void
watch(int ep, int fd, uint32_t events)
{
    if (slots[fd].events == events) return;
    slots[fd].events = events;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static int
keep(int fd, const uint8_t *in, uint32_t nin, const uint8_t *out, uint32_t nout)
{
    struct pend *p = NULL;
    if (nin || nout) {
        p = malloc(sizeof *p + nin + nout);
        if (!p) return -1;
        p->in = nin;
        p->out = nout;
        if (nin) memcpy(p->data, in, nin);
        if (nout) memcpy(p->data + nin, out, nout);
    }
    free(slots[fd].p);
    slots[fd].p = p;
    return 0;
}

/* What an SSL call's failure means: 1 wait for the socket (events set),
 * 0 the connection is over. */
static int
want(int ep, int fd, int rc, bool writing)
{
    switch (SSL_get_error(slots[fd].ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        watch(ep, fd, writing ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return 1;
    case SSL_ERROR_WANT_WRITE:
        watch(ep, fd, EPOLLOUT);
        return 1;
    case SSL_ERROR_ZERO_RETURN:
        SSL_shutdown(slots[fd].ssl); /* answer close_notify */
        return 0;
    default:
        return 0;
    }
}

/* Write n bytes of plaintext; what OpenSSL does not take stays pending
 * (the retry passes the same bytes, as OpenSSL requires). 1 all written,
 * 0 pending, -1 over. */
static int
put(int ep, int fd, const uint8_t *buf, uint32_t n, const uint8_t *in, uint32_t nin)
{
    size_t w = 0;
    while (w < n) {
        size_t k = 0;
        if (!SSL_write_ex(slots[fd].ssl, buf + w, n - w, &k)) {
            if (!want(ep, fd, 0, true)) return -1;
            break;
        }
        w += k;
    }
    if (keep(fd, in, nin, buf + w, n - (uint32_t)w) < 0) return -1;
    return w == n;
}

static void
serve(int ep, int fd)
{
    struct slot *s = &slots[fd];
    do {
        struct pend *old = s->p;
        if (old && old->out) return; /* output pending: read later */
        uint32_t have = 0;
        if (old) {
            if (old->in > RBUF / 2) {
                drop(ep, fd);
                return;
            }
            memcpy(rbuf, old->data, old->in);
            have = old->in;
        }
        /* One record per SSL_read: read until OpenSSL needs the socket. */
        bool over = false;
        uint32_t got = 0;
        while (have < RBUF) {
            size_t k = 0;
            if (!SSL_read_ex(s->ssl, rbuf + have, RBUF - have, &k)) {
                over = !want(ep, fd, 0, false);
                break;
            }
            have += (uint32_t)k;
            got += (uint32_t)k;
        }
        if (over && !got) {
            drop(ep, fd);
            return;
        }
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
        int rc = pos ? put(ep, fd, rbuf, pos, rbuf + pos, have - pos)
                 : keep(fd, rbuf, have, NULL, 0) < 0 ? -1
                                                     : 1;
        if (rc < 0 || over) {
            drop(ep, fd);
            return;
        }
        if (rc == 0) return; /* watching for room */
        watch(ep, fd, EPOLLIN);
    } while (SSL_has_pending(s->ssl));
}

static void
on_event(int ep, int fd, uint32_t events)
{
    struct slot *s = &slots[fd];
    if (!s->ready) {
        int rc = SSL_accept(s->ssl);
        if (rc != 1) {
            if (!want(ep, fd, rc, false)) drop(ep, fd);
            return;
        }
        s->ready = true;
        watch(ep, fd, EPOLLIN);
    }
    struct pend *p = s->p;
    if (p && p->out && (events & (EPOLLOUT | EPOLLIN))) {
        /* Finish the pending output first, then read again. */
        struct pend *cur = p;
        int rc = put(ep, fd, cur->data + cur->in, cur->out, cur->data, cur->in);
        if (rc < 0) {
            drop(ep, fd);
            return;
        }
        if (rc == 0) return;
        watch(ep, fd, EPOLLIN);
    }
    serve(ep, fd);
}

static int
listen_on(const char *where)
{
    const char *colon = strrchr(where, ':');
    struct sockaddr_in in = {.sin_family = AF_INET,
                             .sin_port =
                                 htons((uint16_t)bench_arg_long(colon ? colon + 1 : "0", 0, 65535)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof in;
    if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 ||
        getsockname(fd, (struct sockaddr *)&in, &len) < 0 || listen(fd, SOMAXCONN) < 0)
        return -1;
    printf("listening on tls://127.0.0.1:%u\n", ntohs(in.sin_port));
    fflush(stdout);
    return fd;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tls_epoll CERT KEY [tcp://127.0.0.1:PORT]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    nslots = (int)rl.rlim_cur;
    slots = calloc((size_t)nslots, sizeof *slots);

    int lfd = listen_on(argc > 3 ? argv[3] : "tcp://127.0.0.1:0");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0 || !slots) {
        perror("tls_epoll");
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
                    SSL *ssl = c < nslots ? SSL_new(ctx) : NULL;
                    if (!ssl || !SSL_set_fd(ssl, c)) {
                        SSL_free(ssl);
                        close(c);
                        continue;
                    }
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    slots[c] = (struct slot){.ssl = ssl, .events = EPOLLIN};
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            if (slots[fd].ssl) on_event(ep, fd, evs[i].events);
        }
    }
}
