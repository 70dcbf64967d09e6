/* report_doc: report tables and their CSV, JSON and HTML renderings. */
#include "report_doc.h"
#include "csvout.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *key, *heading;
    as_cell_kind_t kind;
} s_col_t;

typedef struct {
    char *text; /* for text cells */
    int64_t v;
} s_cell_t;

struct as_doc_table_s {
    int part;    /* part number (1…8), as in the JSON */
    size_t sect; /* the as_doc_part entry it was added under (a number may have two) */
    char *file, *title;
    s_col_t *cols;
    size_t ncols;
    s_cell_t *cells; /* rows × ncols */
    size_t nrows, ncells, cap;
};

typedef struct {
    int part;
    char *heading;
} s_part_t;

struct as_doc_s {
    char *title;
    uint32_t year;
    bool final;
    uint64_t generated_ms;
    char **notes;
    size_t nnotes;
    s_part_t parts[16];
    size_t nparts;
    as_doc_table_t **tables;
    size_t ntables;
    bool oom;
};

as_doc_t *as_doc_new(const char *title, uint32_t year, bool final, uint64_t generated_ms)
{
    as_doc_t *d = calloc(1, sizeof *d);
    if (!d || !(d->title = strdup(title))) {
        free(d);
        return NULL;
    }
    d->year = year;
    d->final = final;
    d->generated_ms = generated_ms;
    return d;
}

void as_doc_destroy(as_doc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_doc_t *d = *self_p;
    *self_p = NULL;
    for (size_t i = 0; i < d->ntables; i++) {
        as_doc_table_t *t = d->tables[i];
        for (size_t c = 0; c < t->ncols; c++) {
            free(t->cols[c].key);
            free(t->cols[c].heading);
        }
        for (size_t c = 0; c < t->ncells; c++)
            free(t->cells[c].text);
        free(t->cols);
        free(t->cells);
        free(t->file);
        free(t->title);
        free(t);
    }
    for (size_t i = 0; i < d->nparts; i++)
        free(d->parts[i].heading);
    for (size_t i = 0; i < d->nnotes; i++)
        free(d->notes[i]);
    free(d->notes);
    free(d->tables);
    free(d->title);
    free(d);
}

void as_doc_note(as_doc_t *d, const char *text)
{
    char **n = realloc(d->notes, (d->nnotes + 1) * sizeof *n);
    if (!n || !(n[d->nnotes] = strdup(text))) {
        d->oom = true;
        if (n)
            d->notes = n;
        return;
    }
    d->notes = n;
    d->nnotes++;
}

void as_doc_part(as_doc_t *d, int part, const char *heading)
{
    if (d->nparts == sizeof d->parts / sizeof d->parts[0])
        return;
    d->parts[d->nparts].part = part;
    if (!(d->parts[d->nparts].heading = strdup(heading)))
        d->oom = true;
    else
        d->nparts++;
}

as_doc_table_t *as_doc_table(as_doc_t *d, const char *file, const char *title)
{
    as_doc_table_t **ts = realloc(d->tables, (d->ntables + 1) * sizeof *ts);
    as_doc_table_t *t = calloc(1, sizeof *t);
    if (ts)
        d->tables = ts;
    if (!ts || !t || !(t->file = strdup(file)) || !(t->title = strdup(title))) {
        if (t)
            free(t->file);
        free(t);
        d->oom = true;
        return NULL;
    }
    t->part = d->nparts ? d->parts[d->nparts - 1].part : 0;
    t->sect = d->nparts ? d->nparts - 1 : SIZE_MAX;
    d->tables[d->ntables++] = t;
    return t;
}

void as_doc_col(as_doc_table_t *t, const char *key, const char *heading, as_cell_kind_t kind)
{
    if (!t)
        return;
    s_col_t *c = realloc(t->cols, (t->ncols + 1) * sizeof *c);
    if (!c)
        return;
    t->cols = c;
    c[t->ncols].key = strdup(key);
    c[t->ncols].heading = strdup(heading);
    c[t->ncols].kind = kind;
    t->ncols++;
}

void as_doc_row(as_doc_table_t *t)
{
    if (!t)
        return;
    /* pad the previous row, then reserve a new one */
    while (t->ncells < t->nrows * t->ncols)
        as_doc_int(t, 0);
    t->nrows++;
}

static s_cell_t *s_next(as_doc_table_t *t)
{
    if (!t || t->ncells >= t->nrows * t->ncols)
        return NULL;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        s_cell_t *c = realloc(t->cells, cap * sizeof *c);
        if (!c)
            return NULL;
        t->cells = c;
        t->cap = cap;
    }
    s_cell_t *c = &t->cells[t->ncells++];
    memset(c, 0, sizeof *c);
    return c;
}

void as_doc_text(as_doc_table_t *t, const char *text)
{
    s_cell_t *c = s_next(t);
    if (c)
        c->text = strdup(text ? text : "");
}

void as_doc_int(as_doc_table_t *t, int64_t v)
{
    s_cell_t *c = s_next(t);
    if (c)
        c->v = v;
}

size_t as_doc_rows(const as_doc_table_t *t)
{
    return t ? t->nrows : 0;
}

/* ---- output buffer ------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static void s_printf(s_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= 0)
        s_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Decimal digits of a, right-aligned ending at end; returns the first. */
static char *s_digits(char *end, uint64_t a)
{
    do
        *--end = (char)('0' + a % 10);
    while (a /= 10);
    return end;
}

/* A number as people read it: yuan with two decimals, one decimal, percent, or integer (no
 * printf: a report formats a few million numbers). out must hold 32 bytes. */
static void s_human(char *out, size_t cap, as_cell_kind_t kind, int64_t v)
{
    char tmp[32], *end = tmp + sizeof tmp, *p = end;
    uint64_t a = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    if (kind == AS_CELL_PERMILLE)
        *--p = '%';
    if (kind == AS_CELL_FEN) {
        *--p = (char)('0' + a % 10);
        *--p = (char)('0' + a / 10 % 10);
        *--p = '.';
        a /= 100;
    } else if (kind == AS_CELL_TENTHS || kind == AS_CELL_PERMILLE) {
        *--p = (char)('0' + a % 10);
        *--p = '.';
        a /= 10;
    }
    p = s_digits(p, a);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(end - p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* A signed integer. */
static void s_put_int(s_buf_t *b, int64_t v)
{
    char tmp[24], *end = tmp + sizeof tmp;
    char *p = s_digits(end, v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    s_put(b, p, (size_t)(end - p));
}

static int s_emit(as_archive_file_t **files, size_t *n, const char *prefix, const char *name,
                  s_buf_t *b)
{
    if (b->oom) {
        free(b->p);
        return AS_E_NOMEM;
    }
    as_archive_file_t *f = realloc(*files, (*n + 1) * sizeof *f);
    if (!f) {
        free(b->p);
        return AS_E_NOMEM;
    }
    *files = f;
    f = &f[*n];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s%s", prefix, name);
    f->data = (uint8_t *)(b->p ? b->p : strdup(""));
    f->len = b->n;
    (*n)++;
    return 0;
}

/* ---- CSV ----------------------------------------------------------------------------------- */

static void s_csv_put(void *arg, const char *p, size_t n)
{
    s_put(arg, p, n);
}

/* Text through the shared writer: quoted, and a formula neutralised (docs/report.md). */
static void s_csv_text(s_buf_t *b, const char *s)
{
    as_csv_text_put(s, s_csv_put, b);
}

static void s_csv(const as_doc_table_t *t, s_buf_t *b)
{
    s_puts(b, "\xEF\xBB\xBF");
    for (size_t c = 0; c < t->ncols; c++) {
        if (c)
            s_puts(b, ",");
        s_csv_text(b, t->cols[c].heading);
    }
    s_puts(b, "\r\n");
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t i = r * t->ncols + c;
            if (c)
                s_puts(b, ",");
            if (i >= t->ncells)
                continue;
            if (t->cols[c].kind == AS_CELL_TEXT) {
                s_csv_text(b, t->cells[i].text ? t->cells[i].text : "");
            } else {
                char num[40];
                s_human(num, sizeof num, t->cols[c].kind, t->cells[i].v);
                as_csv_num_put(num, s_csv_put, b); /* our own number: stays a number */
            }
        }
        s_puts(b, "\r\n");
    }
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void s_json_str(s_buf_t *b, const char *s)
{
    s_puts(b, "\"");
    for (;;) {
        const char *run = s;
        while ((unsigned char)*s >= 0x20 && *s != '"' && *s != '\\')
            s++;
        s_put(b, run, (size_t)(s - run));
        if (!*s)
            break;
        unsigned char ch = (unsigned char)*s++;
        if (ch == '"' || ch == '\\') {
            char e[3] = {'\\', (char)ch, 0};
            s_puts(b, e);
        } else {
            s_printf(b, "\\u%04x", ch);
        }
    }
    s_puts(b, "\"");
}

static void s_json(const as_doc_t *d, s_buf_t *b)
{
    s_printf(b, "{\"year\":%u,\"final\":%s,\"generated_ms\":%llu,\"title\":", d->year,
             d->final ? "true" : "false", (unsigned long long)d->generated_ms);
    s_json_str(b, d->title);
    s_puts(b, ",\"notes\":[");
    for (size_t i = 0; i < d->nnotes; i++) {
        if (i)
            s_puts(b, ",");
        s_json_str(b, d->notes[i]);
    }
    s_puts(b, "],\"tables\":{");
    for (size_t i = 0; i < d->ntables; i++) {
        const as_doc_table_t *t = d->tables[i];
        if (i)
            s_puts(b, ",");
        s_puts(b, "\n");
        s_json_str(b, t->file);
        s_printf(b, ":{\"part\":%d,\"title\":", t->part);
        s_json_str(b, t->title);
        s_puts(b, ",\"columns\":[");
        for (size_t c = 0; c < t->ncols; c++) {
            if (c)
                s_puts(b, ",");
            s_json_str(b, t->cols[c].key);
        }
        s_puts(b, "],\"rows\":[");
        for (size_t r = 0; r < t->nrows; r++) {
            s_puts(b, r ? ",\n{" : "\n{");
            for (size_t c = 0; c < t->ncols; c++) {
                size_t k = r * t->ncols + c;
                if (c)
                    s_puts(b, ",");
                s_json_str(b, t->cols[c].key);
                s_puts(b, ":");
                int64_t v = k < t->ncells ? t->cells[k].v : 0;
                if (t->cols[c].kind == AS_CELL_TEXT)
                    s_json_str(b, k < t->ncells && t->cells[k].text ? t->cells[k].text : "");
                else if (t->cols[c].kind == AS_CELL_TENTHS || t->cols[c].kind == AS_CELL_PERMILLE) {
                    /* "v/10.|v%10|" as C divides: -15 → "-1.5"; -5 divides to 0, so the sign
                     * is written first: "-0.5" */
                    if (v < 0 && v > -10)
                        s_puts(b, "-");
                    s_put_int(b, v / 10);
                    char frac[2] = {'.', (char)('0' + llabs(v % 10))};
                    s_put(b, frac, 2);
                } else {
                    s_put_int(b, v);
                }
            }
            s_puts(b, "}");
        }
        s_puts(b, "]}");
    }
    s_puts(b, "}}\n");
}

/* ---- HTML ---------------------------------------------------------------------------------- */

static void s_html_text(s_buf_t *b, const char *s)
{
    for (;;) {
        size_t n = strcspn(s, "<>&\"");
        s_put(b, s, n);
        s += n;
        if (!*s)
            break;
        s_puts(b, *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : "&quot;");
        s++;
    }
}

static void s_html_table(const as_doc_table_t *t, s_buf_t *b)
{
    s_puts(b, "<table>\n<caption>");
    s_html_text(b, t->title);
    s_puts(b, "</caption>\n<thead><tr>");
    for (size_t c = 0; c < t->ncols; c++) {
        s_puts(b, "<th>");
        s_html_text(b, t->cols[c].heading);
        s_puts(b, "</th>");
    }
    s_puts(b, "</tr></thead>\n<tbody>\n");
    if (t->nrows == 0)
        s_printf(b, "<tr><td colspan=\"%zu\">（无）</td></tr>\n", t->ncols);
    for (size_t r = 0; r < t->nrows; r++) {
        s_puts(b, "<tr>");
        for (size_t c = 0; c < t->ncols; c++) {
            size_t k = r * t->ncols + c;
            if (t->cols[c].kind == AS_CELL_TEXT) {
                s_puts(b, "<td>");
                s_html_text(b, k < t->ncells && t->cells[k].text ? t->cells[k].text : "");
            } else {
                char num[40];
                s_human(num, sizeof num, t->cols[c].kind, k < t->ncells ? t->cells[k].v : 0);
                s_puts(b, "<td class=\"n\">");
                s_puts(b, num);
            }
            s_puts(b, "</td>");
        }
        s_puts(b, "</tr>\n");
    }
    s_puts(b, "</tbody></table>\n");
}

static const char s_style[] =
    "@page { size: A4 landscape; margin: 12mm; }\n"
    "body { font-family: \"Noto Sans CJK SC\", \"Noto Serif CJK SC\", \"WenQuanYi Micro Hei\", "
    "\"Source Han Sans SC\", sans-serif; font-size: 10pt; color: #000; }\n"
    "h1 { font-size: 18pt; text-align: center; margin: 0 0 4mm; }\n"
    "h2 { font-size: 13pt; border-bottom: 1px solid #000; margin: 0 0 3mm; }\n"
    "p.meta { text-align: center; margin: 0 0 2mm; }\n"
    "section.part { break-before: page; page-break-before: always; }\n"
    "section.part.first { break-before: auto; page-break-before: auto; }\n"
    "table { border-collapse: collapse; width: 100%; font-size: 7.5pt; margin: 0 0 4mm; }\n"
    "caption { font-weight: bold; text-align: left; padding: 1mm 0; }\n"
    "th, td { border: 0.5pt solid #555; padding: 0.6mm 1mm; }\n"
    "th { background: #eee; }\n"
    "td.n { text-align: right; white-space: nowrap; }\n"
    "thead { display: table-header-group; }\n"
    "tr { break-inside: avoid; page-break-inside: avoid; }\n";

static void s_html(const as_doc_t *d, s_buf_t *b)
{
    s_puts(b, "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    s_html_text(b, d->title);
    s_puts(b, "</title>\n<style>\n");
    s_puts(b, s_style);
    s_puts(b, "</style>\n</head>\n<body>\n<h1>");
    s_html_text(b, d->title);
    s_puts(b, "</h1>\n");
    time_t t = (time_t)(d->generated_ms / 1000) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    s_printf(b,
             "<p class=\"meta\">%u年度 · %s · 统计截至 %04d-%02d-%02d %02d:%02d（北京时间）</p>\n",
             d->year, d->final ? "正式报告（定稿）" : "草稿", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min);
    for (size_t i = 0; i < d->nnotes; i++) {
        s_puts(b, "<p class=\"meta\">");
        s_html_text(b, d->notes[i]);
        s_puts(b, "</p>\n");
    }
    for (size_t p = 0; p < d->nparts; p++) {
        s_printf(b, "<section class=\"part%s\" id=\"part%d\">\n<h2>", p == 0 ? " first" : "",
                 d->parts[p].part);
        s_html_text(b, d->parts[p].heading);
        s_puts(b, "</h2>\n");
        for (size_t i = 0; i < d->ntables; i++)
            if (d->tables[i]->sect == p)
                s_html_table(d->tables[i], b);
        s_puts(b, "</section>\n");
    }
    s_puts(b, "</body>\n</html>\n");
}

int as_doc_render(const as_doc_t *d, const char *prefix, as_archive_file_t **files, size_t *n)
{
    if (d->oom)
        return AS_E_NOMEM;
    int rc;
    for (size_t i = 0; i < d->ntables; i++) {
        s_buf_t b = {0};
        char name[96];
        s_csv(d->tables[i], &b);
        snprintf(name, sizeof name, "%s.csv", d->tables[i]->file);
        if ((rc = s_emit(files, n, prefix, name, &b)) != 0)
            return rc;
    }
    s_buf_t j = {0};
    s_json(d, &j);
    if ((rc = s_emit(files, n, prefix, "report.json", &j)) != 0)
        return rc;
    s_buf_t h = {0};
    s_html(d, &h);
    return s_emit(files, n, prefix, "report.html", &h);
}
