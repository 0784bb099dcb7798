// Overview: requests, hit rate (exact / semantic), tokens and dollars saved, cost, latency of hits
// against misses, a time series over a chosen range, a per-model table, and the reasons for
// bypasses, errors and refused semantic candidates. Every number is /api/v1/cache/stats's.
import { useState } from "react";
import { Bar, BarChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from "recharts";
import type { Stats } from "../api";
import { ErrorNote, Loading } from "../components/Status";
import { bucketLabel, count, fromLocalInput, ms, percent, usd } from "../format";
import { useLoad } from "../hooks";
import { useApi } from "../session-context";

type Range = "24h" | "7d" | "30d" | "custom";
const RANGES: { value: Range; label: string; seconds: number; bucket: "hour" | "day" }[] = [
  { value: "24h", label: "Last 24 hours", seconds: 86400, bucket: "hour" },
  { value: "7d", label: "Last 7 days", seconds: 7 * 86400, bucket: "hour" },
  { value: "30d", label: "Last 30 days", seconds: 30 * 86400, bucket: "day" },
  { value: "custom", label: "Custom", seconds: 0, bucket: "day" },
];

const SERIES = [
  { key: "hits_exact", label: "Exact hits", color: "#15803d" },
  { key: "hits_semantic", label: "Semantic hits", color: "#4ade80" },
  { key: "misses", label: "Misses", color: "#64748b" },
  { key: "bypasses", label: "Bypasses", color: "#f59e0b" },
  { key: "errors", label: "Errors", color: "#dc2626" },
] as const;

export function OverviewPage() {
  const api = useApi();
  const [range, setRange] = useState<Range>("24h");
  const [bucket, setBucket] = useState<"hour" | "day">("hour");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");

  const chosen = RANGES.find((r) => r.value === range)!;
  const query =
    range === "custom"
      ? { bucket, since: fromLocalInput(since), until: fromLocalInput(until) }
      : { bucket: chosen.bucket, since: Math.floor(Date.now() / 1000) - chosen.seconds };
  const stats = useLoad(
    (signal) => api.get<Stats>("/api/v1/cache/stats", api.scoped(query), signal),
    [api.session.key, api.session.tenant, range, bucket, since, until],
  );
  const data = stats.data;

  return (
    <section aria-labelledby="overview-title">
      <div className="page-head">
        <h1 id="overview-title">Overview</h1>
        <p className="muted">{api.session.tenant ? `Tenant ${api.session.tenant}` : "All tenants"}</p>
      </div>
      <form className="filters" onSubmit={(event) => event.preventDefault()} aria-label="Range">
        <label>
          Range
          <select value={range} onChange={(event) => setRange(event.target.value as Range)} data-testid="range">
            {RANGES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        {range === "custom" && (
          <>
            <label>
              From
              <input type="datetime-local" value={since} onChange={(event) => setSince(event.target.value)} />
            </label>
            <label>
              To
              <input type="datetime-local" value={until} onChange={(event) => setUntil(event.target.value)} />
            </label>
            <label>
              Buckets
              <select value={bucket} onChange={(event) => setBucket(event.target.value as "hour" | "day")}>
                <option value="hour">Hours</option>
                <option value="day">Days</option>
              </select>
            </label>
          </>
        )}
        <button type="button" onClick={stats.reload}>
          Refresh
        </button>
      </form>
      <ErrorNote error={stats.error} />
      <Loading loading={stats.loading && !data} />
      {data && (
        <div data-testid="overview" data-loading={stats.loading ? "true" : "false"}>
          <div className="cards">
            <Card label="Requests" value={count(data.requests)} raw={data.requests} name="requests">
              {count(data.misses)} misses · {count(data.bypasses)} bypasses · {count(data.errors)} errors
            </Card>
            <Card label="Hit rate" value={percent(data.hit_rate)} raw={data.hit_rate} name="hit_rate">
              <span data-testid="hits-exact" data-value={data.hits_exact}>
                exact {count(data.hits_exact)}
              </span>{" "}
              ·{" "}
              <span data-testid="hits-semantic" data-value={data.hits_semantic}>
                semantic {count(data.hits_semantic)}
              </span>
            </Card>
            <Card label="Tokens saved" value={count(data.tokens_saved)} raw={data.tokens_saved} name="tokens_saved" />
            <Card label="Saved" value={usd(data.cost_saved_usd)} raw={data.cost_saved_usd} name="cost_saved_usd">
              spent {usd(data.cost_usd)}
            </Card>
            <Card label="Cost" value={usd(data.cost_usd)} raw={data.cost_usd} name="cost_usd">
              {count(data.prompt_tokens + data.completion_tokens)} tokens upstream
            </Card>
            <div className="card stat">
              <span className="stat-label">Latency p50 / p99</span>
              <table className="mini">
                <tbody>
                  <tr>
                    <th scope="row">Hits</th>
                    <td data-testid="hit-p50" data-value={data.hit_latency_ms.p50 ?? ""}>
                      {ms(data.hit_latency_ms.p50)}
                    </td>
                    <td data-testid="hit-p99" data-value={data.hit_latency_ms.p99 ?? ""}>
                      {ms(data.hit_latency_ms.p99)}
                    </td>
                  </tr>
                  <tr>
                    <th scope="row">Misses</th>
                    <td data-testid="miss-p50" data-value={data.miss_latency_ms.p50 ?? ""}>
                      {ms(data.miss_latency_ms.p50)}
                    </td>
                    <td data-testid="miss-p99" data-value={data.miss_latency_ms.p99 ?? ""}>
                      {ms(data.miss_latency_ms.p99)}
                    </td>
                  </tr>
                </tbody>
              </table>
            </div>
          </div>
          <TimeSeries stats={data} />
          <ModelTable stats={data} />
          <div className="reasons">
            <ReasonTable title="Bypass reasons" counts={data.reasons.bypass} name="bypass" />
            <ReasonTable title="Refused semantic candidates" counts={data.reasons.refused} name="refused" />
            <ReasonTable title="Errors" counts={data.reasons.error} name="error" />
          </div>
        </div>
      )}
    </section>
  );
}

function Card(props: { label: string; value: string; raw: number; name: string; children?: React.ReactNode }) {
  return (
    <div className="card stat" data-testid={`stat-${props.name}`} data-value={props.raw}>
      <span className="stat-label">{props.label}</span>
      <span className="stat-value">{props.value}</span>
      {props.children && <span className="stat-sub">{props.children}</span>}
    </div>
  );
}

function TimeSeries(props: { stats: Stats }) {
  const bucket = props.stats.bucket ?? "hour";
  const rows = props.stats.series.map((point) => ({ ...point, label: bucketLabel(point.start, bucket) }));
  return (
    <div className="card chart" role="figure" aria-label={`Requests per ${bucket}, by cache result`}>
      <h2>Requests per {bucket}</h2>
      {rows.length === 0 ? (
        <p className="muted">No requests in this range.</p>
      ) : (
        <BarChart data={rows} responsive style={{ width: "100%", height: 260 }} margin={{ left: 0, right: 8 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={24} />
          <YAxis allowDecimals={false} tick={{ fontSize: 11 }} width={40} />
          <Tooltip />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          {SERIES.map((series) => (
            <Bar
              key={series.key}
              dataKey={series.key}
              name={series.label}
              stackId="requests"
              fill={series.color}
              isAnimationActive={false}
            />
          ))}
        </BarChart>
      )}
    </div>
  );
}

function ModelTable(props: { stats: Stats }) {
  return (
    <div className="card">
      <h2>Per model</h2>
      <div className="table-wrap">
        <table data-testid="models">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" className="num">
                Requests
              </th>
              <th scope="col" className="num">
                Hit rate
              </th>
              <th scope="col" className="num">
                Exact / semantic
              </th>
              <th scope="col" className="num">
                Tokens saved
              </th>
              <th scope="col" className="num">
                Saved
              </th>
              <th scope="col" className="num">
                Cost
              </th>
              <th scope="col" className="num">
                p50 hit / miss
              </th>
            </tr>
          </thead>
          <tbody>
            {props.stats.models.length === 0 && (
              <tr>
                <td colSpan={8} className="muted">
                  No requests in this range.
                </td>
              </tr>
            )}
            {props.stats.models.map((model) => (
              <tr key={model.model} data-model={model.model} data-requests={model.requests}>
                <td>{model.model}</td>
                <td className="num">{count(model.requests)}</td>
                <td className="num">{percent(model.hit_rate)}</td>
                <td className="num">
                  {count(model.hits_exact)} / {count(model.hits_semantic)}
                </td>
                <td className="num">{count(model.tokens_saved)}</td>
                <td className="num">{usd(model.cost_saved_usd)}</td>
                <td className="num">{usd(model.cost_usd)}</td>
                <td className="num">
                  {ms(model.hit_latency_ms.p50)} / {ms(model.miss_latency_ms.p50)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function ReasonTable(props: { title: string; counts: Record<string, number>; name: string }) {
  const rows = Object.entries(props.counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return (
    <div className="card">
      <h2>{props.title}</h2>
      {rows.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <table data-testid={`reasons-${props.name}`}>
          <tbody>
            {rows.map(([reason, value]) => (
              <tr key={reason} data-reason={reason} data-value={value}>
                <td>{reason}</td>
                <td className="num">{count(value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
