/*
 * basework: the checks' work on the base, on the threadpool (contract in
 * include/dream/io/basework.h). Like gitjob: a struct dm_basework holds owned copies of its
 * inputs, the worker writes only its outputs, the after-work callback completes and frees it.
 * Threads: dm_basework_* and the completions on the loop; on_*_work on a threadpool thread.
 */
#include "dream/io/fsutil.h"
#include "dream/io/basework.h"
#include "dream/core/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASE_MIGRATIONS_MAX 2000
#define MIGRATION_BYTES_MAX ((size_t)4 << 20)

enum kind { BW_CHECKOUT, BW_MIGRATE };

struct dm_basework {
    uv_work_t req;
    enum kind kind;
    atomic_int cancel;
    /* checkout inputs */
    struct dm_git_opts opts;
    char *data_dir, *url_template, *token, *ssh_key_path;
    char *owner, *repo, *base, *commit, *cache_root;
    int refresh;
    struct dm_git_checkout_limits limits;
    dm_basework_checkout_cb on_checkout;
    /* migrate inputs */
    char *base_dir, *migrations_dir;
    struct dm_migration *migs; /* the base's (read by the worker) then the new ones */
    size_t nmigs, nnew;
    struct dm_migrate_limits mlimits;
    dm_basework_migrate_cb on_migrate;
    void *arg;
    /* outputs */
    int rc;
    struct dm_error err;
    struct dm_git_checkout co;
    struct dm_basework_migrated mres;
    char *applied;
};

static char *copy(const char *s, int *failed)
{
    char *c;
    if (!s) {
        return NULL;
    }
    c = strdup(s);
    *failed |= !c;
    return c;
}

static void basework_free(struct dm_basework *bw)
{
    free(bw->data_dir);
    free(bw->url_template);
    free(bw->token);
    free(bw->ssh_key_path);
    free(bw->owner);
    free(bw->repo);
    free(bw->base);
    free(bw->commit);
    free(bw->cache_root);
    free(bw->base_dir);
    free(bw->migrations_dir);
    for (size_t i = 0; i < bw->nmigs; i++) {
        free((char *)bw->migs[i].path);
        free((char *)bw->migs[i].sql);
    }
    free(bw->migs);
    free(bw->applied);
    free(bw);
}

/* ---- the threadpool side ---- */

static void on_checkout_work(uv_work_t *req)
{
    struct dm_basework *bw = req->data;
    bw->rc = dm_git_checkout(&bw->co, &bw->opts, bw->owner, bw->repo, bw->base, bw->commit,
                             bw->refresh, bw->cache_root, &bw->limits, &bw->err);
}

static int is_new_path(const struct dm_basework *bw, const char *rel)
{
    for (size_t i = bw->nmigs - bw->nnew; i < bw->nmigs; i++) {
        if (strcmp(bw->migs[i].path, rel) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Reads the base's migrations in front of the new ones in bw->migs. */
static int read_base_migrations(struct dm_basework *bw)
{
    char dir[PATH_MAX];
    struct dm_migration *base = NULL;
    size_t n = 0;
    DIR *d;
    struct dirent *e;
    const char *md = bw->migrations_dir ? bw->migrations_dir : "migrations/";

    snprintf(dir, sizeof(dir), "%s/%s", bw->base_dir, md);
    d = opendir(dir);
    if (!d) {
        return 0; /* no migrations on the base */
    }
    base = calloc(BASE_MIGRATIONS_MAX + bw->nmigs + 1, sizeof(*base));
    if (!base) {
        closedir(d);
        return dm_error_set(&bw->err, DM_ERR_NOMEM, "out of memory");
    }
    while ((e = readdir(d)) != NULL && n < BASE_MIGRATIONS_MAX) {
        char path[PATH_MAX], rel[PATH_MAX];
        struct stat st;
        size_t len;
        char *sql;
        size_t dl = strlen(md);

        if (!dm_migrate_is_sql(e->d_name)) {
            continue;
        }
        if ((size_t)snprintf(rel, sizeof(rel), "%s%s%s", md, dl && md[dl - 1] == '/' ? "" : "/",
                             e->d_name) >= sizeof(rel) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", bw->base_dir, rel) >= sizeof(path)) {
            continue;
        }
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || is_new_path(bw, rel)) {
            continue;
        }
        sql = dm_fs_read(path, MIGRATION_BYTES_MAX, &len);
        if (!sql || !(base[n].path = strdup(rel))) {
            free(sql);
            continue;
        }
        base[n].sql = sql;
        base[n].len = len;
        base[n].is_new = 0;
        n++;
    }
    closedir(d);
    /* base first, then the new ones (moved, not copied) */
    memcpy(base + n, bw->migs, bw->nmigs * sizeof(*base));
    free(bw->migs);
    bw->migs = base;
    bw->nmigs += n;
    bw->mres.n_base = n;
    return 0;
}

static void on_migrate_work(uv_work_t *req)
{
    struct dm_basework *bw = req->data;
    struct dm_buf names;
    size_t *idx;

    bw->mres.failed = (size_t)-1;
    if (bw->base_dir && (bw->rc = read_base_migrations(bw)) != 0) {
        return;
    }
    bw->rc = dm_migrate_replay(bw->migs, bw->nmigs, &bw->mlimits, &bw->mres.report,
                               &bw->mres.failed, &bw->err);
    if (bw->mres.failed != (size_t)-1) {
        bw->mres.failed -= bw->nmigs - bw->nnew; /* an index into the new ones */
    }
    idx = calloc(bw->nmigs + 1, sizeof(*idx));
    dm_buf_init(&names, 64 << 10);
    if (idx) {
        dm_migrate_order(bw->migs, bw->nmigs, idx);
        for (size_t i = 0; i < bw->nmigs; i++) {
            const char *p = bw->migs[idx[i]].path;
            const char *slash = strrchr(p, '/');
            if (bw->mres.failed != (size_t)-1 &&
                idx[i] == bw->mres.failed + (bw->nmigs - bw->nnew)) {
                break;
            }
            dm_buf_printf(&names, "%s%s", names.len ? ", " : "", slash ? slash + 1 : p);
        }
    }
    free(idx);
    bw->applied = dm_buf_detach(&names);
    dm_buf_free(&names);
}

/* ---- the loop side ---- */

static void on_work_done(uv_work_t *req, int status)
{
    struct dm_basework *bw = req->data;

    if (status == UV_ECANCELED) {
        bw->rc = dm_error_set(&bw->err, DM_ERR_CANCELLED, "cancelled");
    }
    if (bw->kind == BW_CHECKOUT) {
        bw->on_checkout(bw->arg, bw->rc, bw->rc ? NULL : &bw->co, &bw->err);
    } else {
        bw->mres.applied = bw->applied ? bw->applied : "";
        bw->on_migrate(bw->arg, bw->rc, &bw->mres, &bw->err);
    }
    basework_free(bw);
}

static int queue(struct dm_basework **out, uv_loop_t *loop, struct dm_basework *bw, uv_work_cb work,
                 struct dm_error *err)
{
    if (uv_queue_work(loop, &bw->req, work, on_work_done)) {
        basework_free(bw);
        return dm_error_set(err, DM_ERR_IO, "cannot queue the work on the base");
    }
    if (out) {
        *out = bw;
    }
    return 0;
}

static struct dm_basework *basework_new(enum kind kind)
{
    struct dm_basework *bw = calloc(1, sizeof(*bw));
    if (bw) {
        bw->kind = kind;
        bw->req.data = bw;
        atomic_init(&bw->cancel, 0);
    }
    return bw;
}

int dm_basework_checkout(struct dm_basework **out, uv_loop_t *loop,
                         const struct dm_basework_checkout_req *req, struct dm_error *err)
{
    struct dm_basework *bw = basework_new(BW_CHECKOUT);
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!bw) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    bw->data_dir = copy(req->opts->data_dir, &failed);
    bw->url_template = copy(req->opts->url_template, &failed);
    bw->token = copy(req->opts->token, &failed);
    bw->ssh_key_path = copy(req->opts->ssh_key_path, &failed);
    bw->owner = copy(req->owner, &failed);
    bw->repo = copy(req->repo, &failed);
    bw->base = copy(req->base, &failed);
    bw->commit = copy(req->commit, &failed);
    bw->cache_root = copy(req->cache_root, &failed);
    bw->opts.data_dir = bw->data_dir;
    bw->opts.url_template = bw->url_template;
    bw->opts.token = bw->token;
    bw->opts.ssh_key_path = bw->ssh_key_path;
    bw->opts.lock_wait_ms = req->opts->lock_wait_ms;
    bw->opts.cancel = &bw->cancel;
    bw->refresh = req->refresh;
    if (req->limits) {
        bw->limits = *req->limits;
    }
    bw->on_checkout = req->on_done;
    bw->arg = req->arg;
    if (failed) {
        basework_free(bw);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    return queue(out, loop, bw, on_checkout_work, err);
}

int dm_basework_migrate(struct dm_basework **out, uv_loop_t *loop,
                        const struct dm_basework_migrate_req *req, struct dm_error *err)
{
    struct dm_basework *bw = basework_new(BW_MIGRATE);
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!bw) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    bw->base_dir = copy(req->base_dir, &failed);
    bw->migrations_dir = copy(req->migrations_dir, &failed);
    bw->migs = calloc(req->nnew + 1, sizeof(*bw->migs));
    failed |= !bw->migs;
    for (size_t i = 0; !failed && i < req->nnew; i++) {
        char *sql = malloc(req->news[i].len + 1);
        char *path = copy(req->news[i].path, &failed);
        if (!sql || failed) {
            free(sql);
            free(path);
            failed = 1;
            break;
        }
        memcpy(sql, req->news[i].sql, req->news[i].len);
        sql[req->news[i].len] = '\0';
        bw->migs[i].path = path;
        bw->migs[i].sql = sql;
        bw->migs[i].len = req->news[i].len;
        bw->migs[i].is_new = 1;
        bw->nmigs++;
    }
    bw->nnew = bw->nmigs;
    if (req->limits) {
        bw->mlimits = *req->limits;
    }
    bw->on_migrate = req->on_done;
    bw->arg = req->arg;
    if (failed) {
        basework_free(bw);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    return queue(out, loop, bw, on_migrate_work, err);
}

void dm_basework_cancel(struct dm_basework *bw)
{
    if (bw) {
        atomic_store(&bw->cancel, 1);
    }
}
