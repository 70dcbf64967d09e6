/* test_dirlock: one owner per data folder — a second take (same process or another) is refused
 * with the holder's pid and changes nothing, the lock goes with its owner (release or exit),
 * missing folders are made, and a planted symlink or fifo is never followed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dirlock.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char dir[64];
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/as-dirlock-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static long s_pid_in(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    long pid = 0;
    assert_int_equal(fscanf(fp, "%ld", &pid), 1);
    fclose(fp);
    return pid;
}

static void test_second_take_refused(void **state)
{
    fx_t *f = *state;
    int err = -1;
    long holder = -1;
    as_dirlock_t *a = as_dirlock_take(f->dir, &holder, &err);
    assert_non_null(a);
    assert_int_equal(err, 0);
    assert_int_equal(holder, 0);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/.lock", f->dir);
    assert_string_equal(as_dirlock_path(a), path);
    assert_int_equal(s_pid_in(path), (long)getpid());
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a second open file in the same process conflicts too (flock is per open file) */
    as_dirlock_t *b = as_dirlock_take(f->dir, &holder, &err);
    assert_null(b);
    assert_int_equal(err, AS_E_BUSY);
    assert_int_equal(holder, (long)getpid());
    assert_int_equal(s_pid_in(path), (long)getpid()); /* unchanged */

    /* another process is refused and names the holder */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int e = 0;
        long h = 0;
        as_dirlock_t *c = as_dirlock_take(f->dir, &h, &e);
        _exit(c == NULL && e == AS_E_BUSY && h == (long)getppid() ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    as_dirlock_release(&a);
    assert_null(a);
    as_dirlock_release(&a); /* twice is safe */
    b = as_dirlock_take(f->dir, &holder, &err);
    assert_non_null(b);
    as_dirlock_release(&b);
}

static void test_lock_goes_with_its_process(void **state)
{
    fx_t *f = *state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int e = 0;
        as_dirlock_t *c = as_dirlock_take(f->dir, NULL, &e);
        char ok = c ? 'y' : 'n';
        if (write(pipefd[1], &ok, 1) != 1)
            _exit(2);
        pause(); /* held until killed: no release, no exit handler */
        _exit(0);
    }
    char ok = 0;
    assert_int_equal(read(pipefd[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');
    int err = 0;
    long holder = 0;
    assert_null(as_dirlock_take(f->dir, &holder, &err));
    assert_int_equal(err, AS_E_BUSY);
    assert_int_equal(holder, (long)child);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    as_dirlock_t *l = as_dirlock_take(f->dir, &holder, &err);
    assert_non_null(l); /* no stale lock after kill -9 */
    as_dirlock_release(&l);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_makes_missing_folders(void **state)
{
    fx_t *f = *state;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/a/b/data", f->dir);
    int err = -1;
    as_dirlock_t *l = as_dirlock_take(dir, NULL, &err);
    assert_non_null(l);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    as_dirlock_release(&l);
    assert_null(as_dirlock_take("", NULL, &err));
    assert_int_equal(err, AS_E_INVALID);
}

static void test_planted_lock_files_refused(void **state)
{
    fx_t *f = *state;
    char target[PATH_MAX], link[PATH_MAX];
    snprintf(target, sizeof target, "%s/victim", f->dir);
    snprintf(link, sizeof link, "%s/.lock", f->dir);
    FILE *fp = fopen(target, "w");
    assert_non_null(fp);
    fputs("precious\n", fp);
    fclose(fp);
    assert_int_equal(symlink(target, link), 0);
    int err = 0;
    assert_null(as_dirlock_take(f->dir, NULL, &err));
    assert_int_equal(err, -ELOOP);
    char buf[32] = "";
    fp = fopen(target, "r");
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "precious\n");

    assert_int_equal(unlink(link), 0);
    assert_int_equal(mkfifo(link, 0600), 0);
    assert_null(as_dirlock_take(f->dir, NULL, &err));
    assert_int_equal(err, -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_take_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lock_goes_with_its_process, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_makes_missing_folders, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_planted_lock_files_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
