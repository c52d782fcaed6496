/* Framing codecs: resp, one complete Redis RESP2/RESP3 value per message.
 *
 * The parse keeps its place in sm_frame_decoder.resp between calls: d->scan
 * is where the next line (or bulk body) starts, resp.line how much of that
 * line was already searched for its CR, resp.body the bulk bytes due, and a
 * stack of the elements each open aggregate still needs (bounded by the
 * spec's depth). So bytes arriving one at a time cost O(total): nothing is
 * searched twice, and nothing is allocated. Nothing is consumed before the
 * message is whole; then the message is the frame and the payload at once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/frame.h>
#include "frame_internal.h"

#define ATTR_BIT  0x80000000u /* resp.left[i]: this level is an attribute's */
#define MIN_ELEM  3           /* the shortest element: "_\r\n" or "+\r\n" */
#define COUNT_TOP 0x7fffffffu /* the most elements one level can track */

static ssize_t
fail(sm_frame_decoder *d, int err, uint8_t why, uint64_t at, uint8_t byte, uint64_t value)
{
    d->err = err;
    d->err_why = why;
    d->err_pos = d->pos + at;
    d->err_byte = byte;
    d->scan = value;
    d->skip = 0;
    return err;
}

/* One element finished: count it against the open aggregates, closing each
 * that it completes. True when the whole message is complete. */
static bool
elem_done(struct sm_frame_resp_state *st)
{
    while (st->depth) {
        uint32_t v = --st->left[st->depth - 1];
        if (v & ~ATTR_BIT) return false;
        st->depth--;
        /* An attribute annotates the value after it: its slot is still open. */
        if (v & ATTR_BIT) return false;
    }
    return true;
}

/* Whether `used` bytes, then `more`, then `slots` shortest elements stay
 * within max (no overflow: more is at most max + 2 and slots max / 3 + 1). */
static bool
fits(uint64_t used, uint64_t more, uint64_t slots, uint64_t max)
{
    uint64_t total;
    if (__builtin_add_overflow(used, more, &total)) return false;
    if (slots > (UINT64_MAX - total) / MIN_ELEM) return false;
    return total + MIN_ELEM * slots <= max;
}

/* A signed decimal in p[0..n): at least one digit, an optional sign. */
static bool
parse_num(const uint8_t *p, size_t n, bool *neg, uint64_t *out)
{
    size_t i = 0;
    *neg = false;
    if (n && (p[0] == '-' || p[0] == '+')) *neg = p[i++] == '-';
    if (i == n) return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned dig = (unsigned)p[i] - '0';
        if (dig > 9) return false;
        if (v > (UINT64_MAX - dig) / 10) return false;
        v = v * 10 + dig;
    }
    *out = v;
    return true;
}

static bool
valid_scalar(uint8_t t, const uint8_t *p, size_t n)
{
    bool neg;
    uint64_t v;
    switch (t) {
    case ':':
        return parse_num(p, n, &neg, &v) && v <= (uint64_t)INT64_MAX + neg;
    case '(':
        for (size_t i = (n && (p[0] == '-' || p[0] == '+')); i < n; i++)
            if (p[i] < '0' || p[i] > '9') return false;
        return n > (size_t)(n && (p[0] == '-' || p[0] == '+'));
    case '_':
        return n == 0;
    case '#':
        return n == 1 && (p[0] == 't' || p[0] == 'f');
    case ',':
        return n > 0;
    default: /* + and -: any text without CR or LF */
        return memchr(p, '\n', n) == NULL;
    }
}

static bool
is_type(uint8_t c)
{
    return c && strchr("+-:$*_#,(!=%~|>", c) != NULL;
}

static ssize_t
done(sm_frame_decoder *d, const uint8_t *buf, size_t end, int type, sm_frame_msg *msg)
{
    memset(&d->resp, 0, sizeof d->resp);
    d->scan = 0;
    msg->data = buf;
    msg->len = end;
    msg->frame = buf;
    msg->frame_len = end;
    msg->type = type;
    return (ssize_t)end;
}

/* A redis-server style inline command: a line up to "\n" (a "\r" before it is
 * part of the line), only as a whole message. */
static ssize_t
dec_inline(sm_frame_decoder *d, uint64_t max, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    struct sm_frame_resp_state *st = &d->resp;
    size_t lim = len < max ? len : (size_t)max;
    size_t from = (size_t)st->line;
    const uint8_t *nl = from < lim ? memchr(buf + from, '\n', lim - from) : NULL;
    if (!nl) {
        if (len >= max) return fail(d, -EMSGSIZE, SM__W_RESP_MAX, 0, 0, len);
        st->line = len;
        return -EAGAIN;
    }
    return done(d, buf, (size_t)(nl - buf) + 1, -1, msg);
}

ssize_t
sm__frame_dec_resp(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
                   size_t len, sm_frame_msg *msg)
{
    struct sm_frame_resp_state *st = &d->resp;
    unsigned depth_max = b->resp_depth ? b->resp_depth : SM_FRAME_RESP_DEPTH_MAX;
    if (!st->busy) {
        if (len == 0) return -EAGAIN;
        st->busy = 1;
        st->need = 1;
        d->scan = 0;
    }
    if (!is_type(buf[0])) return dec_inline(d, max, buf, len, msg);
    for (;;) {
        size_t at = (size_t)d->scan;
        if (st->body) {
            if (len - at < st->body) return -EAGAIN;
            size_t end = at + (size_t)st->body;
            if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                return fail(d, -EPROTO, SM__W_RESP_BODY, end - 2, buf[end - 2], 0);
            d->scan = end;
            st->body = 0;
            if (elem_done(st)) return done(d, buf, end, buf[0], msg);
            continue;
        }
        if (len <= at) return -EAGAIN;
        uint8_t t = buf[at];
        if (!is_type(t)) return fail(d, -EPROTO, SM__W_RESP_TYPE, at, t, 0);
        /* The line's CR must lie below max - 1: the LF after it is inside the
         * message too. */
        size_t lim = len < max - 1 ? len : (size_t)(max - 1);
        size_t from = at + 1 + (size_t)st->line;
        const uint8_t *cr = from < lim ? memchr(buf + from, '\r', lim - from) : NULL;
        if (!cr) {
            if (len >= max - 1) return fail(d, -EMSGSIZE, SM__W_RESP_MAX, 0, 0, len);
            st->line = len - at - 1;
            return -EAGAIN;
        }
        size_t i = (size_t)(cr - buf);
        if (i + 1 >= len) {
            st->line = i - at - 1;
            return -EAGAIN;
        }
        if (buf[i + 1] != '\n') return fail(d, -EPROTO, SM__W_RESP_LF, i + 1, buf[i + 1], 0);
        st->line = 0;
        const uint8_t *p = buf + at + 1;
        size_t n = i - at - 1, next = i + 2;
        bool neg;
        uint64_t v;
        switch (t) {
        case '$':
        case '!':
        case '=':
            if (!parse_num(p, n, &neg, &v) || (neg && !(t == '$' && v == 1)) || (t == '=' && v < 4))
                return fail(d, -EPROTO, SM__W_RESP_LINE, at, t, 0);
            st->need--;
            if (neg) break; /* $-1: the RESP2 null */
            /* Its body, its CRLF and one shortest element per slot still open
             * must fit: else the message cannot, whatever follows. */
            if (!fits(next, v + 2, st->need, max))
                return fail(d, -EMSGSIZE, SM__W_RESP_BULK, at, t, v);
            d->scan = next;
            st->body = v + 2;
            continue;
        case '*':
        case '%':
        case '~':
        case '>':
        case '|': {
            if (!parse_num(p, n, &neg, &v) || (neg && !(t == '*' && v == 1)))
                return fail(d, -EPROTO, SM__W_RESP_LINE, at, t, 0);
            bool attr = t == '|';
            if (!attr) st->need--;
            if (neg) break; /* *-1: the RESP2 null array */
            if (v > max / MIN_ELEM) return fail(d, -EMSGSIZE, SM__W_RESP_COUNT, at, t, v);
            uint64_t elems = (t == '%' || attr) ? 2 * v : v;
            if (elems > COUNT_TOP || !fits(next, 0, st->need + elems, max))
                return fail(d, -EMSGSIZE, SM__W_RESP_COUNT, at, t, v);
            d->scan = next;
            if (elems == 0) {
                if (attr) continue; /* an empty attribute: the value is still due */
                if (elem_done(st)) return done(d, buf, next, buf[0], msg);
                continue;
            }
            if (st->depth >= depth_max) return fail(d, -EPROTO, SM__W_RESP_DEPTH, at, t, depth_max);
            st->need += elems;
            st->left[st->depth++] = (uint32_t)elems | (attr ? ATTR_BIT : 0);
            continue;
        }
        default:
            if (!valid_scalar(t, p, n)) return fail(d, -EPROTO, SM__W_RESP_LINE, at, t, 0);
            st->need--;
            break;
        }
        /* A scalar (or a null) ends at next. */
        d->scan = next;
        if (elem_done(st)) return done(d, buf, next, buf[0], msg);
    }
}

int
sm__frame_resp_detail(const sm_frame_decoder *d, char *out, size_t out_len)
{
    uint64_t pos = d->err_pos, v = d->scan, max = sm_frame_max(d->spec);
    uint8_t c = d->err_byte;
    char ch = c >= 0x20 && c < 0x7f ? (char)c : '?';
    switch (d->err_why) {
    case SM__W_RESP_TYPE:
        return snprintf(out, out_len,
                        "byte 0x%02x '%c' at stream offset %" PRIu64 " is not a RESP type", c, ch,
                        pos);
    case SM__W_RESP_LF:
        return snprintf(
            out, out_len,
            "byte 0x%02x at stream offset %" PRIu64 " should be the LF after a CR (resp)", c, pos);
    case SM__W_RESP_BODY:
        return snprintf(out, out_len,
                        "bulk body not followed by CRLF at stream offset %" PRIu64 " (resp)", pos);
    case SM__W_RESP_LINE:
        return snprintf(out, out_len,
                        "malformed RESP '%c' line at stream offset %" PRIu64
                        " (bad length, count or value)",
                        ch, pos);
    case SM__W_RESP_DEPTH:
        return snprintf(out, out_len,
                        "RESP aggregate '%c' at stream offset %" PRIu64
                        " nests deeper than depth=%" PRIu64,
                        ch, pos, v);
    case SM__W_RESP_BULK:
        return snprintf(out, out_len,
                        "RESP '%c' length %" PRIu64 " at stream offset %" PRIu64
                        " cannot fit in max %" PRIu64,
                        ch, v, pos, max);
    case SM__W_RESP_COUNT:
        return snprintf(out, out_len,
                        "RESP '%c' count %" PRIu64 " at stream offset %" PRIu64
                        " cannot fit in max %" PRIu64,
                        ch, v, pos, max);
    default:
        return snprintf(out, out_len,
                        "RESP message exceeds max %" PRIu64 " (%" PRIu64
                        " bytes without its end, from stream offset %" PRIu64 ")",
                        max, v, pos);
    }
}

int
sm__frame_resp_check(const sm_frame_spec *spec, const void *payload, size_t len)
{
    if (len > sm_frame_max(spec)) return -EMSGSIZE;
    if (!payload) return 0;
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    sm_frame_msg m;
    ssize_t n = sm_frame_decode(&d, payload, len, &m);
    if (n == -EMSGSIZE) return -EMSGSIZE;
    return n == (ssize_t)len ? 0 : -EINVAL;
}
