// Drives the gateway's operator console in Debian's chromium and prints one
// JSON line of what it saw; the Rust test (tests/gateway/console.rs) judges.
// Usage: node console.mjs '{"check": ..., "base": ..., "token": ..., ...}'
//   journey {software, host, open}: signed out, /console/clients leads to
//           the sign-in page; sign in with the token; the ids listed when
//           filtering by software and by redirect host; open the client
//           `open` from the list, delete it (confirming); the ids listed by
//           software afterwards; the Activity page's charts
//   markup  {software, client_id}: the list and the client's page of a
//           client whose metadata holds markup, with scripts on: the text
//           shown, the elements the markup could have made, the title
//   forged  {client_id}: signed in, a page of another site and one of
//           another origin on the same site each post the delete form of
//           `client_id` with its confirmation: the statuses the gateway
//           answered
//   framing {}: the client list in an iframe of another origin's page
import { createServer } from 'node:http';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const input = JSON.parse(process.argv[2]);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const checks = { journey, markup, forged, framing };
  const check = checks[input.check];
  if (!check) throw new Error(`unknown check ${input.check}`);
  process.stdout.write(`${JSON.stringify(await check())}\n`);
} finally {
  await browser.close();
}

// A page in a fresh context (its own cookies); scripts on unless told.
async function open({ scripts = true } = {}) {
  const context = await browser.newContext({ javaScriptEnabled: scripts });
  return context.newPage();
}

// Signs in on the console's sign-in page; returns where the browser is.
async function signIn(page) {
  await page.goto(`${input.base}/console/login`);
  await page.fill('input[name="token"]', input.token);
  await Promise.all([page.waitForURL(/\/console\/clients/), page.click('button[type="submit"]')]);
  return new URL(page.url()).pathname;
}

// The client ids the list shows.
async function listed(page) {
  return page.locator('table tbody tr td:nth-child(2) code').allInnerTexts();
}

// Fills the filter form with `fields` and submits it; the ids listed.
async function filtered(page, fields) {
  await page.goto(`${input.base}/console/clients`);
  for (const [name, value] of Object.entries(fields)) {
    await page.fill(`form.filters input[name="${name}"]`, value);
  }
  await Promise.all([page.waitForLoadState(), page.click('form.filters button[type="submit"]')]);
  return listed(page);
}

async function journey() {
  const page = await open({ scripts: false });
  const messages = [];
  page.on('console', (message) => messages.push(message.text()));
  await page.goto(`${input.base}/console/clients`);
  const signedOutAt = new URL(page.url()).pathname;
  const signedInAt = await signIn(page);
  const bySoftware = await filtered(page, { software: input.software });
  const byHost = await filtered(page, { host: input.host });
  // Open the client from the list, then delete it through its page.
  await filtered(page, { software: input.software });
  await page.click(`a[href="/console/clients/${input.open}"]`);
  const clientHeading = await page.locator('main h2').first().innerText();
  const clientText = await page.locator('main').innerText();
  await page.click('text=Delete it…');
  const confirmTitle = await page.locator('h1').innerText();
  await Promise.all([page.waitForLoadState(), page.click('button.danger')]);
  const deleted = await page.locator('[role="status"]').innerText();
  const afterDelete = await filtered(page, { software: input.software });
  await page.goto(`${input.base}/console/activity`);
  const charts = await page.locator('figure').evaluateAll((figures) =>
    figures.map((f) => ({
      caption: f.querySelector('figcaption').innerText,
      total: Number(f.querySelector('[data-total]').dataset.total),
      bars: f.querySelectorAll('svg rect').length,
      rendered: f.querySelector('svg').getBoundingClientRect().height,
    })),
  );
  await page.goto(`${input.base}/console/provider`);
  const provider = await page.locator('main').innerText();
  return {
    signed_out_at: signedOutAt,
    signed_in_at: signedInAt,
    by_software: bySoftware,
    by_host: byHost,
    client_heading: clientHeading,
    client_text: clientText,
    confirm_title: confirmTitle,
    deleted,
    after_delete: afterDelete,
    charts,
    provider,
    console: messages,
  };
}

async function markup() {
  const page = await open({ scripts: true });
  const messages = [];
  page.on('console', (message) => messages.push(message.text()));
  page.on('dialog', (dialog) => {
    messages.push(`dialog: ${dialog.message()}`);
    dialog.dismiss();
  });
  await signIn(page);
  const look = async (path) => {
    await page.goto(`${input.base}${path}`);
    return {
      title: await page.title(),
      text: await page.locator('main').innerText(),
      made: await page.locator('main img, main script, main iframe, main b, main i, main svg a').count(),
      pwned: await page.evaluate(() => window.pwned ?? null),
    };
  };
  return {
    list: await look(`/console/clients?software=${encodeURIComponent(input.software)}`),
    client: await look(`/console/clients/${encodeURIComponent(input.client_id)}`),
    console: messages,
  };
}

// A page served at `origin` host that posts the delete form on load.
async function forgedFrom(host, page) {
  const action = `${input.base}/console/clients/${encodeURIComponent(input.client_id)}/delete`;
  const attacker = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<!doctype html><title>win a prize</title>
      <form method="post" action="${action}">
      <input type="hidden" name="confirm" value="${input.client_id}">
      <input type="hidden" name="csrf" value="guessed"></form>
      <script>document.forms[0].submit()</script>`);
  });
  await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  try {
    const answered = page.waitForResponse((r) => r.url() === action);
    await page.goto(`http://${host}:${attacker.address().port}/`);
    return (await answered).status();
  } finally {
    attacker.close();
  }
}

async function forged() {
  const page = await open({ scripts: true });
  await signIn(page);
  return {
    // localhost is another site than 127.0.0.1: the Strict cookie stays home.
    cross_site: await forgedFrom('localhost', page),
    // Another port of 127.0.0.1 is the same site, another origin.
    cross_origin: await forgedFrom('127.0.0.1', page),
  };
}

async function framing() {
  const framer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<!doctype html><title>framer</title><iframe src="${input.base}/console/clients"></iframe>`);
  });
  await new Promise((resolve) => framer.listen(0, '127.0.0.1', resolve));
  try {
    const page = await open();
    await signIn(page);
    await page.goto(`http://127.0.0.1:${framer.address().port}/`);
    const frames = [];
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      frames.push({ url: frame.url(), tables: await frame.locator('table').count() });
    }
    return { frames };
  } finally {
    framer.close();
  }
}
