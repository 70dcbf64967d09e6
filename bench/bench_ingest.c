/* bench_ingest: a load generator speaking the collector's ingest protocol to a real aggregator,
 * at a fixed offered rate, measuring the acknowledgement latency of every batch (p50/p99).
 *
 *   bench_ingest --endpoint tcp://127.0.0.1:7601 --county 360730 --rate 10000 --seconds 10
 *   bench_ingest --endpoint EP --counties all --realistic --rate 10000 --seconds 30
 *   bench_ingest --endpoint EP --counties all --realistic --events 500000 --window 16
 *
 * Each batch is timed from its send to its BatchResult, i.e. including the durable commit. Only
 * the connections that wait for an answer are polled (with 100 counties, polling every socket
 * at each wake-up cost this generator ≈ 0.25 core at 10,000 events/s, load on the machine it
 * measures).
 *
 *   --counties all|N|C1,C2,...  one connection (Hello, collector id) per county, batches sent
 *                               round-robin over them (default: the --county alone)
 *   --realistic                 events from `aidstat gen`'s generator (many organisations,
 *                               villages, dates through the year), cycled with fresh event ids;
 *                               else one organisation and simple synthetic values
 *   --events N                  send N events (rounded up to whole batches) instead of
 *                               rate × seconds
 *   --window W                  at most W batches unacknowledged (0: no limit, the default); with
 *                               a huge --rate this sends as fast as the aggregator acknowledges
 *   --run TAG                   part of every event id (default: time and pid), so runs differ
 *   --acks-out FILE             one line per acknowledged batch: "send_s ack_s max_ledger_seq",
 *                               CLOCK_MONOTONIC seconds (for the stream-latency benchmark)
 *   --year Y                    activity year of the events (default 2026) */
#include "division.h"
#include "event.h"
#include "gen.h"
#include "sheet.h"
#include "wire.h"
#include "aidstat/v1/ingest.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- events -----------------------------------------------------------------------------------
 */

typedef struct {
    as_event_t *evs;
    size_t n, cap;
} s_pool_t;

static s_pool_t *s_pools; /* one per county when --realistic */
static uint32_t *s_counties;
static size_t s_ncounties;

static int s_county_index(uint32_t county)
{
    for (size_t i = 0; i < s_ncounties; i++)
        if (s_counties[i] == county)
            return (int)i;
    return -1;
}

static int s_pool_add(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
    (void)arg;
    (void)rowno;
    (void)line;
    if (ev->has_correction || ev->retract)
        return 0; /* their targets would not exist under the bench's fresh ids */
    int k = s_county_index(ev->county);
    if (k < 0)
        return 0;
    s_pool_t *p = &s_pools[k];
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        as_event_t *e = realloc(p->evs, cap * sizeof *e);
        if (!e)
            return -1;
        p->evs = e;
        p->cap = cap;
    }
    p->evs[p->n++] = *ev;
    return 0;
}

/* Realistic events: the generator's rows for every county, read back through the sheet reader
 * (so they are exactly what a collector would send). */
static int s_make_pools(unsigned year, size_t per_county)
{
    s_pools = calloc(s_ncounties, sizeof *s_pools);
    if (!s_pools)
        return -1;
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/bench_ingest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    char err[256] = "";
    as_gen_opts_t g = {.counties = s_counties,
                       .ncounties = s_ncounties,
                       .events = per_county * s_ncounties,
                       .year = year,
                       .seed = 4242,
                       .sorted = false};
    int rc = f ? as_gen_write(f, &g, err, sizeof err) : -1;
    if (f)
        fclose(f);
    if (rc == 0) {
        as_validate_ctx_t ctx = {.county = 0, .today = as_today_cst()};
        as_sheet_handler_t h = {.on_event = s_pool_add};
        rc = as_sheet_read_events(path, &ctx, &h, NULL);
    } else {
        fprintf(stderr, "bench_ingest: generator: %s\n", err);
    }
    unlink(path);
    for (size_t i = 0; rc == 0 && i < s_ncounties; i++)
        if (!s_pools[i].n) {
            fprintf(stderr, "bench_ingest: no generated events for county %06u\n", s_counties[i]);
            rc = -1;
        }
    return rc;
}

/* The n-th event of the k-th county. */
static void s_make_event(as_event_t *ev, size_t k, uint64_t n, const char *run, unsigned year)
{
    uint32_t county = s_counties[k];
    if (s_pools) {
        const s_pool_t *p = &s_pools[k];
        *ev = p->evs[n % p->n];
        /* a new activity each time round the pool: vary a measure so no two are alike */
        ev->beneficiaries += (n / p->n) % 7;
        snprintf(ev->event_id, sizeof ev->event_id, "bench-%s-%llu", run, (unsigned long long)n);
        ev->source_file[0] = '\0';
        ev->source_row = 0;
        as_event_derive_id(ev);
        return;
    }
    memset(ev, 0, sizeof *ev);
    ev->county = county;
    snprintf(ev->event_id, sizeof ev->event_id, "bench-%s-%llu", run, (unsigned long long)n);
    memcpy(ev->org_code, "53100000500019795A", 19);
    snprintf(ev->org_name, sizeof ev->org_name, "中国社会福利基金会");
    ev->area = (uint8_t)(1 + n % 7);
    ev->group = (uint8_t)(1 + n % 8);
    ev->funding = (uint8_t)(1 + n % 4);
    ev->date = year * 10000 + 101 + (uint32_t)(n % 28);
    ev->beneficiaries = 10 + n % 50;
    ev->registered_poor = n % 10;
    ev->funds_fen = (int64_t)(n % 100000) * 100;
    ev->volunteers = n % 20;
    ev->volunteer_tenths = n % 200;
    as_event_derive_id(ev);
}

static int s_send_msg(void *sock, const Aidstat__V1__IngestMessage *m)
{
    size_t len = aidstat__v1__ingest_message__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    aidstat__v1__ingest_message__pack(m, buf);
    int rc = zmq_send(sock, buf, len, 0);
    free(buf);
    return rc < 0 ? -1 : 0;
}

/* --counties all | N (the first N of the province) | C1,C2,... */
static int s_parse_counties(const char *spec, uint32_t single)
{
    size_t nall = 0;
    const as_division_t *all = NULL;
    if (as_division_init() == 0)
        all = as_division_counties(&nall);
    if (!spec) {
        s_counties = malloc(sizeof *s_counties);
        s_counties[0] = single;
        s_ncounties = 1;
        return 0;
    }
    s_counties = calloc(nall + 256, sizeof *s_counties);
    if (!s_counties)
        return -1;
    if (!strcmp(spec, "all") || (!strchr(spec, ',') && strlen(spec) < 6)) {
        size_t want = !strcmp(spec, "all") ? nall : (size_t)atoi(spec);
        for (size_t i = 0; i < nall && s_ncounties < want; i++)
            s_counties[s_ncounties++] = all[i].code;
    } else {
        char *copy = strdup(spec), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && s_ncounties < nall + 256;
             t = strtok_r(NULL, ",", &save))
            s_counties[s_ncounties++] = (uint32_t)atoi(t);
        free(copy);
    }
    return s_ncounties ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:7601", *counties_spec = NULL, *acks_out = NULL;
    uint32_t county = 360730;
    double rate = 10000, seconds = 10;
    int batch = 100, window = 0, realistic = 0;
    long long events = 0;
    unsigned year = 2026;
    char run[48] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--realistic")) {
            realistic = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--endpoint"))
            endpoint = v;
        else if (!strcmp(a, "--county"))
            county = (uint32_t)atoi(v);
        else if (!strcmp(a, "--counties"))
            counties_spec = v;
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--events"))
            events = atoll(v);
        else if (!strcmp(a, "--batch"))
            batch = atoi(v);
        else if (!strcmp(a, "--window"))
            window = atoi(v);
        else if (!strcmp(a, "--run"))
            snprintf(run, sizeof run, "%s", v);
        else if (!strcmp(a, "--acks-out"))
            acks_out = v;
        else if (!strcmp(a, "--year"))
            year = (unsigned)atoi(v);
        else
            goto usage;
    }
    if (batch < 1 || rate <= 0 || seconds <= 0 || window < 0)
        goto usage;
    if (!run[0])
        snprintf(run, sizeof run, "%ld-%ld", (long)time(NULL), (long)getpid());
    if (s_parse_counties(counties_spec, county) != 0) {
        fprintf(stderr, "bench_ingest: bad --counties %s\n", counties_spec);
        return 2;
    }
    if (realistic && s_make_pools(year, 500) != 0) {
        fprintf(stderr, "bench_ingest: cannot generate realistic events\n");
        return 1;
    }

    void *ctx = zmq_ctx_new();
    void **socks = calloc(s_ncounties, sizeof *socks);
    zmq_pollitem_t *items = calloc(s_ncounties, sizeof *items);
    if (!socks || !items)
        return 1;
    for (size_t k = 0; k < s_ncounties; k++) {
        void *sock = socks[k] = zmq_socket(ctx, ZMQ_DEALER);
        int linger = 0, hwm = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_connect(sock, endpoint) != 0) {
            fprintf(stderr, "bench_ingest: cannot connect to %s: %s\n", endpoint,
                    zmq_strerror(zmq_errno()));
            return 1;
        }
        items[k] = (zmq_pollitem_t){sock, 0, ZMQ_POLLIN, 0};
        char cid[64];
        snprintf(cid, sizeof cid, "collector-%u", s_counties[k]);
        Aidstat__V1__Hello hello = AIDSTAT__V1__HELLO__INIT;
        hello.collector_id = cid;
        hello.county_code = s_counties[k];
        hello.software_version = AIDSTAT_VERSION;
        hello.protocol_version = 1;
        Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
        m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
        m.hello = &hello;
        s_send_msg(sock, &m);
    }

    size_t nbatches =
        events > 0 ? (size_t)((events + batch - 1) / batch) : (size_t)(rate * seconds / batch) + 1;
    double limit = events > 0 ? 1e9 : seconds + 30; /* --events: until all are acknowledged */
    double *sent_at = calloc(nbatches + 1, sizeof *sent_at);
    double *lat = calloc(nbatches + 1, sizeof *lat);
    as_event_t *evs = calloc((size_t)batch, sizeof *evs);
    Aidstat__V1__Event *pbs = calloc((size_t)batch, sizeof *pbs);
    Aidstat__V1__Event **ptrs = calloc((size_t)batch, sizeof *ptrs);
    if (!sent_at || !lat || !evs || !pbs || !ptrs)
        return 1;
    FILE *acks = acks_out ? fopen(acks_out, "w") : NULL;
    if (acks_out && !acks) {
        fprintf(stderr, "bench_ingest: cannot write %s\n", acks_out);
        return 1;
    }
    double start = s_now(), interval = batch / rate;
    size_t sent = 0, acked = 0, accepted = 0, rejected = 0;
    uint64_t *next = calloc(s_ncounties, sizeof *next);     /* each county's next event */
    size_t *waiting = calloc(s_ncounties, sizeof *waiting); /* its batches not yet answered */
    zmq_pollitem_t *act = calloc(s_ncounties, sizeof *act); /* the connections polled */
    size_t *actk = calloc(s_ncounties, sizeof *actk);       /* act[i] is socks[actk[i]] */
    if (!next || !waiting || !act || !actk)
        return 1;
    while (acked < nbatches && s_now() - start < limit) {
        double due = start + sent * interval;
        bool open = !window || sent - acked < (size_t)window;
        if (sent < nbatches && open && s_now() >= due) {
            size_t k = sent % s_ncounties; /* round-robin over the counties' connections */
            for (int i = 0; i < batch; i++) {
                s_make_event(&evs[i], k, next[k]++, run, year);
                as_event_to_pb(&evs[i], &pbs[i]);
                ptrs[i] = &pbs[i];
            }
            Aidstat__V1__Batch b = AIDSTAT__V1__BATCH__INIT;
            b.seq = sent + 1;
            b.n_events = (size_t)batch;
            b.events = ptrs;
            Aidstat__V1__IngestMessage bm = AIDSTAT__V1__INGEST_MESSAGE__INIT;
            bm.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH;
            bm.batch = &b;
            sent_at[sent + 1] = s_now();
            s_send_msg(socks[k], &bm);
            waiting[k]++;
            sent++;
            continue;
        }
        double wait = sent < nbatches && open ? due - s_now() : 0.05;
        int timeout = wait > 0 ? (int)(wait * 1000) + 1 : 0; /* no busy wait below 1 ms */
        size_t nact = 0;
        for (size_t k = 0; k < s_ncounties; k++)
            if (waiting[k]) {
                act[nact] = items[k];
                actk[nact++] = k;
            }
        if (zmq_poll(nact ? act : NULL, (int)nact, timeout) <= 0)
            continue;
        for (size_t j = 0; j < nact; j++) {
            size_t k = actk[j];
            if (!(act[j].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            while (zmq_msg_recv(&msg, socks[k], ZMQ_DONTWAIT) >= 0) {
                double now = s_now();
                Aidstat__V1__IngestMessage *r = aidstat__v1__ingest_message__unpack(
                    NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
                if (r && r->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT) {
                    uint64_t seq = r->batch_result->seq;
                    if (seq >= 1 && seq <= nbatches && lat[seq] == 0) {
                        lat[seq] = now - sent_at[seq];
                        acked++;
                        if (waiting[k])
                            waiting[k]--;
                        uint64_t maxseq = 0;
                        for (size_t i = 0; i < r->batch_result->n_results; i++) {
                            const Aidstat__V1__EventResult *er = r->batch_result->results[i];
                            if (er->code == AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED) {
                                accepted++;
                                if (er->ledger_seq > maxseq)
                                    maxseq = er->ledger_seq;
                            } else if (er->code == AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED) {
                                if (!rejected)
                                    fprintf(stderr, "bench_ingest: rejected: %s\n",
                                            er->reason ? er->reason : "");
                                rejected++;
                            }
                        }
                        if (acks)
                            fprintf(acks, "%.6f %.6f %llu\n", sent_at[seq], now,
                                    (unsigned long long)maxseq);
                    }
                }
                if (r)
                    aidstat__v1__ingest_message__free_unpacked(r, NULL);
            }
            zmq_msg_close(&msg);
        }
    }
    double elapsed = s_now() - start;
    if (acks)
        fclose(acks);
    size_t k = 0;
    for (size_t i = 1; i <= nbatches; i++)
        if (lat[i] > 0)
            lat[k++] = lat[i];
    qsort(lat, k, sizeof *lat, s_cmp);
    if (events > 0 || window)
        printf("bench_ingest: %zu events in batches of %d over %zu count%s%s, window %d: %zu of "
               "%zu batches acknowledged (%zu events accepted, %zu rejected) in %.1f s = %.0f "
               "events/s\n",
               (size_t)batch * nbatches, batch, s_ncounties, s_ncounties == 1 ? "y" : "ies",
               realistic ? " (realistic)" : "", window, acked, nbatches, accepted, rejected,
               elapsed, (double)accepted / elapsed);
    else
        printf("bench_ingest: offered %.0f events/s in batches of %d over %zu count%s%s for "
               "%.1f s: %zu of %zu batches acknowledged (%zu events accepted, %zu rejected) in "
               "%.1f s\n",
               rate, batch, s_ncounties, s_ncounties == 1 ? "y" : "ies",
               realistic ? " (realistic)" : "", seconds, acked, nbatches, accepted, rejected,
               elapsed);
    if (k)
        printf("bench_ingest: ack latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               lat[k / 2] * 1000, lat[(size_t)(k * 0.99)] * 1000, lat[k - 1] * 1000);
    free(next);
    free(waiting);
    free(act);
    free(actk);
    free(sent_at);
    free(lat);
    free(evs);
    free(pbs);
    free(ptrs);
    for (size_t i = 0; i < s_ncounties; i++)
        zmq_close(socks[i]);
    free(socks);
    free(items);
    zmq_ctx_term(ctx);
    return acked == nbatches ? 0 : 1;

usage:
    fprintf(stderr,
            "usage: %s [--endpoint EP] [--county C | --counties all|N|C1,C2,...] [--realistic] "
            "[--rate EV/S] [--seconds S | --events N] [--batch N] [--window W] [--run TAG] "
            "[--acks-out FILE] [--year Y]\n",
            argv[0]);
    return 2;
}
