"""The web page in a real browser (headless Chromium through Selenium).

tests/browser/run.sh starts the servers and calls this with their URLs:

    test_ui.py --open URL --keyed URL --key KEY --fixture FILE --shots DIR

Against the open server: upload the fixture through the page, submit an NMF
job with k = 3, watch the list reach 100 %, and check that the topic cards
show the words of GET /v1/jobs/{id}/result in its order; submit n_topics 0
and check the server's message beside that field; cancel a running job from
the list; submit a sweep (n_topics "2, 3, 4") and check its page loads the
sweep plot; reach the upload and the submit button with the keyboard alone.
Against the keyed server: the page asks for the key, signs in (a session
cookie; the page keeps no copy of the key), the same flow runs with the
plots as plain <img> tags, and signing out asks for the key again. On
both, the job page's CSV download links fetch (as the page would, its
cookie with them) files whose rows match the result and the JSON pages, the
model link a zip ("PK") of the result's model_bytes, and pyldavis.json (an
NMF job's; a truncated SVD job's page does not offer it). Coherence checked
in the form shows on the cards and in the summary as the result has it, and
asked with word pairs the server's message goes beside the checkboxes.
Screenshots of each page at desktop and phone width go to DIR.
Exits non-zero, naming the check, on the first failure.
"""
import argparse
import csv
import io
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 60
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok  ", what)


def api(base, path, key=None, method="GET", body=None):
    req = urllib.request.Request(base + path, method=method, data=body)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def browser():
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    if os.environ.get("CHROMIUM"):
        opts.binary_location = os.environ["CHROMIUM"]
    service = webdriver.ChromeService(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(options=opts, service=service)
    d.set_window_size(*SIZES["desktop"])
    return d


def shoot(d, shots, name):
    for size, (w, h) in SIZES.items():
        d.set_window_size(w, h)
        time.sleep(0.3)
        path = os.path.join(shots, f"{name}-{size}.png")
        # The whole page, not just the window: its height as laid out.
        height = d.execute_script("return document.documentElement.scrollHeight")
        d.set_window_size(w, max(h, min(height, 4000)))
        time.sleep(0.2)
        d.save_screenshot(path)
    d.set_window_size(*SIZES["desktop"])


def upload(d, fixture):
    d.find_element(By.ID, "upload-file").send_keys(os.path.abspath(fixture))
    WebDriverWait(d, WAIT_S).until(
        EC.text_to_be_present_in_element((By.ID, "upload-status"), "documents"))
    status = d.find_element(By.ID, "upload-status").text
    n = sum(1 for line in open(fixture, encoding="utf-8") if line.strip())
    check(f": {n} documents" in status, f"upload through the page: {status!r}")
    return status.split("corpus ")[1].rstrip(").")


def set_value(d, field_id, value):
    e = d.find_element(By.ID, field_id)
    e.clear()
    e.send_keys(str(value))


def submit_nmf(d, corpus, k, method="nmf", coherence=()):
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "f-corpus_id")).select_by_value(corpus)
    Select(d.find_element(By.ID, "f-model-method")).select_by_value(method)
    set_value(d, "f-model-n_topics", k)
    for m in coherence:
        d.find_element(By.CSS_SELECTOR, f'input[name=coherence][value="{m}"]').click()
    before = {r.get_attribute("data-job-id") for r in d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")}
    d.find_element(By.ID, "submit-job").click()

    def new_row(drv):
        rows = drv.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
        ids = [r.get_attribute("data-job-id") for r in rows if r.get_attribute("data-job-id") not in before]
        return ids[0] if ids else False
    return WebDriverWait(d, WAIT_S).until(new_row)


def wait_done(d, job):
    row = f'#jobs tbody tr[data-job-id="{job}"]'
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, row + " progress").get_attribute("value") == "100")
    state = d.find_element(By.CSS_SELECTOR, row + " .state").text
    check(state.startswith("succeeded"), f"job {job} reaches 100 % and succeeds ({state!r})")


def check_cards(d, base, key, job):
    d.get(base + "/#/jobs/" + job)
    WebDriverWait(d, WAIT_S).until(
        lambda drv: len(drv.find_elements(By.CSS_SELECTOR, ".topic-card")) > 0)
    result = api(base, f"/v1/jobs/{job}/result", key)
    cards = d.find_elements(By.CSS_SELECTOR, ".topic-card")
    check(len(cards) == len(result["topics"]), f"one card per topic ({len(cards)})")
    for card, topic in zip(cards, result["topics"]):
        shown = [t.get_attribute("textContent") for t in card.find_elements(By.CSS_SELECTOR, ".term")]
        want = [w["term"] for w in topic["words"]]
        check(shown == want, f"topic {topic['index']}'s card shows the result's words in order")
    # An NMF job has no singular values: that image's 404 removes its figure.
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.execute_script(
        "const i = [...document.querySelectorAll('#plots img')];"
        "return i.length === 3 && i.every(x => x.complete && x.naturalWidth > 0)"))
    shown = [i.get_attribute("data-plot") for i in d.find_elements(By.CSS_SELECTOR, "#plots img")]
    check(shown == ["topics", "error_trace", "document_topics"],
          f"the plots load as images, an NMF job's three ({shown})")
    check_csv_links(d, base, key, job, result)
    check_model_links(d, job, result)
    rows = d.find_elements(By.CSS_SELECTOR, "#doc-topics tbody tr")
    check(len(rows) == 20, f"the document-topic table shows a page of 20 ({len(rows)})")
    # A topic's top documents, each with the start of its text.
    d.find_element(By.CSS_SELECTOR, '.topic-card[data-topic="0"] button').click()
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, "#doc-topics td.snippet"))
    top_word = result["topics"][0]["words"][0]["term"]
    snippets = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#doc-topics td.snippet")]
    check(len(snippets) == 10 and top_word in snippets[0],
          f"topic 0's top documents with their text (the first has {top_word!r})")


def fetch_in_page(d, href):
    """GET href from the page, as a click on the link would: the status, the
    Content-Type and the text."""
    d.set_script_timeout(WAIT_S)
    return d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, r.headers.get('Content-Type'), t])))"
        ".catch(e => done([0, '', String(e)]));", href)


def check_csv_links(d, base, key, job, result):
    links = {a.get_attribute("download"): a.get_attribute("href")
             for a in d.find_elements(By.CSS_SELECTOR, "#job-downloads a")}
    for name in ("topic-terms", "document-topics"):
        check(f"{job}-{name}.csv" in links and links[f"{job}-{name}.csv"].endswith(f"/v1/jobs/{job}/{name}.csv"),
              f"the job page links {name}.csv beside the other downloads")
    status, ctype, text = fetch_in_page(d, links[f"{job}-topic-terms.csv"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    check(status == 200 and ctype.startswith("text/csv") and rows[0] == ["topic", "term", "weight"],
          f"topic-terms.csv downloads as CSV ({status}, {ctype!r})")
    want = [[str(t["index"]), w["term"], w["weight"]] for t in result["topics"] for w in t["words"]]
    got = [[r[0], r[1], float(r[2])] for r in rows[1:]]
    check(got == want, f"topic-terms.csv holds the result's {len(want)} words, in order, with their weights")
    page = api(base, f"/v1/jobs/{job}/document-topics?limit=5", key)
    status, ctype, text = fetch_in_page(d, links[f"{job}-document-topics.csv"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    check(status == 200 and ctype.startswith("text/csv") and rows[0] == ["document_id", "topic", "weight"],
          f"document-topics.csv downloads as CSV ({status}, {ctype!r})")
    k = result["n_topics"]
    check(len(rows) == 1 + result["n_documents"] * k,
          f"document-topics.csv has a row per document and topic ({len(rows) - 1})")
    want = [[doc["id"] if doc["id"] is not None else str(doc["index"]), str(t), w]
            for doc in page["documents"] for t, w in enumerate(doc["weights"])]
    got = [[r[0], r[1], float(r[2])] for r in rows[1:1 + len(want)]]
    check(got == want, "document-topics.csv's first rows are the JSON page's weights")


def fetch_bytes_in_page(d, href):
    """GET href from the page as a click would: the status, the size and
    the first two bytes as text."""
    d.set_script_timeout(WAIT_S)
    return d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength,"
        " String.fromCharCode(...new Uint8Array(b.slice(0, 2)))])))"
        ".catch(e => done([0, 0, String(e)]));", href)


def download_links(d):
    return {a.get_attribute("download"): a.get_attribute("href")
            for a in d.find_elements(By.CSS_SELECTOR, "#job-downloads a")}


def check_model_links(d, job, result):
    """The model (.npz) downloads, a zip of model_bytes bytes; an NMF job
    offers pyldavis.json too, and it loads."""
    links = download_links(d)
    check(f"{job}.npz" in links and links[f"{job}.npz"].endswith(f"/v1/jobs/{job}/model"),
          "the job page links the model (.npz)")
    status, size, magic = fetch_bytes_in_page(d, links[f"{job}.npz"])
    check(status == 200 and magic == "PK" and size == result["model_bytes"],
          f"the model link downloads a zip of model_bytes bytes ({status}, {magic!r}, {size} vs {result['model_bytes']})")
    name = f"{job}-pyldavis.json"
    check(name in links and links[name].endswith(f"/v1/jobs/{job}/pyldavis.json"),
          "an NMF job's page offers pyldavis.json")
    status, ctype, text = fetch_in_page(d, links[name])
    vis = json.loads(text) if status == 200 else {}
    check(status == 200 and len(vis.get("topic_term_dists", [])) == result["n_topics"],
          f"pyldavis.json downloads, one distribution per topic ({status})")


def check_svd_page(d, base, corpus):
    """A truncated SVD job: the model link, but no pyldavis.json (the
    server answers 404 for it)."""
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    job = submit_nmf(d, corpus, 3, method="truncated_svd")
    wait_done(d, job)
    d.get(base + "/#/jobs/" + job)
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, "#job-downloads a"))
    links = download_links(d)
    check(f"{job}.npz" in links, "an SVD job's page links its model")
    check(not any("pyldavis" in h for h in links.values()), "an SVD job's page offers no pyldavis.json")
    status, _, _ = fetch_in_page(d, f"/v1/jobs/{job}/pyldavis.json")
    check(status == 404, f"(and the server refuses it: {status})")


def check_coherence(d, base, corpus, shots):
    """Coherence asked in the form: each card shows its topic's score per
    measure, the summary each measure's mean, as the result has them. Asked
    with word pairs, the server's message goes beside the checkboxes."""
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "f-vectorizer-ngram_range")).select_by_value("2,2")
    d.find_element(By.CSS_SELECTOR, 'input[name=coherence][value="u_mass"]').click()
    d.find_element(By.ID, "submit-job").click()
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_element(By.ID, "e-model-coherence").text)
    msg = d.find_element(By.ID, "e-model-coherence").text
    check("ngram_range" in msg, f"coherence with word pairs: the message beside the checkboxes ({msg!r})")
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    job = submit_nmf(d, corpus, 3, coherence=("u_mass", "c_npmi"))
    wait_done(d, job)
    result = api(base, f"/v1/jobs/{job}/result")
    coh = result.get("coherence", {})
    check(sorted(coh) == ["c_npmi", "u_mass"], f"the form's checkboxes ask for coherence ({sorted(coh)})")
    d.get(base + "/#/jobs/" + job)
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, ".topic-card .coherence"))

    def shown(text):
        x = text.split()[-1]
        return None if x == "n/a" else float(x)

    def same(a, b):
        return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 0.0005001)
    for card in d.find_elements(By.CSS_SELECTOR, ".topic-card"):
        t = int(card.get_attribute("data-topic"))
        for m in ("u_mass", "c_npmi"):
            got = shown(card.find_element(By.CSS_SELECTOR, f'.coherence [data-measure="{m}"]').text)
            check(same(got, coh[m]["per_topic"][t]), f"topic {t}'s card shows its {m} ({got})")
    for m in ("u_mass", "c_npmi"):
        got = shown(d.find_element(By.CSS_SELECTOR, f'#job-coherence [data-measure="{m}"]').text)
        check(same(got, coh[m]["mean"]), f"the job's summary shows the mean {m} ({got})")
    shoot(d, shots, "coherence")


def open_server(d, base, fixture, shots):
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(EC.presence_of_element_located((By.ID, "upload-file")))
    shoot(d, shots, "home-empty")
    corpus = upload(d, fixture)
    job = submit_nmf(d, corpus, 3)
    wait_done(d, job)
    shoot(d, shots, "home-jobs")
    check_cards(d, base, None, job)
    shoot(d, shots, "job")

    # A sweep (n_topics a list): its job page shows the sweep plot.
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    sweep = submit_nmf(d, corpus, "2, 3, 4")
    wait_done(d, sweep)
    result = api(base, f"/v1/jobs/{sweep}/result")
    check([p["n_topics"] for p in result.get("sweep", [])] == [2, 3, 4],
          "n_topics typed as a list submits a sweep")
    d.get(base + "/#/jobs/" + sweep)
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.execute_script(
        "const i = document.querySelector('#plots img[data-plot=sweep]');"
        "return i !== null && i.complete && i.naturalWidth > 0"))
    check(True, "a sweep's job page loads the sweep plot")
    shoot(d, shots, "sweep")
    check_svd_page(d, base, corpus)
    check_coherence(d, base, corpus, shots)

    # The server's validation message beside the field it names.
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    set_value(d, "f-model-n_topics", 0)
    d.find_element(By.ID, "submit-job").click()
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_element(By.ID, "e-model-n_topics").text)
    msg = d.find_element(By.ID, "e-model-n_topics").text
    check("n_topics" in msg or "must be" in msg, f"n_topics 0: the server's message beside the field ({msg!r})")
    check(d.find_element(By.ID, "f-model-n_topics").get_attribute("aria-invalid") == "true",
          "the field is marked invalid")
    shoot(d, shots, "form-error")

    # Cancel a running job from the list: one that only stops when asked.
    body = json.dumps({"corpus_id": corpus, "model": {"method": "nmf", "n_topics": 3, "tol": 0,
                                                      "max_iter": 1000000000}}).encode()
    endless = api(base, "/v1/jobs", None, "POST", body)["id"]
    row = f'#jobs tbody tr[data-job-id="{endless}"]'
    WebDriverWait(d, WAIT_S).until(lambda drv: "running" in drv.find_element(By.CSS_SELECTOR, row + " .state").text)
    d.find_element(By.CSS_SELECTOR, row + ' button[data-action="cancel"]').click()
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, row + " .state").text.startswith("cancelled"))
    check(api(base, f"/v1/jobs/{endless}")["state"] == "cancelled", "cancel from the list cancels the job")

    # The keyboard alone: Tab reaches the upload and, past the form's fields,
    # the submit button; Enter there submits.
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(
        lambda drv: drv.find_element(By.CSS_SELECTOR, f'#f-corpus_id option[value="{corpus}"]'))
    # Keys go to whatever has the focus (ActionChains), as a person's would:
    # send_keys on the file input would be taken as a file name.
    keys = ActionChains(d)
    reached = []
    for _ in range(40):
        keys.send_keys(Keys.TAB).perform()
        active = d.switch_to.active_element
        reached.append(active.get_attribute("id") or active.tag_name)
        if reached[-1] == "submit-job":
            break
    check("upload-file" in reached, "Tab reaches the file picker")
    check(reached[-1] == "submit-job", f"Tab reaches the submit button ({len(reached)} stops)")
    before = len(d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr"))
    ActionChains(d).send_keys(Keys.ENTER).perform()
    WebDriverWait(d, WAIT_S).until(
        lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) > before)
    check(True, "Enter on the submit button submits the job")


def keyed_server(d, base, key, fixture, shots):
    d.get(base + "/")
    WebDriverWait(d, WAIT_S).until(EC.visibility_of_element_located((By.ID, "signin")))
    check(d.find_element(By.ID, "signin").is_displayed(), "with keys on, the page asks for a key")
    shoot(d, shots, "signin")
    d.find_element(By.ID, "key").send_keys("tpk_000000000000_" + "0" * 64 + Keys.ENTER)
    WebDriverWait(d, WAIT_S).until(lambda drv: drv.find_element(By.ID, "signin-error").text)
    check("refused" in d.find_element(By.ID, "signin-error").text, "a wrong key is refused")
    d.find_element(By.ID, "key").clear()
    d.find_element(By.ID, "key").send_keys(key + Keys.ENTER)
    WebDriverWait(d, WAIT_S).until(EC.invisibility_of_element_located((By.ID, "signin")))
    cookie = d.get_cookie("topicd_session")
    check(cookie is not None and cookie.get("httpOnly"), "the right key signs in: an HttpOnly cookie")
    check(key not in d.page_source and not d.execute_script("return sessionStorage.length"),
          "the page keeps no copy of the key")
    corpus = upload(d, fixture)
    job = submit_nmf(d, corpus, 3)
    wait_done(d, job)
    check_cards(d, base, key, job)  # the plots as <img>: the cookie goes with them
    d.find_element(By.ID, "sign-out").click()
    WebDriverWait(d, WAIT_S).until(EC.visibility_of_element_located((By.ID, "signin")))
    check(d.get_cookie("topicd_session") is None, "Sign out clears the cookie and asks for a key")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--open", required=True)
    p.add_argument("--keyed", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--fixture", required=True)
    p.add_argument("--shots", required=True)
    a = p.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    d = browser()
    try:
        open_server(d, a.open, a.fixture, a.shots)
        keyed_server(d, a.keyed, a.key, a.fixture, a.shots)
    except Exception:
        d.save_screenshot(os.path.join(a.shots, "failure.png"))
        print("browser console:", d.get_log("browser") if hasattr(d, "get_log") else "", file=sys.stderr)
        raise
    finally:
        d.quit()
    print(f"browser: all checks passed; screenshots in {a.shots}")


if __name__ == "__main__":
    main()
