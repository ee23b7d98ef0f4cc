/*
 * jobreq: the build job a producer puts in a stream entry's `job` field, parsed and validated.
 *
 * Field names are those of the system dreamd replaces (DESIGN.md "Job"); the rules are the
 * "dreamd" column of ORIGINAL.md "Job fields and validation". Every error names the field and
 * the rule, e.g. "budget.maxDollars: must be a finite number > 0", so it can go straight into a
 * `failed` event. dm_jobreq_peek_id() digs the jobId out of an entry that does not validate, so
 * even an invalid job can be answered with a `failed` event (no usable id → dead letter).
 *
 * Pure (cJSON); no global state; safe on any thread. A struct dm_jobreq has one owner.
 */
#ifndef DREAM_JOBREQ_H
#define DREAM_JOBREQ_H

#include <stddef.h>

#include "dream/domain/auth.h"
#include "dream/domain/forge_proto.h"
#include "dream/core/error.h"

/* Limits (bytes unless said otherwise). */
#define DM_JOBREQ_JSON_MAX (4u * 1024 * 1024)     /* the whole `job` field */
#define DM_JOBREQ_SPEC_MAX (256u * 1024)          /* specMarkdown */
#define DM_JOBREQ_ID_MAX 128                      /* jobId, specId, userId */
#define DM_JOBREQ_REPO_PART_MAX DM_FORGE_NAME_MAX /* repoOwner, repoName (forge_proto.h) */
#define DM_JOBREQ_URL_MAX 2048                    /* callbackUrl */
#define DM_JOBREQ_PREFIX_MAX 64                   /* branchPrefix */
#define DM_JOBREQ_EFFORT_MAX 64                   /* estimatedEffort, in characters (code points) */
#define DM_JOBREQ_MAX_TOKENS_MAX 1000000000LL     /* budget.maxTokens upper bound */
#define DM_JOBREQ_MAX_DOLLARS_MAX 1000000.0       /* budget.maxDollars upper bound */
#define DM_JOBREQ_LABELS_MAX 20                   /* labels: entries */
#define DM_JOBREQ_LABEL_MAX 50                    /* one label, in characters (GitHub's cap) */
#define DM_JOBREQ_REVIEWERS_MAX 15                /* reviewers, teamReviewers: entries each */

/* Defaults of optional fields, applied by dm_jobreq_parse() (and shown by readers of a stored
 * job that omits them). targetRepoType defaults to custom, priority to medium. */
#define DM_JOBREQ_BASE_BRANCH_DEFAULT "main"
#define DM_JOBREQ_BRANCH_PREFIX_DEFAULT "dream/"

/* A producer's budget when it names none (budget is required in a job; dreamctl fills these). */
#define DM_JOBREQ_DRAFT_MAX_TOKENS 200000LL
#define DM_JOBREQ_DRAFT_MAX_DOLLARS 5.0

enum dm_priority {
    DM_PRIORITY_CRITICAL = 0,
    DM_PRIORITY_HIGH = 1,
    DM_PRIORITY_MEDIUM = 2, /* default */
    DM_PRIORITY_LOW = 3,
};

enum dm_repo_type {
    DM_REPO_TYPE_STORIA_DIGITAL = 0, /* "storia-digital" */
    DM_REPO_TYPE_PETRANTO_COM = 1,   /* "petranto-com" */
    DM_REPO_TYPE_BYOK_CLOUD = 2,     /* "byok-cloud" */
    DM_REPO_TYPE_CUSTOM = 3,         /* "custom", default */
};

/* A validated job. All strings are owned, NUL-terminated, valid UTF-8 and free of NUL bytes.
 * Optional strings are NULL when absent; defaults are already applied. */
struct dm_jobreq {
    char *job_id;           /* [A-Za-z0-9][A-Za-z0-9._-]*, <= 128: safe as a Redis key part */
    char *spec_id;          /* [A-Za-z0-9._:@|+-]+, <= 128 */
    char *user_id;          /* [A-Za-z0-9._:@|+-]+, <= 128 */
    char *repo_owner;       /* [A-Za-z0-9._-]+, not "." or "..", <= 100 */
    char *repo_name;        /* same */
    char *spec_markdown;    /* not blank, <= DM_JOBREQ_SPEC_MAX bytes */
    size_t spec_len;        /* strlen(spec_markdown) */
    char *callback_url;     /* NULL or https://… (http:// only for allow-listed hosts) */
    char *base_branch;      /* valid ref name; default "main" */
    char *branch_prefix;    /* prefix + "x" is a valid ref name; default "dream/" */
    char *estimated_effort; /* NULL or <= 64 characters, no control characters */
    enum dm_repo_type repo_type;
    enum dm_priority priority;
    long long budget_tokens; /* budget.maxTokens: integer, 1..DM_JOBREQ_MAX_TOKENS_MAX */
    double budget_dollars;   /* budget.maxDollars: finite, > 0, <= DM_JOBREQ_MAX_DOLLARS_MAX;
                              * 0 when absent (no dollar limit) */
    enum dm_trust trust;     /* valid only when trust_set */
    int trust_set;           /* the body carried trustLevel (or the caller applied a token's) */
    /* pull request options; absent = the replica's settings (DREAM_PR_*) decide */
    int draft;     /* draft: -1 absent, 0 or 1 */
    char **labels; /* labels: 1..50 characters each, no control characters */
    size_t n_labels;
    int labels_set;   /* the job carried labels (possibly []) */
    char **reviewers; /* reviewers: GitHub logins ([A-Za-z0-9-]{1,39}, no leading '-') */
    size_t n_reviewers;
    int reviewers_set;
    char **team_reviewers; /* teamReviewers: team slugs ([A-Za-z0-9._-]{1,100}) */
    size_t n_team_reviewers;
    int team_reviewers_set;
    char *spec_url; /* specUrl: NULL or an http(s):// URL, no spaces, '<' or '>' */
};

/* Parse options; borrowed for the call. Zero-initialise (DM_JOBREQ_OPTS_INIT). */
struct dm_jobreq_opts {
    /* Hosts (lower case, no port) for which a plain http:// callbackUrl is accepted (tests). */
    const char *const *http_hosts;
    size_t n_http_hosts;
    /* Nonzero when the entry carries a token that may supply the trust level: a missing
     * trustLevel is then accepted (trust_set = 0) and the caller must apply the token's claim
     * and refuse the job if neither supplied one. A present but invalid trustLevel is still an
     * error. */
    int trust_optional;
    /* Nonzero in signed mode, where the trust level comes only from the token: the body's
     * trustLevel is not read at all (trust_set = 0, any value accepted) and the caller applies
     * the token's claim. */
    int ignore_trust;
    /* Hosts a callbackUrl may name although they are (or resolve to) internal addresses: the
     * operator's own receivers (DREAM_CALLBACK_HOSTS). http_hosts are exempt too. */
    const char *const *internal_hosts;
    size_t n_internal_hosts;
};
#define DM_JOBREQ_OPTS_INIT                                                                        \
    {                                                                                              \
        NULL, 0, 0, 0, NULL, 0                                                                     \
    }

/* Parses and validates len bytes of JSON (need not be NUL-terminated). Unknown fields are
 * ignored. opts may be NULL (defaults). On success *out is a new job the caller frees with
 * dm_jobreq_free(); on failure *out is NULL and err->msg is "<field>: <rule>", e.g.
 *   "job: not valid JSON", "job: must be a JSON object", "jobId: required",
 *   "repoName: must match ^[a-zA-Z0-9._-]+$", "specMarkdown: must not be blank",
 *   "budget.maxTokens: must be an integer > 0", "budget.maxDollars: must be a finite number > 0",
 *   "trustLevel: must be one of observer, planner, builder, shipper".
 * Returns 0, DM_ERR_INVALID (a rule), DM_ERR_LIMIT (len > DM_JOBREQ_JSON_MAX; the message is
 * "job: must be at most 4194304 bytes") or DM_ERR_NOMEM. Any thread. */
int dm_jobreq_parse(struct dm_jobreq **out, const char *json, size_t len,
                    const struct dm_jobreq_opts *opts, struct dm_error *err);

/* Frees a job; NULL is fine. */
void dm_jobreq_free(struct dm_jobreq *job);

/* Serialises a job (all fields, defaults included; trustLevel only when trust_set) as compact
 * JSON that dm_jobreq_parse() reads back to an equal job — given the same opts: a plain-http
 * callbackUrl needs the same http_hosts again. Caller frees with free(). NULL on allocation
 * failure. */
char *dm_jobreq_to_json(const struct dm_jobreq *job);

/* Extracts the top-level "jobId" string from possibly invalid or truncated JSON of any size,
 * without building a tree: it scans the top-level object until it meets the key (the first
 * occurrence wins, like dm_jobreq_parse()). The id must satisfy the jobId rule above (so it is
 * safe as a Redis key part). Copies it NUL-terminated into out (outlen >= DM_JOBREQ_ID_MAX + 1
 * always suffices). Returns 0, DM_ERR_NOTFOUND (no jobId reachable: not an object, key absent,
 * or the text breaks before it), DM_ERR_INVALID (present but not a usable id) or DM_ERR_LIMIT
 * (outlen too small). Any thread. */
int dm_jobreq_peek_id(char *out, size_t outlen, const char *json, size_t len);

/* Checks s against the jobId rule: 1..128 bytes of [A-Za-z0-9._-], first one alphanumeric.
 * Returns 1 or 0. */
int dm_jobreq_id_valid(const char *s);

/* Writes a fresh jobId, "job-YYYYmmdd-HHMMSS-xxxxxxxx" (UTC time now_s, then the four bytes of
 * rnd in hex), into out (outlen >= 32). The result always satisfies the jobId rule. Returns 0 or
 * DM_ERR_LIMIT. The caller supplies the clock and the randomness, so this stays pure. */
int dm_jobreq_id_make(char *out, size_t outlen, long long now_s, const unsigned char rnd[4]);

/* A job as a producer describes it: borrowed strings, NULL for "not given". */
struct dm_jobreq_draft {
    const char *job_id, *spec_id, *user_id;
    const char *repo_type; /* NULL: the default (custom) */
    const char *repo_owner, *repo_name;
    const char *base_branch;   /* NULL: DM_JOBREQ_BASE_BRANCH_DEFAULT */
    const char *branch_prefix; /* NULL: DM_JOBREQ_BRANCH_PREFIX_DEFAULT */
    const char *spec_markdown;
    const char *effort;   /* estimatedEffort, NULL: absent */
    const char *priority; /* NULL: the default (medium) */
    const char *callback_url;
    long long max_tokens; /* 0: DM_JOBREQ_DRAFT_MAX_TOKENS */
    double max_dollars;   /* 0: DM_JOBREQ_DRAFT_MAX_DOLLARS; < 0: absent (no dollar limit) */
    const char *trust;    /* NULL: absent (a token must supply it) */
    /* The pull request's options; absent ones take the worker's DREAM_PR_* defaults. */
    int pr_draft;               /* draft: 0 absent, 1 true, -1 false */
    const char *labels;         /* comma-separated; NULL: absent, "": [] (no labels) */
    const char *reviewers;      /* comma-separated logins; NULL: absent, "": [] */
    const char *team_reviewers; /* comma-separated team slugs; NULL: absent, "": [] */
    const char *spec_url;       /* NULL: absent */
};

/* Builds the job JSON of a draft (defaults written out, so a reader sees them) and validates it
 * exactly as a worker will, under opts. On success *json_out is the compact JSON (caller frees
 * with free()) and, when out is not NULL, *out the parsed job (dm_jobreq_free()). On failure both
 * are NULL and err is as dm_jobreq_parse() reports it. Returns 0, DM_ERR_INVALID, DM_ERR_LIMIT or
 * DM_ERR_NOMEM. Any thread. */
int dm_jobreq_build(char **json_out, struct dm_jobreq **out, const struct dm_jobreq_draft *d,
                    const struct dm_jobreq_opts *opts, struct dm_error *err);

/* ---- binding a signed token to a job (jobreq_bind.c) ----
 *
 * A signed job's token carries `dreamJobSha256`: the SHA-256 (lowercase hex) of the job's
 * canonical binding text, which holds the fields that decide where code goes and what it says:
 *   "dream-job-v1\n", then for each of jobId, userId, repoOwner, repoName, baseBranch,
 *   branchPrefix, specMarkdown, callbackUrl in this order: the field name, one space, the
 *   value's length in bytes (decimal, no leading zeros), "\n", the value's bytes, "\n".
 * Values are the decoded JSON strings (UTF-8) as the job holds them; an absent baseBranch or
 * branchPrefix is its default ("main", "dream/"), an absent callbackUrl the empty string.
 * Then, only when the job carries them, in the same form: draft ("true"/"false"), labels,
 * reviewers, teamReviewers (each item followed by "\n"; [] is "") and specUrl, so a job without
 * them keeps its text and adding one to a signed entry breaks the hash. Length prefixes make the
 * text unambiguous whatever the values contain. The trust level is not in it: in signed mode it
 * comes from the token's own `dreamTrustLevel`. Budget, priority, targetRepoType, specId and
 * estimatedEffort are not bound. */
#define DM_JOBREQ_BINDING_VERSION "dream-job-v1"

/* The binding text of a validated job; *len_out its length. Caller frees with free(). NULL on
 * allocation failure. Any thread. */
char *dm_jobreq_binding_text(const struct dm_jobreq *job, size_t *len_out);

/* The SHA-256 of the binding text as 64 lowercase hex digits, NUL-terminated, into out
 * (outlen >= DM_AUTH_SHA256_HEX_LEN + 1). Returns 0, DM_ERR_LIMIT (outlen too small) or
 * DM_ERR_NOMEM. Any thread. */
int dm_jobreq_binding_sha256(char *out, size_t outlen, const struct dm_jobreq *job);

/* Names and parsers of the enums ("critical"…, "storia-digital"…). The parsers return 0 or
 * DM_ERR_INVALID; the name functions return a static string ("unknown" when out of range). */
const char *dm_jobreq_priority_name(enum dm_priority p);
int dm_jobreq_priority_parse(enum dm_priority *out, const char *s);
const char *dm_jobreq_repo_type_name(enum dm_repo_type t);
int dm_jobreq_repo_type_parse(enum dm_repo_type *out, const char *s);

#endif
