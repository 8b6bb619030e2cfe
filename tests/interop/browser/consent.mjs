// Drives the gateway's consent page in Debian's chromium, with scripts off
// (the page must work without them), and prints one JSON line of what it
// saw; the Rust test (tests/gateway/front/browser.rs) judges it.
// Usage: node consent.mjs '{"check": ..., ...}' where check is one of
//   page      {authorize}: the page as shown on a phone (375x667): status,
//             headers, title, lang, viewport, heading, text, buttons, ARIA
//             snapshot, style, console, widths
//   markup    {authorize}: the heading, text, title and the elements there,
//             with scripts off and, as a second look, on
//   decisions {allow, cancel, upstream, redirect_uri, account}: where
//             Allow (on the page of `allow`, then signing in as `account`)
//             and Cancel (on that of `cancel`) lead, and which requests
//             went to the app's redirect URI
//   framing   {authorize}: the page in an iframe of another origin's page
import { createServer } from 'node:http';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const PHONE = { width: 375, height: 667 };
const input = JSON.parse(process.argv[2]);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const checks = { page: shown, markup, decisions, framing };
  const check = checks[input.check];
  if (!check) throw new Error(`unknown check ${input.check}`);
  process.stdout.write(`${JSON.stringify(await check())}\n`);
} finally {
  await browser.close();
}

// A page in a fresh context (its own cookies), scripts off unless told.
async function open({ scripts = false } = {}) {
  const context = await browser.newContext({ javaScriptEnabled: scripts, viewport: PHONE });
  return context.newPage();
}

// What the consent page at `input.authorize` shows, and how it fits.
async function shown() {
  const page = await open();
  const messages = [];
  page.on('console', (message) => messages.push(message.text()));
  const response = await page.goto(input.authorize);
  const headers = response.headers();
  return {
    status: response.status(),
    csp: headers['content-security-policy'] ?? null,
    frame_options: headers['x-frame-options'] ?? null,
    title: await page.title(),
    lang: await page.getAttribute('html', 'lang'),
    viewport: await page.getAttribute('meta[name="viewport"]', 'content'),
    heading: await page.locator('h1').innerText(),
    text: await page.locator('body').innerText(),
    buttons: await page.locator('button').evaluateAll((buttons) =>
      buttons.map((b) => ({ text: b.innerText, name: b.name, value: b.value, type: b.type })),
    ),
    aria: await page.locator('body').ariaSnapshot(),
    // The page's one style applies (its digest is in the policy).
    max_width: await page.evaluate(() => getComputedStyle(document.body).maxWidth),
    console: messages,
    scroll_width: await page.evaluate(() => document.documentElement.scrollWidth),
    inner_width: await page.evaluate(() => window.innerWidth),
    // The innermost elements that reach past the screen's right edge.
    too_wide: await page.evaluate(() => {
      const past = (e) => e.getBoundingClientRect().right > window.innerWidth;
      return [...document.body.querySelectorAll('*')]
        .filter((e) => past(e) && ![...e.children].some(past))
        .map((e) => `<${e.localName}> ${e.textContent.slice(0, 60)}`);
    }),
  };
}

// The page of a client named with markup, with scripts off and on.
async function markup() {
  const look = async (scripts) => {
    const page = await open({ scripts });
    await page.goto(input.authorize);
    return {
      heading: await page.locator('h1').innerText(),
      text: await page.locator('body').innerText(),
      title: await page.title(),
      elements: await page.evaluate(() => ({
        img: document.querySelectorAll('img').length,
        b: document.querySelectorAll('b').length,
        in_heading: document.querySelector('h1').children.length,
      })),
    };
  };
  return { without_scripts: await look(false), with_scripts: await look(true) };
}

// Where the buttons lead: Allow to the provider, where the user signs in
// as `account` (the provider's own login route, posted with the page's
// cookies) and the browser goes on to the app; Cancel straight to the app.
async function decisions() {
  const upstream = new URL(input.upstream).origin;
  const allowPage = await open();
  const toUpstream = [];
  allowPage.on('request', (request) => {
    if (new URL(request.url()).origin === upstream) toUpstream.push(request.url());
  });
  const allowToApp = toTheApp(allowPage);
  await allowPage.goto(input.allow);
  const allow = {
    to_upstream: toUpstream,
    ...(await click(allowPage, 'Continue')),
    to_app: allowToApp,
  };
  if (new URL(allow.landed).origin === upstream) {
    const login = await allowPage.request.post(`${allow.landed}/login`, {
      form: { login: input.account },
      maxRedirects: 0,
    });
    await allowPage.goto(new URL(login.headers().location, allow.landed).href);
    allow.signed_in = allowPage.url();
  }

  const cancelPage = await open();
  const cancelToApp = toTheApp(cancelPage);
  await cancelPage.goto(input.cancel);
  const cancel = { ...(await click(cancelPage, 'Cancel')), to_app: cancelToApp };
  return { allow, cancel };
}

// Clicks the button named `name` on `page`: what the form's post was
// answered, where the browser landed, and what it shows there.
async function click(page, name) {
  const button = page.getByRole('button', { name, exact: true });
  const posted = page.waitForResponse((response) => response.request().method() === 'POST');
  const [response] = await Promise.all([posted, button.click()]);
  await page.waitForLoadState();
  return {
    posted: {
      origin: (await response.request().headerValue('origin')) ?? null,
      status: response.status(),
      location: response.headers().location ?? null,
    },
    landed: page.url(),
    text: await page.locator('body').innerText(),
  };
}

// The URLs at which `page` asks for the app's redirect URI, filled in as
// it goes (redirects included).
function toTheApp(page) {
  const seen = [];
  page.on('request', (request) => {
    if (request.url().startsWith(input.redirect_uri)) seen.push(request.url());
  });
  return seen;
}

// The page framed by a page of another origin (served here, on another
// port of 127.0.0.1): what the frame shows, and what the console says.
async function framing() {
  const src = input.authorize.replaceAll('&', '&amp;').replaceAll('"', '&quot;');
  const framer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<!doctype html><title>framer</title><iframe src="${src}"></iframe>`);
  });
  await new Promise((resolve) => framer.listen(0, '127.0.0.1', resolve));
  try {
    const page = await open();
    const messages = [];
    page.on('console', (message) => messages.push(message.text()));
    const gateway = new URL(input.authorize).origin;
    const gatewayAnswers = [];
    page.on('response', (response) => {
      if (new URL(response.url()).origin === gateway) gatewayAnswers.push(response.status());
    });
    await page.goto(`http://127.0.0.1:${framer.address().port}/`);
    const frames = [];
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      frames.push({
        url: frame.url(),
        forms: await frame.locator('form').count(),
        buttons: await frame.locator('button').count(),
      });
    }
    return { gateway_answers: gatewayAnswers, frames, console: messages };
  } finally {
    framer.close();
  }
}
