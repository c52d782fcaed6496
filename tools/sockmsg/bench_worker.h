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

typedef struct worker worker;

typedef struct conn {
    sm_io io; /* io.data is the conn */
    worker *w;
    sm_frame_decoder dec;
    uint64_t sseq; /* first message not wholly sent */
    uint64_t rseq; /* the reply expected next */
    size_t soff;   /* bytes of message sseq already sent */
    int64_t *ts;   /* when message s started out: ts[s & mask] */
    uint8_t *rbuf;
    size_t rstart, rend; /* unconsumed bytes: rbuf[rstart..rend) */
    uint32_t id;
    bool open, want_write;
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
    sm_signal sigint; /* worker 0: ^C ends the window early */
    unsigned ticks;
    bool draining;
    uint8_t *scratch;               /* small frames are built here */
    struct iovec iov[IOV_MSGS * 4]; /* larger ones gathered here */
    uint8_t seqs[IOV_MSGS][16];     /* with their sequence fields */
    uint64_t messages;              /* counted replies */
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
    int64_t m0;         /* the measured window, CLOCK_MONOTONIC ns: [m0, m1) */
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

/* bench_worker_done - the worker's last connection closed: stop its timers,
 * so its loop ends. */
void bench_worker_done(worker *w);

/* bench_conn_close - stop watching and close a connection (once). */
void bench_conn_close(worker *w, conn *c);

/* bench_conn_send - fill the connection's window (depth messages in flight
 * until m1; afterwards only finish a message already started). False if
 * the connection failed and closed. */
bool bench_conn_send(worker *w, conn *c, int64_t now);

/* bench_conn_io - the io watcher callback of every connection. */
void bench_conn_io(sm_io *io, unsigned events);

#endif
