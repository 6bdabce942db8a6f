// CONTEXT/FIREWALL grammar: what a template may give vzfirewall (src/one/firewall.ts).
import assert from "node:assert/strict";
import { firewallOpensSomething, parseFirewall } from "../../src/one/firewall.ts";

const ok = (text: string, allowCustom = false) => {
  const r = parseFirewall(text, { allowCustom });
  assert.ok(r.ok, r.ok ? "" : r.message);
  return r.rules;
};
const refused = (text: string, message: RegExp, allowCustom = false) => {
  const r = parseFirewall(text, { allowCustom });
  assert.ok(!r.ok, `accepted: ${JSON.stringify(text)}`);
  assert.match(r.message, message);
};

Deno.test("firewall: ports, ranges, protocols, IPv4 hosts and networks, comments", () => {
  assert.equal(
    ok(
      "\n   [*]\n   111.111.111.0/24   # office\n\n [ 22 ]\n 10.0.0.1\n[udp:53, 123]\n*\n" +
        "[tcp:1000:2000,8080]\n0.0.0.0/0 ; all\n[SCTP:9]\n192.168.0.0/16",
    ),
    "[*]\n111.111.111.0/24\n[22]\n10.0.0.1\n[udp:53,123]\n*\n[tcp:1000:2000,8080]\n0.0.0.0/0\n[SCTP:9]\n192.168.0.0/16",
  );
  assert.equal(ok("# only a comment"), "");
  assert.equal(firewallOpensSomething(ok("[22]")), false, "a section alone opens nothing");
  assert.equal(firewallOpensSomething(ok("[22]\n*")), true);
});

Deno.test("firewall: port sections iptables' multiport would refuse (the whole node's rules)", () => {
  refused("[65536]\n*", /line 1 \[65536\]: port "65536" is above 65535/);
  refused("[2000:1000]\n*", /range "2000:1000" ends below its start/);
  refused("[22-25]\n*", /"22-25" is not a port or a range \(N or N:M/);
  refused(
    `[${Array.from({ length: 16 }, (_, i) => 1000 + i).join(",")}]\n*`,
    /16 ports .* at most 15/,
  );
  refused("[1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16]\n*", /16 ports \(a range counts 2\)/);
  refused("[gre:1]\n*", /protocol "gre" is not one of tcp, udp, udplite, sctp, dccp/);
  refused("[udp:*]\n*", /would open every port of every protocol: write \[\*\]/);
  refused("[]\n*", /"" is not a port/);
});

Deno.test("firewall: sources other than *, IPv4 and IPv4/prefix are refused", () => {
  refused("[22]\nhost.example.org", /line 2: "host\.example\.org" is a host name/);
  refused("[22]\nlocalhost", /is a host name: vzfirewall resolves names on every run/);
  refused("[22]\n2001:db8::/32", /is IPv6: vzfirewall writes IPv4 rules only/);
  refused("[22]\n10.0.0.0/33", /the network prefix must be \/0 to \/32/);
  refused("[22]\n010.0.0.1", /not a source vzfirewall understands/);
  refused("[22]\n10.0.0.1 10.0.0.2", /not a source/);
  refused("[22]\n10.0.0.1/8/8", /not a source/);
  refused("[22]\n-j ACCEPT", /not a source/);
  refused('[22]\n1.2.3.4"', /must not contain '"'/);
});

Deno.test("firewall: [CUSTOM] only when the operator allows it, and still inert", () => {
  refused(
    "[CUSTOM]\n-A INPUT -j ACCEPT",
    /\[CUSTOM\]: .*FIREWALL_CUSTOM = "yes" \] in vmm_ssh_ovz\.conf/,
  );
  assert.equal(
    ok("[CUSTOM]\n-A INPUT -i eth2 -d $THIS -j ACCEPT\n[22]\n*", true),
    "[CUSTOM]\n-A INPUT -i eth2 -d $THIS -j ACCEPT\n[22]\n*",
  );
  refused(
    "[CUSTOM]\n-A INPUT -m comment --comment `id` -j ACCEPT",
    /custom lines may not contain/,
    true,
  );
  refused("[CUSTOM]\nIP_ADDRESS=1.2.3.4", /custom lines may not contain '='/, true);
  refused("[CUSTOM]\n-A INPUT -s ${X} -j ACCEPT", /'\$' \(other than \$THIS\)/, true);
  refused("[CUSTOM]\n-A INPUT \\\n-j ACCEPT", /custom lines may not contain/, true);
});
