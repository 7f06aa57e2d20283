/* test_cli_transform.c - `topicd transform --model FILE INPUT` run as the
 * user runs it (a subprocess of the built binary): a model file written by
 * api/model_file.h, documents in JSON Lines with ids; the printed weights
 * are tm_apply_run's to the last bit; and its errors. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/apply.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/fit.h"
#include "harness.h"

static char dir[256];

static const char *path_of(const char *name)
{
    static char path[4][512];
    static int which;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/topicd-cli-transform-XXXXXX");
        if (!mkdtemp(dir))
            return "/nonexistent";
    }
    which = (which + 1) % 4;
    snprintf(path[which], sizeof(path[which]), "%s/%s", dir, name);
    return path[which];
}

static int put(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(bytes, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static char *get(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return calloc(1, 1);
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

/* "topicd ARGS": the exit status, stdout and stderr (free both). */
static int run(const char *args, char **out, char **err)
{
    char cmd[2048], o[512], e[512];
    snprintf(o, sizeof(o), "%s", path_of("stdout"));
    snprintf(e, sizeof(e), "%s", path_of("stderr"));
    snprintf(cmd, sizeof(cmd), "'%s/topicd' %s </dev/null >'%s' 2>'%s'", tm_test_bindir(), args, o,
             e);
    int st = system(cmd);
    *out = get(o);
    *err = get(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *const train[] = {
    "the cat sat on the mat with another cat", "dogs and cats are pets; a dog barks",
    "rockets fly to space and orbit the moon", "the moon orbits the earth, space is vast",
    "pets like a warm mat and a quiet room",   "space rockets need fuel to reach orbit",
};

/* The model of train as a job keeps it, written to *path's file and read
 * back into m. */
static tm_status make_model(const char *spec_json, const char *file, struct tm_model_file *m)
{
    struct tm_job_spec spec;
    struct tm_api_error e;
    struct tm_vectorized v;
    struct tm_fit_result fit;
    char err[TM_ERR_SIZE] = "";
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct tm_doc docs[6];
    for (int i = 0; i < 6; i++)
        docs[i] = (struct tm_doc){train[i], strlen(train[i])};
    memset(&v, 0, sizeof(v));
    memset(&fit, 0, sizeof(fit));
    memset(m, 0, sizeof(*m));
    tm_job_spec_init(&spec);
    tm_status st = tm_job_spec_parse(&spec, spec_json, strlen(spec_json), NULL, &e);
    if (!st)
        st = tm_vectorize(&spec.vectorizer, docs, 6, NULL, &v, err);
    if (!st)
        st = tm_fit(NULL, NULL, &v.matrix, &spec.model, NULL, &fit, err);
    struct tm_model_file_parts p = {.fit = &fit, .v = &v, .spec = &spec};
    if (!st)
        st = tm_model_file_write(&p, &bytes, &len, err);
    if (!st)
        st = put(file, bytes, len) ? TM_EIO : TM_OK;
    if (!st)
        st = tm_model_file_read(bytes, len, m, err);
    tm_free(bytes);
    tm_fit_result_release(&fit);
    tm_vectorized_release(&v);
    tm_job_spec_release(&spec);
    return st;
}

TM_TEST(cli_transform)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/topicd", tm_test_bindir());
    if (access(bin, X_OK))
        SKIP("no topicd binary in TM_BINDIR");
    const char *new_docs[] = {"a cat and a dog on a mat", "the moon and the rockets",
                              "unheard-of zebras"};
    const char *input = "{\"id\":\"n1\",\"text\":\"a cat and a dog on a mat\"}\n"
                        "{\"id\":\"n2\",\"text\":\"the moon and the rockets\"}\n"
                        "{\"text\":\"unheard-of zebras\"}\n";
    char model_path[512], input_path[512], args[1600];
    snprintf(model_path, sizeof(model_path), "%s", path_of("model.npz"));
    snprintf(input_path, sizeof(input_path), "%s", path_of("new.jsonl"));
    REQUIRE(put(input_path, input, strlen(input)) == 0);
    const char *specs[] = {"{\"vectorizer\":{\"stop_words\":\"english\"},\"model\":{\"method\":"
                           "\"nmf\",\"n_topics\":2,\"solver\":\"mu\"}}",
                           "{\"model\":{\"method\":\"truncated_svd\",\"n_topics\":2}}"};
    for (int c = 0; c < 2; c++) {
        struct tm_model_file m;
        REQUIRE(make_model(specs[c], model_path, &m) == TM_OK);
        struct tm_doc docs[3];
        for (int i = 0; i < 3; i++)
            docs[i] = (struct tm_doc){new_docs[i], strlen(new_docs[i])};
        struct tm_transform_result want;
        char err[TM_ERR_SIZE];
        REQUIRE(tm_apply_run(&m, docs, 3, NULL, NULL, 1, NULL, &want, err) == TM_OK);
        char *out, *errout;
        snprintf(args, sizeof(args), "transform --quiet --model '%s' '%s'", model_path, input_path);
        int rc = run(args, &out, &errout);
        CHECK_INT_EQ(rc, 0);
        cJSON *j = cJSON_Parse(out);
        const cJSON *dt = cJSON_GetObjectItem(j, "document_topics");
        const cJSON *ids = cJSON_GetObjectItem(j, "ids");
        CHECK_INT_EQ(cJSON_GetArraySize(dt), 3);
        CHECK_INT_EQ(
            cJSON_GetObjectItem(j, "n_topics") ? cJSON_GetObjectItem(j, "n_topics")->valueint : -1,
            2);
        CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0)), "n1");
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(ids, 2)));
        int same = dt != NULL;
        for (int i = 0; dt && i < 3; i++)
            for (int q = 0; q < 2; q++) {
                const cJSON *x = cJSON_GetArrayItem(cJSON_GetArrayItem(dt, i), q);
                same &= cJSON_IsNumber(x) && x->valuedouble == want.document_topics.data[i + q * 3];
            }
        if (!same)
            tm_test_fail(t, __FILE__, __LINE__, "case %d: %s (stderr %s)", c, out, errout);
        cJSON_Delete(j);
        free(out);
        free(errout);
        tm_transform_result_release(&want);
        tm_model_file_release(&m);
    }

    /* Errors: usage (2), and a file that is not a model (1, naming it). */
    char *out, *errout;
    CHECK_INT_EQ(run("transform x.jsonl", &out, &errout), 2);
    CHECK(strstr(errout, "--model") != NULL);
    free(out);
    free(errout);
    snprintf(args, sizeof(args), "transform --model '%s'", model_path);
    CHECK_INT_EQ(run(args, &out, &errout), 2);
    CHECK(strstr(errout, "INPUT") != NULL);
    free(out);
    free(errout);
    snprintf(args, sizeof(args), "transform --model '%s' '%s'", input_path, input_path);
    CHECK_INT_EQ(run(args, &out, &errout), 1);
    CHECK(strstr(errout, "model") != NULL && out[0] == '\0');
    free(out);
    free(errout);
    snprintf(args, sizeof(args), "transform --model '%s/none.npz' '%s'", dir, input_path);
    CHECK_INT_EQ(run(args, &out, &errout), 1);
    CHECK(strstr(errout, "none.npz") != NULL);
    free(out);
    free(errout);
    CHECK_INT_EQ(run("transform --help", &out, &errout), 0);
    CHECK(strstr(out, "usage: topicd transform") != NULL);
    free(out);
    free(errout);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}
