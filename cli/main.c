/* main: the `aidstat` command line — a table of subcommands, each in cli/cmd_<name>.c. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help; /* one line */
} s_command_t;

/* DESIGN.md lists these too: report (aidstat report --year Y) and registry (registry import
 * FILE). They join the table when their cmd_*.c files land. */
static const s_command_t s_commands[] = {
    {"check", as_cmd_check, "validate spreadsheets without sending; per-row errors"},
    {"submit", as_cmd_submit, "hand files to a running collector"},
    {"query", as_cmd_query, "live totals from the aggregator"},
    {"status", as_cmd_status, "collectors: connected, last heard, backlog, rejected"},
    {"tail", as_cmd_tail, "follow the feed without gaps (replay, then live)"},
    {"gen", as_cmd_gen, "realistic sample data as CSV"},
    {"keygen", as_cmd_keygen, "a CURVE key pair for a collector or the aggregator"},
    {"backup", as_cmd_backup, "hot, compacted copy of an aggregator's LMDB"},
    {"report", as_cmd_report, "the year-end report: draft, or --final (locks the year)"},
    {"registry", as_cmd_registry, "registry import FILE: load the organisation registry"},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: aidstat COMMAND [ARGS...]\n\n"
                 "aidstat: poverty-alleviation activity statistics of social organisations.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %-8s %s\n", s_commands[i].name, s_commands[i].help);
    fprintf(out, "\n`aidstat COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("aidstat %s\n", AIDSTAT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(argv[1], s_commands[i].name) == 0)
            return s_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aidstat: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
