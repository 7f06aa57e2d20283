// topicd's page: upload a corpus, fit a model, watch the jobs, read a job's
// topics, plots and document topics. Plain JavaScript against the public API
// (/v1, api/openapi.yaml); nothing is fetched from another site.
//
// With keys on, the page signs in once with a key (POST /v1/session): the
// server answers with an HttpOnly session cookie, which the browser then
// sends with every request of this origin, <img> and download links too.
// The key itself is never stored by the page.
'use strict';

const $ = (sel) => document.querySelector(sel);
const PLOTS = [
  ['topics', 'Top words of each topic'],
  ['singular_values', 'Singular values (scree plot)'],
  ['error_trace', 'Reconstruction error by iteration'],
  ['document_topics', 'Topic weights of the first documents'],
  ['sweep', 'Reconstruction error by number of topics (the suggested k marked)'],
];
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

let pollTimer = null;

// fetch that answers {status, body (parsed JSON or null), text}.
async function api(method, path, body, contentType) {
  const init = { method, headers: contentType ? { 'Content-Type': contentType } : {} };
  if (body !== undefined) init.body = body;
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  if (res.status === 401) showSignin('The server asks for an API key.');
  return { status: res.status, body: json, text };
}

function errorMessage(r) {
  return r.body && r.body.error ? r.body.error.message : 'HTTP ' + r.status;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// ---------------------------------------------------------------- sign-in

function showSignin(message) {
  $('#signin').hidden = false;
  $('#signin-error').textContent = message || '';
  $('#key').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const r = await api('POST', '/v1/session', JSON.stringify({ key: $('#key').value.trim() }),
    'application/json');
  $('#key').value = '';
  if (r.status === 200) {
    $('#signin').hidden = true;
    start();
  } else {
    showSignin(r.status === 401 ? 'That key was refused.' : errorMessage(r));
  }
}

async function signOut() {
  await api('DELETE', '/v1/session');
  location.reload();
}

// ---------------------------------------------------------------- upload

function contentTypeOf(file) {
  const name = file.name.toLowerCase();
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'application/x-ndjson';
  if (name.endsWith('.json')) return 'application/json';
  return 'text/plain; charset=utf-8';
}

// XMLHttpRequest rather than fetch: it reports the upload's progress.
function upload(file) {
  const bar = $('#upload-progress'), status = $('#upload-status');
  bar.hidden = false;
  bar.value = 0;
  status.textContent = 'Uploading ' + file.name + '…';
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/v1/corpora');
  xhr.setRequestHeader('Content-Type', contentTypeOf(file));
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onload = async () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    if (xhr.status === 201 && body) {
      bar.value = 1;
      status.textContent = `Uploaded ${file.name}: ${body.n_documents} documents (corpus ${body.id}).`;
      await loadCorpora(body.id);
    } else {
      status.textContent = 'Upload failed: ' + (body && body.error ? body.error.message : 'HTTP ' + xhr.status);
      if (xhr.status === 401) showSignin('The server asks for an API key.');
    }
  };
  xhr.onerror = () => { status.textContent = 'Upload failed: the connection was lost.'; };
  xhr.send(file);
}

async function loadCorpora(select) {
  const r = await api('GET', '/v1/corpora?limit=1000');
  if (r.status !== 200) return;
  const sel = $('#f-corpus_id'), keep = select || sel.value;
  sel.replaceChildren();
  const corpora = (r.body.corpora || []).slice().reverse();
  for (const c of corpora)
    sel.append(el('option', { value: c.id, text: `${c.id} (${c.n_documents} documents)` }));
  if (!corpora.length) sel.append(el('option', { value: '', text: 'upload a corpus first' }));
  if (keep) sel.value = keep;
}

// ---------------------------------------------------------------- job form

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

// model.n_topics as typed: a number, a list "5, 10, 20" or a range
// "start:stop" / "start:stop:step" (stop excluded), both a sweep. Anything
// else goes as typed or as null: the server says what is wrong with it.
function nTopics(text) {
  const t = text.trim();
  const range = t.match(/^(\d+)\s*:\s*(\d+)(?:\s*:\s*(\d+))?$/);
  if (range) {
    const r = { start: Number(range[1]), stop: Number(range[2]) };
    if (range[3]) r.step = Number(range[3]);
    return r;
  }
  if (t.includes(',')) return t.split(',').map((x) => Number(x.trim() || NaN));
  return Number(t || NaN);
}

// The spec as JSON text. Document frequencies keep the number as typed: the
// API reads 1 as one document and 1.0 as every document, as scikit-learn does.
function specText() {
  const method = $('#f-model-method').value;
  const model = { method, n_topics: nTopics($('#f-model-n_topics').value) };
  if (method === 'nmf') {
    model.solver = $('#f-model-solver').value;
    model.max_iter = Number($('#f-model-max_iter').value || NaN);
  }
  if (method === 'truncated_svd') model.algorithm = $('#f-model-algorithm').value;
  const raw = {};
  const vectorizer = { stop_words: $('#f-vectorizer-stop_words').value || null };
  for (const name of ['min_df', 'max_df']) {
    const text = $('#f-vectorizer-' + name).value.trim();
    if (NUMBER.test(text)) { raw[name] = text; vectorizer[name] = '@' + name + '@'; }
    else vectorizer[name] = text; // a string: the server says what is wrong with it
  }
  const ngrams = $('#f-vectorizer-ngram_range').value; // "1,1" (the default), "1,2", "2,2"
  if (ngrams !== '1,1') vectorizer.ngram_range = ngrams.split(',').map(Number);
  const coherence = [...document.querySelectorAll('input[name=coherence]:checked')].map((c) => c.value);
  if (coherence.length) model.coherence = coherence;
  const strip = [...document.querySelectorAll('input[name=strip]:checked')].map((c) => c.value);
  const spec = { corpus_id: $('#f-corpus_id').value, vectorizer, model, seed: Number($('#f-seed').value || 0) };
  if (strip.length) spec.preprocess = { strip };
  let text = JSON.stringify(spec);
  for (const [name, value] of Object.entries(raw)) text = text.replace(`"@${name}@"`, value);
  return text;
}

function clearErrors() {
  for (const p of document.querySelectorAll('#job-form .field-error')) p.textContent = '';
  for (const i of document.querySelectorAll('#job-form [aria-invalid]')) i.removeAttribute('aria-invalid');
}

// The server's message beside the field it names, or under the form. An
// element of a list ("model.coherence[1]") goes beside the list's field.
function showFieldError(field, message) {
  const id = (field || '').replace(/\[[0-9]+\]$/, '').replace(/\./g, '-');
  const where = id && document.getElementById('e-' + id);
  const input = id && document.getElementById('f-' + id);
  if (where) {
    where.textContent = (field.includes('[') ? field + ': ' : '') + message;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'e-' + id);
      // A group of checkboxes: the focus goes to its first box.
      (input.tagName === 'FIELDSET' ? input.querySelector('input') : input).focus();
    }
  } else {
    $('#job-error').textContent = (field ? field + ': ' : '') + message;
  }
}

async function submitJob(ev) {
  ev.preventDefault();
  clearErrors();
  const button = $('#submit-job');
  button.disabled = true;
  try {
    const r = await api('POST', '/v1/jobs', specText(), 'application/json');
    if (r.status === 202 || r.status === 200) {
      await refreshJobs();
    } else if (r.body && r.body.error) {
      showFieldError(r.body.error.field, r.body.error.message);
    } else {
      showFieldError('', 'HTTP ' + r.status);
    }
  } finally {
    button.disabled = false;
  }
}

function methodChanged() {
  const m = $('#f-model-method').value;
  for (const e of document.querySelectorAll('.nmf-only')) e.hidden = m !== 'nmf';
  for (const e of document.querySelectorAll('.svd-only')) e.hidden = m !== 'truncated_svd';
}

// ---------------------------------------------------------------- job list

const rows = new Map(); // job id -> {tr, state}

function actionsFor(job) {
  const cell = el('td');
  if (!FINAL.has(job.state))
    cell.append(el('button', { type: 'button', class: 'secondary', 'data-action': 'cancel',
      'aria-label': 'Cancel job ' + job.id, text: 'Cancel',
      onclick: () => api('POST', `/v1/jobs/${job.id}:cancel`).then(refreshJobs) }));
  else
    cell.append(el('button', { type: 'button', class: 'secondary', 'data-action': 'delete',
      'aria-label': 'Delete job ' + job.id, text: 'Delete',
      onclick: () => api('DELETE', `/v1/jobs/${job.id}`).then(refreshJobs) }));
  return cell;
}

// Rows are updated in place, so polling does not take the keyboard focus away.
function renderJob(job) {
  let row = rows.get(job.id);
  const pct = Math.round((job.progress || 0) * 100);
  const stateText = job.state + (job.stage && !FINAL.has(job.state) ? ` (${job.stage})` : '') +
    (job.error && job.error.message ? ': ' + job.error.message : '');
  if (!row) {
    const tr = el('tr', { 'data-job-id': job.id },
      el('td', {}, el('a', { href: '#/jobs/' + job.id, text: job.id })),
      el('td', { text: job.method || '' }), el('td', { class: 'state' }),
      el('td', {}, el('progress', { max: '100', value: '0', 'aria-label': 'Progress of ' + job.id }),
        el('span', { class: 'pct' })),
      actionsFor(job));
    row = { tr, state: job.state };
    rows.set(job.id, row);
    $('#jobs tbody').prepend(tr);
  }
  row.tr.querySelector('.state').textContent = stateText;
  row.tr.querySelector('progress').value = pct;
  row.tr.querySelector('.pct').textContent = ' ' + pct + '%';
  if (FINAL.has(row.state) !== FINAL.has(job.state)) row.tr.lastChild.replaceWith(actionsFor(job));
  row.state = job.state;
}

async function refreshJobs() {
  const r = await api('GET', '/v1/jobs?limit=1000');
  if (r.status !== 200) return;
  const seen = new Set();
  for (const job of r.body.jobs || []) { renderJob(job); seen.add(job.id); }
  for (const [id, row] of rows) if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
}

// ---------------------------------------------------------------- a job's page

// A coherence score as shown: null (gensim's NaN or Inf) as "n/a".
function score(x) {
  return typeof x === 'number' ? x.toFixed(3) : 'n/a';
}

// coherence: the result's {"u_mass": {"mean", "per_topic"}, ...} or undefined;
// each measure's score of this topic goes under the card's title.
function topicCard(topic, onTopDocs, coherence) {
  const words = topic.words || [];
  const max = Math.max(...words.map((w) => Math.abs(w.weight)), 1e-300);
  const card = el('article', { class: 'topic-card', 'data-topic': String(topic.index) },
    el('h4', { text: 'Topic ' + topic.index }));
  if (coherence) {
    const p = el('p', { class: 'coherence' });
    for (const [m, c] of Object.entries(coherence)) {
      const x = (c.per_topic || [])[topic.index];
      p.append(el('span', { 'data-measure': m, title: `${m} coherence of topic ${topic.index}`,
        text: `${m} ${score(x)}` }), ' ');
    }
    card.append(p);
  }
  for (const w of words) {
    const term = w.term !== undefined ? w.term : '#' + w.index;
    card.append(el('div', { class: 'word', title: `${term}: ${w.weight}` },
      el('span', { class: 'term', text: term }),
      el('span', { class: 'w', style: `width:${(100 * Math.abs(w.weight) / max).toFixed(1)}%` })));
  }
  card.append(el('button', { type: 'button', class: 'secondary', text: 'Top documents',
    onclick: () => onTopDocs(topic.index) }));
  return card;
}

let docPage = { id: null, offset: 0, limit: 20, total: 0 };
let currentCorpus = null; // the shown job's corpus, for snippets

async function showDocTopics(id, offset) {
  const r = await api('GET', `/v1/jobs/${id}/document-topics?offset=${offset}&limit=${docPage.limit}`);
  const head = $('#doc-topics thead'), body = $('#doc-topics tbody');
  head.replaceChildren();
  body.replaceChildren();
  if (r.status !== 200) { $('#doc-topic-note').textContent = errorMessage(r); return; }
  docPage = { id, offset, limit: docPage.limit, total: r.body.n_documents };
  const k = r.body.n_topics;
  const hr = el('tr', {}, el('th', { scope: 'col', text: 'Document' }));
  for (let t = 0; t < k; t++) hr.append(el('th', { scope: 'col', text: 'Topic ' + t }));
  head.append(hr);
  for (const d of r.body.documents) {
    const tr = el('tr', {}, el('th', { scope: 'row', text: d.id !== null ? d.id : '#' + d.index }));
    for (const w of d.weights) tr.append(el('td', { class: 'num', text: w.toFixed(3) }));
    body.append(tr);
  }
  const last = Math.min(offset + docPage.limit, docPage.total);
  $('#doc-page').textContent = `${offset + 1}–${last} of ${docPage.total}`;
  $('#doc-prev').disabled = offset === 0;
  $('#doc-next').disabled = last >= docPage.total;
  $('#doc-topic-note').textContent = '';
}

// The documents with the most weight on topic t among the first 1000, each
// with the start of its text when the job ran on an uploaded corpus.
async function showTopDocs(id, t) {
  const r = await api('GET', `/v1/jobs/${id}/document-topics?offset=0&limit=1000`);
  if (r.status !== 200) return;
  const docs = r.body.documents.slice().sort((a, b) => b.weights[t] - a.weights[t]).slice(0, 10);
  const corpus = currentCorpus;
  const snippets = await Promise.all(docs.map(async (d) => {
    if (!corpus) return '';
    const s = await api('GET', `/v1/corpora/${corpus}/documents?offset=${d.index}&limit=1&max_chars=160`);
    const doc = s.status === 200 && s.body.documents[0];
    return doc ? doc.text + (doc.truncated ? '…' : '') : '';
  }));
  const head = $('#doc-topics thead'), body = $('#doc-topics tbody');
  head.replaceChildren(el('tr', {}, el('th', { scope: 'col', text: 'Document' }),
    el('th', { scope: 'col', text: 'Weight on topic ' + t }), el('th', { scope: 'col', text: 'Text' })));
  body.replaceChildren(...docs.map((d, i) => el('tr', {},
    el('th', { scope: 'row', text: d.id !== null ? d.id : '#' + d.index }),
    el('td', { class: 'num', text: d.weights[t].toFixed(4) }),
    el('td', { class: 'snippet', text: snippets[i] }))));
  $('#doc-topic-note').textContent = `The 10 documents with the most weight on topic ${t}` +
    (r.body.n_documents > 1000 ? ' among the first 1000.' : '.');
  $('#doc-page').textContent = '';
  $('#doc-topics').scrollIntoView();
}

async function showJob(id) {
  $('#home').hidden = true;
  $('#job-view').hidden = false;
  $('#job-view-h').textContent = 'Job ' + id;
  for (const s of ['#topic-cards', '#plots', '#job-downloads', '#job-coherence']) $(s).replaceChildren();
  const j = await api('GET', '/v1/jobs/' + id);
  if (j.status !== 200) { $('#job-summary').textContent = errorMessage(j); return; }
  currentCorpus = j.body.corpus_id || null;
  if (j.body.state !== 'succeeded') {
    $('#job-summary').textContent = `This job is ${j.body.state}` +
      (FINAL.has(j.body.state) ? '.' : ` (${Math.round(100 * j.body.progress)}%); this page updates when it finishes.`);
    if (!FINAL.has(j.body.state)) setTimeout(() => { if (location.hash === '#/jobs/' + id) showJob(id); }, 1000);
    return;
  }
  const r = await api('GET', `/v1/jobs/${id}/result`);
  if (r.status !== 200) { $('#job-summary').textContent = errorMessage(r); return; }
  const res = r.body, t = res.timings || {};
  $('#job-summary').textContent = `${res.method}, ${res.n_topics} topics; ${res.n_documents} documents, ` +
    `${res.n_features} terms` +
    (res.reconstruction_error !== undefined ? `; reconstruction error ${res.reconstruction_error.toPrecision(6)}` : '') +
    (res.n_iter !== undefined ? ` after ${res.n_iter} iterations` : '') +
    (t.total !== undefined ? `; ${t.total.toFixed(2)} s in all (fit ${(t.fit || 0).toFixed(2)} s)` : '') + '.';
  const coh = $('#job-coherence');
  coh.replaceChildren();
  coh.hidden = !res.coherence;
  if (res.coherence) {
    coh.append('Coherence (mean over topics; higher is better): ');
    for (const [m, c] of Object.entries(res.coherence))
      coh.append(el('span', { 'data-measure': m, text: `${m} ${score(c.mean)}` }), ' ');
  }
  for (const topic of res.topics)
    $('#topic-cards').append(topicCard(topic, (k) => showTopDocs(id, k), res.coherence));
  // The plots this job has data for: an image whose answer is a 404 (an NMF
  // job's singular values) takes its figure away.
  for (const [name, title] of PLOTS) {
    const img = el('img', { src: `/v1/jobs/${id}/plots/${name}.svg`, alt: title, 'data-plot': name });
    const fig = el('figure', {}, img);
    img.addEventListener('error', () => fig.remove());
    $('#plots').append(fig);
  }
  // Plain same-origin links: with keys on, the session cookie goes with them.
  // The model only when the job kept one (model_bytes), pyldavis.json only
  // for NMF (an SVD job's has negative weights: the server answers 422).
  const downloads = [['result', 'Result (JSON)', id + '.json'],
    ['report.html', 'Report (HTML)', id + '-report.html'],
    ['topic-terms.csv', 'Topic terms (CSV)', id + '-topic-terms.csv'],
    ['document-topics.csv', 'Document topics (CSV)', id + '-document-topics.csv']];
  if (res.model_bytes !== undefined)
    downloads.push(['model', 'Model (.npz, for numpy/scikit-learn)', id + '.npz']);
  if (res.method === 'nmf' && res.model_bytes !== undefined)
    downloads.push(['pyldavis.json', 'pyLDAvis data (JSON)', id + '-pyldavis.json']);
  for (const [path, label, file] of downloads)
    $('#job-downloads').append(el('a', { href: `/v1/jobs/${id}/${path}`, download: file, text: label }), ' ');
  await showDocTopics(id, 0);
}

// ---------------------------------------------------------------- routing

function route() {
  const m = location.hash.match(/^#\/jobs\/([A-Za-z0-9_-]+)$/);
  if (m) return showJob(m[1]);
  $('#job-view').hidden = true;
  $('#home').hidden = false;
}

async function start() {
  const r = await api('GET', '/v1/session');
  if (r.status !== 200) return;
  const who = $('#who');
  who.replaceChildren();
  if (r.body.via === 'cookie') {
    who.append(`signed in as ${r.body.tenant}${r.body.admin ? ' (admin)' : ''} `,
      el('button', { type: 'button', class: 'secondary', id: 'sign-out', text: 'Sign out', onclick: signOut }));
  }
  await loadCorpora();
  await refreshJobs();
  clearInterval(pollTimer);
  pollTimer = setInterval(() => { if (!$('#home').hidden) refreshJobs(); }, 1000);
  route();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', signIn);
  $('#job-form').addEventListener('submit', submitJob);
  $('#f-model-method').addEventListener('change', methodChanged);
  $('#upload-file').addEventListener('change', (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
  const zone = $('#drop-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  $('#doc-prev').addEventListener('click', () => showDocTopics(docPage.id, Math.max(0, docPage.offset - docPage.limit)));
  $('#doc-next').addEventListener('click', () => showDocTopics(docPage.id, docPage.offset + docPage.limit));
  window.addEventListener('hashchange', route);
  methodChanged();
  start();
});
