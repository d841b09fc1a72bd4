/**
 * @koa/router's Router, with the routes tested per request narrowed first.
 *
 * Router#match tests the regular expression of every route on every
 * request: with the agent's ~50 routes that was about 3 µs per request, the
 * largest single cost of GET /guests/{id} after the socket write. Here the
 * routes are indexed by their number of path segments and their literal
 * segments ("guests", "metrics"); a request is matched by Router#match
 * itself, over only the routes whose shape fits its path, in their original
 * order. What matches is therefore exactly what Router#match finds over all
 * routes: the index only leaves out routes whose regular expression could
 * not match (a different segment count, or a different literal segment).
 * Routes of any other shape (middleware, wildcards, optional or embedded
 * parameters, regular expressions) are always tested.
 */
import Router from '@koa/router';

type Layer = Router['stack'][number];

interface IndexedLayer {
  layer: Layer;
  /** [segment position, literal text (lower case unless the route is case-sensitive)]. */
  literals: Array<[number, string]>;
  sensitive: boolean;
}

interface Index {
  /** Stack length when built: routes added later rebuild it. */
  size: number;
  /** Routes by segment count, each list in stack order, always-tested routes included. */
  bySegments: Map<number, IndexedLayer[]>;
  /** Routes of a shape the index does not describe: tested for every path. */
  always: IndexedLayer[];
}

export class IndexedRouter extends Router {
  private index?: Index;

  override match(path: string, method: string): ReturnType<Router['match']> {
    const index = this.indexed();
    const segments = segmentsOf(path);
    const lowered = segments.map((s) => s.toLowerCase());
    const candidates: Layer[] = [];
    for (const entry of index.bySegments.get(segments.length) ?? index.always) {
      const seen = entry.sensitive ? segments : lowered;
      if (entry.literals.every(([at, text]) => seen[at] === text)) candidates.push(entry.layer);
    }
    // Router#match itself, over the candidates: the same result shape and rules.
    const all = this.stack;
    this.stack = candidates;
    try {
      return super.match(path, method);
    } finally {
      this.stack = all;
    }
  }

  private indexed(): Index {
    if (this.index?.size === this.stack.length) return this.index;
    const shaped: Array<{ entry: IndexedLayer; count: number | undefined }> = this.stack.map((layer) => shapeOf(layer));
    const always = shaped.filter((s) => s.count === undefined).map((s) => s.entry);
    const bySegments = new Map<number, IndexedLayer[]>();
    for (const count of new Set(shaped.map((s) => s.count).filter((c): c is number => c !== undefined))) {
      bySegments.set(count, shaped.filter((s) => s.count === undefined || s.count === count).map((s) => s.entry));
    }
    this.index = { size: this.stack.length, bySegments, always };
    return this.index;
  }
}

/** A request path's segments; one trailing slash is optional in a (non-strict) route, so it is dropped. */
function segmentsOf(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}

/** The route's segment count and literal segments, or count undefined when its shape is not a plain one. */
function shapeOf(layer: Layer): { entry: IndexedLayer; count: number | undefined } {
  const opts = (layer as unknown as { opts: { sensitive?: boolean; strict?: boolean; end?: boolean; pathAsRegExp?: boolean } }).opts ?? {};
  const sensitive = Boolean(opts.sensitive);
  const entry: IndexedLayer = { layer, literals: [], sensitive };
  const path = layer.path;
  const plain =
    typeof path === 'string' && path.startsWith('/') && layer.methods.length > 0 && opts.end !== false && !opts.strict && !opts.pathAsRegExp && !/[*{}()?+\\]/.test(path);
  if (!plain) return { entry, count: undefined };
  const segments = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).split('/').slice(1);
  for (const [at, segment] of segments.entries()) {
    if (segment.startsWith(':') && !segment.slice(1).includes(':') && /^:[A-Za-z0-9_$]+$/.test(segment)) continue;
    // A parameter inside a segment ("/a/:name.json"): not a shape the index describes.
    if (segment.includes(':')) return { entry, count: undefined };
    entry.literals.push([at, sensitive ? segment : segment.toLowerCase()]);
  }
  return { entry, count: segments.length };
}
