/* err.h - error codes plus a message, passed up through every module.
 *
 * Modules report failure by filling an `err` and returning -1 (or NULL). The
 * API layer (api/errors.c) translates the code once, at the boundary, into the
 * DynamoDB error shape: HTTP status, `__type` namespace and `message`.
 * Messages are written to match DynamoDB's text where it is documented or
 * observable, because clients and tests compare them.
 */
#ifndef MERIDIAN_ERR_H
#define MERIDIAN_ERR_H

#include <stddef.h>

typedef enum err_code {
    ERR_NONE = 0,
    ERR_VALIDATION,                /* ValidationException (400) */
    ERR_CONDITIONAL_CHECK_FAILED,  /* ConditionalCheckFailedException (400) */
    ERR_RESOURCE_NOT_FOUND,        /* ResourceNotFoundException (400) */
    ERR_RESOURCE_IN_USE,           /* ResourceInUseException (400) */
    ERR_SERIALIZATION,             /* SerializationException (400) */
    ERR_UNKNOWN_OPERATION,         /* UnknownOperationException (400) */
    ERR_MISSING_AUTH,              /* MissingAuthenticationTokenException (400) */
    ERR_UNRECOGNIZED_CLIENT,       /* UnrecognizedClientException (400) */
    ERR_INVALID_SIGNATURE,         /* InvalidSignatureException (400) */
    ERR_INCOMPLETE_SIGNATURE,      /* IncompleteSignatureException (400) */
    ERR_ACCESS_DENIED,             /* AccessDeniedException (400) */
    ERR_LIMIT_EXCEEDED,            /* LimitExceededException (400) */
    ERR_ITEM_COLLECTION_TOO_LARGE, /* reserved */
    ERR_TRANSACTION_CONFLICT,      /* reserved for F9 */
    ERR_INTERNAL,                  /* InternalServerError (500) */
    ERR_UNAVAILABLE,               /* ServiceUnavailable (503), e.g. shutting down */
} err_code;

typedef struct err {
    err_code code;
    char msg[1024];
} err;

/* Sets code and a printf-style message; always returns -1 so callers can
 * `return err_set(e, ...)`. A NULL e is allowed and ignored. */
int err_set(err *e, err_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Shorthand for err_set(e, ERR_VALIDATION, ...). */
int err_validation(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void err_clear(err *e)
{
    e->code = ERR_NONE;
    e->msg[0] = '\0';
}

#endif
