/* sockmsg bench — the load generator: connections on event loops.
 *
 * Built to stay out of the way of the server it measures. Each thread runs
 * one sm_loop with raw non-blocking sockets; a connection costs its io
 * watcher, a frame decoder, two counters, a ring of send times (8 bytes per
 * message in flight) and a read buffer that holds what can be in flight (at
 * most 256 KiB). Sending rebuilds the frames of a batch from their sequence
 * numbers (the header was encoded once: same size, same header) and writes
 * them with one send, or one sendmsg of iovecs that point into the shared
 * template for large messages; receiving reads all the connection can have
 * pending and decodes every reply in it with sm_frame_decode, in place.
 * Time is read twice per batch (before the send, after the read), never per
 * message.
 *
 * The schedule is absolute: warmup until m0, measure until m1 (or ^C), then
 * drain.
 * A reply counts (and its latency is recorded) when it arrives in [m0, m1);
 * no message is sent from m1 on; a connection closes once its replies are
 * all back, or fails if one is missing for longer than the timeout.
 *
 * With --rate the load is an open loop instead: each worker's timerfd fires
 * at every PACE_NS slice boundary and each connection sends what the
 * schedule owes it (bench_due), depth at most in flight. Latency counts from
 * the time a message was due, a message counts when it was due in [m0, m1)
 * (its reply may come in the drain), and what was due but unsent when the
 * window ends is the shortfall (count_schedule).
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/socket.h>

#include "bench_tls.h"
#include "bench_worker.h"

/* ---- timers ------------------------------------------------------------- */

static uint64_t
worker_errors(const worker *w)
{
    uint64_t total = 0;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        total += w->err[k];
    return total;
}

/* The live line, from worker 0: rate over the last interval, p99 so far. */
static void
progress(worker *w)
{
    bench *b = w->b;
    int64_t now = now_ns();
    char line[200], p99[32];
    if (now < b->m0) {
        snprintf(line, sizeof line, "warming up: %.1f s to go", (double)(b->m0 - now) / 1e9);
    } else {
        uint64_t msgs = w->messages, errors = worker_errors(w);
        memcpy(b->prog_hist, w->hist, sizeof *w->hist);
        for (int i = 1; i < b->nworkers; i++) {
            worker *o = &b->workers[i];
            msgs += atomic_load_explicit(&o->pub_messages, memory_order_relaxed);
            errors += atomic_load_explicit(&o->pub_errors, memory_order_relaxed);
            pthread_mutex_lock(&o->pub_lock);
            hist_merge(b->prog_hist, o->pub_hist);
            pthread_mutex_unlock(&o->pub_lock);
        }
        int64_t since = b->prog_t > b->m0 ? b->prog_t : b->m0;
        double dt = (double)(now - since) / 1e9,
               rate = dt > 0 ? (double)(msgs - b->prog_msgs) / dt : 0;
        int64_t m1 = bench_m1(b);
        double t = (double)((now < m1 ? now : m1) - b->m0) / 1e9;
        snprintf(line, sizeof line,
                 "%5.1f/%.1f s  %11.0f msgs/s  %9.2f MB/s  p99 %s  errors %" PRIu64, t,
                 (double)w->cfg->duration_ns / 1e9, rate, rate * (double)w->cfg->size / 1e6,
                 hist_format_ns(hist_percentile(b->prog_hist, 0.99), p99, sizeof p99), errors);
        b->prog_t = now;
        b->prog_msgs = msgs;
    }
    int len = (int)strlen(line);
    /* Pad over a longer previous line; \r goes back to the start. */
    printf("\r%s%*s", line, b->prog_width > len ? b->prog_width - len : 0, "");
    fflush(stdout);
    if (len > b->prog_width) b->prog_width = len;
}

static void
publish(worker *w)
{
    pthread_mutex_lock(&w->pub_lock);
    memcpy(w->pub_hist, w->hist, sizeof *w->hist);
    pthread_mutex_unlock(&w->pub_lock);
}

static void
on_tick(sm_timer *t)
{
    worker *w = t->data;
    int64_t now = now_ns(), limit = (int64_t)w->cfg->timeout_ms * 1000000;
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        uint64_t out = c->open ? outstanding(c) : 0;
        /* --rate stamps are the intended times, which a backlog makes old:
         * there, time the wait from the last sign of life instead. */
        int64_t from = w->b->ns_per > 0 ? c->since : c->ts[c->rseq & w->mask];
        if (out && now - from > limit) {
            bench_count_error(w, BENCH_ERR_TIMEOUT);
            bench_detail(w, c,
                         "no reply to message %" PRIu64 " within %d ms (%" PRIu64
                         " messages unanswered)",
                         c->rseq + 1, w->cfg->timeout_ms, out);
            bench_conn_close(w, c);
        }
    }
    if (++w->ticks % PROGRESS_TICKS || !w->cfg->progress) return;
    if (w->id == 0)
        progress(w);
    else
        publish(w);
}

/* --rate: at every slice boundary each connection sends what the schedule
 * owes it (and bench_conn_io sends more as replies make room). */
static void
pace_all(worker *w, int64_t now)
{
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].open) bench_conn_send(w, &w->conns[i], now);
}

static void
on_pace(sm_io *io, unsigned events)
{
    (void)events;
    worker *w = io->data;
    uint64_t expirations;
    /* Only the readiness matters: the time is read again, and a late wake-up
     * sends every slice it missed at once. */
    while (read(io->fd, &expirations, sizeof expirations) < 0 && errno == EINTR)
        ;
    pace_all(w, now_ns());
}

/* Arm w's timerfd at the slice boundaries after t0 and watch it. */
static int
pace_start(worker *w, int64_t t0)
{
    int64_t first = t0 + PACE_NS;
    struct itimerspec its = {
        .it_interval = {.tv_sec = 0, .tv_nsec = PACE_NS},
        .it_value = {.tv_sec = first / 1000000000, .tv_nsec = first % 1000000000},
    };
    if (timerfd_settime(w->pace.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) return -errno;
    return sm_io_start(&w->pace, SM_READ);
}

/* --rate: count the window's messages by their intended times, in
 * [first, end) for each connection: sent, or not (the shortfall; on open
 * connections only, a closed one has counted its errors). */
static void
count_schedule(worker *w)
{
    bench *b = w->b;
    int64_t m1 = bench_m1(b);
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        uint64_t first = bench_due(b, c, b->m0 - 1), end = bench_due(b, c, m1 - 1);
        if (end < first) end = first;
        uint64_t started = c->sseq + (c->soff > 0);
        if (started < first) started = first;
        if (started > end) started = end;
        w->scheduled += end - first;
        w->sent += started - first;
        if (c->open) w->shortfall += end - started;
    }
}

static void
on_start(sm_timer *t)
{
    worker *w = t->data;
    getrusage(RUSAGE_SELF, &w->b->ru0);
}

/* The window is over (its time came, or ^C): send no more, close the
 * connections that have nothing outstanding; the others close as their
 * last replies come in. */
static void
worker_end(worker *w)
{
    if (w->draining) return;
    if (w->b->ns_per > 0) {
        /* The last slices before m1 may not have been sent yet (the end
         * timer has millisecond precision and may come a little early):
         * send all the window owes, then count. */
        int64_t now = now_ns(), m1 = bench_m1(w->b);
        sm_io_stop(&w->pace);
        pace_all(w, now > m1 - 1 ? now : m1 - 1);
        count_schedule(w);
    }
    w->draining = true;
    if (w->id == 0 && !w->b->have_ru1) {
        getrusage(RUSAGE_SELF, &w->b->ru1);
        w->b->have_ru1 = true;
    }
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->open && outstanding(c) == 0) bench_conn_close(w, c);
    }
}

static void
on_end(sm_timer *t)
{
    worker_end(t->data);
}

/* Wake-ups only ever mean "the window ended early". */
static void
on_wakeup(sm_loop *loop)
{
    worker_end(sm_loop_get_data(loop));
}

/* ^C: end the window now, drain and report. A second ^C kills: the watcher
 * stops, and the other threads block SIGINT, so it reaches this thread with
 * its default action. */
static void
on_sigint(sm_signal *sig, int signum)
{
    (void)signum;
    worker *w = sig->data;
    bench *b = w->b;
    sm_signal_stop(sig);
    int64_t now = now_ns();
    if (now < bench_m1(b)) atomic_store_explicit(&b->m1, now, memory_order_relaxed);
    b->interrupted = true;
    cli_log(w->cfg->cli, 1, "interrupted: draining");
    for (int i = 1; i < b->nworkers; i++)
        sm_loop_wakeup(b->workers[i].loop);
    worker_end(w);
}

/* ---- workers ------------------------------------------------------------ */

static void
worker_loop(worker *w)
{
    int64_t now = now_ns();
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].open) bench_conn_send(w, &w->conns[i], now);
    if (w->nopen == 0) bench_worker_done(w);
    for (int tries = 0; tries < 3; tries++) {
        int rc = sm_loop_run(w->loop, SM_RUN_DEFAULT);
        if (rc >= 0) return;
        /* The backend failed: nothing can be trusted on this loop. */
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (!c->open) continue;
            bench_count_error(w, BENCH_ERR_CLOSED);
            bench_detail(w, c, "event loop: %s", sm_strerror(rc));
            bench_conn_close(w, c);
        }
    }
}

static void *
worker_main(void *arg)
{
    worker_loop(arg);
    return NULL;
}

static int
worker_init(bench *b, worker *w, int id, int nconns)
{
    const bench_cfg *cfg = b->cfg;
    w->b = b;
    w->cfg = cfg;
    w->id = id;
    w->pace.fd = -1; /* until sm_io_init below */
    pthread_mutex_init(&w->pub_lock, NULL);
    sm_loop_opts opts = {.on_wakeup = on_wakeup, .data = w};
    int rc = sm_loop_new(&w->loop, &opts);
    if (rc < 0) return rc;
    uint64_t ring = 1;
    while (ring < (uint64_t)cfg->depth)
        ring <<= 1;
    w->mask = ring - 1;
    size_t f = cfg->frame_len, want = f * (size_t)cfg->depth + 64;
    w->rcap = want < RBUF_MAX ? want : RBUF_MAX;
    if (w->rcap < f + 64) w->rcap = f + 64;
    w->conns = calloc((size_t)nconns, sizeof *w->conns);
    w->hist = calloc(1, sizeof *w->hist);
    if (cfg->protos || cfg->tls_ctx) w->scratch = malloc(SCRATCH);
    if (cfg->progress && id > 0) w->pub_hist = calloc(1, sizeof *w->pub_hist);
    if (!w->conns || !w->hist || ((cfg->protos || cfg->tls_ctx) && !w->scratch) ||
        (cfg->progress && id > 0 && !w->pub_hist))
        return -ENOMEM;
    sm_timer_init(w->loop, &w->tick, on_tick);
    sm_timer_init(w->loop, &w->end, on_end);
    sm_timer_init(w->loop, &w->start, on_start);
    sm_signal_init(w->loop, &w->sigint, on_sigint);
    w->tick.data = w->end.data = w->start.data = w->sigint.data = w;
    int fd = -1;
    if (cfg->rate > 0 && (fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
        return -errno;
    sm_io_init(w->loop, &w->pace, fd, on_pace);
    w->pace.data = w;
    return 0;
}

/* Take a connected fd onto w. Returns 0 or an error (fd then closed). */
static int
worker_add(worker *w, int fd, void *ssl, uint32_t id)
{
    conn *c = &w->conns[w->nconns];
    c->w = w;
    c->id = id;
    c->ssl = ssl;
    c->rbuf = malloc(w->rcap);
    c->ts = malloc((w->mask + 1) * sizeof *c->ts);
    int rc = c->rbuf && c->ts ? sm_sock_set_nonblock(fd, true) : -ENOMEM;
    sm_frame_decoder_init(&c->dec, w->cfg->spec);
    sm_io_init(w->loop, &c->io, fd, bench_conn_io);
    c->io.data = c;
    if (rc == 0) rc = sm_io_start(&c->io, SM_READ);
    if (rc < 0) {
        bench_tls_close(ssl);
        c->ssl = NULL;
        close(fd);
        free(c->rbuf);
        free(c->ts);
        c->rbuf = NULL;
        c->ts = NULL;
        return rc;
    }
    c->open = true;
    w->nconns++;
    w->nopen++;
    return 0;
}

static void
worker_free(worker *w)
{
    if (!w->b) return; /* never initialised */
    if (w->conns) {
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (c->open) {
                sm_io_stop(&c->io);
                close(c->io.fd);
            }
            free(c->rbuf);
            free(c->ts);
        }
    }
    if (w->loop) {
        sm_timer_stop(&w->tick);
        sm_timer_stop(&w->end);
        sm_timer_stop(&w->start);
        sm_io_stop(&w->pace);
        sm_signal_stop(&w->sigint);
        (void)sm_loop_run(w->loop, SM_RUN_NOWAIT);
        sm_loop_free(w->loop);
    }
    if (w->pace.fd >= 0) close(w->pace.fd);
    free(w->conns);
    free(w->hist);
    free(w->pub_hist);
    free(w->scratch);
    pthread_mutex_destroy(&w->pub_lock);
}

/* ---- the run ------------------------------------------------------------ */

/* Make room for the connections in the fd limit, if the hard limit allows. */
static bool
raise_fd_limit(size_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return true;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need;
}

static int
connect_all(bench *b)
{
    const bench_cfg *cfg = b->cfg;
    if (!raise_fd_limit((size_t)cfg->conns + 64 + 4 * (size_t)b->nworkers))
        return cli_fail(cfg->cli,
                        "%d connections need more file descriptors than the limit allows"
                        " (ulimit -n)",
                        cfg->conns);
    int64_t deadline = cli_deadline(cfg->timeout_ms);
    for (int i = 0; i < cfg->conns; i++) {
        char why[512] = "";
        int left = cli_remaining_ms(deadline);
        int fd = left == 0 ? -ETIMEDOUT : sm_dial_endpoint(&cfg->ep, NULL, left, why, sizeof why);
        if (fd < 0) {
            if (why[0]) cli_log(cfg->cli, 1, "%s", why);
            if (fd == -ETIMEDOUT)
                return cli_fail(cfg->cli, "%s: connection %d: timed out after %d ms", cfg->endpoint,
                                i + 1, cfg->timeout_ms);
            return cli_fail(cfg->cli, "%s: connection %d: %s", cfg->endpoint, i + 1,
                            fd == SM_ERR_RESOLVE && why[0] ? why : sm_strerror(fd));
        }
        void *ssl = NULL;
        if (cfg->tls_ctx &&
            bench_tls_connect(cfg, fd, cli_remaining_ms(deadline), &ssl, why, sizeof why) < 0) {
            close(fd);
            return cli_fail(cfg->cli, "%s: connection %d: %s", cfg->endpoint, i + 1, why);
        }
        int rc = worker_add(&b->workers[i % b->nworkers], fd, ssl, (uint32_t)i);
        if (rc < 0) return cli_fail(cfg->cli, "connection %d: %s", i + 1, sm_strerror(rc));
    }
    cli_log(cfg->cli, 1, "%d connection%s to %s", cfg->conns, cfg->conns == 1 ? "" : "s",
            cfg->endpoint);
    return 0;
}

static uint64_t
timer_ms(int64_t at, int64_t now)
{
    return at > now ? (uint64_t)((at - now + 999999) / 1000000) : 0;
}

static double
cpu_seconds(const struct rusage *r)
{
    return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 +
           (double)r->ru_stime.tv_sec + (double)r->ru_stime.tv_usec / 1e6;
}

static void
collect(bench *b, bench_result *res)
{
    int64_t done = 0;
    for (int i = 0; i < b->nworkers; i++) {
        worker *w = &b->workers[i];
        /* Every connection failed before the window ended. */
        if (b->ns_per > 0 && !w->draining) count_schedule(w);
        res->messages += w->messages;
        res->sent += w->sent;
        res->scheduled += w->scheduled;
        res->shortfall += w->shortfall;
        for (int k = 0; k < BENCH_ERR_KINDS; k++)
            res->err[k] += w->err[k];
        hist_merge(&res->hist, w->hist);
        for (int k = 0; k < w->ndetails && res->ndetails < BENCH_DETAILS; k++)
            memcpy(res->details[res->ndetails++], w->details[k], BENCH_DETAIL_LEN);
        if (w->t_done > done) done = w->t_done;
    }
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        res->errors += res->err[k];
    /* The open loop's window is its schedule's, however early the
     * connections finished. */
    int64_t m1 = bench_m1(b), end = done < m1 && b->ns_per == 0 ? done : m1;
    res->window_s = end > b->m0 ? (double)(end - b->m0) / 1e9 : 0;
    if (!b->have_ru1) getrusage(RUSAGE_SELF, &b->ru1);
    res->cpu_s = cpu_seconds(&b->ru1) - cpu_seconds(&b->ru0);
    res->interrupted = b->interrupted;
}

int
bench_run(const bench_cfg *cfg, bench_result *res)
{
    assert(cfg->threads >= 1 && cfg->conns >= cfg->threads); /* cmd_bench.c checks */
    bench b = {.cfg = cfg, .nworkers = cfg->threads};
    int code = CLI_EXIT_FAIL;
    b.workers = calloc((size_t)b.nworkers, sizeof *b.workers);
    if (!b.workers) return cli_fail(cfg->cli, "%s", sm_strerror(-ENOMEM));
    int per = (cfg->conns + b.nworkers - 1) / b.nworkers, started = 0;
    for (int i = 0; i < b.nworkers; i++) {
        int rc = worker_init(&b, &b.workers[i], i, per);
        if (rc < 0) {
            cli_fail(cfg->cli, "event loop: %s", sm_strerror(rc));
            goto out;
        }
    }
    if (cfg->progress && !(b.prog_hist = malloc(sizeof *b.prog_hist))) {
        cli_fail(cfg->cli, "%s", sm_strerror(-ENOMEM));
        goto out;
    }
    if (connect_all(&b) != 0) goto out;

    int64_t now = now_ns();
    b.t0 = now;
    b.ns_per = cfg->rate > 0 ? 1e9 / cfg->rate : 0;
    b.m0 = now + cfg->warmup_ns;
    atomic_store_explicit(&b.m1, b.m0 + cfg->duration_ns, memory_order_relaxed);
    b.prog_t = b.m0;
    getrusage(RUSAGE_SELF, &b.ru0);
    for (int i = 0; i < b.nworkers; i++) {
        worker *w = &b.workers[i];
        if (sm_timer_start(&w->tick, TICK_MS, TICK_MS) < 0 ||
            sm_timer_start(&w->end, timer_ms(bench_m1(&b), now), 0) < 0 ||
            (i == 0 && cfg->warmup_ns > 0 &&
             sm_timer_start(&w->start, timer_ms(b.m0, now), 0) < 0)) {
            cli_fail(cfg->cli, "event loop: %s", sm_strerror(-ENOMEM));
            goto out;
        }
        int rc = b.ns_per > 0 ? pace_start(w, b.t0) : 0;
        if (rc < 0) {
            cli_fail(cfg->cli, "pacing timer: %s", sm_strerror(rc));
            goto out;
        }
    }
    /* Before the threads exist, so that they inherit SIGINT blocked. */
    if (sm_signal_start(&b.workers[0].sigint, SIGINT) < 0)
        cli_log(cfg->cli, 1, "^C will not end the window early");
    if (cfg->warmup_ns > 0)
        cli_log(cfg->cli, 1, "warming up for %.3f s", (double)cfg->warmup_ns / 1e9);
    cli_log(cfg->cli, 1, "measuring for %.3f s", (double)cfg->duration_ns / 1e9);
    for (started = 1; started < b.nworkers; started++) {
        worker *w = &b.workers[started];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            /* Run what started; the connections of the rest fail now. */
            for (int i = started; i < b.nworkers; i++)
                for (int k = 0; k < b.workers[i].nconns; k++) {
                    bench_count_error(&b.workers[i], BENCH_ERR_CLOSED);
                    bench_detail(&b.workers[i], &b.workers[i].conns[k], "no thread to run it");
                    bench_conn_close(&b.workers[i], &b.workers[i].conns[k]);
                }
            break;
        }
    }
    worker_loop(&b.workers[0]);
    for (int i = 1; i < started; i++)
        pthread_join(b.workers[i].thread, NULL);
    started = 0;
    if (cfg->progress && b.prog_width) printf("\r%*s\r", b.prog_width, "");
    fflush(stdout);
    collect(&b, res);
    code = 0;
out:
    for (int i = 1; i < started; i++)
        pthread_join(b.workers[i].thread, NULL);
    for (int i = 0; i < b.nworkers; i++)
        worker_free(&b.workers[i]);
    free(b.workers);
    free(b.prog_hist);
    return code;
}
