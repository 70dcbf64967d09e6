/* sheet: streaming spreadsheet reader — one big buffer of UTF-8 text (GB18030 converted as it is
 * read), records found with memchr, cells split and unquoted in place, no allocation per row. */
#include "sheet.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef BUF_INIT /* tests/fuzz builds this file with other sizes too (sheet_tiny.c, sheet_ref.c)   \
                  */
#define BUF_INIT   (4u << 20) /* text buffer; grows for longer records */
#define RAW_CHUNK  (1u << 20) /* GB18030 bytes converted at a time */
#define MIN_FREE   (1u << 20) /* free room wanted before a read */
#define UTF8_CHECK (4u << 20) /* bytes from the first non-ASCII one that decide the encoding */
#endif
#define RECORD_MAX (64u << 20) /* a longer record is a broken file (an unbalanced quote) */
#define WARN_MAX   64

struct as_sheet_s {
    int fd;      /* -1 when the file could not be opened */
    bool own_fd; /* opened here (closed by destroy), not the caller's */
    int status;  /* file-level error, final; 0 while readable */
    as_sheet_format_t format;
    as_sheet_encoding_t enc;
    iconv_t cd; /* GB18030 → UTF-8, (iconv_t)-1 until needed */
    char *raw;  /* GB18030 bytes waiting for conversion */
    size_t raw_len, raw_cap;
    char *buf;                  /* text; [pos, vpos) is checked UTF-8 the parser may read */
    size_t cap, pos, vpos, end; /* [vpos, end): read, not yet checked (undecided tail) */
    bool eof;                   /* the source is exhausted */
    uint64_t bytes;             /* input bytes read */
    bool bad_text;              /* the text holds invalid sequences: rows are checked */
    size_t line;                /* physical line of buf[pos] */
    size_t row_line;            /* line where the last row started */
    size_t rowno;               /* data rows so far */
    int *colmap;                /* CSV: header index → as_column_t, or -1 */
    size_t ncols;
    char **cells; /* CSV: the current record's cells */
    size_t *lens;
    size_t cells_cap;
    json_t *json;               /* NDJSON: the current object (its strings are the cells) */
    char num[AS_COL_COUNT][48]; /* NDJSON: numbers and booleans as text */
    as_field_error_t err;       /* the last error */
    as_field_error_t *warn;
    size_t nwarn;
    bool header_only_warned;
};

/* ---- messages ------------------------------------------------------------------------------- */

/* Copies at most dstlen-1 bytes of src[0..n) into dst without cutting a UTF-8 character. */
static void s_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static size_t s_utf8_prefix(const unsigned char *p, size_t n, bool *bad, bool *hi);

/* Replaces each byte of an invalid UTF-8 sequence in the NUL-terminated t by '?'. */
static void s_make_valid(char *t)
{
    size_t n = strlen(t), i = 0;
    while (i < n) {
        bool bad = false, hi = false;
        i += s_utf8_prefix((const unsigned char *)t + i, n - i, &bad, &hi);
        if (i < n)
            t[i++] = '?';
    }
}

static void s_note(as_field_error_t *e, const char *column, const char *value, size_t vlen,
                   const char *zh, const char *en)
{
    s_copy(e->column, sizeof e->column, column, strlen(column));
    s_copy(e->value, sizeof e->value, value ? value : "", value ? vlen : 0);
    s_make_valid(e->column);
    s_make_valid(e->value); /* errors are shown and written out: always valid text */
    s_copy(e->reason_zh, sizeof e->reason_zh, zh, strlen(zh));
    s_copy(e->reason_en, sizeof e->reason_en, en, strlen(en));
}

/* Sets the last error; for a file-level code also the final status. Returns code. */
static int s_error(as_sheet_t *s, int code, const char *value, const char *zh, const char *en)
{
    s_note(&s->err, "", value, value ? strlen(value) : 0, zh, en);
    if (code != AS_E_INVALID)
        s->status = code;
    return code;
}

static void s_warn(as_sheet_t *s, const char *column, const char *value, const char *zh,
                   const char *en)
{
    if (s->nwarn >= WARN_MAX)
        return;
    if (!s->warn && !(s->warn = calloc(WARN_MAX, sizeof *s->warn)))
        return;
    s_note(&s->warn[s->nwarn++], column, value, value ? strlen(value) : 0, zh, en);
}

/* ---- input: bytes → checked UTF-8 text ------------------------------------------------------ */

/* Length of the longest prefix of p[0..n) made of whole valid UTF-8 characters. *bad is set when
 * an invalid sequence (not merely a character cut at n) follows it; *hi when the prefix holds a
 * non-ASCII character. */
static size_t s_utf8_prefix(const unsigned char *p, size_t n, bool *bad, bool *hi)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi2 = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi2 = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi2 = 0x8F;
        } else {
            *bad = true;
            return i;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n)
                return i; /* cut at the end: complete it with the next read */
            unsigned b = p[i + j];
            if (j == 1 ? (b < lo || b > hi2) : (b & 0xC0) != 0x80) {
                *bad = true;
                return i;
            }
        }
        *hi = true;
        i += k + 1;
    }
    return n;
}

static size_t s_count_nl(const char *p, size_t n)
{
    size_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        k++;
    return k;
}

/* Counts, in p[0..n) read as UTF-8, the valid non-ASCII characters (*ok) and the invalid
 * sequences (a lead byte with the continuation bytes after it counts once); a character cut by
 * the end counts as invalid only when the input ends there (at_eof). Returns the invalid. */
static size_t s_utf8_bad_count(const unsigned char *p, size_t n, bool at_eof, size_t *ok)
{
    size_t bad_n = 0, i = 0;
    *ok = 0;
    while (i < n) {
        bool bad = false, hi = false;
        size_t k = s_utf8_prefix(p + i, n - i, &bad, &hi);
        for (size_t j = i; j < i + k; j++)
            *ok += p[j] >= 0xC0; /* one lead byte per valid character */
        i += k;
        if (bad) {
            bad_n++;
            i++;
            for (int c = 0; c < 3 && i < n && (p[i] & 0xC0) == 0x80; c++)
                i++;
        } else if (i < n) {
            bad_n += at_eof;
            break;
        }
    }
    return bad_n;
}

/* Invalid sequences in p[0..n) read as GB18030 (iconv, one byte skipped after each), or
 * (size_t)-1 when there is no converter. */
static size_t s_gb_bad_count(const char *p, size_t n, bool at_eof)
{
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1)
        return (size_t)-1;
    char out[4096];
    char *in = (char *)p;
    size_t inleft = n, bad_n = 0;
    while (inleft) {
        char *o = out;
        size_t oleft = sizeof out;
        if (iconv(cd, &in, &inleft, &o, &oleft) != (size_t)-1)
            break;
        if (errno == EILSEQ)
            bad_n++, in++, inleft--;
        else if (errno == EINVAL) {
            bad_n += at_eof;
            break;
        } else if (errno != E2BIG)
            break;
    }
    iconv_close(cd);
    return bad_n;
}

/* The encoding of a file that is not all ASCII, decided once on text[0..n) (from its first
 * non-ASCII byte, up to UTF8_CHECK bytes or its end): UTF-8, unless most of its non-ASCII
 * sequences are not UTF-8 and GB18030 reads it with fewer invalid sequences. So a UTF-8 file
 * with a stray byte stays UTF-8 (its bad rows are rejected one by one, never decoded as GB18030
 * garbage), and a GB18030 file — whose text is rarely valid UTF-8 by chance — is GB18030. */
static as_sheet_encoding_t s_detect(const char *text, size_t n, bool at_eof)
{
    size_t uok, ubad = s_utf8_bad_count((const unsigned char *)text, n, at_eof, &uok);
    if (ubad == 0 || uok > ubad)
        return AS_SHEET_UTF8;
    size_t gbad = s_gb_bad_count(text, n, at_eof);
    return gbad != (size_t)-1 && gbad < ubad ? AS_SHEET_GB18030 : AS_SHEET_UTF8;
}

static ssize_t s_read(as_sheet_t *s, char *p, size_t n)
{
    ssize_t r;
    do
        r = read(s->fd, p, n);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        s->eof = true;
    s->bytes += (uint64_t)r;
    return r;
}

/* Room for want more bytes after end (plus the spare byte a last cell's NUL may need). */
static int s_room(as_sheet_t *s, size_t want)
{
    if (s->cap - s->end >= want + 1)
        return 0;
    size_t cap = s->cap * 2;
    while (cap - s->end < want + 1)
        cap *= 2;
    char *b = realloc(s->buf, cap);
    if (!b)
        return s_error(s, AS_E_NOMEM, NULL, "内存不足", "out of memory");
    s->buf = b;
    s->cap = cap;
    return 0;
}

/* Makes more checked text available after vpos. Returns 1, 0 at the end of the input, or a
 * file-level error. Earlier text before pos may move. */
static int s_fill(as_sheet_t *s)
{
    if (s->status)
        return s->status;
    for (;;) {
        if (s->eof && s->raw_len == 0 && s->vpos == s->end)
            return 0;
        if (s->pos) {
            memmove(s->buf, s->buf + s->pos, s->end - s->pos);
            s->end -= s->pos, s->vpos -= s->pos, s->pos = 0;
        }
        if (s->end > RECORD_MAX)
            return s_error(s, AS_E_PARSE, NULL, "有一行超过64 MB（引号不成对？）",
                           "a row is longer than 64 MB (an unbalanced quote?)");
        size_t before = s->vpos;
        if (s->enc != AS_SHEET_GB18030) {
            if (s_room(s, MIN_FREE))
                return s->status;
            if (!s->eof) {
                ssize_t n = s_read(s, s->buf + s->end, s->cap - 1 - s->end);
                if (n < 0)
                    return s_error(s, (int)n, NULL, "文件读取失败", strerror((int)-n));
                s->end += (size_t)n;
            }
            if (s->enc == AS_SHEET_ASCII) {
                const char *b = s->buf + s->vpos;
                size_t a = 0, n = s->end - s->vpos;
                while (a < n && !((unsigned char)b[a] & 0x80))
                    a++;
                s->vpos += a;
                if (s->vpos == s->end) {
                    if (s->vpos > before)
                        return 1;
                    continue;
                }
                /* a non-ASCII byte: read the sample that decides, then decide once */
                if (!s->eof && s->end - s->vpos <= UTF8_CHECK) /* one byte more: ends there? */
                    continue;
                size_t len = s->end - s->vpos < UTF8_CHECK ? s->end - s->vpos : UTF8_CHECK;
                if (s_detect(s->buf + s->vpos, len, s->eof && len == s->end - s->vpos) ==
                    AS_SHEET_UTF8) {
                    s->enc = AS_SHEET_UTF8;
                } else {
                    s->cd = iconv_open("UTF-8", "GB18030");
                    if (s->cd == (iconv_t)-1)
                        return s_error(s, AS_E_ENCODING, NULL, "系统不支持GB18030转换",
                                       "GB18030 conversion is not available");
                    n = s->end - s->vpos;
                    s->raw_cap = n > RAW_CHUNK ? n : RAW_CHUNK;
                    if (!(s->raw = malloc(s->raw_cap)))
                        return s_error(s, AS_E_NOMEM, NULL, "内存不足", "out of memory");
                    memcpy(s->raw, s->buf + s->vpos, n);
                    s->raw_len = n;
                    s->end = s->vpos;
                    s->enc = AS_SHEET_GB18030;
                    continue;
                }
            }
            /* UTF-8: an invalid sequence stays in the text, and the row holding it is
             * rejected (s_check_row); it never makes the whole file unreadable */
            for (;;) {
                bool bad = false, hi = false;
                s->vpos += s_utf8_prefix((const unsigned char *)s->buf + s->vpos, s->end - s->vpos,
                                         &bad, &hi);
                if (bad) {
                    s->vpos++;
                    s->bad_text = true;
                    continue;
                }
                if (s->vpos < s->end && s->eof) { /* a character cut by the end of the file */
                    s->vpos = s->end;
                    s->bad_text = true;
                }
                break;
            }
        } else {
            if (!s->eof && s->raw_len < s->raw_cap) {
                ssize_t n = s_read(s, s->raw + s->raw_len, s->raw_cap - s->raw_len);
                if (n < 0)
                    return s_error(s, (int)n, NULL, "文件读取失败", strerror((int)-n));
                s->raw_len += (size_t)n;
            }
            if (s_room(s, 2 * s->raw_len + 4))
                return s->status;
            char *in = s->raw, *out = s->buf + s->end;
            size_t inleft = s->raw_len, outleft = s->cap - 1 - s->end;
            for (;;) {
                size_t r = iconv(s->cd, &in, &inleft, &out, &outleft);
                int e = errno;
                if (r != (size_t)-1 || !outleft || !(e == EILSEQ || (e == EINVAL && s->eof)))
                    break;
                /* not GB18030: one byte becomes 0xFF, never valid UTF-8, so the row holding
                 * it is rejected (s_check_row) and the rest of the file is read on */
                *out++ = (char)0xFF;
                outleft--;
                in++;
                inleft--;
                s->bad_text = true;
            }
            s->end = (size_t)(out - s->buf);
            memmove(s->raw, in, inleft);
            s->raw_len = inleft;
            s->vpos = s->end;
        }
        if (s->vpos > before)
            return 1;
    }
}

/* ---- records -------------------------------------------------------------------------------- */

/* Finds and consumes the next line (CSV: the next record, newlines inside quotes included).
 * start and len give it without its newline; *quoted says it holds a quote, *open that a quote is
 * still open at the end of the file. Returns 1, 0 at the end, or a file-level error. */
static int s_record(as_sheet_t *s, bool csv, char **start, size_t *len, bool *quoted, bool *open)
{
    size_t off = 0;
    bool inq = false;
    *quoted = false;
    for (;;) {
        char *b = s->buf + s->pos, *e = s->buf + s->vpos, *p = b + off, *nl = NULL;
        while (p < e) {
            if (!inq) {
                char *n = memchr(p, '\n', (size_t)(e - p));
                char *q = csv ? memchr(p, '"', (size_t)((n ? n : e) - p)) : NULL;
                if (!q) {
                    nl = n;
                    p = n ? n : e;
                    break;
                }
                inq = *quoted = true;
                p = q + 1;
            } else {
                char *q = memchr(p, '"', (size_t)(e - p));
                if (!q) {
                    p = e;
                    break;
                }
                inq = false;
                p = q + 1;
            }
        }
        if (nl) {
            *start = b;
            *len = (size_t)(nl - b);
            s->pos += *len + 1;
            *open = false;
            return 1;
        }
        off = (size_t)(p - b);
        int r = s_fill(s);
        if (r < 0)
            return r;
        if (r == 0) {
            b = s->buf + s->pos;
            *start = b;
            *len = s->vpos - s->pos;
            s->pos = s->vpos;
            *open = inq;
            return *len > 0;
        }
    }
}

static int s_cells_room(as_sheet_t *s, size_t n)
{
    if (n < s->cells_cap)
        return 0;
    size_t cap = s->cells_cap ? s->cells_cap * 2 : 64;
    char **c = realloc(s->cells, cap * sizeof *c);
    if (!c)
        return AS_E_NOMEM;
    s->cells = c;
    size_t *l = realloc(s->lens, cap * sizeof *l);
    if (!l)
        return AS_E_NOMEM;
    s->lens = l;
    s->cells_cap = cap;
    return 0;
}

/* Splits a record in place into NUL-terminated, unquoted cells (RFC 4180; text after a closing
 * quote is kept as is). Returns the number of cells, or AS_E_NOMEM. */
static long s_split(as_sheet_t *s, char *p, size_t len, bool quoted)
{
    char *e = p + len;
    if (len && e[-1] == '\r')
        e--;
    size_t n = 0;
    for (;;) {
        char *cell = p, *out;
        if (quoted && p < e && *p == '"') {
            out = p++;
            for (;;) {
                char *q = memchr(p, '"', (size_t)(e - p));
                size_t k = (size_t)((q ? q : e) - p);
                memmove(out, p, k);
                out += k;
                p += k;
                if (!q)
                    break;
                p++;
                if (p < e && *p == '"') {
                    *out++ = '"';
                    p++;
                } else
                    break;
            }
            char *c = memchr(p, ',', (size_t)(e - p));
            size_t k = (size_t)((c ? c : e) - p);
            memmove(out, p, k);
            out += k;
            p += k;
        } else {
            char *c = memchr(p, ',', (size_t)(e - p));
            out = p = c ? c : e;
        }
        if (s_cells_room(s, n))
            return AS_E_NOMEM;
        s->cells[n] = cell;
        s->lens[n] = (size_t)(out - cell);
        n++;
        bool more = p < e;
        *out = 0;
        if (!more)
            return (long)n;
        p++;
    }
}

static bool s_valid_utf8(const char *p, size_t n)
{
    bool bad = false, hi = false;
    return s_utf8_prefix((const unsigned char *)p, n, &bad, &hi) == n;
}

/* A row with a sequence that is neither UTF-8 nor GB18030 (as the file was decided) in a column
 * that is read is rejected by itself, naming the column; columns that are ignored do not count.
 * Only files with such a sequence somewhere pay for the check. Returns 1 or AS_E_INVALID. */
static int s_check_row(as_sheet_t *s, const as_row_t *row)
{
    if (!s->bad_text)
        return 1;
    for (int c = 0; c < AS_COL_COUNT; c++) {
        if (row->cell[c] && !s_valid_utf8(row->cell[c], row->len[c])) {
            s_note(&s->err, as_column_name_en(c), row->cell[c], row->len[c], "无效的字符编码",
                   "invalid character encoding");
            return AS_E_INVALID;
        }
    }
    return 1;
}

static bool s_all_empty(const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lens[i])
            return false;
    return true;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* Next non-empty record, split. Returns its cell count, 0 at the end, or an error. */
static long s_csv_next_record(as_sheet_t *s, bool *open)
{
    for (;;) {
        char *start;
        size_t len;
        bool quoted;
        size_t line = s->line;
        int r = s_record(s, true, &start, &len, &quoted, open);
        if (r <= 0)
            return r;
        s->line += 1 + (quoted ? s_count_nl(start, len) : 0);
        if (len == 0 || (len == 1 && start[0] == '\r'))
            continue;
        long n = s_split(s, start, len, quoted);
        if (n < 0)
            return s_error(s, (int)n, NULL, "内存不足", "out of memory");
        if (s_all_empty(s->lens, (size_t)n))
            continue;
        s->row_line = line;
        return n;
    }
}

static const as_column_t s_required[] = {AS_COL_COUNTY_CODE, AS_COL_ORG_CREDIT_CODE,
                                         AS_COL_ORG_NAME, AS_COL_AREA, AS_COL_ACTIVITY_DATE};

static int s_csv_header(as_sheet_t *s)
{
    bool open;
    long n = s_csv_next_record(s, &open);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return s_error(s, AS_E_PARSE, NULL, "文件为空（没有表头行）",
                       "the file is empty (no header row)");
    if (!(s->colmap = malloc((size_t)n * sizeof *s->colmap)))
        return s_error(s, AS_E_NOMEM, NULL, "内存不足", "out of memory");
    s->ncols = (size_t)n;
    int seen[AS_COL_COUNT];
    for (int c = 0; c < AS_COL_COUNT; c++)
        seen[c] = -1;
    char zh[200], en[200]; /* room for the longest list of missing columns (mzh, men) */
    for (size_t i = 0; i < s->ncols; i++) {
        const char *h = s->cells[i];
        int c = s->lens[i] ? as_column_lookup(h) : -1;
        s->colmap[i] = c;
        if (c < 0 && s->lens[i]) {
            snprintf(zh, sizeof zh, "未知列“%.100s”，已忽略", h);
            snprintf(en, sizeof en, "unknown column \"%.100s\" ignored", h);
            s_warn(s, "", h, zh, en);
        } else if (c >= 0 && seen[c] >= 0) {
            snprintf(zh, sizeof zh, "列重复：“%.60s”与“%.60s”都是%s", s->cells[seen[c]], h,
                     as_column_name_zh(c));
            snprintf(en, sizeof en, "duplicate column: \"%.60s\" and \"%.60s\" are both %s",
                     s->cells[seen[c]], h, as_column_name_en(c));
            return s_error(s, AS_E_PARSE, h, zh, en);
        } else if (c >= 0)
            seen[c] = (int)i;
    }
    char mzh[160] = "", men[160] = "";
    for (size_t k = 0; k < sizeof s_required / sizeof *s_required; k++) {
        as_column_t c = s_required[k];
        if (seen[c] >= 0)
            continue;
        size_t a = strlen(mzh), b = strlen(men);
        snprintf(mzh + a, sizeof mzh - a, "%s%s", a ? "、" : "", as_column_name_zh(c));
        snprintf(men + b, sizeof men - b, "%s%s", b ? ", " : "", as_column_name_en(c));
    }
    if (*mzh) {
        snprintf(zh, sizeof zh, "缺少必填列：%s", mzh);
        snprintf(en, sizeof en, "missing required column(s): %s", men);
        return s_error(s, AS_E_PARSE, NULL, zh, en);
    }
    return 0;
}

static int s_csv_next(as_sheet_t *s, as_row_t *row)
{
    bool open;
    long n = s_csv_next_record(s, &open);
    if (n <= 0)
        return (int)n;
    s->rowno++;
    char zh[160], en[160];
    if (open)
        return s_error(s, AS_E_INVALID, NULL, "引号没有闭合，直到文件末尾",
                       "a quote is not closed before the end of the file");
    size_t got = (size_t)n;
    if (got < s->ncols || (got > s->ncols && !s_all_empty(s->lens + s->ncols, got - s->ncols))) {
        snprintf(zh, sizeof zh, "此行有%zu个单元格，表头有%zu列", got, s->ncols);
        snprintf(en, sizeof en, "the row has %zu cells but the header has %zu columns", got,
                 s->ncols);
        return s_error(s, AS_E_INVALID, NULL, zh, en);
    }
    memset(row, 0, sizeof *row);
    for (size_t i = 0; i < s->ncols; i++) {
        int c = s->colmap[i];
        if (c >= 0) {
            row->cell[c] = s->cells[i];
            row->len[c] = s->lens[i];
        }
    }
    return s_check_row(s, row);
}

/* ---- NDJSON --------------------------------------------------------------------------------- */

static void s_warn_key(as_sheet_t *s, const char *key)
{
    for (size_t i = 0; i < s->nwarn; i++)
        if (strcmp(s->warn[i].value, key) == 0)
            return;
    char zh[160], en[160];
    snprintf(zh, sizeof zh, "未知字段“%.100s”，已忽略", key);
    snprintf(en, sizeof en, "unknown field \"%.100s\" ignored", key);
    s_warn(s, "", key, zh, en);
}

static int s_json_next(as_sheet_t *s, as_row_t *row)
{
    char zh[160], en[160];
    for (;;) {
        char *start;
        size_t len;
        bool quoted, open;
        size_t line = s->line;
        int r = s_record(s, false, &start, &len, &quoted, &open);
        if (r <= 0)
            return r;
        s->line++;
        size_t k = 0;
        while (k < len && strchr(" \t\r", start[k]))
            k++;
        if (k == len)
            continue;
        s->row_line = line;
        s->rowno++;
        if (s->bad_text && !s_valid_utf8(start, len)) {
            s_note(&s->err, "", NULL, 0, "无效的字符编码", "invalid character encoding");
            return AS_E_INVALID;
        }
        if (s->json)
            json_decref(s->json);
        json_error_t je;
        s->json = json_loadb(start, len, JSON_REJECT_DUPLICATES, &je);
        if (!s->json || !json_is_object(s->json)) {
            snprintf(zh, sizeof zh, "不是JSON对象：%.100s", s->json ? "" : je.text);
            snprintf(en, sizeof en, "not a JSON object%s%.100s", s->json ? "" : ": ",
                     s->json ? "" : je.text);
            return s_error(s, AS_E_INVALID, NULL, zh, en);
        }
        memset(row, 0, sizeof *row);
        const char *key;
        json_t *v;
        json_object_foreach(s->json, key, v)
        {
            int c = as_column_lookup(key);
            if (c < 0) {
                s_warn_key(s, key);
                continue;
            }
            if (row->cell[c]) {
                snprintf(zh, sizeof zh, "字段重复：%s", as_column_name_zh(c));
                snprintf(en, sizeof en, "field given twice: %s", as_column_name_en(c));
                return s_error(s, AS_E_INVALID, key, zh, en);
            }
            const char *text = NULL;
            size_t tlen = 0;
            switch (json_typeof(v)) {
            case JSON_STRING:
                text = json_string_value(v);
                tlen = json_string_length(v);
                break;
            case JSON_INTEGER:
                tlen = (size_t)snprintf(s->num[c], sizeof s->num[c], "%" JSON_INTEGER_FORMAT,
                                        json_integer_value(v));
                text = s->num[c];
                break;
            case JSON_REAL:
                tlen = (size_t)snprintf(s->num[c], sizeof s->num[c], "%.15g", json_real_value(v));
                text = s->num[c];
                break;
            case JSON_TRUE:
            case JSON_FALSE:
                tlen = 1;
                text = json_is_true(v) ? "1" : "0";
                break;
            case JSON_NULL:
                break;
            default:
                snprintf(zh, sizeof zh, "字段%s的值不能是对象或数组", as_column_name_zh(c));
                snprintf(en, sizeof en, "field %s holds an object or array", as_column_name_en(c));
                return s_error(s, AS_E_INVALID, key, zh, en);
            }
            row->cell[c] = text;
            row->len[c] = tlen;
        }
        return 1;
    }
}

/* ---- the sheet ------------------------------------------------------------------------------ */

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Fills until at least n bytes of text are ahead of pos or the input ends. */
static int s_want(as_sheet_t *s, size_t n)
{
    while (s->vpos - s->pos < n) {
        int r = s_fill(s);
        if (r <= 0)
            return r;
    }
    return 1;
}

static int s_open(as_sheet_t *s, const char *path)
{
    char zh[160], en[160];
    if (strcmp(path, "-") == 0)
        s->fd = STDIN_FILENO;
    else if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;
        snprintf(zh, sizeof zh, "无法打开文件：%s", strerror(e));
        snprintf(en, sizeof en, "cannot open the file: %s", strerror(e));
        return s_error(s, -e, path, zh, en);
    } else
        s->own_fd = true;
    return 0;
}

/* Reads up to the first data row of the file open on s->fd; path only names it (extension). */
static int s_start(as_sheet_t *s, const char *path)
{
#ifdef POSIX_FADV_SEQUENTIAL
    if (s->fd != STDIN_FILENO)
        posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    unsigned char bom[2];
    if (s->fd != STDIN_FILENO && pread(s->fd, bom, 2, 0) == 2 &&
        ((bom[0] == 0xFF && bom[1] == 0xFE) || (bom[0] == 0xFE && bom[1] == 0xFF)))
        return s_error(s, AS_E_ENCODING, NULL,
                       "文件是UTF-16编码（“Unicode文本”）：请在Excel中另存为CSV",
                       "the file is UTF-16 (\"Unicode text\"): save it from Excel as CSV");
    int r = s_want(s, 3);
    if (r < 0)
        return r;
    if (s->vpos - s->pos >= 3 && memcmp(s->buf + s->pos, "\xEF\xBB\xBF", 3) == 0)
        s->pos += 3;
    /* the first character that is not white space decides the format by content */
    size_t k = 0;
    for (;;) {
        while (s->pos + k < s->vpos && strchr(" \t\r\n", s->buf[s->pos + k]))
            k++;
        if (s->pos + k < s->vpos)
            break;
        if ((r = s_fill(s)) < 0)
            return r;
        if (r == 0)
            return s_error(s, AS_E_PARSE, NULL, "文件为空", "the file is empty");
    }
    bool json =
        s_ends_with(path, ".ndjson") || s_ends_with(path, ".jsonl") || s->buf[s->pos + k] == '{';
    s->format = json ? AS_SHEET_NDJSON : AS_SHEET_CSV;
    return json ? 0 : s_csv_header(s);
}

static as_sheet_t *s_open_common(int fd, const char *path, int *err)
{
    as_sheet_t *s = calloc(1, sizeof *s);
    if (s && !(s->buf = malloc(BUF_INIT))) {
        free(s);
        s = NULL;
    }
    if (!s) {
        if (err)
            *err = AS_E_NOMEM;
        return NULL;
    }
    s->fd = fd;
    s->cd = (iconv_t)-1;
    s->cap = BUF_INIT;
    s->line = 1;
    int rc = fd < 0 ? s_open(s, path) : 0;
    if (rc == 0)
        rc = s_start(s, path);
    if (err)
        *err = rc;
    return s;
}

as_sheet_t *as_sheet_open(const char *path, int *err)
{
    return s_open_common(-1, path, err);
}

as_sheet_t *as_sheet_open_fd(int fd, const char *name, int *err)
{
    return s_open_common(fd, name, err);
}

int as_sheet_next(as_sheet_t *s, as_row_t *row, size_t *rowno)
{
    if (s->status)
        return s->status;
    int r = s->format == AS_SHEET_CSV ? s_csv_next(s, row) : s_json_next(s, row);
    if (rowno)
        *rowno = s->rowno;
    if (r == 0 && s->rowno == 0 && !s->header_only_warned) {
        s->header_only_warned = true;
        if (s->format == AS_SHEET_CSV)
            s_warn(s, "", NULL, "文件只有表头，没有数据行",
                   "the file has a header but no data rows");
        else
            s_warn(s, "", NULL, "文件没有数据行", "the file has no data rows");
    }
    return r;
}

size_t as_sheet_line(const as_sheet_t *s)
{
    return s->row_line;
}

const char *as_sheet_error(const as_sheet_t *s)
{
    return s->err.reason_en;
}

const as_field_error_t *as_sheet_last_error(const as_sheet_t *s)
{
    return &s->err;
}

const as_field_error_t *as_sheet_warnings(const as_sheet_t *s, size_t *n)
{
    *n = s->nwarn;
    return s->warn;
}

as_sheet_format_t as_sheet_format(const as_sheet_t *s)
{
    return s->format;
}

as_sheet_encoding_t as_sheet_encoding(const as_sheet_t *s)
{
    return s->enc;
}

uint64_t as_sheet_bytes(const as_sheet_t *s)
{
    return s->bytes;
}

void as_sheet_destroy(as_sheet_t **self_p)
{
    as_sheet_t *s = self_p ? *self_p : NULL;
    if (!s)
        return;
    if (s->own_fd)
        close(s->fd);
    if (s->cd != (iconv_t)-1)
        iconv_close(s->cd);
    if (s->json)
        json_decref(s->json);
    free(s->raw);
    free(s->buf);
    free(s->colmap);
    free(s->cells);
    free(s->lens);
    free(s->warn);
    free(s);
    *self_p = NULL;
}

/* ---- whole file into events ----------------------------------------------------------------- */

static int s_flush_warnings(as_sheet_t *s, const as_sheet_handler_t *h, size_t *done)
{
    int rc = 0;
    for (; *done < s->nwarn && !rc; (*done)++)
        if (h->on_warning)
            rc = h->on_warning(h->arg, 0, 0, &s->warn[*done], 1);
    return rc;
}

static int s_read_events(int fd, const char *path, const as_validate_ctx_t *ctx,
                         const as_sheet_handler_t *h, as_sheet_stats_t *st)
{
    as_sheet_stats_t local = {0};
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    int err;
    as_sheet_t *s = s_open_common(fd, path, &err);
    if (!s)
        return err;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t warned = 0;
    int rc = s_flush_warnings(s, h, &warned);
    if (!rc && err) {
        rc = err;
        if (h->on_error)
            h->on_error(h->arg, 0, 0, &s->err, 1);
    }
    as_event_t ev;
    as_row_errors_t errs;
    while (!rc) {
        as_row_t row;
        size_t rowno = 0;
        int r = as_sheet_next(s, &row, &rowno);
        if ((rc = s_flush_warnings(s, h, &warned)))
            break;
        if (r == 0)
            break;
        if (r == 1) {
            st->rows++;
            int v = as_event_from_row(&row, ctx, &ev, &errs);
            if (v == 0) {
                st->valid++;
                s_copy(ev.source_file, sizeof ev.source_file, base, strlen(base));
                ev.source_row = (uint32_t)rowno;
                if (h->on_event)
                    rc = h->on_event(h->arg, &ev, rowno, s->row_line);
                continue;
            }
            st->rejected++;
            if (errs.n == 0) {
                errs.n = 1;
                s_note(&errs.e[0], "", NULL, 0, "无法校验此行", as_strerror(v));
            }
            if (h->on_error)
                rc = h->on_error(h->arg, rowno, s->row_line, errs.e,
                                 errs.n < AS_MAX_ROW_ERRORS ? errs.n : AS_MAX_ROW_ERRORS);
        } else if (r == AS_E_INVALID) {
            st->rows++;
            st->rejected++;
            if (h->on_error)
                rc = h->on_error(h->arg, rowno, s->row_line, &s->err, 1);
        } else {
            rc = r;
            if (h->on_error)
                h->on_error(h->arg, 0, 0, &s->err, 1);
        }
    }
    st->bytes = s->bytes;
    as_sheet_destroy(&s);
    return rc;
}

int as_sheet_read_events(const char *path, const as_validate_ctx_t *ctx,
                         const as_sheet_handler_t *h, as_sheet_stats_t *st)
{
    return s_read_events(-1, path, ctx, h, st);
}

int as_sheet_read_events_fd(int fd, const char *name, const as_validate_ctx_t *ctx,
                            const as_sheet_handler_t *h, as_sheet_stats_t *st)
{
    return s_read_events(fd, name, ctx, h, st);
}
