/* sockmsg demo: the library at work, in one process, in a few seconds.
 *
 * For each framing and each execution model an echo server (sm_server) is
 * started on a free loopback port, and clients send it messages of random
 * sizes and check every byte of every echo: the payload and the frame around
 * it, in order. The table shows what went through, whether it all came back
 * intact, the rate and the 99th percentile latency.
 *
 * Two kinds of client, both from the public API:
 *   - streams (stream.h): CONNS connections on one event loop in this
 *     thread, each keeping DEPTH messages in flight; every echo that
 *     arrives is checked and sends the next message, until PER_CONN have
 *     come back, then the client shuts down and waits for the server's FIN;
 *   - blocking connections (conn.h) for eof framing, where the end of the
 *     stream ends the message: EOF_CONNS connections one after the other,
 *     each sending one message, shutting down, and reading the echo until
 *     the server closes.
 * The server's own counters must agree with the client's, and every
 * connection must have closed cleanly on both sides. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sockmsg/conn.h>
#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include <sockmsg/loop.h>
#include <sockmsg/server.h>
#include <sockmsg/stream.h>

#include "cli.h"
#include "demo_tls.h"

cli_command_fn cmd_demo;

#define CONNS       4     /* stream clients per run */
#define PER_CONN    10000 /* messages each */
#define DEPTH       32    /* in flight on each */
#define EOF_CONNS   200   /* eof framing: one message per connection */
#define SMALL_MAX   256   /* most payloads are 0..SMALL_MAX bytes, */
#define LARGE_MAX   16384 /* one in 16 is 0..LARGE_MAX, */
#define EOF_MAX     65536 /* and eof payloads 0..EOF_MAX */
#define FIXED_LEN   100
#define TIMEOUT_MS  10000 /* any step of a run; a stuck run fails, never hangs */
#define PROBLEM_MAX 256

_Static_assert(EOF_CONNS <= CONNS * PER_CONN, "one latency array serves every run");

static const char *const framings[] = {
    "fixed:100", "line", "len32be", "ascii:5", "varint", "netstring", "eof",
};

/* One line of the table. */
typedef struct run {
    const char *frame;
    sm_server_model model;
    const demo_tls *tls; /* the TLS rows: both ends' configurations, else NULL */
    sm_frame_spec spec;
    uint64_t messages, bytes; /* echoes received and checked, payload bytes */
    double seconds;
    uint64_t *lat; /* per message, ns */
    size_t nlat;
    bool failed;
    char problem[PROBLEM_MAX]; /* the first thing that went wrong */
} run;

/* A stream client's connection. */
typedef struct client {
    run *r;
    int index;
    uint32_t sent, received;
    int64_t sent_ns[DEPTH]; /* when message n was queued, at n % DEPTH */
    uint8_t *scratch;       /* LARGE_MAX bytes, for building payloads */
} client;

static void fail(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Remember the first failure of a run. */
static void
fail(run *r, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem, sizeof r->problem, fmt, ap);
    va_end(ap);
}

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
mix(uint64_t x)
{
    /* splitmix64: any (connection, number) pair gives unrelated bytes. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The payload of message `seq` of connection `conn`, into out. Sender and
 * checker both call it, so nothing sent needs to be kept. */
static size_t
make_payload(const run *r, int conn, uint32_t seq, uint8_t *out)
{
    uint64_t x = mix(((uint64_t)conn << 32) | seq);
    size_t len;
    if (r->spec.kind == SM_FRAME_FIXED)
        len = (size_t)r->spec.fixed_len;
    else if (r->spec.kind == SM_FRAME_EOF)
        len = (size_t)((x >> 8) % (EOF_MAX + 1));
    else
        len = (size_t)((x >> 8) % ((x & 15) == 0 ? LARGE_MAX + 1 : SMALL_MAX + 1));
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) x = mix(x);
        out[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
    /* A delimited framing cannot carry its delimiter. */
    if (r->spec.kind == SM_FRAME_DELIM)
        for (size_t i = 0; i < len; i++)
            if (out[i] == r->spec.delim[0]) out[i] ^= 0x80;
    return len;
}

/* Check one echo against what was sent: payload and framing bytes. */
static bool
check_echo(run *r, int conn, uint32_t seq, const sm_frame_msg *m, uint8_t *want)
{
    size_t len = make_payload(r, conn, seq, want);
    if (m->len != len) {
        fail(r, "connection %d, message %u: %zu bytes came back, %zu were sent", conn, seq, m->len,
             len);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (m->data[i] != want[i]) {
            fail(r, "connection %d, message %u: byte %zu is 0x%02x, 0x%02x was sent", conn, seq, i,
                 m->data[i], want[i]);
            return false;
        }
    }
    sm_frame_hdr h;
    if (sm_frame_encode(&r->spec, want, len, -1, &h) < 0 ||
        m->frame_len != h.head_len + len + h.tail_len ||
        memcmp(m->frame, h.head, h.head_len) != 0 ||
        memcmp(m->frame + h.head_len + len, h.tail, h.tail_len) != 0) {
        fail(r, "connection %d, message %u: the frame around the payload differs", conn, seq);
        return false;
    }
    return true;
}

static void
record(run *r, int64_t sent_ns, size_t len)
{
    r->lat[r->nlat++] = (uint64_t)(now_ns() - sent_ns);
    r->messages++;
    r->bytes += len;
}

/* ---- stream clients ---------------------------------------------------------------- */

static void
send_next(sm_stream *s, client *c)
{
    size_t len = make_payload(c->r, c->index, c->sent, c->scratch);
    c->sent_ns[c->sent % DEPTH] = now_ns();
    int rc = sm_stream_send(s, c->scratch, len);
    if (rc < 0) {
        fail(c->r, "connection %d, message %u: sending: %s", c->index, c->sent, sm_strerror(rc));
        sm_stream_close(s);
        return;
    }
    c->sent++;
}

static void
on_connect(sm_stream *s)
{
    client *c = sm_stream_get_data(s);
    while (c->sent < DEPTH && c->sent < PER_CONN && !c->r->failed)
        send_next(s, c);
}

static void
on_echo(sm_stream *s, const sm_frame_msg *m)
{
    client *c = sm_stream_get_data(s);
    uint32_t seq = c->received;
    if (seq >= c->sent) {
        fail(c->r, "connection %d: an echo of a message never sent", c->index);
        sm_stream_close(s);
        return;
    }
    if (!check_echo(c->r, c->index, seq, m, c->scratch)) {
        sm_stream_close(s);
        return;
    }
    record(c->r, c->sent_ns[seq % DEPTH], m->len);
    c->received++;
    if (c->sent < PER_CONN)
        send_next(s, c);
    else if (c->received == PER_CONN)
        sm_stream_shutdown(s); /* done: FIN, then the server's FIN closes us */
}

static void
on_close(sm_stream *s, int reason)
{
    client *c = sm_stream_get_data(s);
    if (reason != 0 && reason != SM_ERR_CLOSED) {
        const char *d = sm_stream_error_detail(s);
        fail(c->r, "connection %d: %s%s%s", c->index, sm_strerror(reason), d[0] ? ": " : "", d);
    } else if (c->received != PER_CONN) {
        fail(c->r, "connection %d: closed after %u of %d echoes", c->index, c->received, PER_CONN);
    }
}

static void
run_streams(run *r, const char *endpoint)
{
    const sm_stream_opts opts = {
        .spec = &r->spec,
        .on_connect = on_connect,
        .on_message = on_echo,
        .on_close = on_close,
        .connect_timeout_ms = TIMEOUT_MS,
        .idle_timeout_ms = TIMEOUT_MS,
        .tls = r->tls ? r->tls->client : NULL,
    };
    client *cs = calloc(CONNS, sizeof *cs);
    uint8_t *scratch = malloc(LARGE_MAX);
    sm_loop *loop = NULL;
    int rc = cs && scratch ? sm_loop_new(&loop, NULL) : -ENOMEM;
    if (rc < 0) {
        fail(r, "a client loop: %s", sm_strerror(rc));
        goto out;
    }
    for (int i = 0; i < CONNS; i++) {
        cs[i] = (client){.r = r, .index = i, .scratch = scratch};
        sm_stream *s;
        char why[256] = "";
        rc = sm_stream_dial(&s, loop, endpoint, &opts, &cs[i], why, sizeof why);
        if (rc < 0) {
            fail(r, "connecting to %s: %s", endpoint, why[0] ? why : sm_strerror(rc));
            break;
        }
    }
    /* Returns when every stream has closed. */
    rc = sm_loop_run(loop, SM_RUN_DEFAULT);
    if (rc < 0) fail(r, "client loop: %s", sm_strerror(rc));
out:
    if (loop && sm_loop_free(loop) < 0) fail(r, "client loop still busy");
    free(scratch);
    free(cs);
}

/* ---- eof framing: a connection per message ----------------------------------------- */

static void
run_eof(run *r, const char *endpoint)
{
    uint8_t *want = malloc(EOF_MAX);
    if (!want) {
        fail(r, "%s", sm_strerror(-ENOMEM));
        return;
    }
    for (int i = 0; i < EOF_CONNS && !r->failed; i++) {
        size_t len = make_payload(r, i, 0, want);
        int64_t t0 = now_ns();
        sm_conn *c;
        char why[256] = "";
        int rc = r->tls ? sm_conn_dial_tls(&c, endpoint, r->frame, r->tls->client, TIMEOUT_MS, why,
                                           sizeof why)
                        : sm_conn_dial(&c, endpoint, r->frame, TIMEOUT_MS, why, sizeof why);
        if (rc < 0) {
            fail(r, "connecting to %s: %s", endpoint, why[0] ? why : sm_strerror(rc));
            break;
        }
        sm_conn_set_timeout(c, TIMEOUT_MS);
        sm_frame_msg m;
        ssize_t n = sm_conn_send(c, want, len, SM_CONN_DEFAULT);
        if (n >= 0) n = sm_conn_shutdown(c); /* the end of the message */
        if (n >= 0) n = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (n == 1 && check_echo(r, i, 0, &m, want)) {
            record(r, t0, m.len);
            n = sm_conn_recv(c, &m, SM_CONN_DEFAULT); /* and then nothing */
            if (n != 0) fail(r, "connection %d: more than one message came back", i);
        } else if (n == 0) {
            fail(r, "connection %d: closed without an echo", i);
        } else if (n < 0) {
            fail(r, "connection %d: %s", i, sm_strerror((int)n));
        }
        sm_conn_free(c);
    }
    free(want);
}

/* ---- one run: a server, its clients, the checks ------------------------------------ */

static void
server_log(void *data, sm_log_level level, const char *line)
{
    const cli *c = data;
    if (level <= SM_LOG_WARN)
        fprintf(stderr, "sockmsg: server: %s\n", line);
    else
        cli_log(c, 2, "server: %s", line);
}

static void
run_one(const cli *c, run *r)
{
    sm_server_opts o = {
        .listen = (const char *[]){r->tls ? "tls://127.0.0.1:0" : "tcp://127.0.0.1:0", NULL},
        .tls = r->tls ? r->tls->server : NULL,
        .spec = &r->spec,
        .model = r->model,
        .on_message = sm_server_handler_echo,
        .log = server_log,
        .log_data = (void *)c,
        .log_level = c->verbose >= 2 ? SM_LOG_DEBUG : SM_LOG_WARN,
    };
    sm_server *srv;
    char why[256] = "";
    int rc = sm_server_new(&srv, &o, why, sizeof why);
    if (rc == 0 && (rc = sm_server_start(srv)) < 0) {
        snprintf(why, sizeof why, "%s", sm_strerror(rc));
        sm_server_free(srv);
    }
    if (rc < 0) {
        fail(r, "starting the server: %s", why[0] ? why : sm_strerror(rc));
        return;
    }
    sm_endpoint ep;
    char endpoint[SM_ENDPOINT_HOST_MAX + 64];
    sm_server_endpoint(srv, 0, &ep);
    sm_endpoint_format(&ep, endpoint, sizeof endpoint);
    cli_log(c, 1, "%s, %s model: echo server on %s", r->frame,
            r->model == SM_SERVER_LOOP ? "loop" : "thread", endpoint);

    bool eof = r->spec.kind == SM_FRAME_EOF;
    int64_t t0 = now_ns();
    if (eof)
        run_eof(r, endpoint);
    else
        run_streams(r, endpoint);
    r->seconds = (double)(now_ns() - t0) / 1e9;

    /* Everything has closed on the client side: the server stops at once. */
    sm_server_stop(srv);
    sm_server_wait(srv);
    sm_server_stats st;
    sm_server_get_stats(srv, &st);
    sm_server_free(srv);
    uint64_t want_msgs = eof ? EOF_CONNS : (uint64_t)CONNS * PER_CONN;
    uint64_t conns = eof ? EOF_CONNS : CONNS;
    if (r->messages != want_msgs)
        fail(r, "%llu echoes checked, %llu expected", (unsigned long long)r->messages,
             (unsigned long long)want_msgs);
    else if (st.msgs_in != want_msgs || st.msgs_out != want_msgs || st.bytes_in != r->bytes ||
             st.bytes_out != r->bytes)
        fail(r, "the server counted %llu messages in and %llu out, %llu bytes in and %llu out",
             (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out,
             (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
    else if (st.closes[SM_CLOSE_CLEAN] != conns)
        fail(r, "the server saw %llu of %llu connections close cleanly",
             (unsigned long long)st.closes[SM_CLOSE_CLEAN], (unsigned long long)conns);
}

/* ---- the table --------------------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *
format_latency(uint64_t ns, char *out, size_t cap)
{
    if (ns < 1000000)
        snprintf(out, cap, "%.0f us", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(out, cap, "%.2f ms", (double)ns / 1e6);
    else
        snprintf(out, cap, "%.2f s", (double)ns / 1e9);
    return out;
}

static void
print_row(run *r)
{
    char p99[32] = "-";
    if (r->nlat) {
        qsort(r->lat, r->nlat, sizeof r->lat[0], cmp_u64);
        format_latency(r->lat[(r->nlat * 99 + 99) / 100 - 1], p99, sizeof p99);
    }
    double rate = r->seconds > 0 ? (double)r->messages / r->seconds : 0;
    char label[32];
    snprintf(label, sizeof label, "%s%s", r->tls ? "tls " : "", r->frame);
    printf("%-12s %-7s %9llu %11llu  %-8s %9.0f  %11s\n", label,
           r->model == SM_SERVER_LOOP ? "loop" : "thread", (unsigned long long)r->messages,
           (unsigned long long)r->bytes, r->failed ? "NO" : "yes", rate, p99);
    if (r->failed) printf("    %s\n", r->problem);
    fflush(stdout);
}

static void
help(void)
{
    printf("usage: sockmsg demo [options]\n"
           "\n"
           "Run the library in one process: for each framing (%s, line, len32be,\n"
           "ascii:5, varint, netstring, eof) and each server model (loop, thread),\n"
           "start an echo server on a free loopback port, send it messages of random\n"
           "sizes from %d pipelining connections (eof: %d connections, one message each)\n"
           "and check every byte of every echo. Then the same over TLS (len32be, line,\n"
           "eof; a throwaway self-signed certificate the clients verify). Prints a\n"
           "table: messages, payload bytes, verified, messages per second, 99th\n"
           "percentile latency.\n"
           "\n"
           "options:\n"
           "  -v, --verbose   say where each server listens (-vv: the servers' logs)\n"
           "  -h, --help      show this help\n"
           "\n"
           "exit status: 0 if every echo was right, 1 if not, 2 for usage errors.\n",
           framings[0], CONNS, EOF_CONNS);
}

int
cmd_demo(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    cli c;
    cli_init(&c, "demo");
    int ch;
    while ((ch = cli_getopt(&c, argc, argv, CLI_COMMON_SHORTOPTS, longopts)) != -1) {
        if (ch == 'h') {
            help();
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (optind < argc) return cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);

    size_t nframings = sizeof framings / sizeof framings[0];
    uint64_t *lat = malloc((size_t)CONNS * PER_CONN * sizeof *lat);
    if (!lat) return cli_fail(&c, "%s", sm_strerror(-ENOMEM));
    printf("sockmsg demo: echo servers (sm_server) on loopback, and clients that check every\n"
           "byte of every echo. Stream framings: %d connections x %d messages, %d in flight\n"
           "on each; eof: %d connections, one message each. Payloads of random sizes.\n\n",
           CONNS, PER_CONN, DEPTH, EOF_CONNS);
    printf("%-12s %-7s %9s %11s  %-8s %9s  %11s\n", "framing", "model", "messages", "bytes",
           "verified", "msgs/s", "p99 latency");
    fflush(stdout);
    int failed = 0, total = 0;
    uint64_t messages = 0;
    for (size_t f = 0; f < nframings; f++) {
        for (int m = 0; m < 2; m++) {
            run r = {
                .frame = framings[f], .model = m ? SM_SERVER_THREAD : SM_SERVER_LOOP, .lat = lat};
            char why[256];
            if (sm_frame_spec_parse(&r.spec, r.frame, why, sizeof why) < 0)
                fail(&r, "%s", why); /* cannot happen: the specs are ours */
            else
                run_one(&c, &r);
            print_row(&r);
            total++;
            failed += r.failed;
            messages += r.messages;
        }
    }
    /* The TLS rows: the same checks through tls:// listeners and clients. */
    static const char *const tls_framings[] = {"len32be", "line", "eof"};
    demo_tls tls;
    char twhy[256];
    if (demo_tls_make(&tls, twhy, sizeof twhy) < 0) {
        printf("tls rows: not run: %s\n", twhy);
        fflush(stdout);
    } else {
        for (size_t f = 0; f < sizeof tls_framings / sizeof tls_framings[0]; f++) {
            for (int m = 0; m < 2; m++) {
                run r = {.frame = tls_framings[f],
                         .model = m ? SM_SERVER_THREAD : SM_SERVER_LOOP,
                         .tls = &tls,
                         .lat = lat};
                char why[256];
                if (sm_frame_spec_parse(&r.spec, r.frame, why, sizeof why) < 0)
                    fail(&r, "%s", why);
                else
                    run_one(&c, &r);
                print_row(&r);
                total++;
                failed += r.failed;
                messages += r.messages;
            }
        }
        demo_tls_free(&tls);
    }
    free(lat);
    if (failed) {
        printf("\n%d of %d runs FAILED verification.\n", failed, total);
        fflush(stdout);
        return CLI_EXIT_FAIL;
    }
    printf("\nAll %d runs verified: %llu echoes, every byte as sent.\n", total,
           (unsigned long long)messages);
    fflush(stdout);
    return CLI_EXIT_OK;
}
