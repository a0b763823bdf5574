// batch.mjs MANIFEST runs every case of a JSON manifest in this one process
// (starting Node per case would dominate the test time) and prints
// {"results": {name: result}} as JSON. Cases never throw: a failure is
// reported as {"error": ...} for the Go test to judge.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { certs, connect, errorInfo, server } from './lib.mjs';

const ops = {
  // verify checks each link of chain (leaf first) against the next, and the
  // last against ca: issuer/AKI match (checkIssued) and signature (verify).
  verify({ chain, ca }) {
    const path = [...certs(chain), ...certs(ca)];
    const links = [];
    for (let i = 0; i + 1 < path.length; i++) {
      const [child, parent] = [path[i], path[i + 1]];
      links.push({
        subject: child.subject,
        checkIssued: child.checkIssued(parent),
        verify: child.verify(parent.publicKey),
      });
    }
    return {
      keyType: path[0].publicKey.asymmetricKeyType,
      caKeyType: path.at(-1).publicKey.asymmetricKeyType,
      links,
    };
  },

  // describe is what OpenSSL reads of a certificate's names and extensions, to compare
  // certificates issued for the same request by different paths.
  describe({ cert }) {
    const [c] = certs(cert);
    return {
      subject: c.subject ?? null,
      issuer: c.issuer,
      subjectAltName: c.subjectAltName ?? null,
      extKeyUsage: c.keyUsage ?? null,
      ca: c.ca,
      infoAccess: c.infoAccess ?? null,
      keyType: c.publicKey.asymmetricKeyType,
    };
  },

  // mtls handshakes a Node client with a Node server over 127.0.0.1.
  async mtls({ server: serverCreds, client, servername, message }) {
    const serverErrors = [];
    const srv = await server('server', serverCreds, (e) => serverErrors.push(e));
    const res = await connect({ port: srv.address().port, creds: client, servername, message });
    // The server reports a rejected client when its side of the connection
    // closes, which can be after the client has seen the end.
    await new Promise((r) => srv.close(r));
    await new Promise((r) => setImmediate(r));
    return { ...res, serverErrors };
  },

  // connect is a Node client against a server run by the Go test.
  connect: (c) => connect({ ...c, creds: c.client }),

  // keygen writes a new key pair as PKCS#8 and SPKI PEM.
  keygen({ type, key, pub }) {
    const kp = generateKeyPairSync(type);
    writeFileSync(key, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(pub, kp.publicKey.export({ type: 'spki', format: 'pem' }));
    return { keyType: kp.privateKey.asymmetricKeyType };
  },

  // sign signs data (base64) with a PEM private key, pure ML-DSA with an
  // empty context, and returns the public key OpenSSL derived from it.
  sign({ key, data }) {
    const k = createPrivateKey(readFileSync(key));
    return {
      keyType: k.asymmetricKeyType,
      signature: sign(null, Buffer.from(data, 'base64'), k).toString('base64'),
      spki: createPublicKey(k).export({ type: 'spki', format: 'der' }).toString('base64'),
    };
  },

  // verifySignature checks a signature with the first certificate's key.
  verifySignature({ cert, data, signature }) {
    const [c] = certs(cert);
    return { ok: verify(null, Buffer.from(data, 'base64'), c.publicKey, Buffer.from(signature, 'base64')) };
  },
};

const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = {};
for (const c of manifest.cases) {
  try {
    results[c.name] = await ops[c.op](c);
  } catch (err) {
    results[c.name] = { error: errorInfo(err) };
  }
}
process.stdout.write(JSON.stringify({ results }));
