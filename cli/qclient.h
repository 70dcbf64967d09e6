/* qclient: one request to the aggregator's query endpoint and its answer, with a timeout and a
 * clear error when the aggregator does not answer (shared by query, status and backup). */
#ifndef AS_QCLIENT_H
#define AS_QCLIENT_H

#include "aidstat/v1/query.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define AS_QUERY_ENDPOINT "tcp://127.0.0.1:7603"

/* Sends req to endpoint over a REQ socket and waits up to timeout_ms for the answer.
 * expect: the answer's body case the caller needs (0: any). On success returns 0 with *resp
 * (caller frees with aidstat__v1__query_response__free_unpacked) and resp->status == 0.
 * Otherwise returns AS_E_TIMEOUT (no answer), AS_E_ZMQ, AS_E_PARSE (an answer that is not a
 * QueryResponse, or not of the expected kind) or the server's status, with a sentence in err. */
int as_qclient_call(const char *endpoint, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                    Aidstat__V1__QueryResponse__BodyCase expect, Aidstat__V1__QueryResponse **resp,
                    char *err, size_t errlen);

/* A command's --timeout in seconds as milliseconds; default_ms when it is unset or out of
 * range (not 1..86399). */
int as_qclient_timeout_ms(int64_t seconds, int default_ms);

#endif
