/*
 * Unit tests for the edit guard: real Hono and Express entry files edited well (routes mounted,
 * nothing lost) and badly (a route registration, an export, too many lines dropped); manifests
 * refused; the spec's removal rule; the finding the gate parks on.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/editguard.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

static const char hono_base[] = "import { Hono } from 'hono';\n"
                                "import users from './routes/users';\n"
                                "\n"
                                "const app = new Hono();\n"
                                "\n"
                                "app.get('/health', (c) => c.json({ ok: true }));\n"
                                "app.route('/users', users);\n"
                                "\n"
                                "export type AppType = typeof app;\n"
                                "export default app;\n";

/* The model's good edit: mounts /todos, keeps everything (quotes changed, blank lines moved). */
static const char hono_good[] = "import { Hono } from 'hono';\n"
                                "import users from './routes/users';\n"
                                "import todos from './routes/todos';\n"
                                "const app = new Hono();\n"
                                "\n\n"
                                "app.get('/health', (c) => c.json({ ok: true }));\n"
                                "app.route('/users', users);\n"
                                "app.route(\"/todos\", todos);\n"
                                "\n"
                                "export type AppType = typeof app;\n"
                                "export default app;\n";

/* Drops the /users mount (and its import) while adding /todos. */
static const char hono_drops_route[] = "import { Hono } from 'hono';\n"
                                       "import todos from './routes/todos';\n"
                                       "\n"
                                       "const app = new Hono();\n"
                                       "\n"
                                       "app.get('/health', (c) => c.json({ ok: true }));\n"
                                       "app.route('/todos', todos);\n"
                                       "\n"
                                       "export type AppType = typeof app;\n"
                                       "export default app;\n";

static const char express_base[] = "const express = require('express');\n"
                                   "const usersRouter = require('./routes/users');\n"
                                   "\n"
                                   "const app = express();\n"
                                   "app.use(express.json());\n"
                                   "app.use('/users', usersRouter);\n"
                                   "app.get('/health', (req, res) => res.json({ ok: true }));\n"
                                   "\n"
                                   "module.exports = app;\n";

static const char express_good[] = "const express = require('express');\n"
                                   "const usersRouter = require('./routes/users');\n"
                                   "const todosRouter = require('./routes/todos');\n"
                                   "\n"
                                   "const app = express();\n"
                                   "app.use(express.json());\n"
                                   "app.use('/users', usersRouter);\n"
                                   "app.use('/todos', todosRouter);\n"
                                   "app.get('/health', (req, res) => res.json({ ok: true }));\n"
                                   "\n"
                                   "module.exports = app;\n";

static int check(const char *path, const char *base, const char *edited, unsigned pct,
                 struct dm_error *err)
{
    return dm_editguard_check(path, base, strlen(base), edited, strlen(edited), pct, err);
}

Test(editguard, hono_entry_good_edit_passes)
{
    struct dm_error err;
    cr_assert_eq(check("src/index.ts", hono_base, hono_good, 0, &err), 0, "%s", err.msg);
}

Test(editguard, hono_entry_dropped_route_is_refused)
{
    struct dm_error err;
    cr_assert_eq(check("src/index.ts", hono_base, hono_drops_route, 0, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "edit of src/index.ts"), "%s", err.msg);
    cr_assert(strstr(err.msg, "drops route registrations: ROUTE /users"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "drops existing exports"), "%s", err.msg);
    /* 2 of 7 non-blank lines (28%) went: over 20%. */
    cr_assert(strstr(err.msg, "removes 2 of 7 existing lines (28%, limit 20%)"), "%s", err.msg);
    cr_assert(strstr(err.msg, "`import users from './routes/users';`"), "%s", err.msg);
}

Test(editguard, dropped_export_is_refused_even_within_the_line_share)
{
    struct dm_error err;
    char *edited = strdup(hono_good);
    char *p = strstr(edited, "export type AppType");
    memcpy(p, "type AppType", 12);
    memmove(p + 12, p + 19, strlen(p + 19) + 1);
    cr_assert_eq(check("src/index.ts", hono_base, edited, 0, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "drops existing exports: AppType"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "removes"), "1 of 7 lines is within 20%%: %s", err.msg);
    free(edited);
}

Test(editguard, express_entry)
{
    struct dm_error err;
    const char *no_json = "const express = require('express');\n"
                          "const usersRouter = require('./routes/users');\n"
                          "const todosRouter = require('./routes/todos');\n"
                          "const app = express();\n"
                          "app.use('/users', usersRouter);\n"
                          "app.use('/todos', todosRouter);\n"
                          "app.get('/health', (req, res) => res.json({ ok: true }));\n"
                          "export default app;\n";

    cr_assert_eq(check("src/app.js", express_base, express_good, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(check("src/app.js", express_base, no_json, 0, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "drops existing exports: module.exports"), "%s", err.msg);
    cr_assert(strstr(err.msg, "drops route registrations: USE express.json"), "%s", err.msg);
}

Test(editguard, line_share_limit_and_setting)
{
    struct dm_error err;
    const char *base = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
    /* Two of ten lines changed: 20% is allowed, 30% is not. */
    cr_assert_eq(check("README.md", base, "a\nb\nc\nd\ne\nf\ng\nh\nX\nY\n", 0, &err), 0);
    cr_assert_eq(check("README.md", base, "a\nb\nc\nd\ne\nf\ng\nX\nY\nZ\n", 0, &err),
                 DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "removes 3 of 10 existing lines (30%, limit 20%): `h`, `i`, `j`"),
              "%s", err.msg);
    cr_assert_eq(check("README.md", base, "a\nb\nc\nd\ne\nf\ng\nX\nY\nZ\n", 30, &err), 0);
    cr_assert_eq(check("README.md", base, "", 100, &err), 0, "100 turns the line check off");
    /* Moving and re-indenting lines is not removing them; a duplicated line counts twice. */
    cr_assert_eq(check("README.md", base, "  j\n\ti\nh\ng\nf\ne\nd\nc\nb\na\n", 0, &err), 0);
    cr_assert_eq(check("x.txt", "a\na\na\na\na\n", "a\na\na\n", 0, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "removes 2 of 5"), "%s", err.msg);
    /* Blank lines do not count. */
    cr_assert_eq(check("x.txt", "a\n\n\n\n\n\n\n", "a\n", 0, &err), 0);
    cr_assert_eq(check("x.txt", "", "anything\n", 0, &err), 0);
    cr_assert_eq(dm_editguard_check("x.txt", NULL, 0, NULL, 0, 0, &err), 0);
}

Test(editguard, message_lists_at_most_five_and_counts_the_rest)
{
    struct dm_error err;
    const char *base = "export const a = 1;\nexport const b = 1;\nexport const c = 1;\n"
                       "export const d = 1;\nexport const e = 1;\nexport const f = 1;\n"
                       "export const g = 1;\n";
    cr_assert_eq(check("src/x.ts", base, "export const a = 1;\n", 0, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "drops existing exports: b, c, d, e, f and 1 more"), "%s", err.msg);
    cr_assert(strstr(err.msg, "removes 6 of 7 existing lines (85%, limit 20%)"), "%s", err.msg);
    cr_assert(strstr(err.msg, " and 1 more; keep every existing export"), "%s", err.msg);
}

Test(editguard, manifests_are_never_edited)
{
    struct dm_error err;
    cr_assert_eq(check("package.json", "{}", "{}", 0, &err), DM_ERR_UNSAFE);
    cr_assert(strstr(err.msg, "package.json refused"), "%s", err.msg);
    cr_assert(strstr(err.msg, "approval"), "%s", err.msg);
    cr_assert_not(dm_editguard_path_allowed("apps/web/package.json", &err));
    cr_assert_not(dm_editguard_path_allowed("yarn.lock", &err));
    cr_assert_not(dm_editguard_path_allowed("pnpm-lock.yaml", &err));
    cr_assert_not(dm_editguard_path_allowed("package-lock.json", &err));
    cr_assert(dm_editguard_path_allowed("src/package.json.ts", &err));
    cr_assert(dm_editguard_path_allowed("src/index.ts", &err));
}

static int allows(const char *md)
{
    struct dm_spec *spec = NULL;
    struct dm_error err;
    int r;
    cr_assert_eq(dm_spec_parse(&spec, md, strlen(md), NULL, &err), 0, "%s", err.msg);
    r = dm_editguard_spec_allows_removal(spec);
    dm_spec_free(spec);
    return r;
}

Test(editguard, spec_removal_rule)
{
    cr_assert_not(allows("# Todo API\n\n## API\n\n- GET /todos\n- DELETE /todos/:id deletes a "
                         "todo\n"));
    cr_assert(allows("# Todo API\n\n## Requirements\n\n- Remove the legacy /users mount\n"));
    cr_assert(allows("# Replace the health check\n\nText.\n"));
    cr_assert(allows("# X\n\n## API\n\n- GET /a\n  - the old route is Renamed to /b\n"));
    cr_assert_not(allows("# X\n\nRemovable items and replacements-free renamer.\n"));
    cr_assert_not(dm_editguard_spec_allows_removal(NULL));
}

Test(editguard, flag_adds_a_destructive_finding_for_the_gate)
{
    struct dm_findings found = DM_FINDINGS_INIT;
    struct dm_error err;

    cr_assert_eq(dm_editguard_flag(&found, "src/index.ts", hono_base, strlen(hono_base), hono_good,
                                   strlen(hono_good), 0, &err),
                 0);
    cr_assert_eq(found.len, 0);
    cr_assert_eq(dm_editguard_flag(&found, "src/index.ts", hono_base, strlen(hono_base),
                                   hono_drops_route, strlen(hono_drops_route), 0, &err),
                 0);
    cr_assert_eq(found.len, 1);
    cr_assert_eq(dm_findings_count(&found, DM_FINDING_DESTRUCTIVE), 1);
    cr_assert_str_eq(found.items[0].rule, "edit-removes");
    cr_assert_str_eq(found.items[0].path, "src/index.ts");
    cr_assert(strncmp(found.items[0].excerpt, "drops route registrations: ROUTE /users", 39) == 0,
              "%s", found.items[0].excerpt);
    cr_assert_eq(found.max_severity, DM_SEVERITY_HIGH);
    cr_assert_eq(dm_editguard_flag(&found, "package.json", "{}", 2, "{}", 2, 0, &err), 0);
    cr_assert_str_eq(found.items[1].rule, "manifest-edit");
    dm_findings_free(&found);
}
