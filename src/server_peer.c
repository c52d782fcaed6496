/* Servers: the sm_peer_* calls, dispatched to the peer's representation
 * (server_lpeer.c, server_tconn.c) by its tag; close kinds; the log lines
 * of a peer's life, shared by both models. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "server_internal.h"

void
sm__sock_peer_name(int fd, char *out, size_t out_len)
{
    sm_addr a;
    memset(&a, 0, sizeof a);
    a.len = sizeof a.ss;
    snprintf(out, out_len, "?");
    if (getpeername(fd, (struct sockaddr *)&a.ss, &a.len) == 0)
        sm_addr_format((const struct sockaddr *)&a.ss, a.len, out, out_len);
}

void
sm__log_open(const sm_server *srv, const sm_peer *p)
{
    if (srv->o.log_level < SM_LOG_DEBUG || !srv->o.log) return;
    sm_addr a;
    char where[160] = "?";
    int src = sm_peer_addr(p, &a);
    if (src >= 0) sm_addr_format((const struct sockaddr *)&a.ss, a.len, where, sizeof where);
    sm__log(srv, SM_LOG_DEBUG, "peer %llu from %s%s", (unsigned long long)sm__peer_id(p), where,
            src == 1 ? " (PROXY)" : "");
}

void
sm__log_close(const sm_server *srv, const sm_peer *p, sm_close_kind kind, int reason)
{
    if (srv->o.log_level < SM_LOG_DEBUG || !srv->o.log) return;
    const char *d = sm_peer_error_detail(p);
    sm__log(srv, SM_LOG_DEBUG, "peer %llu closed: %s (%s)%s%s", (unsigned long long)sm__peer_id(p),
            sm_server_close_kind_name((int)kind), sm_err_name(reason), d[0] ? ": " : "", d);
}

/* Whether one more TLS failure line fits this second's budget; a new
 * window hands out the count of those left unlogged before it. Lock-free:
 * loops and connection threads log at once. */
static bool
tls_log_budget(sm_server *srv, uint64_t *dropped)
{
    int64_t now = sm__now_ms();
    int64_t win = atomic_load_explicit(&srv->tls_log_window, memory_order_relaxed);
    if ((now - win >= 1000 || win == 0) &&
        atomic_compare_exchange_strong(&srv->tls_log_window, &win, now))
        atomic_store(&srv->tls_log_lines, 0);
    if (atomic_fetch_add(&srv->tls_log_lines, 1) >= SM__TLS_LOG_BURST) {
        atomic_fetch_add_explicit(&srv->tls_log_dropped, 1, memory_order_relaxed);
        return false;
    }
    *dropped = atomic_exchange(&srv->tls_log_dropped, 0);
    return true;
}

void
sm__log_tls_fail(sm_server *srv, uint64_t id, int fd, int reason, const char *detail,
                 bool handshake)
{
    if (srv->o.log_level < SM_LOG_WARN || !srv->o.log) return;
    uint64_t dropped = 0;
    if (!tls_log_budget(srv, &dropped)) return;
    /* The loop model logs from on_close, when the socket (and with it the
     * address) is gone: then the line names the peer by id alone. */
    char where[168] = "";
    if (fd >= 0) {
        char addr[160];
        sm__sock_peer_name(fd, addr, sizeof addr);
        snprintf(where, sizeof where, " from %s", addr);
    }
    char more[96] = "";
    if (dropped)
        snprintf(more, sizeof more, " (and %llu more TLS failures not logged)",
                 (unsigned long long)dropped);
    sm__log(srv, SM_LOG_WARN, "peer %llu%s: TLS %s (%s): %s%s", (unsigned long long)id, where,
            handshake ? "handshake failed" : "failed", sm_err_name(reason),
            detail && *detail ? detail : sm_strerror(reason), more);
}

sm_close_kind
sm_server_close_kind(int reason)
{
    switch (reason) {
    case 0:
        return SM_CLOSE_CLEAN;
    case -ECONNRESET:
    case -EPIPE:
        return SM_CLOSE_RESET;
    case -ETIMEDOUT:
        return SM_CLOSE_TIMEOUT;
    case SM_ERR_HEARTBEAT:
        return SM_CLOSE_HEARTBEAT;
    case -EMSGSIZE:
        return SM_CLOSE_OVERSIZE;
    case -EPROTO:
        return SM_CLOSE_MALFORMED;
    case SM_ERR_TRUNCATED:
        return SM_CLOSE_TRUNCATED;
    case SM_ERR_SLOW_CONSUMER:
        return SM_CLOSE_SLOW_CONSUMER;
    case SM_ERR_CLOSED:
        return SM_CLOSE_LOCAL;
    case -ECANCELED:
        return SM_CLOSE_DRAIN;
    case SM_ERR_TLS:
    case SM_ERR_TLS_NOT_TLS:
    case SM_ERR_TLS_VERIFY:
    case SM_ERR_TLS_EXPIRED:
    case SM_ERR_TLS_HOSTNAME:
    case SM_ERR_TLS_UNKNOWN_CA:
    case SM_ERR_TLS_ALPN:
    case SM_ERR_TLS_EOF:
        return SM_CLOSE_TLS;
    case SM_ERR_DETACHED:
        return SM_CLOSE_DETACHED;
    default:
        return SM_CLOSE_OTHER;
    }
}

const char *
sm_server_close_kind_name(int kind)
{
    static const char *const names[SM_CLOSE_KINDS] = {
        "clean",         "reset", "timeout", "heartbeat", "oversize", "malformed", "truncated",
        "slow_consumer", "local", "drain",   "refused",   "other",    "tls",       "detached",
    };
    return kind >= 0 && kind < SM_CLOSE_KINDS ? names[kind] : "?";
}

/* ---- peers ------------------------------------------------------------------------ */

const sm__peer_ops *const sm__peer_ops_by_tag[2] = {&sm__tpeer_ops, &sm__lpeer_ops};

static int
peer_sendv(sm_peer *p, int type, const struct iovec *iov, int iovcnt)
{
    if (!p || iovcnt < 0 || (iovcnt && !iov)) return -EINVAL;
    return sm__peer_ops_of(p)->send(p, type, iov, iovcnt);
}

int
sm_peer_send(sm_peer *p, const void *msg, size_t len)
{
    if (!msg && len) return -EINVAL;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return peer_sendv(p, -1, &v, 1);
}

int
sm_peer_send_type(sm_peer *p, int type, const void *msg, size_t len)
{
    if (!msg && len) return -EINVAL;
    if (type < 0 || type > 255) return -EPROTO;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return peer_sendv(p, type, &v, 1);
}

int
sm_peer_sendv(sm_peer *p, const struct iovec *iov, int iovcnt)
{
    return peer_sendv(p, -1, iov, iovcnt);
}

int
sm_peer_send_frame(sm_peer *p, const sm_frame_msg *msg)
{
    if (!p || !msg || (!msg->frame && msg->frame_len)) return -EINVAL;
    if (msg->frame_len == 0) return 0; /* an empty eof-framed message: nothing to send */
    return sm__peer_ops_of(p)->send_frame(p, msg);
}

int
sm_peer_send_hdr(sm_peer *p, const void *hdr, size_t hdr_len, const void *msg, size_t len)
{
    if (!p || (!hdr && hdr_len) || (!msg && len)) return -EINVAL;
    return sm__peer_ops_of(p)->send_hdr(p, hdr ? hdr : "", hdr_len, msg, len);
}

int
sm_peer_set_spec(sm_peer *p, const sm_frame_spec *rx, const sm_frame_spec *tx)
{
    if (!p) return -EINVAL;
    return sm__peer_ops_of(p)->set_spec(p, rx, tx);
}

int
sm_peer_shutdown(sm_peer *p)
{
    if (!p) return -EINVAL;
    return sm__peer_ops_of(p)->shutdown(p);
}

int
sm_peer_close(sm_peer *p)
{
    if (!p) return -EINVAL;
    return sm__peer_ops_of(p)->close(p);
}

static int
sock_addr(int fd, sm_addr *out, bool peer)
{
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&out->ss, &out->len)
                  : getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
    return rc < 0 ? -errno : 0;
}

/* The address from the PROXY header, or the socket's; see sm_peer_addr. */
int
sm__peer_addr(const sm__proxied *px, int fd, sm_addr *out, bool peer)
{
    if (px) {
        *out = peer ? px->src : px->dst;
        return 1;
    }
    return fd < 0 ? -EBADF : sock_addr(fd, out, peer);
}

int
sm_peer_addr(const sm_peer *p, sm_addr *out)
{
    if (!p || !out) return -EINVAL;
    return sm__peer_ops_of(p)->addr(p, out, true);
}

int
sm_peer_local_addr(const sm_peer *p, sm_addr *out)
{
    if (!p || !out) return -EINVAL;
    return sm__peer_ops_of(p)->addr(p, out, false);
}

void *
sm_peer_get_data(const sm_peer *p)
{
    return p ? sm__peer_ops_of(p)->get_data(p) : NULL;
}

void
sm_peer_set_data(sm_peer *p, void *data)
{
    if (p) sm__peer_ops_of(p)->set_data(p, data);
}

sm_server *
sm_peer_server(const sm_peer *p)
{
    return p ? sm__peer_ops_of(p)->server(p) : NULL;
}

uint64_t
sm_peer_id(const sm_peer *p)
{
    return p ? sm__peer_id(p) : 0;
}

const char *
sm_peer_error_detail(const sm_peer *p)
{
    return p ? sm__peer_ops_of(p)->detail(p) : "";
}
