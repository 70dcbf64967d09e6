/* commands: the subcommands of the `aidstat` program. Each lives in cli/cmd_<name>.c and is
 * listed once in cli/main.c's table; add a line to both when you add one. */
#ifndef AS_COMMANDS_H
#define AS_COMMANDS_H

/* Every handler gets argv[0] = the subcommand name and returns the process exit status. */
int as_cmd_check(int argc, char **argv);
int as_cmd_submit(int argc, char **argv);
int as_cmd_query(int argc, char **argv);
int as_cmd_status(int argc, char **argv);
int as_cmd_tail(int argc, char **argv);
int as_cmd_gen(int argc, char **argv);
int as_cmd_keygen(int argc, char **argv);
int as_cmd_backup(int argc, char **argv);
int as_cmd_report(int argc, char **argv);
int as_cmd_registry(int argc, char **argv);

#endif
