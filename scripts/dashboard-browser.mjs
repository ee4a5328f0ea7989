// The dashboard driven in Debian's chromium by playwright-core (issue 19): clicks, keys and
// forms as a manager would use them, on the demo company of a `serve --dev --demo` server.
// Usage: node dashboard-browser.mjs BASE_URL ADMIN_TOKEN (scripts/dashboard-browser.sh runs it).
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const [base, adminToken] = process.argv.slice(2);
const origin = new URL(base).origin;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

async function api(query, variables, token = adminToken) {
  const r = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return r.json();
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Every host but this one unresolvable: a machine with no internet.
  args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
const elsewhere = [];
let checks = 0;
const check = (what) => { checks += 1; console.log(`ok ${checks} - ${what}`); };

async function page(size) {
  const context = await browser.newContext({ viewport: size });
  const p = await context.newPage();
  p.on('request', (req) => { if (new URL(req.url()).origin !== origin) elsewhere.push(req.url()); });
  p.on('pageerror', (e) => { throw e; });
  await p.goto(`${base}/`);
  return p;
}

async function signInByKeyboard(p, role) {
  // Tab through the page to the role's button and press Enter: every control is reachable.
  await p.waitForSelector('#dev-buttons button');
  for (let i = 0; i < 40; i += 1) {
    await p.keyboard.press('Tab');
    const focused = await p.evaluate(() => document.activeElement && document.activeElement.textContent);
    if (focused === role) break;
  }
  assert.equal(await p.evaluate(() => document.activeElement.textContent), role, `Tab reaches ${role}`);
  await p.keyboard.press('Enter');
  await p.waitForSelector('body[data-ready="true"]');
}

// Waits until every statement on screen has `status` (polled: the page's policy forbids the
// string evaluation Playwright's waitForFunction relies on).
async function statusesAre(p, status) {
  for (let i = 0; i < 100; i += 1) {
    const all = await p.$$eval('#statements td[data-test="status"]', (c) => c.map((x) => x.textContent));
    if (all.length && all.every((s) => s === status)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`statements never all ${status}`);
}

async function showPeriod(p, from, to) {
  await p.evaluate(() => document.body.removeAttribute('data-ready'));
  await p.fill('#from', from);
  await p.fill('#to', to);
  await p.click('#period-form button[type="submit"]');
  await p.waitForSelector('body[data-ready="true"]');
}

const from = '2026-04-01', to = '2026-07-01';

// FINANCE at 1280×800: close the quarter from the dashboard, and the statements freeze.
{
  const p = await page({ width: 1280, height: 800 });
  await signInByKeyboard(p, 'FINANCE');
  await showPeriod(p, from, to);
  const users = await p.$$eval('#statements tr[data-user]', (rows) => rows.map((r) => r.getAttribute('data-user')));
  assert.ok(users.length > 0, 'FINANCE sees statements');
  const before = await p.$$eval('#statements tr[data-user] td[data-test="status"]', (c) => c.map((x) => x.textContent));
  assert.ok(before.every((s) => s === 'OPEN'), `open before: ${before}`);
  check(`FINANCE signs in by keyboard and sees ${users.length} open statements for ${from} … ${to}`);
  await p.evaluate(() => document.body.removeAttribute('data-ready'));
  await p.click('#close-period');
  await statusesAre(p, 'CLOSED');
  for (const user of users) {
    const s = await api('query($u: String!, $p: PeriodInput!) { compensationStatement(userExternalId: $u, period: $p) { status total { amount } } }', { u: user, p: { from, to } });
    assert.equal(s.data.compensationStatement.status, 'CLOSED', user);
    const shown = await p.$eval(`#statements tr[data-user="${user}"]`, (r) => [...r.querySelectorAll('[data-amount]')].pop().getAttribute('data-amount'));
    assert.equal(shown, s.data.compensationStatement.total.amount, `${user}'s pay on screen`);
  }
  check('closing the period from the dashboard freezes every statement (CLOSED through the API, the same pay on screen)');
  // A write into the closed quarter is refused, so the frozen figures stand.
  const refused = await api('mutation { recordCampaignCost(input: { externalId: "dash-late-cost", campaignExternalId: "c-search-brand", amount: { amount: "10.00", currency: "USD" }, incurredOn: "2026-05-15" }) { externalId } }', {});
  assert.ok(refused.errors && refused.errors[0].extensions.code === 'PERIOD_CLOSED', JSON.stringify(refused));
  check('a cost written into the closed quarter is refused with PERIOD_CLOSED');
  await p.click('#reopen-period');
  await statusesAre(p, 'OPEN');
  check('reopening from the dashboard opens them again');
  await p.context().close();
}

// A MARKETER at phone width: only their own campaigns, and no statements.
{
  const p = await page({ width: 390, height: 844 });
  await p.waitForSelector('#dev-buttons button');
  await p.click('#dev-buttons button:text-is("MARKETER")');
  await p.waitForSelector('body[data-ready="true"]');
  await showPeriod(p, from, to);
  const shown = await p.$$eval('#roi tr[data-campaign]', (rows) => rows.map((r) => r.getAttribute('data-campaign')));
  const all = await api('query($p: PeriodInput!) { campaignRoi(model: W_SHAPED, period: $p) { campaign { externalId owner { externalId } } } }', { p: { from, to } });
  const own = all.data.campaignRoi.filter((r) => r.campaign.owner && r.campaign.owner.externalId === 'mark').map((r) => r.campaign.externalId);
  assert.deepEqual(shown, own, 'a MARKETER sees exactly their own campaigns');
  assert.ok(shown.length < all.data.campaignRoi.length);
  assert.ok(await p.$eval('#statements', (s) => s.hidden), 'no statements for a MARKETER');
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page fits a phone's width (${width}px); wide tables scroll inside their card`);
  check(`a MARKETER at 390 px sees only own campaigns (${shown.join(', ')}) and no statements`);
  await p.context().close();
}

await browser.close();
assert.deepEqual(elsewhere, [], 'no request went to another host');
check('no request went to another host');
console.log(`dashboard in chromium: ${checks} checks passed`);
