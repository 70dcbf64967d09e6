/* test_zpoll: a ZeroMQ socket on the libuv loop — every message of a burst is read although
 * ZMQ_FD is edge-triggered (the reader stops after a small budget each call), and destroy leaves
 * a loop that closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "zpoll.h"

#include <stdio.h>
#include <time.h>
#include <uv.h>
#include <zmq.h>

typedef struct {
    uv_loop_t loop;
    void *ctx, *pull, *push;
    as_zpoll_t *zp;
    int got;
} fx_t;

static fx_t s_fx;

static void s_reader(void *sock, void *arg)
{
    fx_t *f = arg;
    for (int i = 0; i < 3; i++) { /* a tiny budget: zpoll must call again */
        char buf[16];
        if (zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT) < 0)
            return;
        f->got++;
    }
}

static int s_setup(void **state)
{
    fx_t *f = &s_fx;
    *f = (fx_t){0};
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->ctx = zmq_ctx_new();
    f->pull = zmq_socket(f->ctx, ZMQ_PULL);
    f->push = zmq_socket(f->ctx, ZMQ_PUSH);
    assert_int_equal(zmq_bind(f->pull, "inproc://zpoll"), 0);
    assert_int_equal(zmq_connect(f->push, "inproc://zpoll"), 0);
    int err = 0;
    f->zp = as_zpoll_new(&f->loop, f->pull, s_reader, f, &err);
    assert_non_null(f->zp);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_zpoll_destroy(&f->zp);
    as_zpoll_destroy(&f->zp);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    int linger = 0;
    zmq_setsockopt(f->push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(f->push);
    zmq_close(f->pull);
    zmq_ctx_term(f->ctx);
    return 0;
}

static void s_run_until(fx_t *f, int want)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (f->got < want && t.tv_sec - t0.tv_sec < 3);
}

static void test_burst_fully_read(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(zmq_send(f->push, "m", 1, 0), 1);
    s_run_until(f, 1000);
    assert_int_equal(f->got, 1000);
    /* later messages after the socket went quiet are still seen */
    assert_int_equal(zmq_send(f->push, "n", 1, 0), 1);
    s_run_until(f, 1001);
    assert_int_equal(f->got, 1001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_fully_read, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
