// A small router for the few pages under /dashboard/: the path picks the page; links push history.
import { useEffect, useState } from "react";

export const BASE = "/dashboard";

export function currentRoute(): string {
  const path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : "/";
  return path.replace(/\/+$/, "") || "/";
}

export function navigate(route: string): void {
  const target = `${BASE}${route === "/" ? "/" : route}`;
  if (target !== window.location.pathname) window.history.pushState(null, "", target);
  window.dispatchEvent(new Event("dashboard:navigate"));
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    window.addEventListener("popstate", update);
    window.addEventListener("dashboard:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("dashboard:navigate", update);
    };
  }, []);
  return route;
}
