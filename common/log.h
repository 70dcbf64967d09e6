/* log: one logging module for every component; one line per event worth telling, to stderr. */
#ifndef AS_LOG_H
#define AS_LOG_H

typedef enum { AS_LOG_DEBUG = 0, AS_LOG_INFO, AS_LOG_WARN, AS_LOG_ERROR } as_log_level_t;
typedef enum { AS_LOG_TEXT = 0, AS_LOG_JSON } as_log_format_t;

extern as_log_level_t as_log_min_level; /* lines below this level are not even formatted */

/* Sets the minimum level and the format (text: "2026-11-29T10:00:00.123Z WARN  ingest: ...",
 * json: {"ts":...,"level":...,"component":...,"msg":...}). */
void as_log_setup(as_log_level_t level, as_log_format_t format);

/* Parses "debug|info|warn|error" and "text|json"; return 0 or AS_E_INVALID. */
int as_log_parse_level(const char *s, as_log_level_t *out);
int as_log_parse_format(const char *s, as_log_format_t *out);

/* Writes one line. Use the macros: they check the level before formatting. The message should
 * say what happened and what the program does about it. */
void as_log_write(as_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define AS_LOG(level, comp, ...)                                                                   \
    do {                                                                                           \
        if ((level) >= as_log_min_level)                                                           \
            as_log_write((level), (comp), __VA_ARGS__);                                            \
    } while (0)
#define AS_DEBUG(comp, ...) AS_LOG(AS_LOG_DEBUG, comp, __VA_ARGS__)
#define AS_INFO(comp, ...)  AS_LOG(AS_LOG_INFO, comp, __VA_ARGS__)
#define AS_WARN(comp, ...)  AS_LOG(AS_LOG_WARN, comp, __VA_ARGS__)
#define AS_ERROR(comp, ...) AS_LOG(AS_LOG_ERROR, comp, __VA_ARGS__)

#endif
