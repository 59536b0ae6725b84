/* unit.h - what several unit test suites share: one arena per test (A, set up
 * and freed by arena_setup/arena_teardown) and a seedable xorshift64
 * generator (define UNIT_RNG_SEED before including to choose the sequence;
 * UNIT_NO_ARENA leaves the arena out).
 * Each test file is its own program, so the static definitions here are
 * private to it. */
#ifndef MERIDIAN_UNIT_H
#define MERIDIAN_UNIT_H

#include <stdint.h>

#include "util/arena.h"

#ifndef UNIT_NO_ARENA
static arena A;

static int arena_setup(void **state)
{
    (void)state;
    arena_init(&A);
    return 0;
}

static int arena_teardown(void **state)
{
    (void)state;
    arena_free(&A);
    return 0;
}
#endif

#ifdef UNIT_RNG_SEED
static uint64_t rng_state = UNIT_RNG_SEED;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}
#endif

#endif
