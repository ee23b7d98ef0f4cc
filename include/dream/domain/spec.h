/*
 * spec: a feature spec in Markdown → a parsed spec (title, overview, categorised list items,
 * every section by heading).
 *
 * The parser walks the CommonMark tree that cmark builds; it never matches lines with patterns.
 * The rules are DESIGN.md's "Spec rules, where ORIGINAL.md leaves a choice"; where those still
 * leave a choice, this header says what is done:
 *
 * Input
 *   - At most lim->max_bytes bytes (DM_ERR_LIMIT), not blank (DM_ERR_INVALID).
 *   - Binary input is REJECTED, not sanitised: invalid UTF-8 (overlong forms, surrogates, code
 *     points past U+10FFFF, truncated sequences), NUL and C0 control bytes other than TAB, LF, FF
 *     and CR, and DEL give DM_ERR_INVALID with the byte offset. A leading UTF-8 BOM is skipped.
 *   - CRLF and CR line ends, setext headings, entities and backslash escapes are CommonMark's.
 *
 * Plain text (titles, headings, items, prose)
 *   - Inline markup is dropped; text, code spans, link text and image alt text are kept; raw
 *     inline HTML is dropped. Runs of ASCII white space (line breaks included) become one space;
 *     the result is trimmed.
 *
 * Title
 *   - The first level-1 heading whose plain text is not empty, else the first such level-2
 *     heading, else "Untitled Spec". At most lim->max_title_bytes bytes (DM_ERR_LIMIT).
 *   - Only top-level headings count, for the title and for sections: a heading inside a list
 *     item or a block quote is content.
 *
 * Sections
 *   - Every level-1/2 heading but the title heading starts a section that runs to the next
 *     level-1/2 heading (the title heading included). Deeper headings stay inside.
 *   - key = the heading's plain text, ASCII lower-cased. Words = runs of [a-z0-9] of the key.
 *   - Category, first match in this order (a word equal to a candidate):
 *       overview: overview summary description
 *       requirements: requirements features scope deliverables
 *       api: api routes endpoints
 *       db: database db schema migrations
 *       ui: ui components frontend interface
 *     Headings whose words contain the sequence "out of scope", "non goals" or "future work"
 *     are DM_SPEC_CAT_EXCLUDED and feed nothing. Several sections of one category are
 *     concatenated in document order (duplicate headings work that way).
 *   - The preamble is every top-level block that is in no section (the blocks before the
 *     first section, and those after the title heading up to the next section heading).
 *
 * Prose
 *   - The plain text of every paragraph inside the blocks (also paragraphs in lists and block
 *     quotes), joined by "\n\n". Code blocks, HTML blocks and headings are not prose.
 *   - overview = the prose of the overview sections, joined by "\n\n"; if that is empty, the
 *     prose of the preamble.
 *
 * Items
 *   - The items of lists that are direct children of the document inside the section (so also
 *     under its ### subheadings, but not lists inside block quotes). An item's text is the plain
 *     text of its first block when that is a paragraph; an item whose first block is not a
 *     paragraph, or whose text is empty, is skipped.
 *   - context: the rest of the item as an outline, one line per paragraph, "\n"-joined, no final
 *     newline. A later paragraph of the item is a line of its own at the item's level; a nested
 *     list item is "- <text>" and its own rest follows one level deeper. Each level below the
 *     top-level item indents two spaces. Paragraphs of block quotes count at the quote's
 *     level; code blocks and HTML are left out. "" when none.
 *     Example: item "a" holding list item "b", whose second paragraph is "c", and then a
 *     paragraph "d" of a's own: text "a", context "- b\n  c\nd".
 *
 * Limits (struct dm_spec_limits; NULL or 0 fields = defaults)
 *   - max_items items per category (requirements, api, db, ui); item texts of those categories
 *     at most max_item_bytes; max_sections sections; lists and block quotes nested at most
 *     max_depth deep anywhere in the document. Each gives DM_ERR_LIMIT with a message saying
 *     which limit and where. Items of other sections are kept but not limited (the byte cap
 *     bounds them).
 *
 * Pure: no I/O, no globals; any thread.
 */
#ifndef DREAM_SPEC_H
#define DREAM_SPEC_H

#include <stddef.h>

#include "dream/core/error.h"

#define DM_SPEC_UNTITLED "Untitled Spec"

#define DM_SPEC_DEFAULT_MAX_BYTES (256u * 1024u)
#define DM_SPEC_DEFAULT_MAX_ITEMS 200u
#define DM_SPEC_DEFAULT_MAX_ITEM_BYTES 2000u
#define DM_SPEC_DEFAULT_MAX_TITLE_BYTES 256u
#define DM_SPEC_DEFAULT_MAX_SECTIONS 256u
#define DM_SPEC_DEFAULT_MAX_DEPTH 16u

struct dm_spec_limits {
    size_t max_bytes;       /* whole spec; default 256 KiB */
    size_t max_items;       /* items per category; default 200 */
    size_t max_item_bytes;  /* one item's text; default 2000 */
    size_t max_title_bytes; /* title; default 256 */
    size_t max_sections;    /* sections (level-1/2 headings); default 256 */
    size_t max_depth;       /* nested lists + block quotes; default 16, at most 256 */
};

/* Fills lim with the defaults above. */
void dm_spec_limits_init(struct dm_spec_limits *lim);

enum dm_spec_cat {
    DM_SPEC_CAT_NONE = 0,
    DM_SPEC_CAT_OVERVIEW,
    DM_SPEC_CAT_REQUIREMENTS,
    DM_SPEC_CAT_API,
    DM_SPEC_CAT_DB,
    DM_SPEC_CAT_UI,
    DM_SPEC_CAT_EXCLUDED,
};

/* "none", "overview", "requirements", "api", "db", "ui", "excluded". Never NULL. */
const char *dm_spec_cat_name(enum dm_spec_cat cat);

struct dm_spec_item {
    char *text;    /* plain text of the first paragraph: one line, never empty */
    char *context; /* nested items and later paragraphs as an outline; "" when none */
};

struct dm_spec_list {
    struct dm_spec_item *items;
    size_t count;
};

struct dm_spec_section {
    char *heading; /* plain text of the heading (may be "") */
    char *key;     /* heading, ASCII lower-cased */
    int level;     /* 1 or 2 */
    enum dm_spec_cat category;
    char *prose;               /* paragraphs, "\n\n"-joined; "" when none */
    struct dm_spec_list items; /* top-level list items */
};

struct dm_spec {
    char *title;    /* never NULL, never empty */
    char *overview; /* never NULL; may be "" */
    char *preamble; /* prose outside every section; never NULL */
    struct dm_spec_list requirements;
    struct dm_spec_list api_routes;
    struct dm_spec_list db_changes;
    struct dm_spec_list ui_components;
    struct dm_spec_section *sections; /* document order */
    size_t section_count;
};

/*
 * Parses len bytes of Markdown (need not be NUL-terminated). lim NULL = defaults.
 * On success *out is a new spec the caller frees with dm_spec_free(). On error *out is NULL and
 * returns DM_ERR_INVALID (blank or binary input), DM_ERR_LIMIT (a limit above) or DM_ERR_NOMEM,
 * with err->msg saying why. Pure; any thread.
 */
int dm_spec_parse(struct dm_spec **out, const char *md, size_t len,
                  const struct dm_spec_limits *lim, struct dm_error *err);

/* Frees a spec; NULL is fine. */
void dm_spec_free(struct dm_spec *s);

/* The first section whose key equals key (ASCII case-insensitive), or NULL. Borrowed. */
const struct dm_spec_section *dm_spec_section_find(const struct dm_spec *s, const char *key);

/* The item list of a category (requirements/api/db/ui), or NULL for any other. Borrowed. */
const struct dm_spec_list *dm_spec_list_of(const struct dm_spec *s, enum dm_spec_cat cat);

/*
 * The UTF-8 rules under their old names, for callers outside the domain layer; new code calls
 * dream/core/text.h directly. dm_spec_utf8_check = dm_text_check() (strict UTF-8 without
 * NUL/C0 controls other than TAB LF FF CR, nor DEL; 0 or DM_ERR_INVALID with *bad_off);
 * dm_spec_utf8_prefix = dm_text_prefix_chars() (bytes of the first max_chars characters).
 */
int dm_spec_utf8_check(const char *s, size_t len, size_t *bad_off);
size_t dm_spec_utf8_prefix(const char *s, size_t len, size_t max_chars);

#endif
