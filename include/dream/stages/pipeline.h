/*
 * pipeline: the real stages of a build job — plan, generate (many files at once through the
 * LLM, each validated and repaired, checkpointed before it is announced, never over budget),
 * review (rules and secrets), gate (park destructive output for approval), push (libgit2 on the
 * threadpool) and pull request (GitHub). It owns the services the stages share: the HTTP client
 * (one curl multi on the loop), the OpenRouter client, the price table, the prompts, the GitHub
 * client and the esbuild runner, and the replica-wide cap on LLM requests in flight.
 * One file per stage in src/stages (stage_plan.c ... stage_pr.c); what they share is in the
 * private src/stages/stage.h.
 * Loop thread only (git runs on the threadpool through gitjob, with copied inputs).
 */
#ifndef DREAM_PIPELINE_H
#define DREAM_PIPELINE_H

#include <uv.h>

#include "dream/core/config.h"
#include "dream/domain/job.h"

struct dm_pipeline;
struct dm_metrics;

/* Creates the shared services (reads the price and prompt files: call at start-up). cfg must
 * outlive the pipeline; metrics may be NULL. Returns 0 or a negative enum dm_err with err set. */
int dm_pipeline_new(struct dm_pipeline **out, uv_loop_t *loop, const struct dm_config *cfg,
                    struct dm_metrics *metrics, struct dm_error *err);

/* Fills ops with the pipeline's stages. */
void dm_pipeline_stage_ops(struct dm_pipeline *p, struct dm_stage_ops *ops);

/* The callback poster (jobs with a callbackUrl), owned by the pipeline. */
struct dm_callbacks *dm_pipeline_callbacks(const struct dm_pipeline *p);

/* LLM requests in flight, all jobs together. */
int dm_pipeline_llm_in_flight(const struct dm_pipeline *p);

/* Closes every service (requests still in flight are cancelled) and frees the pipeline once
 * libuv has closed its handles; done (may be NULL) fires then. Call after the engine stopped. */
void dm_pipeline_close(struct dm_pipeline *p, void (*done)(void *arg), void *arg);

#endif
