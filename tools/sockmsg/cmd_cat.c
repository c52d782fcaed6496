/* sockmsg cat ENDPOINT: netcat with framing.
 *
 * One poll(2) loop moves bytes both ways at once: standard input to the
 * socket, the socket to standard output. Neither direction ever waits on the
 * other, and each has a bounded buffer: a full socket stops us reading stdin,
 * a full stdout stops us reading the socket, so a slow reader on one side
 * costs memory on neither.
 *
 * With --frame, stdin lines become messages (sent by gather writes straight
 * from the input buffer, many frames per sendmsg) and received messages are
 * cut by the library's pure decoder and printed one per line or hex-dumped.
 *
 * stdin and stdout themselves stay blocking: they are often shared with the
 * shell or the next command, and O_NONBLOCK would change them for everybody.
 * We read stdin only when poll says it is readable (a read then returns what
 * is there), and write stdout without blocking as open_stdout explains. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include <sockmsg/socket.h>

#include "cli.h"

cli_command_fn cmd_cat;

#define IO_BUF          (64 * 1024) /* each direction's buffer, and a frame buffer's start */
#define QUEUE_MAX       64          /* frames gathered into one sendmsg */
#define HEX_LINE_MAX    96          /* one hex dump line, offset of any width included */
#define DEFAULT_TIMEOUT 10000
#define NAME_MAX_LEN    (SM_ENDPOINT_HOST_MAX + 64)

enum { OPT_TIMEOUT = 256 };

/* A line queued for the socket: its payload is still in the input buffer. */
typedef struct frame_out {
    size_t off, len; /* payload (type byte excluded) in ibuf */
    size_t next;     /* ibuf offset just past the line and its newline */
    sm_frame_hdr hdr;
} frame_out;

typedef struct cat {
    cli cli;
    bool listen, hex, framed;
    bool raw_out; /* stdin goes out as it is: no --frame, or the eof codec */
    const char *spec_text;
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
    bool stdin_tty; /* the peer's EOF ends the session (see run) */

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

static void
help(void)
{
    printf("usage: sockmsg cat [options] ENDPOINT\n"
           "\n"
           "Copy standard input to the socket and the socket to standard output, both\n"
           "ways at once, like nc. ENDPOINT is tcp://HOST:PORT, tcp://[V6]:PORT,\n"
           "unix:/PATH or unix:@NAME. At the end of input the write side is shut down\n"
           "and cat goes on printing until the peer closes.\n"
           "\n"
           "options:\n"
           "  -l, --listen       accept one connection on ENDPOINT instead of connecting;\n"
           "                     the first line on stderr is always\n"
           "                     'sockmsg: listening on ADDRESS' (port 0 picks one)\n"
           "  -f, --frame SPEC   send each input line (without its newline) as one\n"
           "                     message framed by SPEC (len32be, line, netstring, ...)\n"
           "                     and print each message received followed by a newline\n"
           "  -x, --hex          print what is received as a hex dump (one per message\n"
           "                     with --frame)\n"
           "      --timeout MS   bound connecting (default %d ms) or, with --listen,\n"
           "                     waiting for the connection (default: no limit);\n"
           "                     500, 500ms, 2s, 1m; 0 for no limit\n"
           "  -v, --verbose      say who connected and how much went each way\n"
           "  -h, --help         show this help\n"
           "\n"
           "exit status: 0 when the peer closed cleanly (or stdout was closed), 1 for a\n"
           "failure (refused, reset, a bad or truncated frame, a line SPEC cannot\n"
           "frame), 2 for usage errors.\n",
           DEFAULT_TIMEOUT);
}

/* A status line that is not a failure ("sockmsg: listening on ..."). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
    /* One write per line, as cli.c does, so lines stay whole. */
    char line[NAME_MAX_LEN + 128] = "sockmsg: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    line[n++] = '\n';
    (void)cli_write_all(STDERR_FILENO, line, n);
}

static void fail(cat *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report a failure once and stop the loop. */
static void
fail(cat *c, const char *fmt, ...)
{
    if (c->code >= 0) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->code = cli_fail(&c->cli, "%s", msg);
}

/* --- stdin -> socket ------------------------------------------------------- */

static size_t
frame_total(const frame_out *f)
{
    return f->hdr.head_len + f->len + f->hdr.tail_len;
}

static bool
out_pending(const cat *c)
{
    return c->raw_out ? c->ipos < c->iend : c->qn > 0;
}

/* Frame the line ibuf[start, end) or explain why SPEC cannot. */
static bool
queue_line(cat *c, size_t start, size_t end, size_t next)
{
    const uint8_t *line = c->ibuf + start;
    size_t len = end - start;
    int type = -1;
    c->lineno++;
    if (c->spec.kind == SM_FRAME_TYPE) {
        if (len == 0) {
            say("line %llu: an empty line has no type byte for %s", c->lineno, c->spec_text);
            return false;
        }
        type = line[0];
        start++;
        len--;
    }
    frame_out *f = &c->q[(c->qhead + c->qn) % QUEUE_MAX];
    int rc = sm_frame_encode(&c->spec, c->ibuf + start, len, type, &f->hdr);
    if (rc == -EMSGSIZE) {
        say("line %llu: %zu bytes do not fit %s", c->lineno, len, c->spec_text);
    } else if (rc == -EINVAL) {
        say("line %llu: contains the delimiter of %s", c->lineno, c->spec_text);
    } else if (rc == -EPROTO) {
        say("line %llu: type byte 0x%02x is not in %s", c->lineno, (unsigned)type, c->spec_text);
    } else if (rc < 0) {
        say("line %llu: %s", c->lineno, sm_strerror(rc));
    }
    if (rc < 0) return false;
    f->off = start;
    f->len = len;
    f->next = next;
    c->qn++;
    return true;
}

/* Turn the whole lines read so far (and, at EOF, an unterminated last one)
 * into queued frames. A line SPEC cannot frame stops the input: the lines
 * before it still go out, then cat exits 1. */
static void
fill_queue(cat *c)
{
    while (!c->raw_out && c->qn < QUEUE_MAX && !c->failing) {
        size_t start = c->iline, end, next;
        const uint8_t *nl = memchr(c->ibuf + c->iscan, '\n', c->iend - c->iscan);
        if (nl) {
            end = (size_t)(nl - c->ibuf);
            next = end + 1;
        } else if (c->in_eof && c->iend > c->iline) {
            end = next = c->iend;
        } else {
            c->iscan = c->iend;
            return;
        }
        if (!queue_line(c, start, end, next)) {
            c->failing = true;
            return;
        }
        c->iline = c->iscan = next;
    }
}

/* Make room at the end of ibuf for reading stdin. False: not now (the
 * socket must drain first) or never (a failure was reported). */
static bool
stdin_room(cat *c)
{
    if (c->ipos == c->iend && c->qn == 0) c->ipos = c->iend = c->iline = c->iscan = 0;
    if (c->iend < c->icap) return true;
    if (c->ipos > 0) {
        size_t d = c->ipos;
        memmove(c->ibuf, c->ibuf + d, c->iend - d);
        c->iend -= d;
        c->iline -= d;
        c->iscan -= d;
        for (unsigned k = 0; k < c->qn; k++) {
            frame_out *f = &c->q[(c->qhead + k) % QUEUE_MAX];
            f->off -= d;
            f->next -= d;
        }
        c->ipos = 0;
        return true;
    }
    if (c->raw_out || c->qn > 0) return false;
    /* The whole buffer is one unfinished line: grow it, up to what the
     * spec could ever frame. */
    if (c->icap >= c->ilimit) {
        say("line %llu: more than %zu bytes do not fit %s", c->lineno + 1, c->iend - c->iline,
            c->spec_text);
        c->failing = true;
        return false;
    }
    size_t cap = c->icap > c->ilimit / 2 ? c->ilimit : c->icap * 2;
    uint8_t *p = realloc(c->ibuf, cap);
    if (!p) {
        fail(c, "out of memory for a %zu-byte line", cap);
        return false;
    }
    c->ibuf = p;
    c->icap = cap;
    return true;
}

static void
read_stdin(cat *c)
{
    if (!stdin_room(c)) return;
    ssize_t n = read(STDIN_FILENO, c->ibuf + c->iend, c->icap - c->iend);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n < 0) {
        fail(c, "stdin: %s", sm_strerror(-errno));
        return;
    }
    if (n == 0) {
        c->in_eof = true;
        cli_log(&c->cli, 1, "end of input");
        return;
    }
    c->iend += (size_t)n;
}

static void
add_iov(struct iovec *iov, int *n, const void *p, size_t len, size_t *skip)
{
    if (*skip >= len) {
        *skip -= len;
        return;
    }
    iov[*n].iov_base = (void *)((const char *)p + *skip);
    iov[*n].iov_len = len - *skip;
    (*n)++;
    *skip = 0;
}

static void
sent_frames(cat *c, size_t n)
{
    size_t done = c->qsent + n;
    while (c->qn > 0) {
        frame_out *f = &c->q[c->qhead];
        size_t t = frame_total(f);
        if (done < t) break;
        done -= t;
        c->ipos = f->next;
        c->qhead = (c->qhead + 1) % QUEUE_MAX;
        c->qn--;
        c->sent_msgs++;
    }
    c->qsent = done;
}

static void
send_out(cat *c)
{
    ssize_t n;
    if (c->raw_out) {
        n = send(c->fd, c->ibuf + c->ipos, c->iend - c->ipos, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
        struct iovec iov[QUEUE_MAX * 3];
        int cnt = 0;
        size_t skip = c->qsent;
        for (unsigned k = 0; k < c->qn; k++) {
            const frame_out *f = &c->q[(c->qhead + k) % QUEUE_MAX];
            add_iov(iov, &cnt, f->hdr.head, f->hdr.head_len, &skip);
            add_iov(iov, &cnt, c->ibuf + f->off, f->len, &skip);
            add_iov(iov, &cnt, f->hdr.tail, f->hdr.tail_len, &skip);
        }
        if (cnt == 0) { /* cannot be: every frame has a header, delimiter or payload */
            sent_frames(c, 0);
            return;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) return;
        fail(c, "%s: sending: %s", c->peer, sm_strerror(-errno));
        return;
    }
    c->sent_bytes += (size_t)n;
    if (c->raw_out)
        c->ipos += (size_t)n;
    else
        sent_frames(c, (size_t)n);
}

/* After the last input byte has gone out: FIN, or the failure of a line. */
static void
maybe_shutdown(cat *c)
{
    if (c->wr_shut || c->code >= 0 || out_pending(c)) return;
    if (c->failing) {
        c->code = CLI_EXIT_FAIL; /* the line's problem was reported */
        return;
    }
    if (!c->in_eof || (!c->raw_out && c->iline < c->iend)) return;
    c->wr_shut = true;
    if (c->raw_out)
        cli_log(&c->cli, 1, "input done: sent %llu bytes; shutting down the write side",
                c->sent_bytes);
    else
        cli_log(&c->cli, 1,
                "input done: sent %llu messages (%llu bytes); shutting down the write side",
                c->sent_msgs, c->sent_bytes);
    /* ENOTCONN: the peer is gone already; reading the socket will say how. */
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        fail(c, "%s: shutdown: %s", c->peer, sm_strerror(-errno));
}

/* --- socket -> stdout ------------------------------------------------------ */

/* Free bytes at the end of obuf, compacting when fewer than `want`. */
static size_t
out_room(cat *c, size_t want)
{
    if (c->opos == c->oend) c->opos = c->oend = 0;
    if (IO_BUF - c->oend < want && c->opos > 0) {
        memmove(c->obuf, c->obuf + c->opos, c->oend - c->opos);
        c->oend -= c->opos;
        c->opos = 0;
    }
    return IO_BUF - c->oend;
}

/* One dump line: offset, 16 hex columns, the bytes as text. */
static size_t
hex_line(char *out, unsigned long long off, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *p = out + snprintf(out, 24, "%04llx  ", off);
    for (size_t i = 0; i < 16; i++) {
        if (i < n) {
            *p++ = digits[b[i] >> 4];
            *p++ = digits[b[i] & 15];
            *p++ = ' ';
        } else {
            memcpy(p, "   ", 3);
            p += 3;
        }
    }
    *p++ = ' ';
    *p++ = '|';
    for (size_t i = 0; i < n; i++)
        *p++ = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '.';
    *p++ = '|';
    *p++ = '\n';
    return (size_t)(p - out);
}

/* The message as printed: its type byte (type: specs) and its payload. */
static size_t
msg_size(const cat *c)
{
    return (c->msg.type >= 0) + c->msg.len;
}

static void
msg_bytes(const cat *c, size_t from, size_t n, uint8_t *out)
{
    if (n > 0 && c->msg.type >= 0) {
        if (from == 0) {
            *out++ = (uint8_t)c->msg.type;
            n--;
        } else {
            from--;
        }
    }
    if (n > 0) memcpy(out, c->msg.data + from, n);
}

/* Render as much of the current message as obuf takes. True when done. */
static bool
render_msg(cat *c)
{
    size_t total = msg_size(c);
    if (c->hex) {
        /* msg_done counts lines here; an empty message is one empty line. */
        size_t lines = total ? (total + 15) / 16 : 1;
        while (c->msg_done < lines) {
            if (out_room(c, HEX_LINE_MAX) < HEX_LINE_MAX) return false;
            size_t from = c->msg_done * 16, n = total - from < 16 ? total - from : 16;
            uint8_t b[16];
            msg_bytes(c, from, n, b);
            c->oend += hex_line(c->obuf + c->oend, from, b, n);
            c->msg_done++;
        }
        return true;
    }
    while (c->msg_done <= total) {
        size_t room = out_room(c, 1);
        if (room == 0) return false;
        if (c->msg_done == total) {
            c->obuf[c->oend++] = '\n';
            c->msg_done++;
            break;
        }
        size_t n = total - c->msg_done < room ? total - c->msg_done : room;
        msg_bytes(c, c->msg_done, n, (uint8_t *)c->obuf + c->oend);
        c->oend += n;
        c->msg_done += n;
    }
    return true;
}

/* Raw mode: pass the received bytes on as they are, or dumped. */
static void
render_raw(cat *c)
{
    while (c->rpos < c->rend) {
        size_t have = c->rend - c->rpos;
        if (c->hex) {
            if (out_room(c, HEX_LINE_MAX) < HEX_LINE_MAX) return;
            size_t n = have < 16 ? have : 16;
            c->oend += hex_line(c->obuf + c->oend, c->roff, c->rbuf + c->rpos, n);
            c->rpos += n;
            c->roff += n;
        } else {
            size_t room = out_room(c, 1);
            if (room == 0) return;
            size_t n = have < room ? have : room;
            memcpy(c->obuf + c->oend, c->rbuf + c->rpos, n);
            c->oend += n;
            c->rpos += n;
        }
    }
    if (c->sock_eof && c->rpos == c->rend) {
        if (c->sock_err)
            fail(c, "%s: receiving: %s", c->peer, sm_strerror(c->sock_err));
        else
            c->in_done = true;
    }
}

static void
bad_frame(cat *c, ssize_t err)
{
    char detail[512];
    sm_frame_decoder_detail(&c->dec, detail, sizeof detail);
    if (detail[0])
        fail(c, "%s: %s: %s", c->peer, sm_strerror((int)err), detail);
    else
        fail(c, "%s: %s", c->peer, sm_strerror((int)err));
}

/* Decode and render what has been received, until stdout's buffer is full
 * or more bytes are needed. */
static void
render_in(cat *c)
{
    if (!c->framed) {
        render_raw(c);
        return;
    }
    while (c->code < 0 && !c->in_done) {
        if (c->have_msg) {
            if (!render_msg(c)) return;
            c->have_msg = false;
            c->rpos += c->msg_consumed;
            c->recv_msgs++;
            continue;
        }
        if (c->rpos == c->rend) c->rpos = c->rend = 0;
        sm_frame_msg m;
        ssize_t n = sm_frame_decode(&c->dec, c->rbuf + c->rpos, c->rend - c->rpos, &m);
        if (n == -EAGAIN) {
            if (!c->sock_eof) return;
            if (c->sock_err) {
                /* Whatever was cut short, the cause is the connection's. */
                fail(c, "%s: receiving: %s", c->peer, sm_strerror(c->sock_err));
                return;
            }
            n = sm_frame_decode_eof(&c->dec, c->rbuf + c->rpos, c->rend - c->rpos, &m);
            if (n == 0 && !m.data) {
                c->in_done = true;
                return;
            }
        }
        if (n < 0) {
            bad_frame(c, n);
            return;
        }
        if (!m.data) {
            c->rpos += (size_t)n;
            cli_log(&c->cli, 2, "discarded %zd bytes of an oversized message", n);
            continue;
        }
        c->msg = m;
        c->have_msg = true;
        c->msg_consumed = (size_t)n;
        c->msg_done = 0;
    }
}

/* Make room at the end of rbuf. False: stdout must drain first, or a
 * failure was reported. */
static bool
sock_room(cat *c)
{
    if (c->rpos == c->rend) c->rpos = c->rend = 0;
    if (c->rend < c->rcap) return true;
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
        c->rend -= c->rpos;
        c->rpos = 0;
        return true;
    }
    if (!c->framed) return false;
    /* One unfinished frame fills the buffer: grow it up to the spec's max
     * (plus its header and trailer), never by what the peer announces. */
    if (c->rcap >= c->rlimit) {
        fail(c, "%s: a message longer than the %zu-byte receive buffer", c->peer, c->rcap);
        return false;
    }
    size_t cap = c->rcap > c->rlimit / 2 ? c->rlimit : c->rcap * 2;
    uint8_t *p = realloc(c->rbuf, cap);
    if (!p) {
        fail(c, "out of memory for a %zu-byte message", cap);
        return false;
    }
    c->rbuf = p;
    c->rcap = cap;
    return true;
}

/* Whether to read the socket: only with room in rbuf (so a stalled stdout
 * stops us), and never while a message being rendered points into rbuf. */
static bool
want_sock_read(const cat *c)
{
    if (c->sock_eof || c->have_msg) return false;
    return c->rend < c->rcap || c->rpos > 0 || (c->framed && c->rcap < c->rlimit);
}

static void
recv_in(cat *c)
{
    if (!sock_room(c)) return;
    ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n < 0) {
        c->sock_err = -errno;
        c->sock_eof = true;
        return;
    }
    if (n == 0) {
        c->sock_eof = true;
        cli_log(&c->cli, 1, "peer closed: received %llu bytes", c->recv_bytes);
        return;
    }
    c->rend += (size_t)n;
    c->recv_bytes += (size_t)n;
}

/* False when stdout is gone (EPIPE): the reader wants no more. */
static bool
write_stdout(cat *c)
{
    size_t n = c->oend - c->opos;
    if (n > c->out_chunk) n = c->out_chunk;
    ssize_t w = write(c->out_fd, c->obuf + c->opos, n);
    if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) return true;
        if (errno == EPIPE) return false;
        fail(c, "stdout: %s", sm_strerror(-errno));
        return true;
    }
    c->opos += (size_t)w;
    return true;
}

/* --- the loop -------------------------------------------------------------- */

/* The peer closed both ways while we still had input to give it. */
static void
peer_gone(cat *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err)
        fail(c, "%s: sending: %s", c->peer, sm_strerror(-err));
    else
        fail(c, "%s: the peer closed the connection before the end of input", c->peer);
}

static int
run(cat *c)
{
    bool stdout_gone = false;
    while (c->code < 0) {
        render_in(c);
        fill_queue(c);
        maybe_shutdown(c);
        if (c->code >= 0) break;
        /* The peer's EOF may be a half-close: it may still read, so input
         * goes on until its end. At a terminal nobody may ever type that
         * end: there the peer's EOF ends everything. */
        if (c->in_done && c->opos == c->oend && (c->wr_shut || c->stdin_tty)) {
            c->code = CLI_EXIT_OK;
            break;
        }
        struct pollfd p[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
        if (!c->in_eof && !c->failing) {
            bool room = stdin_room(c);
            if (c->failing || c->code >= 0) continue; /* a line too long: wind down */
            if (room) {
                p[0].fd = STDIN_FILENO;
                p[0].events = POLLIN;
            }
        }
        if (c->opos < c->oend) {
            p[1].fd = c->out_fd;
            p[1].events = POLLOUT;
        }
        short ev = 0;
        if (want_sock_read(c)) ev |= POLLIN;
        if (!c->wr_shut && out_pending(c)) ev |= POLLOUT;
        /* After the peer's EOF, with nothing to send, watch for its reset
         * (POLLERR, POLLHUP: reported even with no events asked for). */
        if (ev || (c->sock_eof && !c->wr_shut)) {
            p[2].fd = c->fd;
            p[2].events = ev;
        }
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            fail(c, "poll: %s", sm_strerror(-errno));
            break;
        }
        if (p[1].revents) {
            if (!write_stdout(c)) {
                stdout_gone = true;
                cli_log(&c->cli, 1, "stdout closed");
                c->code = CLI_EXIT_OK;
                break;
            }
        }
        if (p[0].revents & POLLNVAL) {
            c->in_eof = true; /* no stdin at all: nothing to send */
        } else if (p[0].revents) {
            read_stdin(c);
        }
        if (c->code >= 0) break;
        if ((p[2].revents & (POLLOUT | POLLERR | POLLHUP)) && (ev & POLLOUT)) send_out(c);
        if (c->code >= 0) break;
        if ((p[2].revents & (POLLIN | POLLERR | POLLHUP)) && (ev & POLLIN)) recv_in(c);
        if ((p[2].revents & (POLLERR | POLLHUP)) && !ev) peer_gone(c);
    }
    /* What was rendered before a failure still goes out (blocking now). */
    if (!stdout_gone && c->opos < c->oend)
        (void)cli_write_all(STDOUT_FILENO, c->obuf + c->opos, c->oend - c->opos);
    if (c->framed)
        cli_log(&c->cli, 1, "received %llu messages (%llu bytes)%s", c->recv_msgs, c->recv_bytes,
                c->dec.skipped ? ", oversized ones skipped" : "");
    return c->code;
}

/* --- connecting ------------------------------------------------------------ */

static void
format_endpoint(const sm_endpoint *ep, const char *fallback, char *out, size_t len)
{
    /* The fallback may be the very buffer (reformatting in place): then it must
     * be copied aside first, as sm_endpoint_format has written over it. */
    char keep[NAME_MAX_LEN];
    snprintf(keep, sizeof keep, "%s", fallback);
    if (sm_endpoint_format(ep, out, len) < 0) snprintf(out, len, "%s", keep);
}

static int
dial(cat *c, const sm_endpoint *ep, const char *text)
{
    char where[NAME_MAX_LEN], why[512];
    format_endpoint(ep, text, where, sizeof where);
    snprintf(c->peer, sizeof c->peer, "%s", where);
    cli_log(&c->cli, 1, "connecting to %s", where);
    int timeout = c->timeout_ms < 0 ? DEFAULT_TIMEOUT : c->timeout_ms;
    int fd = sm_dial_endpoint(ep, NULL, timeout ? timeout : SM_FOREVER, why, sizeof why);
    if (fd < 0) {
        cli_log(&c->cli, 1, "%s", why);
        if (fd == -ETIMEDOUT) return cli_fail(&c->cli, "%s: timed out after %d ms", where, timeout);
        if (fd == SM_ERR_RESOLVE && why[0]) return cli_fail(&c->cli, "%s: %s", where, why);
        return cli_fail(&c->cli, "%s: %s", where, sm_strerror(fd));
    }
    c->fd = fd;
    cli_log(&c->cli, 1, "connected to %s", where);
    return CLI_EXIT_OK;
}

static int
accept_one(cat *c, const sm_endpoint *ep, const char *text)
{
    char where[NAME_MAX_LEN], why[512];
    format_endpoint(ep, text, where, sizeof where);
    sm_endpoint bound;
    int lfd = sm_listen_endpoint(ep, NULL, 1, &bound, why, sizeof why);
    if (lfd < 0) {
        if (lfd == SM_ERR_RESOLVE && why[0]) return cli_fail(&c->cli, "%s: %s", where, why);
        return cli_fail(&c->cli, "%s: %s", where, sm_strerror(lfd));
    }
    format_endpoint(&bound, where, where, sizeof where);
    say("listening on %s", where);
    int timeout = c->timeout_ms <= 0 ? SM_FOREVER : c->timeout_ms;
    sm_addr peer;
    int fd = sm_accept(lfd, timeout, &peer);
    /* One connection only: nobody else gets in, and a socket file goes. */
    close(lfd);
    if (bound.kind == SM_ENDPOINT_UNIX) unlink(bound.path);
    if (fd < 0) {
        if (fd == -ETIMEDOUT)
            return cli_fail(&c->cli, "%s: no connection within %d ms", where, timeout);
        return cli_fail(&c->cli, "%s: accept: %s", where, sm_strerror(fd));
    }
    c->fd = fd;
    if (sm_addr_format((struct sockaddr *)&peer.ss, peer.len, c->peer, sizeof c->peer) <= 0 ||
        !strcmp(c->peer, "unix:"))
        snprintf(c->peer, sizeof c->peer, "%s", where); /* unnamed Unix clients */
    cli_log(&c->cli, 1, "connection from %s", c->peer);
    return CLI_EXIT_OK;
}

/* --- setup ----------------------------------------------------------------- */

/* How to write stdout without ever blocking in write(2). Files and devices
 * such as /dev/null take anything at once. A pipe gets an open file
 * description of our own through /proc, made non-blocking there: setting
 * O_NONBLOCK on fd 1 itself would change it for everyone sharing it (the
 * shell, the next command). Anything else (a terminal, a socket) gets writes
 * of PIPE_BUF bytes after poll said it is writable. */
static void
open_stdout(cat *c)
{
    struct stat st;
    c->out_fd = STDOUT_FILENO;
    c->out_chunk = PIPE_BUF;
    if (fstat(STDOUT_FILENO, &st) < 0) return;
    if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(STDOUT_FILENO))) {
        c->out_chunk = IO_BUF;
    } else if (S_ISFIFO(st.st_mode)) {
        int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            c->out_fd = fd;
            c->out_chunk = IO_BUF;
        }
    }
}

static int
start(cat *c, const char *endpoint)
{
    char why[512];
    sm_endpoint ep;
    if (sm_endpoint_parse(&ep, endpoint, why, sizeof why) < 0)
        return cli_usage_error(&c->cli, "%s", why);
    if (c->spec_text) {
        if (sm_frame_spec_parse(&c->spec, c->spec_text, why, sizeof why) < 0)
            return cli_usage_error(&c->cli, "%s", why);
        c->framed = true;
        c->raw_out = c->spec.kind == SM_FRAME_EOF;
        uint64_t max = sm_frame_max(&c->spec);
        if (max > SIZE_MAX / 4) max = SIZE_MAX / 4;
        c->ilimit = (size_t)max + 2; /* a type byte, the newline */
        c->rlimit = (size_t)max + SM_FRAME_HEAD_MAX + SM_FRAME_DELIM_MAX + 2;
        sm_frame_decoder_init(&c->dec, &c->spec);
    } else {
        c->raw_out = true;
        c->ilimit = c->rlimit = IO_BUF;
    }
    c->icap = c->rcap = IO_BUF;
    c->ibuf = malloc(c->icap);
    c->rbuf = malloc(c->rcap);
    c->obuf = malloc(IO_BUF);
    if (!c->ibuf || !c->rbuf || !c->obuf) return cli_fail(&c->cli, "out of memory");

    /* A closed stdin or stdout would be reused by the socket: /dev/null. */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            (void)open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
    open_stdout(c);
    /* A closed stdout must be an EPIPE we can handle, not a death. */
    signal(SIGPIPE, SIG_IGN);
    c->stdin_tty = isatty(STDIN_FILENO);

    int rc = c->listen ? accept_one(c, &ep, endpoint) : dial(c, &ep, endpoint);
    if (rc != CLI_EXIT_OK) return rc;
    if ((rc = sm_sock_set_nonblock(c->fd, true)) < 0)
        return cli_fail(&c->cli, "%s: %s", c->peer, sm_strerror(rc));
    return run(c);
}

int
cmd_cat(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"listen", no_argument, NULL, 'l'},
        {"frame", required_argument, NULL, 'f'},
        {"hex", no_argument, NULL, 'x'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    cat *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "sockmsg: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_init(&c->cli, "cat");
    c->timeout_ms = -1;
    c->fd = -1;
    c->out_fd = STDOUT_FILENO;
    c->code = -1;
    int code = CLI_EXIT_USAGE, ch;
    while ((ch = cli_getopt(&c->cli, argc, argv, CLI_COMMON_SHORTOPTS "lf:x", longopts)) != -1) {
        switch (ch) {
        case 'h':
            help();
            code = CLI_EXIT_OK;
            goto done;
        case 'l':
            c->listen = true;
            break;
        case 'f':
            c->spec_text = optarg;
            break;
        case 'x':
            c->hex = true;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_ms(&c->cli, "--timeout", optarg, &c->timeout_ms)) goto done;
            break;
        default:
            goto done;
        }
    }
    if (optind >= argc) {
        cli_usage_error(&c->cli, "missing ENDPOINT");
        goto done;
    }
    if (argc - optind > 1) {
        cli_usage_error(&c->cli, "unexpected argument '%s' (one ENDPOINT only)", argv[optind + 1]);
        goto done;
    }
    code = start(c, argv[optind]);
done:
    if (c->fd >= 0) close(c->fd);
    if (c->out_fd > STDOUT_FILENO) close(c->out_fd);
    free(c->ibuf);
    free(c->rbuf);
    free(c->obuf);
    free(c);
    return code;
}
