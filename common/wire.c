/* wire: the activity event between its C form (as_event_t) and protobuf (aidstat.v1.Event). */
#include "wire.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

void as_event_to_pb(const as_event_t *ev, Aidstat__V1__Event *pb)
{
    aidstat__v1__event__init(pb);
    pb->id.data = (uint8_t *)ev->id;
    pb->id.len = AS_ID_LEN;
    pb->event_id = (char *)ev->event_id;
    pb->county_code = ev->county;
    pb->org_credit_code = (char *)ev->org_code;
    pb->org_name = (char *)ev->org_name;
    pb->area = (Aidstat__V1__Area)ev->area;
    pb->project = (Aidstat__V1__Project)ev->project;
    pb->activity_date = ev->date;
    pb->village_code = (char *)ev->village;
    pb->deep_poverty_village = ev->deep_village;
    pb->beneficiaries = ev->beneficiaries;
    pb->registered_poor = ev->registered_poor;
    pb->beneficiary_group = (Aidstat__V1__BeneficiaryGroup)ev->group;
    pb->funds_fen = ev->funds_fen;
    pb->goods_fen = ev->goods_fen;
    pb->funding_source = (Aidstat__V1__FundingSource)ev->funding;
    pb->online_fundraising = ev->online_fundraising;
    pb->volunteers = ev->volunteers;
    pb->volunteer_hours_tenths = ev->volunteer_tenths;
    pb->social_workers = ev->social_workers;
    pb->persons_lifted = ev->persons_lifted;
    pb->jobs = ev->jobs;
    pb->trainees = ev->trainees;
    pb->income_increase_fen = ev->income_fen;
    pb->note = (char *)ev->note;
    if (ev->has_correction) {
        pb->correction_of.data = (uint8_t *)ev->correction_of;
        pb->correction_of.len = AS_ID_LEN;
    }
    pb->retract = ev->retract;
    pb->flags = ev->flags;
    pb->source_file = (char *)ev->source_file;
    pb->source_row = ev->source_row;
}

/* Copies a protobuf string into a fixed field; false when it does not fit. */
static bool s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

int as_event_from_pb(const Aidstat__V1__Event *pb, as_event_t *ev, const char **field)
{
    const char *bad = NULL;
    memset(ev, 0, sizeof *ev);
    if (pb->id.len != AS_ID_LEN)
        bad = "id";
    else
        memcpy(ev->id, pb->id.data, AS_ID_LEN);
    if (!bad && !s_copy(ev->event_id, sizeof ev->event_id, pb->event_id))
        bad = "event_id";
    if (!bad && !s_copy(ev->org_code, sizeof ev->org_code, pb->org_credit_code))
        bad = "org_credit_code";
    if (!bad && !s_copy(ev->org_name, sizeof ev->org_name, pb->org_name))
        bad = "org_name";
    if (!bad && !s_copy(ev->village, sizeof ev->village, pb->village_code))
        bad = "village_code";
    if (!bad && !s_copy(ev->note, sizeof ev->note, pb->note))
        bad = "note";
    if (!bad && !s_copy(ev->source_file, sizeof ev->source_file, pb->source_file))
        bad = "source_file";
    if (!bad && pb->correction_of.len != 0 && pb->correction_of.len != AS_ID_LEN)
        bad = "correction_of";
    if (!bad && ((unsigned)pb->area >= AS_AREA_COUNT || (unsigned)pb->project >= AS_PROJECT_COUNT ||
                 (unsigned)pb->beneficiary_group >= AS_GROUP_COUNT ||
                 (unsigned)pb->funding_source >= AS_FUNDING_COUNT))
        bad = "enum";
    if (bad) {
        if (field)
            *field = bad;
        return AS_E_INVALID;
    }
    ev->county = pb->county_code;
    ev->area = (uint8_t)pb->area;
    ev->project = (uint8_t)pb->project;
    ev->group = (uint8_t)pb->beneficiary_group;
    ev->funding = (uint8_t)pb->funding_source;
    ev->date = pb->activity_date;
    ev->deep_village = pb->deep_poverty_village;
    ev->online_fundraising = pb->online_fundraising;
    ev->retract = pb->retract;
    if (pb->correction_of.len == AS_ID_LEN) {
        ev->has_correction = true;
        memcpy(ev->correction_of, pb->correction_of.data, AS_ID_LEN);
    }
    ev->beneficiaries = pb->beneficiaries;
    ev->registered_poor = pb->registered_poor;
    ev->funds_fen = pb->funds_fen;
    ev->goods_fen = pb->goods_fen;
    ev->volunteers = pb->volunteers;
    ev->volunteer_tenths = pb->volunteer_hours_tenths;
    ev->social_workers = pb->social_workers;
    ev->persons_lifted = pb->persons_lifted;
    ev->jobs = pb->jobs;
    ev->trainees = pb->trainees;
    ev->income_fen = pb->income_increase_fen;
    ev->flags = pb->flags;
    ev->source_row = pb->source_row;
    return AS_OK;
}

size_t as_event_packed_size(const as_event_t *ev)
{
    Aidstat__V1__Event pb;
    as_event_to_pb(ev, &pb);
    return aidstat__v1__event__get_packed_size(&pb);
}

size_t as_event_pack(const as_event_t *ev, uint8_t *out)
{
    Aidstat__V1__Event pb;
    as_event_to_pb(ev, &pb);
    return aidstat__v1__event__pack(&pb, out);
}

int as_event_unpack(const uint8_t *buf, size_t len, as_event_t *ev)
{
    /* protobuf-c checks the wire type of every field but a bool, and reads a bool as true when
     * any bit of its varint is set, even beyond 64 bits: it took a length-delimited field 27, or a
     * varint 0x80 x 9 then 0x02, as retract = true where the peek read false. The peek's scan
     * refuses both first, so the two readings agree. */
    as_event_peek_t pk;
    if (as_event_peek(buf, len, &pk) != 0)
        return AS_E_PARSE;
    Aidstat__V1__Event *pb = aidstat__v1__event__unpack(NULL, len, buf);
    if (!pb)
        return AS_E_PARSE;
    int rc = as_event_from_pb(pb, ev, NULL);
    aidstat__v1__event__free_unpacked(pb, NULL);
    return rc;
}

/* A base-128 varint at *p (below end); advances *p. */
static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (*p >= end)
            return AS_E_PARSE;
        uint8_t b = *(*p)++;
        if (sh == 63 && b > 1)
            return AS_E_PARSE; /* beyond 64 bits (protobuf-c would read such a bool as true) */
        x |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return AS_E_PARSE;
}

/* The wire type field of aidstat.v1.Event is packed with: 2 for bytes and strings, 0 for every
 * number, enum and bool; -1 for a field unknown to this version (any type is skipped). */
static int s_wire_type(uint64_t field)
{
    switch (field) {
    case 1:  /* id */
    case 2:  /* event_id */
    case 4:  /* org_credit_code */
    case 5:  /* org_name */
    case 9:  /* village_code */
    case 25: /* note */
    case 26: /* correction_of */
    case 29: /* source_file */
        return 2;
    }
    return field >= 1 && field <= 30 ? 0 : -1;
}

int as_event_peek(const uint8_t *buf, size_t len, as_event_peek_t *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t tag, v;
        if (s_varint(&p, end, &tag) != 0)
            return AS_E_PARSE;
        int want = s_wire_type(tag >> 3);
        if (want >= 0 && (uint64_t)want != (tag & 7))
            return AS_E_PARSE; /* a known field of the wrong type: not an Event */
        switch (tag & 7) {
        case 0: /* varint */
            if (s_varint(&p, end, &v) != 0)
                return AS_E_PARSE;
            switch (tag >> 3) {
            case 3:
                out->county = (uint32_t)v;
                break;
            case 8:
                out->date = (uint32_t)v;
                break;
            case 27:
                out->retract = v != 0;
                break;
            case 28:
                out->flags = (uint32_t)v;
                break;
            }
            break;
        case 1: /* 64-bit */
            if (end - p < 8)
                return AS_E_PARSE;
            p += 8;
            break;
        case 2: /* length-delimited */
            if (s_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                return AS_E_PARSE;
            p += v;
            break;
        case 5: /* 32-bit */
            if (end - p < 4)
                return AS_E_PARSE;
            p += 4;
            break;
        default:
            return AS_E_PARSE;
        }
    }
    return 0;
}
