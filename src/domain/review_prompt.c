/*
 * review_prompt: the reviewer model's request — its system message, response_format and the
 * user message that lists the generated files, the rule findings and the files' contents
 * within DM_REVIEW_PROMPT_MAX bytes (contract in include/dream/domain/review.h). The verdict
 * side is review.c. Owns the prompts it returns; no state; any thread.
 */
#include "dream/core/text.h"
#include "dream/domain/review.h"
#include "dream/domain/spec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ELLIPSIS DM_TEXT_ELLIPSIS

#define PROMPT_TITLE_MAX 300
#define PROMPT_LIST_MAX (8 * 1024) /* the file list in the user message */
#define PROMPT_PATH_SHOWN 200      /* bytes of a path in the findings list */
#define PROMPT_FILE_OVERHEAD 100   /* per file block, besides its path and fences */
#define PROMPT_TAIL_RESERVE 160    /* the omitted note and the closing instruction */
#define PROMPT_FILE_MIN 1024       /* least content shown per file before files are left out */

static const char system_prompt[] =
    "You are a senior code reviewer. An automated pipeline generated the files below for a pull "
    "request from a feature spec; nothing has been pushed yet. Review them before they are.\n"
    "\n"
    "Look for: destructive operations (dropping, truncating or deleting data without a "
    "condition, force pushes, hard resets, rm -rf), secrets or credentials in the code, code "
    "run from strings (eval, Function, child_process), security holes (injection, missing "
    "authentication or authorisation, unchecked input), and files that do not do what the plan "
    "says or would not work.\n"
    "\n"
    "Answer with one JSON object and nothing else:\n"
    "- decision: \"proceed\" (safe to open the pull request as it is), \"pause\" (a person must "
    "approve it first: an intended but destructive change, a doubtful security choice) or "
    "\"reject\" (must not be pushed: secrets, clearly harmful or broken code);\n"
    "- risk: \"low\", \"medium\", \"high\" or \"critical\";\n"
    "- summary: at most three sentences;\n"
    "- comments: one entry per concrete problem, with the file's path exactly as listed and "
    "what to change; an empty array when nothing needs fixing.\n"
    "The rule findings come from an automatic scan; take them into account. Never repeat a "
    "secret in your answer.";

static const char response_format[] =
    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"review\",\"strict\":true,\"schema\":{"
    "\"type\":\"object\",\"properties\":{"
    "\"decision\":{\"type\":\"string\",\"enum\":[\"proceed\",\"pause\",\"reject\"],"
    "\"description\":\"proceed: open the pull request; pause: a person must approve first; "
    "reject: must not be pushed\"},"
    "\"risk\":{\"type\":\"string\",\"enum\":[\"low\",\"medium\",\"high\",\"critical\"],"
    "\"description\":\"overall risk of merging these files\"},"
    "\"summary\":{\"type\":\"string\",\"description\":\"at most three sentences\"},"
    "\"comments\":{\"type\":\"array\",\"description\":\"concrete problems, one per entry\","
    "\"items\":{\"type\":\"object\",\"properties\":{"
    "\"path\":{\"type\":\"string\",\"description\":\"a reviewed file's path, exactly as "
    "listed\"},"
    "\"comment\":{\"type\":\"string\",\"description\":\"what is wrong and what to change\"}},"
    "\"required\":[\"path\",\"comment\"],\"additionalProperties\":false}}},"
    "\"required\":[\"decision\",\"risk\",\"summary\",\"comments\"],"
    "\"additionalProperties\":false}}}";

/* Appends s with control bytes as '?' (for paths and titles inside prompts). */
static int put_printable(struct dm_buf *b, const char *s, size_t max)
{
    struct dm_buf t;
    int rc = 0;

    dm_buf_init(&t, 0);
    for (const char *p = s; *p && !rc; p++) {
        char c = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
        rc = dm_buf_append(&t, &c, 1);
    }
    if (!rc && t.len) {
        rc = dm_text_put_cut(b, t.data, t.len, max);
    }
    dm_buf_free(&t);
    return rc;
}

/* ---- the reviewer request ---------------------------------------------------------------- */

void dm_review_prompt_free(struct dm_review_prompt *p)
{
    if (!p) {
        return;
    }
    free(p->system);
    free(p->user);
    free(p);
}

const char *dm_review_response_format(void)
{
    return response_format;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a;
    size_t y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The largest per-file cap c with sum(min(len_i, c)) <= room (SIZE_MAX when all fit): every
 * file gets what it needs or an equal share of what the smaller ones leave. Sorts lens. */
static size_t fair_cap(size_t *lens, size_t n, size_t room)
{
    size_t left = n;

    qsort(lens, n, sizeof(*lens), cmp_size);
    for (size_t i = 0; i < n; i++, left--) {
        if (lens[i] > room / left) {
            return room / left;
        }
        room -= lens[i];
    }
    return SIZE_MAX;
}

static int prompt_header(struct dm_buf *h, const char *title, const struct dm_review_file *files,
                         size_t n, const struct dm_findings *f)
{
    size_t listed = 0;
    size_t total;
    int rc = dm_buf_puts(h, "Plan: ");

    if (!rc) {
        rc = put_printable(h, title && *title ? title : DM_SPEC_UNTITLED, PROMPT_TITLE_MAX);
    }
    if (!rc) {
        rc = dm_buf_printf(h, "\n\nGenerated files (%zu):\n", n);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mark = h->len;
        rc = dm_buf_puts(h, "- `");
        if (!rc) {
            rc = put_printable(h, files[i].path, DM_SAFETY_PATH_MAX);
        }
        if (!rc) {
            rc = dm_buf_printf(h, "` (%zu bytes)\n", files[i].len);
        }
        if (!rc && h->len - mark > PROMPT_LIST_MAX - 64) {
            rc = DM_ERR_LIMIT; /* a single absurd line: stop listing */
        }
        if (!rc && h->len > PROMPT_LIST_MAX + PROMPT_TITLE_MAX + 64) {
            rc = DM_ERR_LIMIT;
        }
        if (rc == DM_ERR_LIMIT) {
            h->len = mark;
            h->data[mark] = '\0';
            rc = 0;
            break;
        }
        listed++;
    }
    if (!rc && listed < n) {
        rc = dm_buf_printf(h, "- " ELLIPSIS " and %zu more\n", n - listed);
    }
    total = f ? f->len + f->dropped : 0;
    if (!rc && total == 0) {
        rc = dm_buf_puts(h, "\nRule findings: none.\n");
    } else if (!rc) {
        size_t shown = f->len < DM_REVIEW_PROMPT_FINDINGS ? f->len : DM_REVIEW_PROMPT_FINDINGS;
        rc = dm_buf_printf(h, "\nRule findings (%zu):\n", total);
        for (size_t i = 0; i < shown && !rc; i++) {
            const struct dm_finding *x = &f->items[i];
            rc = dm_buf_puts(h, "- ");
            if (!rc) {
                rc = put_printable(h, x->path ? x->path : "?", PROMPT_PATH_SHOWN);
            }
            if (!rc) {
                rc = dm_buf_printf(h, ":%lu %s (%s, %s): ", x->line, x->rule ? x->rule : "?",
                                   dm_severity_name(x->severity), dm_finding_kind_name(x->kind));
            }
            if (!rc) {
                rc = put_printable(h, x->excerpt, DM_SAFETY_EXCERPT_MAX);
            }
            if (!rc) {
                rc = dm_buf_puts(h, "\n");
            }
        }
        if (!rc && total > shown) {
            rc = dm_buf_printf(h, "- " ELLIPSIS " and %zu more\n", total - shown);
        }
    }
    return rc;
}

static const char prompt_tail[] =
    "\nReview the files above and answer with the JSON object only.\n";

int dm_review_prompt_build(struct dm_review_prompt **out, const char *title,
                           const struct dm_review_file *files, size_t n_files,
                           const struct dm_findings *findings, struct dm_error *err)
{
    struct dm_review_prompt *p = NULL;
    struct dm_buf u;
    size_t *fence = NULL;
    size_t *lens = NULL;
    size_t *over = NULL;
    size_t shown = 0;
    size_t room;
    size_t used = 0;
    size_t cap;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&u, DM_REVIEW_PROMPT_MAX);
    if (!files || n_files == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "review prompt: no files to review");
    }
    for (size_t i = 0; i < n_files; i++) {
        if (!files[i].path || (!files[i].content && files[i].len)) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "review prompt: file %zu: no path, or no content", i);
        }
        if (files[i].len && memchr(files[i].content, '\0', files[i].len)) {
            return dm_error_set(err, DM_ERR_INVALID, "review prompt: file %zu holds NUL bytes", i);
        }
    }
    p = calloc(1, sizeof(*p));
    fence = calloc(n_files, sizeof(*fence));
    lens = calloc(n_files, sizeof(*lens));
    over = calloc(n_files, sizeof(*over));
    if (!p || !fence || !lens || !over) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    p->system = strdup(system_prompt);
    if (!p->system) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = prompt_header(&u, title, files, n_files, findings);
    if (rc) {
        goto out;
    }
    /* The header is bounded far below the cap (title, list and findings caps). */
    room = DM_REVIEW_PROMPT_MAX - u.len - sizeof(prompt_tail) - PROMPT_TAIL_RESERVE;
    for (shown = 0; shown < n_files; shown++) {
        fence[shown] = dm_text_fence_len(files[shown].content, files[shown].len);
        over[shown] = strlen(files[shown].path) + 2 * fence[shown] + PROMPT_FILE_OVERHEAD;
        if (over[shown] > room - used) {
            break; /* this and every later file: content left out */
        }
        used += over[shown];
    }
    /* Fewer files with a useful share each beat many files with a few bytes each. */
    for (;;) {
        for (size_t i = 0; i < shown; i++) {
            lens[i] = files[i].len;
        }
        cap = fair_cap(lens, shown, room - used);
        if (cap >= PROMPT_FILE_MIN || shown <= 1) {
            break;
        }
        shown--;
        used -= over[shown];
    }
    for (size_t i = 0; i < shown && !rc; i++) {
        const struct dm_review_file *fl = &files[i];
        size_t n = dm_text_cut(fl->content, fl->len, cap);

        rc = dm_buf_puts(&u, "\n### `");
        if (!rc) {
            rc = put_printable(&u, fl->path, DM_SAFETY_PATH_MAX);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "`\n");
        }
        if (!rc) {
            rc = dm_text_put_fenced(&u, fence[i], dm_text_lang_of(fl->path).fence_info,
                                    fl->content ? fl->content : "", n);
        }
        if (!rc) {
            rc = dm_buf_puts(&u, "\n");
        }
        if (!rc && n < fl->len) {
            p->files_cut++;
            rc = dm_buf_printf(&u, "[truncated: showing %zu of %zu bytes]\n", n, fl->len);
        }
    }
    p->files_omitted = n_files - shown;
    if (!rc && p->files_omitted) {
        rc = dm_buf_printf(&u,
                           "\n[Content of the last %zu files left out: the prompt size "
                           "limit.]\n",
                           p->files_omitted);
    }
    if (!rc) {
        rc = dm_buf_puts(&u, prompt_tail);
    }
    if (!rc) {
        p->user = dm_buf_detach(&u);
        if (!p->user) {
            rc = DM_ERR_NOMEM;
        }
    }
out:
    if (rc == DM_ERR_LIMIT) {
        /* The accounting above is meant to make this impossible. */
        dm_error_set(err, rc, "review prompt: over %d bytes", DM_REVIEW_PROMPT_MAX);
    } else if (rc) {
        dm_error_set(err, rc, "review prompt: out of memory");
    }
    if (rc) {
        dm_review_prompt_free(p);
    } else {
        *out = p;
    }
    dm_buf_free(&u);
    free(fence);
    free(lens);
    free(over);
    return rc;
}
