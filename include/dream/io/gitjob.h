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
#include "dream/io/git.h"

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
 * on alt_branch. When both are foreign the error names both branches. Everything in req is
 * copied. Returns 0 and the handle in *out (may be NULL), after which on_done fires exactly
 * once; or DM_ERR_NOMEM / DM_ERR_IO (the work could not be queued) with err set, and then no
 * callback fires.
 */
int dm_gitjob_publish(struct dm_gitjob **out, uv_loop_t *loop,
                      const struct dm_gitjob_publish_req *req, struct dm_error *err);

/* Asks the operation to stop at git's next check point; its completion then fires (later, as
 * always) with DM_ERR_CANCELLED, unless it had already finished. Loop thread. */
void dm_gitjob_cancel(struct dm_gitjob *gj);

#endif
