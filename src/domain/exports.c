/*
 * exports: a TypeScript/JavaScript file's exports and route registrations, read by a small
 * tokenizer (rules in include/dream/domain/exports.h). Owns the lists it returns. Pure; any
 * thread. Linear in the input: every byte is scanned once (a failed regular-expression literal
 * turns regex detection off up to the end of its line instead of rescanning), every token is
 * looked at a bounded number of times.
 */
#include "dream/domain/exports.h"
#include "dream/core/text.h"

#include <stdlib.h>
#include <string.h>

enum tok_type {
    T_IDENT = 0,
    T_STRING,   /* '...', "..." or a template without substitutions: s/len is the content */
    T_TEMPLATE, /* a template with substitutions (not a literal) */
    T_PUNCT,
    T_OTHER, /* numbers, regular expressions */
};

struct tok {
    const char *s;
    size_t len;
    unsigned char type;
    char ch; /* T_PUNCT */
};

struct toks {
    struct tok *v;
    size_t n;
    size_t cap;
};

#define TEMPLATE_DEPTH 64

static int push_tok(struct toks *t, unsigned char type, const char *s, size_t len)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct tok *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            return DM_ERR_NOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n].s = s;
    t->v[t->n].len = len;
    t->v[t->n].type = type;
    t->v[t->n].ch = type == T_PUNCT ? s[0] : 0;
    t->n++;
    return 0;
}

static int ident_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || c >= 0x80;
}

static int tok_is(const struct tok *t, const char *word)
{
    size_t n = strlen(word);
    return t->type == T_IDENT && t->len == n && memcmp(t->s, word, n) == 0;
}

static int tok_punct(const struct tok *t, char c)
{
    return t->type == T_PUNCT && t->ch == c;
}

/* A '/' here starts a regular expression (not a division) after these. */
static int regex_may_follow(const struct toks *t)
{
    static const char *const words[] = {"return", "typeof", "case",  "do",        "else",
                                        "in",     "of",     "new",   "delete",    "void",
                                        "throw",  "yield",  "await", "instanceof"};
    const struct tok *p;

    if (!t->n) {
        return 1;
    }
    p = &t->v[t->n - 1];
    if (p->type == T_PUNCT) {
        return p->ch != ')' && p->ch != ']' && p->ch != '}';
    }
    if (p->type == T_IDENT) {
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            if (tok_is(p, words[i])) {
                return 1;
            }
        }
    }
    return 0;
}

/* Scans template text from *i (just after '`' or a substitution's '}'): returns 1 at the
 * closing '`' (*i after it, *end_text at it), 0 at "${" (*i after it), 1 at the end of input. */
static int scan_template(const char *s, size_t len, size_t *i, size_t *end_text)
{
    size_t k = *i;
    while (k < len) {
        if (s[k] == '\\') {
            k += 2;
            continue;
        }
        if (s[k] == '`') {
            *end_text = k;
            *i = k + 1;
            return 1;
        }
        if (s[k] == '$' && k + 1 < len && s[k + 1] == '{') {
            *end_text = k;
            *i = k + 2;
            return 0;
        }
        k++;
    }
    *end_text = len;
    *i = len;
    return 1;
}

static int tokenize(struct toks *t, const char *s, size_t len)
{
    size_t tstack[TEMPLATE_DEPTH]; /* brace depth at each open substitution */
    size_t tdepth = 0;
    size_t brace = 0;
    size_t no_regex_until = 0; /* a '/' before this offset is a division */
    size_t i = 0;
    int rc = 0;

    while (!rc && i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            i++;
        } else if (c == '/' && i + 1 < len && s[i + 1] == '/') {
            while (i < len && s[i] != '\n') {
                i++;
            }
        } else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            const char *e = NULL;
            for (size_t k = i + 2; k + 1 < len; k++) {
                if (s[k] == '*' && s[k + 1] == '/') {
                    e = s + k;
                    break;
                }
            }
            i = e ? (size_t)(e - s) + 2 : len;
        } else if (c == '\'' || c == '"') {
            size_t k = i + 1;
            while (k < len && (unsigned char)s[k] != c && s[k] != '\n') {
                k += s[k] == '\\' && k + 1 < len && s[k + 1] != '\n' ? 2 : 1;
            }
            rc = push_tok(t, T_STRING, s + i + 1, (k < len ? k : len) - i - 1);
            i = k < len && (unsigned char)s[k] == c ? k + 1 : k;
        } else if (c == '`') {
            size_t start = i + 1;
            size_t end_text;
            i = start;
            if (scan_template(s, len, &i, &end_text)) {
                rc = push_tok(t, T_STRING, s + start, end_text - start);
            } else {
                rc = push_tok(t, T_TEMPLATE, s + start - 1, 1);
                if (tdepth < TEMPLATE_DEPTH) {
                    tstack[tdepth++] = brace;
                } else {
                    /* Too deep: the rest of this template is skipped as text. */
                    while (!scan_template(s, len, &i, &end_text)) {
                    }
                }
            }
        } else if (c == '/' && i >= no_regex_until && regex_may_follow(t)) {
            size_t k = i + 1;
            int in_class = 0;
            int ok = 0;
            while (k < len && s[k] != '\n') {
                if (s[k] == '\\') {
                    k += 2;
                    continue;
                }
                if (s[k] == '[') {
                    in_class = 1;
                } else if (s[k] == ']') {
                    in_class = 0;
                } else if (s[k] == '/' && !in_class) {
                    ok = 1;
                    break;
                }
                k++;
            }
            if (ok) {
                k++;
                while (k < len && ident_byte((unsigned char)s[k])) {
                    k++; /* flags */
                }
                rc = push_tok(t, T_OTHER, s + i, k - i);
                i = k;
            } else {
                no_regex_until = k;
                rc = push_tok(t, T_PUNCT, s + i, 1);
                i++;
            }
        } else if (ident_byte(c)) {
            size_t k = i;
            while (k < len && ident_byte((unsigned char)s[k])) {
                k++;
            }
            rc = push_tok(t, c >= '0' && c <= '9' ? T_OTHER : T_IDENT, s + i, k - i);
            i = k;
        } else if (c == '}' && tdepth && brace == tstack[tdepth - 1]) {
            size_t end_text;
            tdepth--;
            i++;
            if (!scan_template(s, len, &i, &end_text)) {
                tstack[tdepth++] = brace;
            }
        } else {
            if (c == '{') {
                brace++;
            } else if (c == '}' && brace) {
                brace--;
            }
            rc = push_tok(t, T_PUNCT, s + i, 1);
            i++;
        }
    }
    return rc;
}

/* Appends a name (cleaned to one printable line, cut), unless it is there already. */
static int add_name(char ***list, size_t *n, int *truncated, const char *prefix, const char *s,
                    size_t len)
{
    char raw[DM_EXPORTS_NAME_MAX + 1];
    size_t pl = strlen(prefix);
    size_t cut;
    char *clean;
    char **grown;

    if (pl >= DM_EXPORTS_NAME_MAX) {
        return 0;
    }
    memcpy(raw, prefix, pl);
    cut = dm_text_cut(s, len, DM_EXPORTS_NAME_MAX - pl);
    memcpy(raw + pl, s, cut);
    raw[pl + cut] = '\0';
    for (size_t k = 0; k < pl + cut; k++) {
        if (raw[k] == '\0') {
            raw[k] = '?';
        }
    }
    clean = dm_text_clean_line(raw, DM_EXPORTS_NAME_MAX);
    if (!clean) {
        return DM_ERR_NOMEM;
    }
    for (size_t k = 0; k < *n; k++) {
        if (strcmp((*list)[k], clean) == 0) {
            free(clean);
            return 0;
        }
    }
    if (*n >= DM_EXPORTS_MAX_NAMES) {
        *truncated = 1;
        free(clean);
        return 0;
    }
    grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown) {
        free(clean);
        return DM_ERR_NOMEM;
    }
    *list = grown;
    (*list)[(*n)++] = clean;
    return 0;
}

static int add_export(struct dm_exports *e, const struct tok *t)
{
    return add_name(&e->names, &e->n_names, &e->truncated, "", t->s, t->len);
}

/* export { a, b as c, type T } ... from j (just after '{'); returns the index after '}'. */
static size_t read_export_list(struct dm_exports *e, const struct toks *t, size_t j, int *rc)
{
    while (!*rc && j < t->n && !tok_punct(&t->v[j], '}')) {
        const struct tok *name = &t->v[j];
        if (name->type != T_IDENT && name->type != T_STRING) {
            j++;
            continue;
        }
        if (tok_is(name, "type") && j + 1 < t->n &&
            (t->v[j + 1].type == T_IDENT || t->v[j + 1].type == T_STRING) &&
            !tok_is(&t->v[j + 1], "as")) {
            name = &t->v[++j];
        }
        j++;
        if (j + 1 < t->n && tok_is(&t->v[j], "as")) {
            name = &t->v[j + 1];
            j += 2;
        }
        *rc = add_export(e, name);
    }
    return j < t->n ? j + 1 : j;
}

/* const { a, b: c } = ... / const [a, b] = ...: from j (at '{' or '['); returns the index
 * after the pattern. */
static size_t read_pattern(struct dm_exports *e, const struct toks *t, size_t j, int *rc)
{
    size_t depth = 0;
    for (; !*rc && j < t->n; j++) {
        const struct tok *k = &t->v[j];
        if (tok_punct(k, '{') || tok_punct(k, '[')) {
            depth++;
        } else if (tok_punct(k, '}') || tok_punct(k, ']')) {
            if (--depth == 0) {
                return j + 1;
            }
        } else if (depth == 1 && k->type == T_IDENT && j + 1 < t->n &&
                   (tok_punct(&t->v[j + 1], ',') || tok_punct(&t->v[j + 1], '}') ||
                    tok_punct(&t->v[j + 1], ']') || tok_punct(&t->v[j + 1], '='))) {
            *rc = add_export(e, k);
        }
    }
    return j;
}

/* After "export" at i: one export statement's names; returns where scanning goes on. */
static size_t read_export(struct dm_exports *e, const struct toks *t, size_t i, int *rc)
{
    static const char *const modifiers[] = {"declare", "async", "abstract", "default"};
    static const char *const decls[] = {"function", "class",     "const", "let",       "var",
                                        "type",     "interface", "enum",  "namespace", "module"};
    size_t j = i + 1;
    const struct tok *k;

    if (j >= t->n) {
        return j;
    }
    k = &t->v[j];
    if (tok_is(k, "default")) {
        *rc = add_name(&e->names, &e->n_names, &e->truncated, "", "default", 7);
        return j + 1;
    }
    if (tok_punct(k, '=')) {
        *rc = add_name(&e->names, &e->n_names, &e->truncated, "", "=", 1);
        return j + 1;
    }
    if (tok_punct(k, '*')) {
        if (j + 2 < t->n && tok_is(&t->v[j + 1], "as")) {
            *rc = add_export(e, &t->v[j + 2]);
            return j + 3;
        }
        if (j + 2 < t->n && tok_is(&t->v[j + 1], "from") && t->v[j + 2].type == T_STRING) {
            *rc = add_name(&e->names, &e->n_names, &e->truncated, "* from ", t->v[j + 2].s,
                           t->v[j + 2].len);
            return j + 3;
        }
        return j + 1;
    }
    if (tok_is(k, "type") && j + 1 < t->n && tok_punct(&t->v[j + 1], '{')) {
        j++;
        k = &t->v[j];
    }
    if (tok_punct(k, '{')) {
        return read_export_list(e, t, j + 1, rc);
    }
    for (int guard = 0; guard < 4 && j < t->n; guard++) {
        int hit = 0;
        for (size_t m = 0; m < sizeof(modifiers) / sizeof(modifiers[0]); m++) {
            hit |= tok_is(&t->v[j], modifiers[m]);
        }
        /* const enum E: "const" is a modifier when an "enum" follows. */
        hit |= tok_is(&t->v[j], "const") && j + 1 < t->n && tok_is(&t->v[j + 1], "enum");
        if (!hit) {
            break;
        }
        j++;
    }
    if (j >= t->n) {
        return j;
    }
    for (size_t d = 0; d < sizeof(decls) / sizeof(decls[0]); d++) {
        if (!tok_is(&t->v[j], decls[d])) {
            continue;
        }
        j++;
        if (j < t->n && tok_punct(&t->v[j], '*')) {
            j++; /* function* */
        }
        if (j < t->n && (tok_punct(&t->v[j], '{') || tok_punct(&t->v[j], '['))) {
            return read_pattern(e, t, j, rc);
        }
        if (j < t->n && t->v[j].type == T_IDENT) {
            *rc = add_export(e, &t->v[j]);
            return j + 1;
        }
        return j;
    }
    return j;
}

static int route_method(const struct tok *k, char *out, size_t outlen)
{
    static const char *const methods[] = {"get",   "post",    "put",   "patch",    "delete",
                                          "del",   "options", "head",  "all",      "on",
                                          "route", "use",     "mount", "basePath", "register"};
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        if (tok_is(k, methods[m])) {
            size_t n = strlen(methods[m]);
            if (n + 2 > outlen) {
                return 0;
            }
            for (size_t c = 0; c < n; c++) {
                char ch = methods[m][c];
                out[c] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
            }
            out[n] = ' ';
            out[n + 1] = '\0';
            return 1;
        }
    }
    return 0;
}

/* At '.' (i): <recv>.<method>( <first argument> as a registration. */
static int read_route(struct dm_exports *e, const struct toks *t, size_t i)
{
    char prefix[16];
    const struct tok *arg;

    if (i == 0 || i + 3 >= t->n || !tok_punct(&t->v[i + 2], '(')) {
        return 0;
    }
    if (t->v[i - 1].type != T_IDENT && !tok_punct(&t->v[i - 1], ')')) {
        return 0;
    }
    if (!route_method(&t->v[i + 1], prefix, sizeof(prefix))) {
        return 0;
    }
    arg = &t->v[i + 3];
    if (arg->type == T_STRING) {
        if ((arg->len && arg->s[0] == '/') || (arg->len == 1 && arg->s[0] == '*')) {
            return add_name(&e->routes, &e->n_routes, &e->truncated, prefix, arg->s, arg->len);
        }
        return 0;
    }
    if (arg->type == T_IDENT && (strcmp(prefix, "USE ") == 0 || strcmp(prefix, "REGISTER ") == 0)) {
        /* a.b.c: the dotted name, as written */
        size_t j = i + 3;
        const char *start = arg->s;
        const char *end = arg->s + arg->len;
        while (j + 2 < t->n && tok_punct(&t->v[j + 1], '.') && t->v[j + 2].type == T_IDENT &&
               j - i < 16) {
            j += 2;
            end = t->v[j].s + t->v[j].len;
        }
        return add_name(&e->routes, &e->n_routes, &e->truncated, prefix, start,
                        (size_t)(end - start));
    }
    return 0;
}

/* module.exports = / module.exports.a = / exports.a = at i. */
static int read_commonjs(struct dm_exports *e, const struct toks *t, size_t i)
{
    size_t j = i;
    const struct tok *v = t->v;

    if (i > 0 && tok_punct(&v[i - 1], '.')) {
        return 0;
    }
    if (tok_is(&v[j], "module")) {
        if (j + 2 >= t->n || !tok_punct(&v[j + 1], '.') || !tok_is(&v[j + 2], "exports")) {
            return 0;
        }
        j += 2;
        if (j + 2 < t->n && tok_punct(&v[j + 1], '=') && !tok_punct(&v[j + 2], '=')) {
            return add_name(&e->names, &e->n_names, &e->truncated, "", "module.exports", 14);
        }
    } else if (!tok_is(&v[j], "exports")) {
        return 0;
    }
    if (j + 4 < t->n && tok_punct(&v[j + 1], '.') && v[j + 2].type == T_IDENT &&
        tok_punct(&v[j + 3], '=') && !tok_punct(&v[j + 4], '=')) {
        return add_export(e, &v[j + 2]);
    }
    return 0;
}

int dm_exports_read(struct dm_exports *out, const char *src, size_t len, struct dm_error *err)
{
    struct toks t = {0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > DM_EXPORTS_MAX_INPUT) {
        len = DM_EXPORTS_MAX_INPUT;
        out->truncated = 1;
    }
    rc = tokenize(&t, src ? src : "", src ? len : 0);
    for (size_t i = 0; !rc && i < t.n;) {
        const struct tok *k = &t.v[i];
        if (tok_is(k, "export") && (i == 0 || !tok_punct(&t.v[i - 1], '.'))) {
            i = read_export(out, &t, i, &rc);
            continue;
        }
        if (tok_punct(k, '.')) {
            rc = read_route(out, &t, i);
        } else if (k->type == T_IDENT) {
            rc = read_commonjs(out, &t, i);
        }
        i++;
    }
    free(t.v);
    if (rc) {
        dm_exports_clear(out);
        return dm_error_set(err, DM_ERR_NOMEM, "exports: out of memory");
    }
    return 0;
}

static int has(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

int dm_exports_has_name(const struct dm_exports *e, const char *name)
{
    return has(e->names, e->n_names, name);
}

int dm_exports_has_route(const struct dm_exports *e, const char *route)
{
    return has(e->routes, e->n_routes, route);
}

int dm_exports_path_is_script(const char *path)
{
    static const char *const ext[] = {".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"};
    if (!path) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (dm_text_ends_with(path, ext[i]) && !dm_text_ends_with(path, ".d.ts")) {
            return 1;
        }
    }
    return 0;
}

void dm_exports_clear(struct dm_exports *e)
{
    if (!e) {
        return;
    }
    for (size_t i = 0; i < e->n_names; i++) {
        free(e->names[i]);
    }
    for (size_t i = 0; i < e->n_routes; i++) {
        free(e->routes[i]);
    }
    free(e->names);
    free(e->routes);
    memset(e, 0, sizeof(*e));
}
