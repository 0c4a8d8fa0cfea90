// Medusa 2.21.2 configuration for tools/medusa-check/run.sh: bearer tokens are verified with an
// Xclade Auth tenant's ES256 public key (the PEM of `xclade-auth keys show KID`), as described in
// docs/operations.md, "Medusa backends". Everything else is a bare backend: no admin, no Redis.
const fs = require("fs")
const { loadEnv, defineConfig } = require("@medusajs/framework/utils")

loadEnv(process.env.NODE_ENV || "development", process.cwd())

const jwtPublicKey = process.env.XCLADE_PEM_FILE
  ? fs.readFileSync(process.env.XCLADE_PEM_FILE, "utf8")
  : process.env.JWT_PUBLIC_KEY

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    http: {
      // Medusa's own secret: signs the tokens of Medusa's own /auth routes (HS256)
      jwtSecret: process.env.MEDUSA_JWT_SECRET || "medusa-own-secret-not-xclade",
      // MEDUSA_CHECK_NO_ALGORITHM=1 leaves it out, to see Medusa's configuration check
      jwtOptions: process.env.MEDUSA_CHECK_NO_ALGORITHM === "1" ? {} : { algorithm: "HS256" },
      // the Xclade tenant's public key verifies every bearer token
      jwtPublicKey,
      jwtVerifyOptions: { algorithms: ["ES256"] },
      cookieSecret: process.env.COOKIE_SECRET || "medusa-check-cookie-secret",
      storeCors: process.env.STORE_CORS || "http://localhost:8000",
      adminCors: process.env.ADMIN_CORS || "http://localhost:9000",
      authCors: process.env.AUTH_CORS || "http://localhost:8000",
    },
  },
  admin: { disable: true },
})
