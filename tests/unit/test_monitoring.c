/* test_monitoring: the monitoring bundle (HTTP server, metrics, monitor store) on a real ledger
 * and a real loop, asked over real TCP on 127.0.0.1 — events committed before it started are
 * caught up, later commits show without a call, nil reports persist in DATA/monitor across a
 * restart, a commit reaches a /api/stream client, results and nil reports reach /metrics, the
 * daemon's connected callback reaches /api/status, and the failures of its parts come back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "monitoring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    af_t *a;
    as_monitoring_t *m;
    int connected_calls;
} fx_t;

static bool s_is_connected(void *ctx, const char *collector_id)
{
    fx_t *f = ctx;
    f->connected_calls++;
    return strcmp(collector_id, "c-360730") == 0;
}

static as_monitoring_t *s_start(fx_t *f)
{
    as_monitoring_opts_t o = {.listen = "127.0.0.1:0",
                              .data_dir = f->a->dir,
                              .no_sync = true,
                              .is_connected_cb = s_is_connected,
                              .ctx = f};
    int err = 0;
    as_monitoring_t *m = as_monitoring_new(&f->a->loop, f->a->l, &o, &err);
    assert_non_null(m);
    assert_int_equal(err, 0);
    return m;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->a = af_open();
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_monitoring_destroy(&f->m);
    as_monitoring_destroy(&f->m); /* safe twice */
    assert_int_equal(af_close(f->a), 0);
    free(f);
    return 0;
}

static int s_connect(fx_t *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)as_monitoring_port(f->m))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Reads from fd while pumping the loop until needle shows (or the peer closes when needle is
 * NULL); returns what was read (caller frees). */
static char *s_read(fx_t *f, int fd, const char *needle, int ms)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = calloc(1, cap);
    uint64_t end = af_now_ms() + (uint64_t)ms;
    while (af_now_ms() < end) {
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = 0;
            if (needle && strstr(buf, needle))
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        af_pump(f->a, 1);
    }
    return buf;
}

/* GET target with Connection: close; returns the body of a 200 answer as JSON (or text). */
static char *s_get(fx_t *f, const char *target, int *status)
{
    int fd = s_connect(f);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     target);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char *resp = s_read(f, fd, NULL, 5000);
    close(fd);
    assert_memory_equal(resp, "HTTP/1.1 ", 9);
    *status = atoi(resp + 9);
    char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    char *out = strdup(body + 4);
    free(resp);
    return out;
}

static json_t *s_get_json(fx_t *f, const char *target)
{
    int status = 0;
    char *body = s_get(f, target, &status);
    assert_int_equal(status, 200);
    json_t *j = json_loads(body, 0, NULL);
    if (!j)
        fail_msg("%s: not JSON: %.200s", target, body);
    free(body);
    return j;
}

static const char *s_cell(json_t *comp, uint32_t county, int month)
{
    json_t *cs = json_object_get(comp, "counties");
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *c = json_array_get(cs, i);
        if ((uint32_t)atoi(json_string_value(json_object_get(c, "code"))) == county)
            return json_string_value(json_array_get(json_object_get(c, "cells"), month - 1));
    }
    return NULL;
}

static void test_catch_up_and_follow(void **state)
{
    fx_t *f = *state;
    as_event_t ev[2] = {af_event(f->a, 360730, 1, 20250115), af_event(f->a, 360731, 2, 20250220)};
    ev[1].flags = AS_FLAG_UNREGISTERED;
    af_apply(f->a, ev, 2); /* before the monitoring starts */
    f->m = s_start(f);
    json_t *j = s_get_json(f, "/api/completeness?year=2025");
    assert_string_equal(s_cell(j, 360730, 1), "reported");
    assert_string_equal(s_cell(j, 360731, 2), "reported");
    assert_string_equal(s_cell(j, 360731, 3), "silent");
    json_decref(j);
    j = s_get_json(f, "/api/flags?year=2025");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_decref(j);

    /* a later commit shows without anybody calling the monitor */
    as_event_t late = af_event(f->a, 360731, 3, 20250320);
    late.flags = AS_FLAG_OUTLIER;
    as_commit_info_t info = af_apply(f->a, &late, 1);
    as_monitoring_on_commit(f->m, &info);
    j = s_get_json(f, "/api/completeness?year=2025");
    assert_string_equal(s_cell(j, 360731, 3), "reported");
    json_decref(j);
    j = s_get_json(f, "/api/flags?year=2025");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);
}

static void test_nil_reports_persist(void **state)
{
    fx_t *f = *state;
    f->m = s_start(f);
    assert_int_equal(as_monitoring_on_nil_report(f->m, 360730, 2025, 6), 0);
    assert_int_equal(as_monitoring_on_nil_report(f->m, 360730, 2025, 13), AS_E_INVALID);
    assert_int_equal(as_monitoring_on_nil_report(f->m, 360700, 2025, 6), AS_E_INVALID);
    assert_int_equal(as_metrics_get(as_monitoring_metrics(f->m), AS_METRIC_NIL_REPORTS), 1);
    as_monitoring_destroy(&f->m);
    af_pump(f->a, 5);
    char path[160];
    snprintf(path, sizeof path, "%s/monitor/data.mdb", f->a->dir);
    assert_int_equal(access(path, F_OK), 0); /* in DATA/monitor */

    f->m = s_start(f); /* a restart: the store is kept, the counters start again */
    assert_int_equal(as_metrics_get(as_monitoring_metrics(f->m), AS_METRIC_NIL_REPORTS), 0);
    json_t *j = s_get_json(f, "/api/completeness?year=2025");
    assert_string_equal(s_cell(j, 360730, 6), "nil");
    json_decref(j);
}

static void test_metrics_and_status(void **state)
{
    fx_t *f = *state;
    f->m = s_start(f);
    as_collector_state_t st[2] = {
        {.collector_id = "c-360730", .county = 360730, .last_heard_ms = 1},
        {.collector_id = "c-360731", .county = 360731, .last_heard_ms = 1}};
    assert_int_equal(as_ledger_begin(f->a->l), 0);
    assert_int_equal(as_ledger_put_collector(f->a->l, &st[0]), 0);
    assert_int_equal(as_ledger_put_collector(f->a->l, &st[1]), 0);
    assert_int_equal(as_ledger_commit(f->a->l, NULL), 0);

    as_monitoring_on_result(f->m, AS_RESULT_ACCEPTED, 0);
    as_monitoring_on_result(f->m, AS_RESULT_ACCEPTED, 0);
    as_monitoring_on_result(f->m, AS_RESULT_REJECTED, AS_REJECT_INVALID);
    as_metrics_add(as_monitoring_metrics(f->m), AS_METRIC_BATCHES, 2);
    as_commit_info_t info = {.accepted = 2, .rejected = 1, .commit_us = 40000};
    as_monitoring_on_commit(f->m, &info);
    int status = 0;
    char *body = s_get(f, "/metrics", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "aidstat_events_total{result=\"accepted\"} 2\n"));
    assert_non_null(strstr(body, "aidstat_events_rejected_total{reason=\"invalid\"} 1\n"));
    assert_non_null(strstr(body, "aidstat_batches_total 2\n"));
    assert_non_null(strstr(body, "aidstat_commit_batch_events_bucket{le=\"4\"} 1\n"));
    assert_non_null(strstr(body, "aidstat_commit_duration_seconds_bucket{le=\"0.025\"} 0\n"));
    assert_non_null(strstr(body, "aidstat_commit_duration_seconds_bucket{le=\"0.05\"} 1\n"));
    assert_non_null(strstr(body, "aidstat_collectors 2\n"));
    assert_non_null(strstr(body, "aidstat_collectors_connected 1\n")); /* the daemon's view */
    free(body);

    json_t *j = s_get_json(f, "/api/status?year=2025");
    json_t *list = json_object_get(j, "collectors");
    assert_int_equal(json_array_size(list), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *c = json_array_get(list, i);
        bool want = !strcmp(json_string_value(json_object_get(c, "collector_id")), "c-360730");
        assert_int_equal(json_is_true(json_object_get(c, "connected")), want);
    }
    assert_int_equal(json_integer_value(json_object_get(j, "collectors_connected")), 1);
    json_decref(j);
    assert_true(f->connected_calls >= 4);
}

static void test_commit_reaches_stream(void **state)
{
    fx_t *f = *state;
    f->m = s_start(f);
    int fd = s_connect(f);
    const char req[] = "GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)sizeof req - 1);
    char *head = s_read(f, fd, "\r\n\r\n", 3000);
    assert_non_null(strstr(head, "text/event-stream"));
    free(head);
    as_event_t ev = af_event(f->a, 360730, 1, 20250115);
    as_commit_info_t info = af_apply(f->a, &ev, 1);
    as_monitoring_on_commit(f->m, &info);
    char *msg = s_read(f, fd, "\n\n", 3000);
    assert_non_null(strstr(msg, "event: totals\n"));
    assert_non_null(strstr(msg, "id: 1\n"));
    assert_non_null(strstr(msg, "data: {"));
    free(msg);
    close(fd);
}

static void test_failures(void **state)
{
    fx_t *f = *state;
    int err = 0;
    as_monitoring_opts_t o = {.listen = "not an address", .data_dir = f->a->dir, .no_sync = true};
    assert_null(as_monitoring_new(&f->a->loop, f->a->l, &o, &err));
    assert_int_equal(err, AS_E_INVALID);
    f->m = s_start(f);
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", as_monitoring_port(f->m));
    o.listen = taken;
    err = 0;
    assert_null(as_monitoring_new(&f->a->loop, f->a->l, &o, &err));
    assert_int_equal(err, UV_EADDRINUSE);
    o.listen = "127.0.0.1:0";
    o.data_dir = "/nonexistent/aidstat";
    err = 0;
    assert_null(as_monitoring_new(&f->a->loop, f->a->l, &o, &err));
    assert_int_equal(err, -ENOENT);
    /* what the daemon may call before or after: no crash */
    as_monitoring_on_commit(NULL, NULL);
    as_monitoring_on_result(NULL, AS_RESULT_ACCEPTED, 0);
    assert_int_equal(as_monitoring_on_nil_report(NULL, 360730, 2025, 1), AS_E_STATE);
    assert_null(as_monitoring_metrics(NULL));
    assert_int_equal(as_monitoring_port(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catch_up_and_follow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_nil_reports_persist, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_status, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_commit_reaches_stream, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_failures, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
