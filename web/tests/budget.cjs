// The performance budget of a page, measured in headless Chromium (a benchmark: it prints,
// it asserts nothing about speed): Largest Contentful Paint, layout shift, and the JavaScript
// and HTML the browser downloaded, cold (empty cache) and warm, the median of RUNS loads each.
//
// Environment: FRAMEOS_PAGE_URL, FRAMEOS_CHROMIUM, BUDGET_RUNS (default 5).
// puppeteer-core comes from NODE_PATH.
'use strict';

const puppeteer = require('puppeteer-core');

const url = process.env.FRAMEOS_PAGE_URL;
const runs = Number(process.env.BUDGET_RUNS || 5);

async function load(page) {
  await page.evaluateOnNewDocument(() => {
    window.__lcp = 0;
    window.__cls = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__lcp = entry.startTime;
    }).observe({ type: 'largest-contentful-paint', buffered: true });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
    }).observe({ type: 'layout-shift', buffered: true });
  });
  await page.goto(url, { waitUntil: 'networkidle0' });
  return page.evaluate(() => {
    const resources = performance.getEntriesByType('resource');
    const nav = performance.getEntriesByType('navigation')[0];
    const js = resources.filter((r) => r.initiatorType === 'script' || r.name.endsWith('.js'));
    return {
      lcp_ms: window.__lcp,
      cls: window.__cls,
      ttfb_ms: nav.responseStart,
      html_bytes: nav.encodedBodySize,
      js_files: js.length,
      js_transfer_bytes: js.reduce((sum, r) => sum + r.transferSize, 0),
      js_decoded_bytes: js.reduce((sum, r) => sum + r.decodedBodySize, 0),
    };
  });
}

const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.FRAMEOS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const result = {};
    for (const mode of ['cold', 'warm']) {
      const samples = [];
      for (let i = 0; i < runs; i++) {
        const context = await browser.createBrowserContext();
        const page = await context.newPage();
        if (mode === 'warm') await page.goto(url, { waitUntil: 'networkidle0' });
        samples.push(await load(page));
        await context.close();
      }
      result[mode] = Object.fromEntries(Object.keys(samples[0]).map((k) => [k, median(samples.map((s) => s[k]))]));
    }
    console.log(JSON.stringify({ url, runs, ...result }, null, 2));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
