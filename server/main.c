/*
 * main.c - the topicd binary: one program, several subcommands.
 *   topicd vectorize   documents -> TF-IDF, printed as JSON
 *   topicd fit         documents -> topics (the result JSON of a job)
 *   topicd transform   new documents -> their topic weights under a kept model
 *   topicd serve       the HTTP job service
 *   topicd store copy  a SQLite store into PostgreSQL
 *   topicd keys        API keys: create, list, revoke
 */
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__ /* defined by the headers above */
#include <malloc.h>
#endif

#include "server/cli.h"

static void usage(FILE *out)
{
    fputs("usage: topicd <command> [options]\n"
          "\n"
          "commands:\n"
          "  vectorize   turn documents into a TF-IDF matrix and print a JSON summary\n"
          "  fit         vectorize and factorize; print the job result JSON\n"
          "  transform   apply a fitted model (.npz) to new documents\n"
          "  serve       run the HTTP job service\n"
          "  store copy  copy a SQLite store (a data dir) into PostgreSQL\n"
          "  keys        create, list and revoke API keys\n"
          "  help        show this help\n"
          "\n"
          "`topicd <command> --help` describes each command.\n",
          out);
}

/*
 * The allocator's policy is process-wide, like OpenBLAS's thread count, so it
 * is set once here: `fit` and the workers of `serve` get the same. glibc
 * starts with a 128 KiB mmap threshold and raises it (and the trim threshold,
 * to twice it) to the size of each mapped block it frees, so midway through
 * a fit the factor-sized temporaries move from mmap to the heap and fragment
 * it, raising the peak above the live set. A fixed small threshold keeps the
 * peak but maps, faults in and unmaps those temporaries every iteration, in
 * system time. So: the threshold fixed at its 32 MiB ceiling from the start,
 * and the heap top kept up to 64 MiB (bench/NOTES.md, "glibc's mmap and trim
 * thresholds").
 */
static void set_allocator_policy(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    set_allocator_policy();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "vectorize"))
        return tm_cli_vectorize(argc - 1, argv + 1);
    if (!strcmp(cmd, "fit"))
        return tm_cli_fit(argc - 1, argv + 1);
    if (!strcmp(cmd, "transform"))
        return tm_cli_transform(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return tm_cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "store"))
        return tm_cli_store(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys"))
        return tm_cli_keys(argc - 1, argv + 1);
    fprintf(stderr, "topicd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
