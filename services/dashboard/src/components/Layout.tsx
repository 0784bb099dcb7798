// The frame of every page: navigation, the admin's tenant picker, who is signed in, sign-out.
import type { ReactNode } from "react";
import { useRoute } from "../router";
import { useSession } from "../session-context";
import { Link } from "./Link";

const PAGES = [
  { to: "/", label: "Overview" },
  { to: "/requests", label: "Requests" },
  { to: "/cache", label: "Cache" },
  { to: "/feedback", label: "Wrong hits" },
];

export function Layout(props: { children: ReactNode }) {
  const session = useSession();
  const route = useRoute();
  const pages = session.me.admin ? [...PAGES, { to: "/keys", label: "Keys" }] : PAGES;
  const active = (to: string) => (to === "/" ? route === "/" || route === "/overview" : route.startsWith(to));
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">LLM Cache Proxy</span>
        <nav aria-label="Pages">
          {pages.map((page) => (
            <Link key={page.to} to={page.to} className="nav-link" current={active(page.to)}>
              {page.label}
            </Link>
          ))}
        </nav>
        <div className="who">
          {session.me.admin ? (
            <label className="tenant-picker">
              <span>Tenant</span>
              <select
                value={session.tenant ?? ""}
                onChange={(event) => session.setTenant(event.target.value || null)}
                data-testid="tenant-picker"
              >
                <option value="">All tenants</option>
                {session.tenants.map((tenant) => (
                  <option key={tenant.id} value={tenant.id}>
                    {tenant.name}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span className="tenant-name" data-testid="signed-in-tenant">
              {session.me.tenant}
            </span>
          )}
          {session.me.admin && <span className="badge admin">admin</span>}
          <button type="button" className="ghost" onClick={session.signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </div>
  );
}
