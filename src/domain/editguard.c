/*
 * editguard: exports, route registrations and lines of an edited file against its base (rules
 * in include/dream/domain/editguard.h). Owns nothing beyond one call. Pure; any thread. Lines
 * go through one open-addressing hash table (FNV-1a), so the check is linear.
 */
#include "dream/domain/editguard.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "dream/domain/exports.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct line_slot {
    const char *s; /* NULL: empty slot */
    size_t len;
    size_t count;
};

struct line_set {
    struct line_slot *slots;
    size_t mask;
};

static const char *const manifests[] = {"package.json", "package-lock.json", "npm-shrinkwrap.json",
                                        "yarn.lock", "pnpm-lock.yaml"};

int dm_editguard_path_allowed(const char *path, struct dm_error *err)
{
    const char *base;

    if (!path) {
        dm_error_set(err, DM_ERR_UNSAFE, "edit guard: no path");
        return 0;
    }
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof(manifests) / sizeof(manifests[0]); i++) {
        if (strcmp(base, manifests[i]) == 0) {
            dm_error_set(err, DM_ERR_UNSAFE,
                         "edit of %.300s refused: dependency manifests are never edited "
                         "silently; a dependency change needs a person's approval",
                         path);
            return 0;
        }
    }
    return 1;
}

static uint64_t hash_line(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Next line of s[*i..len), trimmed of blanks at both ends; 0 at the end of input. */
static int next_line(const char *s, size_t len, size_t *i, const char **ls, size_t *ll)
{
    const char *p;
    const char *e;
    const char *nl;

    if (*i >= len) {
        return 0;
    }
    p = s + *i;
    nl = memchr(p, '\n', len - *i);
    e = nl ? nl : s + len;
    *i = nl ? (size_t)(nl - s) + 1 : len;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v')) {
        p++;
    }
    while (e > p &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\f' || e[-1] == '\v')) {
        e--;
    }
    *ls = p;
    *ll = (size_t)(e - p);
    return 1;
}

static struct line_slot *slot_of(struct line_set *set, const char *s, size_t len)
{
    size_t k = (size_t)hash_line(s, len) & set->mask;
    for (;;) {
        struct line_slot *sl = &set->slots[k];
        if (!sl->s || (sl->len == len && memcmp(sl->s, s, len) == 0)) {
            return sl;
        }
        k = (k + 1) & set->mask;
    }
}

static int set_build(struct line_set *set, const char *s, size_t len)
{
    size_t lines = 1;
    size_t cap = 16;
    size_t i = 0;
    const char *ls;
    size_t ll;

    for (size_t k = 0; k < len; k++) {
        lines += s[k] == '\n';
    }
    while (cap < lines * 2) {
        cap *= 2;
    }
    set->slots = calloc(cap, sizeof(*set->slots));
    if (!set->slots) {
        return DM_ERR_NOMEM;
    }
    set->mask = cap - 1;
    while (next_line(s, len, &i, &ls, &ll)) {
        struct line_slot *sl;
        if (!ll) {
            continue;
        }
        sl = slot_of(set, ls, ll);
        sl->s = ls;
        sl->len = ll;
        sl->count++;
    }
    return 0;
}

static int put_list(struct dm_buf *b, const char *what, char *const *names, size_t n,
                    const struct dm_exports *now, int routes, size_t *dropped)
{
    size_t listed = 0;
    int rc = 0;

    *dropped = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        int kept =
            routes ? dm_exports_has_route(now, names[i]) : dm_exports_has_name(now, names[i]);
        if (kept) {
            continue;
        }
        if (!*dropped) {
            rc = dm_buf_printf(b, "%s%s: ", b->len ? "; " : "", what);
        } else if (listed < DM_EDITGUARD_NAMES_LISTED) {
            rc = dm_buf_puts(b, ", ");
        }
        (*dropped)++;
        if (!rc && listed < DM_EDITGUARD_NAMES_LISTED) {
            rc = dm_buf_puts(b, names[i]);
            listed++;
        }
    }
    if (!rc && *dropped > listed) {
        rc = dm_buf_printf(b, " and %zu more", *dropped - listed);
    }
    return rc;
}

/* Exports and route registrations of base that edited lost, appended to b. */
static int check_exports(struct dm_buf *b, const char *base, size_t base_len, const char *edited,
                         size_t edited_len, size_t *dropped, struct dm_error *err)
{
    struct dm_exports before;
    struct dm_exports after;
    size_t d1 = 0;
    size_t d2 = 0;
    int rc;

    *dropped = 0;
    rc = dm_exports_read(&before, base, base_len, err);
    if (rc) {
        return rc;
    }
    rc = dm_exports_read(&after, edited, edited_len, err);
    if (rc) {
        dm_exports_clear(&before);
        return rc;
    }
    rc = put_list(b, "drops existing exports", before.names, before.n_names, &after, 0, &d1);
    if (!rc) {
        rc = put_list(b, "drops route registrations", before.routes, before.n_routes, &after, 1,
                      &d2);
    }
    dm_exports_clear(&before);
    dm_exports_clear(&after);
    *dropped = d1 + d2;
    return rc;
}

/* The share of base's non-blank lines missing from edited; over the limit, appended to b. */
static int check_lines(struct dm_buf *b, const char *base, size_t base_len, const char *edited,
                       size_t edited_len, unsigned pct, int *over)
{
    struct line_set set = {0};
    size_t total = 0;
    size_t removed = 0;
    size_t listed = 0;
    size_t i = 0;
    const char *ls;
    size_t ll;
    struct dm_buf names;
    int rc;

    *over = 0;
    dm_buf_init(&names, 0);
    rc = set_build(&set, edited, edited_len);
    while (!rc && next_line(base, base_len, &i, &ls, &ll)) {
        struct line_slot *sl;
        if (!ll) {
            continue;
        }
        total++;
        sl = slot_of(&set, ls, ll);
        if (sl->s && sl->count) {
            sl->count--;
            continue;
        }
        removed++;
        if (listed < DM_EDITGUARD_NAMES_LISTED) {
            rc = dm_buf_puts(&names, listed ? ", `" : ": `");
            if (!rc) {
                rc = dm_text_put_chars(&names, ls, ll, 80);
            }
            if (!rc) {
                rc = dm_buf_puts(&names, "`");
            }
            listed++;
        }
    }
    if (!rc && total && pct < 100 && removed * 100 > (size_t)pct * total) {
        *over = 1;
        rc = dm_buf_printf(b, "%sremoves %zu of %zu existing lines (%zu%%, limit %u%%)",
                           b->len ? "; " : "", removed, total, removed * 100 / total, pct);
        if (!rc && names.len) {
            rc = dm_buf_append(b, names.data, names.len);
        }
        if (!rc && removed > listed) {
            rc = dm_buf_printf(b, " and %zu more", removed - listed);
        }
    }
    free(set.slots);
    dm_buf_free(&names);
    return rc;
}

int dm_editguard_check(const char *path, const char *base, size_t base_len, const char *edited,
                       size_t edited_len, unsigned max_removed_pct, struct dm_error *err)
{
    struct dm_buf b;
    size_t dropped = 0;
    int over = 0;
    int rc = 0;

    if (!dm_editguard_path_allowed(path, err)) {
        return DM_ERR_UNSAFE;
    }
    if (!base) {
        base = "";
        base_len = 0;
    }
    if (!edited) {
        edited = "";
        edited_len = 0;
    }
    if (!max_removed_pct) {
        max_removed_pct = DM_EDITGUARD_MAX_REMOVED_PCT;
    }
    dm_buf_init(&b, 0);
    if (dm_exports_path_is_script(path)) {
        rc = check_exports(&b, base, base_len, edited, edited_len, &dropped, err);
    }
    if (!rc) {
        rc = check_lines(&b, base, base_len, edited, edited_len, max_removed_pct, &over);
    }
    if (rc) {
        dm_buf_free(&b);
        return dm_error_set(err, DM_ERR_NOMEM, "edit guard: out of memory");
    }
    if (dropped || over) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "edit of %.200s %.3000s; keep every existing export, route "
                          "registration and line, and only add what the task asks",
                          path, b.data);
    }
    dm_buf_free(&b);
    return rc;
}

static int word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int has_removal_word(const char *s)
{
    static const char *const words[] = {
        "remove",   "removes",   "removed",     "removing", "removal", "replace", "replaces",
        "replaced", "replacing", "replacement", "rename",   "renames", "renamed", "renaming"};
    size_t i = 0;

    if (!s) {
        return 0;
    }
    while (s[i]) {
        size_t start;
        char w[16];
        size_t n = 0;
        while (s[i] && !word_char((unsigned char)s[i])) {
            i++;
        }
        start = i;
        while (s[i] && word_char((unsigned char)s[i])) {
            if (n < sizeof(w) - 1) {
                char c = s[i];
                w[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            }
            i++;
        }
        if (i - start >= sizeof(w) - 1) {
            continue;
        }
        w[n] = '\0';
        for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
            if (strcmp(w, words[k]) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

static int list_has_removal(const struct dm_spec_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        if (has_removal_word(l->items[i].text) || has_removal_word(l->items[i].context)) {
            return 1;
        }
    }
    return 0;
}

int dm_editguard_spec_allows_removal(const struct dm_spec *spec)
{
    if (!spec) {
        return 0;
    }
    return has_removal_word(spec->title) || has_removal_word(spec->overview) ||
           has_removal_word(spec->preamble) || list_has_removal(&spec->requirements) ||
           list_has_removal(&spec->api_routes) || list_has_removal(&spec->db_changes) ||
           list_has_removal(&spec->ui_components);
}

int dm_editguard_flag(struct dm_findings *found, const char *path, const char *base,
                      size_t base_len, const char *edited, size_t edited_len,
                      unsigned max_removed_pct, struct dm_error *err)
{
    struct dm_error why;
    struct dm_finding *it;
    const char *m;
    size_t o = 0;
    int rc = dm_editguard_check(path, base, base_len, edited, edited_len, max_removed_pct, &why);

    if (rc == 0) {
        return 0;
    }
    if (rc != DM_ERR_INVALID && rc != DM_ERR_UNSAFE) {
        return dm_error_set(err, rc, "%s", why.msg);
    }
    found->count[DM_FINDING_DESTRUCTIVE]++;
    if ((int)DM_SEVERITY_HIGH > found->max_severity) {
        found->max_severity = (int)DM_SEVERITY_HIGH;
    }
    if (found->len >= DM_SAFETY_FINDINGS_MAX) {
        found->dropped++;
        return 0;
    }
    if (found->len == found->cap) {
        size_t cap = found->cap ? found->cap * 2 : 8;
        struct dm_finding *items = realloc(found->items, cap * sizeof(*items));
        if (!items) {
            return dm_error_set(err, DM_ERR_NOMEM, "edit guard: out of memory");
        }
        found->items = items;
        found->cap = cap;
    }
    it = &found->items[found->len];
    memset(it, 0, sizeof(*it));
    it->path = strdup(path ? path : "");
    if (!it->path) {
        return dm_error_set(err, DM_ERR_NOMEM, "edit guard: out of memory");
    }
    it->kind = DM_FINDING_DESTRUCTIVE;
    it->severity = DM_SEVERITY_HIGH;
    it->rule = rc == DM_ERR_UNSAFE ? "manifest-edit" : "edit-removes";
    it->line = 1;
    /* The message after "edit of <path> ": what was dropped, printable ASCII only. */
    m = why.msg;
    if (path && strncmp(m, "edit of ", 8) == 0 && strncmp(m + 8, path, strlen(path)) == 0) {
        m += 8 + strlen(path);
        m += *m == ' ';
    }
    for (; *m && o + 4 < DM_SAFETY_EXCERPT_MAX - 1 && o < 60; m++) {
        unsigned char c = (unsigned char)*m;
        it->excerpt[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    if (*m) {
        memcpy(it->excerpt + o, DM_TEXT_ELLIPSIS, strlen(DM_TEXT_ELLIPSIS));
        o += strlen(DM_TEXT_ELLIPSIS);
    }
    it->excerpt[o] = '\0';
    found->len++;
    return 0;
}
