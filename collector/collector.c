/* collector: outbox, spool, sender and control endpoint tied together on one loop. */
#include "collector.h"
#include "err.h"
#include "log.h"
#include "outbox.h"
#include "refusal.h"
#include "zpoll.h"

#include "aidstat/v1/event.pb-c.h"
#include "aidstat/v1/ingest.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_SUBMIT_BYTES (512 << 20)

struct as_collector_s {
    uv_loop_t *loop;
    void *zctx;
    as_outbox_t *ob;
    as_spool_t *spool;
    as_sender_t *sender;
    void *control;
    as_zpoll_t *control_poll;
    uint32_t county;
    char spool_dir[4096];
};

/* ---- glue ------------------------------------------------------------------------------------ */

static void s_on_taken(void *arg, const char *name, size_t events, size_t errors)
{
    as_collector_t *c = arg;
    if (events)
        as_sender_kick(c->sender);
}

/* An event the aggregator rejected is added to its file's errors list in done/, so that the
 * office finds every rejected row in one place (written by the spool: relative to done/'s
 * descriptor, never through a link, every cell neutralised). */
static void s_on_reject(void *arg, uint8_t kind, const uint8_t *data, size_t len, uint8_t reject,
                        const char *reason)
{
    as_collector_t *c = arg;
    if (kind != AS_ITEM_EVENT)
        return;
    Aidstat__V1__Event *e = aidstat__v1__event__unpack(NULL, len, data);
    if (!e)
        return;
    if (e->source_file && *e->source_file && !strchr(e->source_file, '/')) {
        /* the aggregator's reason reads "中文 / English" */
        const char *sep = strstr(reason, " / ");
        char zh[512];
        snprintf(zh, sizeof zh, "%.*s", sep ? (int)(sep - reason) : (int)strlen(reason), reason);
        int rc = as_spool_append_error(c->spool, e->source_file, e->source_row,
                                       e->event_id ? e->event_id : "", zh, sep ? sep + 3 : reason);
        if (rc)
            AS_WARN("collector", "cannot add a rejected row to done/%s.errors.csv: %s",
                    e->source_file, as_strerror(rc));
    }
    aidstat__v1__event__free_unpacked(e, NULL);
}

/* ---- control endpoint ----------------------------------------------------------------------- */

static void s_reply(void *sock, const char *text)
{
    zmq_send(sock, text, strlen(text), ZMQ_DONTWAIT);
}

static bool s_safe_name(const char *name)
{
    return *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200 &&
           strcmp(name, "done") != 0;
}

static void s_submit(as_collector_t *c, const char *name, const zmq_msg_t *content, char *out,
                     size_t outlen)
{
    if (!s_safe_name(name)) {
        snprintf(out, outlen,
                 "error a file name without '/' and not starting with '.' is "
                 "needed, not '%s'",
                 name);
        return;
    }
    char tmp[4400], dest[4400];
    snprintf(tmp, sizeof tmp, "%s/.submit-%d-%s.tmp", c->spool_dir, (int)getpid(), name);
    /* exclusive and never through a link: a planted name here is refused, not followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(out, outlen, "error cannot write into the spool: %s", strerror(errno));
        return;
    }
    const char *p = zmq_msg_data((zmq_msg_t *)content);
    size_t left = zmq_msg_size((zmq_msg_t *)content);
    int rc = 0;
    while (left && rc == 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            p += n, left -= (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    /* a free name: the office may submit two files of the same name */
    snprintf(dest, sizeof dest, "%s/%s", c->spool_dir, name);
    struct stat st; /* lstat: a link there counts as taken, it is never followed */
    for (int i = 2; rc == 0 && lstat(dest, &st) == 0 && i < 10000; i++)
        snprintf(dest, sizeof dest, "%s/%d-%s", c->spool_dir, i, name);
    if (rc == 0 && rename(tmp, dest) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(out, outlen, "error cannot write into the spool: %s", strerror(-rc));
        return;
    }
    AS_INFO("collector", "file %s submitted (%zu bytes); it goes through the spool",
            strrchr(dest, '/') + 1, zmq_msg_size((zmq_msg_t *)content));
    snprintf(out, outlen, "ok %s", strrchr(dest, '/') + 1);
}

static void s_nil(as_collector_t *c, const char *ym, char *out, size_t outlen)
{
    unsigned y = 0, m = 0;
    char extra;
    if (sscanf(ym, "%4u-%2u%c", &y, &m, &extra) != 2 || y < 2000 || y > 2100 || m < 1 || m > 12) {
        snprintf(out, outlen, "error a month as YYYY-MM is needed, not '%s'", ym);
        return;
    }
    Aidstat__V1__NilReport nr = AIDSTAT__V1__NIL_REPORT__INIT;
    nr.county_code = c->county;
    nr.year = y;
    nr.month = m;
    uint8_t buf[64];
    as_outbox_blob_t b = {AS_ITEM_NIL, buf, aidstat__v1__nil_report__pack(&nr, buf)};
    int rc = as_outbox_put(c->ob, &b, NULL);
    if (rc) {
        snprintf(out, outlen, "error cannot queue the nil report: %s", as_strerror(rc));
        return;
    }
    AS_INFO("collector", "nil report for %04u-%02u queued for the aggregator", y, m);
    as_sender_kick(c->sender);
    snprintf(out, outlen, "ok");
}

static void s_on_control(void *sock, void *arg)
{
    as_collector_t *c = arg;
    zmq_msg_t parts[3];
    int n = 0, more = 1;
    bool too_many = false;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0)
                return;
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 3)
            parts[n++] = m;
        else {
            too_many = true;
            zmq_msg_close(&m);
        }
    }
    char verb[16] = "", arg1[256] = "", out[512];
    size_t l = zmq_msg_size(&parts[0]) < sizeof verb ? zmq_msg_size(&parts[0]) : sizeof verb - 1;
    memcpy(verb, zmq_msg_data(&parts[0]), l);
    if (n > 1) {
        l = zmq_msg_size(&parts[1]) < sizeof arg1 ? zmq_msg_size(&parts[1]) : sizeof arg1 - 1;
        memcpy(arg1, zmq_msg_data(&parts[1]), l);
    }
    if (too_many)
        snprintf(out, sizeof out, "error too many frames");
    else if (!strcmp(verb, AS_CONTROL_SUBMIT) && n == 3)
        s_submit(c, arg1, &parts[2], out, sizeof out);
    else if (!strcmp(verb, AS_CONTROL_NIL) && n == 2)
        s_nil(c, arg1, out, sizeof out);
    else if (!strcmp(verb, AS_CONTROL_STATUS)) {
        as_sender_stats_t st;
        as_sender_stats(c->sender, &st);
        snprintf(out, sizeof out,
                 "{\"county\":%u,\"backlog\":%llu,\"rejected\":%llu,\"connected\":%s,"
                 "\"in_flight\":%zu,\"acknowledged\":%llu,\"spool_refused\":%llu}",
                 c->county, (unsigned long long)as_outbox_backlog(c->ob),
                 (unsigned long long)as_outbox_rejected(c->ob), st.welcomed ? "true" : "false",
                 st.in_flight, (unsigned long long)st.acked,
                 (unsigned long long)as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR));
    } else
        snprintf(out, sizeof out,
                 "error unknown request (submit NAME CONTENT | nil YYYY-MM | "
                 "status)");
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    s_reply(sock, out);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

as_collector_t *as_collector_new(uv_loop_t *loop, const as_collector_opts_t *o, int *err)
{
    as_collector_t *c = calloc(1, sizeof *c);
    if (!c) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    c->loop = loop;
    c->county = o->county;
    snprintf(c->spool_dir, sizeof c->spool_dir, "%s", o->spool);
    char path[4200];
    if (mkdir(o->data, 0750) != 0 && errno != EEXIST) {
        *err = -errno;
        AS_ERROR("collector", "cannot create %s: %s", o->data, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/outbox", o->data);
    if (!(c->ob = as_outbox_new(path, o->no_sync, err)))
        goto fail;
    if (!(c->zctx = zmq_ctx_new())) {
        *err = AS_E_ZMQ;
        goto fail;
    }
    char id[64];
    snprintf(id, sizeof id, "collector-%06u", o->county);
    as_sender_opts_t so = {
        .endpoint = o->aggregator,
        .collector_id = id,
        .county = o->county,
        .curve_secret = o->curve_secret,
        .aggregator_key = o->aggregator_key,
        .batch_size = o->batch_size,
        .window = o->window,
        .resend_ms = o->resend_ms,
    };
    if (!(c->sender = as_sender_new(loop, c->zctx, c->ob, &so, err)))
        goto fail;
    as_sender_on_reject(c->sender, s_on_reject, c);
    c->control = zmq_socket(c->zctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt(c->control, ZMQ_LINGER, &linger, sizeof linger);
    int64_t maxmsg = MAX_SUBMIT_BYTES;
    zmq_setsockopt(c->control, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (!strncmp(o->control, "ipc://", 6))
        unlink(o->control + 6); /* left by a killed run */
    if (zmq_bind(c->control, o->control) != 0) {
        AS_ERROR("collector", "cannot bind the control endpoint %s: %s", o->control,
                 zmq_strerror(zmq_errno()));
        *err = AS_E_ZMQ;
        goto fail;
    }
    if (!(c->control_poll = as_zpoll_new(loop, c->control, s_on_control, c, err)))
        goto fail;
    if (!(c->spool = as_spool_new(loop, o->spool, c->ob, o->reader, o->reader_arg, NULL, err)))
        goto fail;
    as_spool_on_taken(c->spool, s_on_taken, c);
    AS_INFO("collector", "county %06u: backlog %llu, rejected %llu; control at %s", o->county,
            (unsigned long long)as_outbox_backlog(c->ob),
            (unsigned long long)as_outbox_rejected(c->ob), o->control);
    return c;
fail:
    as_collector_destroy(&c);
    return NULL;
}

void as_collector_destroy(as_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_collector_t *c = *self_p;
    *self_p = NULL;
    as_spool_destroy(&c->spool); /* stop taking input first */
    as_zpoll_destroy(&c->control_poll);
    if (c->control)
        zmq_close(c->control);
    as_sender_destroy(&c->sender);
    if (c->zctx)
        zmq_ctx_term(c->zctx); /* the sender's linger is bounded */
    /* a read still running on a worker thread is dropped by the spool, never committed */
    as_outbox_destroy(&c->ob);
    free(c);
}

int as_collector_reload(as_collector_t *c)
{
    return as_sender_reload(c->sender);
}
