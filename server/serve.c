/* serve.c - `topicd serve`: placeholder until the HTTP service lands (issue #4). */
#include <stdio.h>

#include "cli.h"

int tm_cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "topicd: 'serve' is not implemented in this build yet\n");
    return 2;
}
