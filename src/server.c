/* Servers: options, listeners, the lifecycle (start, stop, wait, free),
 * stats, and the peer calls both execution models share. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frame_internal.h"
#include "internal.h"
#include "server_internal.h"

#define DEFAULT_WRITE_MS 30000
#define DEFAULT_DRAIN_MS 5000
#define DEFAULT_QUIET_MS 50

/* ---- small shared helpers -------------------------------------------------- */

int
sm__vec_push(sm__vec *v, const void *item, size_t size)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *p = realloc(v->items, cap * size);
        if (!p) return -ENOMEM;
        v->items = p;
        v->cap = cap;
    }
    memcpy((char *)v->items + v->n * size, item, size);
    v->n++;
    return 0;
}

void
sm__log(const sm_server *srv, sm_log_level level, const char *fmt, ...)
{
    if (!srv->o.log || level > srv->o.log_level) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->o.log(srv->o.log_data, level, line);
}

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

void
sm__log_proxy_fail(const sm_server *srv, int fd, int err, const char *why)
{
    char where[160];
    sm__sock_peer_name(fd, where, sizeof where);
    /* A forced stop's cancellation is ours, not the client's fault. */
    sm__log(srv, err == -ECANCELED ? SM_LOG_DEBUG : SM_LOG_WARN, "PROXY header from %s: %s", where,
            why && why[0] ? why : sm_strerror(err));
}

bool
sm__admit(sm_server *srv)
{
    int n = atomic_load_explicit(&srv->nconns, memory_order_relaxed);
    do {
        if (srv->limit && n >= srv->limit) return false;
    } while (!atomic_compare_exchange_weak_explicit(&srv->nconns, &n, n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void
sm__release(sm_server *srv)
{
    atomic_fetch_sub_explicit(&srv->nconns, 1, memory_order_relaxed);
}

void
sm__count_close(sm_server *srv, sm__ctrs *c, sm_close_kind kind)
{
    sm__ctr_add(&c->closes[kind], 1);
    sm__release(srv);
}

uint64_t
sm__next_id(sm_server *srv)
{
    return atomic_fetch_add_explicit(&srv->next_id, 1, memory_order_relaxed) + 1;
}

void
sm__gate_pass(sm_server *srv)
{
    pthread_mutex_lock(&srv->gate_lock);
    srv->gate_ready++;
    pthread_cond_broadcast(&srv->gate_cond);
    while (srv->gate_ready < srv->nw && !srv->gate_abort)
        pthread_cond_wait(&srv->gate_cond, &srv->gate_lock);
    pthread_mutex_unlock(&srv->gate_lock);
}

void
sm__wake_all(sm_server *srv)
{
    for (int i = 0; i < srv->nw; i++)
        sm_loop_wakeup(srv->ws[i].loop);
}

void
sm__server_set_run(sm_server *srv, int (*run)(sm_loop *loop, sm_run_mode mode))
{
    srv->run = run;
}

int64_t
sm__drain_deadline(const sm_server *srv)
{
    if (srv->o.drain_timeout_ms == SM_FOREVER) return INT64_MAX;
    return atomic_load(&srv->stop_ms) + srv->o.drain_timeout_ms;
}

void
sm__signal_cb(sm_signal *sig, int signum)
{
    sm__worker *w = sig->data;
    sm_server *srv = w->srv;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (++w->signals_seen == 1 && !atomic_load(&srv->forced)) {
        sm__log(srv, SM_LOG_INFO, "%s: stopping gracefully (a second signal forces it)", name);
        sm_server_stop(srv);
    } else {
        sm__log(srv, SM_LOG_WARN, "%s again: closing every connection now", name);
        sm_server_stop_now(srv);
    }
}

/* ---- a worker thread's life, shared by both models ----------------------------- */

/* An hour-long repeating timer keeps sm_loop_run going while a worker has
 * nothing else (no listener left, connections in other threads). */
#define KEEPALIVE_MS (3600 * 1000)

static void
keepalive_cb(sm_timer *t)
{
    (void)t;
}

void
sm__worker_init(sm__worker *w, sm_timer *const *timers, const sm_timer_cb *cbs, size_t n)
{
    sm_timer_init(w->loop, &w->keepalive, keepalive_cb);
    w->keepalive.data = w;
    for (size_t k = 0; k < n; k++) {
        sm_timer_init(w->loop, timers[k], cbs[k]);
        timers[k]->data = w;
    }
    for (int k = 0; k < 2; k++) {
        sm_signal_init(w->loop, &w->sig[k], sm__signal_cb);
        w->sig[k].data = w;
    }
}

void
sm__worker_run(sm__worker *w, sm_io_cb on_listener, bool signals, const char *who)
{
    sm_server *srv = w->srv;
    int rc = sm_timer_start(&w->keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    for (int i = 0; rc == 0 && i < w->nlst; i++) {
        sm__listener *l = &w->lst[i];
        sm_io_init(w->loop, &l->io, *l->slot, on_listener);
        l->io.data = l;
        rc = sm_io_start(&l->io, SM_READ);
    }
    if (rc == 0 && signals) {
        rc = sm_signal_start(&w->sig[0], SIGINT);
        if (rc == 0) rc = sm_signal_start(&w->sig[1], SIGTERM);
    }
    if (rc < 0) {
        sm__log(srv, SM_LOG_ERROR, "%s: cannot start: %s; stopping the server", who,
                sm_strerror(rc));
        sm_server_stop(srv);
    }
    sm__gate_pass(srv);
    int fails = 0;
    while (!w->done) {
        int64_t start = sm__now_ms();
        rc = srv->run(w->loop, SM_RUN_DEFAULT);
        if (rc == 0) break;
        if (rc > 0) continue; /* stopped: w->done says whether for good */
        sm__log(srv, SM_LOG_ERROR, "%s: %s", who, sm_strerror(rc));
        if (sm__now_ms() - start >= SM__RUN_FAIL_RESET_MS) fails = 0; /* it ran meanwhile */
        if (++fails < SM__RUN_FAILS_MAX) {
            /* A transient failure (poll's ENOMEM) may pass: 1, 2, 4, ... ms. */
            struct timespec pause = {.tv_nsec = (1L << (fails - 1)) * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        /* A loop that cannot run serves nobody: say so, and stop. */
        int none = 0;
        atomic_compare_exchange_strong(&srv->failure, &none, rc);
        w->failed = true;
        sm__log(srv, SM_LOG_ERROR,
                "%s: the loop failed %d times in a row (%s): stopping the server", who, fails,
                sm_strerror(rc));
        sm_server_stop(srv);
        srv->model->abandon(w);
    }
    sm_signal_stop(&w->sig[0]);
    sm_signal_stop(&w->sig[1]);
    for (int i = 0; i < w->nlst; i++)
        if (sm_io_is_active(&w->lst[i].io)) sm_io_stop(&w->lst[i].io);
}

/* ---- options ----------------------------------------------------------------- */

static bool
bad_ms(int ms, bool forever_ok)
{
    return ms < 0 && !(forever_ok && ms == SM_FOREVER);
}

static int
check_opts(sm_server *srv, const sm_server_opts *in, char *why, size_t why_len)
{
    sm_server_opts *o = &srv->o;
    *o = *in;
    if (!o->on_message) return sm__why(why, why_len, -EINVAL, "on_message is required");
    if (!o->listen) return sm__why(why, why_len, -EINVAL, "no endpoint to listen on");
    if (o->listen_count < 0) return sm__why(why, why_len, -EINVAL, "listen_count < 0");
    if (o->listen_count == 0)
        while (o->listen[o->listen_count])
            o->listen_count++;
    if (o->listen_count == 0) return sm__why(why, why_len, -EINVAL, "no endpoint to listen on");
    for (int i = 0; i < o->listen_count; i++)
        if (!o->listen[i]) return sm__why(why, why_len, -EINVAL, "listen[%d] is NULL", i);
    if (o->model != SM_SERVER_LOOP && o->model != SM_SERVER_THREAD)
        return sm__why(why, why_len, -EINVAL, "unknown model %d", (int)o->model);
    srv->model = o->model == SM_SERVER_LOOP ? &sm__lmodel : &sm__tmodel;
    if (o->accept < SM_ACCEPT_DEFAULT || o->accept > SM_ACCEPT_DISPATCH)
        return sm__why(why, why_len, -EINVAL, "unknown accept mode %d", (int)o->accept);
    if (o->threads < 0 || o->max_conns < 0 || o->backlog < 0)
        return sm__why(why, why_len, -EINVAL, "threads, max_conns and backlog must be >= 0");
    if (bad_ms(o->first_message_timeout_ms, false) || bad_ms(o->idle_timeout_ms, false) ||
        bad_ms(o->write_timeout_ms, true) || bad_ms(o->drain_timeout_ms, true) ||
        bad_ms(o->drain_quiet_ms, false))
        return sm__why(why, why_len, -EINVAL, "a timeout is negative");
    if (bad_ms(o->heartbeat_ms, false) || bad_ms(o->heartbeat_timeout_ms, false))
        return sm__why(why, why_len, -EINVAL, "a heartbeat interval is negative");
    if (o->idle_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->write_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->heartbeat_ms > SM_STREAM_TIMEOUT_MAX_MS ||
        o->heartbeat_timeout_ms > SM_STREAM_TIMEOUT_MAX_MS)
        return sm__why(why, why_len, -EINVAL, "a timeout exceeds %d ms", SM_STREAM_TIMEOUT_MAX_MS);
    if (o->log_level < SM_LOG_DEFAULT || o->log_level > SM_LOG_DEBUG)
        return sm__why(why, why_len, -EINVAL, "unknown log level %d", (int)o->log_level);

    if (!o->spec) {
        srv->spec_default = (sm_frame_spec){.kind = SM_FRAME_LENGTH, .len_width = 4};
        o->spec = &srv->spec_default;
    }
    int rc = sm_frame_spec_check(o->spec, why, why_len);
    if (rc < 0) return rc;
    if (o->ping_len && !o->ping) return sm__why(why, why_len, -EINVAL, "ping_len without ping");
    if (o->heartbeat_ms || o->swallow_pings) {
        const char *bad =
            sm__ping_unframable(o->spec, o->ping, o->ping_len, o->ping_type, o->heartbeat_ms != 0);
        if (bad) return sm__why(why, why_len, SM_ERR_SPEC, "%s", bad);
    }

    if (o->accept == SM_ACCEPT_DEFAULT) o->accept = SM_ACCEPT_REUSEPORT;
    if (o->write_timeout_ms == 0) o->write_timeout_ms = DEFAULT_WRITE_MS;
    if (o->drain_timeout_ms == 0) o->drain_timeout_ms = DEFAULT_DRAIN_MS;
    if (o->drain_quiet_ms == 0) o->drain_quiet_ms = DEFAULT_QUIET_MS;
    if (o->log_level == SM_LOG_DEFAULT) o->log_level = SM_LOG_INFO;

    srv->limit = o->max_conns;
    if ((rc = srv->model->configure(srv, why, why_len)) < 0) return rc;
    snprintf(srv->fresh_detail, sizeof srv->fresh_detail,
             "first-message timeout: no whole message within %d ms", o->first_message_timeout_ms);

    /* The endpoint strings are the caller's: keep copies. */
    srv->listen_copy = calloc((size_t)o->listen_count + 1, sizeof *srv->listen_copy);
    if (!srv->listen_copy) return -ENOMEM;
    for (int i = 0; i < o->listen_count; i++)
        if (!(srv->listen_copy[i] = strdup(o->listen[i]))) return -ENOMEM;
    o->listen = (const char *const *)srv->listen_copy;
    return 0;
}

/* ---- listeners ---------------------------------------------------------------- */

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
 * the first one got. */
static int
tcp_listen_group(sm__ep *e, int n, int backlog, int *fds, char *why, size_t why_len)
{
    sm_addr addrs[8];
    int na = sm_endpoint_resolve(&e->ep, true, addrs, 8, why, why_len);
    if (na < 0) return na;
    bool any = !strcmp(e->ep.host, "*");
    int fd = -1, ai = 0;
    for (; ai < na; ai++) {
        fd = tcp_listen_one(&addrs[ai], any, n > 1, backlog);
        /* Try the next address only when this family is missing here. */
        if (fd >= 0 || (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)) break;
    }
    char where[300];
    sm_endpoint_format(&e->ep, where, sizeof where);
    if (fd < 0) return sm__why(why, why_len, fd, "listen on %s: %s", where, sm_strerror(fd));
    fds[0] = fd;
    int rc = sm_sock_local(fd, &e->bound);
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

static int
bind_all(sm_server *srv, char *why, size_t why_len)
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

static void
close_listeners(sm_server *srv)
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

/* ---- lifecycle ------------------------------------------------------------------ */

static void
free_workers(sm_server *srv)
{
    for (int i = 0; srv->ws && i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        /* Listeners never started (or never stopped) are closed with srv->fds. */
        if (w->loop) {
            sm_loop_run(w->loop, SM_RUN_NOWAIT);
            sm_loop_free(w->loop);
        }
        if (w->spare_fd >= 0) close(w->spare_fd);
        sm__handoff *fds = w->in_fds.items;
        for (size_t k = 0; k < w->in_fds.n; k++)
            close(fds[k].fd);
        sm__bmsg **ms = w->in_msgs.items;
        for (size_t k = 0; k < w->in_msgs.n; k++)
            if (atomic_fetch_sub(&ms[k]->refs, 1) == 1) free(ms[k]);
        free(w->in_fds.items);
        free(w->in_msgs.items);
        free(w->work_fds.items);
        free(w->work_msgs.items);
        free(w->in_done.items);
        free(w->work_done.items);
        free(w->fresh.items);
        free(w->lst);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->done_cond);
    }
    free(srv->ws);
}

static void
destroy(sm_server *srv)
{
    free_workers(srv);
    close_listeners(srv);
    if (srv->stop_fd >= 0) close(srv->stop_fd);
    pthread_mutex_destroy(&srv->reg_lock);
    pthread_mutex_destroy(&srv->gate_lock);
    pthread_mutex_destroy(&srv->wait_lock);
    pthread_cond_destroy(&srv->gate_cond);
    for (int i = 0; srv->listen_copy && srv->listen_copy[i]; i++)
        free(srv->listen_copy[i]);
    free(srv->listen_copy);
    free(srv->eps);
    free(srv->fds);
    free(srv);
}

/* Workers: loops, listener watchers, spare fds. */
static int
make_workers(sm_server *srv, char *why, size_t why_len)
{
    srv->ws = calloc((size_t)srv->nw, sizeof *srv->ws);
    if (!srv->ws) return -ENOMEM;
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        w->srv = srv;
        w->index = i;
        w->spare_fd = -1;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->done_cond, NULL);
        sm__list_init(&w->pending);
    }
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        sm_loop_opts lo = {
            .backend = srv->o.backend,
            .on_wakeup = srv->model->wakeup,
            .data = w,
        };
        int rc = sm_loop_new(&w->loop, &lo);
        if (rc < 0) return sm__why(why, why_len, rc, "creating a loop: %s", sm_strerror(rc));
        /* Worker i watches listening set i; set 0 (the only one without
         * REUSEPORT) also holds the Unix endpoints. */
        w->lst = calloc((size_t)srv->neps, sizeof *w->lst);
        if (!w->lst) return -ENOMEM;
        for (int e = 0; e < srv->neps; e++) {
            bool shared = srv->eps[e].is_unix || srv->nfd_sets == 1;
            if (shared && i != 0) continue;
            if (!shared && i >= srv->nfd_sets) continue;
            sm__listener *l = &w->lst[w->nlst++];
            l->w = w;
            l->slot = &srv->fds[(size_t)e * (size_t)srv->nfd_sets + (size_t)(shared ? 0 : i)];
            l->ep = e;
            l->dispatch = shared && srv->nw > 1;
            sm_io_init(w->loop, &l->io, *l->slot, NULL);
        }
        w->spare_fd = sm__spare_open();
    }
    return 0;
}

int
sm_server_new(sm_server **out, const sm_server_opts *opts, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!out || !opts) return -EINVAL;
    sm_server *srv = calloc(1, sizeof *srv);
    if (!srv) return -ENOMEM;
    srv->stop_fd = -1;
    pthread_mutex_init(&srv->reg_lock, NULL);
    pthread_mutex_init(&srv->gate_lock, NULL);
    pthread_mutex_init(&srv->wait_lock, NULL);
    pthread_cond_init(&srv->gate_cond, NULL);
    sm__list_init(&srv->registry);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->forced, false);
    atomic_init(&srv->started, false);
    atomic_init(&srv->waited, false);
    atomic_init(&srv->failure, 0);
    srv->run = sm_loop_run;
    atomic_init(&srv->nconns, 0);
    atomic_init(&srv->next_id, 0);
    atomic_init(&srv->stop_ms, 0);

    int rc = check_opts(srv, opts, why, why_len);
    if (rc == 0) rc = bind_all(srv, why, why_len);
    if (rc == 0) rc = make_workers(srv, why, why_len);
    if (rc == 0) rc = srv->model->init(srv, why, why_len);
    if (rc < 0) {
        if (rc == -ENOMEM && why && why_len && !why[0]) sm__why(why, why_len, rc, "out of memory");
        destroy(srv);
        return rc;
    }
    atomic_init(&srv->listening, srv->nw);
    atomic_init(&srv->alive, srv->nw);
    *out = srv;
    return 0;
}

static bool
on_own_thread(sm_server *srv)
{
    pthread_t self = pthread_self();
    for (int i = 0; i < srv->nw; i++)
        if (srv->ws[i].started && pthread_equal(srv->ws[i].thread, self)) return true;
    return srv->model->is_own_thread(srv);
}

int
sm_server_start(sm_server *srv)
{
    if (!srv) return -EINVAL;
    if (atomic_load(&srv->started)) return -EALREADY;
    if (atomic_load(&srv->stopping)) return SM_ERR_CLOSED;
    if (srv->o.handle_signals) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        int rc = pthread_sigmask(SIG_BLOCK, &set, &srv->old_mask);
        if (rc) return -rc;
        srv->mask_set = true;
        srv->mask_thread = pthread_self();
    }
    for (int i = 0; i < srv->nw; i++) {
        sm__worker *w = &srv->ws[i];
        int rc = pthread_create(&w->thread, NULL, srv->model->main, w);
        if (rc) {
            /* Those running stop at once: nothing was accepted yet. */
            pthread_mutex_lock(&srv->gate_lock);
            srv->gate_abort = true;
            pthread_cond_broadcast(&srv->gate_cond);
            pthread_mutex_unlock(&srv->gate_lock);
            sm_server_stop_now(srv);
            for (int k = 0; k < i; k++)
                pthread_join(srv->ws[k].thread, NULL);
            for (int k = 0; k < i; k++)
                srv->ws[k].started = false;
            atomic_store(&srv->waited, true);
            return -rc;
        }
        w->started = true;
    }
    atomic_store(&srv->started, true);
    return 0;
}

int
sm_server_wait(sm_server *srv)
{
    if (!srv) return -EINVAL;
    if (!atomic_load(&srv->started)) return -EINVAL;
    if (on_own_thread(srv)) return -EDEADLK;
    /* One caller joins the workers; any other returns only once they are
     * joined (returning early would let it free a running server). */
    pthread_mutex_lock(&srv->wait_lock);
    if (!atomic_load(&srv->waited)) {
        for (int i = 0; i < srv->nw; i++)
            if (srv->ws[i].started) pthread_join(srv->ws[i].thread, NULL);
        atomic_store(&srv->waited, true);
    }
    pthread_mutex_unlock(&srv->wait_lock);
    return atomic_load(&srv->failure);
}

int
sm_server_run(sm_server *srv)
{
    int rc = sm_server_start(srv);
    return rc < 0 ? rc : sm_server_wait(srv);
}

void
sm_server_stop(sm_server *srv)
{
    if (!srv || atomic_load(&srv->stopping)) return;
    /* The stop time first: a thread that sees `stopping` computes the drain
     * deadline from it at once (set after, a connection thread could read 0
     * and close its peer as past the deadline). The first stop sets it. */
    int64_t unset = 0;
    atomic_compare_exchange_strong(&srv->stop_ms, &unset, sm__now_ms());
    if (atomic_exchange(&srv->stopping, true)) return;
    if (srv->stop_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(srv->stop_fd, &one, sizeof one);
        (void)n; /* an eventfd write fails only at overflow, which one write cannot reach */
    }
    sm__wake_all(srv);
}

void
sm_server_stop_now(sm_server *srv)
{
    if (!srv) return;
    atomic_store(&srv->forced, true);
    sm_server_stop(srv);
    srv->model->force(srv);
    sm__wake_all(srv);
}

void
sm_server_free(sm_server *srv)
{
    if (!srv) return;
    if (atomic_load(&srv->started) && !atomic_load(&srv->waited)) {
        sm_server_stop(srv);
        sm_server_wait(srv);
    }
    if (srv->mask_set && pthread_equal(srv->mask_thread, pthread_self()))
        pthread_sigmask(SIG_SETMASK, &srv->old_mask, NULL);
    destroy(srv);
}

/* ---- accessors ---------------------------------------------------------------- */

int
sm_server_endpoint_count(const sm_server *srv)
{
    return srv ? srv->neps : 0;
}

int
sm_server_endpoint(const sm_server *srv, int i, sm_endpoint *out)
{
    if (!srv || !out || i < 0 || i >= srv->neps) return -EINVAL;
    *out = srv->eps[i].bound;
    return 0;
}

static void
add_ctrs(sm_server_stats *st, const sm__ctrs *c)
{
    st->accepted += atomic_load_explicit(&c->accepted, memory_order_relaxed);
    st->opened += atomic_load_explicit(&c->opened, memory_order_relaxed);
    st->msgs_in += atomic_load_explicit(&c->msgs_in, memory_order_relaxed);
    st->msgs_out += atomic_load_explicit(&c->msgs_out, memory_order_relaxed);
    st->bytes_in += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
    st->bytes_out += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
    st->accept_errors += atomic_load_explicit(&c->accept_errors, memory_order_relaxed);
    for (int k = 0; k < SM_CLOSE_KINDS; k++)
        st->closes[k] += atomic_load_explicit(&c->closes[k], memory_order_relaxed);
}

void
sm_server_get_stats(const sm_server *srv, sm_server_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!srv) return;
    for (int i = 0; i < srv->nw; i++)
        add_ctrs(out, &srv->ws[i].ctrs);
    add_ctrs(out, &srv->tctrs);
    int n = atomic_load_explicit(&srv->nconns, memory_order_relaxed);
    out->current = n > 0 ? (uint64_t)n : 0;
}

void *
sm_server_get_data(const sm_server *srv)
{
    return srv ? srv->o.data : NULL;
}

bool
sm_server_is_stopping(const sm_server *srv)
{
    return srv && atomic_load(&srv->stopping);
}

int
sm_server_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len)
{
    if (!srv || (!msg && len)) return -EINVAL;
    sm_frame_hdr hdr;
    int rc = sm_frame_encode(srv->o.spec, msg, len, type, &hdr);
    if (rc < 0) return rc;
    if (srv->o.spec->kind != SM_FRAME_TYPE) type = -1;
    return srv->model->broadcast(srv, except, type, msg, len);
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
    default:
        return SM_CLOSE_OTHER;
    }
}

const char *
sm_server_close_kind_name(int kind)
{
    static const char *const names[SM_CLOSE_KINDS] = {
        "clean",     "reset",         "timeout", "heartbeat", "oversize", "malformed",
        "truncated", "slow_consumer", "local",   "drain",     "refused",  "other",
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
