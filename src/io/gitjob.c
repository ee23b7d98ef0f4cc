/*
 * gitjob: git operations on libuv's threadpool (contract in include/dream/io/gitjob.h).
 *
 * A struct dm_gitjob holds everything its worker reads (owned copies of every string and file,
 * an options struct pointing at them, its own cancel flag) and everything the worker writes
 * (rc, error text, result). The loop thread fills it before uv_queue_work and reads it only in
 * the after-work callback, so nothing is shared while the worker runs except the atomic cancel
 * flag. The after-work callback calls the completion and frees the gitjob.
 * Threads: dm_gitjob_* and the completions on the loop thread; on_*_work on a threadpool thread.
 */
#include "dream/io/gitjob.h"

#include "dream/core/log.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum gitjob_kind { GITJOB_TREE, GITJOB_PUBLISH, GITJOB_REPO, GITJOB_MAINTAIN };

/* The most publications sent over one push connection. */
#define PUBLISH_BATCH_MAX 64

struct dm_gitjob {
    uv_work_t req;
    uv_loop_t *loop;
    uv_work_cb work;
    struct dm_gitjob *next_wait; /* in the wait queue (sched) */
    struct dm_gitjob *batch;     /* publications riding on this one's push connection */
    struct dm_gitjob *leader;    /* the publication whose connection this one rides on */
    enum gitjob_kind kind;
    atomic_int cancel;
    atomic_int batch_cancel; /* the batch's connection: set once every member is cancelled */
    /* inputs (owned copies) */
    struct dm_git_opts opts;
    char *data_dir, *url_template, *token, *ssh_key_path, *author_name, *author_email;
    char *owner, *repo, *base;
    int refresh;
    size_t max_paths;
    char *branch, *alt_branch, *job_id, *spec_id, *message;
    long long commit_time;
    struct dm_git_file *files;
    size_t nfiles;
    dm_gitjob_tree_cb on_tree;
    dm_gitjob_publish_cb on_publish;
    dm_gitjob_repo_cb on_repo;
    char *commit;
    char **known;
    size_t n_known;
    struct dm_repo_limits limits;
    struct dm_gitjob_repo repo_res;
    void *arg;
    /* outputs (written by the worker, read after it) */
    int rc;
    struct dm_error err;
    struct dm_git_tree *tree;
    struct dm_git_result result;
    const char *used_branch; /* branch or alt_branch */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies s (NULL stays NULL); *failed is set when the copy could not be made. */
static char *copy(const char *s, int *failed)
{
    char *c;
    if (!s) {
        return NULL;
    }
    c = strdup(s);
    if (!c) {
        *failed = 1;
    }
    return c;
}

static void gitjob_free(struct dm_gitjob *gj)
{
    dm_git_tree_free(gj->tree);
    free(gj->data_dir);
    free(gj->url_template);
    free(gj->token);
    free(gj->ssh_key_path);
    free(gj->author_name);
    free(gj->author_email);
    free(gj->owner);
    free(gj->repo);
    free(gj->base);
    free(gj->branch);
    free(gj->alt_branch);
    free(gj->job_id);
    free(gj->spec_id);
    free(gj->message);
    for (size_t i = 0; i < gj->nfiles; i++) {
        free((char *)gj->files[i].path);
        free((char *)gj->files[i].content);
    }
    free(gj->files);
    free(gj->commit);
    for (size_t i = 0; i < gj->n_known; i++) {
        free(gj->known[i]);
    }
    free(gj->known);
    dm_repo_free(gj->repo_res.repo);
    free(gj);
}

/* A gitjob with copies of what every operation reads: the options, owner, repo and base. */
static struct dm_gitjob *gitjob_new(enum gitjob_kind kind, const struct dm_git_opts *opts,
                                    const char *owner, const char *repo, const char *base)
{
    struct dm_gitjob *gj = calloc(1, sizeof(*gj));
    int failed = 0;

    if (!gj) {
        return NULL;
    }
    gj->kind = kind;
    gj->req.data = gj;
    atomic_init(&gj->cancel, 0);
    atomic_init(&gj->batch_cancel, 0);
    gj->data_dir = copy(opts->data_dir, &failed);
    gj->url_template = copy(opts->url_template, &failed);
    gj->token = copy(opts->token, &failed);
    gj->ssh_key_path = copy(opts->ssh_key_path, &failed);
    gj->author_name = copy(opts->author_name, &failed);
    gj->author_email = copy(opts->author_email, &failed);
    gj->owner = copy(owner, &failed);
    gj->repo = copy(repo, &failed);
    gj->base = copy(base, &failed);
    gj->opts.data_dir = gj->data_dir;
    gj->opts.url_template = gj->url_template;
    gj->opts.token = gj->token;
    gj->opts.ssh_key_path = gj->ssh_key_path;
    gj->opts.author_name = gj->author_name;
    gj->opts.author_email = gj->author_email;
    gj->opts.lock_wait_ms = opts->lock_wait_ms;
    /* Asked now: any look-up of the remote's base that begins from now on answers it. */
    gj->opts.coalesce_since_ms = opts->coalesce_since_ms ? opts->coalesce_since_ms : now_ms();
    gj->opts.cancel = &gj->cancel;
    if (failed) {
        gitjob_free(gj);
        return NULL;
    }
    return gj;
}

/* ---- the threadpool side: only the gitjob's own copies ---- */

static void on_tree_work(uv_work_t *req)
{
    struct dm_gitjob *gj = req->data;
    gj->rc = dm_git_list_tree(&gj->tree, &gj->opts, gj->owner, gj->repo, gj->base, gj->refresh,
                              gj->max_paths, &gj->err);
}

/* Publishes the gitjob and the ones batched with it over one push connection. */
static void on_publish_work(uv_work_t *req)
{
    struct dm_gitjob *gj = req->data;
    struct dm_git_publish_item *items = calloc(PUBLISH_BATCH_MAX + 1, sizeof(*items));
    struct dm_gitjob **members = calloc(PUBLISH_BATCH_MAX + 1, sizeof(*members));
    struct dm_git_opts bo = gj->opts;
    size_t n = 0;

    if (!items || !members) {
        for (struct dm_gitjob *m = gj; m; m = m->batch) {
            m->rc = dm_error_set(&m->err, DM_ERR_NOMEM, "out of memory");
        }
        free(items);
        free(members);
        return;
    }
    for (struct dm_gitjob *m = gj; m && n <= PUBLISH_BATCH_MAX; m = m->batch) {
        struct dm_git_publish_item *it = &items[n];
        memset(it, 0, sizeof(*it));
        it->branch = m->branch;
        it->alt_branch = m->alt_branch;
        it->job_id = m->job_id;
        it->spec_id = m->spec_id;
        it->message = m->message;
        it->commit_time = m->commit_time;
        it->files = m->files;
        it->nfiles = m->nfiles;
        it->opts = &m->opts;
        members[n++] = m;
    }
    /* The connection is the batch's: one job cancelled (the leader at its deadline) stops only
     * its own item; the connection stops when every job of the batch is cancelled. */
    bo.cancel = &gj->batch_cancel;
    dm_git_publish_many(&bo, gj->owner, gj->repo, gj->base, items, n);
    for (size_t i = 0; i < n; i++) {
        struct dm_gitjob *m = members[i];
        m->rc = items[i].rc;
        m->err = items[i].err;
        m->result = items[i].result;
        m->used_branch = items[i].used_branch == m->alt_branch ? m->alt_branch : m->branch;
        if (m->rc == DM_ERR_CANCELLED && !atomic_load(&m->cancel)) {
            /* Another job of the batch was cancelled; this one was not: worth a retry. */
            m->rc = dm_error_set(&m->err, DM_ERR_TRANSIENT,
                                 "the push was cancelled with another job's; not pushed");
        }
    }
    free(items);
    free(members);
    /* A ref advertisement is a few MiB of small allocations on this thread's arena: hand them
     * back now, so threads taking turns do not each keep a peak's worth. */
    malloc_trim(0);
}

/* Repacks the mirrors marked for it; the jobs never wait for this. */
static void on_maintain_work(uv_work_t *req)
{
    struct dm_gitjob *gj = req->data;
    size_t repacked = 0;

    gj->rc = dm_git_maintain(&gj->opts, &repacked, &gj->err);
    if (gj->rc) {
        dm_warn("git", NULL, "mirror maintenance failed: %s", gj->err.msg);
    } else if (repacked) {
        dm_info("git", NULL, "repacked %zu mirror(s)", repacked);
    }
}

static int add_tree_entry(void *arg, const char *path, size_t size)
{
    return dm_repo_add_entry(arg, path, size) ? DM_ERR_NOMEM : 0;
}

/* Reads paths into repo; files that are too big or not text are counted in skipped. */
static int read_paths(struct dm_gitjob *gj, struct dm_git_base *b, struct dm_repo *repo,
                      char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *content = NULL;
        size_t len = 0, keep = 0;
        int cut = 0;
        int rc =
            dm_git_base_read(b, paths[i], gj->limits.file_bytes, &content, &len, &cut, &gj->err);
        if (rc == DM_ERR_LIMIT || rc == DM_ERR_NOTFOUND) {
            gj->repo_res.skipped++;
            continue;
        }
        if (rc) {
            return rc;
        }
        if (atomic_load(&gj->cancel)) {
            free(content);
            return dm_error_set(&gj->err, DM_ERR_CANCELLED, "cancelled while reading the base");
        }
        if (!dm_repo_text_check(content, len, cut, &keep)) {
            gj->repo_res.skipped++; /* binary content under a text name */
            free(content);
            continue;
        }
        rc = dm_repo_add_file(repo, paths[i], content, keep, cut || keep < len);
        free(content);
        if (rc) {
            return dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
        }
    }
    return 0;
}

static int read_phase(struct dm_gitjob *gj, struct dm_git_base *b, struct dm_repo *repo,
                      enum dm_repo_phase phase)
{
    char **paths = NULL;
    size_t n = 0;
    int rc;

    if (dm_repo_select(&paths, &n, repo, phase, &gj->limits)) {
        return dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
    }
    rc = read_paths(gj, b, repo, paths, n);
    dm_repo_paths_free(paths, n);
    return rc;
}

static int read_repo(struct dm_gitjob *gj)
{
    struct dm_gitjob_repo *res = &gj->repo_res;
    struct dm_git_base *b = NULL;
    struct dm_repo *repo;
    int no_base = 0, rc;

    rc = dm_git_base_open(&b, &gj->opts, gj->owner, gj->repo, gj->base, gj->commit, gj->refresh,
                          &no_base, &gj->err);
    if (rc == DM_ERR_NOTFOUND && no_base) {
        /* An empty repository, or no such branch yet: nothing to read, default conventions. */
        res->repo = calloc(1, sizeof(*res->repo));
        if (!res->repo || dm_stack_detect(&res->repo->stack, res->repo)) {
            return dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
        }
        res->empty = 1;
        return 0;
    }
    if (rc) {
        return rc;
    }
    snprintf(res->commit, sizeof(res->commit), "%s", dm_git_base_commit(b));
    for (size_t i = 0; i < gj->n_known; i++) {
        if (strcmp(gj->known[i], res->commit) == 0) {
            res->cached = 1;
            dm_git_base_close(b);
            return 0;
        }
    }
    repo = res->repo = calloc(1, sizeof(*repo));
    if (!repo) {
        dm_git_base_close(b);
        return dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
    }
    memcpy(repo->commit, res->commit, sizeof(repo->commit));
    rc = dm_git_base_tree(b, DM_REPO_TREE_MAX, add_tree_entry, repo, &repo->tree_truncated,
                          &gj->err);
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        rc = read_phase(gj, b, repo, DM_REPO_PHASE_FIXED);
    }
    if (!rc && dm_stack_detect(&repo->stack, repo)) {
        rc = dm_error_set(&gj->err, DM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        rc = read_phase(gj, b, repo, DM_REPO_PHASE_CONTEXT);
    }
    dm_git_base_close(b);
    return rc;
}

static void on_repo_work(uv_work_t *req)
{
    struct dm_gitjob *gj = req->data;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    gj->rc = read_repo(gj);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    malloc_trim(0); /* see on_publish_work */
    gj->repo_res.ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* ---- the loop side ---- */

/* Git work can block for as long as a silent server keeps its connection open (libgit2 1.5 has
 * no network timeout). At most DM_GITJOB_PARALLEL run at once on the threadpool; the rest wait
 * here, in order, so that name resolution (Redis reconnects, callbacks) and the checks always
 * find a free thread (dreamd sizes the pool above this cap). Loop thread only. */
static struct {
    struct dm_gitjob *head, *tail;
    int running;
    int maintaining;                                  /* a GITJOB_MAINTAIN is queued or running */
    struct dm_gitjob *publishing[DM_GITJOB_PARALLEL]; /* publications running */
} sched;

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* 1 when b's publication can ride on a's push connection: same remote, credentials, mirror
 * and base. */
static int same_remote(const struct dm_gitjob *a, const struct dm_gitjob *b)
{
    return b->kind == GITJOB_PUBLISH && same_str(a->owner, b->owner) &&
           same_str(a->repo, b->repo) && same_str(a->base, b->base) &&
           same_str(a->data_dir, b->data_dir) && same_str(a->url_template, b->url_template) &&
           same_str(a->token, b->token) && same_str(a->ssh_key_path, b->ssh_key_path) &&
           a->opts.lock_wait_ms == b->opts.lock_wait_ms;
}

/* Takes the publications waiting for the same remote as gj out of the queue and batches them
 * with it: they are ready now, so nobody waits longer for this. */
static void gather_batch(struct dm_gitjob *gj)
{
    struct dm_gitjob **pp = &sched.head, *prev = NULL, **tail = &gj->batch;
    size_t n = 1;
    int all = 1;

    while (*pp && n < PUBLISH_BATCH_MAX) {
        struct dm_gitjob *w = *pp;
        if (same_remote(gj, w)) {
            *pp = w->next_wait;
            if (sched.tail == w) {
                sched.tail = prev;
            }
            w->next_wait = NULL;
            w->leader = gj;
            *tail = w;
            tail = &w->batch;
            n++;
            continue;
        }
        prev = w;
        pp = &w->next_wait;
    }
    /* A leader cancelled while it waited stops the connection only if all of them were. */
    for (struct dm_gitjob *m = gj; m; m = m->batch) {
        all &= atomic_load(&m->cancel) != 0;
    }
    atomic_store(&gj->batch_cancel, all);
}

static void on_work_done(uv_work_t *req, int status);

static int start_work(struct dm_gitjob *gj)
{
    if (uv_queue_work(gj->loop, &gj->req, gj->work, on_work_done)) {
        return -1;
    }
    sched.running++;
    for (int i = 0; gj->kind == GITJOB_PUBLISH && i < DM_GITJOB_PARALLEL; i++) {
        if (!sched.publishing[i]) {
            sched.publishing[i] = gj;
            break;
        }
    }
    return 0;
}

/* 1 while a publication to the same remote runs: gj waits in the queue (the mirror's lock
 * would keep it waiting anyway, on a thread) and gathers the publications that come meanwhile,
 * so under load many jobs share one push connection and its ref advertisement. */
static int publish_running_for(const struct dm_gitjob *gj)
{
    for (int i = 0; gj->kind == GITJOB_PUBLISH && i < DM_GITJOB_PARALLEL; i++) {
        if (sched.publishing[i] && same_remote(sched.publishing[i], gj)) {
            return 1;
        }
    }
    return 0;
}

/* 1 when gj is a read of the base that a publication queued ahead of it for the same remote
 * and base will answer: the push connection it opens begins after gj asked, and its
 * advertisement gives the base's tip (dm_git_mirror_lookup), so gj waits for it instead of
 * opening a connection of its own. */
static int read_answered_by_publish(const struct dm_gitjob *gj)
{
    if (gj->kind != GITJOB_REPO || !gj->refresh || gj->commit) {
        return 0;
    }
    for (const struct dm_gitjob *w = sched.head; w && w != gj; w = w->next_wait) {
        if (same_remote(gj, w)) {
            return 1;
        }
    }
    return 0;
}

/* Takes the first waiting gitjob that may start now out of the queue, or NULL. */
static struct dm_gitjob *take_next(void)
{
    struct dm_gitjob *prev = NULL;

    for (struct dm_gitjob **pp = &sched.head; *pp; prev = *pp, pp = &(*pp)->next_wait) {
        struct dm_gitjob *gj = *pp;
        if (publish_running_for(gj) || read_answered_by_publish(gj)) {
            continue;
        }
        *pp = gj->next_wait;
        if (sched.tail == gj) {
            sched.tail = prev;
        }
        gj->next_wait = NULL;
        return gj;
    }
    return NULL;
}

/* Starts waiting work while there is room. Work that cannot be queued completes with an error
 * (never inside the call that started it: this runs from another job's completion). */
static void pump(void)
{
    struct dm_gitjob *gj;

    while (sched.running < DM_GITJOB_PARALLEL && (gj = take_next()) != NULL) {
        if (gj->kind == GITJOB_PUBLISH) {
            gather_batch(gj);
        }
        if (start_work(gj)) {
            for (struct dm_gitjob *m = gj; m; m = m->batch) {
                m->rc = dm_error_set(&m->err, DM_ERR_IO, "cannot queue the git work");
            }
            sched.running++; /* on_work_done counts it down */
            on_work_done(&gj->req, 0);
        }
    }
}

static int queue(struct dm_gitjob **out, uv_loop_t *loop, struct dm_gitjob *gj, uv_work_cb work,
                 struct dm_error *err);
static void on_maintain_work(uv_work_t *req);

/* Queues the repack of the mirrors that need it, behind the jobs' git work. */
static void maybe_maintain(const struct dm_gitjob *done)
{
    struct dm_gitjob *mg;
    struct dm_error err;

    if (sched.maintaining || !dm_git_maintenance_due()) {
        return;
    }
    mg = gitjob_new(GITJOB_MAINTAIN, &done->opts, done->owner, done->repo, done->base);
    if (mg && queue(NULL, done->loop, mg, on_maintain_work, &err) == 0) {
        sched.maintaining = 1;
    }
}

static void on_work_done(uv_work_t *req, int status)
{
    struct dm_gitjob *gj = req->data;
    struct dm_gitjob *next;

    sched.running--;
    for (int i = 0; i < DM_GITJOB_PARALLEL; i++) {
        if (sched.publishing[i] == gj) {
            sched.publishing[i] = NULL;
        }
    }
    if (gj->kind == GITJOB_MAINTAIN) {
        sched.maintaining = 0;
        gitjob_free(gj);
        pump();
        return;
    }
    maybe_maintain(gj);
    for (struct dm_gitjob *m = gj->batch; m; m = m->batch) {
        m->leader = NULL; /* the leader is freed first: a completion may cancel a later one */
    }
    for (; gj; gj = next) {
        next = gj->batch;
        gj->batch = NULL;
        if (status == UV_ECANCELED) {
            gj->rc = DM_ERR_CANCELLED;
            dm_error_set(&gj->err, DM_ERR_CANCELLED, "%s cancelled",
                         gj->kind == GITJOB_TREE   ? "tree listing"
                         : gj->kind == GITJOB_REPO ? "reading the base"
                                                   : "push");
        }
        if (gj->kind == GITJOB_TREE) {
            gj->on_tree(gj->arg, gj->rc, gj->rc ? NULL : gj->tree, &gj->err);
        } else if (gj->kind == GITJOB_REPO) {
            gj->on_repo(gj->arg, gj->rc, gj->rc ? NULL : &gj->repo_res, &gj->err);
        } else {
            struct dm_gitjob_published res;
            res.git = gj->result;
            res.branch = gj->used_branch;
            gj->on_publish(gj->arg, gj->rc, gj->rc ? NULL : &res, &gj->err);
        }
        gitjob_free(gj);
    }
    pump();
}

static int queue(struct dm_gitjob **out, uv_loop_t *loop, struct dm_gitjob *gj, uv_work_cb work,
                 struct dm_error *err)
{
    gj->loop = loop;
    gj->work = work;
    /* With a thread free, whatever waits is held back (a publication behind one to the same
     * remote, a read answered by a queued publication: pump starts everything else), so work
     * that is not held back starts now instead of waiting for the next completion. */
    if (sched.running < DM_GITJOB_PARALLEL && !publish_running_for(gj) &&
        !read_answered_by_publish(gj)) {
        if (start_work(gj)) {
            gitjob_free(gj);
            return dm_error_set(err, DM_ERR_IO, "cannot queue the git work");
        }
    } else if (sched.tail) {
        sched.tail->next_wait = gj;
        sched.tail = gj;
    } else {
        sched.head = sched.tail = gj;
    }
    if (out) {
        *out = gj;
    }
    return 0;
}

int dm_gitjob_list_tree(struct dm_gitjob **out, uv_loop_t *loop,
                        const struct dm_gitjob_tree_req *req, struct dm_error *err)
{
    struct dm_gitjob *gj = gitjob_new(GITJOB_TREE, req->opts, req->owner, req->repo, req->base);

    if (out) {
        *out = NULL;
    }
    if (!gj) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    gj->refresh = req->refresh;
    gj->max_paths = req->max_paths;
    gj->on_tree = req->on_done;
    gj->arg = req->arg;
    return queue(out, loop, gj, on_tree_work, err);
}

int dm_gitjob_publish(struct dm_gitjob **out, uv_loop_t *loop,
                      const struct dm_gitjob_publish_req *req, struct dm_error *err)
{
    struct dm_gitjob *gj = gitjob_new(GITJOB_PUBLISH, req->opts, req->owner, req->repo, req->base);
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!gj) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    gj->branch = copy(req->branch, &failed);
    gj->alt_branch = copy(req->alt_branch, &failed);
    gj->job_id = copy(req->job_id, &failed);
    gj->spec_id = copy(req->spec_id, &failed);
    gj->message = copy(req->message, &failed);
    gj->commit_time = req->commit_time;
    gj->files = calloc(req->nfiles + 1, sizeof(*gj->files));
    failed |= !gj->files;
    for (size_t i = 0; !failed && i < req->nfiles; i++) {
        const struct dm_git_file *f = &req->files[i];
        char *content = malloc(f->len + 1);
        char *path = copy(f->path, &failed);
        if (!content || failed) {
            free(content);
            free(path);
            failed = 1;
            break;
        }
        if (f->len) {
            memcpy(content, f->content, f->len);
        }
        content[f->len] = '\0';
        gj->files[i] = *f;
        gj->files[i].path = path;
        gj->files[i].content = content;
        gj->nfiles++;
    }
    if (failed) {
        gitjob_free(gj);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    gj->on_publish = req->on_done;
    gj->arg = req->arg;
    return queue(out, loop, gj, on_publish_work, err);
}

int dm_gitjob_read_repo(struct dm_gitjob **out, uv_loop_t *loop,
                        const struct dm_gitjob_repo_req *req, struct dm_error *err)
{
    struct dm_gitjob *gj = gitjob_new(GITJOB_REPO, req->opts, req->owner, req->repo, req->base);
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!gj) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    gj->commit = copy(req->commit, &failed);
    gj->refresh = req->refresh;
    gj->limits = dm_repo_limits_resolve(&req->limits);
    if (req->n_known) {
        gj->known = calloc(req->n_known, sizeof(*gj->known));
        failed |= !gj->known;
        for (size_t i = 0; !failed && i < req->n_known; i++) {
            gj->known[i] = copy(req->known[i], &failed);
            gj->n_known += !failed;
        }
    }
    if (failed) {
        gitjob_free(gj);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    gj->on_repo = req->on_done;
    gj->arg = req->arg;
    return queue(out, loop, gj, on_repo_work, err);
}

void dm_gitjob_cancel(struct dm_gitjob *gj)
{
    struct dm_gitjob *lead;
    int all = 1;

    if (!gj) {
        return;
    }
    atomic_store(&gj->cancel, 1);
    lead = gj->leader ? gj->leader : gj;
    for (struct dm_gitjob *m = lead; m; m = m->batch) {
        all &= atomic_load(&m->cancel) != 0;
    }
    if (all) {
        atomic_store(&lead->batch_cancel, 1);
    }
}
