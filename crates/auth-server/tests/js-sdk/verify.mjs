// Verifies Xclade tokens with third-party libraries, as another service would (driven by
// tests/api/keys.rs):
// - `jose`: through the tenant's JWKS URL (createRemoteJWKSet), EdDSA and ES256, with the issuer;
// - `jsonwebtoken` 9, the library Medusa 2.21.2 verifies with: the public key as PEM and
//   `algorithms: ["ES256"]`, what Medusa's `http.jwtPublicKey` and `http.jwtVerifyOptions` give it
//   (jsonwebtoken 9 has no EdDSA).
// Input (JSON on stdin): {"jwks_uri", "issuer", "host"?, "valid": [tokens], "invalid": [tokens],
// "pem_es256": {"pem", "token"}?}. Prints one line per check and "verify complete" at the end;
// exits 1 on the first wrong answer.
import { createRemoteJWKSet, jwtVerify } from "jose";
import jsonwebtoken from "jsonwebtoken";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));

const options = input.host ? { headers: { host: input.host } } : {};
const jwks = createRemoteJWKSet(new URL(input.jwks_uri), options);
const fail = (message) => {
  console.error(message);
  process.exit(1);
};

for (const token of input.valid) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: input.issuer,
      algorithms: ["EdDSA", "ES256"],
    });
    console.log(`jose: ${protectedHeader.alg} ${protectedHeader.kid} verifies, actor_type=${payload.actor_type}`);
  } catch (e) {
    fail(`jose refused a valid token: ${e.code ?? ""} ${e.message}`);
  }
}
for (const token of input.invalid) {
  try {
    await jwtVerify(token, jwks, { issuer: input.issuer, algorithms: ["EdDSA", "ES256"] });
    fail(`jose accepted an invalid token: ${token.slice(0, 40)}...`);
  } catch (e) {
    console.log(`jose: refused (${e.code ?? e.message})`);
  }
}
if (input.pem_es256) {
  const { pem, token } = input.pem_es256;
  try {
    const claims = jsonwebtoken.verify(token, pem, { algorithms: ["ES256"] });
    console.log(`jsonwebtoken 9 (Medusa's verifier): ES256 verifies, actor_type=${claims.actor_type}`);
  } catch (e) {
    fail(`jsonwebtoken 9 refused a valid ES256 token: ${e.message}`);
  }
  try {
    jsonwebtoken.verify(token, pem, { algorithms: ["HS256"] });
    fail("jsonwebtoken 9 accepted the token under HS256");
  } catch (e) {
    console.log(`jsonwebtoken 9: refused under HS256 (${e.message})`);
  }
}
console.log("verify complete");
