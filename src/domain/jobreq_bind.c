/*
 * jobreq_bind: the canonical binding text of a job and its SHA-256, which a signed job's token
 * carries as `dreamJobSha256` (see include/dream/domain/jobreq.h). Pure (libcrypto's SHA-256);
 * owns nothing beyond the text it returns; any thread.
 */
#include "dream/domain/jobreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct bound_field {
    const char *name;
    const char *value;
    char *owned; /* value, when built here (freed by the caller) */
};

#define BOUND_MAX 13

/* A list as one value: its items, each followed by a newline (items hold no control
 * characters, so this is unambiguous; [] is ""). NULL when out of memory. */
static char *join_list(char *const *items, size_t n)
{
    size_t cap = 1, len = 0;
    char *out;

    for (size_t i = 0; i < n; i++) {
        cap += strlen(items[i]) + 1;
    }
    if (!(out = malloc(cap))) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        memcpy(out + len, items[i], l);
        len += l;
        out[len++] = '\n';
    }
    out[len] = '\0';
    return out;
}

/* The fields in binding order, defaults applied: the eight that every job binds, then the pull
 * request's options, each only when the job carries it (so the text of a job without them is
 * what it always was, and adding one to a signed entry breaks its hash). Returns the count, or
 * 0 when out of memory (everything freed). */
static size_t bound_fields(struct bound_field *f, const struct dm_jobreq *job)
{
    size_t n = 0;
    struct {
        const char *name;
        char *const *items;
        size_t n;
        int set;
    } lists[3] = {
        {"labels", job->labels, job->n_labels, job->labels_set},
        {"reviewers", job->reviewers, job->n_reviewers, job->reviewers_set},
        {"teamReviewers", job->team_reviewers, job->n_team_reviewers, job->team_reviewers_set},
    };

    memset(f, 0, sizeof(*f) * BOUND_MAX);
    f[n++] = (struct bound_field){"jobId", job->job_id, NULL};
    f[n++] = (struct bound_field){"userId", job->user_id, NULL};
    f[n++] = (struct bound_field){"repoOwner", job->repo_owner, NULL};
    f[n++] = (struct bound_field){"repoName", job->repo_name, NULL};
    f[n++] = (struct bound_field){
        "baseBranch", job->base_branch ? job->base_branch : DM_JOBREQ_BASE_BRANCH_DEFAULT, NULL};
    f[n++] = (struct bound_field){
        "branchPrefix", job->branch_prefix ? job->branch_prefix : DM_JOBREQ_BRANCH_PREFIX_DEFAULT,
        NULL};
    f[n++] = (struct bound_field){"specMarkdown", job->spec_markdown, NULL};
    f[n++] = (struct bound_field){"callbackUrl", job->callback_url, NULL};
    if (job->draft >= 0) {
        f[n++] = (struct bound_field){"draft", job->draft ? "true" : "false", NULL};
    }
    for (size_t i = 0; i < 3; i++) {
        if (!lists[i].set) {
            continue;
        }
        if (!(f[n].owned = join_list(lists[i].items, lists[i].n))) {
            for (size_t j = 0; j < n; j++) {
                free(f[j].owned);
            }
            return 0;
        }
        f[n].name = lists[i].name;
        f[n].value = f[n].owned;
        n++;
    }
    if (job->spec_url) {
        f[n++] = (struct bound_field){"specUrl", job->spec_url, NULL};
    }
    for (size_t i = 0; i < n; i++) {
        if (!f[i].value) {
            f[i].value = "";
        }
    }
    return n;
}

char *dm_jobreq_binding_text(const struct dm_jobreq *job, size_t *len_out)
{
    struct bound_field f[BOUND_MAX];
    size_t n = bound_fields(f, job);
    size_t cap = sizeof(DM_JOBREQ_BINDING_VERSION) + 1;
    size_t len = 0;
    char *out;

    if (n == 0) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        /* name, space, up to 20 digits, two newlines, the value */
        cap += strlen(f[i].name) + 1 + 20 + 2 + strlen(f[i].value);
    }
    out = malloc(cap + 1);
    if (out) {
        len += (size_t)snprintf(out, cap + 1, "%s\n", DM_JOBREQ_BINDING_VERSION);
        for (size_t i = 0; i < n; i++) {
            size_t vlen = strlen(f[i].value);
            len += (size_t)snprintf(out + len, cap + 1 - len, "%s %zu\n", f[i].name, vlen);
            memcpy(out + len, f[i].value, vlen);
            len += vlen;
            out[len++] = '\n';
        }
        out[len] = '\0';
        if (len_out) {
            *len_out = len;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(f[i].owned);
    }
    return out;
}

int dm_jobreq_binding_sha256(char *out, size_t outlen, const struct dm_jobreq *job)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t len = 0;
    char *text;
    int ok;

    if (outlen < DM_AUTH_SHA256_HEX_LEN + 1) {
        return DM_ERR_LIMIT;
    }
    text = dm_jobreq_binding_text(job, &len);
    if (!text) {
        return DM_ERR_NOMEM;
    }
    ok = EVP_Digest(text, len, md, &md_len, EVP_sha256(), NULL) &&
         md_len * 2 == DM_AUTH_SHA256_HEX_LEN;
    free(text);
    if (!ok) {
        return DM_ERR_NOMEM;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[DM_AUTH_SHA256_HEX_LEN] = '\0';
    return 0;
}
