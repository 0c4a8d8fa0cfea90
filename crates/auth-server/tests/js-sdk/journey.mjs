// A storefront's whole auth journey through the official @medusajs/js-sdk, against a running
// Xclade Auth server. Driven by tests/api/js_sdk.rs, which starts the server and passes:
//   BASE_URL     the server, e.g. http://127.0.0.1:40123
//   MODE         "jwt" (bearer token kept in memory) or "session" (cookie `connect.sid`)
//   EVENTS_FILE  the server's file sink: one JSON envelope per line
//   EMAIL        an address no other test uses
//   IDP_CALLBACK the storefront callback page registered at the test OpenID provider
//                (tests/js-sdk/idp.mjs, which the Rust side starts), and SOCIAL_EMAIL the login
//                typed there: the journey then also signs in with the provider `oidc`
// One line per step on stdout; any failure throws, prints the HTTP exchanges seen so far on
// stderr and exits non-zero.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import Medusa, { FetchError } from "@medusajs/js-sdk";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

const BASE_URL = required("BASE_URL");
const MODE = required("MODE");
const EVENTS_FILE = required("EVENTS_FILE");
const EMAIL = required("EMAIL");
assert.ok(MODE === "jwt" || MODE === "session", `MODE must be jwt or session, not ${MODE}`);

const IDP_CALLBACK = process.env.IDP_CALLBACK;
const SOCIAL_EMAIL = process.env.SOCIAL_EMAIL;

const PASSWORD = "violet tractor umbrella 42";
const NEW_PASSWORD = "amber glacier piano 17";
const origin = new URL(BASE_URL).origin;

// ---------------------------------------------------------------------------------------------
// The network layer. The SDK calls the global `fetch` at request time, so wrapping it here sees
// every request. In session mode the wrapper is also the cookie jar Node's fetch lacks; in both
// modes it records each exchange, to show exactly what the SDK sent and got when a step fails.

const jar = new Map();
const exchanges = [];
const nodeFetch = globalThis.fetch;

// Takes one Set-Cookie line into the jar; a removal (empty value, Max-Age <= 0 or an Expires in
// the past) deletes the cookie.
function absorbSetCookie(line) {
  const [pair, ...attributes] = line.split(";");
  const eq = pair.indexOf("=");
  if (eq <= 0) {
    return;
  }
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  let removed = value === "";
  for (const attribute of attributes) {
    const at = attribute.indexOf("=");
    const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const arg = at < 0 ? "" : attribute.slice(at + 1).trim();
    if (key === "max-age" && Number(arg) <= 0) {
      removed = true;
    }
    if (key === "expires" && Date.parse(arg) <= Date.now()) {
      removed = true;
    }
  }
  if (removed) {
    jar.delete(name);
  } else {
    jar.set(name, value);
  }
}

function redact(value) {
  // Enough of a credential to tell two apart, not enough to use.
  return value.replace(/(Bearer |connect\.sid=)([^;\s",]{0,12})[^;\s",]*/g, "$1$2…");
}

globalThis.fetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const headers = new Headers(init.headers);
  if (MODE === "session" && url.origin === origin && jar.size > 0) {
    headers.set(
      "cookie",
      [...jar].map(([name, value]) => `${name}=${value}`).join("; "),
    );
  }
  const response = await nodeFetch(input, { ...init, headers });
  const setCookies = response.headers.getSetCookie();
  if (MODE === "session" && url.origin === origin) {
    setCookies.forEach(absorbSetCookie);
  }
  const body = await response.clone().text();
  exchanges.push({
    request: `${init.method ?? "GET"} ${url.pathname}${url.search}`,
    headers: redact(JSON.stringify(Object.fromEntries(headers))),
    body: typeof init.body === "string" ? init.body.replace(/"password":"[^"]*"/g, '"password":"…"') : null,
    status: response.status,
    contentType: response.headers.get("content-type"),
    setCookie: setCookies.map(redact),
    response: redact(body.slice(0, 300)),
  });
  return response;
};

// ---------------------------------------------------------------------------------------------
// Helpers.

let stepNumber = 0;
function step(description) {
  stepNumber += 1;
  console.log(`[${MODE}] ${String(stepNumber).padStart(2)} ok  ${description}`);
}

function claimsOf(token) {
  assert.equal(typeof token, "string", "a token is a string");
  const parts = token.split(".");
  assert.equal(parts.length, 3, `a JWT has three parts: ${token}`);
  return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
}

// Resolves when `promise` rejects with the SDK's FetchError of `status`.
async function rejectsWith(promise, status, what) {
  await assert.rejects(
    promise,
    (error) => {
      assert.ok(error instanceof FetchError, `${what}: expected a FetchError, got ${error}`);
      assert.equal(error.status, status, `${what}: status (message ${JSON.stringify(error.message)})`);
      return true;
    },
    what,
  );
}

function readEvents() {
  let text;
  try {
    text = readFileSync(EVENTS_FILE, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") {
      return [];
    }
    throw error;
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

// The token of the `n`-th auth.password_reset event (1-based), waiting up to 10 s for it.
async function resetTokenFromEvents(n) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const resets = readEvents().filter((e) => e.name === "auth.password_reset");
    if (resets.length >= n) {
      const event = resets[n - 1];
      assert.equal(event.data.entity_id, EMAIL, "the reset event names the account");
      assert.equal(event.data.actor_type, "customer");
      assert.equal(typeof event.data.token, "string");
      return event.data.token;
    }
    assert.ok(Date.now() < deadline, `no auth.password_reset event in ${EVENTS_FILE} after 10 s`);
    await sleep(50);
  }
}

// What the browser does with the `location` auth.login answers for a redirect provider: follows
// redirects (keeping the provider's cookies), logs in as `login` on the provider's page, and stops
// where the provider sends it back to the storefront's callback page. Returns that page's query.
async function signInAtProvider(location, login) {
  const cookies = new Map();
  let url = location;
  let body = null;
  for (let hop = 0; hop < 12; hop += 1) {
    if (url.startsWith(IDP_CALLBACK)) {
      return Object.fromEntries(new URL(url).searchParams);
    }
    const headers = { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join("; ") };
    if (body !== null) {
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const response = await nodeFetch(url, { method: body === null ? "GET" : "POST", headers, body, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(";")[0];
      const eq = pair.indexOf("=");
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1)];
      if (value) {
        cookies.set(name, value);
      } else {
        cookies.delete(name);
      }
    }
    body = null;
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get("location"), url).href;
      continue;
    }
    const page = await response.text();
    assert.equal(response.status, 200, `the provider answered ${response.status} at ${url}: ${page.slice(0, 200)}`);
    const action = /action="([^"]+)"/.exec(page);
    assert.ok(action, `a form at ${url}`);
    url = new URL(action[1].replace(/&amp;/g, "&"), url).href;
    body = page.includes('name="login"')
      ? new URLSearchParams({ prompt: "login", login, password: "any password" }).toString()
      : "prompt=consent";
  }
  throw new Error(`the provider never sent the browser to ${IDP_CALLBACK}`);
}

// ---------------------------------------------------------------------------------------------
// The journey.

const sdk = new Medusa({
  baseUrl: BASE_URL,
  debug: false,
  publishableKey: "pk_test",
  auth: { type: MODE, jwtTokenStorageMethod: "memory" },
});

async function journey() {
  // 1. Register: a registration token, not bound to any customer yet.
  const registrationToken = await sdk.auth.register("customer", "emailpass", {
    email: EMAIL,
    password: PASSWORD,
  });
  const registration = claimsOf(registrationToken);
  assert.equal(registration.actor_id, "", "a registration token has no actor");
  assert.equal(registration.actor_type, "customer");
  if (MODE === "session") {
    assert.equal(jar.size, 0, "register opens no session");
  }
  step("auth.register returned a registration token");

  // 2. Create the customer with the registration token: the stored one in jwt mode, an explicit
  //    header in session mode (register opens no session there).
  const createHeaders = MODE === "session" ? { authorization: `Bearer ${registrationToken}` } : undefined;
  const { customer } = await sdk.store.customer.create(
    { email: EMAIL, first_name: "Sdk", last_name: "Test" },
    undefined,
    createHeaders,
  );
  assert.ok(customer.id.startsWith("cus_"), `customer id ${customer.id}`);
  assert.equal(customer.email, EMAIL);
  assert.equal(customer.first_name, "Sdk");
  assert.equal(customer.last_name, "Test");
  assert.equal(customer.has_account, true);
  step(`store.customer.create made ${customer.id}`);

  // 3. In jwt mode, refresh swaps the registration token for one bound to the customer.
  if (MODE === "jwt") {
    const { token } = await sdk.auth.refresh();
    const claims = claimsOf(token);
    assert.equal(claims.actor_id, customer.id, "the refreshed token names the new customer");
    assert.equal(claims.actor_type, "customer");
    assert.equal(await sdk.client.getToken(), token, "the SDK keeps the refreshed token");
    step("auth.refresh bound the token to the customer");
  }

  // 4. Log in.
  const loginToken = await sdk.auth.login("customer", "emailpass", { email: EMAIL, password: PASSWORD });
  assert.equal(typeof loginToken, "string", `login returns a token, not ${JSON.stringify(loginToken)}`);
  assert.equal(claimsOf(loginToken).actor_id, customer.id);
  if (MODE === "session") {
    assert.ok(jar.has("connect.sid"), "POST /auth/session set the connect.sid cookie");
    step("auth.login opened a session (connect.sid)");
    // Refresh now goes by the session cookie.
    const { token } = await sdk.auth.refresh();
    assert.equal(claimsOf(token).actor_id, customer.id, "the session refreshes to the customer");
    assert.ok(jar.has("connect.sid"), "still in session after refresh");
    step("auth.refresh through the session cookie");
  } else {
    assert.equal(await sdk.client.getToken(), loginToken, "the SDK keeps the login token");
    step("auth.login returned a customer token");
  }

  // 5. The SDK's credential reaches the store routes.
  {
    const { customer: me } = await sdk.store.customer.retrieve();
    assert.equal(me.id, customer.id);
    assert.equal(me.email, EMAIL);
    step("store.customer.retrieve returned the customer");
  }

  // 6. Forgotten password: request a reset, read the token from the event.
  const resetResult = await sdk.auth.resetPassword("customer", "emailpass", { identifier: EMAIL });
  assert.equal(resetResult, undefined);
  const resetToken = await resetTokenFromEvents(1);
  step("auth.resetPassword resolved; the reset token arrived as auth.password_reset");

  // 7. Set the new password with the reset token.
  await sdk.auth.updateProvider("customer", "emailpass", { password: NEW_PASSWORD }, resetToken);
  step("auth.updateProvider set the new password");

  // 8. The reset revoked what was issued before it.
  if (MODE === "jwt") {
    await rejectsWith(sdk.auth.refresh(), 401, "refresh with the token from before the reset");
    await rejectsWith(sdk.store.customer.retrieve(), 401, "retrieve with the token from before the reset");
    step("the token from before the reset is refused (401)");
  } else {
    assert.ok(jar.has("connect.sid"), "the old session cookie is still in the jar");
    await rejectsWith(sdk.store.customer.retrieve(), 401, "retrieve in the session from before the reset");
    await rejectsWith(sdk.auth.refresh(), 401, "refresh in the session from before the reset");
    step("the session from before the reset is ended (401)");
  }

  // 9. The old password no longer works; the new one does.
  await rejectsWith(
    sdk.auth.login("customer", "emailpass", { email: EMAIL, password: PASSWORD }),
    401,
    "login with the old password",
  );
  step("auth.login with the old password is refused (401)");
  const newToken = await sdk.auth.login("customer", "emailpass", { email: EMAIL, password: NEW_PASSWORD });
  assert.equal(claimsOf(newToken).actor_id, customer.id);
  if (MODE === "session") {
    assert.ok(jar.has("connect.sid"), "a new session");
  }
  step("auth.login with the new password succeeded");
  {
    const { customer: me } = await sdk.store.customer.retrieve();
    assert.equal(me.id, customer.id);
    assert.equal(me.email, EMAIL);
    step("store.customer.retrieve works again");
  }

  // 10. Log out.
  await sdk.auth.logout();
  if (MODE === "session") {
    assert.ok(!jar.has("connect.sid"), "DELETE /auth/session cleared the cookie");
  }
  // logout() clears the stored token without awaiting it; let that settle.
  await sleep(0);
  assert.ok(!(await sdk.client.getToken()), "the SDK forgot its token");
  await rejectsWith(sdk.store.customer.retrieve(), 401, "retrieve after logout");
  step("auth.logout; store.customer.retrieve is refused afterwards (401)");

  if (IDP_CALLBACK) {
    await socialJourney();
  }
}

// 11. Sign in with the OpenID provider `oidc`, as @medusajs/auth-google storefronts do.
async function socialJourney() {
  const started = await sdk.auth.login("customer", "oidc", {});
  assert.equal(typeof started, "object", `login with a redirect provider answers an object, not ${started}`);
  assert.ok(typeof started.location === "string" && started.location.startsWith("http"), "login answered a location");
  assert.ok(!(await sdk.client.getToken()), "no token before the callback");
  step("auth.login(customer, oidc) answered the provider's location");

  const { code, state } = await signInAtProvider(started.location, SOCIAL_EMAIL);
  assert.ok(code && state, "the provider sent code and state back");
  const token = await sdk.auth.callback("customer", "oidc", { code, state });
  const claims = claimsOf(token);
  assert.equal(claims.actor_id, "", "a first sign-in has no customer yet");
  assert.equal(claims.auth_provider, "oidc");
  assert.equal(claims.user_metadata.email, SOCIAL_EMAIL);
  if (MODE === "session") {
    assert.ok(jar.has("connect.sid"), "the callback's token opened a session");
  } else {
    assert.equal(await sdk.client.getToken(), token, "the SDK keeps the callback's token");
  }
  step("auth.callback(customer, oidc, {code, state}) returned a token (actor_id \"\")");

  await rejectsWith(sdk.auth.callback("customer", "oidc", { code, state }), 401, "the same state again");
  step("auth.callback with the same state again is refused (401)");

  const { customer } = await sdk.store.customer.create({ email: SOCIAL_EMAIL, first_name: "Social" });
  assert.equal(customer.email, SOCIAL_EMAIL);
  if (MODE === "jwt") {
    const { token: refreshed } = await sdk.auth.refresh();
    assert.equal(claimsOf(refreshed).actor_id, customer.id);
  }
  const { customer: me } = await sdk.store.customer.retrieve();
  assert.equal(me.id, customer.id);
  step(`store.customer.create made ${customer.id} for the provider's verified email`);
}

try {
  await journey();
  console.log(`[${MODE}] journey complete: ${stepNumber} steps, ${exchanges.length} requests`);
} catch (error) {
  console.error(`[${MODE}] FAILED after step ${stepNumber}: ${error?.stack ?? error}`);
  console.error(`[${MODE}] HTTP exchanges so far:`);
  for (const [i, e] of exchanges.entries()) {
    console.error(`  #${i + 1} ${e.request} -> ${e.status} (${e.contentType})`);
    console.error(`      request headers: ${e.headers}`);
    if (e.body !== null) {
      console.error(`      request body: ${e.body}`);
    }
    if (e.setCookie.length > 0) {
      console.error(`      set-cookie: ${e.setCookie.join(" | ")}`);
    }
    console.error(`      response: ${e.response}`);
  }
  process.exitCode = 1;
}
