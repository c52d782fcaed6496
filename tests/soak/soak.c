/* Soak: mixed load against `sockmsg serve` for SOAK_SECONDS (default 600),
 * watching the servers' memory and file descriptors. Not a CTest test: run
 * it with `make soak`.
 *
 * Servers: one `sockmsg serve --echo` per framing in `specs` and per model
 * (loop with 2 loops, thread), each a separate process on 127.0.0.1:0.
 * Load: SOAK_WORKERS client threads (default 8), each connecting again and
 * again to a random server and doing one of, at random:
 *   - echo: 1-200 messages of 0-2000 bytes, pipelined 16 at a time, every
 *     echo checked byte for byte (and its type byte, for the type: spec),
 *     then a close, or a half-close and the server's EOF;
 *   - cut mid-message: a few messages, then part of a frame, then a close
 *     or a reset (SO_LINGER 0);
 *   - unread replies: 50 messages, none read, a reset;
 *   - slow reader: 64-256 KiB of messages, nothing read for 1-3 s, then
 *     every echo read and checked;
 *   - garbage: random bytes, then a close;
 *   - idle: one echo, 2 s of silence, one more echo, a close.
 * The base sample is taken after one echo per server (a server opens some
 * fds only on its first connection). Every 10 s each server's RSS (VmRSS)
 * and open fds (/proc/PID/fd) are sampled. At the end the load stops, the servers get 10 s to close
 * what is left, one last echo checks each is still serving, and a table is printed.
 *
 * Flat, the criterion (per server): the fds, once the load has stopped, are
 * back to the count before the load, and no sample exceeded that count by
 * more than 2 x SOAK_WORKERS + 4 (connections in flight); the RSS peak over
 * the second half of the run exceeds the peak over its first fifth (the
 * warm-up: arenas, buffers and thread stacks reach their working size) by
 * at most max(1 MiB, 10 %). With the default 8 workers a server sees some
 * 800 connections and 60,000 messages in 10 minutes, so a leak of about
 * 1.5 KiB per connection or 20 bytes per message fails it. Exit status 0 when every server is flat,
 * alive and every echo was right; 1 otherwise. */
#include <errno.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#include "smtest.h"

#ifndef SOCKMSG_BIN
#error "SOCKMSG_BIN: the path of the sockmsg program"
#endif

static const char *const specs[] = {
    "len32be",
    "len16le",
    "line",
    "crlf",
    "netstring",
    "varint",
    "ascii:8",
    "delim:\\r\\n\\r\\n",
    "len32be,adjust=4,offset=2",
    "type:A=(len16be);B=(line);C=8",
};
static const char *const models[] = {"loop", "thread"};
#define NSPECS   (sizeof specs / sizeof specs[0])
#define NSERVERS (NSPECS * 2)
#define MSG_MAX  2000

enum { B_ECHO, B_CUT, B_UNREAD, B_SLOW, B_GARBAGE, B_IDLE, B_COUNT };
static const char *const behaviour_names[] = {"echo", "cut", "unread", "slow", "garbage", "idle"};

typedef struct sample {
    long rss_kb, fds;
} sample;

typedef struct server {
    const char *spec, *model;
    sm_frame_spec fs;
    int pid, out_fd;
    uint16_t port;
    char ep[64];
    sample base, *s; /* base: before the load; s: every 10 s */
    size_t ns;
    sample end;
    bool alive;
    _Atomic uint64_t conns, msgs, errors, by[B_COUNT];
} server;

static server S[NSERVERS];
static atomic_bool stop;
static int workers = 8;

static long
proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static long
proc_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static sample
take(const server *sv)
{
    return (sample){proc_rss_kb(sv->pid), proc_fds(sv->pid)};
}

static void
start_server(server *sv)
{
    char *argv[] = {SOCKMSG_BIN, "serve",
                    "--listen",  "tcp://127.0.0.1:0",
                    "--frame",   (char *)sv->spec,
                    "--model",   (char *)sv->model,
                    "--threads", strcmp(sv->model, "loop") ? "256" : "2",
                    NULL};
    sv->pid = sm_test_spawn(argv, &sv->out_fd, false);
    char line[256];
    if (sv->pid < 0 || sm_test_read_line(sv->out_fd, line, sizeof line, 10000) < 0) {
        fprintf(stderr, "soak: sockmsg serve -f %s --model %s did not start\n", sv->spec,
                sv->model);
        exit(1);
    }
    const char *colon = strrchr(line, ':');
    sv->port = colon ? (uint16_t)atoi(colon + 1) : 0;
    snprintf(sv->ep, sizeof sv->ep, "tcp://127.0.0.1:%u", (unsigned)sv->port);
    char why[256];
    if (!sv->port || sm_frame_spec_parse(&sv->fs, sv->spec, why, sizeof why) != 0) {
        fprintf(stderr, "soak: '%s': %s\n", line, why);
        exit(1);
    }
}

/* ---- messages ------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t
rnd(rng *r)
{
    return sm_test_rand(&r->s);
}

/* A payload every framing can carry: printable, without a delimiter's bytes;
 * the type: spec's C entries are exactly 8 bytes. */
static size_t
payload(rng *r, const server *sv, uint8_t *out, size_t max, int *type)
{
    size_t len = (size_t)(rnd(r) % (max + 1));
    *type = -1;
    if (sv->fs.kind == SM_FRAME_TYPE) {
        static const int types[] = {'A', 'B', 'C'};
        *type = types[rnd(r) % 3];
        if (*type == 'C') len = 8;
    } else if (sv->fs.kind == SM_FRAME_ASCII && len > 99999999) {
        len = 99999999;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)('a' + rnd(r) % 26);
    return len;
}

static int
send_msg(sm_conn *c, const uint8_t *p, size_t len, int type)
{
    ssize_t rc =
        type >= 0 ? sm_conn_send_type(c, type, p, len, 10000) : sm_conn_send(c, p, len, 10000);
    return rc < 0 ? (int)rc : 0;
}

/* The next message is exactly p[0..len) (of `type`). 0, or why not. */
static int
recv_check(sm_conn *c, const uint8_t *p, size_t len, int type)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, 10000);
    if (rc < 0) return rc;
    if (rc == 0) return SM_ERR_TRUNCATED;
    if (m.len != len || (len && memcmp(m.data, p, len) != 0)) return -EBADMSG;
    if (type >= 0 && m.type != type) return -EBADMSG;
    return 0;
}

/* A queue of what was sent and not yet echoed, as one buffer of records. */
typedef struct sent {
    uint8_t *buf;
    size_t len, cap, at;
} sent;

static int
sent_add(sent *q, const uint8_t *p, size_t len, int type)
{
    size_t need = q->len + sizeof(size_t) + sizeof(int) + len;
    if (need > q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(q->buf, cap);
        if (!nb) return -ENOMEM;
        q->buf = nb, q->cap = cap;
    }
    memcpy(q->buf + q->len, &len, sizeof len);
    memcpy(q->buf + q->len + sizeof len, &type, sizeof type);
    memcpy(q->buf + q->len + sizeof len + sizeof type, p, len);
    q->len = need;
    return 0;
}

static int
sent_check_all(sent *q, sm_conn *c)
{
    while (q->at < q->len) {
        size_t len;
        int type;
        memcpy(&len, q->buf + q->at, sizeof len);
        memcpy(&type, q->buf + q->at + sizeof len, sizeof type);
        int rc = recv_check(c, q->buf + q->at + sizeof len + sizeof type, len, type);
        if (rc < 0) return rc;
        q->at += sizeof len + sizeof type + len;
    }
    q->len = q->at = 0;
    return 0;
}

static void
reset_close(sm_conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(sm_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    sm_conn_free(c);
}

static void
sleep_ms(int ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

/* ---- behaviours: each returns 0 or the error that made it fail ------------------- */

static int
do_echo(server *sv, sm_conn *c, rng *r, sent *q, uint8_t *buf)
{
    int n = 1 + (int)(rnd(r) % 200);
    for (int i = 0; i < n; i++) {
        int type;
        size_t len = payload(r, sv, buf, MSG_MAX, &type);
        int rc = send_msg(c, buf, len, type);
        if (rc == 0) rc = sent_add(q, buf, len, type);
        if (rc < 0) return rc;
        if (i % 16 == 15 || i == n - 1) {
            if ((rc = sent_check_all(q, c)) < 0) return rc;
        }
    }
    atomic_fetch_add(&sv->msgs, (uint64_t)n);
    if (rnd(r) % 2) {
        sm_frame_msg m;
        int rc = sm_conn_shutdown(c);
        if (rc == 0) rc = sm_conn_recv(c, &m, 10000); /* the server's EOF */
        if (rc != 0) return rc < 0 ? rc : -EBADMSG;
    }
    return 0;
}

static int
do_cut(server *sv, sm_conn *c, rng *r, sent *q, uint8_t *buf)
{
    int n = (int)(rnd(r) % 5);
    for (int i = 0; i < n; i++) {
        int type;
        size_t len = payload(r, sv, buf, MSG_MAX, &type);
        int rc = send_msg(c, buf, len, type);
        if (rc == 0) rc = sent_add(q, buf, len, type);
        if (rc < 0) return rc;
    }
    int rc = sent_check_all(q, c);
    if (rc < 0) return rc;
    atomic_fetch_add(&sv->msgs, (uint64_t)n);
    /* Part of a frame: its header and some of its payload, or less. */
    int type;
    size_t len = payload(r, sv, buf, MSG_MAX, &type);
    sm_frame_hdr h;
    if (len < 2 || sm_frame_encode(&sv->fs, buf, len, type, &h) < 0) return 0;
    uint8_t frame[SM_FRAME_HEAD_MAX + MSG_MAX];
    memcpy(frame, h.head, h.head_len);
    memcpy(frame + h.head_len, buf, len);
    size_t part = 1 + (size_t)(rnd(r) % (h.head_len + len - 1));
    if (write(sm_conn_fd(c), frame, part) < 0) return -errno;
    return 1; /* the caller closes or resets */
}

static int
do_unread(server *sv, sm_conn *c, rng *r, uint8_t *buf)
{
    for (int i = 0; i < 50; i++) {
        int type;
        size_t len = payload(r, sv, buf, 200, &type);
        int rc = send_msg(c, buf, len, type);
        if (rc < 0) return rc;
    }
    return 1; /* reset by the caller, replies unread */
}

static int
do_slow(server *sv, sm_conn *c, rng *r, sent *q, uint8_t *buf)
{
    size_t target = (64u << 10) + (size_t)(rnd(r) % (192u << 10)), total = 0;
    uint64_t n = 0;
    while (total < target) {
        int type;
        size_t len = payload(r, sv, buf, MSG_MAX, &type);
        int rc = send_msg(c, buf, len, type);
        if (rc == 0) rc = sent_add(q, buf, len, type);
        if (rc < 0) return rc;
        total += len + 8, n++;
    }
    sleep_ms(1000 + (int)(rnd(r) % 2000));
    int rc = sent_check_all(q, c);
    if (rc == 0) atomic_fetch_add(&sv->msgs, n);
    return rc;
}

static int
do_garbage(sm_conn *c, rng *r, uint8_t *buf)
{
    size_t len = 1 + (size_t)(rnd(r) % 512);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rnd(r);
    if (write(sm_conn_fd(c), buf, len) < 0 && errno != ECONNRESET && errno != EPIPE) return -errno;
    return 1;
}

static int
do_idle(server *sv, sm_conn *c, rng *r, sent *q, uint8_t *buf)
{
    for (int i = 0; i < 2; i++) {
        int type;
        size_t len = payload(r, sv, buf, 100, &type);
        int rc = send_msg(c, buf, len, type);
        if (rc == 0) rc = sent_add(q, buf, len, type);
        if (rc == 0) rc = sent_check_all(q, c);
        if (rc < 0) return rc;
        if (i == 0) sleep_ms(2000);
    }
    atomic_fetch_add(&sv->msgs, 2);
    return 0;
}

static void *
worker(void *arg)
{
    rng r = {.s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 12345};
    uint8_t *buf = malloc(MSG_MAX + 1);
    sent q = {0};
    while (buf && !atomic_load(&stop)) {
        server *sv = &S[rnd(&r) % NSERVERS];
        unsigned pick = (unsigned)(rnd(&r) % 100);
        int b = pick < 50   ? B_ECHO
                : pick < 65 ? B_CUT
                : pick < 75 ? B_UNREAD
                : pick < 85 ? B_SLOW
                : pick < 95 ? B_GARBAGE
                            : B_IDLE;
        sm_conn *c;
        char why[256];
        int rc = sm_conn_dial(&c, sv->ep, sv->spec, 10000, why, sizeof why);
        atomic_fetch_add(&sv->conns, 1);
        atomic_fetch_add(&sv->by[b], 1);
        if (rc < 0) {
            atomic_fetch_add(&sv->errors, 1);
            fprintf(stderr, "soak: %s %s: dial: %s\n", sv->spec, sv->model, why);
            continue;
        }
        q.len = q.at = 0;
        switch (b) {
        case B_ECHO:
            rc = do_echo(sv, c, &r, &q, buf);
            break;
        case B_CUT:
            rc = do_cut(sv, c, &r, &q, buf);
            break;
        case B_UNREAD:
            rc = do_unread(sv, c, &r, buf);
            break;
        case B_SLOW:
            rc = do_slow(sv, c, &r, &q, buf);
            break;
        case B_GARBAGE:
            rc = do_garbage(c, &r, buf);
            break;
        default:
            rc = do_idle(sv, c, &r, &q, buf);
            break;
        }
        if (rc < 0) {
            atomic_fetch_add(&sv->errors, 1);
            fprintf(stderr, "soak: %s %s: %s: %s (%s)\n", sv->spec, sv->model, behaviour_names[b],
                    sm_err_name(rc), sm_conn_error_detail(c));
        }
        if (rc == 1 && (b == B_UNREAD || rnd(&r) % 2))
            reset_close(c);
        else
            sm_conn_free(c);
    }
    free(q.buf);
    free(buf);
    return NULL;
}

/* ---- the run ---------------------------------------------------------------------- */

static long
peak_rss(const server *sv, size_t from, size_t to)
{
    long p = 0;
    for (size_t i = from; i < to && i < sv->ns; i++)
        if (sv->s[i].rss_kb > p) p = sv->s[i].rss_kb;
    return p;
}

static long
peak_fds(const server *sv)
{
    long p = sv->base.fds;
    for (size_t i = 0; i < sv->ns; i++)
        if (sv->s[i].fds > p) p = sv->s[i].fds;
    return p;
}

/* After the load: one echo still works. */
static bool
still_serves(server *sv)
{
    sm_conn *c;
    if (sm_conn_dial(&c, sv->ep, sv->spec, 5000, NULL, 0) < 0) return false;
    int type = sv->fs.kind == SM_FRAME_TYPE ? 'C' : -1;
    bool ok = send_msg(c, (const uint8_t *)"are you ok", type == 'C' ? 8 : 10, type) == 0 &&
              recv_check(c, (const uint8_t *)"are you ok", type == 'C' ? 8 : 10, type) == 0;
    sm_conn_free(c);
    return ok;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int seconds = getenv("SOAK_SECONDS") ? atoi(getenv("SOAK_SECONDS")) : 600;
    if (getenv("SOAK_WORKERS")) workers = atoi(getenv("SOAK_WORKERS"));
    if (seconds < 30 || workers < 1 || workers > 256) {
        fprintf(stderr, "soak: SOAK_SECONDS >= 30 and 1 <= SOAK_WORKERS <= 256\n");
        return 2;
    }
    size_t nsamples = (size_t)seconds / 10 + 2;
    for (size_t i = 0; i < NSERVERS; i++) {
        S[i].spec = specs[i % NSPECS];
        S[i].model = models[i / NSPECS];
        S[i].s = calloc(nsamples, sizeof(sample));
        if (!S[i].s) return 1;
        start_server(&S[i]);
    }
    /* The base: after one echo, since a server opens some fds (and touches
     * some memory) only on its first connection; then what the load leaves
     * must go back to it. */
    for (size_t i = 0; i < NSERVERS; i++)
        if (!still_serves(&S[i])) {
            fprintf(stderr, "soak: %s %s does not echo\n", S[i].spec, S[i].model);
            return 1;
        }
    sleep_ms(500);
    for (size_t i = 0; i < NSERVERS; i++)
        S[i].base = take(&S[i]);
    printf("soak: %zu servers (%zu framings x loop, thread), %d workers, %d s, samples every "
           "10 s\n",
           NSERVERS, NSPECS, workers, seconds);
    fflush(stdout);

    pthread_t *th = calloc((size_t)workers, sizeof *th);
    if (!th) return 1;
    for (int i = 0; i < workers; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0) return 1;
    int64_t t0 = sm_test_now_ms();
    for (size_t k = 0; k + 2 < nsamples; k++) {
        int64_t due = t0 + (int64_t)(k + 1) * 10000;
        while (sm_test_now_ms() < due)
            sleep_ms((int)(due - sm_test_now_ms() < 500 ? due - sm_test_now_ms() : 500));
        uint64_t msgs = 0, errs = 0;
        for (size_t i = 0; i < NSERVERS; i++) {
            S[i].s[S[i].ns++] = take(&S[i]);
            msgs += atomic_load(&S[i].msgs);
            errs += atomic_load(&S[i].errors);
        }
        printf("  %4llds: %llu messages echoed, %llu errors\n",
               (long long)((sm_test_now_ms() - t0) / 1000), (unsigned long long)msgs,
               (unsigned long long)errs);
        fflush(stdout);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    free(th);

    /* The servers close what the load left (bounded), then are checked. */
    for (int t = 0; t < 100; t++) {
        bool settled = true;
        for (size_t i = 0; i < NSERVERS; i++)
            settled &= take(&S[i]).fds <= S[i].base.fds;
        if (settled) break;
        sleep_ms(100);
    }
    for (size_t i = 0; i < NSERVERS; i++) {
        S[i].end = take(&S[i]);
        S[i].alive = still_serves(&S[i]);
    }

    printf("\n%-30s %-6s %7s %9s %4s | %-27s | %-14s | %s\n", "framing", "model", "conns", "msgs",
           "err", "RSS KiB base/warm/late/end", "fds base/pk/end", "verdict");
    int bad = 0;
    size_t warm_to = (S[0].ns + 4) / 5, late_from = S[0].ns / 2;
    for (size_t i = 0; i < NSERVERS; i++) {
        server *sv = &S[i];
        long warm = peak_rss(sv, 0, warm_to ? warm_to : 1), late = peak_rss(sv, late_from, sv->ns);
        long slack = warm / 10 > 1024 ? warm / 10 : 1024;
        bool rss_flat = late <= warm + slack;
        bool fds_flat =
            sv->end.fds == sv->base.fds && peak_fds(sv) <= sv->base.fds + 2 * workers + 4;
        uint64_t errs = atomic_load(&sv->errors);
        const char *v = !sv->alive  ? "DEAD"
                        : errs      ? "ERRORS"
                        : !rss_flat ? "RSS GROWS"
                        : !fds_flat ? "FDS LEAK"
                                    : "flat";
        bad |= strcmp(v, "flat") != 0;
        char rss[64], fds[32];
        snprintf(rss, sizeof rss, "%ld/%ld/%ld/%ld", sv->base.rss_kb, warm, late, sv->end.rss_kb);
        snprintf(fds, sizeof fds, "%ld/%ld/%ld", sv->base.fds, peak_fds(sv), sv->end.fds);
        printf("%-30s %-6s %7llu %9llu %4llu | %-27s | %-14s | %s\n", sv->spec, sv->model,
               (unsigned long long)atomic_load(&sv->conns),
               (unsigned long long)atomic_load(&sv->msgs), (unsigned long long)errs, rss, fds, v);
    }
    uint64_t by[B_COUNT] = {0};
    for (size_t i = 0; i < NSERVERS; i++)
        for (int b = 0; b < B_COUNT; b++)
            by[b] += atomic_load(&S[i].by[b]);
    printf("connections by behaviour:");
    for (int b = 0; b < B_COUNT; b++)
        printf(" %s %llu", behaviour_names[b], (unsigned long long)by[b]);
    printf("\nflat: fds back to base after the load, peak <= base + %d; RSS late peak <= warm "
           "peak + max(1 MiB, 10 %%)\n",
           2 * workers + 4);

    for (size_t i = 0; i < NSERVERS; i++) {
        kill(S[i].pid, SIGTERM);
        if (sm_test_wait(S[i].pid, 10000) != 0) bad = 1;
        close(S[i].out_fd);
        free(S[i].s);
    }
    printf("soak: %s\n", bad ? "FAILED" : "passed");
    return bad ? 1 : 0;
}
