/*
 * plan_names: the rules planner's naming in a repository's conventions (see plan_rules.h): the
 * conventions read off the base (folders, language, case, migration numbering), spec words,
 * route endpoints and their resources, identifiers and imports, component names and cases,
 * migration names. Pure, no state, any thread.
 */
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "dream/domain/plan.h"
#include "dream/domain/repo.h"
#include "plan_internal.h"
#include "plan_rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void plan_conv_init(struct conv *c, const struct dm_repo *repo)
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

const char *plan_script_ext(const struct conv *c)
{
    return c->ts ? ".ts" : ".js";
}

/* ---- words --------------------------------------------------------------------------------- */

int plan_is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

char plan_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* The next run of ASCII letters and digits at or after *p: its start and length (0 at the end). */
size_t plan_next_word(const char **p, const char **start)
{
    const char *s = *p;
    size_t n = 0;

    while (*s && !plan_is_alnum(*s)) {
        s++;
    }
    *start = s;
    while (plan_is_alnum(s[n])) {
        n++;
    }
    *p = s + n;
    return n;
}

static int word_eq(const char *w, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n && lit[i]; i++) {
        if (plan_lower(w[i]) != lit[i]) {
            return 0;
        }
    }
    return i == n && lit[i] == '\0';
}

int plan_word_in(const char *w, size_t n, const char *const *list)
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
size_t plan_words_name(char *out, size_t max, const char *text, int max_words, char sep)
{
    const char *p = text;
    const char *w;
    size_t n;
    size_t len = 0;
    int words = 0;

    while (words < max_words && (n = plan_next_word(&p, &w)) > 0) {
        if (plan_word_in(w, n, name_stop)) {
            continue;
        }
        if (len && len + 1 < max) {
            out[len++] = sep;
        }
        for (size_t i = 0; i < n && len + 1 < max; i++) {
            out[len++] = plan_lower(w[i]);
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

/* "METHOD /path …" at the start of text: 1 and ep set, else 0. */
int plan_endpoint_parse(const char *text, struct endpoint *ep)
{
    const char *p = text;
    const char *w;
    size_t n = plan_next_word(&p, &w);

    if (n == 0 || w != text + strspn(text, " \t`") || !plan_word_in(w, n, methods)) {
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
int plan_endpoint_resource(const struct endpoint *ep, char *slug, char *mount, size_t mount_max)
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
        if (n == 0 || n >= sizeof(tmp) || !plan_is_alnum(seg[0])) {
            return 0;
        }
        prefix = (mlen == 0 && word_eq(seg, n, "api")) ||
                 (n >= 2 && plan_lower(seg[0]) == 'v' && strspn(seg + 1, "0123456789") == n - 1);
        if (mlen + n + 2 > mount_max) {
            return 0;
        }
        mount[mlen++] = '/';
        for (size_t i = 0; i < n; i++) {
            char ch = seg[i];
            /* UTF-8 of the spec stays (it was checked); ASCII punctuation becomes '-'. */
            mount[mlen++] =
                plan_is_alnum(ch) || ch == '-' || ch == '_' || ch == '.' || (ch & 0x80) ? ch : '-';
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
int plan_put_ident(struct dm_buf *b, const char *slug, const char *suffix)
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
int plan_put_import(struct dm_buf *b, const char *from, const char *to, int keep_ext)
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
size_t plan_component_name(char *out, size_t max, const char *text)
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

    while ((n = plan_next_word(&p, &w)) > 0) {
        if (camel(w, n)) {
            pick = w;
            pickn = n;
            two[0] = '\0';
            break;
        }
        if (!pick && !two[0] && prev[0] && word_eq(w, n, "component") &&
            !plan_word_in(prev[0], prevn[0], name_stop)) {
            /* "a profile card component": the (up to) two words before it */
            int both = prev[1] && !plan_word_in(prev[1], prevn[1], name_stop);
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
        while ((n = plan_next_word(&p, &w)) > 0) {
            if (w[0] >= 'A' && w[0] <= 'Z' && !plan_word_in(w, n, name_stop)) {
                pick = w;
                pickn = n;
                break;
            }
        }
    }
    if (pick) {
        for (size_t i = 0; i < pickn && len + 1 < max; i++) {
            out[len++] = i == 0 ? (char)(plan_lower(pick[i]) - 'a' + 'A') : pick[i];
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
        size_t t = plan_words_name(tmp, sizeof(tmp), text, 2, ' ');
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
void plan_kebab(char *out, size_t max, const char *pascal)
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
        out[len++] = plan_lower(ch);
    }
    out[len] = '\0';
}

const char *plan_component_ext(const struct conv *c)
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
void plan_migration_name(char *out, size_t max, const char *text, size_t pos)
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

    while ((n = plan_next_word(&p, &w)) > 0) {
        /* '_' joins words of a name (user_id) */
        while (w[n] == '_' && plan_is_alnum(w[n + 1])) {
            const char *q = w + n + 1;
            const char *w2;
            size_t n2 = plan_next_word(&q, &w2);
            n = (size_t)(w2 + n2 - w);
            p = q;
        }
        if (first && plan_word_in(w, n, alter)) {
            verb = "alter";
        } else if (first && plan_word_in(w, n, drop)) {
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
        if (want_target && !after_target && !plan_word_in(w, n, name_stop)) {
            after_target = w;
            an = n;
        }
        if (!plan_word_in(w, n, name_stop)) {
            want_target = 0;
        }
        if (word_eq(w, n, "table") || word_eq(w, n, "tables")) {
            if (prev && plan_word_in(prev, prevn, adjective) && prev2 &&
                !plan_word_in(prev2, prevn2, before_table)) {
                if (!table) {
                    table = prev2; /* "search_index virtual table" */
                    tn = prevn2;
                }
            } else if (prev && !plan_word_in(prev, prevn, before_table) &&
                       !plan_word_in(prev, prevn, adjective)) {
                if (!table) {
                    table = prev;
                    tn = prevn;
                }
            } else {
                want_next = 1;
            }
        }
        if (plan_word_in(w, n, target)) {
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
            out[len++] = plan_is_alnum(table[i]) ? plan_lower(table[i]) : '_';
        }
        out[len] = '\0';
    } else {
        len += plan_words_name(out + len, max - len, text, 2, '_');
        if (out[len - 1] == '_') {
            snprintf(out, max, "item_%zu", pos + 1);
        }
    }
}
