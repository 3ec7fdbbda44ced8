/**
 * Compose's own naming rules. Project and service names end up in container names, labels
 * and remote command lines, so they are checked before anything reaches the host.
 */
const PROJECT = /^[a-z0-9][a-z0-9_-]*$/;
// Compose accepts one-letter names (the spec: ^[a-zA-Z0-9._-]+$); a leading letter or digit keeps names shell- and DNS-friendly.
const SERVICE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateProjectName(name: string): string {
  if (!PROJECT.test(name)) {
    throw new Error(
      `invalid Compose project name ${JSON.stringify(name)}: use lowercase letters, digits, '_' and '-', ` +
        `starting with a letter or digit (Compose's rule), e.g. ${JSON.stringify(suggestProjectName(name) || 'myapp')}`,
    );
  }
  return name;
}

export function validateServiceName(name: string): string {
  if (!SERVICE.test(name)) {
    throw new Error(
      `invalid Compose service name ${JSON.stringify(name)}: use letters, digits, ` +
        `'_', '.' and '-', starting with a letter or digit (Compose's rule)`,
    );
  }
  return name;
}

export function isValidProjectName(name: string): boolean {
  return PROJECT.test(name);
}

export function isValidServiceName(name: string): boolean {
  return SERVICE.test(name);
}

/** What Compose itself would derive from a directory name: lowercased, other characters dropped. */
function suggestProjectName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}

/** A project name for a repository (its last path part), the way Compose derives one from a directory. */
export function projectNameFromRepository(repository: string | undefined): string {
  const name = (repository ?? '').split('/').pop() ?? '';
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^[^a-z0-9]+/, '');
}
