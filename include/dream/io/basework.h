/*
 * basework: the whole-change checks' work on the base, run on libuv's threadpool and completed
 * on the loop thread (the adapter for dm_git_checkout, as gitjob is for the other git
 * operations), and the migration replay (dm_migrate_replay over the base's migrations read from
 * the written-out base plus the change's new ones).
 *
 * Each call copies its inputs; the worker touches only its own copies; the completion fires on
 * the loop exactly once, never inside the call that started it. Loop thread (the work itself on
 * a threadpool thread).
 */
#ifndef DREAM_BASEWORK_H
#define DREAM_BASEWORK_H

#include <stddef.h>
#include <uv.h>

#include "dream/core/error.h"
#include "dream/domain/migrate.h"
#include "dream/io/git.h"

struct dm_basework; /* one piece of work in flight; borrowed handle, valid until completion */

/* rc 0: co says where the base is written out; else dm_git_checkout's errors, co NULL. */
typedef void (*dm_basework_checkout_cb)(void *arg, int rc, const struct dm_git_checkout *co,
                                        const struct dm_error *err);

struct dm_basework_checkout_req {
    const struct dm_git_opts *opts; /* copied; opts->cancel is ignored: use dm_basework_cancel */
    const char *owner;
    const char *repo;
    const char *base;
    const char *commit; /* may be NULL: the tip of base */
    int refresh;
    const char *cache_root;
    const struct dm_git_checkout_limits *limits; /* may be NULL */
    dm_basework_checkout_cb on_done;
    void *arg;
};

/* dm_git_checkout on the threadpool. Returns 0 (on_done fires later, exactly once) or
 * DM_ERR_NOMEM / DM_ERR_IO (no callback). */
int dm_basework_checkout(struct dm_basework **out, uv_loop_t *loop,
                         const struct dm_basework_checkout_req *req, struct dm_error *err);

/* What a replay did. applied: the files replayed in order, by file name, ", "-separated ("" for
 * none). failed: the index in req->news of the new migration at fault, or (size_t)-1. */
struct dm_basework_migrated {
    struct dm_migrate_report report;
    const char *applied;
    size_t failed;
    size_t n_base; /* migrations found on the base */
};

/* rc: dm_migrate_replay's (0: every new migration applied); res is always set (borrowed). */
typedef void (*dm_basework_migrate_cb)(void *arg, int rc, const struct dm_basework_migrated *res,
                                       const struct dm_error *err);

struct dm_basework_migrate_req {
    const char *base_dir;       /* the written-out base, or NULL (no existing migrations) */
    const char *migrations_dir; /* repository-relative folder of the migrations ("migrations/") */
    const struct dm_migration *news; /* the change's SQL files (is_new ignored), copied */
    size_t nnew;
    const struct dm_migrate_limits *limits; /* may be NULL */
    dm_basework_migrate_cb on_done;
    void *arg;
};

/* Reads the *.sql files of base_dir/migrations_dir (not those the change replaces; at most 2000,
 * 4 MiB each), then replays them and the new ones on the threadpool. Returns 0 (on_done fires
 * later, exactly once) or DM_ERR_NOMEM / DM_ERR_IO (no callback). */
int dm_basework_migrate(struct dm_basework **out, uv_loop_t *loop,
                        const struct dm_basework_migrate_req *req, struct dm_error *err);

/* Asks the work to stop at its next check point (the checkout's); it completes as usual. */
void dm_basework_cancel(struct dm_basework *bw);

#endif
