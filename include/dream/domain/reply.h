/*
 * reply: the one parser of model output. A model answers either with one file (the generator)
 * or with one JSON object (the reviewer's verdict, the planner's plan); both may come bare or
 * wrapped in one Markdown code fence, and both are hostile input: cut off, doubled, wrapped in
 * prose, huge, not UTF-8. This module finds the payload and refuses everything else with a
 * message saying what was wrong; what the JSON means is the caller's business (review.c,
 * planner.c).
 *
 * Fences follow CommonMark: an opener is three or more '`' or '~' indented at most three
 * spaces (a '`' opener has no '`' in its info string); the closer is the same character, at
 * least as long, indented at most three spaces, with only white space after it.
 *
 * Pure (cJSON); no state; any thread.
 */
#ifndef DREAM_REPLY_H
#define DREAM_REPLY_H

#include <stddef.h>

#include "dream/core/error.h"

#define DM_REPLY_MAX (1024 * 1024) /* bytes of a reply dm_reply_extract_file() takes */

/*
 * The file content in a model's reply. Lines end in LF or CRLF; the output always uses LF and
 * ends in exactly one LF.
 *   - Empty or white-space-only reply: DM_ERR_INVALID ("reply is empty").
 *   - Exactly one fenced code block (any info string) with only white space around it: its
 *     content (the opener's indentation removed from each line, as CommonMark does). An empty
 *     block, a block that is never closed (a truncated reply) and text or another block after
 *     the closing fence: DM_ERR_INVALID.
 *   - No line opening a fence: the reply as is (leading blank lines and trailing white space
 *     dropped), unless its first line starts like prose ("Here is", "Here's", "Sure",
 *     "Certainly"): DM_ERR_INVALID.
 *   - Prose before a fence line: DM_ERR_INVALID ("text around a code block").
 *   - NUL bytes or invalid UTF-8 (dm_text_utf8_check()): DM_ERR_INVALID; more than DM_REPLY_MAX
 *     bytes: DM_ERR_LIMIT.
 * A file whose own text has a line starting with ``` (e.g. Markdown inside a template string)
 * is therefore refused unless the model fenced it with a longer fence; the caller asks again.
 * *out is malloc'd (free()), NULL on error.
 */
int dm_reply_extract_file(char **out, const char *reply, size_t len, struct dm_error *err);

/*
 * The JSON object of a model's structured reply (the reviewer's and the planner's): after
 * optional white space, one JSON object and optional white space, or that object as the only
 * content of one fenced code block (as above, with the closing fence on the reply's last
 * line). *out is the parsed object (cJSON_Delete()). Errors, all DM_ERR_INVALID with messages
 * starting with `what` (e.g. "reviewer reply"): empty, over max bytes, not UTF-8 text
 * (dm_text_check(): invalid UTF-8, NUL or control bytes), prose before or after, an unclosed
 * fence, malformed or truncated JSON, a value that is not an object. *out is NULL on error.
 */
struct cJSON;
int dm_reply_json(struct cJSON **out, const char *reply, size_t len, size_t max, const char *what,
                  struct dm_error *err);

#endif
