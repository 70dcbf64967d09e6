/* uscc: the 18-character Unified Social Credit Code (GB 32100-2015) of an organisation. */
#include "uscc.h"
#include "division.h"

#include <pthread.h>
#include <string.h>

static const char s_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY"; /* 31 characters */
static const int s_weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

/* Value of each character in the set, -1 outside it (a table: this runs 18 times a row). */
static signed char s_values[256];
static pthread_once_t s_values_once = PTHREAD_ONCE_INIT;

static void s_values_init(void)
{
    memset(s_values, -1, sizeof s_values);
    for (int i = 0; s_alphabet[i]; i++)
        s_values[(unsigned char)s_alphabet[i]] = (signed char)i;
}

static int s_value(char c)
{
    pthread_once(&s_values_once, s_values_init);
    return s_values[(unsigned char)c];
}

char as_uscc_check_char(const char *code17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = s_value(code17[i]);
        if (v < 0)
            return 0;
        sum += v * s_weights[i];
    }
    return s_alphabet[(31 - sum % 31) % 31];
}

unsigned as_uscc_division(const char *code)
{
    unsigned d = 0;
    for (int i = 2; i < 8; i++) {
        if (code[i] < '0' || code[i] > '9')
            return 0;
        d = d * 10 + (unsigned)(code[i] - '0');
    }
    return d;
}

/* Characters 3-8 name the registering authority's division: 100000 for a national registration
 * (Ministry of Civil Affairs), else a code of a province-level division. Inside Jiangxi the code
 * must be one the province has, or once had (codes are frozen when issued). */
static bool s_division_plausible(unsigned d)
{
    static const unsigned provinces[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33,
                                         34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50,
                                         51, 52, 53, 54, 61, 62, 63, 64, 65};
    if (d == 100000)
        return true;
    if (d / 10000 == 36)
        return as_division_was_division(d);
    for (size_t i = 0; i < sizeof provinces / sizeof provinces[0]; i++)
        if (d / 10000 == provinces[i])
            return true;
    return false;
}

as_uscc_status_t as_uscc_check(const char *code)
{
    if (strlen(code) != 18)
        return AS_USCC_LENGTH;
    for (int i = 0; i < 18; i++)
        if (s_value(code[i]) < 0)
            return AS_USCC_CHARSET;
    if (code[0] != '5')
        return AS_USCC_AUTHORITY;
    if (code[1] != '1' && code[1] != '2' && code[1] != '3' && code[1] != '9')
        return AS_USCC_TYPE;
    if (!s_division_plausible(as_uscc_division(code)))
        return AS_USCC_DIVISION;
    if (as_uscc_check_char(code) != code[17])
        return AS_USCC_CHECK;
    return AS_USCC_OK;
}

const char *as_uscc_reason_zh(as_uscc_status_t s)
{
    switch (s) {
    case AS_USCC_OK:
        return "有效";
    case AS_USCC_LENGTH:
        return "统一社会信用代码应为18位";
    case AS_USCC_CHARSET:
        return "统一社会信用代码含有不允许的字符(不使用I、O、S、V、Z)";
    case AS_USCC_AUTHORITY:
        return "登记管理部门代码应为5(民政部门),不是社会组织";
    case AS_USCC_TYPE:
        return "机构类别代码应为1、2、3或9";
    case AS_USCC_DIVISION:
        return "第3-8位应为登记管理机关的行政区划代码(含已撤销的代码)";
    case AS_USCC_CHECK:
        return "统一社会信用代码校验码错误";
    }
    return "未知";
}

const char *as_uscc_reason_en(as_uscc_status_t s)
{
    switch (s) {
    case AS_USCC_OK:
        return "valid";
    case AS_USCC_LENGTH:
        return "a unified social credit code has 18 characters";
    case AS_USCC_CHARSET:
        return "the code holds a character outside the GB 32100 set (no I, O, S, V, Z)";
    case AS_USCC_AUTHORITY:
        return "registration authority must be 5 (civil affairs) for a social organisation";
    case AS_USCC_TYPE:
        return "organisation type digit must be 1, 2, 3 or 9";
    case AS_USCC_DIVISION:
        return "characters 3-8 must be the registering authority's division code (a retired one is "
               "fine)";
    case AS_USCC_CHECK:
        return "wrong check character (GB 32100-2015)";
    }
    return "unknown";
}
