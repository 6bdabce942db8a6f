import assert from "node:assert/strict";
import {
  checkDiskQuota,
  formatUbcPair,
  mbArg,
  mbToBytes,
  mbToPages,
  parseUbcNumber,
  parseUbcPair,
  UNLIMITED,
} from "../../src/ovz/units.ts";

Deno.test("units: pages, bytes and items with suffixes", () => {
  assert.equal(parseUbcNumber("65536", "pages"), 65536n);
  assert.equal(parseUbcNumber("1024M", "pages"), 262144n);
  assert.equal(parseUbcNumber("1g", "pages"), 262144n);
  assert.equal(parseUbcNumber("14M", "bytes"), 14n * 1024n * 1024n);
  assert.equal(parseUbcNumber("4K", "pages"), 1n);
  assert.equal(parseUbcNumber("unlimited", "items"), UNLIMITED);
  assert.equal(parseUbcNumber("UNLIMITED", "pages"), 9223372036854775807n);
  assert.throws(() => parseUbcNumber("240K", "items"), /item counts take no suffix/);
  assert.throws(() => parseUbcNumber("12Q", "bytes"), /unknown suffix/);
  assert.throws(() => parseUbcNumber("-1", "pages"), /not a number/);
  assert.throws(() => parseUbcNumber("9223372036854775808", "pages"), /exceeds/);
  assert.throws(() => parseUbcNumber("99999999999P", "bytes"), /exceeds/);
  assert.throws(() => parseUbcNumber("", "pages"), /not a number/);
});

Deno.test("units: barrier[:limit] pairs", () => {
  assert.deepEqual(parseUbcPair("PHYSPAGES", "0:unlimited"), { barrier: 0n, limit: UNLIMITED });
  assert.deepEqual(parseUbcPair("lockedpages", "2048"), { barrier: 2048n, limit: 2048n });
  assert.equal(formatUbcPair(parseUbcPair("KMEMSIZE", "14372700:14790164")), "14372700:14790164");
  assert.equal(formatUbcPair(parseUbcPair("PHYSPAGES", "0:unlimited")), "0:unlimited");
  assert.equal(formatUbcPair(parseUbcPair("SWAPPAGES", "0:1G")), "0:262144");
  assert.throws(() => parseUbcPair("FOO", "1"), /not a beancounter/);
  assert.throws(() => parseUbcPair("NUMPROC", "1:2:3"), /barrier\[:limit\]/);
  assert.throws(() => parseUbcPair("NUMPROC", "1:"), /barrier\[:limit\]/);
});

Deno.test("units: MB helpers use explicit units", () => {
  assert.equal(mbToPages(1024), 262144n);
  assert.equal(mbToPages(512), 131072n);
  assert.equal(mbToBytes(1), 1048576n);
  assert.equal(mbArg(1024), "1024M");
});

Deno.test("units: disk quota values", () => {
  assert.equal(checkDiskQuota("diskspace", "10485760:11530240"), "10485760:11530240");
  assert.equal(checkDiskQuota("diskspace", "2G:2.2G"), "2G:2.2G");
  assert.equal(checkDiskQuota("diskinodes", "200000:220000"), "200000:220000");
  assert.throws(() => checkDiskQuota("diskinodes", "2G"), /inode counts/);
  assert.throws(() => checkDiskQuota("diskspace", "1;reboot"), /soft\[:hard\]/);
  assert.throws(() => checkDiskQuota("diskspace", "-5"), /soft\[:hard\]/);
  assert.throws(() => checkDiskQuota("diskspace", "9999999999999999999"), /exceeds/);
});
