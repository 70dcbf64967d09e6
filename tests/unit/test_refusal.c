/* test_refusal: each class counts on its own, from several threads without losing a count, and
 * every class has a stage and a reason label that Prometheus accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "refusal.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

static int s_setup(void **state)
{
    as_refusal_reset();
    return 0;
}

static void test_counts_per_class(void **state)
{
    as_refusal_count(AS_REFUSE_ZAP_DENIED);
    as_refusal_count(AS_REFUSE_ZAP_DENIED);
    as_refusal_count(AS_REFUSE_HTTP_UNAUTHORISED);
    assert_int_equal(as_refusal_get(AS_REFUSE_ZAP_DENIED), 2);
    assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_UNAUTHORISED), 1);
    assert_int_equal(as_refusal_get(AS_REFUSE_INGEST_MALFORMED), 0);
    /* out of range: ignored, reads 0 and empty labels */
    as_refusal_count(AS_REFUSE_COUNT);
    as_refusal_count((as_refusal_t)-1);
    assert_int_equal(as_refusal_get(AS_REFUSE_COUNT), 0);
    assert_string_equal(as_refusal_stage(AS_REFUSE_COUNT), "");
    assert_string_equal(as_refusal_reason((as_refusal_t)-1), "");
    as_refusal_reset();
    assert_int_equal(as_refusal_get(AS_REFUSE_ZAP_DENIED), 0);
}

static void test_labels(void **state)
{
    for (int i = 0; i < AS_REFUSE_COUNT; i++) {
        const char *st = as_refusal_stage((as_refusal_t)i);
        const char *re = as_refusal_reason((as_refusal_t)i);
        assert_non_null(st);
        assert_non_null(re);
        assert_true(strlen(st) > 0 && strlen(re) > 0);
        for (const char *p = re; *p; p++)
            assert_true(islower((unsigned char)*p) || *p == '_');
        for (int j = 0; j < i; j++) /* no two classes share their labels */
            assert_false(strcmp(st, as_refusal_stage((as_refusal_t)j)) == 0 &&
                         strcmp(re, as_refusal_reason((as_refusal_t)j)) == 0);
    }
    assert_string_equal(as_refusal_stage(AS_REFUSE_QUERY_UNAUTHORISED), "query");
    assert_string_equal(as_refusal_reason(AS_REFUSE_QUERY_UNAUTHORISED), "unauthorised");
}

#define S_THREADS 4
#define S_EACH    100000

static void *s_counter(void *arg)
{
    for (int i = 0; i < S_EACH; i++)
        as_refusal_count(AS_REFUSE_INGEST_MALFORMED);
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[S_THREADS];
    for (int i = 0; i < S_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_counter, NULL), 0);
    for (int i = 0; i < S_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(as_refusal_get(AS_REFUSE_INGEST_MALFORMED), (uint64_t)S_THREADS * S_EACH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counts_per_class, s_setup),
        cmocka_unit_test_setup(test_labels, s_setup),
        cmocka_unit_test_setup(test_threads, s_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
