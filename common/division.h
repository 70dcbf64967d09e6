/* division: Jiangxi's GB/T 2260 division codes (cities, county-level divisions, townships, the
 * 25 former poverty counties, retired codes), read from the reference data the binaries carry. */
#ifndef AS_DIVISION_H
#define AS_DIVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t code;     /* e.g. 360730 */
    const char *name;  /* UTF-8, e.g. 宁都县 */
    uint32_t parent;   /* city code for a county (360700), 360000 for a city */
    bool county_level; /* true for county-level divisions, false for cities */
    bool poverty;      /* one of the 25 former poverty counties */
} as_division_t;

/* Loads the tables from the embedded data on first use (thread-safe). Returns 0 or AS_E_PARSE
 * when the embedded data is broken (a build error, never a user error). */
int as_division_init(void);

/* The city or county-level division with this current code, or NULL. */
const as_division_t *as_division_find(uint32_t code);

/* True when code is a current county-level division of the province. */
bool as_division_is_county(uint32_t code);

/* The city code of a county (360730 → 360700), or 0 when unknown. */
uint32_t as_division_city_of(uint32_t county);

/* The current code for a code that may have been retired (360782 → 360703); the code itself
 * when current; 0 when never a division of the province, or when it was abolished without a
 * successor in the data (360105 湾里区). */
uint32_t as_division_current(uint32_t code);

/* True when code is, or once was, a city or county-level division of the province (or the
 * province itself): a credit code's characters 3-8 may hold any of these. */
bool as_division_was_division(uint32_t code);

/* True when the 9-digit township code (county + 3) is in the 2020 township table. */
bool as_division_township_exists(uint32_t county, unsigned township3);

/* All county-level divisions, sorted by code; *n receives their count. Borrowed. */
const as_division_t *as_division_counties(size_t *n);

/* All cities (prefecture level), sorted by code. Borrowed. */
const as_division_t *as_division_cities(size_t *n);

#endif
