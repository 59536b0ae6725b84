/* test_log.c - util/log.c: log_every, the rate limit of repeated log lines. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/log.h"

static void test_log_every_once_per_interval(void **state)
{
    (void)state;
    _Atomic uint64_t last = 0;
    assert_true(log_every(&last, 60000)); /* the first one is logged */
    uint64_t at = atomic_load(&last);
    assert_true(at != 0);
    for (int i = 0; i < 100; i++)
        assert_false(log_every(&last, 60000)); /* then none within the interval */
    assert_true(atomic_load(&last) == at);
    /* Once the interval has passed (here: an interval of 0), the next one is. */
    assert_true(log_every(&last, 0));
    /* An interval counts from the last logged line: move it back, as if it
     * had been logged an hour ago. */
    atomic_store(&last, atomic_load(&last) > 3600000 ? atomic_load(&last) - 3600000 : 1);
    assert_true(log_every(&last, 60000));
    assert_false(log_every(&last, 60000));
}

#define RACERS 8

typedef struct racer {
    _Atomic uint64_t *last;
    int won;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 1000; i++)
        r->won += log_every(r->last, 60000) ? 1 : 0;
    return NULL;
}

/* Threads racing on one limit: exactly one of them logs. */
static void test_log_every_racing_threads(void **state)
{
    (void)state;
    _Atomic uint64_t last = 0;
    pthread_t th[RACERS];
    racer rs[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){.last = &last, .won = 0};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    int won = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        won += rs[i].won;
    }
    assert_int_equal(won, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_every_once_per_interval),
        cmocka_unit_test(test_log_every_racing_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
