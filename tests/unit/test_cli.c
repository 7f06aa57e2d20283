/* test_cli.c - `topicd vectorize` and `topicd fit` run as the user runs
 * them: a subprocess of the built binary (tm_test_bindir()), checking exit
 * status, stdout JSON and the one-line error on stderr. */
#include <cjson/cJSON.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/error.h"
#include "api/mmio.h"
#include "api/model_file.h"
#include "core/alloc.h"
#include "csvread.h"
#include "harness.h"

struct run {
    int status;
    char *out, *err;
    size_t out_len;
};

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char path[2][512];
    static int which;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/topicd-cli-XXXXXX");
        if (!mkdtemp(tmpdir))
            return "/nonexistent";
    }
    which ^= 1;
    snprintf(path[which], sizeof(path[which]), "%s/%s", tmpdir, name);
    return path[which];
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = realloc(buf, (cap *= 2) + 1);
            if (!grown)
                free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Runs "topicd ARGS" with stdin from input (NULL: /dev/null). */
static void run(struct run *r, const char *args, const char *input)
{
    char cmd[4096], in[512], out[512], err[512];
    snprintf(in, sizeof(in), "%s", input ? tmp_path("stdin") : "/dev/null");
    if (input)
        write_file(in, input);
    snprintf(out, sizeof(out), "%s", tmp_path("stdout"));
    snprintf(err, sizeof(err), "%s", tmp_path("stderr"));
    snprintf(cmd, sizeof(cmd), "'%s/topicd' %s <'%s' >'%s' 2>'%s'", tm_test_bindir(), args, in, out,
             err);
    int st = system(cmd);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out = slurp(out, &r->out_len);
    r->err = slurp(err, NULL);
    if (!r->out)
        r->out = calloc(1, 1);
    if (!r->err)
        r->err = calloc(1, 1);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static int have_binary(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/topicd", tm_test_bindir());
    return access(path, X_OK) == 0;
}

#define NEED_BINARY()                                                                              \
    do {                                                                                           \
        if (!have_binary())                                                                        \
            SKIP("no topicd binary in TM_BINDIR");                                                 \
    } while (0)

static const char *small(void)
{
    return tm_test_fixture("api/small.jsonl");
}

static const char small_lines[] = "The cat sat on the mat.\r\n"
                                  "Dogs and cats are pets; the dog barked.\n"
                                  "Stock markets fell as investors sold shares.\n"
                                  "The market rallied; shares of tech stocks rose.\n"
                                  "A cat chased the dog around the garden.\n"
                                  "Investors bought stocks after the market dip.";

static const char small_json[] =
    "[\"The cat sat on the mat.\", \"Dogs and cats are pets; the dog barked.\",\n"
    " \"Stock markets fell as investors sold shares.\",\n"
    " \"The market rallied; shares of tech stocks rose.\",\n"
    " \"A cat chased the dog around the garden.\",\n"
    " \"Investors bought stocks after the market dip.\"]";

/* The part of a vectorize output that does not depend on timing. */
static char *without_timings(const char *json)
{
    const char *t = strstr(json, ",\"timings\"");
    size_t n = t ? (size_t)(t - json) : strlen(json);
    char *s = malloc(n + 1);
    memcpy(s, json, n);
    s[n] = '\0';
    return s;
}

TM_TEST(cli_help)
{
    struct run r;
    NEED_BINARY();
    run(&r, "vectorize --help", NULL);
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.out, "usage: topicd vectorize") != NULL);
    run_free(&r);
    run(&r, "fit -h", NULL);
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.out, "--matrix-market-in") != NULL);
    run_free(&r);
}

TM_TEST(cli_usage_errors)
{
    static const struct {
        const char *args;
        const char *err;
    } cases[] = {
        {"vectorize --bogus x", "unknown option '--bogus'"},
        {"vectorize --threads 0 -", "--threads must be"},
        {"vectorize --format xml -", "--format must be"},
        {"vectorize --spec", "needs a value"},
        {"vectorize a b", "more than one INPUT"},
        {"vectorize", "no INPUT"},
        {"vectorize --spec {} --spec-file x -", "not both"},
        {"vectorize --matrix-market-in x -", "unknown option"},
        {"fit --summary -", "unknown option '--summary'"},
        {"fit -", "no \"model\""},
        {"fit --spec '{\"vectorizer\":{}}' -", "no \"model\""},
        {"fit --vocabulary v -", "--vocabulary goes with --matrix-market-in"},
        {"fit --matrix-market-in m - --spec '{\"model\":{}}'", "not both"},
        {"vectorize --spec '{\"corpus_id\":\"c1\"}' -", "corpus_id"},
        {"vectorize --spec '{\"documents\":[\"a\"]}' -", "not both"},
    };
    NEED_BINARY();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;
        run(&r, cases[i].args, "x\n");
        if (r.status != 2 || !strstr(r.err, cases[i].err))
            tm_test_fail(t, __FILE__, __LINE__, "topicd %s: exit %d, stderr %s", cases[i].args,
                         r.status, r.err);
        run_free(&r);
    }
}

TM_TEST(cli_job_errors)
{
    NEED_BINARY();
    struct run r;
    char args[1024];

    snprintf(args, sizeof(args), "vectorize --spec '{\"vectorizer\":{\"min_df\":-1}}' '%s'",
             small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 1);
    CHECK_STR_EQ(r.err, "topicd: vectorizer.min_df: must be an integer >= 0 (line 1, column 25)\n");
    CHECK_STR_EQ(r.out, "");
    run_free(&r);

    run(&r, "vectorize --spec '{\"model\":{\"method\":\"truncated_svd\",\"solver\":\"cd\"}}' -",
        "a b\n");
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "topicd: model.solver: not a parameter of truncated_svd") != NULL);
    run_free(&r);

    run(&r, "vectorize --spec '{\"model\":' -", "a b\n");
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "malformed JSON") != NULL);
    run_free(&r);

    run(&r, "vectorize /nonexistent/corpus.jsonl", NULL);
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "topicd: /nonexistent/corpus.jsonl: No such file") != NULL);
    run_free(&r);

    run(&r, "vectorize --format jsonl -", "{\"text\":\"a b\"}\n{\"body\":\"c d\"}\n");
    CHECK_INT_EQ(r.status, 1);
    CHECK_STR_EQ(r.err, "topicd: line 2: text: missing (each document needs a \"text\" string) "
                        "(column 1)\n");
    run_free(&r);

    run(&r, "vectorize --format json -", "[\"ok\", \"bad\\u0000\"]");
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "topicd: documents[1]: contains \\u0000") != NULL);
    run_free(&r);

    /* core's errors: nothing left after stop words; too many topics. */
    run(&r, "vectorize --spec '{\"vectorizer\":{\"stop_words\":\"english\"}}' --format lines -",
        "the and of\nto be or not to be\n");
    CHECK_INT_EQ(r.status, 1);
    CHECK(strncmp(r.err, "topicd: vectorizer: ", 20) == 0);
    run_free(&r);

    snprintf(args, sizeof(args), "fit --spec '{\"model\":{\"n_topics\":50}}' '%s'", small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 1);
    /* The field is named once, as core names it. */
    CHECK(strncmp(r.err, "topicd: model.n_topics: ", 24) == 0);
    run_free(&r);
}

TM_TEST(cli_vectorize_formats)
{
    NEED_BINARY();
    struct run a, b, c, d;
    char args[1024];
    snprintf(args, sizeof(args), "vectorize '%s'", small());
    run(&a, args, NULL);
    REQUIRE(a.status == 0);
    cJSON *root = cJSON_Parse(a.out);
    REQUIRE(root);
    CHECK_INT_EQ(cJSON_GetObjectItem(root, "n_documents")->valueint, 6);
    const cJSON *vocab = cJSON_GetObjectItem(root, "vocabulary");
    CHECK_INT_EQ(cJSON_GetArraySize(vocab), cJSON_GetObjectItem(root, "n_features")->valueint);
    CHECK_STR_EQ(cJSON_GetArrayItem(vocab, 0)->valuestring, "after");
    CHECK(cJSON_GetObjectItem(root, "idf") != NULL);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "tokenize") != NULL);
    cJSON_Delete(root);

    run(&b, "vectorize --format lines -", small_lines);
    run(&c, "vectorize -", small_json); /* '[' -> JSON */
    write_file(tmp_path("small.json"), small_json);
    snprintf(args, sizeof(args), "vectorize --threads 1 '%s'", tmp_path("small.json"));
    run(&d, args, NULL);
    CHECK_INT_EQ(b.status, 0);
    CHECK_INT_EQ(c.status, 0);
    CHECK_INT_EQ(d.status, 0);
    char *sa = without_timings(a.out), *sb = without_timings(b.out), *sc = without_timings(c.out),
         *sd = without_timings(d.out);
    CHECK_STR_EQ(sb, sa);
    CHECK_STR_EQ(sc, sa);
    CHECK_STR_EQ(sd, sa);
    free(sa);
    free(sb);
    free(sc);
    free(sd);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    run_free(&d);

    run(&a, "vectorize --summary --spec '{\"vectorizer\":{\"weighting\":\"count\"}}' -",
        "{\"text\":\"b a c\"}\n{\"text\":\"a a\"}\n");
    CHECK_INT_EQ(a.status, 1); /* one-letter words are not tokens: no terms at all */
    run_free(&a);
    run(&a, "vectorize --summary --spec '{\"vectorizer\":{\"weighting\":\"count\"}}' -",
        "{\"text\":\"bb aa cc\"}\n{\"text\":\"aa aa\"}\n");
    CHECK_INT_EQ(a.status, 0);
    CHECK(strstr(a.out, "\"vocabulary_head\":[\"aa\",\"bb\",\"cc\"]") != NULL);
    CHECK(strstr(a.out, "\"document_frequencies_head\":[2,1,1]") != NULL);
    CHECK(strstr(a.out, "idf") == NULL);
    run_free(&a);

    /* Inline documents in the spec, no INPUT. */
    run(&a, "vectorize --spec '{\"documents\":[\"xx yy\",{\"id\":\"2\",\"text\":\"yy zz\"}]}'",
        NULL);
    CHECK_INT_EQ(a.status, 0);
    CHECK(strstr(a.out, "\"vocabulary\":[\"xx\",\"yy\",\"zz\"]") != NULL);
    run_free(&a);
}

/* A JSON Lines file of about 4 MB: a BOM, ids, escapes, a blank line and a
 * CRLF line, then a bad record on line bad_line when bad_line > 0. */
static void write_big_jsonl(const char *path, int bad_line)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fputs("\xEF\xBB\xBF", f);
    for (int i = 1; i <= 30000; i++) {
        if (i == bad_line)
            fputs("{\"text\": 7}\n", f);
        else if (i % 9973 == 0)
            fputs("\n", f);
        else
            fprintf(f,
                    "{\"id\":\"d%d\",\"text\":\"w%d common\\nterm%d caf\\u00e9 x%d y%d "
                    "and a longer tail of words to reach some size, line %d of many\"}%s\n",
                    i, i % 5003, i % 97, i % 31, i % 7919, i, i % 5000 == 0 ? "\r" : "");
    }
    fclose(f);
}

/* A large JSON Lines or lines file is read in parts on the threads at once
 * (server/cli.c's load_parallel): the same matrix and summary as one stream
 * (--threads 1, stdin), and on a bad record the same error, its line
 * counted from the start of the file. */
TM_TEST(cli_vectorize_read_in_parts)
{
    NEED_BINARY();
    struct run a, b, c;
    char args[2048], mm_a[512], mm_b[512], big[512];
    snprintf(big, sizeof(big), "%s", tmp_path("big.jsonl"));
    write_big_jsonl(big, 0);
    snprintf(mm_a, sizeof(mm_a), "%s", tmp_path("parts.mtx"));
    snprintf(mm_b, sizeof(mm_b), "%s", tmp_path("whole.mtx"));
    for (int threads = 2; threads <= 3; threads++) {
        snprintf(args, sizeof(args), "vectorize --quiet --threads %d --matrix-market '%s' '%s'",
                 threads, mm_a, big);
        run(&a, args, NULL);
        snprintf(args, sizeof(args), "vectorize --quiet --threads 1 --matrix-market '%s' '%s'",
                 mm_b, big);
        run(&b, args, NULL);
        if (a.status != 0 || b.status != 0)
            tm_test_fail(t, __FILE__, __LINE__, "exit %d, %d: %s%s", a.status, b.status, a.err,
                         b.err);
        CHECK(strstr(a.out, "\"n_documents\":29997,") != NULL);
        char *sa = without_timings(a.out), *sb = without_timings(b.out);
        CHECK(strcmp(sa, sb) == 0);
        free(sa);
        free(sb);
        size_t la = 0, lb = 0;
        char *xa = slurp(mm_a, &la), *xb = slurp(mm_b, &lb);
        CHECK(xa && xb && la == lb && la > 0 && memcmp(xa, xb, la) == 0);
        free(xa);
        free(xb);
        run_free(&a);
        run_free(&b);
    }
    /* lines: each line a document, CRLF and all */
    snprintf(args, sizeof(args), "vectorize --quiet --threads 2 --format lines '%s'", big);
    run(&a, args, NULL);
    snprintf(args, sizeof(args), "vectorize --quiet --threads 1 --format lines '%s'", big);
    run(&b, args, NULL);
    CHECK_INT_EQ(a.status, 0);
    char *sa = without_timings(a.out), *sb = without_timings(b.out);
    CHECK(strcmp(sa, sb) == 0);
    free(sa);
    free(sb);
    run_free(&a);
    run_free(&b);
    /* a bad record early, late: the error one stream gives */
    static const int bad[] = {3, 29000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];
        write_big_jsonl(big, bad[i]);
        snprintf(args, sizeof(args), "vectorize --quiet --threads 2 '%s'", big);
        run(&c, args, NULL);
        CHECK_INT_EQ(c.status, 1);
        snprintf(want, sizeof(want), "topicd: line %d: text: ", bad[i]);
        if (strncmp(c.err, want, strlen(want)) != 0)
            tm_test_fail(t, __FILE__, __LINE__, "want %s..., got %s", want, c.err);
        run_free(&c);
    }
}

/* vectorize --matrix-market, then fit the same matrix two ways: from the
 * corpus and from the file (+ vocabulary): the same topics. */
TM_TEST(cli_matrix_market_round_trip)
{
    NEED_BINARY();
    struct run a, b, c;
    char args[2048];
    const char *spec = "{\"model\":{\"method\":\"nmf\",\"n_topics\":2,\"n_top_words\":4},"
                       "\"seed\":3}";
    char mm[512], vocab_path[512];
    snprintf(mm, sizeof(mm), "%s", tmp_path("small.mtx"));
    snprintf(vocab_path, sizeof(vocab_path), "%s", tmp_path("small.vocab"));
    snprintf(args, sizeof(args), "vectorize --matrix-market '%s' '%s'", mm, small());
    run(&a, args, NULL);
    REQUIRE(a.status == 0);

    size_t len;
    char *bytes = slurp(mm, &len);
    REQUIRE(bytes);
    struct tm_csr m;
    struct tm_api_error e;
    REQUIRE(tm_mmio_read(bytes, len, &m, &e) == TM_OK);
    free(bytes);
    cJSON *root = cJSON_Parse(a.out);
    REQUIRE(root);
    CHECK_INT_EQ(m.n_rows, 6);
    CHECK_INT_EQ(m.n_cols, cJSON_GetObjectItem(root, "n_features")->valueint);
    CHECK_INT_EQ(tm_csr_nnz(&m), cJSON_GetObjectItem(root, "nnz")->valueint);
    tm_csr_release(&m);
    FILE *f = fopen(vocab_path, "w");
    REQUIRE(f);
    const cJSON *term;
    cJSON_ArrayForEach(term, cJSON_GetObjectItem(root, "vocabulary"))
        fprintf(f, "%s\n", term->valuestring);
    fclose(f);
    cJSON_Delete(root);

    snprintf(args, sizeof(args), "fit --threads 1 --spec '%s' '%s'", spec, small());
    run(&b, args, NULL);
    snprintf(args, sizeof(args),
             "fit --threads 1 --spec '%s' --matrix-market-in '%s' --vocabulary '%s'", spec, mm,
             vocab_path);
    run(&c, args, NULL);
    CHECK_INT_EQ(b.status, 0);
    CHECK_INT_EQ(c.status, 0);
    const char *tb = strstr(b.out, "\"topics\""), *tc = strstr(c.out, "\"topics\"");
    const char *eb = tb ? strstr(tb, "\"device\"") : NULL,
               *ec = tc ? strstr(tc, "\"device\"") : NULL;
    REQUIRE(tb && tc && eb && ec);
    CHECK(eb - tb == ec - tc && memcmp(tb, tc, (size_t)(eb - tb)) == 0);
    run_free(&b);
    run_free(&c);

    /* A vocabulary of the wrong length. */
    write_file(vocab_path, "one\ntwo\n");
    snprintf(args, sizeof(args), "fit --spec '%s' --matrix-market-in '%s' --vocabulary '%s'", spec,
             mm, vocab_path);
    run(&b, args, NULL);
    CHECK_INT_EQ(b.status, 1);
    CHECK(strstr(b.err, "2 terms for a matrix of") != NULL);
    run_free(&b);

    /* A broken matrix names its line. */
    write_file(mm, "%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n");
    snprintf(args, sizeof(args), "fit --spec '%s' --matrix-market-in '%s'", spec, mm);
    run(&b, args, NULL);
    CHECK_INT_EQ(b.status, 1);
    CHECK(strstr(b.err, "line 3: index outside the declared size") != NULL);
    run_free(&b);
    run_free(&a);
}

/* --matrix-market-in streams its file: from standard input too, a cut file
 * names its last line, a missing one says so. */
TM_TEST(cli_matrix_market_stream)
{
    NEED_BINARY();
    struct run r;
    char args[2048];
    const char *spec = "{\"model\":{\"method\":\"nmf\",\"n_topics\":1,\"n_top_words\":1}}";
    const char *mtx = "%%MatrixMarket matrix coordinate real general\n% rows out of order\n"
                      "3 2 4\n3 2 1\n1 1 2\n2 2 0.5\n1 1 1\n";
    snprintf(args, sizeof(args), "fit --spec '%s' --matrix-market-in -", spec);
    run(&r, args, mtx);
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.out, "\"n_documents\":3,\"n_features\":2,\"nnz\":3") != NULL);
    run_free(&r);

    char mm[512];
    snprintf(mm, sizeof(mm), "%s", tmp_path("cut.mtx"));
    write_file(mm, "%%MatrixMarket matrix coordinate real general\n3 2 4\n3 2 1\n1 1 2\n2 2");
    snprintf(args, sizeof(args), "fit --spec '%s' --matrix-market-in '%s'", spec, mm);
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "line 5: expected \"row column value\"") != NULL);
    run_free(&r);

    snprintf(args, sizeof(args), "fit --spec '%s' --matrix-market-in /nonexistent/x.mtx", spec);
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "topicd: /nonexistent/x.mtx: No such file") != NULL);
    run_free(&r);
}

TM_TEST(cli_fit_result)
{
    NEED_BINARY();
    struct run r;
    char args[1024];
    snprintf(args, sizeof(args),
             "fit --spec '{\"vectorizer\":{\"stop_words\":\"english\"},\"model\":{\"method\":"
             "\"truncated_svd\",\"n_topics\":2,\"n_top_words\":3},\"return\":{\"document_topics\":"
             "true},\"seed\":1}' '%s'",
             small());
    run(&r, args, NULL);
    REQUIRE(r.status == 0);
    cJSON *root = cJSON_Parse(r.out);
    REQUIRE(root);
    CHECK_STR_EQ(cJSON_GetObjectItem(root, "method")->valuestring, "truncated_svd");
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(root, "topics")), 2);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(root, "singular_values")), 2);
    const cJSON *dt = cJSON_GetObjectItem(root, "document_topics");
    CHECK_INT_EQ(cJSON_GetArraySize(dt), 6);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetArrayItem(dt, 0)), 2);
    const cJSON *w = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(
                               cJSON_GetArrayItem(cJSON_GetObjectItem(root, "topics"), 0), "words"),
                           0),
        "term");
    CHECK(cJSON_IsString(w));
    cJSON_Delete(root);
    run_free(&r);

    /* Same spec and input, same result. */
    struct run a, b;
    snprintf(args, sizeof(args),
             "fit --spec '{\"model\":{\"method\":\"nmf\",\"n_topics\":2,\"init\":\"random\"},"
             "\"seed\":7}' '%s'",
             small());
    run(&a, args, NULL);
    run(&b, args, NULL);
    CHECK_INT_EQ(a.status, 0);
    const char *ta = strstr(a.out, "\"topics\""), *tb = strstr(b.out, "\"topics\"");
    const char *ea = ta ? strstr(ta, "\"timings\"") : NULL,
               *eb = tb ? strstr(tb, "\"timings\"") : NULL;
    REQUIRE(ta && tb && ea && eb);
    CHECK(ea - ta == eb - tb && memcmp(ta, tb, (size_t)(ea - ta)) == 0);
    run_free(&a);
    run_free(&b);
}

/* --save-model writes the model file the server keeps; the result says its
 * size; a Matrix Market input has no vectorizer to save. */
TM_TEST(cli_fit_save_model)
{
    NEED_BINARY();
    struct run r;
    char args[1024];
    char path[512];
    snprintf(path, sizeof(path), "%s", tmp_path("model.npz")); /* run() reuses its buffers */
    unlink(path);
    snprintf(args, sizeof(args),
             "fit --quiet --spec '{\"model\":{\"method\":\"nmf\",\"n_topics\":2}}'"
             " --save-model '%s' '%s'",
             path, small());
    run(&r, args, NULL);
    REQUIRE(r.status == 0);
    cJSON *root = cJSON_Parse(r.out);
    REQUIRE(root);
    size_t len = 0;
    char *bytes = slurp(path, &len);
    REQUIRE(bytes);
    const cJSON *mb = cJSON_GetObjectItem(root, "model_bytes");
    CHECK(cJSON_IsNumber(mb) && mb->valuedouble == (double)len);
    struct tm_model_file m;
    char err[TM_ERR_SIZE];
    CHECK_INT_EQ(tm_model_file_read(bytes, len, &m, err), TM_OK);
    CHECK_INT_EQ(m.n_topics, 2);
    CHECK_INT_EQ(m.n_documents, 6);
    CHECK(cJSON_GetObjectItem(root, "n_features")->valuedouble == (double)m.n_features);
    CHECK(m.term_frequency && m.doc_lengths);
    tm_model_file_release(&m);
    free(bytes);
    cJSON_Delete(root);
    run_free(&r);

    /* Not with a matrix, and an unwritable path is the job's failure. */
    snprintf(args, sizeof(args),
             "fit --spec '{\"model\":{}}' --matrix-market-in x.mtx --save-model m.npz");
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 2);
    CHECK(r.err && strstr(r.err, "--save-model needs documents"));
    run_free(&r);
    snprintf(args, sizeof(args),
             "fit --quiet --spec '{\"model\":{\"n_topics\":2}}' --save-model /nonexistent/m.npz"
             " '%s'",
             small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 1);
    CHECK(r.err && strstr(r.err, "/nonexistent/m.npz"));
    run_free(&r);
}

TM_TEST(cli_progress)
{
    NEED_BINARY();
    struct run r;
    char args[1024];
    snprintf(args, sizeof(args),
             "fit --progress --spec '{\"model\":{\"method\":\"truncated_svd\",\"n_topics\":2}}' "
             "'%s'",
             small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.err, "topicd: tokenize ") != NULL);
    CHECK(strstr(r.out, "\"topics\"") != NULL);
    run_free(&r);
    /* --quiet wins over --progress; without either, a log gets nothing. */
    snprintf(args, sizeof(args),
             "fit --progress --quiet --spec '{\"model\":{\"method\":\"truncated_svd\","
             "\"n_topics\":2}}' '%s'",
             small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 0);
    CHECK_STR_EQ(r.err, "");
    run_free(&r);
    snprintf(args, sizeof(args), "vectorize --summary '%s'", small());
    run(&r, args, NULL);
    CHECK_INT_EQ(r.status, 0);
    CHECK_STR_EQ(r.err, "");
    run_free(&r);
}

/* On a terminal (a pseudo-terminal as standard error), a bar redrawn in
 * place, each stage's line ended before the result is written. */
TM_TEST(cli_progress_bar_on_a_terminal)
{
    NEED_BINARY();
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) != 0)
        SKIP("no pseudo-terminal (openpty failed)");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "'%s/topicd' fit --spec '{\"model\":{\"method\":\"nmf\",\"n_topics\":2}}' '%s' "
             ">/dev/null </dev/null",
             tm_test_bindir(), small());
    pid_t pid = fork();
    if (pid == 0) {
        close(master);
        dup2(slave, STDERR_FILENO);
        close(slave);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(slave);
    char buf[65536];
    size_t len = 0;
    ssize_t n;
    /* The master reads EIO once the child has closed the terminal. */
    while (len + 1 < sizeof(buf) && (n = read(master, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(master);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(buf, "\rtokenize") != NULL);
    CHECK(strstr(buf, "\rnmf") != NULL);
    CHECK(strstr(buf, " ETA ") != NULL);
    CHECK(len > 0 && buf[len - 1] == '\n'); /* the bar's line was ended */
}

/* The top-level "device" for `topicd fit`, with no usable GPU (a plugin
 * that cannot load, named explicitly, so the search stops there): "gpu"
 * fails naming the device, after the model's own checks; full_svd runs on
 * the host whatever the device; "auto" and "cpu" run on the CPU. */
TM_TEST(cli_fit_device)
{
    NEED_BINARY();
    static const struct {
        const char *spec;
        int status;
        const char *out, *err; /* in stdout, and stderr exactly */
    } cases[] = {
        {"{\"device\":\"gpu\",\"model\":{\"n_topics\":2}}", 1, "",
         "topicd: device: no GPU backend in this build\n"},
        {"{\"device\":\"gpu\",\"model\":{\"method\":\"truncated_svd\",\"n_topics\":50}}", 1, "",
         "topicd: model.n_topics: 50 exceeds min(n_documents, n_features) = 6\n"},
        {"{\"device\":\"gpu\",\"model\":{\"method\":\"full_svd\",\"n_topics\":2}}", 0,
         "\"device\":\"cpu\"", ""},
        {"{\"device\":\"auto\",\"model\":{\"n_topics\":2}}", 0, "\"device\":\"cpu\"", ""},
        {"{\"device\":\"cpu\",\"model\":{\"n_topics\":2}}", 0, "\"device\":\"cpu\"", ""},
    };
    const char *plugin = tmp_path("broken_plugin.so");
    char saved[4096] = "", args[1024];
    const char *env = getenv("TOPICD_GPU_PLUGIN");
    int had = env != NULL;
    if (env)
        snprintf(saved, sizeof(saved), "%s", env);
    write_file(plugin, "not an ELF file\n");
    setenv("TOPICD_GPU_PLUGIN", plugin, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;
        snprintf(args, sizeof(args), "fit --spec '%s' '%s'", cases[i].spec, small());
        run(&r, args, NULL);
        if (r.status != cases[i].status || !strstr(r.out, cases[i].out) ||
            strcmp(r.err, cases[i].err) != 0)
            tm_test_fail(t, __FILE__, __LINE__, "%s: exit %d, stderr \"%s\", stdout %.80s",
                         cases[i].spec, r.status, r.err, r.out);
        run_free(&r);
    }
    if (had)
        setenv("TOPICD_GPU_PLUGIN", saved, 1);
    else
        unsetenv("TOPICD_GPU_PLUGIN");
}

/* fit --csv-dir: the server's two CSV files, read back (tests/csvread.h)
 * against the result the command prints. */
struct csv_rows {
    struct tm_csvrow rows[64];
    int n;
};

static int keep_row(void *ctx, const struct tm_csvrow *r)
{
    struct csv_rows *c = ctx;
    if (c->n == 64)
        return -1;
    c->rows[c->n++] = *r;
    return 0;
}

TM_TEST(cli_fit_csv_dir)
{
    NEED_BINARY();
    static const char docs[] =
        "{\"id\":\"a,b\",\"text\":\"cat dog pet fur\"}\n"
        "{\"id\":\"say \\\"hi\\\"\",\"text\":\"stock bond market yield\"}\n"
        "{\"text\":\"cat pet vet paw\"}\n"
        "{\"id\":\"two\\nlines \xe2\x9c\x93\",\"text\":\"bond yield fund\"}\n";
    static const char *const ids[] = {"a,b", "say \"hi\"", "2", "two\nlines \xe2\x9c\x93"};
    char args[1024], dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s", tmp_path("csv"));
    snprintf(args, sizeof(args),
             "fit --quiet --csv-dir '%s' --spec '{\"model\":{\"method\":\"nmf\",\"n_topics\":2,"
             "\"n_top_words\":4},\"return\":{\"document_topics\":true},\"seed\":1}' -",
             dir);
    struct run r;
    run(&r, args, docs);
    REQUIRE(r.status == 0);
    cJSON *root = cJSON_Parse(r.out);
    REQUIRE(root);

    size_t len;
    snprintf(path, sizeof(path), "%s/topic-terms.csv", dir);
    char *text = slurp(path, &len);
    REQUIRE(text);
    struct csv_rows c = {.n = 0};
    CHECK_INT_EQ(tm_csvread(text, len, keep_row, &c), 1 + 2 * 4);
    CHECK(!strcmp(c.rows[0].f[0], "topic") && !strcmp(c.rows[0].f[1], "term"));
    int row = 1;
    const cJSON *topic, *word;
    cJSON_ArrayForEach(topic, cJSON_GetObjectItem(root, "topics"))
    {
        cJSON_ArrayForEach(word, cJSON_GetObjectItem(topic, "words"))
        {
            CHECK_INT_EQ(atoi(c.rows[row].f[0]), cJSON_GetObjectItem(topic, "index")->valueint);
            CHECK_STR_EQ(c.rows[row].f[1], cJSON_GetObjectItem(word, "term")->valuestring);
            CHECK(strtod(c.rows[row].f[2], NULL) ==
                  cJSON_GetObjectItem(word, "weight")->valuedouble);
            row++;
        }
    }
    CHECK_INT_EQ(row, 9);
    free(text);

    snprintf(path, sizeof(path), "%s/document-topics.csv", dir);
    text = slurp(path, &len);
    REQUIRE(text);
    c.n = 0;
    CHECK_INT_EQ(tm_csvread(text, len, keep_row, &c), 1 + 4 * 2);
    CHECK(!strcmp(c.rows[0].f[0], "document_id") && !strcmp(c.rows[0].f[2], "weight"));
    const cJSON *dt = cJSON_GetObjectItem(root, "document_topics");
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            const struct tm_csvrow *x = &c.rows[1 + i * 2 + j];
            CHECK_STR_EQ(x->f[0], ids[i]);
            CHECK_INT_EQ(atoi(x->f[1]), j);
            CHECK(strtod(x->f[2], NULL) ==
                  cJSON_GetArrayItem(cJSON_GetArrayItem(dt, i), j)->valuedouble);
        }
    free(text);
    cJSON_Delete(root);
    run_free(&r);

    /* A directory that cannot be made: exit 1 naming it, no result printed. */
    snprintf(path, sizeof(path), "%s/topic-terms.csv/sub", dir);
    snprintf(
        args, sizeof(args),
        "fit --quiet --csv-dir '%s' --spec '{\"model\":{\"method\":\"nmf\",\"n_topics\":2}}' -",
        path);
    run(&r, args, docs);
    CHECK_INT_EQ(r.status, 1);
    CHECK(strstr(r.err, "topic-terms.csv/sub") != NULL);
    CHECK_INT_EQ(r.out_len, 0);
    run_free(&r);
}
