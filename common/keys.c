/* keys: reads a CURVE key pair file as `aidstat keygen` writes it (or a ZeroMQ certificate). */
#include "keys.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

int as_keys_read_secret(const char *path, char pub[41], char sec[41], char *why, size_t cap)
{
    char dummy[8];
    if (!why || !cap)
        why = dummy, cap = sizeof dummy;
    *why = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(why, cap, "cannot open the key file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(why, cap, "cannot read the key file %s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = AS_E_AUTH;
        snprintf(why, cap, "the key file %s is not a regular file; refusing to use it", path);
    } else if (st.st_mode & 077) {
        rc = AS_E_AUTH;
        snprintf(why, cap,
                 "the key file %s holds a secret key but is readable or writable by group or "
                 "others (mode %04o); refusing to use it: run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
    } else if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = AS_E_AUTH;
        snprintf(why, cap,
                 "the key file %s is owned by uid %u, neither this daemon's user (uid %u) nor "
                 "root; refusing to use it: chown it to the service user and chmod 600 %s",
                 path, (unsigned)st.st_uid, (unsigned)geteuid(), path);
    }
    char text[8192];
    size_t n = 0;
    while (rc == 0 && n < sizeof text - 1) {
        ssize_t r = read(fd, text + n, sizeof text - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(why, cap, "cannot read the key file %s: %s", path, strerror(-rc));
        }
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    text[n] = 0;
    if (rc == 0 && !s_find_key(text, "secret", sec)) {
        rc = AS_E_INVALID;
        snprintf(why, cap, "the key file %s holds no secret key (make one with aidstat keygen)",
                 path);
    } else if (rc == 0 && !s_find_key(text, "public", pub) && zmq_curve_public(pub, sec) != 0) {
        rc = AS_E_INVALID;
        snprintf(why, cap, "the key file %s holds an unusable secret key", path);
    }
    memset(text, 0, sizeof text);
    return rc;
}

int as_keys_read(const char *path, char pub[41], char sec[41])
{
    return as_keys_read_secret(path, pub, sec, NULL, 0);
}
