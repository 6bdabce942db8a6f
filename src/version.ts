/**
 * onevz's version; `onevz --version` on the front-end and on a node must print the same.
 * A tracked source file (not generated, never ignored): bump it together with package.json's
 * "version" (tests/dispatch.test.ts checks package.json and package-lock.json agree).
 */
export const VERSION = "0.1.0";
