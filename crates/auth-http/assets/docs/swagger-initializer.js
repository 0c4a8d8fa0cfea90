"use strict";
// Starts Swagger UI (docs/swagger-ui-bundle.js, vendored) on the document of this server. A file
// rather than Swagger UI's usual inline script, so that the page's Content-Security-Policy holds
// `script-src 'self'` without 'unsafe-inline'. Every option that could make Swagger UI load
// something is set here; the page's CSP refuses any other host whatever the options say.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    // Relative to /docs: this server's /openapi.json, the only document the page loads.
    url: "openapi.json",
    // No `urls`, `configUrl` or `spec`, and the query string cannot set any of them.
    queryConfigEnabled: false,
    // No online validator (by default Swagger UI shows a badge image from validator.swagger.io,
    // which is given the document's URL to check).
    validatorUrl: "none",
    dom_id: "#swagger-ui",
    // Without the top bar of the standalone layout (its own URL box and badge).
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    deepLinking: true,
    filter: true,
    // "Try it out" (off until its button is pressed) calls the servers of the document; it lists
    // none, so this origin, and `connect-src 'self'` refuses any other.
    tryItOutEnabled: false,
  });
});
