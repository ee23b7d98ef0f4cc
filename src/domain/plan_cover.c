/*
 * plan_cover: which spec requirements each planned file covers (dm_plan_cover and the covers
 * the rules planner gives its implementation files): significant words hashed per file and
 * matched per requirement. Pure, no state, any thread.
 */
#include "dream/domain/plan.h"
#include "plan_rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Adds text to the item's covers (once). */
int plan_add_cover(struct dm_plan_item *it, const char *text)
{
    char **v;

    for (size_t i = 0; i < it->n_covers; i++) {
        if (strcmp(it->covers[i], text) == 0) {
            return 0;
        }
    }
    if (it->n_covers >= DM_PLAN_MAX_COVERS) {
        return 0; /* what plan JSON can hold */
    }
    v = realloc(it->covers, (it->n_covers + 1) * sizeof(*v));
    if (!v) {
        return DM_ERR_NOMEM;
    }
    it->covers = v;
    v[it->n_covers] = strdup(text);
    if (!v[it->n_covers]) {
        return DM_ERR_NOMEM;
    }
    it->n_covers++;
    return 0;
}

/* ---- requirements → files ------------------------------------------------------------------ */

#define WORDS_PER_FILE 96
#define WORDS_PER_REQ 32

static const char *const match_stop[] = {
    "the",  "and",  "with",   "for",  "from", "into", "can",   "are",    "its",   "their", "them",
    "they", "this", "that",   "has",  "have", "was",  "not",   "any",    "per",   "via",   "each",
    "all",  "user", "should", "must", "will", "able", "may",   "when",   "then",  "than",  "one",
    "only", "also", "new",    "get",  "post", "put",  "patch", "delete", "table", NULL};

/* Hashes of the significant words of text (length >= 3, not a stop word, a final 's' dropped),
 * added to h[*n..max). */
static void word_hashes(uint32_t *h, size_t *n, size_t max, const char *text)
{
    const char *p = text;
    const char *w;
    size_t len;

    while (*n < max && (len = plan_next_word(&p, &w)) > 0) {
        uint32_t x = 2166136261u;
        if (len > 3 && plan_lower(w[len - 1]) == 's' && plan_lower(w[len - 2]) != 's') {
            len--;
        }
        if (len < 3 || plan_word_in(w, len, match_stop)) {
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            x = (x ^ (unsigned char)plan_lower(w[i])) * 16777619u;
        }
        h[(*n)++] = x;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The significant words of the implementation files: from their covers, else their
 * description. */
struct windex {
    uint32_t *words; /* WORDS_PER_FILE per file, sorted */
    size_t *nw;
};

static int windex_build(struct windex *x, const struct dm_plan *pl, const struct impl *impl,
                        size_t n_impl)
{
    x->words = calloc(n_impl ? n_impl * WORDS_PER_FILE : 1, sizeof(*x->words));
    x->nw = calloc(n_impl ? n_impl : 1, sizeof(*x->nw));
    if (!x->words || !x->nw) {
        return DM_ERR_NOMEM;
    }
    for (size_t f = 0; f < n_impl; f++) {
        const struct dm_plan_item *it = &pl->items[impl[f].item];
        uint32_t *w = x->words + f * WORDS_PER_FILE;
        for (size_t k = 0; k < it->n_covers; k++) {
            word_hashes(w, &x->nw[f], WORDS_PER_FILE, it->covers[k]);
        }
        if (it->n_covers == 0 && it->description) {
            word_hashes(w, &x->nw[f], WORDS_PER_FILE, it->description);
        }
        qsort(w, x->nw[f], sizeof(*w), cmp_u32);
    }
    return 0;
}

static void windex_free(struct windex *x)
{
    free(x->words);
    free(x->nw);
}

/* 1 when file f may implement an item of category kind (-1: a requirement, any file). */
static int fits(const struct dm_plan *pl, const struct impl *im, int kind)
{
    enum dm_plan_kind k = pl->items[im->item].kind;
    return kind < 0 || (int)k == kind || k == DM_PLAN_KIND_FILE || k == DM_PLAN_KIND_EDIT;
}

/* Adds text to the covers of the files that implement it: those that fit its category and share
 * a significant word with it; else the files of its kind (a requirement: the route modules);
 * else every implementation file; else the spec document (items[0]). */
static int cover_one(struct dm_plan *pl, const struct windex *x, const struct impl *impl,
                     size_t n_impl, const char *text, int kind)
{
    uint32_t rw[WORDS_PER_REQ];
    size_t nr = 0;
    int found = 0;
    int of_kind = 0;
    int rc = 0;

    word_hashes(rw, &nr, WORDS_PER_REQ, text);
    for (size_t f = 0; f < n_impl && !rc; f++) {
        if (!fits(pl, &impl[f], kind)) {
            continue;
        }
        for (size_t k = 0; k < nr; k++) {
            if (bsearch(&rw[k], x->words + f * WORDS_PER_FILE, x->nw[f], sizeof(*x->words),
                        cmp_u32)) {
                rc = plan_add_cover(&pl->items[impl[f].item], text);
                found = 1;
                break;
            }
        }
    }
    for (size_t f = 0; f < n_impl && !found && !rc; f++) {
        if (kind < 0 ? impl[f].route : (int)pl->items[impl[f].item].kind == kind) {
            rc = plan_add_cover(&pl->items[impl[f].item], text);
            of_kind = 1;
        }
    }
    found = found || of_kind;
    for (size_t f = 0; f < n_impl && !found && !rc; f++) {
        rc = plan_add_cover(&pl->items[impl[f].item], text);
    }
    found = found || n_impl > 0;
    if (!rc && !found && pl->count) {
        rc = plan_add_cover(&pl->items[0], text);
    }
    return rc;
}

/* Maps every requirement to the files that implement it (cover_one). */
int plan_cover_requirements(struct dm_plan *pl, const struct dm_spec *spec, const struct impl *impl,
                            size_t n_impl)
{
    struct windex x;
    int rc;

    if (spec->requirements.count == 0) {
        return 0;
    }
    rc = windex_build(&x, pl, impl, n_impl);
    for (size_t r = 0; r < spec->requirements.count && !rc; r++) {
        rc = cover_one(pl, &x, impl, n_impl, spec->requirements.items[r].text, -1);
    }
    windex_free(&x);
    return rc;
}

static int is_covered(const struct dm_plan *pl, const char *text)
{
    for (size_t i = 0; i < pl->count; i++) {
        for (size_t k = 0; k < pl->items[i].n_covers; k++) {
            if (strcmp(pl->items[i].covers[k], text) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

int dm_plan_cover(struct dm_plan *plan, const struct dm_spec *spec)
{
    const struct {
        const struct dm_spec_list *list;
        int kind;
    } cats[] = {{&spec->api_routes, DM_PLAN_KIND_ROUTE},
                {&spec->ui_components, DM_PLAN_KIND_COMPONENT},
                {&spec->db_changes, DM_PLAN_KIND_MIGRATION},
                {&spec->requirements, -1}};
    struct impl *impl = calloc(plan->count ? plan->count : 1, sizeof(*impl));
    struct windex x = {NULL, NULL};
    size_t n_impl = 0;
    int rc = 0;

    if (!impl) {
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < plan->count; i++) {
        enum dm_plan_kind k = plan->items[i].kind;
        if (k != DM_PLAN_KIND_SPEC && k != DM_PLAN_KIND_TEST) {
            impl[n_impl].item = i;
            impl[n_impl].route = k == DM_PLAN_KIND_ROUTE;
            n_impl++;
        }
    }
    /* The words are those of the files as they came: what this adds does not feed itself. */
    rc = windex_build(&x, plan, impl, n_impl);
    for (size_t c = 0; c < sizeof(cats) / sizeof(cats[0]) && !rc; c++) {
        for (size_t i = 0; i < cats[c].list->count && !rc; i++) {
            const char *text = cats[c].list->items[i].text;
            if (!is_covered(plan, text)) {
                rc = cover_one(plan, &x, impl, n_impl, text, cats[c].kind);
            }
        }
    }
    windex_free(&x);
    free(impl);
    return rc;
}
