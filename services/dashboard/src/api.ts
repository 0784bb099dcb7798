// The public HTTP API, called with the signed-in key. Errors come in OpenAI's format and are
// turned into ApiError with the server's own message.

export class ApiError extends Error {
  status: number;
  code: string | null;
  constructor(status: number, message: string, code: string | null = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function queryString(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export async function request<T>(
  key: string,
  method: string,
  path: string,
  options: { query?: Query; body?: unknown; signal?: AbortSignal; raw?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(`${path}${queryString(options.query)}`, {
      method,
      headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      signal: options.signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "The proxy cannot be reached. Is it running?");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let code: string | null = null;
    try {
      const body = await response.json();
      if (body?.error?.message) message = body.error.message;
      code = body?.error?.code ?? null;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message, code);
  }
  if (options.raw) return (await response.text()) as T;
  return (await response.json()) as T;
}

// --- what the API returns -----------------------------------------------------------------------

export interface Me {
  admin: boolean;
  tenant?: string;
  key_id?: string;
  rpm_limit?: number | null;
  tokens_per_day?: number | null;
  allowed_models?: string[] | null;
}

export interface Latency {
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface Measures {
  requests: number;
  hits: number;
  hits_exact: number;
  hits_semantic: number;
  misses: number;
  bypasses: number;
  errors: number;
  hit_rate: number;
  prompt_tokens: number;
  completion_tokens: number;
  tokens_saved: number;
  cost_usd: number;
  cost_saved_usd: number;
  latency_ms: Latency;
  hit_latency_ms: Latency;
  miss_latency_ms: Latency;
}

export interface Stats extends Measures {
  tenant: string | null;
  since: number | null;
  until: number | null;
  bucket: "hour" | "day" | null;
  series: (Measures & { start: number })[];
  models: (Measures & { model: string })[];
  reasons: { bypass: Record<string, number>; error: Record<string, number>; refused: Record<string, number> };
}

export type UsageResult = "hit_exact" | "hit_semantic" | "miss" | "bypass" | "error";

export interface UsageRow {
  event_id: string;
  request_id: string | null;
  tenant: string;
  key_id: string | null;
  namespace: string | null;
  model: string;
  result: UsageResult;
  reason: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  tokens_saved: number;
  cost_saved_usd: number;
  latency_ms: number | null;
  created_at: number;
  cache_key: string | null;
  similarity: number | null;
  refusals: string[];
}

export interface UsagePage {
  data: UsageRow[];
  has_more: boolean;
  next_cursor: string | null;
}

export interface EntrySummary {
  id: string;
  key: string;
  tenant: string;
  namespace: string;
  model: string;
  prompt: string | null;
  created_at: number;
  expires_at: number;
  hit_count: number;
  last_hit_at: number | null;
}

export interface EntryDetail extends EntrySummary {
  completion: {
    choices?: { message?: { content?: string | null; tool_calls?: unknown[] } }[];
    usage?: { prompt_tokens?: number; completion_tokens?: number };
  };
}

export interface EntryPage {
  items: EntrySummary[];
  total: number;
  limit: number;
  offset: number;
}

export interface NearEntry extends EntrySummary {
  similarity: number;
}

export interface Deleted {
  deleted: number;
  keys: string[];
}

export interface ServedPair {
  request_id: string;
  entry_key: string;
  asked_prompt: string;
  asked_context: string | null;
  similarity: number | null;
  served_at: number;
  reported: boolean;
}

export interface ReportedPair {
  pair_hash: string;
  tenant: string;
  entry_key: string;
  entry_id: string | null;
  stored_prompt: string | null;
  asked_prompt: string;
  similarity: number | null;
  request_id: string | null;
  note: string | null;
  reported_at: number;
}

export interface Tenant {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiKey {
  id: string;
  tenant: string;
  name: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  rpm_limit: number | null;
  tokens_per_day: number | null;
  allowed_models: string[] | null;
}

export interface List<T> {
  data: T[];
}
