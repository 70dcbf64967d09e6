/* zap: our own ZAP handler (RFC 27) for the CURVE ingest — maps each collector's public key to
 * its county from an authorized-keys file, so the county is read back from "User-Id". */
#ifndef AS_ZAP_H
#define AS_ZAP_H

#include <stdint.h>
#include <uv.h>

typedef struct as_zap_s as_zap_t;

/* The ZAP domain the ingest ROUTER sets (ZMQ_ZAP_DOMAIN, with ZMQ_ZAP_ENFORCE_DOMAIN on). */
#define AS_ZAP_DOMAIN "aidstat-ingest"

/* Binds a REP socket on inproc://zeromq.zap.01 in zctx (not owned; one handler per context)
 * and answers it on loop. keys_file holds lines "<county> <z85 public key>" ('#' comments and
 * blank lines allowed). Answers 200 with User-Id = the county's code for a CURVE client whose key
 * is listed (domain AS_ZAP_DOMAIN), 400 otherwise. Returns NULL with *err set (-errno for an
 * unreadable file, AS_E_PARSE for a bad line, AS_E_ZMQ) on failure. */
as_zap_t *as_zap_new(uv_loop_t *loop, void *zctx, const char *keys_file, int *err);

/* Re-reads the keys file (SIGHUP). On failure the old keys stay in force. Returns 0, -errno or
 * AS_E_PARSE. */
int as_zap_reload(as_zap_t *z);

/* Number of keys in force; requests answered 200 and 400 so far. */
size_t as_zap_keys(const as_zap_t *z);
uint64_t as_zap_allowed(const as_zap_t *z);
uint64_t as_zap_denied(const as_zap_t *z);

/* Parses a keys file into a fresh table (for tests and reload): returns the number of keys or a
 * negative error; *line receives the offending line number on AS_E_PARSE. */
int as_zap_check_file(const char *keys_file, int *line);

/* Stops answering and closes the socket (handles freed in close callbacks: run the loop once
 * more). Safe on NULL and twice. */
void as_zap_destroy(as_zap_t **self_p);

#endif
