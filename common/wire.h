/* wire: the activity event between its C form (as_event_t) and protobuf (aidstat.v1.Event). */
#ifndef AS_WIRE_H
#define AS_WIRE_H

#include "event.h"
#include "aidstat/v1/event.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Fills *pb (initialised here) from ev; pb's strings and bytes borrow from ev, so ev must
 * outlive pb's use. */
void as_event_to_pb(const as_event_t *ev, Aidstat__V1__Event *pb);

/* Copies a decoded protobuf event into *ev. Returns 0, or AS_E_INVALID when a string or id
 * does not fit its field (the event must then be rejected as malformed, naming the field in
 * *field when field is non-NULL). Does not validate content: see as_event_validate(). */
int as_event_from_pb(const Aidstat__V1__Event *pb, as_event_t *ev, const char **field);

/* An upper bound of as_event_packed_size(): every text field full, every number at its widest
 * varint, a tag and a length for each field. */
#define AS_EVENT_PACKED_MAX (sizeof(as_event_t) + 512)

/* Packed size and packing of an event as protobuf. */
size_t as_event_packed_size(const as_event_t *ev);
size_t as_event_pack(const as_event_t *ev, uint8_t *out);

/* What a follower of the event log often needs, read from packed bytes without decoding the
 * rest (no allocation): county, activity date, retract, flags. */
typedef struct {
    uint32_t county;
    uint32_t date;
    bool retract;
    uint32_t flags;
} as_event_peek_t;

/* Fills *out from packed Event bytes (fields absent are 0). Returns 0, or AS_E_PARSE when the
 * bytes are cut short, a varint exceeds 64 bits or a known field has the wrong wire type. */
int as_event_peek(const uint8_t *buf, size_t len, as_event_peek_t *out);

/* Decodes protobuf bytes into *ev. Returns 0, AS_E_PARSE (not a valid Event, including whatever
 * as_event_peek() refuses, so both read the same) or AS_E_INVALID. */
int as_event_unpack(const uint8_t *buf, size_t len, as_event_t *ev);

#endif
