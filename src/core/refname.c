/*
 * refname: git reference-name validity (see include/dream/core/refname.h). Pure; any thread.
 */
#include "dream/core/refname.h"

#include <string.h>

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Checks one '/'-separated component [s, s + n). */
static const char *component_problem(const char *s, size_t n)
{
    if (n == 0) {
        return "must not contain an empty component (\"//\" or a leading/trailing '/')";
    }
    if (s[0] == '.') {
        return "no component may start with '.'";
    }
    if (has_suffix(s, n, ".lock")) {
        return "no component may end with \".lock\"";
    }
    return NULL;
}

const char *dm_refname_problem(const char *name)
{
    size_t len;
    const char *start;
    const char *p;
    const char *why;

    if (!name || !name[0]) {
        return "must not be empty";
    }
    len = strlen(name);
    if (len > DM_REFNAME_MAX) {
        return "must be at most 255 bytes";
    }
    if (strcmp(name, "@") == 0) {
        return "must not be \"@\"";
    }
    if (strcmp(name, "HEAD") == 0) {
        return "must not be \"HEAD\"";
    }
    if (name[0] == '-') {
        return "must not start with '-'";
    }
    if (name[len - 1] == '.') {
        return "must not end with '.'";
    }
    for (p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            return "must not contain control characters";
        }
        switch (c) {
        case ' ':
        case '~':
        case '^':
        case ':':
        case '?':
        case '*':
        case '[':
        case '\\':
            return "must not contain space, '~', '^', ':', '?', '*', '[' or '\\'";
        default:
            break;
        }
        if (c == '.' && p[1] == '.') {
            return "must not contain \"..\"";
        }
        if (c == '@' && p[1] == '{') {
            return "must not contain \"@{\"";
        }
    }
    start = name;
    for (p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            why = component_problem(start, (size_t)(p - start));
            if (why) {
                return why;
            }
            if (*p == '\0') {
                break;
            }
            start = p + 1;
        }
    }
    return NULL;
}

int dm_refname_valid(const char *name)
{
    return dm_refname_problem(name) == NULL;
}
