/* The format language of sm_pack: byte order, codes, counts, sizes and
 * alignment (after CPython's Modules/_struct.c), and the explanations that
 * name the byte of a format that is wrong. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/error.h>
#include <sockmsg/pack.h>

#include "internal.h"
#include "pack_internal.h"

static bool
host_little(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static bool
code_info(char c, bool native, size_t *size, size_t *align)
{
    size_t sz, al;
    switch (c) {
    case 'x':
    case 'c':
    case 'b':
    case 'B':
    case 's':
    case 'p':
        sz = 1, al = 1;
        break;
    case '?':
        sz = native ? sizeof(_Bool) : 1, al = _Alignof(_Bool);
        break;
    case 'h':
    case 'H':
    case 'e': /* CPython's native table aligns e like short */
        sz = native ? sizeof(short) : 2, al = _Alignof(short);
        break;
    case 'i':
    case 'I':
        sz = native ? sizeof(int) : 4, al = _Alignof(int);
        break;
    case 'l':
    case 'L':
        sz = native ? sizeof(long) : 4, al = _Alignof(long);
        break;
    case 'q':
    case 'Q':
        sz = native ? sizeof(long long) : 8, al = _Alignof(long long);
        break;
    case 'f':
        sz = 4, al = _Alignof(float);
        break;
    case 'd':
        sz = 8, al = _Alignof(double);
        break;
    default:
        return false;
    }
    *size = sz;
    *align = native ? al : 1;
    return true;
}

int
sm__fmt_init(sm__fmt *f, const char *fmt)
{
    *f = (sm__fmt){.start = fmt, .s = fmt};
    if (!fmt) return -EINVAL;
    f->little = host_little();
    switch (*fmt) {
    case '@':
        f->native = true;
        fmt++;
        break;
    case '=':
        fmt++;
        break;
    case '<':
        f->little = true;
        fmt++;
        break;
    case '>':
    case '!':
        f->little = false;
        fmt++;
        break;
    default:
        f->native = true;
        break;
    }
    f->s = fmt;
    return 0;
}

/* Python's Py_ISSPACE: the ASCII whitespace bytes only. */
static bool
fmt_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int
fmt_fail(sm__fmt *f, int kind, const char *at)
{
    f->err_kind = kind;
    f->err_at = at;
    return SM_ERR_FORMAT;
}

int
sm__fmt_next(sm__fmt *f, sm__fmt_item *it)
{
    const char *s = f->s;
    while (fmt_space(*s))
        s++;
    if (!*s) {
        f->s = s;
        return 0;
    }
    const char *item = s;
    size_t count = 1;
    if (*s >= '0' && *s <= '9') {
        count = 0;
        while (*s >= '0' && *s <= '9') {
            size_t d = (size_t)(*s - '0');
            if (count > ((size_t)SSIZE_MAX - d) / 10) return fmt_fail(f, SM__FMT_COUNT, item);
            count = count * 10 + d;
            s++;
        }
    }
    /* A count followed by the end, a space or another byte-order mark is an
     * error here, as in Python (a count and its code must be adjacent). */
    if (!code_info(*s, f->native, &it->size, &it->align)) {
        if (s > item && (!*s || fmt_space(*s))) return fmt_fail(f, SM__FMT_NOCODE, item);
        if (strchr("@=<>!", *s)) return fmt_fail(f, SM__FMT_ORDER, s);
        return fmt_fail(f, SM__FMT_UNKNOWN, s);
    }
    it->code = *s;
    it->at = (size_t)(s - f->start);
    it->count = count;
    f->s = s + 1;
    return 1;
}

ssize_t
sm__fmt_scan(sm__fmt *f, const char *fmt, size_t *nvals)
{
    sm__fmt_item it;
    int rc = sm__fmt_init(f, fmt);
    if (rc < 0) return rc;
    size_t size = 0, n = 0;
    while ((rc = sm__fmt_next(f, &it)) > 0) {
        /* size <= SSIZE_MAX and align <= 8, so aligning cannot wrap. */
        size = sm__fmt_align_up(size, it.align);
        if (size > (size_t)SSIZE_MAX || it.count > ((size_t)SSIZE_MAX - size) / it.size)
            return fmt_fail(f, SM__FMT_SIZE, f->start + it.at);
        size += sm__fmt_item_bytes(&it);
        if (sm__fmt_is_string(&it))
            n++;
        else if (it.code != 'x')
            n += it.count;
    }
    if (rc < 0) return rc;
    if (nvals) *nvals = n;
    return (ssize_t)size;
}

/* One byte as a message shows it: 'z', or \xNN when unprintable. */
static void
byte_text(char c, char out[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(out, 8, "'%c'", c);
    else
        snprintf(out, 8, "\\x%02x", u);
}

void
sm__fmt_quote(const char *fmt, char *out, size_t out_len)
{
    if (!out_len) return;
    size_t o = 0, k = 0;
    for (; fmt[k] && k < 64; k++) {
        unsigned char u = (unsigned char)fmt[k];
        char piece[8];
        if (u >= 0x20 && u < 0x7f && u != '\\')
            snprintf(piece, sizeof piece, "%c", u);
        else
            snprintf(piece, sizeof piece, "\\x%02x", u);
        size_t n = strlen(piece);
        if (o + n + 4 > out_len) break;
        memcpy(out + o, piece, n);
        o += n;
    }
    if (fmt[k] && o + 4 <= out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int
sm__fmt_why(const sm__fmt *f, char *why, size_t why_len)
{
    if (!why || !why_len) return SM_ERR_FORMAT;
    char q[80], b[8];
    sm__fmt_quote(f->start, q, sizeof q);
    size_t at = (size_t)(f->err_at - f->start);
    switch (f->err_kind) {
    case SM__FMT_UNKNOWN:
        byte_text(*f->err_at, b);
        if (*f->err_at && strchr("nNP", *f->err_at))
            return sm__why(why, why_len, SM_ERR_FORMAT,
                           "pack format '%s': code %s at offset %zu is native-only in Python's "
                           "struct and not supported",
                           q, b, at);
        return sm__why(why, why_len, SM_ERR_FORMAT,
                       "pack format '%s': unknown code %s at offset %zu", q, b, at);
    case SM__FMT_ORDER:
        byte_text(*f->err_at, b);
        return sm__why(why, why_len, SM_ERR_FORMAT,
                       "pack format '%s': byte-order mark %s at offset %zu (only the first "
                       "character may give the byte order)",
                       q, b, at);
    case SM__FMT_NOCODE:
        return sm__why(why, why_len, SM_ERR_FORMAT,
                       "pack format '%s': the count at offset %zu has no code after it", q, at);
    case SM__FMT_COUNT:
        return sm__why(why, why_len, SM_ERR_FORMAT,
                       "pack format '%s': the count at offset %zu is too large", q, at);
    default:
        byte_text(*f->err_at, b);
        return sm__why(why, why_len, SM_ERR_FORMAT,
                       "pack format '%s': code %s at offset %zu takes the size over %zd bytes", q,
                       b, at, (ssize_t)SSIZE_MAX);
    }
}

int
sm_pack_check(const char *fmt, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    sm__fmt f;
    ssize_t rc = sm__fmt_scan(&f, fmt, NULL);
    if (rc == -EINVAL) return sm__why(why, why_len, -EINVAL, "pack format is NULL");
    if (rc < 0) return sm__fmt_why(&f, why, why_len);
    return 0;
}
