/* test_uscc: the GB 32100-2015 credit code on every row of data/uscc-test-vectors.csv (real codes
 * of social organisations and known-bad look-alikes) and on adversarial codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "division.h"
#include "uscc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A code with its check character computed. */
static void s_code(const char *first17, char out[19])
{
    memcpy(out, first17, 17);
    out[17] = as_uscc_check_char(first17);
    out[18] = 0;
}

/* Each vector: the check character expected by the file (computed independently when the data
 * was gathered), whether the code carries it, and the status our checker gives. */
static void test_vectors(void **state)
{
    (void)state;
    char path[512], line[2048];
    snprintf(path, sizeof path, "%s/data/uscc-test-vectors.csv", AS_SOURCE_DIR);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_non_null(strstr(line, "uscc_check_expected"));
    int rows = 0, ok = 0, check = 0, authority = 0;
    while (fgets(line, sizeof line, fp)) {
        char code[32], dept[8], type[8], division[16], expected[8], flag[8];
        int k = sscanf(line, "%31[^,],%7[^,],%7[^,],%15[^,],%*[^,],%7[^,],%7[^,],", code, dept,
                       type, division, expected, flag);
        assert_int_equal(k, 6);
        rows++;
        assert_int_equal(strlen(code), 18);
        assert_int_equal(as_uscc_check_char(code), expected[0]);
        assert_int_equal(as_uscc_division(code), (unsigned)strtoul(division, NULL, 10));
        bool carries = flag[0] == '1';
        assert_int_equal(code[17] == expected[0], carries);
        as_uscc_status_t st = as_uscc_check(code);
        if (dept[0] != '5') {
            assert_int_equal(st, AS_USCC_AUTHORITY);
            authority++;
        } else if (carries) {
            if (st != AS_USCC_OK)
                fprintf(stderr, "%s: %s\n", code, as_uscc_reason_en(st));
            assert_int_equal(st, AS_USCC_OK);
            ok++;
        } else {
            assert_int_equal(st, AS_USCC_CHECK);
            check++;
        }
    }
    fclose(fp);
    assert_int_equal(rows, 115); /* every row of the file was read */
    assert_true(ok >= 100);
    assert_true(check >= 5);
    assert_true(authority >= 2);
}

static void test_charset_and_fields(void **state)
{
    (void)state;
    char c[19];
    s_code("53360730500019795", c);
    assert_int_equal(as_uscc_check(c), AS_USCC_OK);
    /* I O S V Z are not in the set, anywhere, nor lower case */
    const char bad[] = {'I', 'O', 'S', 'V', 'Z', 'a', '-', ' '};
    for (size_t i = 0; i < sizeof bad; i++) {
        char x[19];
        memcpy(x, c, 19);
        x[12] = bad[i];
        assert_int_equal(as_uscc_check(x), AS_USCC_CHARSET);
        assert_int_equal(as_uscc_check_char(x), 0);
    }
    assert_int_equal(as_uscc_check("5336073050001979"), AS_USCC_LENGTH);
    assert_int_equal(as_uscc_check(""), AS_USCC_LENGTH);
    assert_int_equal(as_uscc_check("53360730500019795AA"), AS_USCC_LENGTH);
    /* authority 9 (market regulation) is not a social organisation; types 1/2/3/9 only */
    s_code("91360730500019795", c);
    assert_int_equal(as_uscc_check(c), AS_USCC_AUTHORITY);
    for (char t = '0'; t <= '9'; t++) {
        char first[18] = "5X360730500019795";
        first[1] = t;
        s_code(first, c);
        bool type_ok = t == '1' || t == '2' || t == '3' || t == '9';
        assert_int_equal(as_uscc_check(c), type_ok ? AS_USCC_OK : AS_USCC_TYPE);
    }
    /* every single-character change of a valid code is caught by the check character */
    s_code("52360730MJ0012345", c);
    assert_int_equal(as_uscc_check(c), AS_USCC_OK);
    static const char set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    int caught = 0, tried = 0;
    for (int pos = 8; pos < 18; pos++)
        for (const char *p = set; *p; p++) {
            if (*p == c[pos])
                continue;
            char x[19];
            memcpy(x, c, 19);
            x[pos] = *p;
            tried++;
            caught += as_uscc_check(x) != AS_USCC_OK;
        }
    assert_int_equal(caught, tried);
}

static void test_division_chars(void **state)
{
    (void)state;
    char c[19];
    const char *ok[] = {"53100000500019795", /* national (Ministry of Civil Affairs) */
                        "51360000500012345", /* the province */
                        "52360782MJ0012345", /* 南康市, retired 2013 → 360703 */
                        "52361121MJ0012345", /* 上饶县 → 广信区 */
                        "52360105MJ0012345", /* 湾里区, abolished without successor */
                        "52360730MJ0012345", "51310110501144395", "53440300MJL016788"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        s_code(ok[i], c);
        assert_int_equal(as_uscc_check(c), AS_USCC_OK);
    }
    const char *bad[] = {"52369999MJ0012345", /* not a division of Jiangxi, ever */
                         "52360799MJ0012345", "52990000MJ0012345", /* no province 99 */
                         "52000000MJ0012345", "5236A730MJ0012345"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_code(bad[i], c);
        assert_int_equal(as_uscc_check(c), AS_USCC_DIVISION);
    }
    assert_int_equal(as_uscc_division("5236A730MJ0012345X"), 0);
    assert_int_equal(as_division_current(360782), 360703);
}

static void test_reasons(void **state)
{
    (void)state;
    for (int s = AS_USCC_OK; s <= AS_USCC_CHECK; s++) {
        assert_true(strlen(as_uscc_reason_zh((as_uscc_status_t)s)) > 0);
        assert_true(strlen(as_uscc_reason_en((as_uscc_status_t)s)) > 0);
    }
    assert_non_null(strstr(as_uscc_reason_en(AS_USCC_CHECK), "check character"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_charset_and_fields),
        cmocka_unit_test(test_division_chars),
        cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
