/* keys: reads a CURVE key pair file as `aidstat keygen` writes it (or a ZeroMQ certificate). */
#ifndef AS_KEYS_H
#define AS_KEYS_H

#include <stdbool.h>

#include <stddef.h>

/* Reads the 40-character Z85 keys that follow the words "public" and "secret" in the file at
 * path (e.g. `public = ...`, `secret-key = "..."`); the public key is derived from the secret
 * when absent. The file must be private: a regular file, no permission for group or others
 * (chmod 600) and owned by the process' effective user or root — else AS_E_AUTH, and nothing is
 * read. Returns 0, -errno when the file cannot be read, AS_E_AUTH as said, AS_E_INVALID when it
 * holds no secret key. why (may be NULL) receives a sentence naming the file and the fix. */
int as_keys_read_secret(const char *path, char pub[41], char sec[41], char *why, size_t cap);

/* as_keys_read_secret() without the sentence. */
int as_keys_read(const char *path, char pub[41], char sec[41]);

/* True when the first 40 characters of s are Z85 characters (a CURVE key in text form). */
bool as_keys_is_z85(const char *s);

#endif
