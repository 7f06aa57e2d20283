/*
 * cli.h - the subcommands of the topicd binary. Each takes the arguments
 * after "topicd" (argv[0] is the command name) and returns the exit status:
 * 0 success, 1 the job failed (bad input, numerical failure), 2 usage error.
 * Thread-safety: called once, from main.
 */
#ifndef TM_SERVER_CLI_H
#define TM_SERVER_CLI_H

int tm_cli_vectorize(int argc, char **argv);
int tm_cli_fit(int argc, char **argv);
/* `topicd transform --model FILE INPUT`: a kept model applied to new documents. */
int tm_cli_transform(int argc, char **argv);
int tm_cli_serve(int argc, char **argv);
/* `topicd store copy`: 0 copied, 1 the copy failed, 2 usage error. */
int tm_cli_store(int argc, char **argv);
/* `topicd keys create|list|revoke`: 0 done, 1 the store failed, 2 usage error. */
int tm_cli_keys(int argc, char **argv);

#endif
