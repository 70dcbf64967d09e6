/* zap: the ZAP handler for the CURVE ingest — public key → county, from an authorized-keys file. */
#include "zap.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "zpoll.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_FRAMES       8 /* a request has 6 frames plus any credentials beyond the first */

typedef struct {
    uint8_t key[32]; /* binary CURVE public key */
    uint32_t county;
} s_key_t;

struct as_zap_s {
    void *rep;      /* REP bound on S_ZAP_ENDPOINT */
    as_zpoll_t *zp; /* its readiness on the loop */
    char *path;     /* the authorized-keys file */
    s_key_t *keys;  /* sorted by key */
    size_t nkeys;
    uint64_t allowed; /* answered 200 */
    uint64_t denied;  /* answered 400 (or not understood) */
};

/* ---- the keys file ------------------------------------------------------------------------ */

static int s_cmp_key(const void *a, const void *b)
{
    return memcmp(((const s_key_t *)a)->key, ((const s_key_t *)b)->key, 32);
}

/* Reads the file into a sorted table. Returns the count or a negative error. */
static int s_load(const char *path, s_key_t **out, int *bad_line)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    s_key_t *keys = NULL;
    size_t n = 0, cap = 0;
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char county[16], z85[64], extra[8];
        int k = sscanf(p, "%15s %63s %7s", county, z85, extra);
        char *end = NULL;
        unsigned long code = k >= 2 ? strtoul(county, &end, 10) : 0;
        if (k != 2 || !end || *end || strlen(z85) != 40 || !as_division_is_county((uint32_t)code)) {
            rc = AS_E_PARSE;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            s_key_t *nk = realloc(keys, cap * sizeof *nk);
            if (!nk) {
                rc = AS_E_NOMEM;
                break;
            }
            keys = nk;
        }
        if (!zmq_z85_decode(keys[n].key, z85)) {
            rc = AS_E_PARSE;
            break;
        }
        keys[n].county = (uint32_t)code;
        n++;
    }
    fclose(f);
    if (rc) {
        if (bad_line)
            *bad_line = lineno;
        free(keys);
        return rc;
    }
    if (n)
        qsort(keys, n, sizeof *keys, s_cmp_key);
    *out = keys;
    return (int)n;
}

int as_zap_check_file(const char *keys_file, int *line)
{
    s_key_t *keys = NULL;
    int rc = s_load(keys_file, &keys, line);
    free(keys);
    return rc;
}

int as_zap_reload(as_zap_t *z)
{
    s_key_t *keys = NULL;
    int line = 0;
    int rc = s_load(z->path, &keys, &line);
    if (rc < 0) {
        if (rc == AS_E_PARSE)
            AS_ERROR("zap",
                     "%s line %d: want '<county code> <40-character z85 public key>'; "
                     "keeping the %zu keys in force",
                     z->path, line, z->nkeys);
        else
            AS_ERROR("zap", "cannot read %s: %s; keeping the %zu keys in force", z->path,
                     as_strerror(rc), z->nkeys);
        return rc;
    }
    free(z->keys);
    z->keys = keys;
    z->nkeys = (size_t)rc;
    AS_INFO("zap", "%zu collector keys in force from %s", z->nkeys, z->path);
    return 0;
}

/* ---- the handler ---------------------------------------------------------------------------- */

static void s_reply(as_zap_t *z, zmq_msg_t *req, int nreq, const char *code, const char *text,
                    const char *user)
{
    const char *parts[6] = {"1.0", NULL, code, text, user, ""};
    for (int i = 0; i < 6; i++) {
        int more = i < 5 ? ZMQ_SNDMORE : 0;
        int rc =
            i == 1 && nreq > 1
                ? zmq_send(z->rep, zmq_msg_data(&req[1]), zmq_msg_size(&req[1]), more)
                : zmq_send(z->rep, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) : 0, more);
        if (rc < 0) {
            AS_WARN("zap", "cannot answer a ZAP request: %s", zmq_strerror(zmq_errno()));
            return;
        }
    }
}

static bool s_frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

static void s_handle(as_zap_t *z, zmq_msg_t *f, int n)
{
    /* frames: version, request id, domain, address, routing id, mechanism, credentials... */
    char addr[64] = "?";
    if (n >= 4) {
        size_t l = zmq_msg_size(&f[3]) < sizeof addr - 1 ? zmq_msg_size(&f[3]) : sizeof addr - 1;
        memcpy(addr, zmq_msg_data(&f[3]), l);
        addr[l] = 0;
    }
    if (n < 6 || !s_frame_is(&f[0], "1.0")) {
        z->denied++;
        AS_WARN("zap", "malformed ZAP request (%d frames) refused", n);
        s_reply(z, f, n, "400", "malformed ZAP request", ""); /* REP must answer */
        return;
    }
    if (!s_frame_is(&f[2], AS_ZAP_DOMAIN) || !s_frame_is(&f[5], "CURVE") || n < 7 ||
        zmq_msg_size(&f[6]) != 32) {
        z->denied++;
        AS_WARN("zap", "connection from %s refused: not a CURVE client of the ingest", addr);
        s_reply(z, f, n, "400", "CURVE on the ingest domain only", "");
        return;
    }
    s_key_t probe;
    memcpy(probe.key, zmq_msg_data(&f[6]), 32);
    const s_key_t *k =
        z->nkeys ? bsearch(&probe, z->keys, z->nkeys, sizeof probe, s_cmp_key) : NULL;
    if (!k) {
        char z85[41];
        zmq_z85_encode(z85, probe.key, 32);
        z->denied++;
        AS_WARN("zap", "connection from %s refused: public key %s is not in the authorized keys",
                addr, z85);
        s_reply(z, f, n, "400", "unknown public key", "");
        return;
    }
    char user[16];
    snprintf(user, sizeof user, "%06u", (unsigned)k->county);
    z->allowed++;
    AS_DEBUG("zap", "collector of county %s connected from %s", user, addr);
    s_reply(z, f, n, "200", "OK", user);
}

static void s_on_readable(void *sock, void *arg)
{
    as_zap_t *z = arg;
    for (int round = 0; round < 64; round++) {
        zmq_msg_t f[S_FRAMES];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&m);
                for (int i = 0; i < n && i < S_FRAMES; i++)
                    zmq_msg_close(&f[i]);
                return;
            }
            more = zmq_msg_more(&m);
            if (n < S_FRAMES) {
                zmq_msg_init(&f[n]);
                zmq_msg_move(&f[n], &m);
            }
            zmq_msg_close(&m);
            n++;
        }
        s_handle(z, f, n < S_FRAMES ? n : S_FRAMES);
        for (int i = 0; i < n && i < S_FRAMES; i++)
            zmq_msg_close(&f[i]);
    }
}

/* ---- life cycle -------------------------------------------------------------------------------
 */

as_zap_t *as_zap_new(uv_loop_t *loop, void *zctx, const char *keys_file, int *err)
{
    as_zap_t *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(keys_file))) {
        free(z);
        *err = AS_E_NOMEM;
        return NULL;
    }
    as_division_init();
    int rc = as_zap_reload(z);
    if (rc)
        goto fail;
    z->rep = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!z->rep || zmq_setsockopt(z->rep, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(z->rep, S_ZAP_ENDPOINT) != 0) {
        AS_ERROR("zap", "cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        rc = AS_E_ZMQ;
        goto fail;
    }
    if (!(z->zp = as_zpoll_new(loop, z->rep, s_on_readable, z, &rc)))
        goto fail;
    return z;
fail:
    *err = rc;
    as_zap_destroy(&z);
    return NULL;
}

size_t as_zap_keys(const as_zap_t *z)
{
    return z->nkeys;
}

uint64_t as_zap_allowed(const as_zap_t *z)
{
    return z->allowed;
}

uint64_t as_zap_denied(const as_zap_t *z)
{
    return z->denied;
}

void as_zap_destroy(as_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_zap_t *z = *self_p;
    *self_p = NULL;
    as_zpoll_destroy(&z->zp);
    if (z->rep)
        zmq_close(z->rep);
    free(z->keys);
    free(z->path);
    free(z);
}
