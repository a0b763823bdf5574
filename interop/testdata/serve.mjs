// serve.mjs MANIFEST starts one mutual-TLS server per entry of
// {"servers": [{name, chain, key, ca}]}, prints {"ports": {name: port}} as
// one line, serves until stdin closes, then prints {"errors": {name: [...]}}
// with the handshakes each server rejected.
import { readFileSync } from 'node:fs';
import { server } from './lib.mjs';

const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ports = {};
const errors = {};
const servers = [];
for (const s of manifest.servers) {
  errors[s.name] = [];
  const srv = await server(s.name, s, (e) => errors[s.name].push(e));
  ports[s.name] = srv.address().port;
  servers.push(srv);
}
process.stdout.write(JSON.stringify({ ports }) + '\n');

process.stdin.resume();
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({ errors }) + '\n');
  for (const srv of servers) srv.close();
  process.exit(0);
});
