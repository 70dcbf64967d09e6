/* aidstat-collector: the county collector daemon — options, signals and the libuv loop. */
#include "collector.h"
#include "config.h"
#include "dirlock.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "reader.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    char county[16];
    char data[1024];
    char spool[1100];
    char aggregator[512];
    char control[1200];
    char curve_secret[1024];
    char aggregator_key[64];
    int64_t batch_size;
    int64_t window;
    int64_t resend_ms;
    char log_level[16];
    char log_format[16];
} opts_t;

#define F(field) AS_CFG_FIELD(opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"county", AS_CFG_STR, "", "6-digit code of the county served (required)", F(county)},
    {"data", AS_CFG_STR, "", "data folder (default ./var/collector-CODE)", F(data)},
    {"spool", AS_CFG_STR, "", "spool folder watched for files (default DATA/spool)", F(spool)},
    {"aggregator", AS_CFG_STR, "tcp://127.0.0.1:7601", "aggregator's ingest endpoint",
     F(aggregator)},
    {"control", AS_CFG_STR, "",
     "control endpoint for aidstat submit (default "
     "ipc://DATA/control.sock)",
     F(control)},
    {"curve-secret", AS_CFG_STR, "",
     "file with this collector's CURVE key pair (aidstat keygen --out; mode 0600, "
     "else refused); empty: plain",
     F(curve_secret)},
    {"aggregator-key", AS_CFG_STR, "", "the aggregator's CURVE public key (Z85)",
     F(aggregator_key)},
    {"batch-size", AS_CFG_INT, "500", "events per batch", F(batch_size)},
    {"window", AS_CFG_INT, "16", "batches in flight", F(window)},
    {"resend-ms", AS_CFG_INT, "10000", "resend a batch unanswered this long", F(resend_ms)},
    {"log-level", AS_CFG_STR, "info", "debug|info|warn|error", F(log_level)},
    {"log-format", AS_CFG_STR, "text", "text|json", F(log_format)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat-collector [--config FILE] --county CODE [--data DIR] [--spool DIR] "
    "[--aggregator EP] ...\n\nThe county collector: takes spreadsheets dropped into the spool "
    "and delivers every valid row to the provincial aggregator exactly once. It refuses to start "
    "(exit 2, nothing changed) on bad options or on a data folder another collector holds "
    "(DATA/.lock).";

typedef struct {
    uv_loop_t *loop;
    as_collector_t *collector;
    uv_signal_t sig_term, sig_int, sig_hup;
} daemon_t;

static void s_close_signals(daemon_t *d)
{
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
}

static void s_on_signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    if (signum == SIGHUP) {
        AS_INFO("collector", "SIGHUP: reloading the CURVE keys and reconnecting");
        if (d->collector && as_collector_reload(d->collector) != 0)
            AS_WARN("collector", "keys could not be reloaded; keeping the old connection");
        return;
    }
    if (!d->collector)
        return;
    AS_INFO("collector", "%s: no more input taken; closing (the outbox keeps what is unsent)",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    as_collector_destroy(&d->collector);
    s_close_signals(d);
}

int main(int argc, char **argv)
{
    opts_t o;
    char err[512] = "";
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat-collector: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat-collector: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    as_log_level_t level;
    as_log_format_t format;
    if (as_log_parse_level(o.log_level, &level) || as_log_parse_format(o.log_format, &format)) {
        fprintf(stderr, "aidstat-collector: bad --log-level or --log-format\n");
        return 2;
    }
    as_log_setup(level, format);
    char *end = NULL;
    unsigned long county = strtoul(o.county, &end, 10);
    if (strlen(o.county) != 6 || *end || county < 110000 || county > 829999) {
        fprintf(stderr, "aidstat-collector: --county needs a 6-digit county code, e.g. 360730 "
                        "(see --help)\n");
        return 2;
    }
    if (!*o.data)
        snprintf(o.data, sizeof o.data, "./var/collector-%s", o.county);
    if (!*o.spool)
        snprintf(o.spool, sizeof o.spool, "%s/spool", o.data);
    if (!*o.control)
        snprintf(o.control, sizeof o.control, "ipc://%s/control.sock", o.data);
    if (o.batch_size < 1 || o.batch_size > 10000 || o.window < 1 || o.window > 1024 ||
        o.resend_ms < 100) {
        fprintf(stderr, "aidstat-collector: --batch-size 1..10000, --window 1..1024, "
                        "--resend-ms >= 100\n");
        return 2;
    }
    if (*o.curve_secret) { /* a secret others can read is refused before anything starts */
        char pub[41], sec[41], why[1200];
        int krc = as_keys_read_secret(o.curve_secret, pub, sec, why, sizeof why);
        memset(sec, 0, sizeof sec);
        if (krc) {
            fprintf(stderr, "aidstat-collector: %s\n", why);
            return 2;
        }
    }
    /* One owner per data folder, before anything in it is touched (the outbox, the control
     * socket a second collector would otherwise take over); made with its parents if missing. */
    long holder = 0;
    as_dirlock_t *lock = as_dirlock_take(o.data, &holder, &rc);
    if (!lock) {
        char whom[64] = "a process that has not written its pid yet";
        if (holder > 0)
            snprintf(whom, sizeof whom, "pid %ld", holder);
        if (rc == AS_E_BUSY)
            fprintf(stderr,
                    "aidstat-collector: data folder %s is in use by another collector (%s holds "
                    "%s/.lock); not starting, nothing changed\n",
                    o.data, whom, o.data);
        else
            fprintf(stderr, "aidstat-collector: cannot lock the data folder %s (%s/.lock): %s\n",
                    o.data, o.data, as_strerror(rc));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    daemon_t d = {.loop = &loop};
    as_reader_ctx_t rctx = {.county = (uint32_t)county};
    as_collector_opts_t co = {
        .county = (uint32_t)county,
        .data = o.data,
        .spool = o.spool,
        .aggregator = o.aggregator,
        .control = o.control,
        .curve_secret = o.curve_secret,
        .aggregator_key = o.aggregator_key,
        .batch_size = (size_t)o.batch_size,
        .window = (size_t)o.window,
        .resend_ms = (uint64_t)o.resend_ms,
        .reader = as_reader_read,
        .reader_arg = &rctx,
    };
    int e = 0;
    d.collector = as_collector_new(&loop, &co, &e);
    if (!d.collector) {
        AS_ERROR("collector", "cannot start: %s; exiting", as_strerror(e));
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        as_dirlock_release(&lock);
        return 1;
    }
    uv_signal_init(&loop, &d.sig_term);
    uv_signal_init(&loop, &d.sig_int);
    uv_signal_init(&loop, &d.sig_hup);
    d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
    uv_signal_start(&d.sig_term, s_on_signal, SIGTERM);
    uv_signal_start(&d.sig_int, s_on_signal, SIGINT);
    uv_signal_start(&d.sig_hup, s_on_signal, SIGHUP);
    AS_INFO("collector",
            "aidstat-collector %s for county %s started (data %s, spool %s, "
            "aggregator %s)",
            AIDSTAT_VERSION, o.county, o.data, o.spool, o.aggregator);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    as_dirlock_release(&lock);
    AS_INFO("collector", "stopped cleanly");
    return rc == 0 ? 0 : 1;
}
