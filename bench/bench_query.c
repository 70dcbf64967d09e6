/* bench_query: the latency of answers from a running aggregator, measured by a C client so that
 * the figures are the server's and the network stack's rather than the measuring client's
 * (issue 4: /api/totals by county p99 < 2 ms, `aidstat query` p99 < 1 ms while ingesting).
 *
 *   bench_query --http 127.0.0.1:7680 --query tcp://127.0.0.1:7603 --rate 200 --seconds 5
 *   bench_query --http ADDR:PORT --path '/api/totals?year=2026&by=city' --path /api/status
 *   bench_query --query EP --aidstat build/bin/aidstat --seconds 5
 *
 * Every request is timed on its own (CLOCK_MONOTONIC, from the first byte sent to the last byte
 * of the answer received); requests are paced at --rate per second, not sent back to back, so
 * the client measures latency without loading the server as a closed loop would. The measured
 * things run one after the other, each for --seconds (or --requests), after --warmup requests
 * that are not counted:
 *
 *   --http ADDR:PORT   GET each --path (default /api/totals?year=Y&by=county) over one
 *                      keep-alive TCP connection; the answer is read to its last body byte by
 *                      Content-Length and must be 200
 *   --query EP         the query endpoint's round trip for exactly the request `aidstat query
 *                      --year Y --by DIM` sends (cli/qclient.c), over one REQ connection
 *   --aidstat PATH     `PATH query --endpoint EP --year Y --by DIM` as a whole process (spawn to
 *                      exit, output to /dev/null), and `PATH --version` (the start-up floor of
 *                      any invocation), paced at --exec-rate per second
 *
 * One line per measured thing: "bench_query: WHAT: N requests paced at R/s (L late): p50 .. ms,
 * p90 .. ms, p99 .. ms, max .. ms". A request counts as late when it could not be sent within one
 * period of its due time (the one before it took longer than the period). */
#include "err.h"
#include "qclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_MAX_PATHS 8

typedef struct {
    double rate, exec_rate, seconds;
    long requests, warmup;
    int timeout_ms;
} s_pace_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void s_sleep_until(double t)
{
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One request: 0, or an error with a sentence in err. */
typedef int (*s_one_fn)(void *arg, char *err, size_t errlen);

/* Runs fn paced at rate/s: warmup requests, then for the pace's seconds (or requests); prints the
 * line. Returns 0, or 1 after printing the first failure. */
static int s_measure(const char *what, s_one_fn fn, void *arg, const s_pace_t *p, double rate)
{
    size_t cap = p->requests > 0 ? (size_t)p->requests : (size_t)(p->seconds * rate) + 16;
    double *lat = malloc(cap * sizeof *lat);
    if (!lat)
        return 1;
    char err[600];
    double period = 1.0 / rate;
    for (long i = 0; i < p->warmup; i++) {
        double t0 = s_now();
        if (fn(arg, err, sizeof err) != 0) {
            fprintf(stderr, "bench_query: %s: %s\n", what, err);
            free(lat);
            return 1;
        }
        s_sleep_until(t0 + period);
    }
    size_t n = 0, late = 0;
    double start = s_now();
    for (size_t k = 0;; k++) {
        double due = start + (double)k * period;
        if (p->requests > 0 ? k >= (size_t)p->requests : due - start >= p->seconds || k >= cap)
            break;
        s_sleep_until(due);
        double t0 = s_now();
        if (t0 > due + period)
            late++;
        if (fn(arg, err, sizeof err) != 0) {
            fprintf(stderr, "bench_query: %s: %s\n", what, err);
            free(lat);
            return 1;
        }
        lat[n++] = s_now() - t0;
    }
    qsort(lat, n, sizeof *lat, s_cmp);
    if (n)
        printf("bench_query: %s: %zu requests paced at %g/s (%zu late): p50 %.3f ms, p90 %.3f ms, "
               "p99 %.3f ms, max %.3f ms\n",
               what, n, rate, late, lat[n / 2] * 1e3, lat[(size_t)(n * 0.90)] * 1e3,
               lat[(size_t)(n * 0.99)] * 1e3, lat[n - 1] * 1e3);
    fflush(stdout);
    free(lat);
    return 0;
}

/* ---- HTTP: one keep-alive connection, whole answers by Content-Length ----------------------- */

typedef struct {
    int fd;
    char req[1200];
    size_t reqlen;
    char *buf; /* bytes received and not yet consumed */
    size_t len, cap;
    size_t body; /* the last answer's body length */
} s_http_t;

static int s_http_connect(s_http_t *h, const char *addr, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
        snprintf(err, errlen, "--http wants ADDR:PORT, not %s", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    h->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || connect(h->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return 0;
}

/* Reads more bytes into h->buf; -1 on error or when the server closed. */
static int s_http_fill(s_http_t *h, char *err, size_t errlen)
{
    if (h->cap - h->len < 65536) {
        size_t cap = h->cap ? h->cap * 2 : 1 << 17;
        char *b = realloc(h->buf, cap + 1);
        if (!b) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        h->buf = b;
        h->cap = cap;
    }
    ssize_t r;
    do
        r = recv(h->fd, h->buf + h->len, h->cap - h->len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        snprintf(err, errlen, "%s", r == 0 ? "the server closed the connection" : strerror(errno));
        return -1;
    }
    h->len += (size_t)r;
    h->buf[h->len] = '\0';
    return 0;
}

static int s_http_one(void *arg, char *err, size_t errlen)
{
    s_http_t *h = arg;
    for (size_t off = 0; off < h->reqlen;) {
        ssize_t w = send(h->fd, h->req + off, h->reqlen - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    char *end;
    while (!h->buf || !(end = strstr(h->buf, "\r\n\r\n")))
        if (s_http_fill(h, err, errlen) != 0)
            return -1;
    size_t head = (size_t)(end - h->buf) + 4;
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(err, errlen, "not an HTTP answer: %.60s", h->buf);
        return -1;
    }
    long long clen = -1;
    for (char *l = strstr(h->buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            clen = atoll(l + 17);
    if (clen < 0) {
        snprintf(err, errlen, "an answer without Content-Length (status %d)", status);
        return -1;
    }
    while (h->len < head + (size_t)clen)
        if (s_http_fill(h, err, errlen) != 0)
            return -1;
    if (status != 200) {
        snprintf(err, errlen, "status %d: %.*s", status, (int)(clen > 300 ? 300 : clen),
                 h->buf + head);
        return -1;
    }
    h->body = (size_t)clen;
    size_t used = head + (size_t)clen;
    memmove(h->buf, h->buf + used, h->len - used);
    h->len -= used;
    h->buf[h->len] = '\0';
    return 0;
}

static int s_bench_http(const char *addr, const char *path, const s_pace_t *p)
{
    s_http_t h = {.fd = -1};
    char err[600], what[1400];
    int rc = 1;
    h.reqlen =
        (size_t)snprintf(h.req, sizeof h.req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr);
    if (h.reqlen >= sizeof h.req || s_http_connect(&h, addr, err, sizeof err) != 0) {
        fprintf(stderr, "bench_query: %s\n", h.reqlen >= sizeof h.req ? "path too long" : err);
        goto done;
    }
    if (s_http_one(&h, err, sizeof err) != 0) { /* the answer's size, for the line */
        fprintf(stderr, "bench_query: GET %s: %s\n", path, err);
        goto done;
    }
    snprintf(what, sizeof what, "GET %s (%zu bytes, keep-alive)", path, h.body);
    rc = s_measure(what, s_http_one, &h, p, p->rate);
done:
    if (h.fd >= 0)
        close(h.fd);
    free(h.buf);
    return rc;
}

/* ---- the query endpoint, as `aidstat query` asks --------------------------------------------- */

typedef struct {
    as_qclient_t *c;
    Aidstat__V1__QueryRequest req;
    Aidstat__V1__TotalsRequest tr;
    int timeout_ms;
    size_t rows;
} s_query_t;

static int s_query_one(void *arg, char *err, size_t errlen)
{
    s_query_t *q = arg;
    Aidstat__V1__QueryResponse *resp = NULL;
    int rc = as_qclient_request(q->c, q->timeout_ms, &q->req,
                                AIDSTAT__V1__QUERY_RESPONSE__BODY_TOTALS, &resp, err, errlen);
    if (rc)
        return rc;
    q->rows = resp->totals->n_rows;
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return 0;
}

static int s_bench_query(const char *ep, unsigned year, const char *by, const s_pace_t *p)
{
    char err[600], what[700];
    s_query_t q = {.timeout_ms = p->timeout_ms};
    if (!(q.c = as_qclient_new(ep, err, sizeof err))) {
        fprintf(stderr, "bench_query: %s\n", err);
        return 1;
    }
    as_qclient_totals_request(&q.req, &q.tr, year, by, 0);
    int rc = s_query_one(&q, err, sizeof err);
    if (rc)
        fprintf(stderr, "bench_query: query endpoint %s: %s\n", ep, err);
    else {
        snprintf(what, sizeof what, "query endpoint round trip, totals %u by %s (%zu rows, REQ)",
                 year, by, q.rows);
        rc = s_measure(what, s_query_one, &q, p, p->rate);
    }
    as_qclient_destroy(&q.c);
    return rc;
}

/* ---- a whole `aidstat` process --------------------------------------------------------------- */

typedef struct {
    char **argv;
} s_exec_t;

static int s_exec_one(void *arg, char *err, size_t errlen)
{
    s_exec_t *x = arg;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, x->argv[0], &fa, NULL, x->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", x->argv[0], strerror(rc));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, errlen, "%s %s ended with status %d", x->argv[0], x->argv[1], st);
        return -1;
    }
    return 0;
}

static int s_bench_exec(const char *bin, const char *ep, unsigned year, const char *by,
                        const s_pace_t *p)
{
    char ys[16], what[1200];
    snprintf(ys, sizeof ys, "%u", year);
    char *qargv[] = {(char *)bin, "query", "--endpoint", (char *)ep, "--year",
                     ys,          "--by",  (char *)by,   NULL};
    char *vargv[] = {(char *)bin, "--version", NULL};
    s_exec_t q = {qargv}, v = {vargv};
    snprintf(what, sizeof what, "`aidstat query --year %u --by %s` whole process", year, by);
    if (s_measure(what, s_exec_one, &q, p, p->exec_rate) != 0)
        return 1;
    return s_measure("`aidstat --version` whole process (start-up floor)", s_exec_one, &v, p,
                     p->exec_rate);
}

int main(int argc, char **argv)
{
    const char *http = NULL, *query = NULL, *aidstat = NULL, *by = "county";
    const char *paths[S_MAX_PATHS];
    size_t npaths = 0;
    unsigned year = 2026;
    s_pace_t p = {.rate = 200,
                  .exec_rate = 20,
                  .seconds = 5,
                  .requests = 0,
                  .warmup = 20,
                  .timeout_ms = 10000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--http"))
            http = v;
        else if (!strcmp(a, "--path") && npaths < S_MAX_PATHS)
            paths[npaths++] = v;
        else if (!strcmp(a, "--query"))
            query = v;
        else if (!strcmp(a, "--aidstat"))
            aidstat = v;
        else if (!strcmp(a, "--year"))
            year = (unsigned)atoi(v);
        else if (!strcmp(a, "--by"))
            by = v;
        else if (!strcmp(a, "--rate"))
            p.rate = atof(v);
        else if (!strcmp(a, "--exec-rate"))
            p.exec_rate = atof(v);
        else if (!strcmp(a, "--seconds"))
            p.seconds = atof(v);
        else if (!strcmp(a, "--requests"))
            p.requests = atol(v);
        else if (!strcmp(a, "--warmup"))
            p.warmup = atol(v);
        else
            goto usage;
    }
    if ((!http && !query) || (aidstat && !query) || p.rate <= 0 || p.exec_rate <= 0 ||
        p.seconds <= 0 || p.requests < 0 || p.warmup < 0)
        goto usage;
    char defpath[128];
    if (!npaths) {
        snprintf(defpath, sizeof defpath, "/api/totals?year=%u&by=%s", year, by);
        paths[npaths++] = defpath;
    }
    int rc = 0;
    for (size_t i = 0; http && i < npaths && !rc; i++)
        rc = s_bench_http(http, paths[i], &p);
    if (query && !rc)
        rc = s_bench_query(query, year, by, &p);
    if (aidstat && !rc)
        rc = s_bench_exec(aidstat, query, year, by, &p);
    return rc ? 1 : 0;

usage:
    fprintf(stderr,
            "usage: %s [--http ADDR:PORT [--path P]...] [--query EP [--aidstat PATH]] [--year Y] "
            "[--by DIM] [--rate R] [--exec-rate R] [--seconds S | --requests N] [--warmup N]\n",
            argv[0]);
    return 2;
}
