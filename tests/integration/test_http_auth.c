/* test_http_auth.c - API keys and tenants against a real `topicd serve`:
 * 401 with WWW-Authenticate on /v1 without a good key, the open routes,
 * --metrics-auth, the secure default on a non-loopback address, and each
 * tenant seeing only its own corpora and jobs (an admin key every one). */
#include <stdio.h>

#include "http_helpers.h"

/* `topicd keys ARGS --data-dir dir`: its first line of standard output
 * into out (size bytes); the exit status, or -1. */
static int keys_cmd(const char *dir, const char *args, char *out, size_t size)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s/topicd' keys %s --data-dir '%s' 2>/dev/null", tm_test_bindir(),
             args, dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (out) {
        out[0] = 0;
        if (fgets(out, (int)size, p))
            out[strcspn(out, "\n")] = 0;
    }
    char sink[512];
    while (fgets(sink, sizeof(sink), p))
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A request with "Authorization: Bearer key" (no header when key is NULL). */
static long req(const struct th_server *s, const char *method, const char *path, const char *key,
                const char *content_type, const char *body, struct th_resp *r)
{
    char auth[200];
    const char *hs[2] = {NULL, NULL};
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hs[0] = auth;
    }
    return th_request_h(s, method, path, content_type, body, body ? strlen(body) : 0, hs, r);
}

/* The "id" of a JSON response into id (40 bytes); "" when none. */
static void id_of(const struct th_resp *r, char *id)
{
    cJSON *j = th_json(r);
    const char *v = j ? th_str(j, "id") : NULL;
    snprintf(id, 40, "%s", v ? v : "");
    cJSON_Delete(j);
}

/* 1 when the log of s holds text. */
static int log_has(const struct th_server *s, const char *text)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

TM_TEST(http_auth_keys)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char good[128], admin[128], revoked[128], line[256], code[64];
    REQUIRE(th_tmpdir(&s) == 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant acme", good, sizeof(good)), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant ops --admin", admin, sizeof(admin)), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant gone", revoked, sizeof(revoked)), 0);
    CHECK(!strncmp(good, "tpk_", 4));
    /* The id is the part between "tpk_" and the next "_". */
    char rid[16] = "", args[64];
    snprintf(rid, sizeof(rid), "%.12s", revoked + 4);
    snprintf(args, sizeof(args), "revoke %s", rid);
    CHECK_INT_EQ(keys_cmd(s.dir, args, NULL, 0), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "revoke 000000000000", NULL, 0), 1);
    CHECK_INT_EQ(keys_cmd(s.dir, "create", NULL, 0), 2);
    /* list: ids and tenants, never a key. */
    CHECK_INT_EQ(keys_cmd(s.dir, "list", line, sizeof(line)), 0);
    CHECK(strstr(line, "TENANT") != NULL);
    if (th_start(&s, NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    struct th_resp r;
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", NULL, NULL, NULL, &r), 401);
    CHECK_STR_EQ(r.www_authenticate, "Bearer realm=\"topicd\"");
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "unauthorized");
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", "/v1/jobs", "tpk_000000000000_nope", NULL, NULL, &r), 401);
    CHECK_STR_EQ(r.www_authenticate, "Bearer realm=\"topicd\"");
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", "/v1/info", revoked, NULL, NULL, NULL), 401);
    /* The right id with another secret. */
    char forged[128];
    snprintf(forged, sizeof(forged), "%s", good);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == '0' ? '1' : '0';
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", forged, NULL, NULL, NULL), 401);
    /* Another scheme. */
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    CHECK_INT_EQ(th_request_h(&s, "GET", "/v1/corpora", NULL, NULL, 0, basic, NULL), 401);
    /* A body is refused before it is read. */
    CHECK_INT_EQ(req(&s, "POST", "/v1/corpora", NULL, "text/plain", "a\nb\n", NULL), 401);
    CHECK_INT_EQ(req(&s, "POST", "/v1/jobs", NULL, "application/json", "{}", NULL), 401);
    CHECK_INT_EQ(req(&s, "DELETE", "/v1/jobs/j_x", NULL, NULL, NULL, NULL), 401);
    /* Open routes. */
    CHECK_INT_EQ(req(&s, "GET", "/healthz", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/readyz", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/metrics", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/v1/openapi.yaml", NULL, NULL, NULL, NULL), 200);
    /* Good keys; the scheme's name is case-insensitive. */
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", good, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/v1/jobs", admin, NULL, NULL, NULL), 200);
    char lower[200];
    snprintf(lower, sizeof(lower), "Authorization: bearer %s", good);
    const char *hs[] = {lower, NULL};
    CHECK_INT_EQ(th_request_h(&s, "GET", "/v1/info", NULL, NULL, 0, hs, NULL), 200);
    /* No key reaches the log. */
    CHECK(!log_has(&s, good + 17));
    CHECK(!log_has(&s, forged + 17));
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_auth_metrics_and_auth_on)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char key[128];
    REQUIRE(th_tmpdir(&s) == 0);
    /* --auth on with no key in the store: nothing keyed gets in. */
    if (th_start(&s, "--auth", "on", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", NULL, NULL, NULL, NULL), 401);
    CHECK_INT_EQ(req(&s, "GET", "/healthz", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant acme", key, sizeof(key)), 0);
    if (th_start(&s, "--metrics-auth", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "GET", "/metrics", NULL, NULL, NULL, NULL), 401);
    CHECK_INT_EQ(req(&s, "GET", "/metrics", key, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/readyz", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
    /* --auth off: open even with keys. */
    if (th_start(&s, "--auth", "off", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* Without keys, a server others can reach refuses to start unless --auth
 * off says so; with a key it starts and requires it. */
TM_TEST(http_auth_secure_default)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char key[128];
    REQUIRE(th_tmpdir(&s) == 0);
    CHECK(th_start(&s, "--bind", "0.0.0.0", NULL) != 0);
    CHECK(log_has(&s, "not a loopback address"));
    CHECK(log_has(&s, "--auth off"));
    CHECK(log_has(&s, "topicd keys create"));
    if (th_start(&s, "--bind", "0.0.0.0", "--auth", "off", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "--auth off did not start");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", NULL, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant acme", key, sizeof(key)), 0);
    if (th_start(&s, "--bind", "0.0.0.0", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server with a key did not start");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", NULL, NULL, NULL, NULL), 401);
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", key, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

#define DOCS "cats and dogs\ndogs chase cats\nstocks and bonds\nbond markets fall\n"
#define MODEL "\"model\":{\"method\":\"nmf\",\"n_topics\":2,\"tol\":0,\"max_iter\":1000000000}"

/* Each tenant sees its own corpora and jobs; another's answer 404, as if
 * they did not exist; an admin key sees all, and what was made before keys
 * (tenant "default"). */
TM_TEST(http_auth_tenants)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char a[128], b[128], adm[128], path[200], spec[400], code[64];
    char old[40], ca[40], cb[40], ja[40], jb[40];
    REQUIRE(th_tmpdir(&s) == 0);
    /* Before keys: open, tenant "default". */
    if (th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    struct th_resp r;
    CHECK_INT_EQ(req(&s, "POST", "/v1/corpora", NULL, "text/plain", DOCS, &r), 201);
    id_of(&r, old);
    th_resp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant acme", a, sizeof(a)), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant beta", b, sizeof(b)), 0);
    CHECK_INT_EQ(keys_cmd(s.dir, "create --tenant ops --admin", adm, sizeof(adm)), 0);
    if (th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(req(&s, "POST", "/v1/corpora", a, "text/plain", DOCS, &r), 201);
    id_of(&r, ca);
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "POST", "/v1/corpora", b, "text/plain", DOCS, &r), 201);
    id_of(&r, cb);
    th_resp_free(&r);

    /* Corpora. */
    snprintf(path, sizeof(path), "/v1/corpora/%s", ca);
    CHECK_INT_EQ(req(&s, "GET", path, a, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", path, b, NULL, NULL, &r), 404);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "not_found");
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", path, adm, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "DELETE", path, b, NULL, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents", ca);
    CHECK_INT_EQ(req(&s, "POST", path, b, "text/plain", "more text\n", NULL), 404);
    CHECK_INT_EQ(req(&s, "GET", path, b, NULL, NULL, NULL), 404); /* its texts too */
    CHECK_INT_EQ(req(&s, "GET", path, a, NULL, NULL, NULL), 200);
    snprintf(path, sizeof(path), "/v1/corpora/%s", old);
    CHECK_INT_EQ(req(&s, "GET", path, a, NULL, NULL, NULL), 404);
    CHECK_INT_EQ(req(&s, "GET", path, adm, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", a, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, ca) && !strstr(r.body, cb) && !strstr(r.body, old));
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", adm, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, ca) && strstr(r.body, cb) && strstr(r.body, old));
    th_resp_free(&r);

    /* Jobs: another tenant's corpus cannot be used. */
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\"," MODEL "}", ca);
    CHECK_INT_EQ(req(&s, "POST", "/v1/jobs", b, "application/json", spec, NULL), 404);
    const char *ka[] = {NULL, "Idempotency-Key: same", NULL};
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a);
    ka[0] = auth;
    CHECK_INT_EQ(
        th_request_h(&s, "POST", "/v1/jobs", "application/json", spec, strlen(spec), ka, &r), 202);
    id_of(&r, ja);
    th_resp_free(&r);
    /* The same Idempotency-Key from another tenant makes its own job. */
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\"," MODEL "}", cb);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", b);
    CHECK_INT_EQ(
        th_request_h(&s, "POST", "/v1/jobs", "application/json", spec, strlen(spec), ka, &r), 202);
    id_of(&r, jb);
    th_resp_free(&r);
    CHECK(ja[0] && jb[0] && strcmp(ja, jb) != 0);
    const char *const sub[] = {"", "/result", "/document-topics", "/plots/topics.svg"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "/v1/jobs/%s%s", ja, sub[i]);
        CHECK_INT_EQ(req(&s, "GET", path, b, NULL, NULL, NULL), 404);
    }
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", ja);
    CHECK_INT_EQ(req(&s, "POST", path, b, NULL, NULL, NULL), 404);
    snprintf(path, sizeof(path), "/v1/jobs/%s", ja);
    CHECK_INT_EQ(req(&s, "DELETE", path, b, NULL, NULL, NULL), 404);
    CHECK_INT_EQ(req(&s, "GET", path, a, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", path, adm, NULL, NULL, NULL), 200);
    CHECK_INT_EQ(req(&s, "GET", "/v1/jobs", b, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, jb) && !strstr(r.body, ja));
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", "/v1/jobs", adm, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, jb) && strstr(r.body, ja));
    th_resp_free(&r);
    /* Each cancels its own; the admin any. */
    CHECK(req(&s, "DELETE", path, a, NULL, NULL, NULL) / 100 == 2);
    snprintf(path, sizeof(path), "/v1/jobs/%s", jb);
    CHECK(req(&s, "DELETE", path, adm, NULL, NULL, NULL) / 100 == 2);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}
