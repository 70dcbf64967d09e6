/* measures_json: as_measures_t and totals answers as JSON (one definition of the names). */
#include "measures_json.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row's text as a JSON string. Names are cut to fit their field byte by byte, which may split
 * a character at the end; jansson refuses invalid UTF-8 (json_string returns NULL and the field
 * would silently be missing), so a split character is dropped. NULL if the text is invalid
 * elsewhere. */
static json_t *s_text(const char *s)
{
    size_t n = strlen(s);
    json_t *j = json_stringn(s, n);
    for (int cut = 0; !j && cut < 3 && n > 0; cut++)
        j = json_stringn(s, --n);
    return j;
}

int as_measures_add_json(json_t *obj, const as_measures_t *m)
{
    struct {
        const char *name;
        json_t *v;
    } f[] = {
        {"activities", json_integer((json_int_t)m->activities)},
        {"organisations", json_integer((json_int_t)m->organisations)},
        {"beneficiaries", json_integer((json_int_t)m->beneficiaries)},
        {"registered_poor", json_integer((json_int_t)m->registered_poor)},
        {"funds_fen", json_integer((json_int_t)m->funds_fen)},
        {"goods_fen", json_integer((json_int_t)m->goods_fen)},
        {"volunteers", json_integer((json_int_t)m->volunteers)},
        {"volunteer_hours", json_real((double)m->volunteer_tenths / 10.0)},
        {"social_workers", json_integer((json_int_t)m->social_workers)},
        {"persons_lifted", json_integer((json_int_t)m->persons_lifted)},
        {"jobs", json_integer((json_int_t)m->jobs)},
        {"trainees", json_integer((json_int_t)m->trainees)},
        {"income_increase_fen", json_integer((json_int_t)m->income_fen)},
        {"villages", json_integer((json_int_t)m->villages)},
        {"deep_poverty_villages", json_integer((json_int_t)m->deep_villages)},
        {"counties", json_integer((json_int_t)m->counties)},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        /* json_object_set_new steals the value even on failure */
        if (!f[i].v || json_object_set_new(obj, f[i].name, f[i].v) != 0)
            rc = AS_E_NOMEM;
    }
    return rc;
}

json_t *as_measures_to_json(const as_measures_t *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (as_measures_add_json(o, m) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *as_totals_to_json(uint32_t year, as_dim_t by, const as_totals_row_t *rows, size_t nrows,
                          const as_measures_t *total)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    if (!o || !arr)
        goto fail;
    if (json_object_set_new(o, "year", json_integer(year)) != 0 ||
        json_object_set_new(o, "by", json_string(as_dim_name(by))) != 0)
        goto fail;
    for (size_t i = 0; i < nrows; i++) {
        json_t *r = json_object();
        if (!r)
            goto fail;
        json_t *key = s_text(rows[i].key);
        json_t *name = key && rows[i].name[0] ? s_text(rows[i].name) : NULL;
        if (json_object_set_new(r, "key", key) != 0 ||
            json_object_set_new(r, "name", name ? name : s_text(rows[i].key)) != 0 ||
            as_measures_add_json(r, &rows[i].m) != 0) {
            json_decref(r);
            goto fail;
        }
        if (json_array_append_new(arr, r) != 0) /* r is released even on failure */
            goto fail;
    }
    if (json_object_set_new(o, "rows", arr) != 0) {
        arr = NULL;
        goto fail;
    }
    arr = NULL;
    json_t *t = as_measures_to_json(total);
    if (!t || json_object_set_new(o, "total", t) != 0)
        goto fail;
    return o;
fail:
    json_decref(arr);
    json_decref(o);
    return NULL;
}

/* ---- the totals answer as text, without a tree --------------------------------------------- */

typedef as_jtext_t s_out_t;

static bool s_room(s_out_t *o, size_t more)
{
    if (o->failed)
        return false;
    if (o->n + more + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->n + more + 1)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->failed = true;
        return false;
    }
    o->p = p;
    o->cap = cap;
    return true;
}

static void s_put(s_out_t *o, const char *s, size_t n)
{
    if (!s_room(o, n))
        return;
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

#define S_PUT_LIT(o, lit) s_put(o, lit, sizeof(lit) - 1)

/* A json_int_t as jansson prints it ("%lld"). */
static void s_put_int(s_out_t *o, json_int_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *d = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        *--d = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--d = '-';
    s_put(o, d, (size_t)(e - d));
}

/* volunteer_hours as jansson prints tenths / 10.0 with JSON_REAL_PRECISION(15): below 10^15
 * tenths that is the exact decimal with its one digit ("12.3", "12.0"); above, jansson's own. */
static void s_put_hours(s_out_t *o, uint64_t tenths)
{
    if (tenths < 1000000000000000ull) {
        s_put_int(o, (json_int_t)(tenths / 10));
        char frac[2] = {'.', (char)('0' + tenths % 10)};
        s_put(o, frac, 2);
        return;
    }
    json_t *r = json_real((double)tenths / 10.0);
    char *s = r ? json_dumps(r, AS_JSON_DUMP_FLAGS | JSON_ENCODE_ANY) : NULL;
    if (s)
        s_put(o, s, strlen(s));
    else
        o->failed = true;
    free(s);
    json_decref(r);
}

/* Length of the UTF-8 sequence starting s[0..n) as jansson accepts it (no overlong forms,
 * surrogates or code points above U+10FFFF), 0 when invalid. */
static size_t s_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned u = s[0];
    size_t len;
    uint32_t v;
    if (u < 0x80)
        return 1;
    if (u >= 0xC2 && u <= 0xDF)
        len = 2, v = u & 0x1F;
    else if (u >= 0xE0 && u <= 0xEF)
        len = 3, v = u & 0x0F;
    else if (u >= 0xF0 && u <= 0xF4)
        len = 4, v = u & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 2 && v < 0x80) ||
        (len == 3 && v < 0x800) || (len == 4 && v < 0x10000))
        return 0;
    return len;
}

static bool s_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = s_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* The length s_text would keep of s (a split last character dropped), -1 when invalid. */
static long s_text_len(const char *s)
{
    size_t n = strlen(s);
    if (s_utf8_valid(s, n))
        return (long)n;
    for (int cut = 0; cut < 3 && n > 0; cut++)
        if (s_utf8_valid(s, --n))
            return (long)n;
    return -1;
}

/* A JSON string as jansson's compact dump writes it: \\ \" and control characters escaped (\b \f
 * \n \r \t, else \u00XX), everything else, UTF-8 included, as it is. */
static void s_put_str(s_out_t *o, const char *s, size_t n)
{
    S_PUT_LIT(o, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        s_put(o, s + run, i - run);
        run = i + 1;
        char esc[8];
        const char *e = esc;
        switch (ch) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", ch);
        }
        s_put(o, e, strlen(e));
    }
    s_put(o, s + run, n - run);
    S_PUT_LIT(o, "\"");
}

static void s_put_measures(s_out_t *o, const as_measures_t *m)
{
    S_PUT_LIT(o, "\"activities\":");
    s_put_int(o, (json_int_t)m->activities);
    S_PUT_LIT(o, ",\"organisations\":");
    s_put_int(o, (json_int_t)m->organisations);
    S_PUT_LIT(o, ",\"beneficiaries\":");
    s_put_int(o, (json_int_t)m->beneficiaries);
    S_PUT_LIT(o, ",\"registered_poor\":");
    s_put_int(o, (json_int_t)m->registered_poor);
    S_PUT_LIT(o, ",\"funds_fen\":");
    s_put_int(o, (json_int_t)m->funds_fen);
    S_PUT_LIT(o, ",\"goods_fen\":");
    s_put_int(o, (json_int_t)m->goods_fen);
    S_PUT_LIT(o, ",\"volunteers\":");
    s_put_int(o, (json_int_t)m->volunteers);
    S_PUT_LIT(o, ",\"volunteer_hours\":");
    s_put_hours(o, m->volunteer_tenths);
    S_PUT_LIT(o, ",\"social_workers\":");
    s_put_int(o, (json_int_t)m->social_workers);
    S_PUT_LIT(o, ",\"persons_lifted\":");
    s_put_int(o, (json_int_t)m->persons_lifted);
    S_PUT_LIT(o, ",\"jobs\":");
    s_put_int(o, (json_int_t)m->jobs);
    S_PUT_LIT(o, ",\"trainees\":");
    s_put_int(o, (json_int_t)m->trainees);
    S_PUT_LIT(o, ",\"income_increase_fen\":");
    s_put_int(o, (json_int_t)m->income_fen);
    S_PUT_LIT(o, ",\"villages\":");
    s_put_int(o, (json_int_t)m->villages);
    S_PUT_LIT(o, ",\"deep_poverty_villages\":");
    s_put_int(o, (json_int_t)m->deep_villages);
    S_PUT_LIT(o, ",\"counties\":");
    s_put_int(o, (json_int_t)m->counties);
}

char *as_totals_json_text(uint32_t year, as_dim_t by, const as_totals_row_t *rows, size_t nrows,
                          const as_measures_t *total, size_t *len)
{
    s_out_t o = {0};
    s_room(&o, 600 * nrows + 600);
    S_PUT_LIT(&o, "{\"year\":");
    s_put_int(&o, (json_int_t)year);
    S_PUT_LIT(&o, ",\"by\":");
    const char *dim = as_dim_name(by);
    s_put_str(&o, dim, strlen(dim));
    S_PUT_LIT(&o, ",\"rows\":[");
    for (size_t i = 0; i < nrows && !o.failed; i++) {
        long kl = s_text_len(rows[i].key);
        long nl = rows[i].name[0] ? s_text_len(rows[i].name) : -1;
        if (kl < 0) {
            o.failed = true;
            break;
        }
        if (i)
            S_PUT_LIT(&o, ",");
        S_PUT_LIT(&o, "{\"key\":");
        s_put_str(&o, rows[i].key, (size_t)kl);
        S_PUT_LIT(&o, ",\"name\":");
        if (nl >= 0)
            s_put_str(&o, rows[i].name, (size_t)nl);
        else
            s_put_str(&o, rows[i].key, (size_t)kl);
        S_PUT_LIT(&o, ",");
        s_put_measures(&o, &rows[i].m);
        S_PUT_LIT(&o, "}");
    }
    S_PUT_LIT(&o, "],\"total\":{");
    s_put_measures(&o, total);
    S_PUT_LIT(&o, "}}");
    if (o.failed || !s_room(&o, 0)) {
        free(o.p);
        return NULL;
    }
    o.p[o.n] = '\0';
    *len = o.n;
    return o.p;
}

void as_jtext_raw(as_jtext_t *o, const char *s, size_t n)
{
    s_put(o, s, n);
}

void as_jtext_int(as_jtext_t *o, int64_t v)
{
    s_put_int(o, (json_int_t)v);
}

bool as_jtext_valid(const char *s)
{
    return s_utf8_valid(s, strlen(s));
}

void as_jtext_str(as_jtext_t *o, const char *s)
{
    s_put_str(o, s, strlen(s));
}

char *as_json_dumps(const json_t *j)
{
    return json_dumps(j, AS_JSON_DUMP_FLAGS);
}
