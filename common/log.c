/* log: one logging module for every component; one line per event worth telling, to stderr. */
#include "log.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

as_log_level_t as_log_min_level = AS_LOG_INFO;
static as_log_format_t s_format = AS_LOG_TEXT;
static const char *s_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void as_log_setup(as_log_level_t level, as_log_format_t format)
{
    as_log_min_level = level;
    s_format = format;
}

int as_log_parse_level(const char *s, as_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (as_log_level_t)i;
            return AS_OK;
        }
    }
    return AS_E_INVALID;
}

int as_log_parse_format(const char *s, as_log_format_t *out)
{
    if (strcmp(s, "text") == 0)
        *out = AS_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = AS_LOG_JSON;
    else
        return AS_E_INVALID;
    return AS_OK;
}

/* JSON string body escaping for the json format (control characters, quote, backslash). */
static void s_json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void as_log_write(as_log_level_t level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    flockfile(stderr);
    if (s_format == AS_LOG_JSON) {
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"", when,
                ts.tv_nsec / 1000000, s_names[level]);
        s_json_escape(stderr, component);
        fputs("\",\"msg\":\"", stderr);
        s_json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when, ts.tv_nsec / 1000000, s_names[level],
                component, msg);
    }
    funlockfile(stderr);
}
