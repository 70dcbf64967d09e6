/* report: the year-end report from the ledger's totals — tables, files, the final lock, schedule.
 */
#include "report.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "report_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct as_report_s {
    as_ledger_t *l;
    as_registry_t *reg;
    as_archive_t *ar;
    as_review_t *rv;
    as_report_opts_t o;
    char *out_dir, *province;
    int dl_month, dl_day, dl_hour, dl_min;
    as_report_written_cb cb;
    void *cb_ctx;
    uv_timer_t timer;
    bool timer_on;
    uint64_t last_draft_ms;
};

void as_report_opts_default(as_report_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->out_dir = ".";
    o->pairing_target = 100;
    o->social_work_target = 35;
    o->deep_villages_total = 269;
    o->deadline = "12-31 00:00";
    o->draft_interval_s = 86400;
    o->province_name = "江西省";
}

/* ---- the measures as columns ---------------------------------------------------------------- */

static const struct {
    const char *key, *zh;
    as_cell_kind_t kind;
} s_mcols[16] = {
    {"activities", "活动数", AS_CELL_INT},
    {"organisations", "参与组织数", AS_CELL_INT},
    {"beneficiaries", "受益人数", AS_CELL_INT},
    {"registered_poor", "建档立卡贫困人口数", AS_CELL_INT},
    {"funds_fen", "帮扶资金(元)", AS_CELL_FEN},
    {"goods_fen", "物资折价(元)", AS_CELL_FEN},
    {"volunteers", "志愿者人数", AS_CELL_INT},
    {"volunteer_hours", "志愿服务时长(小时)", AS_CELL_TENTHS},
    {"social_workers", "社会工作者人数", AS_CELL_INT},
    {"persons_lifted", "脱贫人数", AS_CELL_INT},
    {"jobs", "带动就业人数", AS_CELL_INT},
    {"trainees", "培训人次", AS_CELL_INT},
    {"income_increase_fen", "增收金额(元)", AS_CELL_FEN},
    {"villages", "覆盖村数", AS_CELL_INT},
    {"deep_poverty_villages", "覆盖深度贫困村数", AS_CELL_INT},
    {"counties", "覆盖县数", AS_CELL_INT},
};

static int64_t s_mval(const as_measures_t *m, int i)
{
    switch (i) {
    case 0:
        return (int64_t)m->activities;
    case 1:
        return (int64_t)m->organisations;
    case 2:
        return (int64_t)m->beneficiaries;
    case 3:
        return (int64_t)m->registered_poor;
    case 4:
        return m->funds_fen;
    case 5:
        return m->goods_fen;
    case 6:
        return (int64_t)m->volunteers;
    case 7:
        return (int64_t)m->volunteer_tenths;
    case 8:
        return (int64_t)m->social_workers;
    case 9:
        return (int64_t)m->persons_lifted;
    case 10:
        return (int64_t)m->jobs;
    case 11:
        return (int64_t)m->trainees;
    case 12:
        return m->income_fen;
    case 13:
        return (int64_t)m->villages;
    case 14:
        return (int64_t)m->deep_villages;
    default:
        return (int64_t)m->counties;
    }
}

/* Effect measures: indexes into s_mcols. */
static const int s_effects[] = {2, 3, 9, 10, 11, 12};

static void s_mcols_add(as_doc_table_t *t, const int *which, size_t n)
{
    for (size_t i = 0; i < (which ? n : 16); i++) {
        int c = which ? which[i] : (int)i;
        as_doc_col(t, s_mcols[c].key, s_mcols[c].zh, s_mcols[c].kind);
    }
}

static void s_mrow(as_doc_table_t *t, const as_measures_t *m, const int *which, size_t n)
{
    for (size_t i = 0; i < (which ? n : 16); i++)
        as_doc_int(t, s_mval(m, which ? which[i] : (int)i));
}

/* A table "code, name, measures…" of rows plus a 合计 row. */
static void s_dim_table(as_doc_t *d, const char *file, const char *title, const char *keyhead,
                        const as_totals_row_t *rows, size_t n, const as_measures_t *total,
                        const int *which, size_t nw)
{
    as_doc_table_t *t = as_doc_table(d, file, title);
    as_doc_col(t, "key", keyhead, AS_CELL_TEXT);
    as_doc_col(t, "name", "名称", AS_CELL_TEXT);
    s_mcols_add(t, which, nw);
    for (size_t i = 0; i < n; i++) {
        as_doc_row(t);
        as_doc_text(t, rows[i].key);
        as_doc_text(t, rows[i].name);
        s_mrow(t, &rows[i].m, which, nw);
    }
    if (total) {
        as_doc_row(t);
        as_doc_text(t, "total");
        as_doc_text(t, "合计");
        s_mrow(t, total, which, nw);
    }
}

/* ---- data from the ledger ------------------------------------------------------------------- */

typedef struct {
    as_totals_row_t *rows;
    size_t n;
    as_measures_t total;
} s_tot_t;

static void s_tot_free(s_tot_t *t)
{
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static int s_tot(as_report_t *r, uint32_t year, as_dim_t by, int by2, int32_t sup, s_tot_t *t)
{
    as_filter_t f = {0, sup};
    memset(t, 0, sizeof *t);
    if (by2 >= 0)
        return as_ledger_totals2(r->l, year, by, (as_dim_t)by2, &f, &t->rows, &t->n, &t->total);
    return as_ledger_totals(r->l, year, by, &f, &t->rows, &t->n, &t->total);
}

/* Rows of a supervisor × X result belonging to unit sup, with the unit prefix cut from key and
 * name. *out is the caller's to free(). */
static size_t s_unit_rows(const s_tot_t *t, unsigned sup, as_totals_row_t **out)
{
    *out = malloc((t->n ? t->n : 1) * sizeof **out);
    size_t n = 0;
    for (size_t i = 0; *out && i < t->n; i++) {
        const char *bar = strchr(t->rows[i].key, '|');
        if (!bar || strtoul(t->rows[i].key, NULL, 10) != sup)
            continue;
        as_totals_row_t *o = &(*out)[n++];
        *o = t->rows[i];
        snprintf(o->key, sizeof o->key, "%s", bar + 1);
        const char *nb = strchr(t->rows[i].name, '|');
        snprintf(o->name, sizeof o->name, "%s", nb ? nb + 1 : t->rows[i].name);
    }
    return n;
}

static const char *s_unit_name(as_report_t *r, unsigned id, char *buf, size_t cap)
{
    const char *n = r->reg && id ? as_registry_unit_name(r->reg, (uint16_t)id) : NULL;
    if (n)
        return n;
    if (id == 0)
        return "未登记/未知业务主管单位";
    snprintf(buf, cap, "业务主管单位 %u", id);
    return buf;
}

/* ---- the parts ------------------------------------------------------------------------------ */

typedef struct {
    as_report_t *r;
    uint32_t year;
    s_tot_t sup;   /* by supervisor */
    s_tot_t sx[6]; /* supervisor × org, county, area, group, funding, project */
    as_doc_t *doc;
} s_build_t;

static const as_dim_t s_sx_dims[6] = {AS_DIM_ORG,   AS_DIM_COUNTY,  AS_DIM_AREA,
                                      AS_DIM_GROUP, AS_DIM_FUNDING, AS_DIM_PROJECT};

static void s_summary(as_report_t *r, as_doc_t *d, const as_measures_t *m, const char *file)
{
    as_doc_table_t *t = as_doc_table(d, file, "总体情况");
    s_mcols_add(t, NULL, 0);
    as_doc_col(t, "deep_poverty_villages_total", "深度贫困村总数", AS_CELL_INT);
    as_doc_col(t, "deep_poverty_village_coverage", "深度贫困村覆盖率", AS_CELL_PERMILLE);
    as_doc_row(t);
    s_mrow(t, m, NULL, 0);
    as_doc_int(t, r->o.deep_villages_total);
    as_doc_int(t, r->o.deep_villages_total
                      ? (int64_t)(m->deep_villages * 1000 + r->o.deep_villages_total / 2) /
                            r->o.deep_villages_total
                      : 0);
}

typedef struct {
    as_report_t *r;
    uint64_t provincial;
} s_pairing_t;

/* An organisation with pairing activities: counted when registered at the provincial level. */
static int s_pairing_org(void *ctx, const char *code, uint64_t activities)
{
    s_pairing_t *p = ctx;
    as_registry_org_t o;
    if (activities && as_registry_lookup(p->r->reg, code, &o) == 0 &&
        o.level == AS_ORGLEVEL_PROVINCIAL)
        p->provincial++;
    return 0;
}

/* Key projects against their targets; the pairing organisations from the organisation rows
 * (as many as organisations), not from an organisation × project scan of the finest records. */
static int s_targets(as_report_t *r, as_doc_t *d, const char *file, uint32_t year,
                     const s_tot_t *proj)
{
    s_pairing_t pairing = {r, 0};
    uint64_t talents = 0;
    int rc = r->reg ? as_ledger_org_activities(r->l, year, AS_DIM_PROJECT, AS_PROJECT_PAIRING,
                                               s_pairing_org, &pairing)
                    : 0;
    if (rc)
        return rc;
    uint64_t provincial = pairing.provincial;
    for (size_t i = 0; i < proj->n; i++)
        if (strcmp(proj->rows[i].key, "social_work") == 0)
            talents = proj->rows[i].m.social_workers;
    as_doc_table_t *t = as_doc_table(d, file, "重点项目目标完成情况");
    as_doc_col(t, "project", "项目", AS_CELL_TEXT);
    as_doc_col(t, "indicator", "指标", AS_CELL_TEXT);
    as_doc_col(t, "target", "目标", AS_CELL_INT);
    as_doc_col(t, "actual", "实际", AS_CELL_INT);
    as_doc_col(t, "completion", "完成率", AS_CELL_PERMILLE);
    struct {
        const char *p, *ind;
        uint64_t target, actual;
    } rows[2] = {{"结对扶贫", "结对帮扶的省级社会组织数", r->o.pairing_target, provincial},
                 {"社会工作专项", "社会工作专业人才数（人）", r->o.social_work_target, talents}};
    for (int i = 0; i < 2; i++) {
        as_doc_row(t);
        as_doc_text(t, rows[i].p);
        as_doc_text(t, rows[i].ind);
        as_doc_int(t, (int64_t)rows[i].target);
        as_doc_int(t, (int64_t)rows[i].actual);
        as_doc_int(t, rows[i].target ? (int64_t)(rows[i].actual * 1000 + rows[i].target / 2) /
                                           (int64_t)rows[i].target
                                     : 0);
    }
    return 0;
}

static const char *s_kind_zh(uint8_t kind)
{
    return kind == AS_LOG_CORRECTION ? "更正" : kind == AS_LOG_RETRACTION ? "撤回" : "补报";
}

static int s_amendments(as_report_t *r, as_doc_t *d, uint32_t year)
{
    as_amendment_t *am;
    size_t n;
    int rc = as_archive_amendments(r->ar, year, &am, &n);
    if (rc)
        return rc;
    as_doc_table_t *t =
        as_doc_table(d, "08_amendments", "定稿后的补报、更正和撤回（不改变已公布数字）");
    as_doc_col(t, "seq", "序号", AS_CELL_INT);
    as_doc_col(t, "kind", "类型", AS_CELL_TEXT);
    as_doc_col(t, "event_id", "事件编号", AS_CELL_TEXT);
    as_doc_col(t, "correction_of", "更正事件编号", AS_CELL_TEXT);
    as_doc_col(t, "county_code", "县区代码", AS_CELL_TEXT);
    as_doc_col(t, "org_credit_code", "统一社会信用代码", AS_CELL_TEXT);
    as_doc_col(t, "org_name", "组织名称", AS_CELL_TEXT);
    as_doc_col(t, "activity_date", "活动日期", AS_CELL_TEXT);
    as_doc_col(t, "activities", "活动数变化", AS_CELL_INT);
    as_doc_col(t, "beneficiaries", "受益人数变化", AS_CELL_INT);
    as_doc_col(t, "funds_fen", "帮扶资金变化(元)", AS_CELL_FEN);
    as_doc_col(t, "goods_fen", "物资折价变化(元)", AS_CELL_FEN);
    as_doc_col(t, "persons_lifted", "脱贫人数变化", AS_CELL_INT);
    for (size_t i = 0; i < n; i++) {
        char c[8], dt[12];
        snprintf(c, sizeof c, "%06u", am[i].county % 1000000);
        snprintf(dt, sizeof dt, "%04u-%02u-%02u", am[i].date / 10000 % 10000,
                 am[i].date / 100 % 100, am[i].date % 100);
        as_doc_row(t);
        as_doc_int(t, (int64_t)am[i].seq);
        as_doc_text(t, s_kind_zh(am[i].kind));
        as_doc_text(t, am[i].event_id);
        as_doc_text(t, am[i].target_id);
        as_doc_text(t, c);
        as_doc_text(t, am[i].org_code);
        as_doc_text(t, am[i].org_name);
        as_doc_text(t, dt);
        as_doc_int(t, am[i].activities);
        as_doc_int(t, am[i].beneficiaries);
        as_doc_int(t, am[i].funds_fen);
        as_doc_int(t, am[i].goods_fen);
        as_doc_int(t, am[i].persons_lifted);
    }
    free(am);
    return 0;
}

static const uint32_t s_flag_cols[] = {AS_FLAG_UNREGISTERED,
                                       AS_FLAG_ONLINE_UNQUALIFIED,
                                       AS_FLAG_OUTLIER,
                                       AS_FLAG_DUPLICATE_ACROSS_COUNTIES,
                                       AS_FLAG_CORRECTION_TARGET_MISSING,
                                       AS_FLAG_CHECK_CHAR_FAILED,
                                       AS_FLAG_AMENDMENT};
#define NFLAGS (sizeof s_flag_cols / sizeof s_flag_cols[0])

static int s_quality(as_report_t *r, as_doc_t *d, uint32_t year)
{
    size_t nc;
    const as_division_t *counties = as_division_counties(&nc);
    /* completeness: activities by county and month */
    s_tot_t cm;
    int rc = s_tot(r, year, AS_DIM_COUNTY, AS_DIM_MONTH, -1, &cm);
    if (rc)
        return rc;
    as_doc_table_t *t = as_doc_table(d, "08_completeness", "报送完整性（各县区各月活动数）");
    as_doc_col(t, "county_code", "县区代码", AS_CELL_TEXT);
    as_doc_col(t, "name", "名称", AS_CELL_TEXT);
    for (int mth = 1; mth <= 12; mth++) {
        char k[16], zh[16];
        snprintf(k, sizeof k, "m%02d", mth);
        snprintf(zh, sizeof zh, "%d月", mth);
        as_doc_col(t, k, zh, AS_CELL_INT);
    }
    as_doc_col(t, "months_reported", "有报送的月数", AS_CELL_INT);
    for (size_t i = 0; i < nc; i++) {
        int64_t per[13] = {0};
        char code[8];
        snprintf(code, sizeof code, "%06u", counties[i].code);
        for (size_t j = 0; j < cm.n; j++)
            if (strncmp(cm.rows[j].key, code, 6) == 0 && cm.rows[j].key[6] == '|') {
                int mth = atoi(cm.rows[j].key + 12);
                if (mth >= 1 && mth <= 12)
                    per[mth] += (int64_t)cm.rows[j].m.activities;
            }
        as_doc_row(t);
        as_doc_text(t, code);
        as_doc_text(t, counties[i].name);
        int64_t months = 0;
        for (int mth = 1; mth <= 12; mth++) {
            as_doc_int(t, per[mth]);
            months += per[mth] > 0;
        }
        as_doc_int(t, months);
    }
    s_tot_free(&cm);

    /* rejected events, by collector (what the ledger keeps) */
    as_collector_info_t *ci;
    size_t ncol;
    if ((rc = as_ledger_collectors(r->l, &ci, &ncol)) != 0)
        return rc;
    t = as_doc_table(d, "08_rejected", "被拒收的事件（按采集端，全部年份）");
    as_doc_col(t, "collector_id", "采集端", AS_CELL_TEXT);
    as_doc_col(t, "county_code", "县区代码", AS_CELL_TEXT);
    as_doc_col(t, "accepted", "接收", AS_CELL_INT);
    as_doc_col(t, "duplicates", "重复", AS_CELL_INT);
    as_doc_col(t, "rejected", "拒收", AS_CELL_INT);
    for (size_t i = 0; i < ncol; i++) {
        char code[8];
        snprintf(code, sizeof code, "%06u", ci[i].st.county % 1000000);
        as_doc_row(t);
        as_doc_text(t, ci[i].st.collector_id);
        as_doc_text(t, code);
        as_doc_int(t, (int64_t)ci[i].accepted);
        as_doc_int(t, (int64_t)ci[i].duplicates);
        as_doc_int(t, (int64_t)ci[i].rejected);
    }
    free(ci);

    /* flagged events by county and kind */
    as_flag_count_t *fc = NULL;
    size_t nf = 0;
    if (r->rv && (rc = as_review_flag_counts(r->rv, year, &fc, &nf)) != 0)
        return rc;
    t = as_doc_table(d, "08_flags", "待核查的标记事件（按县区）");
    as_doc_col(t, "county_code", "县区代码", AS_CELL_TEXT);
    as_doc_col(t, "name", "名称", AS_CELL_TEXT);
    for (size_t k = 0; k < NFLAGS; k++)
        as_doc_col(t, as_review_flag_name(s_flag_cols[k]), as_review_flag_name_zh(s_flag_cols[k]),
                   AS_CELL_INT);
    int64_t sum[NFLAGS] = {0};
    /* (flag, county) order → per county: collect the distinct counties first */
    uint32_t *cs = malloc((nf ? nf : 1) * sizeof *cs);
    size_t ncs = 0;
    for (size_t i = 0; cs && i < nf; i++) {
        size_t j = 0;
        while (j < ncs && cs[j] != fc[i].county)
            j++;
        if (j == ncs)
            cs[ncs++] = fc[i].county;
    }
    for (size_t a = 0; cs && a < ncs; a++)
        for (size_t b = a + 1; b < ncs; b++)
            if (cs[b] < cs[a]) {
                uint32_t x = cs[a];
                cs[a] = cs[b];
                cs[b] = x;
            }
    for (size_t a = 0; cs && a < ncs; a++) {
        int64_t per[NFLAGS] = {0};
        for (size_t i = 0; i < nf; i++)
            if (fc[i].county == cs[a])
                for (size_t k = 0; k < NFLAGS; k++)
                    if (fc[i].flag == s_flag_cols[k])
                        per[k] += fc[i].count;
        char code[8];
        snprintf(code, sizeof code, "%06u", cs[a] % 1000000);
        const as_division_t *dv = as_division_find(cs[a]);
        as_doc_row(t);
        as_doc_text(t, code);
        as_doc_text(t, dv ? dv->name : code);
        for (size_t k = 0; k < NFLAGS; k++) {
            as_doc_int(t, per[k]);
            sum[k] += per[k];
        }
    }
    as_doc_row(t);
    as_doc_text(t, "total");
    as_doc_text(t, "合计");
    for (size_t k = 0; k < NFLAGS; k++)
        as_doc_int(t, sum[k]);
    free(cs);
    free(fc);
    return s_amendments(r, d, year);
}

/* The province-wide document. */
static int s_main_doc(s_build_t *b, bool final, uint64_t ms)
{
    as_report_t *r = b->r;
    char title[256];
    snprintf(title, sizeof title, "%s社会组织参与脱贫攻坚统计报告（%u年度）", r->province, b->year);
    as_doc_t *d = b->doc = as_doc_new(title, b->year, final, ms);
    if (!d)
        return AS_E_NOMEM;
    as_doc_note(d, "金额单位：元；数据来源：各县区民政、扶贫部门报送的活动记录，按年度汇总。");
    s_tot_t t;
    int rc;

    as_doc_part(d, 1, "一、总体情况");
    if ((rc = s_tot(r, b->year, AS_DIM_PROVINCE, -1, -1, &t)) != 0)
        return rc;
    s_summary(r, d, &t.total, "01_summary");
    s_tot_free(&t);

    as_doc_part(d, 2, "二、按业务主管单位");
    for (size_t i = 0; i < b->sup.n; i++) {
        char buf[64];
        unsigned id = (unsigned)strtoul(b->sup.rows[i].key, NULL, 10);
        snprintf(b->sup.rows[i].name, sizeof b->sup.rows[i].name, "%s",
                 s_unit_name(r, id, buf, sizeof buf));
    }
    s_dim_table(d, "02_supervisors", "各业务主管单位汇总", "单位编号", b->sup.rows, b->sup.n,
                &b->sup.total, NULL, 0);
    for (size_t i = 0; i < b->sup.n; i++) {
        unsigned id = (unsigned)strtoul(b->sup.rows[i].key, NULL, 10);
        as_totals_row_t *rows;
        size_t n = s_unit_rows(&b->sx[0], id, &rows);
        if (!rows)
            return AS_E_NOMEM;
        char file[32], cap[192];
        snprintf(file, sizeof file, "02_unit_%u", id);
        snprintf(cap, sizeof cap, "%s 所属社会组织", b->sup.rows[i].name);
        s_dim_table(d, file, cap, "统一社会信用代码", rows, n, &b->sup.rows[i].m, NULL, 0);
        free(rows);
    }

    as_doc_part(d, 3, "三、在哪扶");
    static const struct {
        as_dim_t dim;
        const char *file, *title, *key;
    } where[] = {{AS_DIM_CITY, "03_cities", "按设区市", "市代码"},
                 {AS_DIM_COUNTY, "03_counties", "按县（市、区）", "县区代码"},
                 {AS_DIM_POVERTY, "03_poverty", "原25个贫困县内外", "范围"}};
    for (size_t i = 0; i < 3; i++) {
        if ((rc = s_tot(r, b->year, where[i].dim, -1, -1, &t)) != 0)
            return rc;
        s_dim_table(d, where[i].file, where[i].title, where[i].key, t.rows, t.n, &t.total, NULL, 0);
        s_tot_free(&t);
    }

    as_doc_part(d, 4, "四、扶了谁");
    if ((rc = s_tot(r, b->year, AS_DIM_GROUP, -1, -1, &t)) != 0)
        return rc;
    s_dim_table(d, "04_groups", "按受益群体", "群体", t.rows, t.n, &t.total, NULL, 0);
    s_tot_free(&t);

    as_doc_part(d, 5, "五、扶了多少");
    if ((rc = s_tot(r, b->year, AS_DIM_AREA, -1, -1, &t)) != 0)
        return rc;
    s_dim_table(d, "05_areas", "按帮扶领域", "领域", t.rows, t.n, &t.total, NULL, 0);
    as_doc_part(d, 6, "六、扶贫效果");
    s_dim_table(d, "06_effects", "扶贫效果（按帮扶领域）", "领域", t.rows, t.n, &t.total, s_effects,
                sizeof s_effects / sizeof s_effects[0]);
    s_tot_free(&t);
    /* funding belongs to part 5: add it to that part's tables */
    if ((rc = s_tot(r, b->year, AS_DIM_FUNDING, -1, -1, &t)) != 0)
        return rc;
    as_doc_part(d, 5, "五、扶了多少（续）：按资金来源");
    s_dim_table(d, "05_funding", "按资金来源", "来源", t.rows, t.n, &t.total, NULL, 0);
    s_tot_free(&t);

    as_doc_part(d, 7, "七、重点项目");
    if ((rc = s_tot(r, b->year, AS_DIM_PROJECT, -1, -1, &t)) != 0)
        return rc;
    s_dim_table(d, "07_projects", "按重点项目", "项目", t.rows, t.n, &t.total, NULL, 0);
    rc = s_targets(r, d, "07_targets", b->year, &t);
    s_tot_free(&t);
    if (rc)
        return rc;

    as_doc_part(d, 8, "八、数据质量");
    return s_quality(r, d, b->year);
}

/* The document of one supervisory unit (its own organisations only). */
static int s_unit_doc(s_build_t *b, size_t ui, bool final, uint64_t ms, as_doc_t **out)
{
    as_report_t *r = b->r;
    const as_totals_row_t *u = &b->sup.rows[ui];
    unsigned id = (unsigned)strtoul(u->key, NULL, 10);
    char title[320];
    snprintf(title, sizeof title, "%s所属社会组织参与脱贫攻坚统计（%u年度）", u->name, b->year);
    as_doc_t *d = *out = as_doc_new(title, b->year, final, ms);
    if (!d)
        return AS_E_NOMEM;
    as_doc_part(d, 1, "一、总体情况");
    s_summary(r, d, &u->m, "01_summary");
    static const struct {
        int part, sx;
        const char *heading, *file, *title, *key;
    } parts[] = {{2, 0, "二、所属社会组织", "02_organisations", "所属社会组织", "统一社会信用代码"},
                 {3, 1, "三、在哪扶", "03_counties", "按县（市、区）", "县区代码"},
                 {4, 3, "四、扶了谁", "04_groups", "按受益群体", "群体"},
                 {5, 2, "五、扶了多少", "05_areas", "按帮扶领域", "领域"},
                 {5, 4, "", "05_funding", "按资金来源", "来源"},
                 {6, 2, "六、扶贫效果", "06_effects", "扶贫效果（按帮扶领域）", "领域"},
                 {7, 5, "七、重点项目", "07_projects", "按重点项目", "项目"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].heading[0])
            as_doc_part(d, parts[i].part, parts[i].heading);
        as_totals_row_t *rows;
        size_t n = s_unit_rows(&b->sx[parts[i].sx], id, &rows);
        if (!rows)
            return AS_E_NOMEM;
        bool eff = parts[i].part == 6;
        s_dim_table(d, parts[i].file, parts[i].title, parts[i].key, rows, n, &u->m,
                    eff ? s_effects : NULL, eff ? sizeof s_effects / sizeof s_effects[0] : 0);
        free(rows);
    }
    return 0;
}

static void s_free_files(as_archive_file_t *f, size_t n)
{
    as_archive_files_free(f, n);
}

/* Every file of the report of year: main tables, pages and one folder per unit. */
static int s_build(as_report_t *r, uint32_t year, bool final, uint64_t ms,
                   as_archive_file_t **files, size_t *nfiles)
{
    s_build_t b;
    memset(&b, 0, sizeof b);
    b.r = r;
    b.year = year;
    *files = NULL;
    *nfiles = 0;
    int rc = s_tot(r, year, AS_DIM_SUPERVISOR, -1, -1, &b.sup);
    for (int i = 0; rc == 0 && i < 6; i++)
        rc = s_tot(r, year, AS_DIM_SUPERVISOR, s_sx_dims[i], -1, &b.sx[i]);
    if (rc == 0)
        rc = s_main_doc(&b, final, ms);
    if (rc == 0)
        rc = as_doc_render(b.doc, "", files, nfiles);
    for (size_t i = 0; rc == 0 && i < b.sup.n; i++) {
        unsigned id = (unsigned)strtoul(b.sup.rows[i].key, NULL, 10);
        if (id == 0)
            continue; /* no unit to send the unregistered organisations' table to */
        as_doc_t *ud = NULL;
        rc = s_unit_doc(&b, i, final, ms, &ud);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "units/%u/", id);
        if (rc == 0)
            rc = as_doc_render(ud, prefix, files, nfiles);
        as_doc_destroy(&ud);
    }
    as_doc_destroy(&b.doc);
    s_tot_free(&b.sup);
    for (int i = 0; i < 6; i++)
        s_tot_free(&b.sx[i]);
    if (rc) {
        s_free_files(*files, *nfiles);
        *files = NULL;
        *nfiles = 0;
    }
    return rc;
}

/* ---- files on disk ----------------------------------------------------------------------------
 */

static int s_mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Writes one file atomically (a temporary name, then rename); made is the folder created last
 * (files come folder by folder: one mkdir chain per folder, not per file). */
static int s_write_file(const char *dir, const as_archive_file_t *f, char *made, size_t made_cap)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    char *slash = strrchr(path, '/');
    *slash = 0;
    int rc = strcmp(path, made) == 0 ? 0 : s_mkdirs(path);
    if (rc == 0)
        snprintf(made, made_cap, "%s", path);
    *slash = '/';
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return -errno;
    size_t w = fwrite(f->data, 1, f->len, fp);
    if (fclose(fp) != 0 || w != f->len || rename(tmp, path) != 0) {
        int e = errno ? -errno : AS_E_DB;
        unlink(tmp);
        return e;
    }
    return 0;
}

static int s_write_all(const char *dir, const as_archive_file_t *f, size_t n)
{
    char made[4096] = "";
    int rc = s_mkdirs(dir);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = s_write_file(dir, &f[i], made, sizeof made);
    if (rc)
        AS_ERROR("report", "writing %s: %s", dir, strerror(-rc));
    return rc;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the writer -------------------------------------------------------------------------------
 */

int as_report_write(as_report_t *r, uint32_t year, bool final, const char *out_dir, char *msg,
                    size_t msg_cap)
{
    char dummy[8];
    if (!msg) {
        msg = dummy;
        msg_cap = sizeof dummy;
    }
    msg[0] = 0;
    if (year < 2000 || year > 9999)
        return AS_E_INVALID;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/reports/%u", out_dir && out_dir[0] ? out_dir : r->out_dir, year);
    as_archive_file_t *files = NULL;
    size_t n = 0;
    uint64_t ms = 0;
    bool locked;
    int rc = as_archive_locked(r->ar, NULL, year, &locked);
    if (rc)
        return rc;
    MDB_txn *txn = NULL;
    if (!locked && final) {
        /* hold the write lock: no group commits between the figures and the lock */
        if ((rc = mdb_txn_begin(as_ledger_env(r->l), NULL, 0, &txn)) != 0) {
            AS_ERROR("report", "cannot lock year %u: %s", year, mdb_strerror(rc));
            return AS_E_DB;
        }
        if ((rc = as_archive_locked(r->ar, txn, year, &locked)) != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        if (locked) {
            mdb_txn_abort(txn);
            txn = NULL;
        }
    }
    if (locked) {
        if ((rc = as_archive_files(r->ar, year, &files, &n, &ms)) != 0)
            return rc;
        rc = s_write_all(dir, files, n);
        s_free_files(files, n);
        if (rc)
            return rc;
        snprintf(msg, msg_cap, "%u 年度报告已定稿 / final report of %u (locked) in %s", year, year,
                 dir);
        if (!final) {
            /* the current figures with the amendments, beside the published files */
            uint64_t now = s_now_ms();
            if ((rc = s_build(r, year, false, now, &files, &n)) != 0)
                return rc;
            char adir[4200];
            snprintf(adir, sizeof adir, "%s/amended", dir);
            rc = s_write_all(adir, files, n);
            s_free_files(files, n);
            if (rc)
                return rc;
            snprintf(msg, msg_cap,
                     "%u 年度已定稿；含补报的草稿 / year %u is final; draft with amendments in %s",
                     year, year, adir);
            if (r->cb)
                r->cb(r->cb_ctx, year, false, adir, now);
            return 0;
        }
        if (r->cb)
            r->cb(r->cb_ctx, year, true, dir, ms);
        return 0;
    }
    ms = s_now_ms();
    rc = s_build(r, year, final, ms, &files, &n);
    if (rc == 0 && txn) {
        rc = as_archive_lock(r->ar, txn, year, files, n, ms);
        if (rc)
            mdb_txn_abort(txn);
        else if ((rc = as_ledger_txn_commit(txn)) != 0) {
            AS_ERROR("report", "committing the lock of %u: %s", year, mdb_strerror(rc));
            rc = AS_E_DB;
        }
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc == 0)
        rc = s_write_all(dir, files, n);
    s_free_files(files, n);
    if (rc)
        return rc;
    snprintf(msg, msg_cap, "%u 年度%s / %s report of %u in %s", year,
             final ? "正式报告已定稿，年度已锁定" : "草稿", final ? "final" : "draft", year, dir);
    AS_INFO("report", "%s report of %u written to %s", final ? "final" : "draft", year, dir);
    if (r->cb)
        r->cb(r->cb_ctx, year, final, dir, ms);
    return 0;
}

/* ---- schedule ----------------------------------------------------------------------------------
 */

uint64_t as_report_deadline_ms(const as_report_t *r, uint32_t year)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)year - 1900;
    tm.tm_mon = r->dl_month - 1;
    tm.tm_mday = r->dl_day;
    tm.tm_hour = r->dl_hour;
    tm.tm_min = r->dl_min;
    time_t t = timegm(&tm) - 8 * 3600;
    return (uint64_t)t * 1000;
}

static uint32_t s_year_cst(uint64_t ms)
{
    time_t t = (time_t)(ms / 1000) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    return (uint32_t)tm.tm_year + 1900;
}

void as_report_tick(as_report_t *r, uint64_t now_ms)
{
    uint32_t y = s_year_cst(now_ms);
    char msg[512];
    for (uint32_t year = y - 1; year <= y; year++) {
        bool locked;
        if (now_ms < as_report_deadline_ms(r, year) ||
            as_archive_locked(r->ar, NULL, year, &locked) != 0 || locked)
            continue;
        /* a year without any activity is not locked by the clock (a new installation must be
         * able to load last year's data); --final still locks it */
        as_totals_row_t *rows = NULL;
        size_t n = 0;
        as_measures_t tot;
        int trc = as_ledger_totals(r->l, year, AS_DIM_PROVINCE, NULL, &rows, &n, &tot);
        free(rows);
        if (trc != 0 || tot.activities == 0)
            continue;
        int rc = as_report_write(r, year, true, NULL, msg, sizeof msg);
        if (rc)
            AS_ERROR("report", "final report of %u failed: %s", year, as_strerror(rc));
    }
    if (r->o.draft_interval_s &&
        now_ms - r->last_draft_ms >= (uint64_t)r->o.draft_interval_s * 1000) {
        r->last_draft_ms = now_ms;
        int rc = as_report_write(r, y, false, NULL, msg, sizeof msg);
        if (rc)
            AS_ERROR("report", "draft of %u failed: %s", y, as_strerror(rc));
    }
}

static void s_on_timer(uv_timer_t *t)
{
    as_report_t *r = t->data;
    as_report_tick(r, s_now_ms());
}

int as_report_schedule(as_report_t *r, uv_loop_t *loop)
{
    if (r->timer_on)
        return AS_E_STATE;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->timer_on = true;
    r->last_draft_ms = s_now_ms(); /* the first scheduled draft one interval from now */
    return uv_timer_start(&r->timer, s_on_timer, 60000, 60000);
}

/* ---- life cycle --------------------------------------------------------------------------------
 */

as_report_t *as_report_new(as_ledger_t *l, as_registry_t *reg, as_archive_t *ar, as_review_t *rv,
                           const as_report_opts_t *opts, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    as_report_opts_t def;
    as_report_opts_default(&def);
    as_report_t *r = calloc(1, sizeof *r);
    if (!r) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    r->l = l;
    r->reg = reg;
    r->ar = ar;
    r->rv = rv;
    r->o = opts ? *opts : def;
    const char *dl = r->o.deadline ? r->o.deadline : def.deadline;
    if (sscanf(dl, "%d-%d %d:%d", &r->dl_month, &r->dl_day, &r->dl_hour, &r->dl_min) != 4 ||
        r->dl_month < 1 || r->dl_month > 12 || r->dl_day < 1 || r->dl_day > 31 || r->dl_hour < 0 ||
        r->dl_hour > 23 || r->dl_min < 0 || r->dl_min > 59) {
        AS_ERROR("report", "bad deadline \"%s\" (want MM-DD HH:MM, +08:00)", dl);
        free(r);
        *err = AS_E_INVALID;
        return NULL;
    }
    r->out_dir = strdup(r->o.out_dir && r->o.out_dir[0] ? r->o.out_dir : ".");
    r->province = strdup(r->o.province_name ? r->o.province_name : def.province_name);
    r->o.out_dir = r->o.deadline = r->o.province_name = NULL;
    if (!r->out_dir || !r->province) {
        as_report_destroy(&r);
        *err = AS_E_NOMEM;
        return NULL;
    }
    as_division_init();
    return r;
}

void as_report_on_written(as_report_t *r, as_report_written_cb cb, void *ctx)
{
    r->cb = cb;
    r->cb_ctx = ctx;
}

static void s_free(as_report_t *r)
{
    free(r->out_dir);
    free(r->province);
    free(r);
}

static void s_closed(uv_handle_t *h)
{
    s_free(h->data);
}

void as_report_destroy(as_report_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_report_t *r = *self_p;
    *self_p = NULL;
    if (r->timer_on) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, s_closed);
        return;
    }
    s_free(r);
}
