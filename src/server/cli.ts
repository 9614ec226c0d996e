#!/usr/bin/env node
// The `keygate` command. This file imports nothing statically, so that on a Node too old for keygate the first
// thing that runs is this check, and the answer is one line instead of a syntax or module error from deep inside
// a dependency (`engines` in package.json names the same floor; npm only warns about it).

const MINIMUM = [22, 15] as const;
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);

if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  process.stderr.write(`keygate: Node ${MINIMUM.join('.')} or newer is required (this is Node ${process.versions.node}); Node 24 LTS is recommended\n`);
  process.exit(1);
} else {
  void import('./cli-main.ts');
}
