/*
 * Integration tests of reading the base of a change (issue 13, part repo): a real bare
 * repository holding a Hono + React + SQL app, read through gitjob on a real libuv loop (the
 * tree with sizes, the files read, what is skipped, the limits, the stack), an empty
 * repository and a missing branch, a manifest too big to read, and the pipeline's per-commit
 * cache seen through two jobs of a real dreamd on the same base.
 * Sizes and contents are checked against the git command line, never the module under test.
 */
#include "dream/domain/repo.h"
#include "dream/io/gitjob.h"
#include "dream/io/loop.h"

#include "dme2e.h"
#include "dmtest.h"
#include "githttp.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char *tmp, *data_dir, *root;
static char file_tpl[1024];

static void setup(void)
{
    tmp = dmt_tempdir("repo");
    if (asprintf(&data_dir, "%s/data", tmp) < 0 || asprintf(&root, "%s/remote", tmp) < 0) {
        cr_assert_fail("asprintf");
    }
    snprintf(file_tpl, sizeof(file_tpl), "file://%s/{owner}/{repo}.git", root);
}

static void teardown(void)
{
    dmt_rmtree(tmp);
    free(tmp);
    free(data_dir);
    free(root);
}

TestSuite(repo, .init = setup, .fini = teardown, .timeout = 120);

/* The files of the Hono app, written by sh into the current directory. */
static const char hono_app[] =
    "mkdir -p src/routes src/components migrations public node_modules/hono;"
    "cat > package.json <<'EOF'\n"
    "{\n  \"name\": \"app\",\n  \"type\": \"module\",\n"
    "  \"scripts\": {\"dev\": \"wrangler dev\", \"test\": \"vitest run\"},\n"
    "  \"dependencies\": {\"hono\": \"^4.6.0\", \"react\": \"^18.3.1\"},\n"
    "  \"devDependencies\": {\"typescript\": \"^5.6.0\", \"vitest\": \"^2.1.0\"}\n}\n"
    "EOF\n"
    "printf '{\"compilerOptions\":{\"strict\":true,\"jsx\":\"react-jsx\"}}\\n' > tsconfig.json;"
    "printf 'name = \"app\"\\nmain = \"src/index.ts\"\\n' > wrangler.toml;"
    "printf '# App\\n\\nA Hono app.\\n' > README.md;"
    "printf \"import { Hono } from 'hono';\\nimport users from './routes/users';\\n\\n"
    "const app = new Hono();\\napp.route('/users', users);\\nexport default app;\\n\" "
    "> src/index.ts;"
    "printf \"import { Hono } from 'hono';\\nconst users = new Hono();\\n"
    "users.get('/', (c) => c.json([]));\\nexport default users;\\n\" > src/routes/users.ts;"
    "printf 'export function UserCard() { return null; }\\n' > src/components/UserCard.tsx;"
    "printf \"export { UserCard } from './UserCard';\\n\" > src/components/index.ts;"
    "printf 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\\n' "
    "> migrations/0001_init.sql;"
    "printf '\\211PNG\\r\\n\\032\\n\\000\\000\\000\\rIHDR' > public/logo.png;"
    "printf 'module.exports = {};\\n' > node_modules/hono/index.js;"
    "printf '{\"lockfileVersion\": 3}\\n' > package-lock.json;"
    /* a text name, binary content: read, then refused by the text check */
    "printf 'export const x = 1;\\000\\001\\002' > src/routes/blob.ts;"
    /* a long route module: 37,000 bytes, cut by the file limit */
    "{ i=0; while [ $i -lt 1000 ]; do printf '// line %05d of the long module....\\n' $i;"
    " i=$((i+1)); done; } > src/routes/long.ts;";

/* Creates the bare repository <root>/<owner>/<repo>.git with one commit on main made of what
 * script writes. Returns its path (caller frees). */
static char *make_repo(const char *owner, const char *repo, const char *script)
{
    char *bare;
    if (asprintf(&bare, "%s/%s/%s.git", root, owner, repo) < 0) {
        cr_assert_fail("asprintf");
    }
    free(dmt_sh("set -e; mkdir -p '%s'; git init -q --bare -b main '%s';"
                "w=$(mktemp -d); cd \"$w\"; git init -q -b main; %s\n"
                "git add -A; git -c user.name=T -c user.email=t@x commit -q -m base;"
                "git push -q '%s' HEAD:refs/heads/main; rm -rf \"$w\"",
                bare, bare, script, bare));
    return bare;
}

struct read_result {
    int done;
    int rc;
    struct dm_error err;
    struct dm_gitjob_repo res;
    struct dm_repo *repo;
};

static void on_read(void *arg, int rc, struct dm_gitjob_repo *res, const struct dm_error *err)
{
    struct read_result *r = arg;
    r->done = 1;
    r->rc = rc;
    if (rc) {
        r->err = *err;
        return;
    }
    r->res = *res;
    r->repo = res->repo; /* taken */
    res->repo = NULL;
    r->res.repo = NULL;
}

/* Reads owner/repo@main through gitjob on a real loop. */
static void read_base(struct read_result *out, const char *owner, const char *repo,
                      const struct dm_repo_limits *lim, const char *const *known, size_t n_known)
{
    uv_loop_t loop;
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_gitjob_repo_req req;
    struct dm_error err;

    memset(out, 0, sizeof(*out));
    o.data_dir = data_dir;
    o.url_template = file_tpl;
    memset(&req, 0, sizeof(req));
    req.opts = &o;
    req.owner = owner;
    req.repo = repo;
    req.base = "main";
    req.refresh = 1;
    if (lim) {
        req.limits = *lim;
    }
    req.known = known;
    req.n_known = n_known;
    req.on_done = on_read;
    req.arg = out;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_gitjob_read_repo(NULL, &loop, &req, &err), 0, "%s", err.msg);
    cr_assert_eq(out->done, 0, "never called back inside the call");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(out->done, 1);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

static size_t git_size(const char *bare, const char *path)
{
    char *s = dmt_sh("git -C '%s' cat-file -s 'main:%s'", bare, path);
    size_t n = (size_t)strtoull(s, NULL, 10);
    free(s);
    return n;
}

static const struct dm_repo_entry *tree_entry(const struct dm_repo *r, const char *path)
{
    for (size_t i = 0; i < r->n_tree; i++) {
        if (strcmp(r->tree[i].path, path) == 0) {
            return &r->tree[i];
        }
    }
    return NULL;
}

Test(repo, reads_a_hono_app_at_its_base_commit)
{
    char *bare = make_repo("acme", "hono", hono_app);
    char *tip = dmt_sh("git -C '%s' rev-parse main", bare);
    char *paths = dmt_sh("git -C '%s' ls-tree -r --name-only main | wc -l", bare);
    struct read_result r;
    const struct dm_repo_text *t;
    char *d;

    read_base(&r, "acme", "hono", NULL, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_not_null(r.repo);
    cr_assert_eq(r.res.cached, 0);
    cr_assert_eq(r.res.empty, 0);
    cr_assert_str_eq(r.res.commit, tip);
    cr_assert_str_eq(r.repo->commit, tip);

    /* The tree: every blob, with git's sizes, vendored and binary ones included. */
    cr_assert_eq(r.repo->n_tree, (size_t)atoi(paths));
    cr_assert_eq(r.repo->tree_truncated, 0);
    for (size_t i = 0; i < r.repo->n_tree; i++) {
        cr_assert_eq(r.repo->tree[i].size, git_size(bare, r.repo->tree[i].path), "%s",
                     r.repo->tree[i].path);
    }
    cr_assert_not_null(tree_entry(r.repo, "public/logo.png"));
    cr_assert_not_null(tree_entry(r.repo, "node_modules/hono/index.js"));

    /* What was read: the fixed files, the entry, the barrel and the folders' files. */
    static const char *const read[] = {"package.json",
                                       "tsconfig.json",
                                       "wrangler.toml",
                                       "README.md",
                                       "src/index.ts",
                                       "src/components/index.ts",
                                       "src/routes/users.ts",
                                       "src/components/UserCard.tsx",
                                       "migrations/0001_init.sql",
                                       "src/routes/long.ts"};
    for (size_t i = 0; i < sizeof(read) / sizeof(read[0]); i++) {
        char *want;
        t = dm_repo_find(r.repo, read[i]);
        cr_assert_not_null(t, "%s read", read[i]);
        if (strcmp(read[i], "src/routes/long.ts") == 0) {
            continue;
        }
        want = dmt_sh("git -C '%s' show 'main:%s'; printf x", bare, read[i]);
        want[strlen(want) - 1] = '\0'; /* the x kept the trailing newlines */
        cr_assert_str_eq(t->content, want, "%s", read[i]);
        cr_assert_eq(t->len, strlen(want));
        cr_assert_eq(t->cut, 0);
        free(want);
    }
    /* Never read: a PNG, a node_modules file, a lockfile, binary content under a .ts name. */
    cr_assert_null(dm_repo_find(r.repo, "public/logo.png"));
    cr_assert_null(dm_repo_find(r.repo, "node_modules/hono/index.js"));
    cr_assert_null(dm_repo_find(r.repo, "package-lock.json"));
    cr_assert_null(dm_repo_find(r.repo, "src/routes/blob.ts"));
    cr_assert_eq(r.res.skipped, 1, "the binary .ts was chosen and refused");
    cr_assert_eq(r.repo->n_files, sizeof(read) / sizeof(read[0]));
    /* 37,000 bytes: cut at the default 32 KiB. */
    t = dm_repo_find(r.repo, "src/routes/long.ts");
    cr_assert_eq(git_size(bare, "src/routes/long.ts"), 37000);
    cr_assert_eq(t->len, 32 * 1024);
    cr_assert_eq(t->cut, 1);

    /* The stack. */
    cr_assert_eq(r.repo->stack.http, DM_REPO_HTTP_HONO);
    cr_assert_eq(r.repo->stack.ui, DM_REPO_UI_REACT);
    cr_assert_eq(r.repo->stack.db, DM_REPO_DB_SQL);
    cr_assert_eq(r.repo->stack.test, DM_REPO_TEST_VITEST);
    cr_assert_str_eq(r.repo->stack.entry, "src/index.ts");
    cr_assert_str_eq(r.repo->stack.barrel, "src/components/index.ts");
    cr_assert_eq(r.repo->stack.last_migration, 1);
    d = dm_stack_describe(&r.repo->stack);
    cr_assert_str_eq(d, "Hono + React + SQL migrations (TypeScript, Vitest)");
    free(d);

    dm_repo_free(r.repo);
    free(paths);
    free(tip);
    free(bare);
}

Test(repo, limits_are_honoured)
{
    char *bare = make_repo("acme", "hono", hono_app);
    struct dm_repo_limits lim = {.file_bytes = 1024, .total_bytes = 1000000, .files = 100};
    struct read_result r;
    const struct dm_repo_text *t;

    /* Bytes per file: the long module is cut at 1 KiB. */
    read_base(&r, "acme", "hono", &lim, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    t = dm_repo_find(r.repo, "src/routes/long.ts");
    cr_assert_not_null(t);
    cr_assert_eq(t->len, 1024);
    cr_assert_eq(t->cut, 1);
    cr_assert_eq(strlen(t->content), 1024);
    cr_assert(strncmp(t->content, "// line 00000 of the long module", 32) == 0);
    dm_repo_free(r.repo);

    /* Number of files. */
    lim.file_bytes = 0;
    lim.files = 5;
    read_base(&r, "acme", "hono", &lim, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(r.repo->n_files, 5);
    cr_assert_not_null(dm_repo_find(r.repo, "package.json"));
    cr_assert_str_eq(r.repo->stack.entry, "src/index.ts", "the stack comes from the fixed files");
    dm_repo_free(r.repo);

    /* Total bytes: the 37,000-byte module does not fit 2 KiB. */
    lim.files = 0;
    lim.total_bytes = 2048;
    read_base(&r, "acme", "hono", &lim, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_leq(dm_repo_bytes(r.repo), 2048);
    cr_assert_null(dm_repo_find(r.repo, "src/routes/long.ts"));
    dm_repo_free(r.repo);
    free(bare);
}

Test(repo, a_known_commit_is_not_read_again)
{
    char *bare = make_repo("acme", "hono", hono_app);
    char *tip = dmt_sh("git -C '%s' rev-parse main", bare);
    const char *known[] = {"0123456789012345678901234567890123456789", tip};
    struct read_result r;

    read_base(&r, "acme", "hono", NULL, known, 2);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(r.res.cached, 1);
    cr_assert_null(r.repo);
    cr_assert_str_eq(r.res.commit, tip);

    /* A new commit on main is read. */
    free(dmt_sh("set -e; w=$(mktemp -d); git clone -q '%s' \"$w/w\"; cd \"$w/w\";"
                "printf 'x\\n' > NEW.md; git add -A; git -c user.name=T -c user.email=t@x "
                "commit -q -m more; git push -q origin HEAD:main; rm -rf \"$w\"",
                bare));
    read_base(&r, "acme", "hono", NULL, known, 2);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(r.res.cached, 0);
    cr_assert_not_null(r.repo);
    cr_assert_not_null(tree_entry(r.repo, "NEW.md"));
    cr_assert_str_neq(r.repo->commit, tip);
    dm_repo_free(r.repo);
    free(tip);
    free(bare);
}

Test(repo, empty_repository_and_missing_branch)
{
    char *bare;
    struct read_result r;

    if (asprintf(&bare, "%s/acme/empty.git", root) < 0) {
        cr_assert_fail("asprintf");
    }
    free(dmt_sh("mkdir -p '%s' && git init -q --bare -b main '%s'", bare, bare));
    read_base(&r, "acme", "empty", NULL, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(r.res.empty, 1);
    cr_assert_not_null(r.repo);
    cr_assert_eq(r.repo->n_tree, 0);
    cr_assert_eq(r.repo->n_files, 0);
    cr_assert_str_eq(r.repo->stack.routes_dir, "src/routes/");
    dm_repo_free(r.repo);
    free(bare);

    /* A repository without the base branch. */
    bare = dmt_git_make_repo(root, "acme", "other", "trunk");
    read_base(&r, "acme", "other", NULL, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(r.res.empty, 1);
    dm_repo_free(r.repo);
    free(bare);

    /* No repository at all: an error, not an empty base. */
    read_base(&r, "acme", "nowhere", NULL, NULL, 0);
    cr_assert_neq(r.rc, 0);
    cr_assert_null(r.repo);
}

Test(repo, a_huge_manifest_is_never_read_whole)
{
    /* A 10 MB package.json (a hostile or generated one) next to a Hono app. */
    char *bare = make_repo("acme", "huge",
                           "mkdir -p src; printf 'export default 1;\\n' > src/index.ts;"
                           "{ printf '{\"dependencies\":{\"hono\":\"4\"},\"x\":\"';"
                           " head -c 10000000 /dev/zero | tr '\\0' a; printf '\"}'; }"
                           " > package.json;");
    struct read_result r;
    const struct dm_repo_text *t;

    read_base(&r, "acme", "huge", NULL, NULL, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err.msg);
    cr_assert_eq(tree_entry(r.repo, "package.json")->size, git_size(bare, "package.json"));
    cr_assert_gt(tree_entry(r.repo, "package.json")->size, 10000000);
    t = dm_repo_find(r.repo, "package.json");
    /* Packed: too big to load, so not read at all; loose: streamed, cut at 32 KiB. */
    cr_assert(t == NULL || (t->cut && t->len == 32 * 1024));
    cr_assert_eq(r.repo->stack.http, DM_REPO_HTTP_NONE, "a cut manifest is not trusted");
    cr_assert_str_eq(r.repo->stack.entry, "src/index.ts");
    cr_assert_leq(dm_repo_bytes(r.repo), 256 * 1024);
    dm_repo_free(r.repo);
    free(bare);
}

/* ---- the pipeline's cache, through a real dreamd ---- */

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

Test(repo, two_jobs_on_one_base_read_it_once)
{
    struct dmt_world w;
    struct dmt_replica rep;
    char *log, *j1, *j2, *stack;

    dmt_world_start(&w, NULL);
    dmt_world_replica(&w, &rep, "solo", NULL);
    j1 = dmt_world_job("base-1", NULL, "planner", 200000, 5.0);
    free(dmt_submit(w.rc, j1));
    cr_assert(dmt_world_wait_status(&w, "base-1", "complete,failed", 60000));
    j2 = dmt_world_job("base-2", NULL, "planner", 200000, 5.0);
    free(dmt_submit(w.rc, j2));
    cr_assert(dmt_world_wait_status(&w, "base-2", "complete,failed", 60000));
    stack = dmt_world_hget(&w, "base-2", "status");
    cr_assert_str_eq(stack, "complete", "%s", dmt_world_hget(&w, "base-2", "error"));
    dmt_replica_stop(&rep, 30000);
    log = dmt_read_file(rep.log);
    cr_assert_not_null(log);
    cr_assert_eq(count(log, "base acme/app@"), 2, "%s", log);
    cr_assert_eq(count(log, " read: "), 1, "one read: %s", log);
    cr_assert_eq(count(log, "from the cache (hit 1, 1 read)"), 1, "one hit: %s", log);
    cr_assert_not_null(strstr(log, "1 files in tree, 1 read"), "%s", log);
    free(stack);
    free(log);
    free(j1);
    free(j2);
    dmt_world_stop(&w);
}
