/*
 * plan_build: the rules' plan of a spec in the conventions of the repository it lands in (rules
 * in include/dream/domain/plan.h): the plan's assembly from the spec's routes, components,
 * tables, tests and edits, files and edits in the repository's folders, and the contract of each
 * file. The names and conventions are in plan_names.c, the covers in plan_cover.c (shared
 * through plan_rules.h). Owns the plans it returns; no global state, any thread.
 */
#include "dream/core/buf.h"
#include "dream/core/refname.h"
#include "dream/core/text.h"
#include "dream/domain/plan.h"
#include "dream/domain/repo.h"
#include "plan_internal.h"
#include "plan_rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Adds the path to the plan unless an earlier item has it. *index is the item holding the path
 * (the earlier one for a duplicate). */
static int push_item(struct dm_plan *pl, struct dm_plan_pathset *set, const char *path,
                     enum dm_plan_kind kind, const char *description, size_t *index)
{
    struct dm_plan_item *it;
    size_t slot;
    long j = dm_plan_pathset_find(set, pl, path, &slot);

    if (j >= 0) {
        *index = (size_t)j; /* de-duplicated: the earlier item wins */
        return 0;
    }
    if (pl->count >= set->cap) {
        return DM_ERR_LIMIT;
    }
    it = &pl->items[pl->count];
    it->path = strdup(path);
    it->description = strdup(description);
    it->kind = kind;
    *index = pl->count;
    pl->count++;
    if (!it->path || !it->description) {
        return DM_ERR_NOMEM;
    }
    set->slot[slot] = (unsigned short)pl->count;
    return 0;
}

/* Sets *dst to b's text (taking it); NOMEM when b failed. */
static int take_text(char **dst, struct dm_buf *b, int rc)
{
    if (rc) {
        dm_buf_free(b);
        return rc;
    }
    free(*dst);
    *dst = dm_buf_detach(b);
    return *dst ? 0 : DM_ERR_NOMEM;
}

/* ---- building ------------------------------------------------------------------------------ */

/* A new module the entry mounts or the barrel re-exports. */
struct module {
    size_t item;
    char name[DM_SLUG_MAX + 1]; /* the resource slug, or the component's name */
    char mount[MOUNT_MAX_BYTES];
};

struct build {
    struct dm_plan *pl;
    struct dm_plan_pathset *set;
    const struct dm_spec *spec;
    struct conv c;
    struct impl *impl;
    size_t n_impl;
    struct module *routes; /* new route modules */
    size_t n_routes;
    struct module *comps; /* new components */
    size_t n_comps;
};

/* A group of spec items that make one file. */
struct group {
    char name[DM_SLUG_MAX + 1];
    char mount[MOUNT_MAX_BYTES];
};

/* Finds or adds the group named name; its index. */
static size_t group_of(struct group *g, size_t *n, const char *name, const char *mount)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(g[i].name, name) == 0) {
            return i;
        }
    }
    snprintf(g[*n].name, sizeof(g[*n].name), "%s", name);
    snprintf(g[*n].mount, sizeof(g[*n].mount), "%s", mount ? mount : "");
    return (*n)++;
}

/* Appends the texts of the list's items of group gi, "; "-joined, and covers them. */
static int put_texts(struct dm_buf *b, const struct dm_spec_list *l, const size_t *owner, size_t gi)
{
    int rc = 0;
    int any = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        if (owner[i] == gi) {
            rc = dm_buf_printf(b, "%s%s", any ? "; " : "", l->items[i].text);
            any = 1;
        }
    }
    return rc;
}

static int cover_group(struct dm_plan_item *it, const struct dm_spec_list *l, const size_t *owner,
                       size_t gi)
{
    int rc = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        if (owner[i] == gi) {
            rc = plan_add_cover(it, l->items[i].text);
        }
    }
    return rc;
}

/* Pushes one file of a group; *index is its item (or the earlier one with the same path). */
static int push_group_file(struct build *bd, const char *path, enum dm_plan_kind kind,
                           const char *lead, const struct dm_spec_list *l, const size_t *owner,
                           size_t gi, size_t *index)
{
    struct dm_buf b;
    int rc;

    dm_buf_init(&b, 0);
    rc = dm_buf_puts(&b, lead);
    if (!rc) {
        rc = put_texts(&b, l, owner, gi);
    }
    if (!rc) {
        rc = push_item(bd->pl, bd->set, path, kind, b.data, index);
    }
    if (!rc) {
        rc = cover_group(&bd->pl->items[*index], l, owner, gi);
    }
    dm_buf_free(&b);
    return rc;
}

static int add_impl(struct build *bd, size_t item, int route)
{
    for (size_t i = 0; i < bd->n_impl; i++) {
        if (bd->impl[i].item == item) {
            return 0;
        }
    }
    bd->impl[bd->n_impl].item = item;
    bd->impl[bd->n_impl].route = route;
    bd->n_impl++;
    return 0;
}

/* "GET /todos, POST /todos, PATCH /todos/:id" of group gi. */
static int put_endpoints(struct dm_buf *b, const struct dm_spec_list *l, const size_t *owner,
                         size_t gi)
{
    int rc = 0;
    int any = 0;

    for (size_t i = 0; i < l->count && !rc; i++) {
        struct endpoint ep;
        int seen = 0;
        if (owner[i] != gi || !plan_endpoint_parse(l->items[i].text, &ep)) {
            continue;
        }
        for (size_t k = 0; k < i && !seen; k++) {
            struct endpoint e2;
            seen = owner[k] == gi && plan_endpoint_parse(l->items[k].text, &e2) &&
                   e2.mlen == ep.mlen && e2.plen == ep.plen &&
                   strncasecmp(e2.method, ep.method, ep.mlen) == 0 &&
                   memcmp(e2.path, ep.path, ep.plen) == 0;
        }
        if (seen) {
            continue;
        }
        rc = dm_buf_puts(b, any ? ", " : "");
        for (size_t k = 0; k < ep.mlen && !rc; k++) {
            char ch = ep.method[k];
            ch = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
            rc = dm_buf_append(b, &ch, 1);
        }
        if (!rc) {
            rc = dm_buf_printf(b, " %.*s", (int)(ep.plen > 200 ? 200 : ep.plen), ep.path);
        }
        any = 1;
    }
    if (!rc && !any) {
        rc = dm_buf_puts(b, "the routes described");
    }
    return rc;
}

/* The contract of a route module. */
static int route_contract(struct build *bd, struct dm_plan_item *it, const struct group *g,
                          const struct dm_spec_list *l, const size_t *owner, size_t gi,
                          int existing)
{
    const struct conv *c = &bd->c;
    const char *by = c->entry ? c->entry : "the app's entry";
    struct dm_buf b;
    int rc;

    dm_buf_init(&b, 0);
    switch (c->http) {
    case DM_REPO_HTTP_EXPRESS:
        rc = dm_buf_puts(&b, "default: an express.Router() with ");
        break;
    case DM_REPO_HTTP_FASTIFY:
        rc = dm_buf_puts(&b, "default: a Fastify plugin (async function (app)) with ");
        break;
    case DM_REPO_HTTP_NEXT:
        rc = dm_buf_puts(&b, "named exports, one per method (Next.js route handlers): ");
        break;
    default:
        rc = dm_buf_puts(&b, "default: a Hono app with ");
        break;
    }
    if (!rc) {
        rc = put_endpoints(&b, l, owner, gi);
    }
    rc = take_text(&it->exports, &b, rc);
    if (rc) {
        return rc;
    }
    dm_buf_init(&b, 0);
    if (existing) {
        rc = dm_buf_printf(&b, "already in the app at %s: keep every existing route and export",
                           g->mount);
    } else if (c->http == DM_REPO_HTTP_NEXT) {
        rc = dm_buf_printf(&b, "served at %s by Next.js file routing", g->mount);
    } else if (c->http == DM_REPO_HTTP_EXPRESS) {
        rc = dm_buf_printf(&b, "app.use('%s', ...) in %s", g->mount, by);
    } else if (c->http == DM_REPO_HTTP_FASTIFY) {
        rc = dm_buf_printf(&b, "app.register(..., { prefix: '%s' }) in %s", g->mount, by);
    } else {
        rc = dm_buf_printf(&b, "mounted at %s by %s", g->mount, by);
    }
    return take_text(&it->usage, &b, rc);
}

static int plan_routes(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->api_routes;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        struct endpoint ep;
        char slug[DM_SLUG_MAX + 1];
        char mount[MOUNT_MAX_BYTES];

        int is_ep = plan_endpoint_parse(l->items[i].text, &ep);

        if (is_ep && !plan_endpoint_resource(&ep, slug, mount, sizeof(mount))) {
            /* A route with no resource of ASCII letters: the root, or item-N. */
            if (ep.plen == 1) {
                snprintf(slug, sizeof(slug), "root");
                snprintf(mount, sizeof(mount), "/");
            } else {
                size_t m = 0;
                snprintf(slug, sizeof(slug), "item-%zu", i + 1);
                /* Its first segment, as the spec spells it (ASCII punctuation made '-'). */
                for (size_t k = 0; k < ep.plen && m < 64 && (k == 0 || ep.path[k] != '/'); k++) {
                    char ch = ep.path[k];
                    mount[m++] =
                        plan_is_alnum(ch) || ch == '/' || ch == '_' || ch == '.' || (ch & 0x80)
                            ? ch
                            : '-';
                }
                mount[m] = '\0';
            }
        } else if (!is_ep) {
            /* No METHOD /path: a short name from its first words. */
            char words[32];
            if (plan_words_name(words, sizeof(words), l->items[i].text, 3, '-') == 0 ||
                dm_slugify(slug, sizeof(slug), words) == 0) {
                snprintf(slug, sizeof(slug), "item-%zu", i + 1);
            }
            snprintf(mount, sizeof(mount), "/%s", slug);
        }
        owner[i] = group_of(groups, &ng, slug, mount);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        struct dm_buf path;
        struct dm_buf lead;
        size_t index;
        int existing;

        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        rc = c->http == DM_REPO_HTTP_NEXT ? dm_buf_printf(&path, "%s%s/route%s", c->routes_dir,
                                                          groups[gi].name, plan_script_ext(c))
                                          : dm_buf_printf(&path, "%s%s%s", c->routes_dir,
                                                          groups[gi].name, plan_script_ext(c));
        existing = !rc && dm_repo_has(c->repo, path.data);
        if (!rc) {
            rc = existing ? dm_buf_printf(&lead, "Add the routes of %s to this existing module: ",
                                          groups[gi].mount)
                          : dm_buf_printf(&lead, "The %s routes: ", groups[gi].mount);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data, existing ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_ROUTE,
                                 lead.data, l, owner, gi, &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].exports) {
            rc = route_contract(bd, &bd->pl->items[index], &groups[gi], l, owner, gi, existing);
            if (!rc && !existing) {
                struct module *m = &bd->routes[bd->n_routes++];
                m->item = index;
                snprintf(m->name, sizeof(m->name), "%s", groups[gi].name);
                snprintf(m->mount, sizeof(m->mount), "%s", groups[gi].mount);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 1);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

static int plan_components(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->ui_components;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        char name[NAME_MAX_BYTES];
        if (plan_component_name(name, sizeof(name), l->items[i].text) == 0) {
            snprintf(name, sizeof(name), "Item%zu", i + 1);
        }
        owner[i] = group_of(groups, &ng, name, NULL);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        const char *name = groups[gi].name;
        char file[NAME_MAX_BYTES + 8];
        struct dm_buf path;
        struct dm_buf lead;
        struct dm_buf b;
        size_t index;
        int existing;

        if (c->ccase == DM_REPO_CASE_KEBAB) {
            plan_kebab(file, sizeof(file), name);
        } else {
            snprintf(file, sizeof(file), "%s", name);
        }
        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        rc = dm_buf_printf(&path, "%s%s%s", c->components_dir, file, plan_component_ext(c));
        existing = !rc && dm_repo_has(c->repo, path.data);
        if (!rc) {
            rc = dm_buf_printf(
                &lead,
                existing ? "Change the existing %s component: " : "The %s component: ", name);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data,
                                 existing ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_COMPONENT, lead.data,
                                 l, owner, gi, &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].exports) {
            struct dm_plan_item *it = &bd->pl->items[index];
            dm_buf_init(&b, 0);
            switch (c->ui) {
            case DM_REPO_UI_VUE:
                rc = dm_buf_printf(&b, "default: the %s single-file component (Vue)", name);
                break;
            case DM_REPO_UI_SVELTE:
                rc = dm_buf_printf(&b, "default: the %s component (Svelte)", name);
                break;
            case DM_REPO_UI_PREACT:
                rc = dm_buf_printf(&b, "named export %s (Preact component)", name);
                break;
            default:
                rc = dm_buf_printf(&b, "named export %s (React component)", name);
                break;
            }
            rc = take_text(&it->exports, &b, rc);
            dm_buf_init(&b, 0);
            if (!rc) {
                rc = existing    ? dm_buf_puts(&b, "already used by the app: keep its exports")
                     : c->barrel ? dm_buf_printf(&b, "re-exported by %s", c->barrel)
                                 : dm_buf_puts(&b, "imported by the pages that show it");
                rc = take_text(&it->usage, &b, rc);
            } else {
                dm_buf_free(&b);
            }
            if (!rc && !existing) {
                struct module *m = &bd->comps[bd->n_comps++];
                m->item = index;
                snprintf(m->name, sizeof(m->name), "%s", name);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 0);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

static int plan_migrations(struct build *bd)
{
    const struct dm_spec_list *l = &bd->spec->db_changes;
    const struct conv *c = &bd->c;
    struct group *groups = calloc(l->count ? l->count : 1, sizeof(*groups));
    size_t *owner = calloc(l->count ? l->count : 1, sizeof(*owner));
    size_t ng = 0;
    int rc = 0;

    if (!groups || !owner) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        char name[NAME_MAX_BYTES];
        plan_migration_name(name, sizeof(name), l->items[i].text, i);
        owner[i] = group_of(groups, &ng, name, NULL);
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        unsigned long long number = c->last + 1 + gi;
        struct dm_buf path;
        struct dm_buf lead;
        struct dm_buf b;
        size_t index;

        dm_buf_init(&path, 0);
        dm_buf_init(&lead, 0);
        if (c->db == DM_REPO_DB_PRISMA) {
            rc = dm_buf_printf(&path, "%s%0*llu_%s/migration.sql", c->migrations_dir, (int)c->width,
                               number, groups[gi].name);
        } else {
            rc = dm_buf_printf(&path, "%s%0*llu_%s%s", c->migrations_dir, (int)c->width, number,
                               groups[gi].name,
                               c->db == DM_REPO_DB_KNEX ? plan_script_ext(c) : ".sql");
        }
        if (!rc) {
            rc = dm_buf_printf(&lead, "Migration %s: ", groups[gi].name);
        }
        if (!rc) {
            rc = push_group_file(bd, path.data, DM_PLAN_KIND_MIGRATION, lead.data, l, owner, gi,
                                 &index);
        }
        if (!rc && index + 1 == bd->pl->count && !bd->pl->items[index].usage) {
            struct dm_plan_item *it = &bd->pl->items[index];
            if (c->db == DM_REPO_DB_KNEX) {
                dm_buf_init(&b, 0);
                rc = take_text(&it->exports, &b,
                               dm_buf_puts(&b, "up(knex) and down(knex), as Knex migrations do"));
            }
            dm_buf_init(&b, 0);
            if (!rc) {
                rc = take_text(&it->usage, &b,
                               c->db == DM_REPO_DB_KNEX
                                   ? dm_buf_puts(&b, "run by knex migrate:latest after the "
                                                     "existing migrations")
                                   : dm_buf_puts(&b, "applied in order after the existing "
                                                     "migrations"));
            } else {
                dm_buf_free(&b);
            }
        }
        if (!rc && index > 0) {
            rc = add_impl(bd, index, 0);
        }
        dm_buf_free(&path);
        dm_buf_free(&lead);
    }
out:
    free(groups);
    free(owner);
    return rc;
}

/* A test next to each new route module (or in the tests folder) when there is a test runner. */
static int plan_tests(struct build *bd)
{
    const struct conv *c = &bd->c;
    int rc = 0;

    if (c->test == DM_REPO_TEST_NONE) {
        return 0;
    }
    for (size_t i = 0; i < bd->n_routes && !rc; i++) {
        const struct dm_plan_item *mod = &bd->pl->items[bd->routes[i].item];
        const char *mpath = mod->path;
        const char *slash = strrchr(mpath, '/');
        struct dm_buf path;
        struct dm_buf d;
        size_t index;

        dm_buf_init(&path, 0);
        dm_buf_init(&d, 0);
        if (c->tests_dir) {
            rc = dm_buf_printf(&path, "%s%s.test%s", c->tests_dir, bd->routes[i].name,
                               plan_script_ext(c));
        } else if (c->http == DM_REPO_HTTP_NEXT) {
            rc = dm_buf_printf(&path, "%.*sroute.test%s", (int)(slash - mpath + 1), mpath,
                               plan_script_ext(c));
        } else {
            rc = dm_buf_printf(&path, "%s%s.test%s", c->routes_dir, bd->routes[i].name,
                               plan_script_ext(c));
        }
        if (!rc) {
            rc = dm_buf_printf(&d, "Tests of %s with %s: each endpoint's success and error cases (",
                               mpath, dm_repo_test_name(c->test));
        }
        if (!rc) {
            const char *ex = mod->exports ? strstr(mod->exports, " with ") : NULL;
            rc = dm_buf_printf(&d, "%s)", ex ? ex + 6 : bd->routes[i].mount);
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, path.data,
                           dm_repo_has(c->repo, path.data) ? DM_PLAN_KIND_EDIT : DM_PLAN_KIND_TEST,
                           d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_printf(&b, "run by %s", dm_repo_test_name(c->test)));
        }
        dm_buf_free(&path);
        dm_buf_free(&d);
    }
    return rc;
}

/* Edits of the entry (mount the new route modules) and the barrel (re-export the new
 * components), when the base has them. */
static int plan_edits(struct build *bd)
{
    const struct conv *c = &bd->c;
    struct dm_buf d;
    size_t index;
    int rc = 0;

    dm_buf_init(&d, 0);
    if (bd->n_routes && c->entry && c->http != DM_REPO_HTTP_NEXT) {
        rc = dm_buf_puts(&d, "Mount the new route modules and keep every existing line: ");
        for (size_t i = 0; i < bd->n_routes && !rc; i++) {
            const struct module *m = &bd->routes[i];
            rc = dm_buf_puts(&d, i ? "; import " : "import ");
            if (!rc) {
                rc = plan_put_ident(&d, m->name, "Routes");
            }
            if (!rc) {
                rc = dm_buf_puts(&d, " from '");
            }
            if (!rc) {
                rc = plan_put_import(&d, c->entry, bd->pl->items[m->item].path, 0);
            }
            if (!rc) {
                rc = dm_buf_puts(&d, "' and ");
            }
            if (!rc) {
                rc = c->http == DM_REPO_HTTP_EXPRESS ? dm_buf_printf(&d, "app.use('%s', ", m->mount)
                     : c->http == DM_REPO_HTTP_FASTIFY
                         ? dm_buf_puts(&d, "app.register(")
                         : dm_buf_printf(&d, "app.route('%s', ", m->mount);
            }
            if (!rc) {
                rc = plan_put_ident(&d, m->name, "Routes");
            }
            if (!rc) {
                rc = c->http == DM_REPO_HTTP_FASTIFY
                         ? dm_buf_printf(&d, ", { prefix: '%s' })", m->mount)
                         : dm_buf_puts(&d, ")");
            }
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, c->entry, DM_PLAN_KIND_EDIT, d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_puts(&b, "the app's entry: every existing export and route "
                                           "registration stays"));
        }
    }
    dm_buf_reset(&d);
    if (!rc && bd->n_comps && c->barrel) {
        int keep_ext = c->ui == DM_REPO_UI_VUE || c->ui == DM_REPO_UI_SVELTE;
        rc = dm_buf_puts(&d, "Re-export the new components and keep every existing export: ");
        for (size_t i = 0; i < bd->n_comps && !rc; i++) {
            const struct module *m = &bd->comps[i];
            rc = keep_ext ? dm_buf_printf(&d, "%sexport { default as %s } from '", i ? "; " : "",
                                          m->name)
                          : dm_buf_printf(&d, "%sexport { %s } from '", i ? "; " : "", m->name);
            if (!rc) {
                rc = plan_put_import(&d, c->barrel, bd->pl->items[m->item].path, keep_ext);
            }
            if (!rc) {
                rc = dm_buf_puts(&d, "'");
            }
        }
        if (!rc) {
            rc = push_item(bd->pl, bd->set, c->barrel, DM_PLAN_KIND_EDIT, d.data, &index);
        }
        if (!rc && index + 1 == bd->pl->count) {
            struct dm_buf b;
            dm_buf_init(&b, 0);
            rc = take_text(&bd->pl->items[index].usage, &b,
                           dm_buf_puts(&b, "the components' index: every existing export stays"));
        }
    }
    dm_buf_free(&d);
    return rc;
}

int dm_plan_build(struct dm_plan **out, const struct dm_spec *spec, const char *branch_prefix,
                  const struct dm_repo *repo, struct dm_error *err)
{
    struct dm_plan *pl;
    struct build bd;
    struct dm_buf b;
    char slug[DM_SLUG_MAX + 1];
    char path[sizeof(slug) + sizeof(DM_PLAN_SPEC_DIR) + 4];
    struct dm_plan_pathset *set = calloc(1, sizeof(*set));
    size_t n_api = spec->api_routes.count;
    size_t n_ui = spec->ui_components.count;
    size_t n_db = spec->db_changes.count;
    size_t index;
    int rc = 0;

    *out = NULL;
    memset(&bd, 0, sizeof(bd));
    dm_buf_init(&b, 0);
    if (!set) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory building the plan");
    }
    /* Allocated once: the spec document, a file per item at most, a test per route module, the
     * entry and the barrel. */
    set->cap = 1 + 2 * n_api + n_ui + n_db + 2;
    if (set->cap > DM_PLAN_MAX_ITEMS) {
        set->cap = DM_PLAN_MAX_ITEMS;
    }
    if (!branch_prefix) {
        branch_prefix = DM_PLAN_DEFAULT_PREFIX;
    }
    pl = calloc(1, sizeof(*pl));
    if (pl) {
        pl->items = calloc(set->cap, sizeof(*pl->items));
    }
    bd.impl = calloc(n_api + n_ui + n_db + 1, sizeof(*bd.impl));
    bd.routes = calloc(n_api + 1, sizeof(*bd.routes));
    bd.comps = calloc(n_ui + 1, sizeof(*bd.comps));
    if (!pl || !pl->items || !bd.impl || !bd.routes || !bd.comps) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (dm_slugify(slug, sizeof(slug), spec->title) == 0) {
        snprintf(slug, sizeof(slug), "spec");
    }
    pl->title = strdup(spec->title);
    if (!pl->title) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    rc = dm_buf_printf(&b, "%s%s", branch_prefix, slug);
    if (rc) {
        goto out;
    }
    pl->branch = dm_buf_detach(&b);
    if (!pl->branch) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (!dm_refname_valid(pl->branch)) {
        rc = dm_error_set(err, DM_ERR_INVALID,
                          "branch \"%.300s\" (prefix \"%.200s\") is not a valid git branch name",
                          pl->branch, branch_prefix);
        goto out;
    }
    rc = dm_buf_printf(&b, "[Dream] %s", spec->title);
    if (rc) {
        goto out;
    }
    pl->pr_title = dm_buf_detach(&b);
    if (!pl->pr_title) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (repo) {
        pl->stack = dm_stack_describe(&repo->stack);
        if (!pl->stack) {
            rc = DM_ERR_NOMEM;
            goto out;
        }
    }
    bd.pl = pl;
    bd.set = set;
    bd.spec = spec;
    plan_conv_init(&bd.c, repo);
    snprintf(path, sizeof(path), "%s%s.md", DM_PLAN_SPEC_DIR, slug);
    rc = dm_buf_printf(&b, "Spec: %s", spec->title);
    if (!rc) {
        rc = push_item(pl, set, path, DM_PLAN_KIND_SPEC, b.data, &index);
    }
    if (!rc) {
        rc = plan_routes(&bd);
    }
    if (!rc) {
        rc = plan_components(&bd);
    }
    if (!rc) {
        rc = plan_migrations(&bd);
    }
    if (!rc) {
        rc = plan_tests(&bd);
    }
    if (!rc) {
        rc = plan_edits(&bd);
    }
    if (!rc) {
        rc = plan_cover_requirements(pl, spec, bd.impl, bd.n_impl);
    }
    if (rc == DM_ERR_LIMIT) {
        dm_error_set(err, rc, "plan has more than %d items", DM_PLAN_MAX_ITEMS);
    } else if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, rc, "out of memory building the plan");
    }
    if (rc) {
        goto out;
    }
    *out = pl;
    pl = NULL;
out:
    free(set);
    free(bd.impl);
    free(bd.routes);
    free(bd.comps);
    dm_buf_free(&b);
    dm_plan_free(pl);
    return rc;
}
