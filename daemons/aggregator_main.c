/* aidstat-aggregator: the provincial aggregator daemon — options, logs, and the aggregator object
 * with its HTTP side (API, dashboard, /metrics, nil-report store) plugged into its hooks. */
#include "aggregator.h"
#include "config.h"
#include "dirlock.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "monitoring.h"
#include "yearend.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char data[1024];
    char ingest[512];
    char feed[512];
    int64_t feed_hwm;
    char query[512];
    char http[128];
    char http_token[1024];
    int64_t http_max_conns;
    int64_t http_max_streams;
    int64_t http_max_streams_client;
    char curve_secret[1024];
    char authorized_keys[1024];
    int64_t group_cap;
    int64_t worker_nice;
    int64_t map_mib;
    bool no_http;
    bool no_sync;
    char log_level[16];
    char log_format[16];
    char report_deadline[32];
    int64_t draft_interval;
    int64_t pairing_target;
    int64_t social_work_target;
    int64_t outlier_k;
    int64_t outlier_window;
    int64_t outlier_min;
} opts_t;

#define F(field) AS_CFG_FIELD(opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"data", AS_CFG_STR, "./var/aggregator", "data folder (ledger in DATA/ledger)", F(data)},
    {"ingest", AS_CFG_STR, "tcp://127.0.0.1:7601", "ingest endpoint (ROUTER) for collectors",
     F(ingest)},
    {"feed", AS_CFG_STR, "tcp://127.0.0.1:7602", "feed endpoint (PUB) for downstream systems",
     F(feed)},
    {"feed-hwm", AS_CFG_INT, "200000",
     "messages a feed subscriber may lag before the PUB drops for it (it then replays)",
     F(feed_hwm)},
    {"query", AS_CFG_STR, "tcp://127.0.0.1:7603",
     "query endpoint (ROUTER) for aidstat and "
     "replay",
     F(query)},
    {"http", AS_CFG_STR, "127.0.0.1:7680", "HTTP ADDR:PORT: JSON API, live dashboard, /metrics",
     F(http)},
    {"http-token", AS_CFG_STR, "",
     "file holding the bearer token every HTTP request must then carry (Authorization: Bearer "
     "TOKEN; the dashboard takes it once as /?token=TOKEN and keeps it in an HttpOnly cookie), "
     "on loopback too when given; required when --http is not a loopback address. The file "
     "must not be open to others (chmod 600)",
     F(http_token)},
    {"http-max-connections", AS_CFG_INT, "1024",
     "HTTP connections at once; one more closes the oldest connection that is not a stream "
     "(idle, trickling its request or not reading its answer) to make room, or, when none is, "
     "gets 503",
     F(http_max_conns)},
    {"http-max-streams", AS_CFG_INT, "512",
     "open /api/stream clients at once, below --http-max-connections so that plain requests "
     "always find room; more get 503 with Retry-After",
     F(http_max_streams)},
    {"http-max-streams-per-client", AS_CFG_INT, "32",
     "open /api/stream clients from one client address (behind a reverse proxy every client has "
     "the proxy's: raise it there); more get 503 with Retry-After",
     F(http_max_streams_client)},
    {"no-http", AS_CFG_BOOL, "false", "do not serve HTTP (nil reports are then not stored)",
     F(no_http)},
    {"curve-secret", AS_CFG_STR, "",
     "the aggregator's key pair file (aidstat keygen --out; mode 0600, else refused); "
     "with --authorized-keys: CURVE on the ingest",
     F(curve_secret)},
    {"authorized-keys", AS_CFG_STR, "",
     "file of lines '<county> <z85 public key>', one per "
     "collector; SIGHUP re-reads it",
     F(authorized_keys)},
    {"group-cap", AS_CFG_INT, "20000",
     "pending events that force a commit (fewer once a group writes over 48 MiB of pages)",
     F(group_cap)},
    {"worker-nice", AS_CFG_INT, "19",
     "added to the nice of the threads that commit and fsync (0-19), which also ask for a short "
     "scheduler slice, so that HTTP, queries and the feed are served first while ingest runs "
     "(0: off)",
     F(worker_nice)},
    {"map-mib", AS_CFG_INT, "0", "initial LMDB map in MiB (0: default; it grows by itself)",
     F(map_mib)},
    {"no-sync", AS_CFG_BOOL, "false", "commits not durable (tests and benchmarks only)",
     F(no_sync)},
    {"report-deadline", AS_CFG_STR, "12-31 00:00",
     "MM-DD HH:MM (+08:00) of year Y when its final report is written and Y locked",
     F(report_deadline)},
    {"draft-interval", AS_CFG_INT, "86400",
     "seconds between scheduled drafts of the current year's report (0: none)", F(draft_interval)},
    {"pairing-target", AS_CFG_INT, "100", "key project: provincial organisations to be paired",
     F(pairing_target)},
    {"social-work-target", AS_CFG_INT, "35", "key project: social-work talents a year",
     F(social_work_target)},
    {"outlier-k", AS_CFG_INT, "6",
     "outlier rule: flag above median + k x max(1.4826 MAD, median/10, 1) of both the county's "
     "and the area's recent events",
     F(outlier_k)},
    {"outlier-window", AS_CFG_INT, "200", "outlier rule: recent events per county and area",
     F(outlier_window)},
    {"outlier-min-samples", AS_CFG_INT, "30",
     "outlier rule: events a window needs before it judges", F(outlier_min)},
    {"log-level", AS_CFG_STR, "info", "debug|info|warn|error", F(log_level)},
    {"log-format", AS_CFG_STR, "text", "text|json", F(log_format)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat-aggregator [--config FILE] [--data DIR] [--ingest EP] [--feed EP] "
    "[--query EP] [--http ADDR:PORT] [--log-format text|json] ...\n\n"
    "The provincial aggregator: applies each collector's events exactly once to the LMDB "
    "ledger, acknowledges them once the commit is on disk (fsync), publishes them on the feed "
    "and answers queries. SIGTERM/SIGINT stop cleanly (exit 0), SIGHUP reloads the authorized "
    "keys; a failed fsync stops it without acknowledging anything more (exit 1). It refuses to "
    "start (exit 2, nothing changed) on bad options, on an --http address beyond loopback "
    "without --http-token, or on a data folder another aggregator holds (DATA/.lock).";

typedef struct {
    as_aggregator_t *agg;
    as_monitoring_t *mon;
    as_yearend_t *yearend;
} daemon_t;

static void s_on_commit(void *arg, const as_commit_info_t *info, const as_committed_t *evs,
                        size_t n)
{
    (void)evs;
    (void)n;
    daemon_t *d = arg;
    as_monitoring_on_commit(d->mon, info);
}

static void s_on_result(void *arg, int code, int reject)
{
    daemon_t *d = arg;
    as_monitoring_on_result(d->mon, code, reject);
}

static int s_on_nil(void *arg, uint32_t county, uint32_t year, uint32_t month)
{
    daemon_t *d = arg;
    return as_monitoring_on_nil_report(d->mon, county, year, month);
}

static void s_on_stop(void *arg)
{
    daemon_t *d = arg;
    as_monitoring_destroy(&d->mon);
    as_yearend_destroy(&d->yearend);
}

static bool s_is_connected(void *ctx, const char *collector_id)
{
    return as_ingest_connected(ctx, collector_id);
}

int main(int argc, char **argv)
{
    /* Ingest decodes each batch into a fresh array of events (≈ 2.8 KB each, 1.4 MB for 500):
     * above glibc's mmap threshold every array was new zeroed pages from the kernel, one page
     * fault per event and a third of the loop thread's time (perf, 4 collectors delivering).
     * Kept in the heap and not trimmed, the memory of answered batches is reused; what stays
     * is bounded by the batches in flight, not by the events held. */
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 128 << 20) != 1)
        fprintf(stderr, "aidstat-aggregator: malloc tuning refused; continuing with defaults\n");
    opts_t o;
    char err[512];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat-aggregator: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat-aggregator: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    as_log_level_t level;
    as_log_format_t format;
    if (as_log_parse_level(o.log_level, &level) || as_log_parse_format(o.log_format, &format)) {
        fprintf(stderr, "aidstat-aggregator: --log-level wants debug|info|warn|error and "
                        "--log-format text|json\n");
        return 2;
    }
    as_log_setup(level, format);
    if (o.group_cap < 1 || o.map_mib < 0 || o.feed_hwm < 1 || o.feed_hwm > INT32_MAX ||
        o.worker_nice < 0 || o.worker_nice > 19) {
        fprintf(stderr, "aidstat-aggregator: --group-cap and --feed-hwm must be at least 1, "
                        "--map-mib not negative and --worker-nice 0-19\n");
        return 2;
    }

    if (*o.curve_secret) { /* a secret others can read is refused before anything starts */
        char pub[41], sec[41], why[1200];
        int krc = as_keys_read_secret(o.curve_secret, pub, sec, why, sizeof why);
        memset(sec, 0, sizeof sec);
        if (krc) {
            fprintf(stderr, "aidstat-aggregator: %s\n", why);
            return 2;
        }
    }
    /* HTTP beyond loopback only with a bearer token; then one owner per data folder: both
     * before anything is opened, so that a refused start changes nothing. */
    char http_token[300] = "";
    if (!o.no_http) {
        int loopback = as_http_listen_is_loopback(o.http);
        if (loopback < 0) {
            fprintf(stderr,
                    "aidstat-aggregator: bad --http %s (expected ADDR:PORT with a numeric "
                    "address, e.g. 127.0.0.1:7680)\n",
                    o.http);
            return 2;
        }
        if (o.http_token[0]) {
            char why[1300];
            if (as_http_token_read(o.http_token, http_token, sizeof http_token, why, sizeof why) !=
                0) {
                fprintf(stderr, "aidstat-aggregator: %s; not starting\n", why);
                return 2;
            }
        } else if (!loopback) {
            fprintf(stderr,
                    "aidstat-aggregator: --http %s is not a loopback address: HTTP beyond "
                    "loopback needs --http-token FILE (a bearer token every request must "
                    "carry); not starting\n",
                    o.http);
            return 2;
        }
        if (o.http_max_conns < 16 || o.http_max_conns > 1000000 || o.http_max_streams < 1 ||
            o.http_max_streams >= o.http_max_conns || o.http_max_streams_client < 1 ||
            o.http_max_streams_client > o.http_max_streams) {
            fprintf(stderr, "aidstat-aggregator: --http-max-connections must be 16..1000000, "
                            "--http-max-streams 1..(connections - 1) and "
                            "--http-max-streams-per-client 1..streams\n");
            return 2;
        }
    }
    long holder = 0;
    as_dirlock_t *lock = as_dirlock_take(o.data, &holder, &rc);
    if (!lock) {
        char whom[64] = "a process that has not written its pid yet";
        if (holder > 0)
            snprintf(whom, sizeof whom, "pid %ld", holder);
        if (rc == AS_E_BUSY)
            fprintf(stderr,
                    "aidstat-aggregator: data folder %s is in use by another aggregator (%s holds "
                    "%s/.lock); not starting, nothing changed\n",
                    o.data, whom, o.data);
        else
            fprintf(stderr, "aidstat-aggregator: cannot lock the data folder %s (%s/.lock): %s\n",
                    o.data, o.data, as_strerror(rc));
        return 2;
    }

    as_aggregator_opts_t ao = {
        .data_dir = o.data,
        .ingest = o.ingest,
        .feed = o.feed,
        .feed_hwm = (int)o.feed_hwm,
        .query = o.query,
        .curve_secret = o.curve_secret,
        .authorized_keys = o.authorized_keys,
        .group_cap = (size_t)o.group_cap,
        .worker_nice = (int)o.worker_nice,
        .map_bytes = (size_t)o.map_mib << 20,
        .no_sync = o.no_sync,
        .signals = true,
    };
    daemon_t d = {0};
    if (!(d.agg = as_aggregator_new(&ao, &rc))) {
        AS_ERROR("aggregator", "cannot start: %s", as_strerror(rc));
        as_dirlock_release(&lock);
        return 1;
    }
    as_yearend_opts_t yo;
    as_yearend_opts_default(&yo);
    yo.report.out_dir = o.data;
    yo.report.deadline = o.report_deadline;
    yo.report.draft_interval_s = o.draft_interval > 0 ? (unsigned)o.draft_interval : 0;
    yo.report.pairing_target = (unsigned)(o.pairing_target > 0 ? o.pairing_target : 0);
    yo.report.social_work_target = (unsigned)(o.social_work_target > 0 ? o.social_work_target : 0);
    yo.outlier.k = (double)(o.outlier_k > 0 ? o.outlier_k : 6);
    yo.outlier.window = (unsigned)(o.outlier_window > 0 ? o.outlier_window : 200);
    yo.outlier.min_samples = (unsigned)(o.outlier_min > 0 ? o.outlier_min : 30);
    if (!(d.yearend = as_yearend_new(d.agg, &yo, &rc))) {
        AS_ERROR("aggregator", "cannot start the registry and reports: %s", as_strerror(rc));
        as_aggregator_destroy(&d.agg);
        as_dirlock_release(&lock);
        return 1;
    }
    as_aggregator_on_stop(d.agg, s_on_stop, &d);
    if (!o.no_http) {
        as_monitoring_opts_t mo = {.listen = o.http,
                                   .data_dir = o.data,
                                   .no_sync = o.no_sync,
                                   .is_connected_cb = s_is_connected,
                                   .ctx = as_aggregator_ingest(d.agg),
                                   .live_cb = as_ingest_live,
                                   .live_ctx = as_aggregator_ingest(d.agg),
                                   .http_max_connections = (int)o.http_max_conns,
                                   .http_max_streams = (int)o.http_max_streams,
                                   .http_max_streams_per_client = (int)o.http_max_streams_client,
                                   .http_token = http_token};
        d.mon = as_monitoring_new(as_aggregator_loop(d.agg), as_aggregator_ledger(d.agg), &mo, &rc);
        if (!d.mon) {
            AS_ERROR("aggregator", "cannot serve HTTP on %s: %s", o.http, as_strerror(rc));
            as_aggregator_destroy(&d.agg);
            as_dirlock_release(&lock);
            return 1;
        }
        as_aggregator_on_commit(d.agg, s_on_commit, &d);
        as_aggregator_on_result(d.agg, s_on_result, &d);
        as_aggregator_on_nil_report(d.agg, s_on_nil, &d);
        as_aggregator_on_stop(d.agg, s_on_stop, &d);
    }
    rc = as_aggregator_run(d.agg);
    as_monitoring_destroy(&d.mon);
    as_yearend_destroy(&d.yearend);
    as_aggregator_destroy(&d.agg);
    as_dirlock_release(&lock);
    return rc == 0 ? 0 : 1;
}
