/* feed: the downstream feed — a PUB socket sending [topic, FeedHeader, Event] for every
 * accepted event in sequence order, and a heartbeat "hb" with the newest sequence each second. */
#ifndef AS_FEED_H
#define AS_FEED_H

#include "event.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_feed_s as_feed_t;

/* Binds a PUB on endpoint in zctx (not owned) and starts the heartbeat timer on loop.
 * last_seq is the ledger's newest sequence (for heartbeats until the first publish); sndhwm the
 * messages a subscriber may lag before the PUB drops for it (0: AS_FEED_SNDHWM).
 * Returns NULL with *err set (AS_E_ZMQ with the reason logged, -errno) on failure. */
as_feed_t *as_feed_new(uv_loop_t *loop, void *zctx, const char *endpoint, uint64_t last_seq,
                       int sndhwm, int *err);

#define AS_FEED_SNDHWM 200000 /* default: messages a subscriber may lag before PUB drops */

/* Publishes one committed event: topic "ev.<county>", a FeedHeader (seq, kind, commit_ms,
 * county, flags) and the packed Event. Call in sequence order. A message that cannot be sent is
 * counted as a drop (subscribers recover it by replay). */
void as_feed_publish(as_feed_t *f, uint64_t seq, uint64_t commit_ms, const as_event_t *ev);

/* The same for an event already packed (pb_len bytes at pb, e.g. the event log's own bytes),
 * with its header fields given: kind as as_feed_kind() of the event, county, flags. */
void as_feed_publish_packed(as_feed_t *f, uint64_t seq, uint64_t commit_ms, uint32_t county,
                            int kind, uint32_t flags, const uint8_t *pb, size_t pb_len);

/* Publishes a report notice: topic "report.<year>", a FeedHeader (kind FEED_REPORT, seq the
 * newest sequence published, commit_time_ms = ms) and a ReportNotice. */
void as_feed_publish_report(as_feed_t *f, uint32_t year, bool final, const char *dir, uint64_t ms);

/* The FeedKind of an event (aidstat.v1.FeedKind numbers): retraction, correction or event (a
 * correction whose target was not live counts as a new event, flagged, and is sent as one). */
int as_feed_kind(const as_event_t *ev);

/* Counters: messages published, messages that could not be sent. */
uint64_t as_feed_published(const as_feed_t *f);
uint64_t as_feed_drops(const as_feed_t *f);

/* Stops the timer and closes the socket (bounded linger); the handle is freed in its close
 * callback, so run the loop once more. Safe on NULL and twice. */
void as_feed_destroy(as_feed_t **self_p);

#endif
