// A real OpenID Connect provider for the API tests: `oidc-provider` (a certified implementation,
// pinned in package.json) on a loopback port, with one confidential test client. Started by
// tests/api/oauth.rs and tests/api/js_sdk.rs; prints one line of JSON, {"issuer": ...}, once it
// listens, and runs until it is killed.
//
// Environment: REDIRECT_URIS (comma-separated: the storefront callback pages the client may use),
// CLIENT_ID, CLIENT_SECRET.
//
// The login page is oidc-provider's development interaction (any login and password). The
// account is made from the login typed: `sub` is `sub-<login>`, `email` is the login when it
// holds an `@` (`<login>@idp.test` otherwise), and `email_verified` is true unless the login
// starts with `unverified-`. Consent is granted at once (the documented `loadExistingGrant`
// recipe), so a test logs in and lands on the callback.
import http from "node:http";
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const redirectUris = (process.env.REDIRECT_URIS || "").split(",").filter(Boolean);
const clientId = process.env.CLIENT_ID || "xclade-test";
const clientSecret = process.env.CLIENT_SECRET || "test-client-secret";

function claimsOf(login) {
  const email = login.includes("@") ? login.replace(/^unverified-/, "") : `${login}@idp.test`;
  return {
    sub: `sub-${login}`,
    email,
    email_verified: !login.startsWith("unverified-"),
    name: `Test ${login.split("@")[0]}`,
    given_name: "Test",
    family_name: login.split("@")[0],
    picture: "https://idp.test/avatar.png",
  };
}

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-rs256", use: "sig", alg: "RS256" };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ["idp-test-cookie-key"] },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "given_name", "family_name", "picture"],
    },
    // The profile in the ID token itself, as Google's is (not only at userinfo).
    conformIdTokenClaims: false,
    pkce: { methods: ["S256"], required: () => true },
    features: { devInteractions: { enabled: true } },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => claimsOf(id) }),
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        return ctx.oidc.provider.Grant.find(grantId);
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
  });
  // Keep test output quiet: the development-key and dev-interaction warnings are expected here.
  provider.on("server_error", (_ctx, err) => console.error("idp server_error", err));
  server.on("request", provider.callback());
  console.log(JSON.stringify({ issuer }));
});
