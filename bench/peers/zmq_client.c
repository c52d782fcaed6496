/* zmq_client: the load generator for zmq_echo, in ZeroMQ's own protocol
 * (the numbers are "own protocol", not len32be: ZMTP frames every part with
 * a flags byte and a length, and a DEALER request carries an empty delimiter).
 *
 *   zmq_client ENDPOINT [--conns C] [--depth D] [--size S] [--duration SEC]
 *
 * ENDPOINT is tcp://HOST:PORT or unix:/path (ZeroMQ's ipc://). Each of the C
 * connections is its own socket: with D = 1 a REQ socket in lockstep (the
 * native ping-pong), with D > 1 a DEALER keeping D requests in flight (the
 * pipelined case; ROUTER on the other side). A request is S bytes: an 8-byte
 * sequence number and filler; each reply must have the right size and the
 * right number. Every connection first does one untimed round trip, so the
 * timed window starts connected. One thread: zmq_poll over the sockets, or a
 * blocking receive with a single connection (as libzmq's perf/remote_lat).
 * Latency is per message, from its send to its reply. After the window no
 * new requests go out; replies still due after 5 s count as errors. Prints
 * one JSON object with sockmsg bench's keys and "own_protocol": true. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "own_report.h"

#define DRAIN_NS 5000000000LL

struct conn {
    void *s;
    uint64_t sent, recvd;
    int64_t *ts;
};

static struct own_args args;
static struct own_hist hist;
static uint64_t mask, messages, errors;
static int dealer;
static int64_t t_end;
static uint8_t *payload;
static zmq_msg_t part;

static int
send_one(struct conn *c, int64_t now)
{
    if (dealer && zmq_send(c->s, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
    memcpy(payload, &c->sent, 8);
    c->ts[c->sent & mask] = now;
    if (zmq_send(c->s, payload, args.size, ZMQ_DONTWAIT) < 0) return -1;
    c->sent++;
    return 0;
}

/* Send what the window allows (nothing after the end). */
static void
pump(struct conn *c, int64_t now)
{
    while (now < t_end && c->sent < c->recvd + (uint64_t)args.depth)
        if (send_one(c, now) < 0) {
            errors++;
            return;
        }
}

/* Take one reply; returns 1, 0 when none is waiting, -1 on a broken socket. */
static int
recv_one(struct conn *c, int flags)
{
    if (zmq_msg_recv(&part, c->s, flags) < 0) return errno == EAGAIN ? 0 : -1;
    if (dealer) {
        /* The empty delimiter; the body is part of the same atomic message. */
        if (zmq_msg_size(&part) != 0 || !zmq_msg_more(&part) || zmq_msg_recv(&part, c->s, 0) < 0)
            return -1;
    }
    int64_t now = own_now_ns();
    uint64_t seq = UINT64_MAX;
    if (zmq_msg_size(&part) == args.size) memcpy(&seq, zmq_msg_data(&part), 8);
    if (seq != c->recvd || c->recvd >= c->sent || zmq_msg_more(&part)) errors++;
    if (now < t_end && c->recvd < c->sent) {
        messages++;
        own_record(&hist, (uint64_t)(now - c->ts[c->recvd & mask]));
    }
    c->recvd++;
    return 1;
}

static int
to_zmq(const char *where, char *out, size_t cap)
{
    if (!strncmp(where, "unix:", 5))
        snprintf(out, cap, "ipc://%s", where + 5);
    else if (!strncmp(where, "tcp://", 6) || !strncmp(where, "ipc://", 6))
        snprintf(out, cap, "%s", where);
    else
        return -1;
    return 0;
}

/* The client's connections live until it exits (file scope: an early
 * error return leaves them to the exit, not leaked). */
static struct conn *cs;
static zmq_pollitem_t *items;

int
main(int argc, char **argv)
{
    if (own_parse_args(&args, argc, argv, "zmq_client") < 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    char zep[300];
    if (to_zmq(args.endpoint, zep, sizeof zep) < 0) {
        fprintf(stderr, "zmq_client: endpoint must be tcp://HOST:PORT or unix:/path\n");
        return 2;
    }
    dealer = args.depth > 1;
    uint64_t ring = 1;
    while (ring < (uint64_t)args.depth)
        ring <<= 1;
    mask = ring - 1;
    payload = malloc(args.size);
    cs = calloc((size_t)args.conns, sizeof *cs);
    items = calloc((size_t)args.conns, sizeof *items);
    void *ctx = zmq_ctx_new();
    if (!payload || !cs || !items || !ctx) {
        free(payload);
        free(cs);
        free(items);
        if (ctx) zmq_ctx_term(ctx);
        return 1;
    }
    for (size_t i = 0; i < args.size; i++)
        payload[i] = (uint8_t)(i * 131 + 7);
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, args.conns + 16);
    zmq_msg_init(&part);
    int zero = 0, rcvtimeo = 100;
    for (int i = 0; i < args.conns; i++) {
        struct conn *c = &cs[i];
        c->s = zmq_socket(ctx, dealer ? ZMQ_DEALER : ZMQ_REQ);
        c->ts = calloc(ring, sizeof *c->ts);
        if (!c->s || !c->ts) {
            free(c->ts);
            return 1;
        }
        zmq_setsockopt(c->s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(c->s, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(c->s, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(c->s, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
        if (zmq_connect(c->s, zep) < 0) {
            fprintf(stderr, "zmq_client: %s: %s\n", zep, zmq_strerror(errno));
            return 1;
        }
        items[i] = (zmq_pollitem_t){.socket = c->s, .events = ZMQ_POLLIN};
    }
    /* One untimed round trip per connection: the window starts connected. */
    t_end = INT64_MAX;
    for (int i = 0; i < args.conns; i++)
        if (send_one(&cs[i], own_now_ns()) < 0) return 1;
    int64_t give_up = own_now_ns() + DRAIN_NS;
    for (int i = 0; i < args.conns; i++) {
        int r;
        while ((r = recv_one(&cs[i], 0)) == 0 && own_now_ns() < give_up) {
        }
        if (r <= 0) {
            fprintf(stderr, "zmq_client: no answer from %s\n", zep);
            return 1;
        }
    }
    memset(&hist, 0, sizeof hist);
    messages = errors = 0;

    int64_t t0 = own_now_ns();
    t_end = t0 + (int64_t)(args.duration * 1e9);
    double cpu0 = own_cpu_s(), cpu1 = -1;
    for (int i = 0; i < args.conns; i++)
        pump(&cs[i], t0);
    for (;;) {
        int64_t now = own_now_ns();
        if (now >= t_end) {
            if (cpu1 < 0) cpu1 = own_cpu_s();
            int due = 0;
            for (int i = 0; i < args.conns; i++)
                due |= cs[i].recvd < cs[i].sent;
            if (!due || now >= t_end + DRAIN_NS) break;
        }
        if (args.conns == 1) {
            struct conn *c = &cs[0];
            int r = recv_one(c, 0);
            if (r < 0) break;
            while (r > 0 && (r = recv_one(c, ZMQ_DONTWAIT)) > 0) {
            }
            pump(c, own_now_ns());
            continue;
        }
        long left = now < t_end ? (long)((t_end - now) / 1000000) + 1 : 10;
        int n = zmq_poll(items, args.conns, left);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; n > 0 && i < args.conns; i++) {
            if (!(items[i].revents & ZMQ_POLLIN)) continue;
            int r;
            while ((r = recv_one(&cs[i], ZMQ_DONTWAIT)) > 0) {
            }
            if (r < 0) errors++;
            pump(&cs[i], own_now_ns());
        }
    }
    if (cpu1 < 0) cpu1 = own_cpu_s();
    for (int i = 0; i < args.conns; i++) {
        errors += cs[i].sent - cs[i].recvd;
        zmq_close(cs[i].s);
        free(cs[i].ts);
    }
    zmq_msg_close(&part);
    zmq_ctx_term(ctx);
    own_print_json(&args, "zmtp (own protocol)", dealer ? "DEALER" : "REQ", args.duration, messages,
                   errors, cpu1 - cpu0, &hist);
    free(cs);
    free(items);
    free(payload);
    return errors ? 1 : 0;
}
