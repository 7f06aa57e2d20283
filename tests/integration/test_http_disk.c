/*
 * test_http_disk.c - `topicd serve` on a full disk and on a damaged store
 * (issue 16), SQLite store.
 *
 * Full disk: the data directory is a small tmpfs (mount needs root and a
 * kernel that lets this process mount; the tests skip, saying so, where it
 * cannot). An upload that hits ENOSPC answers 507 with a JSON error and
 * leaves no corpus listed but those answered 201; reads go on; once the
 * tmpfs is grown, uploads work again. A job whose result cannot be stored
 * fails with a message that says the disk is full, and a new one succeeds
 * once there is room.
 * Damaged store: a truncated file, random bytes over its header and over a
 * page in the middle each stop `topicd serve` at start, non-zero, with a
 * message on stderr that says what to do, and the file left as it was;
 * damage that appears while the store is open is reported with the same
 * advice.
 */
#include "http_helpers.h"
#include "server/store.h"

/* Mounts a tmpfs of size (mount's syntax) on dir; 0, or -1 with why. */
static int mount_tmpfs(const char *dir, const char *size, char *why, size_t why_size)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=%s tmpfs '%s' 2>/dev/null", size, dir);
    if (geteuid() != 0) {
        snprintf(why, why_size, "mounting a tmpfs needs root");
        return -1;
    }
    if (system(cmd) != 0) {
        snprintf(why, why_size, "cannot mount a tmpfs here (no CAP_SYS_ADMIN in a container?)");
        return -1;
    }
    return 0;
}

static int resize_tmpfs(const char *dir, const char *size)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mount -o remount,size=%s '%s'", size, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void umount_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "umount '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not unmount %s\n", dir);
}

/* The ids of GET /v1/corpora?limit=1000 into ids (n of them); -1 on error. */
static int list_corpora(const struct th_server *s, char ids[][40], int max)
{
    struct th_resp r;
    if (th_get(s, "/v1/corpora?limit=1000", &r) != 200) {
        th_resp_free(&r);
        return -1;
    }
    cJSON *j = th_json(&r);
    const cJSON *arr = j ? cJSON_GetObjectItemCaseSensitive(j, "corpora") : NULL;
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, arr)
    {
        const char *id = th_str(c, "id");
        if (n < max)
            snprintf(ids[n], 40, "%s", id ? id : "");
        n++;
    }
    cJSON_Delete(j);
    th_resp_free(&r);
    return n;
}

/* The error code and message of r into code and msg. */
static void error_of(const struct th_resp *r, char *code, char *msg, size_t msg_size)
{
    cJSON *j = th_json(r);
    const char *c = j ? th_str(j, "error.code") : NULL;
    const char *m = j ? th_str(j, "error.message") : NULL;
    snprintf(code, 40, "%s", c ? c : "(none)");
    snprintf(msg, msg_size, "%s", m ? m : "(none)");
    cJSON_Delete(j);
}

TM_TEST(http_disk_full_upload)
{
    struct th_server s = {0};
    char data[300], why[128];
    REQUIRE(th_tmpdir(&s) == 0);
    snprintf(data, sizeof(data), "%s/data", s.dir);
    REQUIRE(mkdir(data, 0755) == 0);
    if (mount_tmpfs(data, "3m", why, sizeof(why))) {
        th_cleanup(&s);
        SKIP(why);
    }
    if (th_start(&s, "--data-dir", data, NULL)) {
        umount_dir(data);
        th_cleanup(&s);
        REQUIRE(!"the server started on the tmpfs");
    }
    /* Uploads of about 200 kB until the 3 MB are full. */
    char ok[64][40];
    int n_ok = 0;
    long st = 0;
    struct th_resp r = {0};
    for (int i = 0; i < 40; i++) {
        size_t len;
        char *body = th_corpus_jsonl(1500, 20, (unsigned)i + 1, &len);
        th_resp_free(&r);
        st = th_request_h(&s, "POST", "/v1/corpora", "application/x-ndjson", body, len, NULL, &r);
        free(body);
        if (st != 201)
            break;
        cJSON *j = th_json(&r);
        const char *id = j ? th_str(j, "id") : NULL;
        snprintf(ok[n_ok++], 40, "%s", id ? id : "");
        cJSON_Delete(j);
    }
    char code[40], msg[512];
    error_of(&r, code, msg, sizeof(msg));
    th_resp_free(&r);
    CHECK_INT_EQ(st, 507);
    CHECK_STR_EQ(code, "insufficient_storage");
    CHECK(strstr(msg, "full") != NULL);
    CHECK(n_ok > 0);
    /* Nothing half-made is listed: exactly the corpora answered 201. */
    char listed[64][40];
    int n_listed = list_corpora(&s, listed, 64);
    CHECK_INT_EQ(n_listed, n_ok);
    for (int i = 0; i < n_ok && i < n_listed; i++)
        CHECK_STR_EQ(listed[i], ok[i]);
    /* Reads go on. */
    for (int i = 0; i < n_ok; i++) {
        char path[80];
        snprintf(path, sizeof(path), "/v1/corpora/%.40s", ok[i]);
        CHECK_INT_EQ(th_get(&s, path, NULL), 200);
    }
    CHECK_INT_EQ(th_get(&s, "/healthz", NULL), 200);
    /* Room again: uploads work. */
    CHECK(resize_tmpfs(data, "64m") == 0);
    size_t len;
    char *body = th_corpus_jsonl(1500, 20, 99, &len);
    char id[40];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", body, len, id), 201);
    free(body);
    CHECK_INT_EQ(list_corpora(&s, listed, 64), n_ok + 1);
    CHECK_INT_EQ(th_stop(&s), 0);
    umount_dir(data);
    th_cleanup(&s);
}

/* Fills the file system of dir to leave about keep bytes free, with the
 * file dir/filler; 0 or -1. */
static int fill_disk(const char *dir, long long keep)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    static char block[65536];
    off_t size = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof(block));
        if (n <= 0)
            break;
        size += n;
    }
    int rc = ftruncate(fd, size > keep ? size - keep : 0);
    close(fd);
    return rc;
}

TM_TEST(http_disk_full_job_result)
{
    struct th_server s = {0};
    char data[300], why[128], path[400];
    REQUIRE(th_tmpdir(&s) == 0);
    snprintf(data, sizeof(data), "%s/data", s.dir);
    REQUIRE(mkdir(data, 0755) == 0);
    if (mount_tmpfs(data, "64m", why, sizeof(why))) {
        th_cleanup(&s);
        SKIP(why);
    }
    if (th_start(&s, "--data-dir", data, NULL)) {
        umount_dir(data);
        th_cleanup(&s);
        REQUIRE(!"the server started on the tmpfs");
    }
    /* 8000 documents x 50 topics: 3.2 MB of weights to store, more than
     * the WAL the upload left and the room left below. */
    size_t len;
    char *body = th_corpus_big(8000, 8, 2000, &len);
    char cid[40], jid[40], state[32];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", body, len, cid), 201);
    free(body);
    static const char model[] = "{\"method\":\"nmf\",\"n_topics\":50,\"max_iter\":3}";
    /* On failure: out, to stop the server and unmount. */
    if (fill_disk(data, 256 << 10) || th_submit_model(&s, cid, model, NULL, jid) != 202) {
        tm_test_fail(t, __FILE__, __LINE__, "cannot fill the disk, then submit a job");
        goto out;
    }
    CHECK_STR_EQ(th_wait_job(&s, jid, 120, state), "failed");
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *j = th_json(&r);
    const char *code = j ? th_str(j, "error.code") : NULL;
    const char *msg = j ? th_str(j, "error.message") : NULL;
    CHECK_STR_EQ(code, "store_error");
    CHECK(msg && strstr(msg, "full"));
    cJSON_Delete(j);
    th_resp_free(&r);
    /* Its result was not stored half. */
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", jid), 409);
    /* Room again: the same job succeeds. */
    snprintf(path, sizeof(path), "%s/filler", data);
    CHECK(unlink(path) == 0);
    CHECK_INT_EQ(th_submit_model(&s, cid, model, NULL, jid), 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 120, state), "succeeded");
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", jid), 200);
out:
    CHECK_INT_EQ(th_stop(&s), 0);
    umount_dir(data);
    th_cleanup(&s);
}

/*
 * Runs `topicd serve` on dir until it listens (then stops it: -2) or exits
 * (its exit status); its stderr into err (size bytes).
 */
static int serve_outcome(const char *dir, char *err, size_t size)
{
    char bin[1024], log[400];
    snprintf(bin, sizeof(bin), "%s/topicd", tm_test_bindir());
    snprintf(log, sizeof(log), "%s.log", dir);
    unlink(log);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execl(bin, bin, "serve", "--port", "0", "--bind", "127.0.0.1", "--data-dir", dir, "--gpu",
              "off", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    int rc = -1;
    double end = th_now() + 60;
    while (th_now() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        FILE *f = fopen(log, "r");
        char line[4096];
        int listening = 0;
        while (f && fgets(line, sizeof(line), f))
            listening |= strstr(line, "\"msg\":\"listening\"") != NULL;
        if (f)
            fclose(f);
        if (listening) {
            kill(pid, SIGTERM);
            waitpid(pid, &st, 0);
            rc = -2;
            break;
        }
        th_sleep_ms(20);
    }
    if (rc == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    err[0] = 0;
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(err, 1, size - 1, f);
        err[n] = 0;
        fclose(f);
    }
    unlink(log);
    return rc;
}

/* The bytes of path into a malloc'd buffer (*len); NULL when unreadable. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int spit(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(b, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Deterministic noise. */
static void noise(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (char)(seed >> 16);
    }
}

TM_TEST(http_damaged_store_refused)
{
    /* A store with a corpus in it, closed cleanly (no WAL left). */
    struct th_server s = {0};
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(th_start(&s, NULL) == 0);
    size_t len;
    char *body = th_corpus_jsonl(3000, 20, 5, &len);
    char cid[40];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", body, len, cid), 201);
    free(body);
    REQUIRE(th_stop(&s) == 0);
    char db[400], damaged[400], path[600];
    snprintf(db, sizeof(db), "%s/topicd.db", s.dir);
    size_t size;
    char *good = slurp(db, &size);
    REQUIRE(good && size > 64 * 4096);
    static const char *const cases[] = {"truncated to half", "noise over the header",
                                        "noise over a page in the middle"};
    for (int c = 0; c < 3; c++) {
        size_t n = size;
        char *bad = malloc(size);
        REQUIRE(bad);
        memcpy(bad, good, size);
        if (c == 0)
            n = size / 2;
        else if (c == 1)
            noise(bad, 100, 1);
        else
            noise(bad + (size / 4096 / 2) * 4096, 4096, 2);
        snprintf(damaged, sizeof(damaged), "%s/damaged%d", s.dir, c);
        snprintf(path, sizeof(path), "%s/topicd.db", damaged);
        CHECK(mkdir(damaged, 0755) == 0);
        CHECK(spit(path, bad, n) == 0);
        char err[8192];
        int rc = serve_outcome(damaged, err, sizeof(err));
        if (rc <= 0)
            tm_test_fail(t, __FILE__, __LINE__, "%s: serve ended %d, want a non-zero exit: %s",
                         cases[c], rc, err);
        if (!strstr(err, "topicd serve: store: ") || !strstr(err, "is damaged") ||
            !strstr(err, "backup") || !strstr(err, ".dump"))
            tm_test_fail(t, __FILE__, __LINE__, "%s: stderr does not say what to do: %s", cases[c],
                         err);
        /* Left as it was: never rewritten as a fresh store. */
        size_t after_len;
        char *after = slurp(path, &after_len);
        CHECK(after && after_len == n && !memcmp(after, bad, n));
        free(after);
        free(bad);
    }
    /* Damage after the start-up checks: the read that meets it says so. */
    snprintf(damaged, sizeof(damaged), "%s/damaged_later", s.dir);
    snprintf(path, sizeof(path), "%s/topicd.db", damaged);
    CHECK(mkdir(damaged, 0755) == 0);
    CHECK(spit(path, good, size) == 0);
    struct tm_store st;
    char serr[TM_ERR_SIZE] = "";
    if (tm_store_open(&st, NULL, damaged, serr) == TM_OK) {
        char page[4096];
        noise(page, sizeof(page), 3);
        int fd = open(path, O_WRONLY);
        CHECK(fd >= 0 && pwrite(fd, page, sizeof(page), (off_t)(size / 4096 / 2) * 4096) == 4096);
        if (fd >= 0)
            close(fd);
        struct tm_store_docs docs;
        memset(&docs, 0, sizeof(docs));
        CHECK_INT_EQ(st.m->corpus_load(st.ctx, cid, &docs, serr), TM_EIO);
        CHECK(strstr(serr, "damaged") && strstr(serr, "backup"));
        tm_store_docs_release(&docs);
        tm_store_close(&st);
    } else {
        tm_test_fail(t, __FILE__, __LINE__, "the undamaged copy did not open: %s", serr);
    }
    /* The undamaged file starts. */
    char err[8192];
    CHECK_INT_EQ(serve_outcome(s.dir, err, sizeof(err)), -2);
    free(good);
    th_cleanup(&s);
}
