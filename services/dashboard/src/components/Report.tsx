// "Wrong answer for this question": reports a semantic hit, after which that pair is never served.
import { useState } from "react";
import { useApi } from "../session-context";

export function ReportButton(props: { requestId: string; tenant?: string | null; reported?: boolean; compact?: boolean }) {
  const api = useApi();
  const [state, setState] = useState<"idle" | "busy" | "done" | "error">(props.reported ? "done" : "idle");
  const [message, setMessage] = useState("");
  if (state === "done") {
    return (
      <span className="reported" role="status">
        Reported: not served again
      </span>
    );
  }
  return (
    <span className="report">
      <button
        type="button"
        className={props.compact ? "small warn" : "warn"}
        disabled={state === "busy"}
        onClick={async (event) => {
          event.stopPropagation();
          setState("busy");
          try {
            // The admin names the hit's tenant; a tenant's key reports its own.
            const tenant = api.session.me.admin ? (props.tenant ?? api.session.tenant ?? undefined) : undefined;
            await api.post("/api/v1/cache/feedback", { request_id: props.requestId, tenant });
            setState("done");
          } catch (error) {
            setMessage(error instanceof Error ? error.message : String(error));
            setState("error");
          }
        }}
      >
        Wrong answer for this question
      </button>
      {state === "error" && (
        <span className="error" role="alert">
          {message}
        </span>
      )}
    </span>
  );
}
