/* test_config: the table-driven config — defaults, a file, flags overriding the file, positional
 * arguments kept, --help, and clear errors for unknown names and bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char data[64];
    int64_t window;
    bool verbose;
} cfg_t;

static const as_cfg_entry_t s_table[] = {
    {"data", AS_CFG_STR, "./var", "data folder", AS_CFG_FIELD(cfg_t, data)},
    {"window", AS_CFG_INT, "8", "batches", AS_CFG_FIELD(cfg_t, window)},
    {"verbose", AS_CFG_BOOL, "false", "talk", AS_CFG_FIELD(cfg_t, verbose)},
    AS_CFG_END,
};

static char s_file[64];

static int s_setup(void **state)
{
    snprintf(s_file, sizeof s_file, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(s_file);
    assert_true(fd >= 0);
    const char *text = "# comment\n\ndata = \"/srv/x\"\nwindow = 16\n";
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return 0;
}

static int s_teardown(void **state)
{
    unlink(s_file);
    return 0;
}

static int s_load(cfg_t *c, int argc, const char **in, char *err)
{
    char *argv[16];
    for (int i = 0; i < argc; i++)
        argv[i] = (char *)in[i];
    return as_config_load(s_table, c, &argc, argv, "usage: t", err, 256);
}

static void test_defaults_file_flags(void **state)
{
    cfg_t c;
    char err[256];
    const char *a1[] = {"t"};
    assert_int_equal(s_load(&c, 1, a1, err), 0);
    assert_string_equal(c.data, "./var");
    assert_int_equal(c.window, 8);
    assert_false(c.verbose);
    const char *a2[] = {"t", "pos1", "--window", "3", "--config", s_file, "--verbose", "pos2"};
    char *argv[8];
    int argc = 8;
    memcpy(argv, a2, sizeof a2);
    assert_int_equal(as_config_load(s_table, &c, &argc, argv, "usage: t", err, sizeof err), 0);
    assert_string_equal(c.data, "/srv/x");
    assert_int_equal(c.window, 3); /* the flag wins over the file */
    assert_true(c.verbose);
    assert_int_equal(argc, 3);
    assert_string_equal(argv[1], "pos1");
    assert_string_equal(argv[2], "pos2");
    const char *a3[] = {"t", "--data=/d", "--verbose=no"};
    assert_int_equal(s_load(&c, 3, a3, err), 0);
    assert_string_equal(c.data, "/d");
    assert_false(c.verbose);
}

static void test_errors(void **state)
{
    cfg_t c;
    char err[256];
    const char *a1[] = {"t", "--nope", "1"};
    assert_int_equal(s_load(&c, 3, a1, err), AS_E_INVALID);
    assert_non_null(strstr(err, "--nope"));
    const char *a2[] = {"t", "--window", "many"};
    assert_int_equal(s_load(&c, 3, a2, err), AS_E_INVALID);
    assert_non_null(strstr(err, "integer"));
    const char *a3[] = {"t", "--window"};
    assert_int_equal(s_load(&c, 2, a3, err), AS_E_INVALID);
    const char *a4[] = {"t", "--config", "/nonexistent/x.conf"};
    assert_int_equal(s_load(&c, 3, a4, err), AS_E_INVALID);
    FILE *f = fopen(s_file, "w");
    fputs("colour = blue\n", f);
    fclose(f);
    const char *a5[] = {"t", "--config", s_file};
    assert_int_equal(s_load(&c, 3, a5, err), AS_E_INVALID);
    assert_non_null(strstr(err, ":1: unknown setting 'colour'"));
}

static void test_help(void **state)
{
    cfg_t c;
    char err[256];
    const char *a[] = {"t", "--help"};
    assert_int_equal(s_load(&c, 2, a, err), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_file_flags, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_help, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
