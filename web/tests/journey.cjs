// A buyer's journey through the web front end in headless Chromium, against a running
// `next start` and `frameos dev` (scripts/clients/run.sh, stage web_journey):
//   sign in (a wrong key is refused with the API's words; the right one becomes an httpOnly
//   cookie no script can read), find the agent on /agents, open it, submit the generated run
//   form empty (the form refuses it), run it, follow the execution page until it ends, and
//   read the output and the captured charge there.
// A screenshot of each page goes to FRAMEOS_SCREENSHOTS.
//
// Environment: FRAMEOS_WEB_URL, FRAMEOS_BUYER_KEY, FRAMEOS_SLUG, FRAMEOS_SCREENSHOTS,
// FRAMEOS_CHROMIUM. puppeteer-core comes from NODE_PATH (scripts/test installs it).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const site = env('FRAMEOS_WEB_URL');
const key = env('FRAMEOS_BUYER_KEY');
const slug = env('FRAMEOS_SLUG');
const shots = env('FRAMEOS_SCREENSHOTS');

function check(condition, what) {
  if (!condition) throw new Error(`journey: ${what}`);
  console.log(`ok: ${what}`);
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: process.env.FRAMEOS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const pageErrors = [];
  const page = await browser.newPage();
  try {
    page.setDefaultTimeout(60000);
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    const text = (selector) => page.$eval(selector, (el) => el.textContent || '');

    await page.goto(`${site}/signin?next=/agents`);
    await page.type('#key', 'fos_not-a-key');
    await page.click('button[type=submit]');
    await page.waitForSelector('[role=alert]');
    check((await text('[role=alert]')).includes('not valid'), 'a wrong key is refused in words');
    await shot('01-signin-refused');

    await page.$eval('#key', (el) => {
      el.value = '';
    });
    await page.type('#key', key);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(new URL(page.url()).pathname === '/agents', 'signing in goes back to /agents');
    const cookies = await browser.defaultBrowserContext().cookies();
    const session = cookies.find((c) => c.value === key);
    check(session && session.httpOnly && session.sameSite === 'Lax', 'the key is an httpOnly SameSite cookie');
    check(!(await page.evaluate(() => document.cookie)).includes(key), "the page's scripts cannot read the key");
    await shot('02-agents');

    await Promise.all([page.waitForNavigation(), page.click(`a[href="/agents/${slug}"]`)]);
    check((await text('h1')) === slug, 'the agent page is open');
    check((await text('main')).includes('no network'), 'the page says what the agent may do');

    await page.click('form[aria-label="Run this agent"] button[type=submit]');
    await page.waitForSelector('.field-error');
    check((await text('.field-error')) === 'Required.', 'the form refuses a missing required input');
    check(new URL(page.url()).pathname === `/agents/${slug}`, 'and stays on the page');
    await shot('03-agent-form-refused');

    await page.type('#input-text', 'the cat and the hat');
    // The field starts at the schema's default (10).
    check((await page.$eval('#input-top_n', (el) => el.value)) === '10', "a field starts at the schema's default");
    await page.$eval('#input-top_n', (el) => {
      el.value = '';
    });
    await page.type('#input-top_n', '2');
    await Promise.all([page.waitForNavigation(), page.click('form[aria-label="Run this agent"] button[type=submit]')]);
    check(new URL(page.url()).pathname.startsWith('/executions/'), 'running it opens the execution page');

    await page.waitForFunction(
      () => document.querySelector('[data-testid=status]')?.textContent === 'succeeded',
      { timeout: 120000 },
    );
    await page.waitForSelector('[data-testid=output]');
    const output = JSON.parse(await text('[data-testid=output]'));
    check(output.words === 5 && output.top_words[0].word === 'the', 'the output is on the page');
    const charge = await text('[data-testid=charge]');
    check(charge.includes('captured') && charge.includes('developer'), 'the charge is captured, with its split');
    await page.click('::-p-text(Verify mandate)');
    await page.waitForSelector('[data-testid=mandate-verdict]');
    const verdict = await text('[data-testid=mandate-verdict]');
    check(verdict.startsWith('Valid: signed for this execution, 5000 INR'), `the mandate verifies in the browser (${verdict})`);
    await shot('04-execution-succeeded');
    check(pageErrors.length === 0, `no script error on any page (${pageErrors.join('; ')})`);
  } catch (error) {
    // What the page showed when the journey stopped, for whoever reads the failure.
    await page.screenshot({ path: path.join(shots, 'failed.png'), fullPage: true }).catch(() => {});
    const shown = await page.evaluate(() => document.querySelector('main')?.innerText).catch(() => '');
    throw new Error(`${error.message}\nat ${page.url()}, the page showed:\n${shown}`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
