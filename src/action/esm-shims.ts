// ssh2's bundled poly1305 (emscripten) reads the CommonJS free variables __dirname and require,
// which an ESM bundle lacks. This module is imported first by each entry point.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const g = globalThis as Record<string, unknown>;
g.__filename ??= fileURLToPath(import.meta.url);
g.__dirname ??= dirname(fileURLToPath(import.meta.url));
g.require ??= createRequire(import.meta.url);
