/* bench_ledger: the ledger alone — generated province-scale events applied in groups with
 * durable commits (events/s, commit time), then totals queries (median and p99 ms).
 * Arrival: by default 4 county collectors deliver at once, each its county's rows in date order
 * (as offices export spreadsheets); --random scatters every event over all counties and dates.
 * Event ids are derived as the collectors derive them (as_event_derive_id: county, day, hash);
 * --random-ids gives the county and 13 random bytes instead, to compare.
 * usage: bench_ledger [--events N] [--groups 1000,5000] [--dir DIR] [--no-sync] [--random]
 *                     [--random-ids] */
#include "division.h"
#include "err.h"
#include "event.h"
#include "ledger.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ORGS       3000
#define VILLAGES   150 /* per county */
#define QUERY_RUNS 1000
#define SCAN_RUNS  20

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

static int s_org_lookup(void *ctx, const char *code, as_org_info_t *out)
{
    unsigned k = (unsigned)strtoul(code + 11, NULL, 10);
    out->supervisor = (uint16_t)(1 + k % 40);
    out->type = (uint8_t)(1 + k % 6);
    out->level = (uint8_t)(1 + k % 3);
    return 0;
}

static bool s_random_arrival, s_random_ids;

/* Four collectors delivering at once: each stream walks its county's year in date order. */
typedef struct {
    size_t county;
    uint32_t day, n;
} s_stream_t;
static s_stream_t s_streams[4] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}};

/* One realistic event: an organisation working mostly in its home county. */
static void s_gen(as_event_t *ev, const as_division_t *counties, size_t ncounties, uint32_t year)
{
    memset(ev, 0, sizeof *ev);
    unsigned org = s_rand(ORGS);
    uint32_t county = counties[s_rand(10) ? org % ncounties : s_rand((uint32_t)ncounties)].code;
    uint32_t date = year * 10000 + (1 + s_rand(12)) * 100 + 1 + s_rand(28);
    if (!s_random_arrival) {
        s_stream_t *st = &s_streams[s_rand(4)];
        if (++st->n % 25 == 0 && ++st->day == 336) {
            st->day = 0;
            st->county = (st->county + 4) % ncounties;
        }
        county = counties[st->county].code;
        org = (unsigned)(st->county + ncounties * s_rand(ORGS / (unsigned)ncounties + 1));
        date = year * 10000 + (1 + st->day / 28) * 100 + 1 + st->day % 28;
    }
    ev->county = county;
    ev->id[0] = (uint8_t)(county >> 16);
    ev->id[1] = (uint8_t)(county >> 8);
    ev->id[2] = (uint8_t)county;
    snprintf(ev->org_code, sizeof ev->org_code, "5136%06u%07uX", county, org);
    snprintf(ev->org_name, sizeof ev->org_name, "江西省第%u社会组织服务中心", org);
    ev->area = (uint8_t)(1 + s_rand(AS_AREA_COUNT - 1));
    ev->project = (uint8_t)(s_rand(3) ? 0 : 1 + s_rand(AS_PROJECT_COUNT - 1));
    ev->group = (uint8_t)(1 + s_rand(AS_GROUP_COUNT - 1));
    ev->funding = (uint8_t)(1 + s_rand(AS_FUNDING_COUNT - 1));
    ev->date = date;
    if (s_rand(5))
        snprintf(ev->village, sizeof ev->village, "%06u%03u%03u", county, 100 + s_rand(20),
                 200 + s_rand(VILLAGES / 20 + 1));
    ev->deep_village = ev->village[0] && s_rand(20) == 0;
    ev->beneficiaries = s_rand(200);
    ev->registered_poor = ev->beneficiaries / 3;
    ev->funds_fen = s_rand(5000000);
    ev->goods_fen = s_rand(100000);
    ev->volunteers = s_rand(20);
    ev->volunteer_tenths = s_rand(800);
    ev->social_workers = s_rand(4);
    ev->persons_lifted = s_rand(5);
    ev->jobs = s_rand(6);
    ev->trainees = s_rand(60);
    ev->income_fen = s_rand(300000);
    if (s_random_ids) {
        uint64_t a = s_rand64(), b = s_rand64();
        memcpy(ev->id + 3, &a, 8);
        memcpy(ev->id + 11, &b, 5);
    } else {
        ev->volunteers = s_rand64() % 1000000; /* with the rest, content distinct enough */
        as_event_derive_id(ev);
    }
}

static int s_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void s_query_bench(as_ledger_t *l, uint32_t year, as_dim_t by, const as_filter_t *f,
                          int runs, const char *label)
{
    double *t = malloc((size_t)runs * sizeof *t);
    size_t nrows = 0;
    for (int i = 0; i < runs; i++) {
        as_totals_row_t *rows;
        as_measures_t total;
        double t0 = s_now();
        if (as_ledger_totals(l, year, by, f, &rows, &nrows, &total) != 0) {
            fprintf(stderr, "query failed\n");
            exit(1);
        }
        t[i] = (s_now() - t0) * 1000;
        free(rows);
    }
    qsort(t, (size_t)runs, sizeof *t, s_cmp_d);
    printf("  query %-34s rows %4zu  median %8.3f ms  p99 %8.3f ms\n", label, nrows, t[runs / 2],
           t[runs * 99 / 100]);
    free(t);
}

int main(int argc, char **argv)
{
    size_t events = 1000000;
    const char *groups = "1000,5000", *base = NULL;
    bool no_sync = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
            groups = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            base = argv[++i];
        else if (strcmp(argv[i], "--no-sync") == 0)
            no_sync = true;
        else if (strcmp(argv[i], "--random") == 0)
            s_random_arrival = true;
        else if (strcmp(argv[i], "--random-ids") == 0)
            s_random_ids = true;
        else {
            fprintf(stderr,
                    "usage: %s [--events N] [--groups 1000,5000] [--dir DIR] [--no-sync] "
                    "[--random] [--random-ids]\n",
                    argv[0]);
            return 2;
        }
    }
    as_log_setup(AS_LOG_WARN, AS_LOG_TEXT);
    if (as_division_init() != 0)
        return 1;
    size_t ncounties;
    const as_division_t *counties = as_division_counties(&ncounties);
    char tmpl[] = "/tmp/bench_ledger.XXXXXX";
    if (!base && !(base = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_ledger: %zu events, %zu counties, %d organisations, %s commits, %s arrival, "
           "%s ids, dir %s\n",
           events, ncounties, ORGS, no_sync ? "NO-SYNC" : "durable",
           s_random_arrival ? "random" : "4 collectors in date order",
           s_random_ids ? "random" : "derived (county, day, hash)", base);
    as_event_t *batch = NULL;
    for (const char *g = groups; *g;) {
        size_t gsize = strtoul(g, NULL, 10);
        g = strchr(g, ',') ? strchr(g, ',') + 1 : g + strlen(g);
        if (!gsize)
            continue;
        char dir[256];
        snprintf(dir, sizeof dir, "%s/g%zu", base, gsize);
        as_ledger_opts_t o = {.no_sync = no_sync};
        int err = 0;
        as_ledger_t *l = as_ledger_new(dir, &o, &err);
        if (!l) {
            fprintf(stderr, "cannot open %s: %s\n", dir, as_strerror(err));
            return 1;
        }
        as_ledger_set_org_lookup(l, s_org_lookup, NULL);
        free(batch);
        batch = malloc(gsize * sizeof *batch);
        size_t ngroups = (events + gsize - 1) / gsize, gi = 0;
        double *commit_ms = malloc(ngroups * sizeof *commit_ms), busy = 0;
        double t_start = s_now();
        for (size_t done = 0; done < events; gi++) {
            size_t n = events - done < gsize ? events - done : gsize;
            for (size_t i = 0; i < n; i++)
                s_gen(&batch[i], counties, ncounties, 2025);
            double t0 = s_now();
            as_apply_result_t r;
            as_commit_info_t info;
            if (as_ledger_begin(l) != 0)
                return 1;
            as_ledger_set_source(l, "bench");
            for (size_t i = 0; i < n; i++)
                if (as_ledger_apply(l, &batch[i], &r) != 0)
                    return 1;
            if (as_ledger_commit(l, &info) != 0)
                return 1;
            busy += s_now() - t0;
            commit_ms[gi] = info.commit_us / 1000.0;
            done += n;
            if (gi % (ngroups / 5 + 1) == 0 && gi)
                printf("  %8zu events  %8.0f events/s so far (ledger time only)\n", done,
                       (double)done / busy);
        }
        double wall = s_now() - t_start;
        qsort(commit_ms, gi, sizeof *commit_ms, s_cmp_d);
        uint64_t file = 0, map = 0;
        as_ledger_size(l, &file, &map);
        printf("group %5zu: %.0f events/s in the ledger (%.2f s; %.0f events/s with generation)\n"
               "  mdb_txn_commit median %.2f ms, p99 %.2f ms; file %.0f MiB, map %.0f MiB\n",
               gsize, (double)events / busy, busy, (double)events / wall, commit_ms[gi / 2],
               commit_ms[gi * 99 / 100], file / 1048576.0, map / 1048576.0);
        free(commit_ms);
        as_filter_t none = {0, -1}, city = {counties[0].parent, -1}, sup = {0, 7};
        as_filter_t cty = {counties[3].code, -1};
        s_query_bench(l, 2025, AS_DIM_COUNTY, NULL, QUERY_RUNS, "--by county");
        s_query_bench(l, 2025, AS_DIM_CITY, &none, QUERY_RUNS, "--by city");
        s_query_bench(l, 2025, AS_DIM_PROVINCE, &none, QUERY_RUNS, "--by province");
        s_query_bench(l, 2025, AS_DIM_COUNTY, &city, QUERY_RUNS, "--by county --county CITY");
        s_query_bench(l, 2025, AS_DIM_AREA, &none, SCAN_RUNS, "--by area (full scan)");
        s_query_bench(l, 2025, AS_DIM_MONTH, &cty, SCAN_RUNS, "--by month --county C (scan)");
        s_query_bench(l, 2025, AS_DIM_ORG, &none, SCAN_RUNS, "--by org (full scan)");
        s_query_bench(l, 2025, AS_DIM_COUNTY, &sup, SCAN_RUNS, "--by county, supervisor (scan)");
        as_ledger_destroy(&l);
    }
    free(batch);
    if (base == tmpl) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", base);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", base);
    }
    return 0;
}
