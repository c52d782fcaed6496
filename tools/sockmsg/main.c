/* sockmsg — the command-line tool: `sockmsg <command> [args]`.
 *
 * main only dispatches: each subcommand lives in cmd_NAME.c as
 * `int cmd_NAME(int argc, char **argv)` and owns its options, help and exit
 * status (conventions in cli.h).
 */
#include <stdio.h>
#include <string.h>

#include <sockmsg/sockmsg.h>

#include "cli.h"

/* The subcommands, in the order `sockmsg --help` lists them. Adding one is one
 * line here, X(name, "summary") \, with `int cmd_name(int argc, char **argv)`
 * in cmd_name.c (declared there as `cli_command_fn cmd_name;`). */
/* clang-format off */
#define SOCKMSG_COMMANDS(X)                                                                        \
    X(get, "fetch an http:// URL and write the body out")                                         \
    X(cat, "copy stdin to a socket and the socket to stdout, optionally framed")                  \
    X(bench, "load an echo server and check every reply: msgs/s, latency")                        \
    X(serve, "serve connections: echo, discard or chat, framed, until a signal")                  \
    X(demo, "run echo servers and clients in-process, check every byte: a tour")                  \
    /* end of the list */
/* clang-format on */

typedef struct command {
    const char *name;
    cli_command_fn *run;
    const char *summary;
} command;

#define DECLARE_COMMAND(name, summary) cli_command_fn cmd_##name;
SOCKMSG_COMMANDS(DECLARE_COMMAND)
#undef DECLARE_COMMAND

static const command commands[] = {
#define COMMAND_ENTRY(name, summary) {#name, cmd_##name, summary},
    SOCKMSG_COMMANDS(COMMAND_ENTRY)
#undef COMMAND_ENTRY
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
usage(FILE *out)
{
    fprintf(out, "usage: sockmsg <command> [options] [args]\n"
                 "       sockmsg --help | --version\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "'sockmsg <command> --help' describes a command's options; man sockmsg has it all.\n");
}

static const command *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
        printf("sockmsg %s (library %s)\n", SM_VERSION_STRING, sm_version());
        return CLI_EXIT_OK;
    }
    if (!strcmp(arg, "help")) {
        /* `sockmsg help get` is `sockmsg get --help`. */
        if (argc < 3) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        const command *cmd = find_command(argv[2]);
        if (!cmd) return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        char help_opt[] = "--help";
        char *help_argv[] = {argv[2], help_opt, NULL};
        return cmd->run(2, help_argv);
    }
    if (arg[0] == '-') return cli_usage_error(NULL, "unknown option '%s'", arg);
    const command *cmd = find_command(arg);
    if (!cmd) return cli_usage_error(NULL, "unknown command '%s'", arg);
    return cmd->run(argc - 1, argv + 1);
}
