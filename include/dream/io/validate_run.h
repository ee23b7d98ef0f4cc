/*
 * validate_run: the checks of generated files that must not run on the loop thread: the
 * syntax check of TypeScript/TSX/JavaScript files, by running the esbuild binary as a child
 * process on the libuv loop, and the SQL check of .sql files (dm_validate_sql: SQLite, schema
 * only, capped at 2 s, 64 MiB of heap), on libuv's threadpool with a copy of the content.
 *
 * Each check spawns `esbuild --loader=<ts|tsx|js|jsx> --log-level=error --color=false
 * --log-limit=1 --sourcefile=<path>` in its own process group, with only PATH in its
 * environment (no secrets are passed on), writes the file content to its
 * stdin, and reads stdout and stderr through pipes whose kept size is capped (the rest is read
 * and dropped, so the child never blocks). Nothing is written to disk. A deadline kills the whole
 * process group. At most max_children checks run at once; the rest wait in FIFO order.
 *
 * Finding esbuild (once, when the runner is made): the configured path (DREAM_ESBUILD, passed by
 * the caller in opts) if given — a bare name is searched on PATH, and a configured binary that
 * cannot be found is NOT replaced by another — else `esbuild` on PATH, else
 * `.tools/node_modules/.bin/esbuild` under the executable's directory's `..` and `../..` (where
 * scripts/bootstrap.sh installs it, for binaries in build/ or build/<name>/), else under
 * $DREAM_SOURCE_DIR (tests). When none is found, every check completes with DM_ERR_UNAVAILABLE.
 *
 * Threading: everything on the loop thread that owns the uv_loop_t. SIGPIPE must be ignored
 * (dm_loop_init does; dm_validate_runner_new does it too).
 */
#ifndef DREAM_VALIDATE_RUN_H
#define DREAM_VALIDATE_RUN_H

#include "dream/core/error.h"

#include <stddef.h>
#include <uv.h>

struct dm_validate_runner; /* opaque */
struct dm_validate_req;    /* opaque handle of one check */

struct dm_validate_runner_opts {
    const char *esbuild;   /* configured binary (path or bare name); NULL/"" = search; copied */
    unsigned max_children; /* checks running at once (0 = 4) */
    unsigned timeout_ms;   /* per check, from spawn to exit (0 = 20000) */
    size_t output_cap;     /* bytes kept of stdout and of stderr each (0 = 64 KiB) */
};

#define DM_VALIDATE_RUNNER_OPTS_INIT                                                               \
    {                                                                                              \
        NULL, 4, 20000, 65536                                                                      \
    }

/* Completion of one check, fired exactly once per dm_validate_run that returned 0, always from
 * the loop (never inside dm_validate_run, dm_validate_cancel or dm_validate_runner_close).
 *   status 0                  the file is valid (message is NULL)
 *   DM_ERR_INVALID            esbuild rejected it; message is its first error, as
 *                             "<path>:<line>:<column>: <text>" (e.g.
 *                             "src/c.tsx:2:18: Unexpected closing \"span\" tag does not match
 *                             opening \"div\" tag"), or "<path>: <text>" without a position
 *   DM_ERR_TIMEOUT            the deadline passed; the child's process group was SIGKILLed
 *   DM_ERR_UNAVAILABLE        no esbuild binary (or it could not be executed)
 *   DM_ERR_CANCELLED          dm_validate_cancel or dm_validate_runner_close
 *   DM_ERR_IO                 the child failed otherwise (killed, exit status without an error
 *                             message: the message then holds its stderr's last line)
 * message is borrowed for the duration of the call (NULL when status is 0). The callback may
 * start new checks or close the runner. */
typedef void (*dm_validate_run_cb)(void *arg, int status, const char *message);

/* Makes a runner on loop and resolves the esbuild binary (see above; not finding it is not an
 * error here). opts may be NULL (defaults). *out must be closed with dm_validate_runner_close.
 * Returns 0, DM_ERR_NOMEM or DM_ERR_IO (a libuv handle could not be made). */
int dm_validate_runner_new(struct dm_validate_runner **out, uv_loop_t *loop,
                           const struct dm_validate_runner_opts *opts, struct dm_error *err);

/* The esbuild binary in use (absolute or as configured), or NULL when none was found. Borrowed,
 * valid until the runner is closed. */
const char *dm_validate_runner_esbuild(const struct dm_validate_runner *r);

/* Checks that path's content (len bytes, copied) is valid for the loader chosen from path's
 * extension (dm_validate_esbuild_loader), or, for a .sql path, valid SQL (dm_validate_sql on the
 * threadpool, one SQL check at a time (SQLite's heap limit is process-wide); it counts against
 * max_children; its failure is DM_ERR_INVALID or DM_ERR_LIMIT
 * with "<path>: <dm_validate_sql's message>"; a cancelled one completes when the work is
 * over). On success returns 0, stores a borrowed handle in *out
 * (out may be NULL; valid until cb fires) and cb fires later exactly once. Returns
 * DM_ERR_INVALID (path has neither an esbuild loader nor .sql, or cb is NULL), DM_ERR_LIMIT
 * (content over 64 MiB), DM_ERR_NOMEM, or DM_ERR_CANCELLED (the runner is closing); then cb never
 * fires. */
int dm_validate_run(struct dm_validate_runner *r, const char *path, const char *content, size_t len,
                    dm_validate_run_cb cb, void *arg, struct dm_validate_req **out);

/* Cancels a check whose callback has not fired: a queued check completes with
 * DM_ERR_CANCELLED on the next loop iteration; a running one has its child killed and completes
 * with DM_ERR_CANCELLED when the child is gone. Does nothing when the completion is already
 * due. Never call it after the callback has returned. */
void dm_validate_cancel(struct dm_validate_req *req);

/* Checks queued or running (callback not fired yet). */
size_t dm_validate_runner_pending(const struct dm_validate_runner *r);

/* Checks running as child processes right now. */
size_t dm_validate_runner_running(const struct dm_validate_runner *r);

typedef void (*dm_validate_closed_cb)(void *arg);

/* Refuses new checks, cancels every queued and running one (their callbacks fire with
 * DM_ERR_CANCELLED, from the loop), closes every handle, and frees the runner in the last close
 * callback, after which done (may be NULL) fires with arg. r may be NULL (done is then not
 * called). Safe from a completion callback; calling it twice is a programmer error. */
void dm_validate_runner_close(struct dm_validate_runner *r, dm_validate_closed_cb done, void *arg);

#endif
