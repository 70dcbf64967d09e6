/* bench_report: the full year-end report (all eight parts, every unit's folder, CSV + JSON +
 * HTML) of one year as its events grow (default 5 M, 10 M, 20 M). The report reads the totals,
 * never the event log, so its time must follow the number of distinct records (organisations ×
 * counties × months × attributes × villages), not the number of events. To show that, the key
 * space is a province's and FIXED: every event is one of K activity profiles (organisation,
 * county, month, area, group, village or none), and the first K events take every profile once,
 * so the ledger holds the same distinct records at every size; only the counts in them grow.
 * The distinct records per table are printed at each size as evidence.
 *
 * At each size the report is timed
 *   warm: after one untimed report, `runs` reports in a row (median, min, max);
 *   cold: `runs` times — close the ledger, write its file out and drop it from the page cache
 *         (posix_fadvise DONTNEED on data.mdb: this file only, the machine's cache is left
 *         alone), reopen, time the first report (page faults of a fresh map included).
 * and the ratios between sizes are printed from the same run.
 *
 * Events go through the ledger with the registry, review flags and archive attached, as in the
 * daemon (commits not durable: this measures the report). With --dir, an existing ledger made
 * by this program is continued: events are a function of their index, so the sizes already
 * reached are not applied again.
 * usage: bench_report [--events N,N,...] [--orgs N] [--runs R] [--dir DIR] [--no-cold] */
#include "archive.h"
#include "division.h"
#include "err.h"
#include "ledger.h"
#include "log.h"
#include "registry.h"
#include "report.h"
#include "review.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UNITS      40  /* supervisory units */
#define VPC        200 /* villages per county (~100 counties: ~20,000 villages) */
#define VPO        4   /* villages an organisation works in, per county */
#define PER_ORG    (2 * 12 * 2 * 2 * (VPO + 1)) /* profiles: county, month, area, group, vil. */
#define YEAR       2025
#define GROUP      20000
#define MAX_SIZES  8
#define MAX_RUNS   64
#define SEED_ORGS  0x51360000ull
#define SEED_EVENT 0x9e3779b97f4a7c15ull

static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A splitmix64 stream. */
typedef struct {
    uint64_t s;
} s_rng_t;

static uint32_t s_rand(s_rng_t *r, uint32_t n)
{
    return (uint32_t)(s_mix(r->s += 0x9e3779b97f4a7c15ull) % n);
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
    uint16_t village[2][VPO];
    uint8_t area[2], group[2], funding, project;
    bool qualified;
} s_org_t;

static s_org_t *s_orgs;
static uint32_t s_norgs = 3000;

/* The organisations and the registry CSV (one in a hundred is not registered). */
static char *s_make_orgs(void)
{
    size_t nc;
    const as_division_t *c = as_division_counties(&nc);
    s_rng_t r = {SEED_ORGS};
    s_orgs = calloc(s_norgs, sizeof *s_orgs);
    size_t cap = 200 + (size_t)s_norgs * 160, n = 0;
    char *csv = malloc(cap);
    if (!s_orgs || !csv)
        return NULL;
    n += (size_t)snprintf(csv + n, cap - n,
                          "统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格\n");
    static const char *const types[] = {"社会团体", "基金会", "社会服务机构", "社会工作服务机构"};
    static const char *const levels[] = {"省级", "市级", "县级"};
    for (uint32_t i = 0; i < s_norgs; i++) {
        s_org_t *o = &s_orgs[i];
        snprintf(o->code, sizeof o->code, "51360000MJB%07u", i % 10000000);
        for (int k = 0; k < 2; k++) {
            o->county[k] = c[s_rand(&r, (uint32_t)nc)].code;
            for (int v = 0; v < VPO; v++)
                o->village[k][v] = (uint16_t)(1 + s_rand(&r, VPC));
            o->area[k] = (uint8_t)(1 + s_rand(&r, 7));
            o->group[k] = (uint8_t)(1 + s_rand(&r, 8));
        }
        o->funding = (uint8_t)(1 + s_rand(&r, 4));
        o->project = (uint8_t)s_rand(&r, 5);
        o->qualified = i % 5 == 0;
        if (i % 100 == 99)
            continue; /* not in the registry: flagged, counted under supervisor 0 */
        n +=
            (size_t)snprintf(csv + n, cap - n, "%s,组织%05u,%s,%s,业务主管单位%02u,%s\n", o->code,
                             i, types[i % 4], levels[i % 3], i % UNITS, o->qualified ? "是" : "否");
    }
    return csv;
}

/* Event number i (0-based): a function of i only. Events 0 … K-1 take the K profiles in turn,
 * later ones a random profile. */
static void s_event(uint64_t i, as_event_t *ev)
{
    uint64_t k = (uint64_t)s_norgs * PER_ORG;
    s_rng_t r = {s_mix(i ^ SEED_EVENT)};
    uint64_t p = i < k ? i : s_mix(i * 31 + 7) % k;
    const s_org_t *o = &s_orgs[p / PER_ORG];
    unsigned q = (unsigned)(p % PER_ORG);
    unsigned vs = q % (VPO + 1), g = q / (VPO + 1) % 2, a = q / (VPO + 1) / 2 % 2,
             month = 1 + q / (VPO + 1) / 4 % 12, ck = q / (VPO + 1) / 48;
    memset(ev, 0, sizeof *ev);
    ev->county = o->county[ck];
    uint64_t id = i + 1;
    ev->id[0] = (uint8_t)(ev->county >> 16);
    ev->id[1] = (uint8_t)(ev->county >> 8);
    ev->id[2] = (uint8_t)ev->county;
    for (int b = 0; b < 8; b++)
        ev->id[8 + b] = (uint8_t)(id >> (56 - 8 * b));
    memcpy(ev->org_code, o->code, sizeof ev->org_code);
    snprintf(ev->org_name, sizeof ev->org_name, "组织%.5s", o->code + 13);
    ev->area = o->area[a];
    ev->group = o->group[g];
    ev->funding = o->funding;
    ev->project = o->project;
    ev->date = YEAR * 10000 + month * 100 + 1 + s_rand(&r, 28);
    if (vs) {
        unsigned v = o->village[ck][vs - 1];
        snprintf(ev->village, sizeof ev->village, "%06u%06u", ev->county, v);
        ev->deep_village = v % 75 == 0; /* ~2 a county: about the province's 269 */
    }
    ev->beneficiaries = 1 + s_rand(&r, 200);
    ev->registered_poor = ev->beneficiaries / 3;
    ev->funds_fen = (int64_t)s_rand(&r, 2000000);
    ev->goods_fen = (int64_t)s_rand(&r, 300000);
    ev->volunteers = s_rand(&r, 20);
    ev->volunteer_tenths = s_rand(&r, 400);
    ev->social_workers = s_rand(&r, 3);
    ev->persons_lifted = s_rand(&r, 5);
    ev->jobs = s_rand(&r, 4);
    ev->trainees = s_rand(&r, 30);
    ev->income_fen = (int64_t)s_rand(&r, 500000);
    ev->online_fundraising = s_rand(&r, 50) == 0;
}

/* The ledger and what the daemon attaches to it. */
typedef struct {
    char dir[512], sub[600];
    as_ledger_t *l;
    as_registry_t *reg;
    as_archive_t *ar;
    as_review_t *rv;
    as_report_t *rep;
} s_env_t;

static int s_open(s_env_t *e, const char *csv)
{
    as_ledger_opts_t lo = {.initial_map_bytes = 1ull << 30, .no_sync = true};
    int err;
    if (!(e->l = as_ledger_new(e->sub, &lo, &err)) ||
        !(e->reg = as_registry_new(as_ledger_env(e->l), &err)) ||
        !(e->ar = as_archive_new(as_ledger_env(e->l), &err)))
        return -1;
    if (csv && as_registry_import_csv(e->reg, csv, strlen(csv), NULL) != 0)
        return -1;
    if (!getenv("BENCH_NO_REVIEW") && !(e->rv = as_review_new(e->l, e->reg, e->ar, NULL, &err)))
        return -1;
    if (!e->rv) {
        as_ledger_set_org_lookup(e->l, as_registry_org_cb, e->reg);
        as_ledger_set_supervisor_name_cb(e->l, as_registry_unit_cb, e->reg);
    }
    as_report_opts_t ro;
    as_report_opts_default(&ro);
    ro.out_dir = e->dir;
    return (e->rep = as_report_new(e->l, e->reg, e->ar, e->rv, &ro, &err)) ? 0 : -1;
}

static void s_close(s_env_t *e)
{
    as_report_destroy(&e->rep);
    as_review_destroy(&e->rv);
    as_archive_destroy(&e->ar);
    as_registry_destroy(&e->reg);
    as_ledger_destroy(&e->l);
}

/* Applies events from .. to-1. */
static int s_apply(as_ledger_t *l, uint64_t from, uint64_t to)
{
    static as_event_t evs[GROUP];
    double t0 = s_now();
    for (uint64_t done = from; done < to;) {
        size_t g = to - done < GROUP ? (size_t)(to - done) : GROUP;
        for (size_t i = 0; i < g; i++)
            s_event(done + i, &evs[i]);
        if (as_ledger_begin(l) != 0)
            return -1;
        for (size_t i = 0; i < g; i++) {
            as_apply_result_t res;
            if (as_ledger_apply(l, &evs[i], &res) != 0 || res.code != AS_RESULT_ACCEPTED) {
                as_ledger_abort(l);
                return -1;
            }
        }
        if (as_ledger_commit(l, NULL) != 0)
            return -1;
        done += g;
    }
    double dt = s_now() - t0;
    if (to > from)
        printf("  applied events %llu … %llu in %.1f s (%.0f events/s, review flags on)\n",
               (unsigned long long)from + 1, (unsigned long long)to, dt, (double)(to - from) / dt);
    return 0;
}

/* Distinct records of the tables the report reads (and the event log's, which it does not). */
static void s_records(s_env_t *e)
{
    static const char *const dbs[] = {"cells", "vrefs",     "blocks", "orefs", "vsets",
                                      "vorgs", "flagcount", "log",    "dedup"};
    MDB_txn *txn;
    if (mdb_txn_begin(as_ledger_env(e->l), NULL, MDB_RDONLY, &txn) != 0)
        return;
    printf("  records:");
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_dbi dbi;
        MDB_stat st;
        if (mdb_dbi_open(txn, dbs[i], 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0)
            printf(" %s %zu%s", dbs[i], st.ms_entries, i == 6 ? " |" : "");
    }
    printf("\n");
    mdb_txn_commit(txn); /* read-only: keeps the handles, which the ledger opened already */
}

static double s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One report: wall seconds, and CPU seconds (user + system) in *cpu. */
static double s_report(s_env_t *e, double *cpu)
{
    char msg[512];
    double c0 = s_cpu(), t0 = s_now();
    if (as_report_write(e->rep, YEAR, false, NULL, msg, sizeof msg) != 0) {
        fprintf(stderr, "report failed\n");
        exit(1);
    }
    double dt = s_now() - t0;
    *cpu = s_cpu() - c0;
    return dt;
}

static int s_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double med, min, max;
} s_stat_t;

static s_stat_t s_stats(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, s_cmp_d);
    s_stat_t s = {n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t[0], t[n - 1]};
    return s;
}

/* Writes the ledger file out (the daemon's groups are durable when committed; here they are not,
 * and the writeback of gigabytes of the event log must not run under the timed reports). */
static double s_sync(const char *sub)
{
    char path[700];
    snprintf(path, sizeof path, "%s/data.mdb", sub);
    double t0 = s_now();
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (fdatasync(fd) != 0)
            perror("fdatasync");
        close(fd);
    }
    return s_now() - t0;
}

/* Writes the ledger file out and drops it from the page cache; the fraction still resident. */
static double s_evict(const char *sub)
{
    char path[700];
    snprintf(path, sizeof path, "%s/data.mdb", sub);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat sb;
    double resident = -1;
    if (fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 &&
        fstat(fd, &sb) == 0 && sb.st_size > 0) {
        long pg = sysconf(_SC_PAGESIZE);
        size_t pages = ((size_t)sb.st_size + (size_t)pg - 1) / (size_t)pg, in = 0;
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = malloc(pages);
        if (m != MAP_FAILED && vec && mincore(m, (size_t)sb.st_size, vec) == 0) {
            for (size_t i = 0; i < pages; i++)
                in += vec[i] & 1;
            resident = (double)in / (double)pages;
        }
        free(vec);
        if (m != MAP_FAILED)
            munmap(m, (size_t)sb.st_size);
    }
    close(fd);
    return resident;
}

static uint64_t s_parse_n(const char *s, char **end)
{
    double v = strtod(s, end);
    if (**end == 'M' || **end == 'm')
        v *= 1e6, (*end)++;
    else if (**end == 'k' || **end == 'K')
        v *= 1e3, (*end)++;
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    uint64_t sizes[MAX_SIZES] = {5000000, 10000000, 20000000};
    int nsizes = 3, runs = 5;
    bool cold = true;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) {
            char *p = argv[++i];
            for (nsizes = 0; *p && nsizes < MAX_SIZES; p += *p == ',')
                sizes[nsizes++] = s_parse_n(p, &p);
        } else if (!strcmp(argv[i], "--orgs") && i + 1 < argc)
            s_norgs = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-cold"))
            cold = false;
        else {
            fprintf(stderr, "usage: bench_report [--events N,N,... (5M,10M,20M)] [--orgs N (3000)] "
                            "[--runs R (5)] [--dir DIR] [--no-cold]\n");
            return 2;
        }
    }
    bool rising = sizes[0] > 0;
    for (int i = 1; i < nsizes; i++)
        rising = rising && sizes[i] > sizes[i - 1];
    if (runs < 1 || runs > MAX_RUNS || nsizes < 1 || !rising || s_norgs < 1) {
        fprintf(stderr, "bench_report: bad arguments (sizes must rise)\n");
        return 2;
    }
    as_log_setup(AS_LOG_WARN, AS_LOG_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char tmp[] = "/tmp/bench_report.XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    as_division_init();
    s_env_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.dir, sizeof e.dir, "%s", dir);
    snprintf(e.sub, sizeof e.sub, "%s/ledger", dir);
    char *csv = s_make_orgs();
    if (!csv || s_open(&e, csv) != 0) {
        fprintf(stderr, "cannot set up in %s\n", dir);
        return 1;
    }
    free(csv);
    uint64_t k = (uint64_t)s_norgs * PER_ORG;
    size_t nc;
    as_division_counties(&nc);
    printf("bench_report: %u organisations (1%% unregistered), %d supervisory units, %zu counties, "
           "%d villages a county, %llu activity profiles (all taken by the first %llu events), "
           "year %d, folder %s\n",
           s_norgs, UNITS, nc, VPC, (unsigned long long)k, (unsigned long long)k, YEAR, dir);
    s_stat_t warm[MAX_SIZES], cld[MAX_SIZES], wcpu[MAX_SIZES], ccpu[MAX_SIZES];
    for (int si = 0; si < nsizes; si++) {
        uint64_t have = as_ledger_last_seq(e.l), n = sizes[si];
        printf("%gM events (ledger holds %llu):\n", (double)n / 1e6, (unsigned long long)have);
        if (have > n) {
            fprintf(stderr, "the ledger in %s already holds more events\n", dir);
            return 1;
        }
        if (s_apply(e.l, have, n) != 0) {
            fprintf(stderr, "applying failed\n");
            return 1;
        }
        as_totals_row_t *rows;
        size_t nr;
        as_measures_t tot;
        as_ledger_totals(e.l, YEAR, AS_DIM_PROVINCE, NULL, &rows, &nr, &tot);
        free(rows);
        printf("  %llu activities, %llu organisations, %llu villages (%llu deep), %llu counties\n",
               (unsigned long long)tot.activities, (unsigned long long)tot.organisations,
               (unsigned long long)tot.villages, (unsigned long long)tot.deep_villages,
               (unsigned long long)tot.counties);
        s_records(&e);
        printf("  ledger written out in %.1f s (not timed)\n", s_sync(e.sub));
        double t[MAX_RUNS], c[MAX_RUNS];
        s_report(&e, c); /* warm-up */
        for (int r = 0; r < runs; r++)
            t[r] = s_report(&e, &c[r]);
        warm[si] = s_stats(t, runs);
        wcpu[si] = s_stats(c, runs);
        printf("  warm report: median %.3f s (min %.3f, max %.3f, %d runs); CPU median %.3f s\n",
               warm[si].med, warm[si].min, warm[si].max, runs, wcpu[si].med);
        if (!cold)
            continue;
        double resident = 1;
        for (int r = 0; r < runs; r++) {
            s_close(&e);
            double res = s_evict(e.sub);
            if (res > resident || r == 0)
                resident = res;
            if (s_open(&e, NULL) != 0) {
                fprintf(stderr, "cannot reopen %s\n", e.sub);
                return 1;
            }
            t[r] = s_report(&e, &c[r]);
        }
        cld[si] = s_stats(t, runs);
        ccpu[si] = s_stats(c, runs);
        printf("  cold report: median %.3f s (min %.3f, max %.3f, %d runs; ledger file evicted "
               "from the page cache, at most %.1f%% left resident); CPU median %.3f s\n",
               cld[si].med, cld[si].min, cld[si].max, runs, 100 * resident, ccpu[si].med);
    }
    printf("summary (medians of %d runs):\n  events   warm      cold\n", runs);
    for (int si = 0; si < nsizes; si++) {
        printf("  %4gM  %7.3f s", (double)sizes[si] / 1e6, warm[si].med);
        if (cold)
            printf("  %7.3f s", cld[si].med);
        printf("\n");
    }
    for (int si = 1; si < nsizes; si++) {
        printf("  ratio %gM/%gM (events x%.1f): warm %.2f", (double)sizes[si] / 1e6,
               (double)sizes[si - 1] / 1e6, (double)sizes[si] / (double)sizes[si - 1],
               warm[si].med / warm[si - 1].med);
        if (cold)
            printf(", cold %.2f", cld[si].med / cld[si - 1].med);
        printf("\n");
    }
    uint64_t fb, mb;
    as_ledger_size(e.l, &fb, &mb);
    printf("ledger file %.1f GiB\n", (double)fb / (1 << 30));
    s_close(&e);
    free(s_orgs);
    if (!strcmp(dir, tmp)) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
