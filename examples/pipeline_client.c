/* A pipelining client (the guide's "Backpressure"): send COUNT messages of
 * SIZE bytes to an echo server as fast as the connection takes them, and
 * check every echo as it comes back.
 *
 *   pipeline_client ENDPOINT [COUNT [SIZE]]     (default 10000 x 4096)
 *
 * Sending stops when sm_stream_send returns 1 (the queue is above high
 * water) and resumes in on_drain; the replies are read all along, also
 * while the queue is full: a client's reading never waits for its own
 * queue, or it and the server would each wait for the other. Prints what
 * it did and exits 0 once every echo is back, 1 on any error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/loop.h>
#include <sockmsg/sockmsg.h>
#include <sockmsg/stream.h>

typedef struct client {
    unsigned long count, sent, echoed, echoed_while_sending;
    size_t size;
    uint8_t *msg;
    int failed;
} client;

/* Message i: its number in the first 4 bytes, the rest a pattern of it. */
static void
make(client *c, unsigned long i)
{
    uint32_t n = (uint32_t)i;
    memcpy(c->msg, &n, 4);
    for (size_t j = 4; j < c->size; j++)
        c->msg[j] = (uint8_t)(i + j);
}

/* guide: produce */
/* Send until the stream says "enough for now" (1) or all are sent. */
static void
produce(sm_stream *s)
{
    client *c = sm_stream_get_data(s);
    while (c->sent < c->count) {
        make(c, c->sent);
        int rc = sm_stream_send(s, c->msg, c->size);
        if (rc < 0) {
            fprintf(stderr, "pipeline_client: send: %s\n", sm_strerror(rc));
            c->failed = 1;
            sm_stream_close(s);
            return;
        }
        c->sent++;
        if (rc == 1) return; /* above high water: on_drain says when to go on */
    }
}
/* guide: end */

static void
on_echo(sm_stream *s, const sm_frame_msg *m)
{
    client *c = sm_stream_get_data(s);
    make(c, c->echoed);
    if (m->len != c->size || memcmp(m->data, c->msg, c->size) != 0) {
        fprintf(stderr, "pipeline_client: echo %lu is not message %lu\n", c->echoed, c->echoed);
        c->failed = 1;
        sm_stream_close(s);
        return;
    }
    c->echoed++;
    if (c->sent < c->count) c->echoed_while_sending++;
    if (c->echoed == c->count) sm_stream_shutdown(s); /* FIN; the server's FIN ends it */
}

static void
on_close(sm_stream *s, int reason)
{
    client *c = sm_stream_get_data(s);
    if (reason != 0 && !c->failed) {
        fprintf(stderr, "pipeline_client: %s (%s)\n", sm_strerror(reason),
                sm_stream_error_detail(s));
        c->failed = 1;
    }
}

/* guide: pipeline_opts */
static const sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
static const sm_stream_opts opts = {
    .spec = &spec,
    .on_connect = produce, /* the first burst */
    .on_drain = produce,   /* the queue is back at low water: the next one */
    .on_message = on_echo,
    .on_close = on_close,
    .idle_timeout_ms = 10000, /* a stall is an error, not a hang */
};
/* guide: end */

int
main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: pipeline_client ENDPOINT [COUNT [SIZE]]\n");
        return 2;
    }
    client c = {.count = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000,
                .size = argc > 3 ? strtoul(argv[3], NULL, 10) : 4096};
    if (c.count == 0 || c.size < 4 || c.size > (16u << 20)) {
        fprintf(stderr, "pipeline_client: COUNT >= 1, 4 <= SIZE <= 16 MiB\n");
        return 2;
    }
    c.msg = malloc(c.size);
    sm_loop *loop = NULL;
    int rc = c.msg ? sm_loop_new(&loop, NULL) : -ENOMEM;
    sm_stream *s;
    char why[256] = "";
    if (rc == 0) rc = sm_stream_dial(&s, loop, argv[1], &opts, &c, why, sizeof why);
    if (rc == 0) rc = sm_loop_run(loop, SM_RUN_DEFAULT); /* until the stream is closed */
    if (rc < 0) {
        fprintf(stderr, "pipeline_client: %s: %s\n", argv[1], why[0] ? why : sm_strerror(rc));
        c.failed = 1;
    }
    if (loop) sm_loop_free(loop);
    free(c.msg);
    printf("sent %lu, echoed %lu (%lu of them while still sending)\n", c.sent, c.echoed,
           c.echoed_while_sending);
    return c.failed || c.echoed != c.count ? 1 : 0;
}
