/*
 * git/publish: dm_git_publish and dm_git_publish_many (see include/dream/io/git.h). One push
 * connection per batch: its advertisement gives the base's and every branch's tip; a fetch
 * (another connection) happens only when the mirror lacks one of those commits (the base
 * moved, or a branch an earlier attempt pushed). Each commit is built in memory (the mirror's
 * mempack backend: no loose object), judged against its branch's tip (push, force-update an
 * earlier attempt of the same job, or leave someone else's branch alone and try the
 * alternative name), and all the pushes go out in one upload with a lease on each branch.
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

/* One item's state inside a batch. */
struct pub {
    struct dm_git_publish_item *it;
    char *msg;
    int valid;                 /* passed the argument checks */
    struct dm_git_tip tips[2]; /* branch, alt_branch as advertised */
    git_oid commit, tree;
    int push;            /* 1 = to be pushed */
    int in_upload;       /* 1 = in the upload under way */
    int k;               /* 0 = on branch, 1 = on alt_branch */
    int force;           /* the branch is an earlier attempt of the same job */
    const char *ref;     /* the branch pushed, refs/heads/... */
    const char *claimed; /* the branch this item took (pushed or found there), NULL = none */
    char refbuf[600];
    char spec[1300];
};

/* Drops the per-branch helper refs, so the mirror does not collect refs per job. */
static void forget_refs(git_repository *r, const char *branch)
{
    static const char *const prefixes[] = {DM_GIT_OUT_PREFIX, DM_GIT_PEEK_PREFIX};
    char ref[600];

    if (!branch) {
        return;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        git_reference *out = NULL;
        snprintf(ref, sizeof(ref), "%s%s", prefixes[i], branch);
        if (git_reference_lookup(&out, r, ref) == 0) {
            git_reference_delete(out);
            git_reference_free(out);
        }
    }
}

static int item_check(struct pub *p, const char *base)
{
    struct dm_git_publish_item *it = p->it;
    struct dm_error *err = &it->err;

    if (!dm_git_text_valid(it->job_id) || !dm_git_text_valid(it->spec_id)) {
        return dm_error_set(err, DM_ERR_INVALID, "job and spec ids must be non-empty single lines");
    }
    if (!it->message || !*it->message) {
        return dm_error_set(err, DM_ERR_INVALID, "empty commit message");
    }
    if (!dm_git_branch_name_valid(it->branch) || (base && strcmp(base, it->branch) == 0) ||
        (it->alt_branch && (!dm_git_branch_name_valid(it->alt_branch) ||
                            (base && strcmp(base, it->alt_branch) == 0)))) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid branch name");
    }
    if (dm_git_check_files(it->files, it->nfiles, err) < 0) {
        return err->code;
    }
    if (dm_git_build_message(&p->msg, it->message, it->job_id, it->spec_id) < 0) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    if (it->commit_time <= 0) {
        it->commit_time = (long long)time(NULL);
    }
    return 0;
}

static void fail_all(struct pub *ps, size_t n, int rc, const struct dm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (ps[i].valid && ps[i].it->rc == 0) {
            ps[i].it->rc = rc;
            ps[i].it->err = *err;
            ps[i].it->err.code = rc;
        }
    }
}

/* The item of ps[0..i) that took branch, or NULL. */
static const struct pub *claimant(const struct pub *ps, size_t i, const char *branch)
{
    for (size_t j = 0; j < i; j++) {
        if (ps[j].claimed && strcmp(ps[j].claimed, branch) == 0) {
            return &ps[j];
        }
    }
    return NULL;
}

/* Decides item i against the advertised tips and the branches the items before it took (one
 * push cannot put two commits on a branch: a later job finds it taken, as it would after the
 * earlier job's push): 0 (push or nothing to do) or an error. */
static int item_decide(struct pub *ps, size_t i, git_repository *r, const char *owner,
                       const char *repo, const git_oid *base)
{
    struct pub *p = &ps[i];
    struct dm_git_publish_item *it = p->it;
    const char *names[2] = {it->branch, it->alt_branch};
    char first[sizeof(it->err.msg)] = "";

    for (int k = 0; k < 2 && names[k]; k++) {
        char tip[DM_GIT_OID_HEX];
        const struct pub *taken = claimant(ps, i, names[k]);
        p->k = k;
        if (taken && strcmp(taken->it->job_id, it->job_id) == 0) {
            return dm_error_set(&it->err, DM_ERR_TRANSIENT,
                                "another attempt of job %s publishes %s in the same push; not "
                                "pushed",
                                it->job_id, names[k]);
        }
        if (taken) {
            if (k == 0) {
                snprintf(first, sizeof(first),
                         "branch '%s' is taken on %s/%s by job %s of the same push; left to it",
                         names[k], owner, repo, taken->it->job_id);
                continue;
            }
            return dm_error_set(&it->err, DM_ERR_EXISTS,
                                "branches %s and %s both exist and were not made by this job "
                                "(%s); nothing was pushed",
                                it->branch, it->alt_branch, first);
        }
        if (!p->tips[k].exists) {
            p->push = 1;
            p->force = 0;
        } else {
            git_oid_tostr(tip, sizeof(tip), &p->tips[k].oid);
            switch (judge_tip(r, &p->tips[k].oid, &p->commit, &p->tree, base, it->job_id)) {
            case TIP_SAME:
                memcpy(it->result.commit, tip, sizeof(tip));
                it->used_branch = names[k];
                p->claimed = names[k];
                return 0;
            case TIP_OURS_UPDATE:
                p->push = 1;
                p->force = 1;
                break;
            case TIP_FOREIGN:
                if (k == 0) {
                    snprintf(first, sizeof(first),
                             "branch '%s' already exists on %s/%s at %.12s and was not made by "
                             "job %s; left untouched",
                             names[k], owner, repo, tip, it->job_id);
                    continue;
                }
                return dm_error_set(&it->err, DM_ERR_EXISTS,
                                    "branches %s and %s both exist and were not made by this job "
                                    "(%s); nothing was pushed",
                                    it->branch, it->alt_branch, first);
            }
        }
        it->used_branch = names[k];
        p->claimed = names[k];
        snprintf(p->refbuf, sizeof(p->refbuf), "refs/heads/%s", names[k]);
        p->ref = p->refbuf;
        return 0;
    }
    return dm_error_set(&it->err, DM_ERR_EXISTS, "%s", first);
}

static void on_reject(void *arg, const char *ref, const char *status)
{
    struct pub *ps = arg;
    for (; ps->it; ps++) {
        if (ps->push && ps->ref && strcmp(ps->ref, ref) == 0 && ps->it->rc == 0) {
            ps->it->rc = DM_ERR_REMOTE;
            snprintf(ps->it->err.msg, sizeof(ps->it->err.msg), "%.255s", status);
        }
    }
}

/* Pushes the decided items (only: that one item; n: all of them) in one upload over the
 * connected remote; *count = refs in it. A ref the remote rejects fails its item. */
static int upload(git_remote *remote, git_repository *r, struct dm_git_session *s, struct pub *ps,
                  size_t n, size_t only, size_t *count, struct dm_error *err)
{
    git_push_options po;
    char **specs = calloc(n + 1, sizeof(*specs));
    struct dm_git_expect *ex = calloc(n + 1, sizeof(*ex));
    git_strarray arr = {specs, 0};
    char said[600];
    int rc = 0;

    *count = 0;
    if (!specs || !ex) {
        free(specs);
        free(ex);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct pub *p = &ps[i];
        git_reference *ref = NULL;
        char local[700];
        p->in_upload = 0;
        if (!p->push || p->it->rc || (only < n && i != only)) {
            continue;
        }
        snprintf(local, sizeof(local), DM_GIT_OUT_PREFIX "%s", p->ref + 11);
        rc = git_reference_create(&ref, r, local, &p->commit, 1, "dreamd publish");
        git_reference_free(ref);
        if (rc < 0) {
            rc = dm_git_fail(err, s, rc, "preparing the push");
            goto out;
        }
        snprintf(p->spec, sizeof(p->spec), "%s%s:%s", p->force ? "+" : "", local, p->ref);
        specs[arr.count] = p->spec;
        ex[arr.count].ref = p->ref;
        if (p->force) {
            git_oid_cpy(&ex[arr.count].oid, &p->tips[p->k].oid);
        }
        p->in_upload = 1;
        arr.count++;
    }
    *count = arr.count;
    if (arr.count == 0) {
        goto out;
    }
    git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
    dm_git_session_reset(s);
    s->expects = ex;
    s->nexpects = arr.count;
    s->on_reject = on_reject;
    s->reject_arg = ps;
    dm_git_session_callbacks(s, &po.callbacks);
    po.proxy_opts.type = GIT_PROXY_AUTO;
    rc = git_remote_upload(remote, &arr, &po);
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
        for (size_t i = 0; i < n; i++) {
            struct dm_git_publish_item *it = ps[i].it;
            if (ps[i].in_upload && it->rc == DM_ERR_REMOTE) {
                char why[300];
                snprintf(why, sizeof(why), "%.255s", it->err.msg);
                dm_git_scrub(why, s->o->token);
                dm_error_set(&it->err, DM_ERR_REMOTE, "the remote rejected the push of %s: %s%s%s",
                             ps[i].ref + 11, why, said[0] ? "; remote said: " : "", said);
            }
        }
    }
    rc = 0;
out:
    s->expects = NULL;
    s->nexpects = 0;
    s->on_reject = NULL;
    free(specs);
    free(ex);
    return rc;
}

/* Pushes every decided item in one upload over the connected remote. A remote that rejects
 * every ref of a batch (a hook declining the push, as GitHub's push protection does for one
 * commit's secret) is asked again for each job alone, so one job's content does not fail the
 * others. */
static int push_all(git_remote *remote, git_repository *r, struct dm_git_session *s, struct pub *ps,
                    size_t n, struct dm_error *err)
{
    size_t count = 0, rejected = 0, one;
    int rc = upload(remote, r, s, ps, n, n, &count, err);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        rejected += ps[i].in_upload && ps[i].it->rc == DM_ERR_REMOTE;
    }
    if (rc < 0 || count < 2 || rejected < count) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct dm_git_publish_item *it = ps[i].it;
        if (!ps[i].in_upload || it->rc != DM_ERR_REMOTE) {
            continue;
        }
        it->rc = 0;
        memset(&it->err, 0, sizeof(it->err));
        if ((rc = upload(remote, r, s, ps, n, i, &one, &it->err)) < 0) {
            it->rc = rc;
        }
        for (size_t j = i + 1; j < n; j++) {
            ps[j].in_upload = ps[j].push && ps[j].it->rc == DM_ERR_REMOTE; /* still to ask */
        }
    }
    return 0;
}

/* The tips of the base (keep[0]) and of every item's branches (keep[1 + 2i + k]) on a remote on
 * this machine: what a push connection's advertisement gives over the wire. */
static int tips_local(struct dm_git_mirror *m, struct dm_git_session *s, const char *const *keep,
                      struct pub *ps, size_t n, git_oid *base_oid, struct dm_error *err)
{
    git_repository *origin = NULL;
    struct dm_git_tip *tips = calloc(2 * n + 1, sizeof(*tips));
    int rc;

    if (!tips) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    if ((rc = dm_git_mirror_origin(m, &origin, s, err)) < 0 ||
        (rc = dm_git_local_tips(origin, keep, 2 * n + 1, tips, s, err)) < 0) {
        free(tips);
        return rc;
    }
    if (!tips[0].exists) {
        free(tips);
        return dm_error_set(err, DM_ERR_NOTFOUND, "base branch '%s' not found on the remote",
                            keep[0] + 11);
    }
    git_oid_cpy(base_oid, &tips[0].oid);
    for (size_t i = 0; i < n; i++) {
        ps[i].tips[0] = tips[1 + 2 * i];
        ps[i].tips[1] = tips[2 + 2 * i];
    }
    free(tips);
    return 0;
}

/* push_all for a remote on this machine: the batch's objects written into it, then each branch
 * moved alone with its lease (a branch someone moved meanwhile fails only its job). */
static int push_local(struct dm_git_mirror *m, struct dm_git_session *s, struct pub *ps, size_t n,
                      struct dm_error *err)
{
    git_repository *origin = NULL;
    size_t count = 0;
    int rc;

    for (size_t i = 0; i < n; i++) {
        count += ps[i].push && !ps[i].it->rc;
    }
    if (count == 0) {
        return 0;
    }
    if ((rc = dm_git_mirror_origin(m, &origin, s, err)) < 0) {
        return rc;
    }
    if (!git_repository_is_bare(origin)) {
        /* git refuses to move a checked-out branch under its work tree, and libgit2's local
         * transport pushed to no non-bare repository at all. */
        return dm_error_set(err, DM_ERR_REMOTE,
                            "the remote %s is not a bare repository; push to a bare one",
                            m->origin);
    }
    if ((rc = dm_git_local_send(m, origin, s, err)) < 0) {
        dm_git_mirror_origin_close(m);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct pub *p = &ps[i];
        const struct dm_git_opts *io = p->it->opts ? p->it->opts : s->o;
        if (!p->push || p->it->rc) {
            continue;
        }
        if (dm_git_cancelled(io)) {
            p->it->rc = dm_error_set(&p->it->err, DM_ERR_CANCELLED, "cancelled before pushing");
            continue;
        }
        p->it->rc = dm_git_local_update(origin, p->ref, &p->commit,
                                        p->force ? &p->tips[p->k].oid : NULL, s, &p->it->err);
    }
    return 0;
}

int dm_git_publish_many(const struct dm_git_opts *opts, const char *owner, const char *repo,
                        const char *base, struct dm_git_publish_item *items, size_t n)
{
    struct dm_git_mirror m;
    struct dm_git_session s;
    struct dm_error err = {0};
    struct pub *ps;
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    git_proxy_options po;
    git_odb *odb = NULL;
    const git_remote_head **heads = NULL;
    size_t nheads = 0, nvalid = 0;
    git_oid base_oid;
    int have_mirror = 0, has_base = 0, need_fetch = 0;
    char want_base[512];
    char **keep = NULL;
    long long asked = 0;
    int rc;

    ps = calloc(n + 1, sizeof(*ps)); /* the last one's it = NULL ends on_reject's walk */
    if (!ps) {
        for (size_t i = 0; i < n; i++) {
            items[i].rc = dm_error_set(&items[i].err, DM_ERR_NOMEM, "out of memory");
        }
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&items[i].result, 0, sizeof(items[i].result));
        items[i].used_branch = items[i].branch;
        ps[i].it = &items[i];
        items[i].rc = item_check(&ps[i], base);
        ps[i].valid = items[i].rc == 0;
        nvalid += ps[i].valid;
    }
    dm_git_session_init(&s, opts, NULL, n == 1 ? items[0].job_id : NULL);
    if (nvalid == 0) {
        goto done;
    }
    if ((rc = dm_git_mirror_acquire(&m, opts, owner, repo, base, &err)) < 0) {
        fail_all(ps, n, rc, &err);
        goto done;
    }
    have_mirror = 1;
    s.url = m.url;

    /* libgit2 is shown only the base and the batch's branches of the advertisement. */
    keep = calloc(2 * n + 1, sizeof(*keep));
    if (!keep) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        fail_all(ps, n, DM_ERR_NOMEM, &err);
        goto done;
    }
    snprintf(want_base, sizeof(want_base), "refs/heads/%s", base);
    keep[0] = want_base;
    for (size_t i = 0; i < n; i++) {
        const char *names[2] = {items[i].branch, items[i].alt_branch};
        for (int k = 0; ps[i].valid && k < 2; k++) {
            if (names[k] && asprintf(&keep[1 + 2 * i + (size_t)k], "refs/heads/%s", names[k]) < 0) {
                keep[1 + 2 * i + (size_t)k] = NULL;
            }
        }
    }
    s.keep = (const char *const *)keep;
    s.nkeep = 2 * n + 1;

    if (m.local) {
        asked = dm_git_now_ms();
        if ((rc = tips_local(&m, &s, (const char *const *)keep, ps, n, &base_oid, &err)) < 0) {
            fail_all(ps, n, rc, &err);
            goto done;
        }
        goto listed;
    }
    /* One push connection: its advertisement has the base's and every branch's tip. */
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
    dm_git_session_reset(&s);
    dm_git_session_callbacks(&s, &cb);
    po.type = GIT_PROXY_AUTO;
    rc = dm_git_remote_new(&remote, m.repo, s.url);
    if (rc < 0) {
        fail_all(ps, n, dm_git_fail(&err, &s, rc, "preparing the remote"), &err);
        goto done;
    }
    asked = dm_git_now_ms();
    rc = git_remote_connect(remote, GIT_DIRECTION_PUSH, &cb, &po, NULL);
    if (rc == 0) {
        rc = git_remote_ls(&heads, &nheads, remote);
    }
    if (rc < 0) {
        fail_all(ps, n, dm_git_fail(&err, &s, rc, "connecting to the remote"), &err);
        goto done;
    }
    for (size_t h = 0; h < nheads; h++) {
        const char *name = heads[h]->name;
        if (strncmp(name, "refs/heads/", 11) != 0) {
            continue;
        }
        if (strcmp(name, want_base) == 0) {
            git_oid_cpy(&base_oid, &heads[h]->oid);
            has_base = 1;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const char *names[2] = {items[i].branch, items[i].alt_branch};
            for (int k = 0; ps[i].valid && k < 2; k++) {
                if (names[k] && strcmp(name + 11, names[k]) == 0) {
                    ps[i].tips[k].exists = 1;
                    git_oid_cpy(&ps[i].tips[k].oid, &heads[h]->oid);
                }
            }
        }
    }
    if (!has_base) {
        dm_error_set(&err, DM_ERR_NOTFOUND, "base branch '%s' not found on the remote", base);
        fail_all(ps, n, DM_ERR_NOTFOUND, &err);
        goto done;
    }
listed:
    /* A fetch only for what the mirror lacks: a base that moved, a branch pushed before. */
    if ((rc = git_repository_odb(&odb, m.repo)) < 0) {
        fail_all(ps, n, dm_git_fail(&err, &s, rc, "reading the mirror"), &err);
        goto done;
    }
    need_fetch = !git_odb_exists(odb, &base_oid);
    for (size_t i = 0; !need_fetch && i < n; i++) {
        for (int k = 0; k < 2; k++) {
            if (ps[i].valid && ps[i].tips[k].exists && !git_odb_exists(odb, &ps[i].tips[k].oid)) {
                need_fetch = 1;
            }
        }
    }
    git_odb_free(odb);
    odb = NULL;
    if (need_fetch) {
        struct dm_git_remote_state st;
        const char **names = calloc(2 * n + 1, sizeof(*names));
        struct dm_git_tip *tips = calloc(2 * n + 1, sizeof(*tips));
        if (!names || !tips) {
            free(names);
            free(tips);
            dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
            fail_all(ps, n, DM_ERR_NOMEM, &err);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (ps[i].valid) {
                names[2 * i] = items[i].branch;
                names[2 * i + 1] = items[i].alt_branch;
            }
        }
        rc = dm_git_mirror_fetch(&m, &s, base, names, 2 * n, &st, tips, &err);
        if (rc == 0) {
            git_oid_cpy(&base_oid, &st.base);
            for (size_t i = 0; i < n; i++) {
                for (int k = 0; ps[i].valid && k < 2; k++) {
                    const struct dm_git_tip *was = &ps[i].tips[k], *now = &tips[2 * i + k];
                    /* The push's lease is what its own advertisement said: a branch that moved
                     * since would fail the whole upload, so only its job fails (a retry). */
                    if (items[i].rc == 0 &&
                        (was->exists != now->exists ||
                         (now->exists && !git_oid_equal(&was->oid, &now->oid)))) {
                        items[i].rc = dm_error_set(&items[i].err, DM_ERR_TRANSIENT,
                                                   "the remote branch %s moved while publishing; "
                                                   "not pushed",
                                                   names[2 * i + k]);
                    }
                }
                ps[i].tips[0] = tips[2 * i];
                ps[i].tips[1] = tips[2 * i + 1];
            }
        }
        free(names);
        free(tips);
        if (rc < 0) {
            fail_all(ps, n, rc, &err);
            goto done;
        }
    } else {
        git_reference *ref = NULL;
        char track[600];
        git_oid kept;
        snprintf(track, sizeof(track), DM_GIT_TRACK_PREFIX "%s", base);
        if (git_reference_name_to_id(&kept, m.repo, track) != 0 ||
            !git_oid_equal(&kept, &base_oid)) {
            rc = git_reference_create(&ref, m.repo, track, &base_oid, 1, "dreamd push");
            git_reference_free(ref);
            if (rc < 0) {
                fail_all(ps, n, dm_git_fail(&err, &s, rc, "updating the mirror"), &err);
                goto done;
            }
        }
        dm_git_mirror_seen(&m, base, &base_oid, asked);
    }

    /* Each commit, built in memory, judged against its branch. */
    m.wrote = 1;
    for (size_t i = 0; i < n; i++) {
        struct dm_git_publish_item *it = &items[i];
        const struct dm_git_opts *io = it->opts ? it->opts : opts;
        if (!ps[i].valid || it->rc) {
            continue;
        }
        it->rc = dm_git_build_commit(&ps[i].commit, &ps[i].tree, m.repo, &base_oid, io, ps[i].msg,
                                     it->commit_time, it->files, it->nfiles, &it->err);
        if (it->rc == 0 && dm_git_cancelled(io)) {
            it->rc = dm_error_set(&it->err, DM_ERR_CANCELLED, "cancelled before pushing");
        }
        if (it->rc == 0) {
            git_oid_tostr(it->result.base_commit, sizeof(it->result.base_commit), &base_oid);
            it->rc = item_decide(ps, i, m.repo, owner, repo, &base_oid);
        }
    }
    if (dm_git_cancelled(opts)) {
        dm_error_set(&err, DM_ERR_CANCELLED, "cancelled before pushing");
        fail_all(ps, n, DM_ERR_CANCELLED, &err);
        goto done;
    }
    rc = m.local ? push_local(&m, &s, ps, n, &err) : push_all(remote, m.repo, &s, ps, n, &err);
    for (size_t i = 0; i < n; i++) {
        struct dm_git_publish_item *it = &items[i];
        if (!ps[i].valid || !ps[i].push) {
            continue;
        }
        if (rc < 0 && it->rc == 0) {
            it->rc = rc;
            it->err = err;
        }
        if (it->rc == 0) {
            it->result.pushed = 1;
            it->result.forced = ps[i].force;
            git_oid_tostr(it->result.commit, sizeof(it->result.commit), &ps[i].commit);
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct dm_git_publish_item *it = &items[i];
        if (ps[i].valid && it->rc == 0) {
            dm_info(DM_GIT_MOD, it->job_id, "%s/%s %s at %.12s (base %s at %.12s)%s%s", owner, repo,
                    it->used_branch, it->result.commit, base, it->result.base_commit,
                    it->result.pushed ? (it->result.forced ? " force-updated" : " pushed")
                                      : " already there",
                    n > 1 ? " (one push for several jobs)" : "");
        }
    }
done:
    dm_git_remote_close(remote);
    if (keep) {
        for (size_t i = 1; i < 2 * n + 1; i++) {
            free(keep[i]);
        }
        free(keep);
    }
    for (size_t i = 0; i < n; i++) {
        if (have_mirror && ps[i].valid) {
            forget_refs(m.repo, items[i].branch);
            forget_refs(m.repo, items[i].alt_branch);
        }
        if (items[i].rc) {
            memset(&items[i].result, 0, sizeof(items[i].result));
            items[i].err.code = items[i].rc;
            dm_git_scrub(items[i].err.msg, opts ? opts->token : NULL);
        }
        free(ps[i].msg);
    }
    if (have_mirror) {
        dm_git_mirror_release(&m);
    }
    dm_git_session_free(&s);
    free(ps);
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = items[i].rc;
    }
    return rc;
}

int dm_git_publish(struct dm_git_result *out, const struct dm_git_opts *opts, const char *owner,
                   const char *repo, const char *base, const char *branch, const char *job_id,
                   const char *spec_id, const char *message, long long commit_time,
                   const struct dm_git_file *files, size_t nfiles, struct dm_error *err)
{
    struct dm_git_publish_item it;

    memset(&it, 0, sizeof(it));
    it.branch = branch;
    it.job_id = job_id;
    it.spec_id = spec_id;
    it.message = message;
    it.commit_time = commit_time;
    it.files = files;
    it.nfiles = nfiles;
    dm_git_publish_many(opts, owner, repo, base, &it, 1);
    *out = it.result;
    if (it.rc && err) {
        *err = it.err;
    }
    return it.rc;
}
