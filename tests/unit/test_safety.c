/* Unit tests for safety: every scan rule with true positives and the old false positives
 * (tokens, process.env, retrieval(, DROP in a SQL comment or string), secret redaction, path,
 * branch and limit rules, thread safety. Secret-shaped test values are assembled at run time so
 * no credential-looking literal sits in the repository. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/safety.h"

static void setup(void)
{
    struct dm_error err;
    cr_assert_eq(dm_safety_init(&err), 0, "%s", err.msg);
}

static void teardown(void)
{
    dm_safety_shutdown();
}

TestSuite(safety, .init = setup, .fini = teardown);

/* ---- helpers --------------------------------------------------------------------------- */

static size_t count_rule(const struct dm_findings *f, const char *rule, unsigned long line)
{
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (strcmp(f->items[i].rule, rule) == 0 && (line == 0 || f->items[i].line == line)) {
            n++;
        }
    }
    return n;
}

struct srow {
    const char *path;
    const char *content;
    const char *rule;   /* rule id to count */
    size_t count;       /* exact number of findings of that rule */
    unsigned long line; /* when count > 0: line of (every) such finding; 0 = any */
};

static void check_srows(const struct srow *rows, size_t n, unsigned rules)
{
    for (size_t i = 0; i < n; i++) {
        struct dm_findings f = DM_FINDINGS_INIT;
        struct dm_error err;
        int rc =
            dm_safety_scan(&f, rows[i].path, rows[i].content, strlen(rows[i].content), rules, &err);
        size_t got;

        cr_expect_eq(rc, 0, "row %zu: %s", i, err.msg);
        got = count_rule(&f, rows[i].rule, 0);
        cr_expect_eq(got, rows[i].count, "row %zu (%s in %s: %s): %zu findings, expected %zu", i,
                     rows[i].rule, rows[i].path, rows[i].content, got, rows[i].count);
        if (rows[i].count && rows[i].line) {
            cr_expect_eq(count_rule(&f, rows[i].rule, rows[i].line), rows[i].count,
                         "row %zu: wrong line", i);
        }
        dm_findings_free(&f);
    }
}

#define SQL "migrations/0001_init.sql"
#define TS "src/routes/todos.ts"
#define TSX "src/components/TodoList.tsx"
#define SH "scripts/deploy.sh"
#define YML ".github/workflows/ci.yml"
#define MD "docs/dream-specs/todo.md"

/* ---- SQL ------------------------------------------------------------------------------- */

Test(safety, sql_rules)
{
    const struct srow rows[] = {
        {SQL, "DROP TABLE users;", "drop-table", 1, 1},
        {SQL, "drop table if exists users;", "drop-table", 1, 1},
        {SQL, "CREATE TABLE a (id INT);\n\n  Drop\n Table b;", "drop-table", 1, 3},
        {SQL, "DROP TEMPORARY TABLE t;", "drop-table", 1, 1},
        {SQL, "\n\nDROP DATABASE app;", "drop-database", 1, 3},
        {SQL, "DROP SCHEMA public CASCADE;", "drop-schema", 1, 1},
        {SQL, "TRUNCATE TABLE logs;", "truncate", 1, 1},
        {SQL, "truncate logs;", "truncate", 1, 1},
        {SQL, "DELETE FROM users;", "delete-without-where", 1, 1},
        {SQL, "delete from \"users\";", "delete-without-where", 1, 1},
        {SQL, "DELETE FROM main.users\n;", "delete-without-where", 1, 1},
        {SQL, "DELETE FROM users", "delete-without-where", 1, 1},
        {SQL, "DELETE FROM a WHERE x = 1; DELETE FROM b;", "delete-without-where", 1, 1},
        {SQL, "DELETE FROM users -- WHERE id = 1\n;", "delete-without-where", 1, 1},
        {SQL, "DELETE FROM users /* WHERE id = 1 */;", "delete-without-where", 1, 1},
        {SQL, "UPDATE users SET admin = 1;", "update-without-where", 1, 1},
        {SQL, "update users u set admin = 1;", "update-without-where", 1, 1},
        {SQL, "UPDATE OR REPLACE users SET a = 1;", "update-without-where", 1, 1},
        {SQL, "ALTER TABLE users DROP COLUMN email;", "alter-drop", 1, 1},
        {SQL, "ALTER TABLE t\n  DROP CONSTRAINT fk_a;", "alter-drop", 1, 1},
        {SQL, "alter table t drop email;", "alter-drop", 1, 1},
        {SQL, "/*\n\n*/\nDROP TABLE x;", "drop-table", 1, 4},
        {SQL, "SELECT ';';\nDROP TABLE x;", "drop-table", 1, 2},
        /* The old false positives and other innocent SQL. */
        {SQL, "-- DROP TABLE users;\nSELECT 1;", "drop-table", 0, 0},
        {SQL, "/* DROP TABLE users; */ SELECT 1;", "drop-table", 0, 0},
        {SQL, "/* multi\nline DROP TABLE x\n*/ SELECT 1;", "drop-table", 0, 0},
        {SQL, "INSERT INTO notes (body) VALUES ('DROP TABLE users; DELETE FROM x;');", "drop-table",
         0, 0},
        {SQL, "INSERT INTO notes (body) VALUES ('DROP TABLE users; DELETE FROM x;');",
         "delete-without-where", 0, 0},
        {SQL, "INSERT INTO t VALUES ('it''s DROP TABLE x');", "drop-table", 0, 0},
        {SQL, "INSERT INTO t VALUES ('a;\nDROP TABLE x');", "drop-table", 0, 0},
        {SQL, "CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, dropped_at TEXT);",
         "drop-table", 0, 0},
        {SQL, "DELETE FROM users WHERE id = 1;", "delete-without-where", 0, 0},
        {SQL, "DELETE FROM users\nWHERE id = ?;", "delete-without-where", 0, 0},
        {SQL, "UPDATE users SET name = 'x' WHERE id = 1;", "update-without-where", 0, 0},
        {SQL, "UPDATE users SET name = ';' WHERE id = 1;", "update-without-where", 0, 0},
        {SQL, "SELECT TRUNCATE(1.5, 0);", "truncate", 0, 0},
        {SQL, "CREATE TABLE t (u INT REFERENCES u(id) ON UPDATE CASCADE ON DELETE CASCADE);",
         "update-without-where", 0, 0},
        {SQL, "CREATE TABLE t (u INT REFERENCES u(id) ON UPDATE SET NULL);", "update-without-where",
         0, 0},
        {SQL, "INSERT INTO t VALUES (1) ON CONFLICT(id) DO UPDATE SET v = excluded.v;",
         "update-without-where", 0, 0},
        {SQL, "SELECT 1; -- then DELETE FROM users\n", "delete-without-where", 0, 0},
        {SQL, "ALTER TABLE users ADD COLUMN dropped INTEGER;", "alter-drop", 0, 0},
        {SQL, "ALTER TABLE a ADD x INT; DROP INDEX i;", "alter-drop", 0, 0},
        {SQL, "CREATE TABLE \"a--b\" (x INT);\nDROP TABLE y;", "drop-table", 1, 2},
    };
    check_srows(rows, sizeof(rows) / sizeof(rows[0]), DM_SAFETY_RULES_ALL);
}

Test(safety, embedded_sql_rules)
{
    const struct srow rows[] = {
        {TS, "await db.exec(\"DROP TABLE users\");", "drop-table", 1, 1},
        {TS, "await db.exec('drop table users');", "drop-table", 1, 1},
        {TS, "db.prepare(\"DELETE FROM todos\").run();", "delete-without-where", 1, 1},
        {TS, "db.prepare(\"DELETE FROM todos \" + \"WHERE id = ?\")", "delete-without-where", 1, 1},
        {TS, "db.prepare(\"UPDATE todos SET done = 1\").run();", "update-without-where", 1, 1},
        {TS, "db.exec(`TRUNCATE TABLE logs`);", "truncate", 1, 1},
        {TS, "db.exec(`ALTER TABLE t DROP COLUMN c`);", "alter-drop", 1, 1},
        {TS, "db.prepare(\"DELETE FROM todos WHERE id = ?\").bind(id);", "delete-without-where", 0,
         0},
        {TS, "db.prepare(`DELETE FROM todos\n  WHERE id = ?`);", "delete-without-where", 0, 0},
        {TS, "// DROP TABLE users\nexport {};", "drop-table", 0, 0},
        {TS, "/* DROP TABLE users;\n DELETE FROM x; */", "drop-table", 0, 0},
        {TS, "app.delete(\"/todos/:id\", h); // delete from list", "delete-without-where", 0, 0},
        {TSX, "<p>Delete from your list?</p>", "delete-without-where", 0, 0},
        {TSX, "<p>Update your profile settings</p>", "update-without-where", 0, 0},
        {TS, "const s = truncate(text, 20);", "truncate", 0, 0},
        {MD, "Run `DROP TABLE old_todos;` once.", "drop-table", 1, 1},
        {MD, "Users can delete from the list and update the set.", "delete-without-where", 0, 0},
    };
    check_srows(rows, sizeof(rows) / sizeof(rows[0]), DM_SAFETY_RULES_ALL);
}

/* ---- shell and git ---------------------------------------------------------------------- */

Test(safety, shell_and_git_rules)
{
    const struct srow rows[] = {
        {SH, "#!/bin/sh\nrm -rf build", "rm-rf", 1, 2},
        {SH, "rm -fr build", "rm-rf", 1, 1},
        {SH, "rm -r -f build", "rm-rf", 1, 1},
        {SH, "rm -f -r build", "rm-rf", 1, 1},
        {SH, "rm -Rf build", "rm-rf", 1, 1},
        {SH, "rm -rfv build", "rm-rf", 1, 1},
        {SH, "rm --recursive --force build", "rm-rf", 1, 1},
        {SH, "sudo /bin/rm -rf /", "rm-rf", 1, 1},
        {SH, "echo '# not a comment' && rm -rf x", "rm-rf", 1, 1},
        {SH, "rm -r build", "rm-rf", 0, 0},
        {SH, "rm -f file.txt", "rm-rf", 0, 0},
        {SH, "# rm -rf /\necho hi", "rm-rf", 0, 0},
        {SH, "echo hi # rm -rf /", "rm-rf", 0, 0},
        {SH, "docker run --rm -it img", "rm-rf", 0, 0},
        {SH, "farm -rf", "rm-rf", 0, 0},
        {SH, "git reset --hard HEAD~1", "git-hard", 1, 1},
        {SH, "git push --force origin main", "git-force", 1, 1},
        {SH, "git push origin main --force-with-lease", "git-force", 1, 1},
        {SH, "git push -f origin main", "git-push-f", 1, 1},
        {SH, "git push -uf origin main", "git-push-f", 1, 1},
        {SH, "git push origin +main", "git-push-f", 1, 1},
        {SH, "git push origin main", "git-push-f", 0, 0},
        {SH, "git push origin main", "git-force", 0, 0},
        {SH, "git push -u origin feature-f", "git-push-f", 0, 0},
        {SH, "npm install --force", "git-force", 0, 0},
        {SH, "git status; npm ci --force", "git-force", 0, 0},
        {SH, "git log --hardware", "git-hard", 0, 0},
        {YML, "steps:\n  - run: rm -rf node_modules", "rm-rf", 1, 2},
        {YML, "# run: git push --force\non: push", "git-force", 0, 0},
        {MD, "```sh\nrm -rf /\n```", "rm-rf", 1, 2},
        {TS, "execSync(\"git push --force origin main\");", "git-force", 1, 1},
        {TS, "execSync(\"rm -rf /tmp/x\");", "rm-rf", 1, 1},
        {TS, "// execSync(\"rm -rf /tmp/x\");", "rm-rf", 0, 0},
        {"Dockerfile", "RUN rm -rf /var/lib/apt/lists/*", "rm-rf", 1, 1},
        {"package.json", "{\"scripts\":{\"clean\":\"rm -rf dist\"}}", "rm-rf", 1, 1},
    };
    check_srows(rows, sizeof(rows) / sizeof(rows[0]), DM_SAFETY_RULES_ALL);
}

/* ---- review rules ----------------------------------------------------------------------- */

Test(safety, review_rules)
{
    const struct srow rows[] = {
        {TS, "process.exit(1);", "process-exit", 1, 1},
        {TS, "if (x) {\n  process.exit(0)\n}", "process-exit", 1, 2},
        {TS, "eval(code);", "eval", 1, 1},
        {TS, "window.eval (x);", "eval", 1, 1},
        {TS, "const r = retrieval(query);", "eval", 0, 0},
        {TS, "const e = evaluate(x); medieval(y);", "eval", 0, 0},
        {TS, "const f = new Function(\"return 1\");", "function-constructor", 1, 1},
        {TS, "function foo() {}\nconst g = function () {};", "function-constructor", 0, 0},
        {TS, "if (typeof x === \"function\") {}", "function-constructor", 0, 0},
        {TS, "import { exec } from \"node:child_process\";", "child-process", 1, 1},
        {TS, "const cp = require('child_process');", "child-process", 1, 1},
        {TS, "const child_processes = 3;", "child-process", 0, 0},
        {TS, "dotenv.config({ path: \".env\" });", "dotenv-file", 1, 1},
        {TS, "readFileSync('.env.local');", "dotenv-file", 1, 1},
        {SH, "cat /app/.env", "dotenv-file", 1, 1},
        {TS, "const url = process.env.API_URL;", "dotenv-file", 0, 0},
        {TS, "const db = c.env.DB;", "dotenv-file", 0, 0},
        {TS, "const m = import.meta.env.VITE_MODE;", "dotenv-file", 0, 0},
        {TS, "const e = getCtx().env;", "dotenv-file", 0, 0},
        {TS, "const envelope = x.environment;", "dotenv-file", 0, 0},
        {TS, "const token = req.header(\"Authorization\");", "secret-word", 1, 1},
        {TS, "const k = env.GITHUB_TOKEN;", "secret-word", 1, 1},
        {TS, "const s = JWT_SECRET;", "secret-word", 1, 1},
        {TSX, "<input type=\"password\" />", "secret-word", 1, 1},
        {TS, "const maxTokens = 100; let tokens = 0; tokensUsed++;", "secret-word", 0, 0},
        {TS, "tokenize(x); secretary(); passwords.length; TOKENS;", "secret-word", 0, 0},
        {TS, "// the secret token is handled elsewhere\nexport {};", "secret-word", 0, 0},
    };
    check_srows(rows, sizeof(rows) / sizeof(rows[0]), DM_SAFETY_RULES_ALL);
}

Test(safety, severities_follow_original)
{
    const struct {
        const char *path;
        const char *content;
        const char *rule;
        enum dm_severity sev;
        enum dm_finding_kind kind;
    } rows[] = {
        {SQL, "DROP TABLE x;", "drop-table", DM_SEVERITY_CRITICAL, DM_FINDING_DESTRUCTIVE},
        {SQL, "DROP DATABASE x;", "drop-database", DM_SEVERITY_CRITICAL, DM_FINDING_DESTRUCTIVE},
        {SQL, "TRUNCATE x;", "truncate", DM_SEVERITY_HIGH, DM_FINDING_DESTRUCTIVE},
        {SQL, "DELETE FROM x;", "delete-without-where", DM_SEVERITY_HIGH, DM_FINDING_DESTRUCTIVE},
        {SQL, "ALTER TABLE x DROP y;", "alter-drop", DM_SEVERITY_MEDIUM, DM_FINDING_DESTRUCTIVE},
        {SH, "git push --force", "git-force", DM_SEVERITY_HIGH, DM_FINDING_DESTRUCTIVE},
        {SH, "git reset --hard", "git-hard", DM_SEVERITY_HIGH, DM_FINDING_DESTRUCTIVE},
        {SH, "rm -rf x", "rm-rf", DM_SEVERITY_CRITICAL, DM_FINDING_DESTRUCTIVE},
        {TS, "process.exit(1)", "process-exit", DM_SEVERITY_MEDIUM, DM_FINDING_REVIEW},
        {TS, "eval(x)", "eval", DM_SEVERITY_HIGH, DM_FINDING_REVIEW},
        {TS, "Function(x)", "function-constructor", DM_SEVERITY_MEDIUM, DM_FINDING_REVIEW},
        {TS, "child_process", "child-process", DM_SEVERITY_HIGH, DM_FINDING_REVIEW},
        {TS, "'.env'", "dotenv-file", DM_SEVERITY_MEDIUM, DM_FINDING_REVIEW},
        {TS, "PASSWORD", "secret-word", DM_SEVERITY_MEDIUM, DM_FINDING_REVIEW},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_findings f = DM_FINDINGS_INIT;
        struct dm_error err;
        cr_assert_eq(dm_safety_scan(&f, rows[i].path, rows[i].content, strlen(rows[i].content),
                                    DM_SAFETY_RULES_ALL, &err),
                     0);
        cr_assert_eq(f.len, 1, "row %zu: %zu findings", i, f.len);
        cr_expect_str_eq(f.items[0].rule, rows[i].rule);
        cr_expect_eq(f.items[0].severity, rows[i].sev, "row %zu", i);
        cr_expect_eq(f.items[0].kind, rows[i].kind, "row %zu", i);
        cr_expect_eq(f.max_severity, (int)rows[i].sev, "row %zu", i);
        cr_expect_eq(dm_findings_count(&f, rows[i].kind), 1);
        dm_findings_free(&f);
    }
}

/* ---- secrets ---------------------------------------------------------------------------- */

/* prefix + n characters cycling through alphabet. */
static char *fake(const char *prefix, size_t n, const char *alphabet)
{
    size_t p = strlen(prefix);
    size_t a = strlen(alphabet);
    char *s = malloc(p + n + 1);
    memcpy(s, prefix, p);
    for (size_t i = 0; i < n; i++) {
        s[p + i] = alphabet[(i * 7 + 3) % a];
    }
    s[p + n] = '\0';
    return s;
}

#define ALNUM "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8cF0"
#define UPPER "QW3RT7YU9PL2KJ5HG8FD4SA6ZX"
#define HEX "0123456789abcdef"

static void check_secret(const char *path, const char *secret, const char *content,
                         const char *rule)
{
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    char *json;
    char *summary;
    size_t n = 0;

    cr_assert_eq(dm_safety_scan(&f, path, content, strlen(content), DM_SAFETY_RULES_ALL, &err), 0,
                 "%s", err.msg);
    for (size_t i = 0; i < f.len; i++) {
        const struct dm_finding *it = &f.items[i];
        if (strcmp(it->rule, rule) != 0) {
            continue;
        }
        n++;
        cr_expect_eq(it->kind, DM_FINDING_SECRET);
        cr_expect_eq(it->severity, DM_SEVERITY_CRITICAL);
        /* Redacted: the first four characters of the match and an ellipsis, nothing more. */
        cr_expect_eq(strlen(it->excerpt), 4 + 3, "%s: excerpt %s", rule, it->excerpt);
        cr_expect(strcmp(it->excerpt + 4, "\xe2\x80\xa6") == 0, "%s", it->excerpt);
    }
    cr_expect_eq(n, 1, "%s: %zu findings in %s", rule, n, content);
    cr_expect_geq(dm_findings_count(&f, DM_FINDING_SECRET), 1);
    /* No 8-character window of the secret's tail appears in JSON, summary or any excerpt. */
    json = dm_findings_to_json(&f);
    summary = dm_findings_summary(&f, 10);
    cr_assert_not_null(json);
    cr_assert_not_null(summary);
    for (size_t off = 4; off + 8 <= strlen(secret); off++) {
        char window[9];
        memcpy(window, secret + off, 8);
        window[8] = '\0';
        cr_expect(strstr(json, window) == NULL, "%s: JSON leaks %s: %s", rule, window, json);
        cr_expect(strstr(summary, window) == NULL, "%s: summary leaks", rule);
    }
    free(json);
    free(summary);
    dm_findings_free(&f);
}

Test(safety, secret_rules)
{
    struct {
        char *secret;
        const char *fmt; /* %s = secret */
        const char *rule;
    } cases[] = {
        {fake("AKIA", 16, UPPER), "const k = \"%s\";", "aws-access-key-id"},
        {fake("ASIA", 16, UPPER), "AWS_ACCESS_KEY_ID=%s", "aws-access-key-id"},
        {fake("", 40, ALNUM "/+"), "aws_secret_access_key = %s", "aws-secret-access-key"},
        {fake("ghp_", 36, ALNUM), "const t = '%s';", "github-token"},
        {fake("gho_", 36, ALNUM), "token: %s", "github-token"},
        {fake("ghs_", 40, ALNUM), "x=%s", "github-token"},
        {fake("github_pat_", 60, ALNUM "_"), "GH=%s", "github-token"},
        {fake("sk-or-v1-", 64, HEX), "OPENROUTER_API_KEY=%s", "openrouter-key"},
        {fake("sk-ant-api03-", 80, ALNUM "-_"), "new Anthropic({ apiKey: \"%s\" })",
         "anthropic-key"},
        {fake("sk-proj-", 60, ALNUM "-_"), "OPENAI=%s", "openai-key"},
        {fake("sk-", 48, ALNUM), "openai.key = %s", "openai-key"},
        {fake("xoxb-1234-5678-", 24, ALNUM), "slack(%s)", "slack-token"},
        {fake("https://hooks.slack.com/services/T0001/B0001/", 24, ALNUM), "url=%s", "slack-token"},
        {strdup("-----BEGIN RSA PRIVATE KEY-----"), "%s\nMIIEow...\n", "private-key"},
        {strdup("-----BEGIN OPENSSH PRIVATE KEY-----"), "key = `%s`", "private-key"},
        {strdup("-----BEGIN PRIVATE KEY-----"), "%s", "private-key"},
        {strdup("-----BEGIN PGP PRIVATE KEY BLOCK-----"), "%s", "private-key"},
        {fake("", 14, ALNUM "!@#"), "const password = \"%s\";", "hardcoded-credential"},
        {fake("", 12, ALNUM), "DB_PASSWORD: '%s'", "hardcoded-credential"},
        {fake("", 20, ALNUM), "const apiKey = \"%s\"", "hardcoded-credential"},
        {fake("", 20, ALNUM), "\"client_secret\": \"%s\"", "hardcoded-credential"},
        {fake("", 20, ALNUM), "SECRET_KEY = '%s'", "hardcoded-credential"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char content[512];
        snprintf(content, sizeof(content), cases[i].fmt, cases[i].secret);
        check_secret(i % 2 ? TS : "src/config.yaml", cases[i].secret, content, cases[i].rule);
        free(cases[i].secret);
    }
}

Test(safety, secret_false_positives)
{
    const struct srow rows[] = {
        {TS, "const password = process.env.DB_PASSWORD;", "hardcoded-credential", 0, 0},
        {TS, "password: \"${DB_PASSWORD}\"", "hardcoded-credential", 0, 0},
        {TS, "password = \"changeme123\"", "hardcoded-credential", 0, 0},
        {TS, "const password = \"\";", "hardcoded-credential", 0, 0},
        {TS, "const password = \"short\";", "hardcoded-credential", 0, 0},
        {TS, "token_endpoint_auth_method: \"client_secret_post\"", "hardcoded-credential", 0, 0},
        {TSX, "<input type=\"password\" name=\"password\" autoComplete=\"current-password\" />",
         "hardcoded-credential", 0, 0},
        {TS, "const secret = \"your-secret-here\";", "hardcoded-credential", 0, 0},
        {TS, "token_url = \"https://oauth2.example.com/token\"", "hardcoded-credential", 0, 0},
        {TS, "const passwordHint = \"Use8OrMoreChars\"", "hardcoded-credential", 0, 0},
        {TS, "secretPath = \"/run/secrets/db\"", "hardcoded-credential", 0, 0},
        {TS, "password = \"********\"", "hardcoded-credential", 0, 0},
        {TS, "-----BEGIN PUBLIC KEY-----", "private-key", 0, 0},
        {TS, "const cls = \"sk-long-descriptive-slug-name-here\";", "openai-key", 0, 0},
        {TS, "const id = \"task-abcdefghijklmnopqrstuvwxyz0123456789abc\";", "openai-key", 0, 0},
        {TS, "const x = \"ghp_short\";", "github-token", 0, 0},
        {TS, "const s = \"AKIA_NOT_A_KEY\";", "aws-access-key-id", 0, 0},
    };
    check_srows(rows, sizeof(rows) / sizeof(rows[0]), DM_SAFETY_RULES_ALL);
}

Test(safety, secret_in_comment_or_string_still_found)
{
    /* Comments and strings are blanked only for destructive/review rules, never for secrets. */
    char *tok = fake("ghp_", 36, ALNUM);
    char content[256];
    snprintf(content, sizeof(content), "-- %s\nINSERT INTO t VALUES ('%s');", tok, tok);
    const struct srow rows[] = {{SQL, content, "github-token", 2, 0}};
    check_srows(rows, 1, DM_SAFETY_RULES_ALL);
    free(tok);
}

Test(safety, destructive_excerpt_masks_tokens)
{
    char *tok = fake("ghp_", 36, ALNUM);
    char content[256];
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    char *json;

    snprintf(content, sizeof(content), "git push https://x:%s@github.com/o/r --force", tok);
    cr_assert_eq(dm_safety_scan(&f, SH, content, strlen(content), DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(count_rule(&f, "git-force", 1), 1);
    cr_assert_eq(count_rule(&f, "github-token", 1), 1);
    json = dm_findings_to_json(&f);
    cr_assert(strstr(json, tok + 4) == NULL, "%s", json);
    cr_assert(strstr(json, "\"excerpt\":\"git push https://x:ghp_") != NULL, "%s", json);
    free(json);
    free(tok);
    dm_findings_free(&f);
}

/* ---- findings API ----------------------------------------------------------------------- */

Test(safety, findings_json_and_summary)
{
    const char *sql = "CREATE TABLE a (id INT);\nDROP TABLE b;\nDELETE FROM c;\n";
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    char *json;
    char *sum;

    cr_assert_eq(dm_safety_scan(&f, SQL, sql, strlen(sql), DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(f.len, 2);
    json = dm_findings_to_json(&f);
    cr_assert_str_eq(json,
                     "[{\"kind\":\"destructive\",\"severity\":\"critical\",\"rule\":\"drop-table\","
                     "\"path\":\"migrations/0001_init.sql\",\"line\":2,\"excerpt\":\"DROP TABLE\"},"
                     "{\"kind\":\"destructive\",\"severity\":\"high\",\"rule\":"
                     "\"delete-without-where\",\"path\":\"migrations/0001_init.sql\",\"line\":3,"
                     "\"excerpt\":\"DELETE FROM c\"}]");
    sum = dm_findings_summary(&f, 1);
    cr_assert_str_eq(sum, "migrations/0001_init.sql:2 drop-table (critical); +1 more");
    free(sum);
    sum = dm_findings_summary(&f, 5);
    cr_assert_str_eq(sum, "migrations/0001_init.sql:2 drop-table (critical); "
                          "migrations/0001_init.sql:3 delete-without-where (high)");
    free(sum);
    free(json);
    /* Accumulates across files. */
    cr_assert_eq(dm_safety_scan(&f, SH, "rm -rf /", 8, DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(f.len, 3);
    cr_assert_str_eq(f.items[2].path, SH);
    cr_assert_eq(dm_findings_count(&f, DM_FINDING_DESTRUCTIVE), 3);
    cr_assert_eq(dm_findings_count(&f, DM_FINDING_SECRET), 0);
    dm_findings_free(&f);
    cr_assert_eq(f.len, 0);
    cr_assert_eq(f.max_severity, -1);
    json = dm_findings_to_json(&f);
    cr_assert_str_eq(json, "[]");
    free(json);
    sum = dm_findings_summary(&f, 3);
    cr_assert_str_eq(sum, "");
    free(sum);
    dm_findings_free(NULL);
}

Test(safety, rule_sets_select_rules)
{
    char *tok = fake("ghp_", 36, ALNUM);
    char content[256];
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;

    snprintf(content, sizeof(content), "rm -rf x; eval(y); T=%s", tok);
    cr_assert_eq(dm_safety_scan(&f, SH, content, strlen(content), DM_SAFETY_RULES_SECRETS, &err),
                 0);
    cr_assert_eq(f.len, 1);
    cr_assert_str_eq(f.items[0].rule, "github-token");
    dm_findings_free(&f);
    cr_assert_eq(
        dm_safety_scan(&f, SH, content, strlen(content), DM_SAFETY_RULES_DESTRUCTIVE, &err), 0);
    cr_assert_eq(f.len, 1);
    cr_assert_str_eq(f.items[0].rule, "rm-rf");
    dm_findings_free(&f);
    cr_assert_eq(dm_safety_scan(&f, SH, content, strlen(content), DM_SAFETY_RULES_REVIEW, &err), 0);
    cr_assert_eq(f.len, 1);
    cr_assert_str_eq(f.items[0].rule, "eval");
    dm_findings_free(&f);
    free(tok);
}

Test(safety, caps_and_counts)
{
    struct {
        char *s;
        size_t n;
    } b;
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    const char *line = "DROP TABLE x;\n";

    b.n = 1000 * strlen(line);
    b.s = malloc(b.n + 1);
    for (size_t i = 0; i < 1000; i++) {
        memcpy(b.s + i * strlen(line), line, strlen(line));
    }
    b.s[b.n] = '\0';
    cr_assert_eq(dm_safety_scan(&f, SQL, b.s, b.n, DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(f.len, 64);
    cr_assert_eq(f.items[63].line, 64);
    cr_assert_gt(f.dropped, 0);
    /* Across files the kept list is capped, the counts are not. */
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(dm_safety_scan(&f, SQL, b.s, b.n, DM_SAFETY_RULES_ALL, &err), 0);
    }
    cr_assert_eq(f.len, DM_SAFETY_FINDINGS_MAX);
    cr_assert_geq(dm_findings_count(&f, DM_FINDING_DESTRUCTIVE), DM_SAFETY_FINDINGS_MAX);
    free(b.s);
    dm_findings_free(&f);
}

Test(safety, binary_and_empty_content)
{
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;
    const char bin[] = "\x00\xff\xfe DROP TABLE x;\x00 rm -rf /\n\xc3";

    cr_assert_eq(dm_safety_scan(&f, SQL, "", 0, DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(f.len, 0);
    cr_assert_eq(dm_safety_scan(&f, SQL, bin, sizeof(bin) - 1, DM_SAFETY_RULES_ALL, &err), 0);
    cr_assert_eq(count_rule(&f, "drop-table", 1), 1);
    cr_assert_eq(count_rule(&f, "rm-rf", 1), 1);
    /* Excerpts are printable ASCII. */
    for (size_t i = 0; i < f.len; i++) {
        for (const char *c = f.items[i].excerpt; *c; c++) {
            cr_assert((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        }
    }
    dm_findings_free(&f);
}

/* 1 MiB of "DELETE FROM x " with one WHERE at the very end and no ';': a lookahead per match
 * would rescan the rest of the file for each of ~75,000 matches (minutes); the statement index
 * makes it linear. The timeout turns a quadratic regression into a failure. */
Test(safety, hostile_statement_scan_is_linear, .timeout = 15)
{
    const char *unit = "DELETE FROM x ALTER TABLE y ";
    size_t n = 1024 * 1024;
    size_t u = strlen(unit);
    char *s = malloc(n + 1);
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_error err;

    for (size_t i = 0; i < n; i++) {
        s[i] = unit[i % u];
    }
    memcpy(s + n - 11, " WHERE DROP", 11);
    s[n] = '\0';
    cr_assert_eq(dm_safety_scan(&f, SQL, s, n, DM_SAFETY_RULES_ALL, &err), 0, "%s", err.msg);
    cr_assert_eq(count_rule(&f, "delete-without-where", 0), 0);
    cr_assert_eq(count_rule(&f, "alter-drop", 0), 64); /* DROP ends every ALTER's statement */
    dm_findings_free(&f);
    free(s);
}

static void *scan_thread(void *arg)
{
    const char *sql = arg;
    long bad = 0;
    for (int i = 0; i < 200; i++) {
        struct dm_findings f = DM_FINDINGS_INIT;
        struct dm_error err;
        if (dm_safety_scan(&f, SQL, sql, strlen(sql), DM_SAFETY_RULES_ALL, &err) != 0 ||
            count_rule(&f, "drop-table", 3) != 1 ||
            count_rule(&f, "delete-without-where", 0) != 1) {
            bad++;
        }
        dm_findings_free(&f);
    }
    return (void *)bad;
}

Test(safety, concurrent_scans_and_reinit)
{
    const char *sql = "-- DROP TABLE a;\nSELECT 1;\nDROP TABLE b;\nDELETE FROM c;";
    pthread_t t[4];
    struct dm_error err;

    /* Init from several threads at once is safe: shut down first so they race to compile. */
    dm_safety_shutdown();
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, scan_thread, (void *)sql), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_assert_eq((long)bad, 0, "thread %d saw wrong results", i);
    }
    cr_assert_eq(dm_safety_init(&err), 0);
    cr_assert_eq(dm_safety_init(&err), 0);
}

/* ---- paths ------------------------------------------------------------------------------ */

struct prow {
    const char *path;
    int allow_workflows;
    int rc;
    const char *msg; /* exact */
};

static void check_prows(const struct prow *rows, size_t n, const struct dm_safety_policy *p)
{
    for (size_t i = 0; i < n; i++) {
        struct dm_error err;
        int rc;
        dm_error_clear(&err);
        rc = dm_safety_check_path(rows[i].path, p, rows[i].allow_workflows, &err);
        cr_expect_eq(rc, rows[i].rc, "row %zu (%s): rc %d %s", i, rows[i].path, rc, err.msg);
        if (rows[i].msg) {
            cr_expect_str_eq(err.msg, rows[i].msg, "row %zu", i);
        }
    }
}

#define UNSAFE DM_ERR_UNSAFE
#define ROOTS_MSG "must be under an allowed root (src/, migrations/, docs/, tests/, test/, public/)"

Test(safety, path_rules)
{
    const struct prow rows[] = {
        {"src/routes/todos.ts", 0, 0, NULL},
        {"src/components/TodoList.tsx", 0, 0, NULL},
        {"migrations/0001_init.sql", 0, 0, NULL},
        {"docs/dream-specs/todo.md", 0, 0, NULL},
        {"tests/todo.test.ts", 0, 0, NULL},
        {"public/logo.svg", 0, 0, NULL},
        {"src/.gitkeep", 0, 0, NULL},
        {"src/.github/x.ts", 0, 0, NULL},
        {"src/caf\xc3\xa9.ts", 0, 0, NULL},
        {"", 0, UNSAFE, "path: must not be empty"},
        {NULL, 0, UNSAFE, "path: must not be empty"},
        {"/etc/passwd", 0, UNSAFE, "path \"/etc/passwd\": must be relative"},
        {"C:/x/src/a.ts", 0, UNSAFE, "path \"C:/x/src/a.ts\": must be relative"},
        {"src\\a.ts", 0, UNSAFE, "path \"src\\a.ts\": must not contain control characters or '\\'"},
        {"src/a\nb.ts", 0, UNSAFE,
         "path \"src/a b.ts\": must not contain control characters or '\\'"},
        {"src/\xff.ts", 0, UNSAFE, "path \"src/?.ts\": must be valid UTF-8"},
        {"./src/a.ts", 0, UNSAFE, "path \"./src/a.ts\": must be normalised (no \".\" segment)"},
        {"src/./a.ts", 0, UNSAFE, "path \"src/./a.ts\": must be normalised (no \".\" segment)"},
        {"src//a.ts", 0, UNSAFE,
         "path \"src//a.ts\": must be normalised (no empty segment, \"//\" or trailing '/')"},
        {"src/", 0, UNSAFE,
         "path \"src/\": must be normalised (no empty segment, \"//\" or trailing '/')"},
        {"src/../.env", 0, UNSAFE, "path \"src/../.env\": must not contain a \"..\" segment"},
        {"..", 0, UNSAFE, "path \"..\": must not contain a \"..\" segment"},
        {"src/..foo.ts", 0, 0, NULL},
        {".git/config", 0, UNSAFE, "path \".git/config\": must not contain a \".git\" segment"},
        {"src/.git/hooks/pre-commit", 0, UNSAFE,
         "path \"src/.git/hooks/pre-commit\": must not contain a \".git\" segment"},
        {"src/.GIT/config", 0, UNSAFE,
         "path \"src/.GIT/config\": must not contain a \".git\" segment"},
        {"src/.git./config", 0, UNSAFE,
         "path \"src/.git./config\": must not contain a \".git\" segment"},
        {"src/git~1/config", 0, UNSAFE,
         "path \"src/git~1/config\": must not contain a \".git\" segment"},
        {"package.json", 0, UNSAFE, "path \"package.json\": " ROOTS_MSG},
        {"srcx/a.ts", 0, UNSAFE, "path \"srcx/a.ts\": " ROOTS_MSG},
        {"src", 0, UNSAFE, "path \"src\": " ROOTS_MSG},
        {".github/workflows/ci.yml", 0, UNSAFE,
         "path \".github/workflows/ci.yml\": may touch .github/workflows/ only for shipper jobs "
         "when workflows are allowed"},
        {".github/workflows/ci.yml", 1, 0, NULL},
        {".github/CODEOWNERS", 1, UNSAFE, "path \".github/CODEOWNERS\": " ROOTS_MSG},
        {".github/workflows/../../x", 1, UNSAFE,
         "path \".github/workflows/../../x\": must not contain a \"..\" segment"},
        /* NTFS streams and HFS+-ignored characters alias ".git" (and other names). */
        {"src/.git::$INDEX_ALLOCATION/hooks/x", 0, UNSAFE,
         "path \"src/.git::$INDEX_ALLOCATION/hooks/x\": must not contain ':' (NTFS streams alias "
         "other names)"},
        {"src/a.ts:stream", 0, UNSAFE,
         "path \"src/a.ts:stream\": must not contain ':' (NTFS streams alias other names)"},
        {"src/.g\xe2\x80\x8cit/config", 0, UNSAFE, NULL},
        {"src/a\xe2\x80\x8b.ts", 0, UNSAFE, NULL},
        {"src/\xef\xbb\xbf"
         "a.ts",
         0, UNSAFE, NULL},
        {"src/a\xc2\xad"
         "b.ts",
         0, UNSAFE, NULL},
        {"src/a\xe2\x81\xa0"
         "b.ts",
         0, UNSAFE, NULL},
        {"src/a\xe2\x80\xae"
         "b.ts",
         0, UNSAFE, NULL},
        {"src/\xe2\x80\x94"
         "dash.ts",
         0, 0, NULL}, /* an em dash is visible: fine */
    };
    check_prows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(safety, case_twins_are_refused)
{
    const char *change[] = {"src/routes/todos.ts", "src/components/TodoList.tsx"};
    const char *twins[] = {"src/routes/todos.ts", "src/routes/Todos.ts"};
    const char *base[] = {"src/index.ts", "src/components/todolist.tsx"};
    const size_t sizes[] = {10, 10};
    struct dm_error err;

    dm_error_clear(&err);
    cr_assert_eq(dm_safety_check_twins(change, 2, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_safety_check_twins(twins, 2, NULL, 0, &err), DM_ERR_UNSAFE);
    cr_assert_str_eq(err.msg, "path \"src/routes/Todos.ts\": differs only by case from "
                              "\"src/routes/todos.ts\" in the change (one file on a "
                              "case-insensitive checkout)");
    cr_assert_eq(dm_safety_check_twins(change, 2, base, 2, &err), DM_ERR_UNSAFE);
    cr_assert_str_eq(err.msg, "path \"src/components/TodoList.tsx\": differs only by case from "
                              "\"src/components/todolist.tsx\" on the base (one file on a "
                              "case-insensitive checkout)");
    /* The same path as on the base is an edit, not a twin. */
    cr_assert_eq(dm_safety_check_twins(base, 2, base, 2, &err), 0);
    /* The limits check applies the rule within the change. */
    cr_assert_eq(dm_safety_check_limits(twins, sizes, 2, NULL, &err), DM_ERR_UNSAFE);
    cr_assert_eq(dm_safety_check_limits(change, sizes, 2, NULL, &err), 0);
}

Test(safety, path_roots_from_policy)
{
    static const char *const roots[] = {"app/", "README.md"};
    struct dm_safety_policy p = DM_SAFETY_POLICY_INIT;
    char longp[1100];
    p.roots = roots;
    p.n_roots = 2;
    const struct prow rows[] = {
        {"app/main.ts", 0, 0, NULL},
        {"README.md", 0, 0, NULL},
        {"README.md.bak", 0, UNSAFE,
         "path \"README.md.bak\": must be under an allowed root (app/, README.md)"},
        {"src/a.ts", 0, UNSAFE,
         "path \"src/a.ts\": must be under an allowed root (app/, README.md)"},
    };
    check_prows(rows, sizeof(rows) / sizeof(rows[0]), &p);

    memset(longp, 'a', sizeof(longp) - 1);
    memcpy(longp, "app/", 4);
    longp[sizeof(longp) - 1] = '\0';
    struct dm_error err;
    cr_assert_eq(dm_safety_check_path(longp, &p, 0, &err), UNSAFE);
    cr_assert(strstr(err.msg, "must be at most 1024 bytes") != NULL, "%s", err.msg);
    cr_assert_lt(strlen(err.msg), 200); /* the path is cut in the message */
}

/* ---- branches --------------------------------------------------------------------------- */

Test(safety, branch_rules)
{
    const struct {
        const char *branch;
        const char *prefix;
        const char *base;
        int rc;
        const char *msg;
    } rows[] = {
        {"dream/todo-api", "dream/", "main", 0, NULL},
        {"dream/todo-api-9f0c2b1e", "dream/", "develop", 0, NULL},
        {"feature/x", NULL, NULL, 0, NULL},
        {"main", NULL, "develop", UNSAFE, "branch \"main\": is protected (matches \"main\")"},
        {"Main", NULL, NULL, UNSAFE, "branch \"Main\": is protected (matches \"main\")"},
        {"master", NULL, NULL, UNSAFE, "branch \"master\": is protected (matches \"master\")"},
        {"production", NULL, NULL, UNSAFE,
         "branch \"production\": is protected (matches \"production\")"},
        {"staging", NULL, NULL, UNSAFE, "branch \"staging\": is protected (matches \"staging\")"},
        {"release/1.0", NULL, NULL, UNSAFE,
         "branch \"release/1.0\": is protected (matches \"release/*\")"},
        {"release/1.0/hotfix", NULL, NULL, UNSAFE,
         "branch \"release/1.0/hotfix\": is protected (matches \"release/*\")"},
        {"releases", NULL, NULL, 0, NULL},
        {"develop", NULL, "develop", UNSAFE, "branch \"develop\": must not be the base branch"},
        {"dream/x", "dream/", "dream/x", UNSAFE, "branch \"dream/x\": must not be the base branch"},
        {"todo-api", "dream/", "main", UNSAFE,
         "branch \"todo-api\": must start with the job's prefix \"dream/\""},
        {"dream/", "dream/", "main", UNSAFE,
         "branch \"dream/\": must be a valid git ref name (must not contain an empty component "
         "(\"//\" or a leading/trailing '/'))"},
        {"dream", "dream", "main", UNSAFE,
         "branch \"dream\": must start with the job's prefix \"dream\""},
        {"dream/a..b", "dream/", "main", UNSAFE,
         "branch \"dream/a..b\": must be a valid git ref name (must not contain \"..\")"},
        {"dream/a b", "dream/", "main", UNSAFE,
         "branch \"dream/a b\": must be a valid git ref name (must not contain space, '~', '^', "
         "':', '?', '*', '[' or '\\')"},
        {"dream/x.lock", "dream/", "main", UNSAFE,
         "branch \"dream/x.lock\": must be a valid git ref name (no component may end with "
         "\".lock\")"},
        {"", "dream/", "main", UNSAFE,
         "branch \"\": must be a valid git ref name (must not be empty)"},
        {"main", "main", "develop", UNSAFE,
         "branch \"main\": must start with the job's prefix \"main\""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_error err;
        dm_error_clear(&err);
        int rc = dm_safety_check_branch(rows[i].branch, rows[i].prefix, rows[i].base, NULL, &err);
        cr_expect_eq(rc, rows[i].rc, "row %zu (%s): %d %s", i, rows[i].branch, rc, err.msg);
        if (rows[i].msg) {
            cr_expect_str_eq(err.msg, rows[i].msg, "row %zu", i);
        }
    }
}

Test(safety, branch_protected_from_policy)
{
    static const char *const prot[] = {"dream/locked-*", "hotfix/?"};
    struct dm_safety_policy p = DM_SAFETY_POLICY_INIT;
    struct dm_error err;

    p.protected_branches = prot;
    p.n_protected = 2;
    cr_assert_eq(dm_safety_check_branch("dream/locked-1", "dream/", "main", &p, &err), UNSAFE);
    cr_assert_str_eq(err.msg,
                     "branch \"dream/locked-1\": is protected (matches \"dream/locked-*\")");
    cr_assert_eq(dm_safety_check_branch("dream/open", "dream/", "main", &p, &err), 0);
    cr_assert_eq(dm_safety_check_branch("hotfix/a", NULL, NULL, &p, &err), UNSAFE);
    cr_assert_eq(dm_safety_check_branch("hotfix/ab", NULL, NULL, &p, &err), 0);
    /* The policy list replaces the defaults. */
    cr_assert_eq(dm_safety_check_branch("master", NULL, NULL, &p, &err), 0);
}

/* ---- limits ----------------------------------------------------------------------------- */

Test(safety, limits)
{
    const char *paths[60];
    size_t sizes[60];
    struct dm_safety_policy p = DM_SAFETY_POLICY_INIT;
    struct dm_error err;

    for (int i = 0; i < 60; i++) {
        paths[i] = "src/a.ts";
        sizes[i] = 1000;
    }
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 50, NULL, &err), 0);
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 51, NULL, &err), DM_ERR_LIMIT);
    cr_assert_str_eq(err.msg, "files: at most 50 files (got 51)");

    sizes[3] = DM_SAFETY_DEFAULT_MAX_FILE_BYTES;
    paths[3] = "src/big.ts";
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 10, NULL, &err), 0);
    sizes[3] = DM_SAFETY_DEFAULT_MAX_FILE_BYTES + 1;
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 10, NULL, &err), DM_ERR_LIMIT);
    cr_assert_str_eq(err.msg, "path \"src/big.ts\": at most 262144 bytes (got 262145)");
    cr_assert_eq(dm_safety_check_limits(NULL, sizes, 10, NULL, &err), DM_ERR_LIMIT);

    for (int i = 0; i < 10; i++) {
        sizes[i] = 250 * 1024;
    }
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 8, NULL, &err), 0);
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 9, NULL, &err), DM_ERR_LIMIT);
    cr_assert_str_eq(err.msg, "files: at most 2097152 bytes in total (got 2304000)");

    p.max_files = 2;
    p.max_file_bytes = 10;
    p.max_total_bytes = 15;
    sizes[0] = 10;
    sizes[1] = 5;
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 2, &p, &err), 0);
    sizes[1] = 6;
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 2, &p, &err), DM_ERR_LIMIT);
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 3, &p, &err), DM_ERR_LIMIT);
    cr_assert_str_eq(err.msg, "files: at most 2 files (got 3)");
    cr_assert_eq(dm_safety_check_limits(paths, sizes, 0, &p, &err), 0);
}

Test(safety, names)
{
    cr_assert_str_eq(dm_severity_name(DM_SEVERITY_LOW), "low");
    cr_assert_str_eq(dm_severity_name(DM_SEVERITY_CRITICAL), "critical");
    cr_assert_str_eq(dm_finding_kind_name(DM_FINDING_SECRET), "secret");
    cr_assert_str_eq(dm_finding_kind_name(DM_FINDING_REVIEW), "review");
    cr_assert_str_eq(dm_severity_name((enum dm_severity)9), "unknown");
}
