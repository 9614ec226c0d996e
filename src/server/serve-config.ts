import { fork } from 'node:child_process';
import cluster from 'node:cluster';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PolicySpec } from '../auth/policy.ts';
import { ConfigError, EX_CONFIG, type ConfigProblem } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import type { TlsFiles } from '../config/tls-files.ts';

// `keygate serve` checks its configuration and route policy file in a short-lived child process and receives
// them as data: the checking loads zod, yaml and the configuration schema, which a process keeps for its whole
// life once they are loaded — with what compiling them left in its allocator, 7 to 8 MB of an idle keygate's
// RSS (bench/README.md, "Memory"). The check is the one `config check` runs (server/config-check.ts); it takes
// about 200 ms, during which serve loads its own modules. A worker of a group (server/workers.ts) asks the
// primary, which checked once for all of them.

export interface Checked {
  config: Config;
  policy: PolicySpec;
  /** The TLS files' contents as the check read and loaded them: serve never reads them again (config/tls-files.ts). */
  tls: TlsFiles;
}
export type CheckAnswer = Checked | { problems: ConfigProblem[] };

/** A worker's request for the group's checked configuration, and the primary's answer. */
export const CONFIGURATION = 'keygate:configuration';
type ConfigurationAnswer = { type: typeof CONFIGURATION; answer: CheckAnswer };

export function exitWith(problems: ConfigProblem[]): never {
  process.stderr.write(`keygate: ${new ConfigError(problems).message}\n`);
  process.exit(EX_CONFIG);
}

/** serve's configuration and policy, checked; exits 78 listing every problem when they are refused. */
export async function servedConfiguration(): Promise<Checked> {
  const answer = cluster.isWorker ? await fromPrimary() : await fromChecker();
  if ('problems' in answer) exitWith(answer.problems);
  return answer;
}

/** A check takes about 200 ms; one that has not answered in this long is reading a file that never ends. */
export const CHECK_TIMEOUT_MS = 20_000;

function fromChecker(): Promise<CheckAnswer> {
  const here = fileURLToPath(import.meta.url);
  // Without serve's node flags: an --inspect port, say, belongs to serve. The environment (KEYGATE_CONFIG and the
  // rest, NODE_OPTIONS too) and the working directory are serve's, so the check reads what serve would.
  const checker = fork(join(dirname(here), `config-checker${extname(here)}`), [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    // The checker holds nothing worth a graceful end, and may be blocked in a synchronous read (a FIFO): it is
    // killed outright once it has answered (a NODE_OPTIONS preload may keep its event loop alive), when it takes
    // too long, and when serve is told to stop during the check (it would otherwise outlive serve). A serve killed
    // outright cannot: the checker then ends itself (server/config-checker.ts).
    const end = () => {
      clearTimeout(timer);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      if (checker.exitCode === null && checker.signalCode === null) checker.kill('SIGKILL');
    };
    const onSignal = (signal: NodeJS.Signals) => {
      end();
      // The signal's usual end (exit 128 + its number), now that the checker is gone.
      process.kill(process.pid, signal);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    const timer = setTimeout(() => {
      end();
      const files = 'is a file it names (KEYGATE_CONFIG itself, policy.file, a tls.* or upstream.tls.* file) a FIFO or a device that never ends?';
      resolve({ problems: [{ path: '(check)', message: `the configuration check did not finish in ${CHECK_TIMEOUT_MS / 1000} s: ${files}` }] });
    }, CHECK_TIMEOUT_MS);
    checker.once('message', (message) => {
      end();
      resolve(message as CheckAnswer);
    });
    checker.once('error', (err) => {
      end();
      reject(err);
    });
    checker.once('exit', (code, signal) => {
      end();
      reject(new Error(`the configuration check ended (${signal ?? `exit code ${code}`}) without an answer`));
    });
  });
}

function fromPrimary(): Promise<CheckAnswer> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if ((message as { type?: unknown } | null)?.type !== CONFIGURATION) return;
      process.off('message', onMessage);
      resolve((message as ConfigurationAnswer).answer);
    };
    process.on('message', onMessage);
    process.send!({ type: CONFIGURATION });
  });
}

/** In the primary: a worker's request for the checked configuration, answered; false for any other message. */
export function answerConfiguration(message: unknown, checked: Checked, send: (answer: ConfigurationAnswer) => void): boolean {
  if ((message as { type?: unknown } | null)?.type !== CONFIGURATION) return false;
  send({ type: CONFIGURATION, answer: checked });
  return true;
}
