// Audits a GraphQL endpoint against the GraphQL-over-HTTP spec with graphql-http's auditServer,
// the checks the spec's own reference implementation is held to. TestGraphQLOverHTTPAudit
// (../graph/audit_test.go) serves the GraphQL handler and runs this script against it.
//
//   node graphql-http-audit.mjs http://localhost:8080/graphql
//
// Prints one line a check, "<result>\t<id>\t<name>", where result is ok, or what graphql-http calls
// a failure at the check's level: error (MUST), warn (SHOULD) or notice (MAY), followed then by a
// tab, the reason and the status the server answered with. Then one line a level,
// "<level> <passed>/<all>".
// Exits 1 if a MUST fails, 2 if the audit could not run at all (no URL, the server unreachable).

import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http-audit.mjs URL');
  process.exit(2);
}

let results;
try {
  results = await auditServer({ url });
} catch (err) {
  console.error(`the audit could not run against ${url}: ${err?.stack ?? err}`);
  process.exit(2);
}

const levels = { MUST: [0, 0], SHOULD: [0, 0], MAY: [0, 0] };
for (const r of results) {
  const level = r.name.split(' ', 1)[0];
  levels[level][1]++;
  let line = `${r.status}\t${r.id}\t${r.name}`;
  if (r.status === 'ok') {
    levels[level][0]++;
  } else {
    line += `\t${r.reason} (got ${r.response?.status})`;
  }
  console.log(line);
}
for (const [level, [passed, all]] of Object.entries(levels)) {
  console.log(`${level} ${passed}/${all}`);
}
process.exit(results.some((r) => r.status === 'error') ? 1 : 0);
