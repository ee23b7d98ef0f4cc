/*
 * forge_proto: GitHub's REST wire format without I/O: names, titles and bodies we send, pull
 * requests and errors it answers (see include/dream/domain/forge_proto.h). Pure; any thread.
 */
#include "dream/domain/forge_proto.h"

#include "dream/core/buf.h"
#include "dream/core/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUNC_NOTE "\n\n_(truncated by dreamd: the full text is longer than GitHub allows)_\n"

const char *dm_forge_name_problem(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    /* The order of the checks is jobreq's, so its messages can come from here. */
    if (n == 0 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
        return "must match ^[a-zA-Z0-9._-]+$";
    }
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return "must not be \".\" or \"..\"";
    }
    if (n > DM_FORGE_NAME_MAX) {
        return "must be at most 100 characters";
    }
    return NULL;
}

int dm_forge_name_valid(const char *s)
{
    return dm_forge_name_problem(s) == NULL;
}

/* Characters as GitHub counts them (astral characters count twice, as in UTF-16). */
static size_t char_weight(unsigned char lead)
{
    return lead >= 0xF0 ? 2 : 1;
}

static char *cap_text(const char *s, size_t max_chars, const char *note)
{
    size_t chars = 0, i;
    size_t note_chars = note ? strlen(note) : 0;
    size_t keep, cut = 0;
    struct dm_buf b;

    if (!s) {
        return strdup("");
    }
    for (i = 0; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            chars += char_weight((unsigned char)s[i]);
        }
    }
    if (chars <= max_chars) {
        return strdup(s);
    }
    keep = max_chars > note_chars ? max_chars - note_chars : 0;
    chars = 0;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80) {
            if (chars + char_weight(c) > keep) {
                break;
            }
            chars += char_weight(c);
        }
        cut = i + 1;
    }
    /* cut now ends after a whole character: the next byte (if any) is a lead byte. */
    while (s[cut] && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut++;
    }
    dm_buf_init(&b, 0);
    if (dm_buf_append(&b, s, cut) < 0 || (note && dm_buf_puts(&b, note) < 0)) {
        dm_buf_free(&b);
        return NULL;
    }
    return dm_buf_detach(&b);
}

char *dm_forge_cap_body(const char *body, size_t max_chars)
{
    return cap_text(body, max_chars, TRUNC_NOTE);
}

/* "[Dream] <title>", one line, capped. */
char *dm_forge_title(const char *title)
{
    char *t;
    char *capped;

    if (asprintf(&t, "%s%s",
                 strncmp(title, DM_FORGE_TITLE_PREFIX, strlen(DM_FORGE_TITLE_PREFIX)) == 0
                     ? ""
                     : DM_FORGE_TITLE_PREFIX,
                 title) < 0) {
        return NULL;
    }
    for (char *p = t; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    capped = cap_text(t, DM_FORGE_TITLE_MAX, NULL);
    free(t);
    return capped;
}

/* ---- answers ---- */

/* 1 when the pull request object p is open with head.ref head and base.ref base. */
static int pull_matches(const cJSON *p, const char *head_ref, const char *base_ref)
{
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(p, "state");
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(p, "head");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(p, "base");
    const cJSON *href = cJSON_GetObjectItemCaseSensitive(head, "ref");
    const cJSON *bref = cJSON_GetObjectItemCaseSensitive(base, "ref");

    return cJSON_IsString(state) && strcmp(state->valuestring, "open") == 0 &&
           cJSON_IsString(href) && strcmp(href->valuestring, head_ref) == 0 &&
           cJSON_IsString(bref) && strcmp(bref->valuestring, base_ref) == 0;
}

/* Fills pr from a pull request object (nothing is written when it is not one). */
static int read_pull(const cJSON *p, struct dm_forge_pr *pr)
{
    const cJSON *num = cJSON_GetObjectItemCaseSensitive(p, "number");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(p, "html_url");
    const cJSON *draft = cJSON_GetObjectItemCaseSensitive(p, "draft");
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(p, "head");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(head, "sha");

    if (!cJSON_IsNumber(num) || num->valuedouble < 1 || !cJSON_IsString(url)) {
        return DM_ERR_INVALID;
    }
    pr->number = (long)num->valuedouble;
    snprintf(pr->html_url, sizeof(pr->html_url), "%s", url->valuestring);
    snprintf(pr->head_sha, sizeof(pr->head_sha), "%s", cJSON_IsString(sha) ? sha->valuestring : "");
    pr->draft = cJSON_IsTrue(draft);
    return 0;
}

int dm_forge_pull_find(struct dm_forge_pr *pr, const char *body, size_t len, const char *head_ref,
                       const char *base_ref)
{
    cJSON *arr = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    const cJSON *p;
    int found = 0;

    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return DM_ERR_INVALID;
    }
    cJSON_ArrayForEach(p, arr)
    {
        if (pull_matches(p, head_ref, base_ref) && read_pull(p, pr) == 0) {
            found = 1;
            break;
        }
    }
    cJSON_Delete(arr);
    return found;
}

int dm_forge_pull_read(struct dm_forge_pr *pr, const char *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    int rc = read_pull(j, pr);

    cJSON_Delete(j);
    return rc;
}

void dm_forge_error_text(const char *body, size_t len, char *out, size_t outlen)
{
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
    const cJSON *e;
    size_t pos = 0;

    out[0] = '\0';
    if (cJSON_IsString(m)) {
        pos += (size_t)snprintf(out + pos, outlen - pos, "%s", m->valuestring);
    }
    cJSON_ArrayForEach(e, errors)
    {
        const cJSON *em = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *field = cJSON_GetObjectItemCaseSensitive(e, "field");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        if (pos >= outlen - 1) {
            break;
        }
        if (cJSON_IsString(em)) {
            pos +=
                (size_t)snprintf(out + pos, outlen - pos, "%s%s", pos ? ": " : "", em->valuestring);
        } else if (cJSON_IsString(field) && cJSON_IsString(code)) {
            pos += (size_t)snprintf(out + pos, outlen - pos, "%s%s %s", pos ? ": " : "",
                                    field->valuestring, code->valuestring);
        }
    }
    if (pos == 0 && body && len) {
        snprintf(out, outlen, "%.*s", (int)(len < 200 ? len : 200), body);
    }
    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    cJSON_Delete(j);
}
