/* test_csvout: quoting as RFC 4180 says, every formula lead neutralised with a quote inside the
 * quoted cell, the product's own numbers (negative ones too) left numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "csvout.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char p[256];
    size_t n;
} s_buf_t;

static void s_put(void *arg, const char *p, size_t n)
{
    s_buf_t *b = arg;
    assert_true(b->n + n < sizeof b->p);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

static const char *s_text(s_buf_t *b, const char *s)
{
    b->n = 0;
    b->p[0] = 0;
    as_csv_text_put(s, s_put, b);
    return b->p;
}

static const char *s_num(s_buf_t *b, const char *s)
{
    b->n = 0;
    b->p[0] = 0;
    as_csv_num_put(s, s_put, b);
    return b->p;
}

static void test_plain_and_quoted(void **state)
{
    s_buf_t b;
    assert_string_equal(s_text(&b, "宁都县爱心协会"), "宁都县爱心协会");
    assert_string_equal(s_text(&b, ""), "");
    assert_string_equal(s_text(&b, NULL), "");
    assert_string_equal(s_text(&b, "A, B"), "\"A, B\"");
    assert_string_equal(s_text(&b, "he said \"hi\""), "\"he said \"\"hi\"\"\"");
    assert_string_equal(s_text(&b, "a\r\nb"), "\"a\r\nb\"");
    assert_string_equal(s_text(&b, "x=1"), "x=1"); /* only a leading character counts */
    assert_string_equal(s_text(&b, "'quoted"), "'quoted");
}

static void test_formulas_neutralised(void **state)
{
    s_buf_t b;
    assert_string_equal(s_text(&b, "=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
    assert_string_equal(s_text(&b, "+1+1"), "\"'+1+1\"");
    assert_string_equal(s_text(&b, "-1+1"), "\"'-1+1\"");
    assert_string_equal(s_text(&b, "@SUM(1+1)"), "\"'@SUM(1+1)\"");
    assert_string_equal(s_text(&b, "=HYPERLINK(\"http://x\",\"y\")"),
                        "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    assert_string_equal(s_text(&b, "\t=1"), "\"'\t=1\"");
    assert_string_equal(s_text(&b, "\r=1"), "\"'\r=1\"");
    /* text from outside that looks like a negative number is text too */
    assert_string_equal(s_text(&b, "-5"), "\"'-5\"");
    assert_true(as_csv_is_formula("=1"));
    assert_false(as_csv_is_formula(" =1"));
    assert_false(as_csv_is_formula(""));
    assert_false(as_csv_is_formula(NULL));
}

static void test_own_numbers(void **state)
{
    s_buf_t b;
    assert_string_equal(s_num(&b, "-1"), "-1");
    assert_string_equal(s_num(&b, "-1234.50"), "-1234.50");
    assert_string_equal(s_num(&b, "0"), "0");
    assert_string_equal(s_num(&b, "12.5%"), "12.5%");
    /* not a number's shape: then it is text, neutralised */
    assert_string_equal(s_num(&b, "-1+1"), "\"'-1+1\"");
    assert_string_equal(s_num(&b, "-"), "\"'-\"");
    assert_string_equal(s_num(&b, "1."), "1.");
    assert_string_equal(s_num(&b, "=1"), "\"'=1\"");
}

static void test_stdio(void **state)
{
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    assert_non_null(f);
    assert_int_equal(as_csv_text(f, "@x"), 0);
    fputc(',', f);
    assert_int_equal(as_csv_num(f, "-3"), 0);
    fclose(f);
    assert_string_equal(p, "\"'@x\",-3");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_quoted),
        cmocka_unit_test(test_formulas_neutralised),
        cmocka_unit_test(test_own_numbers),
        cmocka_unit_test(test_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
