/* bench_ingest: a load generator speaking the collector's ingest protocol to a real aggregator,
 * at a fixed offered rate, measuring the acknowledgement latency of every batch (p50/p99).
 *
 *   bench_ingest --endpoint tcp://127.0.0.1:7601 --county 360730 --rate 10000 --seconds 10
 *
 * Each batch is timed from its send to its BatchResult, i.e. including the durable commit. */
#include "event.h"
#include "wire.h"
#include "aidstat/v1/ingest.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static void s_make_event(as_event_t *ev, uint32_t county, uint64_t n, uint32_t run)
{
    memset(ev, 0, sizeof *ev);
    ev->county = county;
    snprintf(ev->event_id, sizeof ev->event_id, "bench-%u-%llu", run, (unsigned long long)n);
    memcpy(ev->org_code, "53100000500019795A", 19);
    snprintf(ev->org_name, sizeof ev->org_name, "中国社会福利基金会");
    ev->area = (uint8_t)(1 + n % 7);
    ev->group = (uint8_t)(1 + n % 8);
    ev->funding = (uint8_t)(1 + n % 4);
    ev->date = 20260101 + (uint32_t)(n % 28);
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

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:7601";
    uint32_t county = 360730;
    double rate = 10000, seconds = 10;
    int batch = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--endpoint"))
            endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--county"))
            county = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--endpoint EP] [--county C] [--rate EV/S] [--seconds S] "
                            "[--batch N]\n", argv[0]);
            return 2;
        }
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "bench_ingest: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        return 1;
    }
    char cid[64];
    snprintf(cid, sizeof cid, "collector-%u", county);
    Aidstat__V1__Hello hello = AIDSTAT__V1__HELLO__INIT;
    hello.collector_id = cid;
    hello.county_code = county;
    hello.software_version = AIDSTAT_VERSION;
    hello.protocol_version = 1;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &hello;
    s_send_msg(sock, &m);

    uint32_t run = (uint32_t)time(NULL);
    size_t nbatches = (size_t)(rate * seconds / batch) + 1;
    double *sent_at = calloc(nbatches + 1, sizeof *sent_at);
    double *lat = calloc(nbatches + 1, sizeof *lat);
    as_event_t *evs = calloc((size_t)batch, sizeof *evs);
    Aidstat__V1__Event *pbs = calloc((size_t)batch, sizeof *pbs);
    Aidstat__V1__Event **ptrs = calloc((size_t)batch, sizeof *ptrs);
    if (!sent_at || !lat || !evs || !pbs || !ptrs)
        return 1;
    double start = s_now(), interval = batch / rate;
    size_t sent = 0, acked = 0, accepted = 0;
    uint64_t n = 0;
    while (acked < nbatches && s_now() - start < seconds + 30) {
        double due = start + sent * interval;
        if (sent < nbatches && s_now() >= due) {
            for (int i = 0; i < batch; i++) {
                s_make_event(&evs[i], county, n++, run);
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
            s_send_msg(sock, &bm);
            sent++;
            continue;
        }
        double wait = sent < nbatches ? due - s_now() : 0.05;
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        int timeout = wait > 0 ? (int)(wait * 1000) : 0;
        if (zmq_poll(&it, 1, timeout) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0) {
            Aidstat__V1__IngestMessage *r = aidstat__v1__ingest_message__unpack(
                NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            if (r && r->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT) {
                uint64_t seq = r->batch_result->seq;
                if (seq >= 1 && seq <= nbatches && lat[seq] == 0) {
                    lat[seq] = s_now() - sent_at[seq];
                    acked++;
                    for (size_t i = 0; i < r->batch_result->n_results; i++)
                        accepted += r->batch_result->results[i]->code ==
                                    AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED;
                }
            }
            if (r)
                aidstat__v1__ingest_message__free_unpacked(r, NULL);
        }
        zmq_msg_close(&msg);
    }
    double elapsed = s_now() - start;
    size_t k = 0;
    for (size_t i = 1; i <= nbatches; i++)
        if (lat[i] > 0)
            lat[k++] = lat[i];
    qsort(lat, k, sizeof *lat, s_cmp);
    printf("bench_ingest: offered %.0f events/s in batches of %d for %.1f s: %zu of %zu batches "
           "acknowledged (%zu events accepted) in %.1f s\n",
           rate, batch, seconds, acked, nbatches, accepted, elapsed);
    if (k)
        printf("bench_ingest: ack latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               lat[k / 2] * 1000, lat[(size_t)(k * 0.99)] * 1000, lat[k - 1] * 1000);
    free(sent_at);
    free(lat);
    free(evs);
    free(pbs);
    free(ptrs);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return acked == nbatches ? 0 : 1;
}
