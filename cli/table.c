/* table: aligned text tables with CJK-aware widths. */
#include "table.h"
#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct as_table_s {
    size_t ncols;
    bool *right;
    char **cells; /* rows × ncols */
    size_t nrows, cap;
};

size_t as_table_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int len;
        if (*p < 0x80) {
            cp = *p;
            len = 1;
        } else if ((*p & 0xE0) == 0xC0) {
            cp = *p & 0x1F;
            len = 2;
        } else if ((*p & 0xF0) == 0xE0) {
            cp = *p & 0x0F;
            len = 3;
        } else {
            cp = *p & 0x07;
            len = 4;
        }
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                len = i;
                break;
            }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += len;
        /* East Asian wide: CJK, Hangul, full-width forms and punctuation */
        bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                    (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                    (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                    (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
        w += wide ? 2 : 1;
    }
    return w;
}

as_table_t *as_table_new(size_t ncols, const bool *right)
{
    as_table_t *t = calloc(1, sizeof *t);
    if (!t || !(t->right = calloc(ncols, sizeof(bool)))) {
        free(t);
        return NULL;
    }
    t->ncols = ncols;
    if (right)
        memcpy(t->right, right, ncols * sizeof(bool));
    return t;
}

int as_table_add(as_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return AS_E_NOMEM;
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *d = strdup(cells[i] ? cells[i] : "");
        if (!d) {
            for (size_t j = 0; j < i; j++)
                free(t->cells[t->nrows * t->ncols + j]);
            return AS_E_NOMEM;
        }
        t->cells[t->nrows * t->ncols + i] = d;
    }
    t->nrows++;
    return 0;
}

void as_table_print(const as_table_t *t, FILE *f)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w);
    if (!w)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t x = as_table_width(t->cells[r * t->ncols + c]);
            if (x > w[c])
                w[c] = x;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t pad = w[c] - as_table_width(s);
            if (c)
                fputs("  ", f);
            if (t->right[c])
                fprintf(f, "%*s%s", (int)pad, "", s);
            else if (c + 1 < t->ncols)
                fprintf(f, "%s%*s", s, (int)pad, "");
            else
                fputs(s, f);
        }
        fputc('\n', f);
        if (r == 0) {
            size_t total = 0;
            for (size_t c = 0; c < t->ncols; c++)
                total += w[c] + (c ? 2 : 0);
            for (size_t i = 0; i < total; i++)
                fputc('-', f);
            fputc('\n', f);
        }
    }
    free(w);
}

void as_table_destroy(as_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_table_t *t = *self_p;
    *self_p = NULL;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t);
}
