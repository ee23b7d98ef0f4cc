/*
 * Unit tests for exports: ES and CommonJS exports and Hono/Express/Fastify route registrations
 * of real entry files; code inside comments, strings, templates and regular expressions is
 * not taken for code; hostile input stays linear.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dream/domain/exports.h"

static const char hono_entry[] = "import { Hono } from 'hono';\n"
                                 "import { cors } from 'hono/cors';\n"
                                 "import users from './routes/users';\n"
                                 "\n"
                                 "type Bindings = { DB: D1Database };\n"
                                 "\n"
                                 "const app = new Hono<{ Bindings: Bindings }>();\n"
                                 "\n"
                                 "app.use('*', cors());\n"
                                 "app.get('/health', (c) => c.json({ ok: true }));\n"
                                 "app.route('/users', users);\n"
                                 "app.get('/users/:id/avatar', async (c) => {\n"
                                 "  const id = c.req.param('id');\n"
                                 "  const user = c.get('user'); // not a route\n"
                                 "  return c.json({ id, user, re: /'\"/.test(id) });\n"
                                 "});\n"
                                 "\n"
                                 "export type AppType = typeof app;\n"
                                 "export default app;\n";

static const char express_entry[] =
    "const express = require('express');\n"
    "const cors = require('cors');\n"
    "const usersRouter = require('./routes/users');\n"
    "\n"
    "const app = express();\n"
    "app.use(express.json());\n"
    "app.use(cors());\n"
    "app.use(\"/users\", usersRouter);\n"
    "\n"
    "app.get(`/health`, (req, res) => res.json({ ok: true }));\n"
    "\n"
    "module.exports = app;\n"
    "module.exports.start = function start(port) { return app.listen(port); };\n";

static void read_ok(struct dm_exports *e, const char *src)
{
    struct dm_error err;
    cr_assert_eq(dm_exports_read(e, src, strlen(src), &err), 0, "%s", err.msg);
}

Test(exports, hono_entry)
{
    struct dm_exports e;

    read_ok(&e, hono_entry);
    cr_assert_eq(e.n_names, 2);
    cr_assert_str_eq(e.names[0], "AppType");
    cr_assert_str_eq(e.names[1], "default");
    cr_assert_eq(e.n_routes, 4, "%zu", e.n_routes);
    cr_assert_str_eq(e.routes[0], "USE *");
    cr_assert_str_eq(e.routes[1], "GET /health");
    cr_assert_str_eq(e.routes[2], "ROUTE /users");
    cr_assert_str_eq(e.routes[3], "GET /users/:id/avatar");
    cr_assert_not(dm_exports_has_route(&e, "GET user"));
    cr_assert_eq(e.truncated, 0);
    dm_exports_clear(&e);
}

Test(exports, express_entry_commonjs)
{
    struct dm_exports e;

    read_ok(&e, express_entry);
    cr_assert(dm_exports_has_name(&e, "module.exports"));
    cr_assert(dm_exports_has_name(&e, "start"));
    cr_assert_eq(e.n_names, 2);
    cr_assert(dm_exports_has_route(&e, "USE express.json"));
    cr_assert(dm_exports_has_route(&e, "USE cors"));
    cr_assert(dm_exports_has_route(&e, "USE /users"));
    cr_assert(dm_exports_has_route(&e, "GET /health"), "a template without substitutions");
    cr_assert_eq(e.n_routes, 4);
    dm_exports_clear(&e);
}

Test(exports, express_router_and_fastify)
{
    struct dm_exports e;

    read_ok(&e, "import { Router } from 'express';\n"
                "const router = Router();\n"
                "router.get('/', list);\n"
                "router.post('/', create);\n"
                "router.route('/:id').patch(update).delete(remove);\n"
                "export default router;\n"
                "fastify.register(todoRoutes, { prefix: '/todos' });\n"
                "fastify.get('/ping', async () => 'pong');\n");
    cr_assert(dm_exports_has_route(&e, "GET /"));
    cr_assert(dm_exports_has_route(&e, "POST /"));
    cr_assert(dm_exports_has_route(&e, "ROUTE /:id"));
    cr_assert(dm_exports_has_route(&e, "REGISTER todoRoutes"));
    cr_assert(dm_exports_has_route(&e, "GET /ping"));
    cr_assert_eq(e.n_routes, 5);
    cr_assert(dm_exports_has_name(&e, "default"));
    dm_exports_clear(&e);
}

Test(exports, every_export_form)
{
    struct dm_exports e;
    static const char *const want[] = {"f",  "g",          "C",  "D", "a", "b", "T",
                                       "I",  "E",          "CE", "x", "y", "z", "default",
                                       "NS", "* from ./m", "ns", "p", "r", "TT"};

    read_ok(&e, "export function f() {}\n"
                "export async function* g() {}\n"
                "export class C {}\n"
                "export abstract class D {}\n"
                "export const a = 1;\n"
                "export let b;\n"
                "export type T = string;\n"
                "export interface I { a: string }\n"
                "export enum E { A }\n"
                "export const enum CE { A }\n"
                "export { x, q as y, z };\n"
                "export { w as default } from './w';\n"
                "export namespace NS {}\n"
                "export * from './m';\n"
                "export * as ns from './n';\n"
                "export const { p, o: r } = obj;\n"
                "export type { TT } from './t';\n"
                "obj.export = 1;\n");
    cr_assert_eq(e.n_names, sizeof(want) / sizeof(want[0]), "%zu names", e.n_names);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert(dm_exports_has_name(&e, want[i]), "%s missing", want[i]);
    }
    dm_exports_clear(&e);
}

Test(exports, comments_strings_templates_regex_are_not_code)
{
    struct dm_exports e;

    read_ok(&e, "// export const a = 1; app.get('/a', h);\n"
                "/* export default x; app.route('/b', b) */\n"
                "const s = \"export const c = 1; app.get('/c', h)\";\n"
                "const t = 'export { d }';\n"
                "const u = `export const e = 1; app.get('/e', h) ${ f({ a: 1 }) } export g`;\n"
                "const re = /export const h = 1; app.get\\('\\/h'/g;\n"
                "const v = `${`${app.get('/nested', h)}`}`;\n"
                "export const real = 1;\n"
                "const q = a / b / c; export const real2 = 2;\n");
    cr_assert_eq(e.n_names, 2);
    cr_assert_str_eq(e.names[0], "real");
    cr_assert_str_eq(e.names[1], "real2");
    /* Code inside ${...} is code. */
    cr_assert_eq(e.n_routes, 1);
    cr_assert_str_eq(e.routes[0], "GET /nested");
    dm_exports_clear(&e);
}

Test(exports, unterminated_and_binary_input)
{
    struct dm_exports e;
    static const char bin[] = "export const a\0 = 1; export const b = '\n app.get('/x', h) /* ";

    cr_assert_eq(dm_exports_read(&e, bin, sizeof(bin) - 1, NULL), 0);
    cr_assert(dm_exports_has_name(&e, "a"));
    cr_assert(dm_exports_has_name(&e, "b"));
    cr_assert(dm_exports_has_route(&e, "GET /x"), "a string ends at its line");
    dm_exports_clear(&e);
    cr_assert_eq(dm_exports_read(&e, NULL, 0, NULL), 0);
    cr_assert_eq(e.n_names + e.n_routes, 0);
    dm_exports_clear(&e);
    dm_exports_clear(NULL);
}

Test(exports, caps_names)
{
    size_t n = DM_EXPORTS_MAX_NAMES + 10;
    char *src = malloc(n * 32);
    size_t len = 0;
    struct dm_exports e;

    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(src + len, "export const n%zu = 1;\n", i);
    }
    cr_assert_eq(dm_exports_read(&e, src, len, NULL), 0);
    cr_assert_eq(e.n_names, DM_EXPORTS_MAX_NAMES);
    cr_assert_eq(e.truncated, 1);
    dm_exports_clear(&e);
    free(src);
}

/* Inputs that make naive scanners quadratic: a line of '/' after '(' (each a would-be regular
 * expression), nested template substitutions, a long run of unclosed strings. */
Test(exports, hostile_input_is_linear)
{
    size_t n = 1u << 20;
    char *src = malloc(n);
    struct dm_exports e;
    clock_t t0 = clock();

    for (size_t i = 0; i < n; i += 2) {
        src[i] = '(';
        src[i + 1] = '/';
    }
    cr_assert_eq(dm_exports_read(&e, src, n, NULL), 0);
    dm_exports_clear(&e);
    for (size_t i = 0; i < n; i += 3) {
        memcpy(src + i, i + 3 <= n ? "`${" : "``", i + 3 <= n ? 3 : n - i);
    }
    cr_assert_eq(dm_exports_read(&e, src, n, NULL), 0);
    dm_exports_clear(&e);
    for (size_t i = 0; i + 4 <= n; i += 4) {
        memcpy(src + i, ".on(", 4);
    }
    cr_assert_eq(dm_exports_read(&e, src, n, NULL), 0);
    dm_exports_clear(&e);
    cr_assert_lt((double)(clock() - t0) / CLOCKS_PER_SEC, 5.0);
    free(src);
}

Test(exports, script_paths)
{
    cr_assert(dm_exports_path_is_script("src/index.ts"));
    cr_assert(dm_exports_path_is_script("src/App.jsx"));
    cr_assert(dm_exports_path_is_script("server.cjs"));
    cr_assert_not(dm_exports_path_is_script("src/env.d.ts"));
    cr_assert_not(dm_exports_path_is_script("migrations/0001_init.sql"));
    cr_assert_not(dm_exports_path_is_script(NULL));
}
