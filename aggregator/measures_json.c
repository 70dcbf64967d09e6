/* measures_json: as_measures_t and totals answers as JSON (one definition of the names). */
#include "measures_json.h"
#include "err.h"

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
        json_t *name = rows[i].name[0] ? s_text(rows[i].name) : NULL;
        if (json_object_set_new(r, "key", s_text(rows[i].key)) != 0 ||
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

char *as_json_dumps(const json_t *j)
{
    return json_dumps(j, AS_JSON_DUMP_FLAGS);
}
