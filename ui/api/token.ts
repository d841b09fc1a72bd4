/**
 * The bearer token the user typed, kept for this tab's session only
 * (sessionStorage: gone when the tab closes, never shared with other tabs
 * or written to disk by the page).
 */
const KEY = 'hyperkern.token';

export function loadToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function saveToken(token: string | undefined): void {
  try {
    if (token === undefined) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, token);
  } catch {
    /* storage disabled: the token lives as long as the page */
  }
}
