/*
 * git/mirror: the bare mirror cache under <data_dir>/mirrors (see git_private.h): the
 * process-wide table of per-mirror locks plus flock(2) on <mirror>.lock for other processes,
 * creating (atomically), opening and refreshing a mirror, and dm_git_list_tree.
 *
 * Threadpool threads only; the lock table is the one piece of state shared between them.
 */
#include "dream/io/fsutil.h"
#include "git_private.h"
#include "dream/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LOCK_WAIT_MS (10L * 60 * 1000)
#define DEFAULT_MAX_PATHS 100000

/* ---- per-mirror lock -------------------------------------------------------------------- */

struct dm_git_lock_entry {
    char *path;
    int busy;
    int refs; /* holder + waiters; the entry is freed when it drops to 0 */
    pthread_cond_t cond;
    struct dm_git_lock_entry *next;
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dm_git_lock_entry *locks;

static void lock_entry_unref(struct dm_git_lock_entry *e)
{
    /* locks_mu held */
    if (--e->refs > 0) {
        return;
    }
    for (struct dm_git_lock_entry **pp = &locks; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    pthread_cond_destroy(&e->cond);
    free(e->path);
    free(e);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t stale_locks;

static int on_walk_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    size_t n = strlen(path);
    (void)st;
    (void)ftw;
    if (type == FTW_F && n > 5 && strcmp(path + n - 5, ".lock") == 0 && unlink(path) == 0) {
        stale_locks++;
    }
    return 0;
}

/* Removes libgit2's *.lock files left in the mirror by a replica killed mid-write (they would
 * make every later ref update fail). Only with both locks held: then nobody else is writing. */
static void remove_stale_locks(const char *mirror)
{
    static pthread_mutex_t walk_mu = PTHREAD_MUTEX_INITIALIZER;
    size_t removed;

    pthread_mutex_lock(&walk_mu); /* nftw's callback has no argument: one walk at a time */
    stale_locks = 0;
    nftw(mirror, on_walk_entry, 16, FTW_PHYS);
    removed = stale_locks;
    pthread_mutex_unlock(&walk_mu);
    if (removed) {
        dm_warn("git", NULL, "removed %zu stale lock file(s) from the mirror %s", removed, mirror);
    }
}

static int lock_mirror(struct dm_git_mirror_lock *h, const struct dm_git_opts *o,
                       const char *mirror, struct dm_error *err)
{
    long wait_ms = o->lock_wait_ms > 0 ? o->lock_wait_ms : DEFAULT_LOCK_WAIT_MS;
    long long deadline = mono_ms() + wait_ms;
    struct dm_git_lock_entry *e;
    char lockpath[4200];
    int rc = 0;

    h->entry = NULL;
    h->fd = -1;
    pthread_mutex_lock(&locks_mu);
    for (e = locks; e; e = e->next) {
        if (strcmp(e->path, mirror) == 0) {
            break;
        }
    }
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e || !(e->path = strdup(mirror))) {
            free(e);
            pthread_mutex_unlock(&locks_mu);
            return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        }
        pthread_cond_init(&e->cond, NULL);
        e->next = locks;
        locks = e;
    }
    e->refs++;
    while (e->busy) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cond, &locks_mu, &ts);
        if (e->busy && dm_git_cancelled(o)) {
            rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while waiting for the mirror");
        } else if (e->busy && mono_ms() > deadline) {
            rc = dm_error_set(err, DM_ERR_TIMEOUT, "timed out waiting for the mirror lock");
        }
        if (rc < 0) {
            lock_entry_unref(e);
            pthread_mutex_unlock(&locks_mu);
            return rc;
        }
    }
    e->busy = 1;
    pthread_mutex_unlock(&locks_mu);
    h->entry = e;

    /* Other processes (replicas sharing the data directory) are kept out by flock. */
    snprintf(lockpath, sizeof(lockpath), "%s.lock", mirror);
    h->fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (h->fd < 0) {
        rc = dm_error_set(err, DM_ERR_IO, "cannot open mirror lock file: %s", strerror(errno));
        goto out;
    }
    while (flock(h->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = dm_error_set(err, DM_ERR_IO, "cannot lock mirror: %s", strerror(errno));
            goto out;
        }
        if (dm_git_cancelled(o)) {
            rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while waiting for the mirror");
            goto out;
        }
        if (mono_ms() > deadline) {
            rc = dm_error_set(err, DM_ERR_TIMEOUT, "timed out waiting for the mirror lock");
            goto out;
        }
        usleep(50 * 1000);
    }
    remove_stale_locks(mirror);
out:
    if (rc < 0) {
        if (h->fd >= 0) {
            close(h->fd);
            h->fd = -1;
        }
        pthread_mutex_lock(&locks_mu);
        e->busy = 0;
        pthread_cond_signal(&e->cond);
        lock_entry_unref(e);
        pthread_mutex_unlock(&locks_mu);
        h->entry = NULL;
    }
    return rc;
}

static void unlock_mirror(struct dm_git_mirror_lock *h)
{
    if (!h->entry) {
        return;
    }
    if (h->fd >= 0) {
        flock(h->fd, LOCK_UN);
        close(h->fd);
        h->fd = -1;
    }
    pthread_mutex_lock(&locks_mu);
    h->entry->busy = 0;
    pthread_cond_signal(&h->entry->cond);
    lock_entry_unref(h->entry);
    pthread_mutex_unlock(&locks_mu);
    h->entry = NULL;
}

/* ---- mirror ----------------------------------------------------------------------------- */

static int mirror_path(char *out, size_t outlen, const struct dm_git_opts *o, const char *owner,
                       const char *repo, struct dm_error *err)
{
    int n;

    if (!o->data_dir || !*o->data_dir) {
        return dm_error_set(err, DM_ERR_INVALID, "no data directory configured");
    }
    n = snprintf(out, outlen, "%s/mirrors/%s/%s.git", o->data_dir, owner, repo);
    if (n < 0 || (size_t)n >= outlen) {
        return dm_error_set(err, DM_ERR_LIMIT, "data directory path too long");
    }
    return 0;
}

/* Opens the mirror, creating it (atomically: init aside, then rename) when it does not exist.
 * *created tells which. Caller holds the mirror lock. */
static int mirror_open(git_repository **out, int *created, const char *path, struct dm_error *err)
{
    char parent[4096];
    char tmp[4200];
    char *slash;
    git_repository *r = NULL;
    git_repository_init_options io;
    int rc;

    *out = NULL;
    *created = 0;
    git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    if (access(path, F_OK) == 0) {
        rc = git_repository_open_bare(out, path);
        if (rc < 0) {
            return dm_git_fail(err, NULL, rc, "opening the mirror");
        }
        return 0;
    }
    snprintf(parent, sizeof(parent), "%s", path);
    slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
    }
    if (dm_fs_mkdir_p(parent) != 0) {
        return dm_error_set(err, DM_ERR_IO, "cannot create the mirror directory: %s",
                            strerror(errno));
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
    rc = git_repository_init_ext(&r, tmp, &io);
    if (rc < 0) {
        return dm_git_fail(err, NULL, rc, "creating the mirror");
    }
    git_repository_free(r);
    if (rename(tmp, path) != 0) {
        return dm_error_set(err, DM_ERR_IO, "cannot install the mirror: %s", strerror(errno));
    }
    rc = git_repository_open_bare(out, path);
    if (rc < 0) {
        return dm_git_fail(err, NULL, rc, "opening the mirror");
    }
    *created = 1;
    return 0;
}

/* Points <prefix><name> at oid in the mirror. */
static int keep_ref(git_repository *r, struct dm_git_session *s, const char *prefix,
                    const char *name, const git_oid *oid, struct dm_error *err)
{
    git_reference *ref = NULL;
    char refname[600];
    int rc;

    snprintf(refname, sizeof(refname), "%s%s", prefix, name);
    rc = git_reference_create(&ref, r, refname, oid, 1, "dreamd fetch");
    git_reference_free(ref);
    return rc < 0 ? dm_git_fail(err, s, rc, "updating the mirror") : 0;
}

/* Fetches base (into refs/remotes/origin/<base>) and, when branch is given and exists, branch
 * (into refs/dream/remote/<branch>) over one connection. */
int dm_git_mirror_fetch(git_repository *r, struct dm_git_session *s, const char *base,
                        const char *branch, struct dm_git_remote_state *st, struct dm_error *err)
{
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    git_fetch_options fo;
    git_proxy_options po;
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    char want_base[512], want_branch[512], spec_base[1100], spec_branch[1100];
    char *specs[2];
    git_strarray arr = {specs, 0};
    int has_base = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
    dm_git_session_reset(s);
    dm_git_session_callbacks(s, &cb);
    po.type = GIT_PROXY_AUTO;
    snprintf(want_base, sizeof(want_base), "refs/heads/%s", base);
    if (branch) {
        snprintf(want_branch, sizeof(want_branch), "refs/heads/%s", branch);
    }

    rc = dm_git_remote_new(&remote, r, s->url);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "preparing the remote");
        goto out;
    }
    rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, &po, NULL);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "connecting to the remote");
        goto out;
    }
    rc = git_remote_ls(&heads, &nheads, remote);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "listing the remote");
        goto out;
    }
    st->listed = 1;
    for (size_t i = 0; i < nheads; i++) {
        if (strcmp(heads[i]->name, want_base) == 0) {
            git_oid_cpy(&st->base, &heads[i]->oid);
            has_base = 1;
        } else if (branch && strcmp(heads[i]->name, want_branch) == 0) {
            git_oid_cpy(&st->branch, &heads[i]->oid);
            st->has_branch = 1;
        }
    }
    if (!has_base) {
        rc = dm_error_set(err, DM_ERR_NOTFOUND, "base branch '%s' not found on the remote", base);
        goto out;
    }
    snprintf(spec_base, sizeof(spec_base), "+%s:" DM_GIT_TRACK_PREFIX "%s", want_base, base);
    specs[arr.count++] = spec_base;
    if (st->has_branch) {
        snprintf(spec_branch, sizeof(spec_branch), "+%s:" DM_GIT_PEEK_PREFIX "%s", want_branch,
                 branch);
        specs[arr.count++] = spec_branch;
    }
    fo.callbacks = cb;
    fo.proxy_opts = po;
    fo.prune = GIT_FETCH_NO_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    rc = git_remote_download(remote, &arr, &fo);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "fetching from the remote");
        goto out;
    }
    if (dm_git_session_check_cancel(s)) {
        rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while fetching");
        goto out;
    }
    /* Our own refs keep the fetched objects reachable in the mirror. */
    rc = keep_ref(r, s, DM_GIT_TRACK_PREFIX, base, &st->base, err);
    if (rc == 0 && st->has_branch) {
        rc = keep_ref(r, s, DM_GIT_PEEK_PREFIX, branch, &st->branch, err);
    }
    if (rc < 0) {
        goto out;
    }
    rc = 0;
out:
    dm_git_remote_close(remote);
    return rc;
}

int dm_git_mirror_acquire(struct dm_git_mirror *m, const struct dm_git_opts *o, const char *owner,
                          const char *repo, const char *base, struct dm_error *err)
{
    int rc;

    memset(m, 0, sizeof(*m));
    m->lock.fd = -1;
    if ((rc = dm_git_ensure_init(err)) < 0) {
        return rc;
    }
    if (!o) {
        return dm_error_set(err, DM_ERR_INVALID, "no git options");
    }
    if ((rc = dm_git_remote_url(m->url, sizeof(m->url), o->url_template, owner, repo, err)) < 0) {
        return rc;
    }
    if (!dm_git_branch_name_valid(base)) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid base branch name");
    }
    if ((rc = mirror_path(m->path, sizeof(m->path), o, owner, repo, err)) < 0) {
        return rc;
    }
    {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/mirrors/%s", o->data_dir, owner);
        if (dm_fs_mkdir_p(dir) != 0) {
            return dm_error_set(err, DM_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        }
    }
    if (dm_git_cancelled(o)) {
        return dm_error_set(err, DM_ERR_CANCELLED, "cancelled");
    }
    if ((rc = lock_mirror(&m->lock, o, m->path, err)) < 0) {
        return rc;
    }
    if ((rc = mirror_open(&m->repo, &m->created, m->path, err)) < 0) {
        unlock_mirror(&m->lock);
        return rc;
    }
    return 0;
}

void dm_git_mirror_release(struct dm_git_mirror *m)
{
    git_repository_free(m->repo);
    m->repo = NULL;
    unlock_mirror(&m->lock);
}

int dm_git_mirror_tracked(git_oid *oid, git_repository *r, const char *base)
{
    char ref[600];
    snprintf(ref, sizeof(ref), DM_GIT_TRACK_PREFIX "%s", base);
    return git_reference_name_to_id(oid, r, ref);
}

/* ---- tree listing ----------------------------------------------------------------------- */

struct walk {
    struct dm_git_tree *t;
    size_t cap;
    size_t max;
    int nomem;
};

static int on_tree_entry(const char *root, const git_tree_entry *entry, void *payload)
{
    struct walk *w = payload;
    git_filemode_t mode = git_tree_entry_filemode(entry);
    const char *name = git_tree_entry_name(entry);
    char *path;

    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
        return 0;
    }
    if (w->t->npaths >= w->max) {
        w->t->truncated = 1;
        return -1;
    }
    if (w->t->npaths == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 256;
        char **np = realloc(w->t->paths, ncap * sizeof(*np));
        if (!np) {
            w->nomem = 1;
            return -1;
        }
        w->t->paths = np;
        w->cap = ncap;
    }
    if (asprintf(&path, "%s%s", root, name) < 0) {
        w->nomem = 1;
        return -1;
    }
    w->t->paths[w->t->npaths++] = path;
    return 0;
}

int dm_git_list_tree(struct dm_git_tree **out, const struct dm_git_opts *opts, const char *owner,
                     const char *repo, const char *base, int refresh, size_t max_paths,
                     struct dm_error *err)
{
    struct dm_git_mirror m;
    struct dm_git_session s;
    struct dm_git_remote_state st;
    struct walk w = {0};
    git_commit *c = NULL;
    git_tree *tree = NULL;
    int have_mirror = 0;
    int rc;

    *out = NULL;
    dm_git_session_init(&s, opts, NULL, NULL);
    if ((rc = dm_git_mirror_acquire(&m, opts, owner, repo, base, err)) < 0) {
        goto out;
    }
    have_mirror = 1;
    s.url = m.url;
    if (refresh || m.created) {
        rc = dm_git_mirror_fetch(m.repo, &s, base, NULL, &st, err);
        if (rc < 0) {
            goto out;
        }
    } else {
        char ref[600];
        snprintf(ref, sizeof(ref), DM_GIT_TRACK_PREFIX "%s", base);
        rc = git_reference_name_to_id(&st.base, m.repo, ref);
        if (rc == GIT_ENOTFOUND) {
            rc = dm_git_mirror_fetch(m.repo, &s, base, NULL, &st, err);
            if (rc < 0) {
                goto out;
            }
        } else if (rc < 0) {
            rc = dm_git_fail(err, &s, rc, "reading the mirror");
            goto out;
        }
    }
    rc = git_commit_lookup(&c, m.repo, &st.base);
    if (rc == 0) {
        rc = git_commit_tree(&tree, c);
    }
    if (rc < 0) {
        rc = dm_git_fail(err, &s, rc, "reading the base tree");
        goto out;
    }
    w.t = calloc(1, sizeof(*w.t));
    if (!w.t) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    w.max = max_paths ? max_paths : DEFAULT_MAX_PATHS;
    git_oid_tostr(w.t->base_commit, sizeof(w.t->base_commit), &st.base);
    rc = git_tree_walk(tree, GIT_TREEWALK_PRE, on_tree_entry, &w);
    if (w.nomem) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (rc < 0 && !w.t->truncated) {
        rc = dm_git_fail(err, &s, rc, "walking the base tree");
        goto out;
    }
    *out = w.t;
    w.t = NULL;
    rc = 0;
out:
    dm_git_tree_free(w.t);
    git_tree_free(tree);
    git_commit_free(c);
    if (have_mirror) {
        dm_git_mirror_release(&m);
    }
    if (rc < 0 && err) {
        dm_git_scrub(err->msg, opts ? opts->token : NULL);
    }
    dm_git_session_free(&s);
    return rc;
}

void dm_git_tree_free(struct dm_git_tree *tree)
{
    if (!tree) {
        return;
    }
    for (size_t i = 0; i < tree->npaths; i++) {
        free(tree->paths[i]);
    }
    free(tree->paths);
    free(tree);
}
