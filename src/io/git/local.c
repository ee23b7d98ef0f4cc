/*
 * git/local: a remote on this machine reached in-process (see git_private.h): the refs an
 * operation names read straight from the remote's ref store, a fetch as one pack of only what
 * the mirror lacks, a push as the objects the job wrote (loose, as git's receive-pack keeps a
 * small push) followed by a compare-and-swap of each branch's ref.
 *
 * Threadpool threads only, the mirror's lock held (the remote's repository is kept with it).
 * Other writers of the remote (git itself, other replicas) are fenced by git's own lock files:
 * an object or a pack is installed by rename, a ref moves under its .lock only when it still holds
 * what the push saw.
 */
#include "git_private.h"

#include <git2/sys/odb_backend.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int dm_git_local_path(char *path, size_t pathlen, const char *url)
{
    const char *p;
    size_t n = 0;
    int decode = 0;

    if (strncmp(url, "file://", 7) == 0) {
        p = url + 7;
        decode = 1; /* a URL; a plain path is taken as it is, as libgit2 does */
        if (*p != '/') {
            return 0; /* file://host/...: not this machine's */
        }
    } else if (url[0] == '/') {
        p = url;
    } else {
        return 0;
    }
    for (; *p; p++) {
        char c = *p;
        if (decode && c == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            c = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
            if (c == '\0') {
                return 0;
            }
        }
        if (n + 1 >= pathlen) {
            return 0;
        }
        path[n++] = c;
    }
    path[n] = '\0';
    return n > 0;
}

int dm_git_local_tips(git_repository *origin, const char *const *refs, size_t n,
                      struct dm_git_tip *tips, struct dm_git_session *s, struct dm_error *err)
{
    size_t looked = 0;

    for (size_t i = 0; i < n; i++) {
        int rc;
        memset(&tips[i], 0, sizeof(tips[i]));
        if (!refs[i]) {
            continue;
        }
        looked++;
        rc = git_reference_name_to_id(&tips[i].oid, origin, refs[i]);
        if (rc == 0) {
            tips[i].exists = 1;
        } else if (rc == GIT_ENOTFOUND) {
            git_error_clear();
        } else {
            return dm_git_fail(err, s, rc, "reading the remote's branches");
        }
    }
    s->advertised = s->parsed = looked;
    dm_git_ref_counts_add(looked, looked);
    return 0;
}

/* Packbuilder and indexer progress: the cancel flag ends the work. */
static int on_pack_progress(int stage, uint32_t current, uint32_t total, void *payload)
{
    (void)stage;
    (void)current;
    (void)total;
    return dm_git_session_check_cancel(payload);
}

static int on_index_progress(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    return dm_git_session_check_cancel(payload);
}

/* Writes pb as one pack into the objects/pack folder of r. */
static int write_pack(git_packbuilder *pb, git_repository *r, struct dm_git_session *s,
                      const char *what, struct dm_error *err)
{
    git_buf objects = GIT_BUF_INIT;
    char dir[4200];
    int rc;

    if ((rc = git_repository_item_path(&objects, r, GIT_REPOSITORY_ITEM_OBJECTS)) < 0) {
        return dm_git_fail(err, s, rc, what);
    }
    snprintf(dir, sizeof(dir), "%s%spack", objects.ptr,
             objects.size && objects.ptr[objects.size - 1] == '/' ? "" : "/");
    git_buf_dispose(&objects);
    git_packbuilder_set_callbacks(pb, on_pack_progress, s);
    rc = git_packbuilder_write(pb, dir, 0, on_index_progress, s);
    if (rc < 0) {
        return dm_git_fail(err, s, rc, what);
    }
    return 0;
}

int dm_git_local_fetch(struct dm_git_mirror *m, git_repository *origin, struct dm_git_session *s,
                       const git_oid *wants, size_t n, const git_oid *hide, struct dm_error *err)
{
    git_packbuilder *pb = NULL;
    git_revwalk *walk = NULL;
    int rc;

    if ((rc = git_packbuilder_new(&pb, origin)) < 0 || (rc = git_revwalk_new(&walk, origin)) < 0) {
        rc = dm_git_fail(err, s, rc, "fetching from the remote");
        goto out;
    }
    git_packbuilder_set_threads(pb, 1);
    for (size_t i = 0; i < n; i++) {
        if ((rc = git_revwalk_push(walk, &wants[i])) < 0) {
            rc = dm_git_fail(err, s, rc, "fetching from the remote");
            goto out;
        }
    }
    /* What the mirror already has of the history (its tracked base) is left out, when the
     * remote still has it. */
    if (hide && git_revwalk_hide(walk, hide) < 0) {
        git_error_clear();
    }
    if ((rc = git_packbuilder_insert_walk(pb, walk)) < 0) {
        rc = dm_git_fail(err, s, rc, "fetching from the remote");
        goto out;
    }
    if (dm_git_session_check_cancel(s)) {
        rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while fetching");
        goto out;
    }
    if (git_packbuilder_object_count(pb) > 0) {
        if ((rc = write_pack(pb, m->repo, s, "fetching from the remote", err)) < 0) {
            goto out;
        }
        rc = dm_git_mirror_reload(m, err);
    }
out:
    git_revwalk_free(walk);
    git_packbuilder_free(pb);
    return rc;
}

static int oid_cmp(const void *a, const void *b)
{
    return git_oid_cmp(a, b);
}

/* Adds id and all it reaches to *pb (made on first use). */
static int add_missing(git_packbuilder **pb, git_repository *r, const git_oid *id)
{
    int rc;

    if (!*pb) {
        if ((rc = git_packbuilder_new(pb, r)) < 0) {
            return rc;
        }
        git_packbuilder_set_threads(*pb, 1);
    }
    return git_packbuilder_insert_recur(*pb, id, NULL);
}

/* The objects the written commits and trees name that were neither written now nor are in the
 * remote: the mirror may hold an object the remote has since dropped (a branch fetched, then
 * deleted and pruned there), and the write took it for present and noted nothing. They go as
 * one pack, with everything they reach. Costs a look-up per entry of each new tree. */
static int send_missing(struct dm_git_mirror *m, git_repository *origin, struct dm_git_session *s,
                        const git_oid *ids, size_t n, struct dm_error *err)
{
    git_oid *sorted = malloc(n * sizeof(*sorted));
    git_packbuilder *pb = NULL;
    git_odb *theirs = NULL, *ours = NULL;
    int rc;

    if (!sorted) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    memcpy(sorted, ids, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), oid_cmp);
    if ((rc = git_repository_odb(&theirs, origin)) < 0 ||
        (rc = git_repository_odb(&ours, m->repo)) < 0) {
        rc = dm_git_fail(err, s, rc, "pushing");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        git_tree *t = NULL;
        git_object_t type;
        size_t len;
        if (git_odb_read_header(&len, &type, ours, &ids[i]) < 0) {
            git_error_clear();
            continue;
        }
        if (type == GIT_OBJECT_COMMIT) {
            /* its tree may be one the mirror held already (the same files as before) */
            git_commit *c = NULL;
            const git_oid *tid;
            if ((rc = git_commit_lookup(&c, m->repo, &ids[i])) < 0) {
                rc = dm_git_fail(err, s, rc, "pushing");
                goto out;
            }
            tid = git_commit_tree_id(c);
            rc = 0;
            if (!bsearch(tid, sorted, n, sizeof(*sorted), oid_cmp) &&
                !git_odb_exists(theirs, tid)) {
                rc = add_missing(&pb, m->repo, tid);
            }
            git_commit_free(c);
            if (rc < 0) {
                rc = dm_git_fail(err, s, rc, "pushing");
                goto out;
            }
            continue;
        }
        if (type != GIT_OBJECT_TREE) {
            continue;
        }
        if ((rc = git_tree_lookup(&t, m->repo, &ids[i])) < 0) {
            rc = dm_git_fail(err, s, rc, "pushing");
            goto out;
        }
        for (size_t k = 0; k < git_tree_entrycount(t); k++) {
            const git_tree_entry *e = git_tree_entry_byindex(t, k);
            const git_oid *id = git_tree_entry_id(e);
            if (git_tree_entry_filemode(e) == GIT_FILEMODE_COMMIT ||
                bsearch(id, sorted, n, sizeof(*sorted), oid_cmp) || git_odb_exists(theirs, id)) {
                continue;
            }
            if ((rc = add_missing(&pb, m->repo, id)) < 0) {
                git_tree_free(t);
                rc = dm_git_fail(err, s, rc, "pushing");
                goto out;
            }
        }
        git_tree_free(t);
    }
    rc = pb ? write_pack(pb, origin, s, "pushing", err) : 0;
out:
    git_packbuilder_free(pb);
    git_odb_free(theirs);
    git_odb_free(ours);
    free(sorted);
    return rc;
}

int dm_git_local_send(struct dm_git_mirror *m, git_repository *origin, struct dm_git_session *s,
                      struct dm_error *err)
{
    git_buf objects = GIT_BUF_INIT;
    git_odb_backend *loose = NULL;
    git_odb *odb = NULL;
    const git_oid *ids;
    size_t n;
    int rc;

    dm_git_mirror_written(m, &ids, &n);
    if (n == 0) {
        return 0;
    }
    /* git's receive-pack keeps a small push as loose objects; so does this, written straight
     * into the remote's objects/ (the remote's object database is never rescanned for it). */
    if ((rc = git_repository_item_path(&objects, origin, GIT_REPOSITORY_ITEM_OBJECTS)) < 0 ||
        (rc = git_odb_backend_loose(&loose, objects.ptr, -1, 0, 0, 0)) < 0 ||
        (rc = git_repository_odb(&odb, m->repo)) < 0) {
        rc = dm_git_fail(err, s, rc, "pushing");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        git_odb_object *obj = NULL;
        if (dm_git_session_check_cancel(s)) {
            rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while pushing");
            goto out;
        }
        if ((rc = git_odb_read(&obj, odb, &ids[i])) < 0) {
            rc = dm_git_fail(err, s, rc, "pushing");
            goto out;
        }
        rc = loose->write(loose, &ids[i], git_odb_object_data(obj), git_odb_object_size(obj),
                          git_odb_object_type(obj));
        git_odb_object_free(obj);
        if (rc < 0) {
            rc = dm_git_fail(err, s, rc, "pushing");
            goto out;
        }
    }
    rc = send_missing(m, origin, s, ids, n, err);
out:
    if (loose) {
        loose->free(loose);
    }
    git_odb_free(odb);
    git_buf_dispose(&objects);
    return rc;
}

int dm_git_local_update(git_repository *origin, const char *ref, const git_oid *to,
                        const git_oid *expect, struct dm_git_session *s, struct dm_error *err)
{
    git_reference *out = NULL;
    int rc = git_reference_create_matching(&out, origin, ref, to, expect != NULL, expect, "push");
    const char *name = ref + (strncmp(ref, "refs/heads/", 11) == 0 ? 11 : 0);
    const git_error *e = git_error_last();
    char why[300];
    git_oid now;

    git_reference_free(out);
    if (rc == 0) {
        return 0;
    }
    snprintf(why, sizeof(why), "%s", e && e->message ? e->message : "");
    git_error_clear();
    if (rc == GIT_ELOCKED) {
        /* Someone is writing it now (or a killed git left its lock: the retries then end in a
         * failure that names it). */
        return dm_error_set(err, DM_ERR_TRANSIENT,
                            "pushing %s: the remote branch is locked by another writer (%s); "
                            "not pushed",
                            name, why[0] ? why : "a .lock file");
    }
    /* Moved (EMODIFIED), deleted (ENOTFOUND) or created (EEXISTS) since the push read it. */
    if (rc == GIT_EMODIFIED || (rc == GIT_ENOTFOUND && expect) ||
        (rc == GIT_EEXISTS && (expect || git_reference_name_to_id(&now, origin, ref) == 0))) {
        git_error_clear();
        return dm_error_set(err, DM_ERR_TRANSIENT,
                            "pushing %s: the remote branch changed meanwhile; not pushed", name);
    }
    /* The remote refuses the ref itself (a name that clashes with another ref, "a/b" against
     * "a/b/c"; a ref store it cannot write), as a receive-pack refuses one over the wire. */
    git_error_clear();
    dm_git_scrub(why, s->o ? s->o->token : NULL);
    return dm_error_set(err, DM_ERR_REMOTE, "the remote refused the push of %s: %s", name,
                        why[0] ? why : "the ref could not be written");
}
