/* Unit tests for tscdiag: tsc's diagnostics (positions, codes, continuation lines, global ones,
 * the cap, hostile text) and the bare imports of a source file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dream/domain/tscdiag.h"

static const char *OUT =
    "src/index.ts(2,10): error TS2305: Module '\"./routes/todos\"' has no exported member "
    "'todos'.\n"
    "src/routes/todos.ts(3,21): error TS2307: Cannot find module './nothere' or its "
    "corresponding type declarations.\n"
    "src/routes/todos.ts(9,7): error TS2322: Type 'string' is not assignable to type "
    "'number'.\n"
    "src/a (copy).ts(12,1): error TS2345: Argument of type '{ a: string; }' is not assignable\n"
    "  Object literal may only specify known properties.\n"
    "    And more.\n"
    "error TS5083: Cannot read file '/x/tsconfig.json'.\n"
    "Found 4 errors.\n";

Test(tscdiag, parses_positions_codes_and_messages)
{
    struct dm_tsc_diags d;
    struct dm_error err;
    char line[600];

    cr_assert_eq(dm_tsc_parse(&d, OUT, strlen(OUT), 0, &err), 0);
    cr_assert_eq(d.n, 5);
    cr_assert_str_eq(d.items[0].file, "src/index.ts");
    cr_assert_eq(d.items[0].line, 2);
    cr_assert_eq(d.items[0].col, 10);
    cr_assert_eq(d.items[0].code, 2305);
    cr_assert_str_eq(d.items[0].message,
                     "Module '\"./routes/todos\"' has no exported member 'todos'.");
    cr_assert_eq(d.items[1].code, 2307);
    cr_assert_eq(d.items[2].line, 9);
    cr_assert_str_eq(d.items[3].file, "src/a (copy).ts");
    cr_assert_str_eq(d.items[3].message,
                     "Argument of type '{ a: string; }' is not assignable Object literal may "
                     "only specify known properties. And more.");
    cr_assert_null(d.items[4].file);
    cr_assert_eq(d.items[4].code, 5083);
    dm_tsc_diag_format(&d.items[0], line, sizeof(line));
    cr_assert_str_eq(line, "src/index.ts:2: TS2305: Module '\"./routes/todos\"' has no exported "
                           "member 'todos'.");
    dm_tsc_diag_format(&d.items[4], line, sizeof(line));
    cr_assert_str_eq(line, "TS5083: Cannot read file '/x/tsconfig.json'.");
    dm_tsc_diags_free(&d);
    dm_tsc_diags_free(&d);
}

Test(tscdiag, caps_the_count_and_the_message)
{
    char text[64 * 100 + 4000];
    struct dm_tsc_diags d;
    struct dm_error err;
    size_t n = 0;

    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "a.ts(%d,1): error TS1005: ';' expected.\n", i + 1);
    }
    n += (size_t)snprintf(text + n, sizeof(text) - n, "b.ts(1,1): error TS2322: ");
    memset(text + n, 'x', 3000);
    n += 3000;
    cr_assert_eq(dm_tsc_parse(&d, text, n, 10, &err), 0);
    cr_assert_eq(d.n, 10);
    cr_assert_eq(d.dropped, 91);
    dm_tsc_diags_free(&d);
    cr_assert_eq(dm_tsc_parse(&d, text, n, 1000, &err), 0);
    cr_assert_eq(d.n, 101);
    cr_assert(strlen(d.items[100].message) <= DM_TSC_MESSAGE_MAX);
    dm_tsc_diags_free(&d);
}

Test(tscdiag, control_characters_never_survive)
{
    const char *t = "a.ts(1,1): error TS2322: bad\x1b[31m\ttext\r\n";
    struct dm_tsc_diags d;
    struct dm_error err;
    cr_assert_eq(dm_tsc_parse(&d, t, strlen(t), 0, &err), 0);
    cr_assert_eq(d.n, 1);
    cr_assert_null(strchr(d.items[0].message, '\x1b'));
    cr_assert_null(strchr(d.items[0].message, '\r'));
    dm_tsc_diags_free(&d);
}

Test(tscdiag, non_diagnostics_are_skipped)
{
    const char *t = "Version 7.0.2\nsomething(1,2) else\nx.ts(a,b): error TS1: no\n";
    struct dm_tsc_diags d;
    struct dm_error err;
    cr_assert_eq(dm_tsc_parse(&d, t, strlen(t), 0, &err), 0);
    cr_assert_eq(d.n, 0);
    dm_tsc_diags_free(&d);
}

struct seen {
    char all[1000];
};

static int collect(void *arg, const char *spec, size_t len)
{
    struct seen *s = arg;
    strncat(s->all, spec, len);
    strcat(s->all, ",");
    return 0;
}

Test(tscdiag, bare_imports)
{
    const char *src = "import { Hono } from 'hono';\n"
                      "import type { FC } from \"react\";\n"
                      "import './local';\n"
                      "import '@scope/side';\n"
                      "import x from '../up';\n"
                      "export * from 'zod';\n"
                      "export { a } from './a';\n"
                      "const k = require('knex');\n"
                      "const d = await import('hono/cors');\n"
                      "// import y from 'commented';\n"
                      "/* import z from 'also'; */\n"
                      "const s = 'from';\n"
                      "const t = \"not-an-import\";\n"
                      "obj.require('nope');\n"
                      "import u from 'https://cdn.example/x.js';\n";
    struct seen s = {""};
    cr_assert_eq(dm_tsc_bare_imports(src, strlen(src), collect, &s), 0);
    cr_assert_str_eq(s.all, "hono,react,@scope/side,zod,knex,hono/cors,");
}
