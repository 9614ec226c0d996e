import { parentPort } from 'node:worker_threads';
import { answerForServe } from './config-check.ts';

// The configuration check (server/config-checker.ts) in a thread of its own, for a check that names a file that
// is not a regular one (a FIFO, a device, a pipe): reading it may never end, and the check process's main thread
// must stay free to notice that serve is gone. The answer goes to that thread, which sends it on to serve.

parentPort!.postMessage(answerForServe());
