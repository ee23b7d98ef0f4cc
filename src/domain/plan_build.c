/*
 * plan_build: the rules' plan of a spec in the conventions of the repository it lands in (rules
 * in include/dream/domain/plan.h): resources, components and tables named from the spec, files
 * and edits in the repository's folders, case and numbering, the contract of each file, and the
 * spec items each file covers. Owns the plans it returns; no global state, any thread.
 */
#include "dream/core/buf.h"
#include "dream/core/refname.h"
#include "dream/core/text.h"
#include "dream/domain/plan.h"
#include "dream/domain/repo.h"
#include "plan_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Adds the path to the plan unless an earlier item has it. *index is the item holding the path
 * (the earlier one for a duplicate). */
static int push_item(struct dm_plan *pl, struct dm_plan_pathset *set, const char *path,
                     enum dm_plan_kind kind, const char *description, size_t *index)
{
    struct dm_plan_item *it;
    size_t slot;
    long j = dm_plan_pathset_find(set, pl, path, &slot);

    if (j >= 0) {
        *index = (size_t)j; /* de-duplicated: the earlier item wins */
        return 0;
    }
    if (pl->count >= set->cap) {
        return DM_ERR_LIMIT;
    }
    it = &pl->items[pl->count];
    it->path = strdup(path);
    it->description = strdup(description);
    it->kind = kind;
    *index = pl->count;
    pl->count++;
    if (!it->path || !it->description) {
        return DM_ERR_NOMEM;
    }
    set->slot[slot] = (unsigned short)pl->count;
    return 0;
}

/* Adds text to the item's covers (once). */
static int add_cover(struct dm_plan_item *it, const char *text)
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

/* Sets *dst to b's text (taking it); NOMEM when b failed. */
static int take_text(char **dst, struct dm_buf *b, int rc)
{
    if (rc) {
        dm_buf_free(b);
        return rc;
    }
    free(*dst);
    *dst = dm_buf_detach(b);
    return *dst ? 0 : DM_ERR_NOMEM;
}

/* ---- the conventions a plan follows ------------------------------------------------------ */

#define NAME_MAX_BYTES 48  /* a component's or a migration's name */
#define MOUNT_MAX_BYTES 96 /* a resource's mount path */

struct conv {
    const struct dm_repo *repo;
    const char *routes_dir; /* every directory ends in '/' */
    const char *components_dir;
    const char *migrations_dir;
    const char *tests_dir; /* NULL: next to the module */
    const char *entry;     /* an existing entry file of the base, or NULL */
    const char *barrel;    /* an existing components' index of the base, or NULL */
    int ts;
    enum dm_repo_http http;
    enum dm_repo_ui ui;
    enum dm_repo_db db;
    enum dm_repo_test test;
    enum dm_repo_case ccase;
    enum dm_repo_migrations scheme;
    unsigned width;
    unsigned long long last;
};

/* 1 when d is a safe relative directory ending in '/'. */
static int dir_ok(const char *d)
{
    char tmp[256];
    size_t n = d ? strlen(d) : 0;

    if (n < 2 || n >= sizeof(tmp) || d[n - 1] != '/') {
        return 0;
    }
    memcpy(tmp, d, n - 1);
    tmp[n - 1] = '\0';
    return dm_plan_path_ok(tmp);
}

/* 1 when the tree holds JavaScript sources of its own (not vendored). */
static int tree_has_js(const struct dm_repo *r)
{
    for (size_t i = 0; i < r->n_tree; i++) {
        const char *p = r->tree[i].path;
        if (strstr(p, "node_modules/")) {
            continue;
        }
        if (dm_text_ends_with(p, ".js") || dm_text_ends_with(p, ".jsx") ||
            dm_text_ends_with(p, ".mjs") || dm_text_ends_with(p, ".cjs")) {
            return 1;
        }
    }
    return 0;
}

static void conv_init(struct conv *c, const struct dm_repo *repo)
{
    const struct dm_stack *s = repo ? &repo->stack : NULL;

    memset(c, 0, sizeof(*c));
    c->repo = repo;
    c->routes_dir = "src/routes/";
    c->components_dir = "src/components/";
    c->migrations_dir = "migrations/";
    c->ts = 1;
    c->width = 4;
    if (!s) {
        return;
    }
    c->http = s->http;
    c->ui = s->ui;
    c->db = s->db;
    c->test = s->test;
    /* A repository with no JavaScript of its own (empty, or nothing recognised) gets the
     * default language. */
    c->ts = s->typescript || !tree_has_js(repo);
    if (dir_ok(s->routes_dir)) {
        c->routes_dir = s->routes_dir;
    }
    if (dir_ok(s->components_dir)) {
        c->components_dir = s->components_dir;
    }
    if (dir_ok(s->migrations_dir)) {
        c->migrations_dir = s->migrations_dir;
    }
    if (dir_ok(s->tests_dir)) {
        c->tests_dir = s->tests_dir;
    }
    /* Never an edit of a file the base does not have. */
    if (s->entry && dm_plan_path_ok(s->entry) && dm_repo_has(repo, s->entry)) {
        c->entry = s->entry;
    }
    if (s->barrel && dm_plan_path_ok(s->barrel) && dm_repo_has(repo, s->barrel)) {
        c->barrel = s->barrel;
    }
    c->ccase = s->component_case;
    c->scheme = s->migration_scheme;
    c->last = s->last_migration;
    c->width = s->migration_width;
    if (c->width == 0 || c->width > 20) {
        c->width = c->scheme == DM_REPO_MIG_TIMESTAMP ? 14 : 4;
    }
}

static const char *script_ext(const struct conv *c)
{
    return c->ts ? ".ts" : ".js";
}

/* ---- words --------------------------------------------------------------------------------- */

static int is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* The next run of ASCII letters and digits at or after *p: its start and length (0 at the end). */
static size_t next_word(const char **p, const char **start)
{
    const char *s = *p;
    size_t n = 0;

    while (*s && !is_alnum(*s)) {
        s++;
    }
    *start = s;
    while (is_alnum(s[n])) {
        n++;
    }
    *p = s + n;
    return n;
}

static int word_eq(const char *w, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n && lit[i]; i++) {
        if (lower(w[i]) != lit[i]) {
            return 0;
        }
    }
    return i == n && lit[i] == '\0';
}

static int word_in(const char *w, size_t n, const char *const *list)
{
    for (; *list; list++) {
        if (word_eq(w, n, *list)) {
            return 1;
        }
    }
    return 0;
}

static const char *const name_stop[] = {
    "a",   "an", "the", "of",  "for", "with", "and",  "to",   "on",   "in",        "by", "is",
    "are", "be", "can", "its", "all", "new",  "each", "this", "that", "component", NULL};

/* Appends up to max_words words of text that are not stop words, lower-case, joined by sep; at
 * most max bytes. Returns the length. */
static size_t words_name(char *out, size_t max, const char *text, int max_words, char sep)
{
    const char *p = text;
    const char *w;
    size_t n;
    size_t len = 0;
    int words = 0;

    while (words < max_words && (n = next_word(&p, &w)) > 0) {
        if (word_in(w, n, name_stop)) {
            continue;
        }
        if (len && len + 1 < max) {
            out[len++] = sep;
        }
        for (size_t i = 0; i < n && len + 1 < max; i++) {
            out[len++] = lower(w[i]);
        }
        words++;
    }
    while (len && out[len - 1] == sep) {
        len--;
    }
    out[len] = '\0';
    return len;
}

/* ---- routes ------------------------------------------------------------------------------- */

static const char *const methods[] = {"get",    "post", "put",     "patch",
                                      "delete", "head", "options", NULL};

struct endpoint {
    const char *method; /* the item's bytes */
    size_t mlen;
    const char *path;
    size_t plen;
};

/* "METHOD /path …" at the start of text: 1 and ep set, else 0. */
static int endpoint_parse(const char *text, struct endpoint *ep)
{
    const char *p = text;
    const char *w;
    size_t n = next_word(&p, &w);

    if (n == 0 || w != text + strspn(text, " \t`") || !word_in(w, n, methods)) {
        return 0;
    }
    while (*p == ' ' || *p == '\t' || *p == '`') {
        p++;
    }
    if (*p != '/') {
        return 0;
    }
    ep->method = w;
    ep->mlen = n;
    ep->path = p;
    ep->plen = strcspn(p, " \t`");
    return 1;
}

/* The resource of an endpoint: the first path segment after an optional /api (and a version
 * such as /v1). slug: the file name; mount: the path the module is mounted at ("/todos",
 * "/api/todos"). 0 when the path names no resource (e.g. "/" or "/:id"). */
static int endpoint_resource(const struct endpoint *ep, char *slug, char *mount, size_t mount_max)
{
    const char *p = ep->path;
    const char *end = ep->path + ep->plen;
    size_t mlen = 0;

    for (;;) {
        const char *seg;
        size_t n;
        char tmp[MOUNT_MAX_BYTES];
        int prefix;

        while (p < end && *p == '/') {
            p++;
        }
        seg = p;
        while (p < end && *p != '/' && *p != '?') {
            p++;
        }
        n = (size_t)(p - seg);
        if (n == 0 || n >= sizeof(tmp) || !is_alnum(seg[0])) {
            return 0;
        }
        prefix = (mlen == 0 && word_eq(seg, n, "api")) ||
                 (n >= 2 && lower(seg[0]) == 'v' && strspn(seg + 1, "0123456789") == n - 1);
        if (mlen + n + 2 > mount_max) {
            return 0;
        }
        mount[mlen++] = '/';
        for (size_t i = 0; i < n; i++) {
            char ch = seg[i];
            /* UTF-8 of the spec stays (it was checked); ASCII punctuation becomes '-'. */
            mount[mlen++] =
                is_alnum(ch) || ch == '-' || ch == '_' || ch == '.' || (ch & 0x80) ? ch : '-';
        }
        mount[mlen] = '\0';
        if (prefix && p < end && p + 1 < end) {
            continue;
        }
        memcpy(tmp, seg, n);
        tmp[n] = '\0';
        return dm_slugify(slug, DM_SLUG_MAX + 1, tmp) > 0;
    }
}

/* An identifier from a slug: "user-profiles" → "userProfiles" + suffix. */
static int put_ident(struct dm_buf *b, const char *slug, const char *suffix)
{
    int up = 0;
    int rc = 0;

    if (slug[0] >= '0' && slug[0] <= '9') {
        rc = dm_buf_puts(b, "r");
    }
    for (const char *p = slug; *p && !rc; p++) {
        char ch = *p;
        if (ch == '-') {
            up = 1;
            continue;
        }
        if (up && ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 'a' + 'A');
        }
        up = 0;
        rc = dm_buf_append(b, &ch, 1);
    }
    if (!rc) {
        rc = dm_buf_puts(b, suffix);
    }
    return rc;
}

/* The import path of `to` from the file `from`: "./routes/todos" (extension dropped unless
 * keep_ext). */
static int put_import(struct dm_buf *b, const char *from, const char *to, int keep_ext)
{
    const char *slash = strrchr(from, '/');
    size_t dlen = slash ? (size_t)(slash - from) + 1 : 0; /* from's directory with its '/' */
    size_t common = 0;
    const char *rest;
    const char *dot;
    const char *tslash;
    int up = 0;
    int rc = 0;

    /* The longest common directory prefix. */
    for (size_t i = 0; i < dlen && from[i] == to[i]; i++) {
        if (from[i] == '/') {
            common = i + 1;
        }
    }
    for (size_t i = common; i < dlen; i++) {
        up += from[i] == '/';
    }
    rc = up ? 0 : dm_buf_puts(b, "./");
    for (int i = 0; i < up && !rc; i++) {
        rc = dm_buf_puts(b, "../");
    }
    rest = to + common;
    tslash = strrchr(rest, '/');
    dot = strrchr(tslash ? tslash : rest, '.');
    if (!rc) {
        rc = dm_buf_append(b, rest,
                           !keep_ext && dot && dot != rest ? (size_t)(dot - rest) : strlen(rest));
    }
    return rc;
}

/* ---- components ---------------------------------------------------------------------------- */

/* 1 when w is CamelCase: an upper-case letter first, and another upper-case after a lower-case
 * one ("TodoList", "ProfileCard"). */
static int camel(const char *w, size_t n)
{
    int seen_lower = 0;

    if (!(w[0] >= 'A' && w[0] <= 'Z')) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (w[i] >= 'a' && w[i] <= 'z') {
            seen_lower = 1;
        } else if (seen_lower && w[i] >= 'A' && w[i] <= 'Z') {
            return 1;
        }
    }
    return 0;
}

/* The component an item names, in PascalCase: a CamelCase word ("TodoList shows …"), else the
 * word before "component", else the first capitalised word that is not a stop word, else its
 * first two words. 0 when there is none. */
static size_t component_name(char *out, size_t max, const char *text)
{
    const char *p = text;
    const char *w;
    const char *prev[2] = {NULL, NULL}; /* the word before, and the one before that */
    const char *pick = NULL;
    size_t prevn[2] = {0, 0};
    size_t pickn = 0;
    size_t n;
    size_t len = 0;
    char two[NAME_MAX_BYTES] = "";

    while ((n = next_word(&p, &w)) > 0) {
        if (camel(w, n)) {
            pick = w;
            pickn = n;
            two[0] = '\0';
            break;
        }
        if (!pick && !two[0] && prev[0] && word_eq(w, n, "component") &&
            !word_in(prev[0], prevn[0], name_stop)) {
            /* "a profile card component": the (up to) two words before it */
            int both = prev[1] && !word_in(prev[1], prevn[1], name_stop);
            snprintf(two, sizeof(two), "%.*s%s%.*s", both ? (int)prevn[1] : 0, both ? prev[1] : "",
                     both ? " " : "", (int)prevn[0], prev[0]);
        }
        prev[1] = prev[0];
        prevn[1] = prevn[0];
        prev[0] = w;
        prevn[0] = n;
    }
    if (!pick && two[0]) {
        text = two;
    } else if (!pick) {
        p = text;
        while ((n = next_word(&p, &w)) > 0) {
            if (w[0] >= 'A' && w[0] <= 'Z' && !word_in(w, n, name_stop)) {
                pick = w;
                pickn = n;
                break;
            }
        }
    }
    if (pick) {
        for (size_t i = 0; i < pickn && len + 1 < max; i++) {
            out[len++] = i == 0 ? (char)(lower(pick[i]) - 'a' + 'A') : pick[i];
        }
        if (!(out[0] >= 'A' && out[0] <= 'Z')) {
            out[0] = pick[0]; /* a digit */
        }
        out[len] = '\0';
        return len;
    }
    /* "todo list" → "TodoList" */
    {
        char tmp[NAME_MAX_BYTES];
        size_t t = words_name(tmp, sizeof(tmp), text, 2, ' ');
        int up = 1;
        for (size_t i = 0; i < t && len + 1 < max; i++) {
            if (tmp[i] == ' ') {
                up = 1;
                continue;
            }
            out[len++] = up && tmp[i] >= 'a' && tmp[i] <= 'z' ? (char)(tmp[i] - 'a' + 'A') : tmp[i];
            up = 0;
        }
        out[len] = '\0';
        return len;
    }
}

/* "TodoList" → "todo-list"; "HTMLView" → "html-view". */
static void kebab(char *out, size_t max, const char *pascal)
{
    size_t len = 0;

    for (size_t i = 0; pascal[i] && len + 2 < max; i++) {
        char ch = pascal[i];
        int upper = ch >= 'A' && ch <= 'Z';
        if (upper && i > 0) {
            char pr = pascal[i - 1];
            int pl = (pr >= 'a' && pr <= 'z') || (pr >= '0' && pr <= '9');
            int nl = pascal[i + 1] >= 'a' && pascal[i + 1] <= 'z';
            if (pl || (pr >= 'A' && pr <= 'Z' && nl)) {
                out[len++] = '-';
            }
        }
        out[len++] = lower(ch);
    }
    out[len] = '\0';
}

static const char *component_ext(const struct conv *c)
{
    if (c->ui == DM_REPO_UI_VUE) {
        return ".vue";
    }
    if (c->ui == DM_REPO_UI_SVELTE) {
        return ".svelte";
    }
    return c->ts ? ".tsx" : ".jsx";
}

/* ---- migrations ---------------------------------------------------------------------------- */

/* The migration's name from its item: "create_todos" for "todos table with id, …". */
static void migration_name(char *out, size_t max, const char *text, size_t pos)
{
    static const char *const alter[] = {"add",    "alter",  "change", "rename",
                                        "remove", "update", "modify", NULL};
    static const char *const drop[] = {"drop", "delete", NULL};
    static const char *const before_table[] = {"a", "an", "the", "new", "create", "add", NULL};
    static const char *const target[] = {"to", "on", "into", "from", "in", NULL};
    const char *p = text;
    const char *w;
    static const char *const adjective[] = {"virtual", "temporary", "temp", "join", "lookup", NULL};
    const char *prev = NULL;
    const char *prev2 = NULL;
    size_t prevn2 = 0;
    const char *table = NULL;
    const char *after_target = NULL;
    const char *verb = "create";
    size_t prevn = 0;
    size_t tn = 0;
    size_t an = 0;
    size_t n;
    int first = 1;
    int want_next = 0;
    int want_target = 0;
    size_t len;

    while ((n = next_word(&p, &w)) > 0) {
        /* '_' joins words of a name (user_id) */
        while (w[n] == '_' && is_alnum(w[n + 1])) {
            const char *q = w + n + 1;
            const char *w2;
            size_t n2 = next_word(&q, &w2);
            n = (size_t)(w2 + n2 - w);
            p = q;
        }
        if (first && word_in(w, n, alter)) {
            verb = "alter";
        } else if (first && word_in(w, n, drop)) {
            verb = "drop";
        }
        first = 0;
        if (want_next && (word_eq(w, n, "named") || word_eq(w, n, "called"))) {
            want_next = 2; /* "a table named tags" */
        } else if (want_next && !table) {
            table = w;
            tn = n;
        }
        want_next = want_next == 2;
        if (want_target && !after_target && !word_in(w, n, name_stop)) {
            after_target = w;
            an = n;
        }
        if (!word_in(w, n, name_stop)) {
            want_target = 0;
        }
        if (word_eq(w, n, "table") || word_eq(w, n, "tables")) {
            if (prev && word_in(prev, prevn, adjective) && prev2 &&
                !word_in(prev2, prevn2, before_table)) {
                if (!table) {
                    table = prev2; /* "search_index virtual table" */
                    tn = prevn2;
                }
            } else if (prev && !word_in(prev, prevn, before_table) &&
                       !word_in(prev, prevn, adjective)) {
                if (!table) {
                    table = prev;
                    tn = prevn;
                }
            } else {
                want_next = 1;
            }
        }
        if (word_in(w, n, target)) {
            want_target = 1;
        }
        prev2 = prev;
        prevn2 = prevn;
        prev = w;
        prevn = n;
    }
    if (!table && after_target) {
        table = after_target;
        tn = an;
    }
    len = (size_t)snprintf(out, max, "%s_", verb);
    if (table) {
        for (size_t i = 0; i < tn && len + 1 < max; i++) {
            out[len++] = is_alnum(table[i]) ? lower(table[i]) : '_';
        }
        out[len] = '\0';
    } else {
        len += words_name(out + len, max - len, text, 2, '_');
        if (out[len - 1] == '_') {
            snprintf(out, max, "item_%zu", pos + 1);
        }
    }
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

    while (*n < max && (len = next_word(&p, &w)) > 0) {
        uint32_t x = 2166136261u;
        if (len > 3 && lower(w[len - 1]) == 's' && lower(w[len - 2]) != 's') {
            len--;
        }
        if (len < 3 || word_in(w, len, match_stop)) {
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            x = (x ^ (unsigned char)lower(w[i])) * 16777619u;
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

struct impl {
    size_t item;
    int route; /* a route module (new, or an existing one the change adds routes to) */
};

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
                rc = add_cover(&pl->items[impl[f].item], text);
                found = 1;
                break;
            }
        }
    }
    for (size_t f = 0; f < n_impl && !found && !rc; f++) {
        if (kind < 0 ? impl[f].route : (int)pl->items[impl[f].item].kind == kind) {
            rc = add_cover(&pl->items[impl[f].item], text);
            of_kind = 1;
        }
    }
    found = found || of_kind;
    for (size_t f = 0; f < n_impl && !found && !rc; f++) {
        rc = add_cover(&pl->items[impl[f].item], text);
    }
    found = found || n_impl > 0;
    if (!rc && !found && pl->count) {
        rc = add_cover(&pl->items[0], text);
    }
    return rc;
}

/* Maps every requirement to the files that implement it (cover_one). */
static int cover_requirements(struct dm_plan *pl, const struct dm_spec *spec,
                              const struct impl *impl, size_t n_impl)
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

/* ---- building ------------------------------------------------------------------------------ */

/* A new module the entry mounts or the barrel re-exports. */
struct module {
    size_t item;
    char name[DM_SLUG_MAX + 1]; /* the resource slug, or the component's name */
    char mount[MOUNT_MAX_BYTES];
};

struct build {
    struct dm_plan *pl;
    struct dm_plan_pathset *set;
    const struct dm_spec *spec;
    struct conv c;
    struct impl *impl;
    size_t n_impl;
    struct module *routes; /* new route modules */
    size_t n_routes;
    struct module *comps; /* new components */
    size_t n_comps;
};

/* A group of spec items that make one file. */
struct group {
    char name[DM_SLUG_MAX + 1];
    char mount[MOUNT_MAX_BYTES];
};

/* Finds or adds the group named name; its index. */
static size_t group_of(struct group *g, size_t *n, const char *name, const char *mount)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(g[i].name, name) == 0) {
            return i;
        }
    }
    snprintf(g[*n].name, sizeof(g[*n].name), "%s", name);
    snprintf(g[*n].mount, sizeof(g[*n].mount), "%s", mount ? mount : "");
    return (*n)++;
}

/* Appends the texts of the list's items of group gi, "; "-joined, and covers them. */
static int put_texts(struct dm_buf *b, const struct dm_spec_list *l, const size_t *owner, size_t gi)
{
    int rc = 0;
    int any = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        if (owner[i] == gi) {
            rc = dm_buf_printf(b, "%s%s", any ? "; " : "", l->items[i].text);
            any = 1;
        }
    }
    return rc;
}

static int cover_group(struct dm_plan_item *it, const struct dm_spec_list *l, const size_t *owner,
                       size_t gi)
{
    int rc = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        if (owner[i] == gi) {
            rc = add_cover(it, l->items[i].text);
        }
    }
    return rc;
}

/* Pushes one file of a group; *index is its item (or the earlier one with the same path). */
static int push_group_file(struct build *bd, const char *path, enum dm_plan_kind kind,
                           const char *lead, const struct dm_spec_list *l, const size_t *owner,
                           size_t gi, size_t *index)
{
    struct dm_buf b;
    int rc;

    dm_buf_init(&b, 0);
    rc = dm_buf_puts(&b, lead);
    if (!rc) {
        rc = put_texts(&b, l, owner, gi);
    }
    if (!rc) {
        rc = push_item(bd->pl, bd->set, path, kind, b.data, index);
    }
    if (!rc) {
        rc = cover_group(&bd->pl->items[*index], l, owner, gi);
    }
    dm_buf_free(&b);
    return rc;
}

static int add_impl(struct build *bd, size_t item, int route)
{
    for (size_t i = 0; i < bd->n_impl; i++) {
        if (bd->impl[i].item == item) {
            return 0;
        }
    }
    bd->impl[bd->n_impl].item = item;
    bd->impl[bd->n_impl].route = route;
    bd->n_impl++;
    return 0;
}

/* "GET /todos, POST /todos, PATCH /todos/:id" of group gi. */
static int put_endpoints(struct dm_buf *b, const struct dm_spec_list *l, const size_t *owner,
                         size_t gi)
{
    int rc = 0;
    int any = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        struct endpoint ep;
        int seen = 0;
        if (owner[i] != gi || !endpoint_parse(l->items[i].text, &ep)) {
            continue;
        }
        for (size_t k = 0; k < i && !seen; k++) {
            struct endpoint e2;
            seen = owner[k] == gi && endpoint_parse(l->items[k].text, &e2) && e2.mlen == ep.mlen &&
                   e2.plen == ep.plen && strncasecmp(e2.method, ep.method, ep.mlen) == 0 &&
                   memcmp(e2.path, ep.path, ep.plen) == 0;
        }
        if (seen) {
            continue;
        }
        rc = dm_buf_puts(b, any ? ", " : "");
        for (size_t k = 0; k < ep.mlen && !rc; k++) {
            char ch = ep.method[k];
            ch = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
            rc = dm_buf_append(b, &ch, 1);
        }
        if (!rc) {
            rc = dm_buf_printf(b, " %.*s", (int)(ep.plen > 200 ? 200 : ep.plen), ep.path);
        }
        any = 1;
    }
    if (!rc && !any) {
        rc = dm_buf_puts(b, "the routes described");
    }
    return rc;
}

/* The contract of a route module. */
static int route_contract(struct build *bd, struct dm_plan_item *it, const struct group *g,
                          const struct dm_spec_list *l, const size_t *owner, size_t gi,
                          int existing)
{
    const struct conv *c = &bd->c;
    const char *by = c->entry ? c->entry : "the app's entry";
    struct dm_buf b;
    int rc;

    dm_buf_init(&b, 0);
    switch (c->http) {
    case DM_REPO_HTTP_EXPRESS:
        rc = dm_buf_puts(&b, "default: an express.Router() with ");
        break;
    case DM_REPO_HTTP_FASTIFY:
        rc = dm_buf_puts(&b, "default: a Fastify plugin (async function (app)) with ");
        break;
    case DM_REPO_HTTP_NEXT:
        rc = dm_buf_puts(&b, "named exports, one per method (Next.js route handlers): ");
        break;
    default:
        rc = dm_buf_puts(&b, "default: a Hono app with ");
        break;
    }
    if (!rc) {
        rc = put_endpoints(&b, l, owner, gi);
    }
    rc = take_text(&it->exports, &b, rc);
    if (rc) {
        return rc;
    }
    dm_buf_init(&b, 0);
    if (existing) {
        rc = dm_buf_printf(&b, "already in the app at %s: keep every existing route and export",
                           g->mount);
    } else if (c->http == DM_REPO_HTTP_NEXT) {
        rc = dm_buf_printf(&b, "served at %s by Next.js file routing", g->mount);
    } else if (c->http == DM_REPO_HTTP_EXPRESS) {
        rc = dm_buf_printf(&b, "app.use('%s', ...) in %s", g->mount, by);
    } else if (c->http == DM_REPO_HTTP_FASTIFY) {
        rc = dm_buf_printf(&b, "app.register(..., { prefix: '%s' }) in %s", g->mount, by);
    } else {
        rc = dm_buf_printf(&b, "mounted at %s by %s", g->mount, by);
    }
    return take_text(&it->usage, &b, rc);
}

static int plan_routes(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->api_routes;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        struct endpoint ep;
        char slug[DM_SLUG_MAX + 1];
        char mount[MOUNT_MAX_BYTES];

        int is_ep = endpoint_parse(l->items[i].text, &ep);

        if (is_ep && !endpoint_resource(&ep, slug, mount, sizeof(mount))) {
            /* A route with no resource of ASCII letters: the root, or item-N. */
            if (ep.plen == 1) {
                snprintf(slug, sizeof(slug), "root");
                snprintf(mount, sizeof(mount), "/");
            } else {
                size_t m = 0;
                snprintf(slug, sizeof(slug), "item-%zu", i + 1);
                /* Its first segment, as the spec spells it (ASCII punctuation made '-'). */
                for (size_t k = 0; k < ep.plen && m < 64 && (k == 0 || ep.path[k] != '/'); k++) {
                    char ch = ep.path[k];
                    mount[m++] = is_alnum(ch) || ch == '/' || ch == '_' || ch == '.' || (ch & 0x80)
                                     ? ch
                                     : '-';
                }
                mount[m] = '\0';
            }
        } else if (!is_ep) {
            /* No METHOD /path: a short name from its first words. */
            char words[32];
            if (words_name(words, sizeof(words), l->items[i].text, 3, '-') == 0 ||
                dm_slugify(slug, sizeof(slug), words) == 0) {
                snprintf(slug, sizeof(slug), "item-%zu", i + 1);
            }
            snprintf(mount, sizeof(mount), "/%s", slug);
        }
        owner[i] = group_of(groups, &ng, slug, mount);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        struct dm_buf path;
        struct dm_buf lead;
        size_t index;
        int existing;

        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        rc = c->http == DM_REPO_HTTP_NEXT
                 ? dm_buf_printf(&path, "%s%s/route%s", c->routes_dir, groups[gi].name,
                                 script_ext(c))
                 : dm_buf_printf(&path, "%s%s%s", c->routes_dir, groups[gi].name, script_ext(c));
        existing = !rc && dm_repo_has(c->repo, path.data);
        if (!rc) {
            rc = existing ? dm_buf_printf(&lead, "Add the routes of %s to this existing module: ",
                                          groups[gi].mount)
                          : dm_buf_printf(&lead, "The %s routes: ", groups[gi].mount);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data, existing ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_ROUTE,
                                 lead.data, l, owner, gi, &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].exports) {
            rc = route_contract(bd, &bd->pl->items[index], &groups[gi], l, owner, gi, existing);
            if (!rc && !existing) {
                struct module *m = &bd->routes[bd->n_routes++];
                m->item = index;
                snprintf(m->name, sizeof(m->name), "%s", groups[gi].name);
                snprintf(m->mount, sizeof(m->mount), "%s", groups[gi].mount);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 1);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

static int plan_components(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->ui_components;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        char name[NAME_MAX_BYTES];
        if (component_name(name, sizeof(name), l->items[i].text) == 0) {
            snprintf(name, sizeof(name), "Item%zu", i + 1);
        }
        owner[i] = group_of(groups, &ng, name, NULL);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        const char *name = groups[gi].name;
        char file[NAME_MAX_BYTES + 8];
        struct dm_buf path;
        struct dm_buf lead;
        struct dm_buf b;
        size_t index;
        int existing;

        if (c->ccase == DM_REPO_CASE_KEBAB) {
            kebab(file, sizeof(file), name);
        } else {
            snprintf(file, sizeof(file), "%s", name);
        }
        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        rc = dm_buf_printf(&path, "%s%s%s", c->components_dir, file, component_ext(c));
        existing = !rc && dm_repo_has(c->repo, path.data);
        if (!rc) {
            rc = dm_buf_printf(
                &lead,
                existing ? "Change the existing %s component: " : "The %s component: ", name);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data,
                                 existing ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_COMPONENT, lead.data,
                                 l, owner, gi, &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].exports) {
            struct dm_plan_item *it = &bd->pl->items[index];
            dm_buf_init(&b, 0);
            switch (c->ui) {
            case DM_REPO_UI_VUE:
                rc = dm_buf_printf(&b, "default: the %s single-file component (Vue)", name);
                break;
            case DM_REPO_UI_SVELTE:
                rc = dm_buf_printf(&b, "default: the %s component (Svelte)", name);
                break;
            case DM_REPO_UI_PREACT:
                rc = dm_buf_printf(&b, "named export %s (Preact component)", name);
                break;
            default:
                rc = dm_buf_printf(&b, "named export %s (React component)", name);
                break;
            }
            rc = take_text(&it->exports, &b, rc);
            dm_buf_init(&b, 0);
            if (!rc) {
                rc = existing    ? dm_buf_puts(&b, "already used by the app: keep its exports")
                     : c->barrel ? dm_buf_printf(&b, "re-exported by %s", c->barrel)
                                 : dm_buf_puts(&b, "imported by the pages that show it");
                rc = take_text(&it->usage, &b, rc);
            } else {
                dm_buf_free(&b);
            }
            if (!rc && !existing) {
                struct module *m = &bd->comps[bd->n_comps++];
                m->item = index;
                snprintf(m->name, sizeof(m->name), "%s", name);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 0);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

static int plan_migrations(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->db_changes;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        char name[NAME_MAX_BYTES];
        migration_name(name, sizeof(name), l->items[i].text, i);
        owner[i] = group_of(groups, &ng, name, NULL);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        unsigned long long number = c->last + 1 + gi;
        struct dm_buf path;
        struct dm_buf lead;
        struct dm_buf b;
        size_t index;

        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        if (c->db == DM_REPO_DB_PRISMA) {
            rc = dm_buf_printf(&path, "%s%0*llu_%s/migration.sql", c->migrations_dir, (int)c->width,
                               number, groups[gi].name);
        } else {
            rc = dm_buf_printf(&path, "%s%0*llu_%s%s", c->migrations_dir, (int)c->width, number,
                               groups[gi].name, c->db == DM_REPO_DB_KNEX ? script_ext(c) : ".sql");
        }
        if (!rc) {
            rc = dm_buf_printf(&lead, "Migration %s: ", groups[gi].name);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data, DM_PLAN_KIND_MIGRATION, lead.data, l, owner, gi,
                                 &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].usage) {
            struct dm_plan_item *it = &bd->pl->items[index];
            if (c->db == DM_REPO_DB_KNEX) {
                dm_buf_init(&b, 0);
                rc = take_text(&it->exports, &b,
                               dm_buf_puts(&b, "up(knex) and down(knex), as Knex migrations do"));
            }
            dm_buf_init(&b, 0);
            if (!rc) {
                rc = take_text(&it->usage, &b,
                               c->db == DM_REPO_DB_KNEX
                                   ? dm_buf_puts(&b, "run by knex migrate:latest after the "
                                                     "existing migrations")
                                   : dm_buf_puts(&b, "applied in order after the existing "
                                                     "migrations"));
            } else {
                dm_buf_free(&b);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 0);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

/* A test next to each new route module (or in the tests folder) when there is a test runner. */
static int plan_tests(struct build *bd)
{
    const struct conv *c = &bd->c;
    int rc = 0;

    if (c->test == DM_REPO_TEST_NONE) {
        return 0;
    }
    for (size_t i = 0; i < bd->n_routes && !rc; i++) {
        const struct dm_plan_item *mod = &bd->pl->items[bd->routes[i].item];
        const char *mpath = mod->path;
        const char *slash = strrchr(mpath, '/');
        struct dm_buf path;
        struct dm_buf d;
        size_t index;

        dm_buf_init(&path, 0);
        dm_buf_init(&d, 0);
        if (c->tests_dir) {
            rc = dm_buf_printf(&path, "%s%s.test%s", c->tests_dir, bd->routes[i].name,
                               script_ext(c));
        } else if (c->http == DM_REPO_HTTP_NEXT) {
            rc = dm_buf_printf(&path, "%.*sroute.test%s", (int)(slash - mpath + 1), mpath,
                               script_ext(c));
        } else {
            rc = dm_buf_printf(&path, "%s%s.test%s", c->routes_dir, bd->routes[i].name,
                               script_ext(c));
        }
        if (!rc) {
            rc = dm_buf_printf(&d, "Tests of %s with %s: each endpoint's success and error cases (",
                               mpath, dm_repo_test_name(c->test));
        }
        if (!rc) {
            const char *ex = mod->exports ? strstr(mod->exports, " with ") : NULL;
            rc = dm_buf_printf(&d, "%s)", ex ? ex + 6 : bd->routes[i].mount);
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, path.data,
                           dm_repo_has(c->repo, path.data) ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_TEST,
                           d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_printf(&b, "run by %s", dm_repo_test_name(c->test)));
        }
        dm_buf_free(&path);
        dm_buf_free(&d);
    }
    return rc;
}

/* Edits of the entry (mount the new route modules) and the barrel (re-export the new
 * components), when the base has them. */
static int plan_edits(struct build *bd)
{
    const struct conv *c = &bd->c;
    struct dm_buf d;
    size_t index;
    int rc = 0;

    dm_buf_init(&d, 0);
    if (bd->n_routes && c->entry && c->http != DM_REPO_HTTP_NEXT) {
        rc = dm_buf_puts(&d, "Mount the new route modules and keep every existing line: ");
        for (size_t i = 0; i < bd->n_routes && !rc; i++) {
            const struct module *m = &bd->routes[i];
            rc = dm_buf_puts(&d, i ? "; import " : "import ");
            if (!rc) {
                rc = put_ident(&d, m->name, "Routes");
            }
            if (!rc) {
                rc = dm_buf_puts(&d, " from '");
            }
            if (!rc) {
                rc = put_import(&d, c->entry, bd->pl->items[m->item].path, 0);
            }
            if (!rc) {
                rc = dm_buf_puts(&d, "' and ");
            }
            if (!rc) {
                rc = c->http == DM_REPO_HTTP_EXPRESS ? dm_buf_printf(&d, "app.use('%s', ", m->mount)
                     : c->http == DM_REPO_HTTP_FASTIFY
                         ? dm_buf_puts(&d, "app.register(")
                         : dm_buf_printf(&d, "app.route('%s', ", m->mount);
            }
            if (!rc) {
                rc = put_ident(&d, m->name, "Routes");
            }
            if (!rc) {
                rc = c->http == DM_REPO_HTTP_FASTIFY
                         ? dm_buf_printf(&d, ", { prefix: '%s' })", m->mount)
                         : dm_buf_puts(&d, ")");
            }
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, c->entry, DM_PLAN_KIND_EDIT, d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_puts(&b, "the app's entry: every existing export and route "
                                           "registration stays"));
        }
    }
    dm_buf_reset(&d);
    if (!rc && bd->n_comps && c->barrel) {
        int keep_ext = c->ui == DM_REPO_UI_VUE || c->ui == DM_REPO_UI_SVELTE;
        rc = dm_buf_puts(&d, "Re-export the new components and keep every existing export: ");
        for (size_t i = 0; i < bd->n_comps && !rc; i++) {
            const struct module *m = &bd->comps[i];
            rc = keep_ext ? dm_buf_printf(&d, "%sexport { default as %s } from '", i ? "; " : "",
                                          m->name)
                          : dm_buf_printf(&d, "%sexport { %s } from '", i ? "; " : "", m->name);
            if (!rc) {
                rc = put_import(&d, c->barrel, bd->pl->items[m->item].path, keep_ext);
            }
            if (!rc) {
                rc = dm_buf_puts(&d, "'");
            }
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, c->barrel, DM_PLAN_KIND_EDIT, d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_puts(&b, "the components' index: every existing export stays"));
        }
    }
    dm_buf_free(&d);
    return rc;
}

int dm_plan_build(struct dm_plan **out, const struct dm_spec *spec, const char *branch_prefix,
                  const struct dm_repo *repo, struct dm_error *err)
{
    struct dm_plan *pl;
    struct build bd;
    struct dm_buf b;
    char slug[DM_SLUG_MAX + 1];
    char path[sizeof(slug) + sizeof(DM_PLAN_SPEC_DIR) + 4];
    struct dm_plan_pathset *set = calloc(1, sizeof(*set));
    size_t n_api = spec->api_routes.count;
    size_t n_ui = spec->ui_components.count;
    size_t n_db = spec->db_changes.count;
    size_t index;
    int rc = 0;

    *out = NULL;
    memset(&bd, 0, sizeof(bd));
    dm_buf_init(&b, 0);
    if (!set) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory building the plan");
    }
    /* Allocated once: the spec document, a file per item at most, a test per route module, the
     * entry and the barrel. */
    set->cap = 1 + 2 * n_api + n_ui + n_db + 2;
    if (set->cap > DM_PLAN_MAX_ITEMS) {
        set->cap = DM_PLAN_MAX_ITEMS;
    }
    if (!branch_prefix) {
        branch_prefix = DM_PLAN_DEFAULT_PREFIX;
    }
    pl = calloc(1, sizeof(*pl));
    if (pl) {
        pl->items = calloc(set->cap, sizeof(*pl->items));
    }
    bd.impl = calloc(n_api + n_ui + n_db + 1, sizeof(*bd.impl));
    bd.routes = calloc(n_api + 1, sizeof(*bd.routes));
    bd.comps = calloc(n_ui + 1, sizeof(*bd.comps));
    if (!pl || !pl->items || !bd.impl || !bd.routes || !bd.comps) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (dm_slugify(slug, sizeof(slug), spec->title) == 0) {
        snprintf(slug, sizeof(slug), "spec");
    }
    pl->title = strdup(spec->title);
    if (!pl->title) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = dm_buf_printf(&b, "%s%s", branch_prefix, slug);
    if (rc) {
        goto out;
    }
    pl->branch = dm_buf_detach(&b);
    if (!pl->branch) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (!dm_refname_valid(pl->branch)) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "branch \"%.300s\" (prefix \"%.200s\") is not a valid git branch name",
                          pl->branch, branch_prefix);
        goto out;
    }
    rc = dm_buf_printf(&b, "[Dream] %s", spec->title);
    if (rc) {
        goto out;
    }
    pl->pr_title = dm_buf_detach(&b);
    if (!pl->pr_title) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (repo) {
        pl->stack = dm_stack_describe(&repo->stack);
        if (!pl->stack) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    }
    bd.pl = pl;
    bd.set = set;
    bd.spec = spec;
    conv_init(&bd.c, repo);
    snprintf(path, sizeof(path), "%s%s.md", DM_PLAN_SPEC_DIR, slug);
    rc = dm_buf_printf(&b, "Spec: %s", spec->title);
    if (!rc) {
        rc = push_item(pl, set, path, DM_PLAN_KIND_SPEC, b.data, &index);
    }
    if (!rc) {
        rc = plan_routes(&bd);
    }
    if (!rc) {
        rc = plan_components(&bd);
    }
    if (!rc) {
        rc = plan_migrations(&bd);
    }
    if (!rc) {
        rc = plan_tests(&bd);
    }
    if (!rc) {
        rc = plan_edits(&bd);
    }
    if (!rc) {
        rc = cover_requirements(pl, spec, bd.impl, bd.n_impl);
    }
    if (rc == DM_ERR_LIMIT) {
        dm_error_set(err, rc, "plan has more than %d items", DM_PLAN_MAX_ITEMS);
    } else if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "out of memory building the plan");
    }
    if (rc) {
        goto out;
    }
    *out = pl;
    pl = NULL;
out:
    free(set);
    free(bd.impl);
    free(bd.routes);
    free(bd.comps);
    dm_buf_free(&b);
    dm_plan_free(pl);
    return rc;
}
