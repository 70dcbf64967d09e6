/* err: aidstat's error codes and their text; one reserved negative band beside -errno. */
#ifndef AS_ERR_H
#define AS_ERR_H

/* 0 is success. libc and libuv failures are returned as -errno (libuv's convention). Our own
 * codes live in [-29999, -29000], far from any errno and from LMDB's codes (-30799..-30780),
 * which the LMDB helpers translate into AS_E_DB with the LMDB text logged. */
enum {
    AS_OK = 0,
    AS_E_BASE = -29000,
    AS_E_INVALID = -29001,   /* input failed validation */
    AS_E_PARSE = -29002,     /* malformed file, message or config */
    AS_E_NOTFOUND = -29003,  /* no such key, file or record */
    AS_E_EXISTS = -29004,    /* already present (duplicate) */
    AS_E_DB = -29005,        /* LMDB failure */
    AS_E_ZMQ = -29006,       /* ZeroMQ failure */
    AS_E_PROTO = -29007,     /* protocol violation by a peer */
    AS_E_TOOBIG = -29008,    /* over a size limit */
    AS_E_NOMEM = -29009,     /* out of memory */
    AS_E_ENCODING = -29010,  /* text encoding could not be converted */
    AS_E_TIMEOUT = -29011,   /* a peer did not answer in time */
    AS_E_LOCKED = -29012,    /* the year is locked by its final report */
    AS_E_STATE = -29013,     /* operation not valid in the current state */
    AS_E_AUTH = -29014,      /* unauthenticated or unauthorised */
    AS_E_OVERFLOW = -29015,  /* a total or counter would overflow */
    AS_E_BUSY = -29016,      /* held by another process (a data folder's lock) */
    AS_E_LAST = -29017
};

/* Returns a static, human-readable text for any code above (or a -errno). Never NULL. */
const char *as_strerror(int code);

#endif
