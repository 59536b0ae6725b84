/* log.h - structured one-line logs to stderr.
 *
 * Every line is logfmt: `ts=2026-11-21T23:59:00.123Z level=info region=us-east-1 msg="..."`
 * followed by any key=value pairs the caller formats into the message. Lines
 * are written with a single write(2) so concurrent threads never interleave.
 */
#ifndef MERIDIAN_LOG_H
#define MERIDIAN_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Parses "debug", "info", "warn" or "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(log_level level);
/* Region name included in every line (copied). */
void log_set_region(const char *region);
int log_enabled(log_level level);
/* msg is a printf format; the formatted text is quoted and escaped. `kv` is
 * appended verbatim when non-NULL (already formatted as key=value ...). */
void log_write(log_level level, const char *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limit of a repeated message: true at most once per every_ms for the
 * same *last_ms (0 at first; CLOCK_MONOTONIC ms of the last true), whichever
 * of several racing threads wins. Callers log at their level when true. */
bool log_every(_Atomic uint64_t *last_ms, uint64_t every_ms);

#define log_debug(...) (log_enabled(LOG_DEBUG) ? log_write(LOG_DEBUG, NULL, __VA_ARGS__) : (void)0)
#define log_info(...)  log_write(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, NULL, __VA_ARGS__)

#endif
