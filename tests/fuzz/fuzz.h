/* fuzz: what every fuzz target shares — the libFuzzer entry point, a check that aborts (assert
 * may be compiled out), and the fixed validation context that keeps a crash reproducible. */
#ifndef AS_FUZZ_H
#define AS_FUZZ_H

#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called by libFuzzer, or by replay.c, once per input; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An oracle of a target: a failure is a bug the fuzzer found, so abort for it to report. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Set by replay.c when it made an allocation of this run fail (a warning may then be missing);
 * weak, so that a libFuzzer build, which has no replay.c, reads false. */
extern bool fuzz_alloc_failed __attribute__((weak));
static inline bool fuzz_allocation_failed(void)
{
    return &fuzz_alloc_failed != NULL && fuzz_alloc_failed;
}

/* "Today" for validation: fixed, so an input gives the same result on any day. */
#define FUZZ_TODAY 20261231u

/* A registry that knows the credit codes ending in 'X' (so both answers are exercised). */
static inline bool fuzz_in_registry(void *ctx, const char *code)
{
    (void)ctx;
    size_t n = 0;
    while (code[n])
        n++;
    return n && code[n - 1] == 'X';
}

#endif
