// The marketplace's whole journey through the web front end in headless Chromium, against a
// running `next start` and `frameos dev` (scripts/clients/run.sh, stage web_journey):
//   1. a developer signs in (a wrong key is refused with the API's words; the right one becomes
//      an httpOnly cookie no script can read), creates a paid agent, uploads its package, and
//      sees it pending review with the scanner's report;
//      A third version (1.0.2) passes the scanner;
//   2. an admin signs in, reads the package's files, approves 1.0.0 from the review queue and
//      rejects 1.0.2 with a reason from its package page;
//   3. a buyer finds it on /agents, submits the generated run form empty (refused by the form),
//      runs it, follows the execution page until it ends, reads the output and the captured
//      charge, verifies the mandate in the browser, and finds the run and its ledger entries on
//      the dashboard. Before that, the filters (runtime, price) include and exclude it, and the
//      agent page names the developer, shows the manifest's sample output and the versions,
//      and offers to schedule it with the most per run prefilled with the price. Then the buyer
//      schedules it daily (a most per run below the price is refused first) and the free ticker
//      agent every Monday at 09:00 (a bad cron expression is refused in the API's words first),
//      finds both on the dashboard with the next run and the most per run, and deletes them;
//   4. the developer sees the agent published, its earnings and the admin's reason.
// Each person has a browser context of their own. A screenshot of each page goes to
// FRAMEOS_SCREENSHOTS; on a failure, `failed.png` and the page's text say where it stopped.
//
// Environment: FRAMEOS_WEB_URL, FRAMEOS_DEVELOPER_KEY, FRAMEOS_ADMIN_KEY, FRAMEOS_BUYER_KEY,
// FRAMEOS_DEVELOPER_NAME, FRAMEOS_PACKAGE (the sentiment example packed as .tar.gz),
// FRAMEOS_BAD_PACKAGE (its 1.0.1 importing subprocess), FRAMEOS_LATER_PACKAGE (a clean 1.0.2),
// FRAMEOS_SCREENSHOTS,
// FRAMEOS_CHROMIUM. puppeteer-core comes from NODE_PATH (scripts/test installs it).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const site = env('FRAMEOS_WEB_URL');
const shots = env('FRAMEOS_SCREENSHOTS');
const SLUG = 'sentiment';
const PRICE = 3000;
const DEVELOPER = env('FRAMEOS_DEVELOPER_NAME');
const REASON = 'Please describe what the new version changes.';

function check(condition, what) {
  if (!condition) throw new Error(`journey: ${what}`);
  console.log(`ok: ${what}`);
}

/** One person's browser context, with the helpers the steps share. */
async function person(browser, name, pageErrors) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(60000);
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error}`));
  return {
    context,
    page,
    shot: (file) => page.screenshot({ path: path.join(shots, `${file}.png`), fullPage: true }),
    text: (selector) => page.$eval(selector, (el) => el.textContent || ''),
    // Until the network settles: the page's scripts are loaded and its forms hydrated.
    go: (route) => page.goto(`${site}${route}`, { waitUntil: 'networkidle2' }),
    // WCAG 2 A/AA rules by axe-core (labels, contrast, names, landmarks) on the page as it
    // is, then the same page at a phone's width: nothing may stick out sideways.
    audit: async (name) => {
      await page.addScriptTag({ content: axeSource });
      const found = await page.evaluate(async () => {
        const result = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] });
        return result.violations.map((v) => `${v.id} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
      });
      check(found.length === 0, `${name} passes the accessibility audit (${found.join('; ')})`);
      const desktop = page.viewport();
      // Desktop mode at a phone's width: a mobile viewport would zoom out to fit what overflows.
      await page.setViewport({ width: 390, height: 844 });
      const [wide, culprits] = await page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        // The innermost elements that stick out, to say what to fix.
        const out = [...document.querySelectorAll('body *')].filter(
          (el) => el.getBoundingClientRect().right > width + 1 && ![...el.children].some((c) => c.getBoundingClientRect().right > width + 1),
        );
        const name = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).split(' ').join('.')}` : ''}`;
        return [document.documentElement.scrollWidth - width, out.slice(0, 4).map(name).join(', ')];
      });
      await page.screenshot({ path: path.join(shots, `phone-${name.replaceAll(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true });
      await page.setViewport(desktop);
      check(wide <= 0, `${name} fits a phone's width (${wide} px too wide${culprits ? `: ${culprits}` : ''})`);
    },
    // Until the next page settles too, so the next step never races its hydration.
    submit: (selector) => Promise.all([page.waitForNavigation({ waitUntil: 'networkidle2' }), page.click(selector)]),
    // Follows a link (a client-side navigation) until the next page shows `ready`.
    open: async (selector, ready) => {
      await page.click(selector);
      await page.waitForSelector(ready);
    },
    signIn: async (key, next) => {
      await page.goto(`${site}/signin?next=${encodeURIComponent(next)}`);
      await page.type('#key', key);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      check(new URL(page.url()).pathname === next, `${name} signs in and lands on ${next}`);
    },
  };
}

async function developer(browser, errors) {
  const dev = await person(browser, 'the developer', errors);
  const { page } = dev;
  await dev.go('/signin?next=/developer');
  await page.type('#key', 'fos_not-a-key');
  await page.click('button[type=submit]');
  await page.waitForSelector('[role=alert]');
  check((await dev.text('[role=alert]')).includes('not valid'), 'a wrong key is refused in words');
  await dev.shot('01-signin-refused');
  await page.$eval('#key', (el) => {
    el.value = '';
  });
  await page.type('#key', env('FRAMEOS_DEVELOPER_KEY'));
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(new URL(page.url()).pathname === '/developer', 'the developer signs in and lands on /developer');
  const session = (await dev.context.cookies()).find((c) => c.value === env('FRAMEOS_DEVELOPER_KEY'));
  check(session && session.httpOnly && session.sameSite === 'Lax', 'the key is an httpOnly SameSite cookie');
  check(!(await page.evaluate(() => document.cookie)).includes('fos_'), "the page's scripts cannot read the key");

  const create = 'form[aria-label="Create an agent"]';
  await page.type(`${create} #slug`, SLUG);
  await page.type(`${create} #name`, 'Sentiment');
  await page.type(`${create} #description`, 'Scores the sentiment of English text.');
  await page.type(`${create} #price_minor`, String(PRICE));
  await page.click(`${create} button[type=submit]`);
  await page.waitForSelector(`${create} [role=status]`);
  check((await dev.text(`${create} [role=status]`)).includes('is created'), 'the developer creates a paid agent');

  const publish = 'form[aria-label="Publish a version"]';
  await page.type(`${publish} #publish-slug`, SLUG);
  const upload = await page.$(`${publish} #package`);
  await upload.uploadFile(env('FRAMEOS_PACKAGE'));
  await page.click(`${publish} button[type=submit]`);
  await page.waitForSelector('[data-testid=published]');
  const published = await dev.text('[data-testid=published]');
  check(published.includes('Version 1.0.0: pending review'), `the upload is pending review (${published})`);
  await dev.shot('02-developer-published');
  await dev.audit('the developer page');

  // A package the scanner refuses: its findings name the file and the line. (The form was
  // reset after the first upload, as React resets a form once its action ran.)
  await page.type(`${publish} #publish-slug`, SLUG);
  const refused = await page.$(`${publish} #package`);
  await refused.uploadFile(env('FRAMEOS_BAD_PACKAGE'));
  await page.click(`${publish} button[type=submit]`);
  await page.waitForFunction(() => document.querySelector('[data-testid=published]')?.textContent?.includes('1.0.1'));
  const findings = await dev.text('[data-testid=published]');
  check(
    findings.includes('Version 1.0.1: rejected') && findings.includes('main.py:1 python.subprocess'),
    `a package the scanner refuses shows its findings with file and line (${findings})`,
  );
  await dev.shot('02b-developer-scan-refused');

  // 1.0.2: clean, for the admin to reject in words.
  await page.type(`${publish} #publish-slug`, SLUG);
  const third = await page.$(`${publish} #package`);
  await third.uploadFile(env('FRAMEOS_LATER_PACKAGE'));
  await page.click(`${publish} button[type=submit]`);
  await page.waitForFunction(() => document.querySelector('[data-testid=published]')?.textContent?.includes('1.0.2'));
  check((await dev.text('[data-testid=published]')).includes('Version 1.0.2: pending review'), 'a third version waits for review');

  await dev.go(`/developer?agent=${SLUG}`);
  const mine = await dev.text('[data-testid=my-agents]');
  check(mine.includes('Sentiment') && mine.includes('not yet'), `the developer's agents list the unpublished one (${mine})`);
  const table = await dev.text('table[aria-label=Versions]');
  check(table.includes('pending review') && table.includes('rejected'), `the versions' review statuses are listed (${table})`);
  await dev.context.close();
}

/** After the admin's decisions and the buyer's paid run: the developer's own view of them. */
async function developerAfterwards(browser, errors) {
  const dev = await person(browser, 'the developer, later', errors);
  await dev.signIn(env('FRAMEOS_DEVELOPER_KEY'), '/developer');
  await dev.go(`/developer?agent=${SLUG}`);
  const row = await dev.text(`[data-testid=my-agents] tr[data-agent=${SLUG}]`);
  check(row.includes('1.0.0') && row.includes('₹21.00 from 1 paid run'), `the developer sees the agent published and its earnings (${row})`);
  const table = await dev.text('table[aria-label=Versions]');
  check(table.includes(`rejected: ${REASON}`), `the admin's reason for rejecting 1.0.2 reaches the developer (${table})`);
  await dev.shot('09-developer-earnings');
  await dev.context.close();
}

async function admin(browser, errors) {
  const reviewer = await person(browser, 'the admin', errors);
  const { page } = reviewer;
  await reviewer.signIn(env('FRAMEOS_ADMIN_KEY'), '/admin/reviews');
  const card = `article[aria-label="${SLUG} 1.0.0"]`;
  await page.waitForSelector(card);
  check((await reviewer.text(card)).includes('"runtime": "python"'), 'the review shows the manifest');
  await reviewer.shot('03-admin-reviews');
  await reviewer.audit('the review queue');
  // The package itself: every file, and the code that will run.
  await reviewer.open(`${card} a[href="/admin/reviews/${SLUG}/1.0.0"]`, '[data-testid=files]');
  const files = await reviewer.text('[data-testid=files]');
  check(files.includes('agent.json') && files.includes('main.py'), `the reviewer sees the package's files (${files})`);
  await reviewer.open(`[data-testid=files] a[href$="file=main.py"]`, '[data-testid=file]');
  check((await reviewer.text('[data-testid=file]')).includes('def run(inputs, ctx)'), "and reads the agent's code");
  await reviewer.shot('03b-admin-package-files');
  await reviewer.audit('the package page');
  await reviewer.go('/admin/reviews');
  await reviewer.submit(`${card} button[aria-label="Approve ${SLUG} 1.0.0"]`);
  check((await reviewer.text('[role=status]')) === `${SLUG} 1.0.0 is published.`, 'the admin approves it');
  check((await page.$(card)) === null, 'and it leaves the queue');

  // 1.0.2 passes the scanner; the admin rejects it with a reason, from the package page.
  const later = `article[aria-label="${SLUG} 1.0.2"]`;
  await page.waitForSelector(later);
  const reason = `#reason-${SLUG}-1\\.0\\.2`;
  await reviewer.open(`${later} a[href="/admin/reviews/${SLUG}/1.0.2"]`, "[data-testid=files]");
  await page.type(reason, REASON);
  await reviewer.submit(`button[aria-label="Reject ${SLUG} 1.0.2"]`);
  check((await reviewer.text('[role=status]')) === `${SLUG} 1.0.2 is rejected.`, 'the admin rejects a version with a reason');
  await reviewer.context.close();
}

async function buyer(browser, errors) {
  const b = await person(browser, 'the buyer', errors);
  const { page } = b;
  await b.signIn(env('FRAMEOS_BUYER_KEY'), '/agents');
  check((await b.text('main')).includes('Scores the sentiment of English text.'), 'the buyer finds it on /agents');
  check((await b.text('main')).includes('Python'), 'its card says what it runs on');
  check((await b.text('main')).includes(`by ${DEVELOPER}`), 'and who made it');
  await b.shot('04-agents');
  await b.audit('/agents');
  // The filters: Node.js agents leave it out, Python ones under ₹50 keep it.
  await page.select('select[name=runtime]', 'node');
  await b.submit('form.filters button[type=submit]');
  // Other stages publish agents of their own (one also scores sentiment): look for this one's link.
  const listed = async () => (await page.$(`main a[href="/agents/${SLUG}"]`)) !== null;
  check(!(await listed()), `filtering by the Node.js runtime leaves it out (${page.url()})`);
  await page.select('select[name=runtime]', 'python');
  await page.select('select[name=max_price]', '50');
  await b.submit('form.filters button[type=submit]');
  check(new URL(page.url()).search.includes('runtime=python'), 'the filters are in the address, to share');
  check(await listed(), 'Python agents up to ₹50 include it');
  await page.select('select[name=max_price]', '10');
  await b.submit('form.filters button[type=submit]');
  check(!(await listed()), `a ₹10 cap leaves the ₹30 agent out (${page.url()})`);
  await b.go('/agents');
  await b.submit(`a[href="/agents/${SLUG}"]`);
  check((await b.text('h1')) === 'Sentiment', 'the agent page is open');
  check((await b.text('main')).includes('no network'), 'the page says what the agent may do');
  check((await b.text('[data-testid=developer]')).includes(DEVELOPER), "the page names the agent's developer");
  const sample = JSON.parse(await b.text('[data-testid=sample-output]'));
  check(sample.label === 'positive', `the page shows a sample output from the manifest (${JSON.stringify(sample)})`);
  const releases = await b.text('[data-testid=releases]');
  check(releases.includes('1.0.0') && releases.includes('First release') && !releases.includes('1.0.2'), `the versions list shows published ones with their changelog (${releases})`);
  // A paid agent's schedule form asks for the most one run may cost, starting from the price.
  const most = await b.text('[data-testid=schedule-max-text]');
  check(
    (await page.$eval('#schedule-max', (el) => el.value)) === String(PRICE) && most.startsWith('₹30.00 at most per run'),
    `the schedule form starts the most per run at the price (${most})`,
  );
  await b.shot('04b-agent-page');
  await b.audit('the agent page');

  const run = 'form[aria-label="Run this agent"]';
  await page.click(`${run} button[type=submit]`);
  await page.waitForSelector('.field-error');
  check((await b.text('.field-error')) === 'Required.', 'the form refuses a missing required input');
  check(new URL(page.url()).pathname === `/agents/${SLUG}`, 'and stays on the page');
  await b.shot('05-agent-form-refused');

  await page.type('#input-text', 'What a wonderful, delightful day. I love it.');
  await b.submit(`${run} button[type=submit]`);
  check(new URL(page.url()).pathname.startsWith('/executions/'), 'running it opens the execution page');
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent === 'succeeded', {
    timeout: 120000,
  });
  await page.waitForSelector('[data-testid=output]');
  const output = JSON.parse(await b.text('[data-testid=output]'));
  check(output.label === 'positive' && output.positive > 0, `the output is on the page (${JSON.stringify(output)})`);
  check((await b.text('ol.logs')).includes('sentiment positive'), "the agent's log line is on the page");
  const charge = await b.text('[data-testid=charge]');
  check(charge.includes('₹30.00 captured') && charge.includes('developer ₹21.00'), `the charge is captured, with its split (${charge})`);
  await page.click('::-p-text(Verify mandate)');
  await page.waitForSelector('[data-testid=mandate-verdict]');
  const verdict = await b.text('[data-testid=mandate-verdict]');
  check(verdict.startsWith(`Valid: signed for this execution, ${PRICE} INR`), `the mandate verifies in the browser (${verdict})`);
  await b.shot('06-execution-succeeded');
  await b.audit('the execution page');

  // Live: a free agent that prints a line every 1.5 s. The status on the page is the server's
  // until the run ends, so a third line shown beside a status that is not final came through
  // the event stream.
  await b.go('/agents/ticker');
  await b.submit(`${run} button[type=submit]`);
  await page.waitForFunction(() => document.querySelector('ol.logs')?.textContent?.includes('tick 3 of 3'));
  const live = await b.text('[data-testid=status]');
  check(live === 'queued' || live === 'running', `log lines arrive live while the page says ${live}`);
  check((await page.$eval('progress', (el) => el.value)) > 0, 'progress is shown live too');
  await b.shot('07-execution-live');
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent === 'succeeded');
  check(JSON.parse(await b.text('[data-testid=output]')).ticks === 3, 'the page shows the outcome once it ends');

  await b.go('/dashboard');
  const dashboard = await b.text('main');
  check(dashboard.includes(`${SLUG} 1.0.0`) && dashboard.includes('₹30.00 captured'), 'the paid run is on the dashboard');
  check((await b.text('[data-testid=balance]')).includes('30.00'), 'the balance shows the ledger');
  check((await b.text('[data-testid=no-schedules]')).includes('no schedules'), 'the dashboard says there is no schedule yet');
  await b.shot('08-dashboard');
  await b.audit('the dashboard');
  await schedules(b);
  await b.context.close();
}

/** The buyer runs the paid agent daily within a most per run, then the free ticker agent every
 * Monday at 09:00, sees both on the dashboard, and deletes them. */
async function schedules(b) {
  const { page } = b;
  const form = 'form[aria-label="Schedule this agent"]';
  await b.go(`/agents/${SLUG}`);
  // Daily, half a day away: no run (and no charge) while the journey runs.
  const hour = String((new Date().getUTCHours() + 12) % 24).padStart(2, '0');
  await page.type(`${form} #schedule-cron`, `30 ${hour} * * *`);
  await page.$eval('#schedule-inputs', (el) => {
    el.value = '';
  });
  await page.type(`${form} #schedule-inputs`, '{"text": "Another lovely morning."}');
  await page.$eval('#schedule-max', (el) => {
    el.value = '';
  });
  await page.type(`${form} #schedule-max`, '2000');
  check((await b.text('[data-testid=schedule-max-text]')).startsWith('₹20.00 at most'), 'the most per run reads in rupees as it is typed');
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(`${form} [role=alert]`);
  const below = await b.text(`${form} [role=alert]`);
  check(below.length > 0, `a most per run below the price is refused in the API's words (${below})`);
  await page.$eval('#schedule-max', (el) => {
    el.value = '';
  });
  await page.type(`${form} #schedule-max`, String(PRICE));
  const ends = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
  await page.$eval('#schedule-expires', (el, day) => {
    el.value = day;
  }, ends);
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(`${form} [role=status]`);
  const daily = await b.text(`${form} [role=status]`);
  check(daily.includes(`${hour}:30 UTC`), `the buyer schedules the paid agent daily at ${hour}:30 (${daily})`);

  await b.go('/agents/ticker');
  check((await page.$(`${form} #schedule-max`)) === null, 'a free agent is scheduled without a most per run');
  await page.type(`${form} #schedule-cron`, 'every monday');
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(`${form} [role=alert]`);
  const refused = await b.text(`${form} [role=alert]`);
  check(refused.length > 0 && (await page.$(`${form} [role=status]`)) === null, `a bad cron expression is refused in the API's words (${refused})`);
  check((await page.$eval('#schedule-cron', (el) => el.value)) === 'every monday', 'and what was typed stays in the form');
  await page.$eval('#schedule-cron', (el) => {
    el.value = '';
  });
  await page.type(`${form} #schedule-cron`, '0 9 * * 1');
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(`${form} [role=status]`);
  const scheduled = await b.text(`${form} [role=status]`);
  check(/^Scheduled: the next run is Mon, .* 09:00 UTC\./.test(scheduled), `the buyer schedules the ticker every Monday at 09:00 (${scheduled})`);
  await b.shot('08b-agent-scheduled');

  await b.open(`${form} a[href="/dashboard#schedules"]`, '[data-testid=schedules]');
  const rows = await page.$$eval('[data-testid=schedules] tbody tr', (trs) => trs.map((tr) => tr.textContent || ''));
  // Newest first.
  check(
    rows.length === 2 && ['ticker', '0 9 * * 1', 'UTC', 'active', 'not yet', 'free'].every((t) => rows[0].includes(t)),
    `the dashboard lists the schedule (${rows.join(' | ')})`,
  );
  const day = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${ends}T12:00:00Z`));
  check(rows[1].includes(SLUG) && rows[1].includes(`₹30.00 until ${day}`), `and the paid one with its most per run until ${day} (${rows[1]})`);
  const next = await page.$eval('[data-testid=schedules] tbody tr [data-testid=next-run] time', (el) => [el.getAttribute('datetime'), el.textContent]);
  const due = new Date(next[0]);
  check(
    due.getUTCDay() === 1 && due.getUTCHours() === 9 && due.getUTCMinutes() === 0 && due > Date.now() && next[1].endsWith('09:00 UTC'),
    `with its next run, a Monday at 09:00 UTC (${next.join(': ')})`,
  );
  await b.shot('08c-dashboard-schedule');
  await b.audit('the dashboard with a schedule');

  await page.click('[data-testid=schedules] button[aria-label^="Delete the schedule of ticker"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=schedules] tbody tr').length === 1);
  check(!(await b.text('[data-testid=schedules]')).includes('ticker'), 'deleting the ticker schedule takes it off the list');
  await page.click(`[data-testid=schedules] button[aria-label^="Delete the schedule of ${SLUG}"]`);
  await page.waitForSelector('[data-testid=no-schedules]');
  check((await page.$('[data-testid=schedules]')) === null, 'deleting it leaves the empty state');
  await b.shot('08d-dashboard-schedule-deleted');
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: process.env.FRAMEOS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const errors = [];
  try {
    await developer(browser, errors);
    await admin(browser, errors);
    await buyer(browser, errors);
    await developerAfterwards(browser, errors);
    check(errors.length === 0, `no script error on any page (${errors.join('; ')})`);
  } catch (error) {
    // What the last page showed when the journey stopped, for whoever reads the failure.
    const pages = (await Promise.all(browser.browserContexts().map((c) => c.pages()))).flat();
    const last = pages[pages.length - 1];
    if (last) {
      await last.screenshot({ path: path.join(shots, 'failed.png'), fullPage: true }).catch(() => {});
      const shown = await last.evaluate(() => document.querySelector('main')?.innerText).catch(() => '');
      throw new Error(`${error.message}\nat ${last.url()}, the page showed:\n${shown}`);
    }
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
