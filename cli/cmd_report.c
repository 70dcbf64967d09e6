/* aidstat report: asks a running aggregator for the year-end report (draft or final). */
#include "config.h"
#include "err.h"
#include "qclient.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int as_cmd_report(int argc, char **argv);

typedef struct {
    char endpoint[512];
    int64_t year;
    char out[1024];
    bool final;
    int64_t timeout;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, AS_QUERY_ENDPOINT, "the aggregator's query endpoint", F(endpoint)},
    {"year", AS_CFG_INT, "0", "the report's year (required)", F(year)},
    {"out", AS_CFG_STR, "",
     "folder on the aggregator's machine; files go to OUT/reports/YEAR/ (default: the "
     "aggregator's data folder)",
     F(out)},
    {"final", AS_CFG_BOOL, "false",
     "the final report: kept in the ledger and the year locked (later events become amendments)",
     F(final)},
    {"timeout", AS_CFG_INT, "120", "seconds to wait", F(timeout)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat report --year Y [--out DIR] [--final] [--endpoint EP]\n\n"
    "The year-end statistics (the eight parts: summary, supervisory units, where, whom, how "
    "much, effects, key projects, data quality) as CSV, JSON and a printable page, with a folder "
    "per supervisory unit. A draft unless --final; once final, the year is locked and the same "
    "files are written again byte for byte, with a draft including amendments in amended/.";

int as_cmd_report(int argc, char **argv)
{
    s_opts_t o;
    char err[1400];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat report: %s\n", err);
        return 2;
    }
    if (argc > 1 || o.year < 2000 || o.year > 9999) {
        fprintf(stderr, "aidstat report: want --year YYYY (see --help)\n");
        return 2;
    }
    char dir[PATH_MAX] = "";
    if (o.out[0] == '/') {
        snprintf(dir, sizeof dir, "%s", o.out);
    } else if (o.out[0]) {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) ||
            snprintf(dir, sizeof dir, "%s/%s", cwd, o.out) >= (int)sizeof dir) {
            fprintf(stderr, "aidstat report: path too long\n");
            return 2;
        }
    }
    Aidstat__V1__ReportRequest rr = AIDSTAT__V1__REPORT_REQUEST__INIT;
    rr.year = (uint32_t)o.year;
    rr.final = o.final;
    rr.out_dir = dir;
    Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
    req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPORT;
    req.report = &rr;
    Aidstat__V1__QueryResponse *resp = NULL;
    int timeout_ms = as_qclient_timeout_ms(o.timeout, 120000);
    rc = as_qclient_call(o.endpoint, timeout_ms, &req, AIDSTAT__V1__QUERY_RESPONSE__BODY__NOT_SET,
                         &resp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aidstat report: %s\n", err);
        return 1;
    }
    if (resp->body_case == AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE && resp->simple->message)
        printf("%s\n", resp->simple->message);
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return 0;
}
