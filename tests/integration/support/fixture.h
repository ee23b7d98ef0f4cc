/*
 * fixture: the repositories under tests/data/repos/ (hono: Hono + React + SQL migrations;
 * express: Express + React + Knex) turned into real bare git repositories for tests. Test
 * processes only; failures abort the current Criterion test.
 */
#ifndef DMT_FIXTURE_H
#define DMT_FIXTURE_H

/* The fixture's source folder, <source>/tests/data/repos/<name> (static buffer, overwritten by
 * the next call). */
const char *dmt_fixture_dir(const char *name);

/* Creates the bare repository at path bare (parent folders made; anything already there is
 * removed first) holding one commit on main with every file of tests/data/repos/<name>. The
 * author, committer, dates and message are fixed, so the commit id is the same on every run
 * and machine (a per-commit cache sees the same base twice). The repository accepts pushes
 * (http.receivepack) and logs every ref update, like dmt_git_make_repo's. Returns bare's path
 * (caller frees). */
char *dmt_fixture_bare(const char *name, const char *bare);

/* The content of path in the fixture's source tree (caller frees; NULL when missing). */
char *dmt_fixture_file(const char *name, const char *path);

/* The commit id main points to in a bare repository (caller frees; aborts when absent). */
char *dmt_fixture_head(const char *bare);

#endif
