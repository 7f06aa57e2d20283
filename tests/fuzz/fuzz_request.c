/*
 * fuzz_request.c - libFuzzer target for the parsers of a request's line
 * and headers that topicd writes itself, without sockets (fuzz_http.c
 * drives the same ones through a live server): server/routes.c's path
 * matching, Idempotency-Key and Content-Type charset checks (routes.c is
 * included to reach its statics, as tests/unit/test_routes.c does), and
 * keys.h's API key form (the Bearer token of Authorization) and tenant
 * names. The input is split at its first two NUL bytes into a path, a
 * header value and a key; each must satisfy:
 *
 *   - a path that matches a route is that route's pattern with the {id} it
 *     gave put back (and maybe the one trailing "/" the row allows); the id
 *     is a valid id;
 *   - an Idempotency-Key is accepted iff it is 1 to 255 visible ASCII
 *     characters; a charset parameter is foreign only when "charset=" is
 *     there;
 *   - a key parses iff it has the form keys.h documents (lower-case hex
 *     digits), and its id is
 *     the 12 hex digits after "tpk_"; hex digits taken from the input
 *     always make a key that parses back to them.
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
/* routes.c's one global, renamed so that this copy links beside
 * tests/unit/test_routes.c's in the test runner. */
#define tm_routes tm__fuzz_request_routes
#include "server/routes.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *path)
{
    char id[TM_ID_SIZE] = "";
    const struct route *rt = route_of(path, id);
    if (!rt)
        return;
    char want[512];
    const char *at = strstr(rt->pattern, "{id}");
    if (at) {
        if (!valid_id(id, strlen(id)))
            __builtin_trap();
        snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - rt->pattern), rt->pattern, id, at + 4);
    } else {
        snprintf(want, sizeof(want), "%s", rt->pattern);
    }
    size_t n = strlen(want);
    if (strncmp(path, want, n) || (path[n] && !(rt->slash && !strcmp(path + n, "/"))))
        __builtin_trap();
}

static void check_headers(const char *v, size_t len)
{
    int visible = len >= 1 && len <= 255;
    for (size_t i = 0; i < len; i++)
        visible &= v[i] > ' ' && v[i] <= '~';
    if (valid_idem_key(v) != visible)
        __builtin_trap();
    if (foreign_charset(v) && !strcasestr(v, "charset="))
        __builtin_trap();
    int tenant = len >= 1 && len < TM_TENANT_SIZE;
    for (size_t i = 0; i < len; i++)
        tenant &= (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                  (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-';
    if (tm_tenant_valid(v) != tenant)
        __builtin_trap();
}

/* Keys are written in lower-case hex (tm_key_generate), and read so. */
static int hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_key(const char *k, size_t len)
{
    char id[TM_KEY_ID_SIZE];
    int ok = tm_key_parse(k, id) == 0;
    int form = len == TM_KEY_SIZE - 1 && !strncmp(k, TM_KEY_PREFIX, 4) && k[16] == '_';
    for (size_t i = 4; form && i < len; i++)
        form = i == 16 || hexdigit(k[i]);
    if (ok != form || (ok && (strlen(id) != 12 || memcmp(id, k + 4, 12))))
        __builtin_trap();

    /* A key made of the input's bytes as hex digits parses back. */
    static const char digits[] = "0123456789abcdef";
    char made[TM_KEY_SIZE];
    memcpy(made, TM_KEY_PREFIX, 4);
    for (size_t i = 4; i < TM_KEY_SIZE - 1; i++)
        made[i] = digits[(unsigned char)(len ? k[i % len] : 0) % 16];
    made[16] = '_';
    made[TM_KEY_SIZE - 1] = 0;
    if (tm_key_parse(made, id) || memcmp(id, made + 4, 12) || id[12])
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Three NUL-terminated strings: path, header value, key. */
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = 0;
    const char *path = buf;
    const char *value = path + strlen(path) + 1;
    if (value > buf + size)
        value = buf + size + 1;
    const char *key = value + strlen(value) + 1;
    if (key > buf + size + 1)
        key = buf + size + 2;
    check_path(path);
    check_headers(value, strlen(value));
    check_key(key, strlen(key));
    free(buf);
    return 0;
}
