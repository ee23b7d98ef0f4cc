// dreamd's dashboard (served by dreamd, see include/dream/io/dashboard.h).
// Everything that comes from a job (titles, paths, messages, model output) is put into the page
// as text: the DOM is built with createElement and text nodes; no string is ever parsed as HTML.
'use strict';

(() => {
  const TERMINAL = new Set(['complete', 'failed', 'cancelled', 'dead_lettered', 'rejected']);
  const state = { latest: new Map(), csrf: null, eventsId: null, es: null, lastId: null, view: null, refresh: null };
  const main = document.getElementById('main');
  const live = document.getElementById('live');

  // ---- DOM helpers -------------------------------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function safeUrl(u) {
    return typeof u === 'string' && /^https?:\/\//i.test(u) ? u : null;
  }

  function link(href, text) {
    const u = safeUrl(href);
    return u ? el('a', { href: u, rel: 'noopener noreferrer', target: '_blank' }, text) : text;
  }

  function when(ms) {
    return ms ? new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19) : '-';
  }

  function statusCell(status) {
    return el('span', { class: 'status status-' + String(status).replace(/[^a-z_]/g, '') }, status);
  }

  function flash(msg) {
    const f = document.getElementById('flash');
    f.textContent = msg;
    f.hidden = !msg;
  }

  function table(headers, rows) {
    return el('table', {}, el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows));
  }

  // ---- server --------------------------------------------------------------------------------

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}));
    if (r.status === 401) {
      showLogin();
      throw new Error('not logged in');
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
    return body;
  }

  async function act(path, body) {
    try {
      const res = await api(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': state.csrf || '' },
        body: JSON.stringify(body || {}),
      });
      flash(res.action + ' ' + res.id + (res.result ? ': ' + res.result : '') + ' done');
    } catch (e) {
      flash(e.message);
    }
    render();
  }

  function showLogin() {
    document.getElementById('login').hidden = false;
    document.getElementById('logout').hidden = true;
    document.getElementById('login-failed').hidden = location.hash !== '#login-failed';
    main.replaceChildren();
    if (state.es) state.es.close();
    state.es = null;
  }

  // ---- live events ---------------------------------------------------------------------------

  function connect() {
    if (state.es) return;
    const from = state.lastId || state.eventsId;
    const es = new EventSource('/api/events' + (from ? '?after=' + encodeURIComponent(from) : ''));
    state.es = es;
    es.onopen = () => { live.textContent = 'live'; live.classList.remove('off'); };
    es.addEventListener('job', (m) => {
      state.lastId = m.lastEventId;
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      onEvent(ev, m.lastEventId);
    });
    es.onerror = () => {
      live.textContent = 'reconnecting';
      live.classList.add('off');
      // The browser retries by itself (sending Last-Event-ID); when it gave up, start again
      // from the last id seen.
      if (es.readyState === EventSource.CLOSED) {
        state.es = null;
        setTimeout(connect, 2000);
      }
    };
  }

  function onEvent(ev, id) {
    document.body.dataset.lastEvent = id;
    const seen = state.latest.get(ev.jobId);
    if (!seen || ev.seq > seen.seq) state.latest.set(ev.jobId, ev);
    if (state.view && state.view.onEvent) state.view.onEvent(ev);
  }

  function soon(fn) {
    if (state.refresh) return;
    state.refresh = setTimeout(() => { state.refresh = null; fn(); }, 250);
  }

  // ---- views ---------------------------------------------------------------------------------

  function jobRow(j) {
    // An event newer than the listing wins (it may have arrived while the list was fetched).
    const ev = state.latest.get(j.jobId);
    if (ev && ev.seq > (j.seq || 0)) j = Object.assign({}, j, { status: ev.status, prUrl: j.prUrl || ev.prUrl });
    return el('tr', { 'data-job': j.jobId },
      el('td', {}, el('a', { href: '#/job/' + encodeURIComponent(j.jobId) }, j.jobId)),
      el('td', { class: 'title' }, j.title),
      el('td', { class: 'status-cell' }, statusCell(j.status)),
      el('td', { class: 'stage' }, j.stage || '-'),
      el('td', {}, j.repo), el('td', {}, j.user),
      el('td', {}, when(j.created)), el('td', { class: 'updated' }, when(j.updated)),
      el('td', {}, '$' + Number(j.cost || 0).toFixed(4)),
      el('td', { class: 'pr' }, j.prUrl ? link(j.prUrl, 'PR') : ''));
  }

  async function viewJobs(q) {
    const params = new URLSearchParams(q);
    const form = el('form', { class: 'filters', id: 'filters' },
      ['status', 'repo', 'user', 'since'].map((k) => el('label', {}, k,
        el('input', { name: k, value: params.get(k) || '', placeholder: k === 'since' ? '1h' : '' }))),
      el('button', { type: 'submit' }, 'Filter'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
      location.hash = '#/jobs' + (p.toString() ? '?' + p : '');
    });
    const data = await api('/api/jobs?' + params);
    if (!state.eventsId) state.eventsId = data.eventsId;
    const body = data.jobs.map(jobRow);
    main.replaceChildren(el('h2', {}, 'Jobs'), form,
      table(['job', 'title', 'status', 'stage', 'repo', 'user', 'created', 'updated', 'cost', 'PR'], body),
      el('p', { class: 'source' }, 'listed from the ' + data.source));
    return {
      onEvent(ev) {
        const row = main.querySelector('tr[data-job="' + CSS.escape(ev.jobId) + '"]');
        if (!row) { soon(() => render()); return; } // a new job: list again (no reload)
        row.querySelector('.status-cell').replaceChildren(statusCell(ev.status));
        row.querySelector('.updated').textContent = ev.ts ? ev.ts.replace('T', ' ').slice(0, 19) : '';
        if (ev.prUrl) row.querySelector('.pr').replaceChildren(link(ev.prUrl, 'PR'));
      },
    };
  }

  function actionBar(id, status) {
    const bar = el('div', { class: 'actions' });
    const path = '/api/jobs/' + encodeURIComponent(id) + '/';
    if (status === 'paused_approval') {
      const reason = el('input', { id: 'reject-reason', placeholder: 'reason for rejecting' });
      bar.append(el('button', { id: 'approve', onclick: () => act(path + 'approve') }, 'Approve'),
        reason,
        el('button', { id: 'reject', onclick: () => act(path + 'reject', { reason: reason.value }) }, 'Reject'));
    }
    if (status === 'failed' || status === 'cancelled' || status === 'dead_lettered') {
      bar.append(el('button', { id: 'retry', onclick: () => act(path + 'retry') }, 'Retry'));
    }
    if (!TERMINAL.has(status)) {
      bar.append(el('button', { id: 'cancel', onclick: () => act(path + 'cancel') }, 'Cancel'));
    }
    return bar;
  }

  async function viewJob(id) {
    const j = await api('/api/jobs/' + encodeURIComponent(id));
    const h = j.hash || {};
    const job = j.job || {};
    const events = j.events || [];
    const flagged = (j.gate && Array.isArray(j.gate.flagged)) ? j.gate.flagged : [];
    const timeline = el('tbody', { id: 'timeline' }, events.map(eventRow));
    const kv = el('dl', { class: 'kv' },
      [['status', statusCell(h.status)], ['stage', h.stage || '-'],
        ['repo', (job.repoOwner || '?') + '/' + (job.repoName || '?')], ['user', job.userId || '-'],
        ['branch', h.branch || '-'], ['commit', h.commit || '-'],
        ['pull request', h.pr_url ? link(h.pr_url, h.pr_url) : '-'],
        ['cost', '$' + Number(h.cost || 0).toFixed(4) + ' (' + (h.tokens || 0) + ' tokens)'],
        ['attempts', h.attempts || '0'], ['owner', h.owner || '-'],
        ['review', h.review || '-'], ['error', h.error || '-'],
        ['created', when(h.created)], ['updated', when(h.updated)]]
        .map(([k, v]) => [el('dt', {}, k), el('dd', { 'data-field': k }, v)]));
    const parts = [el('h2', { id: 'job-title' }, j.title || id), el('p', {}, 'job ', el('code', {}, id)), kv,
      actionBar(id, h.status)];
    if (j.gate) {
      parts.push(el('h3', {}, 'Gate findings'), el('p', { class: 'finding' }, j.gate.message || ''),
        table(['path', 'line', 'rule', 'severity', 'kind'], flagged.map((f) => el('tr', {},
          el('td', {}, f.path), el('td', {}, f.line), el('td', {}, f.rule), el('td', {}, f.severity), el('td', {}, f.kind)))));
    }
    if (j.plan && Array.isArray(j.plan.items)) {
      parts.push(el('h3', {}, 'Plan'), table(['path', 'kind', 'description'], j.plan.items.map((it) =>
        el('tr', {}, el('td', {}, it.path), el('td', {}, it.kind), el('td', {}, it.description || '')))));
    }
    parts.push(el('h3', {}, 'Files'), table(['path', 'bytes', 'validation and review', 'content'],
      (j.files || []).map((f) => {
        const notes = events.filter((e) => e.path === f.path).map((e) => e.status + ': ' + (e.message || ''));
        for (const x of flagged.filter((x) => x.path === f.path)) notes.push('flagged ' + x.rule + ' (' + x.severity + ') line ' + x.line);
        return el('tr', { class: 'file' }, el('td', { class: 'path' }, f.path), el('td', {}, f.bytes),
          el('td', {}, notes.map((n) => el('div', {}, n))),
          el('td', {}, el('details', {}, el('summary', {}, f.truncated ? 'show (cut)' : 'show'), el('pre', {}, f.content))));
      })));
    if (h.verification) parts.push(el('h3', {}, 'Verification'), el('pre', {}, h.verification));
    parts.push(el('h3', {}, 'Events'), table(['seq', 'time', 'status', 'message'], []));
    parts[parts.length - 1].querySelector('tbody').replaceWith(timeline);
    main.replaceChildren(...parts);
    return {
      onEvent(ev) {
        if (ev.jobId !== id) return;
        timeline.append(eventRow(ev));
        soon(() => render());
      },
    };
  }

  function eventRow(e) {
    return el('tr', {}, el('td', {}, e.seq), el('td', {}, e.ts), el('td', {}, statusCell(e.status)),
      el('td', {}, e.message || ''));
  }

  async function viewParked() {
    const data = await api('/api/parked');
    main.replaceChildren(el('h2', {}, 'Parked for approval'), table(['job', 'title', 'parked', 'decide'],
      data.parked.map((p) => {
        const path = '/api/jobs/' + encodeURIComponent(p.jobId) + '/';
        const reason = el('input', { placeholder: 'reason' });
        return el('tr', { 'data-job': p.jobId },
          el('td', {}, el('a', { href: '#/job/' + encodeURIComponent(p.jobId) }, p.jobId)),
          el('td', {}, p.title || ''), el('td', {}, when(p.parkedAt)),
          el('td', {}, el('button', { onclick: () => act(path + 'approve') }, 'Approve'), reason,
            el('button', { onclick: () => act(path + 'reject', { reason: reason.value }) }, 'Reject')));
      })));
    return { onEvent(ev) { if (ev.status === 'paused_approval' || ev.status === 'approved' || ev.status === 'rejected') soon(render); } };
  }

  async function viewWorkers() {
    const data = await api('/api/workers');
    main.replaceChildren(el('h2', {}, 'Workers'), table(['worker', 'jobs', 'max', 'version', 'started', 'heartbeat', 'stopping'],
      data.workers.map((w) => el('tr', {}, el('td', {}, w.name), el('td', {}, w.jobs || '?'), el('td', {}, w.max_jobs || '?'),
        el('td', {}, w.version || '?'), el('td', {}, w.started || '?'), el('td', {}, w.ts || '?'), el('td', {}, w.stopping === '1' ? 'yes' : 'no')))));
    return null;
  }

  async function viewDead() {
    const data = await api('/api/dead');
    main.replaceChildren(el('h2', {}, 'Dead letters'), table(['id', 'job', 'reason', 'attempts', 'time', ''],
      data.dead.map((x) => el('tr', {}, el('td', {}, x.id),
        el('td', {}, x.jobId ? el('a', { href: '#/job/' + encodeURIComponent(x.jobId) }, x.jobId) : '(none)'),
        el('td', {}, x.reason), el('td', {}, x.attempts), el('td', {}, x.ts),
        el('td', {}, x.requeueable ? el('button', { onclick: () => act('/api/dead/' + encodeURIComponent(x.id) + '/requeue') }, 'Requeue') : '')))));
    return null;
  }

  // ---- routing -------------------------------------------------------------------------------

  async function render() {
    const hash = location.hash || '#/jobs';
    const [path, query] = hash.slice(1).split('?');
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('here', path.startsWith(a.getAttribute('href').slice(1)));
    try {
      if (path.startsWith('/job/')) state.view = await viewJob(decodeURIComponent(path.slice(5)));
      else if (path === '/parked') state.view = await viewParked();
      else if (path === '/workers') state.view = await viewWorkers();
      else if (path === '/dead') state.view = await viewDead();
      else state.view = await viewJobs(query || '');
      document.body.dataset.view = path;
    } catch (e) {
      if (e.message !== 'not logged in') flash(e.message);
    }
  }

  async function start() {
    try {
      const s = await api('/api/session');
      state.csrf = s.csrf || null;
    } catch (e) {
      return;
    }
    document.getElementById('login').hidden = true;
    document.getElementById('logout').hidden = false;
    if (location.hash === '#login-failed') location.hash = '#/jobs';
    if (!state.eventsId) {
      // Follow the stream from before the first listing, so no change is missed.
      const first = await api('/api/jobs?limit=1').catch(() => null);
      if (first) state.eventsId = first.eventsId;
    }
    connect();
    await render();
  }

  window.addEventListener('hashchange', () => { flash(''); render(); });
  start();
})();
