/* gen: realistic sample activity rows — real counties and townships, organisation pools with
 * valid credit codes, weighted categories, heavy-tailed amounts — from a seeded PRNG. */
#include "gen.h"
#include "division.h"
#include "err.h"
#include "event.h"
#include "uscc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- randomness: xoshiro256** seeded with splitmix64 ---------------------------------------- */

typedef struct {
    uint64_t s[4];
} s_rng_t;

static uint64_t s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void s_seed(s_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = s_splitmix(&seed);
}

static uint64_t s_next(s_rng_t *r)
{
    uint64_t *s = r->s, x = s[1] * 5, res = (x << 7 | x >> 57) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return res;
}

/* Uniform in [0, n). */
static uint64_t s_below(s_rng_t *r, uint64_t n)
{
    return n ? (uint64_t)(((unsigned __int128)s_next(r) * n) >> 64) : 0;
}

static double s_unit(s_rng_t *r)
{
    return (double)(s_next(r) >> 11) * 0x1p-53;
}

static bool s_chance(s_rng_t *r, unsigned percent)
{
    return s_below(r, 100) < percent;
}

/* Log-normal with the given median: the long right tail of real donations and head counts. */
static uint64_t s_lognormal(s_rng_t *r, double median, double sigma, uint64_t max)
{
    double u1 = 1.0 - s_unit(r), u2 = s_unit(r);
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    double v = median * exp(sigma * z);
    return v >= (double)max ? max : (uint64_t)v;
}

static int s_weighted(s_rng_t *r, const unsigned *w, int n)
{
    unsigned total = 0;
    for (int i = 0; i < n; i++)
        total += w[i];
    uint64_t x = s_below(r, total);
    for (int i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

/* ---- dates ---------------------------------------------------------------------------------- */

static long s_days(uint32_t ymd) /* days since 1970-01-01 (H. Hinnant's days_from_civil) */
{
    long y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static uint32_t s_ymd(long z)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100),
         mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9);
    return (uint32_t)((y + (m <= 2)) * 10000 + m * 100 + d);
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the counties' organisations and villages ----------------------------------------------- */

typedef struct {
    char name[96];
    char code[AS_CODE_LEN + 1];
    bool social_work; /* a social-work service centre: social workers on most activities */
} s_org_t;

typedef struct {
    char code[AS_VILLAGE_LEN + 1];
    bool deep;
} s_village_t;

typedef struct {
    uint32_t code;
    const char *name, *city_name;
    uint32_t city;
    s_org_t *orgs;
    size_t norgs;
    s_village_t *vil;
    size_t nvil, ndeep;
    uint64_t seq; /* event ids */
} s_county_t;

static const char *const s_words[] = {
    "爱心", "阳光", "春晖", "希望", "同心", "红土地", "映山红", "赣鄱", "惠民", "启航",
    "善源", "明德", "仁爱", "乐助", "暖阳", "青禾",   "益家",   "同行", "筑梦", "新农",
    "德馨", "微光", "桑梓", "润苗", "康宁", "和美",   "致远",   "稻香", "绿源", "星火"};
#define NWORDS (sizeof s_words / sizeof *s_words)

/* Organisation kinds: type digit (1 社会团体, 2 社会服务机构, 3 基金会), where it registered
 * (0 county, 1 city, 2 province), name pattern (region, word), weight. */
static const struct {
    char type;
    int level;
    const char *fmt;
    unsigned weight;
    bool social_work;
} s_kinds[] = {
    {'1', 0, "%s%s志愿者协会", 16, false},      {'1', 0, "%s%s爱心协会", 8, false},
    {'1', 0, "%s%s农业产业协会", 6, false},     {'1', 0, "%s%s商会", 5, false},
    {'1', 0, "%s%s老年人协会", 3, false},       {'1', 1, "%s%s慈善总会", 3, false},
    {'2', 0, "%s%s社会工作服务中心", 12, true}, {'2', 0, "%s%s养老服务中心", 5, false},
    {'2', 0, "%s%s助学服务中心", 4, false},     {'2', 1, "%s%s社会工作服务中心", 3, true},
    {'3', 2, "%s%s慈善基金会", 4, false},       {'3', 1, "%s%s教育基金会", 3, false},
    {'3', 2, "%s%s助学基金会", 2, false},
};
#define NKINDS (sizeof s_kinds / sizeof *s_kinds)

static const char s_uscc_set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* GB 11714 check character of an 8-character organisation code. */
static char s_org_check(const char *c8)
{
    static const int w[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 8; i++)
        sum += (c8[i] >= 'A' ? c8[i] - 'A' + 10 : c8[i] - '0') * w[i];
    int c = 11 - sum % 11;
    return c == 10 ? 'X' : c == 11 ? '0' : (char)('0' + c);
}

static uint64_t s_fnv(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

/* The credit code follows from the name (and seed), so a provincial foundation active in several
 * counties has one code everywhere. */
static void s_credit_code(char *out, char type, uint32_t division, const char *name, uint64_t seed)
{
    uint64_t h = s_fnv(name, 0xCBF29CE484222325ull ^ seed);
    char c8[9];
    c8[0] = 'M', c8[1] = 'J';
    c8[2] = "ABCDEFGHJKLMNPQRTUWXY"[h % 21];
    h /= 21;
    for (int i = 3; i < 8; i++, h /= 10)
        c8[i] = (char)('0' + h % 10);
    c8[8] = 0;
    snprintf(out, AS_CODE_LEN + 1, "5%c%06u%s%c", type, (unsigned)division, c8, s_org_check(c8));
    out[17] = as_uscc_check_char(out);
}

static bool s_org_taken(const s_county_t *c, const char *name)
{
    for (size_t i = 0; i < c->norgs; i++)
        if (strcmp(c->orgs[i].name, name) == 0)
            return true;
    return false;
}

static int s_county_init(s_county_t *c, uint32_t code, size_t norgs, s_rng_t *r, uint64_t seed)
{
    const as_division_t *d = as_division_find(code);
    const as_division_t *city = as_division_find(as_division_city_of(code));
    c->code = code;
    c->name = d->name;
    c->city = city ? city->code : 360000;
    c->city_name = city ? city->name : "江西省";
    if (!(c->orgs = calloc(norgs ? norgs : 1, sizeof *c->orgs)))
        return AS_E_NOMEM;
    unsigned w[NKINDS];
    for (size_t k = 0; k < NKINDS; k++)
        w[k] = s_kinds[k].weight;
    for (int tries = 0; c->norgs < norgs && tries < 100000; tries++) {
        int k = s_weighted(r, w, NKINDS);
        const char *region = s_kinds[k].level == 0   ? c->name
                             : s_kinds[k].level == 1 ? c->city_name
                                                     : "江西省";
        uint32_t div = s_kinds[k].level == 0 ? code : s_kinds[k].level == 1 ? c->city : 360000;
        s_org_t *o = &c->orgs[c->norgs];
        snprintf(o->name, sizeof o->name, s_kinds[k].fmt, region, s_words[s_below(r, NWORDS)]);
        if (s_org_taken(c, o->name))
            continue;
        s_credit_code(o->code, s_kinds[k].type, div, o->name, seed);
        o->social_work = s_kinds[k].social_work;
        c->norgs++;
    }
    /* villages: 200-399 in townships that exist, about one in eight a deep-poverty village */
    unsigned towns[400];
    size_t nt = 0;
    for (unsigned t = 1; t < 400; t++) /* 400+ are farms and zones, not townships */
        if (as_division_township_exists(code, t))
            towns[nt++] = t;
    if (nt == 0)
        towns[nt++] = 100; /* no township known: still a plausible code of this county */
    size_t nvil = 24 + (size_t)s_below(r, 40);
    if (!(c->vil = calloc(nvil, sizeof *c->vil)))
        return AS_E_NOMEM;
    for (size_t i = 0; i < nvil; i++) {
        unsigned t = towns[s_below(r, nt)], v = 200 + (unsigned)s_below(r, 200);
        snprintf(c->vil[i].code, sizeof c->vil[i].code, "%06u%03u%03u", (unsigned)code, t, v);
        c->vil[i].deep = i < 2 || s_chance(r, 12);
        c->ndeep += c->vil[i].deep;
    }
    c->nvil = nvil;
    return 0;
}

/* ---- rows ----------------------------------------------------------------------------------- */

typedef struct {
    char cell[AS_COL_COUNT][112];
} s_row_t;

static void s_set(s_row_t *row, as_column_t c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_set(s_row_t *row, as_column_t c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->cell[c], sizeof row->cell[c], fmt, ap);
    va_end(ap);
}

/* Yuan as Excel shows them: 5000, 1234.5, 99.95. */
static void s_set_yuan(s_row_t *row, as_column_t c, uint64_t fen)
{
    if (fen % 100 == 0)
        s_set(row, c, "%llu", (unsigned long long)(fen / 100));
    else if (fen % 10 == 0)
        s_set(row, c, "%llu.%llu", (unsigned long long)(fen / 100),
              (unsigned long long)(fen % 100 / 10));
    else
        s_set(row, c, "%llu.%02llu", (unsigned long long)(fen / 100),
              (unsigned long long)(fen % 100));
}

/* Donations cluster on round sums: most to the hundred, some to the yuan, a few to the fen. */
static uint64_t s_money(s_rng_t *r, double median_yuan, double sigma, uint64_t max_yuan)
{
    uint64_t fen = s_lognormal(r, median_yuan * 100, sigma, max_yuan * 100);
    unsigned k = (unsigned)s_below(r, 10);
    return k < 6 ? (fen / 10000 + 1) * 10000 : k < 9 ? fen / 100 * 100 : fen;
}

static const unsigned s_area_w[] = {0, 8, 30, 18, 14, 6, 14, 10};
static const unsigned s_project_w[] = {70, 12, 8, 6, 4};
static const unsigned s_group_w[] = {0, 30, 12, 6, 8, 14, 16, 6, 8};
static const unsigned s_funding_w[] = {0, 25, 40, 28, 7};
static const unsigned s_month_w[] = {12, 10, 7, 7, 8, 8, 7, 7, 10, 8, 8, 10};

static const char *const s_notes[] = {
    "春节慰问困难群众", "脐橙种植技术培训",   "助学金发放",         "义诊进村",
    "留守儿童暑期课堂", "送米送油, 入户走访", "“爱心包”发放到校",   "就业技能培训",
    "光伏扶贫项目维护", "蔬菜基地产销对接",   "高龄老人上门探访",   "残疾人康复辅具发放",
    "村级图书室建设",   "电商直播带货培训",   "白莲种植合作社帮扶", "易地搬迁安置点社区融入活动"};
#define NNOTES (sizeof s_notes / sizeof *s_notes)

static void s_good_row(s_row_t *row, s_county_t *c, uint32_t date, unsigned year, s_rng_t *r)
{
    memset(row, 0, sizeof *row);
    /* a few organisations do most of the work */
    double u = s_unit(r);
    const s_org_t *o = &c->orgs[(size_t)(u * u * (double)c->norgs)];
    int area = s_weighted(r, s_area_w, AS_AREA_COUNT);
    int group = s_weighted(r, s_group_w, AS_GROUP_COUNT);
    int funding = s_weighted(r, s_funding_w, AS_FUNDING_COUNT);
    int project = s_weighted(r, s_project_w, AS_PROJECT_COUNT);
    s_set(row, AS_COL_EVENT_ID, "%u-%u-%06llu", (unsigned)c->code, year,
          (unsigned long long)++c->seq);
    s_set(row, AS_COL_COUNTY_CODE, "%u", (unsigned)c->code);
    s_set(row, AS_COL_ORG_CREDIT_CODE, "%s", o->code);
    s_set(row, AS_COL_ORG_NAME, "%s", o->name);
    s_set(row, AS_COL_AREA, "%s", as_area_name_zh(area));
    if (project)
        s_set(row, AS_COL_PROJECT, "%s", as_project_name_zh(project));
    s_set(row, AS_COL_ACTIVITY_DATE, "%04u-%02u-%02u", date / 10000, date / 100 % 100, date % 100);
    const s_village_t *v = NULL;
    if (area == AS_AREA_DEEP_VILLAGE) {
        size_t k = s_below(r, c->ndeep);
        for (size_t i = 0; i < c->nvil; i++)
            if (c->vil[i].deep && k-- == 0)
                v = &c->vil[i];
    } else if (s_chance(r, 75))
        v = &c->vil[s_below(r, c->nvil)];
    if (v) {
        s_set(row, AS_COL_VILLAGE_CODE, "%s", v->code);
        s_set(row, AS_COL_DEEP_POVERTY_VILLAGE, "%s", v->deep ? "是" : "否");
    }
    uint64_t ben = 1 + s_lognormal(r, 30, 1.1, 50000);
    uint64_t poor = group == AS_GROUP_REGISTERED_POOR
                        ? (uint64_t)((double)ben * (0.5 + s_unit(r) / 2))
                        : (uint64_t)((double)ben * s_unit(r) * 0.4);
    s_set(row, AS_COL_BENEFICIARIES, "%llu", (unsigned long long)ben);
    s_set(row, AS_COL_REGISTERED_POOR, "%llu", (unsigned long long)poor);
    s_set(row, AS_COL_BENEFICIARY_GROUP, "%s", as_group_name_zh(group));
    s_set_yuan(row, AS_COL_FUNDS_YUAN, s_chance(r, 80) ? s_money(r, 5000, 1.5, 50000000) : 0);
    s_set_yuan(row, AS_COL_GOODS_YUAN, s_chance(r, 35) ? s_money(r, 2000, 1.2, 5000000) : 0);
    s_set(row, AS_COL_FUNDING_SOURCE, "%s", as_funding_name_zh(funding));
    s_set(row, AS_COL_ONLINE_FUNDRAISING, "%s",
          funding == AS_FUNDING_CHARITY && s_chance(r, 8) ? "是" : "否");
    uint64_t vol = s_chance(r, 65) ? 1 + s_lognormal(r, 8, 0.8, 2000) : 0;
    uint64_t tenths = vol * (10 + s_below(r, 70));
    s_set(row, AS_COL_VOLUNTEERS, "%llu", (unsigned long long)vol);
    s_set(row, AS_COL_VOLUNTEER_HOURS, "%llu.%llu", (unsigned long long)(tenths / 10),
          (unsigned long long)(tenths % 10));
    s_set(row, AS_COL_SOCIAL_WORKERS, "%llu",
          (unsigned long long)(o->social_work ? 1 + s_below(r, 6) : s_chance(r, 10)));
    s_set(row, AS_COL_PERSONS_LIFTED, "%llu",
          (unsigned long long)(s_chance(r, 25) ? s_below(r, poor / 4 + 1) : 0));
    s_set(row, AS_COL_JOBS, "%llu",
          (unsigned long long)(area == AS_AREA_INDUSTRY && s_chance(r, 50) ? s_below(r, 40) : 0));
    bool trains =
        area == AS_AREA_INDUSTRY || area == AS_AREA_EDUCATION || area == AS_AREA_CAPACITY_CARE;
    s_set(row, AS_COL_TRAINEES, "%llu",
          (unsigned long long)(trains && s_chance(r, 50) ? 1 + s_lognormal(r, 30, 0.9, 5000) : 0));
    s_set_yuan(row, AS_COL_INCOME_INCREASE_YUAN,
               area == AS_AREA_INDUSTRY && s_chance(r, 50) ? s_money(r, 20000, 1.3, 10000000) : 0);
    if (s_chance(r, 45))
        s_set(row, AS_COL_NOTE, "%s", s_notes[s_below(r, NNOTES)]);
}

/* GB 11643 resident ID check character. */
static char s_id_check(const char *d17)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (d17[i] - '0') * w[i];
    return "10X98765432"[sum % 11];
}

#define NFAULTS 11

/* Makes a good row invalid with one fault (kind in [0, NFAULTS)). */
static void s_fault(s_row_t *row, int kind, const s_county_t *c, const s_county_t *all, size_t nall,
                    uint32_t today, s_rng_t *r)
{
    switch (kind) {
    case 0: { /* wrong check character */
        char *code = row->cell[AS_COL_ORG_CREDIT_CODE];
        const char *p = strchr(s_uscc_set, code[17]);
        code[17] = s_uscc_set[(p ? (size_t)(p - s_uscc_set) + 1 + s_below(r, 29) : 0) % 31];
        break;
    }
    case 1: { /* in the future */
        uint32_t d = s_ymd(s_days(today) + 1 + (long)s_below(r, 60));
        s_set(row, AS_COL_ACTIVITY_DATE, "%04u-%02u-%02u", d / 10000, d / 100 % 100, d % 100);
        break;
    }
    case 2: /* three decimals */
        s_set(row, AS_COL_FUNDS_YUAN, "%llu.%03llu", (unsigned long long)(100 + s_below(r, 9900)),
              (unsigned long long)(1 + s_below(r, 999)));
        if (row->cell[AS_COL_FUNDS_YUAN][strlen(row->cell[AS_COL_FUNDS_YUAN]) - 1] == '0')
            strcat(row->cell[AS_COL_FUNDS_YUAN], "5");
        break;
    case 3: { /* more registered poor than beneficiaries */
        unsigned long long b = 1 + s_below(r, 200);
        s_set(row, AS_COL_BENEFICIARIES, "%llu", b);
        s_set(row, AS_COL_REGISTERED_POOR, "%llu", b + 1 + s_below(r, 20));
        break;
    }
    case 4: /* an area not in the list */
        s_set(row, AS_COL_AREA, "%s", s_chance(r, 50) ? "扶贫旅游" : "tourism");
        break;
    case 5: { /* a village of another county (the province has more than one) */
        const s_county_t *o = c;
        while (o->code == c->code)
            o = &all[s_below(r, nall)];
        s_set(row, AS_COL_VILLAGE_CODE, "%s", o->vil[s_below(r, o->nvil)].code);
        s_set(row, AS_COL_DEEP_POVERTY_VILLAGE, "否");
        break;
    }
    case 6: /* a mobile number in the note */
        s_set(row, AS_COL_NOTE, "联系人电话1%c%09llu", (char)('3' + s_below(r, 7)),
              (unsigned long long)s_below(r, 1000000000));
        break;
    case 7: { /* a resident ID number in the note */
        char id[19];
        uint32_t birth = s_ymd(s_days(19500101) + (long)s_below(r, 20000));
        snprintf(id, sizeof id, "%06u%08u%03u", (unsigned)c->code, (unsigned)birth,
                 (unsigned)s_below(r, 1000));
        id[17] = s_id_check(id), id[18] = 0;
        s_set(row, AS_COL_NOTE, "受助人%s", id);
        break;
    }
    case 8: /* a county outside the province */
        s_set(row, AS_COL_COUNTY_CODE, "%s", s_chance(r, 50) ? "110101" : "369999");
        break;
    case 9: /* a negative count */
        s_set(row, AS_COL_BENEFICIARIES, "-%llu", (unsigned long long)(1 + s_below(r, 50)));
        break;
    default: /* no such day */
        s_set(row, AS_COL_ACTIVITY_DATE, "%04u-02-30", today / 10000 - 1);
        break;
    }
}

/* ---- output --------------------------------------------------------------------------------- */

/* Not common/csvout.h: this CSV is the collector's input (sample data, every cell made here,
 * never a formula lead); a quote in front would become part of the value read back. */
static void s_put_cell(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void s_put_row(FILE *out, const s_row_t *row)
{
    for (int c = 0; c < AS_COL_COUNT; c++) {
        if (c)
            fputc(',', out);
        s_put_cell(out, row->cell[c]);
    }
    fputs("\r\n", out);
}

static int s_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return AS_E_INVALID;
}

int as_gen_write(FILE *out, const as_gen_opts_t *o, char *errbuf, size_t errlen)
{
    if (as_division_init() != 0)
        return s_fail(errbuf, errlen, "the embedded division tables are broken");
    uint32_t today = o->today ? o->today : as_today_cst();
    if (!o->ncounties)
        return s_fail(errbuf, errlen, "no county given");
    for (size_t i = 0; i < o->ncounties; i++)
        if (!as_division_is_county(o->counties[i]))
            return s_fail(errbuf, errlen, "%u is not a county-level division of Jiangxi",
                          (unsigned)o->counties[i]);
    if (o->year < 2000 || o->year > today / 10000)
        return s_fail(errbuf, errlen, "year %u is not between 2000 and this year (%u)", o->year,
                      (unsigned)(today / 10000));
    if (o->bad > o->events)
        return s_fail(errbuf, errlen, "--bad %llu is more than --events %llu",
                      (unsigned long long)o->bad, (unsigned long long)o->events);

    int rc = AS_E_NOMEM;
    s_rng_t r;
    s_seed(&r, o->seed);
    uint64_t n = o->events;
    size_t nall = 0;
    const as_division_t *divs = as_division_counties(&nall);
    s_county_t *all = calloc(nall, sizeof *all); /* every county: faults need others */
    uint32_t *dates = malloc((n ? n : 1) * sizeof *dates);
    uint8_t *bad = calloc(n / 8 + 1, 1);
    size_t *mine = calloc(o->ncounties, sizeof *mine); /* index of each given county in all */
    if (!all || !dates || !bad || !mine)
        goto out;
    size_t per = (size_t)(n / o->ncounties / 30);
    size_t norgs = per < 12 ? 12 : per > 300 ? 300 : per;
    for (size_t i = 0; i < nall; i++) {
        s_rng_t cr; /* each county from its own stream: its pool does not depend on the others */
        s_seed(&cr, o->seed ^ (uint64_t)divs[i].code * 0x9E3779B97F4A7C15ull);
        bool given = false;
        for (size_t k = 0; k < o->ncounties; k++)
            if (o->counties[k] == divs[i].code)
                mine[k] = i, given = true;
        /* the others lend their villages to the "village of another county" fault */
        if ((rc = s_county_init(&all[i], divs[i].code, given ? norgs : 0, &cr, o->seed)) != 0)
            goto out;
    }
    /* dates: by month weight, uniform within the month, never after today */
    long first = s_days(o->year * 10000 + 101), last = s_days(o->year * 10000 + 1231);
    if (last > s_days(today))
        last = s_days(today);
    for (uint64_t i = 0; i < n; i++) {
        long d;
        do {
            int m = s_weighted(&r, s_month_w, 12);
            long a = s_days(o->year * 10000 + (unsigned)(m + 1) * 100 + 1);
            long b = m == 11 ? s_days(o->year * 10000 + 1231) + 1
                             : s_days(o->year * 10000 + (unsigned)(m + 2) * 100 + 1);
            d = a + (long)s_below(&r, (uint64_t)(b - a));
        } while (d > last && s_chance(&r, 95)); /* mostly re-draw; then clamp */
        if (d > last)
            d = first + (long)s_below(&r, (uint64_t)(last - first + 1));
        dates[i] = s_ymd(d);
    }
    if (o->sorted)
        qsort(dates, n, sizeof *dates, s_cmp_u32);
    for (uint64_t k = 0; k < o->bad;) {
        uint64_t i = s_below(&r, n);
        if (!(bad[i / 8] & (1u << (i % 8)))) {
            bad[i / 8] |= (uint8_t)(1u << (i % 8));
            k++;
        }
    }

    fputs("\xEF\xBB\xBF", out);
    for (int c = 0; c < AS_COL_COUNT; c++) {
        if (c)
            fputc(',', out);
        s_put_cell(out, as_column_name_zh(c));
    }
    fputs("\r\n", out);
    s_row_t row;
    for (uint64_t i = 0; i < n; i++) {
        s_county_t *c = &all[mine[s_below(&r, o->ncounties)]];
        s_good_row(&row, c, dates[i], o->year, &r);
        if (bad[i / 8] & (1u << (i % 8)))
            s_fault(&row, (int)s_below(&r, NFAULTS), c, all, nall, today, &r);
        s_put_row(out, &row);
        if (ferror(out))
            break;
    }
    rc = fflush(out) == 0 && !ferror(out) ? 0 : -(errno ? errno : EIO);
out:
    if (all)
        for (size_t i = 0; i < nall; i++)
            free(all[i].orgs), free(all[i].vil);
    free(all), free(dates), free(bad), free(mine);
    if (rc == AS_E_NOMEM)
        s_fail(errbuf, errlen, "out of memory");
    return rc;
}
