// Analytics ranges in the viewer's time zone (Intl), as the API's `from`/`to`/`tz`/`interval`.
export type Preset = '24h' | '7d' | '30d' | '90d' | 'custom';
export const PRESETS: { value: Preset; label: string }[] = [
  { value: '24h', label: '24 h' },
  { value: '7d', label: '7 d' },
  { value: '30d', label: '30 d' },
  { value: '90d', label: '90 d' },
  { value: 'custom', label: 'Custom' },
];

export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export interface Range {
  from: string;
  to: string;
  tz: string;
  interval: 'hour' | 'day';
}

/** RFC 3339 in UTC without milliseconds (`2026-11-02T00:00:00Z`). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `YYYY-MM-DD` of a local date (for `<input type="date">`). */
export function localDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function localMidnight(ymd: string): Date {
  const [y, m, d] = ymd.split('-').map(Number);
  return new Date(y, m - 1, d);
}

/**
 * The range of a preset. 24 h: the last 24 hours up to the next whole hour, per hour. Day presets:
 * whole local days ending with today. Custom: the local days `start`..`end`, both included.
 */
export function rangeOf(preset: Preset, start?: string, end?: string, now = new Date()): Range {
  if (preset === '24h') {
    const to = new Date(now);
    to.setMinutes(0, 0, 0);
    to.setHours(to.getHours() + 1);
    const from = new Date(to.getTime() - 24 * 3600_000);
    return { from: rfc3339(from), to: rfc3339(to), tz: TIME_ZONE, interval: 'hour' };
  }
  let from: Date;
  let to: Date;
  if (preset === 'custom' && start && end) {
    from = localMidnight(start);
    to = localMidnight(end);
    to.setDate(to.getDate() + 1);
  } else {
    const days = preset === '7d' ? 7 : preset === '90d' ? 90 : 30;
    to = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    from = new Date(to.getFullYear(), to.getMonth(), to.getDate() - days);
  }
  const hours = (to.getTime() - from.getTime()) / 3600_000;
  return { from: rfc3339(from), to: rfc3339(to), tz: TIME_ZONE, interval: hours <= 72 ? 'hour' : 'day' };
}
