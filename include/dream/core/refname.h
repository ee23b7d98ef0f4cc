/*
 * refname: git reference-name validity (the rules of `git check-ref-format --branch`), for
 * baseBranch, branchPrefix and the branches dreamd creates.
 *
 * Pure, no state; safe on any thread.
 */
#ifndef DREAM_REFNAME_H
#define DREAM_REFNAME_H

/* Longest branch name accepted (bytes). git itself has no limit; file systems and forges do. */
#define DM_REFNAME_MAX 255

/* Returns NULL when name is a valid branch name, else a short static reason such as
 * "must not contain \"..\"" (never quotes the name). The rules, as `git check-ref-format`
 * with one-level names allowed:
 *   not empty, at most DM_REFNAME_MAX bytes; no byte < 0x20, 0x7f, space, `~ ^ : ? * [ \`;
 *   no "..", "@{", "//"; not "@"; does not start with '/' or '-', does not end with '/' or '.';
 *   no component starts with '.' or ends with ".lock".
 * name may be NULL (then "must not be empty"). */
const char *dm_refname_problem(const char *name);

/* 1 when name is a valid branch name (dm_refname_problem(name) == NULL), else 0. */
int dm_refname_valid(const char *name);

#endif
