/* event_json: a feed or replay item as JSON with DESIGN.md's names (see event_json.h). */
#include "event_json.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* The proto value name without its type prefix, lower case: AREA_DEEP_VILLAGE → deep_village.
 * Every enum of event.proto and feed.proto prefixes its values with one word and '_'. */
static void s_enum_key(const ProtobufCEnumValue *v, char *out, size_t outlen)
{
    const char *s = strchr(v->name, '_');
    s = s ? s + 1 : v->name;
    size_t i = 0;
    for (; s[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = 0;
}

static json_t *s_enum(const ProtobufCEnumDescriptor *d, int value)
{
    if (value == 0)
        return json_null();
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v)
        return json_integer(value);
    char key[64];
    s_enum_key(v, key, sizeof key);
    return json_string(key);
}

const char *as_feed_kind_name(int kind)
{
    switch (kind) {
    case AIDSTAT__V1__FEED_KIND__FEED_EVENT:
        return "event";
    case AIDSTAT__V1__FEED_KIND__FEED_CORRECTION:
        return "correction";
    case AIDSTAT__V1__FEED_KIND__FEED_RETRACTION:
        return "retraction";
    case AIDSTAT__V1__FEED_KIND__FEED_REPORT:
        return "report";
    case AIDSTAT__V1__FEED_KIND__FEED_HEARTBEAT:
        return "heartbeat";
    default:
        return "unspecified";
    }
}

static json_t *s_hex(ProtobufCBinaryData b)
{
    static const char digits[] = "0123456789abcdef";
    char buf[2 * 64 + 1];
    size_t n = b.len > 64 ? 64 : b.len;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = digits[b.data[i] >> 4];
        buf[2 * i + 1] = digits[b.data[i] & 15];
    }
    buf[2 * n] = 0;
    return json_string(buf);
}

static json_t *s_flag_names(uint32_t flags)
{
    json_t *a = json_array();
    for (uint32_t bit = 1; a && bit && bit <= flags; bit <<= 1) {
        if (!(flags & bit))
            continue;
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&aidstat__v1__flag__descriptor, (int)bit);
        char key[64];
        if (v)
            s_enum_key(v, key, sizeof key);
        else
            snprintf(key, sizeof key, "bit_%u", bit);
        json_array_append_new(a, json_string(key));
    }
    return a;
}

static json_t *s_date(uint32_t d)
{
    if (d == 0)
        return json_null();
    char buf[16];
    snprintf(buf, sizeof buf, "%04u-%02u-%02u", d / 10000, d / 100 % 100, d % 100);
    return json_string(buf);
}

static const char *s_kind_of(const Aidstat__V1__Event *ev)
{
    if (ev->correction_of.len == 0)
        return "event";
    return ev->retract ? "retraction" : "correction";
}

json_t *as_event_json(const Aidstat__V1__FeedHeader *hdr, const Aidstat__V1__Event *ev)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    uint32_t flags = hdr ? hdr->flags : ev->flags;
    struct {
        const char *name;
        json_t *v;
    } f[] = {
        {"seq", json_integer(hdr ? (json_int_t)hdr->seq : 0)},
        {"kind", json_string(hdr ? as_feed_kind_name(hdr->kind) : s_kind_of(ev))},
        {"commit_ms", json_integer(hdr ? (json_int_t)hdr->commit_time_ms : 0)},
        {"county", json_integer(hdr ? hdr->county_code : ev->county_code)},
        {"flags", json_integer(flags)},
        {"flag_names", s_flag_names(flags)},
        {"id", s_hex(ev->id)},
        {"event_id", json_string(ev->event_id ? ev->event_id : "")},
        {"county_code", json_integer(ev->county_code)},
        {"org_credit_code", json_string(ev->org_credit_code ? ev->org_credit_code : "")},
        {"org_name", json_string(ev->org_name ? ev->org_name : "")},
        {"area", s_enum(&aidstat__v1__area__descriptor, ev->area)},
        {"project", s_enum(&aidstat__v1__project__descriptor, ev->project)},
        {"activity_date", s_date(ev->activity_date)},
        {"village_code", json_string(ev->village_code ? ev->village_code : "")},
        {"deep_poverty_village", json_boolean(ev->deep_poverty_village)},
        {"beneficiaries", json_integer((json_int_t)ev->beneficiaries)},
        {"registered_poor", json_integer((json_int_t)ev->registered_poor)},
        {"beneficiary_group",
         s_enum(&aidstat__v1__beneficiary_group__descriptor, ev->beneficiary_group)},
        {"funds_fen", json_integer((json_int_t)ev->funds_fen)},
        {"goods_fen", json_integer((json_int_t)ev->goods_fen)},
        {"funding_source", s_enum(&aidstat__v1__funding_source__descriptor, ev->funding_source)},
        {"online_fundraising", json_boolean(ev->online_fundraising)},
        {"volunteers", json_integer((json_int_t)ev->volunteers)},
        {"volunteer_hours", json_real((double)ev->volunteer_hours_tenths / 10.0)},
        {"social_workers", json_integer((json_int_t)ev->social_workers)},
        {"persons_lifted", json_integer((json_int_t)ev->persons_lifted)},
        {"jobs", json_integer((json_int_t)ev->jobs)},
        {"trainees", json_integer((json_int_t)ev->trainees)},
        {"income_increase_fen", json_integer((json_int_t)ev->income_increase_fen)},
        {"note", json_string(ev->note ? ev->note : "")},
        {"correction_of", ev->correction_of.len ? s_hex(ev->correction_of) : json_null()},
        {"retract", json_boolean(ev->retract)},
        {"source_file", json_string(ev->source_file ? ev->source_file : "")},
        {"source_row", json_integer(ev->source_row)},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        /* json_object_set_new steals the value even on failure; a string that is not valid
         * UTF-8 gives NULL from json_string and is shown as null rather than dropping the
         * event. */
        json_t *v = f[i].v ? f[i].v : json_null();
        if (json_object_set_new(o, f[i].name, v) != 0)
            bad = 1;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *as_event_json_packed(const Aidstat__V1__FeedHeader *hdr, const uint8_t *pb, size_t len,
                             int *err)
{
    Aidstat__V1__Event *ev = aidstat__v1__event__unpack(NULL, len, pb);
    if (!ev) {
        if (err)
            *err = AS_E_PARSE;
        return NULL;
    }
    json_t *o = as_event_json(hdr, ev);
    aidstat__v1__event__free_unpacked(ev, NULL);
    if (!o && err)
        *err = AS_E_NOMEM;
    return o;
}
