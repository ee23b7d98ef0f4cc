/*
 * error: setting, wrapping and naming errors (see include/dream/core/error.h). Pure, any thread.
 */
#include "dream/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dm_error_clear(struct dm_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int dm_error_set(struct dm_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int dm_error_wrap(struct dm_error *err, const char *fmt, ...)
{
    char prefix[DM_ERROR_MSG_MAX];
    char old[DM_ERROR_MSG_MAX];
    va_list ap;

    if (!err) {
        return DM_ERR_INVALID;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    {
        /* Truncation is fine here: the message is for people. */
        size_t n = strlen(prefix);
        if (n > sizeof(err->msg) - 3) {
            n = sizeof(err->msg) - 3;
        }
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
        n += 2;
        size_t m = strlen(old);
        if (m > sizeof(err->msg) - 1 - n) {
            m = sizeof(err->msg) - 1 - n;
        }
        memcpy(err->msg + n, old, m);
        err->msg[n + m] = '\0';
    }
    return err->code;
}

const char *dm_err_name(int code)
{
    switch (code) {
    case DM_OK:
        return "ok";
    case DM_ERR_NOMEM:
        return "nomem";
    case DM_ERR_INVALID:
        return "invalid";
    case DM_ERR_IO:
        return "io";
    case DM_ERR_TIMEOUT:
        return "timeout";
    case DM_ERR_LIMIT:
        return "limit";
    case DM_ERR_NOTFOUND:
        return "notfound";
    case DM_ERR_EXISTS:
        return "exists";
    case DM_ERR_BUDGET:
        return "budget";
    case DM_ERR_CANCELLED:
        return "cancelled";
    case DM_ERR_FENCED:
        return "fenced";
    case DM_ERR_UNAVAILABLE:
        return "unavailable";
    case DM_ERR_REMOTE:
        return "remote";
    case DM_ERR_TRANSIENT:
        return "transient";
    case DM_ERR_AUTH:
        return "auth";
    case DM_ERR_UNSAFE:
        return "unsafe";
    default:
        return "unknown";
    }
}
