/* config: table-driven configuration from defaults, a config file and command-line flags. */
#include "config.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const as_cfg_entry_t *s_find(const as_cfg_entry_t *t, const char *name, size_t len)
{
    for (; t->name; t++)
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

static int s_set(const as_cfg_entry_t *e, void *target, const char *value, const char *where,
                 char *err, size_t errlen)
{
    char *field = (char *)target + e->offset;
    switch (e->type) {
    case AS_CFG_STR:
        if (strlen(value) >= e->size) {
            snprintf(err, errlen, "%s: value of '%s' is too long (at most %zu bytes)", where,
                     e->name, e->size - 1);
            return AS_E_INVALID;
        }
        memcpy(field, value, strlen(value) + 1);
        return AS_OK;
    case AS_CFG_INT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(err, errlen, "%s: '%s' wants an integer, not '%s'", where, e->name, value);
            return AS_E_INVALID;
        }
        int64_t iv = v;
        memcpy(field, &iv, sizeof iv);
        return AS_OK;
    }
    case AS_CFG_BOOL: {
        bool b;
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
            !strcmp(value, "on"))
            b = true;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0") ||
                 !strcmp(value, "off"))
            b = false;
        else {
            snprintf(err, errlen, "%s: '%s' wants true or false, not '%s'", where, e->name, value);
            return AS_E_INVALID;
        }
        memcpy(field, &b, sizeof b);
        return AS_OK;
    }
    }
    return AS_E_INVALID;
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

static int s_load_file(const as_cfg_entry_t *table, void *target, const char *path, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return AS_E_INVALID;
    }
    char line[4096];
    int lineno = 0, rc = AS_OK;
    while (rc == AS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = s_trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'name = value'", where);
            rc = AS_E_INVALID;
            break;
        }
        *eq = 0;
        char *name = s_trim(s), *value = s_trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = 0;
            value++;
        }
        const as_cfg_entry_t *e = s_find(table, name, strlen(name));
        if (!e || !strcmp(name, "config")) {
            snprintf(err, errlen, "%s: unknown setting '%s'", where, name);
            rc = AS_E_INVALID;
            break;
        }
        rc = s_set(e, target, value, where, err, errlen);
    }
    fclose(f);
    return rc;
}

void as_config_usage(FILE *f, const char *synopsis, const as_cfg_entry_t *table)
{
    fprintf(f, "%s\n\nOptions (each also settable as 'name = value' in the --config file):\n",
            synopsis);
    for (const as_cfg_entry_t *e = table; e->name; e++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", e->name,
                 e->type == AS_CFG_BOOL  ? ""
                 : e->type == AS_CFG_INT ? " N"
                                         : " VALUE");
        fprintf(f, "  %-24s %s", flag, e->help);
        if (e->def && *e->def)
            fprintf(f, " (default: %s)", e->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-24s %s\n  %-24s %s\n", "--config FILE", "read settings from FILE first",
            "--help", "print this help");
}

int as_config_load(const as_cfg_entry_t *table, void *target, int *argc, char **argv,
                   const char *synopsis, char *err, size_t errlen)
{
    for (const as_cfg_entry_t *e = table; e->name; e++) {
        int rc = s_set(e, target, e->def ? e->def : "", "default", err, errlen);
        if (rc)
            return rc;
    }
    /* The file first, wherever --config stands, so that flags override it. */
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            as_config_usage(stdout, synopsis, table);
            return 1;
        }
        const char *path = NULL;
        if (!strcmp(a, "--config")) {
            if (i + 1 >= *argc) {
                snprintf(err, errlen, "--config needs a file name");
                return AS_E_INVALID;
            }
            path = argv[i + 1];
        } else if (!strncmp(a, "--config=", 9))
            path = a + 9;
        if (path) {
            int rc = s_load_file(table, target, path, err, errlen);
            if (rc)
                return rc;
        }
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            argv[out++] = a;
            continue;
        }
        const char *name = a + 2, *value = NULL;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        if (nl == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        const as_cfg_entry_t *e = s_find(table, name, nl);
        if (!e) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nl, name);
            return AS_E_INVALID;
        }
        if (eq)
            value = eq + 1;
        else if (e->type == AS_CFG_BOOL)
            value = "true";
        else if (i + 1 < *argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "option '--%s' needs a value", e->name);
            return AS_E_INVALID;
        }
        char where[96];
        snprintf(where, sizeof where, "option --%s", e->name);
        int rc = s_set(e, target, value, where, err, errlen);
        if (rc)
            return rc;
    }
    argv[out] = NULL;
    *argc = out;
    return AS_OK;
}
