/* sockmsg cat — stdin -> socket: reading standard input into a bounded
 * buffer and sending it, as it is or one frame per line (gather writes of the
 * queued frames straight from the input buffer), then the write-side
 * shutdown at the end of input. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#include "cat.h"

static size_t
frame_total(const frame_out *f)
{
    return f->hdr.head_len + f->len + f->hdr.tail_len;
}

bool
cat_out_pending(const cat *c)
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
            cat_say("line %llu: an empty line has no type byte for %s", c->lineno, c->spec_text);
            return false;
        }
        type = line[0];
        start++;
        len--;
    }
    frame_out *f = &c->q[(c->qhead + c->qn) % QUEUE_MAX];
    int rc = sm_frame_encode(&c->spec, c->ibuf + start, len, type, &f->hdr);
    if (rc == -EMSGSIZE) {
        cat_say("line %llu: %zu bytes do not fit %s", c->lineno, len, c->spec_text);
    } else if (rc == -EINVAL) {
        cat_say("line %llu: contains the delimiter of %s", c->lineno, c->spec_text);
    } else if (rc == -EPROTO) {
        cat_say("line %llu: type byte 0x%02x is not in %s", c->lineno, (unsigned)type,
                c->spec_text);
    } else if (rc < 0) {
        cat_say("line %llu: %s", c->lineno, sm_strerror(rc));
    }
    if (rc < 0) return false;
    f->off = start;
    f->len = len;
    f->next = next;
    c->qn++;
    return true;
}

void
cat_fill_queue(cat *c)
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

bool
cat_stdin_room(cat *c)
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
        cat_say("line %llu: more than %zu bytes do not fit %s", c->lineno + 1, c->iend - c->iline,
                c->spec_text);
        c->failing = true;
        return false;
    }
    assert(c->icap > 0); /* IO_BUF from the start (cmd_cat.c): doubling grows it */
    size_t cap = c->icap > c->ilimit / 2 ? c->ilimit : c->icap * 2;
    uint8_t *p = realloc(c->ibuf, cap);
    if (!p) {
        cat_fail(c, "out of memory for a %zu-byte line", cap);
        return false;
    }
    c->ibuf = p;
    c->icap = cap;
    return true;
}

void
cat_read_stdin(cat *c)
{
    if (!cat_stdin_room(c)) return;
    ssize_t n = read(STDIN_FILENO, c->ibuf + c->iend, c->icap - c->iend);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n < 0) {
        cat_fail(c, "stdin: %s", sm_strerror(-errno));
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

void
cat_send_out(cat *c)
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
        cat_fail(c, "%s: sending: %s", c->peer, sm_strerror(-errno));
        return;
    }
    c->sent_bytes += (size_t)n;
    if (c->raw_out)
        c->ipos += (size_t)n;
    else
        sent_frames(c, (size_t)n);
}

void
cat_maybe_shutdown(cat *c)
{
    if (c->wr_shut || c->code >= 0 || cat_out_pending(c)) return;
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
        cat_fail(c, "%s: shutdown: %s", c->peer, sm_strerror(-errno));
}
