/*
 * stage_gate: the gate stage. Destructive operations found by the rule scan, or a review that
 * decided "pause" (now or in an earlier attempt), park the job for a human: one write records
 * paused_approval with the flagged findings and acknowledges the entry; `dreamctl approve`
 * requeues it and the gate then lets it through. Dry runs and approved jobs pass at once.
 * No state of its own (it reads the scan and the review's decision). Loop thread only.
 */
#include "dream/core/log.h"

#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parks the job: the stage ends with DM_JOB_PARKED once the write is in. */
static void park(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    char *flagged = dm_findings_to_json(&pj->scan.findings);
    char *summary = dm_findings_summary(&pj->scan.findings, 10);
    char msg[DM_ERROR_MSG_MAX];
    const char *fields[] = {"status", "paused_approval"};
    struct dm_event_extra x = {.flagged_json = flagged ? flagged : "[]", .step = "gate"};
    struct dm_job_write w = {
        .status = "paused_approval", .message = msg, .extra = &x, .fields = fields, .n_fields = 2};

    w.flags = DM_JOB_WRITE_ACK | DM_JOB_WRITE_PARK;
    snprintf(msg, sizeof(msg), "waiting for approval: %s", summary ? summary : "review");
    dm_info("pipeline", job->id, "parked: %s", msg);
    stage_record_finish(pj, &w, DM_JOB_PARKED, "could not park the job");
    free(flagged);
    free(summary);
}

static void gate_loaded(struct pjob *pj)
{
    struct dm_job *job = pj->job;
    const struct dm_review_verdict *decided = pj->review.decided;
    struct dm_error err;

    if (job->dry_run || job->approved) {
        stage_finish_later(pj);
        return;
    }
    if (stage_scan(pj, &err)) {
        stage_finish(pj, err.code ? err.code : DM_ERR_INVALID, &err);
        return;
    }
    if (dm_findings_count(&pj->scan.findings, DM_FINDING_DESTRUCTIVE) ||
        (decided && decided->decision == DM_REVIEW_PAUSE) || strcmp(job->review, "pause") == 0) {
        park(pj);
        return;
    }
    stage_finish_later(pj);
}

int stage_gate_run(struct dm_job *job)
{
    return stage_begin(job, LOAD_FILES | LOAD_REPO, gate_loaded);
}
