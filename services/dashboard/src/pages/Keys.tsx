// Keys (admin key): tenants, create a tenant, create a key with limits (shown once, with a copy
// button), list keys with their last use, revoke.
import { useState, type FormEvent } from "react";
import type { ApiKey, List, Tenant } from "../api";
import { Dialog } from "../components/Dialog";
import { ErrorNote, Loading } from "../components/Status";
import { count, time } from "../format";
import { useLoad } from "../hooks";
import { useApi } from "../session-context";

export function KeysPage() {
  const api = useApi();
  if (!api.session.me.admin) {
    return (
      <section>
        <h1>Keys</h1>
        <p>Managing tenants and keys needs the admin key.</p>
      </section>
    );
  }
  return <KeysAdmin />;
}

function KeysAdmin() {
  const api = useApi();
  const tenants = useLoad((signal) => api.get<List<Tenant>>("/api/v1/admin/tenants", {}, signal), [api.session.key]);
  const keys = useLoad(
    (signal) => api.get<List<ApiKey>>("/api/v1/admin/keys", { tenant: api.session.tenant }, signal),
    [api.session.key, api.session.tenant],
  );
  const [created, setCreated] = useState<(ApiKey & { key: string }) | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [error, setError] = useState<Error>();

  return (
    <section aria-labelledby="keys-title">
      <div className="page-head">
        <h1 id="keys-title">Tenants and keys</h1>
      </div>
      <ErrorNote error={error} />
      <div className="two">
        <div className="card">
          <h2>Tenants</h2>
          <NewTenant
            onCreated={() => {
              tenants.reload();
              api.session.reloadTenants();
            }}
          />
          <ErrorNote error={tenants.error} />
          <Loading loading={tenants.loading} />
          <ul className="tenants" data-testid="tenants">
            {tenants.data?.data.map((tenant) => (
              <li key={tenant.id}>
                <button
                  type="button"
                  className={api.session.tenant === tenant.id ? "link current" : "link"}
                  onClick={() => api.session.setTenant(tenant.id)}
                >
                  {tenant.name}
                </button>{" "}
                <span className="muted small">since {time(tenant.created_at)}</span>
              </li>
            ))}
          </ul>
        </div>
        <div className="card">
          <h2>New key</h2>
          <NewKey
            tenants={tenants.data?.data ?? []}
            onCreated={(key) => {
              setCreated(key);
              keys.reload();
            }}
          />
        </div>
      </div>
      <div className="card">
        <h2>Keys {api.session.tenant ? `of ${api.session.tenant}` : "of every tenant"}</h2>
        <ErrorNote error={keys.error} />
        <Loading loading={keys.loading} />
        <div className="table-wrap">
          <table data-testid="keys">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Tenant</th>
                <th scope="col">Key</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col" className="num">
                  RPM
                </th>
                <th scope="col" className="num">
                  Tokens/day
                </th>
                <th scope="col">Models</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {keys.data?.data.length === 0 && (
                <tr>
                  <td colSpan={9} className="muted">
                    No keys.
                  </td>
                </tr>
              )}
              {keys.data?.data.map((key) => (
                <tr key={key.id} data-key-id={key.id}>
                  <td>{key.name}</td>
                  <td>{key.tenant}</td>
                  <td className="mono">{key.prefix}…</td>
                  <td className="nowrap">{time(key.created_at)}</td>
                  <td className="nowrap" data-testid="last-used">
                    {time(key.last_used_at)}
                  </td>
                  <td className="num">{key.rpm_limit ? count(key.rpm_limit) : "–"}</td>
                  <td className="num">{key.tokens_per_day ? count(key.tokens_per_day) : "–"}</td>
                  <td>{key.allowed_models?.join(", ") ?? "any"}</td>
                  <td>
                    {key.revoked_at ? (
                      <span className="badge error">revoked {time(key.revoked_at)}</span>
                    ) : (
                      <button type="button" className="small danger" onClick={() => setRevoking(key)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      {created && <CreatedKey created={created} onClose={() => setCreated(null)} />}
      {revoking && (
        <Dialog title={`Revoke "${revoking.name}"?`} onClose={() => setRevoking(null)}>
          <p>Every gateway refuses the key at once. This cannot be undone.</p>
          <div className="actions">
            <button type="button" onClick={() => setRevoking(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="danger"
              onClick={async () => {
                try {
                  await api.del(`/api/v1/admin/keys/${revoking.id}`);
                } catch (reason) {
                  setError(reason as Error);
                }
                setRevoking(null);
                keys.reload();
              }}
            >
              Revoke key
            </button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

function NewTenant(props: { onCreated: () => void }) {
  const api = useApi();
  const [name, setName] = useState("");
  const [error, setError] = useState<Error>();
  async function submit(event: FormEvent) {
    event.preventDefault();
    try {
      await api.post("/api/v1/admin/tenants", { name: name.trim() });
      setName("");
      setError(undefined);
      props.onCreated();
    } catch (reason) {
      setError(reason as Error);
    }
  }
  return (
    <form onSubmit={submit} className="row-form" aria-label="New tenant">
      <label>
        New tenant
        <input value={name} onChange={(event) => setName(event.target.value)} placeholder="acme" required />
      </label>
      <button type="submit" className="primary">
        Create tenant
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

function NewKey(props: { tenants: Tenant[]; onCreated: (key: ApiKey & { key: string }) => void }) {
  const api = useApi();
  const [tenant, setTenant] = useState(api.session.tenant ?? "");
  const [name, setName] = useState("");
  const [rpm, setRpm] = useState("");
  const [tokens, setTokens] = useState("");
  const [models, setModels] = useState("");
  const [error, setError] = useState<Error>();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const allowed = models
      .split(",")
      .map((model) => model.trim())
      .filter(Boolean);
    try {
      const key = await api.post<ApiKey & { key: string }>("/api/v1/admin/keys", {
        tenant,
        name: name.trim(),
        rpm_limit: rpm ? Number(rpm) : null,
        tokens_per_day: tokens ? Number(tokens) : null,
        allowed_models: allowed.length ? allowed : null,
      });
      setName("");
      setError(undefined);
      props.onCreated(key);
    } catch (reason) {
      setError(reason as Error);
    }
  }

  return (
    <form onSubmit={submit} className="stack" aria-label="New key">
      <label htmlFor="key-tenant">Tenant</label>
      <select id="key-tenant" value={tenant} onChange={(event) => setTenant(event.target.value)} required>
        <option value="" disabled>
          Choose a tenant
        </option>
        {props.tenants.map((t) => (
          <option key={t.id} value={t.id}>
            {t.name}
          </option>
        ))}
      </select>
      <label htmlFor="key-name">Name</label>
      <input id="key-name" value={name} onChange={(event) => setName(event.target.value)} placeholder="backend" required />
      <label htmlFor="key-rpm">Requests per minute (empty: no limit)</label>
      <input id="key-rpm" type="number" min="1" value={rpm} onChange={(event) => setRpm(event.target.value)} />
      <label htmlFor="key-tokens">Tokens per day (empty: no limit)</label>
      <input id="key-tokens" type="number" min="1" value={tokens} onChange={(event) => setTokens(event.target.value)} />
      <label htmlFor="key-models">Allowed models, comma-separated (empty: any)</label>
      <input id="key-models" value={models} onChange={(event) => setModels(event.target.value)} placeholder="gpt-4o-mini" />
      <ErrorNote error={error} />
      <button type="submit" className="primary">
        Create key
      </button>
    </form>
  );
}

function CreatedKey(props: { created: ApiKey & { key: string }; onClose: () => void }) {
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  return (
    <Dialog title="Key created" onClose={props.onClose}>
      <p>
        Copy the key for <strong>{props.created.name}</strong> ({props.created.tenant}) now: it is shown this once, only
        its hash is kept.
      </p>
      <div className="copy">
        <input readOnly value={props.created.key} aria-label="The new key" data-testid="new-key" onFocus={(e) => e.target.select()} />
        <button
          type="button"
          className="primary"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(props.created.key);
              setCopied("yes");
            } catch {
              setCopied("failed");
            }
          }}
        >
          Copy
        </button>
      </div>
      {copied === "yes" && <p role="status">Copied.</p>}
      {copied === "failed" && <p role="status">The browser refused the clipboard: select the key and copy it.</p>}
      <div className="actions">
        <button type="button" onClick={props.onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}
