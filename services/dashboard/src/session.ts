// The signed-in key lives in this tab's sessionStorage only: never in the URL, never in
// localStorage; it goes when the tab closes or on sign-out.

const KEY = "llmcache.dashboard.key";
const TENANT = "llmcache.dashboard.tenant";

export function savedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function savedTenant(): string | null {
  return sessionStorage.getItem(TENANT);
}

export function saveTenant(tenant: string | null): void {
  if (tenant) sessionStorage.setItem(TENANT, tenant);
  else sessionStorage.removeItem(TENANT);
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(TENANT);
}
