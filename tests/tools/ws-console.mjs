#!/usr/bin/env node
// A WebSocket client for the console tests that is not turtled's own code:
// the `ws` package (package.json devDependencies).  It prints what happens,
// one event a line, on stdout:
//   STATUS <code> <body>     the server refused the upgrade (then exit 0)
//   OPEN                     the 101 came
//   MATCH                    the output matched REGEX (type mode)
//   CLOSE <code> <reason>    the connection closed (then exit 0)
//   ERROR <message>          a transport error (exit 1)
//   TIMEOUT                  WS_TIMEOUT seconds passed (exit 1)
//
//   ws-console.mjs URL TOKEN status
//   ws-console.mjs URL TOKEN hold             stay open until the server closes
//   ws-console.mjs URL TOKEN type TEXT REGEX  send TEXT and a newline, wait for
//                                             REGEX in the output, close (1000)
// Every byte the server sends goes to the file WS_OUTPUT when it is set.
import { appendFileSync } from 'node:fs';
import WebSocket from 'ws';

const [url, token, mode, text, pattern] = process.argv.slice(2);
if (!url || !mode) {
  console.error('usage: ws-console.mjs URL TOKEN status|hold|type TEXT REGEX');
  process.exit(2);
}
const timeout = Number(process.env.WS_TIMEOUT || 60) * 1000;
const output = process.env.WS_OUTPUT;
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const ws = new WebSocket(url, { headers, perMessageDeflate: false });
let seen = '';
let matched = false;

const timer = setTimeout(() => {
  console.log('TIMEOUT');
  process.exit(1);
}, timeout);

ws.on('unexpected-response', (req, res) => {
  let body = '';
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => {
    console.log(`STATUS ${res.statusCode} ${body.replace(/\s+/g, ' ')}`);
    clearTimeout(timer);
    process.exit(0);
  });
});
ws.on('open', () => {
  console.log('OPEN');
  if (mode === 'type') ws.send(Buffer.from(`${text}\n`));
});
ws.on('message', (data) => {
  if (output) appendFileSync(output, data);
  if (mode !== 'type' || matched) return;
  // Only what follows the input counts: the scrollback may hold old output.
  seen += data.toString('latin1');
  if (new RegExp(pattern).test(seen)) {
    matched = true;
    console.log('MATCH');
    ws.close(1000, 'done');
  }
});
ws.on('close', (code, reason) => {
  console.log(`CLOSE ${code} ${reason.toString()}`);
  clearTimeout(timer);
  process.exit(mode === 'type' && !matched ? 1 : 0);
});
ws.on('error', (err) => {
  console.log(`ERROR ${err.message}`);
  clearTimeout(timer);
  process.exit(1);
});
