/* aidstat gen: realistic, seeded sample activity data as the CSV a county office would export
 * (common/gen.h), to standard output. */
#include "commands.h"
#include "config.h"
#include "err.h"
#include "event.h"
#include "gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char counties[1024];
    int64_t events;
    int64_t year;
    int64_t seed;
    int64_t bad;
    bool sorted;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"counties", AS_CFG_STR, "", "county codes, comma-separated (e.g. 360730,360733); required",
     F(counties)},
    {"events", AS_CFG_INT, "1000", "data rows to write (bad ones included)", F(events)},
    {"year", AS_CFG_INT, "0", "activity year (0: this year); dates never after today", F(year)},
    {"seed", AS_CFG_INT, "1", "seed: the same seed and options give the same file (on one day)",
     F(seed)},
    {"bad", AS_CFG_INT, "0", "this many rows made invalid on purpose, one varied fault each",
     F(bad)},
    {"sorted", AS_CFG_BOOL, "false", "rows in date order (else in random order)", F(sorted)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat gen --counties C1,C2 --events N --year Y [--seed S] [--bad N] [--sorted]\n\n"
    "Writes realistic sample activity rows to standard output as a county office's Excel would "
    "export them: Chinese headers, UTF-8 with BOM, CRLF. Real county codes, village codes in "
    "real townships, pools of organisations with valid credit codes, weighted areas, groups and "
    "funding sources, amounts with the long tail of real donations. With --bad N exactly N rows "
    "fail validation (wrong check character, future date, three decimals, registered_poor > "
    "beneficiaries, unknown area, village of another county, phone or ID number in the note, "
    "...), so that\n"
    "  aidstat gen --counties 360730 --events 1000 --bad 5 | aidstat check -\n"
    "reports exactly 5 rows.";

int as_cmd_gen(int argc, char **argv)
{
    s_opts_t o;
    char err[600];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat gen: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat gen: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (o.events < 0 || o.bad < 0 || o.year < 0) {
        fprintf(stderr, "aidstat gen: --events, --bad and --year must not be negative\n");
        return 2;
    }
    uint32_t counties[256];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(o.counties, ", ", &save); t;
         t = strtok_r(NULL, ", ", &save)) {
        char *end;
        unsigned long c = strtoul(t, &end, 10);
        if (*end || c < 100000 || c > 999999 || n == sizeof counties / sizeof *counties) {
            fprintf(stderr, "aidstat gen: '%s' is not a 6-digit county code\n", t);
            return 2;
        }
        counties[n++] = (uint32_t)c;
    }
    if (n == 0) {
        fprintf(stderr, "aidstat gen: --counties is required (e.g. --counties 360730,360733)\n");
        return 2;
    }
    as_gen_opts_t g = {
        .counties = counties,
        .ncounties = n,
        .events = (uint64_t)o.events,
        .year = o.year ? (unsigned)o.year : as_today_cst() / 10000,
        .seed = (uint64_t)o.seed,
        .bad = (uint64_t)o.bad,
        .sorted = o.sorted,
    };
    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    rc = as_gen_write(stdout, &g, err, sizeof err);
    if (rc == AS_E_INVALID) {
        fprintf(stderr, "aidstat gen: %s\n", err);
        return 2;
    }
    if (rc) {
        if (rc != -EPIPE)
            fprintf(stderr, "aidstat gen: cannot write: %s\n", as_strerror(rc));
        return 1;
    }
    return 0;
}
