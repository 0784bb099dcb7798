// Sign-in, then the pages: the session (key, who it is, the tenant shown) is kept here.
import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError, request, type List, type Me, type Tenant } from "./api";
import { Layout } from "./components/Layout";
import { CachePage } from "./pages/Cache";
import { EntryPage } from "./pages/Entry";
import { FeedbackPage } from "./pages/Feedback";
import { KeysPage } from "./pages/Keys";
import { OverviewPage } from "./pages/Overview";
import { RequestsPage } from "./pages/Requests";
import { SignIn } from "./pages/SignIn";
import { navigate, useRoute } from "./router";
import { forget, savedKey, savedTenant, saveKey, saveTenant } from "./session";
import { SessionContext, type Session } from "./session-context";

interface SignedIn {
  key: string;
  me: Me;
}

export function App() {
  const [signedIn, setSignedIn] = useState<SignedIn | null>(null);
  const [restoring, setRestoring] = useState(() => savedKey() !== null);
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [tenant, setTenantState] = useState<string | null>(savedTenant());
  const [tenantsGeneration, setTenantsGeneration] = useState(0);

  const signIn = useCallback(async (key: string) => {
    const me = await request<Me>(key, "GET", "/api/v1/me");
    saveKey(key);
    setSignedIn({ key, me });
    if (!me.admin) setTenantState(me.tenant ?? null);
  }, []);

  // A reload of the tab keeps the session (sessionStorage): check the key again.
  useEffect(() => {
    const key = savedKey();
    if (!key) return;
    signIn(key)
      .catch(() => forget())
      .finally(() => setRestoring(false));
  }, [signIn]);

  useEffect(() => {
    if (!signedIn?.me.admin) return;
    request<List<Tenant>>(signedIn.key, "GET", "/api/v1/admin/tenants")
      .then((list) => setTenants(list.data))
      .catch(() => setTenants([]));
  }, [signedIn, tenantsGeneration]);

  const signOut = useCallback(() => {
    forget();
    setSignedIn(null);
    setTenants([]);
    setTenantState(null);
    navigate("/");
  }, []);

  const session = useMemo<Session | null>(() => {
    if (!signedIn) return null;
    return {
      key: signedIn.key,
      me: signedIn.me,
      tenants,
      tenant: signedIn.me.admin ? tenant : (signedIn.me.tenant ?? null),
      setTenant: (value) => {
        saveTenant(value);
        setTenantState(value);
      },
      reloadTenants: () => setTenantsGeneration((g) => g + 1),
      signOut,
    };
  }, [signedIn, tenants, tenant, signOut]);

  if (restoring) return <p className="muted center">Signing in…</p>;
  if (!session) {
    return (
      <SignIn
        onSignIn={async (key) => {
          try {
            await signIn(key);
          } catch (error) {
            if (error instanceof ApiError && error.status === 401) {
              throw new Error("That key was not accepted: it is unknown or revoked. Check it and try again.");
            }
            throw error;
          }
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Layout>
        <Page />
      </Layout>
    </SessionContext.Provider>
  );
}

function Page() {
  const route = useRoute();
  if (route === "/" || route === "/overview") return <OverviewPage />;
  if (route === "/requests") return <RequestsPage />;
  if (route === "/cache") return <CachePage />;
  if (route.startsWith("/cache/entry/")) return <EntryPage entry={decodeURIComponent(route.slice(13))} />;
  if (route === "/feedback") return <FeedbackPage />;
  if (route === "/keys") return <KeysPage />;
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no page at this address.</p>
    </section>
  );
}
