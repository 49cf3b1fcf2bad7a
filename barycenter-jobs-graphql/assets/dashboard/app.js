// barycenter-jobs dashboard. Plain JavaScript, no dependencies, no build step: everything it
// loads comes from the admin service itself. It talks to the GraphQL endpoint with POST +
// JSON + a bearer token (kept in sessionStorage), and refreshes every few seconds, updating
// only the cells that changed, so nothing flickers.
'use strict';

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? '';
  const ENDPOINT = meta('barycenter-jobs-endpoint') || '/';
  const GRAPHIQL = meta('barycenter-jobs-graphiql');
  const TOKEN_KEY = 'barycenter-jobs-token';
  const REFRESH_MS = 4000;
  // While a run is open its count is written every 2 s: poll as often, so the live count
  // moves with it.
  const LIVE_REFRESH_MS = 2000;
  const HISTORY_LIMIT = 50;
  const CHART_RUNS = 30;

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`text` sets its text, `on*` functions are listeners). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  const svg = (tag, attrs = {}) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };
  /** Replace the children of `node` only when `key` changed since the last call. */
  function fill(node, key, build) {
    if (node.dataset.key === key) return;
    node.dataset.key = key;
    node.replaceChildren(...[].concat(build()));
  }
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // ---- formatting ----------------------------------------------------------------------
  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  /** A `<time>` in the viewer's local time, UTC on hover. */
  function time(iso) {
    if (!iso) return el('span', { class: 'muted', text: '—' });
    const d = new Date(iso);
    return el('time', { datetime: iso, title: `UTC: ${iso.replace('T', ' ').replace('Z', ' UTC')}`, text: dateFmt.format(d) });
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    const m = Math.floor(ms / 60000);
    return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
  }
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const STATUS_CLASS = { succeeded: 'ok', failed: 'bad', cancelled: 'warn', abandoned: 'warn', running: 'info' };
  const statusBadge = (status) => el('span', { class: `badge ${STATUS_CLASS[status] || 'info'}`, text: status });

  // ---- the API ---------------------------------------------------------------------------
  class AuthError extends Error {}
  class Unreachable extends Error {}

  async function post(query, variables) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(ENDPOINT, {
        method: 'POST', headers, body: JSON.stringify({ query, variables }),
        credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new Unreachable(e.message);
    }
    if (res.status === 401) throw new AuthError('unauthorized');
    let body;
    try {
      body = await res.json();
    } catch (e) {
      throw new Unreachable(`HTTP ${res.status}`);
    }
    if (!res.ok) throw new Error(body?.errors?.[0]?.message || `HTTP ${res.status}`);
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
    return body.data;
  }

  let tokenPrompt = null;
  /** Ask for a bearer token once (one dialog however many requests were refused). */
  function askToken(message) {
    if (tokenPrompt) return tokenPrompt;
    tokenPrompt = new Promise((resolve) => {
      const dialog = $('token-dialog');
      const input = $('token-input');
      $('token-message').textContent = message;
      input.value = '';
      $('token-form').onsubmit = (ev) => {
        ev.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        sessionStorage.setItem(TOKEN_KEY, token);
        dialog.close();
        tokenPrompt = null;
        resolve();
      };
      dialog.oncancel = (ev) => ev.preventDefault();
      dialog.showModal();
      input.focus();
    });
    return tokenPrompt;
  }

  /** A GraphQL request; asks for a token when the service wants one, then retries. */
  async function api(query, variables = {}) {
    for (;;) {
      try {
        return await post(query, variables);
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        const had = sessionStorage.getItem(TOKEN_KEY);
        sessionStorage.removeItem(TOKEN_KEY);
        await askToken(had ? 'That token was refused. Enter another bearer token.'
          : 'This admin API needs a bearer token.');
      }
    }
  }

  // ---- state -----------------------------------------------------------------------------
  const OVERVIEW = `query Overview {
    viewer { name role }
    health { status overdueJobs { name overdueSince } clockSkewSecs checkedAt }
    availableJobs {
      name description schedule scheduleDescription timeZone firesOnSchedule paused running
      nextRunAt timeoutSecs overdue overdueSince pauseNote pausedUntil pausedBy
      policy { overlap misfire catchUpWindowSecs jitterSecs pauseAfterFailures retryAttempts retryBackoffSecs }
      backfill { from to requestedBy }
      lastExecution { id status startedAt completedAt durationMs recordsProcessed errorMessage }
    }
    auditLog(limit: 20) { id at actor action jobName detail }
    fleet { instance host pid version startedAt lastSeenAt clockSkewSecs running }
  }`;
  const HISTORY = `query History($job: String!, $failures: Boolean!) {
    runs: jobLogs(jobName: $job, limit: ${HISTORY_LIMIT}, onlyFailures: $failures) {
      id status startedAt completedAt durationMs recordsProcessed errorMessage trigger attempt
    }
    chart: jobLogs(jobName: $job, limit: ${CHART_RUNS}) { id status startedAt durationMs recordsProcessed }
  }`;

  let viewer = null;
  const rows = new Map(); // job name -> view
  const noDryRun = new Set(); // jobs that said they have no dry run
  let refreshes = 0;
  let failingSince = null;
  let liveRuns = false; // some run was open at the last refresh

  const mayOperate = () => viewer?.role === 'operate';
  const readOnlyTip = () => `Needs the operate role; ${viewer?.name ?? 'you'} has the ${viewer?.role ?? 'read'} role`;

  function say(view, text, ok) {
    view.msg.className = `msg ${ok ? 'ok' : 'bad'}`;
    view.msg.textContent = text;
  }

  /** Mutations share this: the button is busy meanwhile, the answer is said next to it. */
  async function act(view, button, query, variables, done) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const data = await api(query, variables);
      const result = Object.values(data)[0];
      say(view, result.message, result.success);
      if (done) done(result);
    } catch (e) {
      say(view, e.message, false);
    } finally {
      button.removeAttribute('aria-busy');
      button.disabled = false;
      refresh();
    }
  }

  // ---- a run in progress: its count so far, and Cancel ----------------------------------
  const isOpen = (run) => !!run && run.status === 'running' && !run.completedAt;
  const CANCEL_RUN = 'mutation CancelRun($id: ID!) { cancelRun(executionId: $id) { success message jobName } }';

  /** The records an open run reported so far, how long it has run and its average rate. */
  function live(run) {
    const records = run.recordsProcessed;
    const ms = Math.max(0, Date.now() - Date.parse(run.startedAt));
    // The start is stored to the second: no rate in the first second, rather than a wild one.
    const rate = records !== null && ms >= 1000 ? records / (ms / 1000) : null;
    const text = [
      records === null ? 'no records reported yet' : `${plural(records, 'record')} so far`,
      `running for ${duration(ms)}`,
      rate === null ? '— records/s' : `${rate.toFixed(1)} records/s`,
    ].join(' · ');
    return el('span', {
      class: 'sub live', 'data-role': 'live', 'data-execution': run.id,
      'data-records': records ?? '', 'data-elapsed-ms': ms, 'data-rate': rate === null ? '' : rate.toFixed(2),
      text,
    });
  }

  /** A Cancel button for run `id` of `v`'s job; the outcome is said in the job's row. */
  function cancelButton(v, id) {
    const button = el('button', {
      type: 'button', class: 'danger', 'data-action': 'cancel-run', 'data-execution': id, text: 'Cancel',
      'aria-label': `Cancel run ${id} of ${v.name}`,
      onclick: () => act(v, button, CANCEL_RUN, { id: button.dataset.execution }),
    });
    return button;
  }

  const RUN_LOG = 'query RunLog($id: ID!) { jobExecution(id: $id) { id status logs { at level message } } }';

  /** A Log button for run `id`: shows what the run logged below the history. */
  function logButton(v, id) {
    return el('button', {
      type: 'button', 'data-action': 'show-log', 'data-execution': id, text: 'Log',
      'aria-label': `Log of run ${id} of ${v.name}`,
      onclick: () => showLog(v, id),
    });
  }

  /** Fetch run `id`'s log lines and show them in `v`'s log panel. */
  async function showLog(v, id) {
    let run;
    try {
      run = (await api(RUN_LOG, { id: String(id) })).jobExecution;
    } catch (e) {
      say(v, `Could not read the log of run ${id}: ${e.message}`, false);
      return;
    }
    v.runLog.hidden = false;
    v.runLog.dataset.execution = id;
    const lines = run ? run.logs : [];
    v.runLog.replaceChildren(
      el('h4', { text: `Log of run ${id}${run ? ` (${run.status})` : ''}` }),
      lines.length
        ? el('ol', { class: 'log-lines' }, ...lines.map((l) => el('li', { 'data-level': l.level },
          time(l.at), ' ', el('strong', { text: l.level }), ' ', el('span', { text: l.message }))))
        : el('p', { class: 'muted', text: run ? 'Nothing logged at info or above.' : 'No such run.' }));
  }

  /** Operate buttons are disabled, with a tooltip saying why, for read-only viewers. */
  function allowOperate(button) {
    if (button.getAttribute('aria-busy') === 'true') return;
    button.disabled = !mayOperate();
    if (mayOperate()) button.removeAttribute('title');
    else button.title = readOnlyTip();
  }

  // ---- one row per job -----------------------------------------------------------------
  function jobView(job) {
    const name = job.name;
    const v = { name, job };
    const id = `job-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    v.cells = {
      name: el('td', { 'data-label': 'Job' }),
      schedule: el('td', { 'data-label': 'Schedule' }),
      next: el('td', { 'data-label': 'Next run' }),
      last: el('td', { 'data-label': 'Last run' }),
      state: el('td', { 'data-label': 'State' }),
      actions: el('td', { 'data-label': 'Actions' }),
    };
    v.row = el('tr', { 'data-job': name, id }, ...Object.values(v.cells));
    v.msg = el('span', { class: 'msg', role: 'status', 'aria-live': 'polite' });

    v.run = el('button', {
      type: 'button', class: 'primary', 'data-action': 'run', text: 'Run now',
      'aria-label': `Run now: ${name}`,
      onclick: () => act(v, v.run, 'mutation Run($job: String!) { triggerJob(jobName: $job) { success message jobName executionId } }', { job: name }),
    });
    v.pause = el('button', {
      type: 'button', 'data-action': 'pause', text: 'Pause',
      onclick: () => {
        const resume = v.job.paused;
        const field = resume ? 'resumeJob' : 'pauseJob';
        act(v, v.pause, `mutation Toggle($job: String!) { ${field}(jobName: $job) { success message jobName } }`, { job: name });
      },
    });
    v.dry = el('button', {
      type: 'button', 'data-action': 'dry-run', text: 'Dry run', 'aria-label': `Dry run: ${name}`,
      onclick: () => act(v, v.dry, 'mutation Dry($job: String!) { triggerJob(jobName: $job, dryRun: true) { success message jobName wouldProcess } }', { job: name }, (r) => {
        if (r.success && r.wouldProcess !== null) say(v, `Dry run: a run would process ${plural(r.wouldProcess, 'record')} now`, true);
        if (!r.success && /dry run/i.test(r.message)) noDryRun.add(name);
      }),
    });
    // Shown while the job's last run is open.
    v.cancel = cancelButton(v, '');
    v.cancel.hidden = true;
    v.cancel.textContent = 'Cancel run';
    v.toggle = el('button', {
      type: 'button', 'data-action': 'history', text: 'History', 'aria-expanded': 'false',
      'aria-controls': `${id}-detail`, 'aria-label': `History: ${name}`,
      onclick: () => setOpen(v, !v.open),
    });
    v.cells.actions.append(el('div', { class: 'actions' }, v.run, v.cancel, v.pause, v.dry, v.toggle), v.msg);

    // The detail row: chart, history, reschedule form.
    v.open = false;
    v.onlyFailures = false;
    v.charts = el('div', { class: 'charts' });
    v.historyBody = el('tbody');
    v.runLog = el('section', { class: 'run-log', 'data-role': 'run-log', 'aria-live': 'polite', hidden: true });
    v.runCancels = new Map(); // execution id -> its Cancel button, kept across redraws
    const failures = el('input', { type: 'checkbox', id: `${id}-failures`, 'data-action': 'only-failures' });
    failures.addEventListener('change', () => { v.onlyFailures = failures.checked; loadHistory(v); });
    const history = el('div', {},
      el('h3', { text: `Recent runs of ${name}` }),
      v.charts,
      el('div', { class: 'filter' }, failures, el('label', { for: `${id}-failures`, text: 'Failures only' })),
      el('table', { class: 'history' },
        el('caption', { class: 'visually-hidden', text: `Runs of ${name}, newest first` }),
        el('thead', {}, el('tr', {},
          ...['Started', 'Outcome', 'Duration', 'Records', 'Trigger', 'Error', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
        v.historyBody),
      v.runLog);
    v.form = rescheduleForm(v, id);
    v.pauseForm = pauseForm(v, id);
    v.policyForm = policyForm(v, id);
    v.backfillForm = backfillForm(v, id);
    v.detail = el('tr', { class: 'detail', id: `${id}-detail`, hidden: true },
      el('td', { colspan: 6 }, el('div', { class: 'detail-grid' }, history,
        el('div', {}, v.form.node, v.pauseForm.node, v.policyForm.node, v.backfillForm.node))));
    return v;
  }

  function setOpen(v, open) {
    v.open = open;
    v.toggle.setAttribute('aria-expanded', String(open));
    v.detail.hidden = !open;
    if (open) {
      v.form.reset(v.job);
      v.policyForm.reset(v.job);
      loadHistory(v);
    }
  }

  function updateRow(v, job) {
    v.job = job;
    const c = v.cells;
    fill(c.name, JSON.stringify([job.name, job.description]), () => [
      // Break long names at their underscores, not mid-word.
      el('span', { class: 'name' }, ...job.name.split('_').flatMap((part, i) => (i ? ['_', el('wbr'), part] : [part]))),
      el('span', { class: 'sub', text: job.description }),
    ]);
    fill(c.schedule, JSON.stringify([job.scheduleDescription, job.schedule, job.timeZone, job.policy]), () => {
      const out = [
        el('span', { text: job.scheduleDescription }),
        el('span', { class: 'sub' }, el('code', { text: job.schedule }), ` · ${job.timeZone || 'UTC'}`),
      ];
      const policy = policySummary(job.policy);
      if (policy) out.push(el('span', { class: 'sub', 'data-role': 'policy', text: policy }));
      return out;
    });
    fill(c.next, job.nextRunAt || '', () => time(job.nextRunAt));
    const last = job.lastExecution;
    const running = isOpen(last);
    // An open run's cell says how long it has run: redrawn at each refresh.
    fill(c.last, JSON.stringify(running ? [last, Date.now()] : last), () => {
      if (!last) return el('span', { class: 'muted', text: 'never run' });
      if (running) return [statusBadge(last.status), ' ', time(last.startedAt), live(last)];
      const bits = [];
      if (last.durationMs !== null) bits.push(duration(last.durationMs));
      if (last.recordsProcessed !== null) bits.push(plural(last.recordsProcessed, 'record'));
      const out = [statusBadge(last.status), ' ', time(last.startedAt)];
      if (bits.length) out.push(el('span', { class: 'sub', text: bits.join(' · ') }));
      if (last.errorMessage) out.push(el('span', { class: 'sub error', text: last.errorMessage }));
      return out;
    });
    fill(c.state, JSON.stringify([job.running, job.paused, job.firesOnSchedule, job.overdue, job.overdueSince, job.pauseNote, job.pausedUntil, job.pausedBy, job.backfill]), () => {
      const b = [];
      if (job.running) b.push(el('span', { class: 'badge info', 'data-badge': 'running', text: 'running' }));
      if (job.paused) b.push(el('span', { class: 'badge warn', 'data-badge': 'paused', text: 'paused' }));
      else if (!job.firesOnSchedule) b.push(el('span', { class: 'badge warn', 'data-badge': 'disabled', text: 'disabled' }));
      if (job.overdue) {
        const since = el('span', { class: 'badge bad', 'data-badge': 'overdue', text: 'overdue' });
        if (job.overdueSince) since.title = `overdue since ${job.overdueSince}`;
        b.push(since);
      }
      if (!b.length) b.push(el('span', { class: 'badge ok', 'data-badge': 'idle', text: 'idle' }));
      const out = [el('div', { class: 'badges' }, ...b)];
      if (job.paused && (job.pauseNote || job.pausedUntil || job.pausedBy)) {
        const bits = [];
        if (job.pausedBy) bits.push(`by ${job.pausedBy}`);
        if (job.pausedUntil) bits.push(`until ${new Date(job.pausedUntil).toLocaleString()}`);
        const note = el('span', { class: 'sub', 'data-role': 'pause-note', text: bits.join(' ') });
        if (job.pauseNote) note.prepend(el('q', { text: job.pauseNote }), bits.length ? ' ' : '');
        out.push(note);
      }
      if (job.backfill) out.push(el('span', { class: 'sub', 'data-role': 'backfill', text: `backfilling ${backfillText(job.backfill)}` }));
      return out;
    });
    v.backfillForm.show(job.backfill);
    setText(v.pause, job.paused ? 'Resume' : 'Pause');
    v.pause.dataset.action = job.paused ? 'resume' : 'pause';
    v.pause.setAttribute('aria-label', `${job.paused ? 'Resume' : 'Pause'}: ${job.name}`);
    v.cancel.hidden = !running;
    v.cancel.dataset.execution = running ? last.id : '';
    if (running) v.cancel.setAttribute('aria-label', `Cancel run ${last.id} of ${job.name}`);
    allowOperate(v.cancel);
    const f = v.backfillForm;
    for (const b of [v.run, v.pause, v.dry, v.form.save, v.pauseForm.save, v.policyForm.save, f.start, f.cancel]) {
      if (b.getAttribute('aria-busy') === 'true') continue;
      const operate = mayOperate();
      const dryless = b === v.dry && noDryRun.has(job.name);
      const unchecked = (b === v.form.save && !v.form.ready()) || (b === f.start && !f.ready());
      b.disabled = !operate || dryless || unchecked;
      if (!operate) b.title = readOnlyTip();
      else if (dryless) b.title = `${job.name} does not support dry runs`;
      else b.removeAttribute('title');
    }
    if (v.open) loadHistory(v);
  }

  // ---- history and chart ---------------------------------------------------------------
  async function loadHistory(v) {
    const asked = v.onlyFailures;
    let data;
    try {
      data = await api(HISTORY, { job: v.name, failures: asked });
    } catch (e) {
      return;
    }
    if (asked !== v.onlyFailures) return;
    // Open runs keep their Cancel button across redraws (a click is never lost to a refresh);
    // the buttons of runs that ended go.
    const open = data.runs.filter(isOpen);
    for (const id of [...v.runCancels.keys()]) {
      if (!open.some((r) => r.id === id)) v.runCancels.delete(id);
    }
    for (const r of open) {
      if (!v.runCancels.has(r.id)) v.runCancels.set(r.id, cancelButton(v, r.id));
      allowOperate(v.runCancels.get(r.id));
    }
    // With a run open, its elapsed time changes at each refresh even when nothing else does.
    fill(v.historyBody, JSON.stringify(open.length ? [data.runs, Date.now()] : data.runs), () => {
      if (!data.runs.length) {
        return el('tr', {}, el('td', { colspan: 7, class: 'muted', text: asked ? 'No failed runs.' : 'No runs yet.' }));
      }
      return data.runs.map((r) => el('tr', { 'data-execution': r.id, 'data-trigger': r.trigger, 'data-attempt': r.attempt, 'data-status': r.status },
        el('td', { 'data-label': 'Started' }, time(r.startedAt)),
        el('td', { 'data-label': 'Outcome' }, statusBadge(r.status)),
        el('td', { 'data-label': 'Duration', text: duration(r.durationMs) }),
        el('td', { 'data-label': 'Records' }, isOpen(r) ? live(r) : String(r.recordsProcessed ?? '—')),
        el('td', { 'data-label': 'Trigger', text: r.attempt > 1 ? `${r.trigger ?? '—'} (attempt ${r.attempt})` : (r.trigger ?? '—') }),
        el('td', { 'data-label': 'Error' }, r.errorMessage ? el('span', { class: 'error', text: r.errorMessage }) : ''),
        el('td', { 'data-label': 'Actions' }, isOpen(r) ? v.runCancels.get(r.id) : '', logButton(v, r.id))));
    });
    fill(v.charts, JSON.stringify(data.chart), () => {
      const runs = [...data.chart].reverse(); // oldest left
      return [
        chart(`Duration per run (ms), last ${runs.length}`, runs, (r) => r.durationMs, (r, x) => `${r.startedAt}: ${duration(x)} (${r.status})`),
        chart(`Records per run, last ${runs.length}`, runs, (r) => r.recordsProcessed, (r, x) => `${r.startedAt}: ${plural(x, 'record')} (${r.status})`),
      ];
    });
  }

  /** A small bar chart in inline SVG; each bar says its value on hover. */
  function chart(title, runs, value, label) {
    const W = 280; const H = 70; const pad = 2;
    const values = runs.map((r) => value(r) ?? 0);
    const max = Math.max(1, ...values);
    const step = Math.min(14, runs.length ? (W - 2 * pad) / runs.length : W);
    const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': runs.length ? `${title}: from ${Math.min(...values)} to ${Math.max(...values)}` : `${title}: no runs` });
    g.append(svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    runs.forEach((r, i) => {
      const h = Math.max(1, (values[i] / max) * (H - 6));
      const bar = svg('rect', {
        class: `bar${r.status === 'failed' || r.status === 'abandoned' || r.status === 'cancelled' ? ' failed' : ''}`,
        x: pad + i * step + step * 0.1, y: H - 1 - h, width: Math.max(1, step * 0.8), height: h,
      });
      const t = svg('title');
      t.textContent = label(r, values[i]);
      bar.append(t);
      g.append(bar);
    });
    return el('figure', { class: 'chart' }, el('figcaption', { text: title }), g);
  }

  // ---- reschedule with a server-side preview -------------------------------------------
  function rescheduleForm(v, id) {
    const cron = el('input', { id: `${id}-cron`, name: 'schedule', required: true, spellcheck: 'false', autocomplete: 'off', class: 'mono' });
    const zone = el('input', { id: `${id}-zone`, name: 'timeZone', placeholder: 'UTC', autocomplete: 'off' });
    const timeout = el('input', { id: `${id}-timeout`, name: 'timeoutSecs', type: 'number', min: 1, inputmode: 'numeric' });
    const preview = el('div', { class: 'preview', 'aria-live': 'polite', 'data-role': 'preview' });
    const previewButton = el('button', { type: 'button', 'data-action': 'preview', text: 'Preview' });
    const save = el('button', { type: 'submit', class: 'primary', 'data-action': 'save', text: 'Save schedule', disabled: true });
    const form = el('form', { class: 'reschedule', novalidate: true },
      el('fieldset', {},
        el('legend', { text: 'Reschedule' }),
        el('label', { for: cron.id, text: 'Cron (sec min hour day month weekday)' }), cron,
        el('label', { for: zone.id, text: 'Time zone (IANA name, empty for UTC)' }), zone,
        el('label', { for: timeout.id, text: 'Timeout (seconds)' }), timeout,
        el('div', { class: 'buttons' }, previewButton, save),
        preview));
    let checked = null; // the inputs the last valid preview was for
    let loaded = ['', '', '']; // the values shown when the form was filled in
    const values = () => [cron.value.trim(), zone.value.trim(), String(timeout.value).trim()];
    const current = () => JSON.stringify(values());
    const api_ = {
      save,
      ready: () => checked !== null && checked === current(),
      reset(job) {
        cron.value = job.schedule;
        zone.value = job.timeZone || '';
        timeout.value = job.timeoutSecs;
        loaded = values();
        checked = null;
        preview.replaceChildren();
        save.disabled = true;
      },
    };
    let seq = 0;
    async function check() {
      const mine = ++seq;
      const asked = current();
      checked = null;
      save.disabled = true;
      let data;
      try {
        data = await api('query Preview($s: String!, $z: String) { previewSchedule(schedule: $s, timeZone: $z, count: 5) { valid message description upcoming } }',
          { s: cron.value.trim(), z: zone.value.trim() || null });
      } catch (e) {
        preview.replaceChildren(el('p', { class: 'bad', text: e.message }));
        return;
      }
      if (mine !== seq) return;
      const p = data.previewSchedule;
      const t = Number(timeout.value);
      if (!p.valid) {
        preview.replaceChildren(el('p', { class: 'bad', text: p.message }));
      } else if (timeout.value.trim() && !(Number.isInteger(t) && t >= 1)) {
        preview.replaceChildren(el('p', { class: 'bad', text: 'The timeout must be a whole number of seconds, at least 1.' }));
      } else {
        checked = asked;
        preview.replaceChildren(
          el('p', { text: `${p.description}. Next five runs:` }),
          el('ol', {}, ...p.upcoming.map((u) => el('li', {}, time(u)))));
      }
      save.disabled = !mayOperate() || !api_.ready();
    }
    let debounce = null;
    for (const input of [cron, zone, timeout]) {
      input.addEventListener('input', () => {
        checked = null;
        save.disabled = true;
        clearTimeout(debounce);
        debounce = setTimeout(check, 350);
      });
    }
    previewButton.addEventListener('click', check);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!api_.ready() || !mayOperate()) return;
      // Only the fields the operator changed: an unchanged field is sent as null, which
      // keeps its setting, so changing the timeout alone does not pin the schedule and the
      // zone as runtime settings.
      const [s, z, t] = values();
      const vars = {
        job: v.name,
        s: s !== loaded[0] ? s : null,
        z: z !== loaded[1] ? (z || 'UTC') : null,
        t: t !== loaded[2] && t ? Number(t) : null,
      };
      if (vars.s === null && vars.z === null && vars.t === null) {
        preview.replaceChildren(el('p', { text: 'Nothing changed.' }));
        return;
      }
      act(v, save, 'mutation Reschedule($job: String!, $s: String, $z: String, $t: Int) { rescheduleJob(jobName: $job, schedule: $s, timeZone: $z, timeoutSecs: $t) { success message jobName } }', vars,
        (r) => { if (r.success) { checked = null; save.disabled = true; } });
    });
    api_.node = form;
    return api_;
  }

  // ---- pause with a note, and the scheduling policies ----------------------------------
  function policySummary(p) {
    if (!p) return '';
    const bits = [];
    if (p.overlap && p.overlap !== 'skip') bits.push(`overlapping ticks: ${p.overlap.replace('_', ' ')}`);
    if (p.misfire !== 'run_once') bits.push(`missed ticks: ${p.misfire.replace('_', ' ')}`);
    if (p.catchUpWindowSecs !== null) bits.push(`catch-up window ${p.catchUpWindowSecs} s`);
    if (p.jitterSecs) bits.push(`jitter ${p.jitterSecs} s`);
    if (p.pauseAfterFailures) bits.push(`pause after ${plural(p.pauseAfterFailures, 'failure')}`);
    if (p.retryAttempts) bits.push(`${p.retryAttempts} ${p.retryAttempts === 1 ? 'retry' : 'retries'} from ${p.retryBackoffSecs} s`);
    return bits.join(' · ');
  }

  function pauseForm(v, id) {
    const note = el('input', { id: `${id}-pause-note`, name: 'note', maxlength: 500, autocomplete: 'off' });
    const until = el('input', { id: `${id}-pause-until`, name: 'until', type: 'datetime-local' });
    const save = el('button', { type: 'submit', 'data-action': 'pause-with-note', text: 'Pause' });
    const form = el('form', { class: 'pause', novalidate: true },
      el('fieldset', {},
        el('legend', { text: 'Pause with a note' }),
        el('label', { for: note.id, text: 'Why (shown to the next operator)' }), note,
        el('label', { for: until.id, text: 'Until (empty: until resumed; your local time)' }), until,
        el('div', { class: 'buttons' }, save)));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!mayOperate()) return;
      // The local date and time of the input, sent as an absolute ISO 8601 instant.
      const end = until.value ? new Date(until.value).toISOString() : null;
      act(v, save, 'mutation PauseWith($job: String!, $n: String, $u: String) { pauseJob(jobName: $job, note: $n, until: $u) { success message jobName } }',
        { job: v.name, n: note.value.trim() || null, u: end },
        (r) => { if (r.success) { note.value = ''; until.value = ''; } });
    });
    return { node: form, save };
  }

  function policyForm(v, id) {
    const overlap = el('select', { id: `${id}-overlap`, name: 'overlap' },
      ...['skip', 'buffer_one', 'cancel_running'].map((o) => el('option', { value: o, text: o.replace('_', ' ') })));
    const misfire = el('select', { id: `${id}-misfire`, name: 'misfire' },
      ...['run_once', 'run_all', 'skip'].map((m) => el('option', { value: m, text: m.replace('_', ' ') })));
    const number = (name, max) => el('input', { id: `${id}-${name}`, name, type: 'number', min: 0, max, inputmode: 'numeric' });
    const window_ = number('catch-up-window', 31536000);
    const jitter = number('jitter', 3600);
    const failures = number('pause-after-failures', 1000);
    const retries = number('retry-attempts', 100);
    const backoff = number('retry-backoff', 3600);
    const save = el('button', { type: 'submit', 'data-action': 'save-policy', text: 'Save policy' });
    const form = el('form', { class: 'policy', novalidate: true },
      el('fieldset', {},
        el('legend', { text: 'Scheduling policy' }),
        el('label', { for: overlap.id, text: 'A tick while the last run is still running' }), overlap,
        el('label', { for: misfire.id, text: 'Missed ticks at start-up' }), misfire,
        el('label', { for: window_.id, text: 'Catch-up window (seconds, empty: no limit)' }), window_,
        el('label', { for: jitter.id, text: 'Jitter (seconds, 0 to 3600)' }), jitter,
        el('label', { for: failures.id, text: 'Pause after consecutive failures (0: never)' }), failures,
        el('label', { for: retries.id, text: 'Retries of a failed tick (0: none)' }), retries,
        el('label', { for: backoff.id, text: 'First retry after (seconds, doubling; 1 to 3600)' }), backoff,
        el('div', { class: 'buttons' }, save)));
    let loaded = {};
    const read = () => ({
      o: overlap.value,
      m: misfire.value,
      w: window_.value.trim() === '' ? null : Number(window_.value),
      j: Number(jitter.value || 0),
      f: Number(failures.value || 0),
      r: Number(retries.value || 0),
      b: Number(backoff.value || 30),
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!mayOperate()) return;
      // Only what changed, as the reschedule form does: the rest keeps its setting.
      const now = read();
      const vars = { job: v.name };
      for (const k of ['o', 'm', 'w', 'j', 'f', 'r', 'b']) vars[k] = now[k] !== loaded[k] ? now[k] : null;
      if (Object.values(vars).slice(1).every((x) => x === null)) {
        say(v, 'Nothing changed.', true);
        return;
      }
      act(v, save, 'mutation Policy($job: String!, $o: String, $m: String, $w: Int, $j: Int, $f: Int, $r: Int, $b: Int) { setJobPolicy(jobName: $job, overlap: $o, misfire: $m, catchUpWindowSecs: $w, jitterSecs: $j, pauseAfterFailures: $f, retryAttempts: $r, retryBackoffSecs: $b) { success message jobName } }',
        vars, (r) => { if (r.success) loaded = now; });
    });
    return {
      node: form,
      save,
      reset(job) {
        const p = job.policy;
        overlap.value = p.overlap || 'skip';
        misfire.value = p.misfire;
        window_.value = p.catchUpWindowSecs === null ? '' : p.catchUpWindowSecs;
        jitter.value = p.jitterSecs;
        failures.value = p.pauseAfterFailures;
        retries.value = p.retryAttempts;
        backoff.value = p.retryBackoffSecs;
        loaded = read();
      },
    };
  }

  // ---- backfill of a time range, with a server-side preview ------------------------------
  /** "FROM → TO (by X)" of a backfill in progress, in the viewer's local time. */
  const backfillText = (b) => `${new Date(b.from).toLocaleString()} → ${new Date(b.to).toLocaleString()} (by ${b.requestedBy})`;

  function backfillForm(v, id) {
    const from = el('input', { id: `${id}-backfill-from`, name: 'from', type: 'datetime-local' });
    const to = el('input', { id: `${id}-backfill-to`, name: 'to', type: 'datetime-local' });
    const preview = el('div', { class: 'preview', 'aria-live': 'polite', 'data-role': 'backfill-preview' });
    const previewButton = el('button', { type: 'button', 'data-action': 'preview-backfill', text: 'Preview' });
    const start = el('button', { type: 'submit', class: 'primary', 'data-action': 'backfill', text: 'Start backfill', disabled: true });
    const runningText = el('p', { class: 'sub' });
    const cancel = el('button', {
      type: 'button', 'data-action': 'cancel-backfill', text: 'Cancel backfill',
      'aria-label': `Cancel backfill: ${v.name}`,
      onclick: () => act(v, cancel, 'mutation CancelBackfill($job: String!) { cancelBackfill(jobName: $job) { success message jobName } }', { job: v.name }),
    });
    // The backfill in force, if any, with its Cancel button.
    const running = el('div', { 'data-role': 'backfill-running', hidden: true },
      runningText, el('div', { class: 'buttons' }, cancel));
    const form = el('form', { class: 'backfill', novalidate: true },
      el('fieldset', {},
        el('legend', { text: 'Backfill' }),
        el('p', { class: 'sub', text: 'Runs each tick of the schedule in force within the range once, oldest first.' }),
        el('label', { for: from.id, text: 'From (your local time)' }), from,
        el('label', { for: to.id, text: 'To, included (your local time)' }), to,
        el('div', { class: 'buttons' }, previewButton, start),
        preview,
        running));
    // The local date and time of each input, as absolute ISO 8601 instants (as the pause
    // form sends its end); null while either is empty or not a date.
    const range = () => {
      if (!from.value || !to.value) return null;
      const f = new Date(from.value);
      const t = new Date(to.value);
      if (Number.isNaN(f.getTime()) || Number.isNaN(t.getTime())) return null;
      return { from: f.toISOString(), to: t.toISOString() };
    };
    let checked = null; // the inputs the last valid preview was for
    const current = () => JSON.stringify([from.value, to.value]);
    const api_ = {
      start,
      cancel,
      ready: () => checked !== null && checked === current(),
      /** Show the backfill in force, if any, and offer to cancel it. */
      show(backfill) {
        running.hidden = !backfill;
        setText(runningText, backfill ? `In progress: ${backfillText(backfill)}` : '');
      },
    };
    let seq = 0;
    async function check() {
      const mine = ++seq;
      const asked = current();
      checked = null;
      start.disabled = true;
      const r = range();
      if (!r) {
        preview.replaceChildren(el('p', { class: 'bad', text: 'Enter the start and the end of the range.' }));
        return;
      }
      let data;
      try {
        data = await api('query PreviewBackfill($job: String!, $f: String!, $t: String!) { previewBackfill(jobName: $job, from: $f, to: $t, count: 5) { valid message ticks first } }',
          { job: v.name, f: r.from, t: r.to });
      } catch (e) {
        if (mine === seq) preview.replaceChildren(el('p', { class: 'bad', text: e.message }));
        return;
      }
      if (mine !== seq) return;
      const p = data.previewBackfill;
      if (!p.valid) {
        preview.replaceChildren(el('p', { class: 'bad', text: p.message }));
      } else if (p.ticks === 0) {
        preview.replaceChildren(el('p', { class: 'bad', text: 'No tick of the schedule falls within this range.' }));
      } else {
        checked = asked;
        const more = p.ticks > p.first.length ? `, the first ${p.first.length}` : '';
        preview.replaceChildren(
          el('p', { 'data-role': 'backfill-ticks', 'data-ticks': p.ticks, text: `${plural(p.ticks, 'tick')} to run${more}:` }),
          el('ol', {}, ...p.first.map((u) => el('li', {}, time(u)))));
      }
      start.disabled = !mayOperate() || !api_.ready();
    }
    for (const input of [from, to]) {
      input.addEventListener('input', () => {
        checked = null;
        start.disabled = true;
      });
    }
    previewButton.addEventListener('click', check);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const r = range();
      if (!api_.ready() || !mayOperate() || !r) return;
      act(v, start, 'mutation Backfill($job: String!, $f: String!, $t: String!) { backfillJob(jobName: $job, from: $f, to: $t) { success message jobName ticks } }',
        { job: v.name, f: r.from, t: r.to },
        (res) => { if (res.success) { checked = null; start.disabled = true; } });
    });
    api_.node = form;
    return api_;
  }

  // ---- the page ------------------------------------------------------------------------
  function render(data) {
    viewer = data.viewer;
    setText($('viewer'), viewer ? `${viewer.name} (${viewer.role})` : '');
    const h = data.health;
    const status = $('fleet-status');
    setText(status, h.status === 'ok' ? 'fleet ok' : `fleet ${h.status}`);
    status.className = `badge ${h.status === 'ok' ? 'ok' : 'bad'}`;
    status.dataset.status = h.status;
    setText($('fleet-overdue'), h.overdueJobs.length
      ? `Overdue: ${h.overdueJobs.map((j) => j.name).join(', ')}` : '');
    setText($('fleet-skew'), h.clockSkewSecs === null ? 'clock skew: not measured yet'
      : `clock skew: ${h.clockSkewSecs.toFixed(2)} s`);

    const body = $('jobs-body');
    body.querySelector('tr.placeholder')?.remove();
    const seen = new Set();
    for (const job of data.availableJobs) {
      seen.add(job.name);
      let v = rows.get(job.name);
      if (!v) {
        v = jobView(job);
        rows.set(job.name, v);
        body.append(v.row, v.detail);
      }
      updateRow(v, job);
    }
    for (const [name, v] of rows) {
      if (!seen.has(name)) {
        v.row.remove();
        v.detail.remove();
        rows.delete(name);
      }
    }

    liveRuns = data.availableJobs.some((j) => j.running || isOpen(j.lastExecution));
    renderFleet(data.fleet);

    fill($('audit-body'), JSON.stringify(data.auditLog), () => (data.auditLog.length ? data.auditLog.map((a) => el('tr', {},
      el('td', { 'data-label': 'When' }, time(a.at)),
      el('td', { 'data-label': 'Who', text: a.actor }),
      el('td', { 'data-label': 'Action', text: a.action }),
      el('td', { 'data-label': 'Job', text: a.jobName }),
      el('td', { 'data-label': 'Detail', text: a.detail ?? '' }))) : el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No admin actions yet.' }))));
  }

  // ---- the fleet: the schedulers seen in the last 30 s ---------------------------------
  function skewText(secs) {
    if (secs === null || secs === undefined) return 'not measured yet';
    return `${secs > 0 ? '+' : ''}${secs.toFixed(2)} s`;
  }

  function renderFleet(fleet) {
    setText($('fleet-count'), fleet.length ? `${plural(fleet.length, 'scheduler')} seen in the last 30 s` : '');
    fill($('fleet-body'), JSON.stringify(fleet), () => (fleet.length ? fleet.map((r) => el('tr', { 'data-replica': r.instance },
      el('td', { 'data-label': 'Instance' }, el('span', { class: 'mono', text: r.instance }), el('span', { class: 'sub', text: `pid ${r.pid}` })),
      el('td', { 'data-label': 'Host', 'data-role': 'host', text: r.host }),
      el('td', { 'data-label': 'Version', 'data-role': 'version', text: r.version }),
      el('td', { 'data-label': 'Started' }, time(r.startedAt)),
      el('td', { 'data-label': 'Last seen' }, time(r.lastSeenAt)),
      el('td', { 'data-label': 'Clock skew', 'data-role': 'skew', text: skewText(r.clockSkewSecs) }),
      el('td', { 'data-label': 'Running', 'data-role': 'running', text: String(r.running) })))
      : el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No scheduler has reported in the last 30 s.' }))));
  }

  let timer = null;
  let inFlight = null;
  let again = false;
  /** Fetch and draw everything; at most one at a time, then again in REFRESH_MS (in
   * LIVE_REFRESH_MS while a run is open). */
  function refresh() {
    if (inFlight) {
      again = true; // after an action: draw what the server has now, not what it had
      return inFlight;
    }
    clearTimeout(timer);
    inFlight = (async () => {
      try {
        render(await api(OVERVIEW));
        refreshes += 1;
        document.body.dataset.refreshes = String(refreshes);
        if (refreshes === 1) performance.mark('barycenter-jobs:first-render');
        failingSince = null;
        $('offline').hidden = true;
        setText($('updated'), `updated ${new Date().toLocaleTimeString()}`);
      } catch (e) {
        failingSince = failingSince || new Date();
        const off = $('offline');
        off.textContent = e instanceof Unreachable
          ? `Cannot reach the server (since ${failingSince.toLocaleTimeString()}); retrying every ${REFRESH_MS / 1000} s.`
          : `The server answered with an error: ${e.message}`;
        off.hidden = false;
        document.body.dataset.offline = 'true';
      } finally {
        if ($('offline').hidden) delete document.body.dataset.offline;
        inFlight = null;
        timer = setTimeout(refresh, again ? 0 : (liveRuns && $('offline').hidden ? LIVE_REFRESH_MS : REFRESH_MS));
        again = false;
      }
    })();
    return inFlight;
  }

  if (GRAPHIQL) {
    const link = $('graphiql-link');
    link.href = GRAPHIQL;
    link.hidden = false;
  }
  refresh();
})();
