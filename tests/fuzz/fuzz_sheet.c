/* fuzz_sheet: a county's spreadsheet as the collector reads it — the input is a whole file's
 * content (CSV in UTF-8 or GB18030, or NDJSON), read by as_sheet_read_events into validated
 * events. Each accepted event must pass the aggregator's re-check (as_event_validate) and survive
 * the wire (pack, peek, unpack). The reader runs with buffers of a few bytes (sheet_tiny.c) and
 * must give the same events, errors and warnings as with buffers holding the input whole
 * (sheet_ref.c), unless the two may decide the file's encoding differently (see
 * s_decided_differently). */
#include "fuzz.h"
#include "sheet.h"
#include "wire.h"
#include "err.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REF_MAX (32u << 10) /* larger inputs do not fit sheet_ref.c's buffers at once */

int ref_as_sheet_read_events(const char *path, const as_validate_ctx_t *ctx,
                             const as_sheet_handler_t *h, as_sheet_stats_t *st);

static const as_validate_ctx_t s_ctx = {
    .county = 0, .today = FUZZ_TODAY, .in_registry = fuzz_in_registry};

/* FNV-1a over everything a reading reported, in order. */
static void s_mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

/* Whether the two readers may decide the encoding differently, by design: the decision is taken
 * once on UTF8_CHECK bytes from the first non-ASCII byte (256 in sheet_tiny.c, the whole input in
 * sheet_ref.c), and it matters only for input that is not entirely valid UTF-8 (an invalid
 * sequence, or a character cut by the end). Such inputs are left out of the comparison. */
static bool s_decided_differently(const uint8_t *p, size_t n)
{
    size_t first = 0;
    while (first < n && p[first] < 0x80)
        first++;
    if (n - first <= 256)
        return false; /* both readers decide on the same bytes */
    for (size_t i = first; i < n;) {
        unsigned c = p[i], lo = 0x80, top = 0xBF;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, lo = c == 0xE0 ? 0xA0 : 0x80, top = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, lo = c == 0xF0 ? 0x90 : 0x80, top = c == 0xF4 ? 0x8F : 0xBF;
        else
            return true;
        for (size_t j = 1; j <= k; j++)
            if (i + j >= n ||
                (j == 1 ? p[i + j] < lo || p[i + j] > top : (p[i + j] & 0xC0) != 0x80))
                return true;
        i += k + 1;
    }
    return false;
}

static bool s_trace; /* FUZZ_TRACE set: print what each reading reports, to compare them */

static void s_mix_num(uint64_t *h, char kind, size_t a, size_t b)
{
    if (s_trace)
        fprintf(stderr, "%c row %zu line %zu\n", kind, a, b);
    s_mix(h, &kind, 1);
    s_mix(h, &a, sizeof a);
    s_mix(h, &b, sizeof b);
}

static int s_on_event(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
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
    s_mix_num(arg, 'E', rowno, line);
    s_mix(arg, buf, size);
    return 0;
}

static void s_mix_errors(uint64_t *h, char kind, size_t rowno, size_t line,
                         const as_field_error_t *e, size_t n)
{
    FUZZ_CHECK(n >= 1 && n <= AS_MAX_ROW_ERRORS);
    s_mix_num(h, kind, rowno, line);
    for (size_t i = 0; i < n; i++) { /* every message is a terminated string */
        FUZZ_CHECK(memchr(e[i].reason_en, 0, sizeof e[i].reason_en) &&
                   memchr(e[i].reason_zh, 0, sizeof e[i].reason_zh) &&
                   memchr(e[i].value, 0, sizeof e[i].value) &&
                   memchr(e[i].column, 0, sizeof e[i].column));
        if (s_trace)
            fprintf(stderr, "  [%s] [%s] %s\n", e[i].column, e[i].value, e[i].reason_en);
        s_mix(h, e[i].column, strlen(e[i].column) + 1);
        s_mix(h, e[i].value, strlen(e[i].value) + 1);
        s_mix(h, e[i].reason_en, strlen(e[i].reason_en) + 1);
        s_mix(h, e[i].reason_zh, strlen(e[i].reason_zh) + 1);
    }
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_mix_errors(arg, 'R', rowno, line, e, n);
    return 0;
}

static int s_on_warning(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    s_mix_errors(arg, 'W', rowno, line, e, n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader takes a path: the input becomes the content of one in-memory file, reopened
     * through /proc for each read (its own offset, as a spool file would have). */
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        s_trace = getenv("FUZZ_TRACE") != NULL;
        fd = memfd_create("fuzz_sheet", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);

    uint64_t h = 0xcbf29ce484222325ull, ref = h;
    as_sheet_handler_t hd = {
        .on_event = s_on_event, .on_error = s_on_error, .on_warning = s_on_warning, .arg = &h};
    as_sheet_stats_t st, rst;
    int rc = as_sheet_read_events(path, &s_ctx, &hd, &st);
    FUZZ_CHECK(st.rows == st.valid + st.rejected);
    FUZZ_CHECK(st.bytes <= size);
    if (size > REF_MAX || s_decided_differently(data, size))
        return 0; /* too long for the reference, or read differently by design */
    hd.arg = &ref;
    if (s_trace)
        fprintf(stderr, "-- reference --\n");
    int rrc = ref_as_sheet_read_events(path, &s_ctx, &hd, &rst);
    if (fuzz_allocation_failed() || rc == AS_E_ENCODING || rrc == AS_E_ENCODING)
        return 0; /* replay made an allocation fail (either run), or the rows differ by design */
    if (rc != rrc || h != ref || st.rows != rst.rows || st.valid != rst.valid)
        fprintf(stderr, "streaming: rc %d, %llu rows, %llu valid; reference: rc %d, %llu, %llu\n",
                rc, (unsigned long long)st.rows, (unsigned long long)st.valid, rrc,
                (unsigned long long)rst.rows, (unsigned long long)rst.valid);
    FUZZ_CHECK(rc == rrc && st.rows == rst.rows && st.valid == rst.valid);
    FUZZ_CHECK(h == ref); /* the same events, errors and warnings, in the same order */
    return 0;
}
