/* aidstat query: the provincial totals for a year, grouped by any dimension, as a table for
 * people (yuan, Chinese names), CSV or the JSON shape of DESIGN.md. */
#include "config.h"
#include "csvout.h"
#include "err.h"
#include "ledger.h"
#include "measures_json.h"
#include "qclient.h"
#include "table.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int as_cmd_query(int argc, char **argv);

typedef struct {
    char endpoint[512];
    int64_t year;
    char by[32];
    char county[16];
    char format[16];
    int64_t timeout;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, AS_QUERY_ENDPOINT, "the aggregator's query endpoint", F(endpoint)},
    {"year", AS_CFG_INT, "0", "the year (required)", F(year)},
    {"by", AS_CFG_STR, "province",
     "province|city|county|area|supervisor|org|month|group|funding|project|poverty", F(by)},
    {"county", AS_CFG_STR, "", "only this county (6 digits) or city (e.g. 360700)", F(county)},
    {"format", AS_CFG_STR, "table", "table (yuan, for people) | csv | json (fen)", F(format)},
    {"timeout", AS_CFG_INT, "10", "seconds to wait for the aggregator", F(timeout)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat query --year Y [--by DIM] [--county C] [--format table|csv|json] "
    "[--endpoint EP]\n\nThe live totals of a year from a running aidstat-aggregator. JSON is "
    "{\"year\":Y,\"by\":DIM,\"rows\":[{\"key\":...,\"name\":...,MEASURES}],\"total\":{MEASURES}}"
    "; money is integer fen in csv and json, yuan with two decimals in the table.";

static void s_from_pb(const Aidstat__V1__Measures *p, as_measures_t *m)
{
    memset(m, 0, sizeof *m);
    if (!p)
        return;
    m->activities = p->activities;
    m->organisations = p->organisations;
    m->beneficiaries = p->beneficiaries;
    m->registered_poor = p->registered_poor;
    m->funds_fen = p->funds_fen;
    m->goods_fen = p->goods_fen;
    m->volunteers = p->volunteers;
    m->volunteer_tenths = p->volunteer_hours_tenths;
    m->social_workers = p->social_workers;
    m->persons_lifted = p->persons_lifted;
    m->jobs = p->jobs;
    m->trainees = p->trainees;
    m->income_fen = p->income_increase_fen;
    m->villages = p->villages;
    m->deep_villages = p->deep_poverty_villages;
    m->counties = p->counties;
}

/* Yuan with two decimals and thousands separators from fen. */
static void s_yuan(int64_t fen, char *out, size_t size)
{
    uint64_t a = fen < 0 ? (uint64_t)(-(fen + 1)) + 1 : (uint64_t)fen;
    char digits[32];
    snprintf(digits, sizeof digits, "%" PRIu64, a / 100);
    size_t n = strlen(digits), o = 0;
    char tmp[48];
    if (fen < 0)
        tmp[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            tmp[o++] = ',';
        tmp[o++] = digits[i];
    }
    snprintf(tmp + o, sizeof tmp - o, ".%02u", (unsigned)(a % 100));
    snprintf(out, size, "%s", tmp);
}

static const char *s_zh_head[] = {
    "名称", "活动", "组织", "受益人数", "建档立卡", "资金(元)", "物资(元)",   "志愿者", "志愿时长",
    "社工", "脱贫", "就业", "培训",     "增收(元)", "村",       "深度贫困村", "县"};
#define S_NCOLS 17

static void s_cells(const char *name, const as_measures_t *m, char buf[S_NCOLS][48],
                    const char *cells[S_NCOLS])
{
    snprintf(buf[0], 48, "%s", name);
    snprintf(buf[1], 48, "%" PRIu64, m->activities);
    snprintf(buf[2], 48, "%" PRIu64, m->organisations);
    snprintf(buf[3], 48, "%" PRIu64, m->beneficiaries);
    snprintf(buf[4], 48, "%" PRIu64, m->registered_poor);
    s_yuan(m->funds_fen, buf[5], 48);
    s_yuan(m->goods_fen, buf[6], 48);
    snprintf(buf[7], 48, "%" PRIu64, m->volunteers);
    snprintf(buf[8], 48, "%" PRIu64 ".%u", m->volunteer_tenths / 10,
             (unsigned)(m->volunteer_tenths % 10));
    snprintf(buf[9], 48, "%" PRIu64, m->social_workers);
    snprintf(buf[10], 48, "%" PRIu64, m->persons_lifted);
    snprintf(buf[11], 48, "%" PRIu64, m->jobs);
    snprintf(buf[12], 48, "%" PRIu64, m->trainees);
    s_yuan(m->income_fen, buf[13], 48);
    snprintf(buf[14], 48, "%" PRIu64, m->villages);
    snprintf(buf[15], 48, "%" PRIu64, m->deep_villages);
    snprintf(buf[16], 48, "%" PRIu64, m->counties);
    for (int i = 0; i < S_NCOLS; i++)
        cells[i] = buf[i];
}

static int s_print_table(uint32_t year, const char *by, const as_totals_row_t *rows, size_t n,
                         const as_measures_t *total)
{
    bool right[S_NCOLS];
    for (int i = 0; i < S_NCOLS; i++)
        right[i] = i > 0;
    as_table_t *t = as_table_new(S_NCOLS, right);
    if (!t)
        return AS_E_NOMEM;
    as_table_add(t, s_zh_head);
    char buf[S_NCOLS][48];
    const char *cells[S_NCOLS];
    for (size_t i = 0; i < n; i++) {
        char name[160];
        if (rows[i].name[0] && strcmp(rows[i].name, rows[i].key))
            snprintf(name, sizeof name, "%s %s", rows[i].key, rows[i].name);
        else
            snprintf(name, sizeof name, "%s", rows[i].key);
        s_cells(name, &rows[i].m, buf, cells);
        as_table_add(t, cells);
    }
    s_cells("合计 total", total, buf, cells);
    as_table_add(t, cells);
    printf("%u 年 · 按 %s\n", year, by);
    as_table_print(t, stdout);
    as_table_destroy(&t);
    return 0;
}

/* Text cells (keys, names) through the shared writer: quoted, formulas neutralised; the
 * measures are our own numbers and stay numbers (negative ones too). */
static void s_csv_field(const char *s)
{
    as_csv_text(stdout, s);
}

static void s_csv_row(const char *key, const char *name, const as_measures_t *m)
{
    s_csv_field(key);
    putchar(',');
    s_csv_field(name);
    printf(",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",%" PRIu64
           ",%" PRIu64 ".%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRIu64
           ",%" PRIu64 ",%" PRIu64 "\n",
           m->activities, m->organisations, m->beneficiaries, m->registered_poor, m->funds_fen,
           m->goods_fen, m->volunteers, m->volunteer_tenths / 10,
           (unsigned)(m->volunteer_tenths % 10), m->social_workers, m->persons_lifted, m->jobs,
           m->trainees, m->income_fen, m->villages, m->deep_villages, m->counties);
}

int as_cmd_query(int argc, char **argv)
{
    s_opts_t o;
    char err[600];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat query: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat query: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (o.year < 1900 || o.year > 9999) {
        fprintf(stderr, "aidstat query: --year Y is required (e.g. --year 2026)\n");
        return 2;
    }
    int dim = as_dim_parse(o.by);
    if (dim < 0) {
        fprintf(stderr,
                "aidstat query: --by wants province, city, county, area, supervisor, "
                "org, month, group, funding, project or poverty, not '%s'\n",
                o.by);
        return 2;
    }
    bool table = !strcmp(o.format, "table"), csv = !strcmp(o.format, "csv"),
         json = !strcmp(o.format, "json");
    if (!table && !csv && !json) {
        fprintf(stderr, "aidstat query: --format wants table, csv or json, not '%s'\n", o.format);
        return 2;
    }
    char *end = NULL;
    unsigned long county = o.county[0] ? strtoul(o.county, &end, 10) : 0;
    if (o.county[0] && (*end || strlen(o.county) != 6)) {
        fprintf(stderr, "aidstat query: --county wants a 6-digit code, not '%s'\n", o.county);
        return 2;
    }
    Aidstat__V1__TotalsRequest tr;
    Aidstat__V1__QueryRequest req;
    as_qclient_totals_request(&req, &tr, (uint32_t)o.year, as_dim_name((as_dim_t)dim),
                              (uint32_t)county);
    Aidstat__V1__QueryResponse *resp = NULL;
    int timeout_ms = as_qclient_timeout_ms(o.timeout, 10000);
    rc = as_qclient_call(o.endpoint, timeout_ms, &req, AIDSTAT__V1__QUERY_RESPONSE__BODY_TOTALS,
                         &resp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aidstat query: %s\n", err);
        return 1;
    }
    const Aidstat__V1__TotalsResponse *t = resp->totals;
    size_t n = t->n_rows;
    as_totals_row_t *rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        aidstat__v1__query_response__free_unpacked(resp, NULL);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(rows[i].key, sizeof rows[i].key, "%s", t->rows[i]->key ? t->rows[i]->key : "");
        snprintf(rows[i].name, sizeof rows[i].name, "%s", t->rows[i]->name ? t->rows[i]->name : "");
        s_from_pb(t->rows[i]->measures, &rows[i].m);
    }
    as_measures_t total;
    s_from_pb(t->total, &total);
    int dim_answered = as_dim_parse(t->by ? t->by : "");
    as_dim_t by = dim_answered >= 0 ? (as_dim_t)dim_answered : (as_dim_t)dim;
    rc = 0;
    if (json) {
        json_t *j = as_totals_to_json(t->year, by, rows, n, &total);
        char *s = j ? as_json_dumps(j) : NULL;
        if (s)
            printf("%s\n", s);
        else
            rc = AS_E_NOMEM;
        free(s);
        json_decref(j);
    } else if (csv) {
        printf("key,name,activities,organisations,beneficiaries,registered_poor,funds_fen,"
               "goods_fen,volunteers,volunteer_hours,social_workers,persons_lifted,jobs,"
               "trainees,income_increase_fen,villages,deep_poverty_villages,counties\n");
        for (size_t i = 0; i < n; i++)
            s_csv_row(rows[i].key, rows[i].name, &rows[i].m);
        s_csv_row("total", "合计", &total);
    } else {
        rc = s_print_table(t->year, as_dim_name(by), rows, n, &total);
    }
    free(rows);
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    if (rc)
        fprintf(stderr, "aidstat query: %s\n", as_strerror(rc));
    return rc ? 1 : 0;
}
