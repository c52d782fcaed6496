/* libuv_echo: a len32be echo server on libuv, written the way libuv's own
 * benchmarks and echo server read and write.
 *
 *   libuv_echo [tcp://HOST:PORT | unix:/path]
 *
 * Prints "listening on ENDPOINT" first (PORT 0 picks one and prints it).
 * Every read goes into one per-loop 64 KiB buffer (the size libuv suggests to
 * alloc_cb); a connection's unfinished frame is copied in front of the new
 * bytes by alloc_cb, so the frames are parsed in place. A frame too big for
 * the shared buffer is read into a per-connection buffer sized for it. All
 * whole frames of one read are echoed with one uv_try_write; what the socket
 * does not take is copied into one uv_write request. Reading stops while more
 * than 4 MiB wait to be written and resumes when it drains. TCP_NODELAY on.
 * SIGTERM and SIGINT stop the loop and exit 0. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#define RBUF       ((size_t)64 << 10)
#define MAX_FRAME  ((size_t)16 << 20)
#define WRITE_HIGH ((size_t)4 << 20)

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    char *pend; /* an unfinished frame, or the big-frame buffer being filled */
    size_t plen, pcap;
    char *rbase; /* where the bytes of the current read start (set by alloc_cb) */
    int reading;
};

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static uv_loop_t *loop;
static char rbuf[RBUF];
static int is_unix;
static char unix_path[108];

static uint32_t
frame_len(const char *p)
{
    uint32_t n;
    memcpy(&n, p, 4);
    return ntohl(n);
}

static void
on_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    free(c->pend);
    free(c);
}

static void
drop(struct conn *c)
{
    if (!uv_is_closing(&c->h.handle)) uv_close(&c->h.handle, on_closed);
}

/* Grow the per-connection buffer to hold at least `want` bytes. */
static int
reserve(struct conn *c, size_t want)
{
    if (c->pcap >= want) return 0;
    size_t cap = c->pcap ? c->pcap : 256;
    while (cap < want)
        cap *= 2;
    char *p = realloc(c->pend, cap);
    if (!p) return -1;
    c->pend = p;
    c->pcap = cap;
    return 0;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = (struct conn *)h;
    size_t need = c->plen >= 4 ? 4 + (size_t)frame_len(c->pend) : 0;
    if (need > RBUF && need <= 4 + (size_t)MAX_FRAME && reserve(c, need) == 0) {
        /* A big frame: fill the connection's own buffer up to its end. */
        c->rbase = c->pend;
        *buf = uv_buf_init(c->pend + c->plen, (unsigned)(c->pcap - c->plen));
        return;
    }
    /* The unfinished frame goes in front of the new bytes; the copy is kept
     * until a read consumes it (a read may return EAGAIN). */
    if (c->plen) memcpy(rbuf, c->pend, c->plen);
    c->rbase = rbuf;
    *buf = uv_buf_init(rbuf + c->plen, (unsigned)(RBUF - c->plen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
on_written(uv_write_t *req, int status)
{
    struct conn *c = (struct conn *)req->handle;
    free(req);
    if (status < 0) {
        drop(c);
        return;
    }
    if (!c->reading && !uv_is_closing(&c->h.handle) &&
        uv_stream_get_write_queue_size(&c->h.stream) < WRITE_HIGH / 2) {
        c->reading = 1;
        if (uv_read_start(&c->h.stream, on_alloc, on_read) < 0) drop(c);
    }
}

/* Echo [p, p + len): try the socket now, queue the rest. */
static int
echo(struct conn *c, const char *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int w = uv_try_write(&c->h.stream, &b, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) return -1;
    if ((size_t)w == len) return 0;
    size_t rest = len - (size_t)w;
    struct wreq *r = malloc(sizeof *r + rest);
    if (!r) return -1;
    memcpy(r->data, p + w, rest);
    r->len = rest;
    b = uv_buf_init(r->data, (unsigned)rest);
    if (uv_write(&r->req, &c->h.stream, &b, 1, on_written) < 0) {
        free(r);
        return -1;
    }
    if (uv_stream_get_write_queue_size(&c->h.stream) > WRITE_HIGH) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
    return 0;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = (struct conn *)s;
    if (n < 0) {
        drop(c);
        return;
    }
    if (n == 0) return; /* EAGAIN: the unfinished frame is still in c->pend */
    char *base = c->rbase;
    size_t have = c->plen + (size_t)n, pos = 0;
    while (have - pos >= 4) {
        uint32_t len = frame_len(base + pos);
        if (len > MAX_FRAME) {
            drop(c);
            return;
        }
        if (have - pos < 4 + (size_t)len) break;
        pos += 4 + (size_t)len;
    }
    if (pos && echo(c, base, pos) < 0) {
        drop(c);
        return;
    }
    /* Keep the unfinished frame (if any) for the next read. */
    size_t rest = have - pos;
    if (base == c->pend) {
        memmove(c->pend, c->pend + pos, rest);
    } else if (rest) {
        if (reserve(c, rest) < 0) {
            drop(c);
            return;
        }
        memcpy(c->pend, base + pos, rest);
    }
    c->plen = rest;
    if (!rest && c->pcap > RBUF) {
        /* Give back a buffer grown for a big frame. */
        free(c->pend);
        c->pend = NULL;
        c->pcap = 0;
    }
}

static void
on_connection(uv_stream_t *server, int status)
{
    if (status < 0) return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return;
    int rc = is_unix ? uv_pipe_init(loop, &c->h.pipe, 0) : uv_tcp_init(loop, &c->h.tcp);
    if (rc < 0) {
        free(c);
        return;
    }
    if (uv_accept(server, &c->h.stream) < 0) {
        drop(c);
        return;
    }
    if (!is_unix) uv_tcp_nodelay(&c->h.tcp, 1);
    c->reading = 1;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) < 0) drop(c);
}

static void
on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_stop(h->loop);
}

static int
listen_on(const char *where, uv_tcp_t *tcp, uv_pipe_t *pipe, uv_stream_t **server)
{
    int rc;
    if (!strncmp(where, "unix:", 5)) {
        is_unix = 1;
        snprintf(unix_path, sizeof unix_path, "%s", where + 5);
        unlink(unix_path);
        if ((rc = uv_pipe_init(loop, pipe, 0)) < 0 || (rc = uv_pipe_bind(pipe, unix_path)) < 0 ||
            (rc = uv_listen((uv_stream_t *)pipe, SOMAXCONN, on_connection)) < 0)
            return rc;
        *server = (uv_stream_t *)pipe;
        printf("listening on unix:%s\n", unix_path);
    } else {
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", colon ? (int)(colon - host) : 0, host);
        int port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (ip[0] == '[') {
            ip[strlen(ip) - 1] = '\0';
            rc = uv_ip6_addr(ip + 1, port, (struct sockaddr_in6 *)&ss);
        } else {
            rc = uv_ip4_addr(ip[0] ? ip : "127.0.0.1", port, (struct sockaddr_in *)&ss);
        }
        if (rc < 0 || (rc = uv_tcp_init(loop, tcp)) < 0 ||
            (rc = uv_tcp_bind(tcp, (struct sockaddr *)&ss, 0)) < 0 ||
            (rc = uv_listen((uv_stream_t *)tcp, SOMAXCONN, on_connection)) < 0 ||
            (rc = uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len)) < 0)
            return rc;
        char name[64];
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, name, sizeof name);
            printf("listening on tcp://[%s]:%u\n", name,
                   ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, name, sizeof name);
            printf("listening on tcp://%s:%u\n", name,
                   ntohs(((struct sockaddr_in *)&ss)->sin_port));
        }
        *server = (uv_stream_t *)tcp;
    }
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    loop = uv_default_loop();
    static uv_tcp_t tcp;
    static uv_pipe_t pipe;
    static uv_signal_t sigterm, sigint;
    uv_stream_t *server = NULL;
    int rc = listen_on(argc > 1 ? argv[1] : "tcp://127.0.0.1:0", &tcp, &pipe, &server);
    if (rc < 0) {
        fprintf(stderr, "libuv_echo: %s: %s\n", argc > 1 ? argv[1] : "", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    if (is_unix) unlink(unix_path);
    return 0;
}
