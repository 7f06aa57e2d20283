"""check.py - pyLDAvis.prepare(**data) accepts topicd's pyldavis.json.

    python check.py PYLDAVIS_JSON [MODEL_NPZ]

Loads the JSON GET /v1/jobs/{id}/pyldavis.json answered, checks it as
pyLDAvis's own input check does (shapes, rows summing to 1), runs
pyLDAvis.prepare(**data) and checks what it made: one topic per topic, the
vocabulary's terms, finite coordinates. With MODEL_NPZ (the job's
/v1/jobs/{id}/model), the arrays must be the model's: topic_term_dists its
components rows normalised, vocab its vocabulary, term_frequency and
doc_lengths its own. Exits non-zero on any failure.
"""
import json
import sys

import numpy as np
import pyLDAvis


def main():
    data = json.load(open(sys.argv[1]))
    keys = {"topic_term_dists", "doc_topic_dists", "doc_lengths", "vocab", "term_frequency"}
    assert set(data) == keys, f"keys {sorted(data)}"
    ttd = np.asarray(data["topic_term_dists"], dtype=float)
    dtd = np.asarray(data["doc_topic_dists"], dtype=float)
    k, n = ttd.shape
    assert dtd.shape[1] == k and len(data["doc_lengths"]) == dtd.shape[0]
    assert len(data["vocab"]) == n == len(data["term_frequency"])
    assert np.allclose(ttd.sum(axis=1), 1, atol=1e-12) and np.allclose(dtd.sum(axis=1), 1, atol=1e-12)
    assert (ttd >= 0).all() and (dtd >= 0).all()
    if len(sys.argv) > 2:
        z = np.load(sys.argv[2], allow_pickle=False)
        c = z["components"].astype(float)
        sums = c.sum(axis=1, keepdims=True)
        want = np.where(sums > 0, c / np.where(sums > 0, sums, 1), 1.0 / n)
        assert np.allclose(ttd, want, rtol=1e-12, atol=0), "topic_term_dists"
        b, o = z["vocabulary_utf8"].tobytes(), z["vocabulary_offsets"]
        assert data["vocab"] == [b[o[i]:o[i + 1]].decode() for i in range(n)], "vocab"
        assert np.array_equal(data["term_frequency"], z["term_frequency"]), "term_frequency"
        assert np.array_equal(data["doc_lengths"], z["doc_lengths"]), "doc_lengths"
    vis = pyLDAvis.prepare(**data, sort_topics=False)
    assert len(vis.topic_coordinates) == k, vis.topic_coordinates
    assert np.isfinite(vis.topic_coordinates[["x", "y"]].to_numpy()).all()
    assert set(vis.topic_info["Term"]) <= set(data["vocab"])
    html = pyLDAvis.prepared_data_to_html(vis)
    assert "LDAvis" in html
    print(f"pyldavis: prepare accepted {k} topics, {n} terms, {dtd.shape[0]} documents")


if __name__ == "__main__":
    main()
