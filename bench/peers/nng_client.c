/* nng_client: the load generator for nng_echo, in nng's own protocol (the
 * numbers are "own protocol", not len32be: SP frames a message with a 64-bit
 * length, and a request carries a 4-byte request id).
 *
 *   nng_client ENDPOINT [--conns C] [--depth D] [--size S] [--duration SEC]
 *
 * ENDPOINT is tcp://HOST:PORT or unix:/path (nng's ipc://). Each of the C
 * connections is its own req0 socket with one dialer; on it, D contexts each
 * keep one request in flight (nng's way to pipeline requests over one
 * connection; D = 1 with C = 1 is the ping-pong). Every context is an aio
 * send-then-receive loop whose callbacks run on nng's task threads; the reply
 * message is reused for the next request. A request is S bytes: the context
 * number and its sequence number (8 bytes) and filler; each reply must have
 * the right size and the right number. Each context does one untimed round
 * trip first, so the window starts connected. Latency is per message, from
 * its send to its reply. After the window no new requests go out; replies
 * still due after 5 s count as errors. Retries are off (a slow reply is not
 * sent twice). Prints one JSON object with sockmsg bench's keys and
 * "own_protocol": true. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "own_report.h"

#define DRAIN_NS 5000000000LL

struct work {
    nng_aio *aio;
    nng_ctx ctx;
    uint64_t id, seq; /* the next request's number is id << 40 | seq */
    int64_t ts;
    int sending;
};

static struct own_args args;
static struct own_hist hist;
static _Atomic uint64_t messages, errors;
static _Atomic int64_t t_end;
static _Atomic int active, warm;

static void
send_next(struct work *w, nng_msg *m, int64_t now)
{
    uint64_t tag = w->id << 40 | w->seq;
    memcpy(nng_msg_body(m), &tag, 8);
    w->ts = now;
    w->sending = 1;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
}

static void
on_done(void *arg)
{
    struct work *w = arg;
    int rv = nng_aio_result(w->aio);
    if (w->sending) {
        w->sending = 0;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(w->aio));
            atomic_fetch_add(&errors, 1);
            atomic_fetch_sub(&active, 1);
            return;
        }
        nng_ctx_recv(w->ctx, w->aio);
        return;
    }
    if (rv != 0) {
        atomic_fetch_add(&errors, 1);
        atomic_fetch_sub(&active, 1);
        return;
    }
    int64_t now = own_now_ns(), end = atomic_load_explicit(&t_end, memory_order_relaxed);
    nng_msg *m = nng_aio_get_msg(w->aio);
    uint64_t tag = UINT64_MAX;
    if (nng_msg_len(m) == args.size) memcpy(&tag, nng_msg_body(m), 8);
    if (tag != (w->id << 40 | w->seq)) atomic_fetch_add(&errors, 1);
    w->seq++;
    if (w->seq == 1) {
        /* The untimed first round trip: wait for the window to open. */
        atomic_fetch_add(&warm, 1);
        nng_msg_free(m);
        return;
    }
    if (now < end) {
        atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed);
        own_record(&hist, (uint64_t)(now - w->ts));
        send_next(w, m, now);
        return;
    }
    nng_msg_free(m);
    atomic_fetch_sub(&active, 1);
}

static int
to_nng(const char *where, char *out, size_t cap)
{
    if (!strncmp(where, "unix:", 5))
        snprintf(out, cap, "ipc://%s", where + 5);
    else if (!strncmp(where, "tcp://", 6) || !strncmp(where, "ipc://", 6))
        snprintf(out, cap, "%s", where);
    else
        return -1;
    return 0;
}

static int
new_msg(nng_msg **m)
{
    int rv = nng_msg_alloc(m, args.size);
    if (rv != 0) return rv;
    uint8_t *p = nng_msg_body(*m);
    for (size_t i = 0; i < args.size; i++)
        p[i] = (uint8_t)(i * 131 + 7);
    return 0;
}

/* The client's sockets and contexts live until it exits (file scope: an
 * early error return leaves them to the exit, not leaked). */
static nng_socket *socks;
static struct work *works;

int
main(int argc, char **argv)
{
    if (own_parse_args(&args, argc, argv, "nng_client") < 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    char url[300];
    if (to_nng(args.endpoint, url, sizeof url) < 0) {
        fprintf(stderr, "nng_client: endpoint must be tcp://HOST:PORT or unix:/path\n");
        return 2;
    }
    int nwork = args.conns * args.depth;
    socks = calloc((size_t)args.conns, sizeof *socks);
    works = calloc((size_t)nwork, sizeof *works);
    if (!socks || !works) {
        free(socks);
        free(works);
        return 1;
    }
    int rv;
    for (int i = 0; i < args.conns; i++) {
        nng_dialer d;
        if ((rv = nng_req0_open(&socks[i])) != 0 ||
            (rv = nng_socket_set_ms(socks[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) !=
                0 ||
            (rv = nng_socket_set_size(socks[i], NNG_OPT_RECVMAXSZ, args.size + 64)) != 0 ||
            (rv = nng_dialer_create(&d, socks[i], url)) != 0) {
            fprintf(stderr, "nng_client: %s: %s\n", url, nng_strerror(rv));
            return 1;
        }
        if (strncmp(url, "ipc://", 6) != 0) nng_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
        if ((rv = nng_dialer_start(d, 0)) != 0) {
            fprintf(stderr, "nng_client: %s: %s\n", url, nng_strerror(rv));
            return 1;
        }
    }
    for (int i = 0; i < nwork; i++) {
        struct work *w = &works[i];
        w->id = (uint64_t)i;
        if ((rv = nng_aio_alloc(&w->aio, on_done, w)) != 0 ||
            (rv = nng_ctx_open(&w->ctx, socks[i / args.depth])) != 0) {
            fprintf(stderr, "nng_client: %s\n", nng_strerror(rv));
            return 1;
        }
    }

    /* One untimed round trip per context: the window starts connected. */
    atomic_store(&t_end, INT64_MAX);
    atomic_store(&active, nwork);
    for (int i = 0; i < nwork; i++) {
        nng_msg *m;
        if (new_msg(&m) != 0) return 1;
        send_next(&works[i], m, own_now_ns());
    }
    int64_t give_up = own_now_ns() + DRAIN_NS;
    while (atomic_load(&warm) < nwork && atomic_load(&errors) == 0 && own_now_ns() < give_up)
        nng_msleep(1);
    if (atomic_load(&warm) < nwork) {
        fprintf(stderr, "nng_client: no answer from %s\n", url);
        return 1;
    }
    memset(&hist, 0, sizeof hist);
    atomic_store(&errors, 0);

    int64_t t0 = own_now_ns();
    atomic_store(&t_end, t0 + (int64_t)(args.duration * 1e9));
    double cpu0 = own_cpu_s();
    for (int i = 0; i < nwork; i++) {
        nng_msg *m;
        if (new_msg(&m) != 0) return 1;
        send_next(&works[i], m, own_now_ns());
    }
    while (own_now_ns() < atomic_load(&t_end))
        nng_msleep(10);
    double cpu1 = own_cpu_s();
    while (atomic_load(&active) > 0 && own_now_ns() < atomic_load(&t_end) + DRAIN_NS)
        nng_msleep(1);
    /* Replies still due are errors; closing cancels them (their callbacks
     * count again, after this sum is taken). */
    uint64_t errs = atomic_load(&errors) + (uint64_t)atomic_load(&active);
    for (int i = 0; i < args.conns; i++)
        nng_close(socks[i]);
    for (int i = 0; i < nwork; i++)
        nng_aio_free(works[i].aio);
    own_print_json(&args, "sp (own protocol)", args.depth > 1 ? "REQ/REP contexts" : "REQ/REP",
                   args.duration, atomic_load(&messages), errs, cpu1 - cpu0, &hist);
    free(works);
    free(socks);
    return errs ? 1 : 0;
}
