/* spool: watches the county office's spool folder, takes each complete file once — read on a
 * worker thread, its valid rows committed to the outbox together with the record that the file
 * was taken — then moves it to spool/done/ with NAME.errors.csv beside it for rejected rows. */
#ifndef AS_SPOOL_H
#define AS_SPOOL_H

#include "outbox.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_spool_s as_spool_t;

/* What reading one file gave: packed events and per-row errors. Filled by the reader. */
typedef struct as_spool_result_s as_spool_result_t;

/* Adds one valid event (a packed aidstat.v1.Event, copied). Returns 0 or AS_E_NOMEM. */
int as_spool_result_add(as_spool_result_t *r, const uint8_t *data, size_t len);

/* Adds one rejected value: data row (1 = first row after the header; 0 for the whole file),
 * English column name ("" for the row), the value, and the reason in Chinese and English (all
 * copied). Returns 0 or AS_E_NOMEM. */
int as_spool_result_add_error(as_spool_result_t *r, uint32_t row, const char *column,
                              const char *value, const char *reason_zh, const char *reason_en);

/* Reads the spool file open on fd (its spool name is name) into r. The spool opened it once,
 * without following a link, and checked that it is a regular file; fd is at offset 0, borrowed
 * (not closed by the reader), and the reader must read through it only — never reopen name.
 * Runs on a libuv worker thread, so it must not touch the loop. Returns 0 — also when rows were
 * rejected —; AS_E_PARSE or AS_E_ENCODING when the file as a whole cannot be read (it is then
 * taken with one file-level error, so that it is not tried forever); any other error (e.g.
 * -EIO) means "try again at the next scan". */
typedef int (*as_spool_reader_fn)(void *arg, int fd, const char *name, as_spool_result_t *r);

/* Called on the loop after a file was committed and moved (events = valid rows put into the
 * outbox, 0 when the same content had been taken before; errors = entries written to
 * NAME.errors.csv: one per rejected value, so a row with two bad values counts twice, and
 * file-level warnings such as an unknown column count too). */
typedef void (*as_spool_taken_cb)(void *arg, const char *name, size_t events, size_t errors);

typedef struct {
    uint64_t scan_ms;   /* periodic rescan (0: 1000) */
    uint64_t stable_ms; /* a file is complete when its size and mtime stood still this long
                           (0: 300) */
} as_spool_opts_t;

/* Starts watching dir (created if missing, with dir/done) on loop; files are read by reader and
 * committed to ob (borrowed). opts may be NULL. dir and dir/done are opened once as folders
 * without following a link (O_DIRECTORY|O_NOFOLLOW) and every later access is relative to those
 * descriptors; anything in the spool that is not a regular file (a link, folder, pipe, device) is
 * refused — logged once, counted as AS_REFUSE_SPOOL_NOT_REGULAR, left where it is, never opened.
 * Returns NULL with *err set on failure (-ELOOP or -ENOTDIR: dir or dir/done is a link or not a
 * folder). */
as_spool_t *as_spool_new(uv_loop_t *loop, const char *dir, as_outbox_t *ob,
                         as_spool_reader_fn reader, void *reader_arg, const as_spool_opts_t *opts,
                         int *err);

/* Sets the callback for files taken. */
void as_spool_on_taken(as_spool_t *sp, as_spool_taken_cb cb, void *arg);

/* Stops taking input: no new file is started; a file being read is not committed (it stays in
 * the spool for the next run), so the outbox may be closed right after this call. Memory is freed
 * once the handles are closed and that read is over: run the loop until it has no more work. Safe
 * on NULL and twice. */
void as_spool_destroy(as_spool_t **self_p);

/* Files taken so far in this run, and files waiting (seen, not yet taken). */
uint64_t as_spool_taken(const as_spool_t *sp);

/* Writes the errors of r as CSV (UTF-8 with BOM: row, column, value, reason_zh, reason_en; every
 * text cell through common/csvout.h, so a formula is neutralised) as name in the folder dirfd,
 * atomically: name.tmp is created with O_EXCL|O_NOFOLLOW (a leftover or planted name.tmp is
 * unlinked first — the link itself, never what it points to), then renamed with renameat.
 * Returns 0 or -errno. Exposed for tests. */
int as_spool_write_errors(const as_spool_result_t *r, int dirfd, const char *name);

/* Appends one line (row, "", value, reasons) to done/SOURCE_FILE.errors.csv, created with its
 * header when new; opened relative to done/'s descriptor without following a link (a link there
 * is refused and counted). source_file must be a plain name. Returns 0, AS_E_INVALID for a name
 * that is not plain, or -errno. */
int as_spool_append_error(as_spool_t *sp, const char *source_file, uint32_t row, const char *value,
                          const char *reason_zh, const char *reason_en);

/* Test hook: when set, called on the worker thread with the file's name just before the spool
 * opens it (a test swaps the file for a link there, to show it is opened once, never followed). */
extern void (*as_spool_before_open_hook)(const char *name);

#endif
