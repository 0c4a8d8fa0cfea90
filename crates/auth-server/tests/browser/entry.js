// The browser bundle's entry (bundled by run.mjs with esbuild): the official SDK as a global.
import Medusa, { FetchError } from "@medusajs/js-sdk";

window.Medusa = Medusa;
window.FetchError = FetchError;
