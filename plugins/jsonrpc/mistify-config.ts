/**
 * mistify-agent's config file, loaded as is. Its shape:
 *
 *   { "services": { NAME: { "port", "path"?, "max_pending"? } },
 *     "actions":  { ACTION: { "stages": [ { "service", "method", "args"? } ] } },
 *     "dbpath":   "/path/to/agent.db" }
 *
 * becomes a hyperkern config: each service one instance of the `jsonrpc`
 * plugin with the service's name as its id, each stage the stage named
 * `SERVICE.Method` of that instance, and each action's stages its job
 * (mistify ran every stage of a lifecycle action in the job; there were no
 * synchronous checks, so none are added). `dbpath` names the Go agent's
 * database file; hyperkern keeps a directory, `DBPATH.d`, beside it, so the
 * two never touch. Other top-level keys (listen, jobs, auth...) pass through
 * to hyperkern's own schema. docs/jsonrpc.md describes the mapping. The
 * manifest contributes this as its `configDialect`.
 */
import { ConfigRejection, type ConfigDialect, type StageKind } from '../../core/contract/index.js';

type Raw = Record<string, unknown>;

const isMap = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);

export const translateMistifyConfig: ConfigDialect = (raw, { file, stageKindOf, isUnroutedAction }) => {
  // A hyperkern config never has "services" or "dbpath"; one with "plugins" is left to hyperkern's schema.
  if ((!('services' in raw) && !('dbpath' in raw)) || 'plugins' in raw) return undefined;
  const { services = {}, actions = {}, dbpath, ...rest } = raw;
  const where = `${file} (mistify-agent format)`;
  if (!isMap(services)) throw new ConfigRejection(`${where}: "services" must be an object of name -> {port, path, max_pending}`);
  if (!isMap(actions)) throw new ConfigRejection(`${where}: "actions" must be an object of name -> {stages: [...]}`);

  const methods = new Map<string, Record<string, StageKind>>(Object.keys(services).map((name) => [name, {}]));
  const translatedActions: Raw = {};
  for (const [name, action] of Object.entries(actions)) {
    if (!isMap(action) || (action.stages !== undefined && !Array.isArray(action.stages))) {
      throw new ConfigRejection(`${where}: actions.${name} must be {"stages": [{"service", "method", "args"}]}`);
    }
    const kind = stageKindOf(name);
    const unrouted = isUnroutedAction(name);
    const stages = ((action.stages as unknown[] | undefined) ?? []).map((stage, i) => {
      const at = `actions.${name}.stages[${i}]`;
      if (!isMap(stage)) throw new ConfigRejection(`${where}: ${at} must be {"service", "method", "args"}`);
      const { service, method, args } = stage;
      if (typeof method !== 'string' || method === '') throw new ConfigRejection(`${where}: ${at}: method cannot be empty`);
      if (typeof service !== 'string' || service === '') throw new ConfigRejection(`${where}: ${at}: service cannot be empty`);
      const offered = methods.get(service);
      if (!offered) throw new ConfigRejection(`${where}: ${at} names service "${service}", which "services" does not define (defined: ${Object.keys(services).join(', ') || 'none'})`);
      if (args !== undefined && !isMap(args)) throw new ConfigRejection(`${where}: ${at}: args must be an object of strings`);
      // Actions hyperkern has no route for are skipped by the planner; their methods become no stages.
      if (!unrouted) {
        if (offered[method] && offered[method] !== kind) {
          throw new ConfigRejection(`${where}: ${at}: ${service} ${method} is used both as a ${offered[method]} and a ${kind} method; give each its own service entry`);
        }
        offered[method] = kind;
      }
      return { stage: `${service}.${method}`, args: args ?? {} };
    });
    translatedActions[name] = { stages };
  }

  const plugins = Object.entries(services).map(([name, service]) => {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) {
      throw new ConfigRejection(`${where}: service name "${name}" must start with a letter and hold only letters, digits, "_" and "-" (it becomes a plugin id)`);
    }
    if (!isMap(service) || typeof service.port !== 'number' || service.port <= 0) throw new ConfigRejection(`${where}: service ${name} has no port`);
    const { port, path, max_pending, ...unknown } = service;
    if (Object.keys(unknown).length) throw new ConfigRejection(`${where}: services.${name} has unknown key(s) ${Object.keys(unknown).join(', ')}; a service has port, path and max_pending`);
    return { module: 'jsonrpc', id: name, options: { port, path: path ?? '', max_pending: max_pending ?? 0, methods: methods.get(name) } };
  });

  const out: Raw = { ...rest, plugins, actions: translatedActions };
  if (dbpath !== undefined) {
    if (typeof dbpath !== 'string' || dbpath === '') throw new ConfigRejection(`${where}: dbpath must be a file path`);
    out.dataDir ??= `${dbpath}.d`;
  }
  return out;
};
