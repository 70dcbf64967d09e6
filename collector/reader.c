/* reader: spool file → validated events packed as protobuf, and per-row errors, for the spool
 * (the spreadsheet itself is read by common/sheet.h). */
#include "reader.h"
#include "err.h"
#include "log.h"
#include "sheet.h"
#include "wire.h"

#include <stdlib.h>

typedef struct {
    as_spool_result_t *r;
    uint8_t *buf; /* packing buffer, grown to the largest event */
    size_t cap;
    const char *name;
} s_read_t;

static int s_on_event(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
    s_read_t *rd = arg;
    size_t n = as_event_packed_size(ev);
    if (n > rd->cap) {
        uint8_t *b = realloc(rd->buf, n);
        if (!b)
            return AS_E_NOMEM;
        rd->buf = b;
        rd->cap = n;
    }
    as_event_pack(ev, rd->buf);
    return as_spool_result_add(rd->r, rd->buf, n);
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_read_t *rd = arg;
    if (rowno == 0) { /* the file as a whole: the spool records it; say exactly why here */
        AS_WARN("reader", "%s: %s (%s)", rd->name, e->reason_en, e->reason_zh);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = as_spool_result_add_error(rd->r, (uint32_t)rowno, e[i].column, e[i].value,
                                           e[i].reason_zh, e[i].reason_en);
        if (rc)
            return rc;
    }
    return 0;
}

/* Warnings (unknown columns, no data rows) go into NAME.errors.csv as row 0: a misspelt header
 * would otherwise drop a column's figures without a word. */
static int s_on_warning(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_read_t *rd = arg;
    AS_INFO("reader", "%s: %s", rd->name, e->reason_en);
    return as_spool_result_add_error(rd->r, 0, e->column, e->value, e->reason_zh, e->reason_en);
}

int as_reader_read(void *arg, int fd, const char *name, as_spool_result_t *r)
{
    const as_reader_ctx_t *ctx = arg;
    as_validate_ctx_t vctx = {.county = ctx->county, .today = as_today_cst()};
    s_read_t rd = {.r = r, .name = name};
    as_sheet_handler_t h = {s_on_event, s_on_error, s_on_warning, &rd};
    as_sheet_stats_t st;
    int rc = as_sheet_read_events_fd(fd, name, &vctx, &h, &st);
    free(rd.buf);
    if (rc == 0)
        AS_INFO("reader", "%s: %llu rows, %llu valid, %llu rejected", name,
                (unsigned long long)st.rows, (unsigned long long)st.valid,
                (unsigned long long)st.rejected);
    return rc;
}
