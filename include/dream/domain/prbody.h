/*
 * prbody: the pull request's body, rendered from structured parts (the plan and its spec, the
 * validation warnings, the review verdict and its findings, the job's spend). The one home of
 * the body's layout, its headings, its escaping and its caps: the stages hand over data, never
 * Markdown.
 *
 * Layout (every heading is added here; a part that is not given is left out):
 *   "## Dream Machine Build\n\n**Spec**: <title>\n"
 *   ["**Spec link**: <<spec_url>>\n"]                           (an autolink, when given)
 *   ["**Stack**: <plan->stack>\n"]                               (when the plan has one)
 *   "\n### Overview\n\n"      the spec's overview, first 500 characters ("…" when cut)
 *   "\n### Checklist\n\n"     when the plan has covers (plan.h): per category of the spec that
 *                             has items, "**Requirements**", "**API routes**", "**UI
 *                             components**", "**Database**" ("\n\n" after each, a blank line
 *                             between them), then per item
 *                             "- [ ] <text> → `<path>`, `<path>`\n" (the files whose covers
 *                             hold the item's text, at most 5 then " and N more"; "_no file_"
 *                             when none); the first 50 items, then "- … and N more\n"
 *   or "\n### Requirements\n\n" (a plan without covers) "- <requirement>\n" for the first 10,
 *                             then "- … and N more\n"
 *   "\n### Files changed\n\n" per plan item "- `<path>` (created, <kind>): <description>[.
 *                             Exports: <exports>]\n", or "- `<path>` (edited): …" for an edit
 *                             (description cut to 200 bytes, exports to 150)
 *   "\n### Verification\n\n"  the verification part as given (Markdown)
 *   "\n### Validation\n\n"    dm_prbody_validation()
 *   "\n### Review\n\n"        dm_review_markdown()
 *   "\n### Cost\n\n"          "<tokens> tokens, $<usd> (budget <tokens> tokens, $<usd>)\n"
 *   "\n---\n\n_Built by dreamd (Dream Machine) from the spec above[, job `<id>`]. Review every
 *   change before merging._\n"
 * Texts from the spec and the plan are escaped as Markdown prose ('<' '>' '&' as entities, '|'
 * escaped, control bytes as spaces); paths in code spans have '`' as '\''.
 * Every part has its own cap, so the body is always shorter than DM_PR_BODY_MAX bytes; a part
 * that was cut ends in "_(truncated)_" (never inside a UTF-8 sequence).
 *
 * Pure: no I/O, no globals; any thread.
 */
#ifndef DREAM_PRBODY_H
#define DREAM_PRBODY_H

#include <stddef.h>

#include "dream/core/buf.h"
#include "dream/domain/plan.h"
#include "dream/domain/review.h"
#include "dream/domain/spec.h"
#include "dream/domain/validate.h"

/* Same value as plan.h's (which will drop it): an identical redefinition is allowed. */
#define DM_PR_BODY_MAX 65000 /* the PR body is always shorter than this (GitHub: 65536) */

/* What the job spent, against its budget. */
struct dm_prbody_cost {
    long long tokens;
    double usd;
    long long budget_tokens;
    double budget_usd; /* <= 0: the job has no dollar limit */
};

/* The parts of a body; everything is borrowed for the call. */
struct dm_prbody {
    const struct dm_plan *plan;                    /* required */
    const struct dm_spec *spec;                    /* NULL: no overview, no requirements */
    const struct dm_validate_warnings *validation; /* NULL: no validation section */
    const struct dm_review_verdict *review;        /* NULL: no review section */
    const struct dm_findings *findings;            /* the review's findings; may be NULL */
    const struct dm_prbody_cost *cost;             /* NULL: no cost section */
    const char *job_id;                            /* named in the footer when set */
    const char *verification; /* Markdown of the whole-change checks (type-check, migration
                                 replay); NULL or "": no verification section */
    const char *spec_url;     /* the job's specUrl: NULL, or shown only when it is an http(s)
                                 URL of at most 2048 bytes without spaces, control characters,
                                 quotes, backslashes, backticks or angle brackets */
};

/* Renders the body (layout above), malloc'd (free()); NULL only on NOMEM. */
char *dm_prbody_render(const struct dm_prbody *parts);

/* The description of the `dreamd/verify` commit status: each line of the verification up to its
 * first "; " (the "- " bullets, '*' and '`' dropped), joined with "; " ("checks passed" without
 * a verification), then "; <n> validation warning(s)". One line of at most 140 bytes: the
 * checks are cut (with "…") so the count always shows. malloc'd (free()); NULL only on NOMEM. */
char *dm_prbody_status(const char *verification, size_t n_warnings);

/*
 * Appends the validation section's text (the heading is the body's) to out:
 *   "- `<path>` (line <n>): <message>\n" (or "- `<path>`: <message>\n" for a whole-file warning)
 *   per warning, or "None.\n" when there is none.
 * Backticks in paths become '\''. Returns 0 or dm_buf's error (out may then hold a part).
 */
int dm_prbody_validation(const struct dm_validate_warnings *w, struct dm_buf *out);

/*
 * Appends the review section's text (the heading is the body's) to out:
 *   "**Decision**: pause · **Risk**: high · **Reviewed by**: model and rules\n"
 *   ["\nThe rule scan's decision (pause) is stricter than the model's (proceed).\n"] or
 *   ["\nThe reviewer model's decision (reject) is stricter than the rule scan's (pause).\n"]
 *   "\n<summary>\n"
 *   ["\n<rules_summary>\n"]
 *   ["\n#### Comments\n\n- `<path>`: <comment>\n…"]                  (first 10, then "- … N more")
 *   ["\n#### Findings\n\n| Location | Rule | Kind | Severity |\n| --- | --- | --- | --- |\n"
 *    "| `<path>:<line>` | <rule> | <kind> | <severity> |\n…"]  (highest severity first, scan
 *                                             order within one; first 30, then "… N more")
 * Reviewed by: "model", "rules" or "model and rules". Comments are shown cut to 300 bytes, paths
 * to 120 bytes; backticks in paths become '\'', '|' and '<' '>' in table cells and comments are
 * escaped. Excerpts are never shown. findings may be NULL. Returns 0 or dm_buf's error
 * (DM_ERR_LIMIT when out's cap is hit, DM_ERR_NOMEM); out may then hold a part.
 * (The name predates this module; review.h includes this header for its callers.)
 */
int dm_review_markdown(const struct dm_review_verdict *v, const struct dm_findings *findings,
                       struct dm_buf *out);

/* One row of an itemised cost table: a file's generation, the review, the planner, … */
struct dm_review_cost_row {
    const char *label; /* e.g. the file's path, "review", "plan" */
    const char *model; /* may be NULL */
    long long prompt_tokens;
    long long completion_tokens;
    double cost_usd; /* < 0: unknown */
};

#define DM_REVIEW_COST_ROWS 25 /* rows shown; the rest are summed into one "… N more" row */

/*
 * Appends an itemised cost section (the heading is the body's) to out:
 *   "**Total**: 12345 tokens (10000 prompt + 2345 completion), $0.0123\n"
 *   ["\n| Step | Model | Prompt | Completion | Cost |\n| --- | --- | ---: | ---: | ---: |\n"
 *    "| `<label>` | <model or -> | 1000 | 200 | $0.0060 |\n…"]
 * total_* are the job's totals (they may differ from the rows' sum, e.g. failed attempts);
 * costs print with 4 decimals, an unknown (< 0) cost as "?". Labels are cut to 120 bytes.
 * With more than DM_REVIEW_COST_ROWS rows, the last row is "| … N more | | <sums> |".
 * Fits the body's 4 KiB cost cap for typical labels. Returns 0 or dm_buf's error.
 * Not used by dm_prbody_render() yet: the stages do not keep per-step usage.
 */
int dm_review_cost_markdown(struct dm_buf *out, long long total_prompt_tokens,
                            long long total_completion_tokens, double total_cost_usd,
                            const struct dm_review_cost_row *rows, size_t n_rows);

#endif
