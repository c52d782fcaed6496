/* Code shared by the sockmsg subcommands: messages, exit codes, options. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#define MAX_OPTS 64

void
cli_init(cli *c, const char *name)
{
    c->name = name;
    c->verbose = 0;
    /* 0 makes glibc reinitialise getopt fully, in case it ran before. */
    optind = 0;
    opterr = 0;
}

/* getopt_long wants ':' first in the short options to tell a missing value
 * ( ':' ) from an unknown option ('?'), and '-'/'+' never: we keep GNU
 * permutation so options may follow the operands. */
static void
short_opts(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, ":%s", in);
}

/* The long option that the word "--name[=value]" selected, if its value is
 * val (glibc accepts unambiguous prefixes of names). */
static bool
is_long_word(const struct option *longopts, const char *word, int val)
{
    if (word[0] != '-' || word[1] != '-' || !longopts) return false;
    const char *name = word + 2;
    size_t n = strcspn(name, "=");
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == val && n > 0 && !strncmp(o->name, name, n)) return true;
    return false;
}

int
cli_getopt(cli *c, int argc, char *const argv[], const char *shortopts,
           const struct option *longopts)
{
    char opts[2 * MAX_OPTS + 2];
    short_opts(shortopts, opts, sizeof opts);
    for (;;) {
        int ch = getopt_long(argc, argv, opts, longopts, NULL);
        if (ch == 'v') {
            c->verbose++;
            continue;
        }
        if (ch != '?' && ch != ':') return ch;
        /* After a long option, optind is past its word; after a short one it
         * may still point at the bundle ("-ix"), so optopt names it. */
        const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
        int n = (int)strcspn(word, "=");
        bool is_long = optopt == 0 || is_long_word(longopts, word, optopt);
        if (ch == ':' && is_long)
            cli_usage_error(c, "option '%.*s' needs a value", n, word);
        else if (ch == ':')
            cli_usage_error(c, "option '-%c' needs a value", optopt);
        else if (is_long && optopt)
            cli_usage_error(c, "option '%.*s' takes no value", n, word);
        else if (is_long)
            cli_usage_error(c, "unknown option '%.*s'", n, word);
        else
            cli_usage_error(c, "unknown option '-%c'", optopt);
        return '?';
    }
}

static void
vprint(const char *prefix, const char *fmt, va_list ap)
{
    /* One write per message keeps lines whole when stderr is shared. */
    char line[1024];
    int n = snprintf(line, sizeof line, "%s", prefix);
    if (n < 0) return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (m < 0) return;
    used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    if (used > sizeof line - 2) used = sizeof line - 2;
    line[used++] = '\n';
    (void)cli_write_all(STDERR_FILENO, line, used);
}

int
cli_usage_error(const cli *c, const char *fmt, ...)
{
    char prefix[64], hint[96];
    const char *name = c && c->name ? c->name : NULL;
    if (name) {
        snprintf(prefix, sizeof prefix, "sockmsg %s: ", name);
        snprintf(hint, sizeof hint, "try 'sockmsg %s --help'\n", name);
    } else {
        snprintf(prefix, sizeof prefix, "sockmsg: ");
        snprintf(hint, sizeof hint, "try 'sockmsg --help'\n");
    }
    va_list ap;
    va_start(ap, fmt);
    vprint(prefix, fmt, ap);
    va_end(ap);
    (void)cli_write_all(STDERR_FILENO, hint, strlen(hint));
    return CLI_EXIT_USAGE;
}

int
cli_fail(const cli *c, const char *fmt, ...)
{
    (void)c;
    va_list ap;
    va_start(ap, fmt);
    vprint("sockmsg: ", fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

void
cli_log(const cli *c, int level, const char *fmt, ...)
{
    if (!c || c->verbose < level) return;
    va_list ap;
    va_start(ap, fmt);
    vprint("* ", fmt, ap);
    va_end(ap);
}

static int
bad_value(const cli *c, const char *opt, const char *arg, const char *what)
{
    return cli_usage_error(c, "bad value '%s' for %s: %s", arg, opt, what);
}

int
cli_parse_frame(const cli *c, const char *opt, const char *arg, sm_frame_spec *spec)
{
    char why[256];
    if (sm_frame_spec_parse(spec, arg, why, sizeof why) < 0) return bad_value(c, opt, arg, why);
    return 0;
}

/* Parse leading decimal digits; *end past them. False on overflow or none. */
static bool
parse_digits(const char *s, unsigned long long *v, const char **end)
{
    unsigned long long x = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (ULLONG_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = x;
    *end = p;
    return p != s;
}

int
cli_parse_int(const cli *c, const char *opt, const char *arg, long long min, long long max,
              long long *out)
{
    const char *p = arg, *end;
    bool neg = *p == '-';
    if (neg || *p == '+') p++;
    unsigned long long v;
    if (!parse_digits(p, &v, &end) || *end) return bad_value(c, opt, arg, "expected an integer");
    if ((!neg && v > (unsigned long long)LLONG_MAX) ||
        (neg && v > (unsigned long long)LLONG_MAX + 1))
        return bad_value(c, opt, arg, "out of range");
    long long x = neg ? (long long)(0 - v) : (long long)v;
    if (x < min || x > max) {
        return cli_usage_error(c, "bad value '%s' for %s: must be %lld to %lld", arg, opt, min,
                               max);
    }
    *out = x;
    return 0;
}

int
cli_parse_ms(const cli *c, const char *opt, const char *arg, int *out)
{
    const char *end;
    unsigned long long v;
    if (!parse_digits(arg, &v, &end))
        return bad_value(c, opt, arg, "expected milliseconds (e.g. 500, 500ms, 2s)");
    unsigned long long mul;
    if (!*end || !strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else
        return bad_value(c, opt, arg, "expected milliseconds (e.g. 500, 500ms, 2s)");
    if (v > (unsigned long long)INT_MAX / mul) return bad_value(c, opt, arg, "too large");
    *out = (int)(v * mul);
    return 0;
}

int
cli_parse_size(const cli *c, const char *opt, const char *arg, uint64_t *out)
{
    const char *end;
    unsigned long long v;
    if (!parse_digits(arg, &v, &end))
        return bad_value(c, opt, arg, "expected a size (e.g. 4096, 64k, 16M)");
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift) end++;
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "ib")))
        end += 2;
    else if (*end == 'B' || *end == 'b')
        end++;
    if (*end) return bad_value(c, opt, arg, "expected a size (e.g. 4096, 64k, 16M)");
    if (shift && v > (UINT64_MAX >> shift)) return bad_value(c, opt, arg, "too large");
    *out = (uint64_t)v << shift;
    return 0;
}

int64_t
cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
cli_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : cli_now_ms() + timeout_ms;
}

int
cli_remaining_ms(int64_t deadline)
{
    if (deadline < 0) return -1;
    int64_t left = deadline - cli_now_ms();
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

int
cli_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

const char *
cli_strerror(int err)
{
    switch (err) {
#define CLI__ERR_MSG(name, value, msg)                                                             \
    case name:                                                                                     \
        return msg;
        CLI_ERR_TABLE(CLI__ERR_MSG)
#undef CLI__ERR_MSG
    default:
        return sm_strerror(err);
    }
}

const char *
cli_err_name(int err)
{
    switch (err) {
#define CLI__ERR_NAME(name, value, msg)                                                            \
    case name:                                                                                     \
        return #name;
        CLI_ERR_TABLE(CLI__ERR_NAME)
#undef CLI__ERR_NAME
    default:
        return sm_err_name(err);
    }
}
