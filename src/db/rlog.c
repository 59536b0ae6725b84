/* rlog.c - replication log sequence numbers and watermark (see rlog.h). */
#include "db/rlog.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

void rlog_init(rlog *l, uint64_t last_used, hlc *clock)
{
    l->clock = clock;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->advanced, &ca);
    pthread_condattr_destroy(&ca);
    l->next = last_used + 1;
    l->stable = last_used;
    l->n_out = 0;
    l->cap = 64;
    l->out = malloc(l->cap * sizeof(*l->out));
    if (!l->out) abort();
}

void rlog_destroy(rlog *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->advanced);
    free(l->out);
    l->out = NULL;
}

#ifndef NDEBUG
/* Invariants (mu held): reservations are listed in increasing order, back to
 * back, all above the watermark and below next. */
static bool rlog_invariants(const rlog *l)
{
    uint64_t at = l->n_out ? l->out[0].first : l->next;
    if (l->stable >= at || l->stable >= l->next) return false;
    for (size_t i = 0; i < l->n_out; i++) {
        if (l->out[i].first != at || l->out[i].n == 0) return false;
        at += l->out[i].n;
    }
    return at == l->next;
}
#endif

static void append_reservation(rlog *l, uint64_t n, bool done)
{
    if (l->n_out == l->cap) {
        l->cap *= 2;
        l->out = realloc(l->out, l->cap * sizeof(*l->out));
        if (!l->out) abort();
    }
    l->out[l->n_out].first = l->next;
    l->out[l->n_out].n = n;
    l->out[l->n_out].done = done;
    /* Read under the mutex: a safe point taken after this reservation was
     * made sees it, one taken before sees a clock value no larger. */
    l->out[l->n_out].clock = atomic_load(&l->clock->last);
    l->n_out++;
    l->next += n;
}

uint64_t rlog_reserve(rlog *l, uint32_t n)
{
    assert(n > 0);
    pthread_mutex_lock(&l->mu);
    uint64_t first = l->next;
    append_reservation(l, n, false);
    assert(rlog_invariants(l));
    pthread_mutex_unlock(&l->mu);
    return first;
}

uint64_t rlog_high(rlog *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t h = l->next - 1;
    pthread_mutex_unlock(&l->mu);
    return h;
}

void rlog_advance(rlog *l, uint64_t seq)
{
    pthread_mutex_lock(&l->mu);
    if (seq >= l->next) {
        if (l->n_out == 0) {
            l->next = seq + 1;
            l->stable = seq;
            pthread_cond_broadcast(&l->advanced);
        } else {
            /* A finished reservation: the watermark passes it with the others. */
            append_reservation(l, seq + 1 - l->next, true);
        }
    }
    assert(rlog_invariants(l));
    pthread_mutex_unlock(&l->mu);
}

void rlog_done(rlog *l, uint64_t first)
{
    pthread_mutex_lock(&l->mu);
    bool found = false;
    for (size_t i = 0; i < l->n_out; i++)
        if (l->out[i].first == first) {
            assert(!l->out[i].done); /* each reservation is finished once */
            l->out[i].done = found = true;
        }
    assert(found);
    (void)found;
    /* Retire finished reservations from the front: the watermark moves past them. */
    size_t k = 0;
    while (k < l->n_out && l->out[k].done) {
        l->stable = l->out[k].first + l->out[k].n - 1;
        k++;
    }
    if (k > 0) {
        for (size_t i = k; i < l->n_out; i++)
            l->out[i - k] = l->out[i];
        l->n_out -= k;
        pthread_cond_broadcast(&l->advanced);
    }
    assert(rlog_invariants(l));
    pthread_mutex_unlock(&l->mu);
}

uint64_t rlog_stable(rlog *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t s = l->stable;
    pthread_mutex_unlock(&l->mu);
    return s;
}

uint64_t rlog_safe_point(rlog *l, uint64_t *seq)
{
    pthread_mutex_lock(&l->mu);
    *seq = l->stable;
    /* Every later reservation reads the clock after this, and the clock never
     * goes back; reservations still listed were stamped above their value.
     * Taking a fresh timestamp lets the safe point follow the wall clock while
     * no write is made. */
    uint64_t ts = hlc_now(l->clock);
    for (size_t i = 0; i < l->n_out; i++)
        if (l->out[i].clock < ts) ts = l->out[i].clock;
    pthread_mutex_unlock(&l->mu);
    return ts;
}

uint64_t rlog_wait(rlog *l, uint64_t after, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (l->stable <= after) {
        if (pthread_cond_timedwait(&l->advanced, &l->mu, &deadline) == ETIMEDOUT) break;
    }
    uint64_t s = l->stable;
    pthread_mutex_unlock(&l->mu);
    return s;
}
