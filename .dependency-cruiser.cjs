/* global module */
/**
 * The layering of src/, held by `npm run lint` (docs/architecture.md draws it and says why each folder sits
 * where it does). Every import points down; a module may import its own layer only inside its own folder.
 * An import that points up, or sideways between two folders of one layer, fails the lint with the rule's
 * name (`layer-<from>`) and the offending import.
 */

// The "instruments" of ops/ (logger, metrics, tracing and what they are built from) are read by every layer,
// so they sit just above config; the rest of ops/ (health, readiness, the probe routes) sits above the doors.
const instruments = '^src/ops/(logger|log-writer|metrics|hot-metrics|openmetrics|prom-client|tracing|tracing-sdk|decision-ring)\\.ts$';

/** Bottom up. Folders in one inner array share a layer and may not import each other. */
const layers = [
  [['keys', '^src/keys/']],
  [['http', '^src/http/']],
  [['config', '^src/config/']],
  [['instruments', instruments]],
  [['store', '^src/store/']],
  [['cache', '^src/cache/'], ['webhooks', '^src/webhooks/']],
  [['limits', '^src/limits/']],
  [['auth', '^src/auth/']],
  [['decision', '^src/decision/']],
  [['proxy', '^src/proxy/'], ['authz', '^src/authz/'], ['api', '^src/api/']],
  [['console', '^src/console/']],
  [['ops', '^src/ops/']],
  [['server', '^src/server/']],
  [['entry', '^src/(index|verify)\\.ts$']],
];

const pathOf = ([, path]) => path;

const forbidden = layers.flatMap((layer, rank) => {
  const above = layers.slice(rank + 1).flat().map(pathOf);
  return layer.flatMap(([name, path]) => {
    const sideways = layer.filter(([other]) => other !== name).map(pathOf);
    const from = name === 'ops' ? { path, pathNot: instruments } : { path };
    const to = [...above, ...sideways];
    if (to.length === 0) return [];
    return [{
      name: `layer-${name}`,
      comment: `${name} may import only the layers below it (docs/architecture.md, "Layers")`,
      severity: 'error',
      from,
      // Instruments are matched by the ops/ pattern too, so they are taken out of the forbidden targets
      // of every layer above them.
      to: rank < 3 ? { path: to } : { path: to, pathNot: instruments },
    }];
  });
});

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'concrete-stores-only-in-wiring',
      comment: 'above store/, code reads the KeyStore contract (store/types.ts) and its errors (store/errors.ts); only the server, which opens a store, names the concrete ones. The Redis store\'s parts (keys, lookup, usage, events, keyspace, scripts) are its own: only its connection (store/redis/connect.ts), which the Redis limiters and queues share, is read from above',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(store|server)/' },
      to: { path: '^src/store/(memory/memory-store\\.ts$|redis/)', pathNot: '^src/store/redis/connect\\.ts$' },
    },
    {
      name: 'client-stands-alone',
      comment: 'client/ is published on its own (keygate/client): it imports nothing else from src/',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/client/' },
    },
    {
      name: 'only-the-cli-imports-client',
      comment: 'the CLI (server/cli-*.ts) talks to a running keygate through the published client, as any caller would; the service itself never does',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(client/|server/cli-[a-z-]+\\.ts$)' },
      to: { path: '^src/client/' },
    },
    {
      name: 'no-circular',
      comment: 'a loop between modules makes the layering meaningless inside a folder too',
      severity: 'error',
      from: {},
      // tracing.ts loads the OpenTelemetry SDK lazily (only when tracing is on); the SDK names tracing.ts's
      // types, so that one loop runs through a dynamic import and is not a load-order loop.
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type that points up ties the layers as much as a value does.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
