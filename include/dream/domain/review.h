/*
 * review: the review stage's pure half — the reviewer model's request and the parsing of its
 * JSON verdict, the rule verdict made from the safety findings (dm_safety_scan() is the rule
 * scan; this module never scans code itself), the policy that combines the two, the revise
 * round's files and message, and the PR body's review and cost sections.
 *
 * Verdicts (ORIGINAL.md "Safety"): decision proceed / pause / reject, risk low … critical, a
 * summary and per-file comments.
 *   - Rules (dm_review_from_findings): risk = the highest severity of all findings (low when
 *     none); critical → reject, high → pause, anything else → proceed.
 *   - Model (dm_review_parse): the reviewer's JSON, checked strictly.
 *   - Final (dm_review_combine): the STRICTER decision and the higher risk of the two. So a
 *     model can escalate (pause or reject what the rules let through) but never relax: a model
 *     `proceed` cannot clear a rule `reject` (a critical finding) or a rule `pause` (a high one).
 *     Without a model verdict (no model configured, the call failed, the reply was refused) the
 *     rule verdict is final.
 *
 * Nothing here ever copies secret text: findings carry only redacted excerpts (safety.h), the
 * PR body sections list findings by location, rule and severity only, and a model summary or
 * comment that itself contains a secret (dm_safety_scan's secret rules) is withheld.
 *
 * Pure (cJSON, the safety scanner); no I/O, no globals of its own; every function is safe on
 * any thread (verdicts have one owner).
 */
#ifndef DREAM_REVIEW_H
#define DREAM_REVIEW_H

#include <stddef.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/domain/prompt.h"
#include "dream/domain/safety.h"

/* The reviewer call (ORIGINAL.md): DREAM_REVIEW_MODEL's default, max_tokens, temperature. */
#define DM_REVIEW_MODEL "anthropic/claude-haiku-4.5"
#define DM_REVIEW_MAX_TOKENS 1024
#define DM_REVIEW_TEMPERATURE 0.2

#define DM_REVIEW_PROMPT_MAX (60 * 1024) /* bytes of the user message, always respected */
#define DM_REVIEW_PROMPT_FINDINGS 50     /* findings listed in the user message */
#define DM_REVIEW_REPLY_MAX (64 * 1024)  /* bytes of a reply dm_review_parse() accepts */
#define DM_REVIEW_SUMMARY_MAX 1000       /* bytes of a summary kept (cut with "…") */
#define DM_REVIEW_COMMENTS_MAX 20        /* comments kept; more are dropped and counted */
#define DM_REVIEW_COMMENT_MAX 1000       /* bytes of one comment kept (cut with "…") */

enum dm_review_decision {
    DM_REVIEW_PROCEED = 0,
    DM_REVIEW_PAUSE = 1,
    DM_REVIEW_REJECT = 2, /* ordered: a larger value is stricter */
};

/* Who took part in a verdict (bits of dm_review_verdict.sources). */
#define DM_REVIEW_BY_MODEL 0x1u
#define DM_REVIEW_BY_RULES 0x2u

/* A generated file as the reviewer sees it. Borrowed for each call. */
struct dm_review_file {
    const char *path;
    const char *content; /* len bytes, need not be NUL-terminated; NULL only with len 0 */
    size_t len;
};

struct dm_review_comment {
    char *path;    /* owned; always one of the reviewed files' paths */
    char *comment; /* owned; one line of printable text, never empty */
};

/* A verdict. Embed it, initialise it with DM_REVIEW_VERDICT_INIT or dm_review_verdict_init(),
 * free its members with dm_review_verdict_free(). */
struct dm_review_verdict {
    enum dm_review_decision decision;
    enum dm_severity risk;
    char *summary;       /* owned, never NULL in a filled verdict: the model's summary, or the
                          * rule summary for a rules-only verdict */
    char *rules_summary; /* owned; in a combined verdict with a model, the rule summary; NULL
                          * otherwise */
    struct dm_review_comment *comments; /* owned, n_comments of them, in reply order */
    size_t n_comments;
    size_t dropped_comments; /* comments left out: unknown path, empty, over the cap */
    int model_decision;      /* the model's own decision, -1 when no model took part */
    int rules_decision;      /* the rules' own decision, -1 when the rules took no part */
    unsigned sources;        /* DM_REVIEW_BY_* */
};
#define DM_REVIEW_VERDICT_INIT                                                                     \
    {                                                                                              \
        DM_REVIEW_PROCEED, DM_SEVERITY_LOW, NULL, NULL, NULL, 0, 0, -1, -1, 0                      \
    }

void dm_review_verdict_init(struct dm_review_verdict *v);

/* Frees the members; v is as after init and reusable. NULL is fine. */
void dm_review_verdict_free(struct dm_review_verdict *v);

/* "proceed", "pause", "reject"; "reject" for anything unknown. Static. */
const char *dm_review_decision_name(enum dm_review_decision d);

/* Parses a decision name, ASCII case-insensitive (so the old "PROCEED" works). 0 or
 * DM_ERR_INVALID. */
int dm_review_decision_parse(enum dm_review_decision *out, const char *name);

/* ---- the reviewer request ---------------------------------------------------------------- */

/* The reviewer's messages. Both malloc'd, owned by the struct. */
struct dm_review_prompt {
    char *system;
    char *user;
    size_t files_cut;     /* files whose content was truncated to fit DM_REVIEW_PROMPT_MAX */
    size_t files_omitted; /* files whose content was left out entirely (still listed) */
};

/*
 * Builds the reviewer's messages. system: what to look for and how to answer. user:
 *   "Plan: <title>\n\nGenerated files (N):\n- `<path>` (<len> bytes)\n…\n\n"
 *   "Rule findings (N):\n- <path>:<line> <rule> (<severity>, <kind>): <excerpt>\n…" or
 *   "Rule findings: none.\n", then per file "\n### `<path>`\n" and its content in a fence longer
 *   than any backtick run inside, cut files followed by
 *   "[truncated: showing X of Y bytes]\n", then the closing instruction.
 * The user message is at most DM_REVIEW_PROMPT_MAX bytes: the title and the file and finding
 * lists have their own caps ("- … and N more"), and the remaining room is shared by the
 * files' contents so that no file gets more than an equal share of what the smaller ones leave
 * (cuts never split a UTF-8 sequence); when even the files' headers do not fit, the last files'
 * contents are left out and the message says so. findings may be NULL (none).
 * *out is the caller's (dm_review_prompt_free()). Errors: DM_ERR_INVALID (no files, a file with
 * a NULL path, NULL content with len > 0, NUL bytes in a content), DM_ERR_NOMEM; *out is NULL.
 */
int dm_review_prompt_build(struct dm_review_prompt **out, const char *title,
                           const struct dm_review_file *files, size_t n_files,
                           const struct dm_findings *findings, struct dm_error *err);

/* Frees a prompt; NULL is fine. */
void dm_review_prompt_free(struct dm_review_prompt *p);

/*
 * The reviewer request's response_format (dm_llm_request.response_format), OpenRouter's
 * structured outputs shape:
 *   {"type":"json_schema","json_schema":{"name":"review","strict":true,"schema":{"type":
 *    "object","properties":{"decision":{"type":"string","enum":["proceed","pause","reject"]},
 *    "risk":{"type":"string","enum":["low","medium","high","critical"]},"summary":{"type":
 *    "string"},"comments":{"type":"array","items":{"type":"object","properties":{"path":
 *    {"type":"string"},"comment":{"type":"string"}},"required":["path","comment"],
 *    "additionalProperties":false}}},"required":["decision","risk","summary","comments"],
 *    "additionalProperties":false}}}
 * (with a description per member). Static, valid JSON.
 */
const char *dm_review_response_format(void);

/* ---- verdicts ------------------------------------------------------------------------------ */

/*
 * Parses the reviewer's reply (len bytes, need not be NUL-terminated) into *out (initialised or
 * freed before; filled only on success, sources = DM_REVIEW_BY_MODEL, model_decision set).
 * Accepted: white space, then one JSON object, then white space — or that object as the only
 * content of one fenced code block (``` or ~~~, any info string such as "json"). Members:
 *   decision  string, "proceed" / "pause" / "reject", ASCII case-insensitive   (required)
 *   risk      string, "low" / "medium" / "high" / "critical", case-insensitive (required)
 *   summary   string (required); control characters become spaces, white space runs collapse,
 *             cut to DM_REVIEW_SUMMARY_MAX bytes with "…"; empty → "(no summary)"
 *   comments  array of {"path": string, "comment": string} (optional; missing = none).
 *             Kept only when path is one of files[].path (a leading "./" is ignored) and the
 *             comment is not blank; at most DM_REVIEW_COMMENTS_MAX kept; texts cleaned and cut
 *             like the summary (DM_REVIEW_COMMENT_MAX). Others are counted in dropped_comments.
 *   Unknown members are ignored.
 * A summary or comment in which the safety scanner's secret rules find anything is replaced
 * by "(withheld: the reviewer quoted a secret)".
 * Errors, all DM_ERR_INVALID with a message saying what was wrong (the review stage then falls
 * back to the rules): empty reply, over DM_REVIEW_REPLY_MAX bytes, NUL bytes or invalid UTF-8,
 * prose around the JSON, an unclosed fence, malformed or truncated JSON, a non-object, a
 * missing or mistyped member, an unknown decision or risk, a comments element that is not an
 * object with string path and comment. DM_ERR_NOMEM. On error *out is untouched.
 */
int dm_review_parse(struct dm_review_verdict *out, const char *reply, size_t len,
                    const struct dm_review_file *files, size_t n_files, struct dm_error *err);

/*
 * The rule verdict of findings (NULL = none) into *out (initialised or freed before):
 * risk = findings->max_severity (low when there are none); decision critical → reject,
 * high → pause, else proceed; sources = DM_REVIEW_BY_RULES; no comments. summary:
 *   "Rule scan: no findings."  or
 *   "Rule scan: 3 findings, highest critical: drop-table (critical) x1, eval (high) x2."
 * rules ordered by severity (highest first), then first appearance; at most 12 named, then
 * "+N more rules"; findings the scan counted but did not keep are included in the count.
 * Rule ids only, never excerpts. Returns 0 or DM_ERR_NOMEM (then *out is untouched).
 */
int dm_review_from_findings(struct dm_review_verdict *out, const struct dm_findings *findings,
                            struct dm_error *err);

/*
 * The final verdict into *out (initialised or freed before): see the policy at the top.
 * model may be NULL (the rule verdict is copied). With a model verdict: decision = the stricter
 * of the two, risk = the higher, summary and comments = the model's, rules_summary = the rule
 * verdict's summary, model_decision/rules_decision = each side's own decision, sources = both.
 * Neither input is changed; out must be a third verdict. Returns 0, DM_ERR_INVALID (rules NULL) or
 * DM_ERR_NOMEM (then *out is untouched).
 */
int dm_review_combine(struct dm_review_verdict *out, const struct dm_review_verdict *model,
                      const struct dm_review_verdict *rules, struct dm_error *err);

/* ---- the revise round ---------------------------------------------------------------------- */

/*
 * The files a revise round regenerates: the distinct paths of v's comments, in the order of
 * their first comment. Stores at most max borrowed pointers (into v; valid while v lives) in
 * paths (may be NULL when max is 0) and returns how many there are in all.
 */
size_t dm_review_files_to_revise(const struct dm_review_verdict *v, const char **paths, size_t max);

/*
 * The user message asking the generator model to revise one file: dm_prompt_revise() (prompt.h,
 * which has the message's layout) with every comment of v on path, in order. Errors as there,
 * and DM_ERR_INVALID for a NULL v or no comment of v on path. *out is NULL on error.
 */
#define DM_REVIEW_REVISE_MAX DM_PROMPT_REVISE_MAX
int dm_review_revise_prompt(char **out, const struct dm_review_verdict *v, const char *path,
                            const char *content, size_t len, struct dm_error *err);

/* The PR body's review and cost sections moved to prbody.h; included here so that callers of
 * dm_review_markdown() and dm_review_cost_markdown() compile unchanged. After the types above:
 * prbody.h needs them. */
#include "dream/domain/prbody.h"

#endif
