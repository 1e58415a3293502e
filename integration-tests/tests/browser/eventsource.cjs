// Drives a real EventSource in headless Chromium for integration-tests/tests/browser.rs.
//
// The page is served by the test from an origin of its own, so every call to the API is a
// cross-origin one (FRAMEOS_CORS_ORIGINS). In the page, as a browser application would:
//   1. run an agent (POST with Authorization and JSON: a preflighted request),
//   2. ask for a stream token and follow the run live with EventSource(?access_token=),
//      closing it on `end`,
//   3. open the ended execution again twice: once closing on `end` (replay + end), once
//      ignoring `end`, watched for QUIET_MS to see whether the browser reconnects,
//   4. open one with a forged token: the browser must give up at once, not retry.
// Prints one JSON object with what each EventSource saw.
//
// Environment: FRAMEOS_PAGE_URL, FRAMEOS_API, FRAMEOS_KEY, FRAMEOS_SLUG, FRAMEOS_CHROMIUM,
// FRAMEOS_QUIET_MS. puppeteer-core comes from NODE_PATH (scripts/test installs it).
'use strict';

const puppeteer = require('puppeteer-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

// Runs in the page.
async function scenario({ api, key, slug, quietMs }) {
  const call = async (method, path, body) => {
    const response = await fetch(api + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const token = async (id) => {
    const issued = await call('POST', `/v1/executions/${id}/stream-token`);
    return { token: issued.token, expires_at: issued.expires_at };
  };

  // Follows one EventSource; resolves on `end` (closing it unless `keepOpen`), on a failed
  // connection (readyState CLOSED), or after `limitMs`.
  const follow = (url, { keepOpen = false, limitMs = 60000 } = {}) =>
    new Promise((resolve) => {
      const seen = { opens: 0, errors: 0, events: [] };
      const source = new EventSource(url);
      const finish = () => {
        clearTimeout(timer);
        seen.readyState = source.readyState;
        if (!keepOpen) source.close();
        resolve({ seen, source });
      };
      const timer = setTimeout(() => {
        seen.timedOut = true;
        finish();
      }, limitMs);
      source.onopen = () => {
        seen.opens += 1;
      };
      source.onerror = () => {
        seen.errors += 1;
        if (source.readyState === EventSource.CLOSED) finish();
      };
      for (const type of ['log', 'progress', 'status', 'end', 'error']) {
        source.addEventListener(type, (event) => {
          // A dropped connection fires a plain `error` Event too; only messages count here.
          if (!(event instanceof MessageEvent)) return;
          let data = event.data;
          try {
            data = JSON.parse(event.data);
          } catch (_) {}
          seen.events.push({ type, id: event.lastEventId, data });
          if (type === 'end') finish();
        });
      }
    });
  const eventsUrl = (id, tokenValue) =>
    `${api}/v1/executions/${id}/events?access_token=${encodeURIComponent(tokenValue)}`;

  const execution = await call('POST', `/v1/agents/${slug}/executions`, { inputs: { text: 'browser' } });
  const id = execution.id;
  const liveToken = await token(id);
  const live = (await follow(eventsUrl(id, liveToken.token))).seen;

  const replay = follow(eventsUrl(id, (await token(id)).token));
  const ignoring = follow(eventsUrl(id, (await token(id)).token), { keepOpen: true }).then(
    async ({ seen, source }) => {
      // `end` arrived and the server closed the stream. A browser that reconnected would
      // open it again within its reconnection delay (3 s in Chromium unless told otherwise).
      await new Promise((r) => setTimeout(r, quietMs));
      seen.opensAfterQuiet = seen.opens;
      seen.eventsAfterQuiet = seen.events.length;
      seen.readyStateAfterQuiet = source.readyState;
      source.close();
      return seen;
    },
  );
  const forged = follow(eventsUrl(id, liveToken.token.slice(0, -2) + 'AA'), { limitMs: 20000 });
  return {
    id,
    origin: location.origin,
    token: liveToken,
    live,
    replay: (await replay).seen,
    ignoring: await ignoring,
    forged: (await forged).seen,
  };
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.FRAMEOS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The tests run as root in a container: Chromium's sandbox needs user namespaces.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    const consoleLines = [];
    page.on('console', (message) => consoleLines.push(message.text()));
    await page.goto(env('FRAMEOS_PAGE_URL'), { waitUntil: 'load' });
    const result = await page.evaluate(scenario, {
      api: env('FRAMEOS_API'),
      key: env('FRAMEOS_KEY'),
      slug: env('FRAMEOS_SLUG'),
      quietMs: Number(process.env.FRAMEOS_QUIET_MS || 4000),
    });
    result.console = consoleLines;
    result.browser = await browser.version();
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
})().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
