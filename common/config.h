/* config: one table per component (name, type, default, help) drives the config file, the
 * command-line flags and --help, so that every flag is also settable in a file. */
#ifndef AS_CONFIG_H
#define AS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { AS_CFG_STR, AS_CFG_INT, AS_CFG_BOOL } as_cfg_type_t;

typedef struct {
    const char *name;     /* flag without "--", and key in the file: "data", "http" */
    as_cfg_type_t type;
    const char *def;      /* default as text ("" for an empty string) */
    const char *help;     /* one line for --help */
    size_t offset;        /* offsetof the field in the target struct */
    size_t size;          /* sizeof the field: char[] for STR, int64_t for INT, bool for BOOL */
} as_cfg_entry_t;

#define AS_CFG_END {NULL, AS_CFG_STR, NULL, NULL, 0, 0}
#define AS_CFG_FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)

/* Fills target from the table's defaults, then the file named by --config FILE (lines
 * "name = value", '#' comments, blank lines; unknown names are errors), then the command-line
 * flags (--name VALUE, --name=VALUE; a BOOL flag alone means true). Flags override the file.
 * Arguments that are not flags are left in argv[1..*argc-1] in order (positional arguments).
 * Returns 0; 1 when --help was given (usage already printed to stdout); AS_E_INVALID with a
 * message naming the flag, file line or value in err. */
int as_config_load(const as_cfg_entry_t *table, void *target, int *argc, char **argv,
                   const char *synopsis, char *err, size_t errlen);

/* Prints usage: synopsis, then one line per entry with its default. */
void as_config_usage(FILE *f, const char *synopsis, const as_cfg_entry_t *table);

#endif
