/* test_table: the command line's aligned tables — display widths of ASCII, CJK, full-width
 * punctuation, Hangul, supplementary ideographs and broken UTF-8; header, rule and alignment
 * (numbers right, text left, no trailing blanks) with Chinese headings; NULL cells; many rows.
 * cli/ is not a library, so the module is compiled into this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../cli/table.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_widths(void **state)
{
    assert_int_equal(as_table_width(""), 0);
    assert_int_equal(as_table_width("abc 123"), 7);
    assert_int_equal(as_table_width("宁都县"), 6);
    assert_int_equal(as_table_width("资金(元)"), 8);         /* ASCII parentheses are narrow */
    assert_int_equal(as_table_width("资金（元）"), 10);      /* full-width ones are wide */
    assert_int_equal(as_table_width("，。、"), 6);           /* CJK punctuation */
    assert_int_equal(as_table_width("한국"), 4);             /* Hangul */
    assert_int_equal(as_table_width("\xF0\xA0\x80\x80"), 2); /* U+20000, extension B */
    assert_int_equal(as_table_width("é"), 1);                /* Latin with a diacritic */
    assert_int_equal(as_table_width("ＡＢ"), 4);             /* full-width Latin */
    assert_int_equal(as_table_width("ｱ"), 1);                /* half-width katakana */
    /* broken UTF-8: every stray byte one column, never reading past the end */
    assert_int_equal(as_table_width("\x80"
                                    "a"),
                     2);
    assert_int_equal(as_table_width("a\xE5\xAE"), 2); /* a character cut at the end */
    assert_int_equal(as_table_width("\xE5\xAE"
                                    "b"),
                     2);
    assert_int_equal(as_table_width("\xFF\xFE"), 2);
}

/* Prints t into a string (caller frees). */
static char *s_print(const as_table_t *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    as_table_print(t, f);
    fclose(f);
    return buf;
}

static void test_alignment(void **state)
{
    const bool right[3] = {false, true, true};
    as_table_t *t = as_table_new(3, right);
    assert_non_null(t);
    const char *h[3] = {"县区", "活动数", "资金(元)"};
    const char *r1[3] = {"宁都县", "12", "1234.50"};
    const char *r2[3] = {"于都县", "3", "5.00"};
    const char *r3[3] = {"Total", "15", "1239.50"};
    assert_int_equal(as_table_add(t, h), 0);
    assert_int_equal(as_table_add(t, r1), 0);
    assert_int_equal(as_table_add(t, r2), 0);
    assert_int_equal(as_table_add(t, r3), 0);
    char *out = s_print(t);
    /* widths: 6, 6, 8 */
    assert_string_equal(out, "县区    活动数  资金(元)\n"
                             "------------------------\n"
                             "宁都县      12   1234.50\n"
                             "于都县       3      5.00\n"
                             "Total       15   1239.50\n");
    free(out);
    as_table_destroy(&t);
    as_table_destroy(&t); /* safe twice */
    assert_null(t);
    as_table_destroy(NULL);
}

static void test_text_last_column_and_null_cells(void **state)
{
    as_table_t *t = as_table_new(2, NULL); /* all left-aligned */
    const char *h[2] = {"code", "名称"};
    const char *r1[2] = {"360730", "宁都县慈善会"};
    const char *r2[2] = {NULL, "x"};
    const char *r3[2] = {"1", NULL};
    assert_int_equal(as_table_add(t, h), 0);
    assert_int_equal(as_table_add(t, r1), 0);
    assert_int_equal(as_table_add(t, r2), 0);
    assert_int_equal(as_table_add(t, r3), 0);
    char *out = s_print(t);
    /* the last column is not padded (widths 6 and 12) */
    assert_string_equal(out, "code    名称\n"
                             "--------------------\n"
                             "360730  宁都县慈善会\n"
                             "        x\n"
                             "1       \n");
    free(out);
    as_table_destroy(&t);

    /* a right-aligned last column is padded on its left */
    const bool right[2] = {false, true};
    t = as_table_new(2, right);
    const char *a[2] = {"k", "v"}, *b[2] = {"kk", "1000"};
    as_table_add(t, a);
    as_table_add(t, b);
    out = s_print(t);
    assert_string_equal(out, "k      v\n--------\nkk  1000\n");
    free(out);
    as_table_destroy(&t);
}

static void test_many_rows(void **state)
{
    const bool right[2] = {false, true};
    as_table_t *t = as_table_new(2, right);
    const char *h[2] = {"月份", "活动"};
    assert_int_equal(as_table_add(t, h), 0);
    char month[16], n[16];
    for (int i = 0; i < 1000; i++) { /* well past the first allocation */
        snprintf(month, sizeof month, "2026-%02d", i % 12 + 1);
        snprintf(n, sizeof n, "%d", i * 37);
        const char *r[2] = {month, n};
        assert_int_equal(as_table_add(t, r), 0);
    }
    char *out = s_print(t);
    size_t lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1002);
    /* widths 7 and 5: every data line is 14 columns */
    assert_non_null(strstr(out, "\n2026-01      0\n"));
    assert_non_null(strstr(out, "\n2026-04  36963\n")); /* row 999 */
    assert_memory_equal(out, "月份      活动\n--------------\n", strlen("月份      活动\n") + 15);
    free(out);
    as_table_destroy(&t);
}

static void test_empty_table(void **state)
{
    as_table_t *t = as_table_new(3, NULL);
    char *out = s_print(t);
    assert_string_equal(out, "");
    free(out);
    as_table_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_text_last_column_and_null_cells),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
