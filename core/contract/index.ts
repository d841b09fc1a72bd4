/**
 * core/contract: everything a plugin may import from the kernel, and nothing
 * else. Plugins import this module (or files inside this folder) only; the
 * kernel reaches plugins through `await import()` of the names in the config.
 */
export * from './plugin-api.js';
export * from './backend-kit/index.js';
