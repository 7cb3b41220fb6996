// One openapi-fetch client for every call, typed by the schema generated from docs/openapi.json
// (`npm run gen:api`). The session cookie rides along because every call is same-origin.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Link = Schemas['Link'];
export type User = Schemas['User'];
export type ApiKey = Schemas['ApiKey'];
export type ErrorBody = Schemas['ErrorBody'];

/** An error answer of the API, `{"error":{"code","message"}}`, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};
/** Called when any call other than the session check answers 401 (the session ended). */
export function setUnauthorizedHandler(handler: () => void) {
  onUnauthorized = handler;
}

const unauthorized: Middleware = {
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname;
    if (response.status === 401 && !path.startsWith('/v1/auth/')) onUnauthorized();
    return undefined;
  },
};

export const api = createClient<paths>({
  baseUrl: window.location.origin,
  credentials: 'same-origin',
});
api.use(unauthorized);

/** The data of an openapi-fetch answer, or an ApiError carrying the API's own message. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  const { data, error, response } = result;
  if (response.ok) return data as T;
  throw toApiError(response, error);
}

export function toApiError(response: Response, body: unknown): ApiError {
  const detail = (body as Partial<ErrorBody> | undefined)?.error;
  const retry = Number(response.headers.get('Retry-After'));
  return new ApiError(
    response.status,
    detail?.code ?? `http_${response.status}`,
    detail?.message ?? `The server answered ${response.status}.`,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

/** A message for people from anything thrown by a call. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return 'The server could not be reached. Check your connection and try again.';
  return err instanceof Error ? err.message : String(err);
}
