/*
 * git: libgit2 mirror cache, in-memory commit building and idempotent push (see git.h).
 *
 * Owns the bare mirrors under <data_dir>/mirrors and a process-wide table of per-mirror locks.
 * Runs only on threadpool threads: every function blocks. Each call opens its own
 * git_repository, so libgit2 objects never cross threads. Remotes are anonymous (never written
 * to the mirror's config); the token reaches libgit2 only through the credentials callback and is
 * scrubbed from every error message that leaves this file.
 */
#include "dream/io/git.h"

#include "dream/core/buf.h"
#include "dream/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD "git"
#define NAME_MAX_LEN 100
#define SIDEBAND_CAP 4096
#define DEFAULT_LOCK_WAIT_MS (10L * 60 * 1000)
#define DEFAULT_MAX_PATHS 100000
#define TRACK_PREFIX "refs/remotes/origin/"
#define PEEK_PREFIX "refs/dream/remote/"
#define OUT_PREFIX "refs/dream/out/"

/* ---- libgit2 global init ---------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_libgit2(void)
{
    init_rc = git_libgit2_init();
}

static int ensure_init(struct dm_error *err)
{
    pthread_once(&init_once, init_libgit2);
    if (init_rc < 0) {
        return dm_error_set(err, DM_ERR_IO, "libgit2 failed to initialise");
    }
    return 0;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int is_cancelled(const struct dm_git_opts *o)
{
    return o->cancel && atomic_load(o->cancel) != 0;
}

static int name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int text_valid(const char *s)
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

int dm_git_branch_name_valid(const char *name)
{
    char ref[512];
    int valid = 0;

    if (!name || !*name || name[0] == '-' || strlen(name) > 255) {
        return 0;
    }
    pthread_once(&init_once, init_libgit2);
    snprintf(ref, sizeof(ref), "refs/heads/%s", name);
    if (git_reference_name_is_valid(&valid, ref) < 0) {
        return 0;
    }
    return valid;
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

/* Replaces every occurrence of secret in s (in place) with "***". */
static void scrub(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    char *hit;

    if (n == 0) {
        return;
    }
    while ((hit = strstr(s, secret)) != NULL) {
        size_t rest = strlen(hit + n);
        size_t keep = n < 3 ? n : 3;
        memcpy(hit, "***", keep);
        memmove(hit + keep, hit + n, rest + 1);
    }
}

int dm_git_remote_url(char *out, size_t outlen, const char *url_template, const char *owner,
                      const char *repo, struct dm_error *err)
{
    const char *t = url_template && *url_template ? url_template : DM_GIT_URL_DEFAULT;
    const char *scheme_end = strstr(t, "://");
    size_t pos = 0;

    if (!name_valid(owner) || !name_valid(repo)) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid repository name '%s/%s'",
                            owner ? owner : "", repo ? repo : "");
    }
    if (scheme_end && (strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0)) {
        const char *auth = scheme_end + 3;
        size_t alen = strcspn(auth, "/");
        if (memchr(auth, '@', alen)) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "the git URL template must not carry credentials; use the token");
        }
    } else if (scheme_end && strncmp(t, "file://", 7) != 0 && strncmp(t, "ssh://", 6) != 0) {
        return dm_error_set(err, DM_ERR_INVALID, "unsupported git URL scheme in template");
    }
    if (!strstr(t, "{repo}")) {
        return dm_error_set(err, DM_ERR_INVALID, "the git URL template has no {repo}");
    }
    for (const char *c = t; *c;) {
        const char *sub = NULL;
        size_t skip = 1;
        if (strncmp(c, "{owner}", 7) == 0) {
            sub = owner;
            skip = 7;
        } else if (strncmp(c, "{repo}", 6) == 0) {
            sub = repo;
            skip = 6;
        }
        size_t n = sub ? strlen(sub) : 1;
        if (pos + n + 1 > outlen) {
            return dm_error_set(err, DM_ERR_LIMIT, "git URL too long");
        }
        memcpy(out + pos, sub ? sub : c, n);
        pos += n;
        c += skip;
    }
    out[pos] = '\0';
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

/* ---- per-mirror lock -------------------------------------------------------------------- */

struct mirror_lock {
    char *path;
    int busy;
    int refs; /* holder + waiters; the entry is freed when it drops to 0 */
    pthread_cond_t cond;
    struct mirror_lock *next;
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mirror_lock *locks;

struct held_lock {
    struct mirror_lock *entry;
    int fd;
};

static void lock_entry_unref(struct mirror_lock *e)
{
    /* locks_mu held */
    if (--e->refs > 0) {
        return;
    }
    for (struct mirror_lock **pp = &locks; *pp; pp = &(*pp)->next) {
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

static int lock_mirror(struct held_lock *h, const struct dm_git_opts *o, const char *mirror,
                       struct dm_error *err)
{
    long wait_ms = o->lock_wait_ms > 0 ? o->lock_wait_ms : DEFAULT_LOCK_WAIT_MS;
    long long deadline = mono_ms() + wait_ms;
    struct mirror_lock *e;
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
        if (e->busy && is_cancelled(o)) {
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
        if (is_cancelled(o)) {
            rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while waiting for the mirror");
            goto out;
        }
        if (mono_ms() > deadline) {
            rc = dm_error_set(err, DM_ERR_TIMEOUT, "timed out waiting for the mirror lock");
            goto out;
        }
        usleep(50 * 1000);
    }
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

static void unlock_mirror(struct held_lock *h)
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

/* ---- one remote session: callbacks and error conversion ---------------------------------- */

struct session {
    const struct dm_git_opts *o;
    const char *url;
    const char *job; /* for logs, may be NULL */
    int cred_calls;
    int auth_failed;
    int no_creds;
    int cancelled;
    int raced;              /* push negotiation saw a different remote tip than expected */
    git_oid expect;         /* remote tip expected by push negotiation (zero = absent) */
    int rejected;           /* push_update_reference reported a rejection */
    char reject[256];       /* its status text */
    struct dm_buf sideband; /* remote's progress/messages, last SIDEBAND_CAP bytes */
};

static void session_init(struct session *s, const struct dm_git_opts *o, const char *url,
                         const char *job)
{
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->url = url;
    s->job = job;
    dm_buf_init(&s->sideband, SIDEBAND_CAP * 2);
}

static void session_reset(struct session *s)
{
    s->cred_calls = 0;
    s->auth_failed = 0;
    s->no_creds = 0;
    s->rejected = 0;
    s->reject[0] = '\0';
    dm_buf_reset(&s->sideband);
}

static void session_free(struct session *s)
{
    dm_buf_free(&s->sideband);
}

static int check_cancel(struct session *s)
{
    if (is_cancelled(s->o)) {
        s->cancelled = 1;
        return -1;
    }
    return 0;
}

static int on_credentials(git_credential **out, const char *url, const char *user_from_url,
                          unsigned int allowed, void *payload)
{
    struct session *s = payload;
    const struct dm_git_opts *o = s->o;

    (void)url;
    if (check_cancel(s)) {
        return GIT_EUSER;
    }
    /* SSH without a user in the URL first asks for the user name alone. */
    if (allowed == GIT_CREDENTIAL_USERNAME) {
        return git_credential_username_new(out, user_from_url ? user_from_url : "git");
    }
    /* libgit2 asks again when the credentials it got were refused; asking forever would loop. */
    if (s->cred_calls++ > 0) {
        s->auth_failed = 1;
        git_error_set_str(GIT_ERROR_NET, "the remote refused the credentials");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && o->ssh_key_path && *o->ssh_key_path) {
        return git_credential_ssh_key_new(out, user_from_url ? user_from_url : "git", NULL,
                                          o->ssh_key_path, NULL);
    }
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && o->token && *o->token) {
        return git_credential_userpass_plaintext_new(out, "x-access-token", o->token);
    }
    s->auth_failed = 1;
    s->no_creds = 1;
    git_error_set_str(GIT_ERROR_NET, "the remote requires credentials and none are configured");
    return GIT_EAUTH;
}

static int on_transfer_progress(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    return check_cancel(payload);
}

static int on_push_progress(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
    (void)current;
    (void)total;
    (void)bytes;
    return check_cancel(payload);
}

static int on_sideband(const char *str, int len, void *payload)
{
    struct session *s = payload;

    if (len > 0) {
        if (s->sideband.len + (size_t)len > SIDEBAND_CAP) {
            size_t drop = s->sideband.len + (size_t)len - SIDEBAND_CAP;
            dm_buf_consume(&s->sideband, drop < s->sideband.len ? drop : s->sideband.len);
        }
        if ((size_t)len > SIDEBAND_CAP) {
            str += (size_t)len - SIDEBAND_CAP;
            len = SIDEBAND_CAP;
        }
        (void)dm_buf_append(&s->sideband, str, (size_t)len);
    }
    return check_cancel(s);
}

static int on_push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
    struct session *s = payload;

    if (check_cancel(s)) {
        return GIT_EUSER;
    }
    /* A lease: the remote branch must still be what we looked at, or someone raced us. */
    for (size_t i = 0; i < len; i++) {
        if (!git_oid_equal(&updates[i]->src, &s->expect)) {
            s->raced = 1;
            git_error_set_str(GIT_ERROR_REFERENCE, "the remote branch moved while publishing");
            return GIT_EUSER;
        }
    }
    return 0;
}

static int on_push_update_reference(const char *refname, const char *status, void *payload)
{
    struct session *s = payload;

    (void)refname;
    if (status && !s->rejected) {
        s->rejected = 1;
        snprintf(s->reject, sizeof(s->reject), "%s", status);
    }
    return 0;
}

static void session_callbacks(struct session *s, git_remote_callbacks *cb)
{
    cb->credentials = on_credentials;
    cb->transfer_progress = on_transfer_progress;
    cb->push_transfer_progress = on_push_progress;
    cb->sideband_progress = on_sideband;
    cb->push_negotiation = on_push_negotiation;
    cb->push_update_reference = on_push_update_reference;
    cb->payload = s;
}

/* An anonymous remote (nothing is written to the mirror's config). insteadOf rewriting is
 * skipped: the URL comes from our template alone, and libgit2 1.5 leaks a PCRE2 match block per
 * config entry while looking for insteadOf rules. */
static int create_remote(git_remote **out, git_repository *r, const char *url)
{
    git_remote_create_options co;

    git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    co.repository = r;
    co.name = NULL;
    co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    return git_remote_create_with_opts(out, url, &co);
}

/* The remote's messages as one line: control characters dropped, lines joined with " | ". */
static void remote_text(const struct session *s, char *out, size_t outlen)
{
    size_t pos = 0;
    int pending_sep = 0;

    out[0] = '\0';
    for (size_t i = 0; i < s->sideband.len && pos + 4 < outlen; i++) {
        unsigned char c = (unsigned char)s->sideband.data[i];
        if (c == '\n' || c == '\r') {
            pending_sep = pos > 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            continue;
        }
        if (pending_sep) {
            if (pos + 4 >= outlen) {
                break;
            }
            memcpy(out + pos, " | ", 3);
            pos += 3;
            pending_sep = 0;
        }
        out[pos++] = (char)c;
    }
    out[pos] = '\0';
}

/* Converts a libgit2 failure of `what` into err. */
static int fail_git(struct dm_error *err, struct session *s, int gitrc, const char *what)
{
    const git_error *e = git_error_last();
    char msg[400];
    int code = DM_ERR_IO;

    snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown libgit2 error");
    if (s) {
        scrub(msg, s->o->token);
    }
    if (s && (s->cancelled || is_cancelled(s->o))) {
        return dm_error_set(err, DM_ERR_CANCELLED, "cancelled while %s", what);
    }
    if (s && s->raced) {
        return dm_error_set(err, DM_ERR_TRANSIENT, "%s: the remote branch changed meanwhile", what);
    }
    if (s && s->no_creds) {
        return dm_error_set(err, DM_ERR_AUTH,
                            "%s: the remote requires authentication and no token is configured",
                            what);
    }
    if ((s && s->auth_failed) || gitrc == GIT_EAUTH) {
        return dm_error_set(err, DM_ERR_AUTH,
                            "%s: authentication failed, the remote refused the token (%s)", what,
                            msg);
    }
    if (e && (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_HTTP ||
              e->klass == GIT_ERROR_SSH || e->klass == GIT_ERROR_SSL || e->klass == GIT_ERROR_OS)) {
        if (strstr(msg, "404") || strstr(msg, "not found") || strstr(msg, "does not exist") ||
            strstr(msg, "could not find repository") || strstr(msg, "No such file")) {
            code = DM_ERR_NOTFOUND;
        } else if (strstr(msg, "401") || strstr(msg, "403")) {
            code = DM_ERR_AUTH;
        } else if (e->klass != GIT_ERROR_OS || strstr(msg, "failed to connect") ||
                   strstr(msg, "timed out") || strstr(msg, "failed to resolve address") ||
                   strstr(msg, "Connection")) {
            code = DM_ERR_TRANSIENT;
        }
    } else if (gitrc == GIT_ENOTFOUND && e && e->klass == GIT_ERROR_REPOSITORY) {
        code = DM_ERR_NOTFOUND;
    }
    return dm_error_set(err, code, "%s: %s", what, msg);
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
            return fail_git(err, NULL, rc, "opening the mirror");
        }
        return 0;
    }
    snprintf(parent, sizeof(parent), "%s", path);
    slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
    }
    if (mkdir_p(parent) != 0) {
        return dm_error_set(err, DM_ERR_IO, "cannot create the mirror directory: %s",
                            strerror(errno));
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
    rc = git_repository_init_ext(&r, tmp, &io);
    if (rc < 0) {
        return fail_git(err, NULL, rc, "creating the mirror");
    }
    git_repository_free(r);
    if (rename(tmp, path) != 0) {
        return dm_error_set(err, DM_ERR_IO, "cannot install the mirror: %s", strerror(errno));
    }
    rc = git_repository_open_bare(out, path);
    if (rc < 0) {
        return fail_git(err, NULL, rc, "opening the mirror");
    }
    *created = 1;
    return 0;
}

/* What a refresh saw on the remote. */
struct remote_state {
    git_oid base;
    int has_branch;
    git_oid branch;
};

/* Fetches base (into refs/remotes/origin/<base>) and, when branch is given and exists, branch
 * (into refs/dream/remote/<branch>) over one connection. */
static int mirror_fetch(git_repository *r, struct session *s, const char *base, const char *branch,
                        struct remote_state *st, struct dm_error *err)
{
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    git_fetch_options fo;
    git_proxy_options po;
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    char want_base[512], want_branch[512], spec_base[1100], spec_branch[1100], ref[600];
    char *specs[2];
    git_strarray arr = {specs, 0};
    int has_base = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    git_proxy_options_init(&po, GIT_PROXY_OPTIONS_VERSION);
    session_reset(s);
    session_callbacks(s, &cb);
    po.type = GIT_PROXY_AUTO;
    snprintf(want_base, sizeof(want_base), "refs/heads/%s", base);
    if (branch) {
        snprintf(want_branch, sizeof(want_branch), "refs/heads/%s", branch);
    }

    rc = create_remote(&remote, r, s->url);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "preparing the remote");
        goto out;
    }
    rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, &po, NULL);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "connecting to the remote");
        goto out;
    }
    rc = git_remote_ls(&heads, &nheads, remote);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "listing the remote");
        goto out;
    }
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
    snprintf(spec_base, sizeof(spec_base), "+%s:" TRACK_PREFIX "%s", want_base, base);
    specs[arr.count++] = spec_base;
    if (st->has_branch) {
        snprintf(spec_branch, sizeof(spec_branch), "+%s:" PEEK_PREFIX "%s", want_branch, branch);
        specs[arr.count++] = spec_branch;
    }
    fo.callbacks = cb;
    fo.proxy_opts = po;
    fo.prune = GIT_FETCH_NO_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    rc = git_remote_download(remote, &arr, &fo);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "fetching from the remote");
        goto out;
    }
    if (check_cancel(s)) {
        rc = dm_error_set(err, DM_ERR_CANCELLED, "cancelled while fetching");
        goto out;
    }
    /* Our own refs keep the fetched objects reachable in the mirror. */
    {
        git_reference *ref_out = NULL;
        snprintf(ref, sizeof(ref), TRACK_PREFIX "%s", base);
        rc = git_reference_create(&ref_out, r, ref, &st->base, 1, "dreamd fetch");
        git_reference_free(ref_out);
        if (rc < 0) {
            rc = fail_git(err, s, rc, "updating the mirror");
            goto out;
        }
        if (st->has_branch) {
            snprintf(ref, sizeof(ref), PEEK_PREFIX "%s", branch);
            rc = git_reference_create(&ref_out, r, ref, &st->branch, 1, "dreamd fetch");
            git_reference_free(ref_out);
            if (rc < 0) {
                rc = fail_git(err, s, rc, "updating the mirror");
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (remote) {
        git_remote_disconnect(remote);
        git_remote_free(remote);
    }
    return rc;
}

/* Validates the common arguments, locks and opens the mirror. */
struct mirror {
    struct held_lock lock;
    git_repository *repo;
    int created;
    char path[4096];
    char url[2048];
};

static int mirror_acquire(struct mirror *m, const struct dm_git_opts *o, const char *owner,
                          const char *repo, const char *base, struct dm_error *err)
{
    int rc;

    memset(m, 0, sizeof(*m));
    m->lock.fd = -1;
    if ((rc = ensure_init(err)) < 0) {
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
        if (mkdir_p(dir) != 0) {
            return dm_error_set(err, DM_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        }
    }
    if (is_cancelled(o)) {
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

static void mirror_release(struct mirror *m)
{
    git_repository_free(m->repo);
    m->repo = NULL;
    unlock_mirror(&m->lock);
}

/* ---- commit ----------------------------------------------------------------------------- */

static int cmp_paths(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_files(const struct dm_git_file *files, size_t n, struct dm_error *err)
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

static int build_message(char **out, const char *message, const char *job_id, const char *spec_id)
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

static int has_job_trailer(const char *message, const char *job_id)
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
static int build_commit(git_oid *commit_out, git_oid *tree_out, git_repository *r,
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
        rc = fail_git(err, NULL, rc, "reading the base commit");
        goto out;
    }
    rc = git_commit_tree(&base_tree, base);
    if (rc < 0) {
        rc = fail_git(err, NULL, rc, "reading the base tree");
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
            rc = fail_git(err, NULL, rc, "writing a blob");
            goto out;
        }
        ups[i].action = GIT_TREE_UPDATE_UPSERT;
        git_oid_cpy(&ups[i].id, &blobs[i]);
        ups[i].filemode = files[i].executable ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
        ups[i].path = files[i].path;
    }
    rc = git_tree_create_updated(tree_out, r, base_tree, n, ups);
    if (rc < 0) {
        rc = fail_git(err, NULL, rc, "building the tree");
        goto out;
    }
    rc = git_tree_lookup(&tree, r, tree_out);
    if (rc < 0) {
        rc = fail_git(err, NULL, rc, "reading the new tree");
        goto out;
    }
    rc = git_signature_new(
        &sig, o->author_name && *o->author_name ? o->author_name : "Dream Machine",
        o->author_email && *o->author_email ? o->author_email : "dream@localhost", (git_time_t)when,
        0);
    if (rc < 0) {
        rc = fail_git(err, NULL, rc, "making the author signature");
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
        rc = fail_git(err, NULL, rc, "creating the commit");
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
    if (has_job_trailer(git_commit_message_raw(c), job_id)) {
        v = TIP_OURS_UPDATE;
        if (git_oid_equal(git_commit_tree_id(c), tree) && git_commit_parentcount(c) == 1 &&
            git_oid_equal(git_commit_parent_id(c, 0), base)) {
            v = TIP_SAME;
        }
    }
    git_commit_free(c);
    return v;
}

static int push_commit(git_repository *r, struct session *s, const git_oid *commit,
                       const char *branch, int force, const git_oid *expect, struct dm_error *err)
{
    git_remote *remote = NULL;
    git_reference *ref = NULL;
    git_push_options po;
    char local[600], spec[1300];
    char *specs[1] = {spec};
    git_strarray arr = {specs, 1};
    int rc;

    git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
    session_reset(s);
    if (expect) {
        git_oid_cpy(&s->expect, expect);
    } else {
        memset(&s->expect, 0, sizeof(s->expect));
    }
    snprintf(local, sizeof(local), OUT_PREFIX "%s", branch);
    rc = git_reference_create(&ref, r, local, commit, 1, "dreamd publish");
    git_reference_free(ref);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "preparing the push");
        goto out;
    }
    snprintf(spec, sizeof(spec), "%s%s:refs/heads/%s", force ? "+" : "", local, branch);
    session_callbacks(s, &po.callbacks);
    po.proxy_opts.type = GIT_PROXY_AUTO;
    rc = create_remote(&remote, r, s->url);
    if (rc < 0) {
        rc = fail_git(err, s, rc, "preparing the remote");
        goto out;
    }
    rc = git_remote_push(remote, &arr, &po);
    if (rc < 0) {
        char said[600];
        rc = fail_git(err, s, rc, "pushing");
        remote_text(s, said, sizeof(said));
        if (said[0] && rc != DM_ERR_CANCELLED) {
            scrub(said, s->o->token);
            dm_error_wrap(err, "remote said: %s", said);
        }
        goto out;
    }
    if (s->rejected) {
        char said[600];
        remote_text(s, said, sizeof(said));
        scrub(said, s->o->token);
        scrub(s->reject, s->o->token);
        rc = dm_error_set(err, DM_ERR_REMOTE, "the remote rejected the push of %s: %s%s%s", branch,
                          s->reject, said[0] ? "; remote said: " : "", said);
        goto out;
    }
    rc = 0;
out:
    if (remote) {
        git_remote_disconnect(remote);
        git_remote_free(remote);
    }
    return rc;
}

/* Drops the per-branch helper refs, so the mirror does not collect two refs per job. */
static void forget_refs(git_repository *r, const char *branch)
{
    char ref[600];
    git_reference *out = NULL;

    snprintf(ref, sizeof(ref), OUT_PREFIX "%s", branch);
    if (git_reference_lookup(&out, r, ref) == 0) {
        git_reference_delete(out);
        git_reference_free(out);
    }
    out = NULL;
    snprintf(ref, sizeof(ref), PEEK_PREFIX "%s", branch);
    if (git_reference_lookup(&out, r, ref) == 0) {
        git_reference_delete(out);
        git_reference_free(out);
    }
}

int dm_git_publish(struct dm_git_result *out, const struct dm_git_opts *opts, const char *owner,
                   const char *repo, const char *base, const char *branch, const char *job_id,
                   const char *spec_id, const char *message, long long commit_time,
                   const struct dm_git_file *files, size_t nfiles, struct dm_error *err)
{
    struct mirror m;
    struct session s;
    struct remote_state st;
    git_oid commit, tree;
    char *msg = NULL;
    int have_mirror = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    session_init(&s, opts, NULL, job_id);
    if (!text_valid(job_id) || !text_valid(spec_id)) {
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
    if ((rc = check_files(files, nfiles, err)) < 0) {
        goto out;
    }
    if ((rc = build_message(&msg, message, job_id, spec_id)) < 0) {
        rc = dm_error_set(err, rc, "out of memory");
        goto out;
    }
    if (commit_time <= 0) {
        commit_time = (long long)time(NULL);
    }
    if ((rc = mirror_acquire(&m, opts, owner, repo, base, err)) < 0) {
        goto out;
    }
    have_mirror = 1;
    s.url = m.url;
    rc = mirror_fetch(m.repo, &s, base, branch, &st, err);
    if (rc < 0) {
        goto out;
    }
    rc = build_commit(&commit, &tree, m.repo, &st.base, opts, msg, commit_time, files, nfiles, err);
    if (rc < 0) {
        goto out;
    }
    git_oid_tostr(out->base_commit, sizeof(out->base_commit), &st.base);
    if (is_cancelled(opts)) {
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
    dm_info(MOD, job_id, "%s/%s %s at %.12s (base %s at %.12s)%s", owner, repo, branch, out->commit,
            base, out->base_commit,
            out->pushed ? (out->forced ? " force-updated" : " pushed") : " already there");
    rc = 0;
out:
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        if (err) {
            scrub(err->msg, opts ? opts->token : NULL);
        }
    }
    if (have_mirror) {
        forget_refs(m.repo, branch);
        mirror_release(&m);
    }
    session_free(&s);
    free(msg);
    return rc;
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
    struct mirror m;
    struct session s;
    struct remote_state st;
    struct walk w = {0};
    git_commit *c = NULL;
    git_tree *tree = NULL;
    int have_mirror = 0;
    int rc;

    *out = NULL;
    session_init(&s, opts, NULL, NULL);
    if ((rc = mirror_acquire(&m, opts, owner, repo, base, err)) < 0) {
        goto out;
    }
    have_mirror = 1;
    s.url = m.url;
    if (refresh || m.created) {
        rc = mirror_fetch(m.repo, &s, base, NULL, &st, err);
        if (rc < 0) {
            goto out;
        }
    } else {
        char ref[600];
        snprintf(ref, sizeof(ref), TRACK_PREFIX "%s", base);
        rc = git_reference_name_to_id(&st.base, m.repo, ref);
        if (rc == GIT_ENOTFOUND) {
            rc = mirror_fetch(m.repo, &s, base, NULL, &st, err);
            if (rc < 0) {
                goto out;
            }
        } else if (rc < 0) {
            rc = fail_git(err, &s, rc, "reading the mirror");
            goto out;
        }
    }
    rc = git_commit_lookup(&c, m.repo, &st.base);
    if (rc == 0) {
        rc = git_commit_tree(&tree, c);
    }
    if (rc < 0) {
        rc = fail_git(err, &s, rc, "reading the base tree");
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
        rc = fail_git(err, &s, rc, "walking the base tree");
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
        mirror_release(&m);
    }
    if (rc < 0 && err) {
        scrub(err->msg, opts ? opts->token : NULL);
    }
    session_free(&s);
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
