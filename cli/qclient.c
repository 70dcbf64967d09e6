/* qclient: request/answer exchanges with the aggregator's query endpoint, with a timeout. */
#include "qclient.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

struct as_qclient_s {
    void *ctx;
    void *sock;         /* REQ */
    char endpoint[512]; /* for messages */
    uint8_t *buf;       /* the packed request, reused */
    size_t cap;
};

int as_qclient_timeout_ms(int64_t seconds, int default_ms)
{
    return seconds > 0 && seconds < 86400 ? (int)seconds * 1000 : default_ms;
}

void as_qclient_totals_request(Aidstat__V1__QueryRequest *req, Aidstat__V1__TotalsRequest *tr,
                               uint32_t year, const char *by, uint32_t county)
{
    aidstat__v1__totals_request__init(tr);
    tr->year = year;
    tr->by = (char *)by;
    tr->county = county;
    aidstat__v1__query_request__init(req);
    req->body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_TOTALS;
    req->totals = tr;
}

as_qclient_t *as_qclient_new(const char *endpoint, char *err, size_t errlen)
{
    as_qclient_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_REQ) : NULL;
    int linger = 0;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(c->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        as_qclient_destroy(&c);
        return NULL;
    }
    return c;
}

void as_qclient_destroy(as_qclient_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_qclient_t *c = *self_p;
    *self_p = NULL;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->buf);
    free(c);
}

int as_qclient_request(as_qclient_t *c, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                       Aidstat__V1__QueryResponse__BodyCase expect,
                       Aidstat__V1__QueryResponse **resp, char *err, size_t errlen)
{
    *resp = NULL;
    size_t len = aidstat__v1__query_request__get_packed_size(req);
    if (len > c->cap || !c->buf) {
        uint8_t *b = realloc(c->buf, len ? len : 1);
        if (!b) {
            snprintf(err, errlen, "out of memory");
            return AS_E_NOMEM;
        }
        c->buf = b;
        c->cap = len;
    }
    aidstat__v1__query_request__pack(req, c->buf);
    if (zmq_send(c->sock, c->buf, len, 0) < 0) {
        snprintf(err, errlen, "cannot send to %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
        return AS_E_ZMQ;
    }
    zmq_pollitem_t pi = {c->sock, 0, ZMQ_POLLIN, 0};
    int n;
    do
        n = zmq_poll(&pi, 1, timeout_ms);
    while (n < 0 && zmq_errno() == EINTR);
    if (n <= 0) {
        snprintf(err, errlen,
                 "the aggregator at %s did not answer within %d s (is aidstat-aggregator running "
                 "there? see --endpoint)",
                 c->endpoint, (timeout_ms + 999) / 1000);
        return AS_E_TIMEOUT;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, 0) < 0) {
        zmq_msg_close(&m);
        snprintf(err, errlen, "cannot receive from %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
        return AS_E_ZMQ;
    }
    *resp = aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    if (!*resp) {
        snprintf(err, errlen, "the answer from %s is not a QueryResponse", c->endpoint);
        return AS_E_PARSE;
    }
    int rc = 0;
    if ((*resp)->status != 0) {
        snprintf(err, errlen, "the aggregator says: %s",
                 (*resp)->error && *(*resp)->error ? (*resp)->error : as_strerror((*resp)->status));
        rc = (*resp)->status;
    } else if (expect && (*resp)->body_case != expect) {
        snprintf(err, errlen, "the aggregator at %s answered another kind of message than asked",
                 c->endpoint);
        rc = AS_E_PARSE;
    }
    if (rc) {
        aidstat__v1__query_response__free_unpacked(*resp, NULL);
        *resp = NULL;
    }
    return rc;
}

int as_qclient_call(const char *endpoint, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                    Aidstat__V1__QueryResponse__BodyCase expect, Aidstat__V1__QueryResponse **resp,
                    char *err, size_t errlen)
{
    *resp = NULL;
    as_qclient_t *c = as_qclient_new(endpoint, err, errlen);
    if (!c)
        return AS_E_ZMQ;
    int rc = as_qclient_request(c, timeout_ms, req, expect, resp, err, errlen);
    as_qclient_destroy(&c);
    return rc;
}
