/*
 * logcapture.h - for the tests that read what server/log.c writes: stderr
 * (fd 2) goes to a temporary file, at the level the test asks for, until
 * the test takes the bytes back. Static functions, so that each test file
 * includes what it uses.
 */
#ifndef TM_TESTS_LOGCAPTURE_H
#define TM_TESTS_LOGCAPTURE_H

#include <stdio.h>
#include <unistd.h>

#include "server/log.h"

struct tm_logcapture {
    FILE *file;
    int saved_fd;
    enum tm_log_level saved_level;
};

/* 0, or -1 (stderr untouched) when the file cannot be made. */
__attribute__((unused)) static int tm_logcapture_start(struct tm_logcapture *c,
                                                       enum tm_log_level level)
{
    c->saved_level = tm__log_level;
    fflush(stderr);
    c->file = tmpfile();
    if (!c->file)
        return -1;
    c->saved_fd = dup(2);
    if (c->saved_fd < 0 || dup2(fileno(c->file), 2) < 0) {
        fclose(c->file);
        return -1;
    }
    tm_log_set_level(level);
    return 0;
}

/* Puts stderr and the level back; buf (size bytes) gets what was written,
 * NUL-terminated. Returns its length. */
__attribute__((unused)) static size_t tm_logcapture_end(struct tm_logcapture *c, char *buf,
                                                        size_t size)
{
    tm_log_set_level(c->saved_level);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    rewind(c->file);
    size_t n = fread(buf, 1, size - 1, c->file);
    buf[n] = '\0';
    fclose(c->file);
    return n;
}

#endif
