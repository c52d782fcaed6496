/* A complete server on sm_server: listens on every endpoint given, serves a
 * built-in handler (echo by default), enforces limits, logs to stderr, and
 * stops gracefully on SIGINT or SIGTERM (a second signal forces it).
 *
 *   echo_server [options] ENDPOINT...
 *     --handler NAME     echo, discard or chat (default echo)
 *     --frame SPEC       frame spec (default len32be)
 *     --thread           thread per connection instead of event loops
 *     --threads N        loops, or the most connection threads
 *     --max-conns N      refuse connections past N
 *     --idle MS          close connections idle this long
 *     --first MS         close connections without a whole message this soon
 *     --drain MS         how long a stop waits for clients (default 5000)
 *     --proxy            expect a PROXY v1/v2 header on every connection
 *     -v                 log every connection
 *
 * The first lines printed are "listening on ENDPOINT", one per endpoint (port
 * 0 resolved), so a script can start it on tcp://127.0.0.1:0. When it stops
 * it prints what it did and exits 0. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/server.h>

static void
log_line(void *data, sm_log_level level, const char *line)
{
    (void)data;
    static const char *const names[] = {"", "error", "warning", "info", "debug"};
    fprintf(stderr, "echo_server: %s: %s\n", names[level], line);
}

/* An option's whole decimal number into *out; false for "5s", "" or an
 * overflow, which atoi would have turned into something without a word. The
 * server checks the value's range (sm_server_new says which). */
static bool
number(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < INT_MIN || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}

static int
usage(void)
{
    fprintf(stderr, "usage: echo_server [--handler echo|discard|chat] [--frame SPEC] [--thread]\n"
                    "                   [--threads N] [--max-conns N] [--idle MS] [--first MS]\n"
                    "                   [--drain MS] [--proxy] [-v] ENDPOINT...\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *eps[16];
    int neps = 0;
    const char *handler = "echo", *frame = "len32be";
    bool bad = false; /* a number option that is not a number */
    sm_server_opts o = {.handle_signals = true, .log = log_line};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--handler") && more)
            handler = argv[++i];
        else if (!strcmp(a, "--frame") && more)
            frame = argv[++i];
        else if (!strcmp(a, "--thread"))
            o.model = SM_SERVER_THREAD;
        else if (!strcmp(a, "--threads") && more)
            bad |= !number(argv[++i], &o.threads);
        else if (!strcmp(a, "--max-conns") && more)
            bad |= !number(argv[++i], &o.max_conns);
        else if (!strcmp(a, "--idle") && more)
            bad |= !number(argv[++i], &o.idle_timeout_ms);
        else if (!strcmp(a, "--first") && more)
            bad |= !number(argv[++i], &o.first_message_timeout_ms);
        else if (!strcmp(a, "--drain") && more)
            bad |= !number(argv[++i], &o.drain_timeout_ms);
        else if (!strcmp(a, "--proxy"))
            o.proxy_protocol = true;
        else if (!strcmp(a, "-v"))
            o.log_level = SM_LOG_DEBUG;
        else if (a[0] != '-' && neps < 16)
            eps[neps++] = a;
        else
            return usage();
    }
    if (bad || neps == 0) return usage();

    o.on_message = sm_server_handler_by_name(handler);
    if (!o.on_message) {
        fprintf(stderr, "echo_server: unknown handler '%s'; there are:", handler);
        for (int i = 0; sm_server_handler_name(i); i++)
            fprintf(stderr, " %s", sm_server_handler_name(i));
        fprintf(stderr, "\n");
        return 2;
    }
    /* guide: server */
    o.frame = frame; /* a spec string: "len32be", "line,max=4096" */
    o.listen = eps;  /* "tcp://127.0.0.1:7000", "unix:/run/echo.sock", ... */
    o.listen_count = neps;
    /* A client that goes away must not kill us with SIGPIPE (the library
     * never raises it, but handlers might write elsewhere). */
    signal(SIGPIPE, SIG_IGN);

    sm_server *srv;
    char why[256];
    int rc = sm_server_new(&srv, &o, why, sizeof why); /* copies o; binds every listener */
    if (rc < 0) {
        fprintf(stderr, "echo_server: %s\n", why[0] ? why : sm_strerror(rc));
        return 1;
    }
    for (int i = 0; i < sm_server_endpoint_count(srv); i++) {
        sm_endpoint e;
        char text[300];
        sm_server_endpoint(srv, i, &e);
        sm_endpoint_format(&e, text, sizeof text);
        printf("listening on %s\n", text);
    }
    fflush(stdout);

    rc = sm_server_run(srv); /* until SIGINT/SIGTERM, then drained */
    /* guide: end */
    /* guide: stats */
    sm_server_stats st;
    sm_server_get_stats(srv, &st);
    printf("stopped: %llu connections, %llu messages in, %llu out; closed:",
           (unsigned long long)st.opened, (unsigned long long)st.msgs_in,
           (unsigned long long)st.msgs_out);
    for (int k = 0; k < SM_CLOSE_KINDS; k++)
        if (st.closes[k])
            printf(" %s=%llu", sm_server_close_kind_name(k), (unsigned long long)st.closes[k]);
    printf("\n");
    /* guide: end */
    sm_server_free(srv);
    if (rc < 0) {
        fprintf(stderr, "echo_server: %s\n", sm_strerror(rc));
        return 1;
    }
    return 0;
}
