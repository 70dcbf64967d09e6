/* aidstat submit: hands files (or a nil report) to a running collector over its control
 * endpoint; the collector writes each file into its spool atomically. */
#include "collector.h"
#include "config.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int as_cmd_submit(int argc, char **argv);

typedef struct {
    char collector[1200];
    char nil[16];
    char county[16];
    int64_t timeout_ms;
} submit_opts_t;

#define F(field) AS_CFG_FIELD(submit_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"collector", AS_CFG_STR, "",
     "the collector's control endpoint (default "
     "ipc://./var/collector-CODE/control.sock with --county)",
     F(collector)},
    {"county", AS_CFG_STR, "", "county code, to find the default control endpoint", F(county)},
    {"nil", AS_CFG_STR, "", "send a nil report for month YYYY-MM instead of files", F(nil)},
    {"timeout-ms", AS_CFG_INT, "10000", "how long to wait for the collector", F(timeout_ms)},
    AS_CFG_END,
};

static const char *s_synopsis = "usage: aidstat submit FILE... [--collector EP]\n"
                                "       aidstat submit --nil YYYY-MM [--collector EP]";

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
            } else
                buf = p;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Sends frames and prints the answer; returns 0 when it starts with "ok". */
static int s_request(void *ctx, const char *ep, int timeout, const char **frames,
                     const size_t *lens, int n, char *answer, size_t alen)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    int rc = -1;
    if (zmq_connect(s, ep) == 0) {
        rc = 0;
        for (int i = 0; i < n && rc == 0; i++)
            if (zmq_send(s, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
                rc = -1;
        int got = rc == 0 ? zmq_recv(s, answer, alen - 1, 0) : -1;
        if (got < 0) {
            snprintf(answer, alen, "error no answer from the collector at %s (%s)", ep,
                     zmq_strerror(zmq_errno()));
            rc = -1;
        } else
            answer[(size_t)got < alen - 1 ? (size_t)got : alen - 1] = 0;
    } else
        snprintf(answer, alen, "error bad endpoint %s: %s", ep, zmq_strerror(zmq_errno()));
    zmq_close(s);
    return rc == 0 && strncmp(answer, "ok", 2) == 0 ? 0 : -1;
}

int as_cmd_submit(int argc, char **argv)
{
    submit_opts_t o;
    char err[512];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat submit: %s\n", err);
        return 2;
    }
    if (!*o.collector) {
        if (!*o.county) {
            fprintf(stderr, "aidstat submit: --collector EP (or --county CODE) is needed\n");
            return 2;
        }
        snprintf(o.collector, sizeof o.collector, "ipc://./var/collector-%s/control.sock",
                 o.county);
    }
    if (!*o.nil && argc < 2) {
        fprintf(stderr, "%s\n", s_synopsis);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    char answer[600];
    int failed = 0;
    if (*o.nil) {
        const char *fr[2] = {AS_CONTROL_NIL, o.nil};
        size_t ln[2] = {strlen(fr[0]), strlen(fr[1])};
        failed =
            s_request(ctx, o.collector, (int)o.timeout_ms, fr, ln, 2, answer, sizeof answer) != 0;
        printf("%s: %s\n", o.nil, failed ? answer : "nil report queued for the aggregator");
    }
    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        char *content = s_slurp(argv[i], &len);
        if (!content) {
            fprintf(stderr, "%s: cannot read: %s\n", argv[i], strerror(errno));
            failed++;
            continue;
        }
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        const char *fr[3] = {AS_CONTROL_SUBMIT, base, content};
        size_t ln[3] = {strlen(fr[0]), strlen(base), len};
        if (s_request(ctx, o.collector, (int)o.timeout_ms, fr, ln, 3, answer, sizeof answer)) {
            fprintf(stderr, "%s: %s\n", argv[i], answer);
            failed++;
        } else
            printf("%s: handed to the collector as %s\n", argv[i], answer + 3);
        free(content);
    }
    zmq_ctx_term(ctx);
    return failed ? 1 : 0;
}
