/*
 * safety_rules (private to the safety module): the rule table the scanner runs and the state a
 * scan shares with the rules' post-filters. safety_rules.c owns the table and the process-wide
 * compiled patterns; safety.c (the scanner) and safety_policy.c read them. Not a public
 * contract: include it only from src/domain/safety*.c.
 */
#ifndef DREAM_SAFETY_RULES_H
#define DREAM_SAFETY_RULES_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "dream/core/text.h"
#include "dream/domain/safety.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The languages a rule applies to: one bit per comment syntax (dm_text_lang_of()). */
#define LANG_SQL (1u << DM_TEXT_COMMENTS_SQL)
#define LANG_CLIKE (1u << DM_TEXT_COMMENTS_CLIKE)
#define LANG_HASH (1u << DM_TEXT_COMMENTS_HASH)
#define LANG_OTHER (1u << DM_TEXT_COMMENTS_NONE)
#define LANG_ALL (LANG_SQL | LANG_CLIKE | LANG_HASH | LANG_OTHER)
#define LANG_NOT_SQL (LANG_CLIKE | LANG_HASH | LANG_OTHER)

enum view {
    VIEW_STRIPPED, /* comments (and SQL literals) blanked */
    VIEW_RAW,      /* the bytes as generated */
};

struct rule;

/* Per-scan state the post-filters share; built lazily, freed by the scan. */
struct scan_ctx {
    const char *view; /* the stripped view */
    size_t len;
    enum dm_text_comments lang;
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
    unsigned langs; /* LANG_* bits it applies to */
    enum view view;
    uint32_t options;
    const char *pattern;
    accept_fn accept;
};

/* The rules, in scan order, and their patterns compiled by dm_safety_init() (read-only once
 * it returned 0). */
extern const struct rule dm_safety_rules[];
extern const size_t dm_safety_rule_count;
extern pcre2_code *dm_safety_rule_code[];

/* Appends s (n bytes) to the NUL-terminated dst (cap bytes) as printable ASCII: white space
 * runs become one space, other bytes '?'. For excerpts and error messages. */
void dm_safety_put_printable(char *dst, size_t cap, const char *s, size_t n);

#endif
