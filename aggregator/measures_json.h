/* measures_json: the measures and a totals answer as JSON, with the names of DESIGN.md; the one
 * place that turns as_measures_t into JSON, shared by the HTTP API and `aidstat query`. */
#ifndef AS_MEASURES_JSON_H
#define AS_MEASURES_JSON_H

#include "ledger.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for json_dumps that every aidstat JSON output uses: volunteer_hours is a real with one
 * decimal, and 15 significant digits print 12.3 as 12.3 (jansson's default 17 prints
 * 12.300000000000001). */
#define AS_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* The 16 measures as a new JSON object, in DESIGN.md order: activities, organisations,
 * beneficiaries, registered_poor, funds_fen, goods_fen, volunteers, volunteer_hours (one
 * decimal), social_workers, persons_lifted, jobs, trainees, income_increase_fen, villages,
 * deep_poverty_villages, counties. Returns a new reference, NULL when out of memory. */
json_t *as_measures_to_json(const as_measures_t *m);

/* Adds the measures to an existing object (after fields already there, e.g. key and name).
 * Returns 0 or AS_E_NOMEM. */
int as_measures_add_json(json_t *obj, const as_measures_t *m);

/* The answer of a totals query: {"year":Y,"by":DIM,"rows":[{"key":...,"name":...,MEASURES}],
 * "total":{MEASURES}}. Returns a new reference, NULL when out of memory. */
json_t *as_totals_to_json(uint32_t year, as_dim_t by, const as_totals_row_t *rows, size_t nrows,
                          const as_measures_t *total);

/* The same answer as as_totals_to_json followed by as_json_dumps, byte for byte, written straight
 * into one buffer (no JSON tree: the HTTP API answers on the loop thread, and building and
 * dumping a tree of 100 rows took about a millisecond there). Returns a malloc'd, NUL-terminated
 * string with its length in *len (caller frees), or NULL when out of memory or when a row's key
 * is not UTF-8 (as as_totals_to_json). */
char *as_totals_json_text(uint32_t year, as_dim_t by, const as_totals_row_t *rows, size_t nrows,
                          const as_measures_t *total, size_t *len);

/* JSON text written straight into a growing buffer, as jansson's compact dump (AS_JSON_DUMP_FLAGS)
 * writes it, for answers built often enough that a jansson tree costs too much. Start from
 * {0}; free(o.p) when done. Any allocation failure sets failed and makes the rest no-ops. */
typedef struct {
    char *p;
    size_t n, cap;
    bool failed;
} as_jtext_t;

/* Appends n bytes as they are (punctuation, keys already quoted). */
void as_jtext_raw(as_jtext_t *o, const char *s, size_t n);

/* Appends an integer as jansson prints a json_int_t. */
void as_jtext_int(as_jtext_t *o, int64_t v);

/* True when s is text jansson accepts in a string (valid UTF-8). */
bool as_jtext_valid(const char *s);

/* Appends s (NUL-terminated, valid UTF-8: check with as_jtext_valid) as a JSON string. */
void as_jtext_str(as_jtext_t *o, const char *s);

/* Serialises j with AS_JSON_DUMP_FLAGS. Returns a malloc'd string (caller frees) or NULL. */
char *as_json_dumps(const json_t *j);

#endif
