/*
 * git/commit: the commit dreamd publishes, built in memory in the mirror (see git_private.h):
 * the checks on the generated files, the message with its Dream-Job and Dream-Spec trailers,
 * the blobs, the tree (base tree + files) and the commit itself. Nothing is checked out and no
 * reference is moved here.
 *
 * Threadpool threads only; works on the caller's git_repository.
 */
#include "git_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int dm_git_text_valid(const char *s)
{
    if (!s || !*s) {
        return 0;
    }
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int path_valid(const char *p)
{
    const char *seg = p;

    if (!p || !*p || *p == '/' || strlen(p) > 4096) {
        return 0;
    }
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.') ||
                (n == 4 && strncasecmp(seg, ".git", 4) == 0)) {
                return 0;
            }
            if (*c == '\0') {
                break;
            }
            seg = c + 1;
            continue;
        }
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') {
            return 0;
        }
    }
    return 1;
}

static int cmp_paths(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int dm_git_check_files(const struct dm_git_file *files, size_t n, struct dm_error *err)
{
    const char **sorted;
    int rc = 0;

    if (n == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "no files to commit");
    }
    sorted = malloc(n * sizeof(*sorted));
    if (!sorted) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!path_valid(files[i].path) || (!files[i].content && files[i].len > 0)) {
            rc = dm_error_set(err, DM_ERR_INVALID, "invalid file path '%.200s'",
                              files[i].path ? files[i].path : "(null)");
            goto out;
        }
        sorted[i] = files[i].path;
    }
    qsort(sorted, n, sizeof(*sorted), cmp_paths);
    for (size_t i = 1; i < n; i++) {
        size_t l = strlen(sorted[i - 1]);
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = dm_error_set(err, DM_ERR_INVALID, "duplicate file path '%.200s'", sorted[i]);
            goto out;
        }
        /* A file cannot also be a directory of another generated file. */
        if (strncmp(sorted[i - 1], sorted[i], l) == 0 && sorted[i][l] == '/') {
            rc = dm_error_set(err, DM_ERR_INVALID, "file path '%.200s' is also a directory",
                              sorted[i - 1]);
            goto out;
        }
    }
out:
    free(sorted);
    return rc;
}

int dm_git_build_message(char **out, const char *message, const char *job_id, const char *spec_id)
{
    struct dm_buf b;
    size_t n = strlen(message);

    while (n > 0 && (message[n - 1] == ' ' || message[n - 1] == '\n' || message[n - 1] == '\r' ||
                     message[n - 1] == '\t')) {
        n--;
    }
    dm_buf_init(&b, 0);
    if (dm_buf_append(&b, message, n) < 0 ||
        dm_buf_printf(&b, "\n\nDream-Job: %s\nDream-Spec: %s\n", job_id, spec_id) < 0) {
        dm_buf_free(&b);
        return DM_ERR_NOMEM;
    }
    *out = dm_buf_detach(&b);
    return *out ? 0 : DM_ERR_NOMEM;
}

int dm_git_has_job_trailer(const char *message, const char *job_id)
{
    git_message_trailer_array arr = {0};
    int found = 0;

    if (!message || git_message_trailers(&arr, message) < 0) {
        return 0;
    }
    for (size_t i = 0; i < arr.count; i++) {
        if (strcasecmp(arr.trailers[i].key, "Dream-Job") == 0 &&
            strcmp(arr.trailers[i].value, job_id) == 0) {
            found = 1;
        }
    }
    git_message_trailer_array_free(&arr);
    return found;
}

/* Builds the commit (not referenced by anything yet) on top of base_oid. */
int dm_git_build_commit(git_oid *commit_out, git_oid *tree_out, git_repository *r,
                        const git_oid *base_oid, const struct dm_git_opts *o, const char *message,
                        long long when, const struct dm_git_file *files, size_t n,
                        struct dm_error *err)
{
    git_commit *base = NULL;
    git_tree *base_tree = NULL;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    git_tree_update *ups = NULL;
    git_oid *blobs = NULL;
    int rc;

    rc = git_commit_lookup(&base, r, base_oid);
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "reading the base commit");
        goto out;
    }
    rc = git_commit_tree(&base_tree, base);
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "reading the base tree");
        goto out;
    }
    ups = calloc(n, sizeof(*ups));
    blobs = calloc(n, sizeof(*blobs));
    if (!ups || !blobs) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = git_blob_create_from_buffer(&blobs[i], r, files[i].len ? files[i].content : "",
                                         files[i].len);
        if (rc < 0) {
            rc = dm_git_fail(err, NULL, rc, "writing a blob");
            goto out;
        }
        ups[i].action = GIT_TREE_UPDATE_UPSERT;
        git_oid_cpy(&ups[i].id, &blobs[i]);
        ups[i].filemode = files[i].executable ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
        ups[i].path = files[i].path;
    }
    rc = git_tree_create_updated(tree_out, r, base_tree, n, ups);
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "building the tree");
        goto out;
    }
    rc = git_tree_lookup(&tree, r, tree_out);
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "reading the new tree");
        goto out;
    }
    rc = git_signature_new(
        &sig, o->author_name && *o->author_name ? o->author_name : "Dream Machine",
        o->author_email && *o->author_email ? o->author_email : "dream@localhost", (git_time_t)when,
        0);
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "making the author signature");
        if (rc == DM_ERR_IO) {
            err->code = rc = DM_ERR_INVALID;
        }
        goto out;
    }
    {
        const git_commit *parents[1] = {base};
        rc = git_commit_create(commit_out, r, NULL, sig, sig, NULL, message, tree, 1, parents);
    }
    if (rc < 0) {
        rc = dm_git_fail(err, NULL, rc, "creating the commit");
        goto out;
    }
    rc = 0;
out:
    git_signature_free(sig);
    git_tree_free(tree);
    git_tree_free(base_tree);
    git_commit_free(base);
    free(ups);
    free(blobs);
    return rc;
}
