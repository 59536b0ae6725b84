/* log.c - structured one-line logs to stderr (see log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level g_level = LOG_INFO;
static char g_region[128] = "";

int log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

void log_set_level(log_level level)
{
    g_level = level;
}

void log_set_region(const char *region)
{
    snprintf(g_region, sizeof(g_region), "%s", region);
}

bool log_every(_Atomic uint64_t *last_ms, uint64_t every_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t last = atomic_load(last_ms);
    return (last == 0 || now - last >= every_ms) &&
           atomic_compare_exchange_strong(last_ms, &last, now);
}

int log_enabled(log_level level)
{
    return level >= g_level;
}

void log_write(log_level level, const char *kv, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < g_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);

    char line[2048];
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    if (g_region[0] && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " region=%s", g_region);
    if (n < (int)sizeof(line) - 8) {
        n += snprintf(line + n, sizeof(line) - (size_t)n, " msg=\"");
        for (const char *p = msg; *p && n < (int)sizeof(line) - 4; p++) {
            if (*p == '"' || *p == '\\') line[n++] = '\\';
            line[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        }
        line[n++] = '"';
    }
    if (kv && n < (int)sizeof(line) - 2)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", kv);
    if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
