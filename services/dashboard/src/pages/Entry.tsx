// One cache entry: its prompt, its answer (markdown), created, expires, hit count, last hit; delete
// it, invalidate near its prompt, and report a question it answered wrongly by a semantic hit.
import { useState } from "react";
import Markdown from "react-markdown";
import type { Deleted, EntryDetail, ServedPair } from "../api";
import { Dialog } from "../components/Dialog";
import { Link } from "../components/Link";
import { ReportButton } from "../components/Report";
import { ErrorNote, Loading } from "../components/Status";
import { count, similarity, time } from "../format";
import { useLoad } from "../hooks";
import { navigate } from "../router";
import { useApi } from "../session-context";
import { InvalidateNear } from "./Cache";

export function EntryPage(props: { entry: string }) {
  const api = useApi();
  // The admin's view of another tenant's entry names it in the address (a tenant's name is no secret).
  const tenant = new URLSearchParams(window.location.search).get("tenant") ?? api.session.tenant;
  const query = api.scoped({}, tenant);
  const entry = useLoad(
    (signal) =>
      api.get<{ entry: EntryDetail }>(`/api/v1/cache/entries/${encodeURIComponent(props.entry)}`, query, signal),
    [api.session.key, props.entry, tenant],
  );
  const hits = useLoad(
    (signal) =>
      api.get<{ items: ServedPair[] }>(`/api/v1/cache/entries/${encodeURIComponent(props.entry)}/hits`, query, signal),
    [api.session.key, props.entry, tenant],
  );
  const [dialog, setDialog] = useState<"delete" | "near" | null>(null);
  const [error, setError] = useState<Error>();
  const detail = entry.data?.entry;

  async function remove() {
    try {
      const result = await api.del<Deleted>(`/api/v1/cache/entries/${encodeURIComponent(props.entry)}`, query);
      if (result.deleted) navigate("/cache");
    } catch (reason) {
      setError(reason as Error);
      setDialog(null);
    }
  }

  const answer = detail?.completion.choices?.[0]?.message?.content;
  return (
    <section aria-labelledby="entry-title">
      <p>
        <Link to="/cache">← Cache</Link>
      </p>
      <h1 id="entry-title">Cache entry</h1>
      <ErrorNote error={entry.error ?? error} />
      <Loading loading={entry.loading} />
      {detail && (
        <div className="entry" data-testid="entry" data-entry-key={detail.key}>
          <div className="actions">
            <button type="button" onClick={() => setDialog("near")} disabled={!detail.prompt}>
              Invalidate near this prompt…
            </button>
            <button type="button" className="danger" onClick={() => setDialog("delete")}>
              Delete entry
            </button>
          </div>
          <dl className="facts">
            <dt>Created</dt>
            <dd>{time(detail.created_at)}</dd>
            <dt>Expires</dt>
            <dd>{time(detail.expires_at)}</dd>
            <dt>Hits</dt>
            <dd data-testid="entry-hits" data-value={detail.hit_count}>
              {count(detail.hit_count)}
            </dd>
            <dt>Last hit</dt>
            <dd>{time(detail.last_hit_at)}</dd>
            <dt>Namespace</dt>
            <dd>{detail.namespace}</dd>
            <dt>Model</dt>
            <dd>{detail.model}</dd>
            <dt>Key</dt>
            <dd className="mono wrap">{detail.key}</dd>
          </dl>
          <div className="card">
            <h2>Prompt</h2>
            <p className="prompt-full" data-testid="entry-prompt">
              {detail.prompt ?? "(not stored: this entry answers exact repeats only)"}
            </p>
          </div>
          <div className="card">
            <h2>Answer</h2>
            <div className="markdown" data-testid="entry-answer">
              {answer ? <Markdown>{answer}</Markdown> : <p className="muted">(no text: a tool call)</p>}
            </div>
          </div>
          <div className="card">
            <h2>Questions it answered by semantic hits</h2>
            <ErrorNote error={hits.error} />
            {hits.data && hits.data.items.length === 0 && (
              <p className="muted">None recorded (semantic hits are kept for the feedback window).</p>
            )}
            {hits.data && hits.data.items.length > 0 && (
              <div className="table-wrap">
                <table data-testid="served">
                  <thead>
                    <tr>
                      <th scope="col">Asked</th>
                      <th scope="col" className="num">
                        Similarity
                      </th>
                      <th scope="col">Served</th>
                      <th scope="col">
                        <span className="sr-only">Report</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {hits.data.items.map((hit) => (
                      <tr key={hit.request_id} data-request-id={hit.request_id}>
                        <td className="prompt">{hit.asked_prompt}</td>
                        <td className="num">{similarity(hit.similarity)}</td>
                        <td className="nowrap">{time(hit.served_at)}</td>
                        <td>
                          <ReportButton requestId={hit.request_id} tenant={tenant} reported={hit.reported} compact />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        </div>
      )}
      {dialog === "delete" && detail && (
        <Dialog title="Delete this entry?" onClose={() => setDialog(null)}>
          <p>The entry is deleted from Redis and PostgreSQL: neither its question nor a paraphrase is served from it again.</p>
          <div className="actions">
            <button type="button" onClick={() => setDialog(null)}>
              Cancel
            </button>
            <button type="button" className="danger" onClick={remove}>
              Delete
            </button>
          </div>
        </Dialog>
      )}
      {dialog === "near" && detail?.prompt && (
        <InvalidateNear prompt={detail.prompt} onClose={() => setDialog(null)} onDone={() => navigate("/cache")} />
      )}
    </section>
  );
}
