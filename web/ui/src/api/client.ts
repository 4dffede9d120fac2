// The typed API client: paths, parameters and bodies come from schema.gen.ts, which the
// build generates from the server's OpenAPI document (ui/openapi.json), so an API change
// that breaks a screen breaks the build.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.gen";

export type Schemas = components["schemas"];
export type User = Schemas["User"];
export type Partner = Schemas["Partner"];
export type Form = Schemas["Form"];
export type Field = Schemas["Field"];
export type TablePage = Schemas["TablePage"];
export type CallDetail = Schemas["CallDetail"];
export type OperatorView = Schemas["OperatorView"];
export type Problem = Schemas["Problem"];

/** A refused call: its problem+json, with the field at fault when there is one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem>,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
  get field(): string | undefined {
    return (this.problem as { field?: string }).field;
  }
}

/** Called when the session is gone (401): the app returns to the sign-in screen. */
let onUnauthorized: () => void = () => undefined;
export function whenSignedOut(f: () => void) {
  onUnauthorized = f;
}

const signedOut: Middleware = {
  onResponse({ response, request }) {
    if (response.status === 401 && !request.url.endsWith("/api/v1/session")) onUnauthorized();
    return undefined;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin, credentials: "same-origin" });
api.use(signedOut);

/** The data of an answer, or its problem thrown as an ApiError. */
export async function ok<T>(
  answer: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await answer;
  if (!response.ok) throw new ApiError(response.status, (error ?? {}) as Partial<Problem>);
  return data as T;
}
