/* test_log.c - server/log.h: the level is checked before the arguments are
 * evaluated, each event is one JSON object on one line of stderr, strings
 * are escaped, and an overlong line is cut to a head that still parses. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "logcapture.h"
#include "server/log.h"

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int evaluated;

static long long evaluate(void)
{
    return ++evaluated;
}

TM_TEST(log_level_checked_before_arguments)
{
    struct tm_logcapture c;
    char out[1024];
    evaluated = 0;
    REQUIRE(tm_logcapture_start(&c, TM_LOG_WARN) == 0);
    TM_LOG(TM_LOG_DEBUG, "hidden", "i:n", evaluate(), NULL);
    TM_LOG(TM_LOG_INFO, "hidden", "i:n", evaluate(), NULL);
    size_t n = tm_logcapture_end(&c, out, sizeof(out));
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(evaluated, 0);

    REQUIRE(tm_logcapture_start(&c, TM_LOG_WARN) == 0);
    TM_LOG(TM_LOG_WARN, "shown", "i:n", evaluate(), NULL);
    TM_LOG(TM_LOG_ERROR, "shown", "i:n", evaluate(), NULL);
    tm_logcapture_end(&c, out, sizeof(out));
    CHECK_INT_EQ(count_lines(out), 2);
    CHECK_INT_EQ(evaluated, 2);
    CHECK(strstr(out, "\"level\":\"warn\",\"msg\":\"shown\",\"n\":1}\n") != NULL);
    CHECK(strstr(out, "\"level\":\"error\",\"msg\":\"shown\",\"n\":2}\n") != NULL);

    /* "off" silences errors too. */
    REQUIRE(tm_logcapture_start(&c, TM_LOG_OFF) == 0);
    TM_LOG(TM_LOG_ERROR, "hidden", "i:n", evaluate(), NULL);
    n = tm_logcapture_end(&c, out, sizeof(out));
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(evaluated, 2);
}

TM_TEST(log_one_json_line_per_event)
{
    struct tm_logcapture c;
    char out[2048];
    REQUIRE(tm_logcapture_start(&c, TM_LOG_DEBUG) == 0);
    errno = EDOM;
    TM_LOG(TM_LOG_INFO, "request", "s:method", "GET", "i:status", 200LL, "f:duration_ms", 0.5,
           "b:cached", 1, "b:gzip", 0, "s:client", (const char *)NULL, "f:ratio", NAN, NULL);
    int saved = errno;
    TM_LOG(TM_LOG_DEBUG, "second", NULL);
    tm_logcapture_end(&c, out, sizeof(out));
    CHECK_INT_EQ(saved, EDOM); /* the caller's errno survives the write */
    REQUIRE(count_lines(out) == 2);

    /* Line one: the head, then the fields in order with their JSON types. */
    char *second = strchr(out, '\n') + 1;
    second[-1] = '\0';
    CHECK(strncmp(out, "{\"ts\":\"", 7) == 0);
    const char *rest = out + 7 + strlen("2026-01-01T00:00:00.000Z\"");
    CHECK(strlen(out) > (size_t)(rest - out));
    CHECK_STR_EQ(rest, ",\"level\":\"info\",\"msg\":\"request\",\"method\":\"GET\",\"status\":200,"
                       "\"duration_ms\":0.5,\"cached\":true,\"gzip\":false,\"client\":null,"
                       "\"ratio\":null}");
    cJSON *root = cJSON_Parse(out);
    REQUIRE(root != NULL);
    const char *ts = cJSON_GetStringValue(cJSON_GetObjectItem(root, "ts"));
    CHECK(ts && strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' &&
          ts[23] == 'Z');
    cJSON_Delete(root);

    /* Line two: an event with no fields. */
    root = cJSON_Parse(second);
    REQUIRE(root != NULL);
    CHECK_INT_EQ(cJSON_GetArraySize(root), 3);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "level")), "debug");
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "msg")), "second");
    cJSON_Delete(root);
}

TM_TEST(log_escapes_strings)
{
    struct tm_logcapture c;
    char out[1024];
    const char text[] = "say \"hi\" \\ \n\t\x01\x7f caf\xc3\xa9";
    REQUIRE(tm_logcapture_start(&c, TM_LOG_INFO) == 0);
    TM_LOG(TM_LOG_INFO, "quote \"me\"", "s:text", text, "s:odd\"key", "v", NULL);
    tm_logcapture_end(&c, out, sizeof(out));
    /* The newline inside the value is escaped: still one line. */
    CHECK_INT_EQ(count_lines(out), 1);
    CHECK(strstr(out, "\"msg\":\"quote \\\"me\\\"\"") != NULL);
    CHECK(
        strstr(out, "\"text\":\"say \\\"hi\\\" \\\\ \\u000a\\u0009\\u0001\\u007f caf\xc3\xa9\"") !=
        NULL);
    CHECK(strstr(out, "\"odd\\\"key\":\"v\"") != NULL);
    cJSON *root = cJSON_Parse(out);
    REQUIRE(root != NULL);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "text")), text);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "msg")), "quote \"me\"");
    cJSON_Delete(root);
}

TM_TEST(log_cuts_long_lines)
{
    struct tm_logcapture c;
    static char big[6000], out[8192];
    memset(big, '"', sizeof(big) - 1); /* each byte escapes to two */
    REQUIRE(tm_logcapture_start(&c, TM_LOG_INFO) == 0);
    TM_LOG(TM_LOG_INFO, "long", "s:small", "kept?", "s:big", big, NULL);
    size_t n = tm_logcapture_end(&c, out, sizeof(out));
    CHECK(n <= 4096);
    CHECK_INT_EQ(count_lines(out), 1);
    CHECK(n >= 2 && out[n - 2] == '}' && out[n - 1] == '\n');
    /* Only the head is kept, which always parses, and says it was cut. */
    cJSON *root = cJSON_Parse(out);
    REQUIRE(root != NULL);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "msg")), "long");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(root, "truncated")));
    CHECK(cJSON_GetObjectItem(root, "small") == NULL);
    CHECK(cJSON_GetObjectItem(root, "big") == NULL);
    cJSON_Delete(root);
}

TM_TEST(log_level_names)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = TM_LOG_DEBUG; i <= TM_LOG_OFF; i++) {
        CHECK_INT_EQ(tm_log_level_parse(names[i]), i);
        CHECK_STR_EQ(tm_log_level_name((enum tm_log_level)i), names[i]);
    }
    CHECK_INT_EQ(tm_log_level_parse("INFO"), -1);
    CHECK_INT_EQ(tm_log_level_parse(NULL), -1);
    CHECK_STR_EQ(tm_log_level_name((enum tm_log_level)42), "unknown");
}
