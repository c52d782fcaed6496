/* `sockmsg bench` run as a process:
 *   - against bench/peers/raw_epoll (len32be, TCP and Unix sockets, odd
 *     sizes): no errors, messages counted, the JSON and the report
 *     well-formed;
 *   - against echo servers in this test (a thread per connection on sm_conn)
 *     for large messages over several threads, and for other framings: line,
 *     crlf, nul, delim, varint, netstring, ascii, len16le, fixed, type;
 *   - against broken servers: a byte flipped in every 10th reply, replies
 *     swapped in pairs, a server that hangs up, one that never answers: exit
 *     1 and errors counted;
 *   - ^C, which ends the measured window early;
 *   - usage errors (exit 2) and an endpoint nobody listens on (exit 1).
 * Each run puts at most a few tenths of a second of load; no timing is
 * asserted. Every process started here is reaped, every thread joined. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

#ifndef SOCKMSG_BIN
#error "SOCKMSG_BIN must name the sockmsg executable"
#endif

#define RUN_TIMEOUT_MS 60000
#define MAX_HANDLERS   32

/* ---- running the tool --------------------------------------------------- */

typedef struct run {
    int code;
    char out[65536];
    char err[16384];
} run;

static char run_dir[4096];

static void
read_file(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
}

/* fork + exec with stdout and stderr to files; only async-signal-safe calls
 * in the child, since server threads may be running. */
static pid_t
spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void
run_tool(run *r, const char *const args[])
{
    char *argv[40];
    size_t n = 0;
    argv[n++] = (char *)SOCKMSG_BIN;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n + 1 < sizeof argv / sizeof argv[0]);
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    char out_path[4200], err_path[4200];
    snprintf(out_path, sizeof out_path, "%s/run.out", run_dir);
    snprintf(err_path, sizeof err_path, "%s/run.err", run_dir);
    pid_t pid = spawn(argv, out_path, err_path);
    r->code = sm_test_wait(pid, RUN_TIMEOUT_MS);
    read_file(out_path, r->out, sizeof r->out);
    read_file(err_path, r->err, sizeof r->err);
    unlink(out_path);
    unlink(err_path);
}

#define RUN(r, ...) run_tool((r), (const char *const[]){__VA_ARGS__, NULL})

static void
expect(const run *r, int code, const char *out_has, const char *err_has)
{
    bool ok = r->code == code;
    if (out_has) ok = ok && strstr(r->out, out_has) != NULL;
    if (err_has) ok = ok && strstr(r->err, err_has) != NULL;
    if (!ok) {
        print_error("exit %d (want %d)\nstdout: %.3000s\nstderr: %.3000s\nwant in stdout: %s\n"
                    "want in stderr: %s\n",
                    r->code, code, r->out, r->err, out_has ? out_has : "(any)",
                    err_has ? err_has : "(any)");
        fail();
    }
}

/* ---- the JSON object ---------------------------------------------------- */

/* The number after "key": in the one-line object (nested keys are unique). */
static double
json_num(const run *r, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(r->out, pat);
    if (!p) {
        print_error("no \"%s\" in %s\n", key, r->out);
        fail();
    }
    return strtod(p + strlen(pat), NULL);
}

static void
expect_json_str(const run *r, const char *key, const char *want)
{
    char pat[512];
    snprintf(pat, sizeof pat, "\"%s\":\"%s\"", key, want);
    if (!strstr(r->out, pat)) {
        print_error("no %s in %s\n", pat, r->out);
        fail();
    }
}

/* Exactly one object on one line, nothing else on stdout. */
static void
expect_one_object(const run *r)
{
    size_t n = strlen(r->out);
    bool ok = n > 2 && r->out[0] == '{' && r->out[n - 2] == '}' && r->out[n - 1] == '\n' &&
              !memchr(r->out, '\n', n - 1) && !strchr(r->out, '\r');
    if (!ok) {
        print_error("not one JSON object: %s\n", r->out);
        fail();
    }
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->out[i] == '{') depth++;
        if (r->out[i] == '}') depth--;
        assert_true(depth >= 0);
    }
    assert_int_equal(depth, 0);
}

/* A clean run: exit 0, no errors, percentiles in order. Every message sent
 * must have come back right for that, drained ones included; with `load`,
 * some also within the measured window (a loaded machine under a sanitizer
 * may take longer than a short window for the first reply). */
static void
expect_clean(const run *r, bool load)
{
    expect(r, 0, NULL, NULL);
    expect_one_object(r);
    if (json_num(r, "errors") != 0 || (load && json_num(r, "messages") <= 0)) {
        print_error("%s\nstderr: %s\n", r->out, r->err);
        fail();
    }
    if (json_num(r, "messages") > 0) {
        assert_true(json_num(r, "msgs_per_s") > 0);
        assert_true(json_num(r, "p50") > 0);
    }
    assert_true(json_num(r, "p50") <= json_num(r, "p90"));
    assert_true(json_num(r, "p90") <= json_num(r, "p99"));
    assert_true(json_num(r, "p99") <= json_num(r, "p999"));
    assert_true(json_num(r, "p999") <= json_num(r, "max"));
    assert_true(json_num(r, "client_cpu_s") >= 0);
}

/* ---- raw_epoll ---------------------------------------------------------- */

typedef struct peer {
    pid_t pid;
    char endpoint[4300];
} peer;

static void
peer_start(peer *p, const char *where)
{
#ifdef RAW_EPOLL
    char *argv[] = {RAW_EPOLL, (char *)where, NULL};
    int fd;
    p->pid = sm_test_spawn(argv, &fd, false);
    char line[4400];
    int n = sm_test_read_line(fd, line, sizeof line, 10000);
    close(fd);
    if (n < 0 || strncmp(line, "listening on ", 13)) {
        print_error("raw_epoll said '%s'\n", n < 0 ? "(nothing)" : line);
        fail();
    }
    snprintf(p->endpoint, sizeof p->endpoint, "%s", line + 13);
    /* raw_epoll says where before it calls listen(2): wait until it accepts
     * (bounded; there is no event to wait on). */
    int64_t end = sm_test_now_ms() + 10000;
    for (;;) {
        int c = sm_dial(p->endpoint, 1000);
        if (c >= 0) {
            close(c);
            break;
        }
        if (sm_test_now_ms() > end) {
            print_error("raw_epoll at %s: %s\n", p->endpoint, sm_strerror(c));
            fail();
        }
        poll(NULL, 0, 10);
    }
#else
    (void)p;
    (void)where;
#endif
}

/* The peer and the server of the running test, stopped by its teardown
 * too, so that a failed assertion leaves no process or thread behind. */
static peer the_peer;
static char the_dir[4096];

static void
peer_stop(peer *p)
{
    if (p->pid <= 0) return;
    kill(p->pid, SIGTERM);
    (void)sm_test_wait(p->pid, 10000);
    p->pid = 0;
}

#ifdef RAW_EPOLL
#define NEED_RAW_EPOLL()
#else
#define NEED_RAW_EPOLL() skip()
#endif

static void
test_raw_json(void **state)
{
    (void)state;
    NEED_RAW_EPOLL();
    peer_start(&the_peer, "tcp://127.0.0.1:0");
    run r;
    RUN(&r, "bench", the_peer.endpoint, "--json", "--duration", "0.5", "--conns", "4", "--depth",
        "8");
    peer_stop(&the_peer);
    expect_clean(&r, true);
    expect_json_str(&r, "endpoint", the_peer.endpoint);
    expect_json_str(&r, "frame", "len32be");
    assert_int_equal((int)json_num(&r, "conns"), 4);
    assert_int_equal((int)json_num(&r, "depth"), 8);
    assert_int_equal((int)json_num(&r, "size"), 64);
    assert_true(json_num(&r, "duration_s") > 0);
    assert_string_equal(r.err, "");
}

static void
test_raw_report(void **state)
{
    (void)state;
    NEED_RAW_EPOLL();
    peer_start(&the_peer, "tcp://127.0.0.1:0");
    run r;
    RUN(&r, "bench", the_peer.endpoint, "-t", "300ms", "--warmup", "0.2", "-c", "2", "-d", "4");
    peer_stop(&the_peer);
    expect(&r, 0, "msgs/s", NULL);
    expect(&r, 0, "latency histogram:", NULL);
    expect(&r, 0, "p99.9", NULL);
    expect(&r, 0, "result conns=2 depth=4 size=64 ", NULL);
    expect(&r, 0, " errors=0 ", NULL);
    expect(&r, 0, "#", NULL);
    /* Not a terminal: no live line. */
    assert_null(strchr(r.out, '\r'));
}

static void
test_raw_unix_sizes(void **state)
{
    (void)state;
    NEED_RAW_EPOLL();
    char where[4200];
    sm_test_mkdtemp(the_dir, sizeof the_dir);
    snprintf(where, sizeof where, "unix:%s/s", the_dir);
    peer_start(&the_peer, where);
    /* Odd sizes around the copy/gather switch, a short sequence field, and
     * empty messages. (Small loads only: raw_epoll trips UBSan after a
     * partial write, which large messages cause.) */
    static const char *const sizes[] = {"0", "5", "1", "2043", "2045"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        run r;
        RUN(&r, "bench", the_peer.endpoint, "--json", "-t", "0.1", "-c", "2", "-d", "5", "-s",
            sizes[i]);
        expect_clean(&r, false);
        assert_int_equal((int)json_num(&r, "size"), atoi(sizes[i]));
    }
    peer_stop(&the_peer);
}

/* ---- echo servers in this process --------------------------------------- */

typedef enum mode {
    ECHO,
    FLIP10,      /* a byte flipped in every 10th reply, from the 3rd on */
    SWAP,        /* replies swapped in pairs */
    CLOSE_AFTER, /* hang up after 5 replies */
    SILENT,      /* read, never answer */
} mode;

typedef struct server {
    int lfd;
    char endpoint[64];
    sm_frame_spec spec;
    mode mode;
    atomic_bool stop;
    pthread_t acceptor;
    pthread_t handlers[MAX_HANDLERS];
    int nhandlers;
    bool running;
} server;

static server the_server;

typedef struct handler_arg {
    server *s;
    int fd;
} handler_arg;

static void *
handler_main(void *arg)
{
    handler_arg *h = arg;
    server *s = h->s;
    sm_conn *c;
    if (sm_conn_new_take(&c, h->fd, &s->spec) < 0) {
        free(h);
        return NULL;
    }
    free(h);
    uint8_t held[4096], buf[4096];
    size_t held_len = 0;
    bool holding = false;
    uint64_t n = 0;
    while (!atomic_load(&s->stop)) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, 50);
        if (rc == -ETIMEDOUT) continue;
        if (rc != 1) break;
        n++;
        if (s->mode == SILENT) continue;
        if (s->mode == CLOSE_AFTER && n > 5) break;
        if (s->mode == FLIP10 && n % 10 == 3 && m.len > 0 && m.len <= sizeof buf) {
            memcpy(buf, m.data, m.len);
            /* Neither byte is a delimiter of the framings used here. */
            buf[m.len - 1] = buf[m.len - 1] == 'Z' ? 'Y' : 'Z';
            if (sm_conn_send(c, buf, m.len, 5000) < 0) break;
            continue;
        }
        if (s->mode == SWAP && m.len <= sizeof held) {
            if (!holding) {
                memcpy(held, m.data, m.len);
                held_len = m.len;
                holding = true;
                continue;
            }
            if (sm_conn_send(c, m.data, m.len, 5000) < 0) break;
            if (sm_conn_send(c, held, held_len, 5000) < 0) break;
            holding = false;
            continue;
        }
        if (sm_conn_send_type(c, m.type, m.data, m.len, 5000) < 0) break;
    }
    sm_conn_free(c);
    return NULL;
}

static void *
acceptor_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = sm_accept(s->lfd, 50, NULL);
        if (fd < 0) continue;
        handler_arg *h = malloc(sizeof *h);
        if (!h || s->nhandlers == MAX_HANDLERS) {
            free(h);
            close(fd);
            continue;
        }
        h->s = s;
        h->fd = fd;
        if (pthread_create(&s->handlers[s->nhandlers], NULL, handler_main, h) != 0) {
            free(h);
            close(fd);
            continue;
        }
        s->nhandlers++;
    }
    return NULL;
}

static void
server_start(server *s, const char *spec, mode m)
{
    memset(s, 0, sizeof *s);
    char why[256];
    if (sm_frame_spec_parse(&s->spec, spec, why, sizeof why) < 0) {
        print_error("spec %s: %s\n", spec, why);
        fail();
    }
    s->mode = m;
    atomic_init(&s->stop, false);
    s->lfd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 16));
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(s->lfd, &bound));
    snprintf(s->endpoint, sizeof s->endpoint, "tcp://127.0.0.1:%u", bound.port);
    assert_int_equal(pthread_create(&s->acceptor, NULL, acceptor_main, s), 0);
    s->running = true;
}

static void
server_stop(server *s)
{
    if (!s->running) return;
    s->running = false;
    atomic_store(&s->stop, true);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nhandlers; i++)
        pthread_join(s->handlers[i], NULL);
    close(s->lfd);
}

static void
check_frame(const char *spec, const char *size)
{
    server *s = &the_server;
    server_start(s, spec, ECHO);
    run r;
    if (size)
        RUN(&r, "bench", s->endpoint, "--json", "-t", "0.1", "-c", "2", "-d", "4", "--frame", spec,
            "--size", size);
    else
        RUN(&r, "bench", s->endpoint, "--json", "-t", "0.1", "-c", "2", "-d", "4", "--frame", spec);
    server_stop(s);
    if (r.code != 0) print_error("--frame %s --size %s\n", spec, size ? size : "(default)");
    expect_clean(&r, false);
}

static void
test_frames_delimited(void **state)
{
    (void)state;
    check_frame("line", NULL);
    check_frame("line", "3"); /* a sequence field of 3 hex digits */
    check_frame("crlf", "300");
    check_frame("nul", "40");
    check_frame("delim:0123456789abcdef", "100"); /* the preferred digits banned */
}

static void
test_frames_other(void **state)
{
    (void)state;
    check_frame("varint", "200");
    check_frame("netstring", "64");
    check_frame("ascii:5", "1000");
    check_frame("len16le", "3000");
    check_frame("fixed:100", NULL); /* the size is the spec's */
    check_frame("type:A=(line);B=4", "50");
    check_frame("len32be,adjust=4,offset=2", "64");
}

static void
test_fixed_size_json(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "fixed:24", ECHO);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.1", "-f", "fixed:24");
    server_stop(s);
    expect_clean(&r, false);
    assert_int_equal((int)json_num(&r, "size"), 24);
    expect_json_str(&r, "frame", "fixed:24");
}

/* Large messages (sent gathered from the template) over several threads. */
static void
test_large_threads(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", ECHO);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.5", "-c", "3", "-d", "3", "-s", "100000",
        "--threads", "2");
    server_stop(s);
    expect_clean(&r, true);
    assert_int_equal((int)json_num(&r, "size"), 100000);
    assert_int_equal((int)json_num(&r, "threads"), 2);
    assert_true(json_num(&r, "mb_per_s") > 0);
}

/* ---- broken servers ----------------------------------------------------- */

static void
test_flipped_byte(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", FLIP10);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.3", "-c", "2", "-d", "4");
    server_stop(s);
    expect(&r, 1, NULL, "error");
    expect(&r, 1, NULL, "want 0x");
    expect_one_object(&r);
    assert_true(json_num(&r, "errors") > 0);
    assert_true(json_num(&r, "mismatch") > 0);
}

static void
test_flipped_byte_line(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "line", FLIP10);
    run r;
    RUN(&r, "bench", s->endpoint, "-t", "0.2", "-d", "3", "-f", "line", "-s", "30");
    server_stop(s);
    expect(&r, 1, "errors=", "error");
    assert_null(strstr(r.out, " errors=0 "));
}

static void
test_reordered(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", SWAP);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.2", "-d", "4", "--timeout", "500ms");
    server_stop(s);
    expect(&r, 1, NULL, "reordered");
    expect_one_object(&r);
    assert_true(json_num(&r, "mismatch") > 0);
}

static void
test_server_hangs_up(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", CLOSE_AFTER);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.5", "-c", "3", "-d", "2");
    server_stop(s);
    /* "closed by the server", or a reset if our messages were unread. */
    expect(&r, 1, NULL, "connection");
    expect_one_object(&r);
    assert_int_equal((int)json_num(&r, "closed"), 3);
    assert_int_equal((int)json_num(&r, "errors"), 3);
}

static void
test_silent_server(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", SILENT);
    run r;
    RUN(&r, "bench", s->endpoint, "--json", "-t", "0.2", "-c", "2", "--timeout", "300ms");
    server_stop(s);
    expect(&r, 1, NULL, "no reply");
    expect_one_object(&r);
    assert_int_equal((int)json_num(&r, "timeout"), 2);
    assert_int_equal((int)json_num(&r, "messages"), 0);
}

/* ^C ends the window early: the replies are drained, checked and reported. */
static void
test_interrupt(void **state)
{
    (void)state;
    server *s = &the_server;
    server_start(s, "len32be", ECHO);
    char out_path[4200], err_path[4200];
    snprintf(out_path, sizeof out_path, "%s/int.out", run_dir);
    snprintf(err_path, sizeof err_path, "%s/int.err", run_dir);
    char *argv[] = {SOCKMSG_BIN, "bench", s->endpoint, "--json", "-v", "-t", "60", "-c", "2", NULL};
    pid_t pid = spawn(argv, out_path, err_path);
    /* It says "measuring" once ^C is handled; wait for that (bounded). */
    static char err[16384];
    int64_t end = sm_test_now_ms() + 20000;
    do {
        read_file(err_path, err, sizeof err);
        if (strstr(err, "measuring")) break;
        poll(NULL, 0, 10);
    } while (sm_test_now_ms() < end);
    assert_non_null(strstr(err, "measuring"));
    kill(pid, SIGINT);
    run r;
    r.code = sm_test_wait(pid, 20000);
    read_file(out_path, r.out, sizeof r.out);
    read_file(err_path, r.err, sizeof r.err);
    server_stop(s);
    expect(&r, 0, NULL, "interrupted");
    expect_clean(&r, false);
    assert_true(json_num(&r, "duration_s") < 50);
}

/* ---- usage and failures ------------------------------------------------- */

static void
test_usage_errors(void **state)
{
    (void)state;
    static const char *const hint = "try 'sockmsg bench --help'";
    const char *ep = "tcp://127.0.0.1:9";
    run r;
    RUN(&r, "bench");
    expect(&r, 2, NULL, "missing ENDPOINT");
    expect(&r, 2, NULL, hint);
    RUN(&r, "bench", ep, "extra");
    expect(&r, 2, NULL, "unexpected argument 'extra'");
    RUN(&r, "bench", ep, "--conns", "0");
    expect(&r, 2, NULL, "--conns");
    RUN(&r, "bench", ep, "--depth", "x");
    expect(&r, 2, NULL, "--depth");
    RUN(&r, "bench", ep, "--size", "5q");
    expect(&r, 2, NULL, "--size");
    RUN(&r, "bench", ep, "--size", "2G");
    expect(&r, 2, NULL, "--size");
    RUN(&r, "bench", ep, "--duration", "0");
    expect(&r, 2, NULL, "more than 0");
    RUN(&r, "bench", ep, "--duration", "-1");
    expect(&r, 2, NULL, "--duration");
    RUN(&r, "bench", ep, "--duration", "abc");
    expect(&r, 2, NULL, "expected seconds");
    RUN(&r, "bench", ep, "--duration", "5x");
    expect(&r, 2, NULL, "expected seconds");
    RUN(&r, "bench", ep, "--warmup", "soon");
    expect(&r, 2, NULL, "--warmup");
    RUN(&r, "bench", ep, "--threads", "0");
    expect(&r, 2, NULL, "--threads");
    RUN(&r, "bench", ep, "--timeout", "0");
    expect(&r, 2, NULL, "--timeout");
    RUN(&r, "bench", ep, "--frame", "len24be");
    expect(&r, 2, NULL, "sockmsg bench: bad value 'len24be' for --frame: unknown codec 'len24be'");
    expect(&r, 2, NULL, hint);
    RUN(&r, "bench", ep, "--frame", "eof");
    expect(&r, 2, NULL, "eof framing");
    RUN(&r, "bench", ep, "--frame", "fixed:10", "--size", "20");
    expect(&r, 2, NULL, "cannot carry 20-byte payloads");
    RUN(&r, "bench", ep, "--frame", "len8", "--size", "300");
    expect(&r, 2, NULL, "cannot carry 300-byte payloads");
    RUN(&r, "bench", ep, "--frame", "line,max=100", "--size", "101");
    expect(&r, 2, NULL, "cannot carry");
    RUN(&r, "bench", "tcp://h:70000");
    expect(&r, 2, NULL, "out of range");
    RUN(&r, "bench", "nowhere");
    expect(&r, 2, NULL, "bad endpoint");
    RUN(&r, "bench", ep, "--bogus");
    expect(&r, 2, NULL, "unknown option '--bogus'");
    expect(&r, 2, NULL, hint);
    RUN(&r, "bench", ep, "--conns");
    expect(&r, 2, NULL, "needs a value");
    RUN(&r, "bench", "--help");
    expect(&r, 0, "usage: sockmsg bench", NULL);
    RUN(&r, "help", "bench");
    expect(&r, 0, "--depth", NULL);
    RUN(&r, "--help");
    expect(&r, 0, "bench", NULL);
}

/* A port nobody listens on right now: bound, read back, closed. */
static int
free_port(void)
{
    int fd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 1));
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(fd, &bound));
    close(fd);
    return bound.port;
}

static void
test_unreachable(void **state)
{
    (void)state;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", free_port());
    run r;
    RUN(&r, "bench", ep, "--json", "-t", "0.1");
    expect(&r, 1, NULL, "refused");
    expect(&r, 1, NULL, ep);
    assert_string_equal(r.out, "");

    char where[4200];
    sm_test_mkdtemp(the_dir, sizeof the_dir);
    snprintf(where, sizeof where, "unix:%s/none", the_dir);
    RUN(&r, "bench", where, "-t", "0.1");
    expect(&r, 1, NULL, "connection 1");
}

/* The connections are all made before the load starts, within the timeout:
 * a listener that never accepts takes its backlog's worth, then SYNs go
 * unanswered and connecting times out. */
static void
test_connect_timeout(void **state)
{
    (void)state;
    int lfd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 1));
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(lfd, &bound));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", bound.port);
    run r;
    RUN(&r, "bench", ep, "-c", "20", "--timeout", "300ms", "-t", "0.1");
    close(lfd);
    expect(&r, 1, NULL, "timed out after 300 ms");
    assert_string_equal(r.out, "");
}

static int
setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    sm_test_mkdtemp(run_dir, sizeof run_dir);
    return 0;
}

static int
test_teardown(void **state)
{
    (void)state;
    peer_stop(&the_peer);
    server_stop(&the_server);
    if (the_dir[0]) sm_test_rmdir(the_dir);
    the_dir[0] = '\0';
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sm_test_rmdir(run_dir);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_raw_json, test_teardown),
        cmocka_unit_test_teardown(test_raw_report, test_teardown),
        cmocka_unit_test_teardown(test_raw_unix_sizes, test_teardown),
        cmocka_unit_test_teardown(test_frames_delimited, test_teardown),
        cmocka_unit_test_teardown(test_frames_other, test_teardown),
        cmocka_unit_test_teardown(test_fixed_size_json, test_teardown),
        cmocka_unit_test_teardown(test_large_threads, test_teardown),
        cmocka_unit_test_teardown(test_flipped_byte, test_teardown),
        cmocka_unit_test_teardown(test_flipped_byte_line, test_teardown),
        cmocka_unit_test_teardown(test_reordered, test_teardown),
        cmocka_unit_test_teardown(test_server_hangs_up, test_teardown),
        cmocka_unit_test_teardown(test_silent_server, test_teardown),
        cmocka_unit_test_teardown(test_interrupt, test_teardown),
        cmocka_unit_test_teardown(test_usage_errors, test_teardown),
        cmocka_unit_test_teardown(test_unreachable, test_teardown),
        cmocka_unit_test_teardown(test_connect_timeout, test_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
