/* HTTP/1.1 response parsing and http:// URLs for `sockmsg get`: pure code over
 * the caller's bytes, no I/O and no allocation (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/error.h>

/* The status line is checked before the head is complete, so a peer that does
 * not speak HTTP fails at once; only within this many bytes, to keep feeding a
 * long head byte by byte linear. */
#define STATUS_EARLY_MAX 1024

static bool
is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* VCHAR, obs-text, SP, HTAB: what a field value or reason phrase may hold. */
static bool
is_field_char(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || (ch > 0x20 && ch != 0x7f);
}

static bool
is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool
is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static int
hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static unsigned char
ascii_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

static bool
span_ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)lit[i])) return false;
    return true;
}

static ssize_t
head_fail(http_response *res, int err, const char *what, size_t off)
{
    res->error = what;
    res->error_off = off;
    return err;
}

/* At a CR or LF at buf[i] (inside the head, which ends with LF): the offset of
 * the next line, or 0 for a CR without its LF. */
static size_t
line_end(const char *buf, size_t i)
{
    if (buf[i] == '\n') return i + 1;
    return buf[i + 1] == '\n' ? i + 2 : 0;
}

/* The byte at i of a line of n bytes; past its end, as if the line ended. */
static unsigned char
at(const unsigned char *b, size_t n, size_t i)
{
    return i < n ? b[i] : '\n';
}

/* Parse the status line, which ends at the first LF in buf[0..lim). Returns
 * the offset of the next line or an error. The checks look at the line alone,
 * so they give the same answer however much of the head has arrived. */
static ssize_t
parse_status_line(const char *buf, size_t lim, http_response *res)
{
    const unsigned char *b = (const unsigned char *)buf;
    const char *nl = memchr(buf, '\n', lim);
    size_t n = nl ? (size_t)(nl - buf) + 1 : lim;
    if (!is_digit(at(b, n, 5)) || at(b, n, 6) != '.' || !is_digit(at(b, n, 7)))
        return head_fail(res, SM_ERR_HTTP, "malformed HTTP version", 5);
    if (b[5] != '1') return head_fail(res, SM_ERR_HTTP, "unsupported HTTP major version", 5);
    if (at(b, n, 8) != ' ')
        return head_fail(res, SM_ERR_HTTP, "expected a space after the HTTP version", 8);
    if (!is_digit(at(b, n, 9)) || !is_digit(at(b, n, 10)) || !is_digit(at(b, n, 11)) ||
        is_digit(at(b, n, 12)))
        return head_fail(res, SM_ERR_HTTP, "status code is not 3 digits", 9);
    int status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    if (status < 100 || status > 599)
        return head_fail(res, SM_ERR_HTTP, "status code out of range (100-599)", 9);
    size_t i = 12;
    if (b[i] == ' ') {
        i++;
    } else if (b[i] != '\r' && b[i] != '\n') {
        return head_fail(res, SM_ERR_HTTP, "expected a space after the status code", i);
    }
    size_t reason = i;
    while (b[i] != '\r' && b[i] != '\n') {
        if (!is_field_char(b[i]))
            return head_fail(res, SM_ERR_HTTP, "invalid character in reason phrase", i);
        i++;
    }
    size_t next = line_end(buf, i);
    if (!next) return head_fail(res, SM_ERR_HTTP, "CR not followed by LF", i);
    res->minor_version = b[7] - '0';
    res->status = status;
    res->reason = buf + reason;
    res->reason_len = i - reason;
    return (ssize_t)next;
}

/* Scan a field value from buf[i] to its line end. Sets *end past the trimmed
 * value, returns the offset of the next line or an error. */
static ssize_t
scan_value(const char *buf, size_t i, size_t *start, size_t *end, http_response *res)
{
    const unsigned char *b = (const unsigned char *)buf;
    while (is_ws(b[i]))
        i++;
    *start = i;
    *end = i;
    while (b[i] != '\r' && b[i] != '\n') {
        if (!is_field_char(b[i]))
            return head_fail(res, SM_ERR_HTTP, "invalid character in field value", i);
        i++;
        if (!is_ws(b[i - 1])) *end = i;
    }
    size_t next = line_end(buf, i);
    if (!next) return head_fail(res, SM_ERR_HTTP, "CR not followed by LF", i);
    return (ssize_t)next;
}

static ssize_t
parse_fields(const char *buf, size_t head_len, size_t i, http_response *res)
{
    const unsigned char *b = (const unsigned char *)buf;
    for (;;) {
        if (b[i] == '\r' || b[i] == '\n') {
            size_t next = line_end(buf, i);
            if (!next) return head_fail(res, SM_ERR_HTTP, "CR not followed by LF", i);
            return next == head_len ? (ssize_t)head_len
                                    : head_fail(res, SM_ERR_HTTP, "data after the head", next);
        }
        size_t start, end;
        ssize_t next;
        if (is_ws(b[i])) {
            /* Obsolete line folding continues the previous value. */
            if (res->num_headers == 0)
                return head_fail(res, SM_ERR_HTTP, "folded line without a field before it", i);
            next = scan_value(buf, i, &start, &end, res);
            if (next < 0) return next;
            http_header *h = &res->headers[res->num_headers - 1];
            if (end > start) {
                if (h->value_len == 0) h->value = buf + start;
                h->value_len = (size_t)(buf + end - h->value);
            }
            i = (size_t)next;
            continue;
        }
        size_t name = i;
        while (b[i] != ':') {
            if (is_tchar(b[i])) {
                i++;
                continue;
            }
            if (is_ws(b[i]))
                return head_fail(res, SM_ERR_HTTP, "whitespace between field name and colon", i);
            if (b[i] == '\r' || b[i] == '\n')
                return head_fail(res, SM_ERR_HTTP, "field line without a colon", i);
            return head_fail(res, SM_ERR_HTTP, "invalid character in field name", i);
        }
        if (i == name) return head_fail(res, SM_ERR_HTTP, "empty field name", i);
        size_t name_len = i - name;
        next = scan_value(buf, i + 1, &start, &end, res);
        if (next < 0) return next;
        if (res->num_headers == res->headers_cap)
            return head_fail(res, SM_ERR_LIMIT, "too many header fields", name);
        res->headers[res->num_headers++] = (http_header){
            .name = buf + name,
            .name_len = name_len,
            .value = buf + start,
            .value_len = end - start,
        };
        i = (size_t)next;
    }
}

ssize_t
http_parse_response(const char *buf, size_t len, size_t prev_len, http_response *res)
{
    if (!buf || !res || (!res->headers && res->headers_cap)) return -EINVAL;
    res->num_headers = 0;
    res->error = NULL;
    res->error_off = 0;

    static const char magic[] = "HTTP/";
    for (size_t i = 0; i < len && i < 5; i++)
        if (buf[i] != magic[i])
            return head_fail(res, SM_ERR_HTTP, "response does not start with 'HTTP/'", i);

    /* The head ends at an empty line; the search resumes a few bytes before
     * where the last call stopped, since the end marker is up to 3 bytes. */
    size_t i = prev_len > 3 && prev_len <= len ? prev_len - 3 : 0;
    size_t head_len = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) break;
        i = (size_t)(nl - buf);
        if (i + 1 == len) break; /* the next byte decides */
        if (buf[i + 1] == '\n') {
            head_len = i + 2;
            break;
        }
        if (buf[i + 1] == '\r') {
            if (i + 2 == len) break;
            if (buf[i + 2] == '\n') {
                head_len = i + 3;
                break;
            }
        }
        i++;
    }
    if (head_len > HTTP_HEAD_MAX || (!head_len && len >= HTTP_HEAD_MAX))
        return head_fail(res, -EMSGSIZE, "response head larger than 64 KiB", HTTP_HEAD_MAX);

    if (!head_len) {
        if (prev_len < STATUS_EARLY_MAX) {
            size_t lim = len < STATUS_EARLY_MAX ? len : STATUS_EARLY_MAX;
            const char *nl = memchr(buf, '\n', lim);
            if (nl) {
                ssize_t r = parse_status_line(buf, (size_t)(nl - buf) + 1, res);
                if (r < 0) return r;
            }
        }
        return -EAGAIN;
    }

    ssize_t next = parse_status_line(buf, head_len, res);
    if (next < 0) return next;
    ssize_t r = parse_fields(buf, head_len, (size_t)next, res);
    if (r < 0) return r;
    res->head_len = head_len;
    return (ssize_t)head_len;
}

int
http_find_header(const http_response *res, const char *name, size_t from)
{
    for (size_t i = from; i < res->num_headers; i++)
        if (span_ieq(res->headers[i].name, res->headers[i].name_len, name)) return (int)i;
    return -1;
}

static bool
is_list_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Next element of a comma-separated field value: the element (trimmed) in
 * *el and *el_len; returns false at the end. Empty elements are skipped, as the
 * list syntax allows. */
static bool
next_element(const char **p, const char *end, const char **el, size_t *el_len)
{
    const char *s = *p;
    for (;;) {
        while (s < end && (is_list_ws((unsigned char)*s) || *s == ','))
            s++;
        if (s == end) {
            *p = s;
            return false;
        }
        const char *e = s;
        while (e < end && *e != ',')
            e++;
        *p = e;
        while (e > s && is_list_ws((unsigned char)e[-1]))
            e--;
        *el = s;
        *el_len = (size_t)(e - s);
        return true;
    }
}

static int
framing_fail(http_response *res, const char *what)
{
    res->error = what;
    res->error_off = 0;
    return SM_ERR_HTTP;
}

int
http_body_framing(http_response *res, uint64_t *length)
{
    if (!res || !length) return -EINVAL;
    *length = 0;
    if (res->status < 200 || res->status == 204 || res->status == 304) return HTTP_BODY_NONE;

    bool te = false, chunked = false;
    for (int k = http_find_header(res, "Transfer-Encoding", 0); k >= 0;
         k = http_find_header(res, "Transfer-Encoding", (size_t)k + 1)) {
        const http_header *h = &res->headers[k];
        const char *p = h->value, *end = h->value + h->value_len, *el;
        size_t el_len;
        te = true;
        while (next_element(&p, end, &el, &el_len)) {
            /* Only chunked: we never offer other codings with TE, and a
             * server must not use codings the client did not offer. */
            if (!span_ieq(el, el_len, "chunked"))
                return framing_fail(res, "unsupported transfer coding (only chunked is)");
            if (chunked) return framing_fail(res, "chunked transfer coding applied twice");
            chunked = true;
        }
    }
    if (te) {
        if (res->minor_version == 0)
            return framing_fail(res, "Transfer-Encoding in an HTTP/1.0 response");
        if (!chunked) return framing_fail(res, "empty Transfer-Encoding");
        return HTTP_BODY_CHUNKED;
    }

    bool have = false;
    uint64_t len = 0;
    for (int k = http_find_header(res, "Content-Length", 0); k >= 0;
         k = http_find_header(res, "Content-Length", (size_t)k + 1)) {
        const http_header *h = &res->headers[k];
        const char *p = h->value, *end = h->value + h->value_len, *el;
        size_t el_len;
        bool any = false;
        while (next_element(&p, end, &el, &el_len)) {
            uint64_t v = 0;
            for (size_t i = 0; i < el_len; i++) {
                if (!is_digit((unsigned char)el[i]) || v > (UINT64_MAX >> 4) / 10)
                    return framing_fail(res, "invalid Content-Length");
                v = v * 10 + (uint64_t)(el[i] - '0');
            }
            if (have && v != len) return framing_fail(res, "conflicting Content-Length values");
            have = any = true;
            len = v;
        }
        if (!any) return framing_fail(res, "invalid Content-Length");
    }
    if (have) {
        *length = len;
        return HTTP_BODY_LENGTH;
    }
    return HTTP_BODY_EOF;
}

/* Chunked decoder states. */
enum {
    CH_SIZE_START = 0, /* expecting the first hex digit of a chunk size */
    CH_SIZE,           /* in the hex digits */
    CH_SIZE_WS,        /* whitespace after the size */
    CH_EXT,            /* in chunk extensions, up to the line end */
    CH_SIZE_LF,        /* CR seen at the end of the size line */
    CH_DATA,           /* in chunk data: c->left bytes to go */
    CH_DATA_END,       /* expecting the CRLF after chunk data */
    CH_DATA_LF,        /* CR seen after chunk data */
    CH_TRAILER_START,  /* at the start of a trailer line (or the final empty line) */
    CH_TRAILER_NAME,   /* in a trailer field name */
    CH_TRAILER_VALUE,  /* in a trailer field value */
    CH_TRAILER_LF,     /* CR seen at the end of a trailer line */
    CH_END_LF,         /* CR seen on the final empty line */
    CH_DONE,
};

void
http_chunked_init(http_chunked *c)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE_START;
}

bool
http_chunked_done(const http_chunked *c)
{
    return c->state == CH_DONE;
}

static ssize_t
chunk_fail(http_chunked *c, int err, const char *what, size_t i)
{
    c->err = err;
    c->error = what;
    c->offset += i;
    return err;
}

/* The size line is complete: data follows, or the trailers after a 0 size. */
static void
size_done(http_chunked *c)
{
    c->line = 0;
    if (c->left) {
        c->state = CH_DATA;
    } else {
        c->state = CH_TRAILER_START;
        c->digits = 0; /* from here on: "a trailer field was seen" */
    }
}

ssize_t
http_chunked_decode(http_chunked *c, const char *buf, size_t len, const char **data,
                    size_t *data_len)
{
    *data = NULL;
    *data_len = 0;
    if (c->err) return c->err;
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len && c->state != CH_DONE) {
        unsigned char ch = b[i];
        if (c->state == CH_DATA) {
            size_t n = len - i;
            if (n > c->left) n = (size_t)c->left;
            *data = buf + i;
            *data_len = n;
            c->left -= n;
            if (c->left == 0) c->state = CH_DATA_END;
            i += n;
            break;
        }
        bool in_size = c->state <= CH_SIZE_LF;
        bool in_trailers = c->state >= CH_TRAILER_START;
        if (in_size && ++c->line > HTTP_CHUNK_LINE_MAX)
            return chunk_fail(c, -EMSGSIZE, "chunk-size line too long", i);
        if (in_trailers && ++c->line > HTTP_TRAILERS_MAX)
            return chunk_fail(c, -EMSGSIZE, "trailer section too long", i);
        int v = hex_value(ch);
        switch (c->state) {
        case CH_SIZE_START:
            if (v < 0) return chunk_fail(c, SM_ERR_HTTP, "chunk size expected", i);
            c->left = (uint64_t)v;
            c->digits = v != 0;
            c->state = CH_SIZE;
            break;
        case CH_SIZE:
            if (v >= 0) {
                if (c->digits == 16)
                    return chunk_fail(c, -EMSGSIZE, "chunk size over 16 hex digits", i);
                c->left = c->left << 4 | (uint64_t)v;
                c->digits += c->left != 0;
            } else if (is_ws(ch)) {
                c->state = CH_SIZE_WS;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else {
                return chunk_fail(c, SM_ERR_HTTP, "invalid character in chunk size", i);
            }
            break;
        case CH_SIZE_WS:
            if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else if (!is_ws(ch)) {
                return chunk_fail(c, SM_ERR_HTTP, "invalid character after chunk size", i);
            }
            break;
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else if (!is_field_char(ch)) {
                return chunk_fail(c, SM_ERR_HTTP, "invalid character in chunk extension", i);
            }
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return chunk_fail(c, SM_ERR_HTTP, "CR not followed by LF", i);
            size_done(c);
            break;
        case CH_DATA_END:
            if (ch == '\r') {
                c->state = CH_DATA_LF;
            } else if (ch == '\n') {
                c->state = CH_SIZE_START;
            } else {
                return chunk_fail(c, SM_ERR_HTTP, "chunk data not followed by CRLF", i);
            }
            break;
        case CH_DATA_LF:
            if (ch != '\n') return chunk_fail(c, SM_ERR_HTTP, "CR not followed by LF", i);
            c->state = CH_SIZE_START;
            break;
        case CH_TRAILER_START:
            if (ch == '\r') {
                c->state = CH_END_LF;
            } else if (ch == '\n') {
                c->state = CH_DONE;
            } else if (is_tchar(ch)) {
                c->state = CH_TRAILER_NAME;
            } else if (is_ws(ch) && c->digits) {
                c->state = CH_TRAILER_VALUE; /* obsolete line folding */
            } else {
                return chunk_fail(c, SM_ERR_HTTP, "invalid trailer field", i);
            }
            break;
        case CH_TRAILER_NAME:
            if (ch == ':') {
                c->state = CH_TRAILER_VALUE;
            } else if (is_ws(ch)) {
                return chunk_fail(c, SM_ERR_HTTP, "whitespace between field name and colon", i);
            } else if (ch == '\r' || ch == '\n') {
                return chunk_fail(c, SM_ERR_HTTP, "trailer line without a colon", i);
            } else if (!is_tchar(ch)) {
                return chunk_fail(c, SM_ERR_HTTP, "invalid character in field name", i);
            }
            break;
        case CH_TRAILER_VALUE:
            if (ch == '\r') {
                c->state = CH_TRAILER_LF;
            } else if (ch == '\n') {
                c->state = CH_TRAILER_START;
                c->digits = 1;
            } else if (!is_field_char(ch)) {
                return chunk_fail(c, SM_ERR_HTTP, "invalid character in field value", i);
            }
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') return chunk_fail(c, SM_ERR_HTTP, "CR not followed by LF", i);
            c->state = CH_TRAILER_START;
            c->digits = 1;
            break;
        case CH_END_LF:
            if (ch != '\n') return chunk_fail(c, SM_ERR_HTTP, "CR not followed by LF", i);
            c->state = CH_DONE;
            break;
        default:
            return chunk_fail(c, -EINVAL, "decoder state corrupt", i);
        }
        i++;
    }
    c->offset += i;
    return (ssize_t)i;
}

/* URLs. */

static int url_fail(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
url_fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Length of a scheme followed by ':' at the start of s, or 0. */
static size_t
scheme_len(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ':') return i;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) ||
                  ch == '+' || ch == '-' || ch == '.';
        if (!ok) return 0;
    }
    return 0;
}

static bool
is_host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '-' ||
           ch == '.' || ch == '_' || ch == '~';
}

/* Remove "." and ".." segments (RFC 3986 section 5.2.4). `in` is scratch
 * (modified); out has room for n bytes. Returns the output length. */
static size_t
remove_dots(char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        const char *s = in + i;
        size_t r = n - i;
        bool up = false;
        if (r >= 3 && !memcmp(s, "../", 3)) {
            i += 3;
        } else if (r >= 2 && !memcmp(s, "./", 2)) {
            i += 2;
        } else if (r >= 3 && !memcmp(s, "/./", 3)) {
            i += 2;
        } else if (r == 2 && !memcmp(s, "/.", 2)) {
            in[i + 1] = '/';
            i += 1;
        } else if (r >= 4 && !memcmp(s, "/../", 4)) {
            i += 3;
            up = true;
        } else if (r == 3 && !memcmp(s, "/..", 3)) {
            in[i + 2] = '/';
            i += 2;
            up = true;
        } else if ((r == 1 && s[0] == '.') || (r == 2 && !memcmp(s, "..", 2))) {
            i = n;
        } else {
            size_t j = i + (in[i] == '/');
            while (j < n && in[j] != '/')
                j++;
            memcpy(out + o, in + i, j - i);
            o += j - i;
            i = j;
        }
        if (up) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0) o--;
        }
    }
    return o;
}

/* Append src[0..n) to out[*o..cap), percent-encoding SP and bytes >= 0x7f. */
static bool
append_encoded(char *out, size_t cap, size_t *o, const char *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == ' ' || ch >= 0x7f) {
            if (*o + 3 >= cap) return false;
            out[(*o)++] = '%';
            out[(*o)++] = hex[ch >> 4];
            out[(*o)++] = hex[ch & 15];
        } else {
            if (*o + 1 >= cap) return false;
            out[(*o)++] = (char)ch;
        }
    }
    return true;
}

/* Build an origin-form target from an absolute path (or "") and a query. */
static int
build_target(char *target, const char *path, size_t plen, const char *query, size_t qlen,
             bool has_query, char *why, size_t why_len)
{
    char scratch[HTTP_TARGET_MAX], clean[HTTP_TARGET_MAX];
    if (plen >= sizeof scratch) return url_fail(why, why_len, -ENAMETOOLONG, "URL path too long");
    if (plen == 0) {
        path = "/";
        plen = 1;
    }
    memcpy(scratch, path, plen);
    size_t clen = remove_dots(scratch, plen, clean);
    if (clen == 0) clean[clen++] = '/';
    size_t o = 0;
    bool ok = append_encoded(target, HTTP_TARGET_MAX, &o, clean, clen);
    if (ok && has_query) {
        ok = o + 1 < HTTP_TARGET_MAX;
        if (ok) target[o++] = '?';
        ok = ok && append_encoded(target, HTTP_TARGET_MAX, &o, query, qlen);
    }
    if (!ok) return url_fail(why, why_len, -ENAMETOOLONG, "URL path and query too long");
    target[o] = '\0';
    return 0;
}

static int
parse_port(const char *s, size_t n, uint16_t *port, char *why, size_t why_len)
{
    if (n == 0) {
        *port = 80;
        return 0;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]) || i >= 5)
            return url_fail(why, why_len, -EINVAL, "bad port '%.*s'", (int)(n > 16 ? 16 : n), s);
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return url_fail(why, why_len, -EINVAL, "port %u out of range (1-65535)", v);
    *port = (uint16_t)v;
    return 0;
}

static int
parse_authority(http_url *u, const char *s, size_t n, char *why, size_t why_len)
{
    if (memchr(s, '@', n))
        return url_fail(why, why_len, -EINVAL, "user credentials in URLs are not supported");
    size_t i = 0, o = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return url_fail(why, why_len, -EINVAL, "unterminated '[' in host");
        size_t end = (size_t)(close - s);
        char addr[INET6_ADDRSTRLEN + 1];
        size_t a = 0;
        for (i = 1; i < end && s[i] != '%'; i++) {
            if (a + 1 >= sizeof addr)
                return url_fail(why, why_len, -EINVAL, "bad IPv6 address in host");
            addr[a++] = s[i];
        }
        addr[a] = '\0';
        struct in6_addr in6;
        if (inet_pton(AF_INET6, addr, &in6) != 1)
            return url_fail(why, why_len, -EINVAL, "bad IPv6 address '%s' in host", addr);
        memcpy(u->host, addr, a);
        o = a;
        if (i < end) {
            /* A zone: "%25lo" as RFC 6874 writes it, or a bare "%lo". */
            i += (end - i >= 3 && !memcmp(s + i, "%25", 3)) ? 3 : 1;
            if (i == end) return url_fail(why, why_len, -EINVAL, "empty IPv6 zone in host");
            u->host[o++] = '%';
            for (; i < end; i++) {
                if (!is_host_char((unsigned char)s[i]) || o + 1 >= HTTP_HOST_MAX)
                    return url_fail(why, why_len, -EINVAL, "bad IPv6 zone in host");
                u->host[o++] = s[i];
            }
        }
        u->host[o] = '\0';
        u->host_v6 = true;
        i = end + 1;
        if (i < n && s[i] != ':')
            return url_fail(why, why_len, -EINVAL, "unexpected characters after ']' in host");
    } else {
        for (; i < n && s[i] != ':'; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (!is_host_char(ch))
                return url_fail(why, why_len, -EINVAL, "invalid character '%c' in host",
                                ch >= 0x20 && ch < 0x7f ? ch : '?');
            if (o + 1 >= HTTP_HOST_MAX)
                return url_fail(why, why_len, -ENAMETOOLONG, "host too long");
            u->host[o++] = (char)ch;
        }
        u->host[o] = '\0';
        u->host_v6 = false;
        if (o == 0) return url_fail(why, why_len, -EINVAL, "missing host");
    }
    if (i < n) return parse_port(s + i + 1, n - i - 1, &u->port, why, why_len);
    u->port = 80;
    return 0;
}

static int
check_chars(const char *s, size_t n, char *why, size_t why_len)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return url_fail(why, why_len, -EINVAL, "control character in URL");
    }
    return 0;
}

/* Split "path[?query][#fragment]" into its parts. */
static void
split_path(const char *s, size_t n, size_t *plen, const char **query, size_t *qlen, bool *has_q)
{
    size_t end = n;
    const char *hash = memchr(s, '#', n);
    if (hash) end = (size_t)(hash - s);
    const char *q = memchr(s, '?', end);
    *has_q = q != NULL;
    *plen = q ? (size_t)(q - s) : end;
    *query = q ? q + 1 : s + end;
    *qlen = q ? (size_t)(s + end - (q + 1)) : 0;
}

int
http_url_parse(http_url *u, const char *str, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!u || !str) return -EINVAL;
    size_t n = strlen(str);
    int rc = check_chars(str, n, why, why_len);
    if (rc < 0) return rc;
    size_t sl = scheme_len(str, n);
    const char *p = str + sl + 1;
    bool slashes = sl > 0 && !strncmp(p, "//", 2);
    if (sl > 0 && span_ieq(str, sl, "https"))
        return url_fail(why, why_len, -EPROTONOSUPPORT, "https is not supported");
    if (sl > 0 && span_ieq(str, sl, "http")) {
        if (!slashes) return url_fail(why, why_len, -EINVAL, "expected '//' after 'http:' in URL");
    } else if (slashes) {
        return url_fail(why, why_len, -EPROTONOSUPPORT,
                        "unsupported URL scheme '%.*s' (only http://)", (int)sl, str);
    } else {
        return url_fail(why, why_len, -EINVAL, "missing 'http://' in URL '%.200s'", str);
    }
    p += 2;
    size_t alen = strcspn(p, "/?#");
    http_url t;
    rc = parse_authority(&t, p, alen, why, why_len);
    if (rc < 0) return rc;
    const char *rest = p + alen, *query;
    size_t plen, qlen;
    bool has_q;
    split_path(rest, strlen(rest), &plen, &query, &qlen, &has_q);
    rc = build_target(t.target, rest, plen, query, qlen, has_q, why, why_len);
    if (rc < 0) return rc;
    *u = t;
    return 0;
}

int
http_url_resolve(http_url *out, const http_url *base, const char *ref, size_t ref_len, char *why,
                 size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!out || !base || (!ref && ref_len)) return -EINVAL;
    if (!ref) ref = "";
    char abs[HTTP_TARGET_MAX + HTTP_HOST_MAX + 32];
    int rc = check_chars(ref, ref_len, why, why_len);
    if (rc < 0) return rc;
    if (scheme_len(ref, ref_len) > 0 || (ref_len >= 2 && !memcmp(ref, "//", 2))) {
        const char *prefix = ref[0] == '/' ? "http:" : "";
        if (ref_len + strlen(prefix) >= sizeof abs)
            return url_fail(why, why_len, -ENAMETOOLONG, "redirect URL too long");
        snprintf(abs, sizeof abs, "%s%.*s", prefix, (int)ref_len, ref);
        return http_url_parse(out, abs, why, why_len);
    }

    const char *query;
    size_t plen, qlen;
    bool has_q;
    split_path(ref, ref_len, &plen, &query, &qlen, &has_q);
    const char *bpath = base->target, *bq = strchr(base->target, '?');
    size_t bplen = bq ? (size_t)(bq - bpath) : strlen(bpath);

    http_url t;
    memcpy(t.host, base->host, sizeof t.host);
    t.host_v6 = base->host_v6;
    t.port = base->port;
    if (plen == 0) {
        if (!has_q && bq) {
            has_q = true;
            query = bq + 1;
            qlen = strlen(query);
        }
        rc = build_target(t.target, bpath, bplen, query, qlen, has_q, why, why_len);
    } else if (ref[0] == '/') {
        rc = build_target(t.target, ref, plen, query, qlen, has_q, why, why_len);
    } else {
        /* Merge: the base path up to its last '/', then the reference. */
        size_t keep = bplen;
        while (keep > 0 && bpath[keep - 1] != '/')
            keep--;
        if (keep + plen >= sizeof abs)
            return url_fail(why, why_len, -ENAMETOOLONG, "redirect URL too long");
        memcpy(abs, bpath, keep);
        memcpy(abs + keep, ref, plen);
        rc = build_target(t.target, abs, keep + plen, query, qlen, has_q, why, why_len);
    }
    if (rc < 0) return rc;
    *out = t;
    return 0;
}

int
http_url_authority(const http_url *u, char *out, size_t out_len)
{
    char host[HTTP_HOST_MAX + 8];
    if (u->host_v6) {
        /* A zone is written "%25zone" inside brackets (RFC 6874). */
        const char *pct = strchr(u->host, '%');
        if (pct)
            snprintf(host, sizeof host, "[%.*s%%25%s]", (int)(pct - u->host), u->host, pct + 1);
        else
            snprintf(host, sizeof host, "[%s]", u->host);
    } else {
        snprintf(host, sizeof host, "%s", u->host);
    }
    int n = u->port == 80 ? snprintf(out, out_len, "%s", host)
                          : snprintf(out, out_len, "%s:%u", host, (unsigned)u->port);
    return n < 0 || (size_t)n >= out_len ? -ENOSPC : n;
}

int
http_url_format(const http_url *u, char *out, size_t out_len)
{
    char auth[HTTP_HOST_MAX + 16];
    int rc = http_url_authority(u, auth, sizeof auth);
    if (rc < 0) return rc;
    int n = snprintf(out, out_len, "http://%s%s", auth, u->target);
    return n < 0 || (size_t)n >= out_len ? -ENOSPC : n;
}
