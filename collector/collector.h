/* collector: the county collector on one libuv loop — outbox, spool watcher, sender, and the
 * control endpoint through which `aidstat submit` hands files and nil reports to it. */
#ifndef AS_COLLECTOR_H
#define AS_COLLECTOR_H

#include "sender.h"
#include "spool.h"

#include <stdint.h>
#include <uv.h>

typedef struct as_collector_s as_collector_t;

typedef struct {
    uint32_t county;            /* the county served, e.g. 360730 */
    const char *data;           /* data folder (outbox in DATA/outbox) */
    const char *spool;          /* spool folder */
    const char *aggregator;     /* ingest endpoint of the aggregator */
    const char *control;        /* control endpoint (REP), e.g. "ipc://DATA/control.sock" */
    const char *curve_secret;   /* this collector's key pair file, "" = plain */
    const char *aggregator_key; /* the aggregator's public key (Z85) */
    size_t batch_size, window;  /* 0: sender defaults */
    uint64_t resend_ms;         /* 0: sender default */
    as_spool_reader_fn reader;  /* reads a spool file (runs on a worker thread) */
    void *reader_arg;
    bool no_sync; /* tests only: outbox commits not flushed */
} as_collector_opts_t;

/* Opens the outbox, starts the spool watcher, the sender and the control endpoint on loop.
 * Returns NULL with *err set on failure (everything opened so far is closed again). */
as_collector_t *as_collector_new(uv_loop_t *loop, const as_collector_opts_t *opts, int *err);

/* Stops taking input and closes everything; unacknowledged items stay in the outbox for the
 * next run. The loop must run until it has nothing left before uv_loop_close(). Safe on NULL
 * and twice. */
void as_collector_destroy(as_collector_t **self_p);

/* Re-reads the CURVE keys (SIGHUP). Returns 0 or AS_E_INVALID (old keys kept). */
int as_collector_reload(as_collector_t *c);

/* Control requests (one ZeroMQ multipart message each, answered by one frame):
 *   ["submit", NAME, CONTENT]  write CONTENT into the spool as NAME (temporary name, then rename)
 *                              → "ok NAME" (the name used) or "error REASON"
 *   ["nil", "YYYY-MM"]         queue a nil report for that month → "ok" or "error REASON"
 *   ["status"]                 → JSON {"county":..,"backlog":..,"rejected":..,"connected":..} */
#define AS_CONTROL_SUBMIT "submit"
#define AS_CONTROL_NIL    "nil"
#define AS_CONTROL_STATUS "status"

#endif
