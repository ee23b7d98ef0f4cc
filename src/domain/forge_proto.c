/*
 * forge_proto: GitHub's REST wire format without I/O: names, titles and bodies we send, pull
 * requests and errors it answers (see include/dream/domain/forge_proto.h). Pure; any thread.
 */
#include "dream/domain/forge_proto.h"

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/core/secret.h"
#include "dream/core/text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- GitHub App and pull request extras ---- */

long long dm_forge_time_parse(const char *s)
{
    struct tm tm;
    const char *p;
    int used = 0;

    if (!s) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19) {
        return -1;
    }
    p = s + used;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
        }
    }
    if (strcmp(p, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

int dm_forge_token_read(char **token, long long *expires_s, const char *body, size_t len)
{
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expires_at");
    long long at = cJSON_IsString(e) ? dm_forge_time_parse(e->valuestring) : -1;
    int rc = DM_ERR_INVALID;

    *token = NULL;
    if (cJSON_IsString(t) && *t->valuestring && !strpbrk(t->valuestring, "\r\n") && at > 0 &&
        (*token = strdup(t->valuestring))) {
        *expires_s = at;
        rc = 0;
    }
    if (cJSON_IsString(t)) {
        dm_secret_wipe(t->valuestring, strlen(t->valuestring));
    }
    cJSON_Delete(j);
    return rc;
}

int dm_forge_installation_read(long long *id, const char *body, size_t len)
{
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, "id");
    int rc = DM_ERR_INVALID;

    if (cJSON_IsNumber(i) && i->valuedouble >= 1 && i->valuedouble < 9e15) {
        *id = (long long)i->valuedouble;
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

static char *print_free(cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

static int add_list(cJSON *o, const char *name, const char *const *items, size_t n)
{
    cJSON *a;
    if (n == 0) {
        return 1;
    }
    a = cJSON_AddArrayToObject(o, name);
    for (size_t i = 0; a && i < n; i++) {
        cJSON *s = cJSON_CreateString(items[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return 0;
        }
    }
    return a != NULL;
}

char *dm_forge_labels_json(const char *const *labels, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !(n ? add_list(o, "labels", labels, n) : !!cJSON_AddArrayToObject(o, "labels"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o);
}

char *dm_forge_reviewers_json(const char *const *users, size_t n_users, const char *const *teams,
                              size_t n_teams)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !add_list(o, "reviewers", users, n_users) ||
        !add_list(o, "team_reviewers", teams, n_teams)) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o);
}

char *dm_forge_status_json(const char *state, const char *context, const char *description,
                           const char *target_url)
{
    cJSON *o = cJSON_CreateObject();
    char *desc = dm_text_clean_line(description ? description : "", DM_FORGE_STATUS_DESC_MAX);

    if (!o || !desc || !cJSON_AddStringToObject(o, "state", state) ||
        !cJSON_AddStringToObject(o, "context", context) ||
        !cJSON_AddStringToObject(o, "description", desc) ||
        (target_url && *target_url && !cJSON_AddStringToObject(o, "target_url", target_url))) {
        cJSON_Delete(o);
        free(desc);
        return NULL;
    }
    free(desc);
    return print_free(o);
}
