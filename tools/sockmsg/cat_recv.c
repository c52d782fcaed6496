/* sockmsg cat — socket -> stdout: receiving into a bounded buffer,
 * decoding frames with the library's pure decoder, rendering messages one
 * per line or as hex dumps, and writing stdout without blocking. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#include "cat.h"

#define HEX_LINE_MAX 96 /* one hex dump line, offset of any width included */

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
            memset(p, ' ', 3);
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
            cat_fail(c, "%s: receiving: %s", c->peer, sm_strerror(c->sock_err));
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
        cat_fail(c, "%s: %s: %s", c->peer, sm_strerror((int)err), detail);
    else
        cat_fail(c, "%s: %s", c->peer, sm_strerror((int)err));
}

void
cat_render_in(cat *c)
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
                cat_fail(c, "%s: receiving: %s", c->peer, sm_strerror(c->sock_err));
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
        cat_fail(c, "%s: a message longer than the %zu-byte receive buffer", c->peer, c->rcap);
        return false;
    }
    assert(c->rcap > 0); /* IO_BUF from the start (cmd_cat.c): doubling grows it */
    size_t cap = c->rcap > c->rlimit / 2 ? c->rlimit : c->rcap * 2;
    uint8_t *p = realloc(c->rbuf, cap);
    if (!p) {
        cat_fail(c, "out of memory for a %zu-byte message", cap);
        return false;
    }
    c->rbuf = p;
    c->rcap = cap;
    return true;
}

bool
cat_want_sock_read(const cat *c)
{
    if (c->sock_eof || c->have_msg) return false;
    return c->rend < c->rcap || c->rpos > 0 || (c->framed && c->rcap < c->rlimit);
}

void
cat_recv_in(cat *c)
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

bool
cat_write_stdout(cat *c)
{
    size_t n = c->oend - c->opos;
    if (n > c->out_chunk) n = c->out_chunk;
    ssize_t w = write(c->out_fd, c->obuf + c->opos, n);
    if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) return true;
        if (errno == EPIPE) return false;
        cat_fail(c, "stdout: %s", sm_strerror(-errno));
        return true;
    }
    c->opos += (size_t)w;
    return true;
}
