/* test_wire: as_event_t ↔ protobuf round trips and the checks on decoded fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "wire.h"

static void s_fill(as_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    for (int i = 0; i < AS_ID_LEN; i++)
        ev->id[i] = (uint8_t)(i * 7 + 1);
    strcpy(ev->event_id, "360730-2026-1");
    ev->county = 360730;
    strcpy(ev->org_code, "53100000500019795A");
    strcpy(ev->org_name, "中国社会福利基金会");
    ev->area = AS_AREA_EDUCATION;
    ev->project = AS_PROJECT_PAIRING;
    ev->group = AS_GROUP_LEFT_BEHIND_CHILDREN;
    ev->funding = AS_FUNDING_CHARITY;
    ev->date = 20260315;
    strcpy(ev->village, "360730100201");
    ev->deep_village = true;
    ev->online_fundraising = true;
    ev->has_correction = true;
    memset(ev->correction_of, 0xab, AS_ID_LEN);
    ev->beneficiaries = 120;
    ev->registered_poor = 40;
    ev->funds_fen = 12345678;
    ev->goods_fen = 50;
    ev->volunteers = 12;
    ev->volunteer_tenths = 365;
    ev->social_workers = 3;
    ev->persons_lifted = 2;
    ev->jobs = 5;
    ev->trainees = 60;
    ev->income_fen = 999900;
    ev->flags = AS_FLAG_UNREGISTERED | AS_FLAG_OUTLIER;
    strcpy(ev->note, "春季助学 \"引号\", 逗号");
    strcpy(ev->source_file, "三月.csv");
    ev->source_row = 17;
}

static void test_round_trip(void **state)
{
    (void)state;
    as_event_t ev, back;
    s_fill(&ev);
    size_t n = as_event_packed_size(&ev);
    uint8_t *buf = malloc(n);
    assert_int_equal(as_event_pack(&ev, buf), n);
    assert_int_equal(as_event_unpack(buf, n, &back), AS_OK);
    assert_memory_equal(&ev, &back, sizeof ev);
    free(buf);
}

/* Every text full, every number at its widest: within AS_EVENT_PACKED_MAX. */
static void test_packed_max(void **state)
{
    (void)state;
    as_event_t ev;
    s_fill(&ev);
    memset(ev.event_id, 'E', sizeof ev.event_id - 1);
    ev.event_id[sizeof ev.event_id - 1] = 0;
    memset(ev.org_name, 'N', sizeof ev.org_name - 1);
    ev.org_name[sizeof ev.org_name - 1] = 0;
    memset(ev.note, 'x', sizeof ev.note - 1);
    ev.note[sizeof ev.note - 1] = 0;
    memset(ev.source_file, 'f', sizeof ev.source_file - 1);
    ev.source_file[sizeof ev.source_file - 1] = 0;
    ev.county = ev.date = ev.flags = ev.source_row = UINT32_MAX;
    ev.beneficiaries = ev.registered_poor = ev.volunteers = ev.volunteer_tenths = UINT64_MAX;
    ev.social_workers = ev.persons_lifted = ev.jobs = ev.trainees = UINT64_MAX;
    ev.funds_fen = ev.goods_fen = ev.income_fen = -1; /* negative int64: ten bytes */
    assert_true(as_event_packed_size(&ev) <= AS_EVENT_PACKED_MAX);
}

/* The peek reads the same county, date, retract and flags as a full decode, and refuses what
 * the full decode refuses for being cut short. */
static void test_peek(void **state)
{
    (void)state;
    as_event_t ev;
    s_fill(&ev);
    ev.retract = true;
    uint8_t buf[AS_EVENT_PACKED_MAX];
    size_t n = as_event_pack(&ev, buf);
    as_event_peek_t pk;
    assert_int_equal(as_event_peek(buf, n, &pk), 0);
    assert_int_equal(pk.county, 360730);
    assert_int_equal(pk.date, 20260315);
    assert_true(pk.retract);
    assert_int_equal(pk.flags, AS_FLAG_UNREGISTERED | AS_FLAG_OUTLIER);
    for (size_t cut = 1; cut < n; cut++) /* every truncation inside a field is refused */
        if (as_event_peek(buf, cut, &pk) == 0) {
            as_event_t back;
            assert_int_equal(as_event_unpack(buf, cut, &back), 0); /* a field boundary */
        }
    memset(&ev, 0, sizeof ev); /* all defaults: nothing packed but the id */
    ev.id[0] = 1;
    n = as_event_pack(&ev, buf);
    assert_int_equal(as_event_peek(buf, n, &pk), 0);
    assert_int_equal(pk.county, 0);
    assert_int_equal(pk.flags, 0);
    assert_false(pk.retract);
    const uint8_t bad[] = {0x0f}; /* wire type 7 */
    assert_int_equal(as_event_peek(bad, sizeof bad, &pk), AS_E_PARSE);
}

static void test_no_correction(void **state)
{
    (void)state;
    as_event_t ev, back;
    s_fill(&ev);
    ev.has_correction = false;
    memset(ev.correction_of, 0, AS_ID_LEN);
    uint8_t buf[4096];
    size_t n = as_event_pack(&ev, buf);
    assert_int_equal(as_event_unpack(buf, n, &back), AS_OK);
    assert_false(back.has_correction);
    assert_memory_equal(&ev, &back, sizeof ev);
}

static void test_rejects_bad_fields(void **state)
{
    (void)state;
    as_event_t ev, back;
    s_fill(&ev);
    Aidstat__V1__Event pb;
    as_event_to_pb(&ev, &pb);
    const char *field = NULL;
    pb.id.len = 15;
    assert_int_equal(as_event_from_pb(&pb, &back, &field), AS_E_INVALID);
    assert_string_equal(field, "id");
    as_event_to_pb(&ev, &pb);
    char longname[AS_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    pb.org_name = longname;
    assert_int_equal(as_event_from_pb(&pb, &back, &field), AS_E_INVALID);
    assert_string_equal(field, "org_name");
    as_event_to_pb(&ev, &pb);
    pb.area = 99;
    assert_int_equal(as_event_from_pb(&pb, &back, &field), AS_E_INVALID);
    as_event_to_pb(&ev, &pb);
    pb.correction_of.len = 3;
    assert_int_equal(as_event_from_pb(&pb, &back, &field), AS_E_INVALID);
    assert_string_equal(field, "correction_of");
}

static void test_garbage(void **state)
{
    (void)state;
    as_event_t back;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    assert_int_equal(as_event_unpack(junk, sizeof junk, &back), AS_E_PARSE);
}

/* protobuf-c reads a bool of the wrong wire type, or one whose varint runs past 64 bits, as true;
 * the peek skipped or dropped it as false. Both now refuse such bytes (found by fuzz_wire). */
static void test_peek_and_unpack_refuse_odd_bools(void **state)
{
    (void)state;
    as_event_t ev;
    s_fill(&ev);
    ev.has_correction = false;
    uint8_t buf[AS_EVENT_PACKED_MAX + 16];
    size_t n = as_event_pack(&ev, buf);
    const uint8_t length_delimited[] = {0xda, 0x01, 0x01, 0x00};    /* field 27, wire type 2 */
    const uint8_t fixed32[] = {0xdd, 0x01, 0x00, 0x00, 0x00, 0x01}; /* field 27, wire type 5 */
    const uint8_t overlong[] = {0xd8, 0x01, 0x80, 0x80, 0x80, 0x80,
                                0x80, 0x80, 0x80, 0x80, 0x80, 0x02}; /* bit 64 set */
    const struct {
        const uint8_t *p;
        size_t len;
    } odd[] = {{length_delimited, sizeof length_delimited},
               {fixed32, sizeof fixed32},
               {overlong, sizeof overlong}};
    as_event_peek_t pk;
    as_event_t back;
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        memcpy(buf + n, odd[i].p, odd[i].len);
        assert_int_equal(as_event_peek(buf, n + odd[i].len, &pk), AS_E_PARSE);
        assert_int_equal(as_event_unpack(buf, n + odd[i].len, &back), AS_E_PARSE);
    }
    const uint8_t county_as_string[] = {0x1a, 0x01, 0x35}; /* field 3, wire type 2 */
    memcpy(buf + n, county_as_string, sizeof county_as_string);
    assert_int_equal(as_event_peek(buf, n + sizeof county_as_string, &pk), AS_E_PARSE);
    const uint8_t bit63[] = {0xd8, 0x01, 0x80, 0x80, 0x80, 0x80,
                             0x80, 0x80, 0x80, 0x80, 0x80, 0x01}; /* bit 63: still 64 bits */
    memcpy(buf + n, bit63, sizeof bit63);
    assert_int_equal(as_event_peek(buf, n + sizeof bit63, &pk), 0);
    assert_int_equal(as_event_unpack(buf, n + sizeof bit63, &back), 0);
    assert_true(pk.retract && back.retract);
    const uint8_t unknown[] = {0xfa, 0x01, 0x02, 'h', 'i'}; /* field 31, unknown: skipped */
    memcpy(buf + n, unknown, sizeof unknown);
    assert_int_equal(as_event_peek(buf, n + sizeof unknown, &pk), 0);
    assert_int_equal(as_event_unpack(buf, n + sizeof unknown, &back), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_packed_max),
        cmocka_unit_test(test_no_correction),
        cmocka_unit_test(test_rejects_bad_fields),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_peek_and_unpack_refuse_odd_bools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
