/*
 * gitjob: git's adapter to the event loop. git.h's operations are synchronous and block on disk
 * and network; each call here copies its inputs, runs one operation on libuv's threadpool,
 * copies the results and the error text out and calls the completion back on the loop thread.
 * The worker touches only the gitjob's own copies: never a uv handle, curl, hiredis or a job.
 *
 * Owns: each operation in flight (its copies, its cancel flag and its uv_work_t), freed right
 * after its completion returned. Loop thread only (the git work itself runs on a threadpool
 * thread).
 */
#ifndef DREAM_GITJOB_H
#define DREAM_GITJOB_H

#include <stddef.h>
#include <uv.h>

#include "dream/core/error.h"
#include "dream/domain/repo.h"
#include "dream/io/git.h"

/* Git operations running on the threadpool at once; the others wait their turn in order (a
 * silent remote can hold a thread until its TCP connection dies). */
#define DM_GITJOB_PARALLEL 2

/* One git operation in flight. The handle returned through *out is borrowed: valid until the
 * completion fires. */
struct dm_gitjob;

/* Completion of dm_gitjob_list_tree, on the loop thread, exactly once and never inside the call
 * that started it. rc 0: tree holds the listing; else a negative enum dm_err (those of
 * dm_git_list_tree) with err set and tree NULL. tree and err are borrowed for the call. */
typedef void (*dm_gitjob_tree_cb)(void *arg, int rc, const struct dm_git_tree *tree,
                                  const struct dm_error *err);

struct dm_gitjob_tree_req {
    const struct dm_git_opts *opts; /* copied; opts->cancel is ignored: use dm_gitjob_cancel */
    const char *owner;
    const char *repo;
    const char *base;
    int refresh;      /* as dm_git_list_tree's */
    size_t max_paths; /* as dm_git_list_tree's */
    dm_gitjob_tree_cb on_done;
    void *arg;
};

/*
 * Lists the files of base of owner/repo (dm_git_list_tree) on the threadpool. Everything in req
 * is copied. Returns 0 and the handle in *out (may be NULL), after which on_done fires exactly
 * once; or DM_ERR_NOMEM / DM_ERR_IO (the work could not be queued) with err set, and then no
 * callback fires.
 */
int dm_gitjob_list_tree(struct dm_gitjob **out, uv_loop_t *loop,
                        const struct dm_gitjob_tree_req *req, struct dm_error *err);

/* What a publication made. */
struct dm_gitjob_published {
    struct dm_git_result git;
    const char *branch; /* the branch the files are on: req->branch or req->alt_branch */
};

/* Completion of dm_gitjob_publish, on the loop thread, exactly once and never inside the call
 * that started it. rc 0: res holds the result; else a negative enum dm_err (those of
 * dm_git_publish) with err set and res NULL. res and err are borrowed for the call. */
typedef void (*dm_gitjob_publish_cb)(void *arg, int rc, const struct dm_gitjob_published *res,
                                     const struct dm_error *err);

struct dm_gitjob_publish_req {
    const struct dm_git_opts *opts; /* copied; opts->cancel is ignored: use dm_gitjob_cancel */
    const char *owner;
    const char *repo;
    const char *base;
    const char *branch;
    const char *alt_branch; /* NULL = none; used when branch belongs to someone else */
    const char *job_id;
    const char *spec_id;
    const char *message;
    long long commit_time;
    const struct dm_git_file *files; /* nfiles of them, copied */
    size_t nfiles;
    dm_gitjob_publish_cb on_done;
    void *arg;
};

/*
 * Publishes the files as one commit (dm_git_publish) on the threadpool: on req->branch, or,
 * when that branch exists and was not made by this job (DM_ERR_EXISTS) and alt_branch is set,
 * on alt_branch. When both are foreign the error names both branches. One publication per
 * remote runs at a time; the ones queued meanwhile for the same remote, base and credentials
 * go together over one push connection (dm_git_publish_many), each with its own result; a job
 * of the batch cancelled (dm_gitjob_cancel) stops only itself, the connection stops when all
 * of them are. A
 * look-up of the base (refresh) of any gitjob, or a push's advertisement, that began after a
 * gitjob was asked for answers it without a connection (opts->coalesce_since_ms = the time of
 * the dm_gitjob_* call unless the caller set it). Mirrors that need it are
 * repacked by a gitjob of their own after the work that marked them. Everything in req is
 * copied. Returns 0 and the handle in *out (may be NULL), after which on_done fires exactly
 * once; or DM_ERR_NOMEM / DM_ERR_IO (the work could not be queued) with err set, and then no
 * callback fires.
 */
int dm_gitjob_publish(struct dm_gitjob **out, uv_loop_t *loop,
                      const struct dm_gitjob_publish_req *req, struct dm_error *err);

/* ---- reading the base of a change (dream/domain/repo.h) ---- */

/* What dm_gitjob_read_repo found. */
struct dm_gitjob_repo {
    struct dm_repo *repo;        /* the base read (owned: the completion may take it, setting NULL);
                                    NULL when cached */
    char commit[DM_GIT_OID_HEX]; /* the commit read ("" when empty) */
    int cached;                  /* 1: commit is one of req->known: nothing was read (repo NULL) */
    int empty;      /* 1: the remote has no such branch or is empty: repo is an empty dm_repo
                       (default conventions, no tree, no files) */
    size_t skipped; /* files chosen but not kept: binary content, too big to read */
    double ms;      /* wall time of the work on the threadpool */
};

/* Completion of dm_gitjob_read_repo, on the loop thread, exactly once and never inside the call
 * that started it. rc 0: res holds the result; else a negative enum dm_err (those of
 * dm_git_base_open and dm_git_base_read) with err set and res NULL. */
typedef void (*dm_gitjob_repo_cb)(void *arg, int rc, struct dm_gitjob_repo *res,
                                  const struct dm_error *err);

struct dm_gitjob_repo_req {
    const struct dm_git_opts *opts; /* copied; opts->cancel is ignored: use dm_gitjob_cancel */
    const char *owner;
    const char *repo;
    const char *base;
    const char *commit;           /* NULL: the tip of base; else this commit (40 hex) */
    int refresh;                  /* as dm_git_base_open's */
    struct dm_repo_limits limits; /* 0 fields: the defaults */
    const char *const *known;     /* commits the caller already holds (copied): when the one
                                     to read is among them nothing is read (res->cached) */
    size_t n_known;
    dm_gitjob_repo_cb on_done;
    void *arg;
};

/*
 * Reads the base of a change on the threadpool, in one piece of work: opens the commit
 * (dm_git_base_open), lists its tree with sizes (at most DM_REPO_TREE_MAX paths), reads the
 * fixed files (dm_repo_select DM_REPO_PHASE_FIXED), detects the stack (dm_stack_detect), then
 * reads the files of the context (DM_REPO_PHASE_CONTEXT), every file at most
 * limits.file_bytes, skipping what is not text (dm_repo_text_check). Returns 0 and the handle
 * in *out (may be NULL), after which on_done fires exactly once; or DM_ERR_NOMEM / DM_ERR_IO
 * with err set, and then no callback fires.
 */
int dm_gitjob_read_repo(struct dm_gitjob **out, uv_loop_t *loop,
                        const struct dm_gitjob_repo_req *req, struct dm_error *err);

/* Asks the operation to stop at git's next check point; its completion then fires (later, as
 * always) with DM_ERR_CANCELLED, unless it had already finished. Loop thread. */
void dm_gitjob_cancel(struct dm_gitjob *gj);

#endif
