/* sockmsg serve --listen ENDPOINT...: a server with a built-in behaviour.
 *
 * Everything that serves is the library's sm_server; this file turns options
 * into sm_server_opts and adds what a foreground tool needs: the bound
 * addresses on stdout (port 0 resolved) before anything else, log lines on
 * stderr, statistics on SIGUSR1 and at the end.
 *
 * Signals. The server itself stops gracefully on SIGINT or SIGTERM (a second
 * one forces it). SIGUSR1 is blocked in every thread (it is blocked before
 * the server creates any) and a small thread of ours takes it with
 * sigwait(2), so no handler ever runs in signal context and the counters are
 * read with sm_server_get_stats, which is thread-safe. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include <sockmsg/server.h>
#include <sockmsg/stream.h>

#include "cli.h"

cli_command_fn cmd_serve;

#define MAX_LISTEN      64
#define MAX_LOOPS       64
#define MAX_CONN_THREAD 65536
#define MAX_CONNS       100000000
#define ADDR_MAX        (SM_ENDPOINT_HOST_MAX + 64)

enum {
    OPT_ECHO = 256,
    OPT_DISCARD,
    OPT_CHAT,
    OPT_MODEL,
    OPT_THREADS,
    OPT_MAX_CONNS,
    OPT_IDLE,
    OPT_HEARTBEAT,
    OPT_PROXY,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_FIRST,
    OPT_MSG_TIMEOUT,
    OPT_WRITE_TIMEOUT,
    OPT_COMMIT,
    OPT_STACK,
    OPT_MAX_QUEUED
};

typedef struct serve {
    cli cli;
    const char *listen[MAX_LISTEN];
    int nlisten;
    const char *handler; /* "echo", "discard", "chat" */
    const char *frame;
    sm_frame_spec spec;
    sm_server_opts opts;
    sm_server *srv;
    const char *tls_cert, *tls_key, *tls_ca;
    sm_tls_config *tls;
    /* The server logs its "listening on" lines while sm_server_new binds;
     * they are on stdout already, so without -v they are not repeated. */
    atomic_bool started;
    bool first_set;   /* --first-message-timeout given */
    atomic_bool done; /* tells the stats thread to end */
} serve;

static void
help(void)
{
    printf("usage: sockmsg serve --listen ENDPOINT... [options]\n"
           "\n"
           "Serve connections on every ENDPOINT (tcp://HOST:PORT, tcp://[V6]:PORT,\n"
           "tcp://*:PORT, tls://HOST:PORT, unix:/PATH, unix:@NAME) until SIGINT or SIGTERM, which "
           "stop\n"
           "gracefully (a second one forces it). The first lines on stdout are\n"
           "'listening on ADDRESS', one per endpoint, with port 0 resolved.\n"
           "SIGUSR1 prints statistics on stderr; they are printed at the end too.\n"
           "\n"
           "options:\n"
           "  -l, --listen ENDPOINT   listen here (repeat for more endpoints)\n"
           "      --echo              send every message back (the default)\n"
           "      --discard           read every message and drop it\n"
           "      --chat              send every message to every other client\n"
           "  -f, --frame SPEC        framing of messages (default len32be)\n"
           "      --model MODEL       loop: event loops, each connection on one of\n"
           "                          them (default); thread: a thread per connection\n"
           "      --threads N         loop: event loops (default: one per core);\n"
           "                          thread: the most connection threads (default 256)\n"
           "      --commit WHEN       thread model: first-message (default) gives a\n"
           "                          connection its thread once its first message\n"
           "                          is whole; accept gives it at once (--chat's)\n"
           "      --stack-size SIZE   thread model: each connection thread's stack\n"
           "                          (default 128k)\n"
           "      --max-conns N       refuse connections past N at once (default: the\n"
           "                          descriptor limit less 64 and a few per thread;\n"
           "                          0: no limit)\n"
           "      --max-queued SIZE   loop model: close a client whose unsent replies\n"
           "                          pass SIZE (default 16M + 64k)\n"
           "\n"
           "  Timeouts take MS: 500, 500ms, 2s, 1m; 0 turns one off.\n"
           "      --first-message-timeout MS\n"
           "                          the first whole message (and a PROXY header)\n"
           "                          must arrive within MS of the accept (default\n"
           "                          10s; --chat: off, its clients may only listen)\n"
           "      --message-timeout MS\n"
           "                          a later message must be whole within MS of its\n"
           "                          first byte (default 60s)\n"
           "      --idle-timeout MS   close connections with nothing sent or received\n"
           "                          for MS (default 5m)\n"
           "      --write-timeout MS  close a client that takes no reply bytes for MS\n"
           "                          (default 30s)\n"
           "      --heartbeat MS[,TIMEOUT]\n"
           "                          send an empty message after MS with nothing sent;\n"
           "                          close a client silent for TIMEOUT (default 3 x MS);\n"
           "                          clients' empty messages are taken as their pings\n"
           "      --proxy-protocol    every connection starts with a PROXY v1 or v2 header\n"
           "      --tls-cert FILE     the certificate chain (PEM) of tls:// listeners\n"
           "      --tls-key FILE      its private key (PEM)\n"
           "      --tls-ca FILE       require client certificates signed by these CAs\n"
           "  -v, --verbose           log every connection and why it closed\n"
           "  -h, --help              show this help\n"
           "\n"
           "exit status: 0 after a stop, 1 for failures (an address in use), 2 for\n"
           "usage errors.\n");
}

/* One write per line: server threads log concurrently. */
static void print_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
print_line(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    (void)cli_write_all(STDERR_FILENO, line, len);
}

static void
log_line(void *data, sm_log_level level, const char *line)
{
    serve *s = data;
    switch (level) {
    case SM_LOG_ERROR:
        print_line("sockmsg: error: %s", line);
        break;
    case SM_LOG_WARN:
        print_line("sockmsg: warning: %s", line);
        break;
    case SM_LOG_INFO:
        if (s->cli.verbose || atomic_load(&s->started)) print_line("sockmsg: %s", line);
        break;
    default:
        cli_log(&s->cli, 1, "%s", line);
        break;
    }
}

static void
print_stats(const serve *s, const char *what)
{
    sm_server_stats st;
    sm_server_get_stats(s->srv, &st);
    char closes[512] = "";
    size_t n = 0;
    uint64_t closed = 0;
    for (int k = 0; k < SM_CLOSE_KINDS; k++) {
        if (!st.closes[k]) continue;
        closed += st.closes[k];
        int m = snprintf(closes + n, sizeof closes - n, "%s%s %llu", n ? ", " : "",
                         sm_server_close_kind_name(k), (unsigned long long)st.closes[k]);
        if (m > 0 && (size_t)m < sizeof closes - n) n += (size_t)m;
    }
    char errors[64] = "";
    if (st.accept_errors)
        snprintf(errors, sizeof errors, "; %llu accept errors",
                 (unsigned long long)st.accept_errors);
    print_line("sockmsg: %s: connections %llu open, %llu total; messages %llu in, %llu out; "
               "bytes %llu in, %llu out; closed %llu%s%s%s%s",
               what, (unsigned long long)st.current, (unsigned long long)st.accepted,
               (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out,
               (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
               (unsigned long long)closed, n ? " (" : "", closes, n ? ")" : "", errors);
}

/* Prints the statistics at each SIGUSR1 until told to end (s->done, then a
 * SIGUSR1 aimed at this thread). */
static void *
stats_thread(void *arg)
{
    serve *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0) continue;
        if (atomic_load(&s->done)) return NULL;
        print_stats(s, "stats");
    }
}

static int
set_handler(serve *s, const char *name)
{
    if (s->handler && strcmp(s->handler, name) != 0)
        return cli_usage_error(&s->cli, "--%s and --%s: pick one behaviour", s->handler, name);
    s->handler = name;
    return 0;
}

/* A timeout option: 0 turns it off (the library's zero value is its
 * default, SM_FOREVER is off). */
static int
parse_timeout(serve *s, const char *opt, const char *arg, int *out)
{
    if (cli_parse_ms(&s->cli, opt, arg, out)) return -1;
    if (*out > SM_STREAM_TIMEOUT_MAX_MS)
        return cli_usage_error(&s->cli, "bad value '%s' for %s: at most %d ms", arg, opt,
                               SM_STREAM_TIMEOUT_MAX_MS);
    if (*out == 0) *out = SM_FOREVER;
    return 0;
}

/* --heartbeat MS[,TIMEOUT]: an empty ping after MS of sending nothing; a
 * client silent for TIMEOUT (3 x MS by default) is dead. Empty messages from
 * clients are their pings (swallowed). */
static int
parse_heartbeat(serve *s, const char *arg)
{
    sm_server_opts *o = &s->opts;
    char every[64];
    const char *comma = strchr(arg, ',');
    size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
    if (n >= sizeof every) return cli_usage_error(&s->cli, "bad value '%s' for --heartbeat", arg);
    memcpy(every, arg, n);
    every[n] = '\0';
    if (cli_parse_ms(&s->cli, "--heartbeat", every, &o->heartbeat_ms)) return -1;
    if (o->heartbeat_ms == 0)
        return cli_usage_error(&s->cli, "bad value '%s' for --heartbeat: the interval is 0", arg);
    if (comma) {
        if (cli_parse_ms(&s->cli, "--heartbeat", comma + 1, &o->heartbeat_timeout_ms)) return -1;
    } else {
        o->heartbeat_timeout_ms = o->heartbeat_ms > SM_STREAM_TIMEOUT_MAX_MS / 3
                                      ? SM_STREAM_TIMEOUT_MAX_MS
                                      : 3 * o->heartbeat_ms;
    }
    o->swallow_pings = true;
    return 0;
}

static int
parse_options(serve *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"listen", required_argument, NULL, 'l'},
        {"frame", required_argument, NULL, 'f'},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"discard", no_argument, NULL, OPT_DISCARD},
        {"chat", no_argument, NULL, OPT_CHAT},
        {"model", required_argument, NULL, OPT_MODEL},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
        {"proxy-protocol", no_argument, NULL, OPT_PROXY},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"first-message-timeout", required_argument, NULL, OPT_FIRST},
        {"message-timeout", required_argument, NULL, OPT_MSG_TIMEOUT},
        {"write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
        {"commit", required_argument, NULL, OPT_COMMIT},
        {"stack-size", required_argument, NULL, OPT_STACK},
        {"max-queued", required_argument, NULL, OPT_MAX_QUEUED},
        {NULL, 0, NULL, 0},
    };
    sm_server_opts *o = &s->opts;
    long long v, threads = 0;
    int ch;
    while ((ch = cli_getopt(&s->cli, argc, argv, CLI_COMMON_SHORTOPTS "l:f:", longopts)) != -1) {
        switch (ch) {
        case 'h':
            help();
            return -1;
        case 'l':
            if (s->nlisten == MAX_LISTEN)
                return cli_usage_error(&s->cli, "at most %d --listen endpoints", MAX_LISTEN);
            s->listen[s->nlisten++] = optarg;
            break;
        case 'f':
            s->frame = optarg;
            break;
        case OPT_ECHO:
        case OPT_DISCARD:
        case OPT_CHAT: {
            const char *name = ch == OPT_ECHO ? "echo" : ch == OPT_DISCARD ? "discard" : "chat";
            if (set_handler(s, name)) return CLI_EXIT_USAGE;
            break;
        }
        case OPT_MODEL:
            if (!strcmp(optarg, "loop"))
                o->model = SM_SERVER_LOOP;
            else if (!strcmp(optarg, "thread"))
                o->model = SM_SERVER_THREAD;
            else
                return cli_usage_error(&s->cli, "bad value '%s' for --model: loop or thread",
                                       optarg);
            break;
        case OPT_THREADS:
            /* The range depends on --model, which may come later. */
            if (cli_parse_int(&s->cli, "--threads", optarg, 1, MAX_CONN_THREAD, &threads))
                return CLI_EXIT_USAGE;
            break;
        case OPT_MAX_CONNS:
            if (cli_parse_int(&s->cli, "--max-conns", optarg, 0, MAX_CONNS, &v))
                return CLI_EXIT_USAGE;
            o->max_conns = v == 0 ? -1 : (int)v;
            break;
        case OPT_IDLE:
            if (parse_timeout(s, "--idle-timeout", optarg, &o->idle_timeout_ms))
                return CLI_EXIT_USAGE;
            break;
        case OPT_FIRST:
            if (parse_timeout(s, "--first-message-timeout", optarg, &o->first_message_timeout_ms))
                return CLI_EXIT_USAGE;
            s->first_set = true;
            break;
        case OPT_MSG_TIMEOUT:
            if (parse_timeout(s, "--message-timeout", optarg, &o->message_timeout_ms))
                return CLI_EXIT_USAGE;
            break;
        case OPT_WRITE_TIMEOUT:
            if (parse_timeout(s, "--write-timeout", optarg, &o->write_timeout_ms))
                return CLI_EXIT_USAGE;
            break;
        case OPT_COMMIT:
            if (!strcmp(optarg, "first-message"))
                o->commit = SM_COMMIT_FIRST_MESSAGE;
            else if (!strcmp(optarg, "accept"))
                o->commit = SM_COMMIT_ACCEPT;
            else
                return cli_usage_error(
                    &s->cli, "bad value '%s' for --commit: first-message or accept", optarg);
            break;
        case OPT_STACK:
        case OPT_MAX_QUEUED: {
            const char *name = ch == OPT_STACK ? "--stack-size" : "--max-queued";
            uint64_t size;
            if (cli_parse_size(&s->cli, name, optarg, &size)) return CLI_EXIT_USAGE;
            if (size == 0 || size > SIZE_MAX)
                return cli_usage_error(&s->cli, "bad value '%s' for %s", optarg, name);
            if (ch == OPT_STACK)
                o->thread_stack_size = (size_t)size;
            else
                o->max_queued = (size_t)size;
            break;
        }
        case OPT_HEARTBEAT:
            if (parse_heartbeat(s, optarg)) return CLI_EXIT_USAGE;
            break;
        case OPT_PROXY:
            o->proxy_protocol = true;
            break;
        case OPT_TLS_CERT:
            s->tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            s->tls_key = optarg;
            break;
        case OPT_TLS_CA:
            s->tls_ca = optarg;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&s->cli, "unexpected argument '%s' (endpoints go after --listen)",
                               argv[optind]);
    if (s->nlisten == 0)
        return cli_usage_error(&s->cli, "missing --listen ENDPOINT (e.g. tcp://127.0.0.1:7000)");
    if (o->model == SM_SERVER_LOOP && threads > MAX_LOOPS)
        return cli_usage_error(&s->cli, "bad value '%lld' for --threads: at most %d event loops",
                               threads, MAX_LOOPS);
    o->threads = (int)threads;
    return 0;
}

/* Check what the user typed before anything is bound, so a typo is a usage
 * error with the library's explanation. */
static int
check_arguments(serve *s)
{
    char why[512];
    bool tls = false;
    for (int i = 0; i < s->nlisten; i++) {
        sm_endpoint ep;
        if (sm_endpoint_parse(&ep, s->listen[i], why, sizeof why) < 0)
            return cli_usage_error(&s->cli, "--listen: %s", why);
        tls |= ep.tls;
    }
    if (!tls && (s->tls_cert || s->tls_key || s->tls_ca))
        return cli_usage_error(&s->cli,
                               "--tls-cert, --tls-key and --tls-ca need a tls:// listener");
    if (tls && (!s->tls_cert || !s->tls_key))
        return cli_usage_error(&s->cli,
                               "a tls:// listener needs --tls-cert FILE and --tls-key FILE");
    return cli_parse_frame(&s->cli, "--frame", s->frame, &s->spec);
}

static void
print_listening(const serve *s)
{
    for (int i = 0; i < sm_server_endpoint_count(s->srv); i++) {
        sm_endpoint ep;
        char text[ADDR_MAX];
        if (sm_server_endpoint(s->srv, i, &ep) < 0 ||
            sm_endpoint_format(&ep, text, sizeof text) < 0)
            snprintf(text, sizeof text, "%s", s->listen[i]);
        printf("listening on %s\n", text);
    }
    fflush(stdout);
}

/* Start the server and the stats thread, wait for the stop, report. */
static int
run(serve *s)
{
    int rc = sm_server_start(s->srv);
    if (rc < 0) return cli_fail(&s->cli, "starting the server: %s", sm_strerror(rc));
    /* Created after the start, the thread inherits the server's blocked
     * SIGINT and SIGTERM as well as SIGUSR1. */
    pthread_t stats;
    int trc = pthread_create(&stats, NULL, stats_thread, s);
    if (trc != 0) cli_log(&s->cli, 1, "no statistics on SIGUSR1: %s", sm_strerror(-trc));
    rc = sm_server_wait(s->srv);
    if (trc == 0) {
        atomic_store(&s->done, true);
        pthread_kill(stats, SIGUSR1);
        pthread_join(stats, NULL);
    }
    print_stats(s, "stopped");
    if (rc < 0) return cli_fail(&s->cli, "server: %s", sm_strerror(rc));
    return CLI_EXIT_OK;
}

int
cmd_serve(int argc, char **argv)
{
    serve *s = calloc(1, sizeof *s);
    if (!s) return cli_fail(NULL, "%s", sm_strerror(-ENOMEM));
    cli_init(&s->cli, "serve");
    s->frame = "len32be";
    int code = parse_options(s, argc, argv);
    if (code < 0) { /* --help */
        free(s);
        return CLI_EXIT_OK;
    }
    if (code == 0) code = check_arguments(s);
    if (code != 0) {
        free(s);
        return code;
    }

    sm_server_opts *o = &s->opts;
    o->listen = s->listen;
    o->listen_count = s->nlisten;
    o->spec = &s->spec;
    o->on_message = sm_server_handler_by_name(s->handler ? s->handler : "echo");
    /* Chat clients may only listen: in the thread model they get their
     * threads at once, not at their first message. */
    if (s->handler && !strcmp(s->handler, "chat")) {
        if (o->commit == SM_COMMIT_DEFAULT) o->commit = SM_COMMIT_ACCEPT;
        if (!s->first_set) o->first_message_timeout_ms = SM_FOREVER;
    }
    /* glibc gives threads malloc arenas of their own, up to 8 per core,
     * each reserving 64 MiB of address space: a thread per connection
     * would make the virtual size grow with the connections. Two arenas
     * serve this process's allocations well (the loop model's threads
     * allocate little; a connection thread, one buffer). */
    if (o->model == SM_SERVER_THREAD) mallopt(M_ARENA_MAX, 2);
    o->handle_signals = true;
    o->log = log_line;
    o->log_data = s;
    o->log_level = s->cli.verbose ? SM_LOG_DEBUG : SM_LOG_INFO;

    /* SIGUSR1 is blocked before any thread exists, so only the stats thread
     * takes it. SIGINT and SIGTERM are blocked from here too (the server
     * blocks them only at its start): one that comes right after the
     * "listening on" lines then waits for the server's signalfd instead of
     * killing us. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* A reader of stdout that goes away must not kill the server. */
    signal(SIGPIPE, SIG_IGN);

    char why[512] = "";
    int rc = 0;
    if (s->tls_cert) {
        rc = sm_tls_config_new(&s->tls, SM_TLS_SERVER, why, sizeof why);
        if (rc == 0) rc = sm_tls_config_set_cert(s->tls, s->tls_cert, s->tls_key, why, sizeof why);
        if (rc == 0 && s->tls_ca)
            rc = sm_tls_config_set_ca(s->tls, s->tls_ca, NULL, why, sizeof why);
        o->tls = s->tls;
    }
    if (rc == 0) rc = sm_server_new(&s->srv, o, why, sizeof why);
    if (rc < 0) {
        code = cli_fail(&s->cli, "%s", why[0] ? why : sm_strerror(rc));
    } else {
        atomic_store(&s->started, true);
        print_listening(s);
        code = run(s);
        sm_server_free(s->srv);
    }
    /* SIGUSR1 stays blocked: one arriving now must not kill us on the way
     * out. */
    sm_tls_config_free(s->tls);
    free(s);
    return code;
}
