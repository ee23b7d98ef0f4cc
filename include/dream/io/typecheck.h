/*
 * typecheck: the whole change type-checked in its repository by the TypeScript compiler, run as
 * a child process off the loop thread.
 *
 * One check: (1) on libuv's threadpool, a fresh work directory is made: every TypeScript,
 * JavaScript and JSON file of the base tree written out (base_dir, read only: the per-commit
 * cache stays clean) is hard-linked into it (copied across filesystems), except the files the
 * change replaces; the change's files are written as new files; the bare packages the base and
 * the change import get an untyped-module declaration (`declare module 'x';` in
 * dream-check-untyped.d.ts: the repository's dependencies are not installed), and Node's and the
 * test runners' globals (process, Buffer, require, describe, it, expect, vi, jest, ...) are
 * declared `any` in dream-check-globals.d.ts (@types/node and the runners' types are
 * dependencies too); and
 * tsconfig.dream-check.json is generated: it extends the repository's tsconfig.json when there
 * is one (else a strict default), adds noEmit, turns incremental/composite off, sets
 * `types: []`, lists the untyped declarations and every TS/JS file of the change in `files`,
 * and — only when some package was declared untyped — sets `noImplicitAny: false` (under
 * strict, a callback passed to an untyped API, such as a Hono handler `(c) => ...`, has an
 * implicit-any parameter: the smallest relaxation that keeps wrong relative imports, missing
 * exports and type errors errors); for the same reason TS2347 (type arguments on a call of an
 * untyped function, e.g. Hono's c.req.json<T>()) is dropped from the result. (2) On the loop, `tsc
 * -p tsconfig.dream-check.json --pretty false` is spawned (uv_spawn, no shell) in its own process
 * group with only PATH and GOMEMLIMIT in its environment, under `prlimit --as=<mem>` when prlimit
 * is on PATH; stdout and stderr are read through capped buffers; a deadline kills the process
 * group. (3) On the threadpool, the work directory is removed; the diagnostics are parsed
 * (tscdiag.h). Model output is never executed: tsc only reads it. Each folder of the work
 * directory is made once per check (the ones made are remembered); when no tsc is found, the
 * base is only walked for its file limit and no work directory is made (the check ends
 * DM_ERR_UNAVAILABLE, "tsc could not run").
 *
 * Finding tsc: opts->tsc if set (a bare name is searched on PATH), else typescript's native
 * binary under .tools/typescript/ (scripts/bootstrap.sh) next to the executable (`..`, `../..`)
 * or under $DREAM_SOURCE_DIR, else `.tools/typescript/node_modules/.bin/tsc`, else `tsc` on PATH.
 *
 * Threading: dm_typecheck_* and the completion on the loop thread; the file work on the
 * threadpool (it touches only the check's own copies).
 */
#ifndef DREAM_TYPECHECK_H
#define DREAM_TYPECHECK_H

#include <stddef.h>
#include <uv.h>

#include "dream/core/error.h"
#include "dream/domain/tscdiag.h"

struct dm_typecheck; /* one check in flight; borrowed handle, valid until its completion */

/* One file of the change. path is repository-relative (no "..", no leading '/'). */
struct dm_typecheck_file {
    const char *path;
    const char *content;
    size_t len;
};

struct dm_typecheck_opts {
    const char *tsc;       /* NULL/"" = search (see above); copied */
    unsigned timeout_ms;   /* tsc's wall time (0 = 60000) */
    size_t output_cap;     /* bytes kept of stdout and of stderr each (0 = 1 MiB) */
    size_t max_file_bytes; /* a change file over it is refused, a base file over it skipped
                              (0 = 2 MiB) */
    size_t max_base_files; /* TS/JS/JSON files taken from the base (0 = 20000) */
    size_t max_diags;      /* diagnostics kept (0 = 200) */
    size_t mem_limit_mb;   /* tsc's address space (prlimit) and GOMEMLIMIT (0 = 4096) */
};

#define DM_TYPECHECK_OPTS_INIT                                                                     \
    {                                                                                              \
        NULL, 0, 0, 0, 0, 0, 0                                                                     \
    }

struct dm_typecheck_result {
    struct dm_tsc_diags diags; /* tsc's errors (empty: the change type-checks) */
    size_t files;              /* TS/JS files in the check (base files linked + the change's) */
    size_t untyped;            /* packages declared untyped */
    int repo_tsconfig;         /* 1: the repository's tsconfig.json was extended */
    size_t known;              /* diagnostics already in the baseline (the base's own), dropped */
    int from_baseline;         /* a base-only check answered from the baseline file */
    size_t ignored;            /* diagnostics only untyped packages cause (TS2347), dropped */
    int output_cut;            /* tsc said more than output_cap */
    char version[32];          /* the compiler's version ("7.0.2"), "" when unknown */
};

/* Completion, on the loop thread, exactly once and never inside dm_typecheck_start.
 *   rc 0                 tsc ran; res->diags holds its errors (none: the change type-checks)
 *   DM_ERR_LIMIT         a change file over max_file_bytes, or the base has more than
 *                        max_base_files files to check (err says which)
 *   DM_ERR_TIMEOUT       tsc did not finish within timeout_ms (its process group was killed)
 *   DM_ERR_UNAVAILABLE   no tsc found, or it could not be executed
 *   DM_ERR_IO            the work directory could not be made, or tsc failed without a
 *                        diagnostic (killed: for instance over its memory limit)
 *   DM_ERR_INVALID       a change path that is not repository-relative
 *   DM_ERR_CANCELLED     dm_typecheck_cancel
 * res is NULL unless rc is 0; res and err are borrowed for the call. */
typedef void (*dm_typecheck_cb)(void *arg, int rc, const struct dm_typecheck_result *res,
                                const struct dm_error *err);

struct dm_typecheck_req {
    const char *base_dir; /* the base tree written out (read only), or NULL: the change alone */
    const char *work_dir; /* made afresh for this check (anything there is removed first), and
                             removed after it; must not be inside base_dir */
    /* The base's own diagnostics, cached in this file (per base commit; may be NULL). With no
     * files (a base-only check): when the file exists, its diagnostics are the result and tsc
     * does not run (res->from_baseline); else tsc checks the base alone and the file is
     * written. With files: a diagnostic found in it (same file, code and message) in a file
     * the change does not replace is dropped and counted in res->known. */
    const char *baseline;
    const struct dm_typecheck_file *files; /* the change: nfiles, all copied */
    size_t nfiles;
    dm_typecheck_cb on_done;
    void *arg;
};

/* Starts a check (everything in opts and req is copied). Returns 0 and the handle in *out (may
 * be NULL), after which on_done fires exactly once; or DM_ERR_NOMEM / DM_ERR_IO (nothing
 * queued, no callback). opts may be NULL (defaults). */
int dm_typecheck_start(struct dm_typecheck **out, uv_loop_t *loop,
                       const struct dm_typecheck_opts *opts, const struct dm_typecheck_req *req,
                       struct dm_error *err);

/* Stops a check whose completion has not fired: the running tsc is killed, work not started yet
 * is skipped; the completion then fires with DM_ERR_CANCELLED (later, as always). */
void dm_typecheck_cancel(struct dm_typecheck *tc);

/* The tsc binary the search finds (opts->tsc as configured when set), or NULL. malloc'd. Any
 * thread. */
char *dm_typecheck_find_tsc(const char *configured);

#endif
