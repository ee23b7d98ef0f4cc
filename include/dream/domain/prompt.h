/*
 * prompt: the chat messages that ask a model for one file of the plan (a new file, or the whole
 * new version of an existing file: an edit), the repair message after a validator or the edit
 * guard refused a file and the revise message after a reviewer commented on it. Turning a
 * model's reply into file content is reply.h's job.
 *
 * Prompt texts, per stack. A prompt set holds nine texts for each of three stacks, chosen from
 * the stack detected in the target repository (dm_prompt_stack_of()):
 *   hono     Hono 4 routes, React 19 components, SQLite/D1 SQL migrations, strict TypeScript
 *            (today's stack; also when no base was read or nothing was recognised);
 *   express  Express routers (express.Router), React components, Knex migrations and queries;
 *   generic  any other recognised stack (Fastify, Next.js, Vue, Prisma, ...): follow the
 *            repository's own framework and conventions.
 * dm_prompts_load_dir() replaces any of them from files of a folder, so operators change
 * prompts and stacks without rebuilding:
 *
 *   file                 part                          used in
 *   system-route.md      DM_PROMPT_SYSTEM_ROUTE        system message of route files
 *   system-component.md  DM_PROMPT_SYSTEM_COMPONENT    system message of component files
 *   system-migration.md  DM_PROMPT_SYSTEM_MIGRATION    system message of migrations
 *   system-file.md       DM_PROMPT_SYSTEM_FILE         system message of any other file
 *   stack.md             DM_PROMPT_STACK               every system message (the target stack)
 *   rules.md             DM_PROMPT_RULES               every system message (output rules)
 *   repair.md            DM_PROMPT_REPAIR              first paragraph of a repair message
 *   system-edit.md       DM_PROMPT_SYSTEM_EDIT         system message of edits of existing files
 *   system-test.md       DM_PROMPT_SYSTEM_TEST         system message of test files
 *
 * A file at the folder's top level replaces that part for every stack; a file in the folder's
 * subfolder named after a stack (hono/, express/, generic/) replaces it for that stack only and
 * wins over the top level. A missing file keeps the default; an empty file leaves that part out.
 * Other files are ignored. Texts are used verbatim (trailing white space trimmed); no
 * templating.
 *
 * Messages.
 *   system = <system-KIND> "\n\n" <stack> ["\n\n" <detected>] "\n\n" <rules>
 *            "\n\nTarget path: `<path>`" (empty parts and their separators left out);
 *            <detected> only when a base was read: "This repository: <dm_stack_describe()>;
 *            entry <entry>; routes in <dir>; ..." (what is known).
 *   user   = "Task: <verb> <description, first 2000 chars>\nPath: <path>\n"
 *            ["Details:\n" <the context of the spec items the file covers, indented 2>]
 *            "\nSpec: <title>\n"
 *            ["\nOverview:\n" <first 1000 chars of the overview>]
 *            ["\nRequirements:\n" first 15 items] ["\nAPI routes:\n" first 10]
 *            ["\nDatabase changes:\n" first 10] ["\nUI components:\n" first 10]
 *            ["\nFiles in this change:\n" first 30 paths as "- <path>"]
 *            [contract] [existing]
 *            new file: "\nWrite the complete content of `<path>`.\n"
 *            edit:     "\nCurrent content of `<path>` on the base branch:\n" <fenced>
 *                      "\n\nReply with the whole new content of `<path>`: keep every existing
 *                      import, export, route registration and line ..., and add what the task
 *                      asks.\n"
 *   contract = "\nContract of this change (names and paths every file must agree on):\n"
 *            "- `<path>` (<kind>[, this file]): exports <exports>; <usage>\n" for each plan item
 *            with exports or usage (first 30; each field first 300 chars); left out when none.
 *   existing = "\nExisting files of the repository (their real exports; import only these):\n"
 *            "- `<path>`: exports a, b; routes GET /x, ROUTE /y\n" for the entry, the barrel,
 *            then every read TS/JS file in the folder of the entry or of a plan item (not the
 *            item itself), with at least one export or route; at most
 *            DM_PROMPT_EXISTING_FILES files and DM_PROMPT_EXISTING_BYTES bytes (then
 *            "- … and more\n"), a line cut after DM_PROMPT_EXISTING_LINE bytes (", …"). Only
 *            with a base.
 *   A listed item is "- <text, first 300 chars>" followed by its context (first 300 chars)
 *   indented two spaces under it. Cut text ends in "…". Empty lists are left out.
 *   Details: the API, UI and database items among the plan item's `covers` that have a context
 *   (a plan without covers: the item whose text equals its description); when there are
 *   several, each is named "- <text>" above its context. The 2000 chars are shared.
 *   Kinds: plan kinds route/component/migration/edit/test map to the same prompt kind; kind
 *   file maps by path (src/routes/ *.ts → route, src/components/ *.tsx → component, *.sql →
 *   migration, else file); the spec document is not generated (DM_ERR_INVALID).
 *   An edit is never generated blind: no base (repo NULL), a file not read or read cut, or a
 *   dependency manifest (editguard.h) fail the build with a message naming the path.
 *
 * Pure except dm_prompts_load_dir(), which reads files (blocking; call it at startup). The rest
 * is thread-safe; a loaded set is read-only and may be shared by threads.
 */
#ifndef DREAM_PROMPT_H
#define DREAM_PROMPT_H

#include <stddef.h>

#include "dream/core/error.h"
#include "dream/domain/plan.h"
#include "dream/domain/reply.h"
#include "dream/domain/repo.h"
#include "dream/domain/spec.h"

#define DM_PROMPT_OVERVIEW_CHARS 1000
#define DM_PROMPT_REQUIREMENTS 15
#define DM_PROMPT_LIST_ITEMS 10 /* API routes, DB changes, UI components each */
#define DM_PROMPT_ITEM_CHARS 300
#define DM_PROMPT_CONTEXT_CHARS 300
#define DM_PROMPT_TASK_CONTEXT_CHARS 2000
#define DM_PROMPT_FILES 30
#define DM_PROMPT_FILE_MAX (64 * 1024)    /* bytes of one prompt file in the folder */
#define DM_PROMPT_REPAIR_MAX (256 * 1024) /* bytes of previous content in a repair */
#define DM_PROMPT_REPAIR_ERROR_CHARS 4000 /* validator message kept in a repair */
#define DM_PROMPT_CONTRACT_ITEMS 30       /* plan items listed in the contract */
#define DM_PROMPT_EXISTING_FILES 24       /* existing files whose exports are listed */
#define DM_PROMPT_EXISTING_BYTES 6000     /* bytes of the existing files' section */
#define DM_PROMPT_EXISTING_LINE 600       /* bytes of one existing file's line (then ", …") */
#define DM_PROMPT_EDIT_MAX (256 * 1024)   /* bytes of a base file carried by an edit */

enum dm_prompt_part {
    DM_PROMPT_SYSTEM_ROUTE = 0,
    DM_PROMPT_SYSTEM_COMPONENT,
    DM_PROMPT_SYSTEM_MIGRATION,
    DM_PROMPT_SYSTEM_FILE,
    DM_PROMPT_STACK,
    DM_PROMPT_RULES,
    DM_PROMPT_REPAIR,
    DM_PROMPT_SYSTEM_EDIT,
    DM_PROMPT_SYSTEM_TEST,
    DM_PROMPT_PART_COUNT
};

enum dm_prompt_kind {
    DM_PROMPT_KIND_ROUTE = 0,
    DM_PROMPT_KIND_COMPONENT,
    DM_PROMPT_KIND_MIGRATION,
    DM_PROMPT_KIND_FILE,
    DM_PROMPT_KIND_EDIT,
    DM_PROMPT_KIND_TEST,
};

/* The built-in prompt texts' stacks (the folder's subfolders hono/, express/, generic/). */
enum dm_prompt_stack {
    DM_PROMPT_STACK_HONO = 0,
    DM_PROMPT_STACK_EXPRESS,
    DM_PROMPT_STACK_GENERIC,
    DM_PROMPT_STACK_COUNT
};

/* The texts for repo's detected stack: NULL, Hono, or nothing recognised -> HONO (today's);
 * Express -> EXPRESS; any other recognised framework, UI or database -> GENERIC. */
enum dm_prompt_stack dm_prompt_stack_of(const struct dm_repo *repo);

/* "hono", "express", "generic"; NULL for an unknown value. */
const char *dm_prompt_stack_name(enum dm_prompt_stack stack);

/* A prompt set (opaque). NULL wherever a set is taken means the compiled-in defaults. */
struct dm_prompts;

/* File name of a part in a prompts folder (table above); NULL for an unknown part. */
const char *dm_prompts_file_name(enum dm_prompt_part part);

/* The text of a part in set (NULL = defaults) for the Hono stack; borrowed from set, "" for an
 * unknown part. */
const char *dm_prompts_text(const struct dm_prompts *set, enum dm_prompt_part part);

/* The text of a part for a stack; borrowed, "" for an unknown part or stack. */
const char *dm_prompts_stack_text(const struct dm_prompts *set, enum dm_prompt_stack stack,
                                  enum dm_prompt_part part);

/*
 * Loads a prompt set: the defaults, with each part whose file exists in dir replaced by that
 * file's text. Blocking file reads; call at startup. *out is the caller's (dm_prompts_free()).
 * Errors: DM_ERR_NOTFOUND (dir is not a directory), DM_ERR_IO (a file cannot be read),
 * DM_ERR_LIMIT (a file over DM_PROMPT_FILE_MAX), DM_ERR_INVALID (a file that is not UTF-8 text),
 * DM_ERR_NOMEM; the message names the file. *out is NULL on error.
 */
int dm_prompts_load_dir(struct dm_prompts **out, const char *dir, struct dm_error *err);

/* Frees a set; NULL is fine. */
void dm_prompts_free(struct dm_prompts *set);

/* The prompt kind of a plan item (rules above). */
enum dm_prompt_kind dm_prompt_kind_of(const struct dm_plan_item *item);

/* One request's messages; both malloc'd and owned by the struct. */
struct dm_prompt {
    enum dm_prompt_kind kind;
    char *system;
    char *user;
};

/*
 * Builds the messages for plan->items[index] of a plan made from spec. set NULL = defaults.
 * *out is the caller's (dm_prompt_free()). Errors: DM_ERR_INVALID (index out of range, or the
 * item is the spec document), DM_ERR_NOMEM. Pure; any thread.
 */
int dm_prompt_build(struct dm_prompt **out, const struct dm_prompts *set,
                    const struct dm_spec *spec, const struct dm_plan *plan, size_t index,
                    struct dm_error *err);

/*
 * dm_prompt_build() with the base of the change: repo (NULL = not read) picks the stack's texts,
 * adds the detected conventions and the existing files' exports, and gives an edit the file's
 * current content. Errors as dm_prompt_build(), and DM_ERR_INVALID for an edit that cannot be
 * seen ("cannot edit <path>: the base was not read", "...: it was not read from the base",
 * "...: only the first N bytes were read"), DM_ERR_UNSAFE for an edit of a dependency
 * manifest, DM_ERR_LIMIT for a base file over DM_PROMPT_EDIT_MAX. Pure; any thread.
 */
int dm_prompt_build_repo(struct dm_prompt **out, const struct dm_prompts *set,
                         const struct dm_spec *spec, const struct dm_plan *plan, size_t index,
                         const struct dm_repo *repo, struct dm_error *err);

/* Frees a prompt; NULL is fine. */
void dm_prompt_free(struct dm_prompt *p);

/*
 * The user message asking to repair a refused file (send it with the same system message):
 *   <repair text> "\n\nPath: `<path>`\n\nValidator error:\n" <fenced, first 4000 chars>
 *   "\n\nPrevious content:\n" <fenced previous content> "\n\nReply with the complete corrected
 *   file only.\n"
 * The fences are longer than any backtick run inside what they hold. *out is malloc'd (free()).
 * Errors: DM_ERR_LIMIT (previous_len > DM_PROMPT_REPAIR_MAX), DM_ERR_INVALID (NULL path/error,
 * NUL inside previous), DM_ERR_NOMEM. Pure.
 */
int dm_prompt_repair(char **out, const struct dm_prompts *set, const char *path,
                     const char *previous, size_t previous_len, const char *error,
                     struct dm_error *err);

/*
 * The repair of an edit: dm_prompt_repair()'s message with the base's version of the file
 * between the validator error and the previous content:
 *   "\n\nThe file on the base branch (keep all of it, add what the task asks):\n" <fenced>
 * so that the model can restore what it dropped. base NULL = dm_prompt_repair(). Errors as
 * dm_prompt_repair(), and DM_ERR_LIMIT for base_len > DM_PROMPT_EDIT_MAX.
 */
int dm_prompt_repair_edit(char **out, const struct dm_prompts *set, const char *path,
                          const char *previous, size_t previous_len, const char *base,
                          size_t base_len, const char *error, struct dm_error *err);

/*
 * The user message asking the generator model to revise one file after review (send it with
 * the file's generation system message from dm_prompt_build()):
 *   "A reviewer commented on the file you wrote for the path below. Address every comment,
 *    keep what was right, and do not add features.\n\nPath: `<path>`\n\nReviewer comments:\n"
 *   "- <comment>\n" (each of comments, in order)
 *   "\nCurrent content:\n" <content fenced, longer fence than any backtick run inside>
 *   "\n\nReply with the complete revised file only.\n"
 * *out is malloc'd (free()). Errors: DM_ERR_INVALID (NULL path, NULL content with len > 0, NUL
 * bytes in content, no comment), DM_ERR_LIMIT (len > DM_PROMPT_REVISE_MAX), DM_ERR_NOMEM. *out
 * is NULL on error. Pure.
 */
#define DM_PROMPT_REVISE_MAX (256 * 1024)
int dm_prompt_revise(char **out, const char *path, const char *const *comments, size_t n_comments,
                     const char *content, size_t len, struct dm_error *err);

/* The reply side (dm_reply_extract_file(), DM_REPLY_MAX) lives in reply.h. */

#endif
