/* division: Jiangxi's GB/T 2260 division codes, read once from the embedded reference data
 * (data/jiangxi-divisions.csv, -townships-2020.csv, -poverty-counties.csv, -division-changes.csv).
 */
#include "division.h"
#include "err.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const char as_embedded_jiangxi_divisions[];
extern const char as_embedded_jiangxi_townships_2020[];
extern const char as_embedded_jiangxi_poverty_counties[];
extern const char as_embedded_jiangxi_division_changes[];

#define MAX_DIVISIONS 160
#define MAX_TOWNSHIPS 2048
#define MAX_CHANGES   32

static as_division_t s_counties[MAX_DIVISIONS], s_cities[32];
static size_t s_ncounties, s_ncities;
static uint32_t s_townships[MAX_TOWNSHIPS]; /* 9-digit codes, sorted */
static size_t s_ntownships;
static uint32_t s_changes[MAX_CHANGES][2]; /* old → new */
static size_t s_nchanges;
static char *s_names; /* one buffer holding every name */
static int s_init_rc = AS_E_PARSE;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

/* Splits the next CSV line of simple data (no quotes needed in the fields we read) into at most
 * max fields; returns the count, 0 at the end. Advances *p. Fields point into line (mutated). */
static int s_fields(char **p, char **f, int max)
{
    char *line = *p;
    if (!*line)
        return 0;
    char *end = strchr(line, '\n');
    if (end) {
        *end = 0;
        *p = end + 1;
    } else
        *p = line + strlen(line);
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r')
        line[n - 1] = 0;
    int k = 0;
    char *s = line;
    while (k < max) {
        f[k++] = s;
        char *c = strchr(s, ',');
        if (!c)
            break;
        *c = 0;
        s = c + 1;
    }
    return k;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int s_cmp_div(const void *a, const void *b)
{
    return s_cmp_u32(&((const as_division_t *)a)->code, &((const as_division_t *)b)->code);
}

static void s_load(void)
{
    size_t total = strlen(as_embedded_jiangxi_divisions) +
                   strlen(as_embedded_jiangxi_townships_2020) +
                   strlen(as_embedded_jiangxi_poverty_counties) +
                   strlen(as_embedded_jiangxi_division_changes) + 4;
    char *buf = malloc(total);
    if (!buf) {
        s_init_rc = AS_E_NOMEM;
        return;
    }
    s_names = buf;
    char *f[8], *p;

    /* divisions: code,name,level,parent_code */
    p = strcpy(buf, as_embedded_jiangxi_divisions);
    buf += strlen(buf) + 1;
    s_fields(&p, f, 8); /* header */
    int k;
    while ((k = s_fields(&p, f, 8)) > 0) {
        if (k < 4)
            goto bad;
        as_division_t d = {(uint32_t)strtoul(f[0], NULL, 10), f[1],
                           (uint32_t)strtoul(f[3], NULL, 10), strcmp(f[2], "county") == 0, false};
        if (d.county_level && s_ncounties < MAX_DIVISIONS)
            s_counties[s_ncounties++] = d;
        else if (!d.county_level && s_ncities < 32)
            s_cities[s_ncities++] = d;
        else
            goto bad;
    }
    qsort(s_counties, s_ncounties, sizeof *s_counties, s_cmp_div);
    qsort(s_cities, s_ncities, sizeof *s_cities, s_cmp_div);

    /* poverty counties: code_2020,... */
    p = strcpy(buf, as_embedded_jiangxi_poverty_counties);
    buf += strlen(buf) + 1;
    s_fields(&p, f, 8);
    size_t npoverty = 0;
    while ((k = s_fields(&p, f, 2)) > 0) {
        as_division_t key = {.code = (uint32_t)strtoul(f[0], NULL, 10)};
        as_division_t *d = bsearch(&key, s_counties, s_ncounties, sizeof key, s_cmp_div);
        if (!d)
            goto bad;
        d->poverty = true;
        npoverty++;
    }

    /* townships: code,name,county_code */
    p = strcpy(buf, as_embedded_jiangxi_townships_2020);
    buf += strlen(buf) + 1;
    s_fields(&p, f, 8);
    while ((k = s_fields(&p, f, 3)) > 0) {
        if (s_ntownships >= MAX_TOWNSHIPS)
            goto bad;
        s_townships[s_ntownships++] = (uint32_t)strtoul(f[0], NULL, 10);
    }
    qsort(s_townships, s_ntownships, sizeof *s_townships, s_cmp_u32);

    /* changes: old_code,old_name,new_code,... */
    p = strcpy(buf, as_embedded_jiangxi_division_changes);
    s_fields(&p, f, 8);
    while ((k = s_fields(&p, f, 4)) > 0) {
        if (k < 3 || s_nchanges >= MAX_CHANGES)
            goto bad;
        /* A new code (empty old_code) is already current; an abolished code (empty new_code,
         * e.g. 360105 湾里区) is kept with successor 0: it was a division, but names none now. */
        if (!*f[0])
            continue;
        s_changes[s_nchanges][0] = (uint32_t)strtoul(f[0], NULL, 10);
        s_changes[s_nchanges][1] = *f[2] ? (uint32_t)strtoul(f[2], NULL, 10) : 0;
        s_nchanges++;
    }
    if (s_ncities != 11 || s_ncounties != 100 || npoverty != 25 || s_ntownships < 1000)
        goto bad;
    s_init_rc = AS_OK;
    return;
bad:
    AS_ERROR("division",
             "the embedded reference data is malformed (a build error): %zu cities, "
             "%zu counties, %zu townships read",
             s_ncities, s_ncounties, s_ntownships);
    s_init_rc = AS_E_PARSE;
}

int as_division_init(void)
{
    pthread_once(&s_once, s_load);
    return s_init_rc;
}

const as_division_t *as_division_find(uint32_t code)
{
    if (as_division_init() != AS_OK)
        return NULL;
    as_division_t key = {.code = code};
    const as_division_t *d = bsearch(&key, s_counties, s_ncounties, sizeof key, s_cmp_div);
    if (!d)
        d = bsearch(&key, s_cities, s_ncities, sizeof key, s_cmp_div);
    return d;
}

bool as_division_is_county(uint32_t code)
{
    const as_division_t *d = as_division_find(code);
    return d && d->county_level;
}

uint32_t as_division_city_of(uint32_t county)
{
    const as_division_t *d = as_division_find(county);
    return d && d->county_level ? d->parent : 0;
}

uint32_t as_division_current(uint32_t code)
{
    /* Bounded: a chain of renames is short, and a cycle in the data must not hang us. */
    for (int hop = 0; hop < 8 && code; hop++) {
        if (as_division_find(code) || code == 360000)
            return code;
        size_t i = 0;
        while (i < s_nchanges && s_changes[i][0] != code)
            i++;
        if (i == s_nchanges)
            return 0;
        code = s_changes[i][1];
    }
    return 0;
}

bool as_division_was_division(uint32_t code)
{
    if (as_division_find(code) || code == 360000)
        return true;
    for (size_t i = 0; i < s_nchanges; i++)
        if (s_changes[i][0] == code)
            return true;
    return false;
}

bool as_division_township_exists(uint32_t county, unsigned township3)
{
    if (as_division_init() != AS_OK || township3 > 999)
        return false;
    uint32_t key = county * 1000 + township3;
    return bsearch(&key, s_townships, s_ntownships, sizeof key, s_cmp_u32) != NULL;
}

const as_division_t *as_division_counties(size_t *n)
{
    as_division_init();
    *n = s_ncounties;
    return s_counties;
}

const as_division_t *as_division_cities(size_t *n)
{
    as_division_init();
    *n = s_ncities;
    return s_cities;
}
