/* sender: delivers the outbox to the aggregator over a ZeroMQ DEALER on the libuv loop — Hello
 * and Welcome, batches with a window in flight, resends after a timeout, settles each item only
 * on the aggregator's answer (accepted or duplicate: removed; rejected: parked), heartbeats. */
#ifndef AS_SENDER_H
#define AS_SENDER_H

#include "outbox.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_sender_s as_sender_t;

typedef struct {
    const char *endpoint;       /* aggregator's ingest, e.g. "tcp://127.0.0.1:7601" */
    const char *collector_id;   /* e.g. "collector-360730" */
    uint32_t county;            /* the county served */
    const char *curve_secret;   /* file with this collector's key pair (Z85), NULL/"" = plain */
    const char *aggregator_key; /* the aggregator's public key (Z85), needed with curve_secret */
    size_t batch_size;          /* events per batch (0: 500) */
    size_t window;              /* batches in flight (0: 16) */
    uint64_t resend_ms;         /* resend a batch unanswered this long (0: 10000) */
    uint64_t heartbeat_ms;      /* heartbeat and timer period (0: 1000) */
    unsigned dead_after;        /* heartbeats of silence before the aggregator counts as down
                                   (0: 5) */
} as_sender_opts_t;

/* Called for each item the aggregator rejected, after it was parked. data is the packed
 * protobuf (an Event for AS_ITEM_EVENT), borrowed for the call. */
typedef void (*as_sender_reject_cb)(void *arg, uint8_t kind, const uint8_t *data, size_t len,
                                    uint8_t reject, const char *reason);

/* What the sender has done so far (for logs, status and tests). */
typedef struct {
    bool welcomed;      /* the aggregator answered our Hello and has not gone silent */
    size_t in_flight;   /* batches sent and not answered */
    uint64_t batches;   /* batches answered */
    uint64_t acked;     /* items removed (accepted or duplicate) */
    uint64_t duplicate; /* of which duplicates */
    uint64_t rejected;  /* items parked */
    uint64_t resent;    /* batch resends */
    uint64_t hellos;    /* Hellos sent */
    uint64_t settles;   /* outbox transactions that removed or parked answered items (the
                           answers read in one pass over the socket share one) */
} as_sender_stats_t;

/* Creates the DEALER in zctx (not owned), connects it, and starts the timer on loop. The outbox
 * is borrowed and must outlive the sender. Strings in opts are copied. Returns NULL with *err set
 * (AS_E_ZMQ, AS_E_INVALID for unreadable keys, -errno) on failure. */
as_sender_t *as_sender_new(uv_loop_t *loop, void *zctx, as_outbox_t *ob,
                           const as_sender_opts_t *opts, int *err);

/* Stops the sender: closes the socket (bounded linger) and the handles (freed in their close
 * callbacks: run the loop once more). Unanswered items simply stay in the outbox. Safe on NULL
 * and twice. */
void as_sender_destroy(as_sender_t **self_p);

/* Tells the sender the outbox has new items: it fills its window now rather than at the next
 * tick. */
void as_sender_kick(as_sender_t *s);

/* Re-reads the key files and reconnects with them (SIGHUP). In-flight batches are resent after
 * the new Welcome. Returns 0, or AS_E_INVALID (keys unreadable: the old socket is kept). */
int as_sender_reload(as_sender_t *s);

/* Sets the callback for rejected items (NULL to clear). */
void as_sender_on_reject(as_sender_t *s, as_sender_reject_cb cb, void *arg);

/* Copies the counters into *st. */
void as_sender_stats(const as_sender_t *s, as_sender_stats_t *st);

#endif
