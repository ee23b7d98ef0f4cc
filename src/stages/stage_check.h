/*
 * stage_check (private to src/stages): the whole change checked in its repository before the
 * review decides — the base commit written out (io/basework → git/checkout, cached per commit
 * under <data_dir>/checks/base), the TypeScript compiler on base + change (io/typecheck, in
 * <data_dir>/checks/jobs/<job id>), the SQL migrations replayed (io/basework → domain/migrate).
 * Errors in files of the change go back to the model with the compiler's messages, one repair
 * of each file at fault per round, through the generator's round (gen_state.round_done), at
 * most DREAM_MAX_REPAIRS rounds and within the budget; errors only in files the change does not
 * touch are reported, never fatal. A change that stays broken fails with "file:line: message".
 *
 * The verification summary (Markdown lines for the PR body) is kept until stage_check_forget.
 * Loop thread only.
 */
#ifndef DREAM_STAGES_CHECK_H
#define DREAM_STAGES_CHECK_H

#include "dream/core/error.h"

struct pjob;

/* Completion of the check: rc 0 (the change checks, or could not be checked: the summary says
 * so) or the error that fails the job (DM_ERR_INVALID: still broken, err names file:line;
 * DM_ERR_BUDGET, DM_ERR_CANCELLED, ...). Fires later, exactly once, only while the job is
 * attached; the stage is then still running. */
typedef void (*stage_check_done_fn)(struct pjob *pj, int rc, const struct dm_error *err);

/* Runs the check of pj's files (the stage must be running, every file loaded). */
void stage_check_run(struct pjob *pj, stage_check_done_fn done);

/* The verification summary of the last check of pj, Markdown lines ("- Type-check (tsc
 * 7.0.2): passed, 7 files\n- Migrations: 0001_init.sql, 0002_create_todos.sql applied\n"), or
 * NULL. Borrowed until stage_check_forget. */
const char *stage_check_verification(const struct pjob *pj);

/* Asks the check's work in flight to stop (it completes cancelled). */
void stage_check_cancel(struct pjob *pj);

/* Drops what the check keeps for pj (nothing may be in flight). */
void stage_check_forget(struct pjob *pj);

#endif
