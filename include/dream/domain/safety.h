/*
 * safety: the gate between generated files and a push.
 *
 * - dm_safety_scan(): PCRE2 rules over one generated file, by language (from the extension):
 *   destructive operations (SQL DROP/TRUNCATE/DELETE or UPDATE without WHERE/ALTER … DROP, shell
 *   `rm -rf`, git `--force`/`--hard`/`push -f`), secrets (cloud, GitHub, LLM and Slack keys,
 *   private key blocks, hard-coded credentials) and the reviewer's rule scan (process.exit,
 *   eval(, Function(, child_process, .env, SECRET|PASSWORD|TOKEN). Word boundaries everywhere;
 *   comments (and SQL string literals) are blanked before the destructive and review rules run,
 *   so a DROP inside a SQL comment or string is not a finding; line numbers stay exact.
 * - dm_safety_check_path/_branch/_limits(): where files may go, which branch may be pushed, how
 *   much may be pushed.
 *
 * Findings never carry a secret: a secret finding's excerpt is its first 4 characters + "…",
 * and every other excerpt has long token-like runs masked the same way.
 *
 * The compiled patterns are process-wide, read-only after dm_safety_init() (idempotent,
 * mutex-guarded); every other function is safe on any thread at the same time (per-call match
 * data). dm_safety_shutdown() frees the patterns; call it only when no scan is running.
 */
#ifndef DREAM_SAFETY_H
#define DREAM_SAFETY_H

#include <stddef.h>

#include "dream/core/error.h"

enum dm_severity {
    DM_SEVERITY_LOW = 0,
    DM_SEVERITY_MEDIUM = 1,
    DM_SEVERITY_HIGH = 2,
    DM_SEVERITY_CRITICAL = 3,
};

enum dm_finding_kind {
    DM_FINDING_DESTRUCTIVE = 0, /* parks the job for approval */
    DM_FINDING_SECRET = 1,      /* blocks the job outright */
    DM_FINDING_REVIEW = 2,      /* input to the reviewer's risk level only */
};
#define DM_FINDING_KINDS 3

/* Rule sets for dm_safety_scan(). */
#define DM_SAFETY_RULES_DESTRUCTIVE 0x1u
#define DM_SAFETY_RULES_SECRETS 0x2u
#define DM_SAFETY_RULES_REVIEW 0x4u
#define DM_SAFETY_RULES_ALL 0x7u

#define DM_SAFETY_EXCERPT_MAX 72   /* bytes incl. NUL */
#define DM_SAFETY_FINDINGS_MAX 256 /* findings kept per struct dm_findings; more are counted */

struct dm_finding {
    enum dm_finding_kind kind;
    enum dm_severity severity;
    const char *rule;   /* static rule id, e.g. "drop-table", "rm-rf", "github-token", "eval" */
    char *path;         /* owned copy of the scanned path */
    unsigned long line; /* 1-based line of the match start */
    /* Printable ASCII plus "…" (UTF-8). Secrets: first 4 characters + "…". Others: the match
     * (whitespace collapsed, at most ~48 bytes, token-like runs of >= 16 characters masked). */
    char excerpt[DM_SAFETY_EXCERPT_MAX];
};

/* Findings of one or more files. Initialise with dm_findings_init() or DM_FINDINGS_INIT. */
struct dm_findings {
    struct dm_finding *items; /* owned, len of them, in scan order */
    size_t len;
    size_t cap;
    size_t dropped;                 /* findings past DM_SAFETY_FINDINGS_MAX, not kept */
    size_t count[DM_FINDING_KINDS]; /* all findings by kind, kept or dropped */
    int max_severity;               /* highest severity of all findings, -1 when none */
};
#define DM_FINDINGS_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0, 0, {0, 0, 0}, -1                                                               \
    }

void dm_findings_init(struct dm_findings *f);

/* Frees the items; f is empty (as after init) and reusable. NULL is fine. */
void dm_findings_free(struct dm_findings *f);

/* Number of findings of a kind (kept or dropped). */
size_t dm_findings_count(const struct dm_findings *f, enum dm_finding_kind kind);

/* JSON array for events (e.g. paused_approval's "flagged"):
 * [{"kind":"destructive","severity":"critical","rule":"drop-table","path":"migrations/x.sql",
 *   "line":3,"excerpt":"DROP TABLE users"}, …]. Never contains secret text. Caller frees with
 * free(); NULL on allocation failure. */
char *dm_findings_to_json(const struct dm_findings *f);

/* One line for messages and the PR body: "migrations/x.sql:3 drop-table (critical); …" with at
 * most max_items entries, then "; +N more". Caller frees with free(); NULL on allocation
 * failure. "" when there are none. */
char *dm_findings_summary(const struct dm_findings *f, size_t max_items);

/* "low", "medium", "high", "critical" / "destructive", "secret", "review". Static. */
const char *dm_severity_name(enum dm_severity s);
const char *dm_finding_kind_name(enum dm_finding_kind k);

/* Compiles every pattern (JIT where available) once per process. Idempotent and thread-safe.
 * Returns 0, or DM_ERR_INVALID (a pattern did not compile: a bug) / DM_ERR_NOMEM. */
int dm_safety_init(struct dm_error *err);

/* Frees the compiled patterns (for a clean leak check). Not while a scan runs. A later
 * dm_safety_init()/dm_safety_scan() compiles them again. */
void dm_safety_shutdown(void);

/* Scans len bytes of content (need not be NUL-terminated) of the file at path with the rule
 * sets in rules (DM_SAFETY_RULES_*) and appends findings to out. The language comes from the
 * extension / file name: SQL (.sql: `--` and block comments and '…' literals blanked, keywords
 * case-insensitive); C-like (.ts .tsx .js .jsx .mjs .cjs .mts .cts .css .go .java .c .h .rs …:
 * `//` and block comments blanked; embedded SQL is matched in upper case only, since "delete
 * from" and "update" are ordinary words there); hash-comment (.sh .bash .zsh .yml .yaml .toml
 * .py .rb, Dockerfile, Makefile: `#` comments blanked); anything else (.md, .json, .html, …)
 * as is. Shell and git rules apply to every language; secret rules always see the raw bytes.
 * Calls dm_safety_init() if needed. Returns 0, DM_ERR_NOMEM, DM_ERR_INVALID (init failed) or
 * DM_ERR_LIMIT (a pattern hit PCRE2's match limit; treat the file as unsafe). Any thread. */
int dm_safety_scan(struct dm_findings *out, const char *path, const char *content, size_t len,
                   unsigned rules, struct dm_error *err);

/* ---- policy ---------------------------------------------------------------------------- */

#define DM_SAFETY_DEFAULT_ROOTS "src/,migrations/,docs/,tests/,test/,public/"
#define DM_SAFETY_DEFAULT_PROTECTED "main,master,production,staging,release/*"
#define DM_SAFETY_DEFAULT_MAX_FILES 50
#define DM_SAFETY_DEFAULT_MAX_FILE_BYTES (256u * 1024)
#define DM_SAFETY_DEFAULT_MAX_TOTAL_BYTES (2u * 1024 * 1024)
#define DM_SAFETY_PATH_MAX 1024

/* Borrowed for each call. NULL lists / zero limits mean the defaults above. */
struct dm_safety_policy {
    /* Allowed roots: an entry ending in '/' allows everything below that directory, any other
     * entry allows exactly that file (e.g. "README.md"). */
    const char *const *roots;
    size_t n_roots;
    /* Protected branch names or fnmatch(3) patterns, compared case-insensitively. */
    const char *const *protected_branches;
    size_t n_protected;
    size_t max_files;
    size_t max_file_bytes;
    size_t max_total_bytes;
};
#define DM_SAFETY_POLICY_INIT                                                                      \
    {                                                                                              \
        NULL, 0, NULL, 0, 0, 0, 0                                                                  \
    }

/* Checks a generated file's repository path: not empty, <= DM_SAFETY_PATH_MAX bytes, valid
 * UTF-8, no control characters, '\' or ':' (NTFS streams), no invisible Unicode characters
 * (zero-width, direction marks, BOM, soft hyphen: HFS+ ignores them), relative (no leading '/'),
 * normalised (no empty, "." or trailing segment), no ".." segment, no ".git" segment (any case,
 * also ".git." and "git~1"), each segment <= 255 bytes, and under an allowed root — or under
 * ".github/workflows/" when allow_workflows (dm_trust_decide() gave BUILD_WORKFLOWS).
 * p may be NULL. Returns 0 or DM_ERR_UNSAFE with "path \"…\": <rule>" (path sanitised). */
int dm_safety_check_path(const char *path, const struct dm_safety_policy *p, int allow_workflows,
                         struct dm_error *err);

/* Checks the branch a job will push: a valid ref name, starting with prefix and longer than it
 * (prefix NULL: no prefix rule), not equal to base (case-insensitive; base NULL: skipped), not
 * matching a protected name or pattern. Returns 0 or DM_ERR_UNSAFE with "branch \"…\": <rule>". */
int dm_safety_check_branch(const char *branch, const char *prefix, const char *base,
                           const struct dm_safety_policy *p, struct dm_error *err);

/* Checks n files with sizes[i] bytes (paths[i] names them in messages; paths may be NULL)
 * against the file-count, per-file and total limits. Returns 0 or DM_ERR_LIMIT with
 * "files: at most 50 files (got 51)", "path \"…\": at most 262144 bytes (got …)" or
 * "files: at most 2097152 bytes in total (got …)"; then, when paths is given, the case-twin rule
 * (dm_safety_check_twins) within the change. */
int dm_safety_check_limits(const char *const *paths, const size_t *sizes, size_t n,
                           const struct dm_safety_policy *p, struct dm_error *err);

/* Refuses a path of the change that differs only by (ASCII) case from another path of the
 * change or from a path of the base tree (base: n_base paths, may be NULL): on a
 * case-insensitive checkout they are one file. Returns 0 or DM_ERR_UNSAFE with
 * "path \"…\": differs only by case from \"…\" in the change|on the base (…)". */
int dm_safety_check_twins(const char *const *paths, size_t n, const char *const *base,
                          size_t n_base, struct dm_error *err);

#endif
