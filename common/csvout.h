/* csvout: the one CSV cell writer behind every CSV the product writes — RFC 4180 quoting, and
 * OWASP's neutralisation of text a spreadsheet would otherwise run as a formula. */
#ifndef AS_CSVOUT_H
#define AS_CSVOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Where a cell's bytes go: put(arg, p, n) appends n bytes. */
typedef void (*as_csv_put_cb)(void *arg, const char *p, size_t n);

/* True when a spreadsheet would read text s as a formula: it begins with '=', '+', '-', '@',
 * a tab or a carriage return (OWASP, "CSV Injection"). */
bool as_csv_is_formula(const char *s);

/* Writes the text cell s (UTF-8, from outside: names, notes, ids, quoted values). A cell that
 * as_csv_is_formula() is written quoted with a single quote in front ("'=1+1"), so that a
 * spreadsheet shows it as text; a cell holding ',', '"', CR or LF is quoted with '"' doubled;
 * anything else is written as it is. s NULL is the empty cell. */
void as_csv_text_put(const char *s, as_csv_put_cb put, void *arg);

/* Writes a number the product formatted itself ("-12.50", "3", "4.5%"): as it is when it has
 * that shape (an optional '-', digits, an optional '.' and digits, an optional '%'), so that a
 * negative amount stays a number a spreadsheet adds up; anything else is written as text, with
 * as_csv_text_put()'s rules. */
void as_csv_num_put(const char *s, as_csv_put_cb put, void *arg);

/* The same, to a stdio stream. Return 0, or -1 when the stream is in error (ferror). */
int as_csv_text(FILE *f, const char *s);
int as_csv_num(FILE *f, const char *s);

#endif
