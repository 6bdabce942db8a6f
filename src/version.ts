/** onevz's version; `onevz --version` on the front-end and on a node must print the same. */
export const VERSION = "0.1.0";
