/* err.c - error code plus message helpers (see err.h). */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(err *e, err_code code, const char *fmt, ...)
{
    if (!e) return -1;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int err_validation(err *e, const char *fmt, ...)
{
    if (!e) return -1;
    e->code = ERR_VALIDATION;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}
