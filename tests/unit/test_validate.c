/* Unit tests for validate: SQL through SQLite, JSON through cJSON, the esbuild loader choice and
 * the advisory warnings. */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/domain/validate.h"

static int sql(const char *text, struct dm_error *err)
{
    dm_error_clear(err);
    return dm_validate_sql(text, strlen(text), err);
}

static int json(const char *text, struct dm_error *err)
{
    dm_error_clear(err);
    return dm_validate_json(text, strlen(text), err);
}

Test(validate_kind, by_extension)
{
    cr_assert_eq(dm_validate_kind_of("migrations/a.sql"), DM_VALIDATE_SQL);
    cr_assert_eq(dm_validate_kind_of("MIGRATIONS/A.SQL"), DM_VALIDATE_SQL);
    cr_assert_eq(dm_validate_kind_of("package.json"), DM_VALIDATE_JSON);
    cr_assert_eq(dm_validate_kind_of("src/routes/x.ts"), DM_VALIDATE_TS);
    cr_assert_eq(dm_validate_kind_of("src/components/x.tsx"), DM_VALIDATE_TSX);
    cr_assert_eq(dm_validate_kind_of("a.d.ts"), DM_VALIDATE_TS);
    cr_assert_eq(dm_validate_kind_of("x.mjs"), DM_VALIDATE_JS);
    cr_assert_eq(dm_validate_kind_of("x.jsx"), DM_VALIDATE_JSX);
    cr_assert_eq(dm_validate_kind_of("docs/dream-specs/x.md"), DM_VALIDATE_NONE);
    cr_assert_eq(dm_validate_kind_of("dir.ts/README"), DM_VALIDATE_NONE);
    cr_assert_eq(dm_validate_kind_of(NULL), DM_VALIDATE_NONE);
    cr_assert_str_eq(dm_validate_esbuild_loader("src/components/x.tsx"), "tsx");
    cr_assert_str_eq(dm_validate_esbuild_loader("src/routes/x.cts"), "ts");
    cr_assert_str_eq(dm_validate_esbuild_loader("x.cjs"), "js");
    cr_assert_str_eq(dm_validate_esbuild_loader("x.jsx"), "jsx");
    cr_assert_null(dm_validate_esbuild_loader("m.sql"));
    cr_assert_null(dm_validate_esbuild_loader("x.json"));
    cr_assert_null(dm_validate_esbuild_loader("x.md"));
}

Test(validate_sql, valid_migration_with_comments)
{
    struct dm_error err;
    const char *m = "-- create the todo table\n"
                    "/* a block\n comment; with a semicolon */\n"
                    "CREATE TABLE IF NOT EXISTS todos (\n"
                    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                    "  title TEXT NOT NULL DEFAULT 'a;b', -- trailing; comment\n"
                    "  done INTEGER NOT NULL DEFAULT 0\n"
                    ");\n"
                    "CREATE INDEX IF NOT EXISTS idx_todos_done ON todos(done);\n"
                    "CREATE TRIGGER IF NOT EXISTS t AFTER INSERT ON todos BEGIN\n"
                    "  UPDATE todos SET done = 0 WHERE id = NEW.id;\n"
                    "END;\n"
                    "INSERT INTO todos (title) VALUES ('first');\n"
                    "-- the end\n";
    cr_assert_eq(sql(m, &err), 0, "%s", err.msg);
    cr_assert_eq(sql("", &err), 0);
    cr_assert_eq(sql("-- only a comment\n", &err), 0);
    cr_assert_eq(sql("SELECT 1", &err), 0, "last statement without ';'");
}

Test(validate_sql, syntax_error_has_line_and_message)
{
    struct dm_error err;
    const char *m = "CREATE TABLE a (id INTEGER);\n"
                    "\n"
                    "CREATE TABLE b (\n"
                    "  id INTEGER,,\n"
                    "  name TEXT\n"
                    ");\n";
    cr_assert_eq(sql(m, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "line 4, column 14: near \",\": syntax error");

    cr_assert_eq(sql("SELEC 1;", &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "line 1, column 1: near \"SELEC\": syntax error"), "%s", err.msg);

    cr_assert_eq(sql("CREATE TABLE a (id INTEGER);\n\nCREATE TABLE x (a int", &err),
                 DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "line 3: incomplete input");
}

Test(validate_sql, error_after_a_comment_with_semicolons)
{
    struct dm_error err;
    /* A ';' inside a comment or a string does not end the statement. */
    const char *m = "-- a; b; c\n"
                    "INSERT INTO t VALUES ('x;y');\n"
                    "SELECT FROM WHERE;\n";
    cr_assert_eq(sql(m, &err), DM_ERR_INVALID);
    cr_assert(!strncmp(err.msg, "line 3, column 8: near \"FROM\"", 29), "%s", err.msg);
}

Test(validate_sql, unknown_tables_and_columns_pass)
{
    struct dm_error err;
    const char *m = "ALTER TABLE users ADD COLUMN email TEXT;\n"
                    "CREATE INDEX IF NOT EXISTS idx_users_email ON users(email);\n"
                    "UPDATE users SET email = lower(email) WHERE id > 0;\n"
                    "INSERT INTO audit (what) SELECT name FROM users;\n"
                    "DROP INDEX old_index;\n"
                    "DROP TABLE legacy;\n";
    cr_assert_eq(sql(m, &err), 0, "%s", err.msg);
}

Test(validate_sql, tables_created_earlier_resolve)
{
    struct dm_error err;
    /* The index and the insert refer to what the file created; a column the table lacks is
     * still only an unresolved reference. */
    const char *ok = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
                     "ALTER TABLE notes ADD COLUMN created_at TEXT;\n"
                     "CREATE INDEX idx_notes_created ON notes(created_at);\n"
                     "INSERT INTO notes (body, created_at) VALUES ('x', 'now');\n"
                     "INSERT INTO notes (nope) VALUES (1);\n";
    cr_assert_eq(sql(ok, &err), 0, "%s", err.msg);

    /* Creating the same table twice in one file is a real error. */
    cr_assert_eq(sql("CREATE TABLE n (id INT);\nCREATE TABLE n (id INT);\n", &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "line 2") && strstr(err.msg, "already exists"), "%s", err.msg);
}

Test(validate_sql, syntax_error_after_unknown_table_in_same_statement)
{
    struct dm_error err;
    /* SQLite stops at the unknown table before parsing the rest; the stand-in finds the rest. */
    cr_assert_eq(sql("ALTER TABLE users ADD COLUMN email TEXT DEFAULT ,;\n", &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "syntax error"), "%s", err.msg);
    cr_assert(!strncmp(err.msg, "line 1", 6), "%s", err.msg);
    /* ... and the stand-in does not survive: a later CREATE of that table is fine. */
    cr_assert_eq(
        sql("ALTER TABLE users ADD COLUMN email TEXT;\nCREATE TABLE users (id INT);\n", &err), 0,
        "%s", err.msg);
}

Test(validate_sql, other_semantic_errors_fail)
{
    struct dm_error err;
    cr_assert_eq(sql("SELECT no_such_function_x(1);", &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "no such function"), "%s", err.msg);
}

Test(validate_sql, embedded_nul_fails)
{
    struct dm_error err;
    dm_error_clear(&err);
    cr_assert_eq(dm_validate_sql("SELECT 1;\nSELECT\0 2;", 20, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "line 2") && strstr(err.msg, "NUL"), "%s", err.msg);
}

Test(validate_sql, statements_that_copy_rows_are_refused_not_run)
{
    struct dm_error err;
    /* Executed, each would run for ever or allocate gigabytes on the checking thread. */
    const char *bad[] = {
        "CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT x FROM c;\n",
        "CREATE TABLE t AS SELECT randomblob(900000000), randomblob(900000000);\n",
        "-- fill\nCREATE TABLE IF NOT EXISTS \"main\".\"t\" /* x */ AS SELECT 1;\n",
        "create temporary table [t] as values (1);\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(sql(bad[i], &err), DM_ERR_INVALID, "%zu", i);
        cr_assert(strstr(err.msg, "CREATE TABLE ... AS copies the rows of a query"), "%s", err.msg);
    }
    cr_assert(strstr(err.msg, "line 1") != NULL, "%s", err.msg);
    /* A table, a view and an index named "as" are schema. */
    cr_assert_eq(sql("CREATE TABLE t (x INTEGER);\nCREATE VIEW v AS SELECT x FROM t;\n"
                     "CREATE TABLE \"as\" (y);\nCREATE INDEX i ON t(x);\n",
                     &err),
                 0, "%s", err.msg);
}

Test(validate_json, valid_and_invalid)
{
    struct dm_error err;
    cr_assert_eq(json("{\"a\": [1, 2, {\"b\": null}], \"c\": \"x\"}\n", &err), 0);
    cr_assert_eq(json("  [1,2]  ", &err), 0);

    cr_assert_eq(json("{\n  \"a\": 1,\n  \"b\": ,\n}", &err), DM_ERR_INVALID);
    cr_assert(!strncmp(err.msg, "line 3, column ", 15), "%s", err.msg);
    cr_assert(strstr(err.msg, "invalid JSON"), "%s", err.msg);

    cr_assert_eq(json("{\"a\":1} {\"b\":2}", &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "line 1, column 9: trailing characters after the JSON value");

    cr_assert_eq(json("   \n", &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "empty document");
}

Test(validate_json, length_bounded_not_nul_terminated)
{
    struct dm_error err;
    const char text[] = "{\"a\":1}XXXX";
    dm_error_clear(&err);
    cr_assert_eq(dm_validate_json(text, 7, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_validate_json(text, 8, &err), DM_ERR_INVALID);
}

Test(validate_file, dispatches_and_names_the_path)
{
    struct dm_error err;
    const char *bad = "CREATE TABLE (;";
    dm_error_clear(&err);
    cr_assert_eq(dm_validate_file("migrations/x.sql", bad, strlen(bad), &err), DM_ERR_INVALID);
    cr_assert(!strncmp(err.msg, "migrations/x.sql: line 1", 24), "%s", err.msg);
    cr_assert_eq(dm_validate_file("a.json", "[", 1, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_validate_file("a.ts", "this is not { typescript", 24, &err), 0,
                 "TS is checked externally");
    cr_assert_eq(dm_validate_file("a.md", "(", 1, &err), 0);
}

/* Finds a warning of path whose message contains needle; returns it or NULL. */
static const struct dm_validate_warning *find(const struct dm_validate_warnings *w,
                                              const char *path, const char *needle)
{
    for (size_t i = 0; i < w->count; i++) {
        if (!strcmp(w->items[i].path, path) && strstr(w->items[i].message, needle)) {
            return &w->items[i];
        }
    }
    return NULL;
}

static int warn(struct dm_validate_warnings *w, const char *path, const char *text)
{
    return dm_validate_warn(w, path, text, strlen(text));
}

Test(validate_warn, empty_and_stub_files)
{
    struct dm_validate_warnings w;
    dm_validate_warnings_init(&w);
    cr_assert_eq(warn(&w, "a.ts", ""), 1);
    cr_assert_eq(warn(&w, "b.md", "  \n\t\n"), 1);
    cr_assert_not_null(find(&w, "a.ts", "empty file"));
    cr_assert_not_null(find(&w, "b.md", "empty file"));

    cr_assert_eq(warn(&w, "c.tsx", "// TODO: implement the component\n/* later */\n"), 2);
    cr_assert_not_null(find(&w, "c.tsx", "stub only"));
    const struct dm_validate_warning *todo = find(&w, "c.tsx", "TODO");
    cr_assert_not_null(todo);
    cr_assert_eq(todo->line, 1);

    cr_assert_eq(warn(&w, "d.ts",
                      "export function f(): number {\n  throw new Error('Not implemented');\n}\n"),
                 1);
    const struct dm_validate_warning *ni = find(&w, "d.ts", "not implemented");
    cr_assert_not_null(ni);
    cr_assert_eq(ni->line, 2);

    /* Real code with the word todo in it is no stub. */
    cr_assert_eq(warn(&w, "e.ts", "export const todos: string[] = ['TODO list'];\n"), 0);
    cr_assert_eq(warn(&w, "f.md", "# TODO\n"), 0, "Markdown gets only the empty check");
    dm_validate_warnings_free(&w);
    cr_assert_eq(w.count, 0);
}

Test(validate_warn, any_and_eval_outside_comments_and_strings)
{
    struct dm_validate_warnings w;
    const char *ts = "import { x } from './x';\n"
                     "// any is fine in a comment: (a: any)\n"
                     "const s = 'x as any';\n"
                     "export function f(a: any, b: Array<any>): string {\n"
                     "  return eval('1 + 1') as any;\n"
                     "}\n"
                     "const company = 1; const anyway = 2; evaluate(3);\n";
    dm_validate_warnings_init(&w);
    cr_assert_eq(warn(&w, "src/routes/a.ts", ts), 2);
    const struct dm_validate_warning *any = find(&w, "src/routes/a.ts", "`any` type");
    cr_assert_not_null(any);
    cr_assert_eq(any->line, 4);
    cr_assert(strstr(any->message, "3 times"), "%s", any->message);
    const struct dm_validate_warning *ev = find(&w, "src/routes/a.ts", "eval(");
    cr_assert_not_null(ev);
    cr_assert_eq(ev->line, 5);

    /* JS has no types: only eval counts. */
    cr_assert_eq(warn(&w, "x.js", "const a = b as any; window.eval(code);\n"), 1);
    cr_assert_not_null(find(&w, "x.js", "eval("));
    cr_assert_null(find(&w, "x.js", "any"));
    dm_validate_warnings_free(&w);
}

Test(validate_warn, sql_rules)
{
    struct dm_validate_warnings w;
    dm_validate_warnings_init(&w);
    cr_assert_eq(warn(&w, "m/a.sql", "-- nothing here\n;\n/* still nothing */\n"), 1);
    cr_assert_not_null(find(&w, "m/a.sql", "no SQL statement"));

    const char *m = "DROP TABLE IF EXISTS old;\n"
                    "-- DROP TABLE in a comment\n"
                    "INSERT INTO log VALUES ('DROP TABLE x');\n"
                    "drop   table legacy;\n"
                    "DROP TABLE\n  other;\n";
    cr_assert_eq(warn(&w, "m/b.sql", m), 2);
    cr_assert_eq(w.items[w.count - 2].line, 4);
    cr_assert_eq(w.items[w.count - 1].line, 5);
    cr_assert_str_eq(w.items[w.count - 1].message, "DROP TABLE without IF EXISTS");
    dm_validate_warnings_free(&w);
}

Test(validate_warn, capped_per_file)
{
    struct dm_validate_warnings w;
    char m[4096] = "";
    for (int i = 0; i < 30; i++) {
        strcat(m, "DROP TABLE t;\n");
    }
    dm_validate_warnings_init(&w);
    cr_assert_eq(warn(&w, "m.sql", m), 21);
    cr_assert_str_eq(w.items[20].message, "10 more warnings left out");
    dm_validate_warnings_free(&w);
}
