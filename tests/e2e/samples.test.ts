/**
 * Every OpenNebula 2.2.1 sample that holds a VM template
 * (/work/shared/reference/samples/opennebula-2.2.1: VirtualMachinePoolTest_*.xml,
 * VirtualMachineXMLTest_*.xml, oca_ruby_fixture_vm.xml, the constructed deployment file and
 * `onevm show -x`) fed to DEPLOY over the ssh test bed exactly as oned would: its VMID decides
 * R, the TM's images are placed in R first, and the bytes go to `deploy R/deployment.0` on
 * stdin. Invalid ones must fail with one clear line (the messages tests/unit/spec.test.ts
 * asserts) and leave the node exactly as it was (no vzctl call, no file written); documents
 * that are not a single VM (VM_POOL, HOST, HOST_POOL) are refused the same way. The valid
 * ones go through deploy → poll → save → poll → restore → migrate → poll → shutdown.
 * One bed (cn1, cn2, UBC) for the whole file; each test cleans up after itself.
 */
import assert from "node:assert/strict";
import {
  argvs,
  type Bed,
  calls,
  cleanupVm,
  ctStatus,
  epilog,
  exists,
  imagesDir,
  local,
  newCalls,
  pollValues,
  prolog,
  SAMPLES,
  show,
  snapshot,
  startE2eBed,
  TEST_OPTS,
  tmDelete,
  vmmSsh,
} from "./helpers.ts";

type Expect =
  | { reject: string | RegExp }
  | { cycle: { ctid: number; contextDisk: number; swapDisk?: number } };

interface Case {
  file: string;
  vid: number;
  /** DISK_IDs of the disks the TM would have placed in R (OS image first). */
  disks: number[];
  expect: Expect;
}

const NO_DISK =
  "DISK: OpenVZ containers need one OS disk (DISK = [ IMAGE = … ] or [ SOURCE = … ]): none found";
const TWO_OS = "DISK: OpenVZ containers take one OS disk: DISK 0 and DISK 1 are both OS disks";
const VENET_NO_IP =
  "NIC 0: a venet NIC needs IP (use MODEL = veth for a bridged device without one)";
const NOT_VM = (root: string) =>
  new RegExp(`root element is <${root}>, expected <TEMPLATE> or <VM>`);

const CASES: Case[] = [
  { file: "VirtualMachinePoolTest_00.xml", vid: 0, disks: [], expect: { reject: NO_DISK } },
  { file: "VirtualMachinePoolTest_01.xml", vid: 1, disks: [], expect: { reject: NO_DISK } },
  { file: "VirtualMachinePoolTest_02.xml", vid: 0, disks: [], expect: { reject: NO_DISK } },
  {
    file: "VirtualMachinePoolTest_03.xml",
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("VM_POOL") },
  },
  {
    file: "VirtualMachinePoolTest_04.xml",
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("VM_POOL") },
  },
  {
    file: "VirtualMachinePoolTest_05.xml",
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("VM_POOL") },
  },
  { file: "VirtualMachineXMLTest_00.xml", vid: 0, disks: [0, 1], expect: { reject: TWO_OS } },
  { file: "VirtualMachineXMLTest_01.xml", vid: 1, disks: [0, 1], expect: { reject: TWO_OS } },
  { file: "VirtualMachineXMLTest_02.xml", vid: 2, disks: [0, 1], expect: { reject: TWO_OS } },
  {
    file: "VirtualMachineXMLTest_03.xml",
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("VM_POOL") },
  },
  ...[4, 5, 6, 7].map((n) => ({
    file: `VirtualMachineXMLTest_0${n}.xml`,
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("HOST") },
  })),
  {
    file: "VirtualMachineXMLTest_08.xml",
    vid: 0,
    disks: [],
    expect: { reject: NOT_VM("HOST_POOL") },
  },
  { file: "oca_ruby_fixture_vm.xml", vid: 6, disks: [0, 1], expect: { reject: VENET_NO_IP } },
  {
    file: "constructed_2.2.1_xml_deployment.0",
    vid: 7,
    disks: [0, 1],
    expect: { cycle: { ctid: 1007, contextDisk: 2, swapDisk: 1 } },
  },
  {
    file: "constructed_2.2.1_onevm_show_x.xml",
    vid: 7,
    disks: [0, 1],
    expect: { cycle: { ctid: 1007, contextDisk: 2, swapDisk: 1 } },
  },
];

const CONTEXT_SH = await Deno.readTextFile(`${SAMPLES}/constructed_2.2.1_context.sh`);
const INIT_SH = "#!/bin/sh\necho context init ran > /tmp/init.log\n";

/** The TM prolog for a case: OS image (real tarball) at its first disk, other disks as files. */
async function tmProlog(bed: Bed, node: string, c: Case, context?: number) {
  const [os, ...rest] = c.disks;
  await prolog(bed, node, c.vid, {
    osDiskId: os,
    context: context === undefined
      ? undefined
      : { diskId: context, files: { "context.sh": CONTEXT_SH, "init.sh": INIT_SH } },
  });
  for (const d of rest) {
    // A swap image as tm_mkswap makes it (contents do not matter to a container).
    await Deno.writeFile(
      local(bed, node, `${imagesDir(bed, c.vid)}/disk.${d}`),
      new Uint8Array(4096),
    );
  }
}

function deploy(bed: Bed, node: string, c: Case, bytes: Uint8Array) {
  return vmmSsh(
    bed,
    node,
    "deploy",
    [`${imagesDir(bed, c.vid)}/deployment.0`],
    bytes,
    { vid: c.vid },
  );
}

async function rejected(bed: Bed, c: Case, bytes: Uint8Array, message: string | RegExp) {
  await tmProlog(bed, "cn1", c);
  const before = snapshot(bed, "cn1");
  const nCalls = (await calls(bed, "cn1")).length;
  const r = await deploy(bed, "cn1", c, bytes);
  assert.equal(r.result, "FAILURE", show(r));
  assert.equal(r.code, 3, `invalid input exits 3: ${show(r)}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 2, `one message line, then ExitCode: ${show(r)}`);
  assert.equal(lines[1], "ExitCode: 3");
  if (typeof message === "string") {
    assert.ok(r.info.endsWith(message), `FAILURE info ends with the expected message: ${show(r)}`);
  } else assert.match(r.info, message, show(r));
  assert.deepEqual(snapshot(bed, "cn1"), before, "the node is untouched");
  assert.deepEqual(
    (await newCalls(bed, "cn1", nCalls)).filter((x) => x.tool !== "ovzsim"),
    [],
    "no OpenVZ tool was run",
  );
  await tmDelete(bed, "cn1", c.vid);
}

async function poll(bed: Bed, node: string, c: Case, ctid: number) {
  const r = await vmmSsh(bed, node, "poll", [String(ctid)], undefined, { vid: c.vid });
  assert.equal(r.result, "SUCCESS", show(r));
  return pollValues(r.info);
}

function assertActive(v: Record<string, string>) {
  assert.equal(v.STATE, "a", JSON.stringify(v));
  for (const k of ["USEDMEMORY", "USEDCPU", "NETRX", "NETTX"]) {
    assert.match(v[k] ?? "", /^\d+$/, `${k} in ${JSON.stringify(v)}`);
  }
}

async function fullCycle(
  bed: Bed,
  c: Case,
  bytes: Uint8Array,
  e: { ctid: number; contextDisk: number; swapDisk?: number },
) {
  const R = imagesDir(bed, c.vid);
  const ctid = String(e.ctid);
  await tmProlog(bed, "cn1", c, e.contextDisk);
  const osImage = await Deno.readFile(local(bed, "cn1", `${R}/disk.${c.disks[0]}`));

  const c0 = (await calls(bed, "cn1")).length;
  const dep = await deploy(bed, "cn1", c, bytes);
  assert.equal(dep.reply, `DEPLOY SUCCESS ${c.vid} ${ctid}`, show(dep));
  assert.equal(
    await Deno.readTextFile(local(bed, "cn1", `${R}/deployment.0`)),
    new TextDecoder().decode(bytes),
    "R/deployment.0 holds the bytes oned sent",
  );
  assert.deepEqual(
    argvs(await newCalls(bed, "cn1", c0), "vzctl").map((a) => a[0]).filter((a) => a !== "status"),
    ["--version", "create", "set", "start"],
  );
  assert.match(await ctStatus(bed, "cn1", e.ctid), /exist mounted running/);
  assert.ok(exists(bed, "cn1", `${R}/private/mnt/context.sh`), "context files in /mnt");
  assertActive(await poll(bed, "cn1", c, e.ctid));

  const checkpoint = `${R}/checkpoint`;
  const save = await vmmSsh(bed, "cn1", "save", [ctid, checkpoint], undefined, { vid: c.vid });
  assert.equal(save.result, "SUCCESS", show(save));
  assert.equal((await poll(bed, "cn1", c, e.ctid)).STATE, "p");

  const rest = await vmmSsh(bed, "cn1", "restore", [checkpoint], undefined, { vid: c.vid });
  assert.equal(rest.result, "SUCCESS", show(rest));
  assert.ok(exists(bed, "cn1", checkpoint), "the checkpoint is kept");
  assertActive(await poll(bed, "cn1", c, e.ctid));

  const c1 = (await calls(bed, "cn1")).length;
  const mig = await vmmSsh(bed, "cn1", "migrate", [ctid, "cn2"], undefined, { vid: c.vid });
  assert.equal(mig.result, "SUCCESS", show(mig));
  assert.deepEqual(argvs(await newCalls(bed, "cn1", c1), "vzmigrate"), [[
    "--online",
    "cn2",
    ctid,
  ]]);
  assert.match(await ctStatus(bed, "cn2", e.ctid), /exist mounted running/);
  assert.match(await ctStatus(bed, "cn1", e.ctid), /deleted/);
  assert.ok(!exists(bed, "cn1", R), "R left cn1");
  for (const d of [...c.disks, e.contextDisk]) {
    assert.ok(exists(bed, "cn2", `${R}/disk.${d}`), `cn2 has R/disk.${d}`);
  }
  assertActive(await poll(bed, "cn2", c, e.ctid));

  const shut = await vmmSsh(bed, "cn2", "shutdown", [ctid], undefined, { vid: c.vid });
  assert.equal(shut.result, "SUCCESS", show(shut));
  assert.match(await ctStatus(bed, "cn2", e.ctid), /exist unmounted down/);
  // SAVE=NO: the OS image is left as the TM placed it (no archive written).
  assert.deepEqual(await Deno.readFile(local(bed, "cn2", `${R}/disk.${c.disks[0]}`)), osImage);
  assert.equal((await poll(bed, "cn2", c, e.ctid)).STATE, "d");
  // The epilog (no disk saved): DELETE destroys the container and removes R.
  const ep = await epilog(bed.env, "cn2", c.vid, R);
  assert.equal(ep.result, "SUCCESS", ep.reply);
  assert.match(await ctStatus(bed, "cn2", e.ctid), /deleted/);
  assert.ok(!exists(bed, "cn2", R));
}

let bed: Bed | undefined;
const getBed = async () => bed ??= await startE2eBed("ubc");

for (const c of CASES) {
  const what = "reject" in c.expect
    ? `refused: ${String(c.expect.reject).slice(0, 60)}`
    : "deploy → poll → save → restore → migrate → shutdown";
  Deno.test({
    name: `e2e sample ${c.file}: ${what}`,
    ...TEST_OPTS,
    fn: async () => {
      const b = await getBed();
      const bytes = await Deno.readFile(`${SAMPLES}/${c.file}`);
      try {
        if ("reject" in c.expect) await rejected(b, c, bytes, c.expect.reject);
        else await fullCycle(b, c, bytes, c.expect.cycle);
      } finally {
        await cleanupVm(b, c.vid, c.vid + 1000);
      }
    },
  });
}

Deno.test({
  name: "e2e samples: every sample holding a VM template is in the table",
  ...TEST_OPTS,
  fn: () => {
    const files = [...Deno.readDirSync(SAMPLES)].map((e) => e.name).filter((f) =>
      /^(VirtualMachinePoolTest_|VirtualMachineXMLTest_)/.test(f) ||
      f === "oca_ruby_fixture_vm.xml" || /^constructed_2\.2\.1_(xml_deployment|onevm_show)/.test(f)
    ).sort();
    assert.deepEqual(CASES.map((c) => c.file).sort(), files);
  },
});

Deno.test({
  name: "e2e samples: stop the bed",
  ...TEST_OPTS,
  fn: async () => {
    await bed?.stop();
    bed = undefined;
  },
});
