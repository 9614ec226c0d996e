export { loadConfig, ConfigError } from './config/load.ts';
export type { Config } from './config/schema.ts';
export { startKeygate, type Keygate } from './server/app.ts';
export { verifySignature } from './decision/signature.ts';
