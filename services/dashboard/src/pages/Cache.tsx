// Cache browser: search stored prompts, filter by namespace, model and date; open an entry;
// "invalidate near this prompt" (a preview with each similarity first); flush a namespace.
import { useState, type FormEvent } from "react";
import type { Deleted, EntryPage as Page, NearEntry } from "../api";
import { Dialog } from "../components/Dialog";
import { ErrorNote, Loading } from "../components/Status";
import { count, similarity, time } from "../format";
import { useLoad } from "../hooks";
import { navigate } from "../router";
import { useApi } from "../session-context";

const PAGE_SIZE = 50;

interface Filters {
  q: string;
  namespace: string;
  model: string;
  created_after: string;
  created_before: string;
}
const EMPTY: Filters = { q: "", namespace: "", model: "", created_after: "", created_before: "" };

export function CachePage() {
  const api = useApi();
  if (api.session.me.admin && !api.session.tenant) {
    return (
      <section>
        <h1>Cache</h1>
        <p className="muted">Pick a tenant (top right) to browse its cache entries.</p>
      </section>
    );
  }
  return <CacheBrowser />;
}

function CacheBrowser() {
  const api = useApi();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [offset, setOffset] = useState(0);
  const [dialog, setDialog] = useState<"near" | "flush" | null>(null);
  const [notice, setNotice] = useState("");

  const page = useLoad(
    (signal) =>
      api.get<Page>(
        "/api/v1/cache/entries",
        api.scoped({
          q: filters.q.trim(),
          namespace: filters.namespace.trim(),
          model: filters.model.trim(),
          created_after: filters.created_after ? new Date(filters.created_after).toISOString() : undefined,
          created_before: filters.created_before ? new Date(filters.created_before).toISOString() : undefined,
          limit: PAGE_SIZE,
          offset,
        }),
        signal,
      ),
    [api.session.key, api.session.tenant, filters, offset],
  );
  const set = (name: keyof Filters) => (event: { target: { value: string } }) =>
    setDraft({ ...draft, [name]: event.target.value });
  const total = page.data?.total ?? 0;

  function search(event: FormEvent) {
    event.preventDefault();
    setFilters(draft);
    setOffset(0);
  }

  function done(message: string) {
    setDialog(null);
    setNotice(message);
    page.reload();
  }

  return (
    <section aria-labelledby="cache-title">
      <div className="page-head">
        <h1 id="cache-title">Cache</h1>
        <div className="actions">
          <button type="button" onClick={() => setDialog("near")}>
            Invalidate near a prompt…
          </button>
          <button type="button" className="danger" onClick={() => setDialog("flush")}>
            Flush a namespace…
          </button>
        </div>
      </div>
      <form className="filters" onSubmit={search} role="search" aria-label="Search entries">
        <label className="grow">
          Prompt contains
          <input type="search" value={draft.q} onChange={set("q")} placeholder="Search stored prompts" />
        </label>
        <label>
          Namespace
          <input value={draft.namespace} onChange={set("namespace")} placeholder="any" />
        </label>
        <label>
          Model
          <input value={draft.model} onChange={set("model")} placeholder="any" />
        </label>
        <label>
          Created after
          <input type="datetime-local" value={draft.created_after} onChange={set("created_after")} />
        </label>
        <label>
          Created before
          <input type="datetime-local" value={draft.created_before} onChange={set("created_before")} />
        </label>
        <button type="submit" className="primary">
          Search
        </button>
      </form>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <ErrorNote error={page.error} />
      <div className="card">
        <p className="muted" data-testid="entry-total" data-value={total}>
          {count(total)} entries
        </p>
        <div className="table-wrap">
          <table data-testid="entries" data-loading={page.loading ? "true" : "false"}>
            <thead>
              <tr>
                <th scope="col">Prompt</th>
                <th scope="col">Namespace</th>
                <th scope="col">Model</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col" className="num">
                  Hits
                </th>
                <th scope="col">Last hit</th>
              </tr>
            </thead>
            <tbody>
              {!page.loading && page.data?.items.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    No entries match.
                  </td>
                </tr>
              )}
              {page.data?.items.map((entry) => {
                const open = () => navigate(`/cache/entry/${entry.id}${tenantQuery(api.session)}`);
                return (
                  <tr
                    key={entry.id}
                    className="clickable"
                    tabIndex={0}
                    onClick={open}
                    onKeyDown={(event) => event.key === "Enter" && open()}
                    data-entry-key={entry.key}
                  >
                    <td className="prompt">{entry.prompt ?? <span className="muted">(exact only)</span>}</td>
                    <td>{entry.namespace}</td>
                    <td>{entry.model}</td>
                    <td className="nowrap">{time(entry.created_at)}</td>
                    <td className="nowrap">{time(entry.expires_at)}</td>
                    <td className="num">{count(entry.hit_count)}</td>
                    <td className="nowrap">{time(entry.last_hit_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <Loading loading={page.loading} />
        <div className="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            ← Previous
          </button>
          <span className="muted">
            {total === 0 ? "0" : `${count(offset + 1)}–${count(Math.min(offset + PAGE_SIZE, total))}`} of {count(total)}
          </span>
          <button type="button" disabled={offset + PAGE_SIZE >= total} onClick={() => setOffset(offset + PAGE_SIZE)}>
            Next →
          </button>
        </div>
      </div>
      {dialog === "near" && <InvalidateNear onClose={() => setDialog(null)} onDone={done} />}
      {dialog === "flush" && <FlushNamespace onClose={() => setDialog(null)} onDone={done} />}
    </section>
  );
}

export function tenantQuery(session: { me: { admin: boolean }; tenant: string | null }): string {
  return session.me.admin && session.tenant ? `?tenant=${encodeURIComponent(session.tenant)}` : "";
}

export function InvalidateNear(props: { onClose: () => void; onDone: (message: string) => void; prompt?: string }) {
  const api = useApi();
  const [prompt, setPrompt] = useState(props.prompt ?? "");
  const [minimum, setMinimum] = useState("0.90");
  const [preview, setPreview] = useState<NearEntry[] | null>(null);
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);

  async function showPreview(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = { prompt, min_similarity: Number(minimum), dry_run: true, tenant: api.session.tenant ?? undefined };
      const result = await api.post<{ items: NearEntry[] }>("/api/v1/cache/invalidate", withoutTenant(body, api));
      setPreview(result.items);
    } catch (reason) {
      setError(reason as Error);
    } finally {
      setBusy(false);
    }
  }

  async function confirm() {
    if (!preview) return;
    setBusy(true);
    try {
      const body = {
        prompt,
        min_similarity: Number(minimum),
        entry_ids: preview.map((entry) => entry.id),
        tenant: api.session.tenant ?? undefined,
      };
      const result = await api.post<Deleted>("/api/v1/cache/invalidate", withoutTenant(body, api));
      props.onDone(`Deleted ${result.deleted} ${result.deleted === 1 ? "entry" : "entries"} near the prompt.`);
    } catch (reason) {
      setError(reason as Error);
      setBusy(false);
    }
  }

  return (
    <Dialog title="Invalidate near a prompt" onClose={props.onClose} wide>
      <form onSubmit={showPreview} className="stack">
        <label htmlFor="near-prompt">Prompt</label>
        <textarea
          id="near-prompt"
          rows={3}
          value={prompt}
          onChange={(event) => {
            setPrompt(event.target.value);
            setPreview(null);
          }}
          required
        />
        <label htmlFor="near-min">Minimum similarity (0.5 to 1)</label>
        <input
          id="near-min"
          type="number"
          min="0.5"
          max="1"
          step="0.01"
          value={minimum}
          onChange={(event) => {
            setMinimum(event.target.value);
            setPreview(null);
          }}
        />
        <button type="submit" className="primary" disabled={busy || !prompt.trim()}>
          Preview what would be deleted
        </button>
      </form>
      <ErrorNote error={error} />
      {preview && (
        <div className="preview" data-testid="near-preview">
          {preview.length === 0 ? (
            <p className="muted">No entry is that near: nothing would be deleted.</p>
          ) : (
            <>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col" className="num">
                        Similarity
                      </th>
                      <th scope="col">Prompt</th>
                      <th scope="col">Namespace</th>
                      <th scope="col">Model</th>
                    </tr>
                  </thead>
                  <tbody>
                    {preview.map((entry) => (
                      <tr key={entry.id} data-entry-key={entry.key} data-similarity={entry.similarity}>
                        <td className="num">{similarity(entry.similarity)}</td>
                        <td className="prompt">{entry.prompt}</td>
                        <td>{entry.namespace}</td>
                        <td>{entry.model}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <button type="button" className="danger" onClick={confirm} disabled={busy}>
                Delete these {preview.length} {preview.length === 1 ? "entry" : "entries"}
              </button>
            </>
          )}
        </div>
      )}
    </Dialog>
  );
}

function withoutTenant<T extends { tenant?: string }>(body: T, api: ReturnType<typeof useApi>): T {
  // Only the admin names the tenant; a tenant's key acts on its own.
  if (!api.session.me.admin) return { ...body, tenant: undefined };
  return body;
}

function FlushNamespace(props: { onClose: () => void; onDone: (message: string) => void }) {
  const api = useApi();
  const [namespace, setNamespace] = useState("");
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const ready = namespace.trim() !== "" && typed === namespace.trim();

  async function flush(event: FormEvent) {
    event.preventDefault();
    if (!ready) return;
    setBusy(true);
    try {
      const name = namespace.trim();
      const result = await api.del<Deleted>(`/api/v1/cache/namespaces/${encodeURIComponent(name)}`, api.scoped());
      props.onDone(`Flushed namespace "${name}": ${result.deleted} ${result.deleted === 1 ? "entry" : "entries"} deleted.`);
    } catch (reason) {
      setError(reason as Error);
      setBusy(false);
    }
  }

  return (
    <Dialog title="Flush a namespace" onClose={props.onClose}>
      <form onSubmit={flush} className="stack">
        <label htmlFor="flush-namespace">Namespace</label>
        <input id="flush-namespace" value={namespace} onChange={(event) => setNamespace(event.target.value)} />
        <label htmlFor="flush-confirm">
          Type the namespace's name again to confirm: every entry in it is deleted
        </label>
        <input
          id="flush-confirm"
          value={typed}
          onChange={(event) => setTyped(event.target.value)}
          autoComplete="off"
        />
        <ErrorNote error={error} />
        <button type="submit" className="danger" disabled={!ready || busy}>
          Flush namespace
        </button>
      </form>
    </Dialog>
  );
}
