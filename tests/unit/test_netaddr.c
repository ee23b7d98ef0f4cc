/* Unit tests for netaddr: every spelling of an internal address that curl or getaddrinfo would
 * connect to is recognised and refused; public addresses and plain names are not. */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/netaddr.h"

#include <stdio.h>

static enum dm_netaddr_class host(const char *h)
{
    return dm_netaddr_classify_host(h, strlen(h));
}

static void refused(const char *h, enum dm_netaddr_class want)
{
    enum dm_netaddr_class c = host(h);
    cr_assert_eq(c, want, "%s: %s, want %s", h, dm_netaddr_class_name(c),
                 dm_netaddr_class_name(want));
    cr_assert(dm_netaddr_refused(c), "%s refused", h);
}

static void allowed(const char *h, enum dm_netaddr_class want)
{
    enum dm_netaddr_class c = host(h);
    cr_assert_eq(c, want, "%s: %s, want %s", h, dm_netaddr_class_name(c),
                 dm_netaddr_class_name(want));
    cr_assert_not(dm_netaddr_refused(c), "%s allowed", h);
}

Test(netaddr, the_issue_forms_are_refused)
{
    refused("127.0.0.1", DM_NETADDR_LOOPBACK);
    refused("[::1]", DM_NETADDR_LOOPBACK);
    refused("169.254.169.254", DM_NETADDR_LINK_LOCAL);
    refused("10.0.0.1", DM_NETADDR_PRIVATE);
    refused("2130706433", DM_NETADDR_LOOPBACK);
    refused("[::ffff:127.0.0.1]", DM_NETADDR_LOOPBACK);
}

Test(netaddr, numeric_spellings_of_loopback)
{
    refused("0x7f.1", DM_NETADDR_LOOPBACK);
    refused("127.1", DM_NETADDR_LOOPBACK);
    refused("127.0.1", DM_NETADDR_LOOPBACK);
    refused("0177.0.0.1", DM_NETADDR_LOOPBACK);
    refused("0x7f000001", DM_NETADDR_LOOPBACK);
    refused("017700000001", DM_NETADDR_LOOPBACK);
    refused("0X7F.0.0.1", DM_NETADDR_LOOPBACK);
    refused("127.0.0.1.", DM_NETADDR_LOOPBACK);
    refused("127.255.255.254", DM_NETADDR_LOOPBACK);
    refused("[::ffff:7f00:1]", DM_NETADDR_LOOPBACK);
    refused("[::127.0.0.1]", DM_NETADDR_LOOPBACK);
    refused("[0:0:0:0:0:0:0:1]", DM_NETADDR_LOOPBACK);
    refused("::1", DM_NETADDR_LOOPBACK);
    refused("localhost", DM_NETADDR_LOOPBACK);
    refused("LocalHost.", DM_NETADDR_LOOPBACK);
    refused("api.localhost", DM_NETADDR_LOOPBACK);
}

Test(netaddr, private_and_special_ranges_v4)
{
    refused("10.255.255.255", DM_NETADDR_PRIVATE);
    refused("172.16.0.1", DM_NETADDR_PRIVATE);
    refused("172.31.255.255", DM_NETADDR_PRIVATE);
    refused("192.168.1.1", DM_NETADDR_PRIVATE);
    refused("100.64.0.1", DM_NETADDR_CGNAT);
    refused("100.127.255.255", DM_NETADDR_CGNAT);
    refused("100.100.100.200", DM_NETADDR_CGNAT);
    refused("169.254.0.1", DM_NETADDR_LINK_LOCAL);
    refused("224.0.0.1", DM_NETADDR_MULTICAST);
    refused("239.255.255.250", DM_NETADDR_MULTICAST);
    refused("0.0.0.0", DM_NETADDR_UNSPECIFIED);
    refused("0", DM_NETADDR_UNSPECIFIED);
    refused("255.255.255.255", DM_NETADDR_BROADCAST);
    refused("198.18.0.1", DM_NETADDR_RESERVED);
    refused("240.0.0.1", DM_NETADDR_RESERVED);
    refused("0xa9.0xfe.0xa9.0xfe", DM_NETADDR_LINK_LOCAL);
    refused("2852039166", DM_NETADDR_LINK_LOCAL); /* 169.254.169.254 */
}

Test(netaddr, private_and_special_ranges_v6)
{
    refused("[::]", DM_NETADDR_UNSPECIFIED);
    refused("[fc00::1]", DM_NETADDR_PRIVATE);
    refused("[fd00:ec2::254]", DM_NETADDR_PRIVATE);
    refused("[fec0::1]", DM_NETADDR_PRIVATE);
    refused("[fe80::1]", DM_NETADDR_LINK_LOCAL);
    refused("[ff02::1]", DM_NETADDR_MULTICAST);
    refused("[::ffff:10.0.0.1]", DM_NETADDR_PRIVATE);
    refused("[::ffff:169.254.169.254]", DM_NETADDR_LINK_LOCAL);
    refused("[64:ff9b::7f00:1]", DM_NETADDR_LOOPBACK);
    refused("[64:ff9b::a00:1]", DM_NETADDR_PRIVATE);
    refused("[64:ff9b:1::1]", DM_NETADDR_PRIVATE);
    refused("[2002:7f00:1::]", DM_NETADDR_LOOPBACK);
    refused("[2002:a9fe:a9fe::1]", DM_NETADDR_LINK_LOCAL);
    refused("[2001:0:4136:e378:8000:63bf:80ff:fffe]", DM_NETADDR_LOOPBACK); /* Teredo 127.0.0.1 */
    refused("[100::1]", DM_NETADDR_RESERVED);
}

Test(netaddr, metadata_names)
{
    refused("metadata.google.internal", DM_NETADDR_METADATA);
    refused("METADATA.GOOGLE.INTERNAL.", DM_NETADDR_METADATA);
    refused("metadata", DM_NETADDR_METADATA);
    refused("metadata.goog", DM_NETADDR_METADATA);
    refused("instance-data", DM_NETADDR_METADATA);
    refused("instance-data.ec2.internal", DM_NETADDR_METADATA);
    refused("anything.internal", DM_NETADDR_METADATA);
}

Test(netaddr, public_addresses_and_names_pass)
{
    allowed("93.184.216.34", DM_NETADDR_PUBLIC);
    allowed("8.8.8.8", DM_NETADDR_PUBLIC);
    allowed("172.32.0.1", DM_NETADDR_PUBLIC);
    allowed("100.128.0.1", DM_NETADDR_PUBLIC);
    allowed("[2606:4700::1111]", DM_NETADDR_PUBLIC);
    allowed("[::ffff:8.8.8.8]", DM_NETADDR_PUBLIC);
    allowed("hooks.example.com", DM_NETADDR_NAME);
    allowed("192.0.2.1", DM_NETADDR_DOCUMENTATION);
    allowed("203.0.113.9", DM_NETADDR_DOCUMENTATION);
    allowed("[2001:db8::1]", DM_NETADDR_DOCUMENTATION);
    allowed("localhost.example.com", DM_NETADDR_NAME);
    allowed("metadata.example.com", DM_NETADDR_NAME);
    /* Not numbers any resolver reads as an address: names, judged after resolution. */
    allowed("1.2.3.4.5", DM_NETADDR_NAME);
    allowed("256.1.1.1", DM_NETADDR_NAME);
    allowed("1.2.3.256", DM_NETADDR_NAME);
    allowed("08.1.1.1", DM_NETADDR_NAME);
    allowed("0xg.1", DM_NETADDR_NAME);
    allowed("4294967296", DM_NETADDR_NAME);
    cr_assert_eq(host(""), DM_NETADDR_INVALID);
    cr_assert_eq(host("[not-v6]"), DM_NETADDR_INVALID);
}

Test(netaddr, parse_and_format)
{
    struct dm_netaddr a;
    char out[64];
    cr_assert_eq(dm_netaddr_parse("0x7f.1", 6, &a), 1);
    cr_assert_eq(a.family, 4);
    cr_assert_str_eq(dm_netaddr_format(&a, out, sizeof(out)), "127.0.0.1");
    cr_assert_eq(dm_netaddr_parse("[::ffff:127.0.0.1]", 18, &a), 1);
    cr_assert_eq(a.family, 6);
    cr_assert_str_eq(dm_netaddr_format(&a, out, sizeof(out)), "::ffff:127.0.0.1");
    cr_assert_eq(dm_netaddr_parse("example.com", 11, &a), 0);
    cr_assert_eq(dm_netaddr_parse("[127.0.0.1]", 11, &a), 0, "brackets hold only IPv6");
}

Test(netaddr, host_lists)
{
    cr_assert(dm_netaddr_host_listed("a.example, LocalHost ,::1", "localhost", 9));
    cr_assert(dm_netaddr_host_listed("a.example,localhost,::1", "[::1]", 5));
    cr_assert(dm_netaddr_host_listed("a.example.", "A.EXAMPLE", 9));
    cr_assert_not(dm_netaddr_host_listed("a.example", "b.example", 9));
    cr_assert_not(dm_netaddr_host_listed("a.example", "a.exampl", 8));
    cr_assert_not(dm_netaddr_host_listed("", "a", 1));
    cr_assert_not(dm_netaddr_host_listed(NULL, "a", 1));
    cr_assert_not(dm_netaddr_host_listed(",,", "", 0));
}

/* The job request refuses the same destinations at intake, with the reason, unless the operator
 * named the host. */
static int parse_cb(const char *url, const struct dm_jobreq_opts *opts, struct dm_error *err)
{
    char json[1024];
    struct dm_jobreq *job = NULL;
    int rc;
    snprintf(json, sizeof(json),
             "{\"jobId\":\"job-1\",\"specId\":\"spec-1\",\"userId\":\"user-1\","
             "\"repoOwner\":\"acme\",\"repoName\":\"todo-app\",\"specMarkdown\":\"# Todo\","
             "\"budget\":{\"maxTokens\":100000,\"maxDollars\":2.5},\"trustLevel\":\"builder\","
             "\"callbackUrl\":\"%s\"}",
             url);
    dm_error_clear(err);
    rc = dm_jobreq_parse(&job, json, strlen(json), opts, err);
    dm_jobreq_free(job);
    return rc;
}

Test(netaddr, jobreq_refuses_internal_callback_urls)
{
    static const struct {
        const char *url;
        const char *msg;
    } cases[] = {
        {"https://127.0.0.1/cb", "callbackUrl: must not point to a loopback address"},
        {"https://[::1]:8443/cb", "callbackUrl: must not point to a loopback address"},
        {"https://169.254.169.254/latest/meta-data/",
         "callbackUrl: must not point to a link-local address"},
        {"https://10.0.0.1/cb", "callbackUrl: must not point to a private address"},
        {"https://2130706433/cb", "callbackUrl: must not point to a loopback address"},
        {"https://[::ffff:127.0.0.1]/cb", "callbackUrl: must not point to a loopback address"},
        {"https://0x7f.1/cb", "callbackUrl: must not point to a loopback address"},
        {"https://127.1:9/cb", "callbackUrl: must not point to a loopback address"},
        {"https://100.64.1.1/cb", "callbackUrl: must not point to a CGNAT address"},
        {"https://224.0.0.1/cb", "callbackUrl: must not point to a multicast address"},
        {"https://0.0.0.0/cb", "callbackUrl: must not point to an unspecified address"},
        {"https://[fd00::1]/cb", "callbackUrl: must not point to a private address"},
        {"https://[fe80::1]/cb", "callbackUrl: must not point to a link-local address"},
        {"https://localhost/cb", "callbackUrl: must not point to a loopback address"},
        {"https://metadata.google.internal/computeMetadata/v1/",
         "callbackUrl: must not name a cloud metadata or internal host"},
        {"https://instance-data/latest",
         "callbackUrl: must not name a cloud metadata or internal host"},
    };
    struct dm_error err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(parse_cb(cases[i].url, NULL, &err), DM_ERR_INVALID, "%s accepted",
                     cases[i].url);
        cr_assert_str_eq(err.msg, cases[i].msg, "%s", cases[i].url);
    }
    cr_assert_eq(parse_cb("https://hooks.example.com/cb", NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(parse_cb("https://93.184.216.34/cb", NULL, &err), 0, "%s", err.msg);
}

Test(netaddr, jobreq_exempts_operator_named_hosts)
{
    const char *hosts[] = {"127.0.0.1", "::1", "localhost"};
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    struct dm_error err;
    opts.http_hosts = hosts;
    opts.n_http_hosts = 3;
    cr_assert_eq(parse_cb("http://127.0.0.1:9/cb", &opts, &err), 0, "%s", err.msg);
    cr_assert_eq(parse_cb("https://[::1]:9/cb", &opts, &err), 0, "%s", err.msg);
    cr_assert_eq(parse_cb("http://localhost:9/cb", &opts, &err), 0, "%s", err.msg);
    /* Another spelling of an allow-listed address is not the allow-listed host. */
    cr_assert_eq(parse_cb("https://2130706433/cb", &opts, &err), DM_ERR_INVALID);
    cr_assert_eq(parse_cb("https://10.0.0.1/cb", &opts, &err), DM_ERR_INVALID);
}
