/*
 * auth: trust levels and HS256 JWT verification, and the binding of a token to a job's content
 * (see include/dream/domain/auth.h).
 *
 * Owns nothing long-lived: every call decodes into its own buffers and frees them before
 * returning. Pure (libcrypto for HMAC-SHA256, base64 and constant-time compare; cJSON for the
 * JSON segments); safe on any thread. No message ever quotes the token or a secret.
 */
#include "dream/domain/auth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SHA256_LEN 32

static const char *const trust_names[] = {"observer", "planner", "builder", "shipper"};

int dm_trust_parse(enum dm_trust *out, const char *s)
{
    if (!s) {
        return DM_ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof(trust_names) / sizeof(trust_names[0]); i++) {
        if (strcmp(s, trust_names[i]) == 0) {
            if (out) {
                *out = (enum dm_trust)i;
            }
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

const char *dm_trust_name(enum dm_trust t)
{
    if ((int)t < 0 || (size_t)t >= sizeof(trust_names) / sizeof(trust_names[0])) {
        return "unknown";
    }
    return trust_names[t];
}

enum dm_trust_action dm_trust_decide(enum dm_trust t, int workflows_allowed)
{
    switch (t) {
    case DM_TRUST_PLANNER:
        return DM_TRUST_ACTION_DRY_RUN;
    case DM_TRUST_BUILDER:
        return DM_TRUST_ACTION_BUILD;
    case DM_TRUST_SHIPPER:
        return workflows_allowed ? DM_TRUST_ACTION_BUILD_WORKFLOWS : DM_TRUST_ACTION_BUILD;
    case DM_TRUST_OBSERVER:
    default:
        return DM_TRUST_ACTION_REFUSE;
    }
}

const char *dm_trust_action_name(enum dm_trust_action a)
{
    switch (a) {
    case DM_TRUST_ACTION_DRY_RUN:
        return "dry-run";
    case DM_TRUST_ACTION_BUILD:
        return "build";
    case DM_TRUST_ACTION_BUILD_WORKFLOWS:
        return "build+workflows";
    case DM_TRUST_ACTION_REFUSE:
    default:
        return "refuse";
    }
}

/* ---- base64url --------------------------------------------------------------------------- */

static int b64url_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

/* Decodes unpadded base64url [s, s + n) into a new buffer (NUL-terminated for JSON use).
 * Refuses other characters, '=' padding, impossible lengths and non-canonical trailing bits, so
 * one byte string has exactly one encoding. Returns 0, DM_ERR_INVALID or DM_ERR_NOMEM. */
static int b64url_decode(unsigned char **out, size_t *outlen, const char *s, size_t n)
{
    size_t pad = (4 - n % 4) % 4;
    char *std = NULL;
    unsigned char *bin = NULL;
    int rc = DM_ERR_INVALID;
    int got;

    *out = NULL;
    *outlen = 0;
    if (n == 0 || n % 4 == 1 || n > DM_AUTH_TOKEN_MAX) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (b64url_char((unsigned char)s[i]) < 0) {
            goto out;
        }
    }
    /* The last character's unused low bits must be zero (canonical encoding). */
    if (pad == 2 && (b64url_char((unsigned char)s[n - 1]) & 0x0f) != 0) {
        goto out;
    }
    if (pad == 1 && (b64url_char((unsigned char)s[n - 1]) & 0x03) != 0) {
        goto out;
    }
    std = malloc(n + pad + 1);
    bin = malloc((n + pad) / 4 * 3 + 1);
    if (!std || !bin) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    memset(std + n, '=', pad);
    std[n + pad] = '\0';
    got = EVP_DecodeBlock(bin, (const unsigned char *)std, (int)(n + pad));
    if (got < 0 || (size_t)got < pad) {
        goto out;
    }
    /* EVP_DecodeBlock counts the bytes the '=' padding stands for; drop them. */
    *outlen = (size_t)got - pad;
    bin[*outlen] = '\0';
    *out = bin;
    bin = NULL;
    rc = 0;
out:
    free(std);
    free(bin);
    return rc;
}

/* Encodes n bytes as unpadded base64url, appended at dst (which has room for 4*ceil(n/3)+1).
 * Returns the characters written (NUL-terminated). */
static size_t b64url_encode(char *dst, const unsigned char *src, size_t n)
{
    int len = EVP_EncodeBlock((unsigned char *)dst, src, (int)n);
    size_t m = (size_t)len;

    while (m > 0 && dst[m - 1] == '=') {
        m--;
    }
    for (size_t i = 0; i < m; i++) {
        if (dst[i] == '+') {
            dst[i] = '-';
        } else if (dst[i] == '/') {
            dst[i] = '_';
        }
    }
    dst[m] = '\0';
    return m;
}

/* ---- verification ------------------------------------------------------------------------ */

static int refuse(struct dm_error *err, const char *rule)
{
    return dm_error_set(err, DM_ERR_AUTH, "token: %s", rule);
}

/* Reads a NumericDate claim. Returns 1 present and valid, 0 absent, -1 present but invalid. */
static int get_date(const cJSON *obj, const char *name, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it) {
        return 0;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        return -1;
    }
    *out = it->valuedouble;
    return 1;
}

static int64_t clamp_i64(double d)
{
    if (d >= 9.2e18) {
        return INT64_MAX;
    }
    if (d <= -9.2e18) {
        return INT64_MIN;
    }
    return (int64_t)d;
}

/* Copies a required non-empty string claim. Returns 0 or DM_ERR_AUTH. */
static int get_string(char *dst, const cJSON *obj, const char *name, struct dm_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    size_t n;

    if (!it) {
        return dm_error_set(err, DM_ERR_AUTH, "token: %s missing", name);
    }
    if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0]) {
        return dm_error_set(err, DM_ERR_AUTH, "token: %s must be a non-empty string", name);
    }
    n = strlen(it->valuestring);
    if (n > DM_AUTH_CLAIM_MAX) {
        return dm_error_set(err, DM_ERR_AUTH, "token: %s longer than %d bytes", name,
                            DM_AUTH_CLAIM_MAX);
    }
    memcpy(dst, it->valuestring, n + 1);
    return 0;
}

static int check_header(const unsigned char *json, size_t len, struct dm_error *err)
{
    cJSON *h = cJSON_ParseWithLength((const char *)json, len);
    const cJSON *alg;
    const cJSON *typ;
    int rc;

    if (!h || !cJSON_IsObject(h)) {
        rc = refuse(err, "malformed (header is not a JSON object)");
        goto out;
    }
    alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0) {
        rc = refuse(err, "alg must be HS256");
        goto out;
    }
    typ = cJSON_GetObjectItemCaseSensitive(h, "typ");
    if (typ && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0)) {
        rc = refuse(err, "typ must be JWT");
        goto out;
    }
    /* We implement no extensions, so a token that requires one must be refused (RFC 7515). */
    if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        rc = refuse(err, "crit header not supported");
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(h);
    return rc;
}

/* Constant-time over the secrets too: every secret is tried, whichever matches. */
static int signature_matches(const struct dm_auth_config *cfg, const char *signed_part,
                             size_t signed_len, const unsigned char *sig, size_t sig_len)
{
    int match = 0;

    if (sig_len != SHA256_LEN) {
        return 0;
    }
    for (size_t i = 0; i < cfg->n_secrets; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        const char *secret = cfg->secrets[i];

        if (!secret || !secret[0]) {
            continue;
        }
        if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signed_part,
                  signed_len, mac, &mac_len) ||
            mac_len != SHA256_LEN) {
            continue;
        }
        match |= CRYPTO_memcmp(mac, sig, SHA256_LEN) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
    }
    return match;
}

static int usable_secrets(const struct dm_auth_config *cfg)
{
    for (size_t i = 0; cfg->secrets && i < cfg->n_secrets; i++) {
        if (cfg->secrets[i] && cfg->secrets[i][0]) {
            return 1;
        }
    }
    return 0;
}

/* `aud` (RFC 7519 4.1.3): one string, or an array of strings; it must name audience. */
static int check_audience(const cJSON *p, const char *audience, struct dm_error *err)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(p, "aud");
    const cJSON *it;

    if (!aud) {
        return refuse(err, "aud missing");
    }
    if (cJSON_IsString(aud)) {
        return strcmp(aud->valuestring, audience) == 0
                   ? 0
                   : refuse(err, "aud does not name this worker");
    }
    if (!cJSON_IsArray(aud)) {
        return refuse(err, "aud must be a string or an array of strings");
    }
    cJSON_ArrayForEach(it, aud)
    {
        if (!cJSON_IsString(it)) {
            return refuse(err, "aud must be a string or an array of strings");
        }
        if (strcmp(it->valuestring, audience) == 0) {
            return 0;
        }
    }
    return refuse(err, "aud does not name this worker");
}

/* Optional `dreamJobSha256`: exactly 64 lowercase hex digits (one spelling per digest, so the
 * comparison with the job's digest is a plain string compare). */
static int get_job_sha256(struct dm_auth_claims *c, const cJSON *p, struct dm_error *err)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(p, DM_AUTH_JOB_SHA256_CLAIM);
    const char *v;

    c->job_sha256[0] = '\0';
    if (!h) {
        return 0;
    }
    v = cJSON_IsString(h) ? h->valuestring : NULL;
    if (!v || strlen(v) != DM_AUTH_SHA256_HEX_LEN ||
        strspn(v, "0123456789abcdef") != DM_AUTH_SHA256_HEX_LEN) {
        return refuse(err, DM_AUTH_JOB_SHA256_CLAIM " must be 64 lowercase hex digits");
    }
    memcpy(c->job_sha256, v, DM_AUTH_SHA256_HEX_LEN + 1);
    return 0;
}

static int check_claims(struct dm_auth_claims *c, const unsigned char *json, size_t len,
                        const struct dm_auth_config *cfg, int64_t now_s, struct dm_error *err)
{
    cJSON *p = cJSON_ParseWithLength((const char *)json, len);
    const char *issuer = cfg->issuer ? cfg->issuer : DM_AUTH_DEFAULT_ISSUER;
    double leeway = cfg->leeway_s > 0 ? (double)cfg->leeway_s : 0.0;
    double now = (double)now_s;
    double exp = 0, nbf = 0, iat = 0;
    const cJSON *trust;
    int r;
    int rc;

    if (!p || !cJSON_IsObject(p)) {
        rc = refuse(err, "malformed (payload is not a JSON object)");
        goto out;
    }
    rc = get_string(c->iss, p, "iss", err);
    if (rc) {
        goto out;
    }
    if (strcmp(c->iss, issuer) != 0) {
        rc = dm_error_set(err, DM_ERR_AUTH, "token: iss must be \"%s\"", issuer);
        goto out;
    }
    r = get_date(p, "exp", &exp);
    if (r == 0) {
        rc = refuse(err, "exp missing");
        goto out;
    }
    if (r < 0) {
        rc = refuse(err, "exp must be a finite number");
        goto out;
    }
    if (now >= exp + leeway) {
        rc = refuse(err, "expired");
        goto out;
    }
    c->exp = clamp_i64(exp);
    r = get_date(p, "nbf", &nbf);
    if (r < 0) {
        rc = refuse(err, "nbf must be a finite number");
        goto out;
    }
    if (r > 0 && now + leeway < nbf) {
        rc = refuse(err, "not yet valid (nbf)");
        goto out;
    }
    c->has_nbf = r > 0;
    c->nbf = r > 0 ? clamp_i64(nbf) : 0;
    r = get_date(p, "iat", &iat);
    if (r < 0) {
        rc = refuse(err, "iat must be a finite number");
        goto out;
    }
    if (r > 0 && iat > now + leeway) {
        rc = refuse(err, "iat is in the future");
        goto out;
    }
    c->has_iat = r > 0;
    c->iat = r > 0 ? clamp_i64(iat) : 0;
    if (cfg->max_ttl_s > 0) {
        /* Without iat a token's lifetime is unknown, so a capped lifetime needs it. */
        if (!c->has_iat) {
            rc = refuse(err, "iat required (token lifetime is capped)");
            goto out;
        }
        if (exp - iat > (double)cfg->max_ttl_s) {
            rc = dm_error_set(err, DM_ERR_AUTH, "token: lifetime (exp - iat) longer than %lld s",
                              (long long)cfg->max_ttl_s);
            goto out;
        }
    }
    if (cfg->audience && cfg->audience[0]) {
        rc = check_audience(p, cfg->audience, err);
        if (rc) {
            goto out;
        }
    }
    rc = get_string(c->sub, p, "sub", err);
    if (rc) {
        goto out;
    }
    rc = get_string(c->jti, p, "jti", err);
    if (rc) {
        goto out;
    }
    trust = cJSON_GetObjectItemCaseSensitive(p, "dreamTrustLevel");
    if (trust) {
        if (!cJSON_IsString(trust) || dm_trust_parse(&c->trust, trust->valuestring) != 0) {
            rc = refuse(err, "dreamTrustLevel must be one of observer, planner, builder, shipper");
            goto out;
        }
        c->trust_set = 1;
    }
    rc = get_job_sha256(c, p, err);
out:
    cJSON_Delete(p);
    return rc;
}

int dm_auth_verify(struct dm_auth_claims *out, const char *token, size_t len,
                   const struct dm_auth_config *cfg, int64_t now_s, struct dm_error *err)
{
    struct dm_auth_claims c;
    const char *dot1;
    const char *dot2;
    unsigned char *header = NULL;
    unsigned char *payload = NULL;
    unsigned char *sig = NULL;
    size_t header_len, payload_len, sig_len;
    int rc;

    memset(&c, 0, sizeof(c));
    if (!cfg || !usable_secrets(cfg)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "token: no signing secret configured");
        goto out;
    }
    if (!token || len == 0) {
        rc = refuse(err, "missing");
        goto out;
    }
    if (len > DM_AUTH_TOKEN_MAX) {
        rc = dm_error_set(err, DM_ERR_AUTH, "token: longer than %d bytes", DM_AUTH_TOKEN_MAX);
        goto out;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        rc = refuse(err, "malformed (expected three dot-separated segments)");
        goto out;
    }
    rc = b64url_decode(&header, &header_len, token, (size_t)(dot1 - token));
    if (rc) {
        rc = rc == DM_ERR_NOMEM ? rc : refuse(err, "malformed (header is not base64url)");
        goto out;
    }
    rc = check_header(header, header_len, err);
    if (rc) {
        goto out;
    }
    rc = b64url_decode(&sig, &sig_len, dot2 + 1, len - (size_t)(dot2 + 1 - token));
    if (rc) {
        rc = rc == DM_ERR_NOMEM ? rc : refuse(err, "malformed (signature is not base64url)");
        goto out;
    }
    if (!signature_matches(cfg, token, (size_t)(dot2 - token), sig, sig_len)) {
        rc = refuse(err, "signature does not match");
        goto out;
    }
    rc = b64url_decode(&payload, &payload_len, dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (rc) {
        rc = rc == DM_ERR_NOMEM ? rc : refuse(err, "malformed (payload is not base64url)");
        goto out;
    }
    rc = check_claims(&c, payload, payload_len, cfg, now_s, err);
    if (rc) {
        goto out;
    }
    if (out) {
        *out = c;
    }
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, DM_ERR_NOMEM, "token: out of memory");
    }
    free(header);
    free(payload);
    free(sig);
    return rc;
}

int dm_auth_verify_job(struct dm_auth_claims *out, const char *token, size_t len,
                       const struct dm_auth_config *cfg, const char *job_id, const char *user_id,
                       int64_t now_s, struct dm_error *err)
{
    struct dm_auth_claims c;
    int rc = dm_auth_verify(&c, token, len, cfg, now_s, err);

    if (rc) {
        return rc;
    }
    if (!job_id || strcmp(c.jti, job_id) != 0) {
        return refuse(err, "jti does not match jobId");
    }
    if (!user_id || strcmp(c.sub, user_id) != 0) {
        return refuse(err, "sub does not match userId");
    }
    if (out) {
        *out = c;
    }
    return 0;
}

int dm_auth_verify_bound_job(struct dm_auth_claims *out, const char *token, size_t len,
                             const struct dm_auth_config *cfg, const struct dm_auth_binding *b,
                             int64_t now_s, struct dm_error *err)
{
    struct dm_auth_claims c;
    int rc = dm_auth_verify_job(&c, token, len, cfg, b ? b->job_id : NULL, b ? b->user_id : NULL,
                                now_s, err);

    if (rc) {
        return rc;
    }
    if (!c.job_sha256[0]) {
        return refuse(err, DM_AUTH_JOB_SHA256_CLAIM " missing (the token must bind the job)");
    }
    if (!b->job_sha256 || strcmp(c.job_sha256, b->job_sha256) != 0) {
        return refuse(err, DM_AUTH_JOB_SHA256_CLAIM " does not match the job");
    }
    if (!c.trust_set) {
        return refuse(
            err, "dreamTrustLevel missing (a signed job takes its trust level from its token)");
    }
    if (out) {
        *out = c;
    }
    return 0;
}

int dm_auth_sign_hs256(char **out, const char *payload_json, const char *secret,
                       struct dm_error *err)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    cJSON *check = NULL;
    char *tok = NULL;
    size_t plen, cap, n;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int rc;

    *out = NULL;
    if (!secret || !secret[0]) {
        rc = dm_error_set(err, DM_ERR_INVALID, "sign: empty secret");
        goto out;
    }
    check = payload_json ? cJSON_Parse(payload_json) : NULL;
    if (!check || !cJSON_IsObject(check)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "sign: payload must be a JSON object");
        goto out;
    }
    plen = strlen(payload_json);
    cap = (sizeof(header) + 2) / 3 * 4 + (plen + 2) / 3 * 4 + (SHA256_LEN + 2) / 3 * 4 + 8;
    tok = malloc(cap);
    if (!tok) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "sign: out of memory");
        goto out;
    }
    n = b64url_encode(tok, (const unsigned char *)header, sizeof(header) - 1);
    tok[n++] = '.';
    n += b64url_encode(tok + n, (const unsigned char *)payload_json, plen);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, n, mac,
              &mac_len)) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "sign: HMAC failed");
        goto out;
    }
    tok[n++] = '.';
    b64url_encode(tok + n, mac, mac_len);
    OPENSSL_cleanse(mac, sizeof(mac));
    *out = tok;
    tok = NULL;
    rc = 0;
out:
    cJSON_Delete(check);
    free(tok);
    return rc;
}
