/* cmd_check: `aidstat check` — validates spreadsheets without sending them; prints every rejected
 * row (file, row, column, value, reason in Chinese and English) and a summary. */
#include "division.h"
#include "err.h"
#include "event.h"
#include "sheet.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int as_cmd_check(int argc, char **argv);

typedef struct {
    const char *file;     /* as given on the command line ("-" shown as <stdin>) */
    uint64_t file_errors; /* file-level errors (unreadable, missing columns, ...) */
    uint64_t warnings;
} s_check_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: aidstat check [--county CODE] [--stats] FILE...\n"
            "\n"
            "Validates spreadsheets (CSV in UTF-8 or GB18030, or NDJSON) without sending them.\n"
            "FILE \"-\" reads standard input. Every rejected row is printed as\n"
            "  FILE:ROW: COLUMN \"VALUE\": 中文原因 / English reason\n"
            "followed by one summary line. Exit status: 0 when every row of every file is valid,\n"
            "1 otherwise, 2 on a usage error.\n"
            "\n"
            "  --county CODE   the collector's county: rows of any other county are rejected\n"
            "  --stats         print rows/s on standard error\n");
}

static void s_print(const s_check_t *c, const char *kind, size_t rowno, const as_field_error_t *e)
{
    if (rowno)
        printf("%s:%zu:", c->file, rowno);
    else
        printf("%s: %s:", c->file, kind);
    if (e->column[0])
        printf(" %s", e->column);
    if (e->value[0] || e->column[0])
        printf(" \"%s\":", e->value);
    printf(" %s / %s\n", e->reason_zh, e->reason_en);
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_check_t *c = arg;
    (void)line;
    if (rowno == 0)
        c->file_errors++;
    for (size_t i = 0; i < n; i++)
        s_print(c, "error", rowno, &e[i]);
    return 0;
}

static int s_on_warning(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_check_t *c = arg;
    (void)line;
    c->warnings += n;
    for (size_t i = 0; i < n; i++)
        s_print(c, "warning", rowno, &e[i]);
    return 0;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A county option: 6 digits naming a current county-level division. */
static bool s_county_arg(const char *s, uint32_t *out)
{
    if (strlen(s) != 6 || strspn(s, "0123456789") != 6)
        return false;
    *out = (uint32_t)strtoul(s, NULL, 10);
    return as_division_is_county(*out);
}

int as_cmd_check(int argc, char **argv)
{
    as_validate_ctx_t ctx = {.today = as_today_cst(), .skip_id = true};
    bool stats = false, dashdash = false;
    int nfiles = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files)
        return 2;
    for (int i = 1; i < argc; i++) { /* options may come anywhere before "--" */
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == 0) {
            files[nfiles++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            dashdash = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            free(files);
            return 0;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (strcmp(a, "--county") == 0 || strncmp(a, "--county=", 9) == 0) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !s_county_arg(v, &ctx.county)) {
                fprintf(stderr, "aidstat check: --county needs the 6-digit code of a county of "
                                "the province\n");
                free(files);
                return 2;
            }
        } else {
            fprintf(stderr, "aidstat check: unknown option '%s'\n\n", a);
            s_usage(stderr);
            free(files);
            return 2;
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "aidstat check: no FILE given\n\n");
        s_usage(stderr);
        free(files);
        return 2;
    }

    /* stdout is a pipe or a file most of the time: one big buffer, flushed at the end */
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    uint64_t rows = 0, valid = 0, rejected = 0, bytes = 0, file_errors = 0, warnings = 0;
    double t0 = s_now();
    for (int i = 0; i < nfiles; i++) {
        s_check_t c = {.file = strcmp(files[i], "-") == 0 ? "<stdin>" : files[i]};
        as_sheet_handler_t h = {.on_error = s_on_error, .on_warning = s_on_warning, .arg = &c};
        as_sheet_stats_t st;
        int rc = as_sheet_read_events(files[i], &ctx, &h, &st);
        if (rc && !c.file_errors) { /* a failure the reader did not describe */
            printf("%s: error: %s\n", c.file, as_strerror(rc));
            c.file_errors++;
        }
        rows += st.rows, valid += st.valid, rejected += st.rejected, bytes += st.bytes;
        file_errors += c.file_errors, warnings += c.warnings;
    }
    double dt = s_now() - t0;

    free(files);
    printf("%d file%s, %llu rows read, %llu accepted, %llu rejected", nfiles,
           nfiles == 1 ? "" : "s", (unsigned long long)rows, (unsigned long long)valid,
           (unsigned long long)rejected);
    if (file_errors)
        printf(", %llu file error%s", (unsigned long long)file_errors, file_errors == 1 ? "" : "s");
    if (warnings)
        printf(", %llu warning%s", (unsigned long long)warnings, warnings == 1 ? "" : "s");
    printf(" / 共 %llu 行, 通过 %llu 行, 拒绝 %llu 行\n", (unsigned long long)rows,
           (unsigned long long)valid, (unsigned long long)rejected);
    fflush(stdout);
    if (stats)
        fprintf(stderr, "aidstat check: %llu rows in %.3f s: %.0f rows/s, %.1f MB/s\n",
                (unsigned long long)rows, dt, dt > 0 ? (double)rows / dt : 0.0,
                dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
    return (rejected || file_errors) ? 1 : 0;
}
