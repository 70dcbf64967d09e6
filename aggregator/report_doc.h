/* report_doc: a report as tables of typed cells, rendered as UTF-8 CSV with BOM (one file per
 * table), report.json and one printable Chinese HTML page (A4, a page per part, self-contained). */
#ifndef AS_REPORT_DOC_H
#define AS_REPORT_DOC_H

#include "archive.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct as_doc_s as_doc_t;
typedef struct as_doc_table_s as_doc_table_t;

typedef enum {
    AS_CELL_TEXT = 0, /* text */
    AS_CELL_INT,      /* integer */
    AS_CELL_FEN,      /* money: fen in JSON, yuan with two decimals in CSV and HTML */
    AS_CELL_TENTHS,   /* one decimal (volunteer hours) */
    AS_CELL_PERMILLE, /* a rate in ‰, shown as a percentage with one decimal */
} as_cell_kind_t;

/* A new document: title in Chinese, year, final or draft, the moment it describes (Unix ms,
 * printed in +08:00). NULL when out of memory. */
as_doc_t *as_doc_new(const char *title, uint32_t year, bool final, uint64_t generated_ms);

/* Safe on NULL and twice. */
void as_doc_destroy(as_doc_t **self_p);

/* A note printed under the title (HTML) and kept in the JSON ("notes"). */
void as_doc_note(as_doc_t *d, const char *text);

/* Starts a part (1…8) with its Chinese heading; tables added after it belong to it. */
void as_doc_part(as_doc_t *d, int part, const char *heading);

/* Adds a table: file is the CSV's name without ".csv" (also the JSON key), title its caption.
 * Borrowed by the document. NULL when out of memory (later calls on NULL are ignored). */
as_doc_table_t *as_doc_table(as_doc_t *d, const char *file, const char *title);

/* Adds a column: key (English, JSON), heading (Chinese, CSV and HTML), kind. */
void as_doc_col(as_doc_table_t *t, const char *key, const char *heading, as_cell_kind_t kind);

/* Starts a row, then fills its cells left to right. */
void as_doc_row(as_doc_table_t *t);
void as_doc_text(as_doc_table_t *t, const char *text);
void as_doc_int(as_doc_table_t *t, int64_t v);

/* Rows so far. */
size_t as_doc_rows(const as_doc_table_t *t);

/* Renders every table as PREFIX<file>.csv, then PREFIX report.json and PREFIX report.html,
 * appending to *files (grown with realloc; entries own their data). Returns 0 or AS_E_NOMEM. */
int as_doc_render(const as_doc_t *d, const char *prefix, as_archive_file_t **files, size_t *n);

#endif
