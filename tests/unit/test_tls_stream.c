/* sm_stream over TLS (transport_tls.c), on every loop backend: sockmsg to
 * sockmsg with dialed tls:// streams, Python's ssl module as client
 * (1-byte records, 100 kB messages) and as server (close_notify against
 * truncation), openssl s_server for verification errors, handshake
 * deadlines both ways, and a reader that stops (backpressure through the
 * cipher), and every framing (fixed, line/crlf/nul, delim, lenN with offset
 * and adjust, ascii, netstring, varint, type:, eof) from a TLS stream, a TLS
 * sm_conn and Python writing one byte per record. Certificates come from
 * tests/support/tls_certs.sh. */
#include "tls_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const sm_frame_spec len32 = {.kind = SM_FRAME_LENGTH, .len_width = 4};

/* ---- a world: one loop, a TLS listener, counters ------------------------ */

typedef struct world {
    sm_loop *loop;
    sm_io lio;
    int lfd;
    uint16_t port;
    sm_tls_config *scfg, *ccfg;
    sm_stream_opts sopts, copts;
    sm_stream *client;
    int accepted, srv_closed, cli_closed;
    int srv_reason, cli_reason;
    char srv_detail[256], cli_detail[256];
    size_t srv_msgs, cli_msgs, cli_bytes;
    bool cli_eof;
    sm_stream *srv[8]; /* the server streams still open */
} world;

static world *W;

static void
srv_msg(sm_stream *s, const sm_frame_msg *m)
{
    W->srv_msgs++;
    SM_ASSERT_OK(sm_stream_send_frame(s, m)); /* echo, zero-copy when it can */
}

static void
srv_close(sm_stream *s, int reason)
{
    W->srv_closed++;
    W->srv_reason = reason;
    for (int i = 0; i < 8; i++)
        if (W->srv[i] == s) W->srv[i] = NULL;
    snprintf(W->srv_detail, sizeof W->srv_detail, "%s", sm_stream_error_detail(s));
}

/* When set, the messages the client must receive, in order. */
typedef struct want_msg {
    int type;
    size_t len;
} want_msg;
static const want_msg *want_msgs;
static size_t want_n;
static size_t want_bad;
static const uint8_t *payload_of(size_t len);

static void
cli_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)s;
    if (want_msgs) {
        size_t i = W->cli_msgs;
        if (i >= want_n || m->len != want_msgs[i].len ||
            (want_msgs[i].type >= 0 && m->type != want_msgs[i].type) ||
            (m->len && memcmp(m->data, payload_of(m->len), m->len)))
            want_bad++;
    }
    W->cli_msgs++;
    W->cli_bytes += m->len;
}

static void
cli_eof(sm_stream *s)
{
    (void)s;
    W->cli_eof = true;
}

static void
cli_close(sm_stream *s, int reason)
{
    W->cli_closed++;
    W->cli_reason = reason;
    snprintf(W->cli_detail, sizeof W->cli_detail, "%s", sm_stream_error_detail(s));
    if (s == W->client) W->client = NULL;
}

static void
accept_cb(sm_io *w, unsigned events)
{
    (void)events;
    int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    sm_stream *s;
    char why[256];
    SM_ASSERT_OK(
        sm_stream_new_tls(&s, W->loop, fd, &W->sopts, NULL, W->scfg, NULL, why, sizeof why));
    W->accepted++;
    for (int i = 0; i < 8; i++)
        if (!W->srv[i]) {
            W->srv[i] = s;
            break;
        }
}

static void
world_init(world *w)
{
    memset(w, 0, sizeof *w);
    W = w;
    SM_ASSERT_OK(sm_loop_new(&w->loop, NULL));
    w->scfg = sm_test_tls_server("leaf.pem", "leaf.key");
    w->ccfg = sm_test_tls_client(true);
    w->sopts = (sm_stream_opts){.spec = &len32, .on_message = srv_msg, .on_close = srv_close};
    w->copts = (sm_stream_opts){.spec = &len32,
                                .on_message = cli_msg,
                                .on_eof = cli_eof,
                                .on_close = cli_close,
                                .tls = w->ccfg};
    sm_endpoint ep, bound;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    w->lfd = SM_ASSERT_OK(sm_listen_endpoint(&ep, NULL, 16, &bound, NULL, 0));
    w->port = bound.port;
    sm_io_init(w->loop, &w->lio, w->lfd, accept_cb);
}

static void
world_listen(world *w)
{
    SM_ASSERT_OK(sm_io_start(&w->lio, SM_READ));
}

static void
guard_cb(sm_timer *t)
{
    (void)t;
}

typedef bool (*pred)(world *w);

static bool
run_until(world *w, pred p, int ms)
{
    int64_t end = sm_test_now_ms() + ms;
    sm_timer guard;
    sm_timer_init(w->loop, &guard, guard_cb);
    SM_ASSERT_OK(sm_timer_start(&guard, 50, 50));
    while (!p(w) && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(w->loop, SM_RUN_ONCE));
    sm_timer_stop(&guard);
    return p(w);
}

static void
world_free(world *w)
{
    if (w->client) sm_stream_close(w->client);
    for (int i = 0; i < 8; i++)
        if (w->srv[i]) sm_stream_close(w->srv[i]);
    for (int i = 0; i < 100 && sm_loop_run(w->loop, SM_RUN_NOWAIT) > 0; i++) {
    }
    sm_io_close(&w->lio, NULL);
    for (int i = 0; i < 10; i++)
        sm_loop_run(w->loop, SM_RUN_NOWAIT);
    close(w->lfd);
    SM_ASSERT_OK(sm_loop_free(w->loop));
    sm_tls_config_free(w->scfg);
    sm_tls_config_free(w->ccfg);
}

static void
dial(world *w, const char *host, uint16_t port)
{
    char ep[64], why[256];
    snprintf(ep, sizeof ep, "tls://%s:%u", host, (unsigned)port);
    SM_ASSERT_OK(sm_stream_dial(&w->client, w->loop, ep, &w->copts, NULL, why, sizeof why));
}

/* ---- sockmsg to sockmsg ------------------------------------------------ */

static bool
all_back(world *w)
{
    return w->cli_msgs >= 3000 || w->cli_closed;
}

static bool
both_closed(world *w)
{
    return w->cli_closed && w->srv_closed;
}

static void
test_echo_batches(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    world_listen(&w);
    dial(&w, "localhost", w.port);
    /* Queued before the handshake: written once it is done. */
    static uint8_t big[70000];
    memset(big, 'x', sizeof big);
    size_t want = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = i % 100 == 0 ? sizeof big : (size_t)(i % 40);
        want += n;
        assert_true(sm_stream_send(w.client, big, n) >= 0);
    }
    assert_true(run_until(&w, all_back, 30000));
    assert_int_equal(w.cli_closed, 0);
    assert_int_equal(w.cli_msgs, 3000);
    assert_int_equal(w.cli_bytes, want);
    /* close_notify both ways: the server sees a clean EOF and closes with 0
     * after its queue; so does the client. */
    SM_ASSERT_OK(sm_stream_shutdown(w.client));
    assert_true(run_until(&w, both_closed, 10000));
    if (w.srv_reason != 0) fail_msg("server: %s %s", sm_err_name(w.srv_reason), w.srv_detail);
    if (w.cli_reason != 0) fail_msg("client: %s %s", sm_err_name(w.cli_reason), w.cli_detail);
    assert_true(w.cli_eof);
    world_free(&w);
}

static bool
cli_closed(world *w)
{
    return w->cli_closed > 0;
}

static bool
srv_closed(world *w)
{
    return w->srv_closed > 0;
}

static bool
srv_all_closed(world *w)
{
    return w->accepted == w->srv_closed;
}

static void
test_verify_errors_and_deadlines(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    world_listen(&w);
    /* The name checked is not the certificate's. */
    sm_tls_config *other;
    other = sm_test_tls_client(true);
    SM_ASSERT_OK(sm_tls_config_set_server_name(other, "db.example"));
    w.copts.tls = other;
    dial(&w, "localhost", w.port);
    (void)sm_stream_send(w.client, "x", 1);
    assert_true(run_until(&w, cli_closed, 10000));
    SM_ASSERT_ERR(w.cli_reason, SM_ERR_TLS_HOSTNAME);
    assert_non_null(strstr(w.cli_detail, "host name mismatch: cert is for localhost"));
    sm_tls_config_free(other);
    /* Trusting nothing of ours: unknown CA. */
    sm_tls_config *sys;
    sys = sm_test_tls_client(false);
    w.copts.tls = sys;
    w.cli_closed = 0;
    dial(&w, "localhost", w.port);
    assert_true(run_until(&w, cli_closed, 10000));
    SM_ASSERT_ERR(w.cli_reason, SM_ERR_TLS_UNKNOWN_CA);
    assert_non_null(strstr(w.cli_detail, "unknown CA"));
    assert_true(run_until(&w, srv_all_closed, 10000)); /* our alerts end their handshakes */
    assert_true(w.srv_reason < 0);
    sm_tls_config_free(sys);
    w.copts.tls = w.ccfg;

    /* A client that says nothing: the server's handshake deadline. */
    SM_ASSERT_OK(sm_tls_config_set_handshake_timeout(w.scfg, 150));
    sm_endpoint ep;
    SM_ASSERT_OK(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0));
    ep.port = w.port;
    int silent = SM_ASSERT_OK(sm_dial_endpoint(&ep, NULL, 5000, NULL, 0));
    w.srv_closed = 0;
    assert_true(run_until(&w, srv_closed, 10000));
    SM_ASSERT_ERR(w.srv_reason, -ETIMEDOUT);
    assert_non_null(strstr(w.srv_detail, "handshake timed out"));
    close(silent);
    /* A server that says nothing: the client's. */
    sm_io_stop(&w.lio);
    SM_ASSERT_OK(sm_tls_config_set_handshake_timeout(w.ccfg, 150));
    w.cli_closed = 0;
    dial(&w, "localhost", w.port);
    assert_true(run_until(&w, cli_closed, 10000));
    SM_ASSERT_ERR(w.cli_reason, -ETIMEDOUT);
    world_free(&w);
}

/* ---- Python's ssl module ------------------------------------------------ */

static void
test_python_client(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    world_listen(&w);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)w.port);
    char *argv[] = {SM_PYTHON3, SM_TLS_PEER, "client", port, (char *)sm_test_cert("ca.pem"),
                    "30",       NULL};
    int out;
    int pid = sm_test_spawn(argv, &out, true);
    assert_true(run_until(&w, srv_closed, 30000));
    char text[512];
    sm_test_read_all(out, text, sizeof text, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    assert_string_equal(text, "ok\n");
    if (w.srv_reason != 0) fail_msg("server: %s %s", sm_err_name(w.srv_reason), w.srv_detail);
    assert_int_equal(w.srv_msgs, 30);
    world_free(&w);
}

static void
python_session(const char *last, int want, const char *text)
{
    world w;
    world_init(&w);
    char *argv[] = {SM_PYTHON3,
                    SM_TLS_PEER,
                    "server",
                    (char *)sm_test_cert("leaf.pem"),
                    (char *)sm_test_cert("leaf.key"),
                    NULL};
    int out;
    int pid = sm_test_spawn(argv, &out, false);
    char line[64];
    assert_true(sm_test_read_line(out, line, sizeof line, 10000) > 0);
    dial(&w, "localhost", (uint16_t)atoi(line));
    assert_true(sm_stream_send(w.client, "echo", 4) >= 0);
    assert_true(sm_stream_send(w.client, last, strlen(last)) >= 0);
    assert_true(run_until(&w, cli_closed, 15000));
    if (w.cli_reason != want)
        fail_msg("%s: %s (%s), want %s", last, sm_err_name(w.cli_reason), w.cli_detail,
                 sm_err_name(want));
    if (text) assert_non_null(strstr(w.cli_detail, text));
    assert_int_equal(w.cli_msgs, 1); /* the echo */
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    close(out);
    world_free(&w);
}

static void
test_python_close_notify_vs_truncation(void **state)
{
    (void)state;
    python_session("bye", 0, NULL);
    python_session("trunc", SM_ERR_TRUNCATED, "in the middle of a message");
    python_session("eof", SM_ERR_TLS_EOF, "at a message boundary");
}

/* ---- reconnecting ------------------------------------------------------------ */

static int connects;

static void
count_connect(sm_stream *s)
{
    (void)s;
    connects++;
}

/* The first message ends its connection; later ones are echoed. */
static void
close_first(sm_stream *s, const sm_frame_msg *m)
{
    if (++W->srv_msgs == 1) {
        sm_stream_close(s);
        return;
    }
    SM_ASSERT_OK(sm_stream_send_frame(s, m));
}

static bool
reconnected(world *w)
{
    (void)w;
    return connects >= 2;
}

static bool
one_back(world *w)
{
    return w->cli_msgs >= 1 || w->cli_closed;
}

static void
test_reconnect(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.sopts.on_message = close_first;
    w.copts.reconnect = true;
    w.copts.reconnect_min_ms = 10;
    w.copts.on_connect = count_connect;
    connects = 0;
    world_listen(&w);
    dial(&w, "localhost", w.port);
    assert_true(sm_stream_send(w.client, "first", 5) >= 0);
    /* The server closes the first connection; a new TLS session follows
     * (resumed: the client configuration keeps the ticket). */
    assert_true(run_until(&w, reconnected, 10000));
    assert_true(sm_stream_send(w.client, "second", 6) >= 0);
    assert_true(run_until(&w, one_back, 10000));
    assert_int_equal(w.cli_closed, 0);
    assert_int_equal(w.cli_msgs, 1);
    world_free(&w);
}

/* ---- a reader that stops -------------------------------------------------- */

static sm_stream *srv_stream;

static void
flood_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)m;
    srv_stream = s;
    static uint8_t chunk[60000];
    for (int i = 0; i < 200; i++) /* 12 MB of replies to one request */
        if (sm_stream_send(s, chunk, sizeof chunk) < 0) break;
}

static bool
got_all(world *w)
{
    return w->cli_msgs >= 200 || w->cli_closed;
}

static bool
queue_stuck(world *w)
{
    (void)w;
    return srv_stream && sm_stream_queued(srv_stream) > 0;
}

static void
test_backpressure_through_cipher(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    w.sopts.on_message = flood_msg;
    w.sopts.max_queued = (size_t)64 << 20;
    w.sopts.high_water = (size_t)64 << 20;
    srv_stream = NULL;
    world_listen(&w);
    dial(&w, "localhost", w.port);
    assert_true(sm_stream_send(w.client, "go", 2) >= 0);
    /* Read a little, then stop reading: the server's queue backs up
     * behind the ciphertext the kernel does not take. */
    assert_true(run_until(&w, queue_stuck, 10000));
    SM_ASSERT_OK(sm_stream_read_stop(w.client));
    for (int i = 0; i < 20; i++)
        sm_loop_run(w.loop, SM_RUN_NOWAIT);
    assert_true(sm_stream_queued(srv_stream) > 0);
    size_t before = w.cli_msgs;
    assert_true(before < 200);
    SM_ASSERT_OK(sm_stream_read_start(w.client));
    assert_true(run_until(&w, got_all, 30000));
    assert_int_equal(w.cli_msgs, 200);
    assert_int_equal(w.cli_bytes, (size_t)200 * 60000);
    world_free(&w);
}

/* ---- every framing ---------------------------------------------------------- */

/* Payloads: lowercase letters (no delimiter of any spec below). */
static const uint8_t *
payload_of(size_t len)
{
    static uint8_t p[20000];
    static bool made;
    if (!made) {
        for (size_t i = 0; i < sizeof p; i++)
            p[i] = (uint8_t)('a' + i * 7 % 26);
        made = true;
    }
    assert_true(len <= sizeof p);
    return p;
}

static const char *framings[] = {
    "fixed:5",
    "line",
    "crlf",
    "nul",
    "delim:END",
    "len8",
    "len16be,adjust=2,offset=1",
    "len32le,offset=3,adjust=4",
    "len64be",
    "ascii:6",
    "netstring",
    "varint",
    "type:A=4;B=(len16be);0x03=(line)",
    "eof",
};

/* The messages sent with spec (kind and, for type:, each entry's codec
 * decide what fits); returns how many. */
static size_t
framing_msgs(const sm_frame_spec *sp, want_msg *out)
{
    static const size_t sizes[] = {0, 1, 4, 17, 300, 20000};
    size_t n = 0;
    if (sp->kind == SM_FRAME_FIXED) {
        for (int i = 0; i < 6; i++)
            out[n++] = (want_msg){-1, sp->fixed_len};
    } else if (sp->kind == SM_FRAME_EOF) {
        out[n++] = (want_msg){-1, 20000}; /* the whole stream, one message */
    } else if (sp->kind == SM_FRAME_TYPE) {
        for (size_t i = 0; i < 6; i++) {
            out[n++] = (want_msg){'A', 4};
            out[n++] = (want_msg){'B', sizes[i]};
            out[n++] = (want_msg){0x03, sizes[i]};
        }
    } else {
        for (size_t i = 0; i < 6; i++)
            if (sp->kind != SM_FRAME_LENGTH || sp->len_width != 1 || sizes[i] < 256)
                out[n++] = (want_msg){-1, sizes[i]};
    }
    return n;
}

static bool
framing_done(world *w)
{
    return w->cli_msgs >= want_n || w->cli_closed;
}

typedef struct conn_run {
    const char *spec, *ep;
    sm_tls_config *cfg;
    int rc; /* 0, or the first failure */
    char what[320];
} conn_run;

/* A blocking sm_conn over TLS: every message out and its echo back, then
 * half-close and the server's close_notify. On its own thread: the loop
 * that serves it runs on the test's. */
static void
conn_main(conn_run *r)
{
    sm_conn *c;
    char why[256];
    r->rc = sm_conn_dial_tls(&c, r->ep, r->spec, r->cfg, 10000, why, sizeof why);
    if (r->rc < 0) {
        snprintf(r->what, sizeof r->what, "dial: %s", why);
        return;
    }
    bool eof = want_msgs[0].len == 20000 && want_n == 1;
    for (size_t i = 0; i < want_n && r->rc >= 0; i++) {
        const want_msg *m = &want_msgs[i];
        ssize_t rc = m->type >= 0 ? sm_conn_send_type(c, m->type, payload_of(m->len), m->len, 10000)
                                  : sm_conn_send(c, payload_of(m->len), m->len, 10000);
        if (rc < 0) {
            r->rc = (int)rc;
            snprintf(r->what, sizeof r->what, "send %zu: %s", i, sm_conn_error_detail(c));
            break;
        }
        if (eof && sm_conn_shutdown(c) < 0) {
            r->rc = -EIO;
            snprintf(r->what, sizeof r->what, "shutdown: %s", sm_conn_error_detail(c));
            break;
        }
        sm_frame_msg back;
        int got = sm_conn_recv(c, &back, 10000);
        if (got != 1 || back.len != m->len || (m->type >= 0 && back.type != m->type) ||
            (back.len && memcmp(back.data, payload_of(back.len), back.len))) {
            r->rc = got < 0 ? got : -EPROTO;
            snprintf(r->what, sizeof r->what, "echo %zu: recv %d len %zu: %s", i, got,
                     got == 1 ? back.len : 0, sm_conn_error_detail(c));
        }
    }
    if (r->rc >= 0) {
        if (!eof) r->rc = sm_conn_shutdown(c);
        sm_frame_msg end;
        if (r->rc >= 0) r->rc = sm_conn_recv(c, &end, 10000);
        if (r->rc != 0) snprintf(r->what, sizeof r->what, "end: %s", sm_conn_error_detail(c));
    }
    sm_conn_free(c);
}

static bool conn_done_flag;

static bool
conn_done(world *w)
{
    (void)w;
    return __atomic_load_n(&conn_done_flag, __ATOMIC_ACQUIRE);
}

static void *
conn_thread(void *arg)
{
    conn_main(arg);
    __atomic_store_n(&conn_done_flag, true, __ATOMIC_RELEASE);
    return NULL;
}

/* The frames of all messages, as sm_frame_encode makes them. */
static uint8_t *
framing_stream(const sm_frame_spec *sp, const want_msg *msgs, size_t *len)
{
    uint8_t *stream = malloc(want_n * 20100);
    assert_non_null(stream);
    size_t n = 0;
    for (size_t i = 0; i < want_n; i++) {
        sm_frame_hdr h;
        SM_ASSERT_OK(sm_frame_encode(sp, payload_of(msgs[i].len), msgs[i].len, msgs[i].type, &h));
        memcpy(stream + n, h.head, h.head_len);
        n += h.head_len;
        memcpy(stream + n, payload_of(msgs[i].len), msgs[i].len);
        n += msgs[i].len;
        memcpy(stream + n, h.tail, h.tail_len);
        n += h.tail_len;
    }
    *len = n;
    return stream;
}

/* One framing through a sockmsg TLS echo server (sm_stream_send_frame:
 * the frames go back as they came): from a dialed TLS stream, from a
 * blocking TLS sm_conn, and from Python writing one byte per record with
 * records split across reads. */
static void
one_framing(const char *spec_str)
{
    sm_frame_spec sp;
    char why[256];
    SM_ASSERT_OK(sm_frame_spec_parse(&sp, spec_str, why, sizeof why));
    want_msg msgs[24];
    want_n = framing_msgs(&sp, msgs);
    want_msgs = msgs;
    want_bad = 0;

    world w;
    world_init(&w);
    w.sopts.spec = &sp;
    w.copts.spec = &sp;
    world_listen(&w);

    /* 1. A sockmsg TLS stream. */
    dial(&w, "localhost", w.port);
    for (size_t i = 0; i < want_n; i++) {
        const want_msg *m = &msgs[i];
        int rc = m->type >= 0 ? sm_stream_send_type(w.client, m->type, payload_of(m->len), m->len)
                              : sm_stream_send(w.client, payload_of(m->len), m->len);
        if (rc < 0) fail_msg("%s: send %zu: %s", spec_str, i, sm_err_name(rc));
    }
    if (sp.kind == SM_FRAME_EOF) SM_ASSERT_OK(sm_stream_shutdown(w.client));
    assert_true(run_until(&w, framing_done, 20000));
    if (w.cli_msgs != want_n || want_bad)
        fail_msg("%s: stream: %zu of %zu back, %zu wrong, closed %d (%s)", spec_str, w.cli_msgs,
                 want_n, want_bad, w.cli_closed, w.cli_detail);
    if (sp.kind != SM_FRAME_EOF) SM_ASSERT_OK(sm_stream_shutdown(w.client));
    assert_true(run_until(&w, both_closed, 10000));
    if (w.srv_reason != 0 || w.cli_reason != 0)
        fail_msg("%s: closes: server %s (%s), client %s (%s)", spec_str, sm_err_name(w.srv_reason),
                 w.srv_detail, sm_err_name(w.cli_reason), w.cli_detail);

    /* 2. A blocking sm_conn. */
    char ep[64];
    snprintf(ep, sizeof ep, "tls://localhost:%u", (unsigned)w.port);
    conn_run r = {.spec = spec_str, .ep = ep, .cfg = w.ccfg};
    conn_done_flag = false;
    w.srv_closed = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, conn_thread, &r), 0);
    assert_true(run_until(&w, conn_done, 30000));
    pthread_join(th, NULL);
    if (r.rc != 0) fail_msg("%s: sm_conn: %s: %s", spec_str, sm_err_name(r.rc), r.what);
    assert_true(run_until(&w, srv_closed, 10000));

    /* 3. Python: the encoded frames one byte per record. eof framing has
     * one message, the stream itself, which needs a half-close the
     * bytes peer does not make. */
    if (sp.kind != SM_FRAME_EOF) {
        size_t len;
        uint8_t *stream = framing_stream(&sp, msgs, &len);
        char port[16];
        snprintf(port, sizeof port, "%u", (unsigned)w.port);
        char *argv[] = {SM_PYTHON3, SM_TLS_PEER, "bytes", port, (char *)sm_test_cert("ca.pem"),
                        NULL};
        int in, out;
        int pid = sm_test_spawn2(argv, &in, &out, NULL);
        assert_int_equal(write(in, stream, len), (ssize_t)len);
        close(in);
        free(stream);
        w.srv_closed = 0;
        w.srv_msgs = 0;
        assert_true(run_until(&w, srv_closed, 30000));
        char text[512];
        sm_test_read_all(out, text, sizeof text, 10000);
        close(out);
        int st = sm_test_wait(pid, 10000);
        if (st != 0 || strcmp(text, "ok\n")) fail_msg("%s: python (%d): %s", spec_str, st, text);
        assert_int_equal(w.srv_msgs, want_n);
    }
    world_free(&w);
    want_msgs = NULL;
}

static void
test_every_framing(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof framings / sizeof framings[0]; k++)
        one_framing(framings[k]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_batches),
        cmocka_unit_test(test_verify_errors_and_deadlines),
        cmocka_unit_test(test_python_client),
        cmocka_unit_test(test_python_close_notify_vs_truncation),
        cmocka_unit_test(test_backpressure_through_cipher),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_every_framing),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
