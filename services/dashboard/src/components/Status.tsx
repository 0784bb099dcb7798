// Loading, empty and error states, and the cache-status badge of a usage row.
import type { ReactNode } from "react";
import type { UsageRow } from "../api";
import { similarity } from "../format";

export function ErrorNote(props: { error: Error | undefined }) {
  if (!props.error) return null;
  return (
    <p className="error" role="alert">
      {props.error.message}
    </p>
  );
}

export function Loading(props: { loading: boolean; children?: ReactNode }) {
  return props.loading ? (
    <p className="muted" role="status">
      {props.children ?? "Loading…"}
    </p>
  ) : null;
}

export function CacheBadge(props: { row: Pick<UsageRow, "result" | "reason" | "similarity"> }) {
  const { result, reason } = props.row;
  switch (result) {
    case "hit_exact":
      return <span className="badge hit">HIT exact{reason === "coalesced" ? " (coalesced)" : ""}</span>;
    case "hit_semantic":
      return (
        <span className="badge hit semantic">
          HIT semantic <span className="num">{similarity(props.row.similarity)}</span>
        </span>
      );
    case "miss":
      return <span className="badge miss">MISS</span>;
    case "bypass":
      return <span className="badge bypass">BYPASS {reason ?? ""}</span>;
    default:
      return <span className="badge error">ERROR {reason ?? ""}</span>;
  }
}
