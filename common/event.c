/* event: a spreadsheet row into a validated activity event (or every error it has), the
 * re-check of a decoded event, and the event's wire id. */
#include "event.h"
#include "division.h"
#include "err.h"
#include "uscc.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- names -------------------------------------------------------------------------------- */

static const char *const s_col_en[AS_COL_COUNT] = {"event_id",
                                                   "county_code",
                                                   "org_credit_code",
                                                   "org_name",
                                                   "area",
                                                   "project",
                                                   "activity_date",
                                                   "village_code",
                                                   "deep_poverty_village",
                                                   "beneficiaries",
                                                   "registered_poor",
                                                   "beneficiary_group",
                                                   "funds_yuan",
                                                   "goods_yuan",
                                                   "funding_source",
                                                   "online_fundraising",
                                                   "volunteers",
                                                   "volunteer_hours",
                                                   "social_workers",
                                                   "persons_lifted",
                                                   "jobs",
                                                   "trainees",
                                                   "income_increase_yuan",
                                                   "note",
                                                   "correction_of",
                                                   "retract"};
static const char *const s_col_zh[AS_COL_COUNT] = {
    "事件编号",     "县区代码",     "统一社会信用代码",   "组织名称",
    "帮扶领域",     "重点项目",     "活动日期",           "村代码",
    "深度贫困村",   "受益人数",     "建档立卡贫困人口数", "受益群体",
    "帮扶资金(元)", "物资折价(元)", "资金来源",           "网络募捐",
    "志愿者人数",   "志愿服务时长", "社会工作者人数",     "脱贫人数",
    "带动就业人数", "培训人次",     "增收金额(元)",       "备注",
    "更正事件编号", "撤回"};

const char *as_column_name_en(as_column_t c)
{
    return (unsigned)c < AS_COL_COUNT ? s_col_en[c] : "";
}

const char *as_column_name_zh(as_column_t c)
{
    return (unsigned)c < AS_COL_COUNT ? s_col_zh[c] : "";
}

static bool s_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims ASCII white space and the ideographic space U+3000 at both ends. */
static const char *s_trim(const char *s, size_t *len)
{
    size_t n = *len;
    /* most cells need nothing: neither end is a blank or the first byte of U+3000 */
    if (n && (unsigned char)s[0] > ' ' && (unsigned char)s[0] != 0xE3 &&
        (unsigned char)s[n - 1] > ' ' && (unsigned char)s[n - 1] != 0x80)
        return s;
    for (;;) {
        if (n && s_space((unsigned char)*s))
            s++, n--;
        else if (n >= 3 && memcmp(s, "\xe3\x80\x80", 3) == 0)
            s += 3, n -= 3;
        else
            break;
    }
    for (;;) {
        if (n && s_space((unsigned char)s[n - 1]))
            n--;
        else if (n >= 3 && memcmp(s + n - 3, "\xe3\x80\x80", 3) == 0)
            n -= 3;
        else
            break;
    }
    *len = n;
    return s;
}

/* Chinese headers as offices type them: full-width parentheses, "元" without parentheses. */
static void s_fold_header(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        if (i + 3 <= n && memcmp(s + i, "\xef\xbc\x88", 3) == 0) { /* （ */
            out[o++] = '(', i += 3;
        } else if (i + 3 <= n && memcmp(s + i, "\xef\xbc\x89", 3) == 0) { /* ） */
            out[o++] = ')', i += 3;
        } else if (s[i] == ' ') {
            i++;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
}

int as_column_lookup(const char *header)
{
    if (!header)
        return -1;
    size_t n = strlen(header);
    if (n >= 3 && memcmp(header, "\xef\xbb\xbf", 3) == 0) /* a BOM before the first header */
        header += 3, n -= 3;
    const char *s = s_trim(header, &n);
    char buf[96];
    if (n >= sizeof buf)
        return -1;
    for (int c = 0; c < AS_COL_COUNT; c++)
        if (strlen(s_col_en[c]) == n && strncasecmp(s, s_col_en[c], n) == 0)
            return c;
    s_fold_header(s, n, buf, sizeof buf);
    for (int c = 0; c < AS_COL_COUNT; c++)
        if (strcmp(buf, s_col_zh[c]) == 0)
            return c;
    /* Accepted variants: "帮扶资金" without the unit, "志愿服务时长(小时)". */
    static const struct {
        const char *name;
        int col;
    } alias[] = {{"帮扶资金", AS_COL_FUNDS_YUAN},
                 {"物资折价", AS_COL_GOODS_YUAN},
                 {"增收金额", AS_COL_INCOME_INCREASE_YUAN},
                 {"志愿服务时长(小时)", AS_COL_VOLUNTEER_HOURS},
                 {"是否深度贫困村", AS_COL_DEEP_POVERTY_VILLAGE},
                 {"是否网络募捐", AS_COL_ONLINE_FUNDRAISING},
                 {"是否撤回", AS_COL_RETRACT}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcmp(buf, alias[i].name) == 0)
            return alias[i].col;
    return -1;
}

typedef struct {
    const char *en, *zh;
} s_names_t;

static const s_names_t s_area[AS_AREA_COUNT] = {{"", ""},
                                                {"deep_village", "深度贫困村"},
                                                {"industry", "产业扶贫"},
                                                {"education", "教育扶贫"},
                                                {"health", "健康扶贫"},
                                                {"relocation", "易地扶贫搬迁"},
                                                {"capacity_care", "能力建设和关爱保障"},
                                                {"other", "其他"}};
static const s_names_t s_project[AS_PROJECT_COUNT] = {{"", ""},
                                                      {"pairing", "结对扶贫"},
                                                      {"revitalization", "乡村振兴示范"},
                                                      {"social_work", "社会工作专项"},
                                                      {"volunteer_contest", "志愿服务项目大赛"}};
static const s_names_t s_group[AS_GROUP_COUNT] = {{"", ""},
                                                  {"registered_poor", "建档立卡贫困户"},
                                                  {"low_income", "低保对象"},
                                                  {"extreme_poor", "特困人员"},
                                                  {"disabled", "残疾人"},
                                                  {"left_behind_children", "留守儿童"},
                                                  {"elderly", "老年人"},
                                                  {"women", "妇女"},
                                                  {"other", "其他"}};
static const s_names_t s_funding[AS_FUNDING_COUNT] = {{"", ""},
                                                      {"government_purchase", "政府购买服务"},
                                                      {"charity", "慈善捐赠"},
                                                      {"own", "自有资金"},
                                                      {"other", "其他"}};

#define S_NAME(tab, v, field) ((unsigned)(v) < sizeof tab / sizeof tab[0] ? tab[v].field : "")
const char *as_area_name(as_area_t a)
{
    return S_NAME(s_area, a, en);
}
const char *as_area_name_zh(as_area_t a)
{
    return S_NAME(s_area, a, zh);
}
const char *as_project_name(as_project_t p)
{
    return S_NAME(s_project, p, en);
}
const char *as_project_name_zh(as_project_t p)
{
    return S_NAME(s_project, p, zh);
}
const char *as_group_name(as_group_t g)
{
    return S_NAME(s_group, g, en);
}
const char *as_group_name_zh(as_group_t g)
{
    return S_NAME(s_group, g, zh);
}
const char *as_funding_name(as_funding_t f)
{
    return S_NAME(s_funding, f, en);
}
const char *as_funding_name_zh(as_funding_t f)
{
    return S_NAME(s_funding, f, zh);
}

/* The value of an enum cell (English, any case, or Chinese), 0 when not one of them. */
static int s_enum(const s_names_t *tab, int count, const char *s, size_t n)
{
    char en[32]; /* "Capacity Care", "capacity-care" → "capacity_care" */
    size_t k = 0;
    for (; k < n && k < sizeof en; k++)
        en[k] = s[k] == ' ' || s[k] == '-' ? '_' : s[k];
    for (int i = 1; i < count; i++)
        if ((strlen(tab[i].en) == n && n <= sizeof en && (en[0] | 0x20) == tab[i].en[0] &&
             strncasecmp(en, tab[i].en, n) == 0) ||
            (strlen(tab[i].zh) == n && memcmp(s, tab[i].zh, n) == 0))
            return i;
    return 0;
}

uint32_t as_today_cst(void)
{
    time_t t = time(NULL) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    return (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

/* ---- errors ------------------------------------------------------------------------------- */

static bool s_text_ok(const char *s, size_t n, bool multiline);

/* Copies at most cap-1 bytes of s without cutting a UTF-8 sequence; "…" marks a cut. */
static void s_copy_value(char *dst, size_t cap, const char *s, size_t n)
{
    if (!s)
        s = "", n = 0;
    if (n < cap) {
        memcpy(dst, s, n);
        dst[n] = 0;
    } else {
        size_t k = cap - 4; /* room for "…" (3 bytes) and NUL */
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        memcpy(dst, s, k);
        memcpy(dst + k, "\xe2\x80\xa6", 4);
    }
    /* keep error lines one line each, and the value valid UTF-8 whatever the input was */
    for (unsigned char *p = (unsigned char *)dst; *p;) {
        if (*p < 0x20 || *p == 0x7f) {
            *p++ = ' ';
            continue;
        }
        size_t k = *p < 0x80                  ? 0
                   : *p >= 0xC2 && *p <= 0xDF ? 1
                   : *p >= 0xE0 && *p <= 0xEF ? 2
                   : *p >= 0xF0 && *p <= 0xF4 ? 3
                                              : 9;
        size_t j = 1;
        while (k != 9 && j <= k && (p[j] & 0xC0) == 0x80)
            j++;
        if (k == 9 || j <= k || !s_text_ok((const char *)p, k + 1, false)) {
            *p++ = '?';
            continue;
        }
        p += k + 1;
    }
}

static void s_err(as_row_errors_t *errs, int col, const char *v, size_t vn, const char *zh,
                  const char *en)
{
    if (errs->n < AS_MAX_ROW_ERRORS) {
        as_field_error_t *e = &errs->e[errs->n];
        snprintf(e->column, sizeof e->column, "%s", col >= 0 ? s_col_en[col] : "");
        s_copy_value(e->value, sizeof e->value, v, v ? vn : 0);
        snprintf(e->reason_zh, sizeof e->reason_zh, "%s", zh);
        snprintf(e->reason_en, sizeof e->reason_en, "%s", en);
    }
    errs->n++;
}

/* ---- field parsers ------------------------------------------------------------------------ */

enum { P_OK = 0, P_SYNTAX, P_NEGATIVE, P_DECIMALS, P_RANGE };

#define S_COUNT_MAX 1000000000000ULL   /* 10^12: far above any real count */
#define S_MONEY_MAX 1000000000000000LL /* 10^15 fen = 10^13 yuan */

/* A non-negative decimal with at most maxdec decimals, scaled by 10^maxdec, no floating point.
 * Accepts thousands separators in well-formed groups ("1,234.50") as Excel may write them. */
static int s_decimal(const char *s, size_t n, int maxdec, uint64_t max, uint64_t *out)
{
    if (n == 0)
        return P_SYNTAX;
    if (*s == '-' && n > 1)
        return P_NEGATIVE;
    uint64_t v = 0;
    size_t i = 0, digits = 0, group = 0;
    bool commas = false, over = false;
    for (; i < n && s[i] != '.'; i++) {
        if (s[i] == ',') {
            if (digits == 0 || (commas && group != 3) || (!commas && group > 3))
                return P_SYNTAX;
            commas = true, group = 0;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            return P_SYNTAX;
        if (v > max)
            over = true;
        else
            v = v * 10 + (uint64_t)(s[i] - '0');
        digits++, group++;
    }
    if (digits == 0 || (commas && group != 3))
        return P_SYNTAX;
    int dec = 0;
    if (i < n) { /* '.' */
        i++;
        if (i == n)
            return P_SYNTAX;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return P_SYNTAX;
            if (++dec > maxdec)
                return P_DECIMALS;
            if (v <= max)
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
    }
    for (; dec < maxdec; dec++)
        if (v <= max)
            v *= 10;
    if (over || v > max)
        return P_RANGE;
    *out = v;
    return P_OK;
}

static bool s_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool s_real_date(unsigned y, unsigned m, unsigned d)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && s_leap(y));
}

static size_t s_digits(const char *s, size_t n, size_t max, unsigned *v)
{
    size_t i = 0;
    *v = 0;
    while (i < n && i < max && s[i] >= '0' && s[i] <= '9')
        *v = *v * 10 + (unsigned)(s[i++] - '0');
    return i;
}

/* YYYY-MM-DD or YYYY/M/D (Excel; optionally followed by a midnight time such as " 0:00"). Returns
 * P_OK with *ymd, P_SYNTAX, or P_RANGE for a date that does not exist. */
static int s_date(const char *s, size_t n, uint32_t *ymd)
{
    unsigned y, m, d;
    size_t i = s_digits(s, n, 4, &y);
    {
        if (i != 4 || i >= n || (s[i] != '-' && s[i] != '/'))
            return P_SYNTAX;
        char sep = s[i++];
        size_t k = s_digits(s + i, n - i, 2, &m);
        if (k == 0 || i + k >= n || s[i + k] != sep)
            return P_SYNTAX;
        i += k + 1;
        k = s_digits(s + i, n - i, 2, &d);
        if (k == 0)
            return P_SYNTAX;
        i += k;
        if (i < n) { /* a time part: only midnight ("0:00", "00:00:00") carries no meaning */
            if (s[i] != ' ' && s[i] != 'T')
                return P_SYNTAX;
            for (i++; i < n; i++)
                if (s[i] != '0' && s[i] != ':')
                    return P_SYNTAX;
        }
    }
    if (!s_real_date(y, m, d))
        return P_RANGE;
    *ymd = y * 10000 + m * 100 + d;
    return P_OK;
}

/* Booleans: 是/否, 1/0, yes/no, true/false, y/n, 有/无; empty is false. -1 when none. */
static int s_bool(const char *s, size_t n)
{
    static const char *yes[] = {"是", "1", "yes", "true", "y", "有"};
    static const char *no[] = {"否", "0", "no", "false", "n", "无"};
    if (n == 0)
        return 0;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
            return 1;
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0)
            return 0;
    }
    return -1;
}

/* True when s is well-formed UTF-8 without control characters (tab and newline allowed when
 * multiline). */
static bool s_text_ok(const char *s, size_t n, bool multiline)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if ((c < 0x20 && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7f)
                return false;
            p++;
            continue;
        }
        size_t k;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF)
            k = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += k + 1;
    }
    return true;
}

/* ---- the personal-data guard -------------------------------------------------------------- */

static bool s_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

/* GB 11643: 6-digit region, birth date, 3-digit sequence, ISO 7064 MOD 11-2 check character. */
static bool s_resident_id(const char *p)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (p[i] - '0') * w[i];
    char c = p[17] == 'x' ? 'X' : p[17];
    if (check[sum % 11] != c)
        return false;
    if (p[0] < '1' || p[0] > '8')
        return false;
    unsigned y = 0, m = 0, d = 0;
    for (int i = 6; i < 10; i++)
        y = y * 10 + (unsigned)(p[i] - '0');
    m = (unsigned)(p[10] - '0') * 10 + (unsigned)(p[11] - '0');
    d = (unsigned)(p[12] - '0') * 10 + (unsigned)(p[13] - '0');
    return y >= 1900 && y <= 2099 && s_real_date(y, m, d);
}

/* A mainland mobile number starting at j (which follows no digit): 11 digits 1[3-9]... not
 * followed by a digit, or 3-4-4 groups separated by the same blank or dash. */
static bool s_mobile_at(const char *s, size_t n, size_t j)
{
    if (j + 3 > n || s[j] != '1' || s[j + 1] < '3' || s[j + 1] > '9' || !s_isdigit(s[j + 2]))
        return false;
    size_t run = j;
    while (run < n && s_isdigit(s[run]))
        run++;
    if (run - j == 11)
        return true;
    if (run - j != 3 || run + 10 > n || (s[run] != '-' && s[run] != ' ') || s[run + 5] != s[run])
        return false;
    for (size_t k = 1; k <= 9; k++)
        if (k != 5 && !s_isdigit(s[run + k]))
            return false;
    return !(run + 10 < n && s_isdigit(s[run + 10]));
}

/* Finds a resident ID or a mainland mobile number in text. Returns 1 for an ID, 2 for a mobile
 * number, 0 for none; *at receives the offset. A number must stand alone: not part of a longer
 * run of digits (so bank references and long serials do not trip it). Mobile numbers may be
 * written 138-1234-5678, 138 1234 5678 or +86 13812345678. */
static int s_find_personal(const char *s, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        if (!s_isdigit(s[i]) || (i > 0 && s_isdigit(s[i - 1])))
            continue;
        size_t run = i;
        while (run < n && s_isdigit(s[run]))
            run++;
        size_t len = run - i;
        if (len == 17 && run < n && (s[run] == 'X' || s[run] == 'x') &&
            !(run + 1 < n && (s_isdigit(s[run + 1]) || s[run + 1] == 'X' || s[run + 1] == 'x')) &&
            s_resident_id(s + i)) {
            *at = i;
            return 1;
        }
        if (len == 18 && s_resident_id(s + i)) {
            *at = i;
            return 1;
        }
        /* a mobile number, also after "+86", "+86 " or "+86-" */
        size_t j = i;
        bool plus86 = i > 0 && s[i - 1] == '+' && len >= 2 && s[i] == '8' && s[i + 1] == '6';
        if (plus86 && len == 2 && run + 1 < n && (s[run] == ' ' || s[run] == '-'))
            j = run + 1;
        else if (plus86 && len == 13)
            j = i + 2;
        if (s_mobile_at(s, n, j)) {
            *at = plus86 ? i - 1 : i;
            return 2;
        }
        i = run - 1;
    }
    return 0;
}

/* ---- ids ---------------------------------------------------------------------------------- */

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void as_id_to_hex(const uint8_t id[AS_ID_LEN], char out[33])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < AS_ID_LEN; i++) {
        out[2 * i] = d[id[i] >> 4];
        out[2 * i + 1] = d[id[i] & 15];
    }
    out[32] = 0;
}

static void s_put_county(uint32_t county, uint8_t *out)
{
    out[0] = (uint8_t)(county >> 16);
    out[1] = (uint8_t)(county >> 8);
    out[2] = (uint8_t)county;
}

/* The ordered part of a derived id: days from 2000-01-01 to the activity date (1..0xfeff, i.e.
 * until 2178; 0 for a date before 2000). A first byte 0xff is never a day's: it begins the ids
 * named by the office's text. */
static uint16_t s_id_day(uint32_t ymd)
{
    int y = (int)(ymd / 10000), m = (int)(ymd / 100 % 100), d = (int)(ymd % 100);
    if (y < 2000 || m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    /* days from civil (proleptic Gregorian), March-based year */
    y -= m <= 2;
    int era = y / 400, yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long days = (long)era * 146097 + (long)yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long base = 730425; /* the same for 2000-01-01 */
    long n = days - base + 1;
    return (uint16_t)(n < 1 ? 0 : n > 0xfeff ? 0xfeff : n);
}

void as_event_id_for(uint32_t county, const char *event_id, uint8_t out[AS_ID_LEN])
{
    size_t n = strlen(event_id);
    if (n == 2 * AS_ID_LEN) {
        uint8_t id[AS_ID_LEN];
        size_t i = 0;
        for (; i < AS_ID_LEN; i++) {
            int hi = s_hexval(event_id[2 * i]), lo = s_hexval(event_id[2 * i + 1]);
            if (hi < 0 || lo < 0)
                break;
            id[i] = (uint8_t)(hi << 4 | lo);
        }
        uint8_t c[3];
        s_put_county(county, c);
        /* A wire id of this county: taken as is (an office's own 32-hex ids of another shape
         * are hashed like any other id). */
        if (i == AS_ID_LEN && memcmp(id, c, 3) == 0) {
            memcpy(out, id, AS_ID_LEN);
            return;
        }
    }
    /* Offices number their rows ("360730-2026-000041"): the text's trailing number comes early
     * in the id, after a byte of the hash of what precedes it, so that a series' ids sort by
     * their number and a file's rows land on a few runs of the ledger's dedup table; 6 bytes
     * of BLAKE2b over "CCCCCC|text" keep distinct texts apart (two texts collide only with the
     * same series byte, the same number and the same 48-bit hash). */
    size_t stem = n;
    while (stem > 0 && n - stem < 12 && event_id[stem - 1] >= '0' && event_id[stem - 1] <= '9')
        stem--;
    uint64_t num = 0;
    for (size_t i = stem; i < n; i++)
        num = num * 10 + (uint64_t)(event_id[i] - '0');
    crypto_generichash_state st;
    uint8_t h[16], sh[16];
    char cty[16];
    int cn = snprintf(cty, sizeof cty, "%06u|", (unsigned)county);
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)cty, (size_t)cn);
    crypto_generichash_update(&st, (const uint8_t *)event_id, n);
    crypto_generichash_final(&st, h, sizeof h);
    crypto_generichash(sh, sizeof sh, (const uint8_t *)event_id, stem, NULL, 0);
    s_put_county(county, out);
    out[3] = 0xff; /* not a day: apart from the derived ids (see s_id_day) */
    out[4] = sh[0];
    for (int i = 0; i < 5; i++) /* the number, big-endian, modulo 2^40 (12 digits fit) */
        out[5 + i] = (uint8_t)(num >> (8 * (4 - i)));
    memcpy(out + 10, h, AS_ID_LEN - 10);
}

/* Appends integers big-endian and strings length-prefixed: an unambiguous canonical form. */
typedef struct {
    uint8_t buf[512];
    size_t n;
} s_canon_t;

static void s_cu(s_canon_t *c, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        c->buf[c->n++] = (uint8_t)(v >> (8 * i));
}

static void s_cs(s_canon_t *c, const char *s)
{
    size_t n = strlen(s);
    s_cu(c, n);
    memcpy(c->buf + c->n, s, n);
    c->n += n;
}

void as_event_derive_id(as_event_t *ev)
{
    if (ev->event_id[0]) {
        as_event_id_for(ev->county, ev->event_id, ev->id);
        return;
    }
    /* Canonical values, not the row's text: "1.5" and "1.50" give the same id. The note is left
     * out (an office that fixes a note and drops the file again must not count the activity
     * twice), as are flags, source_file and source_row. */
    s_canon_t c = {.n = 0};
    memcpy(c.buf, "aidstat.v1.content", 18);
    c.n = 18;
    s_cu(&c, ev->county);
    s_cs(&c, ev->org_code);
    s_cs(&c, ev->org_name);
    s_cu(&c, (uint64_t)ev->area << 24 | (uint64_t)ev->project << 16 | (uint64_t)ev->group << 8 |
                 ev->funding);
    s_cu(&c, ev->date);
    s_cs(&c, ev->village);
    s_cu(&c, (uint64_t)ev->deep_village << 16 | (uint64_t)ev->online_fundraising << 8 |
                 (uint64_t)ev->retract);
    s_cu(&c, ev->beneficiaries);
    s_cu(&c, ev->registered_poor);
    s_cu(&c, (uint64_t)ev->funds_fen);
    s_cu(&c, (uint64_t)ev->goods_fen);
    s_cu(&c, ev->volunteers);
    s_cu(&c, ev->volunteer_tenths);
    s_cu(&c, ev->social_workers);
    s_cu(&c, ev->persons_lifted);
    s_cu(&c, ev->jobs);
    s_cu(&c, ev->trainees);
    s_cu(&c, (uint64_t)ev->income_fen);
    s_cu(&c, ev->has_correction);
    if (ev->has_correction) {
        memcpy(c.buf + c.n, ev->correction_of, AS_ID_LEN);
        c.n += AS_ID_LEN;
    }
    uint8_t h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, c.buf, c.n);
    crypto_generichash_final(&st, h, sizeof h);
    s_put_county(ev->county, ev->id);
    uint16_t day = s_id_day(ev->date);
    ev->id[3] = (uint8_t)(day >> 8);
    ev->id[4] = (uint8_t)day;
    memcpy(ev->id + 5, h, AS_ID_LEN - 5);
}

/* ---- shared checks (row and decoded event) ------------------------------------------------ */

/* County: a current county-level division of the province, and the collector's own. */
static void s_check_county(uint32_t county, const as_validate_ctx_t *ctx, const char *v, size_t vn,
                           as_row_errors_t *errs)
{
    char zh[160], en[160];
    if (!as_division_is_county(county)) {
        uint32_t cur = as_division_current(county);
        if (cur && cur != county && as_division_is_county(cur)) {
            const as_division_t *d = as_division_find(cur);
            snprintf(zh, sizeof zh, "已撤销的区划代码,现为 %06u %s", (unsigned)cur, d->name);
            snprintf(en, sizeof en, "a retired division code; the current code is %06u (%s)",
                     (unsigned)cur, d->name);
            s_err(errs, AS_COL_COUNTY_CODE, v, vn, zh, en);
        } else
            s_err(errs, AS_COL_COUNTY_CODE, v, vn, "不是江西省的县级行政区划代码",
                  "not a county-level division code of Jiangxi (GB/T 2260)");
        return;
    }
    if (ctx && ctx->county && county != ctx->county) {
        snprintf(zh, sizeof zh, "县区代码应为本采集端的 %06u", (unsigned)ctx->county);
        snprintf(en, sizeof en, "this collector takes county %06u only", (unsigned)ctx->county);
        s_err(errs, AS_COL_COUNTY_CODE, v, vn, zh, en);
    }
}

/* Credit code (upper case, NUL-terminated): returns the flags to add, reports errors. */
static uint32_t s_check_code(const char *code, const as_validate_ctx_t *ctx, bool flagged,
                             as_row_errors_t *errs)
{
    as_uscc_status_t st = as_uscc_check(code);
    if (st == AS_USCC_OK)
        return 0;
    if (st == AS_USCC_CHECK) {
        /* Some early codes fail the check character: accepted when the registry has them. An
         * event decoded from the wire without a registry look-up keeps the collector's flag. */
        bool ok = ctx && ctx->in_registry ? ctx->in_registry(ctx->registry_ctx, code) : flagged;
        if (ok)
            return AS_FLAG_CHECK_CHAR_FAILED;
        s_err(errs, AS_COL_ORG_CREDIT_CODE, code, strlen(code),
              "统一社会信用代码校验码错误,且该组织不在登记名录中",
              "wrong check character (GB 32100-2015) and the organisation is not in the registry");
        return 0;
    }
    s_err(errs, AS_COL_ORG_CREDIT_CODE, code, strlen(code), as_uscc_reason_zh(st),
          as_uscc_reason_en(st));
    return 0;
}

static void s_check_date(uint32_t date, const as_validate_ctx_t *ctx, const char *v, size_t vn,
                         as_row_errors_t *errs)
{
    if (ctx && ctx->today && date > ctx->today)
        s_err(errs, AS_COL_ACTIVITY_DATE, v, vn, "活动日期晚于今天", "the date is in the future");
    else if (date < 20000101)
        s_err(errs, AS_COL_ACTIVITY_DATE, v, vn, "活动日期早于2000年", "the date is before 2000");
}

/* Village: 12 digits starting with the county's code; the township (digits 7-9) in the 2020
 * township table: 001-099 subdistricts, 100-199 towns, 200-399 townships, 400-599 units that are
 * both an enterprise and a government (reclamation farms, forest farms, management offices:
 * 207 of Jiangxi's 1,771); the village part (10-12) 001-599 (residents' and village committees
 * and the units like them, as those farms have). */
static void s_check_village(const char *v, size_t n, uint32_t county, as_row_errors_t *errs)
{
    bool digits = n == AS_VILLAGE_LEN;
    for (size_t i = 0; digits && i < n; i++)
        digits = s_isdigit(v[i]);
    if (!digits) {
        s_err(errs, AS_COL_VILLAGE_CODE, v, n, "村代码应为12位数字",
              "a village code has 12 digits");
        return;
    }
    char cty[6];
    for (int i = 5, c = (int)county; i >= 0; i--, c /= 10)
        cty[i] = (char)('0' + c % 10);
    if (county > 999999 || memcmp(v, cty, 6) != 0) {
        s_err(errs, AS_COL_VILLAGE_CODE, v, n, "村代码应以县区代码开头",
              "a village code starts with its county's code");
        return;
    }
    unsigned town = (unsigned)((v[6] - '0') * 100 + (v[7] - '0') * 10 + (v[8] - '0'));
    unsigned vil = (unsigned)((v[9] - '0') * 100 + (v[10] - '0') * 10 + (v[11] - '0'));
    if (town < 1 || town > 599 || !as_division_township_exists(county, town))
        s_err(errs, AS_COL_VILLAGE_CODE, v, n, "村代码第7-9位不是本县的乡镇街道",
              "digits 7-9 are not a township (001-599) of this county (2020 table)");
    else if (vil < 1 || vil > 599)
        s_err(errs, AS_COL_VILLAGE_CODE, v, n, "村代码第10-12位应在001-599之间",
              "digits 10-12 must be 001-599 (a residents' or village committee, or a unit like "
              "one)");
}

/* Full-width digits, X and dash (as Chinese input methods type them) folded to ASCII, so the
 * guard sees "１３８１２３４５６７８" as a number. Returns the folded length. */
static size_t s_fold_digits(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)s + i;
        if (i + 3 <= n && p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) {
            out[o++] = (char)('0' + (p[2] - 0x90)), i += 3; /* ０-９ */
        } else if (i + 3 <= n && p[0] == 0xEF &&
                   ((p[1] == 0xBC && p[2] == 0xB8) || (p[1] == 0xBD && p[2] == 0x98))) {
            out[o++] = 'X', i += 3; /* Ｘ ｘ */
        } else if (i + 3 <= n && p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8D) {
            out[o++] = '-', i += 3; /* － */
        } else if (i + 3 <= n && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) {
            out[o++] = ' ', i += 3; /* ideographic space */
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

static int s_guard(const char *text, size_t len, size_t *at)
{
    static _Thread_local char stack[4096];
    char *buf = len <= sizeof stack ? stack : malloc(len);
    if (!buf) /* out of memory: look at the text as it is */
        return s_find_personal(text, len, at);
    size_t n = s_fold_digits(text, len, buf);
    int kind = s_find_personal(buf, n, at);
    if (buf != stack)
        free(buf);
    return kind;
}

int as_note_guard(const char *text, size_t len)
{
    size_t at;
    return text ? s_guard(text, len, &at) : AS_GUARD_NONE;
}

static void s_check_note(const char *s, size_t n, as_row_errors_t *errs)
{
    bool text = s_text_ok(s, n, true);
    size_t at = n;
    int kind = text ? s_guard(s, n, &at) : AS_GUARD_NONE;
    /* Every value shown is cut before a number found (folding only shortens text, so the offset
     * is at or before it in the original): an error file must not repeat it either. */
    while (at > 0 && at < n && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--;
    size_t shown = kind ? at : n;
    if (n > AS_NOTE_MAX) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "备注过长(%zu字节,最多%d字节)", n, AS_NOTE_MAX);
        snprintf(en, sizeof en, "the note is too long (%zu bytes, at most %d)", n, AS_NOTE_MAX);
        s_err(errs, AS_COL_NOTE, s, shown, zh, en);
    }
    if (!text)
        s_err(errs, AS_COL_NOTE, s, n, "备注含有无效字符或编码", "the note is not valid text");
    else if (kind == AS_GUARD_RESIDENT_ID)
        s_err(errs, AS_COL_NOTE, s, shown, "备注含有身份证号码,不得填写个人信息",
              "the note holds a resident ID number: personal data is not allowed");
    else if (kind == AS_GUARD_MOBILE)
        s_err(errs, AS_COL_NOTE, s, shown, "备注含有手机号码,不得填写个人信息",
              "the note holds a mobile phone number: personal data is not allowed");
}

static void s_check_text(int col, const char *s, size_t n, size_t max, bool required,
                         as_row_errors_t *errs)
{
    char zh[160], en[160];
    if (required && n == 0) {
        s_err(errs, col, s, n, "必填项为空", "required, but empty");
    } else if (n > max) {
        snprintf(zh, sizeof zh, "过长(最多%zu字节)", max);
        snprintf(en, sizeof en, "too long (at most %zu bytes)", max);
        s_err(errs, col, s, n, zh, en);
    } else if (!s_text_ok(s, n, false)) {
        s_err(errs, col, s, n, "含有无效字符或编码",
              "not valid text (control character or encoding)");
    }
}

static void s_check_cross(const as_event_t *ev, bool counts_ok, as_row_errors_t *errs,
                          const char *rp, size_t rpn)
{
    if (counts_ok && ev->registered_poor > ev->beneficiaries)
        s_err(errs, AS_COL_REGISTERED_POOR, rp, rpn, "建档立卡贫困人口数不能大于受益人数",
              "registered_poor must not exceed beneficiaries");
    if (ev->retract && !ev->has_correction)
        s_err(errs, AS_COL_RETRACT, "是", 3, "撤回时须填写更正事件编号",
              "a retraction must name the event in correction_of");
}

/* Puts the kept errors in column order (row-level ones last), stable. */
static void s_sort_errors(as_row_errors_t *errs)
{
    size_t n = errs->n < AS_MAX_ROW_ERRORS ? errs->n : AS_MAX_ROW_ERRORS;
    int key[AS_MAX_ROW_ERRORS];
    for (size_t i = 0; i < n; i++)
        key[i] = errs->e[i].column[0] ? as_column_lookup(errs->e[i].column) : AS_COL_COUNT;
    for (size_t i = 1; i < n; i++) {
        as_field_error_t e = errs->e[i];
        int k = key[i];
        size_t j = i;
        for (; j > 0 && key[j - 1] > k; j--) {
            errs->e[j] = errs->e[j - 1];
            key[j] = key[j - 1];
        }
        errs->e[j] = e;
        key[j] = k;
    }
}

/* ---- a row -------------------------------------------------------------------------------- */

static const char *s_cell(const as_row_t *row, int c, size_t *n)
{
    const char *s = row->cell[c];
    if (!s) {
        *n = 0;
        return "";
    }
    *n = row->len[c];
    return s_trim(s, n);
}

static void s_number_err(as_row_errors_t *errs, int col, const char *s, size_t n, int rc,
                         int maxdec)
{
    switch (rc) {
    case P_NEGATIVE:
        s_err(errs, col, s, n, "不能为负数", "must not be negative");
        break;
    case P_DECIMALS:
        if (maxdec == 0)
            s_err(errs, col, s, n, "应为整数", "must be a whole number");
        else if (maxdec == 1)
            s_err(errs, col, s, n, "最多1位小数", "at most 1 decimal");
        else
            s_err(errs, col, s, n, "金额最多2位小数(分)", "at most 2 decimals (fen)");
        break;
    case P_RANGE:
        s_err(errs, col, s, n, "数值过大", "the number is too large");
        break;
    default:
        s_err(errs, col, s, n, "不是有效的数字", "not a number");
    }
}

static uint64_t s_count(const as_row_t *row, int col, as_row_errors_t *errs)
{
    size_t n;
    const char *s = s_cell(row, col, &n);
    uint64_t v = 0;
    if (n == 0)
        return 0;
    int rc = s_decimal(s, n, 0, S_COUNT_MAX, &v);
    if (rc != P_OK)
        s_number_err(errs, col, s, n, rc, 0);
    return v;
}

static int64_t s_money(const as_row_t *row, int col, as_row_errors_t *errs)
{
    size_t n;
    const char *s = s_cell(row, col, &n);
    uint64_t v = 0;
    if (n == 0)
        return 0;
    int rc = s_decimal(s, n, 2, S_MONEY_MAX, &v);
    if (rc != P_OK)
        s_number_err(errs, col, s, n, rc, 2);
    return (int64_t)v;
}

static bool s_flag_cell(const as_row_t *row, int col, as_row_errors_t *errs)
{
    size_t n;
    const char *s = s_cell(row, col, &n);
    int b = s_bool(s, n);
    if (b < 0)
        s_err(errs, col, s, n, "应填 是 或 否", "must be yes or no (是/否, 1/0)");
    return b == 1;
}

static int s_enum_cell(const as_row_t *row, int col, const s_names_t *tab, int count, bool required,
                       as_row_errors_t *errs)
{
    size_t n;
    const char *s = s_cell(row, col, &n);
    if (n == 0) {
        if (required)
            s_err(errs, col, s, n, "必填项为空", "required, but empty");
        return 0;
    }
    int v = s_enum(tab, count, s, n);
    if (v == 0) {
        char zh[160], en[160];
        size_t oz = (size_t)snprintf(zh, sizeof zh, "应为:");
        size_t oe = (size_t)snprintf(en, sizeof en, "must be one of:");
        for (int i = 1; i < count; i++) {
            if (oz < sizeof zh)
                oz +=
                    (size_t)snprintf(zh + oz, sizeof zh - oz, "%s%s", i > 1 ? "、" : "", tab[i].zh);
            if (oe < sizeof en)
                oe += (size_t)snprintf(en + oe, sizeof en - oe, " %s", tab[i].en);
        }
        s_err(errs, col, s, n, zh, en);
    }
    return v;
}

int as_event_from_row(const as_row_t *row, const as_validate_ctx_t *ctx, as_event_t *ev,
                      as_row_errors_t *errs)
{
    memset(ev, 0, offsetof(as_event_t, note));
    ev->note[0] = 0;
    memset(ev->source_file, 0, sizeof ev->source_file);
    ev->source_row = 0;
    errs->n = 0;
    size_t n;
    const char *s;

    s = s_cell(row, AS_COL_EVENT_ID, &n);
    s_check_text(AS_COL_EVENT_ID, s, n, AS_EVENT_ID_MAX, false, errs);
    if (n <= AS_EVENT_ID_MAX)
        memcpy(ev->event_id, s, n), ev->event_id[n] = 0;

    const char *cs = s_cell(row, AS_COL_COUNTY_CODE, &n);
    unsigned county = 0;
    if (n == 0)
        s_err(errs, AS_COL_COUNTY_CODE, cs, n, "必填项为空", "required, but empty");
    else if (n != 6 || s_digits(cs, n, 6, &county) != 6)
        s_err(errs, AS_COL_COUNTY_CODE, cs, n, "县区代码应为6位数字", "a county code has 6 digits");
    else
        s_check_county(county, ctx, cs, n, errs);
    ev->county = county;

    s = s_cell(row, AS_COL_ORG_CREDIT_CODE, &n);
    if (n == 0)
        s_err(errs, AS_COL_ORG_CREDIT_CODE, s, n, "必填项为空", "required, but empty");
    else if (n != AS_CODE_LEN)
        s_err(errs, AS_COL_ORG_CREDIT_CODE, s, n, as_uscc_reason_zh(AS_USCC_LENGTH),
              as_uscc_reason_en(AS_USCC_LENGTH));
    else {
        for (size_t i = 0; i < n; i++)
            ev->org_code[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
        ev->org_code[n] = 0;
        ev->flags |= s_check_code(ev->org_code, ctx, false, errs);
    }

    s = s_cell(row, AS_COL_ORG_NAME, &n);
    s_check_text(AS_COL_ORG_NAME, s, n, AS_NAME_MAX, true, errs);
    if (n <= AS_NAME_MAX)
        memcpy(ev->org_name, s, n), ev->org_name[n] = 0;

    ev->area = (uint8_t)s_enum_cell(row, AS_COL_AREA, s_area, AS_AREA_COUNT, true, errs);
    ev->project =
        (uint8_t)s_enum_cell(row, AS_COL_PROJECT, s_project, AS_PROJECT_COUNT, false, errs);
    ev->group =
        (uint8_t)s_enum_cell(row, AS_COL_BENEFICIARY_GROUP, s_group, AS_GROUP_COUNT, false, errs);
    ev->funding =
        (uint8_t)s_enum_cell(row, AS_COL_FUNDING_SOURCE, s_funding, AS_FUNDING_COUNT, false, errs);

    s = s_cell(row, AS_COL_ACTIVITY_DATE, &n);
    if (n == 0)
        s_err(errs, AS_COL_ACTIVITY_DATE, s, n, "必填项为空", "required, but empty");
    else {
        int rc = s_date(s, n, &ev->date);
        if (rc == P_SYNTAX)
            s_err(errs, AS_COL_ACTIVITY_DATE, s, n, "日期格式应为 YYYY-MM-DD 或 YYYY/M/D",
                  "a date is written YYYY-MM-DD or YYYY/M/D");
        else if (rc == P_RANGE)
            s_err(errs, AS_COL_ACTIVITY_DATE, s, n, "不存在的日期", "no such date");
        else
            s_check_date(ev->date, ctx, s, n, errs);
    }

    s = s_cell(row, AS_COL_VILLAGE_CODE, &n);
    if (n) {
        if (county && as_division_is_county(county))
            s_check_village(s, n, county, errs);
        if (n == AS_VILLAGE_LEN)
            memcpy(ev->village, s, n), ev->village[n] = 0;
    }
    ev->deep_village = s_flag_cell(row, AS_COL_DEEP_POVERTY_VILLAGE, errs);
    ev->online_fundraising = s_flag_cell(row, AS_COL_ONLINE_FUNDRAISING, errs);
    ev->retract = s_flag_cell(row, AS_COL_RETRACT, errs);

    size_t before = errs->n;
    ev->beneficiaries = s_count(row, AS_COL_BENEFICIARIES, errs);
    ev->registered_poor = s_count(row, AS_COL_REGISTERED_POOR, errs);
    bool counts_ok = errs->n == before;
    ev->volunteers = s_count(row, AS_COL_VOLUNTEERS, errs);
    ev->social_workers = s_count(row, AS_COL_SOCIAL_WORKERS, errs);
    ev->persons_lifted = s_count(row, AS_COL_PERSONS_LIFTED, errs);
    ev->jobs = s_count(row, AS_COL_JOBS, errs);
    ev->trainees = s_count(row, AS_COL_TRAINEES, errs);
    ev->funds_fen = s_money(row, AS_COL_FUNDS_YUAN, errs);
    ev->goods_fen = s_money(row, AS_COL_GOODS_YUAN, errs);
    ev->income_fen = s_money(row, AS_COL_INCOME_INCREASE_YUAN, errs);
    s = s_cell(row, AS_COL_VOLUNTEER_HOURS, &n);
    if (n) {
        int rc = s_decimal(s, n, 1, S_COUNT_MAX, &ev->volunteer_tenths);
        if (rc != P_OK)
            s_number_err(errs, AS_COL_VOLUNTEER_HOURS, s, n, rc, 1);
    }

    s = s_cell(row, AS_COL_NOTE, &n);
    s_check_note(s, n, errs);
    if (n <= AS_NOTE_MAX)
        memcpy(ev->note, s, n), ev->note[n] = 0;

    s = s_cell(row, AS_COL_CORRECTION_OF, &n);
    if (n) {
        s_check_text(AS_COL_CORRECTION_OF, s, n, AS_EVENT_ID_MAX, false, errs);
        if (n <= AS_EVENT_ID_MAX) {
            char tmp[AS_EVENT_ID_MAX + 1];
            memcpy(tmp, s, n), tmp[n] = 0;
            ev->has_correction = true;
            if (!(ctx && ctx->skip_id))
                as_event_id_for(county, tmp, ev->correction_of);
            if (ev->event_id[0] && strcmp(tmp, ev->event_id) == 0)
                s_err(errs, AS_COL_CORRECTION_OF, s, n, "不能更正事件自身",
                      "an event cannot correct itself");
        }
    }
    s = s_cell(row, AS_COL_REGISTERED_POOR, &n);
    s_check_cross(ev, counts_ok, errs, s, n);

    if (errs->n) {
        s_sort_errors(errs);
        return AS_E_INVALID;
    }
    if (0)
        return AS_E_INVALID;
    if (!(ctx && ctx->skip_id))
        as_event_derive_id(ev);
    return AS_OK;
}

/* ---- a decoded event ---------------------------------------------------------------------- */

static bool s_terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

/* Decimal digits of v into out (at least 11 bytes): snprintf cost more than the rest of a
 * decoded event's checks, for text that is only shown when a check fails. */
static void s_utoa(char *out, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

int as_event_validate(const as_event_t *ev, const as_validate_ctx_t *ctx, as_row_errors_t *errs)
{
    errs->n = 0;
    char num[32];
    const struct {
        int col;
        const char *f;
        size_t cap;
    } texts[] = {{AS_COL_EVENT_ID, ev->event_id, sizeof ev->event_id},
                 {AS_COL_ORG_CREDIT_CODE, ev->org_code, sizeof ev->org_code},
                 {AS_COL_ORG_NAME, ev->org_name, sizeof ev->org_name},
                 {AS_COL_VILLAGE_CODE, ev->village, sizeof ev->village},
                 {AS_COL_NOTE, ev->note, sizeof ev->note}};
    bool terminated = true;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!s_terminated(texts[i].f, texts[i].cap)) {
            s_err(errs, texts[i].col, texts[i].f, 32, "字段过长或未结束",
                  "the field is too long (not terminated)");
            terminated = false;
        }
    if (!terminated)
        return AS_E_INVALID;
    s_check_text(AS_COL_EVENT_ID, ev->event_id, strlen(ev->event_id), AS_EVENT_ID_MAX, false, errs);
    s_utoa(num, ev->county);
    s_check_county(ev->county, ctx, num, strlen(num), errs);
    uint8_t c3[3];
    s_put_county(ev->county, c3);
    if (memcmp(ev->id, c3, 3) != 0)
        s_err(errs, -1, "", 0, "事件标识与县区代码不符",
              "the event id does not begin with its county's code");
    if (strlen(ev->org_code) != AS_CODE_LEN)
        s_err(errs, AS_COL_ORG_CREDIT_CODE, ev->org_code, strlen(ev->org_code),
              as_uscc_reason_zh(AS_USCC_LENGTH), as_uscc_reason_en(AS_USCC_LENGTH));
    else
        s_check_code(ev->org_code, ctx, (ev->flags & AS_FLAG_CHECK_CHAR_FAILED) != 0, errs);
    s_check_text(AS_COL_ORG_NAME, ev->org_name, strlen(ev->org_name), AS_NAME_MAX, true, errs);
    if (ev->area == 0 || ev->area >= AS_AREA_COUNT)
        s_err(errs, AS_COL_AREA, "", 0, "帮扶领域缺失或无效", "area missing or unknown");
    if (ev->project >= AS_PROJECT_COUNT)
        s_err(errs, AS_COL_PROJECT, "", 0, "重点项目无效", "unknown project");
    if (ev->group >= AS_GROUP_COUNT)
        s_err(errs, AS_COL_BENEFICIARY_GROUP, "", 0, "受益群体无效", "unknown beneficiary group");
    if (ev->funding >= AS_FUNDING_COUNT)
        s_err(errs, AS_COL_FUNDING_SOURCE, "", 0, "资金来源无效", "unknown funding source");
    s_utoa(num, ev->date);
    if (!s_real_date(ev->date / 10000, ev->date / 100 % 100, ev->date % 100))
        s_err(errs, AS_COL_ACTIVITY_DATE, num, strlen(num), "不存在的日期", "no such date");
    else
        s_check_date(ev->date, ctx, num, strlen(num), errs);
    if (ev->village[0])
        s_check_village(ev->village, strlen(ev->village), ev->county, errs);
    const struct {
        int col;
        uint64_t v, max;
    } nums[] = {{AS_COL_BENEFICIARIES, ev->beneficiaries, S_COUNT_MAX},
                {AS_COL_REGISTERED_POOR, ev->registered_poor, S_COUNT_MAX},
                {AS_COL_VOLUNTEERS, ev->volunteers, S_COUNT_MAX},
                {AS_COL_VOLUNTEER_HOURS, ev->volunteer_tenths, S_COUNT_MAX * 10},
                {AS_COL_SOCIAL_WORKERS, ev->social_workers, S_COUNT_MAX},
                {AS_COL_PERSONS_LIFTED, ev->persons_lifted, S_COUNT_MAX},
                {AS_COL_JOBS, ev->jobs, S_COUNT_MAX},
                {AS_COL_TRAINEES, ev->trainees, S_COUNT_MAX},
                {AS_COL_FUNDS_YUAN, (uint64_t)ev->funds_fen, S_MONEY_MAX},
                {AS_COL_GOODS_YUAN, (uint64_t)ev->goods_fen, S_MONEY_MAX},
                {AS_COL_INCOME_INCREASE_YUAN, (uint64_t)ev->income_fen, S_MONEY_MAX}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].v > nums[i].max) { /* negative money wraps above the maximum too */
            snprintf(num, sizeof num, "%lld", (long long)nums[i].v);
            s_err(errs, nums[i].col, num, strlen(num), "数值为负或过大",
                  "the number is negative or too large");
        }
    s_check_note(ev->note, strlen(ev->note), errs);
    s_check_cross(ev, true, errs, "", 0);
    if (ev->has_correction && memcmp(ev->correction_of, ev->id, AS_ID_LEN) == 0)
        s_err(errs, AS_COL_CORRECTION_OF, "", 0, "不能更正事件自身",
              "an event cannot correct itself");
    s_sort_errors(errs);
    return errs->n ? AS_E_INVALID : AS_OK;
}
