/* sockmsg cat ENDPOINT: netcat with framing.
 *
 * One poll(2) loop moves bytes both ways at once: standard input to the
 * socket, the socket to standard output. Neither direction ever waits on the
 * other, and each has a bounded buffer: a full socket stops us reading stdin,
 * a full stdout stops us reading the socket, so a slow reader on one side
 * costs memory on neither.
 *
 * With --frame, stdin lines become messages (sent by gather writes straight
 * from the input buffer, many frames per sendmsg) and received messages are
 * cut by the library's pure decoder and printed one per line or hex-dumped.
 *
 * stdin and stdout themselves stay blocking: they are often shared with the
 * shell or the next command, and O_NONBLOCK would change them for everybody.
 * We read stdin only when poll says it is readable (a read then returns what
 * is there), and write stdout without blocking as open_stdout explains.
 *
 * This file parses the options, connects and runs the loop; cat_send.c holds
 * the stdin -> socket half, cat_recv.c the socket -> stdout half (cat.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include <sockmsg/socket.h>

#include "cat.h"

cli_command_fn cmd_cat;

#define DEFAULT_TIMEOUT 10000

enum { OPT_TIMEOUT = 256 };

static void
help(void)
{
    printf("usage: sockmsg cat [options] ENDPOINT\n"
           "\n"
           "Copy standard input to the socket and the socket to standard output, both\n"
           "ways at once, like nc. ENDPOINT is tcp://HOST:PORT, tcp://[V6]:PORT,\n"
           "unix:/PATH or unix:@NAME. At the end of input the write side is shut down\n"
           "and cat goes on printing until the peer closes.\n"
           "\n"
           "options:\n"
           "  -l, --listen       accept one connection on ENDPOINT instead of connecting;\n"
           "                     the first line on stderr is always\n"
           "                     'sockmsg: listening on ADDRESS' (port 0 picks one)\n"
           "  -f, --frame SPEC   send each input line (without its newline) as one\n"
           "                     message framed by SPEC (len32be, line, netstring, ...)\n"
           "                     and print each message received followed by a newline\n"
           "  -x, --hex          print what is received as a hex dump (one per message\n"
           "                     with --frame)\n"
           "      --timeout MS   bound connecting (default %d ms) or, with --listen,\n"
           "                     waiting for the connection (default: no limit);\n"
           "                     500, 500ms, 2s, 1m; 0 for no limit\n"
           "  -v, --verbose      say who connected and how much went each way\n"
           "  -h, --help         show this help\n"
           "\n"
           "exit status: 0 when the peer closed cleanly (or stdout was closed), 1 for a\n"
           "failure (refused, reset, a bad or truncated frame, a line SPEC cannot\n"
           "frame), 2 for usage errors.\n",
           DEFAULT_TIMEOUT);
}

void
cat_say(const char *fmt, ...)
{
    /* One write per line, as cli.c does, so lines stay whole. */
    char line[NAME_MAX_LEN + 128] = "sockmsg: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    line[n++] = '\n';
    (void)cli_write_all(STDERR_FILENO, line, n);
}

void
cat_fail(cat *c, const char *fmt, ...)
{
    if (c->code >= 0) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->code = cli_fail(&c->cli, "%s", msg);
}

/* --- the loop -------------------------------------------------------------- */

/* The peer closed both ways while we still had input to give it. */
static void
peer_gone(cat *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err)
        cat_fail(c, "%s: sending: %s", c->peer, sm_strerror(-err));
    else
        cat_fail(c, "%s: the peer closed the connection before the end of input", c->peer);
}

static int
run(cat *c)
{
    bool stdout_gone = false;
    while (c->code < 0) {
        cat_render_in(c);
        cat_fill_queue(c);
        cat_maybe_shutdown(c);
        if (c->code >= 0) break;
        /* The peer's EOF may be a half-close: it may still read, so input
         * goes on until its end. At a terminal nobody may ever type that
         * end: there the peer's EOF ends everything. */
        if (c->in_done && c->opos == c->oend && (c->wr_shut || c->stdin_tty)) {
            c->code = CLI_EXIT_OK;
            break;
        }
        struct pollfd p[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
        if (!c->in_eof && !c->failing) {
            bool room = cat_stdin_room(c);
            if (c->failing || c->code >= 0) continue; /* a line too long: wind down */
            if (room) {
                p[0].fd = STDIN_FILENO;
                p[0].events = POLLIN;
            }
        }
        if (c->opos < c->oend) {
            p[1].fd = c->out_fd;
            p[1].events = POLLOUT;
        }
        short ev = 0;
        if (cat_want_sock_read(c)) ev |= POLLIN;
        if (!c->wr_shut && cat_out_pending(c)) ev |= POLLOUT;
        /* After the peer's EOF, with nothing to send, watch for its reset
         * (POLLERR, POLLHUP: reported even with no events asked for). */
        if (ev || (c->sock_eof && !c->wr_shut)) {
            p[2].fd = c->fd;
            p[2].events = ev;
        }
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            cat_fail(c, "poll: %s", sm_strerror(-errno));
            break;
        }
        if (p[1].revents) {
            if (!cat_write_stdout(c)) {
                stdout_gone = true;
                cli_log(&c->cli, 1, "stdout closed");
                c->code = CLI_EXIT_OK;
                break;
            }
        }
        if (p[0].revents & POLLNVAL) {
            c->in_eof = true; /* no stdin at all: nothing to send */
        } else if (p[0].revents) {
            cat_read_stdin(c);
        }
        if (c->code >= 0) break;
        if ((p[2].revents & (POLLOUT | POLLERR | POLLHUP)) && (ev & POLLOUT)) cat_send_out(c);
        if (c->code >= 0) break;
        if ((p[2].revents & (POLLIN | POLLERR | POLLHUP)) && (ev & POLLIN)) cat_recv_in(c);
        if ((p[2].revents & (POLLERR | POLLHUP)) && !ev) peer_gone(c);
    }
    /* What was rendered before a failure still goes out (blocking now). */
    if (!stdout_gone && c->opos < c->oend)
        (void)cli_write_all(STDOUT_FILENO, c->obuf + c->opos, c->oend - c->opos);
    if (c->framed)
        cli_log(&c->cli, 1, "received %llu messages (%llu bytes)%s", c->recv_msgs, c->recv_bytes,
                c->dec.skipped ? ", oversized ones skipped" : "");
    return c->code;
}

/* --- connecting ------------------------------------------------------------ */

static void
format_endpoint(const sm_endpoint *ep, const char *fallback, char *out, size_t len)
{
    /* The fallback may be the very buffer (reformatting in place): then it must
     * be copied aside first, as sm_endpoint_format has written over it. */
    char keep[NAME_MAX_LEN];
    snprintf(keep, sizeof keep, "%s", fallback);
    if (sm_endpoint_format(ep, out, len) < 0) snprintf(out, len, "%s", keep);
}

static int
dial(cat *c, const sm_endpoint *ep, const char *text)
{
    char where[NAME_MAX_LEN], why[512];
    format_endpoint(ep, text, where, sizeof where);
    snprintf(c->peer, sizeof c->peer, "%s", where);
    cli_log(&c->cli, 1, "connecting to %s", where);
    int timeout = c->timeout_ms < 0 ? DEFAULT_TIMEOUT : c->timeout_ms;
    int fd = sm_dial_endpoint(ep, NULL, timeout ? timeout : SM_FOREVER, why, sizeof why);
    if (fd < 0) {
        cli_log(&c->cli, 1, "%s", why);
        if (fd == -ETIMEDOUT) return cli_fail(&c->cli, "%s: timed out after %d ms", where, timeout);
        if (fd == SM_ERR_RESOLVE && why[0]) return cli_fail(&c->cli, "%s: %s", where, why);
        return cli_fail(&c->cli, "%s: %s", where, sm_strerror(fd));
    }
    c->fd = fd;
    cli_log(&c->cli, 1, "connected to %s", where);
    return CLI_EXIT_OK;
}

static int
accept_one(cat *c, const sm_endpoint *ep, const char *text)
{
    char where[NAME_MAX_LEN], why[512];
    format_endpoint(ep, text, where, sizeof where);
    sm_endpoint bound;
    int lfd = sm_listen_endpoint(ep, NULL, 1, &bound, why, sizeof why);
    if (lfd < 0) {
        if (lfd == SM_ERR_RESOLVE && why[0]) return cli_fail(&c->cli, "%s: %s", where, why);
        return cli_fail(&c->cli, "%s: %s", where, sm_strerror(lfd));
    }
    format_endpoint(&bound, where, where, sizeof where);
    cat_say("listening on %s", where);
    int timeout = c->timeout_ms <= 0 ? SM_FOREVER : c->timeout_ms;
    sm_addr peer;
    int fd = sm_accept(lfd, timeout, &peer);
    /* One connection only: nobody else gets in, and a socket file goes. */
    close(lfd);
    if (bound.kind == SM_ENDPOINT_UNIX) unlink(bound.path);
    if (fd < 0) {
        if (fd == -ETIMEDOUT)
            return cli_fail(&c->cli, "%s: no connection within %d ms", where, timeout);
        return cli_fail(&c->cli, "%s: accept: %s", where, sm_strerror(fd));
    }
    c->fd = fd;
    if (sm_addr_format((struct sockaddr *)&peer.ss, peer.len, c->peer, sizeof c->peer) <= 0 ||
        !strcmp(c->peer, "unix:"))
        snprintf(c->peer, sizeof c->peer, "%s", where); /* unnamed Unix clients */
    cli_log(&c->cli, 1, "connection from %s", c->peer);
    return CLI_EXIT_OK;
}

/* --- setup ----------------------------------------------------------------- */

/* How to write stdout without ever blocking in write(2). Files and devices
 * such as /dev/null take anything at once. A pipe gets an open file
 * description of our own through /proc, made non-blocking there: setting
 * O_NONBLOCK on fd 1 itself would change it for everyone sharing it (the
 * shell, the next command). Anything else (a terminal, a socket) gets writes
 * of PIPE_BUF bytes after poll said it is writable. */
static void
open_stdout(cat *c)
{
    struct stat st;
    c->out_fd = STDOUT_FILENO;
    c->out_chunk = PIPE_BUF;
    if (fstat(STDOUT_FILENO, &st) < 0) return;
    if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(STDOUT_FILENO))) {
        c->out_chunk = IO_BUF;
    } else if (S_ISFIFO(st.st_mode)) {
        int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            c->out_fd = fd;
            c->out_chunk = IO_BUF;
        }
    }
}

static int
start(cat *c, const char *endpoint)
{
    char why[512];
    sm_endpoint ep;
    if (sm_endpoint_parse(&ep, endpoint, why, sizeof why) < 0)
        return cli_usage_error(&c->cli, "%s", why);
    if (c->spec_text) {
        int code = cli_parse_frame(&c->cli, "--frame", c->spec_text, &c->spec);
        if (code != 0) return code;
        c->framed = true;
        c->raw_out = c->spec.kind == SM_FRAME_EOF;
        uint64_t max = sm_frame_max(&c->spec);
        if (max > SIZE_MAX / 4) max = SIZE_MAX / 4;
        c->ilimit = (size_t)max + 2; /* a type byte, the newline */
        c->rlimit = (size_t)max + SM_FRAME_HEAD_MAX + SM_FRAME_DELIM_MAX + 2;
        sm_frame_decoder_init(&c->dec, &c->spec);
    } else {
        c->raw_out = true;
        c->ilimit = c->rlimit = IO_BUF;
    }
    c->icap = c->rcap = IO_BUF;
    c->ibuf = malloc(c->icap);
    c->rbuf = malloc(c->rcap);
    c->obuf = malloc(IO_BUF);
    if (!c->ibuf || !c->rbuf || !c->obuf) return cli_fail(&c->cli, "out of memory");

    /* A closed stdin or stdout would be reused by the socket: /dev/null. */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            (void)open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
    open_stdout(c);
    /* A closed stdout must be an EPIPE we can handle, not a death. */
    signal(SIGPIPE, SIG_IGN);
    c->stdin_tty = isatty(STDIN_FILENO);

    int rc = c->listen ? accept_one(c, &ep, endpoint) : dial(c, &ep, endpoint);
    if (rc != CLI_EXIT_OK) return rc;
    if ((rc = sm_sock_set_nonblock(c->fd, true)) < 0)
        return cli_fail(&c->cli, "%s: %s", c->peer, sm_strerror(rc));
    return run(c);
}

int
cmd_cat(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"listen", no_argument, NULL, 'l'},
        {"frame", required_argument, NULL, 'f'},
        {"hex", no_argument, NULL, 'x'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    cat *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "sockmsg: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_init(&c->cli, "cat");
    c->timeout_ms = -1;
    c->fd = -1;
    c->out_fd = STDOUT_FILENO;
    c->code = -1;
    int code = CLI_EXIT_USAGE, ch;
    while ((ch = cli_getopt(&c->cli, argc, argv, CLI_COMMON_SHORTOPTS "lf:x", longopts)) != -1) {
        switch (ch) {
        case 'h':
            help();
            code = CLI_EXIT_OK;
            goto done;
        case 'l':
            c->listen = true;
            break;
        case 'f':
            c->spec_text = optarg;
            break;
        case 'x':
            c->hex = true;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_ms(&c->cli, "--timeout", optarg, &c->timeout_ms)) goto done;
            break;
        default:
            goto done;
        }
    }
    if (optind >= argc) {
        cli_usage_error(&c->cli, "missing ENDPOINT");
        goto done;
    }
    if (argc - optind > 1) {
        cli_usage_error(&c->cli, "unexpected argument '%s' (one ENDPOINT only)", argv[optind + 1]);
        goto done;
    }
    code = start(c, argv[optind]);
done:
    if (c->fd >= 0) close(c->fd);
    if (c->out_fd > STDOUT_FILENO) close(c->out_fd);
    free(c->ibuf);
    free(c->rbuf);
    free(c->obuf);
    free(c);
    return code;
}
