/*
 * spec_text: the text of CommonMark nodes for the spec parser — a heading's or paragraph's
 * plain text, a section's prose, and the indented outline of a list item's nested content
 * (contract in spec_text.h, private to spec). spec.c decides what the nodes mean. No state;
 * runs on the parsing thread inside dm_spec_parse().
 */
#include "spec_text.h"

#include <stdlib.h>

/* Collapses runs of ASCII white space to one space and trims, in place. */
static void collapse_space(char *s)
{
    char *w = s;
    int pending = 0;

    for (const char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r' || *r == '\v' || *r == '\f') {
            pending = w != s;
            continue;
        }
        if (pending) {
            *w++ = ' ';
            pending = 0;
        }
        *w++ = *r;
    }
    *w = '\0';
}

int dm_spec_node_text(char **out, cmark_node *node)
{
    struct dm_buf b;
    cmark_iter *it;
    cmark_event_type ev;
    int rc = 0;

    *out = NULL;
    dm_buf_init(&b, 0);
    it = cmark_iter_new(node);
    if (!it) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *n = cmark_iter_get_node(it);
        const char *lit;

        if (ev != CMARK_EVENT_ENTER) {
            continue;
        }
        switch (cmark_node_get_type(n)) {
        case CMARK_NODE_TEXT:
        case CMARK_NODE_CODE:
            lit = cmark_node_get_literal(n);
            rc = dm_buf_puts(&b, lit ? lit : "");
            break;
        case CMARK_NODE_SOFTBREAK:
        case CMARK_NODE_LINEBREAK:
            rc = dm_buf_puts(&b, " ");
            break;
        default:
            break;
        }
        if (rc) {
            goto out;
        }
    }
    *out = dm_buf_detach(&b);
    if (!*out) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    collapse_space(*out);
out:
    if (it) {
        cmark_iter_free(it);
    }
    dm_buf_free(&b);
    return rc;
}

int dm_spec_prose_append(struct dm_buf *b, cmark_node *block)
{
    cmark_iter *it;
    cmark_event_type ev;
    char *text = NULL;
    int rc = 0;

    it = cmark_iter_new(block);
    if (!it) {
        return DM_ERR_NOMEM;
    }
    while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *n = cmark_iter_get_node(it);
        if (ev != CMARK_EVENT_ENTER || cmark_node_get_type(n) != CMARK_NODE_PARAGRAPH) {
            continue;
        }
        rc = dm_spec_node_text(&text, n);
        if (rc) {
            goto out;
        }
        if (*text) {
            if (b->len) {
                rc = dm_buf_puts(b, "\n\n");
            }
            if (!rc) {
                rc = dm_buf_puts(b, text);
            }
        }
        free(text);
        text = NULL;
        if (rc) {
            goto out;
        }
    }
out:
    free(text);
    cmark_iter_free(it);
    return rc;
}

static int ctx_line(struct dm_buf *b, int level, const char *bullet, const char *text)
{
    int rc = 0;

    if (b->len) {
        rc = dm_buf_puts(b, "\n");
    }
    for (int i = 0; i < level && !rc; i++) {
        rc = dm_buf_puts(b, "  ");
    }
    if (!rc) {
        rc = dm_buf_puts(b, bullet);
    }
    if (!rc) {
        rc = dm_buf_puts(b, text);
    }
    return rc;
}

static int ctx_item(struct dm_buf *b, cmark_node *item, int level)
{
    cmark_node *first = cmark_node_first_child(item);
    char *text = NULL;
    int rc = 0;

    if (first && cmark_node_get_type(first) == CMARK_NODE_PARAGRAPH) {
        rc = dm_spec_node_text(&text, first);
        if (!rc && *text) {
            rc = ctx_line(b, level, "- ", text);
        }
        if (!rc) {
            rc = dm_spec_outline(b, cmark_node_next(first), level + 1);
        }
    } else {
        rc = dm_spec_outline(b, first, level + 1);
    }
    free(text);
    return rc;
}

int dm_spec_outline(struct dm_buf *b, cmark_node *first, int level)
{
    char *text = NULL;
    int rc = 0;

    for (cmark_node *n = first; n && !rc; n = cmark_node_next(n)) {
        switch (cmark_node_get_type(n)) {
        case CMARK_NODE_PARAGRAPH:
            rc = dm_spec_node_text(&text, n);
            if (!rc && *text) {
                rc = ctx_line(b, level, "", text);
            }
            free(text);
            text = NULL;
            break;
        case CMARK_NODE_LIST:
            for (cmark_node *it = cmark_node_first_child(n); it && !rc; it = cmark_node_next(it)) {
                rc = ctx_item(b, it, level);
            }
            break;
        case CMARK_NODE_BLOCK_QUOTE:
            rc = dm_spec_outline(b, cmark_node_first_child(n), level);
            break;
        default:
            break;
        }
    }
    return rc;
}
