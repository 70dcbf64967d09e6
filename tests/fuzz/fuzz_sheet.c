/* fuzz_sheet: a county's spreadsheet as the collector reads it — the input is a whole file's
 * content (CSV in UTF-8 or GB18030, or NDJSON), read by as_sheet_read_events into validated
 * events. Each accepted event must pass the aggregator's re-check (as_event_validate) and survive
 * the wire (pack, peek, unpack) unchanged in what the peek reads. */
#include "fuzz.h"
#include "sheet.h"
#include "wire.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const as_validate_ctx_t s_ctx = {
    .county = 0, .today = FUZZ_TODAY, .in_registry = fuzz_in_registry};

static int s_on_event(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
    (void)arg;
    FUZZ_CHECK(rowno >= 1 && line >= 1);
    as_row_errors_t errs;
    int rc = as_event_validate(ev, &s_ctx, &errs);
    if (rc != 0 || errs.n != 0)
        fprintf(stderr, "row %zu accepted by the reader, refused by as_event_validate: %s: %s\n",
                rowno, errs.n ? errs.e[0].column : "", errs.n ? errs.e[0].reason_en : "");
    FUZZ_CHECK(rc == 0 && errs.n == 0);

    static uint8_t buf[AS_EVENT_PACKED_MAX];
    size_t size = as_event_packed_size(ev);
    FUZZ_CHECK(size <= AS_EVENT_PACKED_MAX);
    FUZZ_CHECK(as_event_pack(ev, buf) == size);
    as_event_peek_t pk;
    FUZZ_CHECK(as_event_peek(buf, size, &pk) == 0);
    FUZZ_CHECK(pk.county == ev->county && pk.date == ev->date && pk.retract == ev->retract &&
               pk.flags == ev->flags);
    static as_event_t back;
    FUZZ_CHECK(as_event_unpack(buf, size, &back) == 0);
    FUZZ_CHECK(memcmp(back.id, ev->id, AS_ID_LEN) == 0 && back.county == ev->county &&
               strcmp(back.org_name, ev->org_name) == 0 && strcmp(back.note, ev->note) == 0 &&
               back.funds_fen == ev->funds_fen && back.income_fen == ev->income_fen);
    return 0;
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    (void)arg;
    (void)rowno;
    (void)line;
    FUZZ_CHECK(n >= 1 && n <= AS_MAX_ROW_ERRORS);
    for (size_t i = 0; i < n; i++) /* every message is a terminated string */
        FUZZ_CHECK(memchr(e[i].reason_en, 0, sizeof e[i].reason_en) &&
                   memchr(e[i].reason_zh, 0, sizeof e[i].reason_zh) &&
                   memchr(e[i].value, 0, sizeof e[i].value) &&
                   memchr(e[i].column, 0, sizeof e[i].column));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader takes a path: the input becomes the content of one in-memory file, reopened
     * through /proc for each read (its own offset, as a spool file would have). */
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_sheet", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);

    as_sheet_handler_t h = {
        .on_event = s_on_event, .on_error = s_on_error, .on_warning = s_on_error};
    as_sheet_stats_t st;
    int rc = as_sheet_read_events(path, &s_ctx, &h, &st);
    (void)rc;
    FUZZ_CHECK(st.rows == st.valid + st.rejected);
    FUZZ_CHECK(st.bytes <= size);
    return 0;
}
