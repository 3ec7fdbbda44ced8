/** The core releases tests again (deploy, rollback), on Compose v1 (`compose: v1`): the bench has both flavors. */
process.env.HANDOFF_E2E_COMPOSE = 'v1';
await import('../releases.test.js');
