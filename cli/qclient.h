/* qclient: requests to the aggregator's query endpoint and their answers, with a timeout and a
 * clear error when the aggregator does not answer (shared by query, status, backup and
 * bench_query). */
#ifndef AS_QCLIENT_H
#define AS_QCLIENT_H

#include "aidstat/v1/query.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define AS_QUERY_ENDPOINT "tcp://127.0.0.1:7603"

typedef struct as_qclient_s as_qclient_t;

/* A REQ connection to endpoint (connected lazily by ZeroMQ). Returns NULL with a sentence in err
 * when the socket cannot be made or the endpoint is malformed. Destroy with as_qclient_destroy. */
as_qclient_t *as_qclient_new(const char *endpoint, char *err, size_t errlen);

/* Sends req over c and waits up to timeout_ms for the answer; same results as as_qclient_call.
 * After AS_E_TIMEOUT or AS_E_ZMQ the REQ socket is out of step: destroy c. */
int as_qclient_request(as_qclient_t *c, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                       Aidstat__V1__QueryResponse__BodyCase expect,
                       Aidstat__V1__QueryResponse **resp, char *err, size_t errlen);

/* Closes the connection and its ZeroMQ context; safe on NULL and twice. */
void as_qclient_destroy(as_qclient_t **self_p);

/* One request on a connection of its own (new, request, destroy).
 * expect: the answer's body case the caller needs (0: any). On success returns 0 with *resp
 * (caller frees with aidstat__v1__query_response__free_unpacked) and resp->status == 0.
 * Otherwise returns AS_E_TIMEOUT (no answer), AS_E_ZMQ, AS_E_PARSE (an answer that is not a
 * QueryResponse, or not of the expected kind) or the server's status, with a sentence in err. */
int as_qclient_call(const char *endpoint, int timeout_ms, const Aidstat__V1__QueryRequest *req,
                    Aidstat__V1__QueryResponse__BodyCase expect, Aidstat__V1__QueryResponse **resp,
                    char *err, size_t errlen);

/* The request of `aidstat query`: totals of year grouped by by (a dimension's canonical name,
 * borrowed), only county (a city's or county's code) when not 0. Fills tr and req; req points at
 * tr. */
void as_qclient_totals_request(Aidstat__V1__QueryRequest *req, Aidstat__V1__TotalsRequest *tr,
                               uint32_t year, const char *by, uint32_t county);

/* A command's --timeout in seconds as milliseconds; default_ms when it is unset or out of
 * range (not 1..86399). */
int as_qclient_timeout_ms(int64_t seconds, int default_ms);

#endif
