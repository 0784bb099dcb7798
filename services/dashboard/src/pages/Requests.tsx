// Requests: the usage log, newest first, with its cache status, filters and server-side paging
// (cursors). A row opens the cache entry behind its answer; a semantic hit can be reported.
import { useState, type FormEvent } from "react";
import type { UsagePage, UsageResult, UsageRow } from "../api";
import { ReportButton } from "../components/Report";
import { CacheBadge, ErrorNote, Loading } from "../components/Status";
import { count, fromLocalInput, ms, shortId, time, usd } from "../format";
import { useLoad } from "../hooks";
import { navigate } from "../router";
import { useApi } from "../session-context";

interface Filters {
  result: UsageResult | "";
  model: string;
  namespace: string;
  key_id: string;
  request_id: string;
  since: string;
  until: string;
}

const EMPTY: Filters = { result: "", model: "", namespace: "", key_id: "", request_id: "", since: "", until: "" };

export function RequestsPage() {
  const api = useApi();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [limit, setLimit] = useState(50);
  const [cursors, setCursors] = useState<(string | null)[]>([null]); // the cursor of each page seen
  const cursor = cursors[cursors.length - 1];

  const page = useLoad(
    (signal) =>
      api.get<UsagePage>(
        "/api/v1/usage",
        api.scoped({
          limit,
          cursor,
          result: filters.result,
          model: filters.model.trim(),
          namespace: filters.namespace.trim(),
          key_id: filters.key_id.trim(),
          request_id: filters.request_id.trim(),
          since: fromLocalInput(filters.since),
          until: fromLocalInput(filters.until),
        }),
        signal,
      ),
    [api.session.key, api.session.tenant, filters, limit, cursor],
  );

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilters(draft);
    setCursors([null]);
  }

  const set = (name: keyof Filters) => (event: { target: { value: string } }) =>
    setDraft({ ...draft, [name]: event.target.value });
  const rows = page.data?.data ?? [];
  const showTenant = api.session.me.admin && !api.session.tenant;

  return (
    <section aria-labelledby="requests-title">
      <div className="page-head">
        <h1 id="requests-title">Requests</h1>
        <p className="muted">{api.session.tenant ? `Tenant ${api.session.tenant}` : "All tenants"}</p>
      </div>
      <form className="filters" onSubmit={apply} aria-label="Filters">
        <label>
          Cache
          <select value={draft.result} onChange={set("result")} data-testid="filter-result">
            <option value="">All</option>
            <option value="hit_exact">HIT exact</option>
            <option value="hit_semantic">HIT semantic</option>
            <option value="miss">MISS</option>
            <option value="bypass">BYPASS</option>
            <option value="error">ERROR</option>
          </select>
        </label>
        <label>
          Model
          <input value={draft.model} onChange={set("model")} placeholder="any" />
        </label>
        <label>
          Namespace
          <input value={draft.namespace} onChange={set("namespace")} placeholder="any" />
        </label>
        <label>
          Key id
          <input value={draft.key_id} onChange={set("key_id")} placeholder="any" />
        </label>
        <label>
          Request id
          <input value={draft.request_id} onChange={set("request_id")} placeholder="X-Request-Id" />
        </label>
        <label>
          From
          <input type="datetime-local" value={draft.since} onChange={set("since")} />
        </label>
        <label>
          To
          <input type="datetime-local" value={draft.until} onChange={set("until")} />
        </label>
        <button type="submit" className="primary">
          Apply
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(EMPTY);
            setFilters(EMPTY);
            setCursors([null]);
          }}
        >
          Clear
        </button>
      </form>
      <ErrorNote error={page.error} />
      <div className="card">
        <div className="table-wrap">
          <table data-testid="usage" data-loading={page.loading ? "true" : "false"}>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Cache</th>
                <th scope="col">Model</th>
                {showTenant && <th scope="col">Tenant</th>}
                <th scope="col">Namespace</th>
                <th scope="col">Key</th>
                <th scope="col" className="num">
                  Tokens
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
                <th scope="col" className="num">
                  Saved
                </th>
                <th scope="col" className="num">
                  Latency
                </th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {!page.loading && rows.length === 0 && (
                <tr>
                  <td colSpan={showTenant ? 11 : 10} className="muted">
                    No requests match.
                  </td>
                </tr>
              )}
              {rows.map((row) => (
                <UsageLine key={row.event_id} row={row} showTenant={showTenant} />
              ))}
            </tbody>
          </table>
        </div>
        <Loading loading={page.loading} />
        <div className="pager">
          <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
            ← Newer
          </button>
          <span className="muted" data-testid="page-number">
            Page {cursors.length}
          </span>
          <button
            type="button"
            disabled={!page.data?.next_cursor}
            onClick={() => setCursors([...cursors, page.data!.next_cursor])}
          >
            Older →
          </button>
          <label className="inline">
            Rows
            <select
              value={limit}
              onChange={(event) => {
                setLimit(Number(event.target.value));
                setCursors([null]);
              }}
            >
              {[25, 50, 100, 200].map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
    </section>
  );
}

function entryRoute(row: UsageRow, admin: boolean): string | null {
  if (!row.cache_key) return null;
  const tenant = admin ? `?tenant=${encodeURIComponent(row.tenant)}` : "";
  return `/cache/entry/${encodeURIComponent(row.cache_key)}${tenant}`;
}

function UsageLine(props: { row: UsageRow; showTenant: boolean }) {
  const api = useApi();
  const { row } = props;
  const route = entryRoute(row, api.session.me.admin);
  const open = () => route && navigate(route);
  const tokens = row.result.startsWith("hit") ? row.tokens_saved : row.prompt_tokens + row.completion_tokens;
  return (
    <tr
      className={route ? "clickable" : undefined}
      tabIndex={route ? 0 : undefined}
      onClick={open}
      onKeyDown={(event) => {
        if (event.key === "Enter" && event.target === event.currentTarget) open();
      }}
      data-request-id={row.request_id ?? ""}
      data-result={row.result}
      aria-label={route ? `Open the cache entry of request ${shortId(row.request_id)}` : undefined}
    >
      <td className="nowrap">{time(row.created_at)}</td>
      <td>
        <CacheBadge row={row} />
        {row.refusals.length > 0 && (
          <span className="muted small" title={row.refusals.join(", ")}>
            {" "}
            refused: {row.refusals.join(", ")}
          </span>
        )}
      </td>
      <td>{row.model}</td>
      {props.showTenant && <td>{row.tenant}</td>}
      <td>{row.namespace ?? "–"}</td>
      <td className="mono" title={row.key_id ?? undefined}>
        {shortId(row.key_id)}
      </td>
      <td className="num">{count(tokens)}</td>
      <td className="num">{usd(row.cost_usd)}</td>
      <td className="num">{usd(row.cost_saved_usd)}</td>
      <td className="num">{ms(row.latency_ms)}</td>
      <td>
        {row.result === "hit_semantic" && row.request_id && (
          <ReportButton requestId={row.request_id} tenant={row.tenant} compact />
        )}
      </td>
    </tr>
  );
}
