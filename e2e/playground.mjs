// Uses the GraphQL Playground in headless Chromium as a first-time user does, and prints what the
// user saw as one JSON object on stdout. TestPlaygroundInBrowser (../playground_browser_test.go)
// starts the server, runs this script and checks the report against the server's state.
//
// Environment:
//   PLAYGROUND_URL  the page to open; only its origin may be reached
//   TYPE_HEADERS    text to type into the Headers tab, replacing what it holds (optional)
//   TYPE_QUERY      one line to type into the editor, replacing what it holds, then prettify
//                   (optional)
//   RUN             the operations to run in turn, by name, comma-separated; a name of "-" runs a
//                   document's only operation
//   SCREENSHOT      where to save a screenshot of the editor and the last result
//   CHROMIUM        the browser (default /usr/bin/chromium)
//
// The page loads GraphiQL and React from cdn.jsdelivr.net, with integrity hashes. The test may run
// with no internet, so those requests are answered from node_modules, which hold the very same
// files when package.json pins the versions the page asks for. Every other request that leaves
// the server's origin is refused, and reported.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const timeout = 20_000;

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
}

const pageURL = env('PLAYGROUND_URL');
const origin = new URL(pageURL).origin;
const cdn = /^https:\/\/cdn\.jsdelivr\.net\/npm\/((?:@[^/@]+\/)?[^/@]+)@([^/]+)\/([^?#]+)$/;
const contentTypes = { '.js': 'text/javascript', '.css': 'text/css' };

// fromNodeModules answers a request for a CDN file from the package installed in node_modules, or
// says why it cannot.
async function fromNodeModules(url) {
  const [, name, version, file] = url.match(cdn) ?? [];
  if (!name) return { refusal: "neither the server's origin nor a package file" };
  const dir = path.join(here, 'node_modules', name);
  const target = path.join(dir, file);
  if (!target.startsWith(dir + path.sep)) return { refusal: 'outside its package' };
  let installed;
  try {
    installed = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return { refusal: `${name} is not in e2e/package.json` };
  }
  if (installed !== version) {
    return { refusal: `the page asks for ${name}@${version}, e2e/package.json has ${installed}: pin the page's version` };
  }
  const type = contentTypes[path.extname(file)];
  if (!type) return { refusal: 'not a script or a style sheet' };
  let body;
  try {
    body = await readFile(target);
  } catch {
    return { refusal: `no such file in ${name}@${version}` };
  }
  // The page loads these with crossorigin="anonymous": without this header the browser refuses
  // them.
  return { body, headers: { 'content-type': type, 'access-control-allow-origin': '*' } };
}

// editorValue is the text of the CodeMirror editor in the element that selector names.
async function editorValue(page, selector) {
  return page.$eval(`${selector} .CodeMirror`, (el) => el.CodeMirror.getValue());
}

const queryEditor = '.graphiql-query-editor';
const headersEditor = 'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden)';
const resultPane = '.graphiql-response';

// typeInto replaces an editor's text by typing, as a user does.
async function typeInto(page, selector, text) {
  await page.click(`${selector} .CodeMirror-lines`);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text);
}

// runOperation presses the Run button, picks the operation if the document has several, and waits
// for its result.
async function runOperation(page, name) {
  const before = await editorValue(page, resultPane);
  const run = page.locator('.graphiql-execute-button');
  await run.click();
  if (name !== '-') {
    await page.getByRole('menuitem', { name, exact: true }).click();
  }
  await page.waitForFunction(
    ([selector, before]) => {
      const value = document.querySelector(`${selector} .CodeMirror`).CodeMirror.getValue();
      return value !== '' && value !== before;
    },
    [resultPane, before],
    { timeout },
  );
  return editorValue(page, resultPane);
}

const report = { refused: [], consoleErrors: [], runs: [] };
const problems = [];

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  // Without these, Chromium keeps trying to reach its update, sync and other services from outside
  // any page, where the routes below cannot stop it.
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  context.setDefaultTimeout(timeout);
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    const answer = await fromNodeModules(url);
    if (answer.body) return route.fulfill({ body: answer.body, headers: answer.headers });
    report.refused.push(`${url}: ${answer.refusal}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') report.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`error on the page: ${e.message}`));

  await page.goto(pageURL);
  await page.waitForSelector(`${queryEditor} .CodeMirror`);
  report.loaded = { query: await editorValue(page, queryEditor) };
  await page.click('.graphiql-editor-tools button[data-name="headers"]');
  report.loaded.headers = await editorValue(page, headersEditor);

  const typedHeaders = process.env.TYPE_HEADERS;
  if (typedHeaders) await typeInto(page, headersEditor, typedHeaders);
  const typedQuery = process.env.TYPE_QUERY;
  if (typedQuery) {
    // Typed on one line, since Enter would take the editor's completion; then prettified, as a
    // user would, so that the screenshot shows the whole query.
    await typeInto(page, queryEditor, typedQuery);
    await page.click('button[aria-label^="Prettify"]');
  }
  report.sent = { query: await editorValue(page, queryEditor), headers: await editorValue(page, headersEditor) };

  for (const name of env('RUN').split(',')) {
    report.runs.push({ operation: name, result: await runOperation(page, name) });
  }
  const screenshot = env('SCREENSHOT');
  await page.screenshot({ path: screenshot });
  report.screenshot = screenshot;

  await page.click('button[aria-label="Show Documentation Explorer"]');
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByRole('link', { name: 'Mutation', exact: true }).click();
  await docs.locator('.graphiql-doc-explorer-title', { hasText: 'Mutation' }).waitFor();
  report.docs = {
    title: await docs.locator('.graphiql-doc-explorer-title').innerText(),
    fields: await docs.locator('.graphiql-doc-explorer-field-name').allInnerTexts(),
  };
  report.finalURL = page.url();
} catch (e) {
  problems.push(e.stack ?? String(e));
} finally {
  await browser.close();
}

process.stdout.write(JSON.stringify(report, null, 2) + '\n');
if (problems.length > 0) {
  process.stderr.write(problems.join('\n') + '\n');
  process.exit(1);
}
