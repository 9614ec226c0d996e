import { statSync } from 'node:fs';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readConfigFile } from '../config/load.ts';
import { answerForServe } from './config-check.ts';
import type { CheckAnswer } from './serve-config.ts';

// The process `keygate serve` starts to check its configuration (server/serve-config.ts): it reads and checks
// the configuration and the route policy file as `config check` does, sends the result to serve over the IPC
// channel, and exits. zod, yaml and the schema are loaded here and never in the process that serves.
//
// serve kills this process when it stops in an orderly way, but a SIGKILLed serve cannot, and a check blocked in
// a read that never ends (a FIFO nobody writes) would then outlive it. So the process ends when its IPC channel
// closes, which it does when serve is gone; it kills itself outright, since process.exit() would wait for the
// thread blocked in that read, for ever. The channel closes in normal use too, when this process disconnects once
// serve has its answer: the watch is dropped before the answer is sent.
//
// For the watch to run, this thread must never block. A regular file's read ends, so the check reads those here;
// when it names any other kind of file (a FIFO, a device, a process substitution's pipe) it does not read it here
// (reading a pipe would consume it) and the whole check runs again in a worker thread
// (server/config-check-worker.ts), which may block. A worker costs about 60 ms of start-up, so only that case
// pays it.

const orphaned = (): void => {
  process.kill(process.pid, 'SIGKILL');
};
process.once('disconnect', orphaned);

function send(answer: CheckAnswer): void {
  process.off('disconnect', orphaned);
  process.send!(answer, () => {
    if (process.connected) process.disconnect();
  });
}

let unread = false;
const answer = answerForServe((file) => {
  if (statSync(file).isFile()) return readConfigFile(file);
  unread = true;
  return '';
});
if (!unread) send(answer);
else new Worker(new URL(`./config-check-worker${extname(import.meta.url)}`, import.meta.url)).once('message', send);
