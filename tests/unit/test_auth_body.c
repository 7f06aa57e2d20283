/* test_auth_body.c - the sign-in routes' bodies (api/auth_body.h): what
 * is accepted, and that every refusal names the field and where. */
#include <string.h>

#include "api/auth_body.h"
#include "harness.h"

TM_TEST(auth_body_session)
{
    char key[16];
    struct tm_api_error e;
    const char *ok = "{\"key\": \"tpk_abc\"}";
    CHECK_INT_EQ(tm_session_body_parse(ok, strlen(ok), key, sizeof(key), &e), TM_OK);
    CHECK_STR_EQ(key, "tpk_abc");
    static const struct {
        const char *body, *field;
        tm_status st;
    } bad[] = {
        {"{\"key\": 5}", "key", TM_EINVAL},
        {"{\"key\": \"0123456789abcdef\"}", "key", TM_EINVAL}, /* longer than key holds */
        {"{\"key\": \"a\\u0000b\"}", "key", TM_EINVAL},
        {"{}", "key", TM_EINVAL},
        {"{\"key\": \"a\", \"key\": \"b\"}", "key", TM_EINVAL},
        {"{\"kee\": \"a\"}", "kee", TM_EINVAL},
        {"[\"a\"]", "", TM_EINVAL},
        {"{\"key\": ", "", TM_EPARSE},
        {"", "", TM_EPARSE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_api_error_clear(&e);
        CHECK_INT_EQ(tm_session_body_parse(bad[i].body, strlen(bad[i].body), key, sizeof(key), &e),
                     bad[i].st);
        CHECK_STR_EQ(e.field, bad[i].field);
    }
}

TM_TEST(auth_body_links)
{
    int64_t n = 0;
    struct tm_api_error e;
    static const struct {
        const char *body;
        int64_t want;
    } ok[] = {{"", 3600},
              {"  \n", 3600},
              {"{}", 3600},
              {"{\"expires_in\": 600}", 600},
              {"{\"expires_in\": 600.0}", 600},
              {"{\"expires_in\": 6e2}", 600},
              {"{\"expires_in\": 1}", 1},
              {"{\"expires_in\": 86400}", 86400}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_INT_EQ(tm_links_body_parse(ok[i].body, strlen(ok[i].body), 3600, 1, 86400, &n, &e),
                     TM_OK);
        CHECK_INT_EQ(n, ok[i].want);
    }
    static const char *const bad[] = {"{\"expires_in\": 0}",    "{\"expires_in\": 86401}",
                                      "{\"expires_in\": 1.5}",  "{\"expires_in\": \"5\"}",
                                      "{\"expires_in\": null}", "{\"expires_in\": -3}",
                                      "{\"expires_in\": 1e300}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_api_error_clear(&e);
        CHECK_INT_EQ(tm_links_body_parse(bad[i], strlen(bad[i]), 3600, 1, 86400, &n, &e),
                     TM_ERANGE);
        CHECK_STR_EQ(e.field, "expires_in");
        CHECK(e.offset == 15 && e.line == 1 && e.column == 16);
    }
    CHECK_INT_EQ(tm_links_body_parse("{\"ttl\": 5}", 10, 3600, 1, 86400, &n, &e), TM_EINVAL);
    CHECK_STR_EQ(e.field, "ttl");
    CHECK_INT_EQ(tm_links_body_parse("5", 1, 3600, 1, 86400, &n, &e), TM_EINVAL);
    CHECK_INT_EQ(tm_links_body_parse("{", 1, 3600, 1, 86400, &n, &e), TM_EPARSE);
}
