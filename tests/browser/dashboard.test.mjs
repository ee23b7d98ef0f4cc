// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
// (installed into .tools/playwright by scripts/bootstrap.sh; no browser download). Started by
// tests/integration/test_dashboard.c (suite dashboard_browser), which runs redis, the fake
// OpenRouter and GitHub, and dreamd with DREAM_DASHBOARD=1, and passes:
//   DASH_URL, DASH_TOKEN, DREAMCTL, DREAM_REDIS_URL, PLAYWRIGHT_CORE, CHROMIUM, ARTIFACT_DIR,
//   DROP_SPEC (a spec the fake answers with a destructive migration: the gate parks it).
// Exits 0 when every check held; prints the failed check and exits 1 otherwise.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const URL = process.env.DASH_URL;
const TOKEN = process.env.DASH_TOKEN;
const ARTIFACTS = process.env.ARTIFACT_DIR;
const XSS_TITLE = '<img src=x onerror=alert(1)>';
const LONG = 180000;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok - ' + what);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dash-browser-'));
let nspec = 0;
function submit(spec) {
  const file = path.join(tmp, 'spec-' + nspec++ + '.md');
  fs.writeFileSync(file, spec);
  const out = execFileSync(process.env.DREAMCTL,
    ['submit', file, '--repo', 'acme/app', '--trust', 'builder', '--max-tokens', '200000',
      '--max-dollars', '5'], { env: process.env }).toString().trim().split('\n');
  const id = out[out.length - 1].trim();
  check(/^[A-Za-z0-9._:-]+$/.test(id), 'dreamctl submit printed a job id (' + id + ')');
  return id;
}

async function bearer(p) {
  const r = await fetch(URL + p, { headers: { Authorization: 'Bearer ' + TOKEN } });
  return r.json();
}

async function main() {
  // A request without the token: 401.
  check((await fetch(URL + '/api/jobs')).status === 401, 'GET /api/jobs without the token is 401');
  check((await fetch(URL + '/api/jobs/x/approve', { method: 'POST' })).status === 401,
    'POST of an action without the token is 401');

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const dialogs = [];
    const errors = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') console.log('browser console: ' + m.text()); });
    let loads = 0;
    page.on('load', () => { loads++; });

    // Log in through the form.
    await page.goto(URL + '/');
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForNavigation(), page.click('#login-button')]);
    await page.waitForSelector('#live:not(.off)', { timeout: 20000 });
    await page.waitForSelector('main h2');
    check(await page.$eval('main h2', (e) => e.textContent) === 'Jobs', 'logged in: the job list');

    // An action without the CSRF token, from the logged-in page (the cookie is sent): 403.
    const noCsrf = await page.evaluate(async () =>
      (await fetch('/api/jobs/none/cancel', { method: 'POST', body: '{}' })).status);
    check(noCsrf === 403, 'an action without the CSRF token is 403');

    // The job list shows a job the test submits, and its status changes live, without a reload.
    await page.evaluate(() => {
      window.__seen = {};
      const note = () => {
        for (const tr of document.querySelectorAll('tr[data-job]')) {
          const a = (window.__seen[tr.dataset.job] ||= []);
          const st = tr.querySelector('.status-cell')?.textContent;
          if (st === undefined) continue;
          if (a[a.length - 1] !== st) a.push(st);
        }
      };
      new MutationObserver(note).observe(document.getElementById('main'),
        { subtree: true, childList: true, characterData: true });
    });
    const loadsBefore = loads;
    const idA = submit('# Todo API\n\nTodos for the team.\n\n## API\n- GET /todos lists todos\n\n'
      + '## UI\n- TodoList component\n');
    await page.waitForSelector(`tr[data-job="${idA}"]`, { timeout: LONG });
    check(true, 'the submitted job ' + idA + ' appears in the list');
    await page.waitForFunction((id) =>
      document.querySelector(`tr[data-job="${id}"] .status-cell`)?.textContent === 'complete',
    idA, { timeout: LONG });
    const seen = await page.evaluate((id) => window.__seen[id], idA);
    check(seen.length >= 3 && seen[seen.length - 1] === 'complete',
      'its status changed live: ' + seen.join(' -> '));
    check(loads === loadsBefore, 'without a reload of the page');

    // The job page shows its files and its PR link.
    const apiA = await bearer('/api/jobs/' + encodeURIComponent(idA));
    await page.click(`tr[data-job="${idA}"] td a`);
    await page.waitForSelector('#job-title');
    await page.waitForSelector('tr.file td.path');
    const paths = await page.$$eval('tr.file td.path', (l) => l.map((e) => e.textContent));
    const want = apiA.files.map((f) => f.path).sort();
    check(want.length > 0 && JSON.stringify(paths.slice().sort()) === JSON.stringify(want),
      'the job page lists its files: ' + paths.join(', '));
    const pr = await page.$eval('dd[data-field="pull request"] a', (a) => a.getAttribute('href'));
    check(pr && pr === apiA.hash.pr_url && /\/pull\/\d+$/.test(pr), 'the job page links its PR: ' + pr);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'dashboard-job.png');
    await page.screenshot({ path: shot, fullPage: true });
    check(fs.statSync(shot).size > 1000, 'screenshot of the job page saved: ' + shot);

    // A parked job is approved from the page and completes.
    const idP = submit(process.env.DROP_SPEC);
    await page.evaluate(() => { location.hash = '#/parked'; });
    await page.waitForSelector(`tr[data-job="${idP}"]`, { timeout: LONG });
    check(true, 'the destructive job ' + idP + ' is in the parked queue');
    await page.click(`tr[data-job="${idP}"] td a`);
    await page.waitForSelector('#approve');
    const gate = await page.$$eval('h3', (l) => l.map((e) => e.textContent));
    check(gate.includes('Gate findings'), 'the job page shows the gate\'s findings');
    await page.click('#approve');
    await page.waitForFunction(() =>
      document.querySelector('dd[data-field="status"]')?.textContent === 'complete', null,
    { timeout: LONG });
    check(true, 'approved from the page, the job completed');
    const apiP = await bearer('/api/jobs/' + encodeURIComponent(idP));
    check(apiP.hash.approved_by === 'dashboard', 'the APPROVE script recorded the dashboard');

    // A spec whose title is markup renders as text, and no dialog opens.
    const idX = submit('# ' + XSS_TITLE + '\n\nA plain spec.\n\n## API\n- GET /pings lists pings\n');
    await page.evaluate(() => { location.hash = '#/jobs'; });
    await page.waitForSelector(`tr[data-job="${idX}"]`, { timeout: LONG });
    const listTitle = await page.$eval(`tr[data-job="${idX}"] .title`, (e) => e.textContent);
    check(listTitle === XSS_TITLE, 'the list shows the title as text');
    await page.waitForFunction((id) => /complete|failed|rejected|cancelled|dead_lettered/.test(
      document.querySelector(`tr[data-job="${id}"] .status-cell`)?.textContent || ''), idX,
    { timeout: LONG });
    await page.click(`tr[data-job="${idX}"] td a`);
    await page.waitForSelector('#job-title');
    check(await page.$eval('#job-title', (e) => e.textContent) === XSS_TITLE,
      'the job page shows the title as text');
    check(await page.$$eval('img', (l) => l.length) === 0, 'no element was made from the title');
    check(dialogs.length === 0, 'no dialog opened (' + dialogs.join(', ') + ')');
    check(errors.length === 0, 'no script error on the page (' + errors.join('; ') + ')');
  } finally {
    await browser.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => { console.log('all browser checks passed'); process.exit(0); },
  (e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
