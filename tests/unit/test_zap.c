/* test_zap: the authorized-keys file (good lines, comments, bad lines with their line number,
 * unknown counties), reload keeping the old keys on a broken file, and the handler answering real
 * CURVE handshakes: a listed key gets through with User-Id = its county, another is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "zap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

typedef struct {
    char dir[64];
    char keys[128];
    char pub[41], sec[41];
} fx_t;

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_zap.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof f->keys, "%s/authorized_keys", f->dir);
    assert_int_equal(zmq_curve_keypair(f->pub, f->sec), 0);
    char text[256];
    snprintf(text, sizeof text, "# county office keys\n\n360730 %s\n", f->pub);
    s_write(f->keys, text);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_file(void **state)
{
    fx_t *f = *state;
    int line = 0;
    assert_int_equal(as_zap_check_file(f->keys, &line), 1);
    char path[160];
    snprintf(path, sizeof path, "%s/bad", f->dir);
    s_write(path, "# ok\n360730 tooshort\n");
    assert_int_equal(as_zap_check_file(path, &line), AS_E_PARSE);
    assert_int_equal(line, 2);
    char text[256];
    snprintf(text, sizeof text, "110101 %s\n", f->pub); /* not a county of the province */
    s_write(path, text);
    assert_int_equal(as_zap_check_file(path, &line), AS_E_PARSE);
    snprintf(path, sizeof path, "%s/missing", f->dir);
    assert_true(as_zap_check_file(path, &line) < 0);
}

static void test_handshakes(void **state)
{
    fx_t *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    void *ctx = zmq_ctx_new();
    int err = 0;
    as_zap_t *z = as_zap_new(&loop, ctx, f->keys, &err);
    assert_non_null(z);
    assert_int_equal(as_zap_keys(z), 1);

    char spub[41], ssec[41], upub[41], usec[41];
    zmq_curve_keypair(spub, ssec);
    zmq_curve_keypair(upub, usec);
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    zmq_setsockopt(server, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(server, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(server, ZMQ_CURVE_SECRETKEY, ssec, 40);
    zmq_setsockopt(server, ZMQ_ZAP_DOMAIN, AS_ZAP_DOMAIN, strlen(AS_ZAP_DOMAIN));
    char ep[128];
    snprintf(ep, sizeof ep, "ipc://%s/s.sock", f->dir);
    assert_int_equal(zmq_bind(server, ep), 0);

    void *good = zmq_socket(ctx, ZMQ_DEALER), *bad = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(good, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(bad, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(good, ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(good, ZMQ_CURVE_PUBLICKEY, f->pub, 40);
    zmq_setsockopt(good, ZMQ_CURVE_SECRETKEY, f->sec, 40);
    zmq_setsockopt(bad, ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(bad, ZMQ_CURVE_PUBLICKEY, upub, 40);
    zmq_setsockopt(bad, ZMQ_CURVE_SECRETKEY, usec, 40);
    zmq_connect(good, ep);
    zmq_connect(bad, ep);
    zmq_send(good, "hello", 5, ZMQ_DONTWAIT);
    zmq_send(bad, "intruder", 8, ZMQ_DONTWAIT);

    int got = 0, other = 0;
    for (int i = 0; i < 1500 && (got == 0 || i < 600); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, server, ZMQ_DONTWAIT) >= 0) {
            zmq_msg_init(&body);
            assert_true(zmq_msg_recv(&body, server, 0) >= 0);
            if (zmq_msg_size(&body) == 5) {
                const char *user = zmq_msg_gets(&body, "User-Id");
                assert_non_null(user);
                assert_string_equal(user, "360730");
                got++;
            } else {
                other++;
            }
            zmq_msg_close(&body);
        }
        zmq_msg_close(&rid);
        usleep(1000);
    }
    assert_int_equal(got, 1);
    assert_int_equal(other, 0);
    assert_true(as_zap_allowed(z) >= 1);
    assert_true(as_zap_denied(z) >= 1);

    /* a broken file on reload keeps the keys in force */
    s_write(f->keys, "garbage\n");
    assert_int_equal(as_zap_reload(z), AS_E_PARSE);
    assert_int_equal(as_zap_keys(z), 1);
    s_write(f->keys, "# none\n");
    assert_int_equal(as_zap_reload(z), 0);
    assert_int_equal(as_zap_keys(z), 0);

    zmq_close(good);
    zmq_close(bad);
    zmq_close(server);
    as_zap_destroy(&z);
    as_zap_destroy(&z);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_handshakes, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
