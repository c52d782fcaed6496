/* sockmsg cat — what cmd_cat.c (options, connecting, the poll loop),
 * cat_send.c (stdin -> socket) and cat_recv.c (socket -> stdout) share: the
 * session state and the steps the loop calls. Private to `sockmsg cat`. */
#ifndef SOCKMSG_TOOL_CAT_H
#define SOCKMSG_TOOL_CAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/frame.h>

#include "cli.h"

#define IO_BUF       ((size_t)64 << 10) /* each direction's buffer, and a frame buffer's start */
#define QUEUE_MAX    64                 /* frames gathered into one sendmsg */
#define NAME_MAX_LEN (SM_ENDPOINT_HOST_MAX + 64)

/* A line queued for the socket: its payload is still in the input buffer. */
typedef struct frame_out {
    size_t off, len; /* payload (type byte excluded) in ibuf */
    size_t next;     /* ibuf offset just past the line and its newline */
    sm_frame_hdr hdr;
} frame_out;

typedef struct cat {
    cli cli;
    bool listen, hex, framed;
    bool raw_out;  /* stdin goes out as it is: no --frame, or the eof codec */
    bool insecure; /* tls://: --insecure */
    const char *spec_text;
    const char *ca; /* tls://: --ca FILE */
    sm_frame_spec spec;
    int timeout_ms; /* -1: not given */
    int fd;
    char peer[NAME_MAX_LEN]; /* who we talk to, for messages */
    int code;                /* exit status once decided; -1 while running */

    /* stdin -> socket. Raw: [ipos, iend) waits to be sent. Framed: lines in
     * [ipos, iline) are queued in q; [iline, iend) is not yet a whole line,
     * and [iline, iscan) is known to hold no newline. */
    uint8_t *ibuf;
    size_t icap, ilimit, ipos, iend, iline, iscan;
    frame_out q[QUEUE_MAX];
    unsigned qhead, qn;
    size_t qsent; /* bytes of the first queued frame already sent */
    unsigned long long lineno;
    bool in_eof, wr_shut, failing;
    bool stdin_tty; /* the peer's EOF ends the session (see run in cmd_cat.c) */

    /* socket -> stdout: received bytes in rbuf [rpos, rend), rendered into
     * obuf [opos, oend) as stdout takes them. */
    uint8_t *rbuf;
    size_t rcap, rlimit, rpos, rend;
    sm_frame_decoder dec;
    bool have_msg; /* msg is being rendered; its bytes stay in rbuf */
    sm_frame_msg msg;
    size_t msg_consumed, msg_done;
    unsigned long long roff; /* raw --hex: stream offset */
    bool sock_eof, in_done;
    int sock_err;
    char *obuf;
    size_t opos, oend, out_chunk;
    int out_fd; /* stdout, or our own non-blocking opening of its pipe */

    unsigned long long sent_bytes, sent_msgs, recv_bytes, recv_msgs;
} cat;

/* In cat_tls.c: tls:// endpoints. */

/* cat_tls_start - handshake on the connected fd (taken) as a client of cfg
 * verifying host, then set c->fd to a socketpair end relayed to the TLS
 * connection by two threads. 0, or an error with `why`. */
struct sm_tls_config;
int cat_tls_start(cat *c, int fd, const char *host, struct sm_tls_config *cfg, int timeout_ms,
                  char *why, size_t why_len);
/* cat_tls_finish - after the loop: stop and join the relay. 0, or the
 * relay's error (reported on stderr), e.g. an EOF without close_notify. */
int cat_tls_finish(void);

/* In cmd_cat.c. */

/* cat_say - a status line that is not a failure ("sockmsg: listening on ..."),
 * written to stderr in one write. */
void cat_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cat_fail - report a failure once (later ones are dropped) and stop the loop:
 * sets c->code to CLI_EXIT_FAIL. */
void cat_fail(cat *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* In cat_send.c: stdin -> socket. */

/* cat_out_pending - input bytes (raw) or frames (framed) waiting for the socket. */
bool cat_out_pending(const cat *c);

/* cat_fill_queue - turn the whole lines read so far (and, at EOF, an
 * unterminated last one) into queued frames. A line SPEC cannot frame stops
 * the input (reported, c->failing set): the lines before it still go out,
 * then cat exits 1. */
void cat_fill_queue(cat *c);

/* cat_stdin_room - make room at the end of ibuf for reading stdin. False: not
 * now (the socket must drain first) or never (a failure was reported). */
bool cat_stdin_room(cat *c);

/* cat_read_stdin - one read(2) of stdin into ibuf; sets c->in_eof at its end. */
void cat_read_stdin(cat *c);

/* cat_send_out - one non-blocking send of what is pending (a gather write of
 * the queued frames when framed). */
void cat_send_out(cat *c);

/* cat_maybe_shutdown - after the last input byte has gone out: FIN (shut
 * down the write side), or after a line that could not be framed, exit 1. */
void cat_maybe_shutdown(cat *c);

/* In cat_recv.c: socket -> stdout. */

/* cat_render_in - decode and render what has been received into obuf, until
 * obuf is full or more bytes are needed; sets c->in_done once the peer's
 * stream has ended cleanly, reports a bad frame or a receive error. */
void cat_render_in(cat *c);

/* cat_want_sock_read - whether to read the socket now: only with room in rbuf
 * (so a stalled stdout stops us), never while a message being rendered points
 * into it. */
bool cat_want_sock_read(const cat *c);

/* cat_recv_in - one non-blocking recv into rbuf; sets c->sock_eof (and
 * c->sock_err) at the end of the peer's stream. */
void cat_recv_in(cat *c);

/* cat_write_stdout - one write of rendered bytes to stdout. False when stdout
 * is gone (EPIPE): the reader wants no more. */
bool cat_write_stdout(cat *c);

#endif
