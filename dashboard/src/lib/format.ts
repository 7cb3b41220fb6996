const number = new Intl.NumberFormat();
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const date = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export const fmtNumber = (n: number | null | undefined) => number.format(n ?? 0);
export const fmtDateTime = (s: string | null | undefined) => (s ? dateTime.format(new Date(s)) : '—');
export const fmtDate = (s: string | null | undefined) => (s ? date.format(new Date(s)) : '—');

/** `datetime-local` input value of an ISO time, in local time. */
export function toLocalInput(s: string | null | undefined): string {
  if (!s) return '';
  const d = new Date(s);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** ISO (UTC) of a `datetime-local` value, or null when empty. */
export function fromLocalInput(v: string): string | null {
  return v ? new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z') : null;
}
