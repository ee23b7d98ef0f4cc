/* libFuzzer target for netaddr: classifying any host never crashes; an address the parser
 * accepts formats to text that parses back to the same address and class; a signature over
 * fuzzed bytes verifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/netaddr.h"
#include "dream/domain/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *host = (const char *)data;
    struct dm_netaddr a, b;
    char text[64];
    char sig[DM_CALLBACK_SIG_LEN];
    enum dm_netaddr_class c = dm_netaddr_classify_host(host, size);

    (void)dm_netaddr_class_name(c);
    (void)dm_netaddr_host_listed("localhost,::1, example.org", host, size);
    if (dm_netaddr_parse(host, size, &a)) {
        dm_netaddr_format(&a, text, sizeof(text));
        if (!dm_netaddr_parse(text, strlen(text), &b) || a.family != b.family ||
            memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) != 0 ||
            dm_netaddr_classify(&a) != dm_netaddr_classify(&b)) {
            abort();
        }
    }
    if (!dm_callback_sign(sig, sizeof(sig), "k", 1, 1000, data, size) ||
        dm_callback_verify(sig, "k", 1, data, size, 1000, 0) != 0) {
        abort();
    }
    return 0;
}
