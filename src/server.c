/* Servers: the lifecycle (new, start, wait, stop, free), the workers'
 * shared state and counters, stats and broadcasts. Options are checked in
 * server_opts.c, listeners bound in server_listen.c, a worker thread's
 * life is server_worker.c, the peer calls are server_peer.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "server_internal.h"

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
    sm__listen_close_all(srv);
    if (srv->stop_fd >= 0) close(srv->stop_fd);
    pthread_mutex_destroy(&srv->reg_lock);
    pthread_mutex_destroy(&srv->gate_lock);
    pthread_mutex_destroy(&srv->wait_lock);
    pthread_cond_destroy(&srv->gate_cond);
    for (int i = 0; srv->listen_copy && srv->listen_copy[i]; i++)
        free(srv->listen_copy[i]);
    free(srv->listen_copy);
    free(srv->ping_copy);
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
        /* Every loop falls back alike: said once. */
        const char *fallback = sm_loop_backend_why(w->loop);
        if (i == 0 && fallback)
            sm__log(srv, SM_LOG_WARN, "%s: running on %s", fallback, sm_loop_backend_name(w->loop));
        else if (i == 0)
            sm__log(srv, SM_LOG_DEBUG, "event loops on %s", sm_loop_backend_name(w->loop));
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
    atomic_init(&srv->tbusy, 0);
    atomic_init(&srv->next_id, 0);
    atomic_init(&srv->stop_ms, 0);

    int rc = sm__opts_check(srv, opts, why, why_len);
    if (rc == 0) rc = sm__listen_all(srv, why, why_len);
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
    uint64_t echoed = atomic_load_explicit(&c->msgs_echoed, memory_order_relaxed);
    uint64_t echoed_bytes = atomic_load_explicit(&c->bytes_echoed, memory_order_relaxed);
    st->msgs_in += atomic_load_explicit(&c->msgs_in, memory_order_relaxed) + echoed;
    st->msgs_out += atomic_load_explicit(&c->msgs_out, memory_order_relaxed) + echoed;
    st->bytes_in += atomic_load_explicit(&c->bytes_in, memory_order_relaxed) + echoed_bytes;
    st->bytes_out += atomic_load_explicit(&c->bytes_out, memory_order_relaxed) + echoed_bytes;
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
    /* Checked against the spec peers send with (sm_peer_set_spec may have
     * given some another: each peer's own send checks again). */
    const sm_frame_spec *spec = srv->o.send_spec ? srv->o.send_spec : srv->o.spec;
    int rc = sm_frame_encode(spec, msg, len, type, &hdr);
    if (rc < 0) return rc;
    if (spec->kind != SM_FRAME_TYPE) type = -1;
    return srv->model->broadcast(srv, except, type, msg, len);
}
