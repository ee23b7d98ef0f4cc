/* Unit tests for migrate: the replay of existing then new migrations in SQLite, the issue's
 * cases (ALTER of an old table passes, CREATE TABLE of an existing one is caught at file:line),
 * the refused statements and the caps. */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/domain/migrate.h"

static const char *INIT = "-- the users\n"
                          "CREATE TABLE users (\n"
                          "  id INTEGER PRIMARY KEY,\n"
                          "  email TEXT NOT NULL\n"
                          ");\n";

static struct dm_migration mig(const char *path, const char *sql, int is_new)
{
    struct dm_migration m = {path, sql, strlen(sql), is_new};
    return m;
}

Test(migrate, alter_of_an_old_table_passes)
{
    struct dm_migration m[] = {
        mig("migrations/0002_add_name.sql", "ALTER TABLE users ADD COLUMN name TEXT;\n", 1),
        mig("migrations/0001_init.sql", INIT, 0),
    };
    struct dm_migrate_report rep;
    struct dm_error err;
    size_t failed = 0;

    cr_assert_eq(dm_migrate_replay(m, 2, NULL, &rep, &failed, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.applied, 2);
    cr_assert_eq(rep.base_failures, 0);
}

Test(migrate, alter_without_the_old_migration_fails)
{
    struct dm_migration m[] = {
        mig("migrations/0002_add_name.sql", "\n\nALTER TABLE users ADD COLUMN name TEXT;\n", 1),
    };
    struct dm_migrate_limits strict = DM_MIGRATE_LIMITS_INIT;
    struct dm_migrate_report rep;
    struct dm_error err;
    size_t failed = 9;

    strict.strict_refs = 1;
    cr_assert_eq(dm_migrate_replay(m, 1, &strict, NULL, &failed, &err), DM_ERR_INVALID);
    cr_assert_eq(failed, 0);
    cr_assert_str_eq(err.msg, "migrations/0002_add_name.sql:3: no such table: users");
    /* Not strict: the table may exist in the database from elsewhere; counted, not failed. */
    cr_assert_eq(dm_migrate_replay(m, 1, NULL, &rep, &failed, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.unresolved, 1);
    cr_assert_str_eq(rep.first_unresolved, "migrations/0002_add_name.sql:3: no such table: users");
}

Test(migrate, an_unresolved_statement_is_skipped_and_the_next_ones_run)
{
    struct dm_migration m[] = {
        mig("migrations/0002_x.sql",
            "DROP TABLE legacy_users;\nCREATE TABLE t (x TEXT);\nCREATE TABLE t (y TEXT);\n", 1),
    };
    struct dm_migrate_report rep;
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 1, NULL, &rep, NULL, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "migrations/0002_x.sql:3: table t already exists");
    cr_assert_eq(rep.unresolved, 1);
}

Test(migrate, create_of_an_existing_table_is_caught_with_file_and_line)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_create_todos.sql",
            "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);\n"
            "\n"
            "CREATE TABLE users (\n  id INTEGER PRIMARY KEY\n);\n",
            1),
    };
    struct dm_error err;
    size_t failed = 9;

    cr_assert_eq(dm_migrate_replay(m, 2, NULL, NULL, &failed, &err), DM_ERR_INVALID);
    cr_assert_eq(failed, 1);
    cr_assert_str_eq(err.msg, "migrations/0002_create_todos.sql:3: table users already exists");
}

Test(migrate, create_if_not_exists_passes)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_x.sql",
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY);\n"
            "CREATE INDEX idx_users_email ON users(email);\n"
            "INSERT INTO users (email) VALUES ('a@example.com');\n",
            1),
    };
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 2, NULL, NULL, NULL, &err), 0, "%s", err.msg);
}

Test(migrate, data_statements_are_checked_not_run)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_seed.sql", "INSERT INTO users (emali) VALUES ('x');\n", 1),
    };
    struct dm_migrate_limits strict = DM_MIGRATE_LIMITS_INIT;
    struct dm_error err;
    size_t failed = 9;
    strict.strict_refs = 1;
    cr_assert_eq(dm_migrate_replay(m, 2, &strict, NULL, &failed, &err), DM_ERR_INVALID);
    cr_assert_eq(failed, 1);
    cr_assert(strstr(err.msg, "migrations/0002_seed.sql:1: table users has no column named emali"),
              "%s", err.msg);
}

Test(migrate, existing_migrations_run_in_name_order_then_new_ones)
{
    /* 0002 alters the table 0001 creates: given in the wrong order, replayed in the right one. */
    struct dm_migration m[] = {
        mig("migrations/0003_idx.sql", "CREATE INDEX i ON users(name);\n", 1),
        mig("migrations/0002_name.sql", "ALTER TABLE users ADD COLUMN name TEXT;\n", 0),
        mig("migrations/0001_init.sql", INIT, 0),
    };
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 3, NULL, NULL, NULL, &err), 0, "%s", err.msg);
}

Test(migrate, a_broken_base_migration_is_reported_not_blamed_on_the_change)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_bad.sql", "CREATE TABEL x (a TEXT);\n", 0),
        mig("migrations/0003_new.sql", "ALTER TABLE users ADD COLUMN name TEXT;\n", 1),
    };
    struct dm_migrate_report rep;
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 3, NULL, &rep, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.applied, 2);
    cr_assert_eq(rep.base_failures, 1);
    cr_assert_str_eq(rep.base_error, "migrations/0002_bad.sql:1: near \"TABEL\": syntax error");
}

static void refused(const char *sql, const char *why)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_x.sql", sql, 1),
    };
    struct dm_error err;
    size_t failed = 9;
    cr_assert_eq(dm_migrate_replay(m, 2, NULL, NULL, &failed, &err), DM_ERR_INVALID, "%s", sql);
    cr_assert_eq(failed, 1);
    cr_assert(strstr(err.msg, why), "%s: %s", sql, err.msg);
    cr_assert(strncmp(err.msg, "migrations/0002_x.sql:", 22) == 0, "%s", err.msg);
}

Test(migrate, statements_that_produce_or_copy_data_are_refused)
{
    refused("CREATE TABLE copy AS SELECT * FROM users;", "CREATE TABLE ... AS SELECT");
    refused("INSERT INTO users (email) SELECT email FROM users;", "INSERT ... SELECT");
    refused("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "INSERT INTO users (email) SELECT x FROM c;",
            "recursive");
    refused("ATTACH DATABASE '/tmp/dream-migrate-attack.db' AS evil;", "ATTACH");
    refused("VACUUM;", "VACUUM");
}

Test(migrate, views_and_triggers_are_schema)
{
    struct dm_migration m[] = {
        mig("migrations/0001_init.sql", INIT, 0),
        mig("migrations/0002_v.sql",
            "CREATE VIEW emails AS SELECT email FROM users;\n"
            "CREATE TABLE audit (email TEXT);\n"
            "CREATE TRIGGER t AFTER INSERT ON users BEGIN\n"
            "  INSERT INTO audit (email) SELECT NEW.email;\n"
            "END;\n"
            "PRAGMA foreign_keys = ON;\n",
            1),
    };
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 2, NULL, NULL, NULL, &err), 0, "%s", err.msg);
}

Test(migrate, a_statement_over_the_length_cap_fails)
{
    struct dm_migrate_limits lim = DM_MIGRATE_LIMITS_INIT;
    size_t n = 5000;
    char *sql = malloc(n + 64);
    struct dm_error err;
    size_t failed = 9;
    int rc;
    struct dm_migration m[1];

    strcpy(sql, "CREATE TABLE t (x TEXT DEFAULT '");
    memset(sql + strlen(sql), 'a', n);
    strcpy(sql + 32 + n, "');");
    m[0] = mig("migrations/0002_big.sql", sql, 1);
    lim.sql_length = 1000;
    rc = dm_migrate_replay(m, 1, &lim, NULL, &failed, &err);
    cr_assert(rc == DM_ERR_LIMIT || rc == DM_ERR_INVALID, "%d %s", rc, err.msg);
    cr_assert_eq(failed, 0);
    cr_assert(strstr(err.msg, "too big") || strstr(err.msg, "too long"), "%s", err.msg);
    free(sql);
}

Test(migrate, a_syntax_error_names_its_line)
{
    struct dm_migration m[] = {
        mig("migrations/0002_x.sql", "CREATE TABLE a (x TEXT);\nCREATE TABEL b (y TEXT);\n", 1),
    };
    struct dm_error err;
    cr_assert_eq(dm_migrate_replay(m, 1, NULL, NULL, NULL, &err), DM_ERR_INVALID);
    cr_assert(strncmp(err.msg, "migrations/0002_x.sql:2: ", 25) == 0, "%s", err.msg);
}

Test(migrate, is_sql)
{
    cr_assert(dm_migrate_is_sql("migrations/0001_init.sql"));
    cr_assert(dm_migrate_is_sql("X.SQL"));
    cr_assert_not(dm_migrate_is_sql("migrations/0001_init.ts"));
    cr_assert_not(dm_migrate_is_sql(".sql"));
}
