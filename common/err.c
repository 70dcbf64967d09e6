/* err: aidstat's error codes and their text. */
/* strerrordesc_np (_GNU_SOURCE, set by the build): errno's text as a static string, without
 * strerror's per-thread buffer */
#include "err.h"

#include <string.h>

const char *as_strerror(int code)
{
    switch (code) {
    case AS_OK:
        return "success";
    case AS_E_INVALID:
        return "invalid input";
    case AS_E_PARSE:
        return "malformed input";
    case AS_E_NOTFOUND:
        return "not found";
    case AS_E_EXISTS:
        return "already exists";
    case AS_E_DB:
        return "database (LMDB) failure";
    case AS_E_ZMQ:
        return "messaging (ZeroMQ) failure";
    case AS_E_PROTO:
        return "protocol violation";
    case AS_E_TOOBIG:
        return "over the size limit";
    case AS_E_NOMEM:
        return "out of memory";
    case AS_E_ENCODING:
        return "text encoding could not be converted";
    case AS_E_TIMEOUT:
        return "timed out";
    case AS_E_LOCKED:
        return "year is locked by its final report";
    case AS_E_STATE:
        return "not valid in the current state";
    case AS_E_AUTH:
        return "not authenticated or not authorised";
    case AS_E_OVERFLOW:
        return "a total would overflow";
    case AS_E_BUSY:
        return "in use by another process";
    default:
        if (code < 0 && code > -4096) {
            const char *s = strerrordesc_np(-code);
            if (s)
                return s;
        }
        return "unknown error";
    }
}
