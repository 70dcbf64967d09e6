/* keys: reads a CURVE key pair file as `aidstat keygen` writes it (or a ZeroMQ certificate). */
#include "keys.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

bool as_keys_is_z85(const char *s)
{
    static const char set[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    for (int i = 0; i < 40; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

/* Finds the first 40-character Z85 token after word in text. */
static bool s_find_key(const char *text, const char *word, char out[41])
{
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        const char *q = p + strlen(word);
        while (*q && (isalpha((unsigned char)*q) || *q == '_' || *q == '-'))
            q++; /* "secret_key", "secret-key" */
        /* blanks, one '=' or ':', blanks, an optional quote: a key may itself begin with '=',
         * ':' or another Z85 punctuation character, so nothing more is skipped */
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '=' || *q == ':')
            q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '"')
            q++;
        if (as_keys_is_z85(q) && (q[40] == 0 || strchr("\"\r\n \t", q[40]))) {
            memcpy(out, q, 40);
            out[40] = 0;
            return true;
        }
    }
    return false;
}

int as_keys_read(const char *path, char pub[41], char sec[41])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    if (!s_find_key(text, "secret", sec))
        return AS_E_INVALID;
    if (!s_find_key(text, "public", pub) && zmq_curve_public(pub, sec) != 0)
        return AS_E_INVALID;
    return 0;
}
