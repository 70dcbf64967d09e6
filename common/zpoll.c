/* zpoll: a ZeroMQ socket on a libuv loop (edge-triggered ZMQ_FD handled by re-checking). */
#include "zpoll.h"
#include "log.h"

#include <stdlib.h>
#include <zmq.h>

struct as_zpoll_s {
    uv_poll_t poll;       /* readiness of ZMQ_FD */
    uv_prepare_t prepare; /* re-check ZMQ_EVENTS before the loop blocks */
    void *sock;           /* borrowed ZeroMQ socket */
    as_zpoll_cb cb;
    void *arg;
    int open_handles; /* freed when both handles are closed */
    int in_drain;     /* guards against re-entry from a callback that sends */
};

static void s_drain(as_zpoll_t *zp)
{
    if (zp->in_drain)
        return;
    zp->in_drain = 1;
    for (int rounds = 0; rounds < 64; rounds++) {
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(zp->sock, ZMQ_EVENTS, &events, &len) != 0)
            break;
        if (!(events & ZMQ_POLLIN))
            break;
        zp->cb(zp->sock, zp->arg);
    }
    zp->in_drain = 0;
}

static void s_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    s_drain(h->data);
}

static void s_prepare_cb(uv_prepare_t *h)
{
    s_drain(h->data);
}

as_zpoll_t *as_zpoll_new(uv_loop_t *loop, void *sock, as_zpoll_cb on_readable, void *arg, int *err)
{
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0) {
        *err = -zmq_errno();
        return NULL;
    }
    as_zpoll_t *zp = calloc(1, sizeof *zp);
    if (!zp) {
        *err = -12;
        return NULL;
    }
    zp->sock = sock;
    zp->cb = on_readable;
    zp->arg = arg;
    int rc = uv_poll_init(loop, &zp->poll, fd);
    if (rc != 0) {
        free(zp);
        *err = rc;
        return NULL;
    }
    zp->poll.data = zp;
    zp->open_handles = 1;
    uv_prepare_init(loop, &zp->prepare);
    zp->prepare.data = zp;
    zp->open_handles = 2;
    if ((rc = uv_poll_start(&zp->poll, UV_READABLE, s_poll_cb)) != 0 ||
        (rc = uv_prepare_start(&zp->prepare, s_prepare_cb)) != 0) {
        *err = rc;
        as_zpoll_destroy(&zp);
        return NULL;
    }
    return zp;
}

static void s_close_cb(uv_handle_t *h)
{
    as_zpoll_t *zp = h->data;
    if (--zp->open_handles == 0)
        free(zp);
}

void as_zpoll_destroy(as_zpoll_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_zpoll_t *zp = *self_p;
    *self_p = NULL;
    uv_close((uv_handle_t *)&zp->poll, s_close_cb);
    uv_close((uv_handle_t *)&zp->prepare, s_close_cb);
}
