/* aidstat registry import: sends the organisation registry file to a running aggregator. */
#include "config.h"
#include "err.h"
#include "qclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int as_cmd_registry(int argc, char **argv);

#define S_MAX_FILE (64u << 20)

typedef struct {
    char endpoint[512];
    int64_t timeout;
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, AS_QUERY_ENDPOINT, "the aggregator's query endpoint", F(endpoint)},
    {"timeout", AS_CFG_INT, "60", "seconds to wait", F(timeout)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat registry import FILE [--endpoint EP]\n\n"
    "Replaces the aggregator's organisation registry with FILE (CSV, UTF-8 or GB18030; headers "
    "in Chinese or English: 统一社会信用代码/credit_code, 组织名称/name, 类型/type, "
    "级别/level (省级/市级/县级), 业务主管单位/supervisor, 公开募捐资格/public_fundraising "
    "(是/否)). Events are then counted under each organisation's type and supervisory unit, and "
    "judged unregistered or unqualified for online fundraising against it.";

static char *s_read(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open %s", path);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *b = cap <= S_MAX_FILE ? realloc(buf, cap) : NULL;
            if (!b) {
                snprintf(err, errlen, "%s is too large", path);
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    *len = n;
    return buf;
}

int as_cmd_registry(int argc, char **argv)
{
    s_opts_t o;
    char err[1400];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat registry: %s\n", err);
        return 2;
    }
    if (argc != 3 || strcmp(argv[1], "import") != 0) {
        fprintf(stderr, "aidstat registry: want `import FILE` (see --help)\n");
        return 2;
    }
    size_t len;
    char *csv = s_read(argv[2], &len, err, sizeof err);
    if (!csv) {
        fprintf(stderr, "aidstat registry: %s\n", err);
        return 1;
    }
    Aidstat__V1__RegistryImportRequest ri = AIDSTAT__V1__REGISTRY_IMPORT_REQUEST__INIT;
    ri.csv.data = (uint8_t *)csv;
    ri.csv.len = len;
    Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
    req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REGISTRY_IMPORT;
    req.registry_import = &ri;
    Aidstat__V1__QueryResponse *resp = NULL;
    int timeout_ms = as_qclient_timeout_ms(o.timeout, 60000);
    rc = as_qclient_call(o.endpoint, timeout_ms, &req, AIDSTAT__V1__QUERY_RESPONSE__BODY__NOT_SET,
                         &resp, err, sizeof err);
    free(csv);
    if (rc) {
        fprintf(stderr, "aidstat registry: %s\n", err);
        return 1;
    }
    if (resp->body_case == AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE && resp->simple->message)
        printf("%s\n", resp->simple->message);
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return 0;
}
