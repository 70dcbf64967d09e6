/* test_division: the embedded GB/T 2260 tables of Jiangxi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "division.h"
#include "err.h"

static void test_tables_load(void **state)
{
    (void)state;
    assert_int_equal(as_division_init(), AS_OK);
    size_t n = 0;
    const as_division_t *c = as_division_counties(&n);
    assert_int_equal(n, 100);
    for (size_t i = 1; i < n; i++)
        assert_true(c[i - 1].code < c[i].code);
    as_division_cities(&n);
    assert_int_equal(n, 11);
    size_t poverty = 0;
    c = as_division_counties(&n);
    for (size_t i = 0; i < n; i++)
        poverty += c[i].poverty;
    assert_int_equal(poverty, 25);
}

static void test_lookup(void **state)
{
    (void)state;
    const as_division_t *d = as_division_find(360730);
    assert_non_null(d);
    assert_string_equal(d->name, "宁都县");
    assert_true(d->county_level);
    assert_true(d->poverty);
    assert_int_equal(d->parent, 360700);
    assert_int_equal(as_division_city_of(360730), 360700);
    assert_true(as_division_is_county(360102));
    assert_false(as_division_find(360102)->poverty);
    assert_false(as_division_is_county(360700)); /* a city, not a county */
    assert_string_equal(as_division_find(360700)->name, "赣州市");
    assert_null(as_division_find(360799));
    assert_false(as_division_is_county(110101)); /* Beijing: not this province */
    assert_int_equal(as_division_city_of(360700), 0);
}

static void test_retired_codes(void **state)
{
    (void)state;
    assert_int_equal(as_division_current(360782), 360703); /* 南康市 → 南康区 */
    assert_int_equal(as_division_current(361122), 361103); /* 广丰县 → 广丰区 */
    assert_int_equal(as_division_current(360122), 360112); /* 新建县 → 新建区 */
    assert_int_equal(as_division_current(360730), 360730);
    assert_int_equal(as_division_current(360000), 360000);
    assert_int_equal(as_division_current(999999), 0);
    assert_false(as_division_is_county(360782));
}

/* The change table has an abolished code (360105 湾里区, no successor) and a new one (360113
 * 红谷滩区, no predecessor): neither may chain into the other. */
static void test_abolished_and_new(void **state)
{
    (void)state;
    assert_int_equal(as_division_current(360105), 0);
    assert_true(as_division_was_division(360105));
    assert_int_equal(as_division_current(360113), 360113);
    assert_int_equal(as_division_current(0), 0);
    assert_true(as_division_was_division(360782));
    assert_true(as_division_was_division(360730));
    assert_true(as_division_was_division(360000));
    assert_false(as_division_was_division(360799));
    assert_false(as_division_was_division(0));
    assert_int_equal(as_division_current(360421), 360404); /* 九江县 → 柴桑区 */
    assert_int_equal(as_division_current(360727), 360783); /* 龙南县 → 龙南市 */
}

static void test_townships(void **state)
{
    (void)state;
    assert_true(as_division_township_exists(360102, 1)); /* 公园街道 */
    assert_false(as_division_township_exists(360102, 998));
    assert_false(as_division_township_exists(360102, 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_load),   cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_retired_codes), cmocka_unit_test(test_abolished_and_new),
        cmocka_unit_test(test_townships),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
