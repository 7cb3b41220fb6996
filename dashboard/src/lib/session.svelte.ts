// The signed-in session: who the viewer is and where short links live. Read from
// `GET /v1/auth/session`; the cookie itself is HttpOnly and never touched here.
import { api, toApiError, unwrap, type Link, type Schemas } from '../api/client';
import { navigate } from './router.svelte';

/** The answer of `/v1/auth/session` (and of redeeming a sign-in link), generated from the API. */
export type SessionInfo = Schemas['SessionInfo'];

export const session = $state<{ info: SessionInfo | null; checked: boolean }>({
  info: null,
  checked: false,
});

/** Asks the origin who is signed in; `null` when nobody is (401). Throws on other failures. */
export async function loadSession(): Promise<SessionInfo | null> {
  const { data, error, response } = await api.GET('/v1/auth/session');
  session.checked = true;
  if (response.status === 401) {
    session.info = null;
    return null;
  }
  if (!response.ok) throw toApiError(response, error);
  session.info = data ?? null;
  return session.info;
}

/**
 * Ends this session (or, `everywhere`, every session of the user) and goes to the sign-in page.
 * A 401 means the session had already ended, which is what was asked; other failures throw.
 */
export async function signOut(everywhere = false): Promise<void> {
  const r = everywhere ? await api.DELETE('/v1/auth/sessions') : await api.DELETE('/v1/auth/session');
  if (!r.response.ok && r.response.status !== 401) unwrap(r);
  session.info = null;
  navigate('/sign-in');
}

/**
 * The short URL visitors use for a link: the link's own `short_url` when the API gives one,
 * else the session's `short_base_url` + slug, else this origin (which also answers `/{slug}`).
 */
export function shortUrl(link: Pick<Link, 'slug'> & { short_url?: string | null }): string {
  if (link.short_url) return link.short_url;
  const base = session.info?.short_base_url || window.location.origin;
  return `${base.replace(/\/+$/, '')}/${link.slug}`;
}
