/*
 * stage_check: the whole change checked in its repository (see stage_check.h): checkout of the
 * base, type-check, migration replay, repair rounds through the generator, the verification
 * summary.
 *
 * Owns one struct check per job while its review runs, in a small table keyed by the pjob
 * (struct pjob has no slot for it): made by stage_check_run, dropped by stage_check_forget or
 * when the check comes back to a detached job. Loop thread only (the table has a mutex because
 * several replicas' loops may share a process in tests).
 */
#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/domain/migrate.h"
#include "dream/domain/prompt.h"
#include "dream/io/basework.h"
#include "dream/io/typecheck.h"

#include "stage.h"
#include "stage_check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX 3000        /* bytes of compiler messages sent back per file */
#define BASE_ERRORS_SHOWN 3 /* base errors named in the summary */
#define TSC_TIMEOUT_MS                                                                             \
    120000 /* tsc's wall time (a setting for the lead: DREAM_CHECK_TIMEOUT_MS)                     \
            */

struct check {
    struct check *next;
    struct pjob *pj;
    stage_check_done_fn done;
    int rounds; /* repair rounds started */
    int checked_out;
    int have_base;
    char base_dir[4096];
    char baseline[4200]; /* <base_dir>/.dream-tsc-baseline: the base's own diagnostics */
    int baseline_ok;     /* the base-only check ran (or was cached): errors it does not know in
                            untouched files are the change's doing */
    char base_note[700];
    struct dm_basework *bw;
    struct dm_typecheck *tc;
    /* this pass */
    char **why; /* per plan item: the messages of its errors, or NULL */
    size_t n_change_errors;
    char first_error[800];
    struct dm_buf ts_line;  /* the type-check's summary line */
    struct dm_buf sql_line; /* the migrations' summary line */
    char *verification;
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct check *table;

static struct check *find(const struct pjob *pj)
{
    struct check *c;
    pthread_mutex_lock(&table_mu);
    for (c = table; c && c->pj != pj; c = c->next) {
    }
    pthread_mutex_unlock(&table_mu);
    return c;
}

static void clear_pass(struct check *c)
{
    if (c->why) {
        for (size_t i = 0; i < c->pj->nfiles; i++) {
            free(c->why[i]);
        }
        free(c->why);
        c->why = NULL;
    }
    c->n_change_errors = 0;
    c->first_error[0] = '\0';
    dm_buf_free(&c->ts_line);
    dm_buf_free(&c->sql_line);
    dm_buf_init(&c->ts_line, 4096);
    dm_buf_init(&c->sql_line, 4096);
}

void stage_check_forget(struct pjob *pj)
{
    struct check **pp, *c = NULL;

    pthread_mutex_lock(&table_mu);
    for (pp = &table; *pp; pp = &(*pp)->next) {
        if ((*pp)->pj == pj) {
            c = *pp;
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&table_mu);
    if (!c) {
        return;
    }
    clear_pass(c);
    dm_buf_free(&c->ts_line);
    dm_buf_free(&c->sql_line);
    free(c->verification);
    free(c);
}

const char *stage_check_verification(const struct pjob *pj)
{
    const struct check *c = find(pj);
    return c ? c->verification : NULL;
}

void stage_check_cancel(struct pjob *pj)
{
    struct check *c = find(pj);
    if (c) {
        dm_basework_cancel(c->bw);
        dm_typecheck_cancel(c->tc);
    }
}

static int is_spec(const struct pjob *pj, size_t i)
{
    return pj->plan->items[i].kind == DM_PLAN_KIND_SPEC;
}

static int is_code(const char *path)
{
    static const char *const exts[] = {".ts", ".tsx", ".mts", ".cts",
                                       ".js", ".jsx", ".mjs", ".cjs"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(path + n - e, exts[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The plan item of path (a file of the change), or (size_t)-1. */
static size_t item_of(const struct pjob *pj, const char *path)
{
    if (!path) {
        return (size_t)-1;
    }
    if (path[0] == '.' && path[1] == '/') {
        path += 2;
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (!is_spec(pj, i) && strcmp(pj->plan->items[i].path, path) == 0) {
            return i;
        }
    }
    return (size_t)-1;
}

/* Adds one error of a file of the change (line is "file:line: message"). */
static void change_error(struct check *c, size_t i, const char *line, const char *short_line,
                         int count)
{
    char *prev = c->why[i];
    size_t have = prev ? strlen(prev) : 0;

    if (count && !c->n_change_errors++) {
        snprintf(c->first_error, sizeof(c->first_error), "%s", line);
    }
    if (have < WHY_MAX) {
        char *next = NULL;
        if (asprintf(&next, "%s%s%s", prev ? prev : "", prev ? "\n" : "", short_line) >= 0) {
            free(prev);
            c->why[i] = next;
        }
    }
}

static void finish(struct check *c, int rc, const struct dm_error *err)
{
    stage_check_done_fn done = c->done;
    struct pjob *pj = c->pj;
    done(pj, rc, err);
}

/* Comes back from work in flight: 1 when the check must stop here (the job was released or is
 * being cancelled; the right thing has been done). */
static int check_gone(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_error err;

    pj->outstanding--;
    if (!pj->job) {
        stage_check_forget(pj);
        pjob_maybe_free(pj);
        return 1;
    }
    if (pj->cancelling) {
        dm_error_set(&err, DM_ERR_CANCELLED, "the check was interrupted");
        finish(c, DM_ERR_CANCELLED, &err);
        return 1;
    }
    return 0;
}

static void start_pass(struct check *c);
static void start_baseline(struct check *c);
static void start_typecheck(struct check *c);
static void start_migrate(struct check *c);
static void evaluate(struct check *c);

static void data_path(const struct pjob *pj, char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s/checks/%s", pj->p->cfg->data_dir ? pj->p->cfg->data_dir : ".", what);
}

static void on_checkout(void *arg, int rc, const struct dm_git_checkout *co,
                        const struct dm_error *err)
{
    struct check *c = arg;

    c->bw = NULL;
    if (check_gone(c)) {
        return;
    }
    c->checked_out = 1;
    if (rc == 0) {
        c->have_base = 1;
        snprintf(c->base_dir, sizeof(c->base_dir), "%s", co->dir);
        snprintf(c->baseline, sizeof(c->baseline), "%s/.dream-tsc-baseline", co->dir);
        dm_info("pipeline", c->pj->job->id, "check: base %.12s %s (%s)", co->commit, co->dir,
                co->cached ? "cached" : "written");
        start_baseline(c);
        return;
    } else {
        snprintf(c->base_note, sizeof(c->base_note),
                 "the base could not be read (%s): the change was checked alone", err->msg);
        dm_warn("pipeline", c->pj->job->id, "check: %s", c->base_note);
    }
    start_typecheck(c);
}

static void on_baseline(void *arg, int rc, const struct dm_typecheck_result *res,
                        const struct dm_error *err)
{
    struct check *c = arg;

    c->tc = NULL;
    if (check_gone(c)) {
        return;
    }
    c->baseline_ok = rc == 0;
    if (rc) {
        dm_warn("pipeline", c->pj->job->id,
                "check: the base alone could not be type-checked (%s): errors in files the "
                "change does not touch will only be reported",
                err->msg);
    } else {
        dm_info("pipeline", c->pj->job->id, "check: the base has %zu error(s) of its own%s",
                res->diags.n, res->from_baseline ? " (known)" : "");
    }
    start_typecheck(c);
}

/* The base's own diagnostics, once per base commit (cached next to its files), so that errors
 * the change causes in files it does not touch are told from the base's own. */
static void start_baseline(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_typecheck_opts opts = DM_TYPECHECK_OPTS_INIT;
    struct dm_typecheck_req r;
    struct dm_error err;
    char work[4096], rel[300];
    int code = 0;

    for (size_t i = 0; i < pj->nfiles; i++) {
        code |= !is_spec(pj, i) && pj->files[i].content && is_code(pj->plan->items[i].path);
    }
    if (!code) {
        start_typecheck(c);
        return;
    }
    snprintf(rel, sizeof(rel), "jobs/%s", pj->job->id);
    data_path(pj, work, sizeof(work), rel);
    opts.timeout_ms = TSC_TIMEOUT_MS;
    memset(&r, 0, sizeof(r));
    r.base_dir = c->base_dir;
    r.baseline = c->baseline;
    r.work_dir = work;
    r.on_done = on_baseline;
    r.arg = c;
    if (dm_typecheck_start(&c->tc, pj->p->loop, &opts, &r, &err) == 0) {
        pj->outstanding++;
        return;
    }
    start_typecheck(c);
}

static void start_checkout(struct check *c)
{
    struct pjob *pj = c->pj;
    const struct dm_jobreq *req = pj->job->req;
    struct dm_git_opts opts;
    char root[4096];
    struct dm_basework_checkout_req r;
    struct dm_error err;

    stage_git_opts(pj, &opts);
    data_path(pj, root, sizeof(root), "base");
    memset(&r, 0, sizeof(r));
    r.opts = &opts;
    r.owner = req->repo_owner;
    r.repo = req->repo_name;
    r.base = req->base_branch ? req->base_branch : "main";
    r.commit = pj->repo && pj->repo->commit[0] ? pj->repo->commit : NULL;
    /* Without the commit of the plan, the base branch's tip as the push will see it. */
    r.refresh = r.commit == NULL;
    r.cache_root = root;
    r.on_done = on_checkout;
    r.arg = c;
    if (dm_basework_checkout(&c->bw, pj->p->loop, &r, &err) == 0) {
        pj->outstanding++;
        return;
    }
    c->checked_out = 1;
    snprintf(c->base_note, sizeof(c->base_note), "the base could not be read (%s)", err.msg);
    start_typecheck(c);
}

/* 1 when the message names path's module: its path without the extension, or that path
 * without its leading folders ("routes/users" for src/routes/users.ts). */
static int names_module(const char *message, const char *path)
{
    char stem[300];
    const char *dot = strrchr(path, '.');
    const char *p = stem;

    snprintf(stem, sizeof(stem), "%.*s", (int)(dot ? dot - path : (long)strlen(path)), path);
    for (;;) {
        const char *slash = strchr(p, '/');
        if (strstr(message, p)) {
            return 1;
        }
        if (!slash || !strchr(slash + 1, '/')) {
            return 0; /* keep at least "folder/name" */
        }
        p = slash + 1;
    }
}

/* An error the change causes in a file it does not touch (the baseline does not know it): it is
 * the change's, sent to the files of the change it names, else the edits, else every code
 * file (at most 4). */
static void caused_error(struct check *c, const struct dm_tsc_diag *d, const char *line)
{
    struct pjob *pj = c->pj;
    char short_line[900];
    size_t hits = 0;

    snprintf(short_line, sizeof(short_line),
             "%s (in a file this change does not touch, which depends on this one)", line);
    for (int pass = 0; pass < 3 && !hits; pass++) {
        for (size_t i = 0; i < pj->nfiles && hits < 4; i++) {
            const char *path = pj->plan->items[i].path;
            int take;
            if (is_spec(pj, i) || !pj->files[i].content || !is_code(path)) {
                continue;
            }
            take = pass == 0   ? names_module(d->message, path)
                   : pass == 1 ? pj->plan->items[i].kind == DM_PLAN_KIND_EDIT
                               : 1;
            if (take) {
                change_error(c, i, line, short_line, hits == 0);
                hits++;
            }
        }
    }
}

static void on_typechecked(void *arg, int rc, const struct dm_typecheck_result *res,
                           const struct dm_error *err)
{
    struct check *c = arg;
    struct pjob *pj = c->pj;
    size_t base_errors = 0;
    struct dm_buf shown;

    c->tc = NULL;
    if (check_gone(c)) {
        return;
    }
    if (rc) {
        dm_buf_printf(&c->ts_line, "- Type-check: not run (%s)", err->msg);
        dm_warn("pipeline", pj->job->id, "check: type-check not run: %s", err->msg);
        start_migrate(c);
        return;
    }
    dm_buf_init(&shown, 2048);
    for (size_t k = 0; k < res->diags.n; k++) {
        const struct dm_tsc_diag *d = &res->diags.items[k];
        size_t i = item_of(pj, d->file);
        char line[700], short_line[600];
        dm_tsc_diag_format(d, line, sizeof(line));
        if (i != (size_t)-1) {
            snprintf(short_line, sizeof(short_line), "line %u, column %u: TS%u: %s", d->line,
                     d->col, d->code, d->message);
            change_error(c, i, line, short_line, 1);
            /* "Module './routes/todos' has no default export", reported in the importer: the
             * module of the change it names is at fault as much, and gets the message too. */
            for (size_t j = 0; j < pj->nfiles; j++) {
                const char *path = pj->plan->items[j].path;
                if (j != i && !is_spec(pj, j) && pj->files[j].content && is_code(path) &&
                    names_module(d->message, path)) {
                    char other[900];
                    snprintf(other, sizeof(other), "%s (reported in %s, which imports this file)",
                             line, pj->plan->items[i].path);
                    change_error(c, j, line, other, 0);
                }
            }
        } else if (c->baseline_ok && d->file) {
            caused_error(c, d, line);
        } else if (base_errors++ < BASE_ERRORS_SHOWN) {
            dm_buf_printf(&shown, "%s`%s`", shown.len ? "; " : "", line);
        }
    }
    dm_buf_printf(&c->ts_line, "- Type-check (tsc%s%s): ", res->version[0] ? " " : "",
                  res->version);
    if (c->n_change_errors) {
        dm_buf_printf(&c->ts_line, "%zu error(s) in the change", c->n_change_errors);
    } else {
        dm_buf_printf(&c->ts_line, "passed%s, %zu files", c->rounds ? " after repair" : "",
                      res->files);
    }
    if (res->untyped) {
        dm_buf_printf(&c->ts_line,
                      "; %zu package(s) checked as untyped (dependencies not "
                      "installed)",
                      res->untyped);
    }
    if (base_errors) {
        dm_buf_printf(&c->ts_line, "; %zu error(s) in files the change does not touch: %s%s",
                      base_errors, shown.data ? shown.data : "",
                      base_errors > BASE_ERRORS_SHOWN ? "; …" : "");
    }
    if (res->known) {
        dm_buf_printf(&c->ts_line, "; %zu error(s) already on the base, not the change's",
                      res->known);
    }
    if (res->diags.dropped) {
        dm_buf_printf(&c->ts_line, "; %zu more diagnostic(s) not read", res->diags.dropped);
    }
    dm_buf_free(&shown);
    start_migrate(c);
}

static void start_typecheck(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_typecheck_file *files = calloc(pj->nfiles + 1, sizeof(*files));
    struct dm_typecheck_opts opts = DM_TYPECHECK_OPTS_INIT;
    struct dm_typecheck_req r;
    struct dm_error err;
    char work[4096], rel[300];
    size_t n = 0, code = 0;

    if (!files) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        finish(c, DM_ERR_NOMEM, &err);
        return;
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (is_spec(pj, i) || !pj->files[i].content) {
            continue;
        }
        files[n].path = pj->plan->items[i].path;
        files[n].content = pj->files[i].content;
        files[n].len = pj->files[i].len;
        code += is_code(files[n].path);
        n++;
    }
    if (!code) {
        free(files);
        start_migrate(c);
        return;
    }
    snprintf(rel, sizeof(rel), "jobs/%s", pj->job->id);
    data_path(pj, work, sizeof(work), rel);
    opts.timeout_ms = TSC_TIMEOUT_MS;
    memset(&r, 0, sizeof(r));
    r.base_dir = c->have_base ? c->base_dir : NULL;
    r.baseline = c->baseline_ok ? c->baseline : NULL;
    r.work_dir = work;
    r.files = files;
    r.nfiles = n;
    r.on_done = on_typechecked;
    r.arg = c;
    if (dm_typecheck_start(&c->tc, pj->p->loop, &opts, &r, &err) == 0) {
        pj->outstanding++;
    } else {
        dm_buf_printf(&c->ts_line, "- Type-check: not run (%s)", err.msg);
        start_migrate(c);
    }
    free(files);
}

static void on_migrated(void *arg, int rc, const struct dm_basework_migrated *res,
                        const struct dm_error *err)
{
    struct check *c = arg;
    struct pjob *pj = c->pj;

    c->bw = NULL;
    if (check_gone(c)) {
        return;
    }
    if (rc == DM_ERR_INVALID && res->failed != (size_t)-1) {
        /* err: "<path>:<line>: <message>"; the path is the new migration's. */
        const char *path = NULL;
        size_t seen = 0;
        for (size_t i = 0; i < pj->nfiles && !path; i++) {
            if (!is_spec(pj, i) && pj->files[i].content &&
                dm_migrate_is_sql(pj->plan->items[i].path) && seen++ == res->failed) {
                path = pj->plan->items[i].path;
                const char *after = err->msg + strlen(path);
                char short_line[600];
                snprintf(short_line, sizeof(short_line), "line %s",
                         strncmp(err->msg, path, strlen(path)) == 0 && *after == ':' ? after + 1
                                                                                     : err->msg);
                change_error(c, i, err->msg, short_line, 1);
            }
        }
        dm_buf_printf(&c->sql_line, "- Migrations: %s", err->msg);
    } else if (rc) {
        dm_buf_printf(&c->sql_line, "- Migrations: not replayed (%s)", err->msg);
    } else {
        dm_buf_printf(&c->sql_line, "- Migrations: %s applied%s", res->applied,
                      c->rounds ? " after repair" : "");
    }
    if (res->report.unresolved) {
        dm_buf_printf(&c->sql_line,
                      "; %zu statement(s) name a table or column no migration makes (not "
                      "replayed): `%s`",
                      res->report.unresolved, res->report.first_unresolved);
    }
    if (res->report.base_failures) {
        dm_buf_printf(&c->sql_line, "; %zu existing migration(s) do not replay: `%s`",
                      res->report.base_failures, res->report.base_error);
    }
    evaluate(c);
}

static void start_migrate(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_migration *news = calloc(pj->nfiles + 1, sizeof(*news));
    struct dm_basework_migrate_req r;
    struct dm_error err;
    size_t n = 0;

    if (!news) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        finish(c, DM_ERR_NOMEM, &err);
        return;
    }
    for (size_t i = 0; i < pj->nfiles; i++) {
        if (!is_spec(pj, i) && pj->files[i].content && dm_migrate_is_sql(pj->plan->items[i].path)) {
            news[n].path = pj->plan->items[i].path;
            news[n].sql = pj->files[i].content;
            news[n].len = pj->files[i].len;
            news[n].is_new = 1;
            n++;
        }
    }
    if (!n) {
        free(news);
        evaluate(c);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.base_dir = c->have_base ? c->base_dir : NULL;
    r.migrations_dir =
        pj->repo && pj->repo->stack.migrations_dir ? pj->repo->stack.migrations_dir : "migrations/";
    r.news = news;
    r.nnew = n;
    r.on_done = on_migrated;
    r.arg = c;
    if (dm_basework_migrate(&c->bw, pj->p->loop, &r, &err) == 0) {
        pj->outstanding++;
    } else {
        dm_buf_printf(&c->sql_line, "- Migrations: not replayed (%s)", err.msg);
        evaluate(c);
    }
    free(news);
}

static void round_done(struct pjob *pj)
{
    struct check *c = find(pj);
    if (!c) {
        struct dm_error err;
        dm_error_set(&err, DM_ERR_INVALID, "the check's state is gone");
        stage_finish(pj, DM_ERR_INVALID, &err);
        return;
    }
    pj->scan.done = 0; /* the repaired files are scanned again */
    start_pass(c);
}

/* Prepares the repair of file i with the compiler's messages. Returns 1 when prepared. */
static int repair_file(struct check *c, size_t i)
{
    struct pjob *pj = c->pj;
    struct gen_file *f = &pj->files[i];
    const char *path = pj->plan->items[i].path;
    struct dm_prompt *prompt = NULL;
    struct dm_event_extra x = {.step = path, .path = path};
    struct dm_job_write w = {.status = "writing", .extra = &x};
    struct dm_error err;
    char *user = NULL;
    char *why = NULL;
    char msg[400];

    if (asprintf(&why,
                 "The whole change was type-checked and its migrations replayed in the "
                 "repository; this file has these errors:\n%s",
                 c->why[i]) < 0) {
        return 0;
    }
    if (dm_prompt_build(&prompt, pj->p->prompts, pj->spec, pj->plan, i, &err) ||
        dm_prompt_repair(&user, pj->p->prompts, path, f->content, f->len, why, &err)) {
        dm_prompt_free(prompt);
        free(user);
        free(why);
        dm_warn("pipeline", pj->job->id, "cannot repair %s: %s", path, err.msg);
        return 0;
    }
    free(why);
    free(f->system);
    free(f->user);
    f->system = prompt->system;
    f->user = user;
    prompt->system = NULL;
    dm_prompt_free(prompt);
    f->state = F_TODO;
    f->ok = 0;
    f->repairs = 0;
    snprintf(msg, sizeof(msg), "repairing %s after the check (round %d)", path, c->rounds + 1);
    w.message = msg;
    stage_emit(pj, &w);
    return 1;
}

static void evaluate(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_buf v;
    struct dm_error err;
    int started = 0;

    if (c->n_change_errors && c->rounds < pj->p->cfg->max_repairs) {
        for (size_t i = 0; i < pj->nfiles; i++) {
            if (c->why[i]) {
                started += repair_file(c, i);
            }
        }
        if (started) {
            dm_info("pipeline", pj->job->id,
                    "check: %zu error(s), first %s; repair round %d of "
                    "%lld: %d file(s)",
                    c->n_change_errors, c->first_error, c->rounds + 1, pj->p->cfg->max_repairs,
                    started);
            c->rounds++;
            pj->gen.round_done = round_done;
            gen_progress(pj);
            return;
        }
    }
    dm_buf_init(&v, 16384);
    dm_buf_printf(&v, "%s%s%s%s",
                  c->ts_line.len ? c->ts_line.data
                                 : "- Type-check: no "
                                   "TypeScript or JavaScript "
                                   "in the change",
                  "\n", c->sql_line.len ? c->sql_line.data : "- Migrations: none in the change",
                  "\n");
    if (c->base_note[0]) {
        dm_buf_printf(&v, "- Note: %s\n", c->base_note);
    }
    free(c->verification);
    c->verification = dm_buf_detach(&v);
    dm_buf_free(&v);
    if (c->n_change_errors) {
        dm_error_set(&err, DM_ERR_INVALID,
                     "the change does not check in its repository%s: %s (%zu error(s)); nothing "
                     "is pushed",
                     c->rounds ? " after repair" : "", c->first_error, c->n_change_errors);
        finish(c, DM_ERR_INVALID, &err);
        return;
    }
    finish(c, 0, NULL);
}

static void start_pass(struct check *c)
{
    struct pjob *pj = c->pj;
    struct dm_error err;

    clear_pass(c);
    c->why = calloc(pj->nfiles + 1, sizeof(*c->why));
    if (!c->why) {
        dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
        finish(c, DM_ERR_NOMEM, &err);
        return;
    }
    if (!c->checked_out) {
        start_checkout(c);
        return;
    }
    start_typecheck(c);
}

void stage_check_run(struct pjob *pj, stage_check_done_fn done)
{
    struct check *c = find(pj);

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c) {
            struct dm_error err;
            dm_error_set(&err, DM_ERR_NOMEM, "out of memory");
            done(pj, DM_ERR_NOMEM, &err);
            return;
        }
        c->pj = pj;
        dm_buf_init(&c->ts_line, 4096);
        dm_buf_init(&c->sql_line, 4096);
        pthread_mutex_lock(&table_mu);
        c->next = table;
        table = c;
        pthread_mutex_unlock(&table_mu);
    }
    c->done = done;
    c->rounds = 0;
    c->checked_out = 0;
    c->have_base = 0;
    c->baseline_ok = 0;
    c->base_note[0] = '\0';
    start_pass(c);
}
