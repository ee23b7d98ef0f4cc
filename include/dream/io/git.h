/*
 * git: the last mile on the git side — a bare mirror per repository, a commit built in memory
 * on top of the base branch, and an idempotent push of that commit to the job's branch.
 *
 * Owns: the mirror cache under <data_dir>/mirrors/<owner>/<repo>.git (created on first use by
 * fetching the base branch only, refreshed by fetching it again when its tip moved; kept open
 * across calls; a job's objects are built in memory and never written as loose objects;
 * repacked by dm_git_maintain) and the lock files next to it (<repo>.git.lock). No working tree
 * is ever checked out.
 *
 * Threading: every function here is SYNCHRONOUS and blocks on disk and network. Call it only on
 * a threadpool thread (uv_queue_work), never on the loop thread. The functions copy what they
 * need from their arguments, never touch libuv, curl, hiredis or a job, and report results and
 * libgit2's error text through out parameters. Any number of threads may call them at once: one
 * operation per mirror runs at a time (a process-wide table of per-mirror locks plus flock(2) on
 * the lock file, so two replicas sharing a data directory are safe as well); the others wait
 * (cancellably).
 *
 * Code: src/io/git/ (session.c: talking to the remote; mirror.c: the cache, its locks and the
 * tree listing; commit.c: the commit built in memory; publish.c: the push and the ownership
 * check; checkout.c: a commit's checkable files written out for the whole-change checks),
 * sharing src/io/git/git_private.h.
 *
 * Secrets: the token is handed to libgit2 only through its credentials callback (HTTP Basic,
 * user "x-access-token"). It never appears in a URL, in the mirror's config (remotes are
 * anonymous), in a log line or in an error message (error text is scrubbed of it).
 */
#ifndef DREAM_GIT_H
#define DREAM_GIT_H

#include "dream/core/error.h"

#include <stdatomic.h>
#include <stddef.h>

/* Hex object id plus NUL (SHA-1). */
#define DM_GIT_OID_HEX 41

/* Default remote template. {owner} and {repo} are replaced; file://, http:// and https:// (and
 * ssh:// or scp-like user@host:path with ssh_key_path) are accepted. */
#define DM_GIT_URL_DEFAULT "https://github.com/{owner}/{repo}.git"

/* Options shared by every call. All pointers are borrowed for the duration of the call. */
struct dm_git_opts {
    const char *data_dir;        /* required: mirrors live in <data_dir>/mirrors */
    const char *url_template;    /* NULL = DM_GIT_URL_DEFAULT */
    const char *token;           /* HTTPS token (Basic x-access-token:<token>); NULL/"" = none */
    const char *ssh_key_path;    /* private key for ssh:// remotes; NULL = none */
    const char *author_name;     /* NULL = "Dream Machine" */
    const char *author_email;    /* NULL = "dream@localhost" */
    const atomic_int *cancel;    /* may be NULL; non-zero cancels at the next check point */
    long lock_wait_ms;           /* most time to wait for the mirror lock, 0 = 10 minutes */
    long long coalesce_since_ms; /* CLOCK_MONOTONIC ms when the caller asked: a look-up of the
                                    remote's base (a refresh) that another call began at or
                                    after this serves this one without a connection (the answer
                                    is never older than the question); 0 = always ask */
};

#define DM_GIT_OPTS_INIT                                                                           \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0                                             \
    }

/* A push always reads the remote's current tips on its own connection: coalesced look-ups only
 * decide which base a job reads and plans on, never what it pushes onto. */

/* One generated file. path is relative to the repository root ("src/routes/x.ts"): no leading
 * '/', no empty, "." or ".." component, no ".git" component, no backslash or control character.
 * content may hold any bytes (len of them). */
struct dm_git_file {
    const char *path;
    const char *content;
    size_t len;
    int executable; /* non-zero: mode 100755, else 100644 */
};

struct dm_git_result {
    char commit[DM_GIT_OID_HEX];      /* the commit the branch now points at */
    char base_commit[DM_GIT_OID_HEX]; /* the base branch tip it was built on */
    int pushed; /* 1 = this call updated the remote; 0 = it was already there */
    int forced; /* 1 = the branch existed (same job) and was force-updated */
};

/*
 * Publishes the generated files as one commit on `branch` of owner/repo.
 *
 * Steps: lock the mirror; create it (first use) or refresh it by fetching `base` (and `branch`,
 * to look at it); build the commit in memory = base tree + files (added or replaced), parent =
 * base tip, author = committer = opts' name/email at commit_time (seconds since the epoch, UTC;
 * <= 0 means now), message = `message` (trailing blank space trimmed) + a blank line +
 * "Dream-Job: <job_id>\nDream-Spec: <spec_id>\n". The same inputs and commit_time always make the
 * same commit id, so a retry re-creates the commit a crashed attempt already pushed.
 *
 * Then, by the remote branch's state:
 *   - absent: pushed (non-forced); result pushed = 1.
 *   - its tip is our commit, or a commit with the same Dream-Job trailer, the same tree and the
 *     same parent: nothing is pushed; result pushed = 0, commit = that tip.
 *   - its tip carries "Dream-Job: <job_id>" but differs (an earlier attempt on an older base or
 *     with other files): force-updated; pushed = 1, forced = 1.
 *   - anything else (made by someone else): left untouched; returns DM_ERR_EXISTS with a message
 *     naming the branch and its tip. The caller may try its alternative branch name.
 *
 * job_id and spec_id: non-empty, no control characters. message: non-empty.
 *
 * Returns 0 and fills *out, or a negative enum dm_err with err set (out then zeroed):
 *   DM_ERR_INVALID    bad argument (owner/repo name, branch/base ref name, file path, duplicate
 *                     path, URL template)
 *   DM_ERR_NOTFOUND   the repository or the base branch does not exist on the remote
 *   DM_ERR_AUTH       the remote refused the credentials (or wanted some and none were given)
 *   DM_ERR_EXISTS     the branch exists and was not made by this job
 *   DM_ERR_REMOTE     the remote rejected the push; err holds its message (for example a hook's
 *                     output, "remote: ..." lines) — permanent
 *   DM_ERR_TRANSIENT  network trouble talking to the remote (worth a retry)
 *   DM_ERR_CANCELLED  *opts->cancel became non-zero
 *   DM_ERR_TIMEOUT    the mirror lock was not obtained within lock_wait_ms
 *   DM_ERR_IO         local repository or filesystem trouble
 *   DM_ERR_NOMEM
 * err->msg never contains the token.
 */
int dm_git_publish(struct dm_git_result *out, const struct dm_git_opts *opts, const char *owner,
                   const char *repo, const char *base, const char *branch, const char *job_id,
                   const char *spec_id, const char *message, long long commit_time,
                   const struct dm_git_file *files, size_t nfiles, struct dm_error *err);

/* One publication of a batch (dm_git_publish_many). */
struct dm_git_publish_item {
    /* in: as dm_git_publish's arguments */
    const char *branch;
    const char *alt_branch; /* may be NULL: the name to use when branch is someone else's */
    const char *job_id, *spec_id, *message;
    long long commit_time;
    const struct dm_git_file *files;
    size_t nfiles;
    const struct dm_git_opts *opts; /* this one's author and cancel flag; NULL = the batch's */
    /* out */
    int rc; /* 0 or as dm_git_publish */
    struct dm_error err;
    struct dm_git_result result;
    const char *used_branch; /* branch or alt_branch */
};

/*
 * Publishes several jobs' commits on the same owner/repo and base over one push connection
 * (one ref advertisement, one upload with every branch and a lease on each), each exactly as
 * dm_git_publish would; with alt_branch, a branch that belongs to someone else is left alone
 * and the commit goes on alt_branch instead (DM_ERR_EXISTS when both are someone else's); a
 * branch an earlier item of the batch takes counts as someone else's for a later item of
 * another job (as if pushed one after the other), and a later item of the same job fails with
 * DM_ERR_TRANSIENT (another attempt of it is in the push), as does an item whose branch moved
 * between the push connection's advertisement and the download after it (its lease is lost).
 * When the remote rejects every ref of the upload (a hook declining the whole push for one
 * commit), each item is pushed again alone, so each gets its own verdict. A
 * failure of the connection or the upload fails every item that was to be pushed; a ref the
 * remote rejects fails only its item. opts (URL, token, lock wait, cancel) are the batch's.
 * Returns 0 when every item succeeded, else the first item's error. Threadpool only.
 */
int dm_git_publish_many(const struct dm_git_opts *opts, const char *owner, const char *repo,
                        const char *base, struct dm_git_publish_item *items, size_t n);

/*
 * Mirrors that grew past a few packs (each download adds one) or hold loose objects are marked
 * for maintenance when released; dm_git_maintenance_due says whether one is. dm_git_maintain
 * repacks each marked mirror under its lock: the objects reachable from the mirror's refs into
 * one pack, every other pack and loose object removed (unreachable objects pruned so).
 * *repacked counts them. Threadpool only (due: any thread).
 */
int dm_git_maintenance_due(void);
int dm_git_maintain(const struct dm_git_opts *opts, size_t *repacked, struct dm_error *err);

/* The base branch's file tree, as read from a refreshed mirror. */
struct dm_git_tree {
    char **paths; /* nfiles blob paths ("src/a.ts"), sorted as git sorts */
    size_t npaths;
    int truncated;                    /* 1 = more than max_paths files; only the first are here */
    char base_commit[DM_GIT_OID_HEX]; /* the tip the listing was taken from */
};

/*
 * Lists the files (blobs and executables; symlinks and submodules are skipped) of `base` of
 * owner/repo. refresh != 0 fetches the base branch first (creating the mirror if needed);
 * refresh == 0 reads the mirror as it is (and fetches only if the mirror does not exist yet).
 * max_paths caps the listing (0 = 100000). On success *out is owned by the caller (free it
 * with dm_git_tree_free). Same errors as dm_git_publish (without DM_ERR_EXISTS/DM_ERR_REMOTE).
 * Threadpool only.
 */
int dm_git_list_tree(struct dm_git_tree **out, const struct dm_git_opts *opts, const char *owner,
                     const char *repo, const char *base, int refresh, size_t max_paths,
                     struct dm_error *err);

/* What dm_git_checkout wrote (or found). */
struct dm_git_checkout {
    char commit[DM_GIT_OID_HEX]; /* the base commit written out */
    char dir[4096];              /* <cache_root>/<commit>: the files, read only for callers */
    int cached;                  /* 1 = it was already there */
    size_t files;                /* files written (0 when cached) */
    size_t skipped;              /* files over max_file_bytes, left out */
};

/* Limits of one checkout (0 = the default). */
struct dm_git_checkout_limits {
    size_t max_files;      /* files written (default 50000; more: DM_ERR_LIMIT) */
    size_t max_file_bytes; /* a larger file is left out (default 2 MiB) */
    size_t max_bytes;      /* all files together (default 512 MiB; more: DM_ERR_LIMIT) */
    size_t keep;           /* commits kept under cache_root, least recently used removed
                              first (default 8) */
};

/*
 * Writes the files of a commit that a whole-change check reads — TypeScript/JavaScript sources,
 * JSON and SQL (no node_modules/, symlinks or submodules) — into <cache_root>/<commit>/, for
 * the type-check and the migration replay. The commit is `commit` (40 hex) when given and the
 * mirror has it, else the tip of `base` (the mirror as it is, fetched when it does not have the
 * branch yet; refresh != 0 fetches first). An existing <cache_root>/<commit> is reused (its
 * mtime is touched); a new one is written aside and renamed into place, so a reader never sees a
 * half-written tree. Then the least recently used commits past limits->keep are removed.
 * limits may be NULL. Same errors as dm_git_list_tree, plus DM_ERR_LIMIT (the commit has more
 * files or bytes to write than the limits; nothing is left behind). Threadpool only.
 */
int dm_git_checkout(struct dm_git_checkout *out, const struct dm_git_opts *opts, const char *owner,
                    const char *repo, const char *base, const char *commit, int refresh,
                    const char *cache_root, const struct dm_git_checkout_limits *limits,
                    struct dm_error *err);

/* Frees a listing; NULL allowed. Any thread. */
void dm_git_tree_free(struct dm_git_tree *tree);

/* ---- reading the base: the tree with sizes and blobs of one commit (base.c) ---- */

/* A mirror opened (and locked) at one commit of owner/repo; threadpool only, one thread. */
struct dm_git_base;

/*
 * Opens the mirror of owner/repo at the tip of `base` (refresh != 0 fetches it first; a mirror
 * that does not exist yet is always fetched) or, when commit (40 hex) is given, at that commit
 * (fetched first when the mirror lacks it). The mirror stays locked until dm_git_base_close, so
 * keep it short. Same errors as dm_git_list_tree; when the remote was reached but has no branch
 * `base` (an empty repository included), DM_ERR_NOTFOUND with *no_base = 1 (no_base may be NULL).
 */
int dm_git_base_open(struct dm_git_base **out, const struct dm_git_opts *opts, const char *owner,
                     const char *repo, const char *base, const char *commit, int refresh,
                     int *no_base, struct dm_error *err);

/* The commit opened, 40 hex. */
const char *dm_git_base_commit(const struct dm_git_base *b);

/* Calls each(arg, path, size) for every blob of the commit's tree (symlinks and submodules
 * skipped) in git's order, at most max (0 = 100000) of them; *truncated = 1 when there were
 * more. each returns 0, or non-zero to stop with that value returned. Returns 0, each's value,
 * or a negative enum dm_err. */
int dm_git_base_tree(struct dm_git_base *b, size_t max,
                     int (*each)(void *arg, const char *path, size_t size), void *arg,
                     int *truncated, struct dm_error *err);

/* Above this size a blob that cannot be streamed (a packed one) is not read at all. */
#define DM_GIT_BLOB_LOAD_MAX ((size_t)1 << 20)

/*
 * Reads at most max_bytes of the blob at path into *content (malloc'd, NUL-terminated; free())
 * and *len; *cut = 1 when the blob is longer. A blob longer than max_bytes is streamed when git
 * can (a loose object), else loaded only when it is at most DM_GIT_BLOB_LOAD_MAX bytes: a bigger
 * one gives DM_ERR_LIMIT and is never read whole. DM_ERR_NOTFOUND: no blob at path.
 */
int dm_git_base_read(struct dm_git_base *b, const char *path, size_t max_bytes, char **content,
                     size_t *len, int *cut, struct dm_error *err);

/* Unlocks and frees; NULL allowed. */
void dm_git_base_close(struct dm_git_base *b);

/* Checks a branch or base name: dm_refname_valid (dream/core/refname.h, the rules of
 * `git check-ref-format --branch`). Returns 1 if valid. Any thread. */
int dm_git_branch_name_valid(const char *name);

/* Expands a URL template for owner/repo into out (outlen bytes). Returns 0, DM_ERR_INVALID (no
 * usable template, credentials in it, owner/repo not dm_forge_name_valid) or DM_ERR_LIMIT. Any
 * thread. */
int dm_git_remote_url(char *out, size_t outlen, const char *url_template, const char *owner,
                      const char *repo, struct dm_error *err);

#endif
