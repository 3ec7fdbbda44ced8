/** HAProxy as a process: checking a config in a throwaway container (run by src/haproxy/reload.ts). */
import { shqAll } from './quote.js';

/** Where the image expects its config (the Docker Official Image's and handoff-test-haproxy's layout). */
export const CONFIG_DIR_IN_CONTAINER = '/usr/local/etc/haproxy';

/**
 * `docker run --rm -v <dir>:/usr/local/etc/haproxy:ro <image> haproxy -c -f .../<file>`, output
 * merged into stdout. The whole directory is mounted, as the proxy does, so files the config
 * includes (maps, certificates) are checked too. cfgFile is a file name inside hostConfigDir.
 */
export function checkConfigCommand(image: string, hostConfigDir: string, cfgFile: string): string {
  return (
    shqAll([
      'docker',
      'run',
      '--rm',
      '--network',
      'none',
      // The image's entrypoint may wrap haproxy; run the binary directly.
      '--entrypoint',
      'haproxy',
      '-v',
      `${hostConfigDir}:${CONFIG_DIR_IN_CONTAINER}:ro`,
      image,
      '-c',
      '-f',
      `${CONFIG_DIR_IN_CONTAINER}/${cfgFile}`,
    ]) + ' 2>&1'
  );
}
