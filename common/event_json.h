/* event_json: one feed or replay item (FeedHeader + Event) as a JSON object with DESIGN.md's
 * names; the one place that turns an event into JSON, shared by `aidstat tail` and the HTTP API
 * (and mirrored field for field by examples/python/aidstat_subscriber.py). */
#ifndef AS_EVENT_JSON_H
#define AS_EVENT_JSON_H

#include "aidstat/v1/event.pb-c.h"
#include "aidstat/v1/feed.pb-c.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The JSON object of one event, keys in this order:
 *   seq, kind, commit_ms, county, flags, flag_names        (from the header; hdr may be NULL:
 *                                                            then seq/commit_ms are 0, kind is
 *                                                            derived from the event, county and
 *                                                            flags come from the event)
 *   id, event_id, county_code, org_credit_code, org_name, area, project, activity_date,
 *   village_code, deep_poverty_village, beneficiaries, registered_poor, beneficiary_group,
 *   funds_fen, goods_fen, funding_source, online_fundraising, volunteers, volunteer_hours,
 *   social_workers, persons_lifted, jobs, trainees, income_increase_fen, note, correction_of,
 *   retract, source_file, source_row
 * Rules: money is integer fen; volunteer_hours is a number with one decimal; enums are their
 * English names (the proto value name without its type prefix, in lower case: "deep_village",
 * "government_purchase"), null when 0 (not given), the number for a value this build does not
 * know; kind is "event" | "correction" | "retraction"; flag_names lists the set Flag bits by
 * name ("unregistered", "outlier"); id and correction_of are lower-case hex (correction_of null
 * when empty); activity_date is "YYYY-MM-DD" (null when 0).
 * Returns a new reference, NULL when out of memory. */
json_t *as_event_json(const Aidstat__V1__FeedHeader *hdr, const Aidstat__V1__Event *ev);

/* As as_event_json from a packed protobuf Event. Returns NULL (with *err set to AS_E_PARSE or
 * AS_E_NOMEM when err is non-NULL) if the bytes are not an Event. */
json_t *as_event_json_packed(const Aidstat__V1__FeedHeader *hdr, const uint8_t *pb, size_t len,
                             int *err);

/* "event", "correction", "retraction", "report", "heartbeat"; "unspecified" for 0 and unknown. */
const char *as_feed_kind_name(int kind);

#endif
