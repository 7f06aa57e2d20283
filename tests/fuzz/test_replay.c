/*
 * test_replay.c - replays every input kept for the libFuzzer targets
 * (tests/fuzz/seeds/TARGET/ and tests/fuzz/regressions/TARGET/) through the
 * targets' entry points, built here without libFuzzer (the Makefile renames
 * each LLVMFuzzerTestOneInput to tm_fuzz_NAME), so that `make test`, and its
 * sanitizer builds, check every crash ever found stays fixed. Each target
 * runs in a child process: a target reports a broken property with
 * __builtin_trap, and the test names the input it died on.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

int tm_fuzz_corpus(const uint8_t *data, size_t size);
int tm_fuzz_http(const uint8_t *data, size_t size);
int tm_fuzz_json_scan(const uint8_t *data, size_t size);
int tm_fuzz_mmio(const uint8_t *data, size_t size);
int tm_fuzz_npz(const uint8_t *data, size_t size);
int tm_fuzz_request(const uint8_t *data, size_t size);
int tm_fuzz_spec(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    fuzz_fn fn;
} targets[] = {
    {"fuzz_corpus", tm_fuzz_corpus},
    {"fuzz_http", tm_fuzz_http},
    {"fuzz_json_scan", tm_fuzz_json_scan},
    {"fuzz_mmio", tm_fuzz_mmio},
    {"fuzz_npz", tm_fuzz_npz},
    {"fuzz_request", tm_fuzz_request},
    {"fuzz_spec", tm_fuzz_spec},
};
#define N_TARGETS ((int)(sizeof(targets) / sizeof(targets[0])))

/* tests/fuzz, found beside the fixtures (TM_FIXTURES moves both). */
static const char *fuzz_dir(void)
{
    return tm_test_fixture("../fuzz");
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Runs fn on every file of dir (sorted); sets *n to their number. The path
 * of the input being run is kept in current (shared with the parent). */
static void replay_dir(const char *dir, fuzz_fn fn, int *n, char *current, size_t size)
{
    struct dirent **names;
    int k = scandir(dir, &names, NULL, by_name);
    for (int i = 0; i < k; i++) {
        if (names[i]->d_name[0] != '.') {
            snprintf(current, size, "%s/%s", dir, names[i]->d_name);
            FILE *f = fopen(current, "rb");
            if (!f)
                _exit(3);
            uint8_t *buf = malloc(1 << 20);
            size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
            fclose(f);
            if (!buf)
                _exit(3);
            /* As libFuzzer does: a copy of exactly the input's size, so
             * that ASan sees a read past its end. */
            uint8_t *in = malloc(len ? len : 1);
            memcpy(in, buf, len);
            free(buf);
            fn(in, len);
            free(in);
            (*n)++;
        }
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

TM_TEST(fuzz_replay_seeds_and_regressions)
{
    /* The input being run and the count, shared with the child. */
    struct shared {
        char current[1024];
        int n;
    } *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    for (int i = 0; i < N_TARGETS; i++) {
        memset(sh, 0, sizeof(*sh));
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char dir[1200];
            snprintf(dir, sizeof(dir), "%s/seeds/%s", fuzz_dir(), targets[i].name);
            replay_dir(dir, targets[i].fn, &sh->n, sh->current, sizeof(sh->current));
            snprintf(dir, sizeof(dir), "%s/regressions/%s", fuzz_dir(), targets[i].name);
            replay_dir(dir, targets[i].fn, &sh->n, sh->current, sizeof(sh->current));
            sh->current[0] = 0;
            exit(0); /* atexit handlers run: fuzz_http stops its servers */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            tm_test_fail(t, __FILE__, __LINE__, "%s %s %d on %s", targets[i].name,
                         WIFEXITED(st) ? "exited" : "died of signal",
                         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                         sh->current[0] ? sh->current : "(no input: at exit)");
        /* Every target has seeds: a target that ran nothing checks nothing. */
        else if (sh->n < 1)
            tm_test_fail(t, __FILE__, __LINE__, "%s: no inputs in %s/seeds/%s", targets[i].name,
                         fuzz_dir(), targets[i].name);
    }
    munmap(sh, sizeof(*sh));
}

/* A new target (tests/fuzz/fuzz_NAME.c) is replayed too: listed above. */
TM_TEST(fuzz_replay_lists_every_target)
{
    DIR *d = opendir(fuzz_dir());
    REQUIRE(d);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "fuzz_", 5) || n < 3 || strcmp(de->d_name + n - 2, ".c"))
            continue;
        found++;
        int listed = 0;
        for (int i = 0; i < N_TARGETS; i++)
            listed |=
                strlen(targets[i].name) == n - 2 && !strncmp(targets[i].name, de->d_name, n - 2);
        if (!listed)
            tm_test_fail(t, __FILE__, __LINE__, "%s is not in test_replay.c's targets", de->d_name);
    }
    closedir(d);
    CHECK_INT_EQ(found, N_TARGETS);
}
