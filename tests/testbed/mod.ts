/** The onevz ssh test bed: start nodes, lay out remotes, call them the way OpenNebula does. */
export * from "./bed.ts";
export * from "./remotes.ts";
export * from "./one.ts";
