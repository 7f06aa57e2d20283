/*
 * stopwords.h - scikit-learn's built-in English stop-word list.
 *
 * The table is generated from sklearn.feature_extraction.text.
 * ENGLISH_STOP_WORDS by bench/gen_stopwords.py: 318 lower-case ASCII words in
 * byte order. Thread-safety: read-only data.
 */
#ifndef TM_CORE_TEXT_STOPWORDS_H
#define TM_CORE_TEXT_STOPWORDS_H

#include <stddef.h>

/* Points *words at the static, sorted list and returns its length (318). */
size_t tm_stopwords_english(const char *const **words);

#endif
