/*
 * spec: Markdown spec → struct dm_spec by walking cmark's CommonMark tree (rules in
 * include/dream/domain/spec.h). Owns the parsed spec it returns; holds no global state, so any
 * thread may call it. The cmark tree lives only inside dm_spec_parse(); the text of its nodes
 * (plain text, prose, outlines) comes from spec_text.c.
 */
#include "dream/domain/spec.h"
#include "dream/core/buf.h"
#include "dream/core/text.h"
#include "spec_text.h"

#include <cmark.h>
#include <stdlib.h>
#include <string.h>

/* Deeper nesting than this is refused whatever the caller asks, so that the recursive outline
 * builder stays far away from the stack's end. */
#define HARD_MAX_DEPTH 256u

struct parse {
    struct dm_spec_limits lim;
    struct dm_error *err;
    struct dm_spec *spec;
    struct dm_buf preamble;
    struct dm_buf prose; /* prose of the current section */
    int open;            /* a section is open: prose and items go to the last one */
    size_t section_cap;  /* sections allocated */
    size_t cat_items[DM_SPEC_CAT_EXCLUDED + 1];
};

static const struct {
    enum dm_spec_cat cat;
    const char *words[5];
} categories[] = {
    {DM_SPEC_CAT_OVERVIEW, {"overview", "summary", "description", NULL}},
    {DM_SPEC_CAT_REQUIREMENTS, {"requirements", "features", "scope", "deliverables", NULL}},
    {DM_SPEC_CAT_API, {"api", "routes", "endpoints", NULL}},
    {DM_SPEC_CAT_DB, {"database", "db", "schema", "migrations", NULL}},
    {DM_SPEC_CAT_UI, {"ui", "components", "frontend", "interface", NULL}},
};

static const char *const excluded_phrases[] = {" out of scope ", " non goals ", " future work "};

void dm_spec_limits_init(struct dm_spec_limits *lim)
{
    lim->max_bytes = DM_SPEC_DEFAULT_MAX_BYTES;
    lim->max_items = DM_SPEC_DEFAULT_MAX_ITEMS;
    lim->max_item_bytes = DM_SPEC_DEFAULT_MAX_ITEM_BYTES;
    lim->max_title_bytes = DM_SPEC_DEFAULT_MAX_TITLE_BYTES;
    lim->max_sections = DM_SPEC_DEFAULT_MAX_SECTIONS;
    lim->max_depth = DM_SPEC_DEFAULT_MAX_DEPTH;
}

const char *dm_spec_cat_name(enum dm_spec_cat cat)
{
    switch (cat) {
    case DM_SPEC_CAT_OVERVIEW:
        return "overview";
    case DM_SPEC_CAT_REQUIREMENTS:
        return "requirements";
    case DM_SPEC_CAT_API:
        return "api";
    case DM_SPEC_CAT_DB:
        return "db";
    case DM_SPEC_CAT_UI:
        return "ui";
    case DM_SPEC_CAT_EXCLUDED:
        return "excluded";
    case DM_SPEC_CAT_NONE:
    default:
        return "none";
    }
}

/* Kept for callers elsewhere; the rules live in core/text.c. */
int dm_spec_utf8_check(const char *s, size_t len, size_t *bad_off)
{
    return dm_text_check(s, len, bad_off);
}

size_t dm_spec_utf8_prefix(const char *s, size_t len, size_t max_chars)
{
    return dm_text_prefix_chars(s, len, max_chars);
}

static int is_ascii_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* A short, UTF-8-safe excerpt of s (at most 40 characters and dstlen - 4 bytes) for error
 * messages. */
static void snip(char *dst, size_t dstlen, const char *s)
{
    size_t len = strlen(s);
    size_t n = 0;

    for (size_t chars = 0; n < len && chars < 40; chars++) {
        size_t step = dm_text_prefix_chars(s + n, len - n, 1);
        if (n + step > dstlen - 4) {
            break;
        }
        n += step;
    }
    memcpy(dst, s, n);
    if (n < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static int list_push(struct dm_spec_list *l, char *text, char *context)
{
    size_t n = l->count;

    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        size_t cap = n ? n * 2 : 4;
        struct dm_spec_item *p = realloc(l->items, cap * sizeof(*p));
        if (!p) {
            return DM_ERR_NOMEM;
        }
        l->items = p;
    }
    l->items[n].text = text;
    l->items[n].context = context;
    l->count++;
    return 0;
}

static void list_free(struct dm_spec_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].text);
        free(l->items[i].context);
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int categorize(const char *key, enum dm_spec_cat *cat)
{
    /* Words as " w1 w2 ... ", so phrases and words are found with strstr. */
    size_t len = strlen(key);
    char *w = malloc(len * 2 + 3);
    char *o;

    *cat = DM_SPEC_CAT_NONE;
    if (!w) {
        return DM_ERR_NOMEM;
    }
    o = w;
    *o++ = ' ';
    for (const char *r = key; *r; r++) {
        char c = *r;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            *o++ = c;
        } else if (o[-1] != ' ') {
            *o++ = ' ';
        }
    }
    if (o[-1] != ' ') {
        *o++ = ' ';
    }
    *o = '\0';
    for (size_t i = 0; i < sizeof(excluded_phrases) / sizeof(excluded_phrases[0]); i++) {
        if (strstr(w, excluded_phrases[i])) {
            *cat = DM_SPEC_CAT_EXCLUDED;
            goto out;
        }
    }
    for (size_t i = 0; i < sizeof(categories) / sizeof(categories[0]); i++) {
        for (size_t j = 0; categories[i].words[j]; j++) {
            char pat[32];
            size_t n = strlen(categories[i].words[j]);
            pat[0] = ' ';
            memcpy(pat + 1, categories[i].words[j], n);
            pat[n + 1] = ' ';
            pat[n + 2] = '\0';
            if (strstr(w, pat)) {
                *cat = categories[i].cat;
                goto out;
            }
        }
    }
out:
    free(w);
    return 0;
}

static int check_depth(struct parse *p, cmark_node *doc)
{
    cmark_iter *it = cmark_iter_new(doc);
    cmark_event_type ev;
    size_t depth = 0;
    int rc = 0;

    if (!it) {
        return DM_ERR_NOMEM;
    }
    while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *n = cmark_iter_get_node(it);
        cmark_node_type t = cmark_node_get_type(n);
        if (t != CMARK_NODE_LIST && t != CMARK_NODE_BLOCK_QUOTE) {
            continue;
        }
        if (ev == CMARK_EVENT_EXIT) {
            depth--;
            continue;
        }
        if (++depth > p->lim.max_depth) {
            rc = dm_error_set(p->err, DM_ERR_LIMIT,
                              "spec nests lists and block quotes more than %zu deep (line %d)",
                              p->lim.max_depth, cmark_node_get_start_line(n));
            break;
        }
    }
    cmark_iter_free(it);
    return rc;
}

static cmark_node *find_title(cmark_node *doc, char **title, int *rc)
{
    for (int level = 1; level <= 2; level++) {
        for (cmark_node *n = cmark_node_first_child(doc); n; n = cmark_node_next(n)) {
            if (cmark_node_get_type(n) != CMARK_NODE_HEADING ||
                cmark_node_get_heading_level(n) != level) {
                continue;
            }
            *rc = dm_spec_node_text(title, n);
            if (*rc) {
                return NULL;
            }
            if (**title) {
                return n;
            }
            free(*title);
            *title = NULL;
        }
    }
    return NULL;
}

static int finish_section(struct parse *p)
{
    struct dm_spec *s = p->spec;
    char *prose;

    if (!p->open) {
        return 0;
    }
    p->open = 0;
    prose = dm_buf_detach(&p->prose);
    if (!prose) {
        return DM_ERR_NOMEM;
    }
    s->sections[s->section_count - 1].prose = prose;
    return 0;
}

static int start_section(struct parse *p, cmark_node *heading)
{
    struct dm_spec *s = p->spec;
    struct dm_spec_section *sec;
    struct dm_spec_section *arr;
    int rc;

    rc = finish_section(p);
    if (rc) {
        return rc;
    }
    if (s->section_count >= p->lim.max_sections) {
        return dm_error_set(p->err, DM_ERR_LIMIT, "spec has more than %zu sections (line %d)",
                            p->lim.max_sections, cmark_node_get_start_line(heading));
    }
    if (s->section_count == p->section_cap) {
        size_t cap = p->section_cap ? p->section_cap * 2 : 8;
        arr = realloc(s->sections, cap * sizeof(*arr));
        if (!arr) {
            return DM_ERR_NOMEM;
        }
        s->sections = arr;
        p->section_cap = cap;
    }
    arr = s->sections;
    sec = &arr[s->section_count++];
    memset(sec, 0, sizeof(*sec));
    sec->level = cmark_node_get_heading_level(heading);
    rc = dm_spec_node_text(&sec->heading, heading);
    if (rc) {
        return rc;
    }
    sec->key = strdup(sec->heading);
    if (!sec->key) {
        return DM_ERR_NOMEM;
    }
    for (char *c = sec->key; *c; c++) {
        *c = ascii_lower(*c);
    }
    p->open = 1;
    return categorize(sec->key, &sec->category);
}

static int section_items(struct parse *p, cmark_node *list)
{
    struct dm_spec_section *sec = &p->spec->sections[p->spec->section_count - 1];
    int limited = sec->category >= DM_SPEC_CAT_REQUIREMENTS && sec->category <= DM_SPEC_CAT_UI;
    struct dm_buf ctx;
    char *text = NULL;
    char *context = NULL;
    char ex[64];
    int rc = 0;

    dm_buf_init(&ctx, 0);
    for (cmark_node *it = cmark_node_first_child(list); it; it = cmark_node_next(it)) {
        cmark_node *first = cmark_node_first_child(it);

        if (!first || cmark_node_get_type(first) != CMARK_NODE_PARAGRAPH) {
            continue;
        }
        rc = dm_spec_node_text(&text, first);
        if (rc) {
            goto out;
        }
        if (!*text) {
            free(text);
            text = NULL;
            continue;
        }
        if (limited && strlen(text) > p->lim.max_item_bytes) {
            snip(ex, sizeof(ex), text);
            rc = dm_error_set(p->err, DM_ERR_LIMIT,
                              "spec item \"%s\" (line %d) is %zu bytes long (limit %zu)", ex,
                              cmark_node_get_start_line(it), strlen(text), p->lim.max_item_bytes);
            goto out;
        }
        if (limited && ++p->cat_items[sec->category] > p->lim.max_items) {
            rc = dm_error_set(
                p->err, DM_ERR_LIMIT, "spec has more than %zu %s items (limit reached at line %d)",
                p->lim.max_items, dm_spec_cat_name(sec->category), cmark_node_get_start_line(it));
            goto out;
        }
        dm_buf_reset(&ctx);
        rc = dm_spec_outline(&ctx, cmark_node_next(first), 0);
        if (rc) {
            goto out;
        }
        context = strdup(ctx.data ? ctx.data : "");
        if (!context) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
        rc = list_push(&sec->items, text, context);
        if (rc) {
            goto out;
        }
        text = NULL;
        context = NULL;
    }
out:
    free(text);
    free(context);
    dm_buf_free(&ctx);
    return rc;
}

static int copy_category(struct dm_spec *s, enum dm_spec_cat cat, struct dm_spec_list *dst)
{
    for (size_t i = 0; i < s->section_count; i++) {
        const struct dm_spec_section *sec = &s->sections[i];
        if (sec->category != cat) {
            continue;
        }
        for (size_t j = 0; j < sec->items.count; j++) {
            char *t = strdup(sec->items.items[j].text);
            char *c = strdup(sec->items.items[j].context);
            if (!t || !c || list_push(dst, t, c)) {
                free(t);
                free(c);
                return DM_ERR_NOMEM;
            }
        }
    }
    return 0;
}

static int build_overview(struct dm_spec *s)
{
    struct dm_buf b;
    int rc = 0;

    dm_buf_init(&b, 0);
    for (size_t i = 0; i < s->section_count && !rc; i++) {
        const struct dm_spec_section *sec = &s->sections[i];
        if (sec->category != DM_SPEC_CAT_OVERVIEW || !*sec->prose) {
            continue;
        }
        if (b.len) {
            rc = dm_buf_puts(&b, "\n\n");
        }
        if (!rc) {
            rc = dm_buf_puts(&b, sec->prose);
        }
    }
    if (!rc && !b.len) {
        rc = dm_buf_puts(&b, s->preamble);
    }
    if (!rc) {
        s->overview = dm_buf_detach(&b);
        if (!s->overview) {
            rc = DM_ERR_NOMEM;
        }
    }
    dm_buf_free(&b);
    return rc;
}

static void effective_limits(struct dm_spec_limits *eff, const struct dm_spec_limits *lim)
{
    dm_spec_limits_init(eff);
    if (!lim) {
        return;
    }
    if (lim->max_bytes) {
        eff->max_bytes = lim->max_bytes;
    }
    if (lim->max_items) {
        eff->max_items = lim->max_items;
    }
    if (lim->max_item_bytes) {
        eff->max_item_bytes = lim->max_item_bytes;
    }
    if (lim->max_title_bytes) {
        eff->max_title_bytes = lim->max_title_bytes;
    }
    if (lim->max_sections) {
        eff->max_sections = lim->max_sections;
    }
    if (lim->max_depth) {
        eff->max_depth = lim->max_depth < HARD_MAX_DEPTH ? lim->max_depth : HARD_MAX_DEPTH;
    }
}

static int check_input(struct parse *p, const char *md, size_t len)
{
    size_t off = 0;
    int blank = 1;

    if (len > p->lim.max_bytes) {
        return dm_error_set(p->err, DM_ERR_LIMIT, "spec is %zu bytes long (limit %zu)", len,
                            p->lim.max_bytes);
    }
    if (dm_text_check(md, len, &off)) {
        return dm_error_set(p->err, DM_ERR_INVALID,
                            "spec is not UTF-8 text: bad byte 0x%02x at offset %zu",
                            (unsigned char)md[off], off);
    }
    for (size_t i = 0; i < len && blank; i++) {
        blank = is_ascii_space((unsigned char)md[i]);
    }
    if (blank) {
        return dm_error_set(p->err, DM_ERR_INVALID, "spec is empty");
    }
    return 0;
}

int dm_spec_parse(struct dm_spec **out, const char *md, size_t len,
                  const struct dm_spec_limits *lim, struct dm_error *err)
{
    struct parse p;
    cmark_node *doc = NULL;
    cmark_node *title_node;
    int rc;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    effective_limits(&p.lim, lim);
    p.err = err;
    dm_buf_init(&p.preamble, 0);
    dm_buf_init(&p.prose, 0);
    if (len >= 3 && memcmp(md, "\xef\xbb\xbf", 3) == 0) {
        md += 3;
        len -= 3;
    }
    rc = check_input(&p, md, len);
    if (rc) {
        goto out;
    }
    p.spec = calloc(1, sizeof(*p.spec));
    if (!p.spec) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    doc = cmark_parse_document(md, len, CMARK_OPT_DEFAULT);
    if (!doc) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = check_depth(&p, doc);
    if (rc) {
        goto out;
    }
    title_node = find_title(doc, &p.spec->title, &rc);
    if (rc) {
        goto out;
    }
    if (!title_node) {
        p.spec->title = strdup(DM_SPEC_UNTITLED);
        if (!p.spec->title) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    } else if (strlen(p.spec->title) > p.lim.max_title_bytes) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "spec title is %zu bytes long (limit %zu)",
                          strlen(p.spec->title), p.lim.max_title_bytes);
        goto out;
    }

    for (cmark_node *n = cmark_node_first_child(doc); n; n = cmark_node_next(n)) {
        cmark_node_type t = cmark_node_get_type(n);
        if (t == CMARK_NODE_HEADING && cmark_node_get_heading_level(n) <= 2) {
            if (n == title_node) {
                rc = finish_section(&p);
            } else {
                rc = start_section(&p, n);
            }
        } else if (!p.open) {
            rc = dm_spec_prose_append(&p.preamble, n);
        } else {
            rc = dm_spec_prose_append(&p.prose, n);
            if (!rc && t == CMARK_NODE_LIST) {
                rc = section_items(&p, n);
            }
        }
        if (rc) {
            goto out;
        }
    }
    rc = finish_section(&p);
    if (rc) {
        goto out;
    }
    p.spec->preamble = dm_buf_detach(&p.preamble);
    if (!p.spec->preamble) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = build_overview(p.spec);
    if (!rc) {
        rc = copy_category(p.spec, DM_SPEC_CAT_REQUIREMENTS, &p.spec->requirements);
    }
    if (!rc) {
        rc = copy_category(p.spec, DM_SPEC_CAT_API, &p.spec->api_routes);
    }
    if (!rc) {
        rc = copy_category(p.spec, DM_SPEC_CAT_DB, &p.spec->db_changes);
    }
    if (!rc) {
        rc = copy_category(p.spec, DM_SPEC_CAT_UI, &p.spec->ui_components);
    }
    if (rc) {
        goto out;
    }
    *out = p.spec;
    p.spec = NULL;
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "out of memory parsing the spec");
    }
    if (doc) {
        cmark_node_free(doc);
    }
    dm_buf_free(&p.preamble);
    dm_buf_free(&p.prose);
    dm_spec_free(p.spec);
    return rc;
}

void dm_spec_free(struct dm_spec *s)
{
    if (!s) {
        return;
    }
    free(s->title);
    free(s->overview);
    free(s->preamble);
    list_free(&s->requirements);
    list_free(&s->api_routes);
    list_free(&s->db_changes);
    list_free(&s->ui_components);
    for (size_t i = 0; i < s->section_count; i++) {
        free(s->sections[i].heading);
        free(s->sections[i].key);
        free(s->sections[i].prose);
        list_free(&s->sections[i].items);
    }
    free(s->sections);
    free(s);
}

const struct dm_spec_section *dm_spec_section_find(const struct dm_spec *s, const char *key)
{
    for (size_t i = 0; s && key && i < s->section_count; i++) {
        const char *a = s->sections[i].key;
        const char *b = key;
        while (*a && ascii_lower(*a) == ascii_lower(*b)) {
            a++;
            b++;
        }
        if (!*a && !*b) {
            return &s->sections[i];
        }
    }
    return NULL;
}

const struct dm_spec_list *dm_spec_list_of(const struct dm_spec *s, enum dm_spec_cat cat)
{
    switch (cat) {
    case DM_SPEC_CAT_REQUIREMENTS:
        return &s->requirements;
    case DM_SPEC_CAT_API:
        return &s->api_routes;
    case DM_SPEC_CAT_DB:
        return &s->db_changes;
    case DM_SPEC_CAT_UI:
        return &s->ui_components;
    default:
        return NULL;
    }
}
