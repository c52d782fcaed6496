/* Helpers shared by the stream tests (test_stream*.c): loops run with a bound,
 * a listening acceptor that wraps what it accepts in streams, a raw peer that
 * records everything it reads, and deterministic message contents.
 *
 * Every function is static inline so a program that uses a few of them does
 * not trip -Wunused-function. */
#ifndef TEST_STREAM_H
#define TEST_STREAM_H

#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/socket.h>
#include <sockmsg/stream.h>

#include "stream_internal.h"

static const sm_frame_spec ts_len32 = {.kind = SM_FRAME_LENGTH, .len_width = 4};

/* ---- loops ----------------------------------------------------------------- */

static inline sm_loop *
ts_loop(void)
{
    sm_loop *l = NULL;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    return l;
}

/* Deliver what is pending (on_close calls), then free: must succeed, so every
 * stream must have been closed. */
static inline void
ts_loop_free(sm_loop *l)
{
    for (int i = 0; i < 100 && sm_loop_run(l, SM_RUN_NOWAIT) > 0; i++)
        ;
    SM_ASSERT_ERR(sm_loop_free(l), 0);
}

static inline void
ts_guard_cb(sm_timer *t)
{
    (void)t; /* only wakes the loop */
}

typedef bool (*ts_pred)(void *ctx);

/* Run the loop until pred(ctx) holds or ms pass; returns pred(ctx). */
static inline bool
ts_run_until(sm_loop *l, ts_pred pred, void *ctx, int ms)
{
    int64_t end = sm_test_now_ms() + ms;
    sm_timer guard;
    sm_timer_init(l, &guard, ts_guard_cb);
    SM_ASSERT_OK(sm_timer_start(&guard, (uint64_t)ms, 0));
    while (!pred(ctx) && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    sm_timer_stop(&guard);
    return pred(ctx);
}

/* One iteration that waits for at most ms. */
static inline void
ts_run_once(sm_loop *l, int ms)
{
    sm_timer guard;
    sm_timer_init(l, &guard, ts_guard_cb);
    SM_ASSERT_OK(sm_timer_start(&guard, (uint64_t)ms, 0));
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    sm_timer_stop(&guard);
}

static inline bool
ts_flag(void *ctx)
{
    return *(volatile bool *)ctx;
}

static inline bool
ts_int_ge(int *v, int want)
{
    return *v >= want;
}

/* ---- sockets ----------------------------------------------------------------- */

static inline void
ts_pair(int sv[2])
{
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
}

/* Raise the fd limit to the hard limit; returns the soft limit now. */
static inline rlim_t
ts_raise_nofile(void)
{
    struct rlimit r;
    SM_ASSERT_OK(getrlimit(RLIMIT_NOFILE, &r));
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        SM_ASSERT_OK(setrlimit(RLIMIT_NOFILE, &r));
    }
    return r.rlim_cur;
}

typedef struct ts_acceptor ts_acceptor;
typedef void (*ts_accept_cb)(ts_acceptor *a, sm_stream *s);

/* A non-blocking listener on the loop that wraps every connection in a
 * stream with `opts`. */
struct ts_acceptor {
    sm_io io;
    const sm_stream_opts *opts;
    void *data; /* for the accepted streams */
    ts_accept_cb on_stream;
    void *ctx;
    int accepted;
    uint16_t port;
    bool stopped;
};

static inline void
ts_acceptor_cb(sm_io *w, unsigned events)
{
    ts_acceptor *a = (ts_acceptor *)w;
    (void)events;
    for (int i = 0; i < 256; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED);
            return;
        }
        sm_stream *s = NULL;
        SM_ASSERT_OK(sm_stream_new_take(&s, w->loop, fd, a->opts, a->data));
        a->accepted++;
        if (a->on_stream) a->on_stream(a, s);
    }
}

/* Listen on endpoint (e.g. "tcp://127.0.0.1:0"); a->port tells the port. */
static inline void
ts_acceptor_start(sm_loop *l, ts_acceptor *a, const char *endpoint, const sm_stream_opts *opts)
{
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, endpoint, NULL, 0));
    int fd = (int)SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 0, &bound, NULL, 0));
    SM_ASSERT_OK(sm_sock_set_nonblock(fd, true));
    a->opts = opts;
    a->port = bound.port;
    a->stopped = false;
    sm_io_init(l, &a->io, fd, ts_acceptor_cb);
    SM_ASSERT_OK(sm_io_start(&a->io, SM_READ));
}

/* Stop listening (the fd closes at once). Keep *a until the loop ran. */
static inline void
ts_acceptor_stop(ts_acceptor *a)
{
    if (a->stopped) return;
    a->stopped = true;
    sm_io_close(&a->io, NULL);
}

/* A raw peer: an io watcher that reads everything into a growing buffer. */
typedef struct ts_raw {
    sm_io io;
    uint8_t *buf;
    size_t len, cap;
    bool eof;
    int err;
} ts_raw;

static inline void
ts_raw_cb(sm_io *w, unsigned events)
{
    ts_raw *r = (ts_raw *)w;
    if (!(events & SM_READ)) return;
    for (;;) {
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? r->cap * 2 : 131072;
            r->buf = realloc(r->buf, r->cap);
            assert_non_null(r->buf);
        }
        ssize_t n = read(w->fd, r->buf + r->len, r->cap - r->len);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0) {
            r->eof = true;
            sm_io_set_events(w, sm_io_get_events(w) & ~SM_READ);
        } else if (errno != EAGAIN) {
            r->err = -errno;
            sm_io_set_events(w, sm_io_get_events(w) & ~SM_READ);
        }
        return;
    }
}

static inline void
ts_raw_start(sm_loop *l, ts_raw *r, int fd, bool reading)
{
    memset(r, 0, sizeof *r);
    sm_io_init(l, &r->io, fd, ts_raw_cb);
    SM_ASSERT_OK(sm_io_start(&r->io, reading ? SM_READ : 0));
}

/* Stop and close the fd; free the buffer. */
static inline void
ts_raw_close(ts_raw *r)
{
    int fd = r->io.fd;
    sm_io_stop(&r->io);
    if (fd >= 0) close(fd);
    free(r->buf);
    r->buf = NULL;
}

/* Write all of p with a few blocking-style retries (the fd is non-blocking;
 * only for small amounts that fit the socket buffer). */
static inline void
ts_write(int fd, const void *p, size_t n)
{
    SM_ASSERT_ERR(sm_send_all(fd, p, n, 5000, NULL), (int)n);
}

/* Encode one frame of spec into out (head + payload + tail); returns its size. */
static inline size_t
ts_frame(const sm_frame_spec *spec, const void *payload, size_t len, uint8_t *out)
{
    sm_frame_hdr h;
    SM_ASSERT_OK(sm_frame_encode(spec, payload, len, -1, &h));
    memcpy(out, h.head, h.head_len);
    if (len) memcpy(out + h.head_len, payload, len);
    memcpy(out + h.head_len + len, h.tail, h.tail_len);
    return h.head_len + len + h.tail_len;
}

/* Decode every whole frame in buf[0..len) with spec; returns the count. */
static inline int
ts_count_frames(const sm_frame_spec *spec, const uint8_t *buf, size_t len)
{
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    size_t off = 0;
    int n = 0;
    for (;;) {
        sm_frame_msg m;
        ssize_t r = sm_frame_decode(&d, buf + off, len - off, &m);
        if (r <= 0) break;
        off += (size_t)r;
        n++;
    }
    return n;
}

/* ---- message contents ---------------------------------------------------------- */

static inline size_t
ts_msg_len(unsigned id, unsigned seq)
{
    return 1 + (id * 131u + seq * 71u) % 300;
}

static inline uint8_t
ts_msg_byte(unsigned id, unsigned seq, size_t k)
{
    return (uint8_t)(id * 7u + seq * 13u + k * 3u + (k >> 8));
}

static inline void
ts_msg_fill(uint8_t *buf, unsigned id, unsigned seq, size_t len)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = ts_msg_byte(id, seq, k);
}

static inline bool
ts_msg_ok(const uint8_t *p, size_t len, unsigned id, unsigned seq, size_t want_len)
{
    if (len != want_len) return false;
    for (size_t k = 0; k < len; k++)
        if (p[k] != ts_msg_byte(id, seq, k)) return false;
    return true;
}

#endif
