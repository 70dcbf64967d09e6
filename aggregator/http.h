/* http: the aggregator's HTTP/1.1 server on its libuv loop — the JSON API (/api/totals, status,
 * completeness, flags), Server-Sent Events after each commit (/api/stream), Prometheus metrics
 * (/metrics) and the dashboard (/). Requests are parsed by http_parser; size limits, a header
 * deadline and connection and stream caps keep a bad, slow or greedy client from holding the
 * server, and an optional bearer token (required beyond loopback) keeps out who has none. */
#ifndef AS_HTTP_H
#define AS_HTTP_H

#include "ledger.h"
#include "query.h"
#include "metrics.h"
#include "monitor.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_http_s as_http_t;

/* Where the answers come from; filled by the aggregator (or a test). Pointers are borrowed and
 * must outlive the server. */
typedef struct {
    as_ledger_t *ledger;   /* required: totals, collectors, sequence, size */
    as_monitor_t *monitor; /* nil reports, completeness, flags; NULL: those answer 503 */
    as_metrics_t *metrics; /* counters for /metrics; NULL: zeros */
    /* Whether a collector is connected now; NULL: heard from within the last 30 s. */
    bool (*is_connected_cb)(void *ctx, const char *collector_id);
    void *ctx;
    /* What the daemon knows now of each collector (backlog and last heard from heartbeats,
     * which the ledger stores only with the next commit); NULL: the ledger's copy. */
    as_query_live_cb live_cb;
    void *live_ctx;
} as_http_source_t;

typedef struct {
    int header_timeout_ms; /* 0: 5,000; a request whose headers take longer gets 408 */
    int idle_timeout_ms;   /* 0: 60,000; an idle keep-alive connection is closed after it */
    int heartbeat_ms;      /* 0: 15,000; SSE comment lines keep proxies and clients awake */
    int push_delay_ms;     /* 0: 100; commits within this window make one SSE message */
    int silent_after_s;    /* 0: 86,400; a collector not heard for longer stands out */
    /* Who may ask, and how many at once. A connection over max_connections closes the oldest
     * connection that is not a stream (plain requests take milliseconds: the oldest is idle,
     * trickles its request or does not read its answer); only when there is none is the new
     * one answered 503 (Retry-After) and closed. Streams have their own budget below the cap,
     * so that plain requests always find room: over max_streams, or over
     * max_streams_per_client from one client address, /api/stream answers 503 with
     * Retry-After. A connection that has not sent a complete request's headers within
     * header_timeout_ms of opening is closed (slowloris). Every refusal is counted
     * (as_refusal_count, AS_REFUSE_HTTP_*). */
    int max_connections;        /* 0: 1,024 (lowered to what RLIMIT_NOFILE allows) */
    int max_streams;            /* 0: half of max_connections; always below it */
    int max_streams_per_client; /* 0: 32; at most max_streams */
    /* The bearer token every request must carry (Authorization: Bearer TOKEN, or the cookie the
     * dashboard gets from /?token=TOKEN); NULL or "": no token asked. Copied. */
    const char *token;
} as_http_opts_t;

/* Reads the bearer token from the first line of the file at path into out[cap] (trailing
 * spaces and line end dropped). The file must be a regular file that others (and the group, for
 * writing) have no access to, and the token 16 to 256 characters of A-Z a-z 0-9 - . _ ~ + / =
 * (e.g. `openssl rand -hex 32`). Returns 0, or -errno when it cannot be read, AS_E_AUTH when
 * its permissions are too open, AS_E_INVALID when the token is malformed; why[whylen] then
 * says what is wrong, naming the file. */
int as_http_token_read(const char *path, char *out, size_t cap, char *why, size_t whylen);

/* Whether listen ("ADDR:PORT") is a loopback address (127.0.0.0/8 or ::1): 1 yes, 0 no (any
 * other address, 0.0.0.0 and :: too), AS_E_INVALID when it does not parse. */
int as_http_listen_is_loopback(const char *listen);

/* Starts listening on listen ("ADDR:PORT"; port 0 picks a free one) on loop. opts may be NULL.
 * Returns the server or NULL with *err set (AS_E_INVALID for a bad address, -errno from libuv,
 * e.g. UV_EADDRINUSE). Caller owns it. */
as_http_t *as_http_new(uv_loop_t *loop, const char *listen, const as_http_source_t *src,
                       const as_http_opts_t *opts, int *err);

/* The port actually bound (useful with port 0). */
int as_http_port(const as_http_t *h);

/* Tells the server a group was committed: when it changed the totals, stream clients get one
 * message (coalesced over push_delay_ms) with the new province totals and the newest sequence.
 * Call on the loop's thread. info may be NULL (treated as a change). */
void as_http_notify_commit(as_http_t *h, const as_commit_info_t *info);

/* Open connections and stream clients (for metrics and tests). */
size_t as_http_connections(const as_http_t *h);
size_t as_http_stream_clients(const as_http_t *h);

/* Stops listening and closes every connection; memory is freed in the close callbacks, so the
 * loop must run again before uv_loop_close(). Safe on NULL and twice. */
void as_http_destroy(as_http_t **self_p);

#endif
