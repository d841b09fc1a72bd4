/**
 * core/contract: everything a plugin may import from the kernel (the plugin
 * API, stage kinds, the lifecycle table, wire types, the backend kit), and
 * nothing else. Plugins import this module (or files inside this folder)
 * only; the kernel reaches plugins through `await import()` of the names in
 * the config.
 * May import: nothing else of core.
 */
export * from './plugin-api.js';
export * from './backend-kit/index.js';
