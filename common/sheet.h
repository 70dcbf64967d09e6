/* sheet: streaming reader of a county spreadsheet (RFC 4180 CSV in UTF-8 or GB18030, or NDJSON)
 * into rows of text cells keyed by column, and into validated events. */
#ifndef AS_SHEET_H
#define AS_SHEET_H

#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct as_sheet_s as_sheet_t;

typedef enum { AS_SHEET_CSV = 0, AS_SHEET_NDJSON } as_sheet_format_t;

typedef enum {
    AS_SHEET_ASCII = 0, /* nothing but ASCII so far (valid as both) */
    AS_SHEET_UTF8,
    AS_SHEET_GB18030
} as_sheet_encoding_t;

/* Opens path ("-" reads standard input) and reads up to the first data row: detects the format
 * (NDJSON by the extension .ndjson/.jsonl or a first character '{', else CSV), the encoding (valid
 * UTF-8, else GB18030 converted with iconv; a BOM is skipped) and, for CSV, maps the header row.
 *
 * Returns the sheet, or NULL only when out of memory (*err = AS_E_NOMEM). When the file as a whole
 * cannot be read — cannot be opened (-errno), is empty, lacks a required column or repeats one
 * (AS_E_PARSE), is in neither encoding (AS_E_ENCODING) — the sheet is still returned with *err set,
 * as_sheet_error() says why, and as_sheet_next() returns that error. *err is 0 otherwise. err may
 * be NULL. Unknown columns are not an error: see as_sheet_warnings(). */
as_sheet_t *as_sheet_open(const char *path, int *err);

/* The same for a file the caller has open on fd (at its start; borrowed: read through it only,
 * never closed, and never reopened by name). name is only the file's name (its extension says
 * NDJSON) and is not opened. */
as_sheet_t *as_sheet_open_fd(int fd, const char *name, int *err);

/* Reads the next data row into *row (cells borrowed from the sheet, NUL-terminated, valid until
 * the next call or destroy; absent columns are NULL). Empty lines and rows of empty cells are
 * skipped. *rowno receives the 1-based data row (1 = first row after the header) and may be NULL;
 * as_sheet_line() gives the physical line where the row starts.
 *
 * Returns 1 for a row, 0 at the end, AS_E_INVALID for a row that cannot be split into cells (wrong
 * number of cells, unterminated quote, NDJSON line that is not an object): *rowno names it,
 * as_sheet_last_error() says why, and the next call goes on with the following row. Any other
 * negative code is a file-level error (see as_sheet_open()) and is final. */
int as_sheet_next(as_sheet_t *s, as_row_t *row, size_t *rowno);

/* Physical (1-based) line number where the last row returned started. */
size_t as_sheet_line(const as_sheet_t *s);

/* The last error (file-level or row-level) in English, or "" when none. Borrowed. */
const char *as_sheet_error(const as_sheet_t *s);

/* The last error with its column (English name or ""), value and both reasons. Borrowed. */
const as_field_error_t *as_sheet_last_error(const as_sheet_t *s);

/* Warnings so far (unknown columns, a header without data rows, ...): *n receives the count.
 * Each has the column ("" if none), the value (e.g. the unknown header) and both reasons.
 * Borrowed; valid until the next call on s. */
const as_field_error_t *as_sheet_warnings(const as_sheet_t *s, size_t *n);

as_sheet_format_t as_sheet_format(const as_sheet_t *s);
as_sheet_encoding_t as_sheet_encoding(const as_sheet_t *s);

/* Bytes of input read so far. */
uint64_t as_sheet_bytes(const as_sheet_t *s);

/* Closes the file and frees the sheet; sets *self_p to NULL; safe on NULL and twice. */
void as_sheet_destroy(as_sheet_t **self_p);

/* ---- whole file into validated events ------------------------------------------------------ */

/* Called for each valid event (ev borrowed; source_file and source_row are set). A non-zero
 * return stops the reading, and as_sheet_read_events() returns it. */
typedef int (*as_sheet_event_cb)(void *arg, const as_event_t *ev, size_t rowno, size_t line);

/* Called for each rejected row with its errors (rowno 0 and line 0 for a file-level error or a
 * warning). A non-zero return stops the reading. */
typedef int (*as_sheet_error_cb)(void *arg, size_t rowno, size_t line, const as_field_error_t *e,
                                 size_t n);

typedef struct {
    as_sheet_event_cb on_event;   /* may be NULL */
    as_sheet_error_cb on_error;   /* rejected rows and the file-level error; may be NULL */
    as_sheet_error_cb on_warning; /* warnings (unknown columns, ...); may be NULL */
    void *arg;                    /* passed to every callback */
} as_sheet_handler_t;

typedef struct {
    uint64_t rows;     /* data rows seen */
    uint64_t valid;    /* rows that gave an event */
    uint64_t rejected; /* rows rejected */
    uint64_t bytes;    /* input bytes */
} as_sheet_stats_t;

/* Reads the whole file at path ("-" for stdin), validates every row against ctx and calls h for
 * each event, rejected row and warning. Returns 0 when the file was read to its end — also when
 * rows were rejected —, a file-level error (after on_error with rowno 0), or the non-zero value
 * a callback returned. st (may be NULL) receives the counts. Thread-safe: no shared state. */
int as_sheet_read_events(const char *path, const as_validate_ctx_t *ctx,
                         const as_sheet_handler_t *h, as_sheet_stats_t *st);

/* The same for a file open on fd (borrowed, as as_sheet_open_fd() takes it); name gives the
 * events' source_file and the extension. */
int as_sheet_read_events_fd(int fd, const char *name, const as_validate_ctx_t *ctx,
                            const as_sheet_handler_t *h, as_sheet_stats_t *st);

#endif
