/**
 * Hash routes (#/guests/ID...): the page is one document at /ui, so the
 * agent serves one file whatever the view, and a reload or a shared link
 * opens the same view.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'host' }
  | { view: 'guest'; id: string }
  | { view: 'create' }
  | { view: 'images' }
  | { view: 'jobs' }
  | { view: 'events' }
  | { view: 'fleet' }
  | { view: 'missing'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return { view: 'host' };
  if (parts[0] === 'guests' && parts.length === 2) return { view: 'guest', id: safeDecode(parts[1]) };
  if (parts.length === 1 && ['create', 'images', 'jobs', 'events', 'fleet'].includes(parts[0])) return { view: parts[0] as 'create' };
  return { view: 'missing', path };
}

/** The hash of a route, for links: href(`guest`, id). */
export function href(route: Route): string {
  switch (route.view) {
    case 'host':
      return '#/';
    case 'guest':
      return `#/guests/${encodeURIComponent(route.id)}`;
    case 'missing':
      return `#${route.path}`;
    default:
      return `#/${route.view}`;
  }
}

export function guestHref(id: string): string {
  return href({ view: 'guest', id });
}

export function navigate(route: Route): void {
  window.location.hash = href(route);
}

/** The current route; re-renders on every hash change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
