/* The TLS transport: a TLS session (tls_session.c) on a readiness loop,
 * under a stream. Readiness on the socket drives OpenSSL; plaintext goes
 * up through sm__rx_buffers/sm__rx_done straight into the stream's read
 * buffer, where the stream decodes many messages per record in place; a
 * batch of replies is encrypted into the session's ciphertext buffer and
 * written with one send. The socket watcher is level-triggered: a batch
 * cut short by the budget is announced again, and plaintext OpenSSL still
 * holds (which no event announces) is read from a deferred call.
 *
 * Per-stream state lives in a table of the loop's stream state indexed by
 * the socket's fd, so a stream carries nothing for it. The handshake runs
 * from the watcher with a timer of its own; until it is done the stream's
 * sends are refused with -EAGAIN and its wish to write is kept, to be
 * granted (sm__tx_ready) when the handshake completes. Ciphertext the
 * kernel did not take is the transport's: sends say -EAGAIN until it is
 * written, and SM_WRITE is watched for it. Closing sends close_notify if
 * the kernel takes it at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "stream_internal.h"
#include "tls_internal.h"
#include "transport.h"

/* Plaintext taken per send: bounds the ciphertext buffer. */
#define SEND_MAX ((size_t)256 << 10)

typedef struct sm__tls_tp {
    sm__tls *t;
    sm_stream *s;
    sm_timer hs_timer; /* the handshake's deadline */
    sm_defer again;    /* read plaintext OpenSSL holds */
    unsigned wants;    /* what the stream asked for (SM_READ, SM_WRITE) */
    bool fin;          /* TCP FIN once the ciphertext is out */
} sm__tls_tp;

static void tls_io_cb(sm_io *w, unsigned events);

/* ---- the per-loop table ------------------------------------------------ */

static sm__tls_tp *
tp_get(const sm_stream *s)
{
    const sm__stream_loop *sl = sm__sl(s);
    int fd = s->io.fd;
    return fd >= 0 && (size_t)fd < sl->tls_cap ? sl->tls[fd] : NULL;
}

static int
tp_put(sm_stream *s, int fd, sm__tls_tp *x)
{
    sm__stream_loop *sl = sm__sl(s);
    if ((size_t)fd >= sl->tls_cap) {
        size_t cap = sl->tls_cap ? sl->tls_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        void **n = realloc(sl->tls, cap * sizeof(void *));
        if (!n) return -ENOMEM;
        memset(n + sl->tls_cap, 0, (cap - sl->tls_cap) * sizeof(void *));
        sl->tls = n;
        sl->tls_cap = cap;
    }
    sl->tls[fd] = x;
    return 0;
}

/* Forget the session of s (the socket stays open). */
static void
tp_free(sm_stream *s)
{
    sm__tls_tp *x = tp_get(s);
    if (!x) return;
    sm__sl(s)->tls[s->io.fd] = NULL;
    sm_timer_stop(&x->hs_timer);
    sm_defer_stop(&x->again);
    sm__tls_free(x->t);
    free(x);
}

/* ---- events ------------------------------------------------------------ */

/* Watch what the handshake, the unsent ciphertext and the stream need. */
static int
apply(sm_stream *s, sm__tls_tp *x)
{
    unsigned ev = 0;
    bool done = sm__tls_handshake_done(x->t);
    if (!done || (x->wants & SM_READ)) ev |= SM_READ;
    if (sm__tls_unsent(x->t) || (done && (x->wants & SM_WRITE))) ev |= SM_WRITE;
    if (ev == sm_io_get_events(&s->io)) return 0;
    return sm_io_set_events(&s->io, ev);
}

static void
tls_fail(sm_stream *s, int err, const char *what)
{
    sm__tls_tp *x = tp_get(s);
    const char *d = x ? sm__tls_detail(x->t) : "";
    sm__stream_fail(s, err, "%s: %s", what, *d ? d : sm_strerror(err));
}

/* Write the ciphertext; then the FIN, if it waits for it. false: failed. */
static bool
flush(sm_stream *s, sm__tls_tp *x)
{
    int rc = sm__tls_flush(x->t);
    if (rc == -EAGAIN) return true;
    if (rc < 0) {
        sm__stream_fail(s, rc, "write: %s", sm_strerror(rc));
        return false;
    }
    if (x->fin) {
        x->fin = false;
        if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) {
            sm__stream_fail(s, -errno, "shutdown: %s", sm_strerror(-errno));
            return false;
        }
    }
    return true;
}

/* One readiness event's receive batch: decrypt into the stream's buffers
 * until OpenSSL wants more bytes than the socket has. */
static void
tls_read(sm_stream *s, sm__tls_tp *x)
{
    sm__rx rx;
    if (sm__rx_begin(s, &rx) < 0) return;
    for (;;) {
        struct iovec iov[2];
        int cnt = sm__rx_buffers(s, &rx, iov);
        if (cnt <= 0) break;
        ssize_t n = sm__tls_read(x->t, iov[0].iov_base, iov[0].iov_len);
        if (n == -EAGAIN) break;
        if (n == 0) { /* close_notify: a clean end */
            sm__rx_eof(s, &rx);
            break;
        }
        if (n == SM_ERR_TLS_EOF) {
            /* No close_notify: maybe a truncation attack. In the middle of
             * a message (or of eof framing's only one) it is one. */
            bool mid = s->rd || sm__rx_spec(s)->kind == SM_FRAME_EOF;
            if (mid)
                sm__stream_fail(
                    s, SM_ERR_TRUNCATED,
                    "read: peer closed without close_notify in the middle of a message");
            else
                sm__stream_fail(s, SM_ERR_TLS_EOF,
                                "read: peer closed without close_notify (at a message boundary)");
            break;
        }
        if (n < 0) {
            tls_fail(s, (int)n, "read");
            break;
        }
        if (!sm__rx_done(s, &rx, (size_t)n, false)) break;
        if (!sm__stream_live(s) || tp_get(s) != x) break;
    }
    bool more = sm__rx_end(s, &rx);
    if (!sm__stream_live(s) || tp_get(s) != x) return;
    /* Reading may have produced bytes to send (a KeyUpdate's answer). */
    if (sm__tls_unsent(x->t) && !flush(s, x)) return;
    if (more && sm__tls_read_pending(x->t)) sm_defer_start(&x->again);
    int rc = apply(s, x);
    if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
}

static void
again_cb(sm_defer *d)
{
    sm__tls_tp *x = d->data;
    sm_stream *s = x->s;
    if (sm__stream_live(s) && sm__stream_reading(s) && !(s->flags & SM__S_EOF)) tls_read(s, x);
}

static void
hs_timeout_cb(sm_timer *t)
{
    sm__tls_tp *x = t->data;
    sm__stream_fail(x->s, -ETIMEDOUT, "TLS handshake timed out after %d ms",
                    sm__tls_handshake_timeout(x->t));
}

/* Advance the handshake. true when it is done and the stream may go on. */
static bool
handshake(sm_stream *s, sm__tls_tp *x)
{
    int rc = sm__tls_handshake(x->t);
    if (rc < 0 && rc != -EAGAIN) {
        (void)sm__tls_flush(x->t); /* our alert, if the kernel takes it */
        tls_fail(s, rc, "TLS handshake");
        return false;
    }
    if (!flush(s, x)) return false;
    if (rc == -EAGAIN) {
        rc = apply(s, x);
        if (rc < 0) sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
        return false;
    }
    sm_timer_stop(&x->hs_timer);
    rc = apply(s, x);
    if (rc < 0) {
        sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
        return false;
    }
    /* Sends were refused until now: write what queued up meanwhile. */
    if (x->wants & SM_WRITE) {
        sm__tx_ready(s);
        if (!sm__stream_live(s) || tp_get(s) != x) return false;
    }
    return true;
}

static void
tls_io_cb(sm_io *w, unsigned events)
{
    sm_stream *s = (sm_stream *)w;
    sm__tls_tp *x = tp_get(s);
    if (!x) return;
    if (!sm__tls_handshake_done(x->t)) {
        if (!handshake(s, x)) return;
        events |= SM_READ; /* look: records may have come with the last flight */
    }
    if (events & SM_WRITE) {
        if (sm__tls_unsent(x->t) && !flush(s, x)) return;
        if (!sm__tls_unsent(x->t) && (x->wants & SM_WRITE)) {
            sm__tx_ready(s);
            if (!sm__stream_live(s) || tp_get(s) != x) return;
        } else {
            int rc = apply(s, x);
            if (rc < 0) {
                sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
                return;
            }
        }
    }
    if ((events & SM_READ) && (x->wants & SM_READ)) tls_read(s, x);
}

/* ---- the ops ------------------------------------------------------------ */

static void
tls_init(sm_stream *s)
{
    sm_io_init(s->io.loop, &s->io, -1, tls_io_cb);
}

/* A session for a dialed stream: the client configuration of its options,
 * or one with the system's trust store; the host dialed. */
static int
dialed_session(sm_stream *s, int fd, sm__tls **out)
{
    const sm_endpoint *ep = sm__dial_endpoint(s);
    sm_tls_config *cfg = s->opts->tls;
    char why[SM__TLS_DETAIL];
    int rc = 0;
    if (!cfg && (rc = sm_tls_config_new(&cfg, SM_TLS_CLIENT, why, sizeof why)) < 0) goto out;
    rc = sm__tls_new(out, cfg, fd, ep ? ep->host : NULL, ep ? ep->port : 0, why, sizeof why);
    if (cfg != s->opts->tls) sm_tls_config_free(cfg); /* the session holds it */
out:
    if (rc < 0) sm__stream_set_detail(s, "TLS: %s", why);
    return rc;
}

static int
start(sm_stream *s, int fd, sm__tls *t)
{
    sm__tls_tp *x = calloc(1, sizeof *x);
    if (!x) return -ENOMEM;
    x->t = t;
    x->s = s;
    x->wants = SM_READ;
    sm_timer_init(s->io.loop, &x->hs_timer, hs_timeout_cb);
    x->hs_timer.data = x;
    sm_defer_init(s->io.loop, &x->again, again_cb);
    x->again.data = x;
    int rc = tp_put(s, fd, x);
    if (rc < 0) {
        free(x);
        return rc;
    }
    sm_io_init(s->io.loop, &s->io, fd, tls_io_cb);
    /* A client's first step (its ClientHello) only writes: take it now,
     * the watcher does the rest. A server's first step reads what the
     * client sent, which may fail: that is the watcher's to report. */
    if (!sm__tls_is_server(t)) {
        rc = sm__tls_handshake(t);
        if (rc == -EAGAIN || rc == 0) rc = sm__tls_flush(t);
        if (rc == -EAGAIN) rc = 0;
    }
    if (rc == 0) rc = sm_io_start(&s->io, SM_READ | (sm__tls_unsent(t) ? SM_WRITE : 0));
    if (rc == 0) rc = sm_timer_start(&x->hs_timer, (uint64_t)sm__tls_handshake_timeout(t), 0);
    if (rc < 0) {
        x->t = NULL; /* the caller frees the session */
        sm_io_stop(&s->io);
        tp_free(s);
        tls_init(s);
    }
    return rc;
}

static int
tls_open(sm_stream *s, int fd)
{
    sm__tls *t = NULL;
    /* A wrapped socket's session was made by sm_stream_new_tls. */
    sm__stream_loop *sl = sm__sl(s);
    if (sl->tls_pending && sl->tls_pending_fd == fd) {
        t = sl->tls_pending;
        sl->tls_pending = NULL;
    } else {
        int rc = dialed_session(s, fd, &t);
        if (rc < 0) return rc;
    }
    int rc = start(s, fd, t);
    if (rc < 0) sm__tls_free(t);
    return rc;
}

static int
tls_want(sm_stream *s, unsigned events)
{
    sm__tls_tp *x = tp_get(s);
    if (!x) return 0;
    x->wants = events;
    return apply(s, x);
}

static int
tls_resume(sm_stream *s)
{
    sm__tls_tp *x = tp_get(s);
    if (x && sm__tls_handshake_done(x->t) && sm__tls_read_pending(x->t)) sm_defer_start(&x->again);
    return 0;
}

static ssize_t
tls_send(sm_stream *s, const struct iovec *iov, int iovcnt)
{
    sm__tls_tp *x = tp_get(s);
    if (!x) return -ENOTCONN;
    if (!sm__tls_handshake_done(x->t)) return -EAGAIN;
    if (sm__tls_unsent(x->t)) {
        int rc = sm__tls_flush(x->t);
        if (rc < 0) return rc;
        if (sm__tls_unsent(x->t)) return -EAGAIN;
    }
    ssize_t n = sm__tls_write(x->t, iov, iovcnt, SEND_MAX);
    if (n < 0) return n;
    int rc = sm__tls_flush(x->t);
    if (rc < 0 && rc != -EAGAIN) return rc;
    /* Bytes left in the ciphertext buffer: watch for room. */
    if (rc == -EAGAIN && (rc = apply(s, x)) < 0) return rc;
    return n;
}

static int
tls_shutdown(sm_stream *s)
{
    sm__tls_tp *x = tp_get(s);
    if (!x) return 0;
    int rc = sm__tls_close_notify(x->t);
    if (rc < 0) return rc;
    x->fin = true;
    rc = sm__tls_flush(x->t);
    if (rc == -EAGAIN) return apply(s, x);
    if (rc < 0) return rc;
    x->fin = false;
    if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) return -errno;
    return 0;
}

static void
tls_drop(sm_stream *s)
{
    int fd = s->io.fd;
    tp_free(s);
    sm_io_stop(&s->io);
    close(fd);
    tls_init(s);
}

static void
tls_close(sm_stream *s, sm_io_close_cb closed)
{
    sm__tls_tp *x = tp_get(s);
    if (x && sm__tls_handshake_done(x->t) && sm__tls_close_notify(x->t) == 0)
        (void)sm__tls_flush(x->t); /* what the kernel takes now; never waits */
    tp_free(s);
    sm_io_close(&s->io, closed);
}

bool
sm__tp_tls_is_io(const sm_io *w)
{
    return w->u.cb == tls_io_cb;
}

const sm__transport_ops sm__tp_tls = {
    .name = "tls",
    .init = tls_init,
    .open = tls_open,
    .want = tls_want,
    .resume = tls_resume,
    .send = tls_send,
    .shutdown = tls_shutdown,
    .drop = tls_drop,
    .close = tls_close,
};

/* ---- public ---------------------------------------------------------------- */

int
sm_stream_new_tls(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts, void *data,
                  sm_tls_config *cfg, const char *host, char *why, size_t why_len)
{
    return sm__stream_new_tls_extra(out, loop, fd, opts, data, 0, cfg, host, why, why_len);
}

int
sm__stream_new_tls_extra(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                         void *data, size_t extra, sm_tls_config *cfg, const char *host, char *why,
                         size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    int rc = -EINVAL;
    sm_stream *s = NULL;
    sm__tls *t = NULL;
    if (out && fd >= 0 && cfg) s = sm__stream_alloc(loop, opts, data, extra, &rc);
    if (s) rc = sm_sock_set_nonblock(fd, true);
    if (rc == 0) rc = sm__tls_new(&t, cfg, fd, host, 0, why, why_len);
    if (s && rc == 0) {
        sm__stream_loop *sl = sm__sl(s);
        sm__tp_set(s, SM__TP_TLS);
        sl->tls_pending = t;
        sl->tls_pending_fd = fd;
        rc = sm__stream_connected(s, fd);
        if (sl->tls_pending) { /* open never ran */
            sm__tls_free(sl->tls_pending);
            sl->tls_pending = NULL;
        }
    }
    if (rc < 0) {
        if (why && why_len && !why[0]) sm__why(why, why_len, rc, "%s", sm_strerror(rc));
        if (fd >= 0) close(fd);
        if (s) sm__stream_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
