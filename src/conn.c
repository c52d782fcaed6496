/* Blocking message connection: a socket, a frame decoder and one read buffer. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/buf.h>
#include <sockmsg/conn.h>
#include <sockmsg/error.h>
#include <sockmsg/socket.h>

#include "conn_fds.h"
#include "fd_io.h"
#include "frame_internal.h"
#include "internal.h"
#include "tls_internal.h"

/* Bytes asked of each recv(2): large, so that pipelined messages arrive many
 * per syscall. */
#define READ_CHUNK ((size_t)64 << 10)
/* The buffer holds one message plus its header, plus part of the next. */
#define HEADER_SLACK 64

struct sm_conn {
    int fd;
    int timeout_ms;
    bool eof;              /* the peer shut down */
    bool eof_done;         /* the EOF (and eof framing's final message) was reported */
    int eof_err;           /* TLS: what the EOF is (SM_ERR_TLS_EOF: without close_notify), or 0 */
    size_t pending;        /* bytes of the message last returned, consumed on the next call */
    sm__tls *tls;          /* NULL for plain TCP and Unix sockets */
    sm__fdq *fdq;          /* fd passing (conn_fds.c), NULL unless enabled */
    sm_frame_spec spec;    /* receiving: the decoder's */
    sm_frame_spec tx_spec; /* sending (a copy of spec unless set apart) */
    sm_frame_decoder dec;
    sm_buf in;
    char detail[SM__TLS_DETAIL];
};

/* The read buffer holds one message of spec plus its header, plus part of
 * the next. Saturating: max= may be as large as 2^64 - 1. */
static size_t
read_limit(const sm_frame_spec *spec)
{
    uint64_t max = sm_frame_max(spec);
    uint64_t slack = HEADER_SLACK + READ_CHUNK;
    uint64_t limit = max > UINT64_MAX - slack ? UINT64_MAX : max + slack;
    return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

int
sm_conn_new_take(sm_conn **out, int fd, const sm_frame_spec *spec)
{
    if (!out || fd < 0 || !spec) {
        if (fd >= 0) close(fd);
        return -EINVAL;
    }
    int rc = sm_frame_spec_check(spec, NULL, 0);
    sm_conn *c = rc < 0 ? NULL : calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return rc < 0 ? rc : -ENOMEM;
    }
    c->fd = fd;
    c->timeout_ms = SM_FOREVER;
    c->spec = *spec;
    c->tx_spec = *spec;
    sm_frame_decoder_init(&c->dec, &c->spec);
    sm_buf_init(&c->in, read_limit(&c->spec));
    *out = c;
    return 0;
}

int
sm_conn_dial(sm_conn **out, const char *endpoint, const char *spec, int timeout_ms, char *why,
             size_t why_len)
{
    sm_frame_spec s;
    sm_endpoint ep;
    int rc = sm_frame_spec_parse(&s, spec, why, why_len);
    if (rc < 0) return rc;
    rc = sm_endpoint_parse(&ep, endpoint, why, why_len);
    if (rc < 0) return rc;
    if (ep.tls) {
        /* A configuration for this call: the system's trust store. */
        sm_tls_config *cfg;
        rc = sm_tls_config_new(&cfg, SM_TLS_CLIENT, why, why_len);
        if (rc < 0) return rc;
        rc = sm_conn_dial_tls(out, endpoint, spec, cfg, timeout_ms, why, why_len);
        sm_tls_config_free(cfg);
        return rc;
    }
    int fd = sm_dial_endpoint(&ep, NULL, timeout_ms, why, why_len);
    if (fd < 0) return fd;
    return sm_conn_new_take(out, fd, &s);
}

/* Handshake on c's socket until the deadline. */
static int
conn_tls(sm_conn *c, sm_tls_config *cfg, const char *host, unsigned port, int64_t deadline,
         char *why, size_t why_len)
{
    int rc = sm_sock_set_nonblock(c->fd, true);
    if (rc < 0) return sm__why(why, why_len, rc, "TLS: %s", sm_strerror(rc));
    rc = sm__tls_new(&c->tls, cfg, c->fd, host, port, why, why_len);
    if (rc < 0) return rc;
    rc = sm__tls_handshake_wait(c->tls, deadline);
    if (rc < 0) return sm__why(why, why_len, rc, "%s", sm__tls_detail(c->tls));
    return 0;
}

int
sm_conn_new_tls(sm_conn **out, int fd, const sm_frame_spec *spec, sm_tls_config *cfg,
                const char *host, int timeout_ms, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    int64_t deadline = sm__deadline(timeout_ms);
    if (!cfg) {
        if (fd >= 0) close(fd);
        return sm__why(why, why_len, -EINVAL, "no TLS configuration");
    }
    sm_conn *c;
    int rc = sm_conn_new_take(&c, fd, spec);
    if (rc < 0) return sm__why(why, why_len, rc, "%s", sm_strerror(rc));
    rc = conn_tls(c, cfg, host, 0, deadline, why, why_len);
    if (rc < 0) {
        sm_conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int
sm_conn_dial_tls(sm_conn **out, const char *endpoint, const char *spec, sm_tls_config *cfg,
                 int timeout_ms, char *why, size_t why_len)
{
    sm_frame_spec s;
    sm_endpoint ep;
    if (!out || !cfg) return sm__why(why, why_len, -EINVAL, "NULL argument");
    int64_t deadline = sm__deadline(timeout_ms);
    int rc = sm_frame_spec_parse(&s, spec, why, why_len);
    if (rc < 0) return rc;
    rc = sm_endpoint_parse(&ep, endpoint, why, why_len);
    if (rc < 0) return rc;
    if (ep.kind != SM_ENDPOINT_TCP)
        return sm__why(why, why_len, SM_ERR_ENDPOINT, "TLS needs a tcp:// or tls:// endpoint");
    int fd = sm_dial_endpoint(&ep, NULL, timeout_ms, why, why_len);
    if (fd < 0) return fd;
    sm_conn *c;
    rc = sm_conn_new_take(&c, fd, &s);
    if (rc < 0) return rc;
    rc = conn_tls(c, cfg, ep.host, ep.port, deadline, why, why_len);
    if (rc < 0) {
        sm_conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const char *
sm_conn_tls_alpn(const sm_conn *c, size_t *len)
{
    if (len) *len = 0;
    return c && c->tls ? sm__tls_alpn(c->tls, len) : NULL;
}

bool
sm_conn_tls_resumed(const sm_conn *c)
{
    return c && c->tls && sm__tls_resumed(c->tls);
}

int
sm__conn_new_take_buf(sm_conn **out, int fd, const sm_frame_spec *spec, sm_buf *in)
{
    int rc = sm_conn_new_take(out, fd, spec);
    if (rc < 0) {
        sm_buf_free(in);
        return rc;
    }
    /* The bytes read already come first; the conn's limit stays its own,
     * which a buffer read under the same spec never exceeds. */
    size_t limit = (*out)->in.limit;
    (*out)->in = *in;
    (*out)->in.limit = limit;
    sm_buf_init(in, 0);
    return 0;
}

bool
sm__conn_mid_message(const sm_conn *c)
{
    return sm_buf_len(&c->in) > c->pending;
}

void
sm_conn_free(sm_conn *c)
{
    if (!c) return;
    if (c->tls) {
        if (sm__tls_handshake_done(c->tls)) sm__tls_goodbye(c->tls);
        sm__tls_free(c->tls);
    }
    if (c->fdq) {
        sm__fdq_free(c->fdq);
        free(c->fdq);
    }
    close(c->fd);
    sm_buf_free(&c->in);
    free(c);
}

int
sm_conn_set_spec(sm_conn *c, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    if (!c) return -EINVAL;
    int rc;
    if ((rx && (rc = sm_frame_spec_check(rx, NULL, 0)) < 0) ||
        (tx && (rc = sm_frame_spec_check(tx, NULL, 0)) < 0))
        return rc;
    if (rx) {
        /* The decoder switches before anything changes, so a refusal
         * changes nothing. The returned message's bytes stay valid. */
        sm_frame_spec old = c->spec;
        c->spec = *rx;
        if ((rc = sm__frame_decoder_switch(&c->dec, &c->spec)) < 0) {
            c->spec = old;
            return rc;
        }
        size_t limit = read_limit(&c->spec), have = sm_buf_len(&c->in);
        c->in.limit = limit > have ? limit : have;
    }
    if (tx) c->tx_spec = *tx;
    return 0;
}

int
sm_conn_detach(sm_conn *c, int *fd, uint8_t **rest, size_t *rest_len)
{
    if (!c || !fd || !rest || !rest_len) return -EINVAL;
    /* A TLS session's records cannot be handed over without its state. */
    if (c->tls) return -EOPNOTSUPP;
    size_t n = sm_buf_len(&c->in) - c->pending;
    uint8_t *copy = NULL;
    if (n) {
        if (!(copy = malloc(n))) return -ENOMEM;
        memcpy(copy, sm_buf_peek(&c->in) + c->pending, n);
    }
    *fd = c->fd;
    *rest = copy;
    *rest_len = n;
    if (c->fdq) { /* fds still held go with nothing the caller can read: closed */
        sm__fdq_free(c->fdq);
        free(c->fdq);
    }
    sm_buf_free(&c->in);
    free(c);
    return 0;
}

void
sm_conn_set_timeout(sm_conn *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

int
sm_conn_fd(const sm_conn *c)
{
    return c->fd;
}

uint64_t
sm_conn_skipped(const sm_conn *c)
{
    return c->dec.skipped;
}

const char *
sm_conn_error_detail(sm_conn *c)
{
    if (c->dec.err) sm_frame_decoder_detail(&c->dec, c->detail, sizeof c->detail);
    return c->detail;
}

static int
timeout_of(const sm_conn *c, int timeout_ms)
{
    return timeout_ms == SM_CONN_DEFAULT ? c->timeout_ms : timeout_ms;
}

/* A delimiter must not occur inside a delimited payload, also not across the
 * border of two pieces: carry the last delim_len-1 bytes of what came before. */
static bool
iov_has_delim(const sm_frame_spec *spec, const struct iovec *iov, int iovcnt)
{
    const uint8_t *d = spec->delim;
    size_t dl = spec->delim_len;
    uint8_t carry[2 * SM_FRAME_DELIM_MAX];
    size_t carried = 0;
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t n = iov[i].iov_len;
        if (n == 0) continue;
        if (memmem(p, n, d, dl)) return true;
        if (dl > 1 && carried) {
            size_t take = SM__MIN(n, dl - 1);
            memcpy(carry + carried, p, take);
            if (memmem(carry, carried + take, d, dl)) return true;
        }
        /* Keep the tail of everything so far (it may span several small pieces). */
        if (dl > 1) {
            uint8_t tmp[2 * SM_FRAME_DELIM_MAX];
            size_t keep_old = n >= dl - 1 ? 0 : SM__MIN(carried, dl - 1 - n);
            memcpy(tmp, carry + carried - keep_old, keep_old);
            size_t take = SM__MIN(n, dl - 1);
            memcpy(tmp + keep_old, p + n - take, take);
            carried = keep_old + take;
            memcpy(carry, tmp, carried);
        }
    }
    return false;
}

/* One message: with the caller's header bytes when head is not NULL, else
 * with type (-1 for none). */
static ssize_t
conn_sendv(sm_conn *c, const void *head, size_t head_len, int type, const struct iovec *iov,
           int iovcnt, const int *fds, int nfds, int timeout_ms)
{
    if (!c || iovcnt < 0 || iovcnt > IOV_MAX - 2 || (iovcnt && !iov)) return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len) return -EINVAL;
        total += iov[i].iov_len;
    }
    /* One piece: the encoder checks it. Several: check across their borders
     * here, and let the encoder skip its check (NULL payload). */
    const void *whole = iovcnt == 1 ? iov[0].iov_base : NULL;
    const sm_frame_spec *spec = &c->tx_spec;
    if (!whole && spec->kind == SM_FRAME_DELIM && iov_has_delim(spec, iov, iovcnt)) return -EINVAL;

    sm_frame_hdr hdr;
    int rc = head ? sm_frame_encode_hdr(spec, head, head_len, whole, total, &hdr)
                  : sm_frame_encode(spec, whole, total, type, &hdr);
    if (rc < 0) return rc;

    struct iovec small[8];
    struct iovec *v = small;
    int n = iovcnt + 2;
    if (n > (int)(sizeof small / sizeof small[0])) {
        v = malloc((size_t)n * sizeof *v);
        if (!v) return -ENOMEM;
    }
    int k = 0;
    if (hdr.head_len) v[k++] = (struct iovec){.iov_base = hdr.head, .iov_len = hdr.head_len};
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len) v[k++] = iov[i];
    if (hdr.tail_len) v[k++] = (struct iovec){.iov_base = hdr.tail, .iov_len = hdr.tail_len};
    ssize_t sent = c->tls ? sm__tls_sendv_all(c->tls, v, k, timeout_of(c, timeout_ms))
                   : nfds ? sm__fds_sendv_all(c->fd, v, k, fds, nfds, timeout_of(c, timeout_ms))
                          : sm_sendv_all(c->fd, v, k, timeout_of(c, timeout_ms), NULL);
    if (sent < 0 && c->tls && sent <= SM_ERR_TLS_UNAVAILABLE)
        snprintf(c->detail, sizeof c->detail, "%s", sm__tls_detail(c->tls));
    if (v != small) free(v);
    return sent < 0 ? sent : (ssize_t)total;
}

ssize_t
sm_conn_sendv(sm_conn *c, const struct iovec *iov, int iovcnt, int timeout_ms)
{
    return conn_sendv(c, NULL, 0, -1, iov, iovcnt, NULL, 0, timeout_ms);
}

ssize_t
sm_conn_send(sm_conn *c, const void *msg, size_t len, int timeout_ms)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return conn_sendv(c, NULL, 0, -1, &v, 1, NULL, 0, timeout_ms);
}

ssize_t
sm_conn_send_type(sm_conn *c, int type, const void *msg, size_t len, int timeout_ms)
{
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return conn_sendv(c, NULL, 0, type, &v, 1, NULL, 0, timeout_ms);
}

ssize_t
sm__conn_sendv_fds(sm_conn *c, int type, const struct iovec *iov, int iovcnt, const int *fds,
                   int nfds, int timeout_ms)
{
    return conn_sendv(c, NULL, 0, type, iov, iovcnt, fds, nfds, timeout_ms);
}

sm__fdq **
sm__conn_fdq(sm_conn *c)
{
    return &c->fdq;
}

bool
sm__conn_is_tls(const sm_conn *c)
{
    return c->tls != NULL;
}

size_t
sm__conn_buffered(const sm_conn *c)
{
    return sm_buf_len(&c->in);
}

/* The message just decoded is the first n buffered bytes: it owns the fds
 * that came with them. */
static int
fds_bind(sm_conn *c, size_t n)
{
    uint64_t start = c->fdq->rx - sm_buf_len(&c->in);
    int rc = sm__fdq_bind(c->fdq, start, start + n);
    if (rc < 0) {
        c->pending = 0; /* the message stays unread: the error is sticky */
        snprintf(c->detail, sizeof c->detail, "%s", c->fdq->why);
    }
    return rc;
}

ssize_t
sm_conn_send_hdr(sm_conn *c, const void *hdr, size_t hdr_len, const void *msg, size_t len,
                 int timeout_ms)
{
    /* A non-NULL head selects the encoder of caller bytes, even for 0 of them. */
    if (!hdr && hdr_len) return -EINVAL;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return conn_sendv(c, hdr ? hdr : "", hdr_len, -1, &v, 1, NULL, 0, timeout_ms);
}

ssize_t
sm_conn_send_frame(sm_conn *c, const sm_frame_msg *msg, int timeout_ms)
{
    if (!c || !msg || (!msg->frame && msg->frame_len)) return -EINVAL;
    /* The frame goes out as it came; the payload must still be one the
     * sending spec accepts, as for every other send. */
    if (msg->len > sm_frame_max(&c->tx_spec)) return -EMSGSIZE;
    return sm__conn_send_raw(c, msg->frame, msg->frame_len, timeout_ms);
}

/* Decode what is buffered. 1: a message in *msg; 0: need more bytes; < 0: error. */
static int
decode_buffered(sm_conn *c, sm_frame_msg *msg)
{
    for (;;) {
        ssize_t n = sm_frame_decode(&c->dec, sm_buf_peek(&c->in), sm_buf_len(&c->in), msg);
        if (n == -EAGAIN) return 0;
        if (n < 0) return (int)n;
        if (msg->data) {
            c->pending = (size_t)n; /* the view stays valid until the next call */
            if (c->fdq && fds_bind(c, (size_t)n) < 0) return c->fdq->err;
            return 1;
        }
        sm_buf_consume(&c->in, (size_t)n); /* oversize=skip discarded these */
    }
}

int
sm_conn_recv(sm_conn *c, sm_frame_msg *msg, int timeout_ms)
{
    if (!c || !msg) return -EINVAL;
    sm_buf_consume(&c->in, c->pending);
    c->pending = 0;
    c->detail[0] = '\0';
    if (c->fdq) sm__fdq_release(c->fdq); /* the last message's fds not taken */

    int timeout = timeout_of(c, timeout_ms);
    int64_t deadline = sm__deadline(timeout);
    /* A peer that never stops sending (bytes an oversize=skip spec discards,
     * a frame that grows toward a large max) keeps every read succeeding, so
     * the deadline is checked before each read after the first. A timeout of
     * 0 reads without waiting, at most one buffer's worth per call. */
    size_t budget = c->in.limit;
    bool first = true;
    for (;;) {
        if (c->eof) {
            if (c->eof_done) return c->eof_err;
            int rc = decode_buffered(c, msg);
            if (rc != 0) return rc;
            if (c->eof_err) {
                /* No close_notify: whatever is buffered (or, with eof
                 * framing, the message itself) may have been cut short. */
                c->eof_done = true;
                if (sm_buf_len(&c->in) || c->spec.kind == SM_FRAME_EOF)
                    c->eof_err = SM_ERR_TRUNCATED;
                snprintf(c->detail, sizeof c->detail, "%s",
                         c->eof_err == SM_ERR_TRUNCATED
                             ? "peer closed without close_notify in the middle of a message"
                             : "peer closed without close_notify (at a message boundary)");
                return c->eof_err;
            }
            ssize_t n = sm_frame_decode_eof(&c->dec, sm_buf_peek(&c->in), sm_buf_len(&c->in), msg);
            c->eof_done = true;
            if (n < 0) return (int)n;
            /* eof framing always ends with one message, even an empty one. */
            if (c->spec.kind != SM_FRAME_EOF) return 0;
            if (!msg->data) msg->data = msg->frame = (const uint8_t *)"";
            c->pending = (size_t)n;
            if (c->fdq && fds_bind(c, (size_t)n) < 0) return c->fdq->err;
            return 1;
        }
        int rc = decode_buffered(c, msg);
        if (rc != 0) return rc;

        /* Ask for a big chunk, but never beyond the limit: the decoder has
         * already refused any frame that would not fit. */
        size_t room = c->in.limit - sm_buf_len(&c->in);
        if (room == 0) return -EMSGSIZE;
        if (!first && (timeout == 0 ? budget == 0 : sm__expired(deadline))) return -ETIMEDOUT;
        first = false;
        rc = sm_buf_reserve(&c->in, SM__MIN(room, READ_CHUNK));
        if (rc < 0) return rc;
        size_t want = sm_buf_writable(&c->in);
        if (timeout == 0) want = SM__MIN(want, budget);
        int ms = sm__remaining_ms(deadline);
        ssize_t got = c->tls   ? sm__tls_recv_some(c->tls, sm_buf_wptr(&c->in), want, ms)
                      : c->fdq ? sm__fds_recv(c->fdq, c->fd, sm_buf_wptr(&c->in), want, ms,
                                              sm_buf_len(&c->in), c->detail, sizeof c->detail)
                               : sm_recv_some(c->fd, sm_buf_wptr(&c->in), want, ms);
        if (got == SM_ERR_TLS_EOF) {
            c->eof = true;
            c->eof_err = SM_ERR_TLS_EOF;
            continue;
        }
        if (got < 0) {
            if (c->tls && got <= SM_ERR_TLS_UNAVAILABLE)
                snprintf(c->detail, sizeof c->detail, "%s", sm__tls_detail(c->tls));
            return (int)got;
        }
        if (got == 0) {
            c->eof = true;
        } else {
            sm_buf_commit(&c->in, (size_t)got);
            budget -= (size_t)got;
        }
    }
}

int
sm_conn_shutdown(sm_conn *c)
{
    if (!c) return -EINVAL;
    if (c->tls) {
        int rc = sm__tls_shutdown_wait(c->tls, c->timeout_ms);
        if (rc < 0) return rc;
    }
    return sm_shutdown_write(c->fd);
}

ssize_t
sm_conn_recv_raw(sm_conn *c, void *buf, size_t len, int timeout_ms)
{
    if (!c || !buf || !len) return -EINVAL;
    int t = timeout_of(c, timeout_ms);
    ssize_t n = c->tls ? sm__tls_recv_some(c->tls, buf, len, t) : sm_recv_some(c->fd, buf, len, t);
    if (n < 0 && c->tls && n <= SM_ERR_TLS_UNAVAILABLE)
        snprintf(c->detail, sizeof c->detail, "%s", sm__tls_detail(c->tls));
    return n;
}

ssize_t
sm_conn_send_raw(sm_conn *c, const void *buf, size_t len, int timeout_ms)
{
    if (!c || (!buf && len)) return -EINVAL;
    return sm__conn_send_raw(c, buf, len, timeout_ms);
}

ssize_t
sm__conn_send_raw(sm_conn *c, const void *p, size_t n, int timeout_ms)
{
    struct iovec v = {.iov_base = (void *)p, .iov_len = n};
    ssize_t rc = c->tls ? sm__tls_sendv_all(c->tls, &v, 1, timeout_of(c, timeout_ms))
                        : sm_sendv_all(c->fd, &v, 1, timeout_of(c, timeout_ms), NULL);
    return rc < 0 ? rc : (ssize_t)n;
}

bool
sm__conn_tls_pending(const sm_conn *c)
{
    return c->tls && sm__tls_read_pending_locked(c->tls);
}
