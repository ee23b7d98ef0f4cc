/*
 * safety_rules: the rule table of the safety scan (destructive operations, secrets, the
 * reviewer's rule scan), the post-filters that judge a match in its statement, and the
 * process-wide compiled patterns (compiled once under a mutex by dm_safety_init(), JIT where
 * available, read-only afterwards). The scanner that runs them is safety.c. Pure (PCRE2); the
 * filters run on the scanning thread with that scan's own state.
 */
#include "safety_rules.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

const struct rule dm_safety_rules[] = {
    /* SQL. The distinctive two-word phrases in any case and in every language. */
    {"drop-table", D, DM_SEVERITY_CRITICAL, RD, LANG_ALL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+(?:TEMP(?:ORARY)?\\s+)?TABLE\\b", NULL},
    {"drop-database", D, DM_SEVERITY_CRITICAL, RD, LANG_ALL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+DATABASE\\b", NULL},
    {"drop-schema", D, DM_SEVERITY_CRITICAL, RD, LANG_ALL, VIEW_STRIPPED, CI,
     "\\bDROP\\s+SCHEMA\\b", NULL},
    /* The common words in .sql files: any case; DELETE/UPDATE count when no WHERE follows up
     * to the next ';'. */
    {"truncate", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI, "\\bTRUNCATE\\b(?!\\s*\\()",
     NULL},
    {"delete-without-where", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bDELETE\\s+FROM\\s+" QIDENT, accept_no_where},
    {"update-without-where", D, DM_SEVERITY_HIGH, RD, LANG_SQL, VIEW_STRIPPED, CI,
     "\\bUPDATE\\s+(?:OR\\s+\\w+\\s+|ONLY\\s+)?" QIDENT "(?:\\s+(?:AS\\s+)?[\\w$]+)?\\s+SET\\b",
     accept_no_where},
    /* The common words (DELETE, UPDATE, TRUNCATE) embedded in other files: only in upper case;
     * a statement also ends at a quote. ALTER TABLE … DROP: any case, everywhere. */
    {"truncate", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bTRUNCATE\\s+(?:TABLE\\s+)?" QIDENT, NULL},
    {"delete-without-where", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bDELETE\\s+FROM\\s+" QIDENT, accept_no_where},
    {"update-without-where", D, DM_SEVERITY_HIGH, RD, LANG_NOT_SQL, VIEW_STRIPPED, 0,
     "\\bUPDATE\\s+(?:OR\\s+\\w+\\s+|ONLY\\s+)?" QIDENT "(?:\\s+(?:AS\\s+)?[\\w$]+)?\\s+SET\\b",
     accept_no_where},
    {"alter-drop", D, DM_SEVERITY_MEDIUM, RD, LANG_ALL, VIEW_STRIPPED, CI,
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

#define NRULES COUNT(dm_safety_rules)

static pthread_mutex_t compile_lock = PTHREAD_MUTEX_INITIALIZER;
const size_t dm_safety_rule_count = COUNT(dm_safety_rules);
pcre2_code *dm_safety_rule_code[COUNT(dm_safety_rules)];
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
    int v = pcre2_substring_number_from_name(dm_safety_rule_code[r - dm_safety_rules],
                                             (PCRE2_SPTR) "v");
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
    const char *stops = ctx->lang == DM_TEXT_COMMENTS_SQL ? ";" : ";\"'`";
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
    int rc = word_follows(ctx, &ctx->where, "WHERE", ctx->lang == DM_TEXT_COMMENTS_SQL, md);
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
        dm_safety_rule_code[i] =
            pcre2_compile((PCRE2_SPTR)dm_safety_rules[i].pattern, PCRE2_ZERO_TERMINATED,
                          dm_safety_rules[i].options, &ecode, &eoff, NULL);
        if (!dm_safety_rule_code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            rc = dm_error_set(err, ecode == PCRE2_ERROR_NOMEMORY ? DM_ERR_NOMEM : DM_ERR_INVALID,
                              "safety: rule %s does not compile at %zu: %s", dm_safety_rules[i].id,
                              (size_t)eoff, (const char *)msg);
            for (size_t k = 0; k < i; k++) {
                pcre2_code_free(dm_safety_rule_code[k]);
                dm_safety_rule_code[k] = NULL;
            }
            goto out;
        }
        /* Without JIT (unsupported CPU) the interpreter runs the same patterns. */
        (void)pcre2_jit_compile(dm_safety_rule_code[i], PCRE2_JIT_COMPLETE);
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
        pcre2_code_free(dm_safety_rule_code[i]);
        dm_safety_rule_code[i] = NULL;
    }
    compiled_ready = 0;
    pthread_mutex_unlock(&compile_lock);
}
