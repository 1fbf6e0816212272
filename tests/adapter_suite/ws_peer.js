// A SIP-over-WSS peer built on Node's `ws` package, driven by tests/adapter_suite/test_node_ws.py.
// Usage: node ws_peer.js client <url> <ca.pem> <message> <count>
//        node ws_peer.js server <cert+key.pem> <reply>      (prints "port N", then serves)
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocket, WebSocketServer } = require('ws');

const [mode, ...args] = process.argv.slice(2);

if (mode === 'client') {
  const [url, ca, message, count] = args;
  const ws = new WebSocket(url, 'sip', { ca: fs.readFileSync(ca), origin: 'https://app.example.com' });
  let got = 0;
  ws.on('open', () => {
    if (ws.protocol !== 'sip') { console.log('bad subprotocol ' + ws.protocol); process.exit(2); }
    for (let i = 0; i < Number(count); i++) ws.send(message);
  });
  ws.on('message', (data, isBinary) => {
    got += 1;
    console.log('reply ' + (isBinary ? 'binary ' : 'text ') + JSON.stringify(data.toString()));
    if (got === Number(count)) ws.close(1000, 'done');
  });
  ws.on('close', (code) => { console.log('closed ' + code); process.exit(0); });
  ws.on('error', (err) => { console.log('error ' + err.message); process.exit(1); });
} else if (mode === 'server') {
  const [pem, reply] = args;
  const pemText = fs.readFileSync(pem);
  const server = https.createServer({ cert: pemText, key: pemText });
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      console.log('got ' + (isBinary ? 'binary ' : 'text ') + JSON.stringify(data.toString()));
      ws.send(reply);
    });
    ws.on('close', (code) => console.log('closed ' + code));
  });
  server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
} else {
  console.log('usage: ws_peer.js client|server ...');
  process.exit(2);
}
