// Who is signed in, which tenant the pages show, and the API bound to the signed-in key.
import { createContext, useContext } from "react";
import { request, type Me, type Query, type Tenant } from "./api";

export interface Session {
  key: string;
  me: Me;
  tenants: Tenant[]; // the admin's tenant picker (empty for a tenant's key)
  tenant: string | null; // the tenant shown: a tenant key's own; the admin's pick (null: all tenants)
  setTenant: (tenant: string | null) => void;
  reloadTenants: () => void;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

// The API as the signed-in key; `tenant` is added for the admin (a tenant's key acts on its own).
export function useApi() {
  const session = useSession();
  const scoped = (query: Query = {}, tenant: string | null = session.tenant): Query =>
    session.me.admin && tenant ? { tenant, ...query } : query;
  return {
    session,
    scoped,
    get: <T,>(path: string, query?: Query, signal?: AbortSignal) =>
      request<T>(session.key, "GET", path, { query, signal }),
    text: (path: string, query?: Query) => request<string>(session.key, "GET", path, { query, raw: true }),
    post: <T,>(path: string, body: unknown, query?: Query) =>
      request<T>(session.key, "POST", path, { body, query }),
    del: <T,>(path: string, query?: Query) => request<T>(session.key, "DELETE", path, { query }),
  };
}
