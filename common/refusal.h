/* refusal: process-wide counters of refused input, one per (stage, reason), for /metrics.
 *
 * Every place that refuses something a peer or a user sent — an ingest message that does not
 * decode, a ZAP denial, an unauthorised query, an HTTP request over a limit — counts it here
 * with one call, from any thread (the counters are atomic). The aggregator's /metrics renders
 * them as aidstat_refusals_total{stage="...",reason="..."}. */
#ifndef AS_REFUSAL_H
#define AS_REFUSAL_H

#include <stdint.h>

/* One refusal class. The stage and reason label of each are in refusal.c's table; add a class
 * there and here together (the table is checked against the count at compile time). */
typedef enum {
    /* ingest (the collectors' ROUTER) */
    AS_REFUSE_INGEST_MALFORMED = 0, /* a message that does not decode as an IngestMessage */
    AS_REFUSE_INGEST_OVERSIZED,     /* over ZMQ_MAXMSGSIZE or a declared/decoded size limit */
    AS_REFUSE_INGEST_NO_HELLO,      /* a batch, heartbeat or nil report before Hello */
    AS_REFUSE_INGEST_BAD_SEQ,       /* a batch sequence out of the allowed range */
    AS_REFUSE_INGEST_IMPERSONATION, /* a Hello claiming a collector id or county not its key's */
    AS_REFUSE_INGEST_PEER_LIMIT,    /* a new peer over the peer table's bound */
    AS_REFUSE_INGEST_UNEXPECTED,    /* a message a collector never sends (Welcome, a result) */
    AS_REFUSE_ZAP_DENIED,           /* the ZAP handler denied a key (unknown, wrong mechanism) */
    AS_REFUSE_HANDSHAKE_FAILED,     /* a ZMTP/CURVE handshake that failed (socket monitor) */
    /* query endpoint */
    AS_REFUSE_QUERY_MALFORMED,    /* a request that does not decode */
    AS_REFUSE_QUERY_UNAUTHORISED, /* an administrative request from a non-administrator */
    AS_REFUSE_QUERY_INVALID,      /* a request that decodes but asks for something invalid */
    /* HTTP */
    AS_REFUSE_HTTP_MALFORMED,    /* not HTTP, or a bad request target/parameter */
    AS_REFUSE_HTTP_TOO_LARGE,    /* headers or a body over the limits */
    AS_REFUSE_HTTP_UNAUTHORISED, /* a missing or wrong bearer token */
    AS_REFUSE_HTTP_NOT_FOUND,    /* an unknown path */
    AS_REFUSE_HTTP_METHOD,       /* a method other than GET/HEAD */
    AS_REFUSE_HTTP_TOO_MANY,     /* over the connection or stream caps */
    AS_REFUSE_HTTP_TIMEOUT,      /* a client too slow to send its request */
    /* the collector's spool and control socket */
    AS_REFUSE_SPOOL_NOT_REGULAR, /* a symlink, folder, fifo or device in the spool */
    AS_REFUSE_CONTROL_MALFORMED, /* a control-socket request that does not parse */
    AS_REFUSE_COUNT
} as_refusal_t;

/* Counts one refusal of class why (ignored when out of range). Thread-safe, lock-free. */
void as_refusal_count(as_refusal_t why);

/* The number of refusals of class why so far (0 when out of range). */
uint64_t as_refusal_get(as_refusal_t why);

/* The labels of class why: its stage ("ingest", "zap", "query", "http", ...) and its reason
 * ("malformed", ...); static strings, "" when out of range. */
const char *as_refusal_stage(as_refusal_t why);
const char *as_refusal_reason(as_refusal_t why);

/* Sets every counter back to 0 (tests). */
void as_refusal_reset(void);

#endif
