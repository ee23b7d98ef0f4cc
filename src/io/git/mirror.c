/*
 * git/mirror: the bare mirror cache under <data_dir>/mirrors (see git_private.h): the
 * process-wide table of per-mirror locks plus flock(2) on <mirror>.lock for other processes,
 * creating (atomically), opening and refreshing a mirror, and dm_git_list_tree.
 *
 * Threadpool threads only; the lock table is the one piece of state shared between them.
 */
#include "dream/io/fsutil.h"
#include "git_private.h"

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>
#include "dream/core/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* The most mirrors kept open while idle; past it, idle ones are closed (oldest first). */
#define MIRRORS_KEPT 16
/* The most bases per mirror whose last look-up is remembered. */
#define LOOKED_MAX 8

struct looked {
    char base[256];
    git_oid tip;
    long long ms; /* when the remote said so (monotonic); 0 = unused */
};

struct dm_git_lock_entry {
    char *path;
    int busy;
    int refs; /* holder + waiters; an idle entry is kept (with its open mirror) */
    pthread_cond_t cond;
    struct dm_git_lock_entry *next;
    long long used_ms; /* last released */
    /* The open mirror, kept across operations; only the holder of the lock touches it. */
    git_repository *repo;
    git_odb_backend *mempack; /* the job's objects, in memory (owned by repo's odb) */
    struct written *written;  /* the backend in front of it that notes what was written */
    dev_t dev;                /* the mirror directory it was opened from */
    ino_t ino;
    struct timespec objects_mtime, pack_mtime; /* when the odb's backends were listed */
    size_t packs;                              /* pack files in the odb */
    int loose;                                 /* 1 = the mirror has loose objects */
    int maint_due;                             /* 1 = repack it (dm_git_maintain) */
    struct looked looked[LOOKED_MAX];
    /* The remote, when it is a repository on this machine, opened in-process and kept. */
    git_repository *origin;
    dev_t origin_dev;
    ino_t origin_ino;
    struct timespec origin_packs; /* objects/pack's mtime when it was opened */
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int maint_due; /* mirrors marked for maintenance */
static struct dm_git_lock_entry *locks;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void entry_close_origin(struct dm_git_lock_entry *e)
{
    git_repository_free(e->origin);
    e->origin = NULL;
}

static void entry_close_repo(struct dm_git_lock_entry *e)
{
    git_repository_free(e->repo);
    e->repo = NULL;
    e->mempack = NULL;
    e->written = NULL;
    memset(e->looked, 0, sizeof(e->looked));
}

/* Closes idle mirrors past MIRRORS_KEPT, least recently used first. locks_mu held. */
static void evict_idle(void)
{
    for (;;) {
        struct dm_git_lock_entry *oldest = NULL;
        size_t n = 0;
        for (struct dm_git_lock_entry *e = locks; e; e = e->next) {
            n++;
            if (e->refs == 0 && !e->busy && (!oldest || e->used_ms < oldest->used_ms)) {
                oldest = e;
            }
        }
        if (n <= MIRRORS_KEPT || !oldest) {
            return;
        }
        for (struct dm_git_lock_entry **pp = &locks; *pp; pp = &(*pp)->next) {
            if (*pp == oldest) {
                *pp = oldest->next;
                break;
            }
        }
        if (oldest->maint_due) {
            atomic_fetch_sub(&maint_due, 1);
        }
        entry_close_repo(oldest);
        entry_close_origin(oldest);
        pthread_cond_destroy(&oldest->cond);
        free(oldest->path);
        free(oldest);
    }
}

static void lock_entry_unref(struct dm_git_lock_entry *e)
{
    /* locks_mu held */
    if (--e->refs > 0) {
        return;
    }
    e->used_ms = mono_ms();
    evict_idle();
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
 * make every later ref update fail). Only with both locks held: then nobody else is writing.
 * libgit2 locks refs (refs/, packed-refs, HEAD) and the config: the walk covers refs/ (a few
 * refs: dreamd drops a job's refs when it ends) and the top-level files, never objects/. */
static void remove_partial_packs(const char *mirror);

static void remove_stale_locks(const char *mirror)
{
    static pthread_mutex_t walk_mu = PTHREAD_MUTEX_INITIALIZER;
    static const char *const top[] = {"packed-refs.lock", "config.lock", "HEAD.lock",
                                      "FETCH_HEAD.lock", "index.lock"};
    char path[4200];
    size_t removed;

    pthread_mutex_lock(&walk_mu); /* nftw's callback has no argument: one walk at a time */
    stale_locks = 0;
    snprintf(path, sizeof(path), "%s/refs", mirror);
    nftw(path, on_walk_entry, 16, FTW_PHYS);
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", mirror, top[i]);
        if (unlink(path) == 0) {
            stale_locks++;
        }
    }
    remove_partial_packs(mirror);
    removed = stale_locks;
    pthread_mutex_unlock(&walk_mu);
    if (removed) {
        dm_warn("git", NULL, "removed %zu stale lock or partial pack file(s) from the mirror %s",
                removed, mirror);
    }
}

/* A replica killed while a download or a repack wrote a pack leaves libgit2's temporary pack
 * (pack_git2_*, as big as what it was writing) and the index's lock file in objects/pack; they
 * are never used and would stay for good. Both locks held; walk_mu held (stale_locks). */
static void remove_partial_packs(const char *mirror)
{
    char dir[4200], f[4600];
    DIR *d;
    struct dirent *de;

    snprintf(dir, sizeof(dir), "%s/objects/pack", mirror);
    if ((d = opendir(dir)) == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "pack_git2_", 10) == 0 ||
            (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0)) {
            snprintf(f, sizeof(f), "%s/%s", dir, de->d_name);
            if (unlink(f) == 0) {
                stale_locks++;
            }
        }
    }
    closedir(d);
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

/* ---- the open mirror's object database ------------------------------------------------- */

static int mtime_of(struct timespec *out, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    *out = st.st_mtim;
    return 0;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* 1 when objects/ holds a loose-object folder (two hex digits). */
static int has_loose(const char *objects)
{
    DIR *d = opendir(objects);
    struct dirent *de;
    int found = 0;

    if (!d) {
        return 0;
    }
    while (!found && (de = readdir(d)) != NULL) {
        found = strlen(de->d_name) == 2 && isxdigit((unsigned char)de->d_name[0]) &&
                isxdigit((unsigned char)de->d_name[1]);
    }
    closedir(d);
    return found;
}

/*
 * What a hold wrote: a backend in front of the mempack that notes the id of each object written
 * to it, so a push to a remote on this machine sends exactly the job's new objects
 * (git_mempack_dump would send every commit's whole tree). git_odb_write reaches it only for
 * objects no other backend has.
 */
struct written {
    git_odb_backend parent;
    git_odb_backend *mem;
    git_oid *ids;
    size_t n, cap;
};

static struct written *written_of(git_odb_backend *b)
{
    return (struct written *)b;
}

static int wr_read(void **data, size_t *len, git_object_t *type, git_odb_backend *b,
                   const git_oid *id)
{
    git_odb_backend *m = written_of(b)->mem;
    return m->read(data, len, type, m, id);
}

static int wr_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
    git_odb_backend *m = written_of(b)->mem;
    return m->read_header(len, type, m, id);
}

static int wr_exists(git_odb_backend *b, const git_oid *id)
{
    git_odb_backend *m = written_of(b)->mem;
    return m->exists(m, id);
}

static int wr_write(git_odb_backend *b, const git_oid *id, const void *data, size_t len,
                    git_object_t type)
{
    struct written *w = written_of(b);
    int rc;

    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        git_oid *ids = realloc(w->ids, cap * sizeof(*ids));
        if (!ids) {
            git_error_set_oom();
            return -1;
        }
        w->ids = ids;
        w->cap = cap;
    }
    if ((rc = w->mem->write(w->mem, id, data, len, type)) < 0) {
        return rc;
    }
    git_oid_cpy(&w->ids[w->n++], id);
    return 0;
}

static void wr_free(git_odb_backend *b)
{
    struct written *w = written_of(b);
    w->mem->free(w->mem);
    free(w->ids);
    free(w);
}

/* A mempack with a note of what is written to it: *mem = the mempack (for reset). */
static int written_new(git_odb_backend **out, git_odb_backend **mem)
{
    struct written *w = calloc(1, sizeof(*w));
    int rc;

    if (!w) {
        git_error_set_oom();
        return -1;
    }
    if ((rc = git_mempack_new(&w->mem)) < 0) {
        free(w);
        return rc;
    }
    git_odb_init_backend(&w->parent, GIT_ODB_BACKEND_VERSION);
    w->parent.read = wr_read;
    w->parent.read_header = wr_read_header;
    w->parent.exists = wr_exists;
    w->parent.write = wr_write;
    w->parent.free = wr_free;
    *mem = w->mem;
    *out = &w->parent;
    return 0;
}

void dm_git_mirror_written(const struct dm_git_mirror *m, const git_oid **ids, size_t *n)
{
    const struct written *w = m->lock.entry ? m->lock.entry->written : NULL;

    *ids = w ? w->ids : NULL;
    *n = w ? w->n : 0;
}

/*
 * Gives the open mirror an object database of its own: the job's objects in memory (mempack,
 * written first, never a loose file), each pack file as a backend of its own, and the loose
 * objects only when the mirror has any (an older mirror). None of these backends "refreshes",
 * so looking up an object the mirror does not have (the push hides every tip the remote
 * advertised) costs a hash and a binary search per pack, not a rescan of objects/pack and a
 * stat per object. Packs written by a fetch or by another process are picked up by
 * mirror_check_odb. The holder of the lock only.
 */
static int mirror_load_odb(struct dm_git_lock_entry *e, struct dm_error *err)
{
    char objects[4200], packdir[4300], idx[4600];
    git_odb *odb = NULL;
    git_odb_backend *b = NULL;
    DIR *d;
    struct dirent *de;
    int rc;

    snprintf(objects, sizeof(objects), "%s/objects", e->path);
    snprintf(packdir, sizeof(packdir), "%s/pack", objects);
    mtime_of(&e->objects_mtime, objects);
    mtime_of(&e->pack_mtime, packdir);
    e->packs = 0;
    e->mempack = NULL;
    e->written = NULL;
    if ((rc = git_odb_new(&odb)) < 0) {
        return dm_git_fail(err, NULL, rc, "opening the mirror's objects");
    }
    if ((rc = written_new(&b, &e->mempack)) < 0 || (rc = git_odb_add_backend(odb, b, 3)) < 0) {
        e->mempack = NULL;
        goto fail;
    }
    e->written = written_of(b);
    b = NULL;
    e->loose = has_loose(objects);
    if (e->loose) {
        if ((rc = git_odb_backend_loose(&b, objects, -1, 0, 0, 0)) < 0 ||
            (rc = git_odb_add_backend(odb, b, 1)) < 0) {
            goto fail;
        }
        b = NULL;
    }
    d = opendir(packdir);
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".idx") != 0) {
            continue;
        }
        snprintf(idx, sizeof(idx), "%s/%s", packdir, de->d_name);
        /* A pack being written or removed by someone else has no .pack next to it yet. */
        if (git_odb_backend_one_pack(&b, idx) < 0) {
            git_error_clear();
            continue;
        }
        if ((rc = git_odb_add_backend(odb, b, 2)) < 0) {
            closedir(d);
            goto fail;
        }
        b = NULL;
        e->packs++;
    }
    if (d) {
        closedir(d);
    }
    rc = git_repository_set_odb(e->repo, odb);
    git_odb_free(odb);
    return rc < 0 ? dm_git_fail(err, NULL, rc, "opening the mirror's objects") : 0;
fail:
    if (b) {
        b->free(b);
    }
    git_odb_free(odb);
    e->mempack = NULL;
    e->written = NULL;
    return dm_git_fail(err, NULL, rc, "opening the mirror's objects");
}

/* Reloads the backends when objects/ or objects/pack changed since they were listed (a fetch,
 * a repack, another replica). Two stat calls when nothing changed. */
static int mirror_check_odb(struct dm_git_lock_entry *e, struct dm_error *err)
{
    char path[4300];
    struct timespec t;

    snprintf(path, sizeof(path), "%s/objects/pack", e->path);
    mtime_of(&t, path);
    if (same_time(&t, &e->pack_mtime)) {
        snprintf(path, sizeof(path), "%s/objects", e->path);
        mtime_of(&t, path);
        if (same_time(&t, &e->objects_mtime)) {
            return 0;
        }
    }
    return mirror_load_odb(e, err);
}

int dm_git_mirror_reload(struct dm_git_mirror *m, struct dm_error *err)
{
    return mirror_load_odb(m->lock.entry, err);
}

void dm_git_mirror_forget_objects(struct dm_git_mirror *m)
{
    struct dm_git_lock_entry *e = m->lock.entry;
    git_odb *odb = NULL;

    if (!e || !e->repo || !e->mempack) {
        return;
    }
    git_mempack_reset(e->mempack);
    if (e->written) {
        e->written->n = 0;
    }
    /* The repository's object cache may still hold parsed objects from memory (a commit the
     * next push would take for present); a cleanup empties it, and the same object database
     * goes back in. */
    if (git_repository_odb(&odb, e->repo) == 0) {
        git_repository__cleanup(e->repo);
        if (git_repository_set_odb(e->repo, odb) < 0) {
            entry_close_repo(e);
        }
        git_odb_free(odb);
    }
}

/* Opens (or creates) the mirror for the holder of its lock, or reuses the one kept open. */
static int mirror_ready(struct dm_git_mirror *m, struct dm_error *err)
{
    struct dm_git_lock_entry *e = m->lock.entry;
    struct stat st;
    int rc;

    m->created = 0;
    if (e->repo && (stat(m->path, &st) != 0 || st.st_ino != e->ino || st.st_dev != e->dev)) {
        /* Removed or replaced under us: start again. */
        entry_close_repo(e);
    }
    if (e->repo) {
        if ((rc = mirror_check_odb(e, err)) < 0) {
            entry_close_repo(e);
            return rc;
        }
        m->repo = e->repo;
        return 0;
    }
    if ((rc = mirror_open(&e->repo, &m->created, m->path, err)) < 0) {
        return rc;
    }
    if (stat(m->path, &st) == 0) {
        e->dev = st.st_dev;
        e->ino = st.st_ino;
    }
    if ((rc = mirror_load_odb(e, err)) < 0) {
        entry_close_repo(e);
        return rc;
    }
    m->repo = e->repo;
    return 0;
}

/* ---- keeping the mirror bounded ---------------------------------------------------------- */

/* A mirror is repacked when it has more packs than this (each fetch that downloads adds one)
 * or any loose object. */
#define MAINT_PACKS 8

/* Marks the mirror for maintenance when it needs it. The holder of the lock only; maint_due
 * under locks_mu (dm_git_maintain looks for marked mirrors without holding theirs). */
static void maybe_maintain(struct dm_git_mirror *m)
{
    struct dm_git_lock_entry *e = m->lock.entry;

    if (e->repo && (e->packs > MAINT_PACKS || e->loose)) {
        pthread_mutex_lock(&locks_mu);
        if (!e->maint_due) {
            e->maint_due = 1;
            atomic_fetch_add(&maint_due, 1);
        }
        pthread_mutex_unlock(&locks_mu);
    }
}

int dm_git_maintenance_due(void)
{
    return atomic_load(&maint_due) > 0;
}

/* Removes every pack but keep (the pack's base name, "pack-<hex>") and every loose object. */
static void drop_old_objects(const char *path, const char *keep)
{
    char dir[4300], f[4600];
    DIR *d;
    struct dirent *de;

    snprintf(dir, sizeof(dir), "%s/objects/pack", path);
    if ((d = opendir(dir)) != NULL) {
        size_t kl = strlen(keep);
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, "pack-", 5) != 0 ||
                (strncmp(de->d_name, keep, kl) == 0 && de->d_name[kl] == '.')) {
                continue;
            }
            snprintf(f, sizeof(f), "%s/%s", dir, de->d_name);
            unlink(f);
        }
        closedir(d);
    }
    snprintf(dir, sizeof(dir), "%s/objects", path);
    if ((d = opendir(dir)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strlen(de->d_name) == 2 && isxdigit((unsigned char)de->d_name[0]) &&
                isxdigit((unsigned char)de->d_name[1])) {
                snprintf(f, sizeof(f), "%s/%s", dir, de->d_name);
                dm_fs_rm_rf(f);
            }
        }
        closedir(d);
    }
}

/* Pushes the tips of the mirror's refs onto walk. A push ref (DM_GIT_OUT_PREFIX) lives only
 * while its holder has the lock, so with the lock held any is left by a replica killed mid-batch
 * and points at a commit that only ever was in that replica's memory: it is dropped, as is any
 * other ref whose object the mirror does not hold (the repack would fail on it forever). */
static int walk_kept_refs(git_revwalk *walk, git_repository *r)
{
    git_reference_iterator *it = NULL;
    git_reference *ref;
    git_odb *odb = NULL;
    int rc;

    if ((rc = git_repository_odb(&odb, r)) < 0 ||
        (rc = git_reference_iterator_glob_new(&it, r, "refs/*")) < 0) {
        git_odb_free(odb);
        return rc;
    }
    while ((rc = git_reference_next(&ref, it)) == 0) {
        const git_oid *oid = git_reference_target(ref);
        if (oid &&
            (strncmp(git_reference_name(ref), DM_GIT_OUT_PREFIX, strlen(DM_GIT_OUT_PREFIX)) == 0 ||
             !git_odb_exists(odb, oid))) {
            dm_warn(DM_GIT_MOD, NULL, "dropping the stale ref %s of the mirror",
                    git_reference_name(ref));
            rc = git_reference_delete(ref);
        } else if (oid && (rc = git_revwalk_push(walk, oid)) == GIT_EINVALIDSPEC) {
            git_error_clear(); /* not a commit (a tag of a tree or blob): nothing to walk */
            rc = 0;
        }
        git_reference_free(ref);
        if (rc < 0) {
            break;
        }
    }
    git_reference_iterator_free(it);
    git_odb_free(odb);
    return rc == GIT_ITEROVER ? 0 : rc;
}

/* Repacks one mirror (its lock held): the objects reachable from its refs into one new pack,
 * then every other pack and every loose object removed (unreachable ones are pruned so). */
static int repack(struct dm_git_lock_entry *e, struct dm_error *err)
{
    git_packbuilder *pb = NULL;
    git_revwalk *walk = NULL;
    char packdir[4300], name[64];
    const git_oid *hash;
    int rc;

    snprintf(packdir, sizeof(packdir), "%s/objects/pack", e->path);
    if ((rc = git_packbuilder_new(&pb, e->repo)) < 0 ||
        (rc = git_revwalk_new(&walk, e->repo)) < 0) {
        goto out;
    }
    git_packbuilder_set_threads(pb, 1);
    rc = walk_kept_refs(walk, e->repo);
    if (rc == 0) {
        rc = git_packbuilder_insert_walk(pb, walk);
    }
    if (rc == 0 && git_packbuilder_object_count(pb) > 0) {
        rc = git_packbuilder_write(pb, packdir, 0, NULL, NULL);
        if (rc == 0 && (hash = git_packbuilder_hash(pb)) != NULL) {
            char hex[DM_GIT_OID_HEX];
            git_oid_tostr(hex, sizeof(hex), hash);
            snprintf(name, sizeof(name), "pack-%s", hex);
            drop_old_objects(e->path, name);
        }
    }
out:
    git_revwalk_free(walk);
    git_packbuilder_free(pb);
    if (rc < 0) {
        return dm_git_fail(err, NULL, rc, "repacking the mirror");
    }
    return mirror_load_odb(e, err);
}

int dm_git_maintain(const struct dm_git_opts *o, size_t *repacked, struct dm_error *err)
{
    *repacked = 0;
    for (;;) {
        struct dm_git_mirror_lock h;
        struct dm_git_lock_entry *e;
        char path[4096];
        int rc, due;

        path[0] = '\0';
        pthread_mutex_lock(&locks_mu);
        for (e = locks; e; e = e->next) {
            if (e->maint_due) {
                snprintf(path, sizeof(path), "%s", e->path);
                break;
            }
        }
        pthread_mutex_unlock(&locks_mu);
        if (!path[0]) {
            return 0;
        }
        if ((rc = lock_mirror(&h, o, path, err)) < 0) {
            return rc;
        }
        e = h.entry;
        pthread_mutex_lock(&locks_mu);
        due = e->maint_due;
        if (due) {
            e->maint_due = 0;
            atomic_fetch_sub(&maint_due, 1);
        }
        pthread_mutex_unlock(&locks_mu);
        if (due) {
            rc = e->repo ? repack(e, err) : 0;
            if (rc < 0) {
                dm_warn(DM_GIT_MOD, NULL, "mirror %s not repacked: %s", path, err->msg);
                entry_close_repo(e);
            } else {
                (*repacked)++;
            }
        }
        unlock_mirror(&h);
    }
}

/* ---- look-ups and fetches --------------------------------------------------------------- */

/* Points <prefix><name> at oid in the mirror (unless it already does). */
static int keep_ref(git_repository *r, struct dm_git_session *s, const char *prefix,
                    const char *name, const git_oid *oid, struct dm_error *err)
{
    git_reference *ref = NULL;
    char refname[600];
    git_oid now;
    int rc;

    snprintf(refname, sizeof(refname), "%s%s", prefix, name);
    if (git_reference_name_to_id(&now, r, refname) == 0 && git_oid_equal(&now, oid)) {
        return 0;
    }
    rc = git_reference_create(&ref, r, refname, oid, 1, "dreamd fetch");
    git_reference_free(ref);
    return rc < 0 ? dm_git_fail(err, s, rc, "updating the mirror") : 0;
}

long long dm_git_now_ms(void)
{
    return mono_ms();
}

void dm_git_mirror_seen(struct dm_git_mirror *m, const char *base, const git_oid *tip,
                        long long asked_ms)
{
    struct dm_git_lock_entry *e = m->lock.entry;
    struct looked *slot = &e->looked[0];

    for (size_t i = 0; i < LOOKED_MAX; i++) {
        if (strcmp(e->looked[i].base, base) == 0) {
            slot = &e->looked[i];
            break;
        }
        if (e->looked[i].ms < slot->ms) {
            slot = &e->looked[i];
        }
    }
    if (slot->ms > asked_ms && strcmp(slot->base, base) == 0) {
        return; /* a newer answer is kept */
    }
    snprintf(slot->base, sizeof(slot->base), "%s", base);
    git_oid_cpy(&slot->tip, tip);
    slot->ms = asked_ms;
}

static int looked_recently(struct dm_git_mirror *m, const struct dm_git_opts *o, const char *base,
                           git_oid *tip)
{
    struct dm_git_lock_entry *e = m->lock.entry;

    if (o->coalesce_since_ms <= 0) {
        return 0;
    }
    for (size_t i = 0; i < LOOKED_MAX; i++) {
        if (e->looked[i].ms && strcmp(e->looked[i].base, base) == 0 &&
            e->looked[i].ms >= o->coalesce_since_ms) {
            git_oid_cpy(tip, &e->looked[i].tip);
            return 1;
        }
    }
    return 0;
}

/* dm_git_mirror_fetch from a remote on this machine: keep[0] is the base's ref, keep[1..n] the
 * branches' (NULL skipped). */
static int fetch_local(struct dm_git_mirror *m, struct dm_git_session *s, const char *base,
                       const char *const *keep, size_t nbranches, struct dm_git_remote_state *st,
                       struct dm_git_tip *tips, int *downloaded, struct dm_error *err)
{
    git_repository *origin = NULL;
    struct dm_git_tip *all = calloc(nbranches + 1, sizeof(*all));
    git_oid *wants = calloc(nbranches + 1, sizeof(*wants));
    git_odb *odb = NULL;
    git_oid kept;
    size_t nwants = 0;
    int rc;

    if (!all || !wants) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = dm_git_mirror_origin(m, &origin, s, err)) < 0 ||
        (rc = dm_git_local_tips(origin, keep, nbranches + 1, all, s, err)) < 0) {
        goto out;
    }
    st->listed = 1;
    if (!all[0].exists) {
        rc = dm_error_set(err, DM_ERR_NOTFOUND, "base branch '%s' not found on the remote", base);
        goto out;
    }
    git_oid_cpy(&st->base, &all[0].oid);
    for (size_t j = 0; j < nbranches; j++) {
        tips[j] = all[j + 1];
    }
    if ((rc = git_repository_odb(&odb, m->repo)) < 0) {
        rc = dm_git_fail(err, s, rc, "reading the mirror");
        goto out;
    }
    for (size_t j = 0; j <= nbranches; j++) {
        if (all[j].exists && !git_odb_exists(odb, &all[j].oid)) {
            git_oid_cpy(&wants[nwants++], &all[j].oid);
        }
    }
    if (nwants > 0) {
        int have = dm_git_mirror_tracked(&kept, m->repo, base) == 0;
        git_error_clear();
        rc = dm_git_local_fetch(m, origin, s, wants, nwants, have ? &kept : NULL, err);
        if (rc < 0) {
            dm_git_mirror_origin_close(m);
            goto out;
        }
        *downloaded = 1;
    }
    rc = 0;
out:
    git_odb_free(odb);
    free(all);
    free(wants);
    return rc;
}

int dm_git_mirror_fetch(struct dm_git_mirror *m, struct dm_git_session *s, const char *base,
                        const char *const *branches, size_t nbranches,
                        struct dm_git_remote_state *st, struct dm_git_tip *tips,
                        struct dm_error *err)
{
    git_repository *fr = NULL;
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    git_fetch_options fo;
    git_proxy_options po;
    git_odb *odb = NULL;
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    char want_base[512];
    char **specs = NULL, **keep = NULL;
    const char *const *saved_keep = NULL;
    size_t saved_nkeep = 0;
    git_strarray arr = {NULL, 0};
    int has_base = 0, downloaded = 0;
    long long asked;
    int rc;

    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < nbranches; i++) {
        memset(&tips[i], 0, sizeof(tips[i]));
    }
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
    dm_git_session_reset(s);
    dm_git_session_callbacks(s, &cb);
    po.type = GIT_PROXY_AUTO;
    snprintf(want_base, sizeof(want_base), "refs/heads/%s", base);
    specs = calloc(nbranches + 1, sizeof(*specs));
    if (!specs) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    arr.strings = specs;
    keep = calloc(nbranches + 1, sizeof(*keep));
    if (!keep) {
        free(specs);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    keep[0] = want_base;
    for (size_t j = 0; j < nbranches; j++) {
        if (branches[j] && asprintf(&keep[j + 1], "refs/heads/%s", branches[j]) < 0) {
            keep[j + 1] = NULL;
        }
    }
    saved_keep = s->keep;
    saved_nkeep = s->nkeep;
    s->keep = (const char *const *)keep;
    s->nkeep = nbranches + 1;
    if (m->local) {
        asked = mono_ms();
        rc = fetch_local(m, s, base, (const char *const *)keep, nbranches, st, tips, &downloaded,
                         err);
        if (rc < 0) {
            goto out;
        }
        goto keep_refs;
    }
    /* A second handle on the mirror with git's own object database: it can write the pack a
     * download brings. The open mirror reloads its backends afterwards. */
    rc = git_repository_open_bare(&fr, m->path);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "opening the mirror");
        goto out;
    }
    rc = dm_git_remote_new(&remote, fr, s->url);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "preparing the remote");
        goto out;
    }
    asked = mono_ms();
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
    /* The advertisement lists every ref of the remote (protocol v0: libgit2 1.5 has no way to
     * ask for fewer); only the base and the named branches are looked at or fetched. */
    for (size_t i = 0; i < nheads; i++) {
        const char *name = heads[i]->name;
        if (strncmp(name, "refs/heads/", 11) != 0) {
            continue;
        }
        if (strcmp(name, want_base) == 0) {
            git_oid_cpy(&st->base, &heads[i]->oid);
            has_base = 1;
            continue;
        }
        for (size_t j = 0; j < nbranches; j++) {
            if (branches[j] && strcmp(name + 11, branches[j]) == 0) {
                git_oid_cpy(&tips[j].oid, &heads[i]->oid);
                tips[j].exists = 1;
            }
        }
    }
    if (!has_base) {
        rc = dm_error_set(err, DM_ERR_NOTFOUND, "base branch '%s' not found on the remote", base);
        goto out;
    }
    /* Only what the mirror does not have yet is downloaded. */
    if ((rc = git_repository_odb(&odb, m->repo)) < 0) {
        rc = dm_git_fail(err, s, rc, "reading the mirror");
        goto out;
    }
    if (!git_odb_exists(odb, &st->base)) {
        if (asprintf(&specs[arr.count], "+%s:" DM_GIT_TRACK_PREFIX "%s", want_base, base) < 0) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        arr.count++;
    }
    for (size_t j = 0; j < nbranches; j++) {
        if (tips[j].exists && !git_odb_exists(odb, &tips[j].oid)) {
            if (asprintf(&specs[arr.count], "+refs/heads/%s:" DM_GIT_PEEK_PREFIX "%s", branches[j],
                         branches[j]) < 0) {
                rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
                goto out;
            }
            arr.count++;
        }
    }
    if (arr.count > 0) {
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
        if ((rc = dm_git_mirror_reload(m, err)) < 0) {
            goto out;
        }
        downloaded = 1;
    }
keep_refs:
    /* Our own refs keep the fetched objects reachable in the mirror. */
    rc = keep_ref(m->repo, s, DM_GIT_TRACK_PREFIX, base, &st->base, err);
    for (size_t j = 0; rc == 0 && j < nbranches; j++) {
        if (tips[j].exists) {
            rc = keep_ref(m->repo, s, DM_GIT_PEEK_PREFIX, branches[j], &tips[j].oid, err);
        }
    }
    if (rc < 0) {
        goto out;
    }
    if (downloaded) {
        m->fetched = 1;
    }
    dm_git_mirror_seen(m, base, &st->base, asked);
    rc = 0;
out:
    for (size_t i = 0; i < arr.count; i++) {
        free(specs[i]);
    }
    free(specs);
    git_odb_free(odb);
    dm_git_remote_close(remote);
    git_repository_free(fr);
    s->keep = saved_keep;
    s->nkeep = saved_nkeep;
    for (size_t j = 1; j <= nbranches; j++) {
        free(keep[j]);
    }
    free(keep);
    return rc;
}

int dm_git_mirror_lookup(struct dm_git_mirror *m, struct dm_git_session *s, const char *base,
                         struct dm_git_remote_state *st, struct dm_error *err)
{
    git_oid tip, kept;
    git_odb *odb = NULL;
    int have = 0;

    if (!m->created && looked_recently(m, s->o, base, &tip) &&
        dm_git_mirror_tracked(&kept, m->repo, base) == 0 && git_oid_equal(&tip, &kept) &&
        git_repository_odb(&odb, m->repo) == 0) {
        have = git_odb_exists(odb, &tip);
        git_odb_free(odb);
    }
    if (have) {
        /* Another job on this base asked the remote a moment ago: its answer serves. */
        memset(st, 0, sizeof(*st));
        git_oid_cpy(&st->base, &tip);
        st->listed = 1;
        m->coalesced = 1;
        return 0;
    }
    return dm_git_mirror_fetch(m, s, base, NULL, 0, st, NULL, err);
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
    m->local = dm_git_local_path(m->origin, sizeof(m->origin), m->url);
    if ((rc = lock_mirror(&m->lock, o, m->path, err)) < 0) {
        return rc;
    }
    if ((rc = mirror_ready(m, err)) < 0) {
        unlock_mirror(&m->lock);
        return rc;
    }
    return 0;
}

void dm_git_mirror_release(struct dm_git_mirror *m)
{
    if (m->lock.entry) {
        /* The job's objects were pushed (or are not wanted): none stays in memory. */
        if (m->wrote) {
            dm_git_mirror_forget_objects(m);
        }
        maybe_maintain(m);
    }
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
        rc = dm_git_mirror_lookup(&m, &s, base, &st, err);
        if (rc < 0) {
            goto out;
        }
    } else {
        char ref[600];
        snprintf(ref, sizeof(ref), DM_GIT_TRACK_PREFIX "%s", base);
        rc = git_reference_name_to_id(&st.base, m.repo, ref);
        if (rc == GIT_ENOTFOUND) {
            rc = dm_git_mirror_fetch(&m, &s, base, NULL, 0, &st, NULL, err);
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

/* ---- the remote as a repository on this machine ------------------------------------------ */

int dm_git_mirror_origin(struct dm_git_mirror *m, git_repository **out, struct dm_git_session *s,
                         struct dm_error *err)
{
    struct dm_git_lock_entry *e = m->lock.entry;
    struct timespec packs_mtime;
    char packs[4200];
    struct stat st;
    int rc;

    *out = NULL;
    if (stat(m->origin, &st) != 0 || !S_ISDIR(st.st_mode)) {
        entry_close_origin(e);
        return dm_error_set(err, DM_ERR_NOTFOUND,
                            "connecting to the remote: could not find repository at '%s'",
                            m->origin);
    }
    snprintf(packs, sizeof(packs), "%s/objects/pack", m->origin);
    mtime_of(&packs_mtime, packs);
    if (e->origin && (st.st_ino != e->origin_ino || st.st_dev != e->origin_dev ||
                      !same_time(&packs_mtime, &e->origin_packs))) {
        /* Replaced since, or its packs were rewritten (a gc there): open it afresh, so no
         * removed pack stays open and a new repository is never read through an old handle.
         * The pushes add loose objects, so this does not happen on every job. */
        entry_close_origin(e);
    }
    if (!e->origin) {
        rc = git_repository_open_ext(&e->origin, m->origin, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
        if (rc < 0) {
            e->origin = NULL;
            if (rc == GIT_ENOTFOUND) {
                return dm_error_set(err, DM_ERR_NOTFOUND,
                                    "connecting to the remote: could not find repository at '%s'",
                                    m->origin);
            }
            return dm_git_fail(err, s, rc, "opening the remote");
        }
        e->origin_dev = st.st_dev;
        e->origin_ino = st.st_ino;
        e->origin_packs = packs_mtime;
    }
    *out = e->origin;
    return 0;
}

void dm_git_mirror_origin_close(struct dm_git_mirror *m)
{
    if (m->lock.entry) {
        entry_close_origin(m->lock.entry);
    }
}
