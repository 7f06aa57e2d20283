/*
 * preprocess.h - newsgroup cleanup exactly as scikit-learn's
 * fetch_20newsgroups(remove=("headers", "footers", "quotes")) does it
 * (sklearn/datasets/_twenty_newsgroups.py), on valid UTF-8.
 *
 * - headers: everything before the first blank line goes, as does the text
 *   of a document without one (text.partition("\n\n")[2]).
 * - footers: the text is stripped of Unicode whitespace and split on "\n";
 *   the last line made only of whitespace and '-' at index > 0 cuts off
 *   itself and what follows. With no such line (or only line 0), the
 *   original text comes back unchanged, unstripped.
 * - quotes: lines containing "writes in", "writes:", "wrote:", "says:" or
 *   "said:", or starting with "In article", "Quoted from", '|' or '>', go.
 * Lines are split on "\n" only: a CR stays part of its line.
 * Thread-safety: reentrant, no state.
 */
#ifndef TM_CORE_TEXT_PREPROCESS_H
#define TM_CORE_TEXT_PREPROCESS_H

#include <stddef.h>

/* Each returns the length of the result and points *out into s. */
size_t tm_preprocess_strip_header(const char *s, size_t len, const char **out);
size_t tm_preprocess_strip_footer(const char *s, size_t len, const char **out);

/* Writes the kept lines of s to out (caller's, len bytes of room; must not
 * overlap s) and returns the length written. */
size_t tm_preprocess_strip_quotes(const char *s, size_t len, char *out);

/*
 * Applies the TM_STRIP_* flags of vectorize.h in scikit-learn's order
 * (headers, footers, quotes). scratch: caller's, len bytes, used only for
 * quotes. Returns the result's length and points *out into s or scratch.
 */
size_t tm_preprocess(unsigned flags, const char *s, size_t len, char *scratch, const char **out);

#endif
