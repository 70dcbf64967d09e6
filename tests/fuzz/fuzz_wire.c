/* fuzz_wire: an event as the aggregator reads it back from its event log, the feed or a peer —
 * protobuf bytes decoded by as_event_unpack and by as_event_peek, then re-checked with
 * as_event_validate, and turned into the feed's JSON by as_event_json_packed (aidstat tail).
 * Whenever the full decode succeeds the peek must succeed too and read the same county, date,
 * retract and flags; a decoded event must pack within AS_EVENT_PACKED_MAX and decode again to the
 * same. */
#include "fuzz.h"
#include "wire.h"
#include "err.h"
#include "event_json.h"

#include <string.h>

static void s_check_peek(const uint8_t *buf, size_t len, const as_event_t *ev)
{
    as_event_peek_t pk;
    int rc = as_event_peek(buf, len, &pk);
    if (rc == 0 && (pk.county != ev->county || pk.date != ev->date || pk.retract != ev->retract ||
                    pk.flags != ev->flags))
        fprintf(stderr,
                "peek: county %u date %u retract %d flags %u; unpack: county %u date %u "
                "retract %d flags %u\n",
                pk.county, pk.date, pk.retract, pk.flags, ev->county, ev->date, ev->retract,
                ev->flags);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(pk.county == ev->county && pk.date == ev->date && pk.retract == ev->retract &&
               pk.flags == ev->flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static as_event_t ev, back; /* 2.8 KB each */
    static uint8_t buf[AS_EVENT_PACKED_MAX];
    as_event_peek_t pk;
    int prc = as_event_peek(data, size, &pk);
    FUZZ_CHECK(prc == 0 || prc == AS_E_PARSE);
    Aidstat__V1__FeedHeader hdr = AIDSTAT__V1__FEED_HEADER__INIT;
    hdr.seq = size;
    hdr.kind = (Aidstat__V1__FeedKind)(size % 7); /* 6: a kind this build does not know */
    hdr.county_code = pk.county;
    hdr.flags = pk.flags;
    int jerr = 0;
    json_t *j = as_event_json_packed(size % 2 ? &hdr : NULL, data, size, &jerr);
    FUZZ_CHECK(j || jerr == AS_E_PARSE || jerr == AS_E_NOMEM);
    if (j) {
        free(json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }

    int rc = as_event_unpack(data, size, &ev);
    FUZZ_CHECK(rc == 0 || rc == AS_E_PARSE || rc == AS_E_INVALID);
    if (rc != 0)
        return 0;
    s_check_peek(data, size, &ev);

    as_row_errors_t errs;
    as_validate_ctx_t ctx = {.county = 0, .today = FUZZ_TODAY};
    rc = as_event_validate(&ev, &ctx, &errs);
    FUZZ_CHECK((rc == 0) == (errs.n == 0));
    ctx.county = ev.county;
    ctx.in_registry = fuzz_in_registry;
    rc = as_event_validate(&ev, &ctx, &errs);
    FUZZ_CHECK((rc == 0) == (errs.n == 0));
    for (size_t i = 0; i < errs.n && i < AS_MAX_ROW_ERRORS; i++)
        FUZZ_CHECK(memchr(errs.e[i].value, 0, sizeof errs.e[i].value) &&
                   memchr(errs.e[i].reason_en, 0, sizeof errs.e[i].reason_en));

    size_t n = as_event_packed_size(&ev);
    FUZZ_CHECK(n <= AS_EVENT_PACKED_MAX);
    FUZZ_CHECK(as_event_pack(&ev, buf) == n);
    FUZZ_CHECK(as_event_unpack(buf, n, &back) == 0);
    s_check_peek(buf, n, &back);
    FUZZ_CHECK(memcmp(back.id, ev.id, AS_ID_LEN) == 0 && back.county == ev.county &&
               back.has_correction == ev.has_correction &&
               strcmp(back.event_id, ev.event_id) == 0 && strcmp(back.note, ev.note) == 0 &&
               strcmp(back.source_file, ev.source_file) == 0 && back.funds_fen == ev.funds_fen &&
               back.volunteer_tenths == ev.volunteer_tenths && back.source_row == ev.source_row);
    return 0;
}
