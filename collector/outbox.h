/* outbox: the collector's durable queue (LMDB in DATA/outbox) — pending items waiting for the
 * aggregator's acknowledgement, the record of the files already taken, the items the aggregator
 * rejected, and the batch sequence. Every write is one durable transaction. */
#ifndef AS_OUTBOX_H
#define AS_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AS_OUTBOX_HASH_LEN 32 /* BLAKE2b-256 of a file's content */

typedef struct as_outbox_s as_outbox_t;

/* What an item holds: a packed protobuf message of this type. */
typedef enum {
    AS_ITEM_EVENT = 1, /* aidstat.v1.Event */
    AS_ITEM_NIL = 2,   /* aidstat.v1.NilReport */
} as_item_kind_t;

/* An item to put: borrowed bytes. */
typedef struct {
    uint8_t kind; /* as_item_kind_t */
    const uint8_t *data;
    size_t len;
} as_outbox_blob_t;

/* A pending item read back: owned by the array returned by as_outbox_take. */
typedef struct {
    uint64_t seq; /* outbox sequence, monotonic, never reused */
    uint8_t kind; /* as_item_kind_t */
    uint8_t *data;
    size_t len;
} as_outbox_item_t;

/* The fate of one pending item, as the aggregator answered it. */
typedef struct {
    uint64_t seq;       /* outbox sequence of the item */
    bool rejected;      /* false: acknowledged (accepted or duplicate), removed; true: parked */
    uint8_t reject;     /* RejectCode when rejected */
    const char *reason; /* borrowed; when rejected */
} as_outbox_settle_t;

/* Opens (creating if needed) the outbox in directory dir (created too). no_sync is for tests
 * only: commits are then not flushed to disk. Returns the outbox or NULL with *err set (-errno,
 * AS_E_DB). Caller owns it. */
as_outbox_t *as_outbox_new(const char *dir, bool no_sync, int *err);

/* Closes it; safe on NULL and twice. */
void as_outbox_destroy(as_outbox_t **self_p);

/* Looks up a file by content hash. Returns 0 when it was taken before (its name then copied to
 * name, truncated to namelen, when name is non-NULL), AS_E_NOTFOUND, or AS_E_DB. */
int as_outbox_file_taken(as_outbox_t *ob, const uint8_t hash[AS_OUTBOX_HASH_LEN], char *name,
                         size_t namelen);

/* Puts n items and the record that the file (hash, name) was taken, in one durable transaction:
 * after a crash either all of them are there or none. Returns 0, AS_E_EXISTS (the file was taken
 * before: nothing written), AS_E_DB. n may be 0 (a file without valid rows is still taken). */
int as_outbox_put_file(as_outbox_t *ob, const uint8_t hash[AS_OUTBOX_HASH_LEN], const char *name,
                       const as_outbox_blob_t *items, size_t n);

/* Puts one item (e.g. a nil report) durably; its sequence in *seq when non-NULL. */
int as_outbox_put(as_outbox_t *ob, const as_outbox_blob_t *item, uint64_t *seq);

/* Copies up to max pending items with a sequence above after, in order, into a new array *items
 * (*n of them; the caller frees it with as_outbox_items_free). Returns 0 or AS_E_DB. */
int as_outbox_take(as_outbox_t *ob, uint64_t after, size_t max, as_outbox_item_t **items,
                   size_t *n);

/* Frees an array from as_outbox_take; safe on NULL. */
void as_outbox_items_free(as_outbox_item_t *items, size_t n);

/* Settles n items in one durable transaction: acknowledged ones are removed, rejected ones move
 * to the rejected store with their code and reason. Items no longer pending are skipped (a late
 * answer to a resent batch). Returns 0 or AS_E_DB. */
int as_outbox_settle(as_outbox_t *ob, const as_outbox_settle_t *s, size_t n);

/* Calls fn for each parked (rejected) item, oldest first, until fn returns non-zero. */
typedef int (*as_outbox_rejected_cb)(void *arg, uint64_t seq, uint8_t kind, uint8_t reject,
                                     const char *reason, const uint8_t *data, size_t len);
int as_outbox_each_rejected(as_outbox_t *ob, as_outbox_rejected_cb fn, void *arg);

/* Items waiting to be acknowledged, and items parked as rejected. */
uint64_t as_outbox_backlog(as_outbox_t *ob);
uint64_t as_outbox_rejected(as_outbox_t *ob);

/* Returns the next batch sequence number: strictly increasing across restarts (reserved durably
 * in blocks, so a crash skips numbers but never reuses one) and never at or below floor (the
 * aggregator's Welcome.last_batch_seq). 0 on a database failure (never a valid sequence). */
uint64_t as_outbox_next_batch_seq(as_outbox_t *ob, uint64_t floor);

#endif
