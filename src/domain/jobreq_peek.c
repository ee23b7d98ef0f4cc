/*
 * jobreq_peek: the jobId of an entry's job text that may not even be JSON, found without
 * parsing the whole job (see dm_jobreq_peek_id in include/dream/domain/jobreq.h). A small scanner
 * that reads strings the way cJSON does, so peek and parse agree on what a jobId is; the engine
 * uses it to name the job of an entry it cannot parse. Pure; any thread.
 */
#include "dream/domain/jobreq.h"

#include <stddef.h>
#include <string.h>

/* ASCII only, whatever the locale. */
static int is_ascii_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

struct scan {
    const char *p;
    const char *end;
};

/* Like cJSON (so peek and parse agree): every control byte and space counts as whitespace. */
static void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end && (unsigned char)*sc->p <= 0x20 && *sc->p) {
        sc->p++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Reads a JSON string at sc->p (which is at '"'). Decodes into dst (cap bytes including NUL)
 * when dst is non-NULL; non-ASCII escapes decode to 0x80 (never a valid id byte). Sets
 * *overflow when the decoded text did not fit. Returns 0, or -1 when the text breaks. */
static int scan_string(struct scan *sc, char *dst, size_t cap, int *overflow)
{
    size_t n = 0;

    if (sc->p >= sc->end || *sc->p != '"') {
        return -1;
    }
    sc->p++;
    *overflow = 0;
    while (sc->p < sc->end) {
        char c = *sc->p++;
        char d;
        if (c == '"') {
            if (dst) {
                dst[n] = '\0';
            }
            return 0;
        }
        if ((unsigned char)c < 0x20) {
            return -1;
        }
        d = c;
        if (c == '\\') {
            if (sc->p >= sc->end) {
                return -1;
            }
            c = *sc->p++;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                d = c;
                break;
            case 'b':
                d = '\b';
                break;
            case 'f':
                d = '\f';
                break;
            case 'n':
                d = '\n';
                break;
            case 'r':
                d = '\r';
                break;
            case 't':
                d = '\t';
                break;
            case 'u': {
                int v = 0;
                if (sc->end - sc->p < 4) {
                    return -1;
                }
                for (int k = 0; k < 4; k++) {
                    int h = hexval(sc->p[k]);
                    if (h < 0) {
                        return -1;
                    }
                    v = v * 16 + h;
                }
                sc->p += 4;
                d = v > 0 && v < 0x80 ? (char)v : (char)0x80;
                break;
            }
            default:
                return -1;
            }
        }
        if (dst) {
            if (n + 1 < cap) {
                dst[n++] = d;
            } else {
                *overflow = 1;
            }
        }
    }
    return -1;
}

/* Skips one JSON value without checking its inner structure. Returns 0 or -1. */
static int skip_value(struct scan *sc)
{
    int depth = 0;
    int overflow;

    skip_ws(sc);
    if (sc->p >= sc->end) {
        return -1;
    }
    if (*sc->p != '{' && *sc->p != '[') {
        if (*sc->p == '"') {
            return scan_string(sc, NULL, 0, &overflow);
        }
        const char *start = sc->p;
        while (sc->p < sc->end && *sc->p &&
               (is_ascii_alnum((unsigned char)*sc->p) || strchr("+-.", *sc->p))) {
            sc->p++;
        }
        return sc->p > start ? 0 : -1;
    }
    while (sc->p < sc->end) {
        char c = *sc->p;
        if (c == '"') {
            if (scan_string(sc, NULL, 0, &overflow) != 0) {
                return -1;
            }
            continue;
        }
        sc->p++;
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                return 0;
            }
        }
    }
    return -1;
}

int dm_jobreq_peek_id(char *out, size_t outlen, const char *json, size_t len)
{
    struct scan sc = {json, json ? json + len : NULL};
    char key[8];
    char id[DM_JOBREQ_ID_MAX + 2];
    int overflow;

    if (outlen) {
        out[0] = '\0';
    }
    if (!json) {
        return DM_ERR_NOTFOUND;
    }
    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != '{') {
        return DM_ERR_NOTFOUND;
    }
    sc.p++;
    for (;;) {
        skip_ws(&sc);
        if (scan_string(&sc, key, sizeof(key), &overflow) != 0) {
            return DM_ERR_NOTFOUND;
        }
        skip_ws(&sc);
        if (sc.p >= sc.end || *sc.p != ':') {
            return DM_ERR_NOTFOUND;
        }
        sc.p++;
        skip_ws(&sc);
        if (!overflow && strcmp(key, "jobId") == 0) {
            if (sc.p >= sc.end || *sc.p != '"') {
                return DM_ERR_INVALID;
            }
            if (scan_string(&sc, id, sizeof(id), &overflow) != 0 || overflow ||
                !dm_jobreq_id_valid(id)) {
                return DM_ERR_INVALID;
            }
            if (strlen(id) + 1 > outlen) {
                return DM_ERR_LIMIT;
            }
            memcpy(out, id, strlen(id) + 1);
            return 0;
        }
        if (skip_value(&sc) != 0) {
            return DM_ERR_NOTFOUND;
        }
        skip_ws(&sc);
        if (sc.p >= sc.end || *sc.p != ',') {
            return DM_ERR_NOTFOUND;
        }
        sc.p++;
    }
}
