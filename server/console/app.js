// The weft console: a small hash-routed single-page app over weft's JSON API.
//
// No framework and no build step. Every piece of data reaches the page through
// textContent or attributes (see `h`), never as HTML, so nothing the API returns can inject
// markup. The API token lives in localStorage and goes out as `Authorization: Bearer`.

const TOKEN_KEY = 'weft.token';
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------------------------------
// DOM helpers

/** Properties set as such (not attributes), so form state stays live. */
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'required', 'readOnly', 'open']);

/**
 * Creates an element. `attrs`: `class`, `on<event>` listeners, the properties above, other
 * attributes as text. Children: nodes, text (as text nodes), arrays; null/false are skipped.
 */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element (attributes only). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (PROPS.has(k) && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let idSeq = 0;
/** A unique element id (labels need one). */
const uid = (prefix) => `${prefix}-${++idSeq}`;

/** A labelled form control. */
function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  const check = control.type === 'checkbox';
  const hintEl = hint ? h('span', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return check
    ? h('div', { class: 'field check' }, control, h('label', { for: control.id }, label), hintEl)
    : h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

function select(options, value, attrs) {
  return h('select', attrs, options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, text)));
}

function badge(status, text) {
  return h('span', { class: `badge ${status}` }, text ?? status);
}

/** Pretty JSON in a <pre> (text only). */
function jsonBlock(value, label) {
  const text = value === undefined || value === null ? 'null' : JSON.stringify(value, null, 2);
  return h('pre', { tabindex: '0', 'aria-label': label }, text);
}

// An API's hourly budget and its use, e.g. "8,123 of 10,000 (81%), 2 in flight".
function usageText(u) {
  if (!u) return '—';
  const pct = u.budget ? Math.floor((u.used * 100) / u.budget) : 0;
  const parts = [`${u.used.toLocaleString('en')} of ${u.budget.toLocaleString('en')} (${pct}%)`];
  if (u.in_flight) parts.push(`${u.in_flight} in flight`);
  if (u.paced) parts.push(`${u.paced} paced`);
  return parts.join(', ');
}

function table(caption, headers, rows, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows)));
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function spanMs(from, to) {
  if (!from) return null;
  const end = to ? new Date(to) : new Date();
  return Math.max(0, end - new Date(from));
}

const enc = encodeURIComponent;
const shortId = (id) => String(id).slice(0, 8);

/** Announces a message in the live region (and shows it). */
function say(message, isError) {
  const live = document.getElementById('live');
  live.classList.toggle('error', Boolean(isError));
  live.textContent = message;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { live.textContent = ''; }, isError ? 12000 : 6000);
}

// ---------------------------------------------------------------------------------------
// API

class AuthError extends Error {}

const token = () => localStorage.getItem(TOKEN_KEY);

/** Calls the API; a 401 signs out and throws AuthError, other errors throw their message. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  let payload;
  if (typeof body === 'string') {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  if (res.status === 401) {
    signOut('The API token was refused: enter it again.');
    throw new AuthError('unauthorized');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const err = new Error(data?.error?.message || `HTTP ${res.status}`);
    err.status = res.status;
    err.data = data;
    throw err;
  }
  return data;
}

/** Runs an action from a button: disables it meanwhile, reports failures. */
async function act(button, work) {
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (e) {
    if (!(e instanceof AuthError)) say(e.message, true);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Router

const routes = [
  [/^\/executions$/, pageExecutions, 'executions'],
  [/^\/executions\/([^/]+)$/, pageExecution, 'executions'],
  [/^\/workflows$/, pageWorkflows, 'workflows'],
  [/^\/workflows\/([^/]+)$/, pageWorkflow, 'workflows'],
  [/^\/triggers$/, pageTriggers, 'triggers'],
  [/^\/orgs(?:\/([^/]+))?$/, pageOrgs, 'orgs'],
  [/^\/sync$/, pageSync, 'sync'],
  [/^\/crates$/, pageCrates, 'crates'],
  [/^\/forms(?:\/([^/]+))?$/, pageForms, 'forms'],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/executions';
  const [path, q] = raw.split('?');
  return { path, query: new URLSearchParams(q || '') };
}

/** Changes the hash's query without re-rendering (filters). */
function setQuery(path, params) {
  const q = new URLSearchParams([...params].filter(([, v]) => v !== '' && v !== null)).toString();
  history.replaceState(null, '', `#${path}${q ? `?${q}` : ''}`);
}

/** The page being shown: its timers stop when another page replaces it. */
let page = null;

function newPage() {
  if (page) page.leave();
  const timers = [];
  page = {
    alive: true,
    every(ms, fn) { timers.push(setInterval(() => { if (page === this) fn(); }, ms)); },
    leave() { this.alive = false; timers.forEach(clearInterval); },
  };
  return page;
}

async function render() {
  const { path, query } = parseHash();
  const main = document.getElementById('main');
  const ctx = newPage();
  if (!token()) {
    showLogin();
    return;
  }
  document.getElementById('main-nav').hidden = false;
  document.getElementById('sign-out').hidden = false;
  const found = routes.map(([re, fn, section]) => [path.match(re), fn, section]).find(([m]) => m);
  for (const a of document.querySelectorAll('#main-nav a')) {
    if (found && a.dataset.section === found[2]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each render fills its own container: a slow page that finishes after the user moved on
  // writes into a detached element, not over the next page.
  const view = h('div');
  main.replaceChildren(view);
  main.setAttribute('aria-busy', 'true');
  try {
    if (!found) {
      view.append(h('h1', null, 'Not found'), h('p', null, 'No such page. ', h('a', { href: '#/executions' }, 'Executions')));
    } else {
      await found[1](ctx, view, found[0].slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p))), query);
    }
  } catch (e) {
    if (e instanceof AuthError) return;
    view.append(h('div', { class: 'card error-text', role: 'alert' }, `Cannot show this page: ${e.message}`));
  } finally {
    if (page === ctx) main.removeAttribute('aria-busy');
  }
  if (page !== ctx) return;
  const h1 = main.querySelector('h1');
  document.title = h1 ? `${h1.textContent} · weft` : 'weft console';
  if (render.moved) {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
}

function signOut(message) {
  localStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

function showLogin(message) {
  newPage();
  document.getElementById('main-nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  document.title = 'Sign in · weft';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, 'data-testid': 'token' });
  const error = h('p', { class: 'error-text', role: 'alert' }, message || '');
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to weft'),
    h('p', null, 'Enter the API token of this server: the one `weft serve` printed at its first start, or WEFT_API_TOKEN. It is kept in this browser until you sign out.'),
    error,
    field('API token', input),
    h('button', { type: 'submit', 'data-testid': 'sign-in' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const candidate = input.value.trim();
    const res = await fetch('/api/workflows', { headers: { Authorization: `Bearer ${candidate}` } }).catch(() => null);
    if (!res || res.status === 401) {
      error.textContent = res ? 'That token was refused.' : 'The server cannot be reached.';
      input.focus();
      return;
    }
    localStorage.setItem(TOKEN_KEY, candidate);
    if (!location.hash || location.hash === '#/login') location.hash = '#/executions';
    else render();
  });
  document.getElementById('main').replaceChildren(form);
  input.focus();
}

// ---------------------------------------------------------------------------------------
// Shared data

/** Workflow versions by `name@version` (a version never changes once stored). */
const workflowCache = new Map();

async function workflowVersion(name, version) {
  const key = `${name}@${version}`;
  if (!workflowCache.has(key)) {
    workflowCache.set(key, api('GET', `/api/workflows/${enc(name)}?version=${enc(version)}`).catch((e) => {
      workflowCache.delete(key);
      throw e;
    }));
  }
  return workflowCache.get(key);
}

async function orgOptions(blank) {
  const orgs = await api('GET', '/api/orgs');
  return [['', blank], ...orgs.map((o) => [o.id, `${o.name} (${o.id})`])];
}

// ---------------------------------------------------------------------------------------
// The DAG

/**
 * Lays a task graph out in layers, top to bottom: a task sits one layer below the lowest of
 * the tasks that lead to it. Routes that go back (loops) are kept out of the layering and
 * drawn on the side.
 */
function layoutGraph(graph, extraNames) {
  const names = graph.tasks.map((t) => t.name);
  for (const n of extraNames) if (!names.includes(n)) names.push(n);
  const succ = new Map(names.map((n) => [n, []]));
  const edges = [];
  for (const t of graph.tasks) {
    for (const r of t.next) {
      for (const target of r.targets) {
        if (!succ.has(target)) continue;
        edges.push({ from: t.name, to: target, on: r.on, when: r.when });
        succ.get(t.name).push(target);
      }
    }
  }
  const state = new Map();
  const back = new Set();
  const visit = (n) => {
    state.set(n, 1);
    for (const m of succ.get(n)) {
      if (state.get(m) === 1) back.add(`${n}\u0000${m}`);
      else if (!state.has(m)) visit(m);
    }
    state.set(n, 2);
  };
  for (const n of [...(graph.start || []), ...names]) if (succ.has(n) && !state.has(n)) visit(n);
  const indeg = new Map(names.map((n) => [n, 0]));
  for (const e of edges) if (!back.has(`${e.from}\u0000${e.to}`)) indeg.set(e.to, indeg.get(e.to) + 1);
  const layer = new Map(names.map((n) => [n, 0]));
  const queue = names.filter((n) => indeg.get(n) === 0);
  while (queue.length) {
    const n = queue.shift();
    for (const m of succ.get(n)) {
      if (back.has(`${n}\u0000${m}`)) continue;
      layer.set(m, Math.max(layer.get(m), layer.get(n) + 1));
      indeg.set(m, indeg.get(m) - 1);
      if (indeg.get(m) === 0) queue.push(m);
    }
  }
  const rows = [];
  for (const n of names) (rows[layer.get(n)] ||= []).push(n);
  return { rows: rows.filter(Boolean), edges, back };
}

const NODE_W = 180;
const NODE_H = 52;
const GAP_X = 28;
const GAP_Y = 56;
const PAD = 16;
const SIDE = 70;

/**
 * The task graph as SVG. `tasks`: the execution's tasks by name (status, duration), or an
 * empty map for a bare workflow. Nodes are buttons (focusable, Enter/Space) calling onSelect.
 */
function drawDag(graph, tasks, selected, onSelect) {
  const { rows, edges, back } = layoutGraph(graph, [...tasks.keys()]);
  const actions = new Map(graph.tasks.map((t) => [t.name, t.action]));
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X + (back.size ? SIDE : 0);
  const height = PAD * 2 + rows.length * NODE_H + Math.max(0, rows.length - 1) * GAP_Y;
  const pos = new Map();
  rows.forEach((row, y) => {
    const offset = ((widest - row.length) * (NODE_W + GAP_X)) / 2;
    row.forEach((n, x) => pos.set(n, { x: PAD + offset + x * (NODE_W + GAP_X), y: PAD + y * (NODE_H + GAP_Y) }));
  });
  const svg = s('svg', {
    class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group',
    'aria-label': 'Task graph: each task is a button that shows its details', 'data-testid': 'dag',
  });
  svg.append(s('defs', null, s('marker', {
    id: 'dag-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))));
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    let d;
    if (back.has(`${e.from}\u0000${e.to}`)) {
      const x1 = a.x + NODE_W;
      const x2 = b.x + NODE_W;
      const out = Math.max(x1, x2) + SIDE - 10;
      d = `M${x1},${a.y + NODE_H / 2} C${out},${a.y + NODE_H / 2} ${out},${b.y + NODE_H / 2} ${x2},${b.y + NODE_H / 2}`;
    } else {
      const x1 = a.x + NODE_W / 2;
      const y1 = a.y + NODE_H;
      const x2 = b.x + NODE_W / 2;
      const y2 = b.y;
      d = `M${x1},${y1} C${x1},${y1 + GAP_Y / 2} ${x2},${y2 - GAP_Y / 2} ${x2},${y2}`;
    }
    svg.append(s('path', { d, class: `edge ${e.on}`, 'marker-end': 'url(#dag-arrow)' },
      s('title', null, `${e.from} → ${e.to} on ${e.on}${e.when ? ' (when …)' : ''}`)));
  }
  for (const [name, p] of pos) {
    const t = tasks.get(name);
    const status = t ? t.status : (tasks.size ? 'not-run' : '');
    const bits = [];
    if (t) {
      bits.push(t.status);
      if (t.duration_ms !== null && t.duration_ms !== undefined) bits.push(duration(t.duration_ms));
      if (t.attempts > 1) bits.push(`${t.attempts} attempts`);
      if (t.reused) bits.push('reused');
    } else {
      bits.push(tasks.size ? 'not run' : actions.get(name) || '');
    }
    const label = name.length > 22 ? `${name.slice(0, 21)}…` : name;
    const node = s('g', {
      class: `node ${status}${name === selected ? ' selected' : ''}`,
      tabindex: 0, role: 'button', 'aria-pressed': String(name === selected),
      'aria-label': `Task ${name}: ${bits.join(', ')}`, 'data-testid': `task-${name}`, 'data-task': name,
      transform: `translate(${p.x},${p.y})`,
    },
    s('title', null, `${name} (${actions.get(name) || 'task'})`),
    s('rect', { width: NODE_W, height: NODE_H, rx: 7 }),
    s('text', { x: 10, y: 21 }, label),
    s('text', { x: 10, y: 40, class: 'sub' }, bits.join(' · ').slice(0, 30)));
    node.addEventListener('click', () => onSelect(name));
    node.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        onSelect(name);
      }
    });
    svg.append(node);
  }
  return h('div', { class: 'dag-wrap' }, svg);
}

/** A graph for executions whose workflow version cannot be read: tasks in run order. */
function fallbackGraph(exec) {
  return { start: [], tasks: exec.tasks.map((t) => ({ name: t.name, action: '', next: [] })) };
}

// ---------------------------------------------------------------------------------------
// Executions

const STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];
const SINCE = [['', 'Any time'], ['1', 'Last hour'], ['24', 'Last 24 hours'], ['168', 'Last 7 days'], ['720', 'Last 30 days']];

async function pageExecutions(ctx, main, _params, query) {
  const [workflows, orgs] = await Promise.all([api('GET', '/api/workflows'), orgOptions('Any organization')]);
  const status = select([['', 'Any status'], ...STATUSES.map((x) => [x, x])], query.get('status'), { name: 'status' });
  const workflow = select([['', 'Any workflow'], ...workflows.map((w) => [w.name, w.name])], query.get('workflow'), { name: 'workflow' });
  const org = select(orgs, query.get('org'), { name: 'org' });
  const since = select(SINCE, query.get('since'), { name: 'since' });
  const auto = h('input', { type: 'checkbox', checked: query.get('auto') !== 'off', name: 'auto' });
  const form = h('form', { class: 'toolbar', 'aria-label': 'Filter executions' },
    field('Status', status), field('Workflow', workflow), field('Organization', org), field('Started', since),
    field('Auto-refresh', auto));
  const body = h('div', { 'aria-live': 'off' });
  const updated = h('p', { class: 'muted', 'aria-live': 'polite' });
  main.append(h('h1', null, 'Executions'), form, updated, body);

  const load = async () => {
    const q = new URLSearchParams({ limit: '100', top_level: 'true' });
    for (const [k, el] of [['status', status], ['workflow', workflow], ['org', org]]) if (el.value) q.set(k, el.value);
    if (since.value) q.set('since', `${since.value}h`);
    const list = await api('GET', `/api/executions?${q}`);
    if (!ctx.alive) return;
    const rows = list.map((e) => {
      const progress = h('td');
      if (!FINAL.has(e.status)) fillProgress(progress, e);
      return h('tr', { 'data-testid': 'execution-row', 'data-id': e.id, 'data-status': e.status },
        h('td', null, h('a', { href: `#/executions/${enc(e.id)}`, class: 'mono', 'aria-label': `Execution ${e.id}` }, shortId(e.id))),
        h('td', null, e.workflow_name, h('span', { class: 'muted' }, ` v${e.workflow_version}`)),
        h('td', { class: 'hide-narrow' }, e.org || '—'),
        h('td', null, badge(e.status)),
        h('td', null, when(e.created_at)),
        h('td', { class: 'hide-narrow' }, duration(spanMs(e.started_at, e.finished_at))),
        progress);
    });
    body.replaceChildren(rows.length
      ? table('Executions, newest first', ['Execution', 'Workflow', 'Organization', 'Status', 'Created', 'Duration', 'Progress'], rows, { 'data-testid': 'executions' })
      : h('p', { 'data-testid': 'executions-empty' }, 'No executions match.'));
    body.querySelectorAll('th')[2]?.classList.add('hide-narrow');
    body.querySelectorAll('th')[5]?.classList.add('hide-narrow');
    updated.textContent = `${list.length} execution(s), updated ${new Date().toLocaleTimeString()}`;
  };
  form.addEventListener('change', () => {
    setQuery('/executions', [['status', status.value], ['workflow', workflow.value], ['org', org.value], ['since', since.value], ['auto', auto.checked ? '' : 'off']]);
    load().catch((e) => e instanceof AuthError || say(e.message, true));
  });
  form.addEventListener('submit', (ev) => ev.preventDefault());
  await load();
  ctx.every(4000, () => { if (auto.checked) load().catch(() => {}); });
}

/** Tasks done out of the workflow's tasks, for a running execution. */
async function fillProgress(cell, e) {
  try {
    const [exec, wf] = await Promise.all([
      api('GET', `/api/executions/${enc(e.id)}`),
      workflowVersion(e.workflow_name, e.workflow_version),
    ]);
    const total = wf.graph.tasks.length;
    const done = exec.tasks.filter((t) => t.status !== 'running').length;
    const running = exec.tasks.filter((t) => t.status === 'running').map((t) => t.name);
    cell.replaceChildren(
      h('progress', { max: total, value: Math.min(done, total), 'aria-label': `${done} of ${total} tasks done` }),
      ` ${done}/${total}`,
      running.length ? h('div', { class: 'muted' }, `running: ${running.join(', ')}`) : null);
  } catch {
    cell.textContent = '';
  }
}

async function pageExecution(ctx, main, [id], query) {
  let exec = await api('GET', `/api/executions/${enc(id)}?detail=true`);
  let graph;
  let actions = new Map();
  try {
    const wf = await workflowVersion(exec.workflow, exec.version);
    graph = wf.graph;
    actions = new Map(graph.tasks.map((t) => [t.name, t.action]));
  } catch {
    graph = fallbackGraph(exec);
  }
  let selected = query.get('task') || (exec.tasks.find((t) => t.status === 'failed') || {}).name || null;

  const heading = h('h1', null, `Execution ${shortId(exec.id)}`);
  const facts = h('section', { class: 'card', 'aria-labelledby': 'facts-title' });
  const dagSlot = h('div');
  const panel = h('section', { class: 'card', 'aria-labelledby': 'task-title', 'data-testid': 'task-panel' });
  const io = h('section', { 'aria-labelledby': 'io-title' });
  main.append(heading, facts,
    h('div', { class: 'split' },
      h('section', { 'aria-labelledby': 'dag-title' }, h('h2', { id: 'dag-title' }, 'Tasks'), dagSlot),
      panel),
    io);

  const choose = (name) => {
    selected = name;
    setQuery(`/executions/${id}`, [['task', name]]);
    draw();
    const title = panel.querySelector('h2');
    if (title) title.focus();
  };

  const rerun = async (button, from) => {
    const res = await act(button, () => api('POST', `/api/executions/${enc(exec.id)}/rerun`, from ? { from } : {}));
    if (res && res.id) {
      say(`Rerun started: execution ${shortId(res.id)}`);
      render.moved = true;
      location.hash = `#/executions/${enc(res.id)}`;
    }
  };

  const drawFacts = () => {
    const cancel = h('button', { type: 'button', class: 'danger', 'data-testid': 'cancel', disabled: FINAL.has(exec.status) }, 'Cancel');
    cancel.addEventListener('click', async () => {
      const res = await act(cancel, () => api('POST', `/api/executions/${enc(exec.id)}/cancel`));
      if (res) { say('Cancellation requested'); await refresh(); }
    });
    const again = h('button', { type: 'button', class: 'secondary', 'data-testid': 'rerun' }, 'Rerun');
    again.addEventListener('click', () => rerun(again, null));
    const trig = exec.trigger && typeof exec.trigger === 'object' ? exec.trigger.type || JSON.stringify(exec.trigger) : '—';
    facts.replaceChildren(
      h('h2', { id: 'facts-title', class: 'visually-hidden' }, 'Summary'),
      h('dl', { class: 'facts wide' },
        h('dt', null, 'Status'), h('dd', { 'data-testid': 'execution-status' }, badge(exec.status)),
        h('dt', null, 'Workflow'), h('dd', null, h('a', { href: `#/workflows/${enc(exec.workflow)}?version=${exec.version}` }, exec.workflow), ` v${exec.version}`),
        h('dt', null, 'Organization'), h('dd', null, exec.org || '—'),
        h('dt', null, 'Id'), h('dd', { class: 'mono' }, exec.id),
        h('dt', null, 'Trigger'), h('dd', null, trig),
        h('dt', null, 'Created'), h('dd', null, when(exec.created_at)),
        h('dt', null, 'Duration'), h('dd', null, duration(spanMs(exec.started_at, exec.finished_at)) || '—'),
        exec.rerun_of ? [h('dt', null, 'Rerun of'), h('dd', null, h('a', { href: `#/executions/${enc(exec.rerun_of)}`, class: 'mono' }, shortId(exec.rerun_of)))] : null,
        exec.parent_id ? [h('dt', null, 'Called by'), h('dd', null, h('a', { href: `#/executions/${enc(exec.parent_id)}`, class: 'mono' }, shortId(exec.parent_id)))] : null,
        exec.error ? [h('dt', null, 'Error'), h('dd', { class: 'error-text' }, exec.error)] : null),
      h('div', { class: 'actions' }, cancel, again));
  };

  const drawPanel = () => {
    const task = exec.tasks.find((t) => t.name === selected);
    if (!selected) {
      panel.replaceChildren(h('h2', { id: 'task-title', tabindex: '-1' }, 'Task details'),
        h('p', { class: 'muted' }, 'Select a task in the graph to see its input, result, error and attempts.'));
      return;
    }
    const from = h('button', { type: 'button', 'data-testid': 'rerun-from' }, 'Rerun from this task');
    from.addEventListener('click', () => rerun(from, selected));
    const parts = [
      h('h2', { id: 'task-title', tabindex: '-1' }, `Task ${selected}`),
      h('dl', { class: 'facts' },
        h('dt', null, 'Action'), h('dd', { class: 'mono' }, actions.get(selected) || '—'),
        h('dt', null, 'Status'), h('dd', { 'data-testid': 'task-status' }, task ? badge(task.status) : badge('not-run', 'not run')),
        task ? [
          h('dt', null, 'Attempts'), h('dd', null, String(task.attempts)),
          h('dt', null, 'Duration'), h('dd', null, duration(task.duration_ms) || '—'),
          h('dt', null, 'Started'), h('dd', null, when(task.started_at)),
          task.items ? [h('dt', null, 'Items'), h('dd', null, String(task.items))] : null,
          task.reused ? [h('dt', null, 'Reused'), h('dd', null, 'copied from the execution this reruns')] : null,
        ] : null),
      h('div', { class: 'actions' }, from),
    ];
    if (task) {
      parts.push(h('h3', null, 'Input'), h('div', { 'data-testid': 'task-input' }, jsonBlock(task.input, `Input of ${selected}`)));
      parts.push(h('h3', null, 'Result'), h('div', { 'data-testid': 'task-result' }, jsonBlock(task.result, `Result of ${selected}`)));
      if (task.error) parts.push(h('h3', null, 'Error'), h('div', { 'data-testid': 'task-error' }, jsonBlock(task.error, `Error of ${selected}`)));
      const runs = task.runs || [];
      if (runs.length) {
        parts.push(h('h3', null, `Attempts (${runs.length})`), h('div', { 'data-testid': 'task-attempts' }, runs.map((r) => h('details', null,
          h('summary', null, `${r.item === null ? '' : `item ${r.item}, `}attempt ${r.attempt}: ${r.status}${r.duration_ms !== null ? ` in ${duration(r.duration_ms)}` : ''}`),
          h('h4', null, 'Input'), jsonBlock(r.input, 'Input'),
          r.result !== null ? [h('h4', null, 'Result'), jsonBlock(r.result, 'Result')] : null,
          r.error ? [h('h4', null, 'Error'), jsonBlock(r.error, 'Error')] : null))));
      }
    } else {
      parts.push(h('p', { class: 'muted' }, 'This task has not run in this execution.'));
    }
    panel.replaceChildren(...parts);
  };

  const drawIo = () => {
    io.replaceChildren(h('h2', { id: 'io-title' }, 'Input and output'),
      h('div', { class: 'split' },
        h('div', null, h('h3', null, 'Input'), jsonBlock(exec.input, 'Execution input')),
        h('div', null, h('h3', null, 'Output'), jsonBlock(exec.output, 'Execution output'))));
  };

  const draw = () => {
    const focused = document.activeElement?.getAttribute?.('data-task');
    drawFacts();
    dagSlot.replaceChildren(drawDag(graph, new Map(exec.tasks.map((t) => [t.name, t])), selected, choose));
    drawPanel();
    drawIo();
    if (focused) dagSlot.querySelector(`[data-task="${CSS.escape(focused)}"]`)?.focus();
  };

  const refresh = async () => {
    const before = exec.status;
    exec = await api('GET', `/api/executions/${enc(id)}?detail=true`);
    if (!ctx.alive) return;
    draw();
    if (before !== exec.status) say(`Execution ${shortId(exec.id)} is ${exec.status}`);
  };

  draw();
  ctx.every(2000, () => { if (!FINAL.has(exec.status)) refresh().catch(() => {}); });
}

// ---------------------------------------------------------------------------------------
// Workflows

async function pageWorkflows(ctx, main) {
  const list = await api('GET', '/api/workflows');
  main.append(h('h1', null, 'Workflows'));
  main.append(list.length
    ? table('Deployed workflows', ['Workflow', 'Version', 'Deployed', 'File'], list.map((w) => h('tr', { 'data-testid': 'workflow-row' },
      h('td', null, h('a', { href: `#/workflows/${enc(w.name)}` }, w.name)),
      h('td', null, `v${w.version}`),
      h('td', null, when(w.created_at)),
      h('td', { class: 'mono' }, w.path || '—'))))
    : h('p', null, 'No workflow is deployed yet.'));
  main.append(h('h2', null, 'Deploy a workflow'), yamlEditor('', null));
}

/** Builds a form control for a parameter or input spec; `read()` gives [given, value]. */
function paramControl(name, spec) {
  const type = spec.type || 'any';
  const hint = [spec.description, spec.required ? 'required' : null, type].filter(Boolean).join(' · ');
  let control;
  let read;
  if (Array.isArray(spec.enum) && spec.enum.length) {
    control = select([...(spec.required ? [] : [['', '(default)']]), ...spec.enum.map((v) => [JSON.stringify(v), String(v)])],
      spec.default === null || spec.default === undefined ? '' : JSON.stringify(spec.default), { name });
    read = () => (control.value === '' ? [false] : [true, JSON.parse(control.value)]);
  } else if (type === 'boolean') {
    control = h('input', { type: 'checkbox', name, checked: spec.default === true });
    read = () => [true, control.checked];
  } else if (type === 'integer' || type === 'number') {
    control = h('input', { type: 'number', name, step: type === 'integer' ? '1' : 'any', value: spec.default ?? '', required: Boolean(spec.required) });
    read = () => (control.value === '' ? [false] : [true, Number(control.value)]);
  } else if (type === 'string') {
    control = h('input', { type: spec.secret ? 'password' : 'text', name, value: spec.default ?? '', required: Boolean(spec.required), autocomplete: 'off' });
    read = () => (control.value === '' ? [false] : [true, control.value]);
  } else {
    control = h('textarea', { name, rows: '3', placeholder: 'JSON', value: spec.default === null || spec.default === undefined ? '' : JSON.stringify(spec.default, null, 2) });
    read = () => {
      if (control.value.trim() === '') return [false];
      try { return [true, JSON.parse(control.value)]; } catch { throw new Error(`${name}: not valid JSON`); }
    };
  }
  control.setAttribute('data-param', name);
  return { el: field(name, control, hint), read, name };
}

function readParams(controls) {
  const out = {};
  for (const c of controls) {
    const [given, value] = c.read();
    if (given) out[c.name] = value;
  }
  return out;
}

/** The YAML editor: validate (diagnostics) and deploy as a new version. */
function yamlEditor(source, name) {
  const text = h('textarea', { rows: '18', spellcheck: 'false', value: source, 'data-testid': 'yaml' });
  const diags = h('div', { 'aria-live': 'polite', 'data-testid': 'diagnostics' });
  const showDiags = (list) => {
    diags.replaceChildren(list.length
      ? h('ul', { class: 'diag' }, list.map((d) => h('li', { class: d.severity },
        h('strong', null, `${d.severity} ${d.code || ''}`), ` line ${d.line}, column ${d.column}: ${d.message}`,
        d.help ? h('div', { class: 'muted' }, d.help) : null)))
      : h('p', null, 'No problems found.'));
  };
  const validate = h('button', { type: 'button', class: 'secondary', 'data-testid': 'validate' }, 'Validate');
  validate.addEventListener('click', async () => {
    const list = await act(validate, () => api('POST', '/api/workflows/validate', text.value));
    if (list) showDiags(list);
  });
  const deploy = h('button', { type: 'button', 'data-testid': 'deploy' }, name ? 'Deploy as a new version' : 'Deploy');
  deploy.addEventListener('click', async () => {
    try {
      deploy.disabled = true;
      const res = await api('POST', '/api/workflows', text.value);
      showDiags(res.diagnostics || []);
      say(`Deployed ${res.name} v${res.version}`);
      render.moved = true;
      location.hash = `#/workflows/${enc(res.name)}`;
    } catch (e) {
      if (e.data?.error?.diagnostics) showDiags(e.data.error.diagnostics);
      if (!(e instanceof AuthError)) say(e.message, true);
    } finally {
      deploy.disabled = false;
    }
  });
  if (source) {
    api('POST', '/api/workflows/validate', source).then(showDiags).catch(() => {});
  }
  return h('div', { class: 'card' }, field('Workflow YAML', text), h('div', { class: 'actions' }, validate, deploy), diags);
}

async function pageWorkflow(ctx, main, [name], query) {
  const latest = await api('GET', `/api/workflows/${enc(name)}`);
  const version = Number(query.get('version')) || latest.version;
  const wf = version === latest.version ? latest : await workflowVersion(name, version);
  const versions = [];
  for (let v = latest.latest_version; v >= 1; v -= 1) versions.push([v, `v${v}${v === latest.latest_version ? ' (latest)' : ''}`]);
  const pick = select(versions, version, { name: 'version' });
  pick.addEventListener('change', () => { location.hash = `#/workflows/${enc(name)}?version=${pick.value}`; });

  main.append(h('h1', null, wf.name), wf.description ? h('p', null, wf.description) : null,
    h('div', { class: 'toolbar' }, field('Version', pick),
      h('a', { href: `#/executions?workflow=${enc(name)}` }, 'Executions of this workflow')));

  const info = h('div', { class: 'card', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Select a task to see its action and routes.'));
  const dagSlot = h('div');
  const showTask = (task) => {
    const t = wf.graph.tasks.find((x) => x.name === task);
    dagSlot.replaceChildren(drawDag(wf.graph, new Map(), task, showTask));
    info.replaceChildren(h('h3', null, task), h('dl', { class: 'facts' },
      h('dt', null, 'Action'), h('dd', { class: 'mono' }, t.action),
      t.description ? [h('dt', null, 'Description'), h('dd', null, t.description)] : null,
      h('dt', null, 'Routes'), h('dd', null, t.next.length ? h('ul', null, t.next.map((r) => h('li', null, `on ${r.on}${r.when ? ' (when …)' : ''} → ${r.targets.join(', ') || 'nothing'}`))) : 'none (ends here)')));
  };
  dagSlot.append(drawDag(wf.graph, new Map(), null, showTask));
  main.append(h('section', { 'aria-labelledby': 'wf-tasks' }, h('h2', { id: 'wf-tasks' }, 'Tasks'), h('div', { class: 'split' }, dagSlot, info)));

  // Run (always the latest version).
  const orgs = await orgOptions('(no organization)');
  const org = select(orgs, '', { name: 'org' });
  const controls = Object.entries(latest.input_schema || {}).map(([n, spec]) => paramControl(n, spec));
  const runBtn = h('button', { type: 'submit', 'data-testid': 'run' }, 'Run');
  const runForm = h('form', { class: 'card', 'aria-labelledby': 'wf-run' },
    h('h2', { id: 'wf-run' }, `Run v${latest.version}`), field('Organization', org), controls.map((c) => c.el), runBtn);
  runForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const res = await act(runBtn, () => api('POST', `/api/workflows/${enc(name)}/run${org.value ? `?org=${enc(org.value)}` : ''}`, readParams(controls)));
    if (res?.id) {
      say(`Started execution ${shortId(res.id)}`);
      render.moved = true;
      location.hash = `#/executions/${enc(res.id)}`;
    }
  });
  main.append(runForm);

  main.append(h('h2', null, 'Triggers'), wf.triggers.length
    ? table('Triggers', ['Trigger', 'Type', 'Enabled', 'Where'], wf.triggers.map((t) => h('tr', null,
      h('td', null, t.name), h('td', null, t.type), h('td', null, badge(t.enabled ? 'on' : 'off', t.enabled ? 'on' : 'off')),
      h('td', { class: 'mono' }, t.url || t.schedule || '—'))))
    : h('p', null, 'No triggers: run it by hand or from another workflow.'));
  main.append(h('h2', null, `YAML (v${wf.version})`), yamlEditor(wf.source, name));
}

// ---------------------------------------------------------------------------------------
// Triggers

async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without the Clipboard API (plain http on another host): select it for Ctrl-C.
    input.select();
    say('Press Ctrl-C (⌘-C) to copy the selected URL');
    return;
  }
  say('URL copied');
}

// Each org's sender has its own secret: pick the org, show it, or rotate it (the old one
// refused at once or after a grace period).
function webhookSecrets(t, label) {
  const orgs = t.orgs || [];
  const box = h('div', { class: 'secrets' });
  if (!orgs.length) {
    box.append(h('div', { class: 'muted' }, 'requires x-weft-secret; runs for no registered org yet'));
    return box;
  }
  const org = select(orgs.map((o) => [o, o]), orgs[0], { 'aria-label': `Organization of the secret of ${label}`, 'data-testid': `secret-org-${t.workflow}-${t.name}` });
  const grace = select([['', 'refuse the old one at once'], ['1h', 'accept the old one 1 hour'], ['24h', 'accept the old one 24 hours'], ['7d', 'accept the old one 7 days']], '', { 'aria-label': `Grace period when rotating the secret of ${label}` });
  const shown = h('input', { type: 'text', readOnly: true, value: '', 'aria-label': `Secret of ${label}`, class: 'mono', size: '40', hidden: true, 'data-testid': `secret-${t.workflow}-${t.name}` });
  const note = h('div', { class: 'muted', 'aria-live': 'polite', 'data-testid': `secret-note-${t.workflow}-${t.name}` });
  const show = h('button', { type: 'button', class: 'secondary', 'data-testid': `secret-show-${t.workflow}-${t.name}` }, 'Show secret');
  const rotate = h('button', { type: 'button', class: 'secondary', 'data-testid': `secret-rotate-${t.workflow}-${t.name}` }, 'Rotate');
  const put = (res, what) => {
    if (!res) return;
    shown.value = res.secret;
    shown.hidden = false;
    note.textContent = `${what} for ${res.org}: send it as x-weft-secret to ${res.url}${res.previous_valid_until ? `; the previous one works until ${when(res.previous_valid_until)}` : ''}`;
  };
  show.addEventListener('click', async () => {
    put(await act(show, () => api('GET', `/api/triggers/${enc(t.workflow)}/${enc(t.name)}/secrets/${enc(org.value)}`)), 'Secret');
  });
  rotate.addEventListener('click', async () => {
    const body = grace.value ? { grace: grace.value } : {};
    put(await act(rotate, () => api('POST', `/api/triggers/${enc(t.workflow)}/${enc(t.name)}/secrets/${enc(org.value)}/rotate`, body)), 'New secret');
  });
  org.addEventListener('change', () => { shown.hidden = true; shown.value = ''; note.textContent = ''; });
  box.append(h('div', { class: 'muted' }, 'requires x-weft-secret, one per organization'), org, ' ', show, ' ', grace, ' ', rotate, shown, note);
  return box;
}

async function pageTriggers(ctx, main) {
  const list = await api('GET', '/api/triggers');
  main.append(h('h1', null, 'Triggers'));
  if (!list.length) {
    main.append(h('p', null, 'No deployed workflow has a trigger.'));
    return;
  }
  const rows = [];
  for (const t of list) {
    const label = `${t.workflow} / ${t.name}`;
    const toggle = h('input', { type: 'checkbox', role: 'switch', checked: t.enabled, 'aria-label': `Enabled: ${label}`, 'data-testid': `toggle-${t.workflow}-${t.name}` });
    toggle.addEventListener('change', async () => {
      const want = toggle.checked;
      const res = await act(toggle, () => api('POST', `/api/triggers/${enc(t.workflow)}/${enc(t.name)}/${want ? 'enable' : 'disable'}`));
      if (res) say(`${label} ${res.enabled ? 'enabled' : 'disabled'}`);
      else toggle.checked = !want;
    });
    const where = h('td');
    if (t.url) {
      const input = h('input', { type: 'text', readOnly: true, value: t.url, 'aria-label': `URL of ${label}`, class: 'mono', size: '40' });
      const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
      copy.addEventListener('click', () => copyText(t.url, input));
      where.append(input, ' ', copy, t.secret_required ? webhookSecrets(t, label) : h('div', { class: 'muted' }, `no secret: runs only for ${(t.orgs || []).join(', ') || 'its owner org'}`));
    } else if (t.schedule) {
      const fire = h('button', { type: 'button', class: 'secondary', 'data-testid': `fire-${t.workflow}-${t.name}` }, 'Fire now');
      fire.addEventListener('click', async () => {
        const res = await act(fire, () => api('POST', `/api/triggers/${enc(t.workflow)}/${enc(t.name)}/fire`));
        if (res) say(`Fired ${label}: ${res.outcome}${res.executions?.length ? `, ${res.executions.length} execution(s)` : ''}`);
      });
      where.append(h('span', { class: 'mono' }, `${t.schedule} (${t.timezone})`), h('div', { class: 'muted' }, `next: ${when(t.next_at)}`), fire);
    } else {
      where.append('—');
    }
    const eventsRow = h('tr', { hidden: true }, h('td', { colspan: '5' }));
    const show = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false' }, 'Events');
    show.addEventListener('click', async () => {
      const open = show.getAttribute('aria-expanded') === 'true';
      show.setAttribute('aria-expanded', String(!open));
      eventsRow.hidden = open;
      if (open) return;
      const events = await act(show, () => api('GET', `/api/triggers/${enc(t.workflow)}/${enc(t.name)}/events?limit=20`));
      if (!events) return;
      eventsRow.firstChild.replaceChildren(events.length
        ? table(`Recent events of ${label}`, ['When', 'Kind', 'Organization', 'Outcome', 'Why', 'Execution'], events.map((e) => h('tr', null,
          h('td', null, when(e.created_at)), h('td', null, e.kind || ''), h('td', null, e.org || '—'),
          h('td', null, badge(e.outcome === 'accepted' ? 'accepted' : 'rejected', e.outcome), e.status ? ` ${e.status}` : ''),
          h('td', null, e.reason || ''),
          h('td', null, e.execution_id ? h('a', { href: `#/executions/${enc(e.execution_id)}`, class: 'mono' }, shortId(e.execution_id)) : '—'))))
        : h('p', null, 'No events yet.'));
    });
    rows.push(h('tr', null,
      h('td', null, h('a', { href: `#/workflows/${enc(t.workflow)}` }, t.workflow), h('div', null, h('strong', null, t.name))),
      h('td', null, t.type),
      h('td', null, toggle),
      where,
      h('td', null, show)), eventsRow);
  }
  main.append(table('Triggers of the deployed workflows', ['Workflow / trigger', 'Type', 'Enabled', 'URL or schedule', 'Events'], rows));
}

// ---------------------------------------------------------------------------------------
// Organizations and the Autotask mapping

async function pageOrgs(ctx, main, [orgId]) {
  const orgs = await api('GET', '/api/orgs');
  main.append(h('h1', null, 'Organizations'));
  const children = new Map();
  for (const o of orgs) {
    const p = o.parent_id && orgs.some((x) => x.id === o.parent_id) ? o.parent_id : '';
    if (!children.has(p)) children.set(p, []);
    children.get(p).push(o);
  }
  const branch = (parent) => h('ul', { class: parent ? '' : 'tree' }, (children.get(parent) || []).map((o) => h('li', null,
    h('a', { href: `#/orgs/${enc(o.id)}`, 'aria-current': o.id === orgId ? 'page' : false, 'data-testid': `org-${o.id}` }, o.name),
    o.autotask_company ? h('span', { class: 'muted' }, ` · Autotask ${o.autotask_company.name}`) : null,
    children.has(o.id) ? branch(o.id) : null)));

  const name = h('input', { type: 'text', name: 'name', required: true });
  const parent = select([['', '(top level)'], ...orgs.map((o) => [o.id, o.name])], orgId || '', { name: 'parent' });
  const addBtn = h('button', { type: 'submit' }, 'Add');
  const add = h('form', { 'aria-label': 'Add an organization' }, h('h3', null, 'Add an organization'), field('Name', name), field('Parent', parent), addBtn);
  add.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const res = await act(addBtn, () => api('POST', '/api/orgs', { name: name.value, parent: parent.value || undefined }));
    if (res) { say(`Added ${res.name}`); location.hash = `#/orgs/${enc(res.id)}`; }
  });

  const detail = h('section', { class: 'card', 'aria-labelledby': 'org-title' });
  main.append(h('div', { class: 'split' },
    h('nav', { class: 'card', 'aria-label': 'Organization tree' }, orgs.length ? branch('') : h('p', null, 'No organizations yet.'), add),
    detail));
  if (orgId) await orgDetail(detail, orgId);
  else detail.append(h('h2', { id: 'org-title' }, 'Select an organization'), h('p', { class: 'muted' }, 'Its variables, integrations and Autotask company are shown here.'));

  const mapping = h('section', { 'aria-labelledby': 'mapping-title' });
  main.append(mapping);
  mappingSection(mapping);
}

async function orgDetail(el, orgId) {
  const o = await api('GET', `/api/orgs/${enc(orgId)}`);
  const company = o.mapping?.autotask;
  el.append(h('h2', { id: 'org-title' }, o.name),
    h('dl', { class: 'facts' },
      h('dt', null, 'Id'), h('dd', { class: 'mono' }, o.id),
      h('dt', null, 'Parent'), h('dd', null, o.ancestors?.length ? o.ancestors.map((a) => a.name).join(' › ') : '—'),
      h('dt', null, 'Tags'), h('dd', null, o.tags.length ? o.tags.join(', ') : '—'),
      h('dt', null, 'Active'), h('dd', null, o.active ? 'yes' : 'no'),
      h('dt', null, 'Autotask company'), h('dd', { 'data-testid': 'org-company' }, company ? `${company.external_name || ''} (${company.external_id})` : 'not mapped')),
    h('h3', null, 'Variables'),
    o.variables.length
      ? table('Variables', ['Key', 'Value', 'Set by'], o.variables.map((v) => h('tr', null,
        h('td', { class: 'mono' }, v.key),
        h('td', { class: 'mono' }, v.secret ? '••••••' : (typeof v.value === 'string' ? v.value : JSON.stringify(v.value))),
        h('td', null, v.inherited ? `${v.from_org} (inherited)` : 'this org'))))
      : h('p', { class: 'muted' }, 'No variables.'),
    h('h3', null, 'Integrations'),
    o.integrations.length
      ? table('Integrations', ['Kind', 'Name', 'Settings', 'Secrets', 'From', 'Requests this hour'], o.integrations.map((i) => h('tr', null,
        h('td', null, i.kind), h('td', null, i.name),
        h('td', { class: 'mono' }, Object.entries(i.settings || {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ') || '—'),
        h('td', { class: 'mono' }, Object.keys(i.secrets || {}).map((k) => `${k}=••••`).join(', ') || '—'),
        h('td', null, i.inherited ? `${i.org} (inherited)` : 'this org'),
        h('td', { 'data-testid': 'integration-usage' }, usageText(i.usage)))))
      : h('p', { class: 'muted' }, 'No integrations of its own or inherited.'));
  const id = h('input', { type: 'number', name: 'company_id', min: '0', step: '1', value: company?.external_id || '' });
  const map = h('button', { type: 'submit' }, 'Map');
  const unmap = h('button', { type: 'button', class: 'danger', disabled: !company }, 'Unmap');
  const form = h('form', { class: 'toolbar', 'aria-label': 'Map to an Autotask company' }, field('Autotask company id', id), map, unmap);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const res = await act(map, () => api('PUT', `/api/mapping/autotask/${enc(o.id)}`, { company_id: Number(id.value) }));
    if (res) { say(`${o.name} mapped to ${res.company_name || res.company_id}`); render(); }
  });
  unmap.addEventListener('click', async () => {
    const res = await act(unmap, () => api('DELETE', `/api/mapping/autotask/${enc(o.id)}`));
    if (res) { say(`${o.name} unmapped`); render(); }
  });
  el.append(h('h3', null, 'Autotask company'), form);
}

function companyLabel(c) {
  return `${c.name} (#${c.id}${c.company_type_label ? `, ${c.company_type_label}` : ''})`;
}

function mappingSection(el) {
  const out = h('div', { 'data-testid': 'mapping-results' });
  const suggest = h('button', { type: 'button', 'data-testid': 'suggest' }, 'Suggest matches');
  const applyAll = h('button', { type: 'button', class: 'secondary', 'data-testid': 'apply-all' }, 'Apply all suggestions');
  const createPreview = h('button', { type: 'button', class: 'secondary', 'data-testid': 'create-unmatched' }, 'Create orgs for unmatched companies…');
  el.append(h('h2', { id: 'mapping-title' }, 'Autotask mapping'),
    h('p', { class: 'muted' }, 'Pair organizations with Autotask companies: suggestions match names (case and spacing ignored).'),
    h('div', { class: 'actions' }, suggest, applyAll, createPreview), out);

  const showSuggestions = async () => {
    const s = await api('GET', '/api/mapping/autotask/suggestions');
    const rows = s.matched.map((m) => {
      const apply = h('button', { type: 'button', 'data-testid': `apply-suggestion-${m.org.id}` }, 'Apply');
      apply.addEventListener('click', async () => {
        const res = await act(apply, () => api('PUT', `/api/mapping/autotask/${enc(m.org.id)}`, { company_id: m.company.id }));
        if (res) {
          say(`${m.org.name} mapped to ${m.company.name}`);
          apply.replaceWith(badge('succeeded', 'mapped'));
        }
      });
      return h('tr', { 'data-testid': 'suggestion' }, h('td', null, m.org.name), h('td', null, companyLabel(m.company)),
        h('td', null, m.exact ? 'exact name' : 'similar name'), h('td', null, apply));
    });
    const companies = s.unmatched_companies.map((c) => {
      const ex = h('button', { type: 'button', class: 'secondary' }, 'Exclude');
      ex.addEventListener('click', async () => {
        const res = await act(ex, () => api('POST', '/api/mapping/autotask/exclusions', { company_id: c.id }));
        if (res) { say(`${c.name} excluded`); ex.replaceWith(badge('skipped', 'excluded')); }
      });
      return h('tr', null, h('td', null, companyLabel(c)), h('td', null, ex));
    });
    out.replaceChildren(
      h('h3', null, `Suggested matches (${rows.length})`),
      rows.length ? table('Suggested matches', ['Organization', 'Autotask company', 'Why', 'Apply'], rows, { 'data-testid': 'suggestions' }) : h('p', null, 'No new matches.'),
      h('h3', null, `Organizations without a company (${s.unmatched_orgs.length})`),
      h('p', null, s.unmatched_orgs.map((o) => o.name).join(', ') || 'none'),
      h('details', null, h('summary', null, `Companies without an organization (${companies.length})`),
        companies.length ? table('Unmatched companies', ['Company', 'Exclude'], companies) : h('p', null, 'none')));
  };
  suggest.addEventListener('click', () => act(suggest, showSuggestions));
  applyAll.addEventListener('click', async () => {
    const res = await act(applyAll, () => api('POST', '/api/mapping/autotask/apply', {}));
    if (res) { say('Suggestions applied'); out.replaceChildren(h('h3', null, 'Applied'), jsonBlock(res, 'Applied mappings')); }
  });
  createPreview.addEventListener('click', async () => {
    const res = await act(createPreview, () => api('POST', '/api/mapping/autotask/create-unmatched', { dry_run: true }));
    if (!res) return;
    const go = h('button', { type: 'button', 'data-testid': 'create-unmatched-confirm' }, 'Create them');
    go.addEventListener('click', async () => {
      const done = await act(go, () => api('POST', '/api/mapping/autotask/create-unmatched', {}));
      if (done) { say('Organizations created'); out.replaceChildren(h('h3', null, 'Created'), jsonBlock(done, 'Created organizations')); }
    });
    out.replaceChildren(h('h3', null, 'Would create (dry run)'), jsonBlock(res, 'Dry run'), go);
  });
}

// ---------------------------------------------------------------------------------------
// PSA sync

const REPORT_LISTS = [['to_create', 'To create'], ['to_match', 'To match'], ['excluded_names', 'Excluded'], ['pending_names', 'Pending (auto-create off)'], ['deactivated_names', 'Deactivated']];
const COUNTS = ['created', 'matched', 'updated', 'excluded', 'deactivated', 'skipped', 'unchanged', 'pending'];

// Record kinds the sync can exclude (never import or match) and approve (create at the next
// apply, lifting an exclusion or the auto-create toggle).
const EXCLUDABLE = ['company', 'user'];
const APPROVABLE = ['company', 'user', 'configuration'];
const CHANGE_LABELS = { create: 'create', pending: 'pending (auto-create off)', match: 'match', exclude: 'excluded', deactivate: 'deactivate' };

/** A button that calls the sync API for one record and then says what it did. */
function recordAction(kind, item, verb, text, done) {
  const btn = h('button', { type: 'button', class: 'secondary small', 'data-action': verb, 'aria-label': `${text}: ${kind} ${item.name}` }, text);
  btn.addEventListener('click', async () => {
    const r = await act(btn, () => api('POST', `/api/sync/autotask/${enc(kind)}/${enc(item.id)}/${verb}`));
    if (r) { say(`${kind} ${item.name}: ${done}`); btn.replaceWith(badge('skipped', done)); }
  });
  return btn;
}

/** One kind's records that change: name, id, change, and exclude / approve buttons. */
function syncItems(kind, items) {
  const rows = items.map((it) => {
    const actions = [];
    if (EXCLUDABLE.includes(kind) && it.change !== 'exclude' && it.change !== 'deactivate') {
      actions.push(recordAction(kind, it, 'exclude', 'Exclude', 'excluded from now on'));
    }
    if (APPROVABLE.includes(kind) && (it.change === 'pending' || it.change === 'exclude')) {
      actions.push(recordAction(kind, it, 'create', it.change === 'exclude' ? 'Include' : 'Create at next apply', 'created at the next apply'));
    }
    return h('tr', { 'data-testid': 'sync-item', 'data-kind': kind, 'data-id': it.id, 'data-change': it.change },
      h('td', null, it.name), h('td', { class: 'mono' }, it.id), h('td', null, CHANGE_LABELS[it.change] || it.change),
      h('td', null, actions.length ? actions : '—'));
  });
  return h('details', { open: items.length <= 25, 'data-testid': `sync-items-${kind}` },
    h('summary', null, `Records that change (${items.length})`),
    table(`${kind}: records that change`, ['Name', 'Autotask id', 'Change', 'Review'], rows));
}

function syncReport(report) {
  const kinds = Object.entries(report.kinds || {});
  return h('div', { 'data-testid': `sync-report-${report.mode}` },
    h('p', null, `${report.mode === 'apply' ? 'Applied' : 'Preview'} for ${report.org}${report.first_sync ? ' (first sync)' : ''}.`),
    table('Counts per record kind', ['Kind', ...COUNTS], kinds.map(([k, r]) => h('tr', null, h('th', { scope: 'row' }, k), COUNTS.map((c) => h('td', null, String(r[c] ?? 0)))))),
    kinds.map(([k, r]) => h('div', null, h('h3', null, k),
      r.items?.length ? syncItems(k, r.items)
        : REPORT_LISTS.filter(([key]) => (r[key] || []).length).map(([key, label]) => h('details', null,
          h('summary', null, `${label} (${r[key].length})`), h('ul', null, r[key].map((n) => h('li', null, n))))))),
    report.errors?.length ? [h('h3', null, 'Errors'), jsonBlock(report.errors, 'Errors')] : null);
}

async function pageSync(ctx, main) {
  const settings = await api('GET', '/api/sync/autotask/settings');
  main.append(h('h1', null, 'PSA sync (Autotask)'));

  const boxes = ['auto_create_clients', 'auto_create_users', 'auto_create_configurations'].map((k) => [k, h('input', { type: 'checkbox', checked: Boolean(settings[k]), name: k })]);
  const schedule = h('input', { type: 'text', value: settings.schedule || '', name: 'schedule', class: 'mono' });
  const tz = h('input', { type: 'text', value: settings.timezone || 'UTC', name: 'timezone' });
  const save = h('button', { type: 'submit', class: 'secondary' }, 'Save settings');
  const form = h('form', { class: 'card', 'aria-labelledby': 'sync-settings' }, h('h2', { id: 'sync-settings' }, 'Settings'),
    boxes.map(([k, b]) => field(k.replaceAll('_', ' '), b)),
    field('Nightly schedule (cron)', schedule, 'empty: no nightly sync'), field('Time zone', tz), save);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(boxes.map(([k, b]) => [k, b.checked]));
    body.schedule = schedule.value.trim() || null;
    body.timezone = tz.value.trim();
    if (await act(save, () => api('PUT', '/api/sync/autotask/settings', body))) say('Sync settings saved');
  });

  const report = h('div', { 'aria-live': 'polite' });
  const preview = h('button', { type: 'button', 'data-testid': 'sync-preview' }, 'Preview');
  const apply = h('button', { type: 'button', 'data-testid': 'sync-apply', disabled: true }, 'Apply');
  preview.addEventListener('click', async () => {
    const r = await act(preview, () => api('POST', '/api/sync/autotask/preview', {}));
    if (!r) return;
    report.replaceChildren(syncReport(r));
    apply.disabled = false;
    say('Preview ready');
    await loadHistory();
  });
  apply.addEventListener('click', async () => {
    const r = await act(apply, () => api('POST', '/api/sync/autotask/apply', {}));
    if (!r) return;
    report.replaceChildren(syncReport(r));
    say('Sync applied');
    await loadHistory();
  });

  const kind = select([['company', 'company'], ['user', 'user'], ['configuration', 'configuration']], 'company', { name: 'kind' });
  const rid = h('input', { type: 'text', name: 'id', required: true, class: 'mono' });
  const exclude = h('button', { type: 'button', class: 'secondary' }, 'Exclude');
  const create = h('button', { type: 'button', class: 'secondary' }, 'Create at next apply');
  for (const [btn, verb, msg] of [[exclude, 'exclude', 'excluded'], [create, 'create', 'will be created at the next apply']]) {
    btn.addEventListener('click', async () => {
      if (!rid.value.trim()) { rid.focus(); return; }
      const r = await act(btn, () => api('POST', `/api/sync/autotask/${enc(kind.value)}/${enc(rid.value.trim())}/${verb}`));
      if (r) say(`${kind.value} ${rid.value} ${msg}`);
    });
  }

  const history = h('div', { 'data-testid': 'sync-history' });
  const loadHistory = async () => {
    const runs = await api('GET', '/api/sync/runs');
    history.replaceChildren(runs.length
      ? table('Sync runs, newest first', ['Run', 'Mode', 'Organization', 'Started', 'Finished', 'Summary', 'Errors'], runs.map((r) => h('tr', { 'data-testid': 'sync-run', 'data-mode': r.mode },
        h('td', null, `#${r.id}`), h('td', null, r.mode), h('td', null, r.org_id), h('td', null, when(r.started_at)), h('td', null, when(r.finished_at)),
        h('td', null, Object.entries(r.counts || {}).map(([k, c]) => `${k}: ${c.created ?? 0} created, ${c.matched ?? 0} matched`).join('; ')),
        h('td', null, Array.isArray(r.errors) ? String(r.errors.length) : (r.errors ? 'yes' : '0')))))
      : h('p', null, 'No sync has run yet.'));
  };

  main.append(h('section', { class: 'card', 'aria-labelledby': 'sync-run-title' }, h('h2', { id: 'sync-run-title' }, 'Run a sync'),
    h('p', { class: 'muted' }, 'Preview shows what a sync would create, match and exclude per record kind; apply runs it.'),
    h('div', { class: 'actions' }, preview, apply), report));
  main.append(h('section', { class: 'card', 'aria-labelledby': 'sync-record' }, h('h2', { id: 'sync-record' }, 'One record'),
    h('div', { class: 'toolbar' }, field('Kind', kind), field('Autotask id', rid), exclude, create)));
  main.append(form);
  main.append(h('section', { 'aria-labelledby': 'sync-history-title' }, h('h2', { id: 'sync-history-title' }, 'History'), history));
  await loadHistory();
}

// ---------------------------------------------------------------------------------------
// Crates

async function pageCrates(ctx, main) {
  const [lib, orgs] = await Promise.all([api('GET', '/api/crates'), orgOptions('Choose…')]);
  main.append(h('h1', null, 'Crates'), h('p', { class: 'muted' }, 'Ready-made workflows: install one for an organization with its parameters.'));
  const grid = h('div', { class: 'crates' });
  for (const c of lib.library) grid.append(crateCard(c, orgs));
  main.append(grid);
  if (lib.problems?.length) main.append(h('h2', null, 'Unreadable crates'), jsonBlock(lib.problems, 'Problems'));
}

function crateCard(c, orgs) {
  const installed = h('p', { 'data-testid': `installed-${c.name}` }, c.installed.length
    ? `Installed for: ${c.installed.map((i) => i.org).join(', ')}` : 'Not installed.');
  const open = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'data-testid': `install-open-${c.name}` }, 'Install…');
  const slot = h('div');
  open.addEventListener('click', () => {
    const expanded = open.getAttribute('aria-expanded') === 'true';
    open.setAttribute('aria-expanded', String(!expanded));
    card.classList.toggle('installing', !expanded);
    if (expanded) { slot.replaceChildren(); return; }
    const form = installForm(c, orgs, (res) => {
      installed.textContent = `Installed for: ${[...c.installed.map((i) => i.org), res.install?.org].filter(Boolean).join(', ')}`;
    });
    slot.replaceChildren(form);
    form.querySelector('select, input')?.focus();
  });
  const req = [...(c.requires?.integrations || []).map((i) => `integration ${i}`), ...(c.requires?.variables || []).map((v) => `variable ${v}`)];
  const card = h('article', { class: 'card', 'data-testid': `crate-${c.name}`, 'aria-labelledby': `crate-${c.name}-title` },
    h('h2', { id: `crate-${c.name}-title` }, c.name), h('span', { class: 'muted' }, `v${c.version}`),
    h('p', null, c.description), req.length ? h('p', { class: 'muted' }, `Needs: ${req.join(', ')}`) : null,
    c.forms?.length ? h('p', { class: 'muted', 'data-testid': `forms-${c.name}` }, `Ships forms (shared by every org): ${c.forms.map((f) => f.name).join(', ')}`) : null,
    installed, h('div', null, open), slot);
  return card;
}

function installForm(c, orgs, done) {
  const org = select(orgs, '', { name: 'org', required: true, 'data-testid': 'install-org' });
  const controls = Object.entries(c.parameters || {}).map(([n, spec]) => paramControl(n, spec));
  const runFor = h('input', { type: 'text', name: 'run_for', placeholder: 'org ids, comma-separated' });
  const enable = h('input', { type: 'checkbox', name: 'enable', checked: true });
  const error = h('div', { role: 'alert', class: 'error-text' });
  const result = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', 'data-testid': 'install-submit' }, 'Install');
  const form = h('form', { 'aria-label': `Install ${c.name}` },
    field('Organization', org),
    controls.length ? h('fieldset', null, h('legend', null, 'Parameters'), controls.map((x) => x.el)) : null,
    field('Run for (optional)', runFor, 'the org itself when empty'),
    field('Enable its triggers', enable),
    error, submit, result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!org.value) { error.textContent = 'Choose an organization.'; org.focus(); return; }
    let params;
    try { params = readParams(controls); } catch (e) { error.textContent = e.message; return; }
    const body = { org: org.value, params, enable: enable.checked };
    const rf = runFor.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (rf.length) body.run_for = rf;
    submit.disabled = true;
    try {
      const res = await api('POST', `/api/crates/${enc(c.name)}/install`, body);
      result.replaceChildren(h('p', { 'data-testid': 'install-done' }, `Installed ${c.name} for ${res.install?.org || org.value}.`),
        h('ul', null, (res.workflows || []).map((w) => h('li', null, h('a', { href: `#/workflows/${enc(w.name)}` }, w.name), ` v${w.version}`)),
          (res.forms || []).map((f) => h('li', null, 'form ', h('a', { href: `#/forms/${enc(f.name)}` }, f.name), ` v${f.version} (${f.change})`))));
      say(`Installed ${c.name}`);
      done(res);
    } catch (e) {
      if (!(e instanceof AuthError)) error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------------------------------
// Forms

async function pageForms(ctx, main, [name]) {
  const forms = await api('GET', '/api/forms');
  main.append(h('h1', null, 'Forms'), h('p', { class: 'muted' }, 'Hosted forms: send each organization its own link; every submission starts the form\'s workflows for that organization.'));
  if (!forms.length) {
    main.append(h('p', null, 'No forms deployed. Deploy a form file with ', h('code', null, 'weft deploy forms/new-user.yaml'), '.'));
    return;
  }
  main.append(table('Deployed forms', ['Form', 'Title', 'Fields', 'Version'], forms.map((f) => h('tr', null,
    h('td', null, h('a', { href: `#/forms/${enc(f.name)}`, 'aria-current': f.name === name ? 'page' : false, 'data-testid': `form-${f.name}` }, f.name)),
    h('td', null, f.title), h('td', null, String(f.fields)), h('td', null, `v${f.version}`)))));
  if (!name) return;
  const [form, orgs, subs] = await Promise.all([
    api('GET', `/api/forms/${enc(name)}`),
    orgOptions('Choose…'),
    api('GET', `/api/form-submissions?form=${enc(name)}&limit=50`),
  ]);
  main.append(h('h2', null, form.title));
  if (form.description) main.append(h('p', null, form.description));
  // What the person sees, field by field (the page itself is at the link).
  main.append(table(`Fields of ${form.name}`, ['Field', 'Type', 'Label', 'Rules'], form.field_list.map((f) => h('tr', null,
    h('td', { class: 'mono' }, f.name), h('td', null, f.type), h('td', null, f.label),
    h('td', null, [f.required ? 'required' : null, f.secret ? 'secret' : null,
      f.options ? `options: ${f.options.join(', ')}` : null,
      f.options_from ? `options from ${f.options_from}` : null,
      f.show_when ? `shown when ${f.show_when}` : null].filter(Boolean).join('; '))))));
  main.append(formPreview(form, orgs));
  main.append(formLinks(form, orgs));
  main.append(h('h2', null, 'Submissions'), subs.length
    ? table(`Submissions of ${form.name}`, ['When', 'Organization', 'Values', 'Executions'], subs.map((x) => h('tr', null,
      h('td', null, when(x.submitted_at)), h('td', null, x.org), h('td', null, jsonBlock(x.values, 'Values')),
      h('td', null, x.execution_ids.length ? x.execution_ids.map((id) => h('a', { href: `#/executions/${enc(id)}`, class: 'mono' }, shortId(id), ' ')) : 'none'))))
    : h('p', { class: 'muted' }, 'No submissions yet.'));
}

// The page as an organization's people see it (its dynamic options), live: conditional fields
// appear and answers are checked, but a preview's submissions go nowhere.
function formPreview(form, orgs) {
  const org = select(orgs, '', { 'aria-label': `Organization to preview ${form.name} for`, 'data-testid': 'form-preview-org' });
  const open = h('button', { type: 'button', class: 'secondary', 'data-testid': 'form-preview-open' }, 'Preview');
  const frame = h('iframe', { title: `Preview of ${form.name}`, class: 'form-preview', hidden: true, 'data-testid': 'form-preview-frame' });
  const note = h('div', { class: 'muted', 'aria-live': 'polite' });
  const load = async () => {
    if (!org.value) { say('Choose an organization', true); org.focus(); return; }
    const res = await act(open, () => api('POST', `/api/forms/${enc(form.name)}/preview/${enc(org.value)}`));
    if (!res) return;
    frame.src = res.url.replace(/^https?:\/\/[^/]+/, '');
    frame.hidden = false;
    note.textContent = `Preview for ${res.org}: submissions are checked and go nowhere (until ${when(res.expires_at)}).`;
  };
  open.addEventListener('click', load);
  org.addEventListener('change', () => { if (!frame.hidden) load(); });
  return h('section', { 'aria-labelledby': 'form-preview-title' },
    h('h2', { id: 'form-preview-title' }, 'Preview'),
    h('div', { class: 'secrets' }, org, ' ', open, note), frame);
}

// One organization's link: show (issued on first use), copy, rotate, turn off or on.
function formLinks(form, orgs) {
  const org = select(orgs, '', { 'aria-label': `Organization of the link to ${form.name}`, 'data-testid': 'form-link-org' });
  const url = h('input', { type: 'text', readOnly: true, value: '', class: 'mono', size: '60', 'aria-label': `Link to ${form.name}`, hidden: true, 'data-testid': 'form-link-url' });
  const note = h('div', { class: 'muted', 'aria-live': 'polite', 'data-testid': 'form-link-note' });
  const button = (text, id) => h('button', { type: 'button', class: 'secondary', 'data-testid': id }, text);
  const show = button('Show link', 'form-link-show');
  const copy = button('Copy', 'form-link-copy');
  const rotate = button('Rotate', 'form-link-rotate');
  const toggle = button('Turn off', 'form-link-toggle');
  let current = null;
  const put = (res) => {
    if (!res) return;
    current = res;
    url.value = res.url;
    url.hidden = false;
    toggle.textContent = res.enabled ? 'Turn off' : 'Turn on';
    note.textContent = `${res.state} link for ${res.org}${res.expires_at ? `, expires ${when(res.expires_at)}` : ''}${res.rotated_at ? `; rotated ${when(res.rotated_at)}` : ''}`;
  };
  const path = () => `/api/forms/${enc(form.name)}/links/${enc(org.value)}`;
  const need = () => { if (!org.value) { say('Choose an organization', true); org.focus(); return false; } return true; };
  show.addEventListener('click', async () => { if (need()) put(await act(show, () => api('GET', path()))); });
  rotate.addEventListener('click', async () => { if (need()) put(await act(rotate, () => api('POST', `${path()}/rotate`))); });
  toggle.addEventListener('click', async () => {
    if (!need()) return;
    const enabled = current ? !current.enabled : false;
    put(await act(toggle, () => api('PATCH', path(), { enabled })));
  });
  copy.addEventListener('click', () => { if (url.value) copyText(url.value, url); });
  org.addEventListener('change', () => { current = null; url.hidden = true; url.value = ''; note.textContent = ''; });
  return h('section', { 'aria-labelledby': 'form-links-title' },
    h('h2', { id: 'form-links-title' }, 'Links'),
    h('p', { class: 'muted' }, 'Each organization has its own link; rotating it stops the old one at once.'),
    h('div', { class: 'secrets' }, org, ' ', show, ' ', copy, ' ', rotate, ' ', toggle, url, note));
}

// ---------------------------------------------------------------------------------------
// Start

window.addEventListener('hashchange', () => { render.moved = true; render(); });
document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
document.getElementById('skip-link').addEventListener('click', (ev) => {
  // The hash is the router's: move focus without changing it.
  ev.preventDefault();
  document.getElementById('main').focus();
});
render();
