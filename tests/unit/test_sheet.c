/* test_sheet: the spreadsheet reader — encodings (UTF-8 and GB18030 giving the same rows, also
 * across buffer boundaries), RFC 4180 quoting, CRLF, BOM, a 1 MB cell, empty and header-only
 * files, unknown, missing and duplicate columns, ragged rows, NDJSON with Chinese keys. */
#include "sheet.h"
#include "err.h"

#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    char dir[64];
    char path[128];
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test_sheet.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char *s_write(fx_t *f, const char *name, const char *data, size_t len)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    return f->path;
}

static const char *s_writes(fx_t *f, const char *name, const char *text)
{
    return s_write(f, name, text, strlen(text));
}

/* Converts UTF-8 text to GB18030 with iconv; the caller frees. */
static char *s_to_gb18030(const char *utf8, size_t len, size_t *outlen)
{
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    assert_true(cd != (iconv_t)-1);
    size_t cap = len * 2 + 16, left = cap, inleft = len;
    char *out = malloc(cap), *in = (char *)utf8, *o = out;
    assert_true(iconv(cd, &in, &inleft, &o, &left) != (size_t)-1);
    iconv_close(cd);
    *outlen = cap - left;
    return out;
}

static const char *s_cell(const as_row_t *r, as_column_t c)
{
    return r->cell[c] ? r->cell[c] : "";
}

static const char *HEADER_ZH = "县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期,备注\n";

/* Appends n rows of Chinese content to a growing string. */
static char *s_rows(const char *header, size_t n, size_t *len)
{
    size_t cap = strlen(header) + n * 200 + 1, k = 0;
    char *t = malloc(cap);
    k += (size_t)sprintf(t, "%s", header);
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(
            t + k,
            "360730,51360730MJ%07zuX,宁都县第%zu志愿者协会,产业扶贫,2024-%02zu-%02zu,"
            "\"备注，含逗号和“引号”%zu\"\n",
            i, i, 1 + i % 12, 1 + i % 28, i);
    *len = k;
    return t;
}

/* ---- encodings ------------------------------------------------------------------------------ */

static void s_compare(const char *a, const char *b, size_t expect_rows, as_sheet_encoding_t eb)
{
    int ea, e2;
    as_sheet_t *sa = as_sheet_open(a, &ea), *sb = as_sheet_open(b, &e2);
    assert_int_equal(ea, 0);
    assert_int_equal(e2, 0);
    size_t rows = 0;
    for (;;) {
        as_row_t ra, rb;
        size_t na, nb;
        int x = as_sheet_next(sa, &ra, &na), y = as_sheet_next(sb, &rb, &nb);
        assert_int_equal(x, y);
        if (x == 0)
            break;
        assert_int_equal(x, 1);
        assert_int_equal(na, nb);
        assert_int_equal(as_sheet_line(sa), as_sheet_line(sb));
        for (int c = 0; c < AS_COL_COUNT; c++) {
            assert_int_equal(ra.len[c], rb.len[c]);
            assert_string_equal(s_cell(&ra, c), s_cell(&rb, c));
        }
        rows++;
    }
    assert_int_equal(rows, expect_rows);
    assert_int_equal(as_sheet_encoding(sa), AS_SHEET_UTF8);
    assert_int_equal(as_sheet_encoding(sb), eb);
    as_sheet_destroy(&sa);
    as_sheet_destroy(&sb);
    as_sheet_destroy(&sb);
}

static void test_gb18030_same_rows(void **state)
{
    fx_t *f = *state;
    size_t len, glen;
    /* ~8 MB: several buffer fills and conversion chunks, characters cut at their boundaries */
    char *u = s_rows(HEADER_ZH, 60000, &len);
    char *g = s_to_gb18030(u, len, &glen);
    char a[160], b[160];
    snprintf(a, sizeof a, "%s", s_write(f, "utf8.csv", u, len));
    snprintf(b, sizeof b, "%s", s_write(f, "gb.csv", g, glen));
    s_compare(a, b, 60000, AS_SHEET_GB18030);

    /* the same file in GB18030 with a GB18030 BOM (84 31 95 33) */
    char *g2 = malloc(glen + 4);
    memcpy(g2, "\x84\x31\x95\x33", 4);
    memcpy(g2 + 4, g, glen);
    snprintf(b, sizeof b, "%s", s_write(f, "gbbom.csv", g2, glen + 4));
    s_compare(a, b, 60000, AS_SHEET_GB18030);
    free(u), free(g), free(g2);
}

/* Only ASCII for the first buffer fills, Chinese afterwards: the decision waits for it. */
static void test_gb18030_after_ascii(void **state)
{
    fx_t *f = *state;
    const char *hdr = "county_code,org_credit_code,org_name,area,activity_date,note\n";
    size_t cap = 12u << 20, k = 0;
    char *u = malloc(cap);
    k += (size_t)sprintf(u, "%s", hdr);
    for (size_t i = 0; k < (9u << 20); i++)
        k += (size_t)sprintf(u + k, "360730,51360730MJ%07zuX,Org %zu,industry,2024-01-02,plain\n",
                             i, i);
    for (size_t i = 0; i < 1000; i++)
        k += (size_t)sprintf(u + k,
                             "360730,51360730MJ%07zuX,宁都县爱心协会%zu,产业扶贫,2024-01-02,"
                             "中文备注\n",
                             i, i);
    size_t glen;
    char *g = s_to_gb18030(u, k, &glen);
    char a[160], b[160];
    snprintf(a, sizeof a, "%s", s_write(f, "utf8.csv", u, k));
    snprintf(b, sizeof b, "%s", s_write(f, "gb.csv", g, glen));
    int err;
    as_sheet_t *s = as_sheet_open(b, &err);
    assert_int_equal(err, 0);
    as_row_t r;
    size_t n = 0, last = 0;
    while (as_sheet_next(s, &r, &last) == 1)
        n++;
    assert_string_equal(as_sheet_error(s), "");
    assert_int_equal(n, last);
    assert_string_equal(s_cell(&r, AS_COL_ORG_NAME), "宁都县爱心协会999");
    assert_int_equal(as_sheet_encoding(s), AS_SHEET_GB18030);
    as_sheet_destroy(&s);
    free(u), free(g);
}

/* Reads every row of p; the rows rejected for their encoding are listed in bad (their numbers,
 * and the column of the first). Returns the number of good rows. */
static size_t s_enc_rows(const char *p, as_sheet_encoding_t want, size_t *bad, size_t nbad,
                         const char *col)
{
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    assert_int_equal(err, 0);
    as_row_t r;
    size_t rowno, good = 0, k = 0;
    int rc;
    while ((rc = as_sheet_next(s, &r, &rowno)) != 0) {
        if (rc == 1) {
            good++;
            continue;
        }
        assert_int_equal(rc, AS_E_INVALID);
        assert_true(k < nbad);
        assert_int_equal(rowno, bad[k]);
        const as_field_error_t *e = as_sheet_last_error(s);
        assert_string_equal(e->reason_en, "invalid character encoding");
        assert_string_equal(e->reason_zh, "无效的字符编码");
        if (k == 0)
            assert_string_equal(e->column, col);
        k++;
    }
    assert_int_equal(k, nbad);
    assert_int_equal(as_sheet_encoding(s), want);
    as_sheet_destroy(&s);
    return good;
}

/* A UTF-8 file with one stray byte stays UTF-8: only the row holding it is rejected, naming
 * the column, and every other row is read (never decoded as GB18030 garbage). */
static void test_stray_byte_rejects_its_row_only(void **state)
{
#define H    "county_code,org_credit_code,org_name,area,activity_date\n"
#define R(n) "360730,X," n ",industry,2024-01-01\n"
    fx_t *f = *state;
    const char *p =
        s_writes(f, "stray.csv", H R("宁都县爱心协会") R("X\xFFY") R("瑞金市慈善会") R("\xE5\x8E"));
    size_t bad2[] = {2, 4};
    assert_int_equal(s_enc_rows(p, AS_SHEET_UTF8, bad2, 2, "org_name"), 2);
    /* the stray byte before any other non-ASCII text */
    p = s_writes(f, "stray2.csv", H R("\xC3(") R("宁都县爱心协会") R("瑞金市慈善会"));
    size_t bad1[] = {1};
    assert_int_equal(s_enc_rows(p, AS_SHEET_UTF8, bad1, 1, "org_name"), 2);
    /* in county_code, with a Chinese header */
    p = s_writes(
        f, "bad.csv",
        "县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期\n"
        "\xFF\xFF\xFF,1,宁都县,产业扶贫,2024-01-01\n360730,2,宁都县,产业扶贫,2024-01-01\n");
    assert_int_equal(s_enc_rows(p, AS_SHEET_UTF8, bad1, 1, "county_code"), 1);
    /* a column that is ignored does not count */
    p = s_writes(f, "ign.csv",
                 "county_code,org_credit_code,org_name,area,activity_date,whatever\n"
                 "360730,X,宁都县,industry,2024-01-01,\xFF\n");
    assert_int_equal(s_enc_rows(p, AS_SHEET_UTF8, NULL, 0, ""), 1);
    /* NDJSON: the line holding it */
    p = s_writes(f, "j.ndjson", "{\"org_name\":\"宁都县\"}\n{\"org_name\":\"X\xFF\"}\n{\"a\":1}\n");
    size_t bad2b[] = {2};
    assert_int_equal(s_enc_rows(p, AS_SHEET_UTF8, bad2b, 1, ""), 2);
#undef H
#undef R
}

/* A GB18030 file with one byte that is not GB18030: that row only, the rest decoded right. */
static void test_gb18030_bad_byte_rejects_its_row_only(void **state)
{
    fx_t *f = *state;
    const char *u = "county_code,org_credit_code,org_name,area,activity_date,note\n"
                    "360730,X,宁都县爱心协会,产业扶贫,2024-01-01,中文备注\n"
                    "360730,X,瑞金市慈善会,产业扶贫,2024-01-01,BAD\n"
                    "360730,X,于都县扶贫协会,产业扶贫,2024-01-01,中文\n";
    size_t glen;
    char *g = s_to_gb18030(u, strlen(u), &glen);
    char *m = memmem(g, glen, "BAD", 3);
    assert_non_null(m);
    m[1] = (char)0xFF; /* neither GB18030 nor UTF-8 */
    m[2] = (char)0x80;
    const char *p = s_write(f, "gb.csv", g, glen);
    free(g);
    size_t bad[] = {2};
    assert_int_equal(s_enc_rows(p, AS_SHEET_GB18030, bad, 1, "note"), 2);
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    as_row_t r;
    assert_int_equal(as_sheet_next(s, &r, NULL), 1);
    assert_string_equal(s_cell(&r, AS_COL_ORG_NAME), "宁都县爱心协会");
    assert_int_equal(as_sheet_next(s, &r, NULL), AS_E_INVALID);
    assert_string_equal(as_sheet_last_error(s)->value, "B??"); /* shown as valid text */
    assert_int_equal(as_sheet_next(s, &r, NULL), 1);
    assert_string_equal(s_cell(&r, AS_COL_ORG_NAME), "于都县扶贫协会");
    as_sheet_destroy(&s);
}

/* Excel's "Unicode text" is UTF-16: a file-level error that says so by name. */
static void test_not_an_encoding(void **state)
{
    fx_t *f = *state;
    const char *p = s_write(f, "u16.csv",
                            "\xFF\xFE"
                            "a\0,\0b\0\n\0",
                            10);
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    assert_int_equal(err, AS_E_ENCODING);
    assert_non_null(strstr(as_sheet_error(s), "UTF-16"));
    as_sheet_destroy(&s);
}

/* ---- CSV structure -------------------------------------------------------------------------- */

static void test_quoting(void **state)
{
    fx_t *f = *state;
    const char *p = s_writes(f, "q.csv",
                             "\xEF\xBB\xBF"
                             "org_name,county_code,org_credit_code,area,activity_date,note\r\n"
                             "\"A, B\",360730,X,industry,2024-01-01,\"he said \"\"hi\"\"\"\r\n"
                             "\r\n"
                             "C,360730,X,industry,2024-01-01,\"line1\r\nline2\nline3\"\r\n"
                             ",,,,,\r\n"
                             "\"\",360730,X,industry,2024-01-01,\"\"\"\"\r\n"
                             "D,360730,X,industry,2024-01-01,last");
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    assert_int_equal(err, 0);
    assert_int_equal(as_sheet_format(s), AS_SHEET_CSV);
    as_row_t r;
    size_t n;
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(as_sheet_line(s), 2);
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "A, B");
    assert_int_equal(r.len[AS_COL_ORG_NAME], 4);
    assert_string_equal(r.cell[AS_COL_NOTE], "he said \"hi\"");
    assert_string_equal(r.cell[AS_COL_COUNTY_CODE], "360730");
    assert_null(r.cell[AS_COL_VILLAGE_CODE]);
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(as_sheet_line(s), 4);
    assert_string_equal(r.cell[AS_COL_NOTE], "line1\r\nline2\nline3");
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(n, 3);
    assert_int_equal(as_sheet_line(s), 8);
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "");
    assert_string_equal(r.cell[AS_COL_NOTE], "\"");
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(n, 4);
    assert_string_equal(r.cell[AS_COL_NOTE], "last");
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "D");
    assert_int_equal(as_sheet_next(s, &r, &n), 0);
    assert_int_equal(as_sheet_next(s, &r, &n), 0);
    size_t nw;
    as_sheet_warnings(s, &nw);
    assert_int_equal(nw, 0);
    as_sheet_destroy(&s);
}

static void test_crlf_and_lf_same(void **state)
{
    fx_t *f = *state;
    char a[160];
    snprintf(a, sizeof a, "%s",
             s_writes(f, "lf.csv",
                      "县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期\n"
                      "360730,X,甲,产业扶贫,2024/1/2\n"));
    const char *b = s_writes(f, "crlf.csv",
                             "\xEF\xBB\xBF县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期\r\n"
                             "360730,X,甲,产业扶贫,2024/1/2\r\n");
    s_compare(a, b, 1, AS_SHEET_UTF8);
}

static void test_big_cell(void **state)
{
    fx_t *f = *state;
    size_t big = 1u << 20, cap = big * 2 + 4096;
    char *t = malloc(cap);
    size_t k = (size_t)sprintf(t, "%s", HEADER_ZH);
    for (int row = 0; row < 6; row++) { /* 6 MB: records longer than what is left of a fill */
        k += (size_t)sprintf(t + k, "360730,X,甲,产业扶贫,2024-01-02,\"");
        if (k + big + 64 > cap)
            t = realloc(t, cap *= 2);
        memset(t + k, 'a' + row, big);
        k += big;
        k += (size_t)sprintf(t + k, "\"\n");
    }
    const char *p = s_write(f, "big.csv", t, k);
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    assert_int_equal(err, 0);
    as_row_t r;
    for (int row = 0; row < 6; row++) {
        assert_int_equal(as_sheet_next(s, &r, NULL), 1);
        assert_int_equal(r.len[AS_COL_NOTE], big);
        assert_int_equal(r.cell[AS_COL_NOTE][0], 'a' + row);
        assert_int_equal(r.cell[AS_COL_NOTE][big - 1], 'a' + row);
        assert_int_equal(r.cell[AS_COL_NOTE][big], 0);
    }
    assert_int_equal(as_sheet_next(s, &r, NULL), 0);
    as_sheet_destroy(&s);
    free(t);
}

static void test_empty_and_header_only(void **state)
{
    fx_t *f = *state;
    const char *cases[] = {"", "\xEF\xBB\xBF", "\n\r\n\n"};
    for (size_t i = 0; i < 3; i++) {
        int err;
        as_sheet_t *s = as_sheet_open(s_writes(f, "empty.csv", cases[i]), &err);
        assert_int_equal(err, AS_E_PARSE);
        assert_non_null(strstr(as_sheet_error(s), "empty"));
        as_row_t r;
        assert_int_equal(as_sheet_next(s, &r, NULL), AS_E_PARSE);
        as_sheet_destroy(&s);
    }
    int err;
    as_sheet_t *s = as_sheet_open(s_writes(f, "h.csv", HEADER_ZH), &err);
    assert_int_equal(err, 0);
    as_row_t r;
    assert_int_equal(as_sheet_next(s, &r, NULL), 0);
    size_t nw;
    const as_field_error_t *w = as_sheet_warnings(s, &nw);
    assert_int_equal(nw, 1);
    assert_non_null(strstr(w[0].reason_en, "no data rows"));
    as_sheet_destroy(&s);

    err = 0;
    s = as_sheet_open("/nonexistent/x.csv", &err);
    assert_non_null(s);
    assert_true(err < 0);
    assert_non_null(strstr(as_sheet_error(s), "cannot open"));
    as_sheet_destroy(&s);
}

static void test_columns(void **state)
{
    fx_t *f = *state;
    int err;
    /* unknown columns: reported, not fatal; their cells are ignored */
    as_sheet_t *s = as_sheet_open(
        s_writes(f, "u.csv",
                 "联系人,county_code,org_credit_code,组织名称,area,activity_date,颜色\n"
                 "张三,360730,X,甲,industry,2024-01-01,红\n"),
        &err);
    assert_int_equal(err, 0);
    size_t nw;
    const as_field_error_t *w = as_sheet_warnings(s, &nw);
    assert_int_equal(nw, 2);
    assert_string_equal(w[0].value, "联系人");
    assert_string_equal(w[1].value, "颜色");
    as_row_t r;
    assert_int_equal(as_sheet_next(s, &r, NULL), 1);
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "甲");
    as_sheet_destroy(&s);

    /* a missing required column is a file-level error naming it */
    s = as_sheet_open(s_writes(f, "m.csv", "county_code,org_name,area,activity_date\n1,2,3,4\n"),
                      &err);
    assert_int_equal(err, AS_E_PARSE);
    assert_non_null(strstr(as_sheet_error(s), "org_credit_code"));
    assert_non_null(strstr(as_sheet_last_error(s)->reason_zh, "统一社会信用代码"));
    as_sheet_destroy(&s);

    /* the same column twice (in English and in Chinese) */
    s = as_sheet_open(s_writes(f, "d.csv",
                               "county_code,org_credit_code,org_name,area,"
                               "activity_date,帮扶领域\n"),
                      &err);
    assert_int_equal(err, AS_E_PARSE);
    assert_non_null(strstr(as_sheet_error(s), "duplicate"));
    as_sheet_destroy(&s);
}

static void test_ragged_rows(void **state)
{
    fx_t *f = *state;
    int err;
    as_sheet_t *s = as_sheet_open(s_writes(f, "r.csv",
                                           "county_code,org_credit_code,org_name,area,"
                                           "activity_date\n"
                                           "360730,X,甲,industry,2024-01-01\n"
                                           "360730,X,乙,industry\n"
                                           "360730,X,丙,industry,2024-01-01,extra\n"
                                           "360730,X,丁,industry,2024-01-01,,\n"
                                           "360730,X,\"戊\n"),
                                  &err);
    assert_int_equal(err, 0);
    as_row_t r;
    size_t n;
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(n, 2);
    assert_int_equal(as_sheet_line(s), 3);
    assert_non_null(strstr(as_sheet_error(s), "4 cells"));
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(n, 3);
    assert_int_equal(as_sheet_next(s, &r, &n), 1); /* trailing empty cells, as Excel writes */
    assert_int_equal(n, 4);
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "丁");
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(n, 5);
    assert_non_null(strstr(as_sheet_error(s), "quote"));
    assert_int_equal(as_sheet_next(s, &r, &n), 0);
    as_sheet_destroy(&s);
}

/* ---- NDJSON --------------------------------------------------------------------------------- */

static void test_ndjson(void **state)
{
    fx_t *f = *state;
    const char *p =
        s_writes(f, "a.txt",
                 "{\"县区代码\":\"360730\",\"统一社会信用代码\":\"X\",\"组织名称\":"
                 "\"宁都县\\\"爱心\\\"协会\","
                 "\"帮扶领域\":\"产业扶贫\",\"活动日期\":\"2024-03-01\",\"受益人数\":120,"
                 "\"帮扶资金(元)\":1234.5,\"深度贫困村\":true,\"备注\":null,\"颜色\":\"红\"}\n"
                 "\n"
                 "[1,2]\n"
                 "{\"county_code\":360730,\"org_name\":\"乙\",\"area\":{}}\n"
                 "{\"county_code\":360730,\"org_name\":\"丙\",\"颜色\":1}\n"
                 "{bad json\n");
    int err;
    as_sheet_t *s = as_sheet_open(p, &err);
    assert_int_equal(err, 0);
    assert_int_equal(as_sheet_format(s), AS_SHEET_NDJSON);
    as_row_t r;
    size_t n;
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_int_equal(n, 1);
    assert_string_equal(r.cell[AS_COL_COUNTY_CODE], "360730");
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "宁都县\"爱心\"协会");
    assert_string_equal(r.cell[AS_COL_AREA], "产业扶贫");
    assert_string_equal(r.cell[AS_COL_BENEFICIARIES], "120");
    assert_string_equal(r.cell[AS_COL_FUNDS_YUAN], "1234.5");
    assert_string_equal(r.cell[AS_COL_DEEP_POVERTY_VILLAGE], "1");
    assert_null(r.cell[AS_COL_NOTE]);
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(n, 2);
    assert_int_equal(as_sheet_line(s), 3);
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(as_sheet_next(s, &r, &n), 1);
    assert_string_equal(r.cell[AS_COL_ORG_NAME], "丙");
    assert_string_equal(r.cell[AS_COL_COUNTY_CODE], "360730");
    assert_int_equal(as_sheet_next(s, &r, &n), AS_E_INVALID);
    assert_int_equal(as_sheet_next(s, &r, &n), 0);
    size_t nw;
    const as_field_error_t *w = as_sheet_warnings(s, &nw);
    assert_int_equal(nw, 1); /* 颜色 reported once */
    assert_string_equal(w[0].value, "颜色");
    as_sheet_destroy(&s);
}

/* ---- whole files into events ---------------------------------------------------------------- */

typedef struct {
    size_t events, errors, warnings, file_errors;
    char first_error_col[48];
} counts_t;

static int s_on_event(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
    counts_t *c = arg;
    assert_int_equal(ev->source_row, rowno);
    assert_string_equal(ev->source_file, "ev.csv");
    c->events++;
    return 0;
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    counts_t *c = arg;
    if (rowno == 0)
        c->file_errors++;
    else if (c->errors++ == 0)
        snprintf(c->first_error_col, sizeof c->first_error_col, "%s", e[0].column);
    return 0;
}

static int s_on_warning(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    ((counts_t *)arg)->warnings++;
    return 0;
}

static void test_read_events(void **state)
{
    fx_t *f = *state;
    size_t big = 1u << 20;
    char *t = malloc(big + 4096);
    size_t k = (size_t)sprintf(t, "\xEF\xBB\xBF"
                                  "事件编号,县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期,"
                                  "受益人数,建档立卡贫困人口数,帮扶资金(元),备注,联系人\r\n"
                                  "e1,360730,53360730MJD010449K,宁都县慈善会,产业扶贫,2024-03-01,"
                                  "10,5,100.50,,\r\n"
                                  "e2,360730,53360730MJD010449K,宁都县慈善会,产业扶贫,2024-03-01,"
                                  "10,5,100.50,\"");
    memset(t + k, 'x', big);
    k += big;
    k +=
        (size_t)sprintf(t + k, "\",\r\n"
                               "e3,360730,53360730MJD010449K,宁都县慈善会,产业扶贫,2024-03-01\r\n");
    const char *p = s_write(f, "ev.csv", t, k);
    free(t);
    counts_t c = {0};
    as_sheet_handler_t h = {s_on_event, s_on_error, s_on_warning, &c};
    as_validate_ctx_t ctx = {.county = 360730, .today = as_today_cst()};
    as_sheet_stats_t st;
    assert_int_equal(as_sheet_read_events(p, &ctx, &h, &st), 0);
    assert_int_equal(st.rows, 3);
    assert_int_equal(st.rejected, 2); /* the 1 MB note (validator), the ragged row (reader) */
    assert_int_equal(c.errors, 2);
    assert_string_equal(c.first_error_col, "note");
    assert_int_equal(c.warnings, 1);
    assert_int_equal(c.file_errors, 0);
    assert_int_equal(st.valid + st.rejected, st.rows);
    assert_int_equal(c.events, st.valid);

    memset(&c, 0, sizeof c);
    assert_int_equal(as_sheet_read_events(s_writes(f, "e.csv", ""), &ctx, &h, &st), AS_E_PARSE);
    assert_int_equal(c.file_errors, 1);
}

/* The fd API reads the file the descriptor holds, never the name again: the name swapped for a
 * link to another file after the open changes nothing. */
static void test_reads_the_descriptor_not_the_name(void **state)
{
    fx_t *f = *state;
    char other[160];
    snprintf(other, sizeof other, "%s",
             s_writes(f, "other.csv",
                      "county_code,org_credit_code,org_name,area,activity_date\n"
                      "360730,X,OTHER,industry,2024-01-01\n"));
    const char *p = s_writes(f, "mine.csv",
                             "county_code,org_credit_code,org_name,area,activity_date\n"
                             "360730,X,MINE,industry,2024-01-01\n");
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(other, p), 0);
    int err;
    as_sheet_t *s = as_sheet_open_fd(fd, "mine.csv", &err);
    assert_int_equal(err, 0);
    as_row_t r;
    assert_int_equal(as_sheet_next(s, &r, NULL), 1);
    assert_string_equal(s_cell(&r, AS_COL_ORG_NAME), "MINE");
    as_sheet_destroy(&s);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* borrowed: still open */
    close(fd);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gb18030_same_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_gb18030_after_ascii, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_not_an_encoding, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stray_byte_rejects_its_row_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_gb18030_bad_byte_rejects_its_row_only, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_quoting, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_crlf_and_lf_same, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_big_cell, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_header_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_columns, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ragged_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ndjson, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_read_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reads_the_descriptor_not_the_name, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests_name("sheet", tests, NULL, NULL);
}
