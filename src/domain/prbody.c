/*
 * prbody: the pull request's body from structured parts (layout, escaping and caps in
 * include/dream/domain/prbody.h). Owns the texts it returns; no state; any thread.
 */
#include "dream/domain/prbody.h"
#include "dream/core/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELLIPSIS DM_TEXT_ELLIPSIS
#define MIDDOT "\xc2\xb7"
#define TRUNCATED "\n\n_(truncated)_\n"

/* Caps of the body's parts; their sum plus headings stays below DM_PR_BODY_MAX. */
#define BODY_TITLE_MAX 512
#define BODY_OVERVIEW_CHARS 500
#define BODY_STACK_BYTES 300
#define BODY_REQUIREMENTS 10
#define BODY_REQ_CHARS 300
#define BODY_REQ_MAX (8 * 1024)
#define BODY_CHECK_ITEMS 50  /* checklist entries per category */
#define BODY_CHECK_BYTES 300 /* of an entry's text */
#define BODY_CHECK_FILES 5   /* files named per entry */
#define BODY_CHECK_MAX (10 * 1024)
#define BODY_FILE_DESC_BYTES 200
#define BODY_FILE_EXPORTS_BYTES 150
#define BODY_FILES_MAX (12 * 1024)
#define BODY_VERIFICATION_MAX (8 * 1024)
#define BODY_VALIDATION_MAX (10 * 1024)
#define BODY_REVIEW_MAX (10 * 1024)
#define BODY_COST_MAX (4 * 1024)
#define BODY_JOB_ID_MAX 128
#define BODY_PART_MAX (1 << 20) /* a section is rendered up to this, then cut to its own cap */

/* Inside the review section. */
#define MD_COMMENTS 10
#define MD_COMMENT_BYTES 300
#define MD_PATH_BYTES 120
#define MD_FINDINGS 30

static int put_md_text(struct dm_buf *out, const char *s, size_t max);
static int put_md_path(struct dm_buf *out, const char *s, size_t max);

/* ---- the body ---------------------------------------------------------------------------- */

/* Appends text, cut at cap bytes (at a line end when there is one, never inside a UTF-8
 * sequence) with a truncation note. */
static int append_capped(struct dm_buf *b, const char *text, size_t cap)
{
    size_t len = strlen(text);
    size_t keep;
    int rc;

    if (len <= cap) {
        return dm_buf_append(b, text, len);
    }
    keep = cap - (sizeof(TRUNCATED) - 1);
    while (keep > 0 && ((unsigned char)text[keep] & 0xc0) == 0x80) {
        keep--;
    }
    for (size_t i = keep; i > keep / 2; i--) {
        if (text[i - 1] == '\n') {
            keep = i - 1;
            break;
        }
    }
    rc = dm_buf_append(b, text, keep);
    if (!rc) {
        rc = dm_buf_puts(b, TRUNCATED);
    }
    return rc;
}

/* "\n### heading\n\n" and text cut to cap, ending in a newline; nothing when text is empty. */
static int section(struct dm_buf *body, const char *heading, const char *text, size_t cap)
{
    int rc;

    if (!text || !*text) {
        return 0;
    }
    rc = dm_buf_printf(body, "\n### %s\n\n", heading);
    if (!rc) {
        rc = append_capped(body, text, cap);
    }
    if (!rc && body->data[body->len - 1] != '\n') {
        rc = dm_buf_puts(body, "\n");
    }
    return rc;
}

/* The requirements as a list (a plan without covers: made before the contract existed). */
static int requirements(struct dm_buf *part, const struct dm_spec *spec)
{
    int rc = 0;

    for (size_t i = 0; !rc && spec && i < spec->requirements.count; i++) {
        if (i == BODY_REQUIREMENTS) {
            rc = dm_buf_printf(part, "- " ELLIPSIS " and %zu more\n", spec->requirements.count - i);
            break;
        }
        rc = dm_buf_puts(part, "- ");
        if (!rc) {
            rc = dm_text_put_chars(part, spec->requirements.items[i].text,
                                   strlen(spec->requirements.items[i].text), BODY_REQ_CHARS);
        }
        if (!rc) {
            rc = dm_buf_puts(part, "\n");
        }
    }
    return rc;
}

static int plan_has_covers(const struct dm_plan *plan)
{
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->items[i].n_covers) {
            return 1;
        }
    }
    return 0;
}

/* "- [ ] <text> → `a`, `b`\n": the files whose covers hold text. */
static int check_entry(struct dm_buf *part, const struct dm_plan *plan, const char *text)
{
    size_t named = 0;
    size_t more = 0;
    int rc = dm_buf_puts(part, "- [ ] ");

    if (!rc) {
        rc = put_md_text(part, text, BODY_CHECK_BYTES);
    }
    if (!rc) {
        rc = dm_buf_puts(part, " \xe2\x86\x92 "); /* → */
    }
    for (size_t i = 0; !rc && i < plan->count; i++) {
        const struct dm_plan_item *it = &plan->items[i];
        int hit = 0;
        for (size_t k = 0; k < it->n_covers && !hit; k++) {
            hit = strcmp(it->covers[k], text) == 0;
        }
        if (!hit) {
            continue;
        }
        if (named == BODY_CHECK_FILES) {
            more++;
            continue;
        }
        rc = dm_buf_puts(part, named ? ", `" : "`");
        if (!rc) {
            rc = put_md_path(part, it->path, MD_PATH_BYTES);
        }
        if (!rc) {
            rc = dm_buf_puts(part, "`");
        }
        named++;
    }
    if (!rc && more) {
        rc = dm_buf_printf(part, " and %zu more", more);
    }
    if (!rc && named == 0) {
        rc = dm_buf_puts(part, "_no file_");
    }
    if (!rc) {
        rc = dm_buf_puts(part, "\n");
    }
    return rc;
}

/* Every requirement, route, component and database item of the spec, and the files that
 * implement it (from the plan's covers). */
static int checklist(struct dm_buf *part, const struct dm_plan *plan, const struct dm_spec *spec)
{
    const struct {
        const char *name;
        const struct dm_spec_list *list;
    } cats[] = {{"Requirements", &spec->requirements},
                {"API routes", &spec->api_routes},
                {"UI components", &spec->ui_components},
                {"Database", &spec->db_changes}};
    int rc = 0;

    for (size_t c = 0; c < sizeof(cats) / sizeof(cats[0]) && !rc; c++) {
        const struct dm_spec_list *l = cats[c].list;
        if (l->count == 0) {
            continue;
        }
        rc = dm_buf_printf(part, "%s**%s**\n\n", part->len ? "\n" : "", cats[c].name);
        for (size_t i = 0; i < l->count && !rc; i++) {
            if (i == BODY_CHECK_ITEMS) {
                rc = dm_buf_printf(part, "- " ELLIPSIS " and %zu more\n", l->count - i);
                break;
            }
            rc = check_entry(part, plan, l->items[i].text);
        }
    }
    return rc;
}

/* "- `<path>` (created, <kind>): <description>[ Exports: <exports>.]\n", or "(edited)". */
static int file_line(struct dm_buf *part, const struct dm_plan_item *it)
{
    int rc = dm_buf_puts(part, "- `");

    if (!rc) {
        rc = put_md_path(part, it->path, MD_PATH_BYTES);
    }
    if (!rc) {
        rc = it->kind == DM_PLAN_KIND_EDIT
                 ? dm_buf_puts(part, "` (edited)")
                 : dm_buf_printf(part, "` (created, %s)", dm_plan_kind_name(it->kind));
    }
    if (!rc && it->description && *it->description) {
        rc = dm_buf_puts(part, ": ");
        if (!rc) {
            rc = put_md_text(part, it->description, BODY_FILE_DESC_BYTES);
        }
    }
    if (!rc && it->exports && *it->exports) {
        rc = dm_buf_puts(part, ". Exports: ");
        if (!rc) {
            rc = put_md_text(part, it->exports, BODY_FILE_EXPORTS_BYTES);
        }
    }
    if (!rc) {
        rc = dm_buf_puts(part, "\n");
    }
    return rc;
}

/* The overview, the requirements and the files, each a section of its own. */
static int plan_sections(struct dm_buf *body, struct dm_buf *part, const struct dm_plan *plan,
                         const struct dm_spec *spec)
{
    int rc = 0;

    dm_buf_reset(part);
    if (spec && *spec->overview) {
        rc = dm_text_put_chars(part, spec->overview, strlen(spec->overview), BODY_OVERVIEW_CHARS);
        if (!rc) {
            rc = section(body, "Overview", part->data, BODY_OVERVIEW_CHARS * 4 + 4);
        }
    }
    dm_buf_reset(part);
    if (spec && plan_has_covers(plan)) {
        rc = checklist(part, plan, spec);
        if (!rc && part->len) {
            rc = section(body, "Checklist", part->data, BODY_CHECK_MAX);
        }
    } else {
        rc = requirements(part, spec);
        if (!rc && part->len) {
            rc = section(body, "Requirements", part->data, BODY_REQ_MAX);
        }
    }
    dm_buf_reset(part);
    for (size_t i = 0; !rc && i < plan->count; i++) {
        rc = file_line(part, &plan->items[i]);
    }
    if (!rc && part->len) {
        rc = section(body, "Files changed", part->data, BODY_FILES_MAX);
    }
    return rc;
}

/* The validation, review and cost sections. A part that outgrows BODY_PART_MAX is shown as far
 * as it got: its section's cap is far below that anyway. */
static int result_sections(struct dm_buf *body, const struct dm_prbody *in)
{
    struct dm_buf part;
    int rc = 0;

    dm_buf_init(&part, BODY_PART_MAX);
    if (in->verification && *in->verification) {
        rc = section(body, "Verification", in->verification, BODY_VERIFICATION_MAX);
    }
    if (!rc && in->validation) {
        rc = dm_prbody_validation(in->validation, &part);
        rc = rc == DM_ERR_LIMIT ? 0 : rc;
        if (!rc) {
            rc = section(body, "Validation", part.data, BODY_VALIDATION_MAX);
        }
    }
    if (!rc && in->review) {
        dm_buf_reset(&part);
        rc = dm_review_markdown(in->review, in->findings, &part);
        rc = rc == DM_ERR_LIMIT ? 0 : rc;
        if (!rc) {
            rc = section(body, "Review", part.data, BODY_REVIEW_MAX);
        }
    }
    if (!rc && in->cost) {
        dm_buf_reset(&part);
        if (in->cost->budget_usd > 0) {
            rc = dm_buf_printf(&part, "%lld tokens, $%.4f (budget %lld tokens, $%.2f)\n",
                               in->cost->tokens, in->cost->usd, in->cost->budget_tokens,
                               in->cost->budget_usd);
        } else { /* no maxDollars: tokens are the only limit */
            rc = dm_buf_printf(&part, "%lld tokens, $%.4f (budget %lld tokens, no dollar limit)\n",
                               in->cost->tokens, in->cost->usd, in->cost->budget_tokens);
        }
        if (!rc) {
            rc = section(body, "Cost", part.data, BODY_COST_MAX);
        }
    }
    dm_buf_free(&part);
    return rc;
}

/* The specUrl rule of jobreq again: nothing that could end the autolink or break the line. */
static int url_ok(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    size_t head = n && strncmp(u, "https://", 8) == 0  ? 8
                  : n && strncmp(u, "http://", 7) == 0 ? 7
                                                       : 0;
    if (!head || n == head || n > 2048) {
        return 0;
    }
    for (const char *q = u; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f || strchr("<>\"\\`", *q)) {
            return 0;
        }
    }
    return 1;
}

char *dm_prbody_render(const struct dm_prbody *in)
{
    struct dm_buf body;
    struct dm_buf part;
    char *res = NULL;
    int rc;

    dm_buf_init(&body, 0);
    dm_buf_init(&part, 0);
    rc = dm_buf_puts(&body, "## Dream Machine Build\n\n**Spec**: ");
    if (!rc) {
        rc = dm_text_put_chars(&body, in->plan->title, strlen(in->plan->title), BODY_TITLE_MAX / 4);
    }
    if (!rc) {
        rc = dm_buf_puts(&body, "\n");
    }
    if (!rc && url_ok(in->spec_url)) {
        rc = dm_buf_printf(&body, "**Spec link**: <%s>\n", in->spec_url);
    }
    if (!rc && in->plan->stack && *in->plan->stack) {
        rc = dm_buf_puts(&body, "**Stack**: ");
        if (!rc) {
            rc = put_md_text(&body, in->plan->stack, BODY_STACK_BYTES);
        }
        if (!rc) {
            rc = dm_buf_puts(&body, "\n");
        }
    }
    if (!rc) {
        rc = plan_sections(&body, &part, in->plan, in->spec);
    }
    if (!rc) {
        rc = result_sections(&body, in);
    }
    if (!rc) {
        rc = dm_buf_puts(&body, "\n---\n\n_Built by dreamd (Dream Machine) from the spec above");
    }
    if (!rc && in->job_id && *in->job_id) {
        rc = dm_buf_puts(&body, ", job `");
        if (!rc) {
            rc = dm_text_put_chars(&body, in->job_id, strlen(in->job_id), BODY_JOB_ID_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(&body, "`");
        }
    }
    if (!rc) {
        rc = dm_buf_puts(&body, ". Review every change before merging._\n");
    }
    if (!rc) {
        res = dm_buf_detach(&body);
    }
    dm_buf_free(&body);
    dm_buf_free(&part);
    return res;
}

/* ---- validation -------------------------------------------------------------------------- */

int dm_prbody_validation(const struct dm_validate_warnings *w, struct dm_buf *out)
{
    int rc = 0;

    if (w->count == 0) {
        rc = dm_buf_puts(out, "None.\n");
    }
    for (size_t i = 0; !rc && i < w->count; i++) {
        const struct dm_validate_warning *it = &w->items[i];
        rc = dm_buf_puts(out, "- `");
        for (const char *p = it->path; !rc && *p; p++) {
            rc = dm_buf_append(out, *p == '`' ? "'" : p, 1);
        }
        if (!rc) {
            rc = it->line ? dm_buf_printf(out, "` (line %u): %s\n", it->line, it->message)
                          : dm_buf_printf(out, "`: %s\n", it->message);
        }
    }
    return rc;
}

/* ---- review and cost --------------------------------------------------------------------- */
/* Appends text for Markdown prose / table cells: '<' '>' '&' as entities, '|' escaped, control
 * bytes as spaces, cut to max bytes with "…". */
static int put_md_text(struct dm_buf *out, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = len <= max ? len : dm_text_cut(s, len, max >= 3 ? max - 3 : 0);
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<') {
            rc = dm_buf_puts(out, "&lt;");
        } else if (c == '>') {
            rc = dm_buf_puts(out, "&gt;");
        } else if (c == '&') {
            rc = dm_buf_puts(out, "&amp;");
        } else if (c == '|') {
            rc = dm_buf_puts(out, "\\|");
        } else if (c < 0x20 || c == 0x7f) {
            rc = dm_buf_puts(out, " ");
        } else {
            rc = dm_buf_append(out, &s[i], 1);
        }
    }
    if (!rc && n < len) {
        rc = dm_buf_puts(out, ELLIPSIS);
    }
    return rc;
}

/* Appends a path for a code span: '`' → '\'', control bytes → '?', '|' escaped (tables). */
static int put_md_path(struct dm_buf *out, const char *s, size_t max)
{
    size_t len = strlen(s);
    size_t n = len <= max ? len : dm_text_cut(s, len, max >= 3 ? max - 3 : 0);
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '`') {
            rc = dm_buf_puts(out, "'");
        } else if (c == '|') {
            rc = dm_buf_puts(out, "\\|");
        } else if (c < 0x20 || c == 0x7f) {
            rc = dm_buf_puts(out, "?");
        } else {
            rc = dm_buf_append(out, &s[i], 1);
        }
    }
    if (!rc && n < len) {
        rc = dm_buf_puts(out, ELLIPSIS);
    }
    return rc;
}

/* "| `path:line` | rule | kind | severity |": static identifiers only, never the excerpt. */
static int md_finding_row(struct dm_buf *out, const struct dm_finding *x)
{
    int rc = dm_buf_puts(out, "| `");

    if (!rc) {
        rc = put_md_path(out, x->path ? x->path : "?", MD_PATH_BYTES);
    }
    if (!rc) {
        rc = dm_buf_printf(out, ":%lu` | %s | %s | %s |\n", x->line, x->rule ? x->rule : "?",
                           dm_finding_kind_name(x->kind), dm_severity_name(x->severity));
    }
    return rc;
}

static const char *reviewed_by(unsigned sources)
{
    if ((sources & DM_REVIEW_BY_MODEL) && (sources & DM_REVIEW_BY_RULES)) {
        return "model and rules";
    }
    return (sources & DM_REVIEW_BY_MODEL) ? "model" : "rules";
}

int dm_review_markdown(const struct dm_review_verdict *v, const struct dm_findings *findings,
                       struct dm_buf *out)
{
    int rc = dm_buf_printf(
        out, "**Decision**: %s " MIDDOT " **Risk**: %s " MIDDOT " **Reviewed by**: %s\n",
        dm_review_decision_name(v->decision), dm_severity_name(v->risk), reviewed_by(v->sources));

    if (!rc && v->model_decision >= 0 && v->rules_decision >= 0 &&
        v->model_decision != v->rules_decision) {
        int rules_stricter = v->rules_decision > v->model_decision;
        rc = dm_buf_printf(
            out, "\nThe %s decision (%s) is stricter than the %s (%s).\n",
            rules_stricter ? "rule scan's" : "reviewer model's",
            dm_review_decision_name(rules_stricter ? v->rules_decision : v->model_decision),
            rules_stricter ? "model's" : "rule scan's",
            dm_review_decision_name(rules_stricter ? v->model_decision : v->rules_decision));
    }
    if (!rc && v->summary && *v->summary) {
        rc = dm_buf_puts(out, "\n");
        if (!rc) {
            rc = put_md_text(out, v->summary, DM_REVIEW_SUMMARY_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "\n");
        }
    }
    if (!rc && v->rules_summary && *v->rules_summary) {
        rc = dm_buf_puts(out, "\n");
        if (!rc) {
            rc = put_md_text(out, v->rules_summary, DM_REVIEW_SUMMARY_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "\n");
        }
    }
    if (!rc && v->n_comments) {
        size_t shown = v->n_comments < MD_COMMENTS ? v->n_comments : MD_COMMENTS;
        rc = dm_buf_puts(out, "\n#### Comments\n\n");
        for (size_t i = 0; i < shown && !rc; i++) {
            rc = dm_buf_puts(out, "- `");
            if (!rc) {
                rc = put_md_path(out, v->comments[i].path, MD_PATH_BYTES);
            }
            if (!rc) {
                rc = dm_buf_puts(out, "`: ");
            }
            if (!rc) {
                rc = put_md_text(out, v->comments[i].comment, MD_COMMENT_BYTES);
            }
            if (!rc) {
                rc = dm_buf_puts(out, "\n");
            }
        }
        if (!rc && v->n_comments > shown) {
            rc = dm_buf_printf(out, "- " ELLIPSIS " %zu more\n", v->n_comments - shown);
        }
    }
    if (!rc && findings && findings->len + findings->dropped > 0) {
        size_t shown = 0;
        rc = dm_buf_puts(out, "\n#### Findings\n\n| Location | Rule | Kind | Severity |\n"
                              "| --- | --- | --- | --- |\n");
        /* Highest severity first (so the cap keeps the worst), scan order within one. */
        for (int sev = DM_SEVERITY_CRITICAL; sev >= DM_SEVERITY_LOW && !rc; sev--) {
            for (size_t i = 0; i < findings->len && shown < MD_FINDINGS && !rc; i++) {
                if ((int)findings->items[i].severity == sev) {
                    shown++;
                    rc = md_finding_row(out, &findings->items[i]);
                }
            }
        }
        if (!rc && findings->len + findings->dropped > shown) {
            rc = dm_buf_printf(out, "\n_" ELLIPSIS " and %zu more findings._\n",
                               findings->len + findings->dropped - shown);
        }
    }
    return rc;
}

static int put_cost(struct dm_buf *out, double usd)
{
    if (usd < 0) {
        return dm_buf_puts(out, "?");
    }
    return dm_buf_printf(out, "$%.4f", usd);
}

int dm_review_cost_markdown(struct dm_buf *out, long long total_prompt_tokens,
                            long long total_completion_tokens, double total_cost_usd,
                            const struct dm_review_cost_row *rows, size_t n_rows)
{
    size_t shown = n_rows <= DM_REVIEW_COST_ROWS ? n_rows : DM_REVIEW_COST_ROWS - 1;
    int rc = dm_buf_printf(out, "**Total**: %lld tokens (%lld prompt + %lld completion), ",
                           total_prompt_tokens + total_completion_tokens, total_prompt_tokens,
                           total_completion_tokens);

    if (!rc) {
        rc = put_cost(out, total_cost_usd);
    }
    if (!rc) {
        rc = dm_buf_puts(out, "\n");
    }
    if (!rc && n_rows) {
        rc = dm_buf_puts(out, "\n| Step | Model | Prompt | Completion | Cost |\n"
                              "| --- | --- | ---: | ---: | ---: |\n");
    }
    for (size_t i = 0; i < shown && !rc; i++) {
        rc = dm_buf_puts(out, "| `");
        if (!rc) {
            rc = put_md_path(out, rows[i].label ? rows[i].label : "?", MD_PATH_BYTES);
        }
        if (!rc) {
            rc = dm_buf_puts(out, "` | ");
        }
        if (!rc) {
            rc = rows[i].model && *rows[i].model ? put_md_text(out, rows[i].model, MD_PATH_BYTES)
                                                 : dm_buf_puts(out, "-");
        }
        if (!rc) {
            rc = dm_buf_printf(out, " | %lld | %lld | ", rows[i].prompt_tokens,
                               rows[i].completion_tokens);
        }
        if (!rc) {
            rc = put_cost(out, rows[i].cost_usd);
        }
        if (!rc) {
            rc = dm_buf_puts(out, " |\n");
        }
    }
    if (!rc && shown < n_rows) {
        long long pt = 0;
        long long ct = 0;
        double usd = 0;
        for (size_t i = shown; i < n_rows; i++) {
            pt += rows[i].prompt_tokens;
            ct += rows[i].completion_tokens;
            usd = (usd < 0 || rows[i].cost_usd < 0) ? -1 : usd + rows[i].cost_usd;
        }
        rc = dm_buf_printf(out, "| " ELLIPSIS " %zu more | | %lld | %lld | ", n_rows - shown, pt,
                           ct);
        if (!rc) {
            rc = put_cost(out, usd);
        }
        if (!rc) {
            rc = dm_buf_puts(out, " |\n");
        }
    }
    return rc;
}

char *dm_prbody_status(const char *verification, size_t n_warnings)
{
    struct dm_buf b;
    const char *p = verification ? verification : "";
    char tail[64];
    char *lines, *out = NULL;
    int rc = 0, n = 0;

    /* The warnings count always fits; the checks get the rest, each line up to its first "; ". */
    snprintf(tail, sizeof(tail), "%zu validation warning%s", n_warnings,
             n_warnings == 1 ? "" : "s");
    dm_buf_init(&b, 1u << 20);
    while (*p && !rc) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *semi = memmem(p, len, "; ", 2);
        const char *q = p, *stop = semi ? semi : p + len;
        while (q < stop && (*q == '-' || *q == ' ')) {
            q++;
        }
        if (q < stop) {
            if (n++) {
                rc = dm_buf_puts(&b, "; ");
            }
            for (; !rc && q < stop; q++) {
                if (*q != '*' && *q != '`') {
                    rc = dm_buf_append(&b, q, 1);
                }
            }
        }
        p += len + (end ? 1 : 0);
    }
    if (!rc && !n) {
        rc = dm_buf_puts(&b, "checks passed");
    }
    lines = rc ? NULL : dm_text_clean_line(b.data ? b.data : "", 140 - strlen(tail) - 2);
    dm_buf_free(&b);
    if (lines && asprintf(&out, "%s; %s", lines, tail) < 0) {
        out = NULL;
    }
    free(lines);
    return out;
}
