/*
 * error: the one error vocabulary of dreamd.
 *
 * Functions return 0 or a negative enum dm_err. Details go into a caller-provided
 * struct dm_error (code plus a human message). Library errors are converted at the boundary.
 * Pure; safe on any thread (no shared state).
 */
#ifndef DREAM_ERROR_H
#define DREAM_ERROR_H

#include <stddef.h>

enum dm_err {
    DM_OK = 0,
    DM_ERR_NOMEM = -1,        /* allocation failed */
    DM_ERR_INVALID = -2,      /* bad input: a job field, a setting, a reply */
    DM_ERR_IO = -3,           /* a system call or connection failed */
    DM_ERR_TIMEOUT = -4,      /* a deadline passed */
    DM_ERR_LIMIT = -5,        /* a size or count cap was hit */
    DM_ERR_NOTFOUND = -6,     /* no such thing */
    DM_ERR_EXISTS = -7,       /* already there (duplicate job, foreign branch) */
    DM_ERR_BUDGET = -8,       /* a call does not fit the job's budget */
    DM_ERR_CANCELLED = -9,    /* cancelled by a person or by shutdown */
    DM_ERR_FENCED = -10,      /* this replica no longer owns the job */
    DM_ERR_UNAVAILABLE = -11, /* a stage or service is not available */
    DM_ERR_REMOTE = -12,      /* a remote refused permanently */
    DM_ERR_TRANSIENT = -13,   /* a remote failed in a way worth retrying */
    DM_ERR_AUTH = -14,        /* authentication or authorization failed */
    DM_ERR_UNSAFE = -15,      /* refused by the safety gate */
};

#define DM_ERROR_MSG_MAX 512

struct dm_error {
    int code;                   /* 0 or an enum dm_err */
    char msg[DM_ERROR_MSG_MAX]; /* NUL-terminated, may be empty */
};

/* Clears err (NULL allowed). */
void dm_error_clear(struct dm_error *err);

/* Sets err->code and a printf-style message; returns code, so `return dm_error_set(...)` works.
 * err may be NULL. The message is truncated to DM_ERROR_MSG_MAX - 1 bytes. */
int dm_error_set(struct dm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "<prefix>: " (for context as an error travels up). Returns err->code. */
int dm_error_wrap(struct dm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short stable name of a code, e.g. "invalid", "budget". Never NULL. */
const char *dm_err_name(int code);

#endif
