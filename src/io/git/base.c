/*
 * base: reading one commit of a mirror — the tree with blob sizes and bounded blob contents
 * (contract in include/dream/io/git.h, dm_git_base_*). The mirror stays locked while it is
 * open, so a concurrent fetch or push of the same mirror waits.
 * Threadpool threads only.
 */
#include "git_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_PATHS 100000

struct dm_git_base {
    struct dm_git_mirror m;
    const struct dm_git_opts *o;
    git_commit *commit;
    git_tree *tree;
    git_odb *odb;
    char hex[DM_GIT_OID_HEX];
};

int dm_git_base_open(struct dm_git_base **out, const struct dm_git_opts *opts, const char *owner,
                     const char *repo, const char *base, const char *commit, int refresh,
                     int *no_base, struct dm_error *err)
{
    struct dm_git_base *b;
    struct dm_git_session s;
    struct dm_git_remote_state st;
    git_oid want;
    int rc;

    *out = NULL;
    if (no_base) {
        *no_base = 0;
    }
    if (commit && (strlen(commit) != DM_GIT_OID_HEX - 1 || git_oid_fromstr(&want, commit) < 0)) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid base commit");
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    b->o = opts;
    dm_git_session_init(&s, opts, NULL, NULL);
    if ((rc = dm_git_mirror_acquire(&b->m, opts, owner, repo, base, err)) < 0) {
        dm_git_session_free(&s);
        free(b);
        return rc;
    }
    s.url = b->m.url;
    memset(&st, 0, sizeof(st));
    rc = 0;
    if (!refresh && !b->m.created) {
        rc = dm_git_mirror_tracked(&st.base, b->m.repo, base);
        if (rc == 0 && commit) {
            git_commit *c = NULL;
            rc = git_commit_lookup(&c, b->m.repo, &want);
            git_commit_free(c);
        }
    }
    if (refresh || b->m.created || rc < 0) {
        /* A missing commit needs the remote now; a refresh may use a look-up of a moment ago. */
        rc = refresh && rc == 0 && !commit
                 ? dm_git_mirror_lookup(&b->m, &s, base, &st, err)
                 : dm_git_mirror_fetch(&b->m, &s, base, NULL, 0, &st, NULL, err);
        if (rc == DM_ERR_NOTFOUND && st.listed && no_base) {
            *no_base = 1;
        }
        if (rc < 0) {
            goto fail;
        }
    }
    if (commit) {
        git_oid_cpy(&st.base, &want);
    }
    rc = git_commit_lookup(&b->commit, b->m.repo, &st.base);
    if (rc == GIT_ENOTFOUND && commit) {
        rc =
            dm_error_set(err, DM_ERR_NOTFOUND, "base commit %.8s is not in the repository", commit);
        goto fail;
    }
    if (rc == 0) {
        rc = git_commit_tree(&b->tree, b->commit);
    }
    if (rc == 0) {
        rc = git_repository_odb(&b->odb, b->m.repo);
    }
    if (rc < 0) {
        rc = dm_git_fail(err, &s, rc, "reading the base commit");
        goto fail;
    }
    git_oid_tostr(b->hex, sizeof(b->hex), &st.base);
    dm_git_session_free(&s);
    *out = b;
    return 0;
fail:
    dm_git_scrub(err->msg, opts ? opts->token : NULL);
    dm_git_session_free(&s);
    dm_git_base_close(b);
    return rc;
}

const char *dm_git_base_commit(const struct dm_git_base *b)
{
    return b->hex;
}

struct base_walk {
    struct dm_git_base *b;
    int (*each)(void *arg, const char *path, size_t size);
    void *arg;
    size_t n, max;
    int truncated;
    int stopped; /* each's value */
    int failed;  /* a libgit2 error reading a header */
    char path[4096];
};

static int on_entry(const char *root, const git_tree_entry *entry, void *payload)
{
    struct base_walk *w = payload;
    git_filemode_t mode = git_tree_entry_filemode(entry);
    size_t size = 0;
    git_object_t type;
    int rc;

    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
        return 0;
    }
    if (w->n >= w->max) {
        w->truncated = 1;
        return -1;
    }
    if (dm_git_cancelled(w->b->o)) {
        w->stopped = DM_ERR_CANCELLED;
        return -1;
    }
    rc = git_odb_read_header(&size, &type, w->b->odb, git_tree_entry_id(entry));
    if (rc < 0) {
        w->failed = rc;
        return -1;
    }
    snprintf(w->path, sizeof(w->path), "%s%s", root, git_tree_entry_name(entry));
    w->n++;
    rc = w->each(w->arg, w->path, size);
    if (rc) {
        w->stopped = rc;
        return -1;
    }
    return 0;
}

int dm_git_base_tree(struct dm_git_base *b, size_t max,
                     int (*each)(void *arg, const char *path, size_t size), void *arg,
                     int *truncated, struct dm_error *err)
{
    struct base_walk w;
    int rc;

    memset(&w, 0, sizeof(w));
    w.b = b;
    w.each = each;
    w.arg = arg;
    w.max = max ? max : DEFAULT_MAX_PATHS;
    rc = git_tree_walk(b->tree, GIT_TREEWALK_PRE, on_entry, &w);
    *truncated = w.truncated;
    if (w.stopped) {
        if (w.stopped == DM_ERR_CANCELLED) {
            dm_error_set(err, DM_ERR_CANCELLED, "cancelled while listing the base tree");
        }
        return w.stopped;
    }
    if (w.failed) {
        return dm_git_fail(err, NULL, w.failed, "reading the base tree");
    }
    if (rc < 0 && !w.truncated) {
        return dm_git_fail(err, NULL, rc, "walking the base tree");
    }
    return 0;
}

int dm_git_base_read(struct dm_git_base *b, const char *path, size_t max_bytes, char **content,
                     size_t *len, int *cut, struct dm_error *err)
{
    git_tree_entry *e = NULL;
    git_odb_stream *stream = NULL;
    git_blob *blob = NULL;
    git_object_t type;
    size_t size = 0, got = 0;
    char *buf = NULL;
    int rc;

    *content = NULL;
    *len = 0;
    *cut = 0;
    rc = git_tree_entry_bypath(&e, b->tree, path);
    if (rc == GIT_ENOTFOUND || (rc == 0 && git_tree_entry_type(e) != GIT_OBJECT_BLOB)) {
        git_tree_entry_free(e);
        return dm_error_set(err, DM_ERR_NOTFOUND, "%s: no such file in the base", path);
    }
    if (rc < 0) {
        return dm_git_fail(err, NULL, rc, "reading the base tree");
    }
    if (max_bytes == 0) {
        max_bytes = 1;
    }
    buf = malloc(max_bytes + 1);
    if (!buf) {
        git_tree_entry_free(e);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    rc = git_odb_read_header(&size, &type, b->odb, git_tree_entry_id(e));
    if (rc == 0 && size > max_bytes &&
        git_odb_open_rstream(&stream, &size, &type, b->odb, git_tree_entry_id(e)) == 0) {
        /* A loose object: only its first max_bytes are inflated. */
        while (got < max_bytes) {
            int n = git_odb_stream_read(stream, buf + got, max_bytes - got);
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        git_odb_stream_free(stream);
        *cut = 1;
    } else if (rc == 0 && size > DM_GIT_BLOB_LOAD_MAX) {
        git_tree_entry_free(e);
        free(buf);
        return dm_error_set(err, DM_ERR_LIMIT, "%s: %zu bytes, too big to read", path, size);
    } else {
        if (rc == 0) {
            rc = git_blob_lookup(&blob, b->m.repo, git_tree_entry_id(e));
        }
        if (rc < 0) {
            git_tree_entry_free(e);
            free(buf);
            return dm_git_fail(err, NULL, rc, "reading a base file");
        }
        size = (size_t)git_blob_rawsize(blob);
        got = size < max_bytes ? size : max_bytes;
        memcpy(buf, git_blob_rawcontent(blob), got);
        *cut = size > max_bytes;
        git_blob_free(blob);
    }
    git_tree_entry_free(e);
    buf[got] = '\0';
    *content = buf;
    *len = got;
    return 0;
}

void dm_git_base_close(struct dm_git_base *b)
{
    if (!b) {
        return;
    }
    git_odb_free(b->odb);
    git_tree_free(b->tree);
    git_commit_free(b->commit);
    if (b->m.repo || b->m.lock.entry || b->m.lock.fd >= 0) {
        dm_git_mirror_release(&b->m);
    }
    free(b);
}
