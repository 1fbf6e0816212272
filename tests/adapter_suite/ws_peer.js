// A SIP-over-WSS peer built on Node's `ws` package, driven by tests/adapter_suite/test_node_ws.py.
// Usage: node ws_peer.js client <url> <ca.pem> <protocols> <origin>
//          offers the comma-separated <protocols> and sends <origin> ('' for none of either),
//          then obeys commands on stdin:
//          {"send": base64, "binary": bool} or {"close": code, "reason": text}; exits once closed
//        node ws_peer.js server <cert+key.pem> [deflate]
//          serves on 127.0.0.1, accepts only `sip` (and permessage-deflate with `deflate`),
//          echoes each message in kind, and closes
//          with 1000 "done" after echoing one that holds "X-Close-Me: now"
// Either way it prints one JSON event a line: listening, connection (server), open (client),
// message (data in base64), close, unexpected-response (client: a non-101 reply), error.
// It exits when stdin ends, so a test that dies leaves no node process behind.
'use strict';
const fs = require('fs');
const https = require('https');
const readline = require('readline');
const { WebSocket, WebSocketServer } = require('ws');

const CLOSE_ME = 'X-Close-Me: now';
const emit = (event, then) => process.stdout.write(JSON.stringify(event) + '\n', then);
// Exit only once the last event is written: a pipe takes 64 KiB at once, a 60 KB message more.
const emitAndExit = (event) => emit(event, () => process.exit(0));
const [mode, ...args] = process.argv.slice(2);

process.stdin.on('end', () => process.exit(0));

function report(ws, log) {
  ws.on('message', (data, isBinary) =>
    emit({ event: 'message', binary: isBinary, data: data.toString('base64') }));
  ws.on('close', (code, reason) => log({ event: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => log({ event: 'error', message: err.message }));
}

if (mode === 'client') {
  const [url, ca, protocols, origin] = args;
  const ws = new WebSocket(url, protocols ? protocols.split(',') : [], { ca: fs.readFileSync(ca), origin });
  report(ws, emitAndExit);
  ws.on('open', () => emit({ event: 'open', protocol: ws.protocol, extensions: ws.extensions }));
  ws.on('unexpected-response', (req, res) =>
    emitAndExit({ event: 'unexpected-response', status: res.statusCode }));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line);
    if ('send' in command) ws.send(Buffer.from(command.send, 'base64'), { binary: command.binary });
    else ws.close(command.close, command.reason);
  });
} else if (mode === 'server') {
  const pem = fs.readFileSync(args[0]);
  const server = https.createServer({ cert: pem, key: pem });
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
    perMessageDeflate: args[1] === 'deflate',
  });
  wss.on('connection', (ws, req) => {
    const { origin, 'sec-websocket-protocol': offered } = req.headers;
    emit({ event: 'connection', protocol: ws.protocol, offered, origin, extensions: ws.extensions });
    report(ws, emit);
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary });
      if (data.includes(CLOSE_ME)) ws.close(1000, 'done');
    });
  });
  server.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }));
  process.stdin.resume();
} else {
  console.log('usage: ws_peer.js client|server ...');
  process.exit(2);
}
