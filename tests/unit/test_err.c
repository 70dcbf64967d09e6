/* test_err: every aidstat code has its own text, -errno falls through to strerror, and anything
 * else (LMDB's band, positive numbers, the band's own bounds) reads "unknown error". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static void test_own_codes_distinct(void **state)
{
    const char *seen[AS_E_BASE - AS_E_LAST];
    int n = 0;
    for (int c = AS_E_BASE - 1; c > AS_E_LAST; c--) {
        const char *t = as_strerror(c);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
        assert_string_not_equal(t, "unknown error");
        assert_string_not_equal(t, "success");
        for (int i = 0; i < n; i++)
            assert_string_not_equal(t, seen[i]);
        seen[n++] = t;
    }
    assert_int_equal(n, AS_E_BASE - AS_E_LAST - 1);
    assert_string_equal(as_strerror(AS_OK), "success");
    assert_string_equal(as_strerror(AS_E_NOTFOUND), "not found");
    assert_string_equal(as_strerror(AS_E_LOCKED), "year is locked by its final report");
}

static void test_errno_passthrough(void **state)
{
    assert_string_equal(as_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(as_strerror(-EACCES), strerror(EACCES));
    assert_string_equal(as_strerror(-EPIPE), strerror(EPIPE));
    /* an errno glibc does not know: a static text, not strerror's per-thread buffer that the
     * next strerror call overwrites */
    const char *unknown = as_strerror(-4095);
    assert_string_equal(unknown, "unknown error");
    (void)strerror(4094);
    assert_string_equal(unknown, "unknown error");
}

static void test_unknown_codes(void **state)
{
    /* the band's bounds are markers, not codes; LMDB's own codes are translated elsewhere */
    assert_string_equal(as_strerror(AS_E_BASE), "unknown error");
    assert_string_equal(as_strerror(AS_E_LAST), "unknown error");
    assert_string_equal(as_strerror(-30798), "unknown error"); /* MDB_NOTFOUND */
    assert_string_equal(as_strerror(-4096), "unknown error");
    assert_string_equal(as_strerror(1), "unknown error");
    assert_string_equal(as_strerror(ENOENT), "unknown error");
    assert_string_equal(as_strerror(INT_MIN), "unknown error");
    assert_string_equal(as_strerror(INT_MAX), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_codes_distinct),
        cmocka_unit_test(test_errno_passthrough),
        cmocka_unit_test(test_unknown_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
