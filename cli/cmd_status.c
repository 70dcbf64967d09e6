/* aidstat status: the aggregator's collectors (connected, last heard, backlog, rejected) and the
 * ledger's newest sequence, as a table or JSON. */
#include "config.h"
#include "division.h"
#include "err.h"
#include "qclient.h"
#include "table.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int as_cmd_status(int argc, char **argv);

typedef struct {
    char endpoint[512];
    char format[16];
    int64_t timeout;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, AS_QUERY_ENDPOINT, "the aggregator's query endpoint", F(endpoint)},
    {"format", AS_CFG_STR, "table", "table | json", F(format)},
    {"timeout", AS_CFG_INT, "10", "seconds to wait for the aggregator", F(timeout)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat status [--endpoint EP] [--format table|json]\n\nThe collectors a running "
    "aidstat-aggregator knows: connected, last heard, backlog (events waiting in its outbox), "
    "accepted, duplicates, rejected; and the ledger's newest sequence number. JSON: "
    "{\"ledger_seq\":N,\"events\":N,\"collectors\":[{\"collector_id\",\"county\",\"county_name\","
    "\"connected\",\"last_heard_ms\",\"backlog\",\"accepted\",\"duplicates\",\"rejected\","
    "\"version\",\"last_batch_seq\"}]}";

static uint64_t s_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void s_ago(uint64_t ms, char *out, size_t size)
{
    if (!ms) {
        snprintf(out, size, "从未 never");
        return;
    }
    uint64_t now = s_now_ms(), d = now > ms ? (now - ms) / 1000 : 0;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    if (d < 120)
        snprintf(out, size, "%s (%" PRIu64 " s ago)", when, d);
    else if (d < 7200)
        snprintf(out, size, "%s (%" PRIu64 " min ago)", when, d / 60);
    else
        snprintf(out, size, "%s (%" PRIu64 " h ago)", when, d / 3600);
}

static const char *s_county_name(uint32_t code)
{
    const as_division_t *d = as_division_find(code);
    return d ? d->name : "";
}

int as_cmd_status(int argc, char **argv)
{
    s_opts_t o;
    char err[600];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat status: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat status: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    bool json = !strcmp(o.format, "json");
    if (!json && strcmp(o.format, "table")) {
        fprintf(stderr, "aidstat status: --format wants table or json, not '%s'\n", o.format);
        return 2;
    }
    as_division_init();
    Aidstat__V1__StatusRequest sreq = AIDSTAT__V1__STATUS_REQUEST__INIT;
    Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
    req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_STATUS;
    req.status = &sreq;
    Aidstat__V1__QueryResponse *resp = NULL;
    int timeout_ms = as_qclient_timeout_ms(o.timeout, 10000);
    rc = as_qclient_call(o.endpoint, timeout_ms, &req,
                         AIDSTAT__V1__QUERY_RESPONSE__BODY_STATUS_INFO, &resp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aidstat status: %s\n", err);
        return 1;
    }
    const Aidstat__V1__StatusResponse *s = resp->status_info;
    if (json) {
        json_t *o2 = json_object();
        json_t *arr = json_array();
        json_object_set_new(o2, "ledger_seq", json_integer((json_int_t)s->ledger_seq));
        json_object_set_new(o2, "events", json_integer((json_int_t)s->events));
        for (size_t i = 0; i < s->n_collectors; i++) {
            const Aidstat__V1__CollectorStatus *c = s->collectors[i];
            char county[8];
            snprintf(county, sizeof county, "%06u", c->county_code);
            json_t *x = json_object();
            json_object_set_new(x, "collector_id", json_string(c->collector_id));
            json_object_set_new(x, "county", json_string(county));
            json_object_set_new(x, "county_name", json_string(s_county_name(c->county_code)));
            json_object_set_new(x, "connected", json_boolean(c->connected));
            json_object_set_new(x, "last_heard_ms", json_integer((json_int_t)c->last_heard_ms));
            json_object_set_new(x, "backlog", json_integer((json_int_t)c->backlog));
            json_object_set_new(x, "accepted", json_integer((json_int_t)c->accepted));
            json_object_set_new(x, "duplicates", json_integer((json_int_t)c->duplicates));
            json_object_set_new(x, "rejected", json_integer((json_int_t)c->rejected));
            json_object_set_new(x, "version", json_string(c->software_version));
            json_object_set_new(x, "last_batch_seq", json_integer((json_int_t)c->last_batch_seq));
            json_array_append_new(arr, x);
        }
        json_object_set_new(o2, "collectors", arr);
        char *text = json_dumps(o2, JSON_COMPACT);
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o2);
    } else {
        printf("账本序号 ledger seq: %" PRIu64 " · 采集端 collectors: %zu\n", s->ledger_seq,
               s->n_collectors);
        static const bool right[] = {false, false, false, false, true, true, true, true, false};
        as_table_t *t = as_table_new(9, right);
        const char *head[] = {
            "采集端 collector", "县 county", "在线",          "最近联系 last heard", "积压 backlog",
            "接受 accepted",    "重复 dup",  "拒绝 rejected", "版本 version"};
        as_table_add(t, head);
        for (size_t i = 0; i < s->n_collectors; i++) {
            const Aidstat__V1__CollectorStatus *c = s->collectors[i];
            char county[64], heard[64], b[4][24];
            snprintf(county, sizeof county, "%06u %s", c->county_code,
                     s_county_name(c->county_code));
            s_ago(c->last_heard_ms, heard, sizeof heard);
            snprintf(b[0], 24, "%" PRIu64, c->backlog);
            snprintf(b[1], 24, "%" PRIu64, c->accepted);
            snprintf(b[2], 24, "%" PRIu64, c->duplicates);
            snprintf(b[3], 24, "%" PRIu64, c->rejected);
            const char *row[] = {c->collector_id,
                                 county,
                                 c->connected ? "是" : "否",
                                 heard,
                                 b[0],
                                 b[1],
                                 b[2],
                                 b[3],
                                 c->software_version};
            as_table_add(t, row);
        }
        as_table_print(t, stdout);
        as_table_destroy(&t);
    }
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return 0;
}
