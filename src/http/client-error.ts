import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { errorResponse } from './errors.ts';
import { STATUS_CODES } from './node-http.ts';

// node's parser refuses a request it cannot read (a method it does not know, such as a lower-case `delete`, a
// malformed field, a head too large) before any handler sees it, and by default answers a bare 400 with no body.
// keygate's listeners answer with the same JSON envelope as every other refusal instead.

/** A listener's 'clientError' handler: the envelope on a socket that can still take it, else the socket closed. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
  const res = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? errorResponse(randomUUID(), 'request_timeout', 'The request head did not arrive in time.', { headers: { Connection: 'close' } })
    : errorResponse(randomUUID(), 'malformed_request', err.code === 'HPE_INVALID_METHOD' ? 'The request method is not an upper-case HTTP method.' : 'The request could not be read as HTTP/1.1.', { headers: { Connection: 'close' } });
  const head = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status]}`, ...Object.entries(res.headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(`${head.join('\r\n')}\r\n\r\n${res.body}`);
}
