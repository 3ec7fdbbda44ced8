/** Every proxy driver, in auto selection order (HAProxy, the default proxy, first; then Caddy, then nginx). */
import type { ProxyDriver } from './driver.js';
import { caddyDriver } from './caddy/driver.js';
import { haproxyDriver } from './haproxy/driver.js';
import { nginxDriver } from './nginx/driver.js';

export const DRIVERS: readonly ProxyDriver[] = [haproxyDriver, caddyDriver, nginxDriver];
