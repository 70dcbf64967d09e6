/* csvout: CSV cells, quoted as RFC 4180 says, formulas neutralised as OWASP says. */
#include "csvout.h"

#include <string.h>

bool as_csv_is_formula(const char *s)
{
    return s && *s && strchr("=+-@\t\r", *s) != NULL;
}

void as_csv_text_put(const char *s, as_csv_put_cb put, void *arg)
{
    if (!s)
        s = "";
    bool formula = as_csv_is_formula(s);
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        put(arg, s, strlen(s));
        return;
    }
    put(arg, formula ? "\"'" : "\"", formula ? 2 : 1);
    for (;;) {
        const char *q = strchr(s, '"');
        size_t n = q ? (size_t)(q - s) : strlen(s);
        put(arg, s, n);
        if (!q)
            break;
        put(arg, "\"\"", 2);
        s = q + 1;
    }
    put(arg, "\"", 1);
}

static bool s_is_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    const char *d = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == d)
        return false;
    if (*p == '.') {
        d = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    if (*p == '%')
        p++;
    return *p == 0;
}

void as_csv_num_put(const char *s, as_csv_put_cb put, void *arg)
{
    if (s && s_is_number(s))
        put(arg, s, strlen(s));
    else
        as_csv_text_put(s, put, arg);
}

static void s_fput(void *arg, const char *p, size_t n)
{
    if (n)
        fwrite(p, 1, n, arg);
}

int as_csv_text(FILE *f, const char *s)
{
    as_csv_text_put(s, s_fput, f);
    return ferror(f) ? -1 : 0;
}

int as_csv_num(FILE *f, const char *s)
{
    as_csv_num_put(s, s_fput, f);
    return ferror(f) ? -1 : 0;
}
