/* Servers: a worker thread's life, shared by both execution models:
 * setting up its watchers, the start gate, running its loop (and giving up
 * on one that keeps failing), the signal watchers. */
#include <signal.h>
#include <time.h>

#include "internal.h"
#include "loop_internal.h"
#include "server_internal.h"

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

/* An hour-long repeating timer keeps sm_loop_run going while a worker has
 * nothing else (no listener left, connections in other threads). */
#define KEEPALIVE_MS ((uint64_t)3600 * 1000)

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
        sm__io_set_accept(&l->io); /* io_uring: a multishot accept */
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
