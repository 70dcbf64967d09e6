/* table: aligned text tables for people — display width aware (CJK characters take two
 * columns), text left-aligned, numbers right-aligned. */
#ifndef AS_TABLE_H
#define AS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct as_table_s as_table_t;

/* A table with ncols columns; right[i] true aligns column i to the right. NULL when out of
 * memory. */
as_table_t *as_table_new(size_t ncols, const bool *right);

/* Appends a row of ncols cells (copied). Returns 0 or AS_E_NOMEM. */
int as_table_add(as_table_t *t, const char *const *cells);

/* Prints the rows, the first one as the header followed by a rule. */
void as_table_print(const as_table_t *t, FILE *f);

void as_table_destroy(as_table_t **self_p);

/* Display width of a UTF-8 string in terminal columns. */
size_t as_table_width(const char *s);

#endif
