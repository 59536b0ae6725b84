/* hlc.h - hybrid logical clock: the version timestamps of writes.
 *
 * A timestamp is a 64-bit value: physical milliseconds since the Unix epoch
 * in the high 48 bits, a logical counter in the low 16 bits. Rules
 * (Kulkarni et al., "Logical Physical Clocks"):
 *   send/local event:  ts = max(last + 1, wall_ms << 16)
 *   receive ts_m:      last = max(last, ts_m); then as a local event
 * so every timestamp this region issues is larger than every timestamp it has
 * issued or observed before, whatever the wall clock does. The version of a
 * write is (timestamp, origin region); replication compares versions for
 * last-writer-wins with the region name as the tie-breaker.
 * All functions are thread-safe (lock-free CAS on one 64-bit word).
 */
#ifndef MERIDIAN_HLC_H
#define MERIDIAN_HLC_H

#include <stdint.h>

typedef struct hlc {
    _Atomic uint64_t last;
} hlc;

#define HLC_LOGICAL_BITS 16
#define HLC_MS(ts)       ((ts) >> HLC_LOGICAL_BITS)

void hlc_init(hlc *c);
/* Returns a new timestamp, strictly larger than any returned or observed before. */
uint64_t hlc_now(hlc *c);
/* Records a timestamp seen from elsewhere (a replicated write, or the largest
 * version found on disk at start-up). */
void hlc_observe(hlc *c, uint64_t ts);
/* Wall clock in milliseconds (CLOCK_REALTIME plus the test offset). */
uint64_t hlc_wall_ms(void);
/* Shifts this process's wall clock as seen by hlc_wall_ms (the test-only
 * --clock-offset-ms flag: simulates a region whose clock is off). */
void hlc_set_offset_ms(int64_t offset);
/* Monotonic milliseconds (CLOCK_MONOTONIC): for timeouts, deadlines and rate
 * limits, never for versions. */
uint64_t hlc_mono_ms(void);

#endif
