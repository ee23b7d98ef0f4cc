/*
 * plan_internal.h (private to src/domain): what plan.c (names, JSON) and plan_build.c (the
 * rules' plan) share: the set of a plan's paths and the safe-path rule. Pure; any thread.
 */
#ifndef DREAM_DOMAIN_PLAN_INTERNAL_H
#define DREAM_DOMAIN_PLAN_INTERNAL_H

#include <stddef.h>

#include "dream/domain/plan.h"

/* Open-addressing set of the paths of a plan being built or loaded: index + 1 per slot. */
#define DM_PLAN_PATHSET_SLOTS (2 * DM_PLAN_MAX_ITEMS)

struct dm_plan_pathset {
    unsigned short slot[DM_PLAN_PATHSET_SLOTS];
    size_t cap; /* items allocated in the plan (at most DM_PLAN_MAX_ITEMS) */
};

/* The index of an earlier item of pl with this path, or -1 with *slot the free slot for it. */
long dm_plan_pathset_find(const struct dm_plan_pathset *set, const struct dm_plan *pl,
                          const char *path, size_t *slot);

/* 1 when path is a safe relative path (plan.h: not empty, no leading '/', no "." or ".." or
 * empty component, no backslash or control bytes, at most DM_PLAN_MAX_PATH bytes). */
int dm_plan_path_ok(const char *path);

#endif
