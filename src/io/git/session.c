/*
 * git/session: one conversation with a remote (see git_private.h): libgit2's one-time set-up,
 * the credentials, progress and cancellation callbacks, the remote's messages, the conversion
 * of libgit2 errors into enum dm_err, token scrubbing, and the remote URL and name rules.
 *
 * Threadpool threads only. The token reaches libgit2 only through the credentials callback and
 * is scrubbed from every error message that leaves the module.
 */
#include "git_private.h"

#include "dream/core/refname.h"
#include "dream/domain/forge_proto.h"

#include <git2/sys/transport.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIDEBAND_CAP 4096

/* ---- libgit2 global init ---------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_libgit2(void)
{
    init_rc = git_libgit2_init();
    /* Mirrors stay open across jobs: keep libgit2's object cache small (the default allows
     * 256 MiB), so memory stays flat however many jobs go through. */
    if (init_rc >= 0) {
        git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)(4 << 20));
    }
}

int dm_git_ensure_init(struct dm_error *err)
{
    pthread_once(&init_once, init_libgit2);
    if (init_rc < 0) {
        return dm_error_set(err, DM_ERR_IO, "libgit2 failed to initialise");
    }
    return 0;
}

/* ---- small helpers ---------------------------------------------------------------------- */

int dm_git_cancelled(const struct dm_git_opts *o)
{
    return o->cancel && atomic_load(o->cancel) != 0;
}

int dm_git_branch_name_valid(const char *name)
{
    return dm_refname_valid(name);
}

/* Replaces every occurrence of secret in s (in place) with "***". */
void dm_git_scrub(char *s, const char *secret)
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

    if (!dm_forge_name_valid(owner) || !dm_forge_name_valid(repo)) {
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

/* ---- one remote session: callbacks and error conversion ---------------------------------- */

void dm_git_session_init(struct dm_git_session *s, const struct dm_git_opts *o, const char *url,
                         const char *job)
{
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->url = url;
    s->job = job;
    dm_buf_init(&s->sideband, SIDEBAND_CAP * 2);
}

void dm_git_session_reset(struct dm_git_session *s)
{
    s->cred_calls = 0;
    s->auth_failed = 0;
    s->no_creds = 0;
    s->rejected = 0;
    s->adv_malformed = 0;
    s->reject[0] = '\0';
    dm_buf_reset(&s->sideband);
}

void dm_git_session_free(struct dm_git_session *s)
{
    dm_buf_free(&s->sideband);
}

int dm_git_session_check_cancel(struct dm_git_session *s)
{
    if (dm_git_cancelled(s->o)) {
        s->cancelled = 1;
        return -1;
    }
    return 0;
}

static int on_credentials(git_credential **out, const char *url, const char *user_from_url,
                          unsigned int allowed, void *payload)
{
    struct dm_git_session *s = payload;
    const struct dm_git_opts *o = s->o;

    (void)url;
    if (dm_git_session_check_cancel(s)) {
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
    return dm_git_session_check_cancel(payload);
}

static int on_push_progress(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
    (void)current;
    (void)total;
    (void)bytes;
    return dm_git_session_check_cancel(payload);
}

static int on_sideband(const char *str, int len, void *payload)
{
    struct dm_git_session *s = payload;

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
    return dm_git_session_check_cancel(s);
}

static int on_push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
    struct dm_git_session *s = payload;

    if (dm_git_session_check_cancel(s)) {
        return GIT_EUSER;
    }
    /* A lease: the remote branch must still be what we looked at, or someone raced us. */
    for (size_t i = 0; i < len; i++) {
        git_oid want;
        memset(&want, 0, sizeof(want));
        for (size_t j = 0; j < s->nexpects; j++) {
            if (strcmp(s->expects[j].ref, updates[i]->dst_refname) == 0) {
                git_oid_cpy(&want, &s->expects[j].oid);
                break;
            }
        }
        if (!git_oid_equal(&updates[i]->src, &want)) {
            s->raced = 1;
            git_error_set_str(GIT_ERROR_REFERENCE, "the remote branch moved while publishing");
            return GIT_EUSER;
        }
    }
    return 0;
}

static int on_push_update_reference(const char *refname, const char *status, void *payload)
{
    struct dm_git_session *s = payload;

    if (status && s->on_reject) {
        s->on_reject(s->reject_arg, refname, status);
    }
    if (status && !s->rejected) {
        s->rejected = 1;
        snprintf(s->reject, sizeof(s->reject), "%s", status);
    }
    return 0;
}

/* Totals over the process (see dm_git_ref_counts). */
static atomic_ullong refs_advertised;
static atomic_ullong refs_parsed;

void dm_git_ref_counts(unsigned long long *advertised, unsigned long long *parsed)
{
    *advertised = atomic_load(&refs_advertised);
    *parsed = atomic_load(&refs_parsed);
}

void dm_git_ref_counts_add(size_t advertised, size_t parsed)
{
    atomic_fetch_add(&refs_advertised, (unsigned long long)advertised);
    atomic_fetch_add(&refs_parsed, (unsigned long long)parsed);
}

/* ---- a transport that shows only the refs asked for ----------------------------------------
 *
 * libgit2 1.5 speaks protocol v0: the remote advertises every ref it has, and the advertisement
 * cannot be avoided. What libgit2 then does with it can: a push hides every advertised tip in
 * its revision walk (an object look-up each, a miss for every branch the mirror does not hold)
 * and a fetch matches every one against its refspecs. This wrapper around the real transport
 * hands libgit2 only the refs the operation names (the base and the job's branches), so the
 * work after the advertisement does not grow with the remote's branches. Everything else is
 * the real transport's. */

struct filter_transport {
    git_transport parent;
    git_transport *real;
    struct dm_git_session *s;
    const git_remote_head **heads;
    size_t cap;
    int below;   /* 1 = the advertisement is filtered before libgit2 parses it (http, https) */
    int counted; /* the connection's refs are in the process totals */
    git_smart_subtransport_definition def;
};

static struct filter_transport *ft_of(git_transport *t)
{
    return (struct filter_transport *)t;
}

static int ft_connect(git_transport *t, const char *url, int direction,
                      const git_remote_connect_options *o)
{
    ft_of(t)->counted = 0;
    return ft_of(t)->real->connect(ft_of(t)->real, url, direction, o);
}

static int ft_set_connect_opts(git_transport *t, const git_remote_connect_options *o)
{
    return ft_of(t)->real->set_connect_opts(ft_of(t)->real, o);
}

static int ft_capabilities(unsigned int *caps, git_transport *t)
{
    return ft_of(t)->real->capabilities(caps, ft_of(t)->real);
}

static int ft_wanted(const struct dm_git_session *s, const char *name)
{
    for (size_t i = 0; i < s->nkeep; i++) {
        if (s->keep[i] && strcmp(s->keep[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- the advertisement filtered before libgit2 parses it (http and https) -------------------
 *
 * libgit2 1.5 parses every pkt-line of the advertisement, and clears the rest of its 64 KiB
 * receive buffer after each one: at 10,000 refs that alone is most of a connection's cost. Over
 * smart HTTP the advertisement is one GET response, so a subtransport around libgit2's own HTTP
 * one reads it whole and hands the smart protocol only the `# service=` line and its flush, the
 * first ref line (it carries the capabilities), the refs ft_wanted accepts (with their peeled
 * `^{}` lines) and the final flush. Anything it does not understand goes through unchanged, for
 * libgit2 to judge. The POSTs (negotiation, pack, push) carry no advertisement and pass through.
 * Credentials and certificate checks stay with libgit2's HTTP subtransport, which reads them
 * from the smart transport that owns it. */

#define ADV_CAP ((size_t)64 << 20)
#define ADV_CHUNK ((size_t)64 << 10)
#define PKT_MAX 65520

struct adv_subtransport {
    git_smart_subtransport parent;
    git_smart_subtransport *inner;
    struct dm_git_session *s;
};

struct adv_stream {
    git_smart_subtransport_stream parent;
    git_smart_subtransport_stream *inner;
    struct dm_git_session *s;
    int filled;
    char *data; /* the advertisement as served (filtered, or as received) */
    size_t len, pos;
};

/* The length of the pkt-line at d[pos..len) into *plen (0 = flush); -1 when malformed. */
static int pkt_len(const char *d, size_t len, size_t pos, size_t *plen)
{
    size_t v = 0;

    if (len - pos < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char c = d[pos + (size_t)i];
        int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (x < 0) {
            return -1;
        }
        v = v * 16 + (size_t)x;
    }
    if (v != 0 && (v < 4 || v > PKT_MAX || v > len - pos)) {
        return -1;
    }
    *plen = v;
    return 0;
}

/* A ref line's payload p[0..n): "<40 hex> SP name [NUL caps] [LF]". Copies the name into
 * name[cap] and returns 0, or -1 when it is not one. */
static int ref_line_name(const char *p, size_t n, char *name, size_t cap)
{
    size_t e = 41;

    if (n < 42 || p[40] != ' ') {
        return -1;
    }
    for (size_t i = 0; i < 40; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return -1;
        }
    }
    while (e < n && p[e] != '\0' && p[e] != '\n') {
        e++;
    }
    if (e == 41 || e - 41 >= cap) {
        return -1;
    }
    memcpy(name, p + 41, e - 41);
    name[e - 41] = '\0';
    return 0;
}

static int adv_wanted(const struct dm_git_session *s, char *name)
{
    size_t n = strlen(name);

    if (n > 3 && strcmp(name + n - 3, "^{}") == 0) {
        name[n - 3] = '\0';
    }
    return ft_wanted(s, name);
}

/* Rewrites a->data[0..a->len) as described above; leaves it as it is when it is malformed or
 * nothing is to be filtered. Counts the refs advertised. Returns -1 only when out of memory. */
static int adv_filter(struct adv_stream *a)
{
    const char *d = a->data;
    size_t len = a->len, pos = 0, plen, out = 0, refs = 0;
    char name[1024];
    char *f;

    /* "# service=..." and its flush */
    if (pkt_len(d, len, pos, &plen) < 0 || plen < 4 + 10 ||
        memcmp(d + pos + 4, "# service=", 10) != 0) {
        return 0;
    }
    pos += plen;
    if (pkt_len(d, len, pos, &plen) < 0 || plen != 0) {
        return 0;
    }
    pos += 4;
    if (!(f = malloc(len))) {
        git_error_set_oom();
        return -1;
    }
    memcpy(f, d, pos);
    out = pos;
    for (int first = 1;; first = 0) {
        if (pkt_len(d, len, pos, &plen) < 0) {
            goto verbatim;
        }
        if (plen == 0) {
            memcpy(f + out, d + pos, 4);
            out += 4;
            pos += 4;
            break;
        }
        if (ref_line_name(d + pos + 4, plen - 4, name, sizeof(name)) < 0) {
            goto verbatim;
        }
        if (!(first && strcmp(name, "capabilities^{}") == 0)) {
            refs++;
        }
        if (first || !a->s->keep || adv_wanted(a->s, name)) {
            memcpy(f + out, d + pos, plen);
            out += plen;
        }
        pos += plen;
    }
    if (pos != len) {
        goto verbatim;
    }
    a->s->advertised = refs;
    atomic_fetch_add(&refs_advertised, (unsigned long long)refs);
    if (a->s->keep) {
        free(a->data);
        a->data = f;
        a->len = out;
    } else {
        free(f);
    }
    return 0;
verbatim:
    a->s->adv_malformed = 1;
    free(f);
    return 0;
}

/* Reads the inner stream to its end into a->data. */
static int adv_fill(struct adv_stream *a)
{
    size_t cap = 0;

    for (;;) {
        size_t got = 0;
        int rc;
        if (cap - a->len < ADV_CHUNK) {
            char *d;
            if (cap >= ADV_CAP) {
                git_error_set(GIT_ERROR_NET, "the remote's ref advertisement exceeds %zu MiB",
                              ADV_CAP >> 20);
                return -1;
            }
            cap = cap ? cap * 2 : 2 * ADV_CHUNK;
            if (!(d = realloc(a->data, cap))) {
                git_error_set_oom();
                return -1;
            }
            a->data = d;
        }
        if ((rc = a->inner->read(a->inner, a->data + a->len, cap - a->len, &got)) < 0) {
            return rc;
        }
        if (got == 0) {
            return 0;
        }
        a->len += got;
    }
}

static int adv_read(git_smart_subtransport_stream *stream, char *buf, size_t size, size_t *nread)
{
    struct adv_stream *a = (struct adv_stream *)stream;
    size_t n;
    int rc;

    *nread = 0;
    if (!a->filled) {
        if ((rc = adv_fill(a)) < 0 || (rc = adv_filter(a)) < 0) {
            return rc;
        }
        a->filled = 1;
    }
    n = a->len - a->pos < size ? a->len - a->pos : size;
    memcpy(buf, a->data + a->pos, n);
    a->pos += n;
    *nread = n;
    return 0;
}

static int adv_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
    struct adv_stream *a = (struct adv_stream *)stream;
    return a->inner->write(a->inner, buf, len);
}

static void adv_stream_free(git_smart_subtransport_stream *stream)
{
    struct adv_stream *a = (struct adv_stream *)stream;
    a->inner->free(a->inner);
    free(a->data);
    free(a);
}

static int adv_action(git_smart_subtransport_stream **out, git_smart_subtransport *t,
                      const char *url, git_smart_service_t action)
{
    struct adv_subtransport *st = (struct adv_subtransport *)t;
    git_smart_subtransport_stream *inner = NULL;
    struct adv_stream *a;
    int rc = st->inner->action(&inner, st->inner, url, action);

    if (rc < 0 || (action != GIT_SERVICE_UPLOADPACK_LS && action != GIT_SERVICE_RECEIVEPACK_LS)) {
        *out = inner;
        return rc;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        inner->free(inner);
        git_error_set_oom();
        return -1;
    }
    a->inner = inner;
    a->s = st->s;
    a->parent.subtransport = t;
    a->parent.read = adv_read;
    a->parent.write = inner->write ? adv_write : NULL;
    a->parent.free = adv_stream_free;
    *out = &a->parent;
    return 0;
}

static int adv_close(git_smart_subtransport *t)
{
    struct adv_subtransport *st = (struct adv_subtransport *)t;
    return st->inner->close(st->inner);
}

static void adv_free(git_smart_subtransport *t)
{
    struct adv_subtransport *st = (struct adv_subtransport *)t;
    st->inner->free(st->inner);
    free(st);
}

/* The subtransport factory the smart transport calls (param = the session). */
static int adv_subtransport_new(git_smart_subtransport **out, git_transport *owner, void *param)
{
    struct adv_subtransport *st = calloc(1, sizeof(*st));
    int rc;

    if (!st) {
        git_error_set_oom();
        return -1;
    }
    if ((rc = git_smart_subtransport_http(&st->inner, owner, NULL)) < 0) {
        free(st);
        return rc;
    }
    st->s = param;
    st->parent.action = adv_action;
    st->parent.close = adv_close;
    st->parent.free = adv_free;
    *out = &st->parent;
    return 0;
}

static int ft_ls(const git_remote_head ***out, size_t *size, git_transport *t)
{
    struct filter_transport *f = ft_of(t);
    const git_remote_head **all = NULL;
    size_t n = 0, kept = 0;
    int rc = f->real->ls(&all, &n, f->real);

    if (rc >= 0) {
        f->s->adv_malformed = 0; /* libgit2 took it: later failures are not about it */
    }
    if (rc >= 0 && !f->counted) {
        f->counted = 1;
        f->s->parsed = n;
        atomic_fetch_add(&refs_parsed, (unsigned long long)n);
        if (!f->below) {
            atomic_fetch_add(&refs_advertised, (unsigned long long)n);
        }
    }
    if (rc < 0 || !f->s->keep) {
        *out = all;
        *size = n;
        return rc;
    }
    if (f->cap < f->s->nkeep + 1) {
        const git_remote_head **h = realloc(f->heads, (f->s->nkeep + 1) * sizeof(*h));
        if (!h) {
            git_error_set_oom();
            return -1;
        }
        f->heads = h;
        f->cap = f->s->nkeep + 1;
    }
    for (size_t i = 0; i < n && kept < f->cap; i++) {
        if (ft_wanted(f->s, all[i]->name)) {
            f->heads[kept++] = all[i];
        }
    }
    if (!f->below) {
        f->s->advertised = n;
    }
    *out = f->heads;
    *size = kept;
    return 0;
}

static int ft_push(git_transport *t, git_push *push)
{
    return ft_of(t)->real->push(ft_of(t)->real, push);
}

static int ft_negotiate_fetch(git_transport *t, git_repository *repo,
                              const git_remote_head *const *refs, size_t count)
{
    return ft_of(t)->real->negotiate_fetch(ft_of(t)->real, repo, refs, count);
}

static int ft_download_pack(git_transport *t, git_repository *repo, git_indexer_progress *stats)
{
    return ft_of(t)->real->download_pack(ft_of(t)->real, repo, stats);
}

static int ft_is_connected(git_transport *t)
{
    return ft_of(t)->real->is_connected(ft_of(t)->real);
}

static void ft_cancel(git_transport *t)
{
    ft_of(t)->real->cancel(ft_of(t)->real);
}

static int ft_close(git_transport *t)
{
    return ft_of(t)->real->close(ft_of(t)->real);
}

static void ft_free(git_transport *t)
{
    struct filter_transport *f = ft_of(t);
    f->real->free(f->real);
    free(f->heads);
    free(f);
}

static int on_transport(git_transport **out, git_remote *owner, void *payload)
{
    struct filter_transport *f = calloc(1, sizeof(*f));
    const char *url;
    int rc;

    if (!f) {
        git_error_set_oom();
        return -1;
    }
    url = git_remote_url(owner);
    f->below = url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
    if (f->below) {
        f->def.callback = adv_subtransport_new;
        f->def.rpc = 1;
        f->def.param = payload;
        rc = git_transport_smart(&f->real, owner, &f->def);
    } else {
        rc = git_transport_new(&f->real, owner, url);
    }
    if (rc < 0) {
        free(f);
        return rc;
    }
    f->s = payload;
    f->parent.version = GIT_TRANSPORT_VERSION;
    f->parent.connect = ft_connect;
    f->parent.set_connect_opts = ft_set_connect_opts;
    f->parent.capabilities = ft_capabilities;
    f->parent.ls = ft_ls;
    f->parent.push = ft_push;
    f->parent.negotiate_fetch = ft_negotiate_fetch;
    f->parent.download_pack = ft_download_pack;
    f->parent.is_connected = ft_is_connected;
    f->parent.cancel = ft_cancel;
    f->parent.close = ft_close;
    f->parent.free = ft_free;
    *out = &f->parent;
    return 0;
}

void dm_git_session_callbacks(struct dm_git_session *s, git_remote_callbacks *cb)
{
    cb->transport = on_transport;
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
int dm_git_remote_new(git_remote **out, git_repository *r, const char *url)
{
    git_remote_create_options co;

    git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    co.repository = r;
    co.name = NULL;
    co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    return git_remote_create_with_opts(out, url, &co);
}

void dm_git_remote_close(git_remote *remote)
{
    if (remote) {
        git_remote_disconnect(remote);
        git_remote_free(remote);
    }
}

void dm_git_session_said(const struct dm_git_session *s, char *out, size_t outlen)
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
    dm_git_scrub(out, s->o->token);
}

/* Converts a libgit2 failure of `what` into err. */
int dm_git_fail(struct dm_error *err, struct dm_git_session *s, int gitrc, const char *what)
{
    const git_error *e = git_error_last();
    char msg[400];
    int code = DM_ERR_IO;

    snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown libgit2 error");
    if (s) {
        dm_git_scrub(msg, s->o->token);
    }
    if (s && (s->cancelled || dm_git_cancelled(s->o))) {
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
    if (s && s->adv_malformed) {
        /* libgit2 judged what the filter passed on unchanged; its message alone may not say
         * what was wrong (a stale one from an earlier call, at worst). A proxy that cut the
         * answer short is worth a retry. */
        return dm_error_set(err, code == DM_ERR_IO ? DM_ERR_TRANSIENT : code,
                            "%s: the remote's ref advertisement is malformed (libgit2: %s)", what,
                            msg);
    }
    return dm_error_set(err, code, "%s: %s", what, msg);
}
