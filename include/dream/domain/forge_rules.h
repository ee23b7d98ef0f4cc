/*
 * forge_rules: what GitHub accepts from us, without I/O: owner and repository names, and the
 * capped title and body of a pull request. Used by the GitHub client (dream/io/forge.h) and the
 * git module (dream/io/git.h), which builds remote URLs from the same names.
 *
 * Pure; no state; any thread.
 */
#ifndef DREAM_FORGE_RULES_H
#define DREAM_FORGE_RULES_H

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

/* 1 when s is a usable owner or repository name: 1 to DM_FORGE_NAME_MAX characters of
 * [A-Za-z0-9._-], not "." or "..". NULL gives 0. */
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

#endif
