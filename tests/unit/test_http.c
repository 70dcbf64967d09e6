/* test_http: the HTTP server against a real ledger in a temporary folder, over real sockets on
 * 127.0.0.1 — every endpoint, the JSON shape, bad requests, a slow client, the stream. The loop
 * is driven step by step from the test (UV_RUN_NOWAIT) while the client side uses non-blocking
 * sockets, so nothing needs a thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "division.h"
#include "err.h"
#include "http.h"
#include "ledger.h"
#include "measures_json.h"
#include "metrics.h"
#include "monitor.h"
#include "monitoring.h"
#include "refusal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define YEAR 2025

typedef struct {
    char dir[64];
    uv_loop_t loop;
    as_ledger_t *ledger;
    as_monitor_t *monitor;
    as_metrics_t *metrics;
    as_http_t *http;
    int port;
    uint32_t next_id;
} fx_t;

/* ---- fixture -------------------------------------------------------------------------------- */

static void s_event(fx_t *f, as_event_t *ev, uint32_t county, uint32_t date, int64_t funds,
                    uint32_t flags)
{
    memset(ev, 0, sizeof *ev);
    f->next_id++;
    ev->id[0] = (uint8_t)(county >> 16);
    ev->id[1] = (uint8_t)(county >> 8);
    ev->id[2] = (uint8_t)county;
    memcpy(ev->id + 12, &f->next_id, 4);
    snprintf(ev->event_id, sizeof ev->event_id, "T-%u", f->next_id);
    ev->county = county;
    snprintf(ev->org_code, sizeof ev->org_code, "%s", "51360000MJD000000X");
    snprintf(ev->org_name, sizeof ev->org_name, "%s", "江西省测试慈善会");
    ev->area = AS_AREA_EDUCATION;
    ev->group = AS_GROUP_LEFT_BEHIND_CHILDREN;
    ev->funding = AS_FUNDING_CHARITY;
    ev->date = date;
    snprintf(ev->village, sizeof ev->village, "%u%06u", county, 101201u);
    ev->beneficiaries = 10;
    ev->registered_poor = 4;
    ev->funds_fen = funds;
    ev->volunteers = 3;
    ev->volunteer_tenths = 125;
    ev->flags = flags;
}

/* Commits n events of county (the first flagged unregistered when flag) and tells the server. */
static void s_commit(fx_t *f, uint32_t county, uint32_t date, int n, bool flag)
{
    as_event_t *ev = malloc(sizeof *ev);
    as_apply_result_t res;
    as_commit_info_t info;
    assert_int_equal(as_ledger_begin(f->ledger), 0);
    as_ledger_set_source(f->ledger, "collector-360730");
    for (int i = 0; i < n; i++) {
        s_event(f, ev, county, date, 12345, (flag && i == 0) ? AS_FLAG_UNREGISTERED : 0);
        assert_int_equal(as_ledger_apply(f->ledger, ev, &res), 0);
        assert_int_equal(res.code, AS_RESULT_ACCEPTED);
        as_metrics_count_result(f->metrics, res.code, res.reject);
    }
    as_collector_state_t st = {.county = 360730, .last_batch_seq = f->next_id, .backlog = 7};
    snprintf(st.collector_id, sizeof st.collector_id, "collector-360730");
    snprintf(st.version, sizeof st.version, "0.1.0");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    st.last_heard_ms = (uint64_t)ts.tv_sec * 1000;
    assert_int_equal(as_ledger_put_collector(f->ledger, &st), 0);
    assert_int_equal(as_ledger_commit(f->ledger, &info), 0);
    as_metrics_observe_commit(f->metrics, &info);
    as_http_notify_commit(f->http, &info);
    free(ev);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_http.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    int err = 0;
    as_ledger_opts_t lo = {.no_sync = true};
    snprintf(path, sizeof path, "%s/ledger", f->dir);
    f->ledger = as_ledger_new(path, &lo, &err);
    assert_non_null(f->ledger);
    snprintf(path, sizeof path, "%s/monitor", f->dir);
    f->monitor = as_monitor_new(path, true, &err);
    assert_non_null(f->monitor);
    f->metrics = as_metrics_new();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    as_http_source_t src = {.ledger = f->ledger, .monitor = f->monitor, .metrics = f->metrics};
    as_http_opts_t opts = {.header_timeout_ms = 300, .heartbeat_ms = 200, .push_delay_ms = 10};
    f->http = as_http_new(&f->loop, "127.0.0.1:0", &src, &opts, &err);
    assert_non_null(f->http);
    f->port = as_http_port(f->http);
    assert_true(f->port > 0);
    s_commit(f, 360730, YEAR * 10000 + 315, 3, true);
    s_commit(f, 360733, YEAR * 10000 + 520, 2, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    as_http_destroy(&f->http);
    as_http_destroy(&f->http); /* safe twice */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    as_metrics_destroy(&f->metrics);
    as_monitor_destroy(&f->monitor);
    as_ledger_destroy(&f->ledger);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- a small client, pumping the server's loop while it waits ------------------------------- */

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_pump(fx_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(1000);
}

static int s_connect(fx_t *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Sends everything (returns false when the server closed the connection first). */
static bool s_send(fx_t *f, int fd, const char *data, size_t len)
{
    size_t off = 0;
    uint64_t until = s_ms() + 5000;
    while (off < len && s_ms() < until) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return false;
        s_pump(f);
    }
    return off == len;
}

typedef struct {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
    bool closed; /* the server closed the connection after it */
} resp_t;

static void s_resp_free(resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Reads one response (Content-Length framed) within timeout_ms. */
static bool s_recv(fx_t *f, int fd, resp_t *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    uint64_t until = s_ms() + (uint64_t)timeout_ms;
    size_t head_end = 0, want = (size_t)-1;
    while (s_ms() < until) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
        } else if (n == 0) {
            r->closed = true;
            break;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            r->closed = true;
            break;
        }
        if (!head_end) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e) {
                head_end = (size_t)(e - buf) + 4;
                const char *cl = strcasestr(buf, "Content-Length:");
                if (cl && cl < e)
                    want = head_end + strtoul(cl + 15, NULL, 10);
            }
        }
        if (head_end && len >= want)
            break;
        s_pump(f);
    }
    if (!head_end) {
        free(buf);
        return false;
    }
    r->status = atoi(buf + 9);
    r->head = strndup(buf, head_end);
    r->body_len = len - head_end;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, buf + head_end, r->body_len);
    r->body[r->body_len] = '\0';
    if (!r->closed && strcasestr(r->head, "Connection: close")) {
        /* the server closes after a "close" response: see it happen */
        char c;
        uint64_t t = s_ms() + 2000;
        while (s_ms() < t) {
            ssize_t n = recv(fd, &c, 1, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                r->closed = true;
                break;
            }
            s_pump(f);
        }
    }
    free(buf);
    return true;
}

static resp_t s_get(fx_t *f, const char *target)
{
    char req[2048];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             target);
    int fd = s_connect(f);
    assert_true(s_send(f, fd, req, strlen(req)));
    resp_t r;
    assert_true(s_recv(f, fd, &r, 5000));
    close(fd);
    return r;
}

static json_t *s_get_json(fx_t *f, const char *target, int want_status)
{
    resp_t r = s_get(f, target);
    if (r.status != want_status)
        fprintf(stderr, "GET %s: %d %s\n", target, r.status, r.body);
    assert_int_equal(r.status, want_status);
    assert_non_null(strcasestr(r.head, "Content-Type: application/json"));
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    if (!j)
        fprintf(stderr, "not JSON: %s (%s)\n", r.body, e.text);
    assert_non_null(j);
    s_resp_free(&r);
    return j;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static void test_totals_match_ledger(void **state)
{
    fx_t *f = *state;
    const char *bys[] = {"province", "city", "county", "area", "month", "org"};
    for (size_t b = 0; b < sizeof bys / sizeof bys[0]; b++) {
        char target[128];
        snprintf(target, sizeof target, "/api/totals?year=%d&by=%s", YEAR, bys[b]);
        json_t *j = s_get_json(f, target, 200);
        as_totals_row_t *rows;
        size_t n;
        as_measures_t total;
        assert_int_equal(as_ledger_totals(f->ledger, YEAR, (as_dim_t)as_dim_parse(bys[b]), NULL,
                                          &rows, &n, &total),
                         0);
        json_t *want = as_totals_to_json(YEAR, (as_dim_t)as_dim_parse(bys[b]), rows, n, &total);
        free(rows);
        if (!json_equal(j, want)) {
            char *a = as_json_dumps(j), *w = as_json_dumps(want);
            fprintf(stderr, "got  %s\nwant %s\n", a, w);
            free(a);
            free(w);
        }
        assert_true(json_equal(j, want));
        json_decref(want);
        json_decref(j);
    }
    /* the shape and the names of DESIGN.md */
    json_t *j = s_get_json(f, "/api/totals?year=2025&by=county", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "year")), YEAR);
    assert_string_equal(json_string_value(json_object_get(j, "by")), "county");
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r0 = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "key")), "360730");
    assert_int_equal(json_integer_value(json_object_get(r0, "activities")), 3);
    assert_int_equal(json_integer_value(json_object_get(r0, "funds_fen")), 3 * 12345);
    json_t *t = json_object_get(j, "total");
    const char *names[] = {"activities",
                           "organisations",
                           "beneficiaries",
                           "registered_poor",
                           "funds_fen",
                           "goods_fen",
                           "volunteers",
                           "volunteer_hours",
                           "social_workers",
                           "persons_lifted",
                           "jobs",
                           "trainees",
                           "income_increase_fen",
                           "villages",
                           "deep_poverty_villages",
                           "counties"};
    assert_int_equal(json_object_size(t), 16);
    for (size_t i = 0; i < 16; i++)
        assert_non_null(json_object_get(t, names[i]));
    assert_int_equal(json_integer_value(json_object_get(t, "activities")), 5);
    assert_true(json_is_real(json_object_get(t, "volunteer_hours")));
    assert_true(json_real_value(json_object_get(t, "volunteer_hours")) == 62.5);
    json_decref(j);
    /* a county filter and a city filter */
    j = s_get_json(f, "/api/totals?year=2025&by=county&county=360730", 200);
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 1);
    json_decref(j);
    j = s_get_json(f, "/api/totals?year=2025&county=360700", 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "activities")),
                     5);
    json_decref(j);
    /* volunteer hours print with one decimal */
    resp_t r = s_get(f, "/api/totals?year=2025");
    assert_non_null(strstr(r.body, "\"volunteer_hours\":62.5"));
    s_resp_free(&r);
}

static void test_status(void **state)
{
    fx_t *f = *state;
    json_t *j = s_get_json(f, "/api/status", 200);
    json_t *cs = json_object_get(j, "collectors");
    assert_int_equal(json_array_size(cs), 1);
    json_t *c = json_array_get(cs, 0);
    assert_string_equal(json_string_value(json_object_get(c, "collector_id")), "collector-360730");
    assert_true(json_is_true(json_object_get(c, "connected")));
    assert_int_equal(json_integer_value(json_object_get(c, "backlog")), 7);
    assert_int_equal(json_integer_value(json_object_get(c, "accepted")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "ledger_seq")), 5);
    assert_true(json_integer_value(json_object_get(j, "days_left")) >= 0 ||
                json_integer_value(json_object_get(j, "year")) < 2025);
    assert_non_null(json_object_get(j, "publication_deadline"));
    json_decref(j);
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

static void test_completeness_and_flags(void **state)
{
    fx_t *f = *state;
    assert_int_equal(as_monitor_put_nil(f->monitor, 360730, YEAR, 4), 0);
    assert_int_equal(as_monitor_put_nil(f->monitor, 360730, YEAR, 13), AS_E_INVALID);
    json_t *j = s_get_json(f, "/api/completeness?year=2025", 200);
    assert_int_equal(json_array_size(json_object_get(j, "months")), 12);
    assert_string_equal(s_cell(j, 360730, 3), "reported");
    assert_string_equal(s_cell(j, 360730, 4), "nil");
    assert_string_equal(s_cell(j, 360733, 5), "reported");
    assert_string_equal(s_cell(j, 360733, 1), "silent");
    json_decref(j);

    j = s_get_json(f, "/api/flags?year=2025", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_t *fl = json_array_get(json_object_get(j, "flags"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(fl, "flags"), 0)),
                        "unregistered");
    assert_int_equal(json_integer_value(json_object_get(fl, "county")), 360730);
    json_decref(j);
    j = s_get_json(f, "/api/flags?year=2024", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
    json_decref(j);
}

static void test_metrics(void **state)
{
    fx_t *f = *state;
    resp_t r = s_get(f, "/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "aidstat_events_total{result=\"accepted\"} 5\n"));
    assert_non_null(strstr(r.body, "aidstat_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(r.body, "aidstat_feed_sequence 5\n"));
    assert_non_null(strstr(r.body, "aidstat_collectors_connected 1\n"));
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[128], cmd[256];
        snprintf(path, sizeof path, "%s/metrics.txt", f->dir);
        FILE *fp = fopen(path, "w");
        fwrite(r.body, 1, r.body_len, fp);
        fclose(fp);
        snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s", path);
        assert_int_equal(system(cmd), 0);
    }
    s_resp_free(&r);
}

static void test_dashboard(void **state)
{
    fx_t *f = *state;
    resp_t r = s_get(f, "/");
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(strstr(r.body, "EventSource"));
    assert_non_null(strstr(r.body, "实时监测"));
    assert_null(strstr(r.body, "http://")); /* nothing from the internet */
    assert_null(strstr(r.body, "https://"));
    s_resp_free(&r);
}

/* ---- bad requests --------------------------------------------------------------------------- */

static void s_expect_error(fx_t *f, const char *target, int status)
{
    json_t *j = s_get_json(f, target, status);
    assert_true(json_is_string(json_object_get(j, "error")));
    assert_true(strlen(json_string_value(json_object_get(j, "error"))) > 5);
    json_decref(j);
}

static void test_bad_requests(void **state)
{
    fx_t *f = *state;
    s_expect_error(f, "/nope", 404);
    s_expect_error(f, "/api/totals?year=abc", 400);
    s_expect_error(f, "/api/totals?year=1999", 400);
    s_expect_error(f, "/api/totals?by=planet", 400);
    s_expect_error(f, "/api/totals?county=999999", 400);
    s_expect_error(f, "/api/totals?county=36073", 400);
    s_expect_error(f, "/api/totals?colour=red", 400);
    s_expect_error(f, "/api/totals?year=%zz", 400);
    s_expect_error(f, "/api/completeness?year=20255", 400);
    s_expect_error(f, "/api/flags?limit=0", 400);

    /* a method that is not GET/HEAD, a body */
    const char *reqs[] = {
        "POST /api/totals HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        "GET /api/totals HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "BREW /pot HTCPCP/1.0\r\n\r\n",
    };
    int want[] = {405, 413, 400};
    for (int i = 0; i < 3; i++) {
        int fd = s_connect(f);
        s_send(f, fd, reqs[i], strlen(reqs[i]));
        resp_t r;
        assert_true(s_recv(f, fd, &r, 5000));
        assert_int_equal(r.status, want[i]);
        assert_non_null(strstr(r.body, "\"error\""));
        s_resp_free(&r);
        close(fd);
    }
}

static void test_huge_request_line_and_headers(void **state)
{
    fx_t *f = *state;
    size_t n = 100 * 1024;
    char *req = malloc(n + 64);
    memcpy(req, "GET /api/totals?year=2025&x=", 28);
    memset(req + 28, 'a', n);
    strcpy(req + 28 + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    int fd = s_connect(f);
    s_send(f, fd, req, strlen(req)); /* the server may close before it has read everything */
    resp_t r;
    assert_true(s_recv(f, fd, &r, 5000));
    assert_int_equal(r.status, 414);
    assert_true(r.closed);
    s_resp_free(&r);
    close(fd);

    /* 10 KB of headers */
    char *h = req;
    int off = sprintf(h, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++)
        off += sprintf(h + off, "X-Filler-%03d: %0100d\r\n", i, 0);
    strcpy(h + off, "\r\n");
    fd = s_connect(f);
    s_send(f, fd, h, strlen(h));
    assert_true(s_recv(f, fd, &r, 5000));
    assert_int_equal(r.status, 431);
    s_resp_free(&r);
    close(fd);
    free(req);

    /* and the server still serves others */
    r = s_get(f, "/api/totals?year=2025");
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
}

static void test_slow_client_gets_408(void **state)
{
    fx_t *f = *state;
    int slow = s_connect(f);
    const char *part = "GET /api/totals HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    assert_true(s_send(f, slow, part, strlen(part)));
    uint64_t t0 = s_ms();
    /* others are served while it dawdles */
    for (int i = 0; i < 5; i++) {
        resp_t r = s_get(f, "/api/status");
        assert_int_equal(r.status, 200);
        s_resp_free(&r);
    }
    resp_t r;
    assert_true(s_recv(f, slow, &r, 5000));
    assert_int_equal(r.status, 408);
    assert_true(r.closed);
    assert_true(s_ms() - t0 >= 250);
    assert_non_null(strstr(r.body, "\"error\""));
    s_resp_free(&r);
    close(slow);
}

static void test_keep_alive_and_pipelining(void **state)
{
    fx_t *f = *state;
    int fd = s_connect(f);
    const char *two = "GET /api/totals?year=2025 HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(s_send(f, fd, two, strlen(two)));
    /* both answers arrive on the same connection, in order */
    char buf[8192] = "";
    size_t len = 0;
    uint64_t until = s_ms() + 5000;
    while (s_ms() < until && !strstr(buf, "HTTP/1.1 404")) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
        if (n > 0)
            len += (size_t)n;
        buf[len] = '\0';
        s_pump(f);
    }
    char *ok = strstr(buf, "HTTP/1.1 200"), *nf = strstr(buf, "HTTP/1.1 404");
    assert_non_null(ok);
    assert_non_null(nf);
    assert_true(ok < nf);
    assert_non_null(strcasestr(buf, "Connection: keep-alive"));
    until = s_ms() + 2000;
    while (s_ms() < until && !strstr(strstr(buf, "HTTP/1.1 404"), "}")) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
        if (n > 0)
            len += (size_t)n;
        buf[len] = '\0';
        s_pump(f);
    }
    resp_t r;
    const char *head = "HEAD /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_true(s_send(f, fd, head, strlen(head)));
    assert_true(s_recv(f, fd, &r, 5000));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(r.closed);
    s_resp_free(&r);
    close(fd);
}

/* ---- the stream ----------------------------------------------------------------------------- */

/* Reads stream text until needle shows up; returns the text (malloc'd) or NULL on timeout. */
static char *s_stream_until(fx_t *f, int fd, const char *needle, int timeout_ms)
{
    static char buf[1 << 16];
    static size_t len;
    uint64_t until = s_ms() + (uint64_t)timeout_ms;
    while (s_ms() < until) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
        }
        char *p = strstr(buf, needle);
        if (p) {
            char *out = strdup(p);
            len = 0;
            buf[0] = '\0';
            return out;
        }
        s_pump(f);
    }
    return NULL;
}

static void test_stream(void **state)
{
    fx_t *f = *state;
    int fd = s_connect(f);
    const char *req =
        "GET /api/stream?year=2025 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
    assert_true(s_send(f, fd, req, strlen(req)));
    char *s = s_stream_until(f, fd, "id: 5\n", 3000);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"activities\":5"));
    free(s);
    assert_int_equal(as_http_stream_clients(f->http), 1);
    /* heartbeat comments keep it awake */
    s = s_stream_until(f, fd, ": heartbeat", 3000);
    assert_non_null(s);
    free(s);
    /* a commit that changes the totals: one message with the new totals and sequence */
    uint64_t t0 = s_ms();
    s_commit(f, 360733, YEAR * 10000 + 601, 4, false);
    s = s_stream_until(f, fd, "event: totals\nid: 9\n", 3000);
    assert_non_null(s);
    assert_true(s_ms() - t0 < 1000);
    assert_non_null(strstr(s, "\"activities\":9"));
    assert_non_null(strstr(s, "\"seq\":9"));
    free(s);
    /* the monitor followed the log on the way (on a worker thread) */
    uint64_t deadline = s_ms() + 2000;
    while (as_monitor_seq(f->monitor) != 9 && s_ms() < deadline)
        s_pump(f);
    assert_int_equal(as_monitor_seq(f->monitor), 9);
    close(fd);
    uint64_t until = s_ms() + 2000;
    while (as_http_stream_clients(f->http) != 0 && s_ms() < until)
        s_pump(f);
    assert_int_equal(as_http_stream_clients(f->http), 0);
}

/* ---- caps and the bearer token -------------------------------------------------------------- */

/* A second server on the fixture's loop with opts; f->port points at it until s_other_end. */
static as_http_t *s_other(fx_t *f, const as_http_opts_t *opts, int *saved_port)
{
    as_http_source_t src = {.ledger = f->ledger, .monitor = f->monitor, .metrics = f->metrics};
    int err = 0;
    as_http_t *h = as_http_new(&f->loop, "127.0.0.1:0", &src, opts, &err);
    assert_non_null(h);
    *saved_port = f->port;
    f->port = as_http_port(h);
    as_refusal_reset();
    return h;
}

static void s_other_end(fx_t *f, as_http_t **h, int saved_port)
{
    as_http_destroy(h);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    f->port = saved_port;
}

/* A connection from a given loopback address (127.0.0.0/8 are all this host's). */
static int s_connect_from(fx_t *f, const char *src_ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in b = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, src_ip, &b.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof b), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Sends req on fd and reads the status of the answer (0: none within 3 s). Keeps fd open. */
static int s_status_on(fx_t *f, int fd, const char *req, char *head, size_t cap)
{
    if (!s_send(f, fd, req, strlen(req)))
        return 0;
    char buf[4096];
    size_t len = 0;
    uint64_t until = s_ms() + 3000;
    while (s_ms() < until && !memmem(buf, len, "\r\n\r\n", 4)) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0)
            break;
        s_pump(f);
    }
    buf[len] = '\0';
    if (head)
        snprintf(head, cap, "%s", buf);
    return len > 12 ? atoi(buf + 9) : 0;
}

static const char s_stream_req[] = "GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n";

static void test_stream_caps(void **state)
{
    fx_t *f = *state;
    as_http_opts_t o = {.header_timeout_ms = 2000,
                        .max_connections = 32,
                        .max_streams = 5,
                        .max_streams_per_client = 3};
    int saved;
    as_http_t *h = s_other(f, &o, &saved);
    int fds[8], n = 0;
    char head[4096];
    /* one address: three streams, the fourth refused with Retry-After */
    for (int i = 0; i < 3; i++) {
        fds[n] = s_connect_from(f, "127.0.0.2");
        assert_int_equal(s_status_on(f, fds[n++], s_stream_req, NULL, 0), 200);
    }
    int extra = s_connect_from(f, "127.0.0.2");
    assert_int_equal(s_status_on(f, extra, s_stream_req, head, sizeof head), 503);
    assert_non_null(strcasestr(head, "Retry-After: "));
    close(extra);
    assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_TOO_MANY), 1);
    /* another address still gets one, until the global cap */
    for (int i = 0; i < 2; i++) {
        fds[n] = s_connect_from(f, "127.0.0.3");
        assert_int_equal(s_status_on(f, fds[n++], s_stream_req, NULL, 0), 200);
    }
    assert_int_equal(as_http_stream_clients(h), 5);
    extra = s_connect_from(f, "127.0.0.4");
    assert_int_equal(s_status_on(f, extra, s_stream_req, head, sizeof head), 503);
    assert_non_null(strcasestr(head, "Retry-After: "));
    close(extra);
    assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_TOO_MANY), 2);
    /* plain requests are served beside them */
    resp_t r = s_get(f, "/api/status");
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
    /* a stream that ends frees its place */
    close(fds[--n]);
    uint64_t until = s_ms() + 2000;
    while (as_http_stream_clients(h) != 4 && s_ms() < until)
        s_pump(f);
    fds[n] = s_connect_from(f, "127.0.0.4");
    assert_int_equal(s_status_on(f, fds[n++], s_stream_req, NULL, 0), 200);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    s_other_end(f, &h, saved);
}

static void test_connection_cap_never_starves_requests(void **state)
{
    fx_t *f = *state;
    as_http_opts_t o = {.header_timeout_ms = 5000, .max_connections = 16, .max_streams = 4};
    int saved;
    as_http_t *h = s_other(f, &o, &saved);
    int streams[4], idle[24];
    for (int i = 0; i < 4; i++) {
        streams[i] = s_connect(f);
        assert_int_equal(s_status_on(f, streams[i], s_stream_req, NULL, 0), 200);
    }
    /* connections that say nothing fill the rest, and more */
    for (int i = 0; i < 24; i++) {
        idle[i] = s_connect(f);
        for (int k = 0; k < 5; k++)
            s_pump(f);
    }
    assert_true(as_http_connections(h) <= 16 + 2);
    /* a plain request still finds room (the oldest silent one makes it) */
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = s_ms();
        resp_t r = s_get(f, "/api/status");
        assert_int_equal(r.status, 200);
        assert_true(s_ms() - t0 < 1000);
        s_resp_free(&r);
    }
    assert_true(as_refusal_get(AS_REFUSE_HTTP_TOO_MANY) >= 8);
    assert_int_equal(as_http_stream_clients(h), 4); /* streams are never the ones closed */
    for (int i = 0; i < 24; i++)
        close(idle[i]);
    for (int i = 0; i < 4; i++)
        close(streams[i]);
    s_other_end(f, &h, saved);
}

static void test_silent_and_trickling_connections_closed(void **state)
{
    fx_t *f = *state;
    as_http_opts_t o = {.header_timeout_ms = 300};
    int saved;
    as_http_t *h = s_other(f, &o, &saved);
    int silent = s_connect(f);
    int trickle = s_connect(f);
    const char *req = "GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
    uint64_t t0 = s_ms();
    bool silent_closed = false, trickle_closed = false;
    size_t sent = 0;
    uint64_t closed_at = 0;
    while (s_ms() - t0 < 3000 && !(silent_closed && trickle_closed)) {
        char buf[1024];
        if (!trickle_closed && sent < strlen(req) && (s_ms() - t0) / 50 > sent) {
            if (send(trickle, req + sent, 1, MSG_NOSIGNAL) == 1)
                sent++;
        }
        ssize_t n = recv(silent, buf, sizeof buf, 0);
        if (!silent_closed && (n == 0 || (n < 0 && errno != EAGAIN)))
            silent_closed = true;
        n = recv(trickle, buf, sizeof buf, 0);
        if (!trickle_closed && (n == 0 || (n < 0 && errno != EAGAIN))) {
            trickle_closed = true;
            closed_at = s_ms() - t0;
        }
        s_pump(f);
    }
    assert_true(silent_closed);
    assert_true(trickle_closed);
    /* the deadline runs from the connection's start, not from each byte */
    assert_true(closed_at < 1000);
    assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_TIMEOUT), 2);
    close(silent);
    close(trickle);
    s_other_end(f, &h, saved);
}

#define TOKEN "s3cr3t-Token_0123456789"

static void test_token(void **state)
{
    fx_t *f = *state;
    as_http_opts_t o = {.token = TOKEN};
    int saved;
    as_http_t *h = s_other(f, &o, &saved);
    char head[4096];
    struct {
        const char *req;
        int want;
    } cases[] = {
        {"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-000000\r\n\r\n",
         401},
        {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 401}, /* no path is told before the token */
        {"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " TOKEN "\r\n\r\n", 401},
        {"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "x\r\n\r\n", 401},
        {"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
         "\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
         401},
        {"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /api/status?token=" TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n", 401},
        {"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n\r\n", 200},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization:   bearer " TOKEN "  \r\n\r\n", 200},
        {"GET /api/totals HTTP/1.1\r\nHost: x\r\nCookie: a=b; aidstat_token=" TOKEN "; c=d\r\n\r\n",
         200},
        {"GET /api/totals HTTP/1.1\r\nHost: x\r\nCookie: aidstat_token=nope\r\n\r\n", 401},
    };
    uint64_t refused = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = s_connect(f);
        int st = s_status_on(f, fd, cases[i].req, head, sizeof head);
        if (st != cases[i].want)
            fprintf(stderr, "case %zu: %s\n", i, head);
        assert_int_equal(st, cases[i].want);
        if (st == 401) {
            assert_non_null(strcasestr(head, "WWW-Authenticate: Bearer"));
            refused++;
        }
        assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_UNAUTHORISED), refused);
        close(fd);
    }
    assert_int_equal(as_refusal_get(AS_REFUSE_HTTP_NOT_FOUND), 0);
    /* the dashboard asks for it, takes it once in its address and sets a strict cookie */
    resp_t r = s_get(f, "/");
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "name=\"token\""));
    s_resp_free(&r);
    r = s_get(f, "/?token=wrong-token-0000000");
    assert_int_equal(r.status, 401);
    s_resp_free(&r);
    r = s_get(f, "/?token=" TOKEN);
    assert_int_equal(r.status, 303);
    assert_non_null(strcasestr(r.head, "Location: /\r\n"));
    assert_non_null(strcasestr(r.head, "Set-Cookie: aidstat_token=" TOKEN
                                       "; Path=/; HttpOnly; SameSite=Strict\r\n"));
    s_resp_free(&r);
    int fd = s_connect(f);
    assert_int_equal(
        s_status_on(f, fd, "GET / HTTP/1.1\r\nHost: x\r\nCookie: aidstat_token=" TOKEN "\r\n\r\n",
                    head, sizeof head),
        200);
    assert_non_null(strcasestr(head, "text/html"));
    close(fd);
    s_other_end(f, &h, saved);

    /* a token with characters that do not belong in a header or cookie is refused */
    int err = 0;
    as_http_source_t src = {.ledger = f->ledger};
    as_http_opts_t bad = {.token = "abc; Path=/evil\r\nX: y"};
    assert_null(as_http_new(&f->loop, "127.0.0.1:0", &src, &bad, &err));
    assert_int_equal(err, AS_E_INVALID);
}

static void test_token_file_and_loopback(void **state)
{
    fx_t *f = *state;
    char path[128], tok[300], why[512];
    snprintf(path, sizeof path, "%s/token", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(TOKEN "  \n# anything after the first line is ignored\n", fp);
    fclose(fp);
    chmod(path, 0644);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), AS_E_AUTH);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "0644"));
    chmod(path, 0660);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), AS_E_AUTH);
    chmod(path, 0640);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), 0);
    assert_string_equal(tok, TOKEN);
    chmod(path, 0600);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), 0);
    fp = fopen(path, "w");
    fputs("short\n", fp);
    fclose(fp);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), AS_E_INVALID);
    fp = fopen(path, "w");
    fputs("with a space in the middle 0123456789\n", fp);
    fclose(fp);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), AS_E_INVALID);
    snprintf(path, sizeof path, "%s/none", f->dir);
    assert_int_equal(as_http_token_read(path, tok, sizeof tok, why, sizeof why), -ENOENT);
    assert_int_equal(as_http_token_read(f->dir, tok, sizeof tok, why, sizeof why), AS_E_INVALID);

    assert_int_equal(as_http_listen_is_loopback("127.0.0.1:7680"), 1);
    assert_int_equal(as_http_listen_is_loopback("127.9.8.7:0"), 1);
    assert_int_equal(as_http_listen_is_loopback("[::1]:7680"), 1);
    assert_int_equal(as_http_listen_is_loopback("[::ffff:127.0.0.1]:7680"), 1);
    assert_int_equal(as_http_listen_is_loopback("0.0.0.0:7680"), 0);
    assert_int_equal(as_http_listen_is_loopback("10.1.2.3:7680"), 0);
    assert_int_equal(as_http_listen_is_loopback("128.0.0.1:7680"), 0);
    assert_int_equal(as_http_listen_is_loopback("[::]:7680"), 0);
    assert_int_equal(as_http_listen_is_loopback("[::ffff:10.0.0.1]:7680"), 0);
    assert_int_equal(as_http_listen_is_loopback("localhost:7680"), AS_E_INVALID);
    assert_int_equal(as_http_listen_is_loopback("nonsense"), AS_E_INVALID);
}

static void test_bad_listen_address(void **state)
{
    fx_t *f = *state;
    int err = 0;
    as_http_source_t src = {.ledger = f->ledger};
    assert_null(as_http_new(&f->loop, "nonsense", &src, NULL, &err));
    assert_int_equal(err, AS_E_INVALID);
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", f->port);
    assert_null(as_http_new(&f->loop, busy, &src, NULL, &err));
    assert_int_equal(err, UV_EADDRINUSE);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* the bundle the daemon uses: server, metrics and monitor store in one object */
static void test_monitoring_bundle(void **state)
{
    fx_t *f = *state;
    as_monitoring_opts_t o = {.listen = "127.0.0.1:0", .data_dir = f->dir, .no_sync = true};
    int err = 0;
    as_monitoring_t *m = as_monitoring_new(&f->loop, f->ledger, &o, &err);
    assert_non_null(m);
    assert_true(as_monitoring_port(m) > 0);
    assert_int_equal(as_monitoring_on_nil_report(m, 360733, YEAR, 2), 0);
    assert_int_equal(as_monitoring_on_nil_report(m, 999999, YEAR, 2), AS_E_INVALID);
    as_monitoring_on_result(m, AS_RESULT_REJECTED, AS_REJECT_WRONG_COUNTY);
    as_commit_info_t info = {.accepted = 1, .commit_us = 700};
    as_monitoring_on_commit(m, &info);
    assert_int_equal(as_metrics_get(as_monitoring_metrics(m), AS_METRIC_NIL_REPORTS), 1);
    assert_int_equal(as_metrics_events(as_monitoring_metrics(m), AS_RESULT_REJECTED), 1);
    int port = f->port;
    f->port = as_monitoring_port(m);
    resp_t r = s_get(f, "/metrics");
    assert_non_null(strstr(r.body, "aidstat_events_rejected_total{reason=\"wrong_county\"} 1\n"));
    assert_non_null(strstr(r.body, "aidstat_nil_reports_total 1\n"));
    s_resp_free(&r);
    json_t *j = s_get_json(f, "/api/completeness?year=2025", 200);
    assert_string_equal(s_cell(j, 360733, 2), "nil");
    assert_string_equal(s_cell(j, 360730, 3), "reported");
    json_decref(j);
    f->port = port;
    as_monitoring_destroy(&m);
    as_monitoring_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_totals_match_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completeness_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap_never_starves_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_and_trickling_connections_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file_and_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_request_line_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_gets_408, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitoring_bundle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
