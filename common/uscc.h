/* uscc: the 18-character Unified Social Credit Code (GB 32100-2015) of an organisation. */
#ifndef AS_USCC_H
#define AS_USCC_H

#include <stdbool.h>

typedef enum {
    AS_USCC_OK = 0,
    AS_USCC_LENGTH,    /* not 18 characters */
    AS_USCC_CHARSET,   /* a character outside 0-9 A-H J-N P-R T-U W-Y */
    AS_USCC_AUTHORITY, /* registration authority is not 5 (civil affairs) */
    AS_USCC_TYPE,      /* organisation type digit not 1, 2, 3 or 9 for civil affairs */
    AS_USCC_DIVISION,  /* characters 3-8 are not a (possibly retired) division code */
    AS_USCC_CHECK,     /* the check character (18th) is wrong */
} as_uscc_status_t;

/* Checks code (upper case expected; NUL-terminated). Reports the first problem found, in the
 * order above, so AS_USCC_CHECK means everything else is fine. */
as_uscc_status_t as_uscc_check(const char *code);

/* The check character for the first 17 characters of code, or 0 when one of them is outside
 * the character set. */
char as_uscc_check_char(const char *code17);

/* The division code held in characters 3-8 (may be a retired code), or 0 if not digits. */
unsigned as_uscc_division(const char *code);

/* Text of a status, Chinese and English. */
const char *as_uscc_reason_zh(as_uscc_status_t s);
const char *as_uscc_reason_en(as_uscc_status_t s);

#endif
