/* fuzz_ingest: one ingest message as the aggregator receives it from a collector — protobuf
 * IngestMessage bytes unpacked as aggregator/ingest.c's s_handle does (through an allocator of
 * ours, so replay's failing malloc reaches protobuf-c's error paths; ingest's own is an arena),
 * then each event of a Batch converted with as_event_from_pb and re-checked with
 * as_event_validate against its county, as s_on_batch does. */
#include "fuzz.h"
#include "wire.h"
#include "err.h"
#include "aidstat/v1/ingest.pb-c.h"

#include <string.h>

static void *s_alloc(void *ad, size_t size)
{
    (void)ad;
    return malloc(size);
}

static void s_free(void *ad, void *p)
{
    (void)ad;
    free(p);
}

/* What s_on_batch does with each event, minus the ledger. */
static void s_batch(const Aidstat__V1__Batch *bm)
{
    static as_event_t ev; /* 2.8 KB */
    for (size_t i = 0; i < bm->n_events; i++) {
        const Aidstat__V1__Event *pe = bm->events[i];
        FUZZ_CHECK(pe != NULL);
        const char *field = NULL;
        if (pe->id.len != AS_ID_LEN || as_event_from_pb(pe, &ev, &field) != 0) {
            FUZZ_CHECK(pe->id.len != AS_ID_LEN || field != NULL);
            continue;
        }
        as_validate_ctx_t ctx = {.county = ev.county, .today = FUZZ_TODAY};
        as_row_errors_t errs;
        int rc = as_event_validate(&ev, &ctx, &errs);
        FUZZ_CHECK((rc == 0) == (errs.n == 0));
        for (size_t k = 0; k < errs.n && k < AS_MAX_ROW_ERRORS; k++)
            FUZZ_CHECK(memchr(errs.e[k].value, 0, sizeof errs.e[k].value) &&
                       memchr(errs.e[k].column, 0, sizeof errs.e[k].column));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ProtobufCAllocator alloc = {s_alloc, s_free, NULL};
    Aidstat__V1__IngestMessage *m = aidstat__v1__ingest_message__unpack(&alloc, size, data);
    if (!m)
        return 0;
    switch (m->body_case) {
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO:
        FUZZ_CHECK(m->hello != NULL);
        FUZZ_CHECK(m->hello->collector_id && m->hello->software_version);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH:
        FUZZ_CHECK(m->batch != NULL);
        s_batch(m->batch);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT:
        FUZZ_CHECK(m->heartbeat != NULL);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT:
        FUZZ_CHECK(m->nil_report != NULL);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR:
        FUZZ_CHECK(m->error != NULL);
        break;
    default:
        break;
    }
    aidstat__v1__ingest_message__free_unpacked(m, &alloc);
    return 0;
}
