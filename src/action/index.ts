import './esm-shims.js';
import { run } from './main.js';

await run();
