/* How should the loop model's loops get their connections: each its own
 * SO_REUSEPORT listener, or loop 0 accepting and handing fds over? This
 * measures both on the benchmark protocol (len32be echo):
 *
 *   server_accept [SECONDS] [LOOPS] [CLIENT_THREADS]
 *
 * conns/s: each client thread connects, sends one message, reads the echo,
 *          closes, again and again (what accepting costs);
 * msgs/s:  16 long-lived connections per client thread, 16 messages
 *          pipelined per round trip
 *          (what the accept mode costs once connected: nothing, it should be).
 * Not a test: it prints numbers and asserts nothing. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/server.h>
#include <sockmsg/socket.h>

#include "bench_arg.h"

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many connections each loop thread got (on_open runs on it). */
static pthread_mutex_t spread_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t spread_th[64];
static int spread_n[64], spread_len;

static void
count_open(sm_peer *p)
{
    (void)p;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&spread_lock);
    int i = 0;
    while (i < spread_len && !pthread_equal(spread_th[i], self))
        i++;
    if (i == spread_len && spread_len < 64) spread_th[spread_len++] = self;
    if (i < 64) spread_n[i]++;
    pthread_mutex_unlock(&spread_lock);
}

typedef struct job {
    const char *ep;
    int64_t end;
    bool pipelined;
    long done;
} job;

static void *
conn_rate(void *arg)
{
    job *j = arg;
    while (now_ms() < j->end) {
        sm_conn *c;
        if (sm_conn_dial(&c, j->ep, "len32be", 5000, NULL, 0) < 0) continue;
        sm_frame_msg m;
        if (sm_conn_send(c, "ping", 4, 5000) == 4 && sm_conn_recv(c, &m, 5000) == 1) j->done++;
        /* Close with a reset: TIME_WAIT would use up the ephemeral ports
         * (28k of them: 14k connections/s over 2 s) and measure that. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(sm_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        sm_conn_free(c);
    }
    return NULL;
}

static void *
pipelined(void *arg)
{
    job *j = arg;
    enum { CONNS = 16, DEPTH = 16 };
    sm_conn *c[CONNS];
    for (int i = 0; i < CONNS; i++)
        if (sm_conn_dial(&c[i], j->ep, "len32be", 5000, NULL, 0) < 0) return NULL;
    uint8_t batch[DEPTH * 36];
    for (int k = 0; k < DEPTH; k++) {
        uint8_t *f = batch + (size_t)k * 36;
        memcpy(f, "\0\0\0\x20", 4);
        memset(f + 4, 'x', 32);
    }
    while (now_ms() < j->end) {
        for (int i = 0; i < CONNS; i++)
            sm_send_all(sm_conn_fd(c[i]), batch, sizeof batch, 5000, NULL);
        for (int i = 0; i < CONNS; i++)
            for (int k = 0; k < DEPTH; k++) {
                sm_frame_msg m;
                if (sm_conn_recv(c[i], &m, 5000) == 1) j->done++;
            }
    }
    for (int i = 0; i < CONNS; i++)
        sm_conn_free(c[i]);
    return NULL;
}

static double
run(sm_server_accept mode, int loops, int clients, int seconds, bool pipe)
{
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    spread_len = 0;
    memset(spread_n, 0, sizeof spread_n);
    sm_server_opts o = {.listen = one,
                        .on_message = sm_server_handler_echo,
                        .on_open = count_open,
                        .threads = loops,
                        .accept = mode};
    sm_server *srv;
    char why[256];
    if (sm_server_new(&srv, &o, why, sizeof why) < 0) {
        fprintf(stderr, "server: %s\n", why);
        exit(1);
    }
    sm_endpoint e;
    char ep[128];
    sm_server_endpoint(srv, 0, &e);
    sm_endpoint_format(&e, ep, sizeof ep);
    sm_server_start(srv);
    pthread_t th[64];
    job jobs[64];
    int64_t t0 = now_ms();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (job){.ep = ep, .end = t0 + (int64_t)seconds * 1000, .pipelined = pipe};
        pthread_create(&th[i], NULL, pipe ? pipelined : conn_rate, &jobs[i]);
    }
    long total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].done;
    }
    double secs = (double)(now_ms() - t0) / 1000.0;
    sm_server_free(srv);
    if (pipe && getenv("SPREAD")) {
        printf("  (%s: connections per loop:",
               mode == SM_ACCEPT_REUSEPORT ? "reuseport" : "dispatch");
        for (int i = 0; i < spread_len; i++)
            printf(" %d", spread_n[i]);
        printf(")\n");
    }
    return (double)total / secs;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    int seconds = argc > 1 ? (int)bench_arg_long(argv[1], 1, INT_MAX) : 1;
    int loops = argc > 2 ? (int)bench_arg_long(argv[2], 1, INT_MAX) : 2;
    int clients = argc > 3 ? (int)bench_arg_long(argv[3], 1, INT_MAX) : 4;
    if (clients > 64) clients = 64;
    signal(SIGPIPE, SIG_IGN);
    static const struct {
        sm_server_accept mode;
        const char *name;
    } modes[] = {{SM_ACCEPT_REUSEPORT, "reuseport"}, {SM_ACCEPT_DISPATCH, "dispatch"}};
    enum { RUNS = 5 };
    printf("%d loops, %d client threads, %d s per run, median of %d (runs alternate modes)\n",
           loops, clients, seconds, RUNS);
    for (int pipe = 0; pipe < 2; pipe++) {
        double x[2][RUNS];
        for (int r = 0; r < RUNS; r++)
            for (int m = 0; m < 2; m++)
                x[m][r] = run(modes[m].mode, loops, clients, seconds, pipe);
        for (int m = 0; m < 2; m++) {
            qsort(x[m], RUNS, sizeof x[m][0], cmp_double);
            printf("%-10s %10.0f (min %.0f, max %.0f) %s", modes[m].name, x[m][RUNS / 2], x[m][0],
                   x[m][RUNS - 1], pipe ? "msgs/s" : "conns/s (connect, echo, close)");
            if (pipe) printf(" (%d conns, 16 deep)", clients * 16);
            printf("\n");
            fflush(stdout);
        }
    }
    return 0;
}
