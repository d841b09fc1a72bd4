/**
 * Reference server: bare node:http sending fixed bytes, the ceiling for a
 * Node process on this machine. GET /guests answers the exact bytes the
 * agent sent for its own GET /guests (read from a file).
 *
 * usage: node dist/bench/ref-http.js PORT BODY_FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, bodyFile] = process.argv.slice(2);
const body = readFileSync(bodyFile);
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) };

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/guests') {
    res.writeHead(200, headers);
    res.end(body);
  } else {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"message":"not found","code":404}');
  }
}).listen(Number(port), '127.0.0.1');

// Exit cleanly on SIGTERM (lets --cpu-prof write its profile).
process.on('SIGTERM', () => process.exit(0));
