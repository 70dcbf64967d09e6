/* bench_report: the full year-end report (all eight parts, every unit's folder, CSV + JSON +
 * HTML) for a year of N events, then for 2N: the report reads the totals, not the events, so its
 * time follows the number of distinct cells (organisations × counties × months × attributes),
 * not the number of events. Events go through the ledger with the registry, review flags and
 * archive attached, as in the daemon (commits not durable: this measures the report).
 * usage: bench_report [--events N] [--dir DIR] [--runs R] */
#include "archive.h"
#include "division.h"
#include "err.h"
#include "ledger.h"
#include "log.h"
#include "registry.h"
#include "report.h"
#include "review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ORGS  500
#define UNITS 24
#define YEAR  2025
#define GROUP 20000

static uint64_t s_state = 0x9e3779b97f4a7c15ull;

static uint64_t s_rand64(void)
{
    uint64_t z = (s_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t s_rand(uint32_t n)
{
    return (uint32_t)(s_rand64() % n);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An organisation's habits: where and how it works (what a real one's activities repeat). */
typedef struct {
    char code[AS_CODE_LEN + 1];
    uint32_t county[2];
    uint8_t area[2], group[2], funding, project;
    unsigned village0;
} s_org_t;

static s_org_t s_orgs[ORGS];

static void s_make_orgs(char **registry_csv)
{
    size_t nc;
    const as_division_t *c = as_division_counties(&nc);
    size_t cap = 200 + ORGS * 160, n = 0;
    char *csv = malloc(cap);
    n += (size_t)snprintf(csv + n, cap - n,
                          "统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格\n");
    static const char *const types[] = {"社会团体", "基金会", "社会服务机构", "社会工作服务机构"};
    static const char *const levels[] = {"省级", "市级", "县级"};
    for (int i = 0; i < ORGS; i++) {
        s_org_t *o = &s_orgs[i];
        snprintf(o->code, sizeof o->code, "51360000MJB%07d", i);
        o->county[0] = c[s_rand((uint32_t)nc)].code;
        o->county[1] = c[s_rand((uint32_t)nc)].code;
        for (int k = 0; k < 2; k++) {
            o->area[k] = (uint8_t)(1 + s_rand(7));
            o->group[k] = (uint8_t)(1 + s_rand(8));
        }
        o->funding = (uint8_t)(1 + s_rand(4));
        o->project = (uint8_t)s_rand(5);
        o->village0 = 100 + s_rand(100);
        n += (size_t)snprintf(csv + n, cap - n, "%s,组织%04d,%s,%s,业务主管单位%02d,%s\n", o->code,
                              i, types[i % 4], levels[i % 3], i % UNITS, i % 5 ? "否" : "是");
    }
    *registry_csv = csv;
}

static uint64_t s_next_id = 1;

static void s_event(as_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    const s_org_t *o = &s_orgs[s_rand(ORGS)];
    int k = (int)s_rand(2);
    ev->county = o->county[k];
    uint64_t id = s_next_id++;
    ev->id[0] = (uint8_t)(ev->county >> 16);
    ev->id[1] = (uint8_t)(ev->county >> 8);
    ev->id[2] = (uint8_t)ev->county;
    for (int i = 0; i < 8; i++)
        ev->id[8 + i] = (uint8_t)(id >> (56 - 8 * i));
    memcpy(ev->org_code, o->code, sizeof ev->org_code);
    snprintf(ev->org_name, sizeof ev->org_name, "组织%.4s", o->code + 14);
    ev->area = o->area[s_rand(2)];
    ev->group = o->group[s_rand(2)];
    ev->funding = o->funding;
    ev->project = o->project;
    ev->date = YEAR * 10000 + (1 + s_rand(12)) * 100 + 1 + s_rand(28);
    if (s_rand(2)) {
        snprintf(ev->village, sizeof ev->village, "%06u%06u", ev->county, o->village0 + s_rand(5));
        ev->deep_village = o->village0 % 7 == 0;
    }
    ev->beneficiaries = 1 + s_rand(200);
    ev->registered_poor = ev->beneficiaries / 3;
    ev->funds_fen = (int64_t)s_rand(2000000);
    ev->goods_fen = (int64_t)s_rand(300000);
    ev->volunteers = s_rand(20);
    ev->volunteer_tenths = s_rand(400);
    ev->social_workers = s_rand(3);
    ev->persons_lifted = s_rand(5);
    ev->jobs = s_rand(4);
    ev->trainees = s_rand(30);
    ev->income_fen = (int64_t)s_rand(500000);
    ev->online_fundraising = s_rand(50) == 0;
}

static int s_apply(as_ledger_t *l, uint64_t n)
{
    static as_event_t evs[GROUP];
    double t0 = s_now();
    for (uint64_t done = 0; done < n;) {
        size_t g = n - done < GROUP ? (size_t)(n - done) : GROUP;
        for (size_t i = 0; i < g; i++)
            s_event(&evs[i]);
        if (as_ledger_begin(l) != 0)
            return -1;
        for (size_t i = 0; i < g; i++) {
            as_apply_result_t res;
            if (as_ledger_apply(l, &evs[i], &res) != 0) {
                as_ledger_abort(l);
                return -1;
            }
        }
        if (as_ledger_commit(l, NULL) != 0)
            return -1;
        done += g;
    }
    double dt = s_now() - t0;
    printf("  applied %llu events in %.1f s (%.0f events/s, review flags on)\n",
           (unsigned long long)n, dt, (double)n / dt);
    return 0;
}

/* The best of `runs` full reports, in seconds. */
static double s_report(as_report_t *rep, int runs, size_t *files_bytes)
{
    double best = 1e9;
    for (int i = 0; i < runs; i++) {
        char msg[512];
        double t0 = s_now();
        if (as_report_write(rep, YEAR, false, NULL, msg, sizeof msg) != 0) {
            fprintf(stderr, "report failed\n");
            exit(1);
        }
        double dt = s_now() - t0;
        if (dt < best)
            best = dt;
    }
    (void)files_bytes;
    return best;
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    int runs = 3;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_report [--events N] [--dir DIR] [--runs R]\n");
            return 2;
        }
    }
    as_log_setup(AS_LOG_WARN, AS_LOG_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char tmp[] = "/tmp/bench_report.XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    as_division_init();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/ledger", dir);
    as_ledger_opts_t lo = {.initial_map_bytes = 1ull << 30, .no_sync = true};
    int err;
    as_ledger_t *l = as_ledger_new(sub, &lo, &err);
    as_registry_t *reg = l ? as_registry_new(as_ledger_env(l), &err) : NULL;
    as_archive_t *ar = l ? as_archive_new(as_ledger_env(l), &err) : NULL;
    char *csv;
    s_make_orgs(&csv);
    if (!reg || !ar || as_registry_import_csv(reg, csv, strlen(csv), NULL) != 0) {
        fprintf(stderr, "cannot set up in %s\n", dir);
        return 1;
    }
    free(csv);
    as_review_t *rv = getenv("BENCH_NO_REVIEW") ? NULL : as_review_new(l, reg, ar, NULL, &err);
    if (!rv) {
        as_ledger_set_org_lookup(l, as_registry_org_cb, reg);
        as_ledger_set_supervisor_name_cb(l, as_registry_unit_cb, reg);
    }
    as_report_opts_t ro;
    as_report_opts_default(&ro);
    ro.out_dir = dir;
    as_report_t *rep = as_report_new(l, reg, ar, rv, &ro, &err);
    if (!rep)
        return 1;

    printf("bench_report: %d organisations, %d supervisory units, year %d, folder %s\n", ORGS,
           UNITS, YEAR, dir);
    double t[2];
    for (int round = 0; round < 2; round++) {
        printf("round %d: the year grows to %llu events\n", round + 1,
               (unsigned long long)(n * (uint64_t)(round + 1)));
        if (s_apply(l, n) != 0) {
            fprintf(stderr, "applying failed\n");
            return 1;
        }
        as_totals_row_t *rows;
        size_t nr;
        as_measures_t tot;
        as_ledger_totals(l, YEAR, AS_DIM_PROVINCE, NULL, &rows, &nr, &tot);
        free(rows);
        t[round] = s_report(rep, runs, NULL);
        printf("  full report of %llu activities (%llu organisations, funds %lld.%02lld yuan): "
               "%.3f s (best of %d)\n",
               (unsigned long long)tot.activities, (unsigned long long)tot.organisations,
               (long long)(tot.funds_fen / 100), (long long)(tot.funds_fen % 100), t[round], runs);
    }
    printf("report time for %lluM events: %.3f s; for %lluM: %.3f s; ratio %.2f (events x2)\n",
           (unsigned long long)(n / 1000000), t[0], (unsigned long long)(2 * n / 1000000), t[1],
           t[1] / t[0]);
    uint64_t fb, mb;
    as_ledger_size(l, &fb, &mb);
    printf("ledger file %.1f GiB\n", (double)fb / (1 << 30));
    as_report_destroy(&rep);
    as_review_destroy(&rv);
    as_archive_destroy(&ar);
    as_registry_destroy(&reg);
    as_ledger_destroy(&l);
    if (!strcmp(dir, tmp)) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
