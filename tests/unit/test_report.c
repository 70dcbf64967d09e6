/* test_report: every cell of every table (province, per supervisory unit, county, area, …)
 * against figures computed here from the events themselves; the lock (final, then late events,
 * corrections and retractions: published files unchanged, amendments listed exactly, the next
 * year unaffected, the final report rebuilt byte for byte from the ledger). */
#include "division.h"
#include "yearend_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>

#define YEAR 2025
#define NORG 10

/* organisations: code, unit id (0: unregistered), provincial?, may fundraise */
static const struct {
    const char *code;
    unsigned unit;
    bool provincial, fund;
} s_orgs[NORG] = {
    {"51360000MJB0000001", 1, true, true},   {"51360000MJB0000002", 1, true, false},
    {"52360000MJB0000003", 1, false, false}, {"53360000MJB0000004", 2, true, true},
    {"51360700MJB0000005", 2, false, false}, {"52360700MJB0000006", 2, false, true},
    {"51360730MJB0000007", 3, false, false}, {"52360730MJB0000008", 3, true, false},
    {"91360000MJB0000009", 0, false, false}, {"91360000MJB0000010", 0, false, false},
};

static const char s_registry[] =
    "统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格\n"
    "51360000MJB0000001,组织01,社会团体,省级,江西省民政厅,是\n"
    "51360000MJB0000002,组织02,社会团体,省级,江西省民政厅,否\n"
    "52360000MJB0000003,组织03,社会服务机构,市级,江西省民政厅,否\n"
    "53360000MJB0000004,组织04,基金会,省级,江西省乡村振兴局,是\n"
    "51360700MJB0000005,组织05,社会团体,市级,江西省乡村振兴局,否\n"
    "52360700MJB0000006,组织06,社会工作服务机构,县级,江西省乡村振兴局,是\n"
    "51360730MJB0000007,组织07,志愿服务组织,县级,宁都县民政局,否\n"
    "52360730MJB0000008,组织08,行业协会商会,省级,宁都县民政局,否\n";

static const char *const s_area[] = {"none",   "deep_village", "industry",      "education",
                                     "health", "relocation",   "capacity_care", "other"};
static const char *const s_project[] = {"none", "pairing", "revitalization", "social_work",
                                        "volunteer_contest"};
static const char *const s_group[] = {"none",         "registered_poor", "low_income",
                                      "extreme_poor", "disabled",        "left_behind_children",
                                      "elderly",      "women",           "other"};
static const char *const s_funding[] = {"none", "government_purchase", "charity", "own", "other"};

/* ---- the dataset and its live events -------------------------------------------------------- */

static uint64_t s_rng = 0x9E3779B97F4A7C15ull;
static uint32_t s_rand(uint32_t n)
{
    s_rng = s_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((s_rng >> 33) % n);
}

static uint32_t s_counties[6];
static as_event_t *s_live; /* the live events (what the figures must count) */
static size_t s_nlive;

static void s_live_put(const as_event_t *ev)
{
    s_live = realloc(s_live, (s_nlive + 1) * sizeof *s_live);
    s_live[s_nlive++] = *ev;
}

static void s_live_drop(const uint8_t *id)
{
    for (size_t i = 0; i < s_nlive; i++)
        if (memcmp(s_live[i].id, id, AS_ID_LEN) == 0) {
            s_live[i] = s_live[--s_nlive];
            return;
        }
    fail_msg("dropping an event that is not live");
}

static int s_org_index(const char *code)
{
    for (int i = 0; i < NORG; i++)
        if (strcmp(s_orgs[i].code, code) == 0)
            return i;
    return -1;
}

static as_event_t s_random_event(yf_t *f, uint32_t year)
{
    int o = (int)s_rand(NORG);
    uint32_t county = s_counties[s_rand(6)];
    uint32_t date = year * 10000 + (1 + s_rand(12)) * 100 + 1 + s_rand(28);
    as_event_t ev =
        yf_event(f, county, s_orgs[o].code, date, (int64_t)s_rand(5000000), s_rand(300));
    ev.area = (uint8_t)(1 + s_rand(7));
    ev.project = (uint8_t)s_rand(5);
    ev.group = (uint8_t)s_rand(9);
    ev.funding = (uint8_t)s_rand(5);
    if (s_rand(10) < 6) {
        unsigned v = 101 + s_rand(9);
        snprintf(ev.village, sizeof ev.village, "%06u%06u", county, v);
        ev.deep_village = v % 3 == 0;
    }
    ev.registered_poor = ev.beneficiaries / 2;
    ev.goods_fen = (int64_t)s_rand(100000);
    ev.volunteers = s_rand(30);
    ev.volunteer_tenths = s_rand(1000);
    ev.social_workers = s_rand(4);
    ev.persons_lifted = s_rand(10);
    ev.jobs = s_rand(8);
    ev.trainees = s_rand(50);
    ev.income_fen = (int64_t)s_rand(900000);
    ev.online_fundraising = s_rand(6) == 0;
    return ev;
}

/* 600 events of YEAR, some of the years around it, then corrections and retractions. */
static void s_dataset(yf_t *f)
{
    size_t nc;
    const as_division_t *c = as_division_counties(&nc);
    int in = 0, out = 0;
    for (size_t i = 0; i < nc && (in < 3 || out < 3); i++) {
        if (c[i].poverty && in < 3)
            s_counties[in++] = c[i].code;
        else if (!c[i].poverty && out < 3)
            s_counties[3 + out++] = c[i].code;
    }
    assert_true(in == 3 && out == 3);
    as_event_t batch[100];
    for (int g = 0; g < 6; g++) {
        for (int i = 0; i < 100; i++) {
            batch[i] = s_random_event(f, i % 10 == 9 ? YEAR + 1 : i % 10 == 8 ? YEAR - 1 : YEAR);
        }
        yf_apply(f, batch, 100);
        for (int i = 0; i < 100; i++)
            s_live_put(&batch[i]);
    }
    /* corrections and retractions of some live events */
    as_event_t ch[40];
    size_t n = 0;
    for (size_t i = 0; i < s_nlive && n < 40; i += 15) {
        as_event_t *t = &s_live[i];
        ch[n] = yf_change(f, t, n % 3 == 0);
        if (!ch[n].retract) {
            ch[n].funds_fen = (int64_t)s_rand(3000000);
            ch[n].beneficiaries = s_rand(200);
            ch[n].registered_poor = ch[n].beneficiaries / 3;
            ch[n].area = (uint8_t)(1 + s_rand(7));
            ch[n].village[0] = 0;
        }
        n++;
    }
    yf_apply(f, ch, n);
    for (size_t i = 0; i < n; i++) {
        s_live_drop(ch[i].correction_of);
        if (!ch[i].retract)
            s_live_put(&ch[i]);
    }
}

/* ---- expected figures ---------------------------------------------------------------------- */

enum {
    D_PROVINCE,
    D_CITY,
    D_COUNTY,
    D_POVERTY,
    D_AREA,
    D_GROUP,
    D_FUNDING,
    D_PROJECT,
    D_SUP,
    D_ORG
};

static void s_key_of(const as_event_t *ev, int dim, char key[32])
{
    int o = s_org_index(ev->org_code);
    switch (dim) {
    case D_PROVINCE:
        snprintf(key, 32, "360000");
        break;
    case D_CITY:
        snprintf(key, 32, "%06u", ev->county / 100 * 100);
        break;
    case D_COUNTY:
        snprintf(key, 32, "%06u", ev->county);
        break;
    case D_POVERTY:
        snprintf(key, 32, "%s", as_division_find(ev->county)->poverty ? "inside" : "outside");
        break;
    case D_AREA:
        snprintf(key, 32, "%s", s_area[ev->area]);
        break;
    case D_GROUP:
        snprintf(key, 32, "%s", s_group[ev->group]);
        break;
    case D_FUNDING:
        snprintf(key, 32, "%s", s_funding[ev->funding]);
        break;
    case D_PROJECT:
        snprintf(key, 32, "%s", s_project[ev->project]);
        break;
    case D_SUP:
        snprintf(key, 32, "%u", s_orgs[o].unit);
        break;
    default:
        snprintf(key, 32, "%s", ev->org_code);
    }
}

typedef struct {
    int64_t v[16];
} s_m_t;

static bool s_in_set(char (*set)[32], size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], k) == 0)
            return true;
    return false;
}

/* The 16 measures over live events of year matching dim == key (key NULL: all) and unit. */
static s_m_t s_expect(uint32_t year, int dim, const char *key, int unit)
{
    s_m_t m;
    memset(&m, 0, sizeof m);
    static char orgs[1000][32], vil[1000][32], deep[1000][32], cty[1000][32];
    size_t no = 0, nv = 0, nd = 0, nc = 0;
    for (size_t i = 0; i < s_nlive; i++) {
        const as_event_t *e = &s_live[i];
        char k[32];
        s_key_of(e, dim, k);
        if (e->date / 10000 != year || (key && strcmp(k, key) != 0))
            continue;
        if (unit >= 0 && s_orgs[s_org_index(e->org_code)].unit != (unsigned)unit)
            continue;
        m.v[0]++;
        m.v[2] += (int64_t)e->beneficiaries;
        m.v[3] += (int64_t)e->registered_poor;
        m.v[4] += e->funds_fen;
        m.v[5] += e->goods_fen;
        m.v[6] += (int64_t)e->volunteers;
        m.v[7] += (int64_t)e->volunteer_tenths;
        m.v[8] += (int64_t)e->social_workers;
        m.v[9] += (int64_t)e->persons_lifted;
        m.v[10] += (int64_t)e->jobs;
        m.v[11] += (int64_t)e->trainees;
        m.v[12] += e->income_fen;
        if (!s_in_set(orgs, no, e->org_code))
            snprintf(orgs[no++], 32, "%s", e->org_code);
        if (e->village[0] && !s_in_set(vil, nv, e->village))
            snprintf(vil[nv++], 32, "%s", e->village);
        if (e->village[0] && e->deep_village && !s_in_set(deep, nd, e->village))
            snprintf(deep[nd++], 32, "%s", e->village);
        char c[32];
        snprintf(c, sizeof c, "%u", e->county);
        if (!s_in_set(cty, nc, c))
            snprintf(cty[nc++], 32, "%s", c);
    }
    m.v[1] = (int64_t)no;
    m.v[13] = (int64_t)nv;
    m.v[14] = (int64_t)nd;
    m.v[15] = (int64_t)nc;
    return m;
}

static const int s_kinds[16] = {0, 0, 0, 0, 1, 1, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0};

static void s_fmt(char *out, size_t cap, int kind, int64_t v)
{
    if (kind == 1)
        snprintf(out, cap, "%s%lld.%02lld", v < 0 ? "-" : "", (long long)(llabs(v) / 100),
                 (long long)(llabs(v) % 100));
    else if (kind == 2)
        snprintf(out, cap, "%lld.%lld", (long long)(v / 10), (long long)(v % 10));
    else
        snprintf(out, cap, "%lld", (long long)v);
}

/* ---- reading the CSV files ---------------------------------------------------------------------
 */

typedef struct {
    char ***cells; /* rows (header first) × fields */
    size_t *nf;
    size_t nrows;
} s_csv_t;

static char *s_slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    b[n] = 0;
    if (len)
        *len = (size_t)n;
    return b;
}

static s_csv_t s_read_csv(const char *path)
{
    char *b = s_slurp(path, NULL);
    assert_memory_equal(b, "\xEF\xBB\xBF", 3); /* BOM for Excel */
    s_csv_t c = {0};
    char *save = NULL;
    for (char *line = strtok_r(b + 3, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        c.cells = realloc(c.cells, (c.nrows + 1) * sizeof *c.cells);
        c.nf = realloc(c.nf, (c.nrows + 1) * sizeof *c.nf);
        char **f = NULL;
        size_t nf = 0;
        for (char *p = line;;) {
            char *comma = strchr(p, ',');
            f = realloc(f, (nf + 1) * sizeof *f);
            f[nf++] = strndup(p, comma ? (size_t)(comma - p) : strlen(p));
            if (!comma)
                break;
            p = comma + 1;
        }
        c.cells[c.nrows] = f;
        c.nf[c.nrows++] = nf;
    }
    free(b);
    return c;
}

static void s_csv_free(s_csv_t *c)
{
    for (size_t r = 0; r < c->nrows; r++) {
        for (size_t i = 0; i < c->nf[r]; i++)
            free(c->cells[r][i]);
        free(c->cells[r]);
    }
    free(c->cells);
    free(c->nf);
}

static int s_cells_checked;

static void s_check_measures(const char *path, size_t row, char **cells, size_t first,
                             const s_m_t *m, const int *which, size_t nw)
{
    for (size_t i = 0; i < (which ? nw : 16); i++) {
        int c = which ? which[i] : (int)i;
        char want[48];
        s_fmt(want, sizeof want, s_kinds[c], m->v[c]);
        if (strcmp(cells[first + i], want) != 0) {
            fail_msg("%s row %zu (%s) column %zu: %s, want %s", path, row, cells[0], first + i,
                     cells[first + i], want);
        }
        s_cells_checked++;
    }
}

/* A table "key, name, measures": every row and the 合计 row, and exactly the expected keys. */
static void s_check_dim(const char *dir, const char *file, uint32_t year, int dim, int unit,
                        const int *which, size_t nw)
{
    char path[1024];
    assert_true((size_t)snprintf(path, sizeof path, "%s/%s.csv", dir, file) < sizeof path);
    s_csv_t c = s_read_csv(path);
    assert_true(c.nrows >= 2);
    size_t data_rows = 0;
    for (size_t r = 1; r < c.nrows; r++) {
        assert_int_equal(c.nf[r], 2 + (which ? nw : 16));
        bool total = strcmp(c.cells[r][0], "total") == 0;
        s_m_t m = s_expect(year, dim, total ? NULL : c.cells[r][0], unit);
        if (!total) {
            assert_true(m.v[0] > 0 || m.v[1] > 0); /* a row only for keys with live events */
            data_rows++;
        } else {
            assert_int_equal(r, c.nrows - 1);
        }
        s_check_measures(path, r, c.cells[r], 2, &m, which, nw);
    }
    /* the number of distinct keys among the matching live events */
    char keys[200][32];
    size_t nk = 0;
    for (size_t i = 0; i < s_nlive; i++) {
        const as_event_t *e = &s_live[i];
        if (e->date / 10000 != year ||
            (unit >= 0 && s_orgs[s_org_index(e->org_code)].unit != (unsigned)unit))
            continue;
        char k[32];
        s_key_of(e, dim, k);
        if (!s_in_set(keys, nk, k))
            snprintf(keys[nk++], 32, "%s", k);
    }
    assert_int_equal(data_rows, nk);
    s_csv_free(&c);
}

static void s_check_summary(const char *dir, uint32_t year, int unit)
{
    char path[512];
    snprintf(path, sizeof path, "%s/01_summary.csv", dir);
    s_csv_t c = s_read_csv(path);
    assert_int_equal(c.nrows, 2);
    s_m_t m = s_expect(year, D_PROVINCE, NULL, unit);
    s_check_measures(path, 1, c.cells[1], 0, &m, NULL, 0);
    assert_string_equal(c.cells[1][16], "269");
    char cov[32];
    int64_t pm = (m.v[14] * 1000 + 134) / 269;
    snprintf(cov, sizeof cov, "%lld.%lld%%", (long long)(pm / 10), (long long)(pm % 10));
    assert_string_equal(c.cells[1][17], cov);
    s_csv_free(&c);
}

static const int s_effect_cols[] = {2, 3, 9, 10, 11, 12};

static void s_check_all(const char *dir, uint32_t year)
{
    s_check_summary(dir, year, -1);
    s_check_dim(dir, "02_supervisors", year, D_SUP, -1, NULL, 0);
    s_check_dim(dir, "03_cities", year, D_CITY, -1, NULL, 0);
    s_check_dim(dir, "03_counties", year, D_COUNTY, -1, NULL, 0);
    s_check_dim(dir, "03_poverty", year, D_POVERTY, -1, NULL, 0);
    s_check_dim(dir, "04_groups", year, D_GROUP, -1, NULL, 0);
    s_check_dim(dir, "05_areas", year, D_AREA, -1, NULL, 0);
    s_check_dim(dir, "05_funding", year, D_FUNDING, -1, NULL, 0);
    s_check_dim(dir, "06_effects", year, D_AREA, -1, s_effect_cols, 6);
    s_check_dim(dir, "07_projects", year, D_PROJECT, -1, NULL, 0);
    for (int u = 0; u <= 3; u++) {
        char file[32], udir[512];
        snprintf(file, sizeof file, "02_unit_%d", u);
        s_check_dim(dir, file, year, D_ORG, u, NULL, 0);
        if (u == 0)
            continue;
        snprintf(udir, sizeof udir, "%s/units/%d", dir, u);
        s_check_summary(udir, year, u);
        s_check_dim(udir, "02_organisations", year, D_ORG, u, NULL, 0);
        s_check_dim(udir, "03_counties", year, D_COUNTY, u, NULL, 0);
        s_check_dim(udir, "04_groups", year, D_GROUP, u, NULL, 0);
        s_check_dim(udir, "05_areas", year, D_AREA, u, NULL, 0);
        s_check_dim(udir, "05_funding", year, D_FUNDING, u, NULL, 0);
        s_check_dim(udir, "06_effects", year, D_AREA, u, s_effect_cols, 6);
        s_check_dim(udir, "07_projects", year, D_PROJECT, u, NULL, 0);
    }

    /* 07_targets: provincial organisations with pairing activities; social workers of the
     * social-work project */
    char path[512];
    snprintf(path, sizeof path, "%s/07_targets.csv", dir);
    s_csv_t c = s_read_csv(path);
    int64_t provincial = 0, talents = 0;
    for (int o = 0; o < NORG; o++) {
        if (!s_orgs[o].provincial)
            continue;
        for (size_t i = 0; i < s_nlive; i++)
            if (s_live[i].date / 10000 == year && s_live[i].project == 1 &&
                strcmp(s_live[i].org_code, s_orgs[o].code) == 0) {
                provincial++;
                break;
            }
    }
    for (size_t i = 0; i < s_nlive; i++)
        if (s_live[i].date / 10000 == year && s_live[i].project == 3)
            talents += (int64_t)s_live[i].social_workers;
    char want[32];
    assert_int_equal(c.nrows, 3);
    assert_string_equal(c.cells[1][2], "100");
    snprintf(want, sizeof want, "%lld", (long long)provincial);
    assert_string_equal(c.cells[1][3], want);
    assert_string_equal(c.cells[2][2], "35");
    snprintf(want, sizeof want, "%lld", (long long)talents);
    assert_string_equal(c.cells[2][3], want);
    s_csv_free(&c);

    /* 08_completeness: activities per county and month, every county of the province */
    snprintf(path, sizeof path, "%s/08_completeness.csv", dir);
    c = s_read_csv(path);
    size_t ncounties;
    as_division_counties(&ncounties);
    assert_int_equal(c.nrows, 1 + ncounties);
    for (size_t r = 1; r < c.nrows; r++) {
        uint32_t county = (uint32_t)strtoul(c.cells[r][0], NULL, 10);
        int months = 0;
        for (int mth = 1; mth <= 12; mth++) {
            int64_t n = 0;
            for (size_t i = 0; i < s_nlive; i++)
                n += s_live[i].date / 10000 == year && s_live[i].county == county &&
                     s_live[i].date / 100 % 100 == (uint32_t)mth;
            snprintf(want, sizeof want, "%lld", (long long)n);
            assert_string_equal(c.cells[r][1 + mth], want);
            months += n > 0;
            s_cells_checked++;
        }
        snprintf(want, sizeof want, "%d", months);
        assert_string_equal(c.cells[r][14], want);
    }
    s_csv_free(&c);

    /* 08_flags: unregistered and online-unqualified live events per county */
    snprintf(path, sizeof path, "%s/08_flags.csv", dir);
    c = s_read_csv(path);
    for (size_t r = 1; r < c.nrows; r++) {
        bool total = strcmp(c.cells[r][0], "total") == 0;
        uint32_t county = (uint32_t)strtoul(c.cells[r][0], NULL, 10);
        int64_t unreg = 0, online = 0;
        for (size_t i = 0; i < s_nlive; i++) {
            const as_event_t *e = &s_live[i];
            if (e->date / 10000 != year || (!total && e->county != county))
                continue;
            int o = s_org_index(e->org_code);
            unreg += s_orgs[o].unit == 0;
            online += e->online_fundraising && !s_orgs[o].fund;
        }
        snprintf(want, sizeof want, "%lld", (long long)unreg);
        assert_string_equal(c.cells[r][2], want);
        snprintf(want, sizeof want, "%lld", (long long)online);
        assert_string_equal(c.cells[r][3], want);
        assert_string_equal(c.cells[r][4], "0"); /* outliers: the rule is off here */
        s_cells_checked += 3;
    }
    s_csv_free(&c);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static as_outlier_rule_t s_no_outliers = {.k = 1e12, .window = 10, .min_samples = 5};

static void test_every_cell(void **state)
{
    yf_t *f = yf_open(s_registry, &s_no_outliers);
    s_nlive = 0;
    s_dataset(f);
    char msg[512], dir[256];
    assert_int_equal(as_report_write(f->rep, YEAR, false, NULL, msg, sizeof msg), 0);
    snprintf(dir, sizeof dir, "%s/reports/%d", f->dir, YEAR);
    s_cells_checked = 0;
    s_check_all(dir, YEAR);
    print_message("checked %d cells of %d\n", s_cells_checked, YEAR);
    assert_true(s_cells_checked > 3000);
    /* the JSON carries fen; the page is self-contained */
    char path[512];
    snprintf(path, sizeof path, "%s/report.json", dir);
    char *json = s_slurp(path, NULL);
    s_m_t m = s_expect(YEAR, D_PROVINCE, NULL, -1);
    char want[64];
    snprintf(want, sizeof want, "\"funds_fen\":%lld", (long long)m.v[4]);
    assert_non_null(strstr(json, want));
    assert_non_null(strstr(json, "\"final\":false"));
    free(json);
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *html = s_slurp(path, NULL);
    assert_non_null(strstr(html, "@page"));
    assert_non_null(strstr(html, "page-break-before"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "<script"));
    free(html);
    /* the next year: only its own events */
    assert_int_equal(as_report_write(f->rep, YEAR + 1, false, NULL, msg, sizeof msg), 0);
    snprintf(dir, sizeof dir, "%s/reports/%d", f->dir, YEAR + 1);
    s_check_all(dir, YEAR + 1);
    free(s_live);
    s_live = NULL;
    yf_close(f);
}

/* ---- the lock ----------------------------------------------------------------------------------
 */

typedef struct {
    char name[600];
    char *data;
    size_t len;
} s_file_t;

static size_t s_tree(const char *root, const char *rel, s_file_t *out, size_t n, bool skip_amended)
{
    char path[1200];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || (skip_amended && strcmp(de->d_name, "amended") == 0))
            continue;
        char r2[600], p2[1200];
        snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        snprintf(p2, sizeof p2, "%s/%s", root, r2);
        struct stat st;
        assert_int_equal(stat(p2, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n = s_tree(root, r2, out, n, skip_amended);
        } else {
            snprintf(out[n].name, sizeof out[n].name, "%s", r2);
            out[n].data = s_slurp(p2, &out[n].len);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void s_same_tree(s_file_t *a, size_t na, s_file_t *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i].name, b[j].name) != 0)
            j++;
        if (j == nb)
            fail_msg("%s is missing", a[i].name);
        assert_int_equal(a[i].len, b[j].len);
        assert_memory_equal(a[i].data, b[j].data, a[i].len);
    }
}

static void s_tree_free(s_file_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].data);
}

static void test_lock(void **state)
{
    yf_t *f = yf_open(s_registry, &s_no_outliers);
    s_nlive = 0;
    s_dataset(f);
    char msg[512], dir[256];
    snprintf(dir, sizeof dir, "%s/reports/%d", f->dir, YEAR);
    assert_int_equal(as_report_write(f->rep, YEAR, true, NULL, msg, sizeof msg), 0);
    s_check_all(dir, YEAR);
    static s_file_t before[400], after[400];
    size_t nb = s_tree(dir, "", before, 0, true);
    assert_true(nb > 40);

    /* late: a new event, a correction and a retraction for YEAR; events of YEAR + 1 */
    as_event_t *old1 = NULL, *old2 = NULL;
    for (size_t i = 0; i < s_nlive && (!old1 || !old2); i++)
        if (s_live[i].date / 10000 == YEAR) {
            if (!old1)
                old1 = &s_live[i];
            else
                old2 = &s_live[i];
        }
    char id1[AS_EVENT_ID_MAX + 1], id2[AS_EVENT_ID_MAX + 1];
    snprintf(id1, sizeof id1, "%s", old1->event_id);
    snprintf(id2, sizeof id2, "%s", old2->event_id);
    as_event_t late[5];
    late[0] = s_random_event(f, YEAR);
    late[1] = yf_change(f, old1, false);
    late[1].funds_fen += 12345;
    late[2] = yf_change(f, old2, true);
    late[3] = s_random_event(f, YEAR + 1);
    late[4] = s_random_event(f, YEAR + 1);
    yf_apply(f, late, 5);
    for (int i = 0; i < 3; i++)
        assert_true(late[i].flags & AS_FLAG_AMENDMENT);
    assert_false(late[3].flags & AS_FLAG_AMENDMENT);
    s_live_drop(late[1].correction_of);
    s_live_drop(late[2].correction_of);
    s_live_put(&late[0]);
    s_live_put(&late[1]);
    s_live_put(&late[3]);
    s_live_put(&late[4]);

    /* the final again, and a draft: the published files do not move */
    assert_int_equal(as_report_write(f->rep, YEAR, true, NULL, msg, sizeof msg), 0);
    assert_int_equal(as_report_write(f->rep, YEAR, false, NULL, msg, sizeof msg), 0);
    size_t na = s_tree(dir, "", after, 0, true);
    s_same_tree(before, nb, after, na);
    s_tree_free(after, na);

    /* the draft beside it: current figures, and exactly the three amendments */
    char adir[300];
    snprintf(adir, sizeof adir, "%s/amended", dir);
    s_check_all(adir, YEAR);
    char path[512];
    snprintf(path, sizeof path, "%s/08_amendments.csv", adir);
    s_csv_t c = s_read_csv(path);
    assert_int_equal(c.nrows, 4);
    const char *kinds[3] = {"补报", "更正", "撤回"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(c.cells[1 + i][1], kinds[i]);
        assert_string_equal(c.cells[1 + i][2], late[i].event_id);
    }
    assert_string_equal(c.cells[1][3], "");
    assert_string_equal(c.cells[2][3], id1);
    assert_string_equal(c.cells[3][3], id2);
    assert_string_equal(c.cells[2][10], "123.45");
    s_csv_free(&c);
    /* the published amendments table (at the lock) was empty */
    snprintf(path, sizeof path, "%s/08_amendments.csv", dir);
    c = s_read_csv(path);
    assert_int_equal(c.nrows, 1);
    s_csv_free(&c);

    /* the next year is unaffected: its figures, no amendments */
    assert_int_equal(as_report_write(f->rep, YEAR + 1, false, NULL, msg, sizeof msg), 0);
    char ndir[256];
    snprintf(ndir, sizeof ndir, "%s/reports/%d", f->dir, YEAR + 1);
    s_check_all(ndir, YEAR + 1);
    snprintf(path, sizeof path, "%s/08_amendments.csv", ndir);
    c = s_read_csv(path);
    assert_int_equal(c.nrows, 1);
    s_csv_free(&c);

    /* the final report rebuilt from the ledger alone, byte for byte */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(as_report_write(f->rep, YEAR, true, NULL, msg, sizeof msg), 0);
    na = s_tree(dir, "", after, 0, true);
    s_same_tree(before, nb, after, na);
    s_tree_free(after, na);
    s_tree_free(before, nb);
    free(s_live);
    s_live = NULL;
    yf_close(f);
}

static void test_deadline(void **state)
{
    yf_t *f = yf_open(s_registry, &s_no_outliers);
    /* 2025-12-31 00:00 +08:00 = 2025-12-30 16:00 UTC */
    assert_int_equal(as_report_deadline_ms(f->rep, 2025), 1767110400000ull);
    as_event_t ev = yf_event(f, 360730, s_orgs[0].code, 20251201, 100, 1);
    yf_apply(f, &ev, 1);
    bool locked;
    as_report_tick(f->rep, 1767110400000ull - 60000);
    assert_int_equal(as_archive_locked(f->ar, NULL, 2025, &locked), 0);
    assert_false(locked);
    as_report_tick(f->rep, 1767110400000ull + 60000);
    assert_int_equal(as_archive_locked(f->ar, NULL, 2025, &locked), 0);
    assert_true(locked);
    char path[512];
    snprintf(path, sizeof path, "%s/reports/2025/report.json", f->dir);
    char *json = s_slurp(path, NULL);
    assert_non_null(strstr(json, "\"final\":true"));
    free(json);
    yf_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
