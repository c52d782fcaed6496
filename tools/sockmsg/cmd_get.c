/* sockmsg get URL: one HTTP/1.1 GET over http://, the body streamed out.
 *
 * One connection per request ("Connection: close"), so a response ends where
 * its framing says or, without framing, at EOF. The body passes through one
 * fixed buffer on its way out: a file of any size costs the same memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/socket.h>
#include <sockmsg/sockmsg.h>

#include "cli.h"
#include "http.h"

cli_command_fn cmd_get;

#define BUF_SIZE        HTTP_HEAD_MAX /* the whole head must fit; the body reuses it */
#define HEADERS_MAX     256
#define MAX_REDIRECTS   10
#define DEFAULT_TIMEOUT 30000
#define URL_TEXT_MAX    (HTTP_TARGET_MAX + HTTP_HOST_MAX + 32)
#define REQUEST_MAX     (HTTP_TARGET_MAX + HTTP_HOST_MAX + 256)
/* Interim (1xx) responses before the final one: a server sends one or two;
 * more is a server that never answers. */
#define INTERIM_MAX 32

enum { OPT_TIMEOUT = 256, OPT_CA, OPT_INSECURE };

typedef struct output {
    const char *path; /* NULL: stdout */
    int fd;           /* -1 until opened */
} output;

typedef struct get {
    cli cli;
    bool include;
    bool follow;
    int timeout_ms; /* 0: no limit */
    int64_t deadline;
    output out;
    char *buf; /* BUF_SIZE bytes */
    http_header headers[HEADERS_MAX];
    char url_text[URL_TEXT_MAX]; /* the URL being fetched, for messages */
    int status;
    char reason[128];
    /* https: one client configuration for every request (redirects resume
     * the session), made at the first https URL. */
    const char *ca;
    bool insecure;
    sm_tls_config *tls;
} get;

typedef enum fetch_result { FETCH_DONE, FETCH_REDIRECT, FETCH_FAILED } fetch_result;

static void
help(void)
{
    printf("usage: sockmsg get [options] URL\n"
           "\n"
           "Fetch URL (http:// or https://) with an HTTP/1.1 GET and write the body to stdout\n"
           "as it arrives.\n"
           "\n"
           "options:\n"
           "  -i, --include      write the response head (status line and header fields)\n"
           "                     before the body\n"
           "  -o, --output FILE  write to FILE instead of stdout ('-' is stdout)\n"
           "  -L, --location     follow redirects (301, 302, 303, 307, 308), at most %d\n"
           "      --timeout MS   bound the whole request, redirects included: 500, 500ms,\n"
           "                     2s, 1m; 0 for no limit (default %d ms)\n"
           "      --ca FILE      https: trust the CAs in FILE instead of the system's\n"
           "      --insecure     https: accept any certificate (no verification: for\n"
           "                     tests only)\n"
           "  -v, --verbose      show the connection and both heads on stderr\n"
           "  -h, --help         show this help\n"
           "\n"
           "exit status: 0 for 2xx (and 3xx not followed), 1 for 4xx and 5xx (the status\n"
           "goes to stderr) and for failures, 2 for usage errors.\n",
           MAX_REDIRECTS, DEFAULT_TIMEOUT);
}

static int
out_open(get *g)
{
    if (g->out.fd >= 0) return 0;
    if (!g->out.path) {
        g->out.fd = STDOUT_FILENO;
        return 0;
    }
    int fd = open(g->out.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return -errno;
    g->out.fd = fd;
    return 0;
}

static const char *
out_name(const get *g)
{
    return g->out.path ? g->out.path : "stdout";
}

/* Write to the output, opening it first if needed. Reports failures. */
static bool
out_write(get *g, const void *p, size_t n)
{
    int rc = out_open(g);
    if (rc == 0) rc = cli_write_all(g->out.fd, p, n);
    if (rc < 0) {
        cli_fail(&g->cli, "%s: %s", out_name(g), sm_strerror(rc));
        return false;
    }
    return true;
}

static int
out_close(get *g)
{
    if (g->out.fd < 0 || g->out.fd == STDOUT_FILENO) return 0;
    int rc = close(g->out.fd);
    g->out.fd = -1;
    return rc < 0 ? -errno : 0;
}

static fetch_result
fail_io(get *g, const char *when, ssize_t err)
{
    if (err == -ETIMEDOUT) {
        cli_fail(&g->cli, "%s: timed out after %d ms", g->url_text, g->timeout_ms);
    } else {
        cli_fail(&g->cli, "%s: %s: %s", g->url_text, when, sm_strerror((int)err));
    }
    return FETCH_FAILED;
}

/* The time left for the next library call, or -ETIMEDOUT (reported) once the
 * deadline has passed: checked before every call, since a peer that keeps
 * sending never lets the call itself wait, and a call given 0 ms still takes
 * what is queued. */
static int
time_left(get *g)
{
    int left = cli_remaining_ms(g->deadline);
    if (left == 0) {
        fail_io(g, NULL, -ETIMEDOUT);
        return -ETIMEDOUT;
    }
    return left;
}

/* The connection for u: plain, or TLS verified against u's host. */
static sm_conn *
dial(get *g, const http_url *u)
{
    sm_endpoint ep = {.kind = SM_ENDPOINT_TCP, .port = u->port};
    snprintf(ep.host, sizeof ep.host, "%s", u->host);
    char where[SM_ENDPOINT_HOST_MAX + 32], why[512];
    if (sm_endpoint_format(&ep, where, sizeof where) < 0)
        snprintf(where, sizeof where, "tcp://%s", u->host);
    cli_log(&g->cli, 1, "connecting to %s", where);

    int left = time_left(g);
    if (left < 0) return NULL;
    int fd = sm_dial_endpoint(&ep, NULL, left, why, sizeof why);
    if (fd < 0) {
        cli_log(&g->cli, 1, "%s", why);
        if (fd == -ETIMEDOUT)
            cli_fail(&g->cli, "%s: timed out after %d ms", where, g->timeout_ms);
        else if (fd == SM_ERR_RESOLVE && why[0])
            cli_fail(&g->cli, "%s: %s", where, why);
        else
            cli_fail(&g->cli, "%s: %s", where, sm_strerror(fd));
        return NULL;
    }
    if (g->cli.verbose) {
        sm_endpoint peer;
        char text[SM_ENDPOINT_HOST_MAX + 32];
        if (sm_sock_peer(fd, &peer) == 0 && sm_endpoint_format(&peer, text, sizeof text) > 0)
            cli_log(&g->cli, 1, "connected to %s", text);
    }
    static const sm_frame_spec raw = {.kind = SM_FRAME_EOF};
    sm_conn *c = NULL;
    int rc;
    if (!u->https) {
        rc = sm_conn_new_take(&c, fd, &raw);
        if (rc < 0) cli_fail(&g->cli, "%s: %s", where, sm_strerror(rc));
        return rc < 0 ? NULL : c;
    }
    if (!g->tls) {
        rc = sm_tls_config_new(&g->tls, SM_TLS_CLIENT, why, sizeof why);
        if (rc == 0 && g->ca) rc = sm_tls_config_set_ca(g->tls, g->ca, NULL, why, sizeof why);
        if (rc == 0 && g->insecure) rc = sm_tls_config_insecure_skip_verify(g->tls, true);
        if (rc == 0) rc = sm_tls_config_set_alpn(g->tls, "http/1.1");
        if (rc < 0) {
            close(fd);
            cli_fail(&g->cli, "TLS: %s", why[0] ? why : sm_strerror(rc));
            return NULL;
        }
    }
    if ((left = time_left(g)) < 0) {
        close(fd);
        return NULL;
    }
    rc = sm_conn_new_tls(&c, fd, &raw, g->tls, u->host, left ? left : SM_FOREVER, why, sizeof why);
    if (rc < 0) {
        cli_fail(&g->cli, "%s: %s", where, why[0] ? why : sm_strerror(rc));
        return NULL;
    }
    cli_log(&g->cli, 1, "TLS with %s verified%s", u->host, g->insecure ? " (not: --insecure)" : "");
    return c;
}

/* Log each line of a head with a prefix ("> " or "< "). */
static void
log_head(const get *g, const char *prefix, const char *head, size_t len)
{
    if (!g->cli.verbose) return;
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n > 0 && p[n - 1] == '\r') n--;
        if (n == 0 && nl && nl + 1 == end) break; /* the blank line */
        fprintf(stderr, "%s%.*s\n", prefix, (int)(n > 1000 ? 1000 : n), p);
        p = nl ? nl + 1 : end;
    }
    fflush(stderr);
}

static bool
send_request(get *g, sm_conn *c, const http_url *u)
{
    char host[HTTP_HOST_MAX + 16], req[REQUEST_MAX];
    if (http_url_authority(u, host, sizeof host) < 0) {
        cli_fail(&g->cli, "%s: host too long", g->url_text);
        return false;
    }
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: sockmsg/%s\r\n"
                     "Accept: */*\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     u->target, host, SM_VERSION_STRING);
    if (n < 0 || (size_t)n >= sizeof req) {
        cli_fail(&g->cli, "%s: request too long", g->url_text);
        return false;
    }
    log_head(g, "> ", req, (size_t)n);
    int left = time_left(g);
    if (left < 0) return false;
    ssize_t rc = sm_conn_send_raw(c, req, (size_t)n, left ? left : SM_FOREVER);
    if (rc < 0) {
        fail_io(g, "sending the request", rc);
        return false;
    }
    return true;
}

/* Read until a final (non-1xx) response head is complete; *len is the bytes
 * in g->buf, the head first. Returns the head length or -1 (reported). At most
 * INTERIM_MAX interim heads are skipped, and the deadline is checked on every
 * round: heads already buffered need no read to be parsed. */
static ssize_t
read_head(get *g, sm_conn *c, http_response *res, size_t *len)
{
    size_t have = 0, prev = 0;
    for (int interim = 0;;) {
        if (time_left(g) < 0) return -1;
        ssize_t r = http_parse_response(g->buf, have, prev, res);
        if (r > 0 && res->status < 200 && res->status != 101) {
            /* An interim response (100 Continue, 103 Early Hints): skip it. */
            if (++interim > INTERIM_MAX) {
                cli_fail(&g->cli, "%s: more than %d interim (1xx) responses", g->url_text,
                         INTERIM_MAX);
                return -1;
            }
            log_head(g, "< ", g->buf, (size_t)r);
            if (g->include && !out_write(g, g->buf, (size_t)r)) return -1;
            memmove(g->buf, g->buf + r, have - (size_t)r);
            have -= (size_t)r;
            prev = 0;
            continue;
        }
        if (r > 0) {
            *len = have;
            return r;
        }
        if (r != -EAGAIN) {
            if (r == -EMSGSIZE)
                cli_fail(&g->cli, "%s: response head larger than %zu bytes", g->url_text,
                         HTTP_HEAD_MAX);
            else
                cli_fail(&g->cli, "%s: malformed response: %s (at byte %zu)", g->url_text,
                         res->error ? res->error : cli_strerror((int)r), res->error_off);
            return -1;
        }
        prev = have;
        int left = time_left(g);
        if (left < 0) return -1;
        ssize_t n = sm_conn_recv_raw(c, g->buf + have, BUF_SIZE - have, left ? left : SM_FOREVER);
        if (n == 0) {
            cli_fail(&g->cli, "%s: %s", g->url_text,
                     have ? "connection closed in the middle of the response head"
                          : "connection closed without a response");
            return -1;
        }
        if (n < 0) {
            fail_io(g, "receiving the response", n);
            return -1;
        }
        have += (size_t)n;
    }
}

typedef struct body {
    int kind;
    uint64_t left; /* HTTP_BODY_LENGTH: bytes to go */
    uint64_t got;  /* body bytes written */
    http_chunked chunked;
    bool done;
} body;

/* Pass received bytes through the body's framing to the output. */
static bool
body_feed(get *g, body *b, const char *p, size_t n)
{
    switch (b->kind) {
    case HTTP_BODY_LENGTH:
        if (n > b->left) n = (size_t)b->left; /* bytes past the body are not ours */
        if (n && !out_write(g, p, n)) return false;
        b->left -= n;
        b->got += n;
        b->done = b->left == 0;
        return true;
    case HTTP_BODY_CHUNKED:
        while (n > 0 && !b->done) {
            const char *data;
            size_t dlen;
            ssize_t k = http_chunked_decode(&b->chunked, p, n, &data, &dlen);
            if (k < 0) {
                cli_fail(&g->cli, "%s: malformed chunked body: %s (at body byte %llu)", g->url_text,
                         b->chunked.error ? b->chunked.error : cli_strerror((int)k),
                         (unsigned long long)b->chunked.offset);
                return false;
            }
            if (dlen && !out_write(g, data, dlen)) return false;
            b->got += dlen;
            b->done = http_chunked_done(&b->chunked);
            p += k;
            n -= (size_t)k;
        }
        return true;
    case HTTP_BODY_EOF:
        if (n && !out_write(g, p, n)) return false;
        b->got += n;
        return true;
    default:
        b->done = true;
        return true;
    }
}

/* The body: first the bytes that came in with the head, then the rest. */
static bool
read_body(get *g, sm_conn *c, body *b, const char *early, size_t early_len)
{
    if (!body_feed(g, b, early, early_len)) return false;
    while (!b->done) {
        /* Every round: a body that never ends keeps every read succeeding. */
        int left = time_left(g);
        if (left < 0) return false;
        ssize_t n = sm_conn_recv_raw(c, g->buf, BUF_SIZE, left ? left : SM_FOREVER);
        if (n < 0) {
            fail_io(g, "receiving the body", n);
            return false;
        }
        if (n == 0) {
            if (b->kind == HTTP_BODY_EOF) return true;
            if (b->kind == HTTP_BODY_LENGTH)
                cli_fail(&g->cli, "%s: connection closed after %llu of %llu body bytes",
                         g->url_text, (unsigned long long)b->got,
                         (unsigned long long)b->got + b->left);
            else
                cli_fail(&g->cli, "%s: connection closed in the middle of the chunked body",
                         g->url_text);
            return false;
        }
        if (!body_feed(g, b, g->buf, (size_t)n)) return false;
    }
    return true;
}

static bool
is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* One request on its own connection. On FETCH_REDIRECT *next holds where to. */
static fetch_result
fetch(get *g, const http_url *u, http_url *next)
{
    sm_conn *c = dial(g, u);
    if (!c) return FETCH_FAILED;
    fetch_result result = FETCH_FAILED;
    http_response res = {.headers = g->headers, .headers_cap = HEADERS_MAX};
    size_t have = 0;
    if (!send_request(g, c, u)) goto out;
    ssize_t head_len = read_head(g, c, &res, &have);
    if (head_len < 0) goto out;
    log_head(g, "< ", g->buf, (size_t)head_len);
    if (g->include && !out_write(g, g->buf, (size_t)head_len)) goto out;

    /* res points into g->buf, which the body overwrites: use it up first. */
    g->status = res.status;
    snprintf(g->reason, sizeof g->reason, "%.*s", (int)res.reason_len, res.reason);
    int k = g->follow && is_redirect(res.status) ? http_find_header(&res, "Location", 0) : -1;
    if (k >= 0) {
        char why[256];
        const http_header *loc = &res.headers[k];
        if (http_url_resolve(next, u, loc->value, loc->value_len, why, sizeof why) < 0) {
            cli_fail(&g->cli, "%s: redirect to '%.*s': %s", g->url_text,
                     (int)(loc->value_len > 200 ? 200 : loc->value_len), loc->value, why);
            goto out;
        }
        result = FETCH_REDIRECT;
        goto out;
    }

    body b = {.kind = 0};
    b.kind = http_body_framing(&res, &b.left);
    if (b.kind < 0) {
        cli_fail(&g->cli, "%s: malformed response: %s", g->url_text, res.error);
        goto out;
    }
    static const char *const kinds[] = {"none", "Content-Length", "chunked", "until EOF"};
    if (b.kind == HTTP_BODY_LENGTH)
        cli_log(&g->cli, 2, "body: %llu bytes (Content-Length)", (unsigned long long)b.left);
    else
        cli_log(&g->cli, 2, "body: %s", kinds[b.kind]);
    http_chunked_init(&b.chunked);
    b.done = b.kind == HTTP_BODY_NONE || (b.kind == HTTP_BODY_LENGTH && b.left == 0);
    /* The output exists even for an empty body. */
    int rc = out_open(g);
    if (rc < 0) {
        cli_fail(&g->cli, "%s: %s", out_name(g), sm_strerror(rc));
        goto out;
    }
    if (!read_body(g, c, &b, g->buf + head_len, have - (size_t)head_len)) goto out;
    cli_log(&g->cli, 2, "received %llu body bytes", (unsigned long long)b.got);
    result = FETCH_DONE;
out:
    sm_conn_free(c);
    return result;
}

/* The request loop: the first URL, then each redirect. Returns the exit code. */
static int
run(get *g, const http_url *first)
{
    http_url *urls = malloc(2 * sizeof *urls);
    if (!urls) return cli_fail(&g->cli, "out of memory");
    http_url *cur = &urls[0], *next = &urls[1];
    *cur = *first;
    int code = CLI_EXIT_FAIL;
    for (int redirects = 0;; redirects++) {
        http_url_format(cur, g->url_text, sizeof g->url_text);
        fetch_result r = fetch(g, cur, next);
        if (r == FETCH_FAILED) break;
        if (r == FETCH_REDIRECT) {
            if (redirects == MAX_REDIRECTS) {
                cli_fail(&g->cli, "%s: too many redirects (more than %d)", g->url_text,
                         MAX_REDIRECTS);
                break;
            }
            http_url *t = cur;
            cur = next;
            next = t;
            char text[URL_TEXT_MAX];
            http_url_format(cur, text, sizeof text);
            cli_log(&g->cli, 1, "%d redirect to %s", g->status, text);
            continue;
        }
        if (g->status >= 200 && g->status < 400) {
            code = CLI_EXIT_OK;
        } else if (g->reason[0]) {
            cli_fail(&g->cli, "%d %s", g->status, g->reason);
        } else {
            cli_fail(&g->cli, "%d", g->status);
        }
        break;
    }
    free(urls);
    return code;
}

int
cmd_get(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"include", no_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"location", no_argument, NULL, 'L'},
        {"follow", no_argument, NULL, 'L'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"ca", required_argument, NULL, OPT_CA},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {NULL, 0, NULL, 0},
    };
    get *g = calloc(1, sizeof *g);
    if (!g) {
        fprintf(stderr, "sockmsg: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_init(&g->cli, "get");
    g->timeout_ms = DEFAULT_TIMEOUT;
    g->out.fd = -1;
    int code = CLI_EXIT_USAGE, ch;
    while ((ch = cli_getopt(&g->cli, argc, argv, CLI_COMMON_SHORTOPTS "io:L", longopts)) != -1) {
        switch (ch) {
        case 'h':
            help();
            code = CLI_EXIT_OK;
            goto done;
        case 'i':
            g->include = true;
            break;
        case 'o':
            g->out.path = strcmp(optarg, "-") ? optarg : NULL;
            break;
        case 'L':
            g->follow = true;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_ms(&g->cli, "--timeout", optarg, &g->timeout_ms)) goto done;
            break;
        case OPT_CA:
            g->ca = optarg;
            break;
        case OPT_INSECURE:
            g->insecure = true;
            break;
        default:
            goto done;
        }
    }
    if (optind >= argc) {
        cli_usage_error(&g->cli, "missing URL");
        goto done;
    }
    if (argc - optind > 1) {
        cli_usage_error(&g->cli, "unexpected argument '%s' (one URL only)", argv[optind + 1]);
        goto done;
    }
    http_url *url = malloc(sizeof *url);
    char why[256];
    if (!url) {
        code = cli_fail(&g->cli, "out of memory");
        goto done;
    }
    if (http_url_parse(url, argv[optind], why, sizeof why) < 0) {
        cli_usage_error(&g->cli, "%s", why);
        free(url);
        goto done;
    }
    g->buf = malloc(BUF_SIZE);
    if (!g->buf) {
        free(url);
        code = cli_fail(&g->cli, "out of memory");
        goto done;
    }
    g->deadline = cli_deadline(g->timeout_ms > 0 ? g->timeout_ms : -1);
    code = run(g, url);
    free(url);
    int rc = out_close(g);
    if (rc < 0) code = cli_fail(&g->cli, "%s: %s", out_name(g), sm_strerror(rc));
done:
    sm_tls_config_free(g->tls);
    free(g->buf);
    free(g);
    return code;
}
