import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the installed package (holds `config/`), whether running from `src/` or `dist/`. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
