/*
 * git_private: what the files of the git module share (see include/dream/io/git.h for the
 * contract). Not for use outside src/io/git/.
 *
 *   session.c  one conversation with the remote: libgit2 set-up, credentials, progress and
 *              cancellation callbacks, the remote's messages, error conversion, token scrubbing,
 *              the remote URL.
 *   mirror.c   the bare mirror cache: per-mirror locks (threads and processes), creating,
 *              opening and refreshing a mirror, and listing the base branch's files.
 *   commit.c   the commit built in memory: file checks, the message with its trailers, blobs,
 *              tree and commit.
 *   publish.c  the push and the ownership check of an existing remote branch; dm_git_publish.
 *
 * Threading: threadpool threads only, like the public functions. Each call owns its session;
 * the shared state is libgit2's one-time initialisation and mirror.c's table of mirrors (a
 * lock per mirror, the mirror's open git_repository, its recent look-ups), and an open mirror
 * is touched only by the holder of its lock.
 */
#ifndef DREAM_GIT_PRIVATE_H
#define DREAM_GIT_PRIVATE_H

#include "dream/core/buf.h"
#include "dream/io/git.h"

#include <git2.h>

#define DM_GIT_MOD "git"
/* Where the mirror keeps what it fetched and what it pushes (never checked out). */
#define DM_GIT_TRACK_PREFIX "refs/remotes/origin/" /* the base branch, fetched */
#define DM_GIT_PEEK_PREFIX "refs/dream/remote/"    /* the job's branch as the remote has it */
#define DM_GIT_OUT_PREFIX "refs/dream/out/"        /* the commit being pushed */

/* ---- session.c ------------------------------------------------------------------------------ */

/* Initialises libgit2 once per process. Returns 0 or DM_ERR_IO. */
int dm_git_ensure_init(struct dm_error *err);

/* 1 when *o->cancel is set. */
int dm_git_cancelled(const struct dm_git_opts *o);

/* Replaces every occurrence of secret in s (in place) with "***". secret may be NULL. */
void dm_git_scrub(char *s, const char *secret);

/* What a pushed ref must still be on the remote (a lease); zero oid = absent. */
struct dm_git_expect {
    const char *ref; /* refs/heads/<branch> */
    git_oid oid;
};

/* One conversation with the remote (a fetch or a push); libgit2 callbacks get it as payload. */
struct dm_git_session {
    const struct dm_git_opts *o;
    const char *url;
    const char *job; /* for logs, may be NULL */
    int cred_calls;
    int auth_failed;
    int no_creds;
    int cancelled;
    int raced; /* push negotiation saw a different remote tip than expected */
    const struct dm_git_expect *expects; /* the leases of a push */
    size_t nexpects;
    /* Called for each ref the remote rejected (status = its reason), when set. */
    void (*on_reject)(void *arg, const char *ref, const char *status);
    void *reject_arg;
    int rejected; /* push_update_reference reported a rejection */
    /* When set, libgit2 sees only these refs of the remote's advertisement (full names,
     * "refs/heads/main"; NULL entries skipped): see the filtering transport in session.c. */
    const char *const *keep;
    size_t nkeep;
    size_t advertised;      /* refs the remote advertised on the last connection */
    size_t parsed;          /* of them, the refs libgit2 parsed (http(s): only those kept) */
    int adv_malformed;      /* the last advertisement was not one the filter understood */
    char reject[256];       /* its status text */
    struct dm_buf sideband; /* remote's progress/messages, the last few KiB */
};

void dm_git_session_init(struct dm_git_session *s, const struct dm_git_opts *o, const char *url,
                         const char *job);
/* Forgets what the previous exchange saw (credentials tried, rejection, messages). */
void dm_git_session_reset(struct dm_git_session *s);
void dm_git_session_free(struct dm_git_session *s);
/* Points cb's callbacks (credentials, progress, sideband, push negotiation and status) at s. */
void dm_git_session_callbacks(struct dm_git_session *s, git_remote_callbacks *cb);
/* 1 (and remembers it) when the call was cancelled. */
int dm_git_session_check_cancel(struct dm_git_session *s);
/* The remote's messages as one line, control characters dropped, lines joined with " | ", the
 * token scrubbed. */
void dm_git_session_said(const struct dm_git_session *s, char *out, size_t outlen);

/* Totals over the process of the refs remotes advertised and of those libgit2 parsed (the
 * tests read them; over http(s) only the refs a session keeps are parsed, on this machine only
 * those are read). */
void dm_git_ref_counts(unsigned long long *advertised, unsigned long long *parsed);
/* Adds to them (a remote on this machine shows only the refs an operation reads). */
void dm_git_ref_counts_add(size_t advertised, size_t parsed);

/* Converts a libgit2 failure of `what` into err (s may be NULL for local work). Returns the
 * enum dm_err set. */
int dm_git_fail(struct dm_error *err, struct dm_git_session *s, int gitrc, const char *what);

/* An anonymous remote for url on r (nothing is written to the mirror's config). */
int dm_git_remote_new(git_remote **out, git_repository *r, const char *url);
/* Disconnects and frees remote; NULL allowed. */
void dm_git_remote_close(git_remote *remote);

/* ---- mirror.c ------------------------------------------------------------------------------- */

struct dm_git_lock_entry; /* mirror.c's process-wide lock table */

struct dm_git_mirror_lock {
    struct dm_git_lock_entry *entry; /* NULL when not held */
    int fd;                          /* the flock(2)ed lock file, -1 when not held */
};

/* A locked, open mirror. The git_repository stays open across operations (the process keeps
 * it with the mirror's lock entry); its object database is the mirror's packs plus an
 * in-memory backend that takes every object written (the job's blobs, trees and commit), so
 * nothing is written as a loose object; dm_git_mirror_release forgets them. */
struct dm_git_mirror {
    struct dm_git_mirror_lock lock;
    git_repository *repo; /* borrowed from the lock entry: never free it */
    int created;          /* 1 = this call created it (it has fetched nothing yet) */
    int fetched;          /* 1 = a download brought objects during this hold */
    int coalesced;        /* 1 = a look-up was served by another operation's */
    int wrote;            /* 1 = objects were written (in memory): forgotten on release */
    int local;            /* 1 = the remote is a repository on this machine (local.c) */
    char path[4096];
    char url[2048];
    char origin[4096]; /* when local: the remote's path */
};

/* A branch as the remote advertised it. */
struct dm_git_tip {
    int exists;
    git_oid oid;
};

/* What a refresh saw on the remote. */
struct dm_git_remote_state {
    git_oid base;
    int has_branch;
    git_oid branch;
    int listed; /* the remote was reached and listed (a missing base then means: no such
                   branch, or an empty repository) */
};

/* Validates owner, repo and base, then locks and opens (creating if needed) the mirror. On
 * success release it with dm_git_mirror_release. */
int dm_git_mirror_acquire(struct dm_git_mirror *m, const struct dm_git_opts *o, const char *owner,
                          const char *repo, const char *base, struct dm_error *err);
void dm_git_mirror_release(struct dm_git_mirror *m);

/* Connects (fetch direction), reads the remote's tip of base and of each of branches (tips[i],
 * NULL names skipped), downloads only the ones the mirror lacks, and keeps base in
 * DM_GIT_TRACK_PREFIX<base>, each existing branch in DM_GIT_PEEK_PREFIX<branch>; fills *st. */
int dm_git_mirror_fetch(struct dm_git_mirror *m, struct dm_git_session *s, const char *base,
                        const char *const *branches, size_t nbranches,
                        struct dm_git_remote_state *st, struct dm_git_tip *tips,
                        struct dm_error *err);

/* The tip of base: from a look-up of the remote that an operation on this mirror began at or
 * after opts->coalesce_since_ms (no connection; m->coalesced = 1), else from
 * dm_git_mirror_fetch. */
int dm_git_mirror_lookup(struct dm_git_mirror *m, struct dm_git_session *s, const char *base,
                         struct dm_git_remote_state *st, struct dm_error *err);

/* Records that the remote, asked at asked_ms (dm_git_now_ms, when the connection began), said
 * base is at tip (a fetch's or a push connection's advertisement). */
void dm_git_mirror_seen(struct dm_git_mirror *m, const char *base, const git_oid *tip,
                        long long asked_ms);

/* CLOCK_MONOTONIC in milliseconds. */
long long dm_git_now_ms(void);

/* Re-lists the mirror's packs (after a download). */
int dm_git_mirror_reload(struct dm_git_mirror *m, struct dm_error *err);

/* Drops the objects written in memory since the mirror was acquired. */
void dm_git_mirror_forget_objects(struct dm_git_mirror *m);

/* The ids of the objects written (in memory) since the mirror was acquired. */
void dm_git_mirror_written(const struct dm_git_mirror *m, const git_oid **ids, size_t *n);

/* When m->local: the remote's repository, opened once and kept with the mirror (reopened when
 * its directory was replaced or its packs rewritten). *out is valid until the next call of this
 * or dm_git_mirror_origin_close. Returns 0, DM_ERR_NOTFOUND when there is none, or another
 * error. */
int dm_git_mirror_origin(struct dm_git_mirror *m, git_repository **out, struct dm_git_session *s,
                         struct dm_error *err);
/* Closes the kept remote (after a failure, so the next operation opens it afresh). */
void dm_git_mirror_origin_close(struct dm_git_mirror *m);

/* Reads the tip of base kept in the mirror (DM_GIT_TRACK_PREFIX<base>) into *oid. Returns 0,
 * GIT_ENOTFOUND, or another libgit2 error. */
int dm_git_mirror_tracked(git_oid *oid, git_repository *r, const char *base);

/* ---- local.c -------------------------------------------------------------------------------
 *
 * A remote on this machine (file:// URLs and absolute paths) is reached in-process, as libgit2's
 * local transport would, without its cost: that transport lists (and looks up the object of)
 * every ref of the remote on each connection and downloads every ref's history it lacks. Here
 * only the refs an operation names are read, a fetch packs the history of the wanted tips that
 * the mirror lacks, and a push writes the objects the hold wrote as loose objects (as git's
 * receive-pack keeps a small push) and moves each branch with a compare-and-swap on its ref (the
 * lease). Like libgit2's local transport, no
 * hook runs. */

/* 1 when url names a repository on this machine ("file:///path", percent-decoded, or an
 * absolute path): its path into path. */
int dm_git_local_path(char *path, size_t pathlen, const char *url);

/* Reads the remote's tips of refs[0..n) (full names; NULL skipped) into tips[0..n). */
int dm_git_local_tips(git_repository *origin, const char *const *refs, size_t n,
                      struct dm_git_tip *tips, struct dm_git_session *s, struct dm_error *err);

/* Copies into the mirror what it lacks of the history of wants[0..n): one pack, built from the
 * origin, that leaves out the history of hide (when the origin has it; NULL = none). Reloads
 * the mirror's packs. */
int dm_git_local_fetch(struct dm_git_mirror *m, git_repository *origin, struct dm_git_session *s,
                       const git_oid *wants, size_t n, const git_oid *hide, struct dm_error *err);

/* Writes the objects the mirror's holder wrote (dm_git_mirror_written) into the origin's
 * objects/ as loose objects. */
int dm_git_local_send(struct dm_git_mirror *m, git_repository *origin, struct dm_git_session *s,
                      struct dm_error *err);

/* Points ref at to on the origin when it is still at expect (NULL = absent). Returns 0,
 * DM_ERR_TRANSIENT when it is not (someone moved it meanwhile), or another error. */
int dm_git_local_update(git_repository *origin, const char *ref, const git_oid *to,
                        const git_oid *expect, struct dm_git_session *s, struct dm_error *err);

/* ---- commit.c ------------------------------------------------------------------------------- */

/* 1 when s is a non-empty single line (no control characters). */
int dm_git_text_valid(const char *s);

/* Checks the generated files: at least one, valid paths, no duplicates, no file that is also a
 * directory of another. Returns 0 or DM_ERR_INVALID / DM_ERR_NOMEM with err set. */
int dm_git_check_files(const struct dm_git_file *files, size_t n, struct dm_error *err);

/* message (trailing blank space trimmed) + "\n\nDream-Job: <job_id>\nDream-Spec: <spec_id>\n"
 * into *out (caller frees). Returns 0 or DM_ERR_NOMEM. */
int dm_git_build_message(char **out, const char *message, const char *job_id, const char *spec_id);

/* 1 when message carries the trailer "Dream-Job: <job_id>". */
int dm_git_has_job_trailer(const char *message, const char *job_id);

/* Builds the commit (not referenced by anything yet) on top of base_oid: base tree + files,
 * author = committer from o at `when`. */
int dm_git_build_commit(git_oid *commit_out, git_oid *tree_out, git_repository *r,
                        const git_oid *base_oid, const struct dm_git_opts *o, const char *message,
                        long long when, const struct dm_git_file *files, size_t n,
                        struct dm_error *err);

#endif
