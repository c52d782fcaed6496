/* sockmsg bench — the load generator's state, shared by bench_conn.c (a
 * connection's I/O: sending, receiving, checking) and bench_run.c (threads,
 * timers, the live line, the run). Internal to the tool. */
#ifndef SOCKMSG_TOOL_BENCH_WORKER_H
#define SOCKMSG_TOOL_BENCH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>

#include <sockmsg/loop.h>

#include "bench.h"

#define SCRATCH        ((size_t)64 << 10)  /* BENCH_COPY_MAX frames are built here */
#define IOV_MSGS       256                 /* larger frames: messages per sendmsg */
#define RBUF_MAX       ((size_t)256 << 10) /* read buffer cap (unless a frame is larger) */
#define TICK_MS        100                 /* timeouts checked this often */
#define PROGRESS_TICKS 5                   /* the live line every 5 ticks */
#define PACE_NS        1000000             /* --rate: the sending time slice */

typedef struct worker worker;

typedef struct conn {
    sm_io io; /* io.data is the conn */
    worker *w;
    sm_frame_decoder dec;
    uint64_t sseq; /* first message not wholly sent */
    uint64_t rseq; /* the reply expected next */
    size_t soff;   /* bytes of message sseq already sent */
    /* When message s started out (closed loop), or when it was meant to
     * (--rate): ts[s & mask]. Latency is measured from it. */
    int64_t *ts;
    int64_t since; /* --rate: the last reply, or the send that ended idleness */
    uint8_t *rbuf;
    size_t rstart, rend; /* unconsumed bytes: rbuf[rstart..rend) */
    uint32_t id;
    bool open, want_write;
    void *ssl; /* tls://: the OpenSSL session, else NULL */
} conn;

typedef struct bench bench;

struct worker {
    bench *b;
    const bench_cfg *cfg;
    int id;
    sm_loop *loop;
    pthread_t thread;
    bool started;
    conn *conns;
    int nconns, nopen;
    uint64_t mask;
    size_t rcap; /* bytes of each read buffer */
    sm_timer tick, end, start;
    sm_io pace;       /* --rate: a timerfd at every slice boundary; fd -1 if none */
    sm_signal sigint; /* worker 0: ^C ends the window early */
    unsigned ticks;
    bool draining;
    uint8_t *scratch;               /* small frames are built here */
    struct iovec iov[IOV_MSGS * 4]; /* larger ones gathered here */
    uint8_t seqs[IOV_MSGS][16];     /* with their sequence fields */
    uint64_t messages;              /* counted replies */
    uint64_t sent;                  /* messages of the window sent (see bench_result) */
    uint64_t shortfall, scheduled;  /* --rate: set when the window ends */
    uint64_t err[BENCH_ERR_KINDS];
    bench_hist *hist;
    /* For the live line: published every PROGRESS_TICKS by workers 1..n-1. */
    _Atomic uint64_t pub_messages, pub_errors;
    pthread_mutex_t pub_lock;
    bench_hist *pub_hist;
    char details[BENCH_DETAILS][BENCH_DETAIL_LEN];
    int ndetails;
    int64_t t_done; /* when its last connection closed */
};

struct bench {
    const bench_cfg *cfg;
    worker *workers;
    int nworkers;
    int64_t m0; /* the measured window, CLOCK_MONOTONIC ns: [m0, m1) */
    /* --rate: message s of connection id is meant to go out at
     * t0 + (s * conns + id) * ns_per; ns_per is 0 for the closed loop. */
    int64_t t0;
    double ns_per;
    _Atomic int64_t m1; /* moved earlier by ^C; read it with bench_m1 */
    bool interrupted;
    struct rusage ru0, ru1;
    bool have_ru1;
    /* the live line (worker 0) */
    int64_t prog_t;
    uint64_t prog_msgs;
    bench_hist *prog_hist;
    int prog_width;
};

static inline int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Messages started and not answered yet. */
static inline uint64_t
outstanding(const conn *c)
{
    return c->sseq - c->rseq + (c->soff > 0);
}

/* The open-loop schedule (--rate). Message s of connection id sits at
 * (s * conns + id) * ns_per after t0, spreading the rate evenly over all the
 * connections; it is due at the start of the PACE_NS slice that holds that
 * point (the first slice boundary at or after it), when the pacing timer
 * sends each connection its share. Its latency counts from there, so a
 * late timer, a full window or a slow server all show in it. */
static inline int64_t
bench_spot(const bench *b, const conn *c, uint64_t s)
{
    return (int64_t)((double)(s * (uint64_t)b->cfg->conns + c->id) * b->ns_per);
}

/* bench_intended - when message s of c is due. */
static inline int64_t
bench_intended(const bench *b, const conn *c, uint64_t s)
{
    int64_t x = bench_spot(b, c, s);
    return b->t0 + (x + PACE_NS - 1) / PACE_NS * PACE_NS;
}

/* bench_due - how many of c's messages are due by time t (bench_intended
 * <= t): those whose spot is at most the start of t's slice. The estimate
 * in floating point is corrected against bench_spot, so both agree. */
static inline uint64_t
bench_due(const bench *b, const conn *c, int64_t t)
{
    if (t < b->t0) return 0;
    int64_t lim = (t - b->t0) / PACE_NS * PACE_NS;
    double x = ((double)lim / b->ns_per - c->id) / b->cfg->conns;
    uint64_t k = x < 0 ? 0 : (uint64_t)x + 1;
    while (k > 0 && bench_spot(b, c, k - 1) > lim)
        k--;
    while (bench_spot(b, c, k) <= lim)
        k++;
    return k;
}

/* bench_m1 - the end of the measured window. */
static inline int64_t
bench_m1(bench *b)
{
    return atomic_load_explicit(&b->m1, memory_order_relaxed);
}

/* bench_detail - keep an explanation of an error (the first BENCH_DETAILS),
 * "connection N: " and the message; shown at once with -v. */
void bench_detail(worker *w, const conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bench_count_error - count an error of a kind (BENCH_ERR_*). */
void bench_count_error(worker *w, int kind);

/* bench_worker_done - the worker's last connection closed: stop its timers
 * and the pacing, so its loop ends. */
void bench_worker_done(worker *w);

/* bench_conn_close - stop watching and close a connection (once). */
void bench_conn_close(worker *w, conn *c);

/* bench_conn_send - fill the connection's window: depth messages in flight
 * until m1 (closed loop), or (--rate) the messages due by now, meant for
 * before m1, depth at most in flight; once the window has ended only finish
 * a message already started. False if the connection failed and closed. */
bool bench_conn_send(worker *w, conn *c, int64_t now);

/* bench_conn_io - the io watcher callback of every connection. */
void bench_conn_io(sm_io *io, unsigned events);

#endif
