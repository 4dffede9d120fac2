// Drives Debian's Chromium for tests/softphone.rs: one JSON command per stdin line, one
// JSON answer per stdout line. Pages are softphones: open (and sign in), click, evaluate,
// wait for a condition, close. Media is Chromium's fake devices: the microphone plays
// the WAV given as argv[2].
import { chromium } from "playwright-core";
import readline from "node:readline";

const [, , wav] = process.argv;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}`,
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-sandbox",
  ],
});
const pages = new Map();
const complaintsOf = new Map();

// Waits until `js` is truthy in the page, awaiting it when it is a promise: Playwright's
// waitForFunction takes a returned promise itself as truthy, so WebRTC-stats conditions
// would pass at once. Checked every 50 ms, like waitForFunction's own polling.
async function until(page, js, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(js))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${js}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function run(c) {
  switch (c.cmd) {
    case "open": {
      // A laptop's screen (1366×768), the browser language asked for (default Russian).
      const context = await browser.newContext({
        permissions: ["microphone"],
        viewport: { width: 1366, height: 768 },
        locale: c.locale ?? "ru-RU",
      });
      const page = await context.newPage();
      const complaints = [];
      complaintsOf.set(c.page, complaints);
      page.on("console", (m) => {
        process.stderr.write(`[${c.page}] ${m.text()}\n`);
        if (m.type() === "error" || m.type() === "warning") complaints.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => complaints.push(`page error: ${e.message}`));
      if (process.env.SIP_TRACE) {
        page.on("websocket", (ws) => {
          ws.on("framesent", (f) => process.stderr.write(`[${c.page}] >> ${f.payload}\n`));
          ws.on("framereceived", (f) => process.stderr.write(`[${c.page}] << ${f.payload}\n`));
        });
      }
      page.on("pageerror", (e) => process.stderr.write(`[${c.page}] page error: ${e.message}\n`));
      page.on("response", (r) => {
        if (r.status() >= 400) process.stderr.write(`[${c.page}] ${r.status()} ${r.request().method()} ${r.url()}\n`);
      });
      await page.goto(c.url);
      await page.fill("input[name=login]", c.login);
      await page.fill("input[name=password]", c.password);
      await page.click("form#login button[type=submit]");
      if (c.registered ?? true) {
        await page.waitForFunction(() => window.kolokol?.registered(), null, { timeout: 15000 });
      } else {
        await page.waitForSelector(c.ready ?? "#operator-state", { timeout: 15000 });
      }
      pages.set(c.page, page);
      return true;
    }
    case "open-sipjs": {
      // SIP.js on kolokol's origin (a secure context for the microphone): a blank page
      // from the server, the bundled client, then sign-in and registration.
      const context = await browser.newContext({ permissions: ["microphone"] });
      const page = await context.newPage();
      page.on("console", (m) => process.stderr.write(`[${c.page}] ${m.text()}\n`));
      page.on("pageerror", (e) => process.stderr.write(`[${c.page}] page error: ${e.message}\n`));
      await page.goto(c.url);
      await page.setContent("<!doctype html><title>SIP.js</title>");
      await page.addScriptTag({ path: new URL("dist/sipjs.js", import.meta.url).pathname });
      await page.evaluate(([l, p]) => window.sipjs.start(l, p), [c.login, c.password]);
      await page.waitForFunction(() => window.sipjs.registered, null, { timeout: 15000 });
      pages.set(c.page, page);
      return true;
    }
    case "click":
      await pages.get(c.page).click(c.selector);
      return true;
    case "fill":
      await pages.get(c.page).fill(c.selector, c.value);
      return true;
    case "eval":
      return await pages.get(c.page).evaluate(c.js);
    case "wait":
      await until(pages.get(c.page), c.js, c.timeout_ms ?? 10000);
      return true;
    case "goto": {
      const page = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: c.locale ?? "ru-RU" }).then((x) => x.newPage());
      const complaints = [];
      complaintsOf.set(c.page, complaints);
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") complaints.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => complaints.push(`page error: ${e.message}`));
      await page.goto(c.url);
      await page.waitForSelector(c.ready, { timeout: 15000 });
      pages.set(c.page, page);
      return true;
    }
    case "select":
      await pages.get(c.page).selectOption(c.selector, c.value);
      return true;
    case "press":
      await pages.get(c.page).keyboard.press(c.key);
      return true;
    case "screenshot":
      await pages.get(c.page).screenshot({ path: c.path });
      return true;
    // Console errors and warnings (and uncaught exceptions) of the page so far.
    case "complaints":
      return complaintsOf.get(c.page) ?? [];
    // axe-core's serious and critical accessibility violations on the page as it is.
    case "axe": {
      const page = pages.get(c.page);
      await page.addScriptTag({ path: new URL("node_modules/axe-core/axe.min.js", import.meta.url).pathname });
      return await page.evaluate(async () => {
        const result = await window.axe.run(document, { resultTypes: ["violations"] });
        return result.violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")}`);
      });
    }
    case "close": {
      const page = pages.get(c.page);
      pages.delete(c.page);
      await page.close({ runBeforeUnload: true });
      await page.context().close();
      return true;
    }
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const c = JSON.parse(line);
  if (c.cmd === "quit") break;
  try {
    const value = await run(c);
    process.stdout.write(JSON.stringify({ ok: true, value: value ?? null }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e?.message ?? e) }) + "\n");
  }
}
await browser.close();
