// demo-check.mjs MANIFEST RESULTS prints what interop/testdata/batch.mjs found for the demo's cases
// (MANIFEST) in RESULTS, and exits 1 unless every chain verified link by link and every mutual-TLS
// handshake succeeded. Both demos use it.
import { readFileSync } from 'node:fs';

const { cases } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { results } = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const subject = (l) => (l.subject ?? '').replace(/\n/g, ',') || '(SANs only)';
let ok = true;
for (const { name, op } of cases) {
  const r = results[name];
  let good;
  if (op === 'verify') {
    good = !r.error && r.links?.length > 0 && r.links.every((l) => l.checkIssued && l.verify);
    console.log(`${name}: ${r.keyType} leaf -> ${r.caKeyType} root: ` +
      (good ? r.links.map(subject).join(' -> ') + ', every link verifies' : JSON.stringify(r)));
  } else {
    good = !r.error && r.authorized && r.protocol === 'TLSv1.3' && r.reply.includes('authorized=true');
    // SPIFFE peers are authorized by ID: the client saw the server's, the server the client's.
    const { expectServerID, expectClientID } = cases.find((c) => c.name === name);
    if (expectServerID) good &&= r.peerCN.split(', ').includes(`URI:${expectServerID}`);
    if (expectClientID) good &&= r.reply.includes(`URI:${expectClientID}`);
    console.log(`${name}: ${r.protocol}, client trusts server: ${r.authorized}, server is ${r.peerCN || '?'}; server replied: ${r.reply.trim() || JSON.stringify(r)}`);
  }
  ok &&= good;
}
if (!ok) {
  console.error('DEMO FAILED');
  process.exit(1);
}
