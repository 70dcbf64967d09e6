/* test_event_json: one feed item as JSON — every field under DESIGN.md's name, money in fen,
 * hours with one decimal, enums by English name, ids as hex, kinds, flags, and the packed form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "event_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static uint8_t s_id[16] = {0x59, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff};
static uint8_t s_target[16] = {0xab};

static void s_fill(Aidstat__V1__Event *ev, Aidstat__V1__FeedHeader *hdr)
{
    aidstat__v1__event__init(ev);
    aidstat__v1__feed_header__init(hdr);
    ev->id.data = s_id;
    ev->id.len = sizeof s_id;
    ev->event_id = "NDU-2026-0041";
    ev->county_code = 360730;
    ev->org_credit_code = "51360000MJD123456X";
    ev->org_name = "宁都县爱心基金会";
    ev->area = AIDSTAT__V1__AREA__AREA_CAPACITY_CARE;
    ev->project = AIDSTAT__V1__PROJECT__PROJECT_NONE;
    ev->activity_date = 20260315;
    ev->village_code = "360730104201";
    ev->deep_poverty_village = 1;
    ev->beneficiaries = 120;
    ev->registered_poor = 45;
    ev->beneficiary_group = AIDSTAT__V1__BENEFICIARY_GROUP__GROUP_LEFT_BEHIND_CHILDREN;
    ev->funds_fen = 1250001;
    ev->goods_fen = 0;
    ev->funding_source = AIDSTAT__V1__FUNDING_SOURCE__FUNDING_GOVERNMENT_PURCHASE;
    ev->volunteers = 12;
    ev->volunteer_hours_tenths = 365;
    ev->trainees = 30;
    ev->income_increase_fen = 99;
    ev->note = "备注 \"quoted\"";
    ev->flags = 2 | 8;
    ev->source_file = "2026-03.csv";
    ev->source_row = 41;
    hdr->seq = 41;
    hdr->kind = AIDSTAT__V1__FEED_KIND__FEED_EVENT;
    hdr->commit_time_ms = 1795925246036ULL;
    hdr->county_code = 360730;
    hdr->flags = 2 | 8;
}

static char *s_dump(json_t *j)
{
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(j);
    return s;
}

static void test_every_field(void **state)
{
    Aidstat__V1__Event ev;
    Aidstat__V1__FeedHeader hdr;
    s_fill(&ev, &hdr);
    char *s = s_dump(as_event_json(&hdr, &ev));
    assert_string_equal(
        s, "{\"seq\":41,\"kind\":\"event\",\"commit_ms\":1795925246036,\"county\":360730,"
           "\"flags\":10,\"flag_names\":[\"unregistered\",\"outlier\"],"
           "\"id\":\"591a0a0102030405060708090a0b0cff\",\"event_id\":\"NDU-2026-0041\","
           "\"county_code\":360730,\"org_credit_code\":\"51360000MJD123456X\","
           "\"org_name\":\"宁都县爱心基金会\",\"area\":\"capacity_care\",\"project\":null,"
           "\"activity_date\":\"2026-03-15\",\"village_code\":\"360730104201\","
           "\"deep_poverty_village\":true,\"beneficiaries\":120,\"registered_poor\":45,"
           "\"beneficiary_group\":\"left_behind_children\",\"funds_fen\":1250001,"
           "\"goods_fen\":0,\"funding_source\":\"government_purchase\","
           "\"online_fundraising\":false,\"volunteers\":12,\"volunteer_hours\":36.5,"
           "\"social_workers\":0,\"persons_lifted\":0,\"jobs\":0,\"trainees\":30,"
           "\"income_increase_fen\":99,\"note\":\"备注 \\\"quoted\\\"\",\"correction_of\":null,"
           "\"retract\":false,\"source_file\":\"2026-03.csv\",\"source_row\":41}");
    free(s);
}

static void test_corrections_and_enums(void **state)
{
    Aidstat__V1__Event ev;
    Aidstat__V1__FeedHeader hdr;
    s_fill(&ev, &hdr);
    ev.correction_of.data = s_target;
    ev.correction_of.len = sizeof s_target;
    ev.retract = 1;
    ev.area = 99; /* a value from a newer schema: shown as its number */
    ev.volunteer_hours_tenths = 10;
    hdr.kind = AIDSTAT__V1__FEED_KIND__FEED_RETRACTION;
    json_t *j = as_event_json(&hdr, &ev);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "retraction");
    assert_string_equal(json_string_value(json_object_get(j, "correction_of")),
                        "ab000000000000000000000000000000");
    assert_int_equal(json_integer_value(json_object_get(j, "area")), 99);
    char *s = s_dump(j);
    assert_non_null(strstr(s, "\"volunteer_hours\":1.0,"));
    free(s);

    /* without a header: kind from the event, county and flags from the event */
    ev.retract = 0;
    j = as_event_json(NULL, &ev);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "correction");
    assert_int_equal(json_integer_value(json_object_get(j, "county")), 360730);
    assert_int_equal(json_integer_value(json_object_get(j, "flags")), 10);
    json_decref(j);
}

static void test_packed(void **state)
{
    Aidstat__V1__Event ev;
    Aidstat__V1__FeedHeader hdr;
    s_fill(&ev, &hdr);
    size_t n = aidstat__v1__event__get_packed_size(&ev);
    uint8_t *buf = malloc(n);
    aidstat__v1__event__pack(&ev, buf);
    int err = 0;
    char *a = s_dump(as_event_json_packed(&hdr, buf, n, &err));
    char *b = s_dump(as_event_json(&hdr, &ev));
    assert_string_equal(a, b);
    free(a);
    free(b);
    uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_null(as_event_json_packed(&hdr, junk, sizeof junk, &err));
    assert_int_equal(err, AS_E_PARSE);
    free(buf);
    assert_string_equal(as_feed_kind_name(AIDSTAT__V1__FEED_KIND__FEED_HEARTBEAT), "heartbeat");
    assert_string_equal(as_feed_kind_name(42), "unspecified");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_corrections_and_enums),
        cmocka_unit_test(test_packed),
    };
    return cmocka_run_group_tests_name("event_json", tests, NULL, NULL);
}
