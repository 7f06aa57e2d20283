/* tmpstore.c - see tmpstore.h. */
#include "tmpstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"

int tm_tmpstore_open(struct tm_tmpstore *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    tm_log_set_level(TM_LOG_OFF);
    const char *base = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/topicd-%s-XXXXXX", base ? base : "/tmp", name);
    char err[TM_ERR_SIZE];
    if (!mkdtemp(s->dir) || tm_store_open_sqlite(&s->store, s->dir, err))
        return -1;
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "c_1");
    s->store.m->corpus_create(s->store.ctx, &c, err);
    return s->store.m->corpus_commit(s->store.ctx, "c_1", err) ? -1 : 0;
}

void tm_tmpstore_close(struct tm_tmpstore *s)
{
    tm_store_close(&s->store);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", s->dir);
    tm_log_set_level(TM_LOG_INFO);
}
