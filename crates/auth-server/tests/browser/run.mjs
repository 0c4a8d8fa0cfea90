// The storefront in a real browser. Driven by tests/api/browser.rs, which starts two servers and
// passes:
//   BASE_URL    a server with COOKIE_SAMESITE=none (hence Secure), e.g. http://127.0.0.1:40123
//   LAX_URL     a server with the default cookies (SameSite=Lax, not Secure on loopback)
//               Both have AUTH_CORS = STORE_CORS = http://localhost:8000 and no other origin.
//   EMAIL, LAX_EMAIL   addresses no other test uses
//   ARTIFACTS   a directory for the screenshot (browser-journey.png) and the bundle
//   CHROMIUM    the browser (default /usr/bin/chromium: Debian's package; nothing is downloaded)
//   PAGE_PORT   the storefront's port on localhost (default 8000), OTHER_PORT another origin's
//               (default 8001), which is in no CORS list
//
// It bundles @medusajs/js-sdk for the browser with esbuild, serves a page from
// http://localhost:PAGE_PORT (and the same page from http://localhost:OTHER_PORT), opens it in
// headless Chromium through playwright-core, and walks the customer journey in session mode
// inside the page. One line per step on stdout ("browser journey complete" at the end); any
// failure prints what was seen and exits non-zero.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

const BASE_URL = required("BASE_URL");
const LAX_URL = required("LAX_URL");
const EMAIL = required("EMAIL");
const LAX_EMAIL = required("LAX_EMAIL");
const ARTIFACTS = required("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGE_PORT = Number(process.env.PAGE_PORT || 8000);
const OTHER_PORT = Number(process.env.OTHER_PORT || 8001);
const PAGE_ORIGIN = `http://localhost:${PAGE_PORT}`;
const OTHER_ORIGIN = `http://localhost:${OTHER_PORT}`;
const PASSWORD = "violet tractor umbrella 42";
const NEW_PASSWORD = "amber glacier piano 17";
const here = dirname(fileURLToPath(import.meta.url));

let stepNumber = 0;
function step(description) {
  stepNumber += 1;
  console.log(`${String(stepNumber).padStart(2)} ok  ${description}`);
}

// ---------------------------------------------------------------------------------------------
// The page and its server.

const bundle = await build({
  entryPoints: [join(here, "entry.js")],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "chrome120",
  minify: true,
  write: false,
  logLevel: "warning",
});
const sdkJs = bundle.outputFiles[0].contents;
mkdirSync(ARTIFACTS, { recursive: true });
writeFileSync(join(ARTIFACTS, "medusa-js-sdk.bundle.js"), sdkJs);
step(`@medusajs/js-sdk bundled for the browser by esbuild (${sdkJs.length} bytes)`);

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Xclade Auth: storefront journey</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2430; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p { margin: 0 0 14px; color: #556; }
  ol { padding-left: 24px; }
  li { margin: 3px 0; }
  li.ok::marker { color: #17803d; }
  .ok b { color: #17803d; }
  .refused b { color: #b4261b; }
  code { background: #f1f3f7; padding: 0 4px; border-radius: 3px; }
</style>
</head>
<body>
<h1>Storefront journey in Chromium</h1>
<p>Page <code id="origin"></code>, service <code id="service"></code>, <code>@medusajs/js-sdk</code> bundled by esbuild.</p>
<ol id="steps"></ol>
<script src="/sdk.js"></script>
<script>
  document.getElementById("origin").textContent = location.origin;
  window.show = (text, kind) => {
    const li = document.createElement("li");
    li.className = kind || "ok";
    li.innerHTML = "<b>" + (kind === "refused" ? "refused as it must be" : "ok") + "</b> " + text;
    document.getElementById("steps").appendChild(li);
  };
</script>
</body>
</html>
`;

function listen(port) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(sdkJs);
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Both loopback addresses: Chromium may try ::1 or 127.0.0.1 for localhost.
    server.listen({ port, host: "::", ipv6Only: false }, () => resolve(server));
  });
}

// The page's origin is fixed (it is what STORE_CORS names): while another run holds the port,
// wait for it, up to 60 s.
async function serve(port) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await listen(port);
    } catch (error) {
      if (error.code !== "EADDRINUSE" || Date.now() > deadline) {
        throw new Error(`cannot serve the test page on localhost:${port}: ${error.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const servers = [await serve(PAGE_PORT), await serve(OTHER_PORT)];

// ---------------------------------------------------------------------------------------------
// The browser.

// A persistent context on a fresh profile (--user-data-dir), as a visitor's browser: Playwright's
// other contexts are off the record (Incognito), where Chromium blocks third-party cookies by
// default, and the storefront's session cookie is a third-party cookie on localhost
// (docs/security.md, "What the browser test shows").
const launchArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const profiles = [];
// `preferences`: the profile's Preferences file before the first start (none: Chromium's own
// defaults).
async function launch(preferences) {
  const profile = mkdtempSync(join(tmpdir(), "xclade-browser-"));
  profiles.push(profile);
  if (preferences) {
    mkdirSync(join(profile, "Default"));
    writeFileSync(join(profile, "Default", "Preferences"), JSON.stringify(preferences));
  }
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: launchArgs,
  });
}
// The visitor allows third-party cookies (`cookie_controls_mode` 0): Debian's Chromium 156
// blocks them in a fresh profile (see `thirdPartyCookiesBlocked`).
const context = await launch({ profile: { cookie_controls_mode: 0 } });
const page = await context.newPage();

// What only the network layer of the browser shows: preflights, and the headers a request
// really carried (cookies included), through the DevTools protocol.
const network = new Map();
function watch(cdp) {
  const entry = (id) => {
    if (!network.has(id)) {
      network.set(id, { id });
    }
    return network.get(id);
  };
  cdp.on("Network.requestWillBeSent", (e) => {
    Object.assign(entry(e.requestId), { url: e.request.url, method: e.request.method, type: e.type, origin: e.request.headers.Origin });
  });
  cdp.on("Network.requestWillBeSentExtraInfo", (e) => {
    const r = entry(e.requestId);
    Object.assign(r, { sentHeaders: e.headers, associatedCookies: e.associatedCookies });
    // The Origin a simple request really carried is only in the headers sent.
    r.origin = r.origin || header(e.headers, "origin");
  });
  cdp.on("Network.responseReceived", (e) => {
    Object.assign(entry(e.requestId), { status: e.response.status, responseHeaders: e.response.headers, type: e.type });
  });
  cdp.on("Network.responseReceivedExtraInfo", (e) => {
    Object.assign(entry(e.requestId), { rawResponseHeaders: e.headers, blockedCookies: e.blockedCookies });
  });
  cdp.on("Network.loadingFailed", (e) => {
    Object.assign(entry(e.requestId), { failed: e.errorText, corsError: e.corsErrorStatus });
  });
  return cdp.send("Network.enable");
}
await watch(await context.newCDPSession(page));

const messages = [];
page.on("console", (m) => messages.push(`[page ${m.type()}] ${m.text()}`));

function header(headers, name) {
  if (!headers) {
    return undefined;
  }
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function requestsTo(base, path, method) {
  return [...network.values()].filter((r) => r.url === `${base}${path}` && (!method || r.method === method));
}

async function cookiesOf(base) {
  return (await context.cookies(base)).filter((c) => c.name === "connect.sid");
}

async function show(text, kind) {
  await page.evaluate(([t, k]) => window.show(t, k), [text, kind]);
}

// ---------------------------------------------------------------------------------------------
// The journey, in the page at http://localhost:PAGE_PORT, in session mode.

async function journey() {
  await page.goto(`${PAGE_ORIGIN}/`);
  await page.evaluate((base) => {
    document.getElementById("service").textContent = base;
    window.sdk = new window.Medusa({ baseUrl: base, auth: { type: "session" } });
    // The status of a call that fails with the SDK's FetchError, else the error's text.
    window.statusOf = async (promise) => {
      try {
        await promise;
        return 200;
      } catch (error) {
        return error instanceof window.FetchError ? error.status : String(error);
      }
    };
  }, BASE_URL);
  step(`page ${PAGE_ORIGIN} loaded the bundle`);

  // 1. Register.
  const token = await page.evaluate(
    ([email, password]) => window.sdk.auth.register("customer", "emailpass", { email, password }),
    [EMAIL, PASSWORD],
  );
  assert.equal(typeof token, "string");
  await show("register: a registration token");
  step("sdk.auth.register");

  // 2. Create the customer with the registration token (an Authorization header: preflighted).
  const customer = await page.evaluate(
    async ([email, token]) =>
      (await window.sdk.store.customer.create({ email, first_name: "Browser" }, undefined, { authorization: `Bearer ${token}` }))
        .customer,
    [EMAIL, token],
  );
  assert.ok(customer.id.startsWith("cus_"), customer.id);
  await show(`store.customer.create: <code>${customer.id}</code>`);
  step("sdk.store.customer.create with the registration token");

  const preflights = requestsTo(BASE_URL, "/store/customers", "OPTIONS");
  assert.equal(preflights.length, 1, `one preflight of POST /store/customers: ${JSON.stringify([...network.values()])}`);
  const preflight = preflights[0];
  assert.equal(preflight.status, 200, JSON.stringify(preflight));
  assert.equal(header(preflight.responseHeaders, "access-control-allow-origin"), PAGE_ORIGIN);
  assert.equal(header(preflight.responseHeaders, "access-control-allow-credentials"), "true");
  const requested = header(preflight.sentHeaders, "access-control-request-headers") || "";
  assert.ok(requested.includes("authorization"), `the browser asked for authorization: ${requested}`);
  await show(`CORS preflight <code>OPTIONS /store/customers</code> from <code>${PAGE_ORIGIN}</code> allowed, with credentials`);
  step(`the browser preflighted POST /store/customers and the answer allowed ${PAGE_ORIGIN} with credentials`);

  // 3. Session-mode login: the SDK logs in, then opens a session (POST /auth/session) whose
  //    cookie the browser keeps for 127.0.0.1, a site other than localhost.
  await page.evaluate(
    ([email, password]) => window.sdk.auth.login("customer", "emailpass", { email, password }),
    [EMAIL, PASSWORD],
  );
  const [cookie] = await cookiesOf(BASE_URL);
  assert.ok(cookie, `the browser kept connect.sid: ${JSON.stringify(await context.cookies())} ${JSON.stringify(requestsTo(BASE_URL, "/auth/session"))}`);
  assert.equal(cookie.httpOnly, true, "HttpOnly");
  assert.equal(cookie.secure, true, "Secure (SameSite=None forces it)");
  assert.equal(cookie.sameSite, "None");
  const visible = await page.evaluate(() => document.cookie);
  assert.ok(!visible.includes("connect.sid"), `no page script can read it: ${visible}`);
  await show("login in session mode: <code>connect.sid</code> kept (HttpOnly, Secure, SameSite=None)");
  step("sdk.auth.login (session): the browser kept connect.sid, HttpOnly, Secure, SameSite=None");

  // 4. /store/customers/me with the cookie alone.
  const me = await page.evaluate(async () => (await window.sdk.store.customer.retrieve()).customer);
  assert.equal(me.id, customer.id);
  const retrieve = requestsTo(BASE_URL, "/store/customers/me", "GET").at(-1);
  assert.ok((header(retrieve.sentHeaders, "cookie") || "").includes("connect.sid="), JSON.stringify(retrieve));
  assert.equal(header(retrieve.sentHeaders, "authorization"), undefined, "the session alone");
  await show("store.customer.retrieve with the cookie alone");
  step("sdk.store.customer.retrieve: /store/customers/me with the cookie, no bearer");

  // 5. Another origin, not in STORE_CORS: its page cannot read the answers, and a form it
  //    posts with the visitor's cookie changes nothing.
  await otherOrigin(customer.id);

  // 6. Change the password (Xclade's route, through the SDK's client): every session ends.
  const changed = await page.evaluate(
    ([old_password, new_password]) =>
      window.sdk.client.fetch("/auth/customer/emailpass/change-password", {
        method: "POST",
        body: { old_password, new_password },
      }),
    [PASSWORD, NEW_PASSWORD],
  );
  assert.equal(typeof changed.token, "string");
  assert.equal(await page.evaluate(() => window.statusOf(window.sdk.store.customer.retrieve())), 401);
  assert.equal((await cookiesOf(BASE_URL)).length, 0, "the cookie is cleared");
  await show("change-password: a fresh token; the session ended and its cookie is gone");
  step("change-password: 200, the session ended (401) and the browser dropped the cookie");

  // 7. Log in again with the new password, then log out.
  await page.evaluate(
    ([email, password]) => window.sdk.auth.login("customer", "emailpass", { email, password }),
    [EMAIL, NEW_PASSWORD],
  );
  const again = await page.evaluate(async () => (await window.sdk.store.customer.retrieve()).customer);
  assert.equal(again.id, customer.id);
  await page.evaluate(() => window.sdk.auth.logout());
  assert.equal(await page.evaluate(() => window.statusOf(window.sdk.store.customer.retrieve())), 401);
  assert.equal((await cookiesOf(BASE_URL)).length, 0, "logout cleared the cookie");
  await show("login with the new password, then logout: the cookie is gone and /store/customers/me is 401");
  step("login with the new password, retrieve, logout: then 401 and no cookie");

  await laxCookies();
  await thirdPartyCookiesBlocked();
}

// A page on OTHER_ORIGIN (not in STORE_CORS or AUTH_CORS), while the visitor has a session.
async function otherOrigin(customerId) {
  const other = await context.newPage();
  await watch(await context.newCDPSession(other));
  await other.goto(`${OTHER_ORIGIN}/`);
  const reads = await other.evaluate(async (base) => {
    const attempt = async (path, init) => {
      try {
        const response = await fetch(`${base}${path}`, init);
        return `read ${response.status}: ${await response.text()}`;
      } catch (error) {
        return `refused: ${error}`;
      }
    };
    return {
      me: await attempt("/store/customers/me", { credentials: "include" }),
      meWithoutCookie: await attempt("/store/customers/me", {}),
      login: await attempt("/auth/customer/emailpass", {
        method: "POST",
        credentials: "include",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "x@example.com", password: "whatever it is" }),
      }),
    };
  }, BASE_URL);
  for (const [what, outcome] of Object.entries(reads)) {
    assert.match(outcome, /^refused: TypeError/, `${what} from ${OTHER_ORIGIN}: ${outcome}`);
  }
  // The GET was sent (a simple request), but its answer has no CORS header for this origin.
  const sent = requestsTo(BASE_URL, "/store/customers/me", "GET").filter((r) => r.origin === OTHER_ORIGIN);
  assert.ok(sent.length >= 1, "the simple GET reached the server");
  for (const r of sent) {
    assert.equal(header(r.responseHeaders, "access-control-allow-origin"), undefined, JSON.stringify(r));
  }
  // The JSON POST stopped at its preflight, which names no origin.
  const loginPreflight = requestsTo(BASE_URL, "/auth/customer/emailpass", "OPTIONS").filter((r) => r.origin === OTHER_ORIGIN);
  assert.equal(loginPreflight.length, 1, JSON.stringify([...network.values()].filter((r) => r.origin === OTHER_ORIGIN)));
  assert.equal(requestsTo(BASE_URL, "/auth/customer/emailpass", "POST").filter((r) => r.origin === OTHER_ORIGIN).length, 0,
    "the POST itself was never sent");
  step(`${OTHER_ORIGIN} cannot read /store/customers/me (with or without the cookie), and its JSON POST stops at the preflight`);

  // Cross-site forms with the visitor's cookie: change-password as text/plain shaped like JSON,
  // and logout-all as a urlencoded form. Each would end the session if it counted.
  const attacks = [
    {
      path: "/auth/customer/emailpass/change-password",
      enctype: "text/plain",
      name: `{"old_password":"${PASSWORD}","new_password":"hijacked password 99","x":"`,
      value: `"}`,
    },
    { path: "/auth/logout-all", enctype: "application/x-www-form-urlencoded", name: "all", value: "1" },
  ];
  for (const attack of attacks) {
    await other.goto(`${OTHER_ORIGIN}/`);
    const [response] = await Promise.all([
      other.waitForResponse((r) => r.url() === `${BASE_URL}${attack.path}`),
      other.evaluate(([base, a]) => {
        const form = document.createElement("form");
        form.method = "POST";
        form.action = `${base}${a.path}`;
        form.enctype = a.enctype;
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = a.name;
        input.value = a.value;
        form.appendChild(input);
        document.body.appendChild(form);
        form.submit();
      }, [BASE_URL, attack]),
    ]);
    assert.equal(response.status(), 401, `${attack.path}: ${await response.text()}`);
    const posted = requestsTo(BASE_URL, attack.path, "POST").at(-1);
    const carried = (header(posted.sentHeaders, "cookie") || "").includes("connect.sid=");
    assert.ok(carried, `the form carried the cookie (SameSite=None): ${JSON.stringify(posted)}`);
  }
  await other.close();
  const still = await page.evaluate(async () => (await window.sdk.store.customer.retrieve()).customer);
  assert.equal(still.id, customerId, "the session survived both forms");
  await show(`a page on <code>${OTHER_ORIGIN}</code> (not in STORE_CORS) cannot read the answers`, "refused");
  await show("cross-site form POSTs carrying the cookie (change-password, logout-all): 401, the session lives on", "refused");
  step("cross-site form POSTs carried the cookie and got 401; the session and the password are unchanged");
}

// The default cookie (SameSite=Lax) when the storefront is on another site.
async function laxCookies() {
  const outcome = await page.evaluate(
    async ([base, email, password]) => {
      const sdk = new window.Medusa({ baseUrl: base, auth: { type: "session" } });
      const token = await sdk.auth.register("customer", "emailpass", { email, password });
      await sdk.store.customer.create({ email }, undefined, { authorization: `Bearer ${token}` });
      await sdk.auth.login("customer", "emailpass", { email, password });
      const session = await window.statusOf(sdk.store.customer.retrieve());
      const jwt = new window.Medusa({ baseUrl: base, auth: { type: "jwt", jwtTokenStorageMethod: "memory" } });
      await jwt.auth.login("customer", "emailpass", { email, password });
      const bearer = await window.statusOf(jwt.store.customer.retrieve());
      return { session, bearer };
    },
    [LAX_URL, LAX_EMAIL, PASSWORD],
  );
  const opened = requestsTo(LAX_URL, "/auth/session", "POST").at(-1);
  const setCookie = header(opened.rawResponseHeaders, "set-cookie") || "";
  assert.equal(opened.status, 200, JSON.stringify(opened));
  assert.match(setCookie, /connect\.sid=.*SameSite=Lax/i, "the server set a Lax cookie");
  const blocked = (opened.blockedCookies || []).flatMap((b) => b.blockedReasons);
  assert.ok(
    blocked.some((reason) => reason.includes("SameSite")),
    `Chromium refused to store it from a cross-site response: ${JSON.stringify(opened.blockedCookies)}`,
  );
  assert.equal((await cookiesOf(LAX_URL)).length, 0, "no cookie kept");
  assert.deepEqual(outcome, { session: 401, bearer: 200 });
  await show(
    "default cookie (SameSite=Lax) from <code>localhost</code> to <code>127.0.0.1</code>: Chromium refuses it " +
      `(${blocked.join(", ")}), so session mode gets 401; JWT mode works`,
    "refused",
  );
  step(`SameSite=Lax cross-site: Chromium blocked the cookie (${blocked.join(", ")}); session 401, JWT mode 200`);
}

// Chromium with its own defaults (a fresh profile, nothing set): the session cookie of
// 127.0.0.1 in a page of localhost is a third-party cookie, which it refuses to store.
async function thirdPartyCookiesBlocked() {
  const fresh = await launch(null);
  try {
    const tab = fresh.pages()[0] ?? (await fresh.newPage());
    const seen = [];
    const cdp = await fresh.newCDPSession(tab);
    cdp.on("Network.responseReceivedExtraInfo", (e) => seen.push(...(e.blockedCookies || [])));
    await cdp.send("Network.enable");
    await tab.goto(`${PAGE_ORIGIN}/`);
    const outcome = await tab.evaluate(
      async ([base, email, password]) => {
        const statusOf = async (promise) => {
          try {
            await promise;
            return 200;
          } catch (error) {
            return error instanceof window.FetchError ? error.status : String(error);
          }
        };
        const sdk = new window.Medusa({ baseUrl: base, auth: { type: "session" } });
        const token = await sdk.auth.register("customer", "emailpass", { email, password });
        await sdk.store.customer.create({ email }, undefined, { authorization: `Bearer ${token}` });
        await sdk.auth.login("customer", "emailpass", { email, password });
        const session = await statusOf(sdk.store.customer.retrieve());
        const jwt = new window.Medusa({ baseUrl: base, auth: { type: "jwt", jwtTokenStorageMethod: "memory" } });
        await jwt.auth.login("customer", "emailpass", { email, password });
        const bearer = await statusOf(jwt.store.customer.retrieve());
        return { session, bearer };
      },
      [BASE_URL, `third-${EMAIL}`, PASSWORD],
    );
    const reasons = seen.filter((b) => b.cookie?.name === "connect.sid").flatMap((b) => b.blockedReasons);
    assert.ok(reasons.includes("UserPreferences"), `blocked as a third-party cookie: ${JSON.stringify(seen)}`);
    assert.deepEqual(outcome, { session: 401, bearer: 200 });
  } finally {
    await fresh.close();
  }
  await show(
    "Chromium's defaults (fresh profile) block the cookie as a third-party cookie (UserPreferences): " +
      "session mode gets 401 there too, JWT mode works",
    "refused",
  );
  step("Chromium's own defaults: third-party cookie blocked (UserPreferences); session 401, JWT mode 200");
}

let failure;
try {
  await journey();
} catch (error) {
  failure = error;
} finally {
  try {
    await page.screenshot({ path: join(ARTIFACTS, "browser-journey.png"), fullPage: true });
  } catch (error) {
    console.error(`no screenshot: ${error}`);
  }
  await context.close();
  profiles.forEach((p) => rmSync(p, { recursive: true, force: true }));
  servers.forEach((s) => s.close());
}
if (failure) {
  console.error(failure);
  console.error("--- page console ---");
  console.error(messages.join("\n"));
  console.error("--- network ---");
  for (const r of network.values()) {
    console.error(JSON.stringify({ ...r, sentHeaders: undefined, rawResponseHeaders: undefined, responseHeaders: undefined }));
  }
  process.exit(1);
}
console.log(`screenshot: ${join(ARTIFACTS, "browser-journey.png")}`);
console.log("browser journey complete");
