/*
 * planner: the optional LLM planner's pure half — the request that asks a model for the file
 * plan (from the parsed spec, the base branch's file tree and, when the base was read
 * (opts->repo), its detected stack, its conventions and the rules' plan in them), its
 * response_format, and the
 * parser that turns the model's JSON into a struct dm_plan (plan.h) that passes the same path
 * rules and limits as generated files (safety.h). When the model is not configured, the call
 * fails or dm_planner_parse() refuses the reply, the caller uses the rule planner
 * (dm_plan_build()).
 *
 * The plan it makes has dm_plan_build()'s title, branch, PR title and first item (the spec
 * document, kind spec), followed by the model's files in the model's order. Every proposed file
 * is checked:
 *   - an object with string "path", "kind" and "description";
 *   - kind route, component, migration, test, edit or file (ASCII case-insensitive; "spec" is
 *     refused: the spec document is always added by the planner itself); a migration's path
 *     ends in ".sql" (or ".js"/".ts" when the base's database is Knex);
 *   - an edit names a file of the base's tree (opts->repo; without it no edit is accepted); a
 *     file of another kind at a path the base has becomes an edit of it;
 *   - the path passes dm_safety_check_path() with the caller's policy (relative, no "..",
 *     no ".git", under an allowed root, …);
 *   - the description is not blank (control characters become spaces, cut to
 *     DM_PLANNER_DESC_MAX bytes with "…").
 * Optional members, never a reason to refuse: "exports" and "usage" (strings, cleaned to one
 * line; empty: none) and "covers" (only the strings that are exactly the text of a spec item are
 * kept, once each; at most DM_PLAN_MAX_COVERS). plan->stack is dm_stack_describe() of
 * opts->repo's stack, or NULL. Then every spec item that no file covers is covered through
 * dm_plan_cover() (plan.h), so that the PR's checklist maps every item.
 * A file failing a check is INVALID. Duplicates (a path proposed twice, or the spec document's
 * path) are dropped, the later one; files past the policy's file limit (max_files, counting the
 * spec document) are dropped.
 * Policy for invalid files: when more than half of the proposed files are invalid, the whole
 * reply is refused (DM_ERR_INVALID: the model did not follow the rules, so its plan is not
 * trusted); otherwise the invalid ones are dropped and each drop is named in the notes.
 *
 * Pure (cJSON, the safety path check); no I/O, no globals; any thread.
 */
#ifndef DREAM_PLANNER_H
#define DREAM_PLANNER_H

#include <stddef.h>

#include "dream/core/error.h"
#include "dream/domain/plan.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

struct dm_repo;

/* The planner call. DREAM_MODEL (the generation model) is the intended model. */
#define DM_PLANNER_MAX_TOKENS 4096
#define DM_PLANNER_TEMPERATURE 0.2

#define DM_PLANNER_TREE_PATHS 2000        /* base-branch paths listed in the prompt */
#define DM_PLANNER_TREE_BYTES (64 * 1024) /* bytes of the listed tree */
#define DM_PLANNER_OVERVIEW_CHARS 2000
#define DM_PLANNER_ITEMS 50               /* items listed per spec list */
#define DM_PLANNER_ITEM_CHARS 300         /* characters of an item's text, and its context */
#define DM_PLANNER_REPLY_MAX (256 * 1024) /* bytes of a reply dm_planner_parse() accepts */
#define DM_PLANNER_DESC_MAX 2000          /* bytes of a description kept */
#define DM_PLANNER_NOTES_MAX 4000         /* bytes of the notes (then "…") */
#define DM_PLANNER_RULES_ITEMS 100        /* files of the rules' plan shown in the prompt */

/* Options; borrowed for each call. Initialise with DM_PLANNER_OPTS_INIT. */
struct dm_planner_opts {
    const char *branch_prefix;             /* NULL = DM_PLAN_DEFAULT_PREFIX (as dm_plan_build) */
    const struct dm_safety_policy *policy; /* NULL = the defaults (roots, max_files) */
    int allow_workflows;                   /* passed to dm_safety_check_path() */
    const struct dm_repo *repo; /* the base of the change (repo.h), or NULL when not read: the
                                   prompt shows its stack, conventions and the rules' plan in
                                   them; the parser allows edits of its files only */
};
#define DM_PLANNER_OPTS_INIT                                                                       \
    {                                                                                              \
        NULL, NULL, 0, NULL                                                                        \
    }

/* The planner's messages. Both malloc'd, owned by the struct. */
struct dm_planner_prompt {
    char *system;
    char *user;
    size_t tree_listed;  /* tree paths put in the user message */
    size_t tree_skipped; /* tree paths left out: caps, or control bytes / invalid UTF-8 */
};

/*
 * Builds the planner's messages. system: the rules (kinds and where they go, the allowed roots
 * from opts->policy, at most max_files - 1 files, no spec document, the JSON answer). user:
 *   "Spec: <title>\n"
 *   ["\nOverview:\n" <first DM_PLANNER_OVERVIEW_CHARS characters>"\n"]
 *   ["\nRequirements:\n" items] ["\nAPI routes:\n" items] ["\nDatabase changes:\n" items]
 *   ["\nUI components:\n" items]            (each: first DM_PLANNER_ITEMS as "- <text>", then
 *                                            its context indented two spaces; "- … and N more")
 *   "\nRepository files on the base branch (N):\n" <path per line> ["… and N more\n"]  or
 *   "\nRepository files on the base branch: none (empty repository).\n"
 *   [with opts->repo: "\nDetected stack: <dm_stack_describe>\n\nConventions of this
 *    repository:\n" "- routes: <dir>\n", "- components: <dir> (PascalCase|kebab-case file
 *    names)\n", "- migrations: <dir> (numbered, W digits; the highest is N | timestamped; the
 *    latest is N)\n", "- tests: <dir>\n" or "- tests: next to the module they test\n" (with a
 *    test runner), "- entry (mounts the route modules): <path>\n", "- components' index
 *    (re-exports them): <path>\n" (each when known), then "\nA plan in these conventions
 *    (follow it unless the spec needs otherwise):\n" and "- <kind> <path>[: exports <exports>]
 *    [; <usage>]\n" per file of dm_plan_build(spec, repo) but the spec document (at most
 *    DM_PLANNER_RULES_ITEMS, then "- … and N more\n")]
 *   "\nPropose the files of this change as JSON.\n"
 * The tree (tree[0..n_tree), may be NULL with n_tree 0; NULL with opts->repo: the repo's tree) is
 * listed in the given order, at most
 * DM_PLANNER_TREE_PATHS paths and DM_PLANNER_TREE_BYTES bytes; paths with control bytes or
 * invalid UTF-8 are skipped. opts may be NULL (defaults). *out is the caller's
 * (dm_planner_prompt_free()). Errors: DM_ERR_INVALID (spec NULL), DM_ERR_NOMEM; *out is NULL.
 */
int dm_planner_prompt_build(struct dm_planner_prompt **out, const struct dm_spec *spec,
                            const char *const *tree, size_t n_tree,
                            const struct dm_planner_opts *opts, struct dm_error *err);

/* Frees a prompt; NULL is fine. */
void dm_planner_prompt_free(struct dm_planner_prompt *p);

/*
 * The planner request's response_format (OpenRouter structured outputs):
 *   {"type":"json_schema","json_schema":{"name":"plan","strict":true,"schema":{"type":"object",
 *    "properties":{"files":{"type":"array","items":{"type":"object","properties":{"path":
 *    {"type":"string"},"kind":{"type":"string","enum":["route","component","migration",
 *    "file","test","edit"]},"description":{"type":"string"},"exports":{"type":"string"},
 *    "usage":{"type":"string"},"covers":{"type":"array","items":{"type":"string"}}},
 *    "required":["path","kind","description","exports","usage","covers"],
 *    "additionalProperties":false}}},"required":["files"],"additionalProperties":false}}}
 * (with a description per member). Static, valid JSON.
 */
const char *dm_planner_response_format(void);

/*
 * Parses the model's reply (len bytes, need not be NUL-terminated) into a plan for spec
 * (checks in the header comment). Accepted: one JSON object {"files":[…]} with optional white
 * space around it, or that object as the only content of one fenced code block (``` or ~~~).
 * Unknown members are ignored.
 * On success *out is the caller's (dm_plan_free()): items[0] is the spec document exactly as
 * dm_plan_build() makes it, then at least one proposed file. notes (may be NULL) receives a
 * malloc'd text naming each dropped file and why ("dropped 2 of 7 proposed files: files[0]
 * \"../x.ts\": must not contain a \"..\" segment; files[3] \"src/a.ts\": duplicate path"; at
 * most DM_PLANNER_NOTES_MAX bytes, then "; …"), or NULL when none was dropped; free() it.
 * Errors (then *out and *notes are NULL): DM_ERR_INVALID — empty, too long, not UTF-8, prose
 * around the JSON, malformed or truncated JSON, no "files" array, no file proposed, more than
 * half of the proposed files invalid, none left after dropping (the caller falls back to
 * dm_plan_build()); also dm_plan_build()'s own errors (an invalid branch name: DM_ERR_INVALID,
 * which the rule planner would hit too), DM_ERR_NOMEM.
 */
int dm_planner_parse(struct dm_plan **out, char **notes, const char *reply, size_t len,
                     const struct dm_spec *spec, const struct dm_planner_opts *opts,
                     struct dm_error *err);

#endif
