/* hlc.c - hybrid logical clock (see hlc.h for the rules). */
#include "clock/hlc.h"

#include <stdatomic.h>
#include <time.h>

static int64_t g_offset_ms;

void hlc_set_offset_ms(int64_t offset)
{
    g_offset_ms = offset;
}

uint64_t hlc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + g_offset_ms;
    return ms > 0 ? (uint64_t)ms : 0;
}

uint64_t hlc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hlc_init(hlc *c)
{
    atomic_init(&c->last, 0);
}

uint64_t hlc_now(hlc *c)
{
    uint64_t wall = hlc_wall_ms() << HLC_LOGICAL_BITS;
    uint64_t last = atomic_load(&c->last);
    for (;;) {
        uint64_t next = wall > last ? wall : last + 1;
        if (atomic_compare_exchange_weak(&c->last, &last, next)) return next;
    }
}

void hlc_observe(hlc *c, uint64_t ts)
{
    uint64_t last = atomic_load(&c->last);
    while (ts > last && !atomic_compare_exchange_weak(&c->last, &last, ts)) {
    }
}
