// Helpers shared by batch.mjs and serve.mjs. Everything runs on Node's
// built-in crypto and tls modules, i.e. on the OpenSSL that Node links.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

// certs splits a PEM file into X509Certificates (X509Certificate alone
// parses only the first block).
export function certs(path) {
  const pem = readFileSync(path, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

// tlsOptions is one endpoint's credentials: its chain, its key and the CA it
// trusts for the peer. TLS 1.3 only, since ML-DSA is not defined for 1.2.
export function tlsOptions({ chain, key, ca }) {
  return {
    cert: readFileSync(chain),
    key: readFileSync(key),
    ca: readFileSync(ca),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

// peerCN names the peer by its common name, or by its SANs when it has none
// (cert-manager leaves the subject of SAN-only certificates empty).
export function peerCN(socket) {
  const peer = socket.getPeerX509Certificate();
  if (!peer) return '';
  return peer.subject?.match(/^CN=(.*)$/m)?.[1] ?? peer.subjectAltName ?? '';
}

export function errorInfo(err) {
  return err ? { message: err.message, code: err.code ?? '' } : null;
}

// server listens on an ephemeral 127.0.0.1 port for mutually authenticated
// clients and answers each line with a greeting naming the client, which
// shows the client certificate was seen and accepted. onError receives
// handshakes the server rejected. Node rejects an unverified client by
// closing the connection (no alert, and the error is a bare "socket hang
// up"), so the verification result is taken from the socket.
export function server(name, creds, onError) {
  const srv = tls.createServer({ ...tlsOptions(creds), requestCert: true, rejectUnauthorized: true });
  srv.on('secureConnection', (socket) => {
    const cn = peerCN(socket);
    socket.setEncoding('utf8');
    socket.once('data', (line) => socket.end(`node ${name} to ${cn} (authorized=${socket.authorized}): ${line.trim()}\n`));
    socket.on('error', () => {}); // the client's verdict is reported by the client
  });
  srv.on('tlsClientError', (err, socket) => onError({ ...errorInfo(err), authorizationError: socket?.authorizationError ?? '' }));
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

// connect runs one client exchange and reports everything observed, never
// throwing: a failed handshake is a result the Go test asserts on.
export function connect({ port, creds, servername, message }) {
  return new Promise((resolve) => {
    const res = { authorized: false, protocol: '', peerCN: '', reply: '', error: null };
    const socket = tls.connect({ ...tlsOptions(creds), host: '127.0.0.1', port, servername });
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), 10_000);
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      res.authorized = socket.authorized;
      res.protocol = socket.getProtocol();
      res.peerCN = peerCN(socket);
      socket.write(message + '\n');
    });
    socket.on('data', (d) => { res.reply += d; });
    // Node can leave the connection open after a TLS alert; close it so
    // that the peer sees the end too.
    socket.on('error', (err) => { res.error ??= errorInfo(err); socket.destroy(); });
    socket.on('close', () => { clearTimeout(timer); resolve(res); });
  });
}
