/* dirlock: one owner per data folder — an exclusive flock on DIR/.lock with the owner's pid. */
#include "dirlock.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct as_dirlock_s {
    int fd;              /* DIR/.lock, locked while open */
    char path[PATH_MAX]; /* DIR/.lock */
};

static int s_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The pid the holder wrote (0 when the file holds none yet). */
static long s_read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end = NULL;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

as_dirlock_t *as_dirlock_take(const char *dir, long *holder, int *err)
{
    if (holder)
        *holder = 0;
    if (!dir || !*dir) {
        *err = AS_E_INVALID;
        return NULL;
    }
    int rc = s_mkdirs(dir);
    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    as_dirlock_t *l = calloc(1, sizeof *l);
    if (!l) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    if (snprintf(l->path, sizeof l->path, "%s/.lock", dir) >= (int)sizeof l->path) {
        free(l);
        *err = -ENAMETOOLONG;
        return NULL;
    }
    l->fd = open(l->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (l->fd < 0) {
        *err = -errno;
        free(l);
        return NULL;
    }
    struct stat st;
    rc = fstat(l->fd, &st) != 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (rc != 0) { /* a fifo or device planted as .lock */
        *err = rc;
        close(l->fd);
        free(l);
        return NULL;
    }
    while (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        *err = errno == EWOULDBLOCK ? AS_E_BUSY : -errno;
        if (holder && *err == AS_E_BUSY)
            *holder = s_read_pid(l->fd);
        close(l->fd);
        free(l);
        return NULL;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(l->fd, 0) != 0 || pwrite(l->fd, pid, (size_t)n, 0) != n) {
        /* the lock holds all the same; only the message of a refused second daemon suffers */
    }
    *err = 0;
    return l;
}

const char *as_dirlock_path(const as_dirlock_t *lock)
{
    return lock ? lock->path : "";
}

void as_dirlock_release(as_dirlock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_dirlock_t *l = *self_p;
    *self_p = NULL;
    close(l->fd);
    free(l);
}
