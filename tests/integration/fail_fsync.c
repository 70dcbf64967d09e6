/* fail_fsync: a test-only LD_PRELOAD shim that makes fdatasync and fsync of one file fail with
 * EIO while a flag file exists, so that a fault test can watch the real aggregator meet a disk
 * that refuses to sync. AS_FAIL_FSYNC_PATH: the suffix of the file's path whose syncs fail
 * (e.g. "/ledger/data.mdb"); AS_FAIL_FSYNC_FLAG: the flag file. Anything else passes through. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* True when fd is the file named by AS_FAIL_FSYNC_PATH and the flag file exists. */
static int s_should_fail(int fd)
{
    const char *suffix = getenv("AS_FAIL_FSYNC_PATH"), *flag = getenv("AS_FAIL_FSYNC_FLAG");
    if (!suffix || !flag || access(flag, F_OK) != 0)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    size_t sl = strlen(suffix);
    return (size_t)n >= sl && strcmp(path + n - sl, suffix) == 0;
}

/* The real function name, or EIO when fd's syncs are to fail. */
static int s_sync(const char *name, int fd)
{
    if (s_should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real ? real(fd) : -1;
}

int fdatasync(int fd)
{
    return s_sync("fdatasync", fd);
}

int fsync(int fd)
{
    return s_sync("fsync", fd);
}
