/* cli.c - placeholder entry points until the subcommands land (issue #2 work in progress). */
#include "cli.h"

#include <stdio.h>

static int not_yet(const char *name)
{
    fprintf(stderr, "topicd: '%s' is not implemented in this build yet\n", name);
    return 2;
}

int tm_cli_vectorize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet("vectorize");
}

int tm_cli_fit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return not_yet("fit");
}
