/* sockmsg tool — code shared by the subcommands.
 *
 * Conventions every subcommand follows:
 *   - exit 0 on success, 1 on a runtime failure (cli_fail: "sockmsg: CAUSE"),
 *     2 on a usage error (cli_usage_error: "sockmsg CMD: PROBLEM" and the hint
 *     "try 'sockmsg CMD --help'");
 *   - options parsed with cli_getopt (getopt_long), which handles the common
 *     ones: -v/--verbose (repeatable), -h/--help;
 *   - diagnostics on stderr, data on stdout.
 *
 * A subcommand is `int cmd_NAME(int argc, char **argv)` in cmd_NAME.c, with
 * argv[0] the command name; main.c lists it in its table.
 */
#ifndef SOCKMSG_TOOL_CLI_H
#define SOCKMSG_TOOL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/* The entry point of a subcommand: argv[0] is its name ("get"). Returns the
 * process exit status. */
typedef int cli_command_fn(int argc, char **argv);

/* Put these first in a subcommand's option lists: cli_getopt handles them. */
#define CLI_COMMON_SHORTOPTS "hv"
/* clang-format off */
#define CLI_COMMON_LONGOPTS                                                                        \
    {"help", no_argument, NULL, 'h'},                                                              \
    {"verbose", no_argument, NULL, 'v'}
/* clang-format on */

/* Per-invocation state of a subcommand. */
typedef struct cli {
    const char *name; /* the subcommand, for messages: "get" */
    int verbose;      /* how many -v */
} cli;

/* cli_init - set up *c for the subcommand `name` and reset getopt. */
void cli_init(cli *c, const char *name);

/* cli_getopt - getopt_long over the subcommand's arguments (argv[0] is its
 * name). Counts -v itself and goes on; returns -1 at the end of the options
 * (the operands start at optind: GNU getopt moves them after the options),
 * 'h' for -h/--help, '?' after printing a usage error for an unknown option
 * or a missing value (return CLI_EXIT_USAGE then), or the option's value. */
int cli_getopt(cli *c, int argc, char *const argv[], const char *shortopts,
               const struct option *longopts);

/* cli_usage_error - print "sockmsg NAME: MESSAGE" and the one-line hint
 * "try 'sockmsg NAME --help'" on stderr. Returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_fail - print "sockmsg: MESSAGE" on stderr. Returns CLI_EXIT_FAIL. */
int cli_fail(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_log - print "* MESSAGE" on stderr when c->verbose >= level. */
void cli_log(const cli *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* cli_parse_int - parse a decimal integer option value in [min, max]. On a bad
 * value prints a usage error naming the option and returns CLI_EXIT_USAGE;
 * returns 0 on success. */
int cli_parse_int(const cli *c, const char *opt, const char *arg, long long min, long long max,
                  long long *out);

/* cli_parse_ms - a duration in milliseconds (>= 0, fits an int): "500", or
 * with a unit "500ms", "2s", "1m". Errors as cli_parse_int. */
int cli_parse_ms(const cli *c, const char *opt, const char *arg, int *out);

/* cli_parse_frame - parse the frame spec `arg` of option `opt` into *spec.
 * Every subcommand reports a bad spec this one way: "bad value 'len24be' for
 * --frame: unknown codec 'len24be'" (a usage error). Returns 0 or
 * CLI_EXIT_USAGE. */
int cli_parse_frame(const cli *c, const char *opt, const char *arg, sm_frame_spec *spec);

/* cli_parse_size - a byte count: "4096", "64k", "16M", "1G" (powers of 1024,
 * either case, optional trailing "B" or "iB"). Errors as cli_parse_int. */
int cli_parse_size(const cli *c, const char *opt, const char *arg, uint64_t *out);

/* The tool's own error codes, for failures that are no business of the
 * library's (HTTP is not a framing it offers). They sit below the library's
 * range (error.h leaves everything from SM_ERR_BASE - 4096 down to
 * applications), so no library code or negated errno takes their values.
 * X(name, value, message), as SM_ERR_TABLE. */
#define CLI_ERR_BASE     (SM_ERR_BASE - 4096)
#define CLI_ERR_TABLE(X) X(CLI_ERR_HTTP, CLI_ERR_BASE - 1, "malformed HTTP response")

enum cli_err {
#define CLI__ERR_ENUM(name, value, msg) name = (value),
    CLI_ERR_TABLE(CLI__ERR_ENUM)
#undef CLI__ERR_ENUM
};

/* cli_strerror - sm_strerror that also knows the tool's codes: the message
 * for any error a subcommand meets. Static string, never NULL. */
const char *cli_strerror(int err);

/* cli_err_name - sm_err_name that also knows the tool's codes
 * ("CLI_ERR_HTTP"). Static string, never NULL. */
const char *cli_err_name(int err);

/* cli_now_ms - monotonic milliseconds. */
int64_t cli_now_ms(void);

/* cli_deadline - the monotonic time timeout_ms from now, or -1 for
 * timeout_ms < 0 (no deadline). */
int64_t cli_deadline(int timeout_ms);

/* cli_remaining_ms - milliseconds left until a deadline from cli_deadline,
 * as a timeout for the library: -1 (SM_FOREVER) for no deadline, 0 when it
 * has passed. */
int cli_remaining_ms(int64_t deadline);

/* cli_write_all - write all n bytes to fd, looping over partial writes and
 * EINTR. Returns 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t n);

#endif
