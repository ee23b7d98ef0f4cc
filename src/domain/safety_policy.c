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
    return 0;
}
