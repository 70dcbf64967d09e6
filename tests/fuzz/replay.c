/* replay: runs a fuzz target without libFuzzer — LLVMFuzzerTestOneInput over every file of the
 * directories (or files) named on the command line, then each input again with its 1st, 2nd, ...
 * allocation failing, so the error paths run under the sanitizers too (Fluent Bit's fuzzers do
 * the same). This build links with -Wl,--wrap=malloc,calloc,realloc: the allocations of our own
 * code and of the target are counted here; those inside shared libraries are not. */
#include "fuzz.h"

#include <dirent.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define FAIL_RUNS_MAX 256 /* an input with more allocations fails a spread of them */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool s_armed;         /* counting the target's allocations */
static unsigned long s_n;    /* allocations so far in this run */
static unsigned long s_fail; /* the one to fail (1-based), 0: none */

bool fuzz_alloc_failed; /* see fuzz.h */

static bool s_fails(void)
{
    if (!s_armed || ++s_n != s_fail)
        return false;
    fuzz_alloc_failed = true;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return s_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return s_fails() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return s_fails() ? NULL : __real_realloc(p, n);
}

/* Runs the target on data with allocation number fail failing (0: none); returns how many
 * allocations the run made. */
static unsigned long s_run(const uint8_t *data, size_t size, unsigned long fail)
{
    s_n = 0;
    s_fail = fail;
    fuzz_alloc_failed = false;
    s_armed = true;
    LLVMFuzzerTestOneInput(data, size);
    s_armed = false;
    return s_n;
}

static size_t s_files, s_fail_runs;

static int s_replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    rewind(fp);
    /* exactly the input's size, as libFuzzer gives it: a read past the end is caught */
    uint8_t *data = __real_malloc(len > 0 ? (size_t)len : 1);
    if (len < 0 || !data || fread(data, 1, (size_t)len, fp) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(fp);
        free(data);
        return -1;
    }
    fclose(fp);
    size_t size = (size_t)len;
    unsigned long allocs = s_run(data, size, 0);
    unsigned long step = allocs > FAIL_RUNS_MAX ? allocs / FAIL_RUNS_MAX : 1;
    for (unsigned long k = 1; k <= allocs; k += step, s_fail_runs++)
        s_run(data, size, k);
    free(data);
    s_files++;
    return 0;
}

static int s_replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return s_replay_file(path);
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        perror(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
            s_replay_file(file) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (s_replay(argv[i]) != 0)
            rc = 1;
    printf("replayed %zu inputs, and %zu runs with an allocation failing\n", s_files, s_fail_runs);
    return s_files == 0 ? 1 : rc;
}
