/*
 * report.h - a finished job as one self-contained HTML page (GET
 * /v1/jobs/{id}/report.html) that a user can save or mail: the job, its
 * spec, the corpus's size, the topics (with their coherence when the job
 * scored it), every plot the result has data for (api/plots.h, inline
 * SVG), the errors and the timings; what the notebook this project grew
 * from shows, for the user's own corpus.
 *
 * Self-contained: no script, and nothing fetched from anywhere (styles
 * inline, charts inline). Written as well-formed XML too (polyglot
 * markup), so a test reads it back with an XML parser.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_REPORT_H
#define TM_API_REPORT_H

#include <stddef.h>

#include "api/error.h"
#include "api/plots.h"
#include "api/responses.h"

/*
 * job: the job's record; spec and result: its spec and result JSON (lens
 * bytes each, borrowed; spec may be NULL). dt: as tm_plot_render takes it
 * (NULL: no heat map). *html returned owned (tm_free), NUL-terminated.
 * Errors: TM_EPARSE (the stored spec or result is not such a document),
 * TM_ENOMEM.
 */
tm_status tm_report_render(const struct tm_job_record *job, const char *spec, size_t spec_len,
                           const char *result, size_t result_len,
                           const struct tm_plot_doc_topics *dt, char **html, size_t *html_len,
                           struct tm_api_error *e);

#endif
