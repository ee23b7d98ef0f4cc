/* Unit tests for auth: trust levels and HS256 JWT verification. Tokens are built here with
 * OpenSSL directly (independently of dm_auth_sign_hs256), so a bug in the signer cannot hide a
 * bug in the verifier. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dream/domain/auth.h"

#define NOW 1900000000LL
#define SECRET "s3cret-current"
#define OLD_SECRET "s3cret-previous"

static char *b64url(const void *data, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    for (int i = 0; i < len; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[len] = '\0';
    return out;
}

/* header.payload.signature with the given digest (NULL digest: empty signature). */
static char *make_token(const char *header, const char *payload, const char *secret,
                        const EVP_MD *md)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *signing = malloc(n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *s;
    char *tok;

    snprintf(signing, n, "%s.%s", h, p);
    if (md) {
        HMAC(md, secret, (int)strlen(secret), (unsigned char *)signing, strlen(signing), mac,
             &mac_len);
    }
    s = b64url(mac, mac_len);
    tok = malloc(strlen(signing) + strlen(s) + 2);
    sprintf(tok, "%s.%s", signing, s);
    free(h);
    free(p);
    free(s);
    free(signing);
    return tok;
}

static const char *HS256_HDR = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *claims(const char *extra_or_override)
{
    /* A complete, valid claim set; tests that need a different one pass their own. */
    char *buf = malloc(1024);
    snprintf(buf, 1024,
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"iat\":%lld,"
             "\"exp\":%lld,\"dreamTrustLevel\":\"builder\"%s}",
             NOW - 10, NOW + 600, extra_or_override ? extra_or_override : "");
    return buf;
}

static struct dm_auth_config config(void)
{
    static const char *const secrets[] = {SECRET, OLD_SECRET};
    struct dm_auth_config c = DM_AUTH_CONFIG_INIT;
    c.secrets = secrets;
    c.n_secrets = 2;
    return c;
}

struct vector {
    const char *name;
    const char *header;  /* NULL: HS256 header */
    const char *payload; /* NULL: claims(NULL) */
    const char *secret;  /* NULL: SECRET */
    int alg;             /* 0 sha256, 1 sha512, 2 none (empty signature) */
    int expect;          /* return code */
    const char *msg;     /* substring of err.msg, or NULL */
};

#define T(tail) "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\"" tail "}"

static void run_vector(const struct vector *v)
{
    struct dm_auth_config cfg = config();
    struct dm_auth_claims c;
    struct dm_error err;
    char *payload = v->payload ? strdup(v->payload) : claims(NULL);
    const EVP_MD *md = v->alg == 0 ? EVP_sha256() : v->alg == 1 ? EVP_sha512() : NULL;
    char *tok =
        make_token(v->header ? v->header : HS256_HDR, payload, v->secret ? v->secret : SECRET, md);
    int rc;

    memset(&c, 0, sizeof(c));
    dm_error_clear(&err);
    rc = dm_auth_verify_job(&c, tok, strlen(tok), &cfg, "job-1", "user-1", NOW, &err);
    cr_expect_eq(rc, v->expect, "%s: rc %d (%s), expected %d", v->name, rc, err.msg, v->expect);
    if (v->msg) {
        cr_expect(strstr(err.msg, v->msg) != NULL, "%s: message \"%s\" lacks \"%s\"", v->name,
                  err.msg, v->msg);
    }
    /* Never echo the token or a secret. */
    cr_expect(strstr(err.msg, SECRET) == NULL && strstr(err.msg, OLD_SECRET) == NULL, "%s",
              v->name);
    cr_expect(strstr(err.msg, tok) == NULL, "%s", v->name);
    {
        char seg[9];
        snprintf(seg, sizeof(seg), "%s", tok);
        cr_expect(strstr(err.msg, seg) == NULL, "%s: message quotes the token", v->name);
    }
    free(tok);
    free(payload);
}

Test(auth, jwt_vectors)
{
    char exp_past[256], exp_leeway[256], exp_edge[256], iat_future[256], iat_leeway[256];
    char nbf_future[256], nbf_leeway[256], no_exp[256], bad_exp[256], no_sub[256], no_jti[256];
    char wrong_jti[256], wrong_sub[256], bad_trust[256], no_iss[256], wrong_iss[256];
    char num_sub[256];

    snprintf(exp_past, sizeof(exp_past), T(",\"exp\":%lld"), NOW - 61);
    snprintf(exp_leeway, sizeof(exp_leeway), T(",\"exp\":%lld"), NOW - 30);
    snprintf(exp_edge, sizeof(exp_edge), T(",\"exp\":%lld"), NOW - 60);
    snprintf(iat_future, sizeof(iat_future), T(",\"exp\":%lld,\"iat\":%lld"), NOW + 600, NOW + 61);
    snprintf(iat_leeway, sizeof(iat_leeway), T(",\"exp\":%lld,\"iat\":%lld"), NOW + 600, NOW + 59);
    snprintf(nbf_future, sizeof(nbf_future), T(",\"exp\":%lld,\"nbf\":%lld"), NOW + 600, NOW + 120);
    snprintf(nbf_leeway, sizeof(nbf_leeway), T(",\"exp\":%lld,\"nbf\":%lld"), NOW + 600, NOW + 30);
    snprintf(no_exp, sizeof(no_exp), T(""));
    snprintf(bad_exp, sizeof(bad_exp), T(",\"exp\":\"%lld\""), NOW + 600);
    snprintf(no_sub, sizeof(no_sub), "{\"iss\":\"storia\",\"jti\":\"job-1\",\"exp\":%lld}",
             NOW + 600);
    snprintf(no_jti, sizeof(no_jti), "{\"iss\":\"storia\",\"sub\":\"user-1\",\"exp\":%lld}",
             NOW + 600);
    snprintf(wrong_jti, sizeof(wrong_jti),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-2\",\"exp\":%lld}", NOW + 600);
    snprintf(wrong_sub, sizeof(wrong_sub),
             "{\"iss\":\"storia\",\"sub\":\"user-2\",\"jti\":\"job-1\",\"exp\":%lld}", NOW + 600);
    snprintf(bad_trust, sizeof(bad_trust), T(",\"exp\":%lld,\"dreamTrustLevel\":\"admin\""),
             NOW + 600);
    snprintf(no_iss, sizeof(no_iss), "{\"sub\":\"user-1\",\"jti\":\"job-1\",\"exp\":%lld}",
             NOW + 600);
    snprintf(wrong_iss, sizeof(wrong_iss),
             "{\"iss\":\"evil\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"exp\":%lld}", NOW + 600);
    snprintf(num_sub, sizeof(num_sub),
             "{\"iss\":\"storia\",\"sub\":1,\"jti\":\"job-1\",\"exp\":%lld}", NOW + 600);

    const struct vector vs[] = {
        {"valid", NULL, NULL, NULL, 0, 0, NULL},
        {"rotated secret accepted", NULL, NULL, OLD_SECRET, 0, 0, NULL},
        {"no typ header", "{\"alg\":\"HS256\"}", NULL, NULL, 0, 0, NULL},
        {"wrong secret", NULL, NULL, "not-the-secret", 0, DM_ERR_AUTH,
         "token: signature does not match"},
        {"alg none", "{\"alg\":\"none\",\"typ\":\"JWT\"}", NULL, NULL, 2, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"alg None with a valid HS256 signature", "{\"alg\":\"None\"}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", NULL, NULL, 1, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"HS512 header but HS256 signature", "{\"alg\":\"HS512\"}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"alg lower case", "{\"alg\":\"hs256\"}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"alg missing", "{\"typ\":\"JWT\"}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: alg must be HS256"},
        {"typ not JWT", "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: typ must be JWT"},
        {"crit header", "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", NULL, NULL, 0, DM_ERR_AUTH,
         "token: crit header not supported"},
        {"header not JSON", "alg=HS256", NULL, NULL, 0, DM_ERR_AUTH,
         "token: malformed (header is not a JSON object)"},
        {"expired", NULL, exp_past, NULL, 0, DM_ERR_AUTH, "token: expired"},
        {"expired within leeway", NULL, exp_leeway, NULL, 0, 0, NULL},
        {"expired exactly at leeway", NULL, exp_edge, NULL, 0, DM_ERR_AUTH, "token: expired"},
        {"future iat", NULL, iat_future, NULL, 0, DM_ERR_AUTH, "token: iat is in the future"},
        {"iat within leeway", NULL, iat_leeway, NULL, 0, 0, NULL},
        {"nbf in the future", NULL, nbf_future, NULL, 0, DM_ERR_AUTH, "token: not yet valid (nbf)"},
        {"nbf within leeway", NULL, nbf_leeway, NULL, 0, 0, NULL},
        {"missing exp", NULL, no_exp, NULL, 0, DM_ERR_AUTH, "token: exp missing"},
        {"exp not a number", NULL, bad_exp, NULL, 0, DM_ERR_AUTH,
         "token: exp must be a finite number"},
        {"exp huge (inf)", NULL, T(",\"exp\":1e999"), NULL, 0, DM_ERR_AUTH,
         "token: exp must be a finite number"},
        {"missing iss", NULL, no_iss, NULL, 0, DM_ERR_AUTH, "token: iss missing"},
        {"wrong iss", NULL, wrong_iss, NULL, 0, DM_ERR_AUTH, "token: iss must be \"storia\""},
        {"missing sub", NULL, no_sub, NULL, 0, DM_ERR_AUTH, "token: sub missing"},
        {"sub not a string", NULL, num_sub, NULL, 0, DM_ERR_AUTH,
         "token: sub must be a non-empty string"},
        {"missing jti", NULL, no_jti, NULL, 0, DM_ERR_AUTH, "token: jti missing"},
        {"wrong jti", NULL, wrong_jti, NULL, 0, DM_ERR_AUTH, "token: jti does not match jobId"},
        {"wrong sub", NULL, wrong_sub, NULL, 0, DM_ERR_AUTH, "token: sub does not match userId"},
        {"bad trust level", NULL, bad_trust, NULL, 0, DM_ERR_AUTH,
         "token: dreamTrustLevel must be one of"},
        {"payload not an object", NULL, "[1,2]", NULL, 0, DM_ERR_AUTH,
         "token: malformed (payload is not a JSON object)"},
    };
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        run_vector(&vs[i]);
    }
}

struct raw_vector {
    const char *name;
    const char *token;
    const char *msg;
};

Test(auth, malformed_tokens)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;
    char *good = make_token(HS256_HDR, "{}", SECRET, EVP_sha256());
    char *two = strdup(good);
    char *four;
    char *bad_sig;
    char *padded;
    char *noncanon;

    *strrchr(two, '.') = '\0';
    four = malloc(strlen(good) + 4);
    sprintf(four, "%s.AA", good);
    bad_sig = strdup(good);
    strcpy(strrchr(bad_sig, '.') + 1, "!!notbase64!!");
    padded = malloc(strlen(good) + 2);
    sprintf(padded, "%s=", good);
    /* 43-char base64url of 32 bytes: its last char carries 2 unused bits; set one. */
    noncanon = strdup(good);
    {
        char *last = noncanon + strlen(noncanon) - 1;
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int v = (int)(strchr(alphabet, *last) - alphabet);
        *last = alphabet[v ^ 1];
    }
    const struct raw_vector vs[] = {
        {"empty", "", "token: missing"},
        {"one segment", "abc", "token: malformed (expected three dot-separated segments)"},
        {"two segments", two, "token: malformed (expected three dot-separated segments)"},
        {"four segments", four, "token: malformed (expected three dot-separated segments)"},
        {"bad base64 header", "e$J.eyJ9.AAAA", "token: malformed (header is not base64url)"},
        {"impossible length header", "eyJhb.e30.AAAA",
         "token: malformed (header is not base64url)"},
        {"bad base64 signature", bad_sig, "token: malformed (signature is not base64url)"},
        {"padded signature", padded, "token: malformed (signature is not base64url)"},
        {"non-canonical signature", noncanon, "token: malformed (signature is not base64url)"},
        {"empty signature", "eyJhbGciOiJIUzI1NiJ9.e30.",
         "token: malformed (signature is not base64url)"},
    };
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        dm_error_clear(&err);
        int rc = dm_auth_verify(NULL, vs[i].token, strlen(vs[i].token), &cfg, NOW, &err);
        cr_expect_eq(rc, DM_ERR_AUTH, "%s: rc %d (%s)", vs[i].name, rc, err.msg);
        cr_expect(strstr(err.msg, vs[i].msg) != NULL, "%s: \"%s\"", vs[i].name, err.msg);
    }
    free(good);
    free(two);
    free(four);
    free(bad_sig);
    free(padded);
    free(noncanon);
}

Test(auth, tampered_payload)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;
    char *pl = claims(NULL);
    char *tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
    char *evil_pl = claims(",\"dreamTrustLevel\":\"shipper\"");
    char *evil = b64url(evil_pl, strlen(evil_pl));
    char *dot1 = strchr(tok, '.');
    char *dot2 = strchr(dot1 + 1, '.');
    char *forged = malloc(strlen(tok) + strlen(evil) + 1);

    /* Same header and signature, a payload with a raised trust level. */
    sprintf(forged, "%.*s.%s%s", (int)(dot1 - tok), tok, evil, dot2);
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_auth_verify(NULL, forged, strlen(forged), &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: signature does not match");
    /* One flipped payload character, too. */
    dot1[1] = dot1[1] == 'A' ? 'B' : 'A';
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: signature does not match");
    free(pl);
    free(tok);
    free(evil_pl);
    free(evil);
    free(forged);
}

Test(auth, claims_are_returned)
{
    struct dm_auth_config cfg = config();
    struct dm_auth_claims c;
    struct dm_error err;
    char *pl = claims(NULL);
    char *tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());

    cr_assert_eq(dm_auth_verify_job(&c, tok, strlen(tok), &cfg, "job-1", "user-1", NOW, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(c.iss, "storia");
    cr_assert_str_eq(c.sub, "user-1");
    cr_assert_str_eq(c.jti, "job-1");
    cr_assert(c.trust_set);
    cr_assert_eq(c.trust, DM_TRUST_BUILDER);
    cr_assert_eq(c.exp, NOW + 600);
    cr_assert(c.has_iat);
    cr_assert_eq(c.iat, NOW - 10);
    cr_assert(!c.has_nbf);
    free(pl);
    free(tok);

    /* Without dreamTrustLevel the token is valid and says nothing about trust. */
    pl = malloc(256);
    snprintf(pl, 256, "{\"iss\":\"storia\",\"sub\":\"u\",\"jti\":\"j\",\"exp\":%lld}", NOW + 5);
    tok = make_token(HS256_HDR, pl, OLD_SECRET, EVP_sha256());
    cr_assert_eq(dm_auth_verify_job(&c, tok, strlen(tok), &cfg, "j", "u", NOW, &err), 0, "%s",
                 err.msg);
    cr_assert(!c.trust_set);
    free(pl);
    free(tok);
}

Test(auth, configurable_issuer_and_leeway)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;
    char pl[256];
    char *tok;

    snprintf(pl, sizeof(pl), "{\"iss\":\"acme\",\"sub\":\"u\",\"jti\":\"j\",\"exp\":%lld}",
             NOW - 30);
    tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: iss must be \"storia\"");
    cfg.issuer = "acme";
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), 0, "%s", err.msg);
    cfg.leeway_s = 10; /* expired 30 s ago: only the default leeway covered it */
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: expired");
    free(tok);
}

/* Verifies claims(extra) signed with SECRET under cfg; returns rc, message in err. */
static int verify_extra(const struct dm_auth_config *cfg, const char *extra, struct dm_error *err)
{
    char *pl = claims(extra);
    char *tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
    int rc;

    dm_error_clear(err);
    rc = dm_auth_verify(NULL, tok, strlen(tok), cfg, NOW, err);
    free(pl);
    free(tok);
    return rc;
}

Test(auth, audience_when_configured)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;

    /* Not configured: aud is not looked at. */
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":17", &err), 0, "%s", err.msg);
    cfg.audience = "dreamd-prod";
    cr_assert_eq(verify_extra(&cfg, "", &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: aud missing");
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":\"dreamd-dev\"", &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: aud does not name this worker");
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":\"dreamd-prod\"", &err), 0, "%s", err.msg);
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":[\"a\",\"dreamd-prod\"]", &err), 0, "%s", err.msg);
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":[\"a\",\"b\"]", &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: aud does not name this worker");
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":[\"dreamd-prod\",1]", &err), 0,
                 "the first match decides");
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":[1,\"dreamd-prod\"]", &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: aud must be a string or an array of strings");
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":{\"x\":\"dreamd-prod\"}", &err), DM_ERR_AUTH);
    cr_assert_eq(verify_extra(&cfg, ",\"aud\":\"dreamd-prod-2\"", &err), DM_ERR_AUTH,
                 "a prefix is not the audience");
    cfg.audience = "";
    cr_assert_eq(verify_extra(&cfg, "", &err), 0, "an empty audience is not configured");
}

Test(auth, lifetime_is_capped_when_configured)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;
    char pl[256];
    char *tok;

    /* claims(): iat NOW - 10, exp NOW + 600: a lifetime of 610 s. */
    cfg.max_ttl_s = 610;
    cr_assert_eq(verify_extra(&cfg, "", &err), 0, "%s", err.msg);
    cfg.max_ttl_s = 609;
    cr_assert_eq(verify_extra(&cfg, "", &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: lifetime (exp - iat) longer than 609 s");
    /* No iat: the lifetime is unknown. */
    snprintf(pl, sizeof(pl), "{\"iss\":\"storia\",\"sub\":\"u\",\"jti\":\"j\",\"exp\":%lld}",
             NOW + 5);
    tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert_str_eq(err.msg, "token: iat required (token lifetime is capped)");
    cfg.max_ttl_s = 0;
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), 0, "%s", err.msg);
    free(tok);
}

#define SHA_A "7a1cfc31ddc2ad1a6daa6be570e5e9199b127149cb6120c1f21141e5c95b9376"
#define SHA_B "3c8917925104d4add800e966747cbbf745dd708224775252f5601788329d187e"

Test(auth, job_binding_claim_shape)
{
    struct dm_auth_config cfg = config();
    struct dm_auth_claims c;
    struct dm_error err;
    char *pl = claims(",\"dreamJobSha256\":\"" SHA_A "\"");
    char *tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
    static const char *const bad[] = {
        ",\"dreamJobSha256\":\"7A1CFC31DDC2AD1A6DAA6BE570E5E9199B127149CB6120C1F21141E5C95B9376\"",
        ",\"dreamJobSha256\":\"7a1cfc31\"",
        ",\"dreamJobSha256\":\"" SHA_A "00\"",
        ",\"dreamJobSha256\":\"7a1cfc31ddc2ad1a6daa6be570e5e9199b127149cb6120c1f21141e5c95b937g\"",
        ",\"dreamJobSha256\":42",
    };

    cr_assert_eq(dm_auth_verify(&c, tok, strlen(tok), &cfg, NOW, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.job_sha256, SHA_A);
    free(pl);
    free(tok);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(verify_extra(&cfg, bad[i], &err), DM_ERR_AUTH, "%s", bad[i]);
        cr_assert_str_eq(err.msg, "token: dreamJobSha256 must be 64 lowercase hex digits");
    }
    cr_assert_eq(verify_extra(&cfg, "", &err), 0, "optional for dm_auth_verify");
}

Test(auth, bound_job_needs_jti_sub_digest_and_trust)
{
    struct dm_auth_config cfg = config();
    struct dm_auth_binding b = {"job-1", "user-1", SHA_A};
    struct dm_auth_claims c;
    struct dm_error err;
    static const struct {
        const char *payload_extra; /* appended to a claim set without dreamTrustLevel */
        const char *job_id, *sha;
        const char *msg; /* NULL: accepted */
    } rows[] = {
        {",\"dreamTrustLevel\":\"planner\",\"dreamJobSha256\":\"" SHA_A "\"", "job-1", SHA_A, NULL},
        {",\"dreamTrustLevel\":\"planner\",\"dreamJobSha256\":\"" SHA_A "\"", "job-1", SHA_B,
         "token: dreamJobSha256 does not match the job"},
        {",\"dreamTrustLevel\":\"planner\"", "job-1", SHA_A,
         "token: dreamJobSha256 missing (the token must bind the job)"},
        {",\"dreamJobSha256\":\"" SHA_A "\"", "job-1", SHA_A,
         "token: dreamTrustLevel missing (a signed job takes its trust level from its token)"},
        {",\"dreamTrustLevel\":\"planner\",\"dreamJobSha256\":\"" SHA_A "\"", "job-2", SHA_A,
         "token: jti does not match jobId"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char pl[512];
        char *tok;
        int rc;
        snprintf(pl, sizeof(pl),
                 "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"iat\":%lld,"
                 "\"exp\":%lld%s}",
                 NOW - 10, NOW + 600, rows[i].payload_extra);
        tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
        b.job_id = rows[i].job_id;
        b.job_sha256 = rows[i].sha;
        memset(&c, 0, sizeof(c));
        dm_error_clear(&err);
        rc = dm_auth_verify_bound_job(&c, tok, strlen(tok), &cfg, &b, NOW, &err);
        if (rows[i].msg) {
            cr_expect_eq(rc, DM_ERR_AUTH, "row %zu", i);
            cr_expect_str_eq(err.msg, rows[i].msg, "row %zu", i);
        } else {
            cr_expect_eq(rc, 0, "row %zu: %s", i, err.msg);
            cr_expect(c.trust_set && c.trust == DM_TRUST_PLANNER);
        }
        free(tok);
    }
    /* sub is still bound. */
    b.job_id = "job-1";
    b.user_id = "user-2";
    b.job_sha256 = SHA_A;
    {
        char *pl = claims(",\"dreamJobSha256\":\"" SHA_A "\"");
        char *tok = make_token(HS256_HDR, pl, SECRET, EVP_sha256());
        cr_assert_eq(dm_auth_verify_bound_job(NULL, tok, strlen(tok), &cfg, &b, NOW, &err),
                     DM_ERR_AUTH);
        cr_assert_str_eq(err.msg, "token: sub does not match userId");
        free(pl);
        free(tok);
    }
}

Test(auth, needs_a_secret_and_ignores_empty_ones)
{
    static const char *const empty[] = {""};
    struct dm_auth_config cfg = DM_AUTH_CONFIG_INIT;
    struct dm_error err;
    /* Signed with the empty key: must never verify. */
    char *pl = claims(NULL);
    char *tok = make_token(HS256_HDR, pl, "", EVP_sha256());

    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "token: no signing secret configured");
    cfg.secrets = empty;
    cfg.n_secrets = 1;
    cr_assert_eq(dm_auth_verify(NULL, tok, strlen(tok), &cfg, NOW, &err), DM_ERR_INVALID);
    free(pl);
    free(tok);
}

Test(auth, oversized_token_refused)
{
    struct dm_auth_config cfg = config();
    struct dm_error err;
    size_t n = DM_AUTH_TOKEN_MAX + 1;
    char *big = malloc(n + 1);

    memset(big, 'A', n);
    big[n] = '\0';
    big[10] = '.';
    big[20] = '.';
    cr_assert_eq(dm_auth_verify(NULL, big, n, &cfg, NOW, &err), DM_ERR_AUTH);
    cr_assert(strstr(err.msg, "longer than") != NULL, "%s", err.msg);
    free(big);
}

Test(auth, signer_round_trip)
{
    struct dm_auth_config cfg = config();
    struct dm_auth_claims c;
    struct dm_error err;
    char *pl = claims(NULL);
    char *tok = NULL;
    char *mine = make_token(HS256_HDR, pl, SECRET, EVP_sha256());

    cr_assert_eq(dm_auth_sign_hs256(&tok, pl, SECRET, &err), 0, "%s", err.msg);
    /* Same header bytes, same payload bytes: byte-identical to the independent encoder. */
    cr_assert_str_eq(tok, mine);
    cr_assert_eq(dm_auth_verify_job(&c, tok, strlen(tok), &cfg, "job-1", "user-1", NOW, &err), 0,
                 "%s", err.msg);
    free(tok);
    cr_assert_eq(dm_auth_sign_hs256(&tok, "[1]", SECRET, &err), DM_ERR_INVALID);
    cr_assert_null(tok);
    cr_assert_eq(dm_auth_sign_hs256(&tok, pl, "", &err), DM_ERR_INVALID);
    free(pl);
    free(mine);
}

Test(auth, trust_levels)
{
    enum dm_trust t;
    const char *names[] = {"observer", "planner", "builder", "shipper"};

    for (int i = 0; i < 4; i++) {
        cr_assert_eq(dm_trust_parse(&t, names[i]), 0);
        cr_assert_eq((int)t, i);
        cr_assert_str_eq(dm_trust_name(t), names[i]);
    }
    cr_assert_eq(dm_trust_parse(&t, "Builder"), DM_ERR_INVALID);
    cr_assert_eq(dm_trust_parse(&t, "admin"), DM_ERR_INVALID);
    cr_assert_eq(dm_trust_parse(&t, ""), DM_ERR_INVALID);
    cr_assert_eq(dm_trust_parse(&t, NULL), DM_ERR_INVALID);
    cr_assert_str_eq(dm_trust_name((enum dm_trust)9), "unknown");

    cr_assert_eq(dm_trust_decide(DM_TRUST_OBSERVER, 1), DM_TRUST_ACTION_REFUSE);
    cr_assert_eq(dm_trust_decide(DM_TRUST_PLANNER, 1), DM_TRUST_ACTION_DRY_RUN);
    cr_assert_eq(dm_trust_decide(DM_TRUST_BUILDER, 1), DM_TRUST_ACTION_BUILD);
    cr_assert_eq(dm_trust_decide(DM_TRUST_SHIPPER, 0), DM_TRUST_ACTION_BUILD);
    cr_assert_eq(dm_trust_decide(DM_TRUST_SHIPPER, 1), DM_TRUST_ACTION_BUILD_WORKFLOWS);
    cr_assert_eq(dm_trust_decide((enum dm_trust)7, 1), DM_TRUST_ACTION_REFUSE);
    cr_assert_str_eq(dm_trust_action_name(DM_TRUST_ACTION_DRY_RUN), "dry-run");
    cr_assert_str_eq(dm_trust_action_name(DM_TRUST_ACTION_BUILD_WORKFLOWS), "build+workflows");
}
