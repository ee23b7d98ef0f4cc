/*
 * safety_policy: where generated files may go, which branch may be pushed and how much may be
 * pushed (dm_safety_check_path/_branch/_limits, contract in include/dream/domain/safety.h).
 * The default roots and protected branches are its tables. No state; any thread.
 */
#include "safety_rules.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dream/core/refname.h"

static const char *const default_roots[] = {"src/",   "migrations/", "docs/",
                                            "tests/", "test/",       "public/"};
static const char *const default_protected[] = {"main", "master", "production", "staging",
                                                "release/*"};

/* A printable, bounded copy of untrusted text for messages. */
static void sanitize(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    dst[0] = '\0';
    if (n > 120) {
        dm_safety_put_printable(dst, cap, s, 117);
        strncat(dst, "...", cap - strlen(dst) - 1);
    } else {
        dm_safety_put_printable(dst, cap, s, n);
    }
}

/* ".git" in any case, also with trailing dots or spaces (Windows and macOS strip them), and
 * the 8.3 short name "git~1". */
static int is_git_dir(const char *seg, size_t n)
{
    while (n > 0 && (seg[n - 1] == '.' || seg[n - 1] == ' ')) {
        n--;
    }
    return (n == 4 && strncasecmp(seg, ".git", 4) == 0) ||
           (n == 5 && strncasecmp(seg, "git~1", 5) == 0);
}

/* 1 when s holds a code point HFS+ ignores in names or that hides in text: U+00AD, U+200B-U+200F,
 * U+202A-U+202E, U+2060-U+2064, U+206A-U+206F, U+FEFF. s is valid UTF-8. */
static int has_ignorable(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (c[0] == 0xC2 && c[1] == 0xAD) {
            return 1;
        }
        if (c[0] == 0xE2 && c[1] == 0x80 &&
            ((c[2] >= 0x8B && c[2] <= 0x8F) || (c[2] >= 0xAA && c[2] <= 0xAE))) {
            return 1;
        }
        if (c[0] == 0xE2 && c[1] == 0x81 &&
            ((c[2] >= 0xA0 && c[2] <= 0xA4) || (c[2] >= 0xAA && c[2] <= 0xAF))) {
            return 1;
        }
        if (c[0] == 0xEF && c[1] == 0xBB && c[2] == 0xBF) {
            return 1;
        }
    }
    return 0;
}

static int path_fail(struct dm_error *err, const char *path, const char *rule)
{
    char clean[160];
    sanitize(clean, sizeof(clean), path);
    return dm_error_set(err, DM_ERR_UNSAFE, "path \"%s\": %s", clean, rule);
}

int dm_safety_check_path(const char *path, const struct dm_safety_policy *p, int allow_workflows,
                         struct dm_error *err)
{
    const char *const *roots = p && p->roots ? p->roots : default_roots;
    size_t n_roots = p && p->roots ? p->n_roots : COUNT(default_roots);
    static const char workflows[] = ".github/workflows/";
    const char *seg;
    size_t len;

    if (!path || !path[0]) {
        return dm_error_set(err, DM_ERR_UNSAFE, "path: must not be empty");
    }
    len = strlen(path);
    if (len > DM_SAFETY_PATH_MAX) {
        return path_fail(err, path, "must be at most 1024 bytes");
    }
    for (const char *c = path; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') {
            return path_fail(err, path, "must not contain control characters or '\\'");
        }
    }
    if (dm_text_utf8_check(path, len, NULL) != 0) {
        return path_fail(err, path, "must be valid UTF-8");
    }
    if (path[0] == '/' ||
        (len >= 2 && path[1] == ':' &&
         ((path[0] >= 'a' && path[0] <= 'z') || (path[0] >= 'A' && path[0] <= 'Z')))) {
        return path_fail(err, path, "must be relative");
    }
    /* NTFS reads "a::$DATA" and ".git::$INDEX_ALLOCATION" as streams of "a" and ".git". */
    if (strchr(path, ':')) {
        return path_fail(err, path, "must not contain ':' (NTFS streams alias other names)");
    }
    /* HFS+ ignores these when it compares names, so ".g\u200cit" is ".git" there. */
    if (has_ignorable(path)) {
        return path_fail(err, path,
                         "must not contain invisible Unicode characters (zero-width, "
                         "direction marks, BOM, soft hyphen)");
    }
    seg = path;
    for (const char *c = path;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - seg);
            if (n == 0) {
                return path_fail(err, path,
                                 "must be normalised (no empty segment, \"//\" or trailing '/')");
            }
            if (n == 1 && seg[0] == '.') {
                return path_fail(err, path, "must be normalised (no \".\" segment)");
            }
            if (n == 2 && seg[0] == '.' && seg[1] == '.') {
                return path_fail(err, path, "must not contain a \"..\" segment");
            }
            if (is_git_dir(seg, n)) {
                return path_fail(err, path, "must not contain a \".git\" segment");
            }
            if (n > 255) {
                return path_fail(err, path, "segments must be at most 255 bytes");
            }
            if (*c == '\0') {
                break;
            }
            seg = c + 1;
        }
    }
    if (strncmp(path, workflows, sizeof(workflows) - 1) == 0) {
        if (allow_workflows) {
            return 0;
        }
        return path_fail(err, path,
                         "may touch .github/workflows/ only for shipper jobs when workflows are "
                         "allowed");
    }
    for (size_t i = 0; i < n_roots; i++) {
        const char *r = roots[i];
        size_t rn = r ? strlen(r) : 0;
        if (rn == 0) {
            continue;
        }
        if (r[rn - 1] == '/' ? strncmp(path, r, rn) == 0 : strcmp(path, r) == 0) {
            return 0;
        }
    }
    {
        char list[200];
        char rule[260];
        list[0] = '\0';
        for (size_t i = 0; i < n_roots; i++) {
            if (roots[i] && strlen(list) + strlen(roots[i]) + 3 < sizeof(list)) {
                if (list[0]) {
                    strcat(list, ", ");
                }
                strcat(list, roots[i]);
            }
        }
        snprintf(rule, sizeof(rule), "must be under an allowed root (%s)", list);
        return path_fail(err, path, rule);
    }
}

static int branch_fail(struct dm_error *err, const char *branch, const char *fmt, const char *arg)
{
    char clean[160];
    char rule[300];
    sanitize(clean, sizeof(clean), branch);
    snprintf(rule, sizeof(rule), fmt, arg);
    return dm_error_set(err, DM_ERR_UNSAFE, "branch \"%s\": %s", clean, rule);
}

int dm_safety_check_branch(const char *branch, const char *prefix, const char *base,
                           const struct dm_safety_policy *p, struct dm_error *err)
{
    const char *const *prot =
        p && p->protected_branches ? p->protected_branches : default_protected;
    size_t n_prot = p && p->protected_branches ? p->n_protected : COUNT(default_protected);
    const char *why;
    char clean[160];

    if (!branch) {
        return dm_error_set(err, DM_ERR_UNSAFE, "branch: must not be empty");
    }
    why = dm_refname_problem(branch);
    if (why) {
        return branch_fail(err, branch, "must be a valid git ref name (%s)", why);
    }
    if (prefix &&
        (strncmp(branch, prefix, strlen(prefix)) != 0 || strlen(branch) == strlen(prefix))) {
        sanitize(clean, sizeof(clean), prefix);
        return branch_fail(err, branch, "must start with the job's prefix \"%s\"", clean);
    }
    if (base && strcasecmp(branch, base) == 0) {
        return branch_fail(err, branch, "must not be the base branch%s", "");
    }
    for (size_t i = 0; i < n_prot; i++) {
        if (prot[i] && prot[i][0] && fnmatch(prot[i], branch, FNM_CASEFOLD) == 0) {
            sanitize(clean, sizeof(clean), prot[i]);
            return branch_fail(err, branch, "is protected (matches \"%s\")", clean);
        }
    }
    return 0;
}

int dm_safety_check_limits(const char *const *paths, const size_t *sizes, size_t n,
                           const struct dm_safety_policy *p, struct dm_error *err)
{
    size_t max_files = p && p->max_files ? p->max_files : DM_SAFETY_DEFAULT_MAX_FILES;
    size_t max_file = p && p->max_file_bytes ? p->max_file_bytes : DM_SAFETY_DEFAULT_MAX_FILE_BYTES;
    size_t max_total =
        p && p->max_total_bytes ? p->max_total_bytes : DM_SAFETY_DEFAULT_MAX_TOTAL_BYTES;
    size_t total = 0;

    if (n > max_files) {
        return dm_error_set(err, DM_ERR_LIMIT, "files: at most %zu files (got %zu)", max_files, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] > max_file) {
            char clean[160];
            sanitize(clean, sizeof(clean), paths && paths[i] ? paths[i] : "?");
            return dm_error_set(err, DM_ERR_LIMIT, "path \"%s\": at most %zu bytes (got %zu)",
                                clean, max_file, sizes[i]);
        }
        total += sizes[i];
    }
    if (total > max_total) {
        return dm_error_set(err, DM_ERR_LIMIT, "files: at most %zu bytes in total (got %zu)",
                            max_total, total);
    }
    return paths ? dm_safety_check_twins(paths, n, NULL, 0, err) : 0;
}

/* a and b differ only in ASCII case (equal bytes otherwise, not identical). */
static int case_twins(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0 && strcmp(a, b) != 0;
}

static int twin_fail(struct dm_error *err, const char *a, const char *b, const char *where)
{
    char ca[160], cb[160];
    sanitize(ca, sizeof(ca), a);
    sanitize(cb, sizeof(cb), b);
    return dm_error_set(err, DM_ERR_UNSAFE,
                        "path \"%s\": differs only by case from \"%s\"%s (one file on a "
                        "case-insensitive checkout)",
                        ca, cb, where);
}

int dm_safety_check_twins(const char *const *paths, size_t n, const char *const *base,
                          size_t n_base, struct dm_error *err)
{
    /* Quadratic, but n is bounded by the file-count limit and n_base by the tree listing cap;
     * the tree is only walked once per path of the change. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            if (case_twins(paths[i], paths[k])) {
                return twin_fail(err, paths[k], paths[i], " in the change");
            }
        }
        for (size_t k = 0; base && k < n_base; k++) {
            if (base[k] && case_twins(paths[i], base[k])) {
                return twin_fail(err, paths[i], base[k], " on the base");
            }
        }
    }
    return 0;
}
