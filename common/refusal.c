/* refusal: process-wide counters of refused input, one per (stage, reason), for /metrics. */
#include "refusal.h"

#include <stdatomic.h>

typedef struct {
    const char *stage;
    const char *reason;
} s_class_t;

static const s_class_t s_classes[] = {
    [AS_REFUSE_INGEST_MALFORMED] = {"ingest", "malformed"},
    [AS_REFUSE_INGEST_OVERSIZED] = {"ingest", "oversized"},
    [AS_REFUSE_INGEST_NO_HELLO] = {"ingest", "no_hello"},
    [AS_REFUSE_INGEST_BAD_SEQ] = {"ingest", "bad_sequence"},
    [AS_REFUSE_INGEST_IMPERSONATION] = {"ingest", "impersonation"},
    [AS_REFUSE_INGEST_PEER_LIMIT] = {"ingest", "peer_limit"},
    [AS_REFUSE_INGEST_UNEXPECTED] = {"ingest", "unexpected_message"},
    [AS_REFUSE_ZAP_DENIED] = {"zap", "denied"},
    [AS_REFUSE_HANDSHAKE_FAILED] = {"ingest", "handshake_failed"},
    [AS_REFUSE_QUERY_MALFORMED] = {"query", "malformed"},
    [AS_REFUSE_QUERY_UNAUTHORISED] = {"query", "unauthorised"},
    [AS_REFUSE_QUERY_INVALID] = {"query", "invalid"},
    [AS_REFUSE_HTTP_MALFORMED] = {"http", "malformed"},
    [AS_REFUSE_HTTP_TOO_LARGE] = {"http", "too_large"},
    [AS_REFUSE_HTTP_UNAUTHORISED] = {"http", "unauthorised"},
    [AS_REFUSE_HTTP_NOT_FOUND] = {"http", "not_found"},
    [AS_REFUSE_HTTP_METHOD] = {"http", "method"},
    [AS_REFUSE_HTTP_TOO_MANY] = {"http", "too_many"},
    [AS_REFUSE_HTTP_TIMEOUT] = {"http", "timeout"},
    [AS_REFUSE_SPOOL_NOT_REGULAR] = {"spool", "not_regular_file"},
    [AS_REFUSE_CONTROL_MALFORMED] = {"control", "malformed"},
};
_Static_assert(sizeof s_classes / sizeof s_classes[0] == AS_REFUSE_COUNT,
               "every refusal class needs its labels in s_classes");

static _Atomic uint64_t s_counts[AS_REFUSE_COUNT];

static int s_valid(as_refusal_t why)
{
    return (int)why >= 0 && why < AS_REFUSE_COUNT;
}

void as_refusal_count(as_refusal_t why)
{
    if (s_valid(why))
        atomic_fetch_add_explicit(&s_counts[why], 1, memory_order_relaxed);
}

uint64_t as_refusal_get(as_refusal_t why)
{
    return s_valid(why) ? atomic_load_explicit(&s_counts[why], memory_order_relaxed) : 0;
}

const char *as_refusal_stage(as_refusal_t why)
{
    return s_valid(why) ? s_classes[why].stage : "";
}

const char *as_refusal_reason(as_refusal_t why)
{
    return s_valid(why) ? s_classes[why].reason : "";
}

void as_refusal_reset(void)
{
    for (int i = 0; i < AS_REFUSE_COUNT; i++)
        atomic_store_explicit(&s_counts[i], 0, memory_order_relaxed);
}
