/** Every proxy driver, in auto selection order (HAProxy, the default proxy, first). */
import type { ProxyDriver } from './driver.js';
import { haproxyDriver } from './haproxy/driver.js';

export const DRIVERS: readonly ProxyDriver[] = [haproxyDriver];
