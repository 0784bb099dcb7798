// Wrong hits: the pairs reported (never served again), exported as JSONL for `make eval PAIRS=...`.
import { useState } from "react";
import type { ReportedPair } from "../api";
import { ErrorNote, Loading } from "../components/Status";
import { count, similarity, time } from "../format";
import { useLoad } from "../hooks";
import { useApi } from "../session-context";

export function FeedbackPage() {
  const api = useApi();
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState<Error>();
  const pairs = useLoad(
    (signal) =>
      api.get<{ data: ReportedPair[]; total: number }>(
        "/api/v1/cache/feedback",
        api.scoped({ limit: 50, offset }),
        signal,
      ),
    [api.session.key, api.session.tenant, offset],
  );

  async function exportJsonl() {
    try {
      const text = await api.text("/api/v1/cache/feedback", api.scoped({ format: "jsonl" }));
      const url = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = "reported_pairs.jsonl";
      link.click();
      URL.revokeObjectURL(url);
    } catch (reason) {
      setError(reason as Error);
    }
  }

  const total = pairs.data?.total ?? 0;
  return (
    <section aria-labelledby="feedback-title">
      <div className="page-head">
        <h1 id="feedback-title">Wrong hits</h1>
        <button type="button" onClick={exportJsonl} disabled={total === 0}>
          Export JSONL for make eval
        </button>
      </div>
      <p className="muted">
        Semantic hits reported as wrong for the question asked. No cache worker serves these pairs again; the export is
        in <code>make eval PAIRS=reported_pairs.jsonl</code>'s format, for retraining the hit verifier.
      </p>
      <ErrorNote error={pairs.error ?? error} />
      <Loading loading={pairs.loading} />
      <div className="card">
        <p className="muted" data-testid="reported-total" data-value={total}>
          {count(total)} reported
        </p>
        <div className="table-wrap">
          <table data-testid="reported">
            <thead>
              <tr>
                <th scope="col">Stored question</th>
                <th scope="col">Asked question</th>
                <th scope="col" className="num">
                  Similarity
                </th>
                {api.session.me.admin && <th scope="col">Tenant</th>}
                <th scope="col">Reported</th>
              </tr>
            </thead>
            <tbody>
              {pairs.data?.data.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    Nothing reported yet: use "Wrong answer for this question" on a semantic hit.
                  </td>
                </tr>
              )}
              {pairs.data?.data.map((pair) => (
                <tr key={pair.pair_hash} data-pair={pair.pair_hash}>
                  <td className="prompt">{pair.stored_prompt ?? "–"}</td>
                  <td className="prompt">{pair.asked_prompt}</td>
                  <td className="num">{similarity(pair.similarity)}</td>
                  {api.session.me.admin && <td>{pair.tenant}</td>}
                  <td className="nowrap">{time(pair.reported_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 50))}>
            ← Previous
          </button>
          <button type="button" disabled={offset + 50 >= total} onClick={() => setOffset(offset + 50)}>
            Next →
          </button>
        </div>
      </div>
    </section>
  );
}
