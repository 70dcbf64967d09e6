/* test_registry: CSV import (Chinese and English headers, BOM, quoting, GB18030), bad rows,
 * stable supervisory-unit ids across imports, reload from LMDB, the ledger callbacks. */
#include "err.h"
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lmdb.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    MDB_env *env;
    as_registry_t *reg;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_registry.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(mdb_env_create(&f->env), 0);
    mdb_env_set_maxdbs(f->env, 8);
    assert_int_equal(mdb_env_open(f->env, f->dir, MDB_NOSYNC | MDB_NOTLS, 0600), 0);
    int err;
    f->reg = as_registry_new(f->env, &err);
    assert_non_null(f->reg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    as_registry_destroy(&f->reg);
    as_registry_destroy(&f->reg);
    mdb_env_close(f->env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char zh_csv[] =
    "\xEF\xBB\xBF"
    "组织名称,统一社会信用代码,类型,级别,业务主管单位,公开募捐资格\r\n"
    "江西省慈善总会,51360000MJB000001A,社会团体,省级,江西省民政厅,是\r\n"
    "\"赣州市阳光社工服务中心, 南康\",52360700MJB000002B,社会工作服务机构,市级,赣州市民政局,否\r\n"
    "宁都县志愿者协会,51360730MJB000003C,志愿服务组织,县级,宁都县民政局,否\r\n"
    "江西省扶贫基金会,53360000MJB000004D,基金会,省级,江西省民政厅,是\r\n"
    "坏行,SHORT,社会团体,省级,江西省民政厅,是\r\n"
    "类型不对,51360000MJB000005E,公司,省级,江西省民政厅,是\r\n"
    "\r\n";

static void test_import_chinese(void **state)
{
    fx_t *f = *state;
    as_registry_import_t res;
    assert_int_equal(as_registry_import_csv(f->reg, zh_csv, sizeof zh_csv - 1, &res), 0);
    assert_int_equal(res.imported, 4);
    assert_int_equal(res.rejected, 2);
    assert_non_null(strstr(res.errors, "row 6"));
    assert_non_null(strstr(res.errors, "row 7"));
    assert_int_equal(as_registry_count(f->reg), 4);

    as_registry_org_t o;
    assert_int_equal(as_registry_lookup(f->reg, "52360700mjb000002b", &o), 0);
    assert_string_equal(o.name, "赣州市阳光社工服务中心, 南康");
    assert_int_equal(o.type, AS_ORGTYPE_SOCIAL_WORK);
    assert_int_equal(o.level, AS_ORGLEVEL_CITY);
    assert_false(o.fundraising);
    /* units numbered in order of first appearance, 1… */
    assert_int_equal(o.supervisor, 2);
    assert_string_equal(as_registry_unit_name(f->reg, 1), "江西省民政厅");
    assert_string_equal(as_registry_unit_name(f->reg, 2), "赣州市民政局");
    assert_string_equal(as_registry_unit_name(f->reg, 3), "宁都县民政局");
    assert_null(as_registry_unit_name(f->reg, 4));
    assert_int_equal(as_registry_lookup(f->reg, "53360000MJB000004D", &o), 0);
    assert_int_equal(o.supervisor, 1);
    assert_true(o.fundraising);
    assert_int_equal(o.level, AS_ORGLEVEL_PROVINCIAL);
    assert_int_equal(as_registry_lookup(f->reg, "51360000MJB000005E", &o), AS_E_NOTFOUND);

    as_org_info_t info;
    assert_int_equal(as_registry_org_cb(f->reg, "51360730MJB000003C", &info), 0);
    assert_int_equal(info.supervisor, 3);
    assert_int_equal(info.type, AS_ORGTYPE_VOLUNTEER);
    assert_int_equal(info.level, AS_ORGLEVEL_COUNTY);
    assert_int_not_equal(as_registry_org_cb(f->reg, "91360000MA0000000X", &info), 0);
    assert_string_equal(as_registry_unit_cb(f->reg, 3), "宁都县民政局");
    assert_null(as_registry_unit_cb(f->reg, 0));
}

static void test_english_reimport_keeps_ids(void **state)
{
    fx_t *f = *state;
    assert_int_equal(as_registry_import_csv(f->reg, zh_csv, sizeof zh_csv - 1, NULL), 0);
    /* a new file: another order of units, one new unit, English headers, LF */
    const char en[] = "credit_code,name,type,level,supervisor,public_fundraising\n"
                      "51360730MJB000003C,Ningdu volunteers,volunteer,county,宁都县民政局,no\n"
                      "51360000MJB000009X,New group,social_group,provincial,江西省教育厅,yes\n"
                      "51360000MJB000001A,Charity,social_group,provincial,江西省民政厅,1\n";
    as_registry_import_t res;
    assert_int_equal(as_registry_import_csv(f->reg, en, sizeof en - 1, &res), 0);
    assert_int_equal(res.imported, 3);
    assert_int_equal(as_registry_count(f->reg), 3); /* the import replaces the registry */
    as_registry_org_t o;
    assert_int_equal(as_registry_lookup(f->reg, "51360730MJB000003C", &o), 0);
    assert_int_equal(o.supervisor, 3);
    assert_int_equal(as_registry_lookup(f->reg, "51360000MJB000009X", &o), 0);
    assert_int_equal(o.supervisor, 4);
    assert_string_equal(as_registry_unit_name(f->reg, 4), "江西省教育厅");
    assert_int_equal(as_registry_lookup(f->reg, "52360700MJB000002B", &o), AS_E_NOTFOUND);

    as_registry_unit_t *u;
    size_t n;
    assert_int_equal(as_registry_units(f->reg, &u, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(u[3].id, 4);
    free(u);

    /* a fresh registry object over the same LMDB sees the same */
    as_registry_t *again = as_registry_new(f->env, NULL);
    assert_non_null(again);
    assert_int_equal(as_registry_count(again), 3);
    assert_string_equal(as_registry_unit_name(again, 2), "赣州市民政局");
    as_registry_destroy(&again);
    assert_int_equal(as_registry_reload(f->reg), 0);
    assert_int_equal(as_registry_count(f->reg), 3);
}

static void test_gb18030(void **state)
{
    fx_t *f = *state;
    /* "统一社会信用代码,组织名称\r\n51360000MJB000001A,慈善总会\r\n" in GB18030 */
    const char gb[] = "\xcd\xb3\xd2\xbb\xc9\xe7\xbb\xe1\xd0\xc5\xd3\xc3\xb4\xfa\xc2\xeb,"
                      "\xd7\xe9\xd6\xaf\xc3\xfb\xb3\xc6\r\n"
                      "51360000MJB000001A,\xb4\xc8\xc9\xc6\xd7\xdc\xbb\xe1\r\n";
    as_registry_import_t res;
    assert_int_equal(as_registry_import_csv(f->reg, gb, sizeof gb - 1, &res), 0);
    as_registry_org_t o;
    assert_int_equal(as_registry_lookup(f->reg, "51360000MJB000001A", &o), 0);
    assert_string_equal(o.name, "慈善总会");
    assert_int_equal(o.supervisor, 0);
    assert_int_equal(o.type, AS_ORGTYPE_OTHER);
}

static void test_bad_files_change_nothing(void **state)
{
    fx_t *f = *state;
    assert_int_equal(as_registry_import_csv(f->reg, zh_csv, sizeof zh_csv - 1, NULL), 0);
    const char nocode[] = "name,type\nA,foundation\n";
    as_registry_import_t res;
    assert_int_equal(as_registry_import_csv(f->reg, nocode, sizeof nocode - 1, &res), AS_E_INVALID);
    assert_non_null(strstr(res.errors, "credit code"));
    const char allbad[] = "credit_code,level\nSHORT,provincial\n51360000MJB000001A,galactic\n";
    assert_int_equal(as_registry_import_csv(f->reg, allbad, sizeof allbad - 1, &res), AS_E_INVALID);
    assert_int_equal(res.rejected, 2);
    assert_int_equal(as_registry_count(f->reg), 4);
    assert_int_equal(as_registry_reload(f->reg), 0);
    assert_int_equal(as_registry_count(f->reg), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_chinese, setup, teardown),
        cmocka_unit_test_setup_teardown(test_english_reimport_keeps_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gb18030, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
