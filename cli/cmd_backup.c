/* aidstat backup: asks a running aggregator for a hot, compacted copy of its LMDB ledger. */
#include "config.h"
#include "err.h"
#include "qclient.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int as_cmd_backup(int argc, char **argv);

typedef struct {
    char endpoint[512];
    int64_t timeout;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, AS_QUERY_ENDPOINT, "the aggregator's query endpoint", F(endpoint)},
    {"timeout", AS_CFG_INT, "600", "seconds to wait for the copy", F(timeout)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat backup DIR [--endpoint EP]\n\nA hot, compacted copy of a running "
    "aggregator's LMDB ledger, written into DIR on the aggregator's machine (a relative DIR is "
    "taken from the current folder). The aggregator keeps serving while it copies.";

int as_cmd_backup(int argc, char **argv)
{
    s_opts_t o;
    char err[600];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat backup: %s\n", err);
        return 2;
    }
    if (argc != 2) {
        fprintf(stderr, "aidstat backup: want exactly one folder (see --help)\n");
        return 2;
    }
    char dir[PATH_MAX];
    if (argv[1][0] == '/') {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) ||
            snprintf(dir, sizeof dir, "%s/%s", cwd, argv[1]) >= (int)sizeof dir) {
            fprintf(stderr, "aidstat backup: path too long\n");
            return 2;
        }
    }
    Aidstat__V1__BackupRequest br = AIDSTAT__V1__BACKUP_REQUEST__INIT;
    br.directory = dir;
    Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
    req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_BACKUP;
    req.backup = &br;
    Aidstat__V1__QueryResponse *resp = NULL;
    int timeout_ms = as_qclient_timeout_ms(o.timeout, 600000);
    rc = as_qclient_call(o.endpoint, timeout_ms, &req, AIDSTAT__V1__QUERY_RESPONSE__BODY__NOT_SET,
                         &resp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aidstat backup: %s\n", err);
        return 1;
    }
    if (resp->body_case == AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE && resp->simple->message)
        printf("%s\n", resp->simple->message);
    else
        printf("backup written to %s\n", dir);
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return 0;
}
