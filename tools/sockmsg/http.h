/* sockmsg tool — HTTP/1.1 responses and http:// URLs, for `sockmsg get`.
 *
 * Everything here is pure in the manner of picohttpparser: functions work on
 * the caller's bytes and caller-owned state structs, do no I/O and never
 * allocate, so they are easy to test at every split point and to fuzz.
 *
 * Parsing a response:
 *   1. http_parse_response on the bytes received so far, until it returns the
 *      length of the head (status line, header fields, blank line);
 *   2. http_body_framing says how the body ends (RFC 9112 section 6.3);
 *   3. a chunked body goes through http_chunked_decode, which hands back the
 *      data spans inside the caller's buffer: no copy, nothing buffered.
 *
 * Errors are negative: CLI_ERR_HTTP (cli.h) for a malformed response (the
 * state's `error` field names what is wrong), -EMSGSIZE when a bounded part
 * (the head, a chunk-size line, the trailers) is too long, SM_ERR_LIMIT when
 * there are more header fields than the caller made room for. cli_strerror
 * names them all.
 *
 * Implemented in http_response.c (heads, body framing), http_chunked.c (the
 * chunked decoder) and http_url.c (URLs).
 */
#ifndef SOCKMSG_TOOL_HTTP_H
#define SOCKMSG_TOOL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

/* The largest response head accepted: status line, fields and blank line. */
#define HTTP_HEAD_MAX ((size_t)64 << 10)
/* The largest chunk-size line (size, extensions, line end). */
#define HTTP_CHUNK_LINE_MAX 4096
/* The largest trailer section (all trailer fields and the final blank line). */
#define HTTP_TRAILERS_MAX HTTP_HEAD_MAX

/* One header field: spans inside the parsed buffer, not NUL-terminated. The
 * value has its surrounding whitespace trimmed; a value continued on folded
 * lines (obsolete line folding) spans them, line ends included: treat CR, LF,
 * SP and HTAB in it as whitespace. */
typedef struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} http_header;

/* A parsed response head. The caller sets `headers` and `headers_cap`; the
 * parser fills in the rest. Spans point into the buffer given to the parser. */
typedef struct http_response {
    http_header *headers; /* in: room for the header fields */
    size_t headers_cap;   /* in: number of elements in headers */
    size_t num_headers;   /* out */
    int minor_version;    /* out: 0 for HTTP/1.0, 1 for HTTP/1.1 */
    int status;           /* out: 100-599 */
    const char *reason;   /* out: reason phrase, possibly empty */
    size_t reason_len;
    size_t head_len;   /* out: bytes of the head, blank line included */
    const char *error; /* out, on error: what is wrong (static string) */
    size_t error_off;  /* out, on error: offset of the offending byte */
} http_response;

/* http_parse_response - parse the response head at the start of buf[0..len).
 *
 * Call it each time more bytes arrive, with all the bytes received so far
 * (the same bytes plus the new ones) and prev_len the len of the previous call
 * (0 the first time): the search for the end of the head resumes where it
 * stopped, so feeding a head byte by byte costs linear time.
 *
 * Returns the head length (> 0) once the head is complete: the body starts at
 * buf + that length. Returns -EAGAIN when the head is incomplete, CLI_ERR_HTTP
 * when it is malformed (detected as early as possible: a response that does
 * not start with "HTTP/" fails on its first bytes, a bad status line as soon as
 * it is complete), -EMSGSIZE when no head ends within HTTP_HEAD_MAX bytes,
 * SM_ERR_LIMIT when it has more than headers_cap fields, -EINVAL for NULL
 * arguments. res->error and res->error_off explain every error but -EAGAIN.
 *
 * Accepted: "HTTP/1.x" versions, status codes 100-599 with or without a
 * reason phrase, CRLF or bare LF line ends, obsolete line folding. Refused:
 * a CR not followed by LF, control characters, whitespace between a field name
 * and its colon, a line without a colon, empty field names. */
ssize_t http_parse_response(const char *buf, size_t len, size_t prev_len, http_response *res);

/* http_find_header - the index of the first field named `name` (compared
 * without regard to ASCII case) at or after index `from`, or -1. */
int http_find_header(const http_response *res, const char *name, size_t from);

typedef enum http_body_kind {
    HTTP_BODY_NONE = 0, /* no body: 1xx, 204, 304 */
    HTTP_BODY_LENGTH,   /* Content-Length bytes */
    HTTP_BODY_CHUNKED,  /* chunked transfer coding: use http_chunked_decode */
    HTTP_BODY_EOF,      /* everything until the server closes */
} http_body_kind;

/* http_body_framing - how the body of a response to a GET request ends, as RFC
 * 9112 section 6.3 orders the rules: no body for 1xx, 204 and 304; chunked
 * when Transfer-Encoding is "chunked"; Content-Length (repeated identical
 * values are accepted); otherwise until EOF. A response with both
 * Transfer-Encoding and Content-Length is an error, as the RFC advises (it
 * would have the first override the second).
 *
 * Returns the kind (>= 0), with *length set for HTTP_BODY_LENGTH; or
 * CLI_ERR_HTTP with res->error set: both Transfer-Encoding and Content-Length,
 * an invalid or conflicting Content-Length,
 * a transfer coding other than chunked (we never offer one with TE), chunked
 * not last or twice, Transfer-Encoding in an HTTP/1.0 response. */
int http_body_framing(http_response *res, uint64_t *length);

/* State of a chunked-body decoder. Caller-owned; set up by http_chunked_init. */
typedef struct http_chunked {
    uint64_t left;     /* data bytes left in the current chunk */
    uint32_t state;    /* internal */
    uint32_t line;     /* bytes in the current size line or in the trailers */
    uint32_t digits;   /* significant hex digits in the current size */
    int err;           /* sticky error, 0 if none */
    const char *error; /* on error: what is wrong (static string) */
    uint64_t offset;   /* bytes consumed so far, to locate an error */
} http_chunked;

/* http_chunked_init - start decoding a new chunked body. */
void http_chunked_init(http_chunked *c);

/* http_chunked_decode - feed the next len bytes of a chunked body.
 *
 * Consumes a prefix of buf and returns its length. Body data in that prefix
 * is the span *data[0..*data_len), inside buf (*data_len is 0 when the prefix
 * was framing only: chunk sizes, extensions, line ends, trailers). Call again
 * with the rest of the bytes; whenever len > 0 and the body is not complete,
 * at least one byte is consumed, and a call never needs the same bytes twice
 * (nothing to keep between calls). Once the last chunk and the trailers are
 * through, http_chunked_done is true and further calls consume nothing:
 * bytes after the body are not part of it.
 *
 * Chunk extensions are skipped; trailer fields are checked and skipped.
 * Errors (sticky): CLI_ERR_HTTP (c->error says why; c->offset is the offending
 * byte's position in the body), -EMSGSIZE for a chunk-size line longer than
 * HTTP_CHUNK_LINE_MAX or trailers longer than HTTP_TRAILERS_MAX, a chunk size
 * of more than 16 significant hex digits. */
ssize_t http_chunked_decode(http_chunked *c, const char *buf, size_t len, const char **data,
                            size_t *data_len);

/* http_chunked_done - true once the whole chunked body has been decoded. */
bool http_chunked_done(const http_chunked *c);

/* The longest request target (path and query, percent-encoded) we handle. */
#define HTTP_TARGET_MAX 8192
#define HTTP_HOST_MAX   256

/* A parsed http:// URL. Plain data: copy it freely. */
typedef struct http_url {
    char host[HTTP_HOST_MAX]; /* without brackets; an IPv6 zone as "%lo" */
    bool host_v6;             /* an IPv6 literal: bracketed in URLs and Host */
    uint16_t port;            /* 80 (https: 443) unless given */
    bool https;               /* https:// (TLS) */
    /* origin-form request target: "/" path ["?" query], never empty; dot
     * segments removed; SP and bytes >= 0x7f percent-encoded; no fragment */
    char target[HTTP_TARGET_MAX];
} http_url;

/* http_url_parse - parse an absolute URL "http://host[:port][/path][?query][#frag]"
 * or the same with https:// (default port 443).
 * The scheme is matched without regard to case; host may be a name, an IPv4
 * literal or a bracketed IPv6 literal ("[::1]", "[fe80::1%25lo]"); an empty
 * port means 80.
 *
 * Returns 0, or with a one-line explanation in `why` (when not NULL):
 * -EPROTONOSUPPORT for another scheme ("https is not supported"), -EINVAL for
 * a malformed URL (missing scheme or host, bad port, user credentials,
 * control characters), -ENAMETOOLONG for a host or target over the limits. */
int http_url_parse(http_url *u, const char *str, char *why, size_t why_len);

/* http_url_resolve - resolve a reference (a Location field value: ref_len
 * bytes, not NUL-terminated) against base, as RFC 3986 section 5 says:
 * absolute ("http://h/p"), network-path ("//h/p"), absolute-path ("/p"),
 * relative-path ("p", "../p"), query-only ("?q"), fragment-only or empty.
 * *out may be base itself. Returns 0 or an error as http_url_parse. */
int http_url_resolve(http_url *out, const http_url *base, const char *ref, size_t ref_len,
                     char *why, size_t why_len);

/* http_url_format - "http://host[:port]/target" into out. Returns the length,
 * or -ENOSPC (out then holds a truncated, terminated string). */
int http_url_format(const http_url *u, char *out, size_t out_len);

/* http_url_authority - the Host field value: "host", "host:port", "[v6]:port"
 * (the port only when not 80). Returns the length or -ENOSPC. */
int http_url_authority(const http_url *u, char *out, size_t out_len);

#endif
