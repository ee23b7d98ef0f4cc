/*
 * forge_proto: GitHub's REST wire format, without I/O: what we send (owner and repository
 * names, the capped title and body of a pull request) and what it answers (pull requests,
 * error texts). Used by the GitHub client (dream/io/forge.h), and by the git module
 * (dream/io/git.h) for the names in remote URLs.
 *
 * Pure; no state; any thread.
 */
#ifndef DREAM_FORGE_PROTO_H
#define DREAM_FORGE_PROTO_H

#include <stddef.h>

/* Longest owner or repository name (characters). */
#define DM_FORGE_NAME_MAX 100

/* Longest pull request body sent, in characters (code points); longer bodies are cut at a
 * character boundary and end with a note saying so. GitHub refuses 65,536 and more. */
#define DM_FORGE_BODY_MAX 65000
/* Longest title sent, in characters (after the "[Dream] " prefix). */
#define DM_FORGE_TITLE_MAX 256

/* Prefix of every pull request title. */
#define DM_FORGE_TITLE_PREFIX "[Dream] "

/* NULL when s is a usable owner or repository name: 1 to DM_FORGE_NAME_MAX characters of
 * [A-Za-z0-9._-], not "." or "..". Else a short static reason, checked in this order:
 * "must match ^[a-zA-Z0-9._-]+$" (also for NULL and ""), "must not be \".\" or \"..\"",
 * "must be at most 100 characters" (the texts jobreq reports for repoOwner and repoName). */
const char *dm_forge_name_problem(const char *s);

/* 1 when dm_forge_name_problem(s) is NULL, else 0. */
int dm_forge_name_valid(const char *s);

/* Copies body into a newly allocated string of at most max_chars characters (UTF-8 code
 * points; a 4-byte character counts twice, as GitHub counts UTF-16 units), cutting at a
 * character boundary and ending with a truncation note when it had to cut. NULL body gives "".
 * Returns NULL on allocation failure; the caller frees the result. */
char *dm_forge_cap_body(const char *body, size_t max_chars);

/* The title sent for a spec title: DM_FORGE_TITLE_PREFIX + title (the prefix is not doubled
 * when title already starts with it), control characters replaced by spaces, capped at
 * DM_FORGE_TITLE_MAX characters without a note. Returns NULL on allocation failure; the caller
 * frees the result. */
char *dm_forge_title(const char *title);

/* ---- answers ---- */

struct dm_forge_pr {
    long number;        /* pull request number */
    char html_url[512]; /* https://github.com/o/r/pull/N */
    char head_sha[64];  /* head.sha as GitHub reported it (may be empty) */
    int created;        /* 1 = this call opened it; 0 = an open one was found */
    int draft;          /* as reported */
    int requests;       /* HTTP requests this call sent */
    long http_status;   /* of the last response, 0 if none */
};

/* From GitHub's answer to GET .../pulls (a JSON array): the first pull request that is open,
 * with head.ref == head_ref and base.ref == base_ref, and has a number and an html_url. Returns
 * 1 and fills pr's number, html_url, head_sha and draft (the other fields are left alone), 0
 * when there is none, DM_ERR_INVALID when body is not a JSON array. body may be NULL (len 0). */
int dm_forge_pull_find(struct dm_forge_pr *pr, const char *body, size_t len, const char *head_ref,
                       const char *base_ref);

/* From GitHub's answer to POST .../pulls (a pull request object): fills pr as dm_forge_pull_find
 * does. Returns 0, or DM_ERR_INVALID (pr untouched) when it is not a pull request. */
int dm_forge_pull_read(struct dm_forge_pr *pr, const char *body, size_t len);

/* GitHub's error text for a failed request, on one line in out (outlen > 0 bytes): "message",
 * then each errors[].message (or "field code"), joined with ": "; the first 200 bytes of the
 * body when it has none of these; control characters replaced by spaces. */
void dm_forge_error_text(const char *body, size_t len, char *out, size_t outlen);

/* ---- GitHub App and pull request extras ---- */

/* From the answer to POST /app/installations/{id}/access_tokens ({"token":"ghs_…",
 * "expires_at":"2016-07-11T22:14:10Z",...}): *token (caller frees with dm_secret_free) and
 * *expires_s (Unix seconds). Returns 0 or DM_ERR_INVALID (no token, or expires_at is not an
 * RFC 3339 UTC time). */
int dm_forge_token_read(char **token, long long *expires_s, const char *body, size_t len);

/* From the answer to GET /repos/{o}/{r}/installation ({"id":1,...}): the installation id.
 * Returns 0 or DM_ERR_INVALID. */
int dm_forge_installation_read(long long *id, const char *body, size_t len);

/* "2016-07-11T22:14:10Z" (fractions allowed, Z only) as Unix seconds; -1 if it does not parse. */
long long dm_forge_time_parse(const char *s);

/* The body of POST .../issues/{n}/labels: {"labels":[...]}. NULL on allocation failure. */
char *dm_forge_labels_json(const char *const *labels, size_t n);

/* The body of POST .../pulls/{n}/requested_reviewers: {"reviewers":[...],"team_reviewers":[...]}
 * (an empty list is left out). NULL on allocation failure. */
char *dm_forge_reviewers_json(const char *const *users, size_t n_users, const char *const *teams,
                              size_t n_teams);

#define DM_FORGE_STATUS_DESC_MAX 140 /* GitHub refuses a status description over 140 characters */

/* The body of POST .../statuses/{sha}: {"state","context","description"(,"target_url")}; the
 * description is cleaned to one line and capped at DM_FORGE_STATUS_DESC_MAX bytes (a cut one ends
 * in "…"). target_url may be NULL. NULL on allocation failure. */
char *dm_forge_status_json(const char *state, const char *context, const char *description,
                           const char *target_url);

#endif
