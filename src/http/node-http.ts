// node:http's values, taken from the module object rather than by an ES import. An ES import of a built-in
// module copies every export into the importing namespace, and three of node:http's exports (WebSocket,
// CloseEvent, MessageEvent) are getters that load Node's bundled undici the first time they are read: its fetch,
// web streams and WebSocket client, 1.1 MB of an idle keygate's heap (2.4 MB in a bare process) that keygate
// never uses (bench/README.md, "Memory"). `import type` from 'node:http' stays as it is: types load nothing.
const http = process.getBuiltinModule('node:http');

export const { createServer, METHODS, STATUS_CODES } = http;
