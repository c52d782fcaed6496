/* Chunked transfer coding (RFC 9112 section 7.1) for `sockmsg get`: an
 * incremental decoder that hands back the data spans inside the caller's
 * buffer, with no copy and nothing buffered (see http.h). */
#include "http.h"

#include <errno.h>
#include <string.h>

#include "http_internal.h"

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
        int v = http__hex_value(ch);
        switch (c->state) {
        case CH_SIZE_START:
            if (v < 0) return chunk_fail(c, CLI_ERR_HTTP, "chunk size expected", i);
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
            } else if (http__is_ws(ch)) {
                c->state = CH_SIZE_WS;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid character in chunk size", i);
            }
            break;
        case CH_SIZE_WS:
            if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else if (!http__is_ws(ch)) {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid character after chunk size", i);
            }
            break;
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_done(c);
            } else if (!http__is_field_char(ch)) {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid character in chunk extension", i);
            }
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return chunk_fail(c, CLI_ERR_HTTP, "CR not followed by LF", i);
            size_done(c);
            break;
        case CH_DATA_END:
            if (ch == '\r') {
                c->state = CH_DATA_LF;
            } else if (ch == '\n') {
                c->state = CH_SIZE_START;
            } else {
                return chunk_fail(c, CLI_ERR_HTTP, "chunk data not followed by CRLF", i);
            }
            break;
        case CH_DATA_LF:
            if (ch != '\n') return chunk_fail(c, CLI_ERR_HTTP, "CR not followed by LF", i);
            c->state = CH_SIZE_START;
            break;
        case CH_TRAILER_START:
            if (ch == '\r') {
                c->state = CH_END_LF;
            } else if (ch == '\n') {
                c->state = CH_DONE;
            } else if (http__is_tchar(ch)) {
                c->state = CH_TRAILER_NAME;
            } else if (http__is_ws(ch) && c->digits) {
                c->state = CH_TRAILER_VALUE; /* obsolete line folding */
            } else {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid trailer field", i);
            }
            break;
        case CH_TRAILER_NAME:
            if (ch == ':') {
                c->state = CH_TRAILER_VALUE;
            } else if (http__is_ws(ch)) {
                return chunk_fail(c, CLI_ERR_HTTP, "whitespace between field name and colon", i);
            } else if (ch == '\r' || ch == '\n') {
                return chunk_fail(c, CLI_ERR_HTTP, "trailer line without a colon", i);
            } else if (!http__is_tchar(ch)) {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid character in field name", i);
            }
            break;
        case CH_TRAILER_VALUE:
            if (ch == '\r') {
                c->state = CH_TRAILER_LF;
            } else if (ch == '\n') {
                c->state = CH_TRAILER_START;
                c->digits = 1;
            } else if (!http__is_field_char(ch)) {
                return chunk_fail(c, CLI_ERR_HTTP, "invalid character in field value", i);
            }
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') return chunk_fail(c, CLI_ERR_HTTP, "CR not followed by LF", i);
            c->state = CH_TRAILER_START;
            c->digits = 1;
            break;
        case CH_END_LF:
            if (ch != '\n') return chunk_fail(c, CLI_ERR_HTTP, "CR not followed by LF", i);
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
