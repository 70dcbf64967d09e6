/* reader: reads a spool file (CSV or NDJSON, as common/sheet.h reads it) into packed, validated
 * events and per-row errors for the spool; the county check uses the collector's county. */
#ifndef AS_READER_H
#define AS_READER_H

#include "spool.h"

#include <stdint.h>

/* Reader context: the county every row must belong to. */
typedef struct {
    uint32_t county;
} as_reader_ctx_t;

/* An as_spool_reader_fn (arg is an as_reader_ctx_t *): thread-safe, touches no loop. */
int as_reader_read(void *arg, int fd, const char *name, as_spool_result_t *r);

#endif
