/* http: HTTP/1.1 server on libuv with http_parser; JSON API, SSE stream, metrics, dashboard. */
#include "http.h"
#include "dashboard.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "measures_json.h"

#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_URL         8192       /* longer request line → 414 */
#define MAX_HEADERS     8192       /* more header bytes → 431 */
#define MAX_CONNS       1024       /* more → closed at once */
#define SSE_MAX_QUEUE   (1u << 20) /* a stream client this far behind is dropped */
#define MAX_PARAMS      8
#define LIVE_WINDOW_MS  30000 /* default "connected": heard within this */
#define FLAGS_LIMIT_MAX 1000

typedef struct s_conn_s s_conn_t;

struct as_http_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t heartbeat; /* SSE comment lines */
    uv_timer_t push;      /* coalesced SSE messages after commits */
    as_http_source_t src;
    as_http_opts_t opts;
    http_parser_settings settings;
    s_conn_t *conns; /* every open connection */
    size_t nconns, nsse;
    int open_handles; /* server-owned handles not yet closed */
    bool destroying;
    bool push_armed;
    uv_work_t catch_work; /* the monitor's catch-up on a worker thread (its fsync off the loop) */
    bool catching, catch_again;
    int port;
};

struct s_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer; /* header timeout, then idle timeout */
    as_http_t *srv;
    s_conn_t *prev, *next;
    http_parser parser;
    char url[MAX_URL + 1];
    size_t url_len;
    size_t header_bytes;
    int reject;      /* status decided by a parser callback (405, 413, 414, 431) */
    uint32_t year;   /* stream clients: the year whose totals they follow */
    bool in_request; /* bytes of a request arrived */
    bool headers_done;
    bool sse;
    bool closing;
    bool close_after_write;
    bool force_close; /* the parser is in error: answer, then close */
    int pending_writes;
    int open_handles;
};

typedef struct {
    uv_write_t req;
    s_conn_t *c;
    size_t len;
    char data[];
} s_write_t;

/* ---- connection life ------------------------------------------------------------------------ */

static void s_server_maybe_free(as_http_t *h)
{
    if (h->destroying && h->open_handles == 0 && h->nconns == 0)
        free(h);
}

static void s_conn_closed_cb(uv_handle_t *handle)
{
    s_conn_t *c = handle->data;
    if (--c->open_handles > 0)
        return;
    as_http_t *h = c->srv;
    h->nconns--;
    free(c);
    s_server_maybe_free(h);
}

static void s_conn_close(s_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    as_http_t *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->sse)
        h->nsse--;
    uv_close((uv_handle_t *)&c->tcp, s_conn_closed_cb);
    uv_close((uv_handle_t *)&c->timer, s_conn_closed_cb);
}

static void s_write_cb(uv_write_t *req, int status)
{
    s_write_t *w = (s_write_t *)req;
    s_conn_t *c = w->c;
    free(w);
    c->pending_writes--;
    if (status < 0 || (c->close_after_write && c->pending_writes == 0))
        s_conn_close(c);
}

/* Queues a copy of data; closes the connection when the write cannot even start. */
static void s_write(s_conn_t *c, const char *a, size_t alen, const char *b, size_t blen)
{
    if (c->closing)
        return;
    s_write_t *w = malloc(sizeof *w + alen + blen);
    if (!w) {
        s_conn_close(c);
        return;
    }
    memcpy(w->data, a, alen);
    if (blen)
        memcpy(w->data + alen, b, blen);
    w->c = c;
    w->len = alen + blen;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, s_write_cb) != 0) {
        free(w);
        s_conn_close(c);
        return;
    }
    c->pending_writes++;
}

static const char *s_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Sends one response. close: the connection ends after it (else keep-alive as the client
 * asked). */
static void s_respond(s_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                      bool close)
{
    as_http_t *h = c->srv;
    bool head = c->headers_done && c->parser.method == HTTP_HEAD;
    if (c->force_close || !(c->headers_done && http_should_keep_alive(&c->parser)))
        close = true;
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s"
                     "Connection: %s\r\n\r\n",
                     status, s_reason(status), ctype, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", close ? "close" : "keep-alive");
    as_metrics_add(h->src.metrics, AS_METRIC_HTTP_REQUESTS, 1);
    if (status >= 400)
        as_metrics_add(h->src.metrics, AS_METRIC_HTTP_ERRORS, 1);
    s_write(c, hdr, (size_t)n, body, head ? 0 : len);
    if (close) {
        c->close_after_write = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_OK)
            http_parser_pause(&c->parser, 1); /* no more pipelined requests on this one */
        if (c->pending_writes == 0)
            s_conn_close(c);
    }
}

static void s_respond_json(s_conn_t *c, int status, json_t *j)
{
    char *txt = j ? as_json_dumps(j) : NULL;
    json_decref(j);
    if (!txt) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        s_respond(c, 500, "application/json", oom, sizeof oom - 1, true);
        return;
    }
    s_respond(c, status, "application/json; charset=utf-8", txt, strlen(txt), false);
    free(txt);
}

static void s_error(s_conn_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_error(s_conn_t *c, int status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s,s:i}", "error", msg, "status", status);
    if (!j) /* the message held bytes that are not UTF-8 (from the URL) */
        j = json_pack("{s:s,s:i}", "error", s_reason(status), "status", status);
    char *txt = j ? as_json_dumps(j) : NULL;
    json_decref(j);
    bool close = status == 408 || status == 413 || status == 414 || status == 431 ||
                 (status == 400 && !c->headers_done);
    s_respond(c, status, "application/json; charset=utf-8", txt ? txt : "{}", txt ? strlen(txt) : 2,
              close);
    free(txt);
}

/* ---- query parameters ----------------------------------------------------------------------- */

typedef struct {
    size_t n;
    char name[MAX_PARAMS][32];
    char value[MAX_PARAMS][64];
} s_params_t;

static int s_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into out[cap]; returns -1 when it does not fit or is malformed. */
static int s_decode(const char *src, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)src[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = s_hex(src[i + 1]);
            int lo = s_hex(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

/* Splits the query string; returns 0 or a message for a 400. */
static const char *s_parse_query(const char *q, size_t len, s_params_t *p)
{
    p->n = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        if (j > i) {
            if (p->n == MAX_PARAMS)
                return "too many query parameters";
            size_t eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            if (s_decode(q + i, eq - i, p->name[p->n], sizeof p->name[0]) != 0)
                return "malformed query parameter name";
            const char *v = eq < j ? q + eq + 1 : q + j;
            size_t vlen = eq < j ? j - eq - 1 : 0;
            if (s_decode(v, vlen, p->value[p->n], sizeof p->value[0]) != 0)
                return "malformed or too long query parameter value";
            p->n++;
        }
        i = j + 1;
    }
    return NULL;
}

static const char *s_param(const s_params_t *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}

/* Every parameter must be one of the allowed names (comma separated list); returns the first
 * unknown name or NULL. */
static const char *s_unknown_param(const s_params_t *p, const char *const *allowed)
{
    for (size_t i = 0; i < p->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(*a, p->name[i]) == 0;
        if (!ok)
            return p->name[i];
    }
    return NULL;
}

static bool s_parse_uint(const char *s, size_t max_digits, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_digits)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static uint32_t s_this_year(void)
{
    return as_today_cst() / 10000;
}

/* year=YYYY (2000..2100), default this year. Returns false after answering 400. */
static bool s_year_param(s_conn_t *c, const s_params_t *p, uint32_t *year)
{
    const char *y = s_param(p, "year");
    if (!y) {
        *year = s_this_year();
        return true;
    }
    if (!s_parse_uint(y, 4, year) || *year < 2000 || *year > 2100) {
        s_error(c, 400, "bad parameter year=%s: expected a year such as 2026 (2000..2100)", y);
        return false;
    }
    return true;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static void s_api_totals(s_conn_t *c, const s_params_t *p)
{
    static const char *const allowed[] = {"year", "by", "county", NULL};
    const char *bad = s_unknown_param(p, allowed);
    if (bad) {
        s_error(c, 400, "unknown parameter %s (expected year, by, county)", bad);
        return;
    }
    uint32_t year;
    if (!s_year_param(c, p, &year))
        return;
    const char *by_s = s_param(p, "by");
    int by = by_s ? as_dim_parse(by_s) : AS_DIM_PROVINCE;
    if (by < 0) {
        s_error(c, 400,
                "bad parameter by=%s: expected province, city, county, area, supervisor, org, "
                "month, group, funding, project or poverty",
                by_s);
        return;
    }
    as_filter_t filter = {0, -1};
    const char *county_s = s_param(p, "county");
    if (county_s && county_s[0]) {
        uint32_t code;
        if (!s_parse_uint(county_s, 6, &code) || strlen(county_s) != 6 ||
            (code != 360000 && !as_division_find(code))) {
            s_error(c, 400,
                    "bad parameter county=%s: expected the 6-digit code of a city or county "
                    "of the province",
                    county_s);
            return;
        }
        filter.county = code == 360000 ? 0 : code;
    }
    as_totals_row_t *rows = NULL;
    size_t n = 0;
    as_measures_t total;
    int rc = as_ledger_totals(c->srv->src.ledger, year, (as_dim_t)by, &filter, &rows, &n, &total);
    if (rc != 0) {
        s_error(c, 500, "totals: %s", as_strerror(rc));
        return;
    }
    size_t len = 0;
    char *txt = as_totals_json_text(year, (as_dim_t)by, rows, n, &total, &len);
    free(rows);
    if (!txt) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        s_respond(c, 500, "application/json", oom, sizeof oom - 1, true);
        return;
    }
    s_respond(c, 200, "application/json; charset=utf-8", txt, len, false);
    free(txt);
}

static bool s_connected(as_http_t *h, const as_collector_info_t *ci, uint64_t now)
{
    if (h->src.is_connected_cb)
        return h->src.is_connected_cb(h->src.ctx, ci->st.collector_id);
    return ci->st.last_heard_ms + LIVE_WINDOW_MS > now;
}

static int s_days_left(uint32_t today, uint32_t year)
{
    struct tm a = {0}, b = {0};
    a.tm_year = (int)(today / 10000) - 1900;
    a.tm_mon = (int)(today / 100 % 100) - 1;
    a.tm_mday = (int)(today % 100);
    b.tm_year = (int)year - 1900;
    b.tm_mon = 11;
    b.tm_mday = 31;
    return (int)((timegm(&b) - timegm(&a)) / 86400);
}

static void s_api_status(s_conn_t *c, const s_params_t *p)
{
    static const char *const allowed[] = {"year", NULL};
    const char *bad = s_unknown_param(p, allowed);
    if (bad) {
        s_error(c, 400, "unknown parameter %s (expected year)", bad);
        return;
    }
    uint32_t year;
    if (!s_year_param(c, p, &year))
        return;
    as_http_t *h = c->srv;
    as_collector_info_t *ci = NULL;
    size_t n = 0;
    int rc = as_ledger_collectors(h->src.ledger, &ci, &n);
    if (rc != 0) {
        s_error(c, 500, "collectors: %s", as_strerror(rc));
        return;
    }
    /* Overlay what the daemon heard since the last commit: backlog and last heard come with
     * heartbeats; a collector heard but not yet committed is listed too. */
    as_collector_live_t *live = NULL;
    size_t nl = 0;
    if (h->src.live_cb && h->src.live_cb(h->src.live_ctx, &live, &nl) == 0 && nl) {
        as_collector_info_t *grown = realloc(ci, (n + nl) * sizeof *ci);
        if (grown) {
            ci = grown;
            for (size_t j = 0; j < nl; j++) {
                size_t i = 0;
                while (i < n && strcmp(ci[i].st.collector_id, live[j].collector_id) != 0)
                    i++;
                if (i == n) {
                    memset(&ci[n], 0, sizeof ci[n]);
                    snprintf(ci[n].st.collector_id, sizeof ci[n].st.collector_id, "%s",
                             live[j].collector_id);
                    n++;
                }
                as_collector_state_t *st = &ci[i].st;
                st->county = live[j].county;
                st->backlog = live[j].backlog;
                if (live[j].last_heard_ms > st->last_heard_ms)
                    st->last_heard_ms = live[j].last_heard_ms;
                if (live[j].last_batch_seq > st->last_batch_seq)
                    st->last_batch_seq = live[j].last_batch_seq;
                if (live[j].version[0])
                    snprintf(st->version, sizeof st->version, "%s", live[j].version);
                ci[i].rejected += live[j].rejected_extra;
            }
        }
    }
    free(live);
    uint64_t now = s_now_ms();
    json_t *list = json_array();
    size_t connected = 0;
    for (size_t i = 0; i < n; i++) {
        const as_collector_state_t *st = &ci[i].st;
        bool conn = s_connected(h, &ci[i], now);
        connected += conn;
        uint64_t silent_s =
            st->last_heard_ms && now > st->last_heard_ms ? (now - st->last_heard_ms) / 1000 : 0;
        const as_division_t *d = as_division_find(st->county);
        json_t *o = json_pack(
            "{s:s,s:I,s:s,s:b,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:s,s:I}", "collector_id",
            st->collector_id, "county_code", (json_int_t)st->county, "county_name",
            d ? d->name : "", "connected", conn, "last_heard_ms", (json_int_t)st->last_heard_ms,
            "silent_s", (json_int_t)silent_s, "silent",
            st->last_heard_ms == 0 || silent_s > (uint64_t)h->opts.silent_after_s, "backlog",
            (json_int_t)st->backlog, "rejected", (json_int_t)ci[i].rejected, "accepted",
            (json_int_t)ci[i].accepted, "duplicates", (json_int_t)ci[i].duplicates,
            "software_version", st->version, "last_batch_seq", (json_int_t)st->last_batch_seq);
        if (o)
            json_array_append_new(list, o);
    }
    free(ci);
    uint32_t today = as_today_cst();
    char deadline[16];
    snprintf(deadline, sizeof deadline, "%04u-12-31", year);
    uint64_t seq = as_ledger_last_seq(h->src.ledger);
    json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:i,s:s,s:i,s:o}", "now_ms", (json_int_t)now,
                          "ledger_seq", (json_int_t)seq, "events", (json_int_t)seq,
                          "collectors_connected", (json_int_t)connected, "year", (json_int_t)year,
                          "silent_after_s", h->opts.silent_after_s, "publication_deadline",
                          deadline, "days_left", s_days_left(today, year), "collectors", list);
    s_respond_json(c, 200, j);
}

static void s_api_completeness(s_conn_t *c, const s_params_t *p)
{
    static const char *const allowed[] = {"year", NULL};
    const char *bad = s_unknown_param(p, allowed);
    if (bad) {
        s_error(c, 400, "unknown parameter %s (expected year)", bad);
        return;
    }
    uint32_t year;
    if (!s_year_param(c, p, &year))
        return;
    as_http_t *h = c->srv;
    if (!h->src.monitor) {
        s_error(c, 503, "completeness is not available on this server");
        return;
    }
    as_monitor_catch_up(h->src.monitor, h->src.ledger);
    s_respond_json(c, 200, as_monitor_completeness_json(h->src.monitor, year, as_today_cst()));
}

static void s_api_flags(s_conn_t *c, const s_params_t *p)
{
    static const char *const allowed[] = {"year", "limit", NULL};
    const char *bad = s_unknown_param(p, allowed);
    if (bad) {
        s_error(c, 400, "unknown parameter %s (expected year, limit)", bad);
        return;
    }
    uint32_t year = 0, limit = 100;
    const char *y = s_param(p, "year");
    if (y && !s_year_param(c, p, &year))
        return;
    const char *l = s_param(p, "limit");
    if (l && (!s_parse_uint(l, 4, &limit) || limit == 0 || limit > FLAGS_LIMIT_MAX)) {
        s_error(c, 400, "bad parameter limit=%s: expected 1..%d", l, FLAGS_LIMIT_MAX);
        return;
    }
    as_http_t *h = c->srv;
    if (!h->src.monitor) {
        s_error(c, 503, "flags are not available on this server");
        return;
    }
    as_monitor_catch_up(h->src.monitor, h->src.ledger);
    s_respond_json(c, 200, as_monitor_flags_json(h->src.monitor, year, limit));
}

static void s_api_metrics(s_conn_t *c)
{
    as_http_t *h = c->srv;
    as_metrics_gauges_t g = {0};
    as_collector_info_t *ci = NULL;
    size_t n = 0;
    if (as_ledger_collectors(h->src.ledger, &ci, &n) == 0) {
        uint64_t now = s_now_ms();
        g.collectors_known = n;
        for (size_t i = 0; i < n; i++)
            g.collectors_connected += s_connected(h, &ci[i], now);
        free(ci);
    }
    as_ledger_size(h->src.ledger, &g.ledger_file_bytes, &g.ledger_map_bytes);
    g.feed_seq = as_ledger_last_seq(h->src.ledger);
    g.sse_clients = h->nsse;
    g.http_connections = h->nconns;
    size_t len = 0;
    char *txt = as_metrics_render(h->src.metrics, &g, &len);
    if (!txt) {
        s_error(c, 500, "out of memory");
        return;
    }
    s_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", txt, len, false);
    free(txt);
}

/* One SSE message for a year: the province totals and the newest sequence. Malloc'd. */
static char *s_stream_message(as_http_t *h, uint32_t year)
{
    as_totals_row_t *rows = NULL;
    size_t n = 0;
    as_measures_t total;
    uint64_t seq = as_ledger_last_seq(h->src.ledger);
    if (as_ledger_totals(h->src.ledger, year, AS_DIM_PROVINCE, NULL, &rows, &n, &total) != 0)
        return NULL;
    free(rows);
    json_t *j = json_pack("{s:I,s:I,s:I,s:o}", "seq", (json_int_t)seq, "year", (json_int_t)year,
                          "time_ms", (json_int_t)s_now_ms(), "total", as_measures_to_json(&total));
    char *data = j ? as_json_dumps(j) : NULL;
    json_decref(j);
    if (!data)
        return NULL;
    size_t len = strlen(data) + 64;
    char *msg = malloc(len);
    if (msg)
        snprintf(msg, len, "event: totals\nid: %llu\ndata: %s\n\n", (unsigned long long)seq, data);
    free(data);
    return msg;
}

static void s_sse_send(s_conn_t *c, const char *msg)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > SSE_MAX_QUEUE) {
        AS_WARN("http", "stream client too slow (over %u bytes queued): dropping it",
                SSE_MAX_QUEUE);
        as_metrics_add(c->srv->src.metrics, AS_METRIC_SSE_DROPS, 1);
        s_conn_close(c);
        return;
    }
    s_write(c, msg, strlen(msg), NULL, 0);
}

static void s_api_stream(s_conn_t *c, const s_params_t *p)
{
    static const char *const allowed[] = {"year", NULL};
    const char *bad = s_unknown_param(p, allowed);
    if (bad) {
        s_error(c, 400, "unknown parameter %s (expected year)", bad);
        return;
    }
    uint32_t year;
    if (!s_year_param(c, p, &year))
        return;
    static const char hdr[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-store\r\nConnection: keep-alive\r\n"
        "X-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";
    as_metrics_add(c->srv->src.metrics, AS_METRIC_HTTP_REQUESTS, 1);
    s_write(c, hdr, sizeof hdr - 1, NULL, 0);
    if (c->parser.method == HTTP_HEAD) {
        c->close_after_write = true;
        return;
    }
    c->sse = true;
    c->year = year;
    c->srv->nsse++;
    uv_timer_stop(&c->timer);
    char *msg = s_stream_message(c->srv, year);
    if (msg)
        s_sse_send(c, msg);
    free(msg);
}

static void s_dispatch(s_conn_t *c)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        s_error(c, 400, "malformed request target");
        return;
    }
    const char *path = c->url + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
    s_params_t p;
    const char *qerr = NULL;
    if (u.field_set & (1 << UF_QUERY))
        qerr = s_parse_query(c->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len, &p);
    else
        p.n = 0;
#define IS(s) (plen == sizeof(s) - 1 && memcmp(path, s, plen) == 0)
    bool known = IS("/") || IS("/index.html") || IS("/api/totals") || IS("/api/status") ||
                 IS("/api/completeness") || IS("/api/flags") || IS("/api/stream") ||
                 IS("/metrics") || IS("/favicon.ico");
    if (!known) {
        s_error(c, 404,
                "no such path: %.*s (try /api/totals, /api/status, /api/completeness, "
                "/api/flags, /api/stream, /metrics or /)",
                (int)(plen > 200 ? 200 : plen), path);
        return;
    }
    if (qerr) {
        s_error(c, 400, "%s", qerr);
        return;
    }
    if (IS("/") || IS("/index.html")) {
        size_t len;
        const char *page = as_dashboard_html(&len);
        s_respond(c, 200, "text/html; charset=utf-8", page, len, false);
    } else if (IS("/api/totals")) {
        s_api_totals(c, &p);
    } else if (IS("/api/status")) {
        s_api_status(c, &p);
    } else if (IS("/api/completeness")) {
        s_api_completeness(c, &p);
    } else if (IS("/api/flags")) {
        s_api_flags(c, &p);
    } else if (IS("/api/stream")) {
        s_api_stream(c, &p);
    } else if (IS("/metrics")) {
        s_api_metrics(c);
    } else {
        s_respond(c, 204, "text/plain", "", 0, false);
    }
#undef IS
}

static void s_conn_timer_cb(uv_timer_t *t);

/* ---- parser callbacks ----------------------------------------------------------------------- */

static int s_on_message_begin(http_parser *p)
{
    s_conn_t *c = p->data;
    c->url_len = 0;
    c->header_bytes = 0;
    c->in_request = true;
    c->headers_done = false;
    c->reject = 0;
    uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)c->srv->opts.header_timeout_ms, 0);
    return 0;
}

static int s_on_url(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (c->url_len + len > MAX_URL) {
        c->reject = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int s_on_header_bytes(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    c->header_bytes += len;
    if (c->header_bytes > MAX_HEADERS) {
        c->reject = 431;
        return -1;
    }
    return 0;
}

static int s_on_headers_complete(http_parser *p)
{
    s_conn_t *c = p->data;
    c->headers_done = true;
    uv_timer_stop(&c->timer);
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        c->reject = 405;
        return -1;
    }
    if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
        c->reject = 413;
        return -1;
    }
    return 0;
}

static int s_on_message_complete(http_parser *p)
{
    s_conn_t *c = p->data;
    c->in_request = false;
    s_dispatch(c);
    if (c->closing || c->close_after_write || c->sse) {
        http_parser_pause(p, 1);
        return 0;
    }
    /* keep-alive: the same timer now limits how long the connection may stay idle */
    uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)c->srv->opts.idle_timeout_ms, 0);
    return 0;
}

/* ---- libuv callbacks ------------------------------------------------------------------------ */

static void s_conn_timer_cb(uv_timer_t *t)
{
    s_conn_t *c = t->data;
    if (c->in_request && !c->headers_done) {
        AS_INFO("http", "client did not finish its request headers within %d ms: 408",
                c->srv->opts.header_timeout_ms);
        s_error(c, 408, "request headers not received within %d ms",
                c->srv->opts.header_timeout_ms);
    } else {
        s_conn_close(c);
    }
}

static void s_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* the loop is single-threaded and data is parsed at once */
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void s_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    s_conn_t *c = stream->data;
    if (nread < 0) {
        s_conn_close(c);
        return;
    }
    if (nread == 0 || c->sse || c->close_after_write)
        return; /* stream clients only listen */
    size_t done = http_parser_execute(&c->parser, &c->srv->settings, buf->base, (size_t)nread);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED || c->closing)
        return;
    if (e != HPE_OK || done != (size_t)nread) {
        c->force_close = true;
        if (c->reject == 405)
            s_error(c, 405, "method %s not allowed: this server only answers GET and HEAD",
                    http_method_str(c->parser.method));
        else if (c->reject == 413)
            s_error(c, 413, "request bodies are not accepted");
        else if (c->reject == 414)
            s_error(c, 414, "request line longer than %d bytes", MAX_URL);
        else if (c->reject == 431 || e == HPE_HEADER_OVERFLOW)
            s_error(c, 431, "request headers longer than %d bytes", MAX_HEADERS);
        else
            s_error(c, 400, "malformed HTTP request: %s", http_errno_description(e));
    }
}

static void s_accept_cb(uv_stream_t *server, int status)
{
    as_http_t *h = server->data;
    if (status < 0 || h->destroying)
        return;
    s_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    h->nconns++;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        s_conn_close(c);
        return;
    }
    if (h->nconns > MAX_CONNS) {
        AS_WARN("http", "more than %d connections: closing a new one", MAX_CONNS);
        s_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)h->opts.header_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, s_alloc_cb, s_read_cb) != 0)
        s_conn_close(c);
}

static void s_heartbeat_cb(uv_timer_t *t)
{
    as_http_t *h = t->data;
    char msg[64];
    snprintf(msg, sizeof msg, ": heartbeat %llu\n\n", (unsigned long long)s_now_ms());
    for (s_conn_t *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->sse)
            s_sse_send(c, msg);
    }
}

static void s_catch_up_work(uv_work_t *w)
{
    as_http_t *h = w->data;
    as_monitor_async_run(h->src.monitor, h->src.ledger);
}

static void s_start_catch_up(as_http_t *h);

static void s_catch_up_done(uv_work_t *w, int status)
{
    as_http_t *h = w->data;
    (void)status;
    h->catching = false;
    h->open_handles--;
    if (h->destroying) {
        s_server_maybe_free(h);
        return;
    }
    if (h->catch_again)
        s_start_catch_up(h);
}

/* Lets the monitor follow the log after commits without its durable commit on the loop: the
 * completeness and flags answers still catch up themselves before answering. */
static void s_start_catch_up(as_http_t *h)
{
    if (!h->src.monitor || h->destroying)
        return;
    if (h->catching) {
        h->catch_again = true;
        return;
    }
    if (as_ledger_growth_waiting(h->src.ledger))
        return; /* let the next commit grow the map first; its push comes back here */
    h->catch_again = false;
    h->catch_work.data = h;
    as_monitor_async_begin(h->src.monitor, h->src.ledger);
    int rc = uv_queue_work(h->loop, &h->catch_work, s_catch_up_work, s_catch_up_done);
    if (rc) {
        /* ends the begun catch-up at once, on this thread */
        as_monitor_async_run(h->src.monitor, h->src.ledger);
        AS_WARN("http", "cannot hand the monitor's catch-up to a worker (%s); it ran here",
                uv_strerror(rc));
        return;
    }
    h->catching = true;
    h->open_handles++; /* the server is freed only after s_catch_up_done */
}

static void s_push_cb(uv_timer_t *t)
{
    as_http_t *h = t->data;
    h->push_armed = false;
    s_start_catch_up(h);
    /* one message per distinct year followed (almost always just one) */
    uint32_t years[8];
    char *msgs[8];
    size_t ny = 0;
    for (s_conn_t *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (!c->sse)
            continue;
        size_t i = 0;
        while (i < ny && years[i] != c->year)
            i++;
        if (i == ny) {
            if (ny == 8)
                continue;
            years[ny] = c->year;
            msgs[ny++] = s_stream_message(h, c->year);
        }
        if (msgs[i])
            s_sse_send(c, msgs[i]);
    }
    for (size_t i = 0; i < ny; i++)
        free(msgs[i]);
}

void as_http_notify_commit(as_http_t *h, const as_commit_info_t *info)
{
    if (!h || h->destroying || (info && info->accepted == 0))
        return;
    if (!h->push_armed) {
        h->push_armed = true;
        uv_timer_start(&h->push, s_push_cb, (uint64_t)h->opts.push_delay_ms, 0);
    }
}

/* ---- life of the server --------------------------------------------------------------------- */

static int s_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || colon == listen)
        return AS_E_INVALID;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    uint32_t port;
    if (!s_parse_uint(colon + 1, 5, &port) || port > 65535)
        return AS_E_INVALID;
    if (host[0] == '[') { /* [::1]:7680 */
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return AS_E_INVALID;
        host[n - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : AS_E_INVALID;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : AS_E_INVALID;
}

static void s_server_handle_closed_cb(uv_handle_t *handle)
{
    as_http_t *h = handle->data;
    h->open_handles--;
    s_server_maybe_free(h);
}

as_http_t *as_http_new(uv_loop_t *loop, const char *listen, const as_http_source_t *src,
                       const as_http_opts_t *opts, int *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (!src || !src->ledger || s_parse_listen(listen, &ss) != 0) {
        AS_ERROR("http", "bad listen address %s (expected ADDR:PORT, e.g. 127.0.0.1:7680)", listen);
        *err = AS_E_INVALID;
        return NULL;
    }
    as_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    h->loop = loop;
    h->src = *src;
    if (opts)
        h->opts = *opts;
    if (h->opts.header_timeout_ms <= 0)
        h->opts.header_timeout_ms = 10000;
    if (h->opts.idle_timeout_ms <= 0)
        h->opts.idle_timeout_ms = 60000;
    if (h->opts.heartbeat_ms <= 0)
        h->opts.heartbeat_ms = 15000;
    if (h->opts.push_delay_ms <= 0)
        h->opts.push_delay_ms = 100;
    if (h->opts.silent_after_s <= 0)
        h->opts.silent_after_s = 86400;
    h->settings.on_message_begin = s_on_message_begin;
    h->settings.on_url = s_on_url;
    h->settings.on_header_field = s_on_header_bytes;
    h->settings.on_header_value = s_on_header_bytes;
    h->settings.on_headers_complete = s_on_headers_complete;
    h->settings.on_message_complete = s_on_message_complete;

    uv_tcp_init(loop, &h->listener);
    uv_timer_init(loop, &h->heartbeat);
    uv_timer_init(loop, &h->push);
    h->listener.data = h->heartbeat.data = h->push.data = h;
    h->open_handles = 3;
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, s_accept_cb);
    if (rc != 0) {
        AS_ERROR("http", "cannot listen on %s: %s", listen, uv_strerror(rc));
        *err = rc;
        as_http_destroy(&h);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_start(&h->heartbeat, s_heartbeat_cb, (uint64_t)h->opts.heartbeat_ms,
                   (uint64_t)h->opts.heartbeat_ms);
    char name[INET6_ADDRSTRLEN] = "?";
    if (bound.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&bound, name, sizeof name);
    else
        uv_ip4_name((struct sockaddr_in *)&bound, name, sizeof name);
    AS_INFO("http", "dashboard, JSON API and /metrics on http://%s%s%s:%d/",
            bound.ss_family == AF_INET6 ? "[" : "", name, bound.ss_family == AF_INET6 ? "]" : "",
            h->port);
    *err = 0;
    return h;
}

int as_http_port(const as_http_t *h)
{
    return h->port;
}

size_t as_http_connections(const as_http_t *h)
{
    return h->nconns;
}

size_t as_http_stream_clients(const as_http_t *h)
{
    return h->nsse;
}

void as_http_destroy(as_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_http_t *h = *self_p;
    *self_p = NULL;
    h->destroying = true;
    while (h->conns)
        s_conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, s_server_handle_closed_cb);
    uv_close((uv_handle_t *)&h->heartbeat, s_server_handle_closed_cb);
    uv_close((uv_handle_t *)&h->push, s_server_handle_closed_cb);
}
