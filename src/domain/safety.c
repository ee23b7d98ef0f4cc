/*
 * safety: destructive-operation, secret and review scans over generated files, and the path,
 * branch and size rules (see include/dream/domain/safety.h).
 *
 * Owns the process-wide table of compiled PCRE2 patterns (compiled once under a mutex, JIT
 * where available, read-only afterwards). A scan builds its own "view" of the file (comments
 * and, for SQL, string literals blanked to spaces with newlines kept, so offsets and lines stay
 * those of the original), its own match data and match context, so scans run on any thread at
 * once. Pure (PCRE2, cJSON).
 */
#include "dream/domain/safety.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fnmatch.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "dream/core/buf.h"
#include "dream/core/refname.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define ELLIPSIS "\xe2\x80\xa6"

/* ---- languages and views ---------------------------------------------------------------- */

enum lang {
    LANG_SQL = 1u << 0,
    LANG_CLIKE = 1u << 1,
    LANG_HASH = 1u << 2,
    LANG_OTHER = 1u << 3,
};
#define LANG_ALL (LANG_SQL | LANG_CLIKE | LANG_HASH | LANG_OTHER)
#define LANG_NOT_SQL (LANG_CLIKE | LANG_HASH | LANG_OTHER)

static const char *const clike_ext[] = {
    "ts",   "tsx", "js", "jsx", "mjs", "cjs", "mts", "cts", "css",   "scss",  "less", "go",
    "java", "c",   "h",  "cc",  "cpp", "hpp", "rs",  "kt",  "swift", "scala", "cs",   "php"};
static const char *const hash_ext[] = {"sh",         "bash", "zsh", "ksh",  "yml", "yaml",
                                       "toml",       "py",   "rb",  "pl",   "r",   "mk",
                                       "dockerfile", "env",  "ini", "conf", "cfg", "properties"};

static int ext_in(const char *ext, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(ext, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static enum lang lang_of(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;

    base = base ? base + 1 : path;
    if (strcasecmp(base, "Dockerfile") == 0 || strcasecmp(base, "Makefile") == 0 ||
        strcasecmp(base, "GNUmakefile") == 0 || strncasecmp(base, ".env", 4) == 0) {
        return LANG_HASH;
    }
    dot = strrchr(base, '.');
    if (!dot || dot == base) {
        return LANG_OTHER;
    }
    dot++;
    if (strcasecmp(dot, "sql") == 0) {
        return LANG_SQL;
    }
    if (ext_in(dot, clike_ext, COUNT(clike_ext))) {
        return LANG_CLIKE;
    }
    if (ext_in(dot, hash_ext, COUNT(hash_ext))) {
        return LANG_HASH;
    }
    return LANG_OTHER;
}

/* Each stripper copies in[0..n) to out, turning comment bytes (and for SQL the inside of '…'
 * literals) into spaces; newlines are always kept. */
static void strip_sql(char *out, const char *in, size_t n)
{
    enum { NORMAL, LINE, BLOCK, SQ, DQ, BT } st = NORMAL;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        char next = i + 1 < n ? in[i + 1] : '\0';
        out[i] = c;
        switch (st) {
        case NORMAL:
            if (c == '-' && next == '-') {
                st = LINE;
                out[i] = ' ';
            } else if (c == '/' && next == '*') {
                st = BLOCK;
                out[i] = out[i + 1] = ' ';
                i++;
            } else if (c == '\'') {
                st = SQ;
            } else if (c == '"') {
                st = DQ; /* identifier: kept, but "--" inside it is no comment */
            } else if (c == '`') {
                st = BT;
            }
            break;
        case LINE:
            if (c == '\n') {
                st = NORMAL;
            } else {
                out[i] = ' ';
            }
            break;
        case BLOCK:
            if (c == '*' && next == '/') {
                out[i] = out[i + 1] = ' ';
                i++;
                st = NORMAL;
            } else if (c != '\n') {
                out[i] = ' ';
            }
            break;
        case SQ:
            if (c == '\'' && next == '\'') {
                out[i] = out[i + 1] = ' ';
                i++;
            } else if (c == '\'') {
                st = NORMAL;
            } else if (c != '\n') {
                out[i] = ' ';
            }
            break;
        case DQ:
            if (c == '"') {
                st = NORMAL;
            }
            break;
        case BT:
            if (c == '`') {
                st = NORMAL;
            }
            break;
        }
    }
}

static void strip_clike(char *out, const char *in, size_t n)
{
    enum { NORMAL, LINE, BLOCK, SQ, DQ, TPL } st = NORMAL;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        char next = i + 1 < n ? in[i + 1] : '\0';
        out[i] = c;
        switch (st) {
        case NORMAL:
            if (c == '/' && next == '/') {
                st = LINE;
                out[i] = ' ';
            } else if (c == '/' && next == '*') {
                st = BLOCK;
                out[i] = out[i + 1] = ' ';
                i++;
            } else if (c == '\'') {
                st = SQ;
            } else if (c == '"') {
                st = DQ;
            } else if (c == '`') {
                st = TPL;
            }
            break;
        case LINE:
            if (c == '\n') {
                st = NORMAL;
            } else {
                out[i] = ' ';
            }
            break;
        case BLOCK:
            if (c == '*' && next == '/') {
                out[i] = out[i + 1] = ' ';
                i++;
                st = NORMAL;
            } else if (c != '\n') {
                out[i] = ' ';
            }
            break;
        case SQ:
        case DQ:
        case TPL:
            if (c == '\\' && i + 1 < n) {
                out[i + 1] = next;
                i++;
            } else if ((st == SQ && c == '\'') || (st == DQ && c == '"') ||
                       (st == TPL && c == '`')) {
                st = NORMAL;
            } else if (c == '\n' && st != TPL) {
                /* An unterminated quote (an apostrophe in JSX text, a regex literal) must not
                 * swallow the rest of the file. */
                st = NORMAL;
            }
            break;
        }
    }
}

static void strip_hash(char *out, const char *in, size_t n)
{
    enum { NORMAL, COMMENT, SQ, DQ } st = NORMAL;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = c;
        switch (st) {
        case NORMAL:
            if (c == '#' && (i == 0 || strchr(" \t\r\n;", in[i - 1]))) {
                st = COMMENT;
                out[i] = ' ';
            } else if (c == '\'') {
                st = SQ;
            } else if (c == '"') {
                st = DQ;
            }
            break;
        case COMMENT:
            if (c == '\n') {
                st = NORMAL;
            } else {
                out[i] = ' ';
            }
            break;
        case SQ:
        case DQ:
            if (st == DQ && c == '\\' && i + 1 < n) {
                out[i + 1] = in[i + 1];
                i++;
            } else if ((st == SQ && c == '\'') || (st == DQ && c == '"') || c == '\n') {
                st = NORMAL;
            }
            break;
        }
    }
}

/* ---- rules ------------------------------------------------------------------------------ */

enum view {
    VIEW_STRIPPED, /* comments (and SQL literals) blanked */
    VIEW_RAW,      /* the bytes as generated */
};

struct rule;

/* Per-scan state the post-filters share; built lazily, freed by the scan. */
struct scan_ctx {
    const char *view; /* the stripped view */
    size_t len;
    enum lang lang;
    struct word_index {
        size_t *pos; /* sorted offsets of the word in view */
        size_t n;
        int ready;
    } where, drop;
    size_t stmt_lo, stmt_hi; /* cached: every offset in [lo, hi] belongs to the statement
                                ending at hi */
    int stmt_valid;
};

/* Optional post-filter on a match; returns 1 to keep it, 0 to drop it, <0 on error. */
typedef int (*accept_fn)(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                         pcre2_match_data *md);

struct rule {
    const char *id;
    enum dm_finding_kind kind;
    enum dm_severity severity;
    unsigned rules; /* DM_SAFETY_RULES_* set it belongs to */
    unsigned langs; /* enum lang bits it applies to */
    enum view view;
    uint32_t options;
    const char *pattern;
    accept_fn accept;
};

/* SQL object names: plain, "quoted", `quoted`, [quoted], optionally schema-qualified. */
#define IDENT "(?:[\\w$]+|\"[^\"\\n]*\"|`[^`\\n]*`|\\[[^\\]\\n]*\\])"
#define QIDENT IDENT "(?:\\s*\\.\\s*" IDENT ")*"

static int accept_credential(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                             pcre2_match_data *md);
static int accept_no_where(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                           pcre2_match_data *md);
static int accept_with_drop(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                            pcre2_match_data *md);

#define D DM_FINDING_DESTRUCTIVE
#define S DM_FINDING_SECRET
#define V DM_FINDING_REVIEW
#define RD DM_SAFETY_RULES_DESTRUCTIVE
#define RS DM_SAFETY_RULES_SECRETS
#define RV DM_SAFETY_RULES_REVIEW
#define CI PCRE2_CASELESS

static const struct rule rule_table[] = {
    /* SQL in .sql files: case-insensitive, statement-level WHERE check up to the next ';'. */
    {"drop-table", D, DM_SEVERITY_CRITICAL, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+(?:TEMP(?:ORARY)?\\s+)?TABLE\\b", NULL},
    {"drop-database", D, DM_SEVERITY_CRITICAL, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+DATABASE\\b", NULL},
    {"drop-schema", D, DM_SEVERITY_CRITICAL, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+SCHEMA\\b", NULL},
    {"truncate", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI, "\\bTRUNCATE\\b(?!\\s*\\()",
     NULL},
    {"delete-without-where", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bDELETE\\s+FROM\\s+" QIDENT, accept_no_where},
    {"update-without-where", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bUPDATE\\s+(?:OR\\s+\\w+\\s+|ONLY\\s+)?" QIDENT "(?:\\s+(?:AS\\s+)?[\\w$]+)?\\s+SET\\b",
     accept_no_where},
    {"alter-drop", D, DM_SEVERITY_MEDIUM, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bALTER\\s+TABLE\\s+" QIDENT, accept_with_drop},

    /* SQL embedded in other files: the distinctive two-word phrases in any case, the common
     * words (DELETE, UPDATE, TRUNCATE) only in upper case; a statement also ends at a quote. */
    {"drop-table", D, DM_SEVERITY_CRITICAL, RD, LANG_NOT_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+(?:TEMP(?:ORARY)?\\s+)?TABLE\\b", NULL},
    {"drop-database", D, DM_SEVERITY_CRITICAL, RD, LANG_NOT_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+DATABASE\\b", NULL},
    {"drop-schema", D, DM_SEVERITY_CRITICAL, RD, LANG_NOT_SQL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+SCHEMA\\b", NULL},
    {"truncate", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bTRUNCATE\\s+(?:TABLE\\s+)?" QIDENT, NULL},
    {"delete-without-where", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bDELETE\\s+FROM\\s+" QIDENT, accept_no_where},
    {"update-without-where", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bUPDATE\\s+(?:OR\\s+\\w+\\s+|ONLY\\s+)?" QIDENT "(?:\\s+(?:AS\\s+)?[\\w$]+)?\\s+SET\\b",
     accept_no_where},
    {"alter-drop", D, DM_SEVERITY_MEDIUM, RD, LANG_NOT_SQL, VIEW_STRIPPED, CI,
     "\\bALTER\\s+TABLE\\s+" QIDENT, accept_with_drop},

    /* Shell and git, in every language (shell hides in YAML, Markdown, package.json, exec()). */
    {"rm-rf", D, DM_SEVERITY_CRITICAL, RD, LANG_ALL, VIEW_STRIPPED, 0,
     "(?<![\\w.-])rm"
     "(?=(?:[ \\t]+-[\\w-]+)*?[ \\t]+(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\\b)"
     "(?=(?:[ \\t]+-[\\w-]+)*?[ \\t]+(?:-[a-zA-Z]*f[a-zA-Z]*|--force)\\b)"
     "(?:[ \\t]+-[\\w-]+)+",
     NULL},
    {"git-force", D, DM_SEVERITY_HIGH, RD, LANG_ALL, VIEW_STRIPPED, 0,
     "\\bgit\\b[^\\n;&|]{0,300}?[ \\t]--force\\b", NULL},
    {"git-hard", D, DM_SEVERITY_HIGH, RD, LANG_ALL, VIEW_STRIPPED, 0,
     "\\bgit\\b[^\\n;&|]{0,300}?[ \\t]--hard\\b", NULL},
    {"git-push-f", D, DM_SEVERITY_HIGH, RD, LANG_ALL, VIEW_STRIPPED, 0,
     "\\bgit[ \\t]+push\\b[^\\n;&|]{0,300}?[ \\t](?:-[a-zA-Z]*f[a-zA-Z]*\\b|\\+[\\w./-])", NULL},

    /* The reviewer's rule scan (ORIGINAL.md severities), with real word boundaries. */
    {"process-exit", V, DM_SEVERITY_MEDIUM, RV, LANG_ALL, VIEW_STRIPPED, 0,
     "\\bprocess\\s*\\.\\s*exit\\b", NULL},
    {"eval", V, DM_SEVERITY_HIGH, RV, LANG_ALL, VIEW_STRIPPED, 0, "\\beval\\s*\\(", NULL},
    {"function-constructor", V, DM_SEVERITY_MEDIUM, RV, LANG_ALL, VIEW_STRIPPED, 0,
     "\\bFunction\\s*\\(", NULL},
    {"child-process", V, DM_SEVERITY_HIGH, RV, LANG_ALL, VIEW_STRIPPED, 0, "\\bchild_process\\b",
     NULL},
    /* The .env file, not process.env / import.meta.env / c.env. */
    {"dotenv-file", V, DM_SEVERITY_MEDIUM, RV, LANG_ALL, VIEW_STRIPPED, 0,
     "(?<![\\w$)\\]])\\.env\\b", NULL},
    /* SECRET, PASSWORD, TOKEN as words; '_' separates (GITHUB_TOKEN), letters do not (tokens). */
    {"secret-word", V, DM_SEVERITY_MEDIUM, RV, LANG_ALL, VIEW_STRIPPED, CI,
     "(?<![A-Za-z0-9])(?:SECRET|PASSWORD|TOKEN)(?![A-Za-z0-9])", NULL},

    /* Secrets, on the raw bytes of every file. */
    {"aws-access-key-id", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b", NULL},
    {"aws-secret-access-key", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "(?i:aws_?secret_?access_?key)[\"']?\\s*(?::|=|:=|=>)\\s*[\"']?[A-Za-z0-9/+]{40}"
     "(?![A-Za-z0-9/+])",
     NULL},
    {"github-token", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\\b", NULL},
    {"openrouter-key", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\bsk-or-v1-[A-Za-z0-9]{32,}", NULL},
    {"anthropic-key", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\bsk-ant-[A-Za-z0-9_-]{20,}", NULL},
    {"openai-key", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|\\bsk-[A-Za-z0-9]{32,}\\b", NULL},
    {"slack-token", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "\\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\\.slack\\.com/services/[A-Za-z0-9/_-]{20,}",
     NULL},
    {"private-key", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, 0,
     "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", NULL},
    /* key = "literal": a credential-like name assigned a quoted literal of >= 8 characters
     * without spaces; accept_credential() drops placeholders, URLs, paths and identifiers. */
    {"hardcoded-credential", S, DM_SEVERITY_CRITICAL, RS, LANG_ALL, VIEW_RAW, CI,
     "(?<![A-Za-z0-9])[A-Za-z0-9_-]{0,40}?"
     "(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|token|client[_-]?secret|"
     "private[_-]?key)"
     "(?:[_-][A-Za-z0-9]+){0,6}[\"']?\\s*(?::|=|:=|=>)\\s*(?<q>[\"'`])(?<v>[^\"'`\\s\\\\]{8,256})"
     "\\k<"
     "q>",
     accept_credential},
};

#undef D
#undef S
#undef V
#undef RD
#undef RS
#undef RV
#undef CI

#define NRULES COUNT(rule_table)

static pthread_mutex_t compile_lock = PTHREAD_MUTEX_INITIALIZER;
static pcre2_code *compiled[NRULES];
static int compiled_ready;

static int contains_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (strncasecmp(s + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

static int accept_credential(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                             pcre2_match_data *md)
{
    static const char *const placeholders[] = {
        "example", "changeme", "change_me", "change-me",   "placeholder", "your",  "xxxx",
        "****",    "<",        ">",         "{{",          "${",          "dummy", "redacted",
        "sample",  "...",      "://",       "process.env", "env("};
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int v = pcre2_substring_number_from_name(compiled[r - rule_table], (PCRE2_SPTR) "v");
    const char *val;
    size_t n;
    int lower_ident = 1;
    int same = 1;

    (void)ctx;
    if (v < 0 || ov[2 * v] == PCRE2_UNSET) {
        return 0;
    }
    val = subject + ov[2 * v];
    n = ov[2 * v + 1] - ov[2 * v];
    for (size_t i = 0; i < COUNT(placeholders); i++) {
        if (contains_ci(val, n, placeholders[i])) {
            return 0;
        }
    }
    if (val[0] == '/' || val[0] == '.') {
        return 0; /* a path */
    }
    for (size_t i = 0; i < n; i++) {
        char c = val[i];
        if (!((c >= 'a' && c <= 'z') || c == '_' || c == '-' || c == '.')) {
            lower_ident = 0;
        }
        if (c != val[0]) {
            same = 0;
        }
    }
    /* "client_secret_post", "access_token": names and modes, not credentials. */
    return !lower_ident && !same;
}

static int is_word_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$';
}

/* Collects the offsets of a word (any case when ci) once per scan. Returns 0 or
 * DM_ERR_NOMEM. */
static int index_word(struct word_index *w, const struct scan_ctx *ctx, const char *word, int ci)
{
    size_t n = strlen(word);
    size_t cap = 0;

    w->ready = 1;
    for (size_t i = 0; i + n <= ctx->len; i++) {
        const char *p = ctx->view + i;
        int hit = ci ? strncasecmp(p, word, n) == 0 : memcmp(p, word, n) == 0;
        if (!hit || (i > 0 && is_word_byte(p[-1])) || (i + n < ctx->len && is_word_byte(p[n]))) {
            continue;
        }
        if (w->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            size_t *np = realloc(w->pos, ncap * sizeof(*np));
            if (!np) {
                return DM_ERR_NOMEM;
            }
            w->pos = np;
            cap = ncap;
        }
        w->pos[w->n++] = i;
    }
    return 0;
}

/* End of the statement containing offset e: the next ';' (in other languages also the next
 * quote, which ends the string the SQL sits in), or the end of the text. Cached, so walking
 * the matches of a file in order costs one pass. */
static size_t statement_end(struct scan_ctx *ctx, size_t e)
{
    const char *stops = ctx->lang == LANG_SQL ? ";" : ";\"'`";
    size_t i;

    if (ctx->stmt_valid && e >= ctx->stmt_lo && e <= ctx->stmt_hi) {
        return ctx->stmt_hi;
    }
    for (i = e; i < ctx->len && !strchr(stops, ctx->view[i]); i++) {
    }
    ctx->stmt_lo = e;
    ctx->stmt_hi = i;
    ctx->stmt_valid = 1;
    return i;
}

/* 1 when the indexed word occurs in [from, to) of the view. */
static int word_between(const struct word_index *w, size_t from, size_t to, size_t word_len)
{
    size_t lo = 0;
    size_t hi = w->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->pos[mid] < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < w->n && w->pos[lo] + word_len <= to;
}

/* Whether a word follows the match within its statement. A lookahead in the pattern would
 * rescan the statement for every match (quadratic on hostile input); this is linear. Returns
 * 1/0, or DM_ERR_NOMEM. */
static int word_follows(struct scan_ctx *ctx, struct word_index *w, const char *word, int ci,
                        pcre2_match_data *md)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

    if (!w->ready && index_word(w, ctx, word, ci) != 0) {
        return DM_ERR_NOMEM;
    }
    return word_between(w, ov[1], statement_end(ctx, ov[1]), strlen(word));
}

/* DELETE/UPDATE: kept only when no WHERE follows within the statement (WHERE in any case in
 * .sql files, in upper case elsewhere, like the DELETE/UPDATE patterns themselves). */
static int accept_no_where(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                           pcre2_match_data *md)
{
    int rc = word_follows(ctx, &ctx->where, "WHERE", ctx->lang == LANG_SQL, md);
    (void)r;
    (void)subject;
    return rc < 0 ? rc : !rc;
}

/* ALTER TABLE x: kept only when DROP (any case) follows within the statement. */
static int accept_with_drop(struct scan_ctx *ctx, const struct rule *r, const char *subject,
                            pcre2_match_data *md)
{
    (void)r;
    (void)subject;
    return word_follows(ctx, &ctx->drop, "DROP", 1, md);
}

int dm_safety_init(struct dm_error *err)
{
    int rc = 0;

    pthread_mutex_lock(&compile_lock);
    if (compiled_ready) {
        goto out;
    }
    for (size_t i = 0; i < NRULES; i++) {
        int ecode;
        PCRE2_SIZE eoff;
        compiled[i] = pcre2_compile((PCRE2_SPTR)rule_table[i].pattern, PCRE2_ZERO_TERMINATED,
                                    rule_table[i].options, &ecode, &eoff, NULL);
        if (!compiled[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            rc = dm_error_set(err, ecode == PCRE2_ERROR_NOMEMORY ? DM_ERR_NOMEM : DM_ERR_INVALID,
                              "safety: rule %s does not compile at %zu: %s", rule_table[i].id,
                              (size_t)eoff, (const char *)msg);
            for (size_t k = 0; k < i; k++) {
                pcre2_code_free(compiled[k]);
                compiled[k] = NULL;
            }
            goto out;
        }
        /* Without JIT (unsupported CPU) the interpreter runs the same patterns. */
        (void)pcre2_jit_compile(compiled[i], PCRE2_JIT_COMPLETE);
    }
    compiled_ready = 1;
out:
    pthread_mutex_unlock(&compile_lock);
    return rc;
}

void dm_safety_shutdown(void)
{
    pthread_mutex_lock(&compile_lock);
    for (size_t i = 0; i < NRULES; i++) {
        pcre2_code_free(compiled[i]);
        compiled[i] = NULL;
    }
    compiled_ready = 0;
    pthread_mutex_unlock(&compile_lock);
}

/* ---- findings --------------------------------------------------------------------------- */

void dm_findings_init(struct dm_findings *f)
{
    memset(f, 0, sizeof(*f));
    f->max_severity = -1;
}

void dm_findings_free(struct dm_findings *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < f->len; i++) {
        free(f->items[i].path);
    }
    free(f->items);
    dm_findings_init(f);
}

size_t dm_findings_count(const struct dm_findings *f, enum dm_finding_kind kind)
{
    if (!f || (int)kind < 0 || kind >= DM_FINDING_KINDS) {
        return 0;
    }
    return f->count[kind];
}

const char *dm_severity_name(enum dm_severity s)
{
    static const char *const names[] = {"low", "medium", "high", "critical"};
    return (int)s >= 0 && (size_t)s < COUNT(names) ? names[s] : "unknown";
}

const char *dm_finding_kind_name(enum dm_finding_kind k)
{
    static const char *const names[] = {"destructive", "secret", "review"};
    return (int)k >= 0 && (size_t)k < COUNT(names) ? names[k] : "unknown";
}

static int is_tokenish(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '/' || c == '=' || c == '-';
}

/* Appends s (n bytes) to dst (cap bytes) as printable ASCII: whitespace runs become one space,
 * other bytes '?'. */
static void put_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(dst);
    int space = 0;

    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            if (!space) {
                dst[o++] = ' ';
            }
            space = 1;
            continue;
        }
        space = 0;
        dst[o++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[o] = '\0';
}

static void make_excerpt(char *dst, const struct rule *r, const char *m, size_t n)
{
    char tmp[64];
    size_t o = 0;

    dst[0] = '\0';
    if (r->kind == DM_FINDING_SECRET) {
        put_printable(dst, 5, m, n < 4 ? n : 4);
        strcat(dst, ELLIPSIS);
        return;
    }
    tmp[0] = '\0';
    put_printable(tmp, 49, m, n);
    /* Mask token-like runs so a credential that happens to sit in a match never travels. */
    for (size_t i = 0; tmp[i];) {
        size_t j = i;
        while (tmp[j] && is_tokenish(tmp[j])) {
            j++;
        }
        if (j - i >= 16) {
            memcpy(dst + o, tmp + i, 4);
            o += 4;
            memcpy(dst + o, ELLIPSIS, 3);
            o += 3;
            i = j;
        } else if (j > i) {
            memcpy(dst + o, tmp + i, j - i);
            o += j - i;
            i = j;
        } else {
            dst[o++] = tmp[i++];
        }
    }
    dst[o] = '\0';
}

static int add_finding(struct dm_findings *f, const struct rule *r, const char *path,
                       unsigned long line, const char *m, size_t n)
{
    struct dm_finding *it;

    f->count[r->kind]++;
    if ((int)r->severity > f->max_severity) {
        f->max_severity = (int)r->severity;
    }
    if (f->len >= DM_SAFETY_FINDINGS_MAX) {
        f->dropped++;
        return 0;
    }
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct dm_finding *items = realloc(f->items, cap * sizeof(*items));
        if (!items) {
            return DM_ERR_NOMEM;
        }
        f->items = items;
        f->cap = cap;
    }
    it = &f->items[f->len];
    memset(it, 0, sizeof(*it));
    it->path = strdup(path);
    if (!it->path) {
        return DM_ERR_NOMEM;
    }
    it->kind = r->kind;
    it->severity = r->severity;
    it->rule = r->id;
    it->line = line;
    make_excerpt(it->excerpt, r, m, n);
    f->len++;
    return 0;
}

/* ---- scanning --------------------------------------------------------------------------- */

/* Line of byte offset off, from the sorted offsets of the newlines. */
static unsigned long line_of(const size_t *nl, size_t n_nl, size_t off)
{
    size_t lo = 0;
    size_t hi = n_nl;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (nl[mid] < off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (unsigned long)lo + 1;
}

#define MATCHES_PER_RULE_MAX 64

int dm_safety_scan(struct dm_findings *out, const char *path, const char *content, size_t len,
                   unsigned rules, struct dm_error *err)
{
    enum lang lang = lang_of(path ? path : "");
    char *stripped = NULL;
    size_t *nl = NULL;
    size_t n_nl = 0;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mctx = NULL;
    pcre2_jit_stack *jstack = NULL;
    struct scan_ctx ctx;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    rc = dm_safety_init(err);
    if (rc) {
        goto out;
    }
    if (!path) {
        path = "";
    }
    if (!content) {
        content = "";
        len = 0;
    }
    stripped = malloc(len + 1);
    md = pcre2_match_data_create(8, NULL);
    mctx = pcre2_match_context_create(NULL);
    jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!stripped || !md || !mctx || !jstack) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "safety: out of memory");
        goto out;
    }
    pcre2_set_match_limit(mctx, 10 * 1000 * 1000);
    pcre2_set_depth_limit(mctx, 10 * 1000);
    pcre2_jit_stack_assign(mctx, NULL, jstack);
    if (lang == LANG_SQL) {
        strip_sql(stripped, content, len);
    } else if (lang == LANG_CLIKE) {
        strip_clike(stripped, content, len);
    } else if (lang == LANG_HASH) {
        strip_hash(stripped, content, len);
    } else {
        memcpy(stripped, content, len);
    }
    stripped[len] = '\0';
    ctx.view = stripped;
    ctx.len = len;
    ctx.lang = lang;
    for (size_t i = 0; i < len; i++) {
        n_nl += content[i] == '\n';
    }
    nl = malloc((n_nl + 1) * sizeof(*nl));
    if (!nl) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "safety: out of memory");
        goto out;
    }
    n_nl = 0;
    for (size_t i = 0; i < len; i++) {
        if (content[i] == '\n') {
            nl[n_nl++] = i;
        }
    }

    for (size_t ri = 0; ri < NRULES; ri++) {
        const struct rule *r = &rule_table[ri];
        const char *subject = r->view == VIEW_RAW ? content : stripped;
        PCRE2_SIZE start = 0;
        int matches = 0;

        if (!(r->rules & rules) || !(r->langs & lang)) {
            continue;
        }
        ctx.stmt_valid = 0;
        while (start <= len) {
            PCRE2_SIZE *ov;
            int keep;
            int m = pcre2_match(compiled[ri], (PCRE2_SPTR)subject, len, start, 0, md, mctx);
            if (m == PCRE2_ERROR_NOMATCH) {
                break;
            }
            if (m < 0) {
                rc = dm_error_set(err, DM_ERR_LIMIT,
                                  "safety: rule %s could not finish on %s (PCRE2 error %d)", r->id,
                                  path, m);
                goto out;
            }
            ov = pcre2_get_ovector_pointer(md);
            keep = r->accept ? r->accept(&ctx, r, subject, md) : 1;
            if (keep < 0) {
                rc = dm_error_set(err, keep, "safety: out of memory");
                goto out;
            }
            if (keep) {
                if (++matches > MATCHES_PER_RULE_MAX) {
                    /* Enough to judge the file; count the rest as dropped. */
                    out->dropped++;
                    break;
                }
                rc = add_finding(out, r, path, line_of(nl, n_nl, ov[0]), subject + ov[0],
                                 ov[1] - ov[0]);
                if (rc) {
                    dm_error_set(err, rc, "safety: out of memory");
                    goto out;
                }
            }
            start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    rc = 0;
out:
    pcre2_jit_stack_free(jstack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    free(stripped);
    free(nl);
    free(ctx.where.pos);
    free(ctx.drop.pos);
    return rc;
}

/* ---- JSON and summary ------------------------------------------------------------------- */

char *dm_findings_to_json(const struct dm_findings *f)
{
    cJSON *arr = cJSON_CreateArray();
    char *s = NULL;

    if (!arr) {
        return NULL;
    }
    for (size_t i = 0; f && i < f->len; i++) {
        const struct dm_finding *it = &f->items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            goto out;
        }
        cJSON_AddItemToArray(arr, o);
        if (!cJSON_AddStringToObject(o, "kind", dm_finding_kind_name(it->kind)) ||
            !cJSON_AddStringToObject(o, "severity", dm_severity_name(it->severity)) ||
            !cJSON_AddStringToObject(o, "rule", it->rule) ||
            !cJSON_AddStringToObject(o, "path", it->path) ||
            !cJSON_AddNumberToObject(o, "line", (double)it->line) ||
            !cJSON_AddStringToObject(o, "excerpt", it->excerpt)) {
            goto out;
        }
    }
    s = cJSON_PrintUnformatted(arr);
out:
    cJSON_Delete(arr);
    return s;
}

char *dm_findings_summary(const struct dm_findings *f, size_t max_items)
{
    struct dm_buf b;
    size_t shown = 0;
    size_t total = f ? f->len + f->dropped : 0;
    int rc = 0;

    dm_buf_init(&b, 0);
    for (size_t i = 0; f && i < f->len && shown < max_items && rc == 0; i++, shown++) {
        const struct dm_finding *it = &f->items[i];
        rc = dm_buf_printf(&b, "%s%s:%lu %s (%s)", shown ? "; " : "", it->path, it->line, it->rule,
                           dm_severity_name(it->severity));
    }
    if (rc == 0 && total > shown) {
        rc = dm_buf_printf(&b, "%s+%zu more", shown ? "; " : "", total - shown);
    }
    if (rc != 0) {
        dm_buf_free(&b);
        return NULL;
    }
    return dm_buf_detach(&b);
}

/* ---- policy ------------------------------------------------------------------------------ */

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
        put_printable(dst, cap, s, 117);
        strncat(dst, "...", cap - strlen(dst) - 1);
    } else {
        put_printable(dst, cap, s, n);
    }
}

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + need >= n) {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
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
    if (!utf8_valid((const unsigned char *)path, len)) {
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
