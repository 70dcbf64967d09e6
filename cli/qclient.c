/* qclient: a request/answer to the aggregator's query endpoint with a timeout. */
#include "qclient.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

int as_qclient_timeout_ms(int64_t seconds, int default_ms)
{
    return seconds > 0 && seconds < 86400 ? (int)seconds * 1000 : default_ms;
}

int as_qclient_call(const char *endpoint, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                    Aidstat__V1__QueryResponse__BodyCase expect, Aidstat__V1__QueryResponse **resp,
                    char *err, size_t errlen)
{
    *resp = NULL;
    int rc = 0;
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    uint8_t *buf = NULL;
    int linger = 0;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        rc = AS_E_ZMQ;
        goto done;
    }
    size_t len = aidstat__v1__query_request__get_packed_size(req);
    if (!(buf = malloc(len ? len : 1))) {
        snprintf(err, errlen, "out of memory");
        rc = AS_E_NOMEM;
        goto done;
    }
    aidstat__v1__query_request__pack(req, buf);
    if (zmq_send(s, buf, len, 0) < 0) {
        snprintf(err, errlen, "cannot send to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        rc = AS_E_ZMQ;
        goto done;
    }
    zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
    int n;
    do
        n = zmq_poll(&pi, 1, timeout_ms);
    while (n < 0 && zmq_errno() == EINTR);
    if (n <= 0) {
        snprintf(err, errlen,
                 "the aggregator at %s did not answer within %d s (is aidstat-aggregator running "
                 "there? see --endpoint)",
                 endpoint, (timeout_ms + 999) / 1000);
        rc = AS_E_TIMEOUT;
        goto done;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
        zmq_msg_close(&m);
        snprintf(err, errlen, "cannot receive from %s: %s", endpoint, zmq_strerror(zmq_errno()));
        rc = AS_E_ZMQ;
        goto done;
    }
    *resp = aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    if (!*resp) {
        snprintf(err, errlen, "the answer from %s is not a QueryResponse", endpoint);
        rc = AS_E_PARSE;
        goto done;
    }
    if ((*resp)->status != 0) {
        snprintf(err, errlen, "the aggregator says: %s",
                 (*resp)->error && *(*resp)->error ? (*resp)->error : as_strerror((*resp)->status));
        rc = (*resp)->status;
        aidstat__v1__query_response__free_unpacked(*resp, NULL);
        *resp = NULL;
    } else if (expect && (*resp)->body_case != expect) {
        snprintf(err, errlen, "the aggregator at %s answered another kind of message than asked",
                 endpoint);
        rc = AS_E_PARSE;
        aidstat__v1__query_response__free_unpacked(*resp, NULL);
        *resp = NULL;
    }
done:
    free(buf);
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
