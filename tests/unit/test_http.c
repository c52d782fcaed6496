/* The sockmsg tool's HTTP/1.1 response parser, chunked decoder and URLs
 * (tools/sockmsg/http_*.c): every split point of well-formed responses,
 * tables of malformed ones, the bounds, URL parsing and RFC 3986 resolution;
 * the tool's own error code (tools/sockmsg/cli.c). */
#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define NHDR 32

typedef struct sample {
    const char *name;
    const char *raw; /* head, body, then bytes that are not part of the body */
    int status;
    int minor;
    const char *reason;
    size_t nheaders;
    int kind;
    uint64_t length;
    const char *body;  /* the decoded body */
    const char *extra; /* what follows the body (not consumed) */
} sample;

static const sample samples[] = {
    {"content-length",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloEXTRA", 200, 1,
     "OK", 2, HTTP_BODY_LENGTH, 5, "hello", "EXTRA"},
    {"bare LF, no reason, until EOF", "HTTP/1.0 404\nServer: x\n\nnot found", 404, 0, "", 1,
     HTTP_BODY_EOF, 0, "not found", ""},
    {"chunked, extensions, trailers",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;name=value\r\nhello\r\n6 ; a=\"q;x\"\t\r\n world\r\n"
     "000\r\nTrailer-One: 1\r\nX: y\r\n  folded\r\n\r\nNEXT",
     200, 1, "OK", 1, HTTP_BODY_CHUNKED, 0, "hello world", "NEXT"},
    {"chunked, bare LF, big hex",
     "HTTP/1.1 200 Fine Thanks\nTransfer-Encoding: Chunked\n\n"
     "0000000000000000000A\nabcdefghij\n1\nk\n0\n\n",
     200, 1, "Fine Thanks", 1, HTTP_BODY_CHUNKED, 0, "abcdefghijk", ""},
    {"chunked, empty body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200,
     1, "OK", 1, HTTP_BODY_CHUNKED, 0, "", ""},
    {"folded field, empty values",
     "HTTP/1.1 301 Moved Permanently\r\nLocation: /a\r\nX-Fold: one\r\n  two\r\n\t three\r\n"
     "X-Empty:\r\nX-Ws: \t v \t\r\nContent-Length: 0\r\n\r\n",
     301, 1, "Moved Permanently", 5, HTTP_BODY_LENGTH, 0, "", ""},
    {"204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nnext", 204, 1,
     "No Content", 1, HTTP_BODY_NONE, 0, "", "next"},
};

/* Decode a chunked body fed in pieces cut at cuts[]; appends the data to out.
 * Returns the error or the bytes consumed. */
static ssize_t
chunked_pieces(http_chunked *c, const char *b, size_t n, const size_t *cuts, size_t ncuts,
               char *out, size_t cap, size_t *out_len)
{
    size_t pos = 0, consumed = 0;
    *out_len = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        while (pos < end) {
            const char *d;
            size_t dl;
            ssize_t r = http_chunked_decode(c, b + pos, end - pos, &d, &dl);
            if (r < 0) return r;
            if (dl) {
                assert_true(d >= b + pos && d + dl <= b + end);
                assert_true(*out_len + dl <= cap);
                memcpy(out + *out_len, d, dl);
                *out_len += dl;
            }
            consumed += (size_t)r;
            if (r == 0) {
                assert_true(http_chunked_done(c));
                return (ssize_t)consumed;
            }
            pos += (size_t)r;
        }
    }
    return (ssize_t)consumed;
}

static void
check_head(const sample *s, const http_response *res, ssize_t head_len)
{
    if (res->status != s->status || res->minor_version != s->minor ||
        res->num_headers != s->nheaders || res->reason_len != strlen(s->reason) ||
        memcmp(res->reason, s->reason, res->reason_len)) {
        print_error("%s: status %d minor %d headers %zu reason '%.*s'\n", s->name, res->status,
                    res->minor_version, res->num_headers, (int)res->reason_len, res->reason);
        fail();
    }
    assert_int_equal(res->head_len, head_len);
}

static void
check_body(const sample *s, const char *raw, size_t n, size_t head_len, const size_t *cuts,
           size_t ncuts)
{
    const char *b = raw + head_len;
    size_t bn = n - head_len;
    size_t want = strlen(s->body);
    if (s->kind == HTTP_BODY_CHUNKED) {
        http_chunked c;
        http_chunked_init(&c);
        char out[256];
        size_t out_len;
        ssize_t r = chunked_pieces(&c, b, bn, cuts, ncuts, out, sizeof out, &out_len);
        if (r < 0) {
            print_error("%s: chunked error %s: %s\n", s->name, cli_err_name((int)r), c.error);
            fail();
        }
        assert_true(http_chunked_done(&c));
        assert_int_equal(out_len, want);
        assert_memory_equal(out, s->body, want);
        assert_int_equal((size_t)r, bn - strlen(s->extra));
        assert_string_equal(b + r, s->extra);
        /* Done: nothing more is consumed. */
        const char *d;
        size_t dl;
        assert_int_equal(http_chunked_decode(&c, "0\r\n", 3, &d, &dl), 0);
        assert_int_equal(dl, 0);
    } else if (s->kind == HTTP_BODY_LENGTH) {
        assert_int_equal(s->length, want);
        assert_memory_equal(b, s->body, want);
    } else if (s->kind == HTTP_BODY_EOF) {
        assert_int_equal(bn, want);
        assert_memory_equal(b, s->body, want);
    }
}

/* Every sample, cut at every point: the head parses the same whichever way the
 * bytes arrive, and so does the body. */
static void
test_every_split(void **state)
{
    (void)state;
    for (size_t si = 0; si < sizeof samples / sizeof samples[0]; si++) {
        const sample *s = &samples[si];
        size_t n = strlen(s->raw);
        http_header hdr[NHDR];
        http_response res = {.headers = hdr, .headers_cap = NHDR};
        ssize_t head_len = http_parse_response(s->raw, n, 0, &res);
        if (head_len <= 0) {
            print_error("%s: %s: %s\n", s->name, cli_err_name((int)head_len), res.error);
            fail();
        }
        check_head(s, &res, head_len);
        uint64_t length = 99;
        assert_int_equal(http_body_framing(&res, &length), s->kind);
        assert_int_equal(length, s->kind == HTTP_BODY_LENGTH ? s->length : 0);
        check_body(s, s->raw, n, (size_t)head_len, NULL, 0);

        for (size_t k = 0; k <= n; k++) {
            ssize_t r = http_parse_response(s->raw, k, 0, &res);
            if (k < (size_t)head_len) {
                if (r != -EAGAIN) {
                    print_error("%s: prefix %zu: %s (%s)\n", s->name, k, cli_err_name((int)r),
                                res.error ? res.error : "");
                    fail();
                }
            } else {
                assert_int_equal(r, head_len);
            }
            /* Resuming after an incomplete prefix of k bytes. */
            r = http_parse_response(s->raw, n, k < (size_t)head_len ? k : 0, &res);
            assert_int_equal(r, head_len);
            check_head(s, &res, head_len);
            /* The body cut at the same point as the receive. */
            size_t cut = k > (size_t)head_len ? k - (size_t)head_len : 0;
            check_body(s, s->raw, n, (size_t)head_len, &cut, 1);
        }

        /* Byte by byte, resuming the search each time. */
        size_t prev = 0;
        for (size_t k = 1; k <= n; k++) {
            ssize_t r = http_parse_response(s->raw, k, prev, &res);
            if (r != -EAGAIN) {
                assert_int_equal(r, head_len);
                assert_int_equal(k, (size_t)head_len);
                break;
            }
            prev = k;
        }

        /* The body in three pieces, at every pair of cuts. */
        size_t bn = n - (size_t)head_len;
        for (size_t i = 0; s->kind == HTTP_BODY_CHUNKED && i <= bn; i++)
            for (size_t j = i; j <= bn; j++) {
                size_t cuts[2] = {i, j};
                check_body(s, s->raw, n, (size_t)head_len, cuts, 2);
            }
    }
}

static void
test_fields(void **state)
{
    (void)state;
    const sample *s = &samples[5];
    http_header hdr[NHDR];
    http_response res = {.headers = hdr, .headers_cap = NHDR};
    assert_true(http_parse_response(s->raw, strlen(s->raw), 0, &res) > 0);
    int k = http_find_header(&res, "x-fold", 0);
    assert_int_equal(k, 1);
    assert_int_equal(hdr[k].value_len, strlen("one\r\n  two\r\n\t three"));
    assert_memory_equal(hdr[k].value, "one\r\n  two\r\n\t three", hdr[k].value_len);
    k = http_find_header(&res, "X-EMPTY", 0);
    assert_int_equal(hdr[k].value_len, 0);
    k = http_find_header(&res, "x-ws", 0);
    assert_int_equal(hdr[k].value_len, 1);
    assert_memory_equal(hdr[k].value, "v", 1);
    assert_int_equal(http_find_header(&res, "Location", 0), 0);
    assert_int_equal(http_find_header(&res, "Location", 1), -1);
    assert_int_equal(http_find_header(&res, "Locatio", 0), -1);

    /* An interim response is a complete head of its own. */
    const char *two = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ssize_t r = http_parse_response(two, strlen(two), 0, &res);
    assert_int_equal(r, 25);
    assert_int_equal(res.status, 100);
    uint64_t len;
    assert_int_equal(http_body_framing(&res, &len), HTTP_BODY_NONE);
    assert_int_equal(http_parse_response(two + r, strlen(two + r), 0, &res), strlen(two + r));
    assert_int_equal(res.status, 200);
}

typedef struct bad_head {
    const char *raw;
    size_t len; /* 0: strlen */
    int err;
    const char *what;
    bool early; /* detected before the head is complete */
} bad_head;

static const bad_head bad_heads[] = {
    {"HTTX/1.1 200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "does not start with 'HTTP/'", true},
    {"SSH-2.0-OpenSSH_9.2\r\n", 0, CLI_ERR_HTTP, "does not start with 'HTTP/'", true},
    {"\r\n\r\n", 0, CLI_ERR_HTTP, "does not start with 'HTTP/'", true},
    {"HTTP/2 200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "malformed HTTP version", true},
    {"HTTP/2.0 200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "unsupported HTTP major version", true},
    {"HTTP/1.x 200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "malformed HTTP version", true},
    {"HTTP/1.1\t200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "space after the HTTP version", true},
    {"HTTP/1.1 20 OK\r\n\r\n", 0, CLI_ERR_HTTP, "not 3 digits", true},
    {"HTTP/1.1 2000 OK\r\n\r\n", 0, CLI_ERR_HTTP, "not 3 digits", true},
    {"HTTP/1.1  200 OK\r\n\r\n", 0, CLI_ERR_HTTP, "not 3 digits", true},
    {"HTTP/1.1 099 OK\r\n\r\n", 0, CLI_ERR_HTTP, "out of range", true},
    {"HTTP/1.1 600 OK\r\n\r\n", 0, CLI_ERR_HTTP, "out of range", true},
    {"HTTP/1.1 200OK\r\n\r\n", 0, CLI_ERR_HTTP, "space after the status code", true},
    {"HTTP/1.1 200 O\x01K\r\n\r\n", 0, CLI_ERR_HTTP, "invalid character in reason", true},
    {"HTTP/1.1 200 OK\rX\n\r\n", 0, CLI_ERR_HTTP, "CR not followed by LF", true},
    {"HTTP/1.1 2\r\n\r\n", 0, CLI_ERR_HTTP, "not 3 digits", true},
    {"HTTP/1.1\n\n", 0, CLI_ERR_HTTP, "space after the HTTP version", true},
    {"HTTP/1.\n\n", 0, CLI_ERR_HTTP, "malformed HTTP version", true},
    {"HTTP/1.1 200 OK\r\nName : v\r\n\r\n", 0, CLI_ERR_HTTP, "whitespace between field name",
     false},
    {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, CLI_ERR_HTTP, "without a colon", false},
    {"HTTP/1.1 200 OK\r\n: v\r\n\r\n", 0, CLI_ERR_HTTP, "empty field name", false},
    {"HTTP/1.1 200 OK\r\nNa(me: v\r\n\r\n", 0, CLI_ERR_HTTP, "invalid character in field name",
     false},
    {"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, CLI_ERR_HTTP, "invalid character in field value",
     false},
    {"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", 0, CLI_ERR_HTTP, "invalid character in field value",
     false},
    {"HTTP/1.1 200 OK\r\nX: v\r\r\n\r\n", 0, CLI_ERR_HTTP, "CR not followed by LF", false},
    {"HTTP/1.1 200 OK\r\n fold\r\n\r\n", 0, CLI_ERR_HTTP, "folded line without a field", false},
    {"HTTP/1.1 200 OK\r\nA: 1\r\n\rX\r\n\r\n", 0, CLI_ERR_HTTP, "CR not followed by LF", false},
};

static void
test_malformed_heads(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_heads / sizeof bad_heads[0]; i++) {
        const bad_head *b = &bad_heads[i];
        size_t n = b->len ? b->len : strlen(b->raw);
        http_header hdr[NHDR];
        http_response res = {.headers = hdr, .headers_cap = NHDR};
        ssize_t r = http_parse_response(b->raw, n, 0, &res);
        if (r != b->err || !res.error || !strstr(res.error, b->what)) {
            print_error("case %zu: %s (%s), want %s (%s)\n", i, cli_err_name((int)r),
                        res.error ? res.error : "", cli_err_name(b->err), b->what);
            fail();
        }
        assert_true(res.error_off < n);
        size_t off = res.error_off;
        /* Fed byte by byte, the same error comes out, never a success; early
         * errors before the head is complete. */
        size_t prev = 0, k;
        for (k = 1; k <= n; k++) {
            r = http_parse_response(b->raw, k, prev, &res);
            if (r != -EAGAIN) break;
            prev = k;
        }
        if (k > n || r != b->err || res.error_off != off || (b->early && k == n)) {
            print_error("case %zu: byte by byte: %s at %zu (offset %zu, want %zu)\n", i,
                        cli_err_name((int)r), k, res.error_off, off);
            fail();
        }
    }
}

static void
test_head_bounds(void **state)
{
    (void)state;
    size_t cap = HTTP_HEAD_MAX + 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    http_header hdr[NHDR];
    http_response res = {.headers = hdr, .headers_cap = NHDR};

    /* A head of exactly HTTP_HEAD_MAX bytes is accepted, one more is not. */
    const char *start = "HTTP/1.1 200 OK\r\nX: ";
    size_t sl = strlen(start);
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = HTTP_HEAD_MAX + (size_t)extra;
        memcpy(buf, start, sl);
        memset(buf + sl, 'a', n - sl - 4);
        memcpy(buf + n - 4, "\r\n\r\n", 4);
        ssize_t r = http_parse_response(buf, n, 0, &res);
        if (extra) {
            SM_ASSERT_ERR(r, -EMSGSIZE);
        } else {
            assert_int_equal(r, (ssize_t)n);
            assert_int_equal(hdr[0].value_len, n - sl - 4);
        }
    }
    /* No end in HTTP_HEAD_MAX bytes: refused without waiting for more. */
    memcpy(buf, start, sl);
    memset(buf + sl, 'b', HTTP_HEAD_MAX - sl);
    SM_ASSERT_ERR(http_parse_response(buf, HTTP_HEAD_MAX - 1, 0, &res), -EAGAIN);
    SM_ASSERT_ERR(http_parse_response(buf, HTTP_HEAD_MAX, HTTP_HEAD_MAX - 1, &res), -EMSGSIZE);
    assert_non_null(res.error);

    /* More fields than the caller has room for. */
    size_t n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < NHDR + 1; i++)
        n += (size_t)snprintf(buf + n, cap - n, "H%d: %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    SM_ASSERT_ERR(http_parse_response(buf, n, 0, &res), SM_ERR_LIMIT);
    res.headers_cap = NHDR + 1;
    http_header *more = calloc(NHDR + 1, sizeof *more);
    res.headers = more;
    assert_int_equal(http_parse_response(buf, n, 0, &res), (ssize_t)n);
    assert_int_equal(res.num_headers, NHDR + 1);
    free(more);
    /* No room at all is fine for a head without fields. */
    http_response none = {.headers = NULL, .headers_cap = 0};
    assert_int_equal(http_parse_response("HTTP/1.1 200 OK\r\n\r\n", 19, 0, &none), 19);
    SM_ASSERT_ERR(http_parse_response(buf, n, 0, &none), SM_ERR_LIMIT);
    SM_ASSERT_ERR(http_parse_response(NULL, 0, 0, &none), -EINVAL);
    free(buf);
}

typedef struct framing_case {
    const char *head; /* fields, after "HTTP/1.1 200 OK\r\n" unless it starts with HTTP */
    int kind;         /* or an error */
    uint64_t length;
    const char *what;
} framing_case;

static const framing_case framings[] = {
    {"Content-Length: 10\r\n", HTTP_BODY_LENGTH, 10, NULL},
    {"Content-Length: 0\r\n", HTTP_BODY_LENGTH, 0, NULL},
    {"Content-Length: 10, 10\r\n", HTTP_BODY_LENGTH, 10, NULL},
    {"Content-Length: 7\r\ncontent-length: 7\r\n", HTTP_BODY_LENGTH, 7, NULL},
    {"Content-Length: 10\r\nContent-Length: 11\r\n", CLI_ERR_HTTP, 0, "conflicting"},
    {"Content-Length: 10, 12\r\n", CLI_ERR_HTTP, 0, "conflicting"},
    {"Content-Length: -1\r\n", CLI_ERR_HTTP, 0, "invalid Content-Length"},
    {"Content-Length: 1x\r\n", CLI_ERR_HTTP, 0, "invalid Content-Length"},
    {"Content-Length: 1 2\r\n", CLI_ERR_HTTP, 0, "invalid Content-Length"},
    {"Content-Length:\r\n", CLI_ERR_HTTP, 0, "invalid Content-Length"},
    {"Content-Length: 99999999999999999999999\r\n", CLI_ERR_HTTP, 0, "invalid Content-Length"},
    {"Transfer-Encoding: chunked\r\n", HTTP_BODY_CHUNKED, 0, NULL},
    {"TRANSFER-ENCODING: ChUnKeD\r\n", HTTP_BODY_CHUNKED, 0, NULL},
    /* RFC 9112 section 6.3: both is an error (smuggling), in either order. */
    {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", CLI_ERR_HTTP, 0,
     "both Content-Length and Transfer-Encoding"},
    {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CLI_ERR_HTTP, 0,
     "both Content-Length and Transfer-Encoding"},
    {"Content-Length: 0\r\ntransfer-encoding: chunked\r\n", CLI_ERR_HTTP, 0,
     "both Content-Length and Transfer-Encoding"},
    {"Transfer-Encoding: chunked\r\nContent-Length:\r\n", CLI_ERR_HTTP, 0,
     "both Content-Length and Transfer-Encoding"},
    {"Transfer-Encoding: gzip, chunked\r\n", CLI_ERR_HTTP, 0, "unsupported transfer coding"},
    {"Transfer-Encoding: identity\r\n", CLI_ERR_HTTP, 0, "unsupported transfer coding"},
    {"Transfer-Encoding: chunked, chunked\r\n", CLI_ERR_HTTP, 0, "twice"},
    {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CLI_ERR_HTTP, 0, "twice"},
    {"Transfer-Encoding:\r\n", CLI_ERR_HTTP, 0, "empty Transfer-Encoding"},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n", CLI_ERR_HTTP, 0, "HTTP/1.0"},
    {"Server: x\r\n", HTTP_BODY_EOF, 0, NULL},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n", HTTP_BODY_NONE, 0, NULL},
    {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n", HTTP_BODY_NONE, 0, NULL},
    {"HTTP/1.1 103 Early Hints\r\n", HTTP_BODY_NONE, 0, NULL},
};

static void
test_framing(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof framings / sizeof framings[0]; i++) {
        const framing_case *f = &framings[i];
        char raw[512];
        snprintf(raw, sizeof raw, "%s%s\r\n",
                 strncmp(f->head, "HTTP", 4) ? "HTTP/1.1 200 OK\r\n" : "", f->head);
        http_header hdr[NHDR];
        http_response res = {.headers = hdr, .headers_cap = NHDR};
        assert_true(http_parse_response(raw, strlen(raw), 0, &res) > 0);
        uint64_t len = 42;
        int kind = http_body_framing(&res, &len);
        if (kind != f->kind || (f->what && (!res.error || !strstr(res.error, f->what)))) {
            print_error("case %zu: %d (%s), want %d (%s)\n", i, kind, res.error ? res.error : "",
                        f->kind, f->what ? f->what : "");
            fail();
        }
        if (kind == HTTP_BODY_LENGTH) assert_int_equal(len, f->length);
    }
}

typedef struct bad_chunked {
    const char *raw;
    int err;
    const char *what;
} bad_chunked;

static const bad_chunked bad_chunks[] = {
    {"g\r\n", CLI_ERR_HTTP, "chunk size expected"},
    {"\r\n", CLI_ERR_HTTP, "chunk size expected"},
    {"-5\r\n", CLI_ERR_HTTP, "chunk size expected"},
    {" 5\r\n", CLI_ERR_HTTP, "chunk size expected"},
    {"5x\r\nhello\r\n", CLI_ERR_HTTP, "invalid character in chunk size"},
    {"5 x\r\nhello\r\n", CLI_ERR_HTTP, "invalid character after chunk size"},
    {"5;a\x01\r\nhello\r\n", CLI_ERR_HTTP, "invalid character in chunk extension"},
    {"5\rX", CLI_ERR_HTTP, "CR not followed by LF"},
    {"5\r\nhelloX", CLI_ERR_HTTP, "chunk data not followed by CRLF"},
    {"5\r\nhello\rX", CLI_ERR_HTTP, "CR not followed by LF"},
    {"5\r\nhello\r\nZ\r\n", CLI_ERR_HTTP, "chunk size expected"},
    {"0\r\nBad Name: x\r\n\r\n", CLI_ERR_HTTP, "whitespace between field name"},
    {"0\r\nNoColon\r\n\r\n", CLI_ERR_HTTP, "without a colon"},
    {"0\r\n: v\r\n\r\n", CLI_ERR_HTTP, "invalid trailer field"},
    {"0\r\n fold\r\n\r\n", CLI_ERR_HTTP, "invalid trailer field"},
    {"0\r\nNa(me: v\r\n\r\n", CLI_ERR_HTTP, "invalid character in field name"},
    {"0\r\nX: a\x01\r\n\r\n", CLI_ERR_HTTP, "invalid character in field value"},
    {"0\r\nX: a\rb\r\n\r\n", CLI_ERR_HTTP, "CR not followed by LF"},
    {"0\r\n\rX", CLI_ERR_HTTP, "CR not followed by LF"},
    {"10000000000000000\r\n", -EMSGSIZE, "16 hex digits"},
};

static void
test_chunked_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_chunks / sizeof bad_chunks[0]; i++) {
        const bad_chunked *b = &bad_chunks[i];
        size_t n = strlen(b->raw);
        uint64_t off = 0;
        /* Whole, then cut at every point: the same error at the same byte. */
        for (size_t cut = 0; cut <= n; cut++) {
            http_chunked c;
            http_chunked_init(&c);
            char out[64];
            size_t out_len;
            ssize_t r =
                chunked_pieces(&c, b->raw, n, &cut, cut == n ? 0 : 1, out, sizeof out, &out_len);
            if (r != b->err || !c.error || !strstr(c.error, b->what)) {
                print_error("case %zu cut %zu: %s (%s), want %s (%s)\n", i, cut,
                            cli_err_name((int)r), c.error ? c.error : "", cli_err_name(b->err),
                            b->what);
                fail();
            }
            if (cut == 0) off = c.offset;
            assert_int_equal(c.offset, off);
            /* Sticky. */
            const char *d;
            size_t dl;
            assert_int_equal(http_chunked_decode(&c, "0\r\n\r\n", 5, &d, &dl), b->err);
        }
    }
}

static void
test_chunked_bounds(void **state)
{
    (void)state;
    size_t cap = HTTP_TRAILERS_MAX + 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    char out[16];
    size_t out_len;
    http_chunked c;

    /* A size line up to HTTP_CHUNK_LINE_MAX bytes, extensions included. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t line = HTTP_CHUNK_LINE_MAX + (size_t)extra;
        buf[0] = '1';
        buf[1] = ';';
        memset(buf + 2, 'e', line - 4);
        memcpy(buf + line - 2, "\r\nx\r\n0\r\n\r\n", 10);
        http_chunked_init(&c);
        ssize_t r = chunked_pieces(&c, buf, line + 8, NULL, 0, out, sizeof out, &out_len);
        if (extra) {
            SM_ASSERT_ERR(r, -EMSGSIZE);
        } else {
            assert_int_equal(r, (ssize_t)(line + 8));
            assert_int_equal(out_len, 1);
            assert_true(http_chunked_done(&c));
        }
    }
    /* Trailers up to HTTP_TRAILERS_MAX bytes, the final empty line included. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t tl = HTTP_TRAILERS_MAX + (size_t)extra;
        memcpy(buf, "0\r\nX: ", 6);
        memset(buf + 6, 't', tl - 3 - 4);
        memcpy(buf + 3 + tl - 4, "\r\n\r\n", 4);
        http_chunked_init(&c);
        ssize_t r = chunked_pieces(&c, buf, 3 + tl, NULL, 0, out, sizeof out, &out_len);
        if (extra) {
            SM_ASSERT_ERR(r, -EMSGSIZE);
        } else {
            assert_int_equal(r, (ssize_t)(3 + tl));
            assert_true(http_chunked_done(&c));
        }
    }
    /* 16 significant hex digits are fine, leading zeros are free. */
    http_chunked_init(&c);
    const char *huge = "0000FFFFFFFFFFFFFFFF\r\nabc";
    const char *d;
    size_t dl;
    assert_int_equal(http_chunked_decode(&c, huge, strlen(huge), &d, &dl), strlen(huge));
    assert_int_equal(dl, 3);
    assert_true(c.left == UINT64_MAX - 3);
    free(buf);
}

/* A chunked body made of many chunks of random sizes, decoded in random
 * pieces, gives back the data. */
static void
test_chunked_random(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed1234u;
    size_t cap = 1 << 20;
    char *enc = malloc(cap), *plain = malloc(cap), *out = malloc(cap);
    assert_true(enc && plain && out);
    for (int round = 0; round < 50; round++) {
        size_t en = 0, pn = 0;
        int chunks = (int)(sm_test_rand(&seed) % 40);
        for (int k = 0; k < chunks; k++) {
            size_t sz = 1 + sm_test_rand(&seed) % 3000;
            en += (size_t)snprintf(enc + en, cap - en, "%zx%s\r\n", sz,
                                   sm_test_rand(&seed) % 2 ? ";ext=1" : "");
            for (size_t j = 0; j < sz; j++)
                plain[pn++] = enc[en++] = (char)sm_test_rand(&seed);
            memcpy(enc + en, "\r\n", 2);
            en += 2;
        }
        en += (size_t)snprintf(enc + en, cap - en, "0\r\nT: 1\r\n\r\n");
        size_t cuts[8];
        for (int k = 0; k < 8; k++)
            cuts[k] = sm_test_rand(&seed) % (en + 1);
        for (int a = 0; a < 8; a++) /* sort */
            for (int b = a + 1; b < 8; b++)
                if (cuts[b] < cuts[a]) {
                    size_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        http_chunked c;
        http_chunked_init(&c);
        size_t out_len;
        ssize_t r = chunked_pieces(&c, enc, en, cuts, 8, out, cap, &out_len);
        if (r != (ssize_t)en || out_len != pn || memcmp(out, plain, pn)) {
            print_error("round %d (seed 0x5eed1234): r=%zd en=%zu out=%zu pn=%zu\n", round, r, en,
                        out_len, pn);
            fail();
        }
        assert_true(http_chunked_done(&c));
    }
    free(enc);
    free(plain);
    free(out);
}

typedef struct url_case {
    const char *in;
    int err;
    const char *host; /* or the error text */
    bool v6;
    int port;
    const char *target;
} url_case;

static const url_case urls[] = {
    {"http://example.org", 0, "example.org", false, 80, "/"},
    {"HTTP://Example.org:8080/a/b?x=1#frag", 0, "Example.org", false, 8080, "/a/b?x=1"},
    {"http://127.0.0.1:1/", 0, "127.0.0.1", false, 1, "/"},
    {"http://[::1]:8080/p", 0, "::1", true, 8080, "/p"},
    {"http://[fe80::1%25lo]/", 0, "fe80::1%lo", true, 80, "/"},
    {"http://[fe80::1%eth0]:81", 0, "fe80::1%eth0", true, 81, "/"},
    {"http://h:/x", 0, "h", false, 80, "/x"},
    {"http://h?q", 0, "h", false, 80, "/?q"},
    {"http://h#f", 0, "h", false, 80, "/"},
    {"http://h/a/./b/../c", 0, "h", false, 80, "/a/c"},
    {"http://h/../../x", 0, "h", false, 80, "/x"},
    {"http://h/a b/\xc3\xa9", 0, "h", false, 80, "/a%20b/%C3%A9"},
    {"http://h/p?a=1&b=two words", 0, "h", false, 80, "/p?a=1&b=two%20words"},
    {"http://h/%41?%42", 0, "h", false, 80, "/%41?%42"},
    {"http://my_host.local~:65535/", 0, "my_host.local~", false, 65535, "/"},
    {"https://h/", 0, "h", false, 443, "/"},
    {"HTTPS://h:8443/x", 0, "h", false, 8443, "/x"},
    {"ftp://h/", -EPROTONOSUPPORT, "unsupported URL scheme 'ftp'", false, 0, NULL},
    {"h/x", -EINVAL, "missing 'http://'", false, 0, NULL},
    {"localhost:8080", -EINVAL, "missing 'http://'", false, 0, NULL},
    {"", -EINVAL, "missing 'http://'", false, 0, NULL},
    {"http:/h", -EINVAL, "expected '//'", false, 0, NULL},
    {"http://", -EINVAL, "missing host", false, 0, NULL},
    {"http:///x", -EINVAL, "missing host", false, 0, NULL},
    {"http://:80/", -EINVAL, "missing host", false, 0, NULL},
    {"http://h:0/", -EINVAL, "out of range", false, 0, NULL},
    {"http://h:65536/", -EINVAL, "out of range", false, 0, NULL},
    {"http://h:123456/", -EINVAL, "bad port", false, 0, NULL},
    {"http://h:8a/", -EINVAL, "bad port", false, 0, NULL},
    {"http://u:p@h/", -EINVAL, "credentials", false, 0, NULL},
    {"http://[::1/", -EINVAL, "unterminated", false, 0, NULL},
    {"http://[zz]/", -EINVAL, "bad IPv6 address", false, 0, NULL},
    {"http://[1.2.3.4]/", -EINVAL, "bad IPv6 address", false, 0, NULL},
    {"http://[::1]x/", -EINVAL, "after ']'", false, 0, NULL},
    {"http://[::1%25]/", -EINVAL, "empty IPv6 zone", false, 0, NULL},
    {"http://h\x01/", -EINVAL, "control character", false, 0, NULL},
    {"http://h/\t", -EINVAL, "control character", false, 0, NULL},
    {"http://ho st/", -EINVAL, "invalid character ' ' in host", false, 0, NULL},
};

static void
test_url_parse(void **state)
{
    (void)state;
    http_url *u = malloc(sizeof *u);
    assert_non_null(u);
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        const url_case *c = &urls[i];
        char why[256];
        int rc = http_url_parse(u, c->in, why, sizeof why);
        if (rc != c->err) {
            print_error("'%s': %s (%s), want %s\n", c->in, cli_err_name(rc), why,
                        cli_err_name(c->err));
            fail();
        }
        if (rc < 0) {
            if (!strstr(why, c->host)) {
                print_error("'%s': why '%s', want '%s'\n", c->in, why, c->host);
                fail();
            }
            continue;
        }
        assert_string_equal(u->host, c->host);
        assert_int_equal(u->host_v6, c->v6);
        assert_int_equal(u->port, c->port);
        assert_string_equal(u->target, c->target);
    }

    /* Limits. */
    size_t big = HTTP_TARGET_MAX + 100;
    char *s = malloc(big + 32);
    assert_non_null(s);
    int n = sprintf(s, "http://");
    memset(s + n, 'h', 300);
    strcpy(s + n + 300, "/");
    SM_ASSERT_ERR(http_url_parse(u, s, NULL, 0), -ENAMETOOLONG);
    n = sprintf(s, "http://h/");
    memset(s + n, 'p', big - (size_t)n);
    s[big] = '\0';
    SM_ASSERT_ERR(http_url_parse(u, s, NULL, 0), -ENAMETOOLONG);
    /* Percent-encoding can make a path too long too. */
    n = sprintf(s, "http://h/");
    memset(s + n, ' ', HTTP_TARGET_MAX / 2);
    s[n + HTTP_TARGET_MAX / 2] = '\0';
    SM_ASSERT_ERR(http_url_parse(u, s, NULL, 0), -ENAMETOOLONG);
    SM_ASSERT_ERR(http_url_parse(u, NULL, NULL, 0), -EINVAL);
    free(s);
    free(u);
}

static void
test_url_format(void **state)
{
    (void)state;
    http_url u;
    char out[HTTP_TARGET_MAX + 300];
    static const char *const round[] = {
        "http://[::1]:8080/p?q",
        "http://h/",
        "http://127.0.0.1:1/a%20b",
        "http://[fe80::1%25lo]/",
    };
    for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
        SM_ASSERT_OK(http_url_parse(&u, round[i], NULL, 0));
        assert_int_equal(http_url_format(&u, out, sizeof out), strlen(round[i]));
        assert_string_equal(out, round[i]);
    }
    SM_ASSERT_OK(http_url_parse(&u, "http://[::1]:80/", NULL, 0));
    assert_int_equal(http_url_authority(&u, out, sizeof out), 5);
    assert_string_equal(out, "[::1]");
    SM_ASSERT_OK(http_url_parse(&u, "http://h:81/", NULL, 0));
    SM_ASSERT_OK(http_url_authority(&u, out, sizeof out));
    assert_string_equal(out, "h:81");
    SM_ASSERT_ERR(http_url_format(&u, out, 8), -ENOSPC);
    assert_int_equal(strlen(out), 7);
}

/* RFC 3986 section 5.4's examples (base http://a/b/c/d;p?q), and more. */
static void
test_url_resolve(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},
        {"g?y#s", "http://a/b/c/g?y"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g#s/../x", "http://a/b/c/g"},
        {"http://other:8080/x", "http://other:8080/x"},
        {"HTTP://[::1]:81", "http://[::1]:81/"},
        {"//h:9/p?q", "http://h:9/p?q"},
        {"/with space", "http://a/with%20space"},
    };
    http_url base, out;
    SM_ASSERT_OK(http_url_parse(&base, "http://a/b/c/d;p?q", NULL, 0));
    char text[HTTP_TARGET_MAX + 300], why[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = http_url_resolve(&out, &base, cases[i][0], strlen(cases[i][0]), why, sizeof why);
        if (rc < 0) {
            print_error("'%s': %s (%s)\n", cases[i][0], cli_err_name(rc), why);
            fail();
        }
        http_url_format(&out, text, sizeof text);
        if (strcmp(text, cases[i][1])) {
            print_error("'%s': got '%s', want '%s'\n", cases[i][0], text, cases[i][1]);
            fail();
        }
    }
    /* Resolving in place, against a base on another port. */
    SM_ASSERT_OK(http_url_parse(&base, "http://127.0.0.1:8000/dir", NULL, 0));
    SM_ASSERT_OK(http_url_resolve(&base, &base, "/dir/", 5, NULL, 0));
    http_url_format(&base, text, sizeof text);
    assert_string_equal(text, "http://127.0.0.1:8000/dir/");
    /* Errors. */
    /* Between http and https: absolute, and scheme-relative from https. */
    SM_ASSERT_OK(http_url_resolve(&out, &base, "https://x/", 10, why, sizeof why));
    assert_true(out.https);
    assert_int_equal(out.port, 443);
    http_url sbase;
    SM_ASSERT_OK(http_url_parse(&sbase, "https://s.example/a", NULL, 0));
    SM_ASSERT_OK(http_url_resolve(&out, &sbase, "//t.example/b", 13, why, sizeof why));
    http_url_format(&out, text, sizeof text);
    assert_string_equal(text, "https://t.example/b");
    SM_ASSERT_OK(http_url_resolve(&out, &sbase, "c", 1, why, sizeof why));
    http_url_format(&out, text, sizeof text);
    assert_string_equal(text, "https://s.example/c");
    SM_ASSERT_ERR(http_url_resolve(&out, &base, "mailto:x@y", 10, why, sizeof why), -EINVAL);
    SM_ASSERT_ERR(http_url_resolve(&out, &base, "/a\tb", 4, why, sizeof why), -EINVAL);
    SM_ASSERT_ERR(http_url_resolve(&out, &base, "//", 2, why, sizeof why), -EINVAL);
    SM_ASSERT_OK(http_url_resolve(&out, &base, NULL, 0, why, sizeof why));
}

/* CLI_ERR_HTTP is the tool's, not the library's: sm_strerror does not know
 * it, cli_strerror gives the message `sockmsg get` has always printed, and
 * both wrappers pass other codes on to the library unchanged. */
static void
test_cli_error_code(void **state)
{
    (void)state;
    assert_true(CLI_ERR_HTTP < SM_ERR_BASE - 4095);
    assert_string_equal(sm_strerror(CLI_ERR_HTTP), "unknown error");
    assert_string_equal(cli_strerror(CLI_ERR_HTTP), "malformed HTTP response");
    assert_string_equal(cli_err_name(CLI_ERR_HTTP), "CLI_ERR_HTTP");
    static const int others[] = {SM_ERR_LIMIT, SM_ERR_TRUNCATED, -EMSGSIZE, -ETIMEDOUT, 0};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_string_equal(cli_strerror(others[i]), sm_strerror(others[i]));
        assert_string_equal(cli_err_name(others[i]), sm_err_name(others[i]));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),     cmocka_unit_test(test_fields),
        cmocka_unit_test(test_malformed_heads), cmocka_unit_test(test_head_bounds),
        cmocka_unit_test(test_framing),         cmocka_unit_test(test_chunked_malformed),
        cmocka_unit_test(test_chunked_bounds),  cmocka_unit_test(test_chunked_random),
        cmocka_unit_test(test_url_parse),       cmocka_unit_test(test_url_format),
        cmocka_unit_test(test_url_resolve),     cmocka_unit_test(test_cli_error_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
