/* gen: seeded, deterministic, realistic sample activity data for given counties, as the CSV an
 * office's Excel would export (Chinese headers, UTF-8 with BOM, CRLF), with N deliberately bad
 * rows on request. */
#ifndef AS_GEN_H
#define AS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const uint32_t *counties; /* county-level codes of the province, at least one */
    size_t ncounties;
    uint64_t events; /* data rows to write, bad ones included */
    unsigned year;   /* activity year; not after today's */
    uint64_t seed;   /* same seed, same options, same day → same bytes */
    uint64_t bad;    /* rows made invalid on purpose (≤ events), one fault each */
    bool sorted;     /* rows in date order (else in random order) */
    uint32_t today;  /* yyyymmdd; 0 = as_today_cst() */
} as_gen_opts_t;

/* Writes the header and o->events rows to out. Good rows pass as_event_from_row() for their
 * county; exactly o->bad rows, at seeded positions, fail it with one varied fault each (wrong
 * check character, future date, three decimals, registered_poor > beneficiaries, unknown area,
 * village of another county, mobile number or resident ID in the note, county outside the
 * province, negative count). Returns 0; AS_E_INVALID with a message in errbuf (may be NULL) for
 * bad options; -errno when writing fails. */
int as_gen_write(FILE *out, const as_gen_opts_t *o, char *errbuf, size_t errlen);

#endif
