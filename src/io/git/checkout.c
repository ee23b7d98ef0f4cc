/*
 * git/checkout: a commit's checkable files (TS/JS, JSON, SQL) written out under a per-commit
 * cache directory for the whole-change checks (dm_git_checkout, contract in
 * include/dream/io/git.h). The mirror is locked only while its objects are read.
 *
 * Threadpool threads only.
 */
#include "dream/io/fsutil.h"
#include "git_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_FILES_DEFAULT ((size_t)50000)
#define MAX_FILE_BYTES_DEFAULT ((size_t)2 << 20)
#define MAX_BYTES_DEFAULT ((size_t)512 << 20)
#define KEEP_DEFAULT ((size_t)8)

struct writer {
    git_repository *repo;
    const struct dm_git_opts *o;
    const char *root; /* the directory being written */
    size_t max_files, max_file_bytes, max_bytes;
    size_t files, bytes, skipped;
    int rc;
    struct dm_error *err;
};

/* 1 when the whole-change checks read files like this one. */
static int wanted(const char *name)
{
    static const char *const exts[] = {"ts",  "tsx", "mts", "cts",  "js",
                                       "jsx", "mjs", "cjs", "json", "sql"};
    const char *dot = strrchr(name, '.');
    if (!dot) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (strcasecmp(dot + 1, exts[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int write_blob(struct writer *w, const char *rel, const git_oid *id)
{
    git_blob *blob = NULL;
    char path[PATH_MAX];
    const char *data;
    size_t len, off = 0;
    char *slash;
    int fd, rc;

    rc = git_blob_lookup(&blob, w->repo, id);
    if (rc < 0) {
        return dm_git_fail(w->err, NULL, rc, "reading a file of the base");
    }
    len = (size_t)git_blob_rawsize(blob);
    if (len > w->max_file_bytes) {
        w->skipped++;
        git_blob_free(blob);
        return 0;
    }
    if (w->files >= w->max_files || w->bytes + len > w->max_bytes) {
        git_blob_free(blob);
        return dm_error_set(w->err, DM_ERR_LIMIT,
                            "the base has more to check than the limits (%zu files, %zu bytes)",
                            w->max_files, w->max_bytes);
    }
    data = git_blob_rawcontent(blob);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->root, rel) >= sizeof(path)) {
        git_blob_free(blob);
        w->skipped++;
        return 0;
    }
    slash = strrchr(path, '/');
    *slash = '\0';
    rc = dm_fs_mkdir_p(path);
    *slash = '/';
    fd = rc == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444) : -1;
    if (fd < 0) {
        git_blob_free(blob);
        return dm_error_set(w->err, DM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            git_blob_free(blob);
            return dm_error_set(w->err, DM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        }
        off += (size_t)n;
    }
    close(fd);
    git_blob_free(blob);
    w->files++;
    w->bytes += len;
    return 0;
}

static int on_entry(const char *root, const git_tree_entry *entry, void *payload)
{
    struct writer *w = payload;
    git_filemode_t mode = git_tree_entry_filemode(entry);
    const char *name = git_tree_entry_name(entry);
    char rel[PATH_MAX];

    if (dm_git_cancelled(w->o)) {
        w->rc = dm_error_set(w->err, DM_ERR_CANCELLED, "cancelled");
        return -1;
    }
    if (mode == GIT_FILEMODE_TREE) {
        /* Installed packages are never checked in a base (and are the repository's own). */
        return strcmp(name, "node_modules") == 0 || strcmp(name, ".git") == 0 ? 1 : 0;
    }
    if ((mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) || !wanted(name) ||
        strchr(name, '\\') || name[0] == '\0' || strcmp(name, "..") == 0) {
        return 0;
    }
    if ((size_t)snprintf(rel, sizeof(rel), "%s%s", root, name) >= sizeof(rel)) {
        return 0;
    }
    w->rc = write_blob(w, rel, git_tree_entry_id(entry));
    return w->rc ? -1 : 0;
}

/* Removes the least recently used commit directories past keep (never `current`). */
static void prune(const char *cache_root, const char *current, size_t keep)
{
    struct ent {
        char name[DM_GIT_OID_HEX];
        time_t mtime;
    } *ents = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(cache_root);
    struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (strlen(e->d_name) != DM_GIT_OID_HEX - 1 || strcmp(e->d_name, current) == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", cache_root, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (n == cap) {
            struct ent *ne = realloc(ents, (cap ? cap * 2 : 16) * sizeof(*ne));
            if (!ne) {
                break;
            }
            ents = ne;
            cap = cap ? cap * 2 : 16;
        }
        memcpy(ents[n].name, e->d_name, DM_GIT_OID_HEX);
        ents[n].mtime = st.st_mtime;
        n++;
    }
    closedir(d);
    /* keep - 1 others besides current: drop the oldest until that many are left. */
    while (n + 1 > keep && n > 0) {
        size_t oldest = 0;
        char path[PATH_MAX];
        for (size_t i = 1; i < n; i++) {
            if (ents[i].mtime < ents[oldest].mtime) {
                oldest = i;
            }
        }
        snprintf(path, sizeof(path), "%s/%s", cache_root, ents[oldest].name);
        dm_fs_rm_rf(path);
        ents[oldest] = ents[--n];
    }
    free(ents);
}

int dm_git_checkout(struct dm_git_checkout *out, const struct dm_git_opts *opts, const char *owner,
                    const char *repo, const char *base, const char *commit, int refresh,
                    const char *cache_root, const struct dm_git_checkout_limits *limits,
                    struct dm_error *err)
{
    struct dm_git_mirror m;
    struct dm_git_session s;
    struct dm_git_remote_state st;
    struct writer w;
    git_oid oid;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    char tmp[PATH_MAX];
    struct stat sb;
    int have_mirror = 0, have_oid = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    tmp[0] = '\0';
    memset(&w, 0, sizeof(w));
    dm_git_session_init(&s, opts, NULL, NULL);
    if (!cache_root || !*cache_root) {
        rc = dm_error_set(err, DM_ERR_INVALID, "no cache directory for the checkout");
        goto out;
    }
    if ((rc = dm_git_mirror_acquire(&m, opts, owner, repo, base, err)) < 0) {
        goto out;
    }
    have_mirror = 1;
    s.url = m.url;
    if (commit && strlen(commit) == DM_GIT_OID_HEX - 1 && !refresh &&
        git_oid_fromstr(&oid, commit) == 0 && git_commit_lookup(&c, m.repo, &oid) == 0) {
        have_oid = 1;
    }
    if (!have_oid) {
        char ref[600];
        snprintf(ref, sizeof(ref), DM_GIT_TRACK_PREFIX "%s", base);
        rc = refresh || m.created ? GIT_ENOTFOUND : git_reference_name_to_id(&st.base, m.repo, ref);
        if (rc == GIT_ENOTFOUND) {
            rc = refresh ? dm_git_mirror_lookup(&m, &s, base, &st, err)
                         : dm_git_mirror_fetch(&m, &s, base, NULL, 0, &st, NULL, err);
            if (rc < 0) {
                goto out;
            }
        } else if (rc < 0) {
            rc = dm_git_fail(err, &s, rc, "reading the mirror");
            goto out;
        }
        oid = st.base;
        rc = git_commit_lookup(&c, m.repo, &oid);
        if (rc < 0) {
            rc = dm_git_fail(err, &s, rc, "reading the base commit");
            goto out;
        }
    }
    git_oid_tostr(out->commit, sizeof(out->commit), &oid);
    if ((size_t)snprintf(out->dir, sizeof(out->dir), "%s/%s", cache_root, out->commit) >=
        sizeof(out->dir)) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "cache directory path too long");
        goto out;
    }
    if (stat(out->dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        out->cached = 1;
        utimes(out->dir, NULL);
        rc = 0;
        goto out;
    }
    if ((rc = git_commit_tree(&tree, c)) < 0) {
        rc = dm_git_fail(err, &s, rc, "reading the base tree");
        goto out;
    }
    if (dm_fs_mkdir_p(cache_root) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "cannot create %s: %s", cache_root, strerror(errno));
        goto out;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld-%lx", out->dir, (long)getpid(),
                         (unsigned long)pthread_self()) >= sizeof(tmp)) {
        tmp[0] = '\0';
        rc = dm_error_set(err, DM_ERR_LIMIT, "cache directory path too long");
        goto out;
    }
    dm_fs_rm_rf(tmp);
    if (mkdir(tmp, 0755) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    w.repo = m.repo;
    w.o = opts;
    w.root = tmp;
    w.err = err;
    w.max_files = limits && limits->max_files ? limits->max_files : MAX_FILES_DEFAULT;
    w.max_file_bytes =
        limits && limits->max_file_bytes ? limits->max_file_bytes : MAX_FILE_BYTES_DEFAULT;
    w.max_bytes = limits && limits->max_bytes ? limits->max_bytes : MAX_BYTES_DEFAULT;
    rc = git_tree_walk(tree, GIT_TREEWALK_PRE, on_entry, &w);
    if (w.rc) {
        rc = w.rc;
        goto out;
    }
    if (rc < 0) {
        rc = dm_git_fail(err, &s, rc, "walking the base tree");
        goto out;
    }
    if (rename(tmp, out->dir) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST) {
            out->cached = 1; /* another thread or replica wrote the same commit first */
        } else {
            rc = dm_error_set(err, DM_ERR_IO, "cannot install %s: %s", out->dir, strerror(errno));
            goto out;
        }
    } else {
        tmp[0] = '\0';
    }
    out->files = w.files;
    out->skipped = w.skipped;
    rc = 0;
out:
    if (tmp[0]) {
        dm_fs_rm_rf(tmp);
    }
    git_tree_free(tree);
    git_commit_free(c);
    if (have_mirror) {
        dm_git_mirror_release(&m);
    }
    if (rc == 0) {
        prune(cache_root, out->commit, limits && limits->keep ? limits->keep : KEEP_DEFAULT);
    } else {
        memset(out, 0, sizeof(*out));
        if (err) {
            dm_git_scrub(err->msg, opts ? opts->token : NULL);
        }
    }
    dm_git_session_free(&s);
    return rc;
}
