/* HTTP/1.1 response heads for `sockmsg get`: the status line and header
 * fields (http_parse_response, http_find_header) and how the body is framed
 * (http_body_framing). Pure code over the caller's bytes, no I/O and no
 * allocation (see http.h). */
#include "http.h"

#include <errno.h>
#include <string.h>

#include <sockmsg/error.h>

#include "http_internal.h"

/* The status line is checked before the head is complete, so a peer that does
 * not speak HTTP fails at once; only within this many bytes, to keep feeding a
 * long head byte by byte linear. */
#define STATUS_EARLY_MAX 1024

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
    if (!http__is_digit(at(b, n, 5)) || at(b, n, 6) != '.' || !http__is_digit(at(b, n, 7)))
        return head_fail(res, CLI_ERR_HTTP, "malformed HTTP version", 5);
    if (b[5] != '1') return head_fail(res, CLI_ERR_HTTP, "unsupported HTTP major version", 5);
    if (at(b, n, 8) != ' ')
        return head_fail(res, CLI_ERR_HTTP, "expected a space after the HTTP version", 8);
    if (!http__is_digit(at(b, n, 9)) || !http__is_digit(at(b, n, 10)) ||
        !http__is_digit(at(b, n, 11)) || http__is_digit(at(b, n, 12)))
        return head_fail(res, CLI_ERR_HTTP, "status code is not 3 digits", 9);
    int status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    if (status < 100 || status > 599)
        return head_fail(res, CLI_ERR_HTTP, "status code out of range (100-599)", 9);
    size_t i = 12;
    if (b[i] == ' ') {
        i++;
    } else if (b[i] != '\r' && b[i] != '\n') {
        return head_fail(res, CLI_ERR_HTTP, "expected a space after the status code", i);
    }
    size_t reason = i;
    while (b[i] != '\r' && b[i] != '\n') {
        if (!http__is_field_char(b[i]))
            return head_fail(res, CLI_ERR_HTTP, "invalid character in reason phrase", i);
        i++;
    }
    size_t next = line_end(buf, i);
    if (!next) return head_fail(res, CLI_ERR_HTTP, "CR not followed by LF", i);
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
    while (http__is_ws(b[i]))
        i++;
    *start = i;
    *end = i;
    while (b[i] != '\r' && b[i] != '\n') {
        if (!http__is_field_char(b[i]))
            return head_fail(res, CLI_ERR_HTTP, "invalid character in field value", i);
        i++;
        if (!http__is_ws(b[i - 1])) *end = i;
    }
    size_t next = line_end(buf, i);
    if (!next) return head_fail(res, CLI_ERR_HTTP, "CR not followed by LF", i);
    return (ssize_t)next;
}

static ssize_t
parse_fields(const char *buf, size_t head_len, size_t i, http_response *res)
{
    const unsigned char *b = (const unsigned char *)buf;
    for (;;) {
        if (b[i] == '\r' || b[i] == '\n') {
            size_t next = line_end(buf, i);
            if (!next) return head_fail(res, CLI_ERR_HTTP, "CR not followed by LF", i);
            return next == head_len ? (ssize_t)head_len
                                    : head_fail(res, CLI_ERR_HTTP, "data after the head", next);
        }
        size_t start, end;
        ssize_t next;
        if (http__is_ws(b[i])) {
            /* Obsolete line folding continues the previous value. */
            if (res->num_headers == 0)
                return head_fail(res, CLI_ERR_HTTP, "folded line without a field before it", i);
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
            if (http__is_tchar(b[i])) {
                i++;
                continue;
            }
            if (http__is_ws(b[i]))
                return head_fail(res, CLI_ERR_HTTP, "whitespace between field name and colon", i);
            if (b[i] == '\r' || b[i] == '\n')
                return head_fail(res, CLI_ERR_HTTP, "field line without a colon", i);
            return head_fail(res, CLI_ERR_HTTP, "invalid character in field name", i);
        }
        if (i == name) return head_fail(res, CLI_ERR_HTTP, "empty field name", i);
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
            return head_fail(res, CLI_ERR_HTTP, "response does not start with 'HTTP/'", i);

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
        if (http__span_ieq(res->headers[i].name, res->headers[i].name_len, name)) return (int)i;
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
    return CLI_ERR_HTTP;
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
            if (!http__span_ieq(el, el_len, "chunked"))
                return framing_fail(res, "unsupported transfer coding (only chunked is)");
            if (chunked) return framing_fail(res, "chunked transfer coding applied twice");
            chunked = true;
        }
    }
    if (te) {
        /* RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length,
         * but a message with both "ought to be handled as an error" (request
         * smuggling, response splitting): which framing did a proxy on the
         * way believe? */
        if (http_find_header(res, "Content-Length", 0) >= 0)
            return framing_fail(res, "both Content-Length and Transfer-Encoding");
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
                if (!http__is_digit((unsigned char)el[i]) || v > (UINT64_MAX >> 4) / 10)
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
