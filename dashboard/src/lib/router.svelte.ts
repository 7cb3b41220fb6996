// History routing under /dashboard/ (the origin answers every path there with index.html).
export const BASE = import.meta.env.BASE_URL.replace(/\/+$/, ''); // "/dashboard"

export const route = $state({ path: currentPath(), query: new URLSearchParams(location.search) });

function currentPath(): string {
  let path = location.pathname;
  if (path.startsWith(BASE)) path = path.slice(BASE.length);
  path = path.replace(/\/+$/, '');
  return path === '' ? '/' : path;
}

function sync() {
  route.path = currentPath();
  route.query = new URLSearchParams(location.search);
}

/** An href for an in-app path such as `/links/abc`. */
export function href(path: string): string {
  return BASE + path;
}

export function navigate(path: string, { replace = false } = {}) {
  const url = href(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  sync();
  window.scrollTo(0, 0);
}

/** Replace the query string without a new history entry (filters, ranges). */
export function setQuery(params: Record<string, string | null | undefined>) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  route.query = q;
}

addEventListener('popstate', sync);

/** Turns clicks on same-app links into history navigation (keeps modifier-clicks native). */
export function interceptLinks(root: HTMLElement) {
  root.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = (event.target as Element).closest('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE + '/')) return;
    if (url.pathname.startsWith(BASE + '/assets/')) return;
    event.preventDefault();
    history.pushState(null, '', url.pathname + url.search);
    sync();
    window.scrollTo(0, 0);
  });
}
