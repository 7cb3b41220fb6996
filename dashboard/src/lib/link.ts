import type { Link } from '../api/client';

/** What a visitor gets now: active, disabled, or expired (an active link past `expires_at`). */
export function linkState(link: Link): 'active' | 'disabled' | 'expired' {
  if (link.status === 'disabled') return 'disabled';
  if (link.status === 'expired' || (link.expires_at && Date.parse(link.expires_at) <= Date.now())) return 'expired';
  return 'active';
}
