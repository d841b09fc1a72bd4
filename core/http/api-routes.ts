/**
 * Every route of the API, in the order the document lists them: the route
 * files' declarations, each group given its part of the app's dependencies.
 * The router mounts exactly these (createRouter), the auth layer skips the
 * paths of those declared open (app.ts), and the OpenAPI document describes
 * exactly these (openapi/openapi-document.ts). A route file's routes are
 * served and documented once they are listed here.
 */
import { CONSOLE_ROUTES, type ConsoleRouteDeps } from './console-routes.js';
import { EVENT_ROUTES, type EventRouteDeps } from './event-routes.js';
import { FLEET_ROUTES, type FleetRouteDeps } from './fleet-routes.js';
import { GUEST_ACTION_ROUTES } from './guest-action-routes.js';
import { GUEST_JOB_ROUTES } from './guest-job-routes.js';
import { GUEST_METRICS_ROUTES } from './guest-metrics-routes.js';
import { GUEST_ROUTES, type GuestRouteDeps } from './guest-routes.js';
import { HOST_ROUTES, type HostRouteDeps } from './host-routes.js';
import { IMAGE_ROUTES, type ImageRouteDeps } from './image-routes.js';
import { IndexedRouter } from './indexed-router.js';
import { JOB_ROUTES } from './job-routes.js';
import { METRICS_ROUTES, type MetricsRouteDeps } from './metrics-routes.js';
import { MIGRATION_ROUTES, type MigrationRouteDeps } from './migration-routes.js';
import { REFERENCE_ROUTES } from './openapi/reference-routes.js';
import { withDeps, type MountableRoute } from './route.js';
import { SNAPSHOT_ROUTES, type SnapshotRouteDeps } from './snapshot-routes.js';
import { UI_ROUTES } from './ui-routes.js';
import { VNC_ROUTES, type VncRouteDeps } from './vnc-routes.js';

/** What the routes need, by group. */
export interface RouteDeps {
  guests: GuestRouteDeps;
  host: HostRouteDeps;
  events: EventRouteDeps;
  images: ImageRouteDeps;
  snapshots: SnapshotRouteDeps;
  metrics: MetricsRouteDeps;
  vnc: VncRouteDeps;
  consoles: ConsoleRouteDeps;
  migrations: MigrationRouteDeps;
  /** Optional: an agent without a fleet plugin answers GET /fleet/hosts with 501. */
  fleet?: FleetRouteDeps;
  /** The configured bearer tokens (the document served says whether routes need one). */
  tokens?: string[];
}

export const API_ROUTES: readonly MountableRoute<RouteDeps>[] = [
  ...withDeps(GUEST_ROUTES, (d: RouteDeps) => d.guests),
  ...withDeps(GUEST_METRICS_ROUTES, (d: RouteDeps) => d.guests),
  ...withDeps(GUEST_ACTION_ROUTES, (d: RouteDeps) => d.guests),
  ...withDeps(GUEST_JOB_ROUTES, (d: RouteDeps) => d.guests),
  ...withDeps(MIGRATION_ROUTES, (d: RouteDeps) => d.migrations),
  ...withDeps(VNC_ROUTES, (d: RouteDeps) => d.vnc),
  ...withDeps(CONSOLE_ROUTES, (d: RouteDeps) => d.consoles),
  ...withDeps(HOST_ROUTES, (d: RouteDeps) => d.host),
  ...withDeps(JOB_ROUTES, (d: RouteDeps) => d.host),
  ...withDeps(FLEET_ROUTES, (d: RouteDeps) => d.fleet ?? {}),
  ...withDeps(IMAGE_ROUTES, (d: RouteDeps) => d.images),
  ...withDeps(SNAPSHOT_ROUTES, (d: RouteDeps) => d.snapshots),
  ...withDeps(EVENT_ROUTES, (d: RouteDeps) => d.events),
  ...withDeps(METRICS_ROUTES, (d: RouteDeps) => d.metrics),
  ...withDeps(UI_ROUTES, () => ({})),
  ...withDeps(REFERENCE_ROUTES, (d: RouteDeps) => ({ version: d.host.version, tokens: (d.tokens ?? []).length > 0 })),
];

/** The router of every declared route, each handler made from its group's dependencies. */
export function createRouter(deps: RouteDeps, routes: readonly MountableRoute<RouteDeps>[] = API_ROUTES): IndexedRouter {
  const router = new IndexedRouter();
  for (const route of routes) router.add(route.method, route.path, route.handle(deps));
  return router;
}
