/* http: HTTP/1.1 server on libuv with http_parser; JSON API, SSE stream, metrics, dashboard. */
#include "http.h"
#include "dashboard.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "measures_json.h"
#include "refusal.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_URL         8192 /* longer request line → 414 */
#define MAX_HEADERS     8192 /* more header bytes → 431 */
#define MAX_CONNS       1024 /* default cap of connections; more → 503 and closed */
#define MAX_REFUSING    64   /* connections being answered 503 at once; more: closed */
#define REFUSE_LINGER   2000 /* ms a refused connection may take to read its 503 */
#define FD_RESERVE      256  /* descriptors kept for LMDB, ZeroMQ, files, reports */
#define STREAMS_PER_IP  32   /* default cap of one client address's streams */
#define RETRY_AFTER_S   10   /* Retry-After of a refused stream */
#define TOKEN_MAX       256
#define AUTH_MAX        (TOKEN_MAX + 32) /* an Authorization value we look at */
#define COOKIE_MAX      2048             /* a Cookie header we look at */
#define COOKIE_NAME     "aidstat_token"
#define WARN_EVERY_MS   10000      /* a refusal class is logged at most this often */
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
    size_t nrefusing;             /* connections answered 503 at accept, not yet closed */
    size_t nlive;                 /* open connections not yet closing (what the cap counts) */
    bool has_token;               /* every request needs the token */
    char token[TOKEN_MAX + 1];    /* for the dashboard's cookie */
    unsigned char token_hash[32]; /* BLAKE2b of the token: compared in constant time */
    uint64_t warned_ms[AS_REFUSE_COUNT]; /* last log line per refusal class */
    uint64_t unlogged[AS_REFUSE_COUNT];  /* refusals since that line */
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
    int reject;       /* status decided by a parser callback (405, 413, 414, 431) */
    uint32_t year;    /* stream clients: the year whose totals they follow */
    uint8_t addr[16]; /* the client's address (IPv4 as ::ffff:a.b.c.d), for per-client caps */
    uv_shutdown_t shutdown_req;
    /* the headers that authenticate: Authorization and Cookie, as received */
    char field[16]; /* the current header's name (first bytes) */
    size_t field_len;
    int hdr_target; /* 0: a header we ignore, 1: Authorization, 2: Cookie */
    bool in_value;  /* the parser is in a header value */
    char auth[AUTH_MAX + 1];
    size_t auth_len;
    int auth_count; /* Authorization headers seen (more than one: refused) */
    char cookie[COOKIE_MAX + 1];
    size_t cookie_len;
    bool request_timer; /* the timer counts the header deadline (else the idle one) */
    bool refused;       /* answered 503 at accept: read and dropped, closed after its answer */
    bool in_request;    /* bytes of a request arrived */
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
    if (c->refused)
        h->nrefusing--;
    h->nlive--;
    uv_close((uv_handle_t *)&c->tcp, s_conn_closed_cb);
    uv_close((uv_handle_t *)&c->timer, s_conn_closed_cb);
}

static void s_shutdown_cb(uv_shutdown_t *req, int status)
{
    s_conn_t *c = req->data;
    if (status < 0)
        s_conn_close(c);
    /* else the client reads the answer, sees the end and closes: EOF closes ours (or the
     * timer does) */
}

static void s_write_cb(uv_write_t *req, int status)
{
    s_write_t *w = (s_write_t *)req;
    s_conn_t *c = w->c;
    free(w);
    c->pending_writes--;
    if (status < 0 || c->closing) {
        s_conn_close(c);
    } else if (c->close_after_write && c->pending_writes == 0) {
        /* A refused connection may have sent a request we never read: closing it now would
         * reset it and the client could lose the 503. Send the end and wait for its own. */
        c->shutdown_req.data = c;
        if (!c->refused ||
            uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, s_shutdown_cb) != 0)
            s_conn_close(c);
    }
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
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
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

/* Sends one response with extra header lines (each ending in CRLF; "" for none). close: the
 * connection ends after it (else keep-alive as the client asked). */
static void s_respond_ex(s_conn_t *c, int status, const char *ctype, const char *extra,
                         const char *body, size_t len, bool close)
{
    as_http_t *h = c->srv;
    bool head = c->headers_done && c->parser.method == HTTP_HEAD;
    if (c->force_close || !(c->headers_done && http_should_keep_alive(&c->parser)))
        close = true;
    char hdr[1024];
    int n =
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s"
                 "Connection: %s\r\n\r\n",
                 status, s_reason(status), ctype, len, status == 405 ? "Allow: GET, HEAD\r\n" : "",
                 extra, close ? "close" : "keep-alive");
    if (n < 0 || (size_t)n >= sizeof hdr) { /* extra headers are ours and short: never */
        s_conn_close(c);
        return;
    }
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

static void s_respond(s_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                      bool close)
{
    s_respond_ex(c, status, ctype, "", body, len, close);
}

static uint64_t s_mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Counts a refusal; logs what happened at most once per WARN_EVERY_MS and class, with the number
 * of the same refusals since (an attacker must not flood the log). */
static void s_refused(as_http_t *h, as_refusal_t why, const char *what)
{
    as_refusal_count(why);
    if (why < 0 || why >= AS_REFUSE_COUNT)
        return;
    uint64_t now = s_mono_ms();
    h->unlogged[why]++;
    if (h->warned_ms[why] && now - h->warned_ms[why] < WARN_EVERY_MS)
        return;
    AS_WARN("http",
            "refused %s; %llu like it since the last such line (counted in /metrics as "
            "aidstat_refusals_total{stage=\"http\",reason=\"%s\"})",
            what, (unsigned long long)h->unlogged[why], as_refusal_reason(why));
    h->warned_ms[why] = now;
    h->unlogged[why] = 0;
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
    as_refusal_t why = AS_REFUSE_COUNT;
    if (status == 400)
        why = AS_REFUSE_HTTP_MALFORMED;
    else if (status == 404)
        why = AS_REFUSE_HTTP_NOT_FOUND;
    else if (status == 405)
        why = AS_REFUSE_HTTP_METHOD;
    else if (status == 408)
        why = AS_REFUSE_HTTP_TIMEOUT;
    else if (status == 413 || status == 414 || status == 431)
        why = AS_REFUSE_HTTP_TOO_LARGE;
    if (why != AS_REFUSE_COUNT)
        s_refused(c->srv, why, msg);
    s_respond(c, status, "application/json; charset=utf-8", txt ? txt : "{}", txt ? strlen(txt) : 2,
              close);
    free(txt);
}

/* ---- query parameters ----------------------------------------------------------------------- */

typedef struct {
    size_t n;
    char name[MAX_PARAMS][32];
    char value[MAX_PARAMS][TOKEN_MAX + 1]; /* room for ?token= on the dashboard */
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
    as_http_t *h = c->srv;
    size_t mine = 0;
    for (const s_conn_t *o = h->conns; o && h->nsse < (size_t)h->opts.max_streams; o = o->next)
        mine += o->sse && !o->closing && memcmp(o->addr, c->addr, sizeof c->addr) == 0;
    if (h->nsse >= (size_t)h->opts.max_streams || mine >= (size_t)h->opts.max_streams_per_client) {
        bool global = h->nsse >= (size_t)h->opts.max_streams;
        char what[160];
        snprintf(what, sizeof what, "a stream over the cap of %d %s: 503, Retry-After %d s",
                 global ? h->opts.max_streams : h->opts.max_streams_per_client,
                 global ? "streams" : "streams per client address", RETRY_AFTER_S);
        s_refused(h, AS_REFUSE_HTTP_TOO_MANY, what);
        char extra[64], body[256];
        snprintf(extra, sizeof extra, "Retry-After: %d\r\n", RETRY_AFTER_S);
        int n = snprintf(body, sizeof body,
                         "{\"error\":\"too many streams %s (at most %d); try again later\","
                         "\"status\":503}",
                         global ? "open" : "from this address",
                         global ? h->opts.max_streams : h->opts.max_streams_per_client);
        s_respond_ex(c, 503, "application/json; charset=utf-8", extra, body, (size_t)n, true);
        return;
    }
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

/* ---- the bearer token ---------------------------------------------------------------------- */

static bool s_token_char(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/' || ch == '=';
}

/* Whether cand[0..len) is the token: both hashed, the digests compared in constant time, so
 * neither the content nor the length of the token leaks through the time an answer takes. */
static bool s_token_ok(const as_http_t *h, const char *cand, size_t len)
{
    unsigned char d[32];
    crypto_generichash(d, sizeof d, (const unsigned char *)cand, len, NULL, 0);
    return sodium_memcmp(d, h->token_hash, sizeof d) == 0;
}

/* The value of cookie name in a Cookie header ("a=1; aidstat_token=..."), or NULL. */
static const char *s_cookie(const char *hdr, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = hdr;
    while (*p) {
        while (*p == ' ' || *p == ';' || *p == '\t')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && p[nlen] == '=' && memcmp(p, name, nlen) == 0) {
            *vlen = len - nlen - 1;
            while (*vlen && (p[nlen + 1 + *vlen - 1] == ' ' || p[nlen + 1 + *vlen - 1] == '\t'))
                (*vlen)--;
            return p + nlen + 1;
        }
        p += len;
    }
    return NULL;
}

/* Whether the request carries the token: Authorization: Bearer TOKEN (when the header is there,
 * only it counts), else the dashboard's cookie. */
static bool s_authorised(const s_conn_t *c)
{
    const as_http_t *h = c->srv;
    if (!h->has_token)
        return true;
    if (c->auth_count > 1)
        return false; /* two Authorization headers: which one would a proxy have checked? */
    if (c->auth_count == 1) {
        if (c->auth_len > AUTH_MAX || c->auth_len < 7 || strncasecmp(c->auth, "Bearer ", 7) != 0)
            return false;
        const char *t = c->auth + 7;
        size_t len = c->auth_len - 7;
        while (len && *t == ' ') {
            t++;
            len--;
        }
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
            len--;
        return s_token_ok(h, t, len);
    }
    if (c->cookie_len > COOKIE_MAX)
        return false;
    size_t vlen = 0;
    const char *v = s_cookie(c->cookie, COOKIE_NAME, &vlen);
    return v && s_token_ok(h, v, vlen);
}

/* The page a browser gets at / without the token: a form that sends it once as ?token=. */
static void s_ask_token(s_conn_t *c, bool wrong)
{
    char page[1024];
    int n = snprintf(
        page, sizeof page,
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>aidstat</title>"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        "<body style=\"font-family:sans-serif;max-width:30em;margin:4em auto\">"
        "<h1>aidstat</h1><p>%s</p><form method=\"get\" action=\"/\">"
        "<label>访问令牌 Access token <input name=\"token\" type=\"password\" "
        "autocomplete=\"current-password\" autofocus required></label> "
        "<button>打开 Open</button></form></body></html>\n",
        wrong ? "令牌不对。The token is not right."
              : "此仪表盘需要访问令牌。This dashboard needs its access token.");
    s_respond_ex(c, 401, "text/html; charset=utf-8",
                 "WWW-Authenticate: Bearer realm=\"aidstat\"\r\n", page, (size_t)n, false);
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
    as_http_t *h = c->srv;
    if (!s_authorised(c)) {
        /* the dashboard's page takes the token once in its address and keeps it in an
         * HttpOnly, SameSite=Strict cookie; everything else needs the header or the cookie */
        const char *given = !qerr && (IS("/") || IS("/index.html")) ? s_param(&p, "token") : NULL;
        if (given && s_token_ok(h, given, strlen(given))) {
            char extra[TOKEN_MAX + 128];
            snprintf(extra, sizeof extra,
                     "Location: /\r\nSet-Cookie: " COOKIE_NAME
                     "=%s; Path=/; HttpOnly; SameSite=Strict\r\n",
                     h->token);
            s_respond_ex(c, 303, "text/plain; charset=utf-8", extra, "", 0, false);
            return;
        }
        s_refused(h, AS_REFUSE_HTTP_UNAUTHORISED,
                  c->auth_count ? "a request with a wrong bearer token: 401"
                                : "a request without the bearer token: 401");
        if (IS("/") || IS("/index.html")) {
            s_ask_token(c, given != NULL);
            return;
        }
        static const char body[] =
            "{\"error\":\"this server needs its bearer token: send Authorization: Bearer "
            "TOKEN\",\"status\":401}";
        s_respond_ex(c, 401, "application/json; charset=utf-8",
                     "WWW-Authenticate: Bearer realm=\"aidstat\"\r\n", body, sizeof body - 1,
                     false);
        return;
    }
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
    c->field_len = 0;
    c->hdr_target = 0;
    c->in_value = false;
    c->auth_len = c->cookie_len = 0;
    c->auth_count = 0;
    c->auth[0] = c->cookie[0] = '\0';
    /* The header deadline runs from the connection's opening for its first request (a client
     * that trickles a byte now and then gains nothing), from the first byte for the next. */
    if (!c->request_timer) {
        c->request_timer = true;
        uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)c->srv->opts.header_timeout_ms, 0);
    }
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
    (void)at;
    c->header_bytes += len;
    if (c->header_bytes > MAX_HEADERS) {
        c->reject = 431;
        return -1;
    }
    return 0;
}

/* Appends to a kept header value; one longer than cap is marked by a length over cap. */
static void s_keep(char *buf, size_t *blen, size_t cap, const char *at, size_t len)
{
    if (*blen + len > cap) {
        *blen = cap + 1;
        return;
    }
    memcpy(buf + *blen, at, len);
    *blen += len;
    buf[*blen] = '\0';
}

static int s_on_header_field(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (c->in_value) { /* a new header begins */
        c->in_value = false;
        c->field_len = 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (c->field_len < sizeof c->field - 1)
            c->field[c->field_len] = at[i];
        c->field_len++;
    }
    c->field[c->field_len < sizeof c->field ? c->field_len : sizeof c->field - 1] = '\0';
    return s_on_header_bytes(p, at, len);
}

static int s_on_header_value(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (!c->in_value) { /* the value of the header just named begins */
        c->in_value = true;
        c->hdr_target = 0;
        if (c->field_len == 13 && strcasecmp(c->field, "authorization") == 0) {
            c->hdr_target = 1;
            c->auth_count++;
            c->auth_len = 0;
            c->auth[0] = '\0';
        } else if (c->field_len == 6 && strcasecmp(c->field, "cookie") == 0) {
            c->hdr_target = 2;
            if (c->cookie_len && c->cookie_len <= COOKIE_MAX) /* several Cookie headers */
                s_keep(c->cookie, &c->cookie_len, COOKIE_MAX, "; ", 2);
        }
    }
    if (c->hdr_target == 1)
        s_keep(c->auth, &c->auth_len, AUTH_MAX, at, len);
    else if (c->hdr_target == 2)
        s_keep(c->cookie, &c->cookie_len, COOKIE_MAX, at, len);
    return s_on_header_bytes(p, at, len);
}

static int s_on_headers_complete(http_parser *p)
{
    s_conn_t *c = p->data;
    c->headers_done = true;
    c->request_timer = false;
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
    c->request_timer = false;
    uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)c->srv->opts.idle_timeout_ms, 0);
    return 0;
}

/* ---- libuv callbacks ------------------------------------------------------------------------ */

static void s_conn_timer_cb(uv_timer_t *t)
{
    s_conn_t *c = t->data;
    if (c->refused) {
        s_conn_close(c); /* its 503 had its time */
    } else if (c->request_timer && c->in_request && !c->headers_done) {
        c->request_timer = false;
        s_error(c, 408, "request headers not received within %d ms of the connection's start",
                c->srv->opts.header_timeout_ms); /* counted there */
    } else if (c->request_timer) {
        c->request_timer = false;
        s_refused(c->srv, AS_REFUSE_HTTP_TIMEOUT, "a connection that sent no request: closed");
        s_conn_close(c);
    } else {
        s_conn_close(c); /* idle keep-alive: its time is up */
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
    if (nread == 0 || c->sse || c->close_after_write || c->refused)
        return; /* stream clients only listen; a refused one is only waited for */
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

/* The client's address as 16 bytes (IPv4 mapped into IPv6), what per-client caps compare. */
static void s_peer_addr(s_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(c->addr, 0, sizeof c->addr);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else if (ss.ss_family == AF_INET) {
        c->addr[10] = c->addr[11] = 0xff;
        memcpy(c->addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    }
}

/* At the connection cap, makes room by closing the oldest connection that is not a stream:
 * streams have their own budget below the cap, so there always is one, and plain requests are
 * answered in milliseconds, so the oldest is an idle keep-alive connection (it reconnects at
 * once, nothing of it is lost) or one that trickles its request (slowloris) or does not read
 * its answer. A new plain request thus always finds room. Returns whether one was closed. */
static bool s_evict_oldest(as_http_t *h, s_conn_t *fresh)
{
    s_conn_t *old = NULL;
    for (s_conn_t *o = h->conns; o; o = o->next) /* newest first: the last match is the oldest */
        if (o != fresh && !o->closing && !o->sse && !o->refused)
            old = o;
    if (!old)
        return false;
    if (old->request_timer || old->in_request || old->pending_writes) {
        char what[160];
        snprintf(what, sizeof what,
                 "at the cap of %d connections: closed the oldest, which had %s, for a new one",
                 h->opts.max_connections,
                 old->pending_writes ? "not read its answer" : "not sent a complete request");
        s_refused(h, AS_REFUSE_HTTP_TOO_MANY, what);
    }
    s_conn_close(old);
    return true;
}

/* Over the connection cap: a short 503 with Retry-After instead of holding the connection, then
 * closed; past MAX_REFUSING such answers at once, closed without one. */
static void s_refuse_conn(as_http_t *h, s_conn_t *c)
{
    char what[128];
    snprintf(what, sizeof what, "a connection over the cap of %d connections: 503",
             h->opts.max_connections);
    s_refused(h, AS_REFUSE_HTTP_TOO_MANY, what);
    c->refused = true;
    h->nrefusing++;
    if (h->nrefusing > MAX_REFUSING) {
        s_conn_close(c);
        return;
    }
    static const char body[] = "{\"error\":\"too many connections; try again shortly\","
                               "\"status\":503}\n";
    char resp[384];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
                     "charset=utf-8\r\nContent-Length: %zu\r\nRetry-After: 1\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    as_metrics_add(h->src.metrics, AS_METRIC_HTTP_REQUESTS, 1);
    as_metrics_add(h->src.metrics, AS_METRIC_HTTP_ERRORS, 1);
    uv_timer_start(&c->timer, s_conn_timer_cb, REFUSE_LINGER, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, s_alloc_cb, s_read_cb) != 0) {
        s_conn_close(c);
        return;
    }
    c->close_after_write = true;
    s_write(c, resp, (size_t)n, NULL, 0);
}

static void s_conn_start(as_http_t *h, s_conn_t *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->request_timer = true;
    uv_timer_start(&c->timer, s_conn_timer_cb, (uint64_t)h->opts.header_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, s_alloc_cb, s_read_cb) != 0)
        s_conn_close(c);
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
    h->nlive++;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        s_conn_close(c);
        return;
    }
    s_peer_addr(c);
    if (h->nlive > (size_t)h->opts.max_connections && !s_evict_oldest(h, c))
        s_refuse_conn(h, c);
    else
        s_conn_start(h, c);
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

/* Fills in the caps' defaults and makes them fit: streams below connections, and connections
 * within the descriptors the process may open (RLIMIT_NOFILE raised to its hard limit if that
 * is what it takes; else the caps are lowered, with a warning). */
static void s_caps(as_http_t *h)
{
    as_http_opts_t *o = &h->opts;
    if (o->max_connections <= 0)
        o->max_connections = MAX_CONNS;
    struct rlimit rl;
    rlim_t want = (rlim_t)o->max_connections + MAX_REFUSING + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            AS_INFO("http", "open files limit raised from %llu to %llu for %d HTTP connections",
                    (unsigned long long)old, (unsigned long long)rl.rlim_cur, o->max_connections);
        else
            rl.rlim_cur = old;
        if (rl.rlim_cur < want) {
            int fit = rl.rlim_cur > MAX_REFUSING + FD_RESERVE + 16
                          ? (int)(rl.rlim_cur - MAX_REFUSING - FD_RESERVE)
                          : 16;
            AS_WARN("http",
                    "open files limit %llu (hard %llu) is too low for %d HTTP connections: "
                    "serving at most %d (raise LimitNOFILE / ulimit -n)",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                    o->max_connections, fit);
            o->max_connections = fit;
        }
    }
    if (o->max_streams <= 0)
        o->max_streams = o->max_connections / 2;
    if (o->max_streams >= o->max_connections)
        o->max_streams = o->max_connections > 1 ? o->max_connections - 1 : 1;
    if (o->max_streams_per_client <= 0)
        o->max_streams_per_client = STREAMS_PER_IP;
    if (o->max_streams_per_client > o->max_streams)
        o->max_streams_per_client = o->max_streams;
}

int as_http_token_read(const char *path, char *out, size_t cap, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(why, whylen, "cannot open the HTTP token file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(why, whylen, "cannot stat the HTTP token file %s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = AS_E_INVALID;
        snprintf(why, whylen, "the HTTP token file %s is not a regular file", path);
    } else if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        rc = AS_E_AUTH;
        snprintf(why, whylen,
                 "the HTTP token file %s is open to others (mode %04o): chmod 600 (or 640) it",
                 path, (unsigned)(st.st_mode & 07777));
    }
    char buf[TOKEN_MAX + 4];
    ssize_t n = 0;
    if (rc == 0 && (n = read(fd, buf, sizeof buf - 1)) < 0) {
        rc = -errno;
        snprintf(why, whylen, "cannot read the HTTP token file %s: %s", path, strerror(-rc));
    }
    close(fd);
    if (rc != 0)
        return rc;
    buf[n] = '\0';
    size_t len = strcspn(buf, "\r\n");
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    bool ok = len >= 16 && len <= TOKEN_MAX && len < cap;
    for (size_t i = 0; ok && i < len; i++)
        ok = s_token_char((unsigned char)buf[i]);
    if (!ok) {
        snprintf(why, whylen,
                 "the HTTP token file %s must hold one token of 16 to %d characters A-Z a-z 0-9 "
                 "- . _ ~ + / = on its first line (e.g. openssl rand -hex 32)",
                 path, TOKEN_MAX);
        sodium_memzero(buf, sizeof buf);
        return AS_E_INVALID;
    }
    memcpy(out, buf, len + 1);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int as_http_listen_is_loopback(const char *listen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (!listen || s_parse_listen(listen, &ss) != 0)
        return AS_E_INVALID;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a6))
        return 1;
    if (IN6_IS_ADDR_V4MAPPED(a6))
        return a6->s6_addr[12] == 127;
    return 0;
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
        h->opts.header_timeout_ms = 5000;
    if (h->opts.idle_timeout_ms <= 0)
        h->opts.idle_timeout_ms = 60000;
    if (h->opts.heartbeat_ms <= 0)
        h->opts.heartbeat_ms = 15000;
    if (h->opts.push_delay_ms <= 0)
        h->opts.push_delay_ms = 100;
    if (h->opts.silent_after_s <= 0)
        h->opts.silent_after_s = 86400;
    s_caps(h);
    h->opts.token = NULL; /* a copy is kept below; the caller's string need not live on */
    if (opts && opts->token && opts->token[0]) {
        size_t tlen = strlen(opts->token);
        if (sodium_init() < 0) {
            AS_ERROR("http", "libsodium does not start: the bearer token cannot be checked");
            free(h);
            *err = AS_E_INVALID;
            return NULL;
        }
        if (tlen > TOKEN_MAX) {
            AS_ERROR("http", "the bearer token is longer than %d characters", TOKEN_MAX);
            free(h);
            *err = AS_E_INVALID;
            return NULL;
        }
        for (size_t i = 0; i < tlen; i++)
            if (!s_token_char((unsigned char)opts->token[i])) {
                AS_ERROR("http", "the bearer token holds a character other than A-Z a-z 0-9 "
                                 "- . _ ~ + / =");
                free(h);
                *err = AS_E_INVALID;
                return NULL;
            }
        memcpy(h->token, opts->token, tlen + 1);
        crypto_generichash(h->token_hash, sizeof h->token_hash, (const unsigned char *)h->token,
                           tlen, NULL, 0);
        h->has_token = true;
    }
    h->settings.on_message_begin = s_on_message_begin;
    h->settings.on_url = s_on_url;
    h->settings.on_header_field = s_on_header_field;
    h->settings.on_header_value = s_on_header_value;
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
