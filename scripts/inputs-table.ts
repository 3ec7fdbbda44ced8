/** Prints the README's inputs and outputs tables from action.yml, so the two never disagree. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const action = parse(readFileSync(new URL('../action.yml', import.meta.url), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string; required?: boolean }>;
  outputs: Record<string, { description: string }>;
};
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
console.log('| input | default | what it does |\n|---|---|---|');
for (const [name, i] of Object.entries(action.inputs)) {
  const def = i.required ? '**required**' : i.default ? `\`${cell(i.default)}\`` : '';
  console.log(`| \`${name}\` | ${def} | ${cell(i.description)} |`);
}
console.log('\n| output | meaning |\n|---|---|');
for (const [name, o] of Object.entries(action.outputs)) console.log(`| \`${name}\` | ${cell(o.description)} |`);
