/**
 * The release's env file, read by Compose (`--env-file`) for variable interpolation. Compose v2
 * expands `$VAR` inside unquoted and double-quoted values, so anything beyond plain characters is
 * single-quoted: both flavors read single-quoted values literally.
 */
import { InputError } from '../action/inputs.js';

const PLAIN = /^[A-Za-z0-9_./:@%+=,-]*$/;

export function renderEnvFile(env: Record<string, string>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (PLAIN.test(value)) lines.push(`${name}=${value}`);
    else if (!value.includes("'")) lines.push(`${name}='${value}'`);
    else
      throw new InputError(
        'env',
        `${name}: a value holding both a single quote and other special characters cannot be written to a Compose env file; remove the quote or encode the value`,
      );
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
