/*
 * git/publish: dm_git_publish (see include/dream/io/git.h): refresh the mirror, build the
 * commit, then decide by the remote branch's tip whether to push, force-update (an earlier
 * attempt of the same job) or leave it alone (someone else's branch), and push with a lease.
 *
 * Threadpool threads only.
 */
#include "git_private.h"

#include "dream/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What to do with an existing remote branch. */
enum tip_verdict { TIP_FOREIGN, TIP_SAME, TIP_OURS_UPDATE };

static enum tip_verdict judge_tip(git_repository *r, const git_oid *tip, const git_oid *commit,
                                  const git_oid *tree, const git_oid *base, const char *job_id)
{
    git_commit *c = NULL;
    enum tip_verdict v = TIP_FOREIGN;

    if (git_oid_equal(tip, commit)) {
        return TIP_SAME;
    }
    if (git_commit_lookup(&c, r, tip) < 0) {
        return TIP_FOREIGN;
    }
    if (dm_git_has_job_trailer(git_commit_message_raw(c), job_id)) {
        v = TIP_OURS_UPDATE;
        if (git_oid_equal(git_commit_tree_id(c), tree) && git_commit_parentcount(c) == 1 &&
            git_oid_equal(git_commit_parent_id(c, 0), base)) {
            v = TIP_SAME;
        }
    }
    git_commit_free(c);
    return v;
}

static int push_commit(git_repository *r, struct dm_git_session *s, const git_oid *commit,
                       const char *branch, int force, const git_oid *expect, struct dm_error *err)
{
    git_remote *remote = NULL;
    git_reference *ref = NULL;
    git_push_options po;
    char local[600], spec[1300];
    char said[600]; /* the remote's messages, for the error */
    char *specs[1] = {spec};
    git_strarray arr = {specs, 1};
    int rc;

    git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
    dm_git_session_reset(s);
    if (expect) {
        git_oid_cpy(&s->expect, expect);
    } else {
        memset(&s->expect, 0, sizeof(s->expect));
    }
    snprintf(local, sizeof(local), DM_GIT_OUT_PREFIX "%s", branch);
    rc = git_reference_create(&ref, r, local, commit, 1, "dreamd publish");
    git_reference_free(ref);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "preparing the push");
        goto out;
    }
    snprintf(spec, sizeof(spec), "%s%s:refs/heads/%s", force ? "+" : "", local, branch);
    dm_git_session_callbacks(s, &po.callbacks);
    po.proxy_opts.type = GIT_PROXY_AUTO;
    rc = dm_git_remote_new(&remote, r, s->url);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "preparing the remote");
        goto out;
    }
    rc = git_remote_push(remote, &arr, &po);
    if (rc < 0) {
        rc = dm_git_fail(err, s, rc, "pushing");
        dm_git_session_said(s, said, sizeof(said));
        if (said[0] && rc != DM_ERR_CANCELLED) {
            dm_error_wrap(err, "remote said: %s", said);
        }
        goto out;
    }
    if (s->rejected) {
        dm_git_session_said(s, said, sizeof(said));
        dm_git_scrub(s->reject, s->o->token);
        rc = dm_error_set(err, DM_ERR_REMOTE, "the remote rejected the push of %s: %s%s%s", branch,
                          s->reject, said[0] ? "; remote said: " : "", said);
        goto out;
    }
    rc = 0;
out:
    dm_git_remote_close(remote);
    return rc;
}

/* Drops the per-branch helper refs, so the mirror does not collect two refs per job. */
static void forget_refs(git_repository *r, const char *branch)
{
    static const char *const prefixes[] = {DM_GIT_OUT_PREFIX, DM_GIT_PEEK_PREFIX};
    char ref[600];

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        git_reference *out = NULL;
        snprintf(ref, sizeof(ref), "%s%s", prefixes[i], branch);
        if (git_reference_lookup(&out, r, ref) == 0) {
            git_reference_delete(out);
            git_reference_free(out);
        }
    }
}

int dm_git_publish(struct dm_git_result *out, const struct dm_git_opts *opts, const char *owner,
                   const char *repo, const char *base, const char *branch, const char *job_id,
                   const char *spec_id, const char *message, long long commit_time,
                   const struct dm_git_file *files, size_t nfiles, struct dm_error *err)
{
    struct dm_git_mirror m;
    struct dm_git_session s;
    struct dm_git_remote_state st;
    git_oid commit, tree;
    char *msg = NULL;
    int have_mirror = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    dm_git_session_init(&s, opts, NULL, job_id);
    if (!dm_git_text_valid(job_id) || !dm_git_text_valid(spec_id)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "job and spec ids must be non-empty single lines");
        goto out;
    }
    if (!message || !*message) {
        rc = dm_error_set(err, DM_ERR_INVALID, "empty commit message");
        goto out;
    }
    if (!dm_git_branch_name_valid(branch) || (base && strcmp(base, branch) == 0)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "invalid branch name");
        goto out;
    }
    if ((rc = dm_git_check_files(files, nfiles, err)) < 0) {
        goto out;
    }
    if ((rc = dm_git_build_message(&msg, message, job_id, spec_id)) < 0) {
        rc = dm_error_set(err, rc, "out of memory");
        goto out;
    }
    if (commit_time <= 0) {
        commit_time = (long long)time(NULL);
    }
    if ((rc = dm_git_mirror_acquire(&m, opts, owner, repo, base, err)) < 0) {
        goto out;
    }
    have_mirror = 1;
    s.url = m.url;
    rc = dm_git_mirror_fetch(m.repo, &s, base, branch, &st, err);
    if (rc < 0) {
        goto out;
    }
    rc = dm_git_build_commit(&commit, &tree, m.repo, &st.base, opts, msg, commit_time, files,
                             nfiles, err);
    if (rc < 0) {
        goto out;
    }
    git_oid_tostr(out->base_commit, sizeof(out->base_commit), &st.base);
    if (dm_git_cancelled(opts)) {
        rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled before pushing");
        goto out;
    }
    if (!st.has_branch) {
        rc = push_commit(m.repo, &s, &commit, branch, 0, NULL, err);
        if (rc < 0) {
            goto out;
        }
        out->pushed = 1;
        git_oid_tostr(out->commit, sizeof(out->commit), &commit);
    } else {
        char tip[DM_GIT_OID_HEX];
        git_oid_tostr(tip, sizeof(tip), &st.branch);
        switch (judge_tip(m.repo, &st.branch, &commit, &tree, &st.base, job_id)) {
        case TIP_SAME:
            memcpy(out->commit, tip, sizeof(tip));
            break;
        case TIP_OURS_UPDATE:
            rc = push_commit(m.repo, &s, &commit, branch, 1, &st.branch, err);
            if (rc < 0) {
                goto out;
            }
            out->pushed = 1;
            out->forced = 1;
            git_oid_tostr(out->commit, sizeof(out->commit), &commit);
            break;
        case TIP_FOREIGN:
            rc = dm_error_set(err, DM_ERR_EXISTS,
                              "branch '%s' already exists on %s/%s at %.12s and was not made by "
                              "job %s; left untouched",
                              branch, owner, repo, tip, job_id);
            goto out;
        }
    }
    dm_info(DM_GIT_MOD, job_id, "%s/%s %s at %.12s (base %s at %.12s)%s", owner, repo, branch,
            out->commit, base, out->base_commit,
            out->pushed ? (out->forced ? " force-updated" : " pushed") : " already there");
    rc = 0;
out:
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        if (err) {
            dm_git_scrub(err->msg, opts ? opts->token : NULL);
        }
    }
    if (have_mirror) {
        forget_refs(m.repo, branch);
        dm_git_mirror_release(&m);
    }
    dm_git_session_free(&s);
    free(msg);
    return rc;
}
