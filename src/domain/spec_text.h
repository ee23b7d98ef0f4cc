/*
 * spec_text (private to the spec module): CommonMark nodes to text, for spec.c. Include it only
 * from src/domain/spec*.c. All return 0, DM_ERR_NOMEM or dm_buf's error.
 */
#ifndef DREAM_SPEC_TEXT_H
#define DREAM_SPEC_TEXT_H

#include <cmark.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"

/* Plain text of a heading or paragraph (text, code spans, link text and alt text), white space
 * runs collapsed to one space and trimmed. *out is malloc'd (free()). */
int dm_spec_node_text(char **out, cmark_node *node);

/* Appends the plain text of every paragraph inside block to b, "\n\n"-separated. */
int dm_spec_prose_append(struct dm_buf *b, cmark_node *block);

/* Appends the outline of the blocks from first on: one line per paragraph or list item,
 * indented two spaces per level, items as "- ". Recursive: the caller bounds the nesting depth
 * (spec.c's depth check) before calling. */
int dm_spec_outline(struct dm_buf *b, cmark_node *first, int level);

#endif
