/* test_metrics: counters, per-reason rejections and the two histograms, and the shape of the
 * Prometheus text format 0.0.4 checked line by line — HELP and TYPE once per family before its
 * samples, families never interleaved, valid names, labels and values, cumulative buckets in
 * increasing order ending in +Inf equal to _count, the text ending in a newline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"
#include "refusal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small checker of the text format --------------------------------------------------- */

#define MAXFAM 64

typedef struct {
    char name[96];
    char type[16];
    bool help, ended;
    double last_le, last_bucket; /* histograms: previous bucket */
    bool inf_seen;
    double inf, count;
} fam_t;

typedef struct {
    fam_t fam[MAXFAM];
    int n;
    int cur; /* family of the previous sample, -1 before any */
} shape_t;

static fam_t *s_fam(shape_t *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->fam[i].name, name))
            return &s->fam[i];
    return NULL;
}

static bool s_valid_name(const char *n, size_t len)
{
    if (!len || !(isalpha((unsigned char)n[0]) || n[0] == '_' || n[0] == ':'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == ':'))
            return false;
    return true;
}

/* The family a sample name belongs to: itself, or for histograms without its suffix. */
static fam_t *s_family_of(shape_t *s, const char *name, const char **suffix)
{
    *suffix = "";
    fam_t *f = s_fam(s, name);
    if (f)
        return f;
    static const char *sfx[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t nl = strlen(name), sl = strlen(sfx[i]);
        if (nl > sl && !strcmp(name + nl - sl, sfx[i])) {
            char base[96];
            snprintf(base, sizeof base, "%.*s", (int)(nl - sl), name);
            f = s_fam(s, base);
            if (f && !strcmp(f->type, "histogram")) {
                *suffix = sfx[i];
                return f;
            }
        }
    }
    return NULL;
}

/* Checks text; on the first problem fails the test naming the line. */
static void s_check_shape(const char *text, size_t len, shape_t *s)
{
    memset(s, 0, sizeof *s);
    s->cur = -1;
    assert_int_equal(strlen(text), len);
    assert_true(len > 0 && text[len - 1] == '\n');
    char line[512];
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
        p = nl + 1;
        if (!line[0])
            fail_msg("empty line");
        char name[96], rest[400];
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            if (sscanf(line + 7, "%95s %399[^\n]", name, rest) != 2)
                fail_msg("bad comment: %s", line);
            assert_true(s_valid_name(name, strlen(name)));
            fam_t *f = s_fam(s, name);
            if (!f) {
                assert_true(s->n < MAXFAM);
                f = &s->fam[s->n++];
                snprintf(f->name, sizeof f->name, "%s", name);
                f->last_le = -INFINITY;
            }
            if (f->ended || (s->cur >= 0 && &s->fam[s->cur] == f))
                fail_msg("HELP/TYPE after samples of %s", name);
            if (line[2] == 'H') {
                if (f->help)
                    fail_msg("second HELP for %s", name);
                f->help = true;
            } else {
                if (f->type[0])
                    fail_msg("second TYPE for %s", name);
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram"))
                    fail_msg("type %s", rest);
                snprintf(f->type, sizeof f->type, "%.15s", rest);
            }
            continue;
        }
        assert_true(line[0] != '#');
        /* name{labels} value */
        size_t nlen = strcspn(line, "{ ");
        if (!s_valid_name(line, nlen))
            fail_msg("bad metric name in: %s", line);
        snprintf(name, sizeof name, "%.*s", (int)nlen, line);
        const char *q = line + nlen;
        char le[32] = "";
        if (*q == '{') {
            const char *end = strchr(q, '}');
            assert_non_null(end);
            /* key="value"(,key="value")* */
            for (const char *r = q + 1; r < end;) {
                size_t kl = strcspn(r, "=");
                assert_true(s_valid_name(r, kl));
                assert_true(r[kl + 1] == '"');
                const char *v = r + kl + 2, *ve = strchr(v, '"');
                assert_true(ve && ve < end);
                if (kl == 2 && !strncmp(r, "le", 2))
                    snprintf(le, sizeof le, "%.*s", (int)(ve - v), v);
                r = ve + 1;
                if (*r == ',')
                    r++;
                else
                    assert_true(r == end);
            }
            q = end + 1;
        }
        if (*q != ' ')
            fail_msg("no blank before the value: %s", line);
        char *vend;
        double v = strtod(q + 1, &vend);
        if (*vend || vend == q + 1)
            fail_msg("bad value: %s", line);
        const char *suffix;
        fam_t *f = s_family_of(s, name, &suffix);
        if (!f || !f->type[0] || !f->help)
            fail_msg("sample without HELP and TYPE: %s", line);
        int idx = (int)(f - s->fam);
        if (s->cur != idx) {
            if (f->ended)
                fail_msg("family %s interleaved", f->name);
            if (s->cur >= 0)
                s->fam[s->cur].ended = true;
            s->cur = idx;
        }
        if (!strcmp(f->type, "counter") || !strcmp(f->type, "histogram"))
            assert_true(v >= 0);
        if (!strcmp(suffix, "_bucket")) {
            assert_true(le[0]);
            assert_false(f->inf_seen);
            double lv = strcmp(le, "+Inf") ? strtod(le, NULL) : INFINITY;
            if (!(lv > f->last_le))
                fail_msg("buckets of %s not increasing at %s", f->name, le);
            if (v < f->last_bucket)
                fail_msg("buckets of %s not cumulative at %s", f->name, le);
            f->last_le = lv;
            f->last_bucket = v;
            if (isinf(lv)) {
                f->inf_seen = true;
                f->inf = v;
            }
        } else if (!strcmp(suffix, "_count")) {
            assert_true(f->inf_seen);
            f->count = v;
            if (f->count != f->inf)
                fail_msg("%s_count %g differs from its +Inf bucket %g", f->name, v, f->inf);
        }
    }
    for (int i = 0; i < s->n; i++) {
        assert_true(s->fam[i].help && s->fam[i].type[0]);
        if (!strcmp(s->fam[i].type, "histogram"))
            assert_true(s->fam[i].inf_seen);
        if (!strcmp(s->fam[i].type, "counter")) {
            size_t l = strlen(s->fam[i].name);
            assert_true(l > 6 && !strcmp(s->fam[i].name + l - 6, "_total"));
        }
    }
}

/* The value of the sample whose line starts with "prefix " (name and labels as rendered). */
static double s_value(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, pl) && p[pl] == ' ')
            return strtod(p + pl + 1, NULL);
    fail_msg("no sample %s", prefix);
    return NAN;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_empty_render(void **state)
{
    size_t len = 0;
    char *t = as_metrics_render(NULL, NULL, &len);
    assert_non_null(t);
    shape_t s;
    s_check_shape(t, len, &s);
    assert_int_equal(s.n, 19);
    assert_true(s_value(t, "aidstat_events_total{result=\"accepted\"}") == 0);
    assert_true(s_value(t, "aidstat_refusals_total{stage=\"zap\",reason=\"denied\"}") == 0);
    assert_true(s_value(t, "aidstat_commit_duration_seconds_count") == 0);
    assert_true(s_value(t, "aidstat_feed_sequence") == 0);
    assert_null(strstr(t, "reason=\"other\""));

    /* a fresh object renders as no object at all; len may be NULL */
    as_metrics_t *m = as_metrics_new();
    char *t2 = as_metrics_render(m, NULL, NULL);
    assert_non_null(t2);
    assert_string_equal(t2, t);
    free(t2);
    free(t);
    as_metrics_destroy(&m);
    as_metrics_destroy(&m);
    assert_null(m);
}

static void test_results_and_counters(void **state)
{
    as_metrics_t *m = as_metrics_new();
    assert_non_null(m);
    for (int i = 0; i < 5; i++)
        as_metrics_count_result(m, AS_RESULT_ACCEPTED, AS_REJECT_NONE);
    as_metrics_count_result(m, AS_RESULT_DUPLICATE, AS_REJECT_NONE);
    as_metrics_count_result(m, AS_RESULT_DUPLICATE, AS_REJECT_NONE);
    as_metrics_count_result(m, AS_RESULT_REJECTED, AS_REJECT_INVALID);
    as_metrics_count_result(m, AS_RESULT_REJECTED, AS_REJECT_WRONG_COUNTY);
    as_metrics_count_result(m, AS_RESULT_REJECTED, AS_REJECT_WRONG_COUNTY);
    as_metrics_count_result(m, AS_RESULT_REJECTED, AS_REJECT_RETRACT_NOT_LIVE);
    as_metrics_count_result(m, AS_RESULT_REJECTED, AS_REJECT_MALFORMED);
    as_metrics_count_result(m, AS_RESULT_REJECTED, 99); /* unknown reason: "other" */
    as_metrics_count_result(m, AS_RESULT_REJECTED, -1);
    as_metrics_count_result(NULL, AS_RESULT_ACCEPTED, 0); /* no crash */
    assert_int_equal(as_metrics_events(m, AS_RESULT_ACCEPTED), 5);
    assert_int_equal(as_metrics_events(m, AS_RESULT_DUPLICATE), 2);
    assert_int_equal(as_metrics_events(m, AS_RESULT_REJECTED), 7);
    assert_int_equal(as_metrics_events(NULL, AS_RESULT_ACCEPTED), 0);

    as_metrics_add(m, AS_METRIC_BATCHES, 3);
    as_metrics_add(m, AS_METRIC_BATCHES, 4);
    as_metrics_add(m, AS_METRIC_SSE_DROPS, 1);
    as_metrics_add(m, AS_METRIC_HTTP_ERRORS, 2);
    as_metrics_add(m, AS_METRIC_COUNT, 1000); /* out of range: ignored */
    as_metrics_add(NULL, AS_METRIC_BATCHES, 1);
    assert_int_equal(as_metrics_get(m, AS_METRIC_BATCHES), 7);
    assert_int_equal(as_metrics_get(m, AS_METRIC_SSE_DROPS), 1);
    assert_int_equal(as_metrics_get(m, AS_METRIC_COUNT), 0);
    assert_int_equal(as_metrics_get(NULL, AS_METRIC_BATCHES), 0);

    as_metrics_gauges_t g = {.collectors_known = 100,
                             .collectors_connected = 97,
                             .ledger_file_bytes = 123456789,
                             .ledger_map_bytes = 1ull << 36,
                             .feed_seq = 18446744073709551615ull,
                             .sse_clients = 3,
                             .http_connections = 4};
    as_refusal_reset();
    as_refusal_count(AS_REFUSE_QUERY_UNAUTHORISED);
    as_refusal_count(AS_REFUSE_QUERY_UNAUTHORISED);
    size_t len;
    char *t = as_metrics_render(m, &g, &len);
    shape_t s;
    s_check_shape(t, len, &s);
    assert_true(s_value(t, "aidstat_refusals_total{stage=\"query\",reason=\"unauthorised\"}") == 2);
    assert_true(s_value(t, "aidstat_refusals_total{stage=\"http\",reason=\"too_many\"}") == 0);
    as_refusal_reset();
    assert_true(s_value(t, "aidstat_events_total{result=\"accepted\"}") == 5);
    assert_true(s_value(t, "aidstat_events_total{result=\"duplicate\"}") == 2);
    assert_true(s_value(t, "aidstat_events_total{result=\"rejected\"}") == 7);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"invalid\"}") == 1);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"wrong_county\"}") == 2);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"retract_not_live\"}") == 1);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"malformed\"}") == 1);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"overflow\"}") == 0);
    assert_true(s_value(t, "aidstat_events_rejected_total{reason=\"other\"}") == 2);
    assert_null(strstr(t, "reason=\"none\""));
    assert_true(s_value(t, "aidstat_batches_total") == 7);
    assert_true(s_value(t, "aidstat_stream_drops_total") == 1);
    assert_true(s_value(t, "aidstat_http_errors_total") == 2);
    assert_true(s_value(t, "aidstat_http_requests_total") == 0);
    assert_true(s_value(t, "aidstat_collectors") == 100);
    assert_true(s_value(t, "aidstat_collectors_connected") == 97);
    assert_true(s_value(t, "aidstat_ledger_bytes") == 123456789);
    assert_true(s_value(t, "aidstat_ledger_map_bytes") == (double)(1ull << 36));
    assert_non_null(strstr(t, "\naidstat_feed_sequence 18446744073709551615\n"));
    assert_true(s_value(t, "aidstat_stream_clients") == 3);
    assert_true(s_value(t, "aidstat_http_connections") == 4);
    free(t);
    as_metrics_destroy(&m);
}

static void test_histograms(void **state)
{
    as_metrics_t *m = as_metrics_new();
    as_commit_info_t c = {0};
    c.group_us = 300; /* 0.0003 s: in le=0.0005 */
    c.commit_us = 999999;
    c.accepted = 3; /* 3 events: in le=4 */
    as_metrics_observe_commit(m, &c);
    memset(&c, 0, sizeof c);
    c.commit_us = 1000; /* no group time: the commit's; exactly on a bound (le is <=) */
    c.accepted = 1;
    c.duplicates = 1;
    c.rejected = 2; /* 4 */
    as_metrics_observe_commit(m, &c);
    memset(&c, 0, sizeof c);
    c.group_us = 2000000; /* 2 s: past every bound */
    c.accepted = 5000;    /* past every bound */
    as_metrics_observe_commit(m, &c);
    as_metrics_observe_commit(m, NULL);
    as_metrics_observe_commit(NULL, &c);

    size_t len;
    char *t = as_metrics_render(m, NULL, &len);
    shape_t s;
    s_check_shape(t, len, &s);
    const char *d = "aidstat_commit_duration_seconds_bucket";
    char k[96];
    struct {
        const char *le;
        double want;
    } lat[] = {{"0.0001", 0}, {"0.00025", 0}, {"0.0005", 1}, {"0.001", 2},
               {"0.5", 2},    {"1", 2},       {"+Inf", 3}};
    for (size_t i = 0; i < sizeof lat / sizeof lat[0]; i++) {
        snprintf(k, sizeof k, "%s{le=\"%s\"}", d, lat[i].le);
        if (s_value(t, k) != lat[i].want)
            fail_msg("%s is %g, not %g", k, s_value(t, k), lat[i].want);
    }
    assert_true(s_value(t, "aidstat_commit_duration_seconds_count") == 3);
    assert_true(fabs(s_value(t, "aidstat_commit_duration_seconds_sum") - 2.0013) < 1e-6);
    struct {
        const char *le;
        double want;
    } bat[] = {{"1", 0}, {"2", 0}, {"4", 2}, {"4096", 2}, {"+Inf", 3}};
    for (size_t i = 0; i < sizeof bat / sizeof bat[0]; i++) {
        snprintf(k, sizeof k, "aidstat_commit_batch_events_bucket{le=\"%s\"}", bat[i].le);
        if (s_value(t, k) != bat[i].want)
            fail_msg("%s is %g, not %g", k, s_value(t, k), bat[i].want);
    }
    assert_true(s_value(t, "aidstat_commit_batch_events_sum") == 5007);
    assert_true(s_value(t, "aidstat_commit_batch_events_count") == 3);
    free(t);
    as_metrics_destroy(&m);
}

static void test_many_observations_grow_nothing(void **state)
{
    /* a long-running aggregator: the text stays the same size whatever the counts */
    as_metrics_t *m = as_metrics_new();
    size_t len0, len1;
    free(as_metrics_render(m, NULL, &len0));
    as_commit_info_t c = {.group_us = 1500, .accepted = 100};
    for (int i = 0; i < 100000; i++)
        as_metrics_observe_commit(m, &c);
    char *t = as_metrics_render(m, NULL, &len1);
    shape_t s;
    s_check_shape(t, len1, &s);
    assert_true(len1 - len0 < 200); /* digits only */
    assert_true(s_value(t, "aidstat_commit_batch_events_bucket{le=\"128\"}") == 100000);
    assert_true(s_value(t, "aidstat_commit_batch_events_bucket{le=\"64\"}") == 0);
    assert_true(s_value(t, "aidstat_commit_duration_seconds_bucket{le=\"0.001\"}") == 0);
    assert_true(s_value(t, "aidstat_commit_duration_seconds_bucket{le=\"0.0025\"}") == 100000);
    free(t);
    as_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_render),
        cmocka_unit_test(test_results_and_counters),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_many_observations_grow_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
