/* zpoll: a ZeroMQ socket on a libuv loop. ZMQ_FD is edge-triggered, so besides the uv_poll on
 * it, a uv_prepare handle re-reads ZMQ_EVENTS each time before the loop blocks (so after any
 * send or receive made by any callback) and keeps calling the reader while ZMQ_POLLIN is set. */
#ifndef AS_ZPOLL_H
#define AS_ZPOLL_H

#include <uv.h>

typedef struct as_zpoll_s as_zpoll_t;

/* Called while the socket has input. It should receive with ZMQ_DONTWAIT and may stop after a
 * budget (e.g. 256 messages) to let other handles run: it will be called again. */
typedef void (*as_zpoll_cb)(void *sock, void *arg);

/* Starts watching sock (not owned) on loop. Returns NULL with *err set (-errno) on failure. */
as_zpoll_t *as_zpoll_new(uv_loop_t *loop, void *sock, as_zpoll_cb on_readable, void *arg,
                         int *err);

/* Stops watching; the handles are closed asynchronously and the memory freed in their close
 * callbacks, so the loop must run once more before uv_loop_close(). Safe on NULL and twice.
 * The ZeroMQ socket is not closed. */
void as_zpoll_destroy(as_zpoll_t **self_p);

#endif
