/* A Redis client on sm_conn with the resp codec: every reply, however nested,
 * arrives as one message.
 *
 *   redis_client ENDPOINT [N]     e.g. unix:/tmp/redis.sock, tcp://127.0.0.1:6379
 *
 * It switches to RESP3 (HELLO 3), runs SET, GET, INCR, a pipeline of N RPUSH
 * commands (all sent before the first reply is read), LRANGE, HSET and
 * HGETALL (a RESP3 map), and a wrong command (an error reply), printing each
 * reply the way redis-cli does. Commands go out as RESP arrays of bulk
 * strings: with resp, the payload is the whole message and sockmsg adds no
 * header of its own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

#define CMD_MAX 4096

/* Send one command, "*argc\r\n" then "$len\r\narg\r\n" per argument. */
static int
command(sm_conn *c, int argc, const char *const *argv)
{
    char buf[CMD_MAX];
    size_t n = (size_t)snprintf(buf, sizeof buf, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (n + len + 32 > sizeof buf) return -1;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "$%zu\r\n", len);
        memcpy(buf + n, argv[i], len);
        memcpy(buf + n + len, "\r\n", 2);
        n += len + 2;
    }
    return sm_conn_send(c, buf, n, SM_CONN_DEFAULT) < 0 ? -1 : 0;
}

/* The number after a type byte, up to the line's CRLF; *p moves past it.
 * The decoder checked the message whole: every line ends before end. */
static long long
line_num(const char **p, const char *end)
{
    long long v = strtoll(*p + 1, NULL, 10);
    *p = (const char *)memchr(*p, '\r', (size_t)(end - *p)) + 2;
    return v;
}

/* printf to out, or nothing when out is NULL (a value being skipped). */
__attribute__((format(printf, 2, 3))) static void
say(FILE *out, const char *fmt, ...)
{
    if (!out) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
}

/* Print the value at *p (already checked whole by the decoder) to out and
 * move past it. `indent` is the nesting, for aggregates' element numbers. */
static void
print_value(FILE *out, const char **p, const char *end, int indent)
{
    char t = **p;
    const char *line = *p + 1;
    switch (t) {
    case '+':
    case '(':
    case ',':
    case '-': {
        const char *cr = memchr(line, '\r', (size_t)(end - line));
        say(out, t == '-' ? "(error) %.*s\n" : "%.*s\n", (int)(cr - line), line);
        *p = cr + 2;
        return;
    }
    case ':':
        say(out, "(integer) %lld\n", line_num(p, end));
        return;
    case '_':
        say(out, "(nil)\n");
        *p += 3;
        return;
    case '#':
        say(out, "(%s)\n", line[0] == 't' ? "true" : "false");
        *p += 4;
        return;
    case '$':
    case '!':
    case '=': {
        long long n = line_num(p, end);
        if (n < 0) {
            say(out, "(nil)\n");
            return;
        }
        /* A verbatim string starts with its format, "txt:". */
        int skip = t == '=' ? 4 : 0;
        say(out, t == '!' ? "(error) %.*s\n" : "\"%.*s\"\n", (int)(n - skip), *p + skip);
        *p += n + 2;
        return;
    }
    default: { /* * % ~ > |: aggregates */
        long long n = line_num(p, end);
        if (n < 0) {
            say(out, "(nil)\n");
            return;
        }
        if (t == '|') { /* an attribute: skip it, print what it annotates */
            for (long long i = 0; i < 2 * n; i++)
                print_value(NULL, p, end, indent + 1);
            print_value(out, p, end, indent);
            return;
        }
        if (n == 0) {
            say(out, t == '%' ? "(empty hash)\n" : "(empty array)\n");
            return;
        }
        for (long long i = 0; i < n; i++) {
            if (i) say(out, "%*s", 3 * indent, "");
            say(out, "%lld) ", i + 1);
            if (t == '%') {
                print_value(out, p, end, indent + 1);
                say(out, "%*s   ", 3 * indent, "");
            }
            print_value(out, p, end, indent + 1);
        }
        return;
    }
    }
}

/* Receive one reply and print it. Returns its type byte, or -1. */
static int
reply(sm_conn *c)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (rc != 1) {
        fprintf(stderr, "redis_client: %s %s\n", rc == 0 ? "closed" : sm_strerror(rc),
                sm_conn_error_detail(c));
        return -1;
    }
    const char *p = (const char *)m.data;
    print_value(stdout, &p, p + m.len, 0);
    return m.type;
}

#define RUN(...)                                                                                   \
    do {                                                                                           \
        static const char *const argv_[] = {__VA_ARGS__};                                          \
        printf(">");                                                                               \
        for (size_t i_ = 0; i_ < sizeof argv_ / sizeof argv_[0]; i_++)                             \
            printf(" %s", argv_[i_]);                                                              \
        printf("\n");                                                                              \
        if (command(c, (int)(sizeof argv_ / sizeof argv_[0]), argv_) < 0 || reply(c) < 0)          \
            goto out;                                                                              \
    } while (0)

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: redis_client ENDPOINT [N]\n");
        return 2;
    }
    char *end = NULL;
    long n = argc > 2 ? strtol(argv[2], &end, 10) : 100;
    if (argc > 2 && (*end || n < 1 || n > 100000)) {
        fprintf(stderr, "redis_client: N must be 1 to 100000\n");
        return 2;
    }
    sm_conn *c;
    char why[256];
    /* One message = one whole reply; Redis's own bulk limit is 512 MB, this
     * client takes at most 1 MB replies nested at most 8 deep. */
    if (sm_conn_dial(&c, argv[1], "resp,depth=8,max=1M", 5000, why, sizeof why) < 0) {
        fprintf(stderr, "redis_client: %s\n", why);
        return 1;
    }
    sm_conn_set_timeout(c, 5000);
    int status = 1;

    printf("> HELLO 3\n");
    {
        static const char *const hello[] = {"HELLO", "3"};
        if (command(c, 2, hello) < 0) goto out;
        sm_frame_msg m;
        if (sm_conn_recv(c, &m, SM_CONN_DEFAULT) != 1) goto out;
        /* A map in RESP3: the server speaks RESP3 from here on. */
        printf("(a %s of %zu bytes)\n", m.type == '%' ? "map" : "reply", m.len);
        if (m.type != '%') goto out;
    }
    RUN("DEL", "greeting", "counter", "list", "hash");
    RUN("SET", "greeting", "hello");
    RUN("GET", "greeting");
    RUN("INCR", "counter");
    RUN("INCR", "counter");
    RUN("GET", "missing");

    /* A pipeline: N commands in flight before the first reply is read. */
    printf("> RPUSH list 0..%ld (pipelined)\n", n - 1);
    for (long i = 0; i < n; i++) {
        char v[24];
        snprintf(v, sizeof v, "%ld", i);
        const char *rp[] = {"RPUSH", "list", v};
        if (command(c, 3, rp) < 0) goto out;
    }
    long long last = 0;
    for (long i = 0; i < n; i++) {
        sm_frame_msg m;
        if (sm_conn_recv(c, &m, SM_CONN_DEFAULT) != 1 || m.type != ':') goto out;
        last = strtoll((const char *)m.data + 1, NULL, 10);
    }
    printf("%ld replies, the last (integer) %lld\n", n, last);

    RUN("LRANGE", "list", "0", "4");
    RUN("HSET", "hash", "a", "1", "b", "2");
    RUN("HGETALL", "hash");
    printf("> NOSUCHCOMMAND\n");
    {
        static const char *const bad[] = {"NOSUCHCOMMAND"};
        if (command(c, 1, bad) < 0 || reply(c) != '-') goto out;
    }
    status = 0;
out:
    if (status) fprintf(stderr, "redis_client: failed (%s)\n", sm_conn_error_detail(c));
    sm_conn_free(c);
    return status;
}
