/* Servers: binding every configured endpoint (a TCP endpoint once per
 * loop with SO_REUSEPORT, a group only the server's own sockets start), and
 * closing the listening sockets again (a Unix socket file is removed if it is
 * still ours). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"

static int
set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}

static int
tcp_listen_one(const sm_addr *a, bool any, bool reuseport, int backlog)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && reuseport) rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* "*" means both families whatever net.ipv6.bindv6only says. */
    if (rc == 0 && any && a->ss.ss_family == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    if (rc == 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) rc = -errno;
    if (rc == 0 && listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static void
set_port(sm_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

/* n sockets on one TCP endpoint (SO_REUSEPORT when n > 1), all on the port
 * the first one got.
 *
 * The first socket binds and listens without SO_REUSEPORT, so it fails with
 * EADDRINUSE if anything (another process, another server in this one, with
 * SO_REUSEPORT or not) already listens on the port, and of two servers
 * starting at once only one gets there. Only then is SO_REUSEPORT switched
 * on for it, and the others join its group (Linux forms the group at their
 * listen). With SO_REUSEPORT on every socket from the start, the group would
 * join any same-user group already on the port and silently share its
 * connections. What stays open: a same-user socket that sets SO_REUSEPORT
 * itself may still join later, as it may join any reuseport group. */
static int
tcp_listen_group(sm__ep *e, int n, int backlog, int *fds, char *why, size_t why_len)
{
    sm_addr addrs[8];
    char where[300], cause[300] = "";
    sm_endpoint_format(&e->ep, where, sizeof where);
    /* Say which endpoint could not be resolved: a server may listen on
     * several, and a resolver message alone reads like a dial failure. */
    int na = sm_endpoint_resolve(&e->ep, true, addrs, 8, cause, sizeof cause);
    if (na < 0)
        return sm__why(why, why_len, na, "listen on %s: %s", where,
                       cause[0] ? cause : sm_strerror(na));
    bool any = !strcmp(e->ep.host, "*");
    int fd = -1, ai = 0;
    for (; ai < na; ai++) {
        fd = tcp_listen_one(&addrs[ai], any, false, backlog);
        /* Try the next address only when this family is missing here. */
        if (fd >= 0 || (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)) break;
    }
    if (fd < 0) return sm__why(why, why_len, fd, "listen on %s: %s", where, sm_strerror(fd));
    fds[0] = fd;
    int rc = n > 1 ? set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) : 0;
    if (rc < 0) return sm__why(why, why_len, rc, "listen on %s: %s", where, sm_strerror(rc));
    rc = sm_sock_local(fd, &e->bound);
    sm_addr a = addrs[ai < na ? ai : 0];
    set_port(&a, e->bound.port);
    for (int i = 1; rc == 0 && i < n; i++) {
        rc = fds[i] = tcp_listen_one(&a, any, true, backlog);
        if (rc > 0) rc = 0;
    }
    if (rc < 0) return sm__why(why, why_len, rc, "listen on %s: %s", where, sm_strerror(rc));
    return 0;
}

static int
unix_listen(sm__ep *e, int backlog, int *fd, char *why, size_t why_len)
{
    int rc = sm_listen_endpoint(&e->ep, NULL, backlog, &e->bound, why, why_len);
    if (rc < 0) return rc;
    *fd = rc;
    if ((rc = sm_sock_set_nonblock(*fd, true)) < 0) return rc;
    struct stat st;
    if (e->ep.kind == SM_ENDPOINT_UNIX && stat(e->ep.path, &st) == 0) {
        e->dev = st.st_dev;
        e->ino = st.st_ino;
    }
    return 0;
}

int
sm__listen_all(sm_server *srv, char *why, size_t why_len)
{
    const sm_server_opts *o = &srv->o;
    srv->neps = o->listen_count;
    srv->eps = calloc((size_t)srv->neps, sizeof *srv->eps);
    size_t nfds = (size_t)srv->neps * (size_t)srv->nfd_sets;
    srv->fds = malloc(nfds * sizeof *srv->fds);
    if (!srv->eps || !srv->fds) return -ENOMEM;
    for (size_t i = 0; i < nfds; i++)
        srv->fds[i] = -1;
    for (int i = 0; i < srv->neps; i++) {
        sm__ep *e = &srv->eps[i];
        int rc = sm_endpoint_parse(&e->ep, o->listen[i], why, why_len);
        if (rc < 0) return rc;
        e->is_unix = e->ep.kind != SM_ENDPOINT_TCP;
        int *fds = &srv->fds[(size_t)i * (size_t)srv->nfd_sets];
        if (e->is_unix)
            rc = unix_listen(e, o->backlog, fds, why, why_len);
        else
            rc = tcp_listen_group(e, srv->nfd_sets, o->backlog, fds, why, why_len);
        if (rc < 0) return rc;
        char where[300];
        sm_endpoint_format(&e->bound, where, sizeof where);
        sm__log(srv, SM_LOG_INFO, "listening on %s%s", where,
                o->proxy_protocol ? " (PROXY protocol)" : "");
    }
    return 0;
}

void
sm__listen_close_all(sm_server *srv)
{
    if (srv->fds) {
        for (size_t i = 0; i < (size_t)srv->neps * (size_t)srv->nfd_sets; i++)
            if (srv->fds[i] >= 0) close(srv->fds[i]);
    }
    for (int i = 0; srv->eps && i < srv->neps; i++) {
        sm__ep *e = &srv->eps[i];
        struct stat st;
        /* Remove the socket file only if it is still the one we made. */
        if (e->ep.kind == SM_ENDPOINT_UNIX && e->ino && lstat(e->ep.path, &st) == 0 &&
            st.st_dev == e->dev && st.st_ino == e->ino)
            unlink(e->ep.path);
    }
}
