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
};

/* The fields in binding order, defaults applied. */
static size_t bound_fields(struct bound_field *f, const struct dm_jobreq *job)
{
    size_t n = 0;

    f[n++] = (struct bound_field){"jobId", job->job_id};
    f[n++] = (struct bound_field){"userId", job->user_id};
    f[n++] = (struct bound_field){"repoOwner", job->repo_owner};
    f[n++] = (struct bound_field){"repoName", job->repo_name};
    f[n++] = (struct bound_field){"baseBranch", job->base_branch ? job->base_branch
                                                                 : DM_JOBREQ_BASE_BRANCH_DEFAULT};
    f[n++] = (struct bound_field){
        "branchPrefix", job->branch_prefix ? job->branch_prefix : DM_JOBREQ_BRANCH_PREFIX_DEFAULT};
    f[n++] = (struct bound_field){"specMarkdown", job->spec_markdown};
    f[n++] = (struct bound_field){"callbackUrl", job->callback_url};
    for (size_t i = 0; i < n; i++) {
        if (!f[i].value) {
            f[i].value = "";
        }
    }
    return n;
}

char *dm_jobreq_binding_text(const struct dm_jobreq *job, size_t *len_out)
{
    struct bound_field f[8];
    size_t n = bound_fields(f, job);
    size_t cap = sizeof(DM_JOBREQ_BINDING_VERSION) + 1;
    size_t len = 0;
    char *out;

    for (size_t i = 0; i < n; i++) {
        /* name, space, up to 20 digits, two newlines, the value */
        cap += strlen(f[i].name) + 1 + 20 + 2 + strlen(f[i].value);
    }
    out = malloc(cap + 1);
    if (!out) {
        return NULL;
    }
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
