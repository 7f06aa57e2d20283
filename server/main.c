/*
 * main.c - the topicd binary: one program, several subcommands.
 *   topicd vectorize   documents -> TF-IDF, printed as JSON
 *   topicd fit         documents -> topics (the result JSON of a job)
 *   topicd serve       the HTTP job service
 */
#include <stdio.h>
#include <string.h>

#include "server/cli.h"

static void usage(FILE *out)
{
    fputs("usage: topicd <command> [options]\n"
          "\n"
          "commands:\n"
          "  vectorize   turn documents into a TF-IDF matrix and print a JSON summary\n"
          "  fit         vectorize and factorize; print the job result JSON\n"
          "  serve       run the HTTP job service\n"
          "  help        show this help\n"
          "\n"
          "`topicd <command> --help` describes each command.\n",
          out);
}

int main(int argc, char **argv)
{
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
    if (!strcmp(cmd, "serve"))
        return tm_cli_serve(argc - 1, argv + 1);
    fprintf(stderr, "topicd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
