/**
 * `deno run -A tests/helpers/doctor_checks.ts '<json>'`: doctor's runChecks in a process of its
 * own, its results as JSON on stdout. For tests that must run doctor where the test process
 * cannot be: inside the ssh test bed's front-end namespace (`bed.asFrontEnd`), where the bed's
 * accounts exist, so doctor names OpenNebula's user as an operator's doctor would.
 * The JSON is `{ options, env }`: runChecks' options, and the variables its `env` function
 * answers (all others unset); the process environment (ONEVZ_SSH, …) is the caller's.
 */
import { runChecks } from "../../src/admin/doctor.ts";
import type { DoctorOptions } from "../../src/admin/doctor.ts";

const { options, env } = JSON.parse(Deno.args[0]) as {
  options: DoctorOptions;
  env: Record<string, string>;
};
const results = await runChecks(options, (k) => env[k]);
console.log(JSON.stringify(results));
